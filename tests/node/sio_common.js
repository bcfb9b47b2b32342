// Helpers of the Socket.IO scenario scripts (tests/node/sio_*.js), which drive the official
// socket.io-client against a channels_sio server and print ONE JSON line of results.
//
// Binary data crosses the JSON boundary as {"$bin": "<hex>"}: toWire() turns those markers
// into Buffers before sending, fromWire() turns whatever binary the client received (Buffer,
// ArrayBuffer, typed array) back into markers.
const { io, Manager } = require("socket.io-client");
const WebSocket = require("ws");

const SCRIPT_DEADLINE = 12000; // ms; pytest's own bound is above this
const WAIT = 4000; // ms; bound of any single wait

function transportOptions(transports) {
  const list = transports.split(",");
  return { transports: list, upgrade: list.length > 1 };
}

// Options every client gets: no reconnection (a test decides), a fresh connection each time.
function baseOptions(transports, extra = {}) {
  return {
    path: "/socket.io/",
    forceNew: true,
    reconnection: false,
    timeout: WAIT,
    ...transportOptions(transports),
    ...extra,
  };
}

function toWire(value) {
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(value.$bin, "hex");
    return Object.fromEntries(keys.map((k) => [k, toWire(value[k])]));
  }
  return value;
}

function fromWire(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(fromWire);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).map((k) => [k, fromWire(value[k])]));
  }
  return value;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Every event a socket receives, in order, as [event, ...args] with binary as markers.
function record(socket) {
  const events = [];
  socket.taken = {};
  socket.waiters = [];
  socket.onAny((event, ...args) => {
    events.push([event, ...fromWire(args)]);
    for (const waiter of socket.waiters.splice(0)) waiter();
  });
  return events;
}

// Resolves with the socket once connected; rejects with {message, data} on connect_error.
function connected(socket) {
  return within(
    new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(socket));
      socket.once("connect_error", (err) => reject(err));
    }),
    WAIT,
    `connect to ${socket.nsp}`,
  );
}

// A socket of its own connection, connected (or the connect_error as {error: {...}}).
async function open(url, nsp, transports, extra = {}) {
  const socket = io(url + nsp, baseOptions(transports, extra));
  const events = record(socket);
  socket.events = events;
  await connected(socket);
  return socket;
}

// The outcome of connecting: {connected, id} or {connect_error: {message, data}}.
async function tryOpen(url, nsp, transports, extra = {}) {
  const socket = io(url + nsp, baseOptions(transports, extra));
  socket.events = record(socket);
  try {
    await connected(socket);
    return { socket, outcome: { connected: true } };
  } catch (err) {
    socket.close();
    return { socket, outcome: { connect_error: { message: err.message, data: err.data ?? null } } };
  }
}

// One Engine.IO connection shared by several namespaces.
function manager(url, transports, extra = {}) {
  return new Manager(url, baseOptions(transports, extra));
}

async function openOn(mgr, nsp, extra = {}) {
  const socket = mgr.socket(nsp, extra);
  socket.events = record(socket);
  socket.connect();
  await connected(socket);
  return socket;
}

// emitWithAck bounded by WAIT; binary markers are converted both ways.
async function call(socket, event, ...args) {
  try {
    return fromWire(await socket.timeout(WAIT).emitWithAck(event, ...toWire(args)));
  } catch (err) {
    throw new Error(`${event} on ${socket.nsp}: ${err.message}`);
  }
}

// Every argument of the acknowledgement (emitWithAck keeps only the first), bounded by WAIT.
function callAll(socket, event, ...args) {
  return within(
    new Promise((resolve, reject) => {
      socket.timeout(WAIT).emit(event, ...toWire(args), (err, ...answer) => {
        if (err) reject(err);
        else resolve(fromWire(answer));
      });
    }),
    WAIT + 500,
    `ack of ${event}`,
  );
}

// The outcome of an emit whose acknowledgement may never come: {ack: [...]} or {timeout: ms}.
function callOrTimeout(socket, ms, event, ...args) {
  return new Promise((resolve) => {
    socket.timeout(ms).emit(event, ...toWire(args), (err, ...answer) => {
      resolve(err ? { timeout: ms } : { ack: fromWire(answer) });
    });
  });
}

// Resolves when the socket received `event` (returns its args), or rejects after WAIT.
// Events are taken from the socket's record in order, so one that arrived before the call
// (in the same payload as the CONNECT reply, say) is not missed.
function nextEvent(socket, event, ms = WAIT) {
  return within(
    new Promise((resolve) => {
      const check = () => {
        const seen = socket.events.filter(([name]) => name === event);
        const taken = socket.taken[event] || 0;
        if (seen.length > taken) {
          socket.taken[event] = taken + 1;
          resolve(seen[taken].slice(1));
        } else {
          socket.waiters.push(check);
        }
      };
      check();
    }),
    ms,
    `event ${event} on ${socket.nsp}`,
  );
}

// The reason of the socket's next "disconnect" event (call it before causing one).
function disconnected(socket, ms = WAIT) {
  return within(
    new Promise((resolve) => socket.once("disconnect", (reason) => resolve(reason))),
    ms,
    `disconnect of ${socket.nsp}`,
  );
}

// Broadcasts sent before a "flush" have reached every socket once it got the flush.
async function flushed(via, sockets, namespaces) {
  const waits = sockets.map((s) => nextEvent(s, "flush"));
  await call(via, "flush", namespaces);
  await Promise.all(waits);
}

// Events received so far, without the flushes.
function received(socket) {
  return socket.events.filter(([event]) => event !== "flush");
}

// Answers whether a transport is the one a result reports.
function transportOf(socket) {
  const engine = socket.io.engine;
  return engine && engine.transport ? engine.transport.name : null;
}

// --- raw Engine.IO over WebSocket, for frames the official client would never send ---------

class RawSocket {
  constructor(url, { pong = true } = {}) {
    const wsUrl = url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
    this.ws = new WebSocket(wsUrl);
    this.frames = [];
    this.waiters = [];
    this.closed = null;
    this.openedAt = null;
    this.closedAt = null;
    this.pongs = 0;
    this.ws.on("message", (data, isBinary) => {
      const frame = isBinary ? { $bin: Buffer.from(data).toString("hex") } : data.toString();
      if (frame === "2") {
        if (pong) {
          this.ws.send("3");
          this.pongs += 1;
        }
        return;
      }
      this.frames.push(frame);
      this._wake();
    });
    this.ws.on("close", (code) => {
      this.closed = { code };
      this.closedAt = Date.now();
      this._wake();
    });
    this.ws.on("error", () => {});
  }

  _wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  _until(predicate, what, ms = WAIT) {
    return within(
      new Promise((resolve) => {
        const check = () => {
          const value = predicate();
          if (value !== undefined) resolve(value);
          else this.waiters.push(check);
        };
        check();
      }),
      ms,
      what,
    );
  }

  // The next text frame starting with `prefix` (consumed), or an error if the socket closed.
  next(prefix) {
    return this._until(() => {
      const i = this.frames.findIndex((f) => typeof f === "string" && f.startsWith(prefix));
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.closed) throw new Error(`closed before a frame starting with ${prefix}`);
      return undefined;
    }, `frame ${prefix}`);
  }

  async handshake() {
    const open = await this.next("0");
    this.openedAt = Date.now();
    return JSON.parse(open.slice(1));
  }

  // Joins a namespace with a raw "40"; resolves with the Socket.IO sid the server gave.
  async join(nsp) {
    const prefix = nsp === "/" ? "40" : `40${nsp},`;
    this.ws.send(prefix);
    const reply = await this.next(prefix);
    return JSON.parse(reply.slice(prefix.length)).sid;
  }

  send(frame) {
    this.ws.send(typeof frame === "string" ? frame : Buffer.from(frame.$bin, "hex"));
  }

  // Resolves with {code, afterMs} when the server closed the socket within `ms`, else null.
  async waitClosed(ms = WAIT) {
    try {
      await this._until(() => (this.closed ? true : undefined), "raw close", ms);
    } catch {
      return null;
    }
    return this.closed;
  }

  close() {
    if (!this.closed) this.ws.close();
  }
}

function rawSocket(url, options) {
  const raw = new RawSocket(url, options);
  return new Promise((resolve, reject) => {
    raw.ws.once("open", () => resolve(raw));
    raw.ws.once("error", reject);
  });
}

// Runs `scenarios[name](args)`, prints its result as one JSON line, and exits. Errors are
// printed as {"error": ...} with exit code 1, so pytest shows them.
function main(scenarios) {
  const [url, transports, name, argsJson] = process.argv.slice(2);
  const scenario = scenarios[name];
  const sockets = [];
  const track = (s) => {
    sockets.push(s);
    return s;
  };
  const done = (payload, code) => {
    for (const s of sockets) {
      if (s && typeof s.close === "function") s.close();
    }
    process.stdout.write(JSON.stringify(payload) + "\n", () => {
      setTimeout(() => process.exit(code), 50);
    });
  };
  const deadline = setTimeout(
    () => done({ error: `scenario ${name} exceeded ${SCRIPT_DEADLINE} ms` }, 1),
    SCRIPT_DEADLINE,
  );
  if (!scenario) {
    done({ error: `unknown scenario ${name}` }, 1);
    return;
  }
  // Everything opened through ctx is closed before the process exits.
  const ctx = {
    url,
    transports,
    args: argsJson ? JSON.parse(argsJson) : null,
    track,
    open: async (nsp, extra) => {
      const socket = track(io(url + nsp, baseOptions(transports, { ...extra, autoConnect: false })));
      socket.events = record(socket);
      socket.connect();
      await connected(socket);
      return socket;
    },
    tryOpen: async (nsp, extra) => {
      const { socket, outcome } = await tryOpen(url, nsp, transports, extra);
      track(socket);
      return { socket, outcome };
    },
    manager: (extra) => manager(url, transports, extra),
    openOn: async (mgr, nsp, extra) => track(await openOn(mgr, nsp, extra)),
    raw: async (options) => track(await rawSocket(url, options)),
  };
  scenario(ctx).then(
    (result) => {
      clearTimeout(deadline);
      done(result, 0);
    },
    (err) => {
      clearTimeout(deadline);
      done({ error: String(err && err.stack ? err.stack : err) }, 1);
    },
  );
}

module.exports = {
  WAIT,
  baseOptions,
  call,
  callAll,
  callOrTimeout,
  connected,
  disconnected,
  flushed,
  fromWire,
  main,
  manager,
  nextEvent,
  open,
  openOn,
  rawSocket,
  received,
  record,
  sleep,
  toWire,
  transportOf,
  tryOpen,
  within,
};
