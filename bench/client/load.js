#!/usr/bin/env node
// Clients of the load and churn runs (bench/load.py drives it; docs/reliability.md).
//
//   node load.js --mode concurrent --url URL --clients C --transport websocket|polling
//                [--concurrency K] [--hold-seconds S] [--warmup W]
//   node load.js --mode churn --url URL --clients C --seconds S [--transports websocket,polling,upgrade]
//                [--rooms R]
//   node load.js --mode mass --url URL1,URL2 --clients C --transports ... --close client|server
//
// concurrent: after W clients connected, got a broadcast and left (the warm-up), C clients connect (K handshakes at a time) and stay; a broadcast ("bcast") must
// reach every one of them, then again after --hold-seconds (heartbeats go on meanwhile), and
// none may disconnect. The server's /_load/stats/ (RSS, loop lag, tables) is read before the
// first connection, once all are connected, and after the hold.
// churn: C clients each loop connect -> join a room (ack) -> echo (ack) -> broadcast to the room
// -> disconnect, for S seconds, cycling through --transports; counts cycles and failures.
// mass: C clients connect, spread over the URLs (one per server process), each joins a room;
// then they all close at once (--close client), or one asks the server to disconnect every
// socket of every process (--close server: the "disconnect_all" event) and every client must
// hear "io server disconnect". Either way the servers' tables are read until they hold nothing.
//
// "polling" is engine.io-client's own long-polling over Node's http module (polling.js, as
// bench.js's "http" polling: the XMLHttpRequest emulation would make the client's core the
// bottleneck);
// "upgrade" is that polling, then the upgrade to WebSocket, as socket.io-client does by default.
// Prints ONE JSON line on stdout: the result, or {"ok": false, "error": ...}. Every wait is
// bounded (--wait-ms) and the script exits at --deadline-seconds whatever it is doing.
"use strict";

const http = require("http");
const { io } = require("socket.io-client");
const { NodeWebSocket } = require("engine.io-client");
const { parseOptions } = require("./options");
const { nodeHttpPolling } = require("./polling");

const options = parseOptions({
  mode: "concurrent",
  url: "http://127.0.0.1:8000", // mass: one per server process, comma-separated
  clients: 100,
  transport: "websocket", // concurrent
  transports: "websocket,polling,upgrade", // churn, mass: cycled through
  concurrency: 100, // handshakes in flight at once
  "hold-seconds": 30, // concurrent
  warmup: 100, // concurrent: clients connected and closed before the "before" reading
  seconds: 60, // churn
  rooms: 20, // churn, mass
  close: "client", // mass
  "wait-ms": 30000,
  "deadline-seconds": 600,
});
const urls = options.url.split(",");

setTimeout(() => fail(new Error("deadline")), options["deadline-seconds"] * 1000).unref();

function fail(error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.stack) }) + "\n");
  process.exit(1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

// Node's global agent keeps an idle connection 5 s, as long as uvicorn (--timeout-keep-alive
// 5): a request sent on it just as the server closes it fails with ECONNRESET, which Node does
// not retry (a browser retries such a request on a new connection). Idle connections are
// closed after 2 s here, so the race is the client's to avoid, as a browser does.
const NodeHttpPolling = nodeHttpPolling(new http.Agent({ keepAlive: true, timeout: 2000 }));

const TRANSPORTS = {
  websocket: { transports: ["websocket"], upgrade: false },
  polling: { transports: [NodeHttpPolling], upgrade: false },
  // Implementations, not names, once one of them is: engine.io-client takes one kind or the other.
  upgrade: { transports: [NodeHttpPolling, NodeWebSocket], upgrade: true },
};

// What engine.io-client knows of why a transport failed: the HTTP status or the socket error.
function describe(details) {
  const cause = details && details.description;
  if (cause === undefined || cause === null) return "";
  return ` (${typeof cause === "object" ? cause.code || cause.message || cause.type : cause})`;
}

// A connected socket (rejects on connect_error or after --wait-ms). Every disconnect is counted
// by reason in ``disconnects``.
const disconnects = {};
function open(url, transport) {
  const chosen = TRANSPORTS[transport];
  if (!chosen) throw new Error(`unknown transport ${transport}`);
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      ...chosen,
      forceNew: true,
      reconnection: false,
      timeout: options["wait-ms"],
    });
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no connection within ${options["wait-ms"]} ms`));
    }, options["wait-ms"]);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.on("disconnect", (reason, details) => {
        const key = reason + describe(details);
        disconnects[key] = (disconnects[key] || 0) + 1;
      });
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(`connect_error: ${err.message}${describe(err)}`));
    });
  });
}

// ``count`` calls of ``make(i)``, ``concurrency`` at a time; their results in order.
async function pool(count, concurrency, make) {
  const results = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      results[i] = await make(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

async function stats(url, reset = false) {
  const response = await fetch(`${url}/_load/stats/${reset ? "?reset=1" : ""}`);
  if (!response.ok) throw new Error(`stats of ${url}: HTTP ${response.status}`);
  return response.json();
}

// The tables that hold something per connection: all zero once every client is gone.
function perConnection(tables) {
  const { engine_sessions, clients, sockets, rooms, room_entries, socket_rooms, ack_waiters } = tables;
  return engine_sessions + clients + sockets + rooms + room_entries + socket_rooms + ack_waiters;
}

// Waits until every server's per-connection tables are empty; the milliseconds it took.
async function untilEmpty() {
  const start = nowMs();
  for (;;) {
    const all = await Promise.all(urls.map((url) => stats(url)));
    if (all.every((s) => perConnection(s.tables) === 0)) return nowMs() - start;
    if (nowMs() - start > options["wait-ms"]) {
      throw new Error(`tables not empty after ${options["wait-ms"]} ms: ${JSON.stringify(all.map((s) => s.tables))}`);
    }
    await sleep(100);
  }
}

// Sends one broadcast from ``sockets[0]``; how many sockets got it, and when the last did.
async function broadcast(sockets, tag) {
  let received = 0;
  let last = 0;
  const start = nowMs();
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, options["wait-ms"]);
    for (const socket of sockets) {
      socket.on("tick", function onTick(data) {
        if (data !== tag) return;
        socket.off("tick", onTick);
        received += 1;
        last = nowMs() - start;
        if (received === sockets.length) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    sockets[0].emit("bcast", tag);
  });
  return { received, ms_to_last: Math.round(last) };
}

async function concurrent() {
  // Warm-up: the first connections import and allocate what every later one reuses.
  const warm = await pool(options.warmup, options.concurrency, () => open(urls[0], options.transport));
  if (warm.length) await broadcast(warm, "warm-up");
  for (const socket of warm) socket.close();
  await untilEmpty();
  const before = await stats(urls[0], true);
  const start = nowMs();
  const sockets = await pool(options.clients, options.concurrency, () =>
    open(urls[0], options.transport),
  );
  const connectSeconds = (nowMs() - start) / 1000;
  await sleep(1000);
  const connected = await stats(urls[0], true);
  const first = await broadcast(sockets, "first");
  await sleep(options["hold-seconds"] * 1000);
  const second = await broadcast(sockets, "second");
  const held = await stats(urls[0]);
  const alive = sockets.filter((socket) => socket.connected).length;
  for (const socket of sockets) socket.close();
  const msToEmpty = await untilEmpty();
  return {
    clients: options.clients,
    transport: options.transport,
    connect_seconds: connectSeconds,
    connects_per_second: options.clients / connectSeconds,
    broadcasts: [first, second],
    alive,
    disconnects,
    before,
    connected,
    held,
    ms_to_empty: Math.round(msToEmpty),
  };
}

async function churn() {
  const transports = options.transports.split(",");
  const cycles = Object.fromEntries(transports.map((t) => [t, 0]));
  const failures = {};
  let n = 0;
  const end = nowMs() + options.seconds * 1000;
  async function worker(w) {
    while (nowMs() < end) {
      const id = n++;
      const transport = transports[id % transports.length];
      const room = `room${id % options.rooms}`;
      let socket = null;
      try {
        socket = await open(urls[w % urls.length], transport);
        const joined = await socket.timeout(options["wait-ms"]).emitWithAck("join", room);
        if (joined !== true) throw new Error(`join answered ${joined}`);
        const answer = await socket.timeout(options["wait-ms"]).emitWithAck("echo", id);
        if (answer !== id) throw new Error(`echo ${id} answered ${answer}`);
        socket.emit("bcast_to", room, id);
        cycles[transport] += 1;
      } catch (error) {
        const key = `${transport}: ${error.message}`;
        failures[key] = (failures[key] || 0) + 1;
      } finally {
        if (socket) socket.close();
      }
    }
  }
  await Promise.all(Array.from({ length: options.clients }, (_, w) => worker(w)));
  // Client-side closes of the last cycle are on their way: give the server their ends.
  const msToEmpty = await untilEmpty();
  return {
    clients: options.clients,
    seconds: options.seconds,
    cycles,
    failures,
    disconnects,
    ms_to_empty: Math.round(msToEmpty),
  };
}

async function mass() {
  const transports = options.transports.split(",");
  const sockets = await pool(options.clients, options.concurrency, (i) =>
    open(urls[i % urls.length], transports[i % transports.length]),
  );
  await pool(sockets.length, options.concurrency, (i) =>
    sockets[i].timeout(options["wait-ms"]).emitWithAck("join", `room${i % options.rooms}`),
  );
  const connected = await Promise.all(urls.map((url) => stats(url)));
  const sessions = connected.map((s) => s.tables.engine_sessions);
  const start = nowMs();
  let msToDisconnected = null;
  if (options.close === "client") {
    for (const socket of sockets) socket.close();
  } else {
    const all = Promise.all(
      sockets.map((socket) => new Promise((resolve) => socket.once("disconnect", resolve))),
    );
    sockets[0].emit("disconnect_all");
    await Promise.race([all, sleep(options["wait-ms"])]);
    msToDisconnected = Math.round(nowMs() - start);
  }
  const msToEmpty = await untilEmpty();
  return {
    clients: options.clients,
    close: options.close,
    sessions_per_server: sessions,
    still_connected: sockets.filter((socket) => socket.connected).length,
    disconnects,
    ms_to_disconnected: msToDisconnected,
    ms_to_empty: Math.round(msToEmpty),
  };
}

const MODES = { concurrent, churn, mass };

async function main() {
  if (!MODES[options.mode]) throw new Error(`unknown mode ${options.mode}`);
  const result = await MODES[options.mode]();
  process.stdout.write(JSON.stringify({ ok: true, ...result }) + "\n");
  process.exit(0);
}

main().catch(fail);
