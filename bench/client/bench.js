#!/usr/bin/env node
// Load generator of the channels_sio benchmarks (bench/run.py drives it; docs/benchmarks.md).
//
//   node bench.js --scenario echo|echo-emit|polling|fanout|connect|raw-echo|cluster --url http://127.0.0.1:PORT
//                 [--pid SERVER_PID --clk-tck 100] [--clients C] [--count N] [--warmup W]
//                 [--concurrency K] [--inflight B] [--window-seconds S] [--deadline-seconds D]
//                 [--redis-url redis://HOST:PORT]
//
// Prints ONE JSON line on stdout: the result of the run, or {"ok": false, "error": ...}.
// Every loop is bounded by a count AND by time: the measured window stops at --window-seconds
// whatever is left, a single wait never exceeds --wait-ms, and the whole script exits at
// --deadline-seconds (printing an error line) whatever it is doing.
//
// With --pid, the server's CPU time (utime + stime of /proc/PID/stat, all its threads) is read
// right before and right after the measured window, and its RSS (VmRSS of /proc/PID/status)
// where the scenario needs it: the server's cost per unit is measured where the load is made.
//
// echo-emit: the echo the server sends back with socket.emit ("echo_emit" answered by an "echo"
// event) rather than as an acknowledgement, for connection state recovery, which records the one
// and never the other. Both it and fanout report how many of the measured units came with an
// offset (a string after the data: the packet was recorded), in "offsets".
//
// cluster: the fan-out over several server processes sharing Redis. --url and --pid take
// comma-separated lists (one per process; clients are spread round-robin over the URLs, CPU
// and RSS are summed over the pids), and Redis's INFO counters (commands by name, CPU) are read
// right before and after the window from --redis-url.
"use strict";

const fs = require("fs");
const http = require("http");
const net = require("net");
const { io } = require("socket.io-client");
const { Fetch } = require("engine.io-client");
const WebSocket = require("ws");
const { nodeHttpPolling } = require("./polling");

const DEFAULTS = {
  scenario: "echo",
  url: "http://127.0.0.1:8000", // cluster: one per server process, comma-separated
  path: "/socket.io/",
  pid: "", // idem
  "clk-tck": 100,
  clients: 50,
  count: 10000, // echo / echo-emit / polling / raw-echo: round trips; fanout: broadcasts; connect: unused
  warmup: 10, // echo / polling / raw-echo: round trips per client; fanout: broadcasts; connect: connections
  concurrency: 25, // connections opened at once
  inflight: 1, // fanout: broadcasts in flight at once
  "payload-bytes": 32,
  "window-seconds": 30,
  "deadline-seconds": 120,
  "wait-ms": 10000,
  "settle-ms": 1000, // connect: pause before reading the RSS of the idle connections
  keepalive: false, // polling: a keep-alive HTTP agent (the client's default: a connection per request)
  // polling: "xhr" (the client's default in Node), "fetch" (engine.io-client's Fetch) or "http"
  // (engine.io-client's Polling over Node's http module: polling.js)
  "polling-impl": "xhr",
  "redis-url": "", // cluster: the Redis whose INFO counters are read around the window
  "probe-ms": 1000, // cluster: how long one readiness probe waits for every client
  probes: 30, // cluster: readiness probes at most
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
  opts.urls = opts.url.split(",");
  opts.pids = opts.pid ? opts.pid.split(",").map(Number) : [];
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

// Summed over the server processes (--pid), as are the RSS figures below.
function serverCpuSeconds(opts) {
  if (!opts.pids.length) return null;
  let ticks = 0;
  for (const pid of opts.pids) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / opts["clk-tck"];
}

function serverRssKb(opts) {
  if (!opts.pids.length) return null;
  let total = 0;
  for (const pid of opts.pids) {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!match) return null;
    total += Number(match[1]);
  }
  return total;
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

// Redis's counters over one connection of its own (RESP by hand: nothing to install). The
// counters are server-wide: whatever else uses that Redis meanwhile is counted too.
class RedisCounters {
  static open(url, waitMs) {
    const { hostname, port, username, password } = new URL(url);
    const counters = new RedisCounters();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no Redis at ${url} within ${waitMs} ms`)), waitMs);
      counters.socket = net.connect(Number(port || 6379), hostname || "127.0.0.1", async () => {
        clearTimeout(timer);
        try {
          if (password) {
            const user = decodeURIComponent(username);
            await counters.command(["AUTH", ...(user ? [user] : []), decodeURIComponent(password)], waitMs);
          }
          resolve(counters);
        } catch (err) {
          counters.close();
          reject(err);
        }
      });
      // A later error fails the pending command by its timeout; this keeps it from crashing us.
      counters.socket.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  constructor() {
    this.buffer = Buffer.alloc(0);
  }

  // One command, one reply: a simple string, an error or a bulk string (all INFO and AUTH give).
  command(args, waitMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.off("data", onData);
        reject(new Error(`Redis did not answer ${args[0]} within ${waitMs} ms`));
      }, waitMs);
      const parse = () => {
        const eol = this.buffer.indexOf("\r\n");
        if (eol < 0) return;
        const head = this.buffer.subarray(0, eol).toString();
        let reply;
        let size = eol + 2;
        if (head[0] === "$") {
          const length = Number(head.slice(1));
          if (this.buffer.length < size + length + 2) return;
          reply = this.buffer.subarray(size, size + length).toString();
          size += length + 2;
        } else if (head[0] === "+") {
          reply = head.slice(1);
        } else {
          reply = new Error(`Redis: ${head.slice(1)}`);
        }
        this.buffer = this.buffer.subarray(size);
        this.socket.off("data", onData);
        clearTimeout(timer);
        if (reply instanceof Error) reject(reply);
        else resolve(reply);
      };
      const onData = (chunk) => {
        this.buffer = Buffer.concat([this.buffer, chunk]);
        parse();
      };
      this.socket.on("data", onData);
      this.socket.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(""));
    });
  }

  // Calls per command name (INFO itself left out: neither server sends it) and CPU seconds.
  async read(waitMs) {
    const text = await this.command(["INFO", "cpu", "commandstats"], waitMs);
    const calls = {};
    let cpu = 0;
    for (const line of text.split("\r\n")) {
      const stat = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
      if (stat && stat[1] !== "info") calls[stat[1]] = Number(stat[2]);
      const used = /^used_cpu_(sys|user):([\d.]+)$/.exec(line);
      if (used) cpu += Number(used[2]);
    }
    return { calls, cpu };
  }

  close() {
    this.socket.destroy();
  }
}

function countersDelta(before, after) {
  const commands = {};
  for (const [name, calls] of Object.entries(after.calls)) {
    const delta = calls - (before.calls[name] || 0);
    if (delta > 0) commands[name] = delta;
  }
  return { commands, cpuS: after.cpu - before.cpu };
}

// ---------------------------------------------------------------------------------------------
// Clients

// The "polling" transport of each --polling-impl, given the socket's HTTP agent.
const POLLING_IMPLS = { xhr: () => "polling", fetch: () => Fetch, http: nodeHttpPolling };

function socketOptions(opts, transports) {
  const pollingImpl = POLLING_IMPLS[opts["polling-impl"]];
  if (!pollingImpl) throw new Error(`unknown polling-impl ${opts["polling-impl"]}`);
  // --keepalive: a keep-alive agent of the socket's own; otherwise the client's default, false
  // (a connection per request).
  const agent = opts.keepalive ? new http.Agent({ keepAlive: true }) : false;
  const polling = pollingImpl(agent);
  transports = transports.map((t) => (t === "polling" ? polling : t));
  return {
    path: opts.path,
    forceNew: true,
    reconnection: false,
    timeout: opts["wait-ms"],
    transports,
    upgrade: false,
    agent,
  };
}

function connectSocket(opts, transports, url = opts.urls[0]) {
  return new Promise((resolve, reject) => {
    const socket = io(url, socketOptions(opts, transports));
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
    const ws = new WebSocket(opts.urls[0].replace(/^http/, "ws") + "/", { perMessageDeflate: false });
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
  let offsets = 0;

  async function loop(k, n, latencies, stopAt) {
    let done = 0;
    for (let i = 0; i < n && nowMs() < stopAt; i++) {
      const t = nowMs();
      try {
        // true when the answer carried an offset (echo-emit with recovery on)
        if ((await roundTrip(sockets[k], { i, text }, wait)) === true && latencies) offsets++;
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
  return { ...window.report(units, "msg"), ...latencies.report(), expected: opts.count, offsets, errors };
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

// The echo as an event: the server answers "echo_emit" with socket.emit("echo", ...args); one
// in flight per socket, as for the acknowledged echo. With recovery on, the answer's last
// argument is its offset.
async function sioEmitEcho(opts, transports, deadline) {
  const sockets = await pool(opts.clients, opts.concurrency, deadline, () => connectSocket(opts, transports));
  const pending = new Map(); // socket -> the round trip waiting for its echo
  for (const socket of sockets) {
    socket.on("echo", (answer, offset) => {
      const waiter = pending.get(socket);
      if (!waiter) return;
      pending.delete(socket);
      clearTimeout(waiter.timer);
      if (answer && answer.i === waiter.i) waiter.resolve(typeof offset === "string");
      else waiter.reject(new Error(`wrong echo ${JSON.stringify(answer)}`));
    });
  }
  try {
    return await roundTrips(
      opts,
      sockets,
      (socket, payload, wait) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            pending.delete(socket);
            reject(new Error(`no echo within ${wait} ms`));
          }, wait);
          pending.set(socket, { i: payload.i, resolve, reject, timer });
          socket.emit("echo_emit", payload);
        }),
      deadline,
    );
  } finally {
    for (const waiter of pending.values()) clearTimeout(waiter.timer);
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

// A process delivers broadcasts from the others only once it has joined them (channels_sio's
// node and python-socketio's pub/sub listener both start with the first connection): probe
// until one broadcast reaches every client. A probe's ticks carry {probe}, not {seq}.
async function untilClusterReady(opts, sockets, deadline) {
  let probe = 0;
  let got = 0;
  let complete = null;
  const onTick = (data) => {
    if (data && data.probe === probe && ++got === sockets.length && complete) complete();
  };
  for (const socket of sockets) socket.on("tick", onTick);
  try {
    while (probe < opts.probes && nowMs() < deadline) {
      probe++;
      got = 0;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.min(opts["probe-ms"], Math.max(0, deadline - nowMs())));
        complete = () => {
          clearTimeout(timer);
          resolve();
        };
        sockets[0].emit("bcast", { probe });
      });
      if (got === sockets.length) return probe;
    }
    throw new Error(`not every process delivers: probe ${probe} reached ${got} of ${sockets.length} clients`);
  } finally {
    complete = null;
    for (const socket of sockets) socket.off("tick", onTick);
  }
}

// C clients; one broadcast ("bcast") reaches every one of them as "tick" (the sender included).
// cluster: the clients are spread round-robin over the processes (--url list), the emitter being
// on the first; Redis's counters are read around the window.
async function fanout(opts, deadline, cluster) {
  const sockets = await pool(opts.clients, opts.concurrency, deadline, (i) =>
    connectSocket(opts, ["websocket"], opts.urls[i % opts.urls.length]),
  );
  const total = opts.count + opts.warmup;
  const sentAt = new Float64Array(total);
  const received = new Uint32Array(total);
  const waiters = new Map();
  let latencies = null;
  let firstMeasured = opts.warmup;
  let offsets = 0; // measured deliveries that came with an offset (recovery on)
  const errors = [];

  for (const socket of sockets) {
    socket.on("tick", (data, offset) => {
      const seq = data && data.seq;
      if (!Number.isInteger(seq) || seq < 0 || seq >= total) return;
      received[seq]++;
      if (latencies && seq >= firstMeasured) {
        latencies.add(nowMs() - sentAt[seq]);
        if (typeof offset === "string") offsets++;
      }
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

  let redis = null;
  try {
    const probes = cluster ? await untilClusterReady(opts, sockets, deadline) : undefined;
    await lane(0, opts.warmup, deadline);
    if (errors.length) throw new Error(`warmup: ${errors[0]}`);
    latencies = new Latencies(opts.count * sockets.length);
    firstMeasured = nextSeq;
    if (cluster) redis = await RedisCounters.open(opts["redis-url"], opts["wait-ms"]);
    const redis0 = redis && (await redis.read(opts["wait-ms"]));
    const stopAt = Math.min(deadline, nowMs() + opts["window-seconds"] * 1000);
    const window = new Window(opts);
    await Promise.all(Array.from({ length: Math.max(1, opts.inflight) }, (_, k) => lane(k, total, stopAt)));
    window.close();
    const redisDelta = redis && countersDelta(redis0, await redis.read(opts["wait-ms"]));
    let deliveries = 0;
    for (let seq = firstMeasured; seq < nextSeq; seq++) deliveries += received[seq];
    const result = {
      ...window.report(deliveries, "delivery"),
      ...latencies.report(),
      broadcasts: nextSeq - firstMeasured,
      expected: opts.count * sockets.length,
      offsets,
      errors,
    };
    if (cluster) {
      Object.assign(result, {
        processes: opts.urls.length,
        probes,
        redis_commands: redisDelta.commands,
        redis_cpu_s: round(redisDelta.cpuS, 4),
        redis_cpu_us_per_unit: deliveries ? round((redisDelta.cpuS * 1e6) / deliveries, 2) : null,
      });
    }
    return result;
  } finally {
    if (redis) redis.close();
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
    case "echo-emit":
      result = await sioEmitEcho(opts, ["websocket"], deadline);
      break;
    case "polling":
      result = await sioEcho(opts, ["polling"], deadline);
      break;
    case "raw-echo":
      result = await rawEcho(opts, deadline);
      break;
    case "fanout":
      result = await fanout(opts, deadline, false);
      break;
    case "cluster":
      if (!opts["redis-url"]) throw new Error("cluster needs --redis-url");
      result = await fanout(opts, deadline, true);
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
