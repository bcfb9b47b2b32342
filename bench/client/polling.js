// engine.io-client's own long-polling transport (packet framing, poll loop, payload parsing,
// close and pause handling are its Polling class), with each request made by Node's http module
// instead of the XMLHttpRequest emulation the client uses in Node by default. That emulation
// costs the client about 100 µs of CPU per request, more than either server spends on it, so
// with it the load generator's core, not the server, caps the polling throughput.
// Used by bench.js and load.js.
"use strict";

const http = require("http");
const { Fetch } = require("engine.io-client");

const Polling = Object.getPrototypeOf(Fetch);

// The transport class whose requests go through ``agent`` (an http.Agent, or false: a
// connection per request, as http.request's own ``agent: false``).
function nodeHttpPolling(agent) {
  return class NodeHttpPolling extends Polling {
    doPoll() {
      this._request(undefined, (err, status, body) => {
        if (err || status !== 200) return this.onError("http read error", err || status);
        this.onData(body);
      });
    }

    doWrite(data, callback) {
      this._request(data, (err, status) => {
        if (err || status !== 200) return this.onError("http write error", err || status);
        callback();
      });
    }

    _request(data, done) {
      const isPost = data !== undefined;
      const headers = { ...this.opts.extraHeaders };
      if (isPost) headers["content-type"] = "text/plain;charset=UTF-8";
      const req = http.request(
        this.uri(),
        { method: isPost ? "POST" : "GET", headers, agent },
        (res) => {
          res.setEncoding("utf8");
          let body = "";
          res.on("data", (chunk) => (body += chunk));
          res.on("end", () => done(null, res.statusCode, body));
          res.on("error", done);
        },
      );
      req.on("error", done);
      req.end(data);
    }
  };
}

module.exports = { nodeHttpPolling };
