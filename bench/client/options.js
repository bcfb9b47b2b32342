// The command-line options of load.js and sessions.js.
"use strict";

// ``defaults`` overridden by the --name=value or --name value arguments of the command line;
// a value is a number where its default is one. An unknown name throws.
function parseOptions(defaults, argv = process.argv.slice(2)) {
  const options = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    let [name, value] = argv[i].replace(/^--/, "").split(/=(.*)/s);
    if (value === undefined) value = argv[++i];
    if (!(name in options)) throw new Error(`unknown option --${name}`);
    options[name] = typeof options[name] === "number" ? Number(value) : value;
  }
  return options;
}

module.exports = { parseOptions };
