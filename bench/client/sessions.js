#!/usr/bin/env node
// Sessions of several workers: bench/upgrades.py and bench/live_sessions.py drive it
// (docs/benchmarks.md).
//
//   node sessions.js --url http://127.0.0.1:PORT --clients C --count N [--transports polling,websocket]
//                    [--event echo] [--window events|all] [--pids P1,P2,...] [--clk-tck 100]
//                    [--settle-ms 2000] [--deadline-seconds 120]
//
// Opens C socket.io-client connections, ten at a time, waits --settle-ms (for upgrades), and
// counts the transport each ends on. Then every client sends N --event events with an
// acknowledgement, one at a time ("echo": answered with its argument; "join": the client joins
// room "r<i>" and is answered true). The server's CPU time (utime + stime of /proc/PID/stat,
// summed over --pids) is read around the events (--window events), or from before the first
// connection to after the last event plus --settle-ms (--window all: the connections' cost
// and what the server writes after them).
// Prints ONE JSON line: the counts, the window and its CPU, or {"ok": false, "error"}.
"use strict";

const fs = require("fs");
const { io } = require("socket.io-client");
const { parseOptions } = require("./options");

const options = parseOptions({
  url: "http://127.0.0.1:8000",
  clients: 200,
  count: 50,
  transports: "polling,websocket",
  event: "echo",
  window: "events",
  pids: "",
  "clk-tck": 100,
  "settle-ms": 2000,
  "deadline-seconds": 120,
});

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

async function events(socket) {
  for (let i = 0; i < options.count; i++) {
    const argument = options.event === "join" ? `r${i}` : i;
    const expected = options.event === "join" ? true : i;
    const answer = await socket.timeout(10000).emitWithAck(options.event, argument);
    if (answer !== expected) throw new Error(`${options.event} ${i} answered ${answer}`);
  }
}

async function main() {
  const whole = options.window === "all";
  const first = whole ? cpuSeconds() : 0;
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
  const before = whole ? first : cpuSeconds();
  const started = process.hrtime.bigint();
  await Promise.all(sockets.map(events));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (whole) await sleep(options["settle-ms"]);
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
      cpu_us_per_client: (cpu / options.clients) * 1e6,
    }) + "\n",
  );
  process.exit(0);
}

main().catch(fail);
