#!/usr/bin/env node
// Load generator of the channels_sio benchmarks (bench/run.py drives it; docs/benchmarks.md).
//
//   node bench.js --scenario echo|polling|fanout|connect|raw-echo --url http://127.0.0.1:PORT
//                 [--pid SERVER_PID --clk-tck 100] [--clients C] [--count N] [--warmup W]
//                 [--concurrency K] [--inflight B] [--window-seconds S] [--deadline-seconds D]
//
// Prints ONE JSON line on stdout: the result of the run, or {"ok": false, "error": ...}.
// Every loop is bounded by a count AND by time: the measured window stops at --window-seconds
// whatever is left, a single wait never exceeds --wait-ms, and the whole script exits at
// --deadline-seconds (printing an error line) whatever it is doing.
//
// With --pid, the server's CPU time (utime + stime of /proc/PID/stat, all its threads) is read
// right before and right after the measured window, and its RSS (VmRSS of /proc/PID/status)
// where the scenario needs it: the server's cost per unit is measured where the load is made.
"use strict";

const fs = require("fs");
const http = require("http");
const { io } = require("socket.io-client");
const { Fetch } = require("engine.io-client");
const WebSocket = require("ws");

const DEFAULTS = {
  scenario: "echo",
  url: "http://127.0.0.1:8000",
  path: "/socket.io/",
  pid: 0,
  "clk-tck": 100,
  clients: 50,
  count: 10000, // echo / polling / raw-echo: round trips; fanout: broadcasts; connect: unused
  warmup: 10, // echo / polling / raw-echo: round trips per client; fanout: broadcasts; connect: connections
  concurrency: 25, // connections opened at once
  inflight: 1, // fanout: broadcasts in flight at once
  "payload-bytes": 32,
  "window-seconds": 30,
  "deadline-seconds": 120,
  "wait-ms": 10000,
  "settle-ms": 1000, // connect: pause before reading the RSS of the idle connections
  keepalive: false, // polling over XHR: a keep-alive HTTP agent (the client's default: a connection per request)
  "polling-impl": "xhr", // polling: "xhr" (the client's default in Node) or "fetch" (engine.io-client's Fetch)
};

function parseArgs(argv) {
  const opts = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const key = arg.slice(2);
    if (!(key in DEFAULTS)) throw new Error(`unknown option ${arg}`);
    if (typeof DEFAULTS[key] === "boolean") {
      opts[key] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    opts[key] = typeof DEFAULTS[key] === "number" ? Number(value) : value;
    if (typeof DEFAULTS[key] === "number" && !Number.isFinite(opts[key])) {
      throw new Error(`${arg} needs a number`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// Measuring

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function serverCpuSeconds(opts) {
  if (!opts.pid) return null;
  const stat = fs.readFileSync(`/proc/${opts.pid}/stat`, "utf8");
  // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / opts["clk-tck"];
}

function serverRssKb(opts) {
  if (!opts.pid) return null;
  const status = fs.readFileSync(`/proc/${opts.pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) : null;
}

// CPU seconds the whole machine spent busy (all cores; /proc/stat, idle and iowait excluded).
function machineBusySeconds(opts) {
  try {
    const first = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
    const [user, nice, system, , , irq, softirq, steal] = first.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + (steal || 0)) / opts["clk-tck"];
  } catch {
    return null;
  }
}

class Window {
  constructor(opts) {
    this.opts = opts;
    this.busy0 = machineBusySeconds(opts);
    this.cpu0 = serverCpuSeconds(opts);
    this.client0 = process.cpuUsage();
    this.t0 = nowMs();
  }

  close() {
    this.elapsedMs = nowMs() - this.t0;
    const cpu1 = serverCpuSeconds(this.opts);
    const client = process.cpuUsage(this.client0);
    const busy1 = machineBusySeconds(this.opts);
    this.serverCpuS = this.cpu0 === null ? null : cpu1 - this.cpu0;
    this.clientCpuS = (client.user + client.system) / 1e6;
    this.busyS = this.busy0 === null || busy1 === null ? null : busy1 - this.busy0;
  }

  report(units, unitName) {
    const seconds = this.elapsedMs / 1000;
    return {
      unit: unitName,
      units,
      elapsed_s: round(seconds, 4),
      throughput: seconds > 0 ? round(units / seconds, 1) : null,
      server_cpu_s: this.serverCpuS === null ? null : round(this.serverCpuS, 3),
      server_cpu_us_per_unit:
        this.serverCpuS === null || units === 0 ? null : round((this.serverCpuS * 1e6) / units, 2),
      server_cpu_util: this.serverCpuS === null ? null : round(this.serverCpuS / seconds, 3),
      client_cpu_util: round(this.clientCpuS / seconds, 3),
      // Everything else the machine ran meanwhile (other processes), in cores: the noise.
      other_cpu_util:
        this.busyS === null || this.serverCpuS === null
          ? null
          : round(Math.max(0, this.busyS - this.serverCpuS - this.clientCpuS) / seconds, 3),
    };
  }
}

class Latencies {
  constructor(capacity) {
    this.values = new Float64Array(Math.max(1, capacity));
    this.n = 0;
  }

  add(ms) {
    if (this.n < this.values.length) this.values[this.n++] = ms;
  }

  report() {
    const sorted = this.values.slice(0, this.n).sort();
    const pick = (q) => (this.n ? round(sorted[Math.min(this.n - 1, Math.floor(q * this.n))], 3) : null);
    return { p50_ms: pick(0.5), p99_ms: pick(0.99), max_ms: this.n ? round(sorted[this.n - 1], 3) : null };
  }
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

// ---------------------------------------------------------------------------------------------
// Clients

function socketOptions(opts, transports) {
  if (opts["polling-impl"] === "fetch") {
    transports = transports.map((t) => (t === "polling" ? Fetch : t));
  }
  const options = {
    path: opts.path,
    forceNew: true,
    reconnection: false,
    timeout: opts["wait-ms"],
    transports,
    upgrade: false,
  };
  if (opts.keepalive) options.agent = new http.Agent({ keepAlive: true });
  return options;
}

function connectSocket(opts, transports) {
  return new Promise((resolve, reject) => {
    const socket = io(opts.url, socketOptions(opts, transports));
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no connection within ${opts["wait-ms"]} ms`));
    }, opts["wait-ms"]);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(`connect_error: ${err.message}`));
    });
  });
}

function connectRaw(opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(opts.url.replace(/^http/, "ws") + "/", { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no WebSocket within ${opts["wait-ms"]} ms`));
    }, opts["wait-ms"]);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

// Runs make() n times, at most `concurrency` at once; all results in order, or the first error.
async function pool(n, concurrency, deadline, make) {
  const results = new Array(n);
  let next = 0;
  async function lane() {
    while (next < n) {
      if (nowMs() > deadline) throw new Error(`ran out of time after ${next} of ${n}`);
      const i = next++;
      results[i] = await make(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, lane));
  return results;
}

function closeAll(sockets) {
  for (const s of sockets) {
    if (!s) continue;
    if (typeof s.terminate === "function") s.close();
    else s.disconnect();
  }
}

function split(total, parts) {
  return Array.from({ length: parts }, (_, k) => Math.floor(total / parts) + (k < total % parts ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Scenarios

// Closed loop: C clients, each sends the next round trip when the previous one is answered.
async function roundTrips(opts, sockets, roundTrip, scenarioDeadline) {
  const text = "x".repeat(opts["payload-bytes"]);
  const wait = opts["wait-ms"];
  const errors = [];

  async function loop(k, n, latencies, stopAt) {
    let done = 0;
    for (let i = 0; i < n && nowMs() < stopAt; i++) {
      const t = nowMs();
      try {
        await roundTrip(sockets[k], { i, text }, wait);
      } catch (err) {
        errors.push(String(err.message || err));
        break;
      }
      if (latencies) latencies.add(nowMs() - t);
      done++;
    }
    return done;
  }

  await Promise.all(sockets.map((_, k) => loop(k, opts.warmup, null, scenarioDeadline)));
  if (errors.length) throw new Error(`warmup: ${errors[0]}`);
  const latencies = new Latencies(opts.count);
  const stopAt = Math.min(scenarioDeadline, nowMs() + opts["window-seconds"] * 1000);
  const window = new Window(opts);
  const counts = await Promise.all(split(opts.count, sockets.length).map((n, k) => loop(k, n, latencies, stopAt)));
  window.close();
  const units = counts.reduce((a, b) => a + b, 0);
  return { ...window.report(units, "msg"), ...latencies.report(), expected: opts.count, errors };
}

async function sioEcho(opts, transports, deadline) {
  const sockets = await pool(opts.clients, opts.concurrency, deadline, () => connectSocket(opts, transports));
  try {
    return await roundTrips(
      opts,
      sockets,
      async (socket, payload, wait) => {
        const answer = await socket.timeout(wait).emitWithAck("echo", payload);
        if (!answer || answer.i !== payload.i) throw new Error(`wrong ack ${JSON.stringify(answer)}`);
      },
      deadline,
    );
  } finally {
    closeAll(sockets);
  }
}

async function rawEcho(opts, deadline) {
  const sockets = await pool(opts.clients, opts.concurrency, deadline, () => connectRaw(opts));
  const pending = new Map();
  for (const ws of sockets) {
    ws.on("message", (data) => {
      const resolve = pending.get(ws);
      pending.delete(ws);
      if (resolve) resolve(data.toString());
    });
  }
  try {
    return await roundTrips(
      opts,
      sockets,
      (ws, payload, wait) =>
        new Promise((resolve, reject) => {
          const message = JSON.stringify(["echo", payload]);
          const timer = setTimeout(() => reject(new Error(`no echo within ${wait} ms`)), wait);
          pending.set(ws, (data) => {
            clearTimeout(timer);
            if (data === message) resolve();
            else reject(new Error("wrong echo"));
          });
          ws.send(message);
        }),
      deadline,
    );
  } finally {
    closeAll(sockets);
  }
}

// C clients; one broadcast ("bcast") reaches every one of them as "tick" (the sender included).
async function fanout(opts, deadline) {
  const sockets = await pool(opts.clients, opts.concurrency, deadline, () => connectSocket(opts, ["websocket"]));
  const total = opts.count + opts.warmup;
  const sentAt = new Float64Array(total);
  const received = new Uint32Array(total);
  const waiters = new Map();
  let latencies = null;
  let firstMeasured = opts.warmup;
  const errors = [];

  for (const socket of sockets) {
    socket.on("tick", (data) => {
      const seq = data && data.seq;
      if (!Number.isInteger(seq) || seq < 0 || seq >= total) return;
      received[seq]++;
      if (latencies && seq >= firstMeasured) latencies.add(nowMs() - sentAt[seq]);
      if (received[seq] === sockets.length) {
        const done = waiters.get(seq);
        waiters.delete(seq);
        if (done) done();
      }
    });
  }

  let nextSeq = 0;
  async function lane(laneIndex, lastSeq, stopAt) {
    const emitter = sockets[laneIndex % sockets.length];
    while (nextSeq < lastSeq && nowMs() < stopAt) {
      const seq = nextSeq++;
      const complete = new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(seq);
          errors.push(`broadcast ${seq}: ${received[seq]} of ${sockets.length} within ${opts["wait-ms"]} ms`);
          resolve();
        }, opts["wait-ms"]);
        waiters.set(seq, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      sentAt[seq] = nowMs();
      emitter.emit("bcast", { seq, text: "x".repeat(opts["payload-bytes"]) });
      await complete;
    }
  }

  try {
    await lane(0, opts.warmup, deadline);
    if (errors.length) throw new Error(`warmup: ${errors[0]}`);
    latencies = new Latencies(opts.count * sockets.length);
    firstMeasured = nextSeq;
    const stopAt = Math.min(deadline, nowMs() + opts["window-seconds"] * 1000);
    const window = new Window(opts);
    await Promise.all(Array.from({ length: Math.max(1, opts.inflight) }, (_, k) => lane(k, total, stopAt)));
    window.close();
    let deliveries = 0;
    for (let seq = firstMeasured; seq < nextSeq; seq++) deliveries += received[seq];
    return {
      ...window.report(deliveries, "delivery"),
      ...latencies.report(),
      broadcasts: nextSeq - firstMeasured,
      expected: opts.count * sockets.length,
      errors,
    };
  } finally {
    closeAll(sockets);
  }
}

// The connection rate over WebSocket, then the RSS the held (idle) connections cost the server.
async function connect(opts, deadline) {
  const warm = await pool(opts.warmup, opts.concurrency, deadline, () => connectSocket(opts, ["websocket"]));
  closeAll(warm);
  await sleep(opts["settle-ms"]);
  const rssBefore = serverRssKb(opts);
  const window = new Window(opts);
  let held = [];
  try {
    held = await pool(opts.clients, opts.concurrency, deadline, () => connectSocket(opts, ["websocket"]));
    window.close();
    await sleep(opts["settle-ms"]);
    const rssIdle = serverRssKb(opts);
    return {
      ...window.report(held.length, "conn"),
      p50_ms: null,
      p99_ms: null,
      expected: opts.clients,
      rss_before_kb: rssBefore,
      rss_idle_kb: rssIdle,
      rss_kb_per_idle_conn: rssBefore === null ? null : round((rssIdle - rssBefore) / held.length, 2),
      errors: [],
    };
  } finally {
    closeAll(held);
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const deadline = nowMs() + opts["deadline-seconds"] * 1000;
  const killer = setTimeout(() => {
    finish({ ok: false, error: `deadline of ${opts["deadline-seconds"]} s reached` }, 3);
  }, opts["deadline-seconds"] * 1000 + 2000);
  const header = { scenario: opts.scenario, clients: opts.clients, url: opts.url };
  let result;
  switch (opts.scenario) {
    case "echo":
      result = await sioEcho(opts, ["websocket"], deadline);
      break;
    case "polling":
      result = await sioEcho(opts, ["polling"], deadline);
      break;
    case "raw-echo":
      result = await rawEcho(opts, deadline);
      break;
    case "fanout":
      result = await fanout(opts, deadline);
      break;
    case "connect":
      result = await connect(opts, deadline);
      break;
    default:
      throw new Error(`unknown scenario ${opts.scenario}`);
  }
  clearTimeout(killer);
  const rss = serverRssKb(opts);
  finish({ ok: result.errors.length === 0, ...header, ...result, server_rss_kb: rss, errors: result.errors.slice(0, 5) }, 0);
}

let finished = false;
function finish(result, code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

main().catch((err) => finish({ ok: false, error: String((err && err.stack) || err) }, 1));
