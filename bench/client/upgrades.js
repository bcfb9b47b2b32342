#!/usr/bin/env node
// The upgrade share of several workers (bench/upgrades.py drives it; docs/benchmarks.md).
//
//   node upgrades.js --url http://127.0.0.1:PORT --clients C --count N [--transports polling,websocket]
//                    [--pids P1,P2,...] [--clk-tck 100] [--settle-ms 2000] [--deadline-seconds 120]
//
// Opens C socket.io-client connections (the default transports: polling, then the upgrade),
// waits --settle-ms for their upgrades, and counts the transport each ends on. Then every
// client sends N "echo" events with an acknowledgement, one at a time, and the server's CPU
// time (utime + stime of /proc/PID/stat, summed over --pids) is read around that window.
// Prints ONE JSON line: the counts, the echo window and its CPU, or {"ok": false, "error"}.
"use strict";

const fs = require("fs");
const { io } = require("socket.io-client");

const options = {
  url: "http://127.0.0.1:8000",
  clients: 200,
  count: 50,
  transports: "polling,websocket",
  pids: "",
  "clk-tck": 100,
  "settle-ms": 2000,
  "deadline-seconds": 120,
};
for (let i = 2; i < process.argv.length; i++) {
  // --name=value, or --name value
  let [name, value] = process.argv[i].replace(/^--/, "").split(/=(.*)/s);
  if (value === undefined) value = process.argv[++i];
  if (!(name in options)) throw new Error(`unknown option --${name}`);
  options[name] = typeof options[name] === "number" ? Number(value) : value;
}

setTimeout(() => fail(new Error("deadline")), options["deadline-seconds"] * 1000).unref();

function fail(error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error) }) + "\n");
  process.exit(1);
}

function cpuSeconds() {
  let ticks = 0;
  for (const pid of options.pids.split(",").filter(Boolean)) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return ticks / options["clk-tck"];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function open() {
  return new Promise((resolve, reject) => {
    const socket = io(options.url, {
      transports: options.transports.split(","),
      reconnection: false,
      forceNew: true,
      timeout: 20000,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

async function echoes(socket) {
  for (let i = 0; i < options.count; i++) {
    const answer = await socket.timeout(10000).emitWithAck("echo", i);
    if (answer !== i) throw new Error(`echo ${i} answered ${answer}`);
  }
}

async function main() {
  const sockets = [];
  // A few at a time, as clients arrive after a deploy (and so the handshakes are spread).
  for (let i = 0; i < options.clients; i += 10) {
    const batch = [];
    for (let j = i; j < Math.min(i + 10, options.clients); j++) batch.push(open());
    sockets.push(...(await Promise.all(batch)));
  }
  await sleep(options["settle-ms"]);
  const ended = { websocket: 0, polling: 0 };
  for (const socket of sockets) ended[socket.io.engine.transport.name] += 1;
  const before = cpuSeconds();
  const started = process.hrtime.bigint();
  await Promise.all(sockets.map(echoes));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuSeconds() - before;
  const disconnected = sockets.filter((socket) => !socket.connected).length;
  for (const socket of sockets) socket.close();
  const messages = options.clients * options.count;
  process.stdout.write(
    JSON.stringify({
      ok: true,
      clients: options.clients,
      websocket: ended.websocket,
      polling: ended.polling,
      disconnected,
      messages,
      seconds,
      cpu_seconds: cpu,
      cpu_us_per_message: (cpu / messages) * 1e6,
    }) + "\n",
  );
  process.exit(0);
}

main().catch(fail);
