// A long-lived driver of official socket.io-client instances, for the cluster and recovery
// tests (tests/cluster, tests/recovery): pytest writes one JSON command per line on stdin and reads one JSON answer
// per line on stdout, {"id", "ok": true, "result"} or {"id", "ok": false, "error"}.
// Clients are named; each records every event it receives, answers "question" with its name
// (unless opened with noAck), and remembers its disconnect reason and connect error.
//
// Usage: node cluster_driver.js [DEADLINE_MS]. It exits when stdin closes, on {"cmd": "exit"},
// and after DEADLINE_MS (default 120000) whatever happens, closing every client first.
const readline = require("readline");
const { io } = require("socket.io-client");

const DEADLINE = Number(process.argv[2] || 120000); // ms
const WAIT = 5000; // ms: default bound of any single wait

const clients = new Map(); // name -> socket
const groups = new Map(); // prefix -> [socket]
const later = new Map(); // id -> promise of an acknowledgement (callLater)
let laterIds = 0;

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function options(transports, extra) {
  const list = (transports || "websocket").split(",");
  return {
    path: "/socket.io/",
    forceNew: true,
    multiplex: false,
    reconnection: false,
    timeout: WAIT,
    transports: list,
    upgrade: list.length > 1,
    ...extra,
  };
}

// A socket recording what happens to it; connect() resolves once connected.
function make(name, { url, nsp = "/cluster", transports, auth = {}, query, headers, noAck }) {
  const extra = { auth, autoConnect: false };
  if (query) extra.query = query;
  if (headers) extra.extraHeaders = headers;
  const socket = io(url + nsp, options(transports, extra));
  socket.label = name;
  socket.events = [];
  socket.waiters = [];
  socket.disconnectReason = null;
  socket.connectError = null;
  const wake = () => {
    for (const waiter of socket.waiters.splice(0)) waiter();
  };
  socket.wake = wake;
  socket.onAny((event, ...args) => {
    socket.events.push([event, ...args]);
    wake();
  });
  if (!noAck) socket.on("question", (...args) => args[args.length - 1](name));
  socket.on("disconnect", (reason, details) => {
    socket.disconnectReason = reason;
    // The WebSocket close code (1006 when the connection dropped without a close frame).
    socket.closeCode = details && details.context ? (details.context.code ?? null) : null;
    wake();
  });
  socket.on("connect_error", (err) => {
    socket.connectError = { message: err.message, description: String(err.description ?? "") };
    wake();
  });
  return socket;
}

function connect(socket, ms = WAIT) {
  return within(
    new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(socket));
      socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
      socket.connect();
    }),
    ms,
    `connect of ${socket.label}`,
  );
}

// Resolves once predicate() returns a value other than undefined (checked on every event).
function until(socket, predicate, ms, what) {
  return within(
    new Promise((resolve) => {
      const check = () => {
        const value = predicate();
        if (value !== undefined) resolve(value);
        else socket.waiters.push(check);
      };
      check();
    }),
    ms,
    what,
  );
}

function describe(socket) {
  const engine = socket.io.engine;
  return {
    id: socket.id ?? null,
    eio: engine ? engine.id : null,
    connected: socket.connected,
    transport: engine && engine.transport ? engine.transport.name : null,
    disconnectReason: socket.disconnectReason,
    closeCode: socket.closeCode ?? null,
    connectError: socket.connectError,
    // Connection state recovery, as the client sees it (socket.io-client keeps the private
    // session id and the last offset it received on the socket).
    recovered: socket.recovered ?? false,
    pid: socket._pid ?? null,
    offset: socket._lastOffset ?? null,
  };
}

function get(name) {
  const socket = clients.get(name);
  if (!socket) throw new Error(`no client named ${name}`);
  return socket;
}

const commands = {
  // Connect a named client; answers its ids ("eio" starts with the owner node's id).
  async open(c) {
    const socket = make(c.name, c);
    clients.set(c.name, socket);
    await connect(socket, c.ms || WAIT);
    return describe(socket);
  },

  // Like open, but a failure is an answer, not an error.
  async tryOpen(c) {
    const socket = make(c.name, c);
    clients.set(c.name, socket);
    try {
      await connect(socket, c.ms || WAIT);
    } catch (err) {
      return { ...describe(socket), error: err.message };
    }
    return describe(socket);
  },

  // emitWithAck bounded by c.ms; the first argument of the acknowledgement.
  async call(c) {
    const socket = get(c.name);
    return socket.timeout(c.ms || WAIT).emitWithAck(c.event, ...(c.args || []));
  },

  // Like call, without waiting: answers an id for "result".
  async callLater(c) {
    const socket = get(c.name);
    const id = ++laterIds;
    const promise = socket.timeout(c.ms || WAIT).emitWithAck(c.event, ...(c.args || []));
    promise.catch(() => {}); // reported by "result"
    later.set(id, promise);
    return id;
  },

  // The acknowledgement of the callLater numbered c.call.
  async result(c) {
    const promise = later.get(c.call);
    if (!promise) throw new Error(`no call ${c.call}`);
    later.delete(c.call);
    return within(promise, c.ms || WAIT, `result of call ${c.call}`);
  },

  // The client disconnects on purpose ("io client disconnect"); answers the reason.
  async leave(c) {
    const socket = get(c.name);
    socket.disconnectReason = null;
    socket.disconnect();
    return socket.disconnectReason;
  },

  // The events received so far, [event, ...args], optionally only one event; clear empties.
  async events(c) {
    const socket = get(c.name);
    const events = socket.events.filter(([e]) => !c.event || e === c.event);
    if (c.clear) socket.events.splice(0);
    return events;
  },

  // Waits until the client got `count` (default 1) events named c.event; answers all of them.
  async wait(c) {
    const socket = get(c.name);
    const count = c.count || 1;
    return until(
      socket,
      () => {
        const seen = socket.events.filter(([e]) => e === c.event);
        return seen.length >= count ? seen : undefined;
      },
      c.ms || WAIT,
      `${count} x ${c.event} on ${c.name}`,
    );
  },

  // Waits for the client's disconnect; answers its reason.
  async disconnected(c) {
    const socket = get(c.name);
    return until(
      socket,
      () => (socket.disconnectReason === null ? undefined : socket.disconnectReason),
      c.ms || WAIT,
      `disconnect of ${c.name}`,
    );
  },

  async state(c) {
    return describe(get(c.name));
  },

  // Loses the connection as a network drop does, keeping the client's pid and offset: a
  // WebSocket's TCP connection is destroyed ("transport close" on both sides), a polling
  // transport is closed by the client (the server sees "transport close", the client
  // "forced close"). Answers the client's disconnect reason.
  async drop(c) {
    const socket = get(c.name);
    socket.disconnectReason = null;
    const transport = socket.io.engine.transport;
    if (transport.name === "websocket" && transport.ws && transport.ws._socket) {
      transport.ws._socket.destroy();
    } else {
      socket.io.engine.close();
    }
    return until(
      socket,
      () => (socket.disconnectReason === null ? undefined : socket.disconnectReason),
      c.ms || WAIT,
      `drop of ${c.name}`,
    );
  },

  // Connects a dropped client again (with its pid and offset, as socket.io-client does);
  // c.url moves it to another server, c.headers replaces its extra headers (another user's
  // cookie). Answers its state, "recovered" included.
  async reconnect(c) {
    const socket = get(c.name);
    if (c.url) socket.io.uri = c.url;
    if (c.headers) socket.io.opts.extraHeaders = c.headers;
    if (c.clear) socket.events.splice(0);
    socket.disconnectReason = null;
    await connect(socket, c.ms || WAIT);
    return describe(socket);
  },

  async close(c) {
    const socket = clients.get(c.name);
    if (socket) socket.close();
    clients.delete(c.name);
    return true;
  },

  // Opens c.count websocket clients named <prefix><i>, spread round-robin over c.urls, at most
  // c.parallel connecting at once; they record nothing but how many times each event came.
  async openMany(c) {
    const sockets = [];
    groups.set(c.prefix, sockets);
    let next = 0;
    const worker = async () => {
      while (next < c.count) {
        const i = next++;
        const socket = io(c.urls[i % c.urls.length] + (c.nsp || "/cluster"), {
          ...options("websocket", { auth: c.auth || {} }),
          autoConnect: false,
        });
        socket.counts = {};
        socket.onAny((event) => {
          socket.counts[event] = (socket.counts[event] || 0) + 1;
        });
        sockets.push(socket);
        await within(
          new Promise((resolve, reject) => {
            socket.once("connect", resolve);
            socket.once("connect_error", reject);
            socket.connect();
          }),
          c.ms || 15000,
          `connect of ${c.prefix}${i}`,
        );
      }
    };
    await Promise.all(Array.from({ length: c.parallel || 50 }, worker));
    return sockets.filter((s) => s.connected).length;
  },

  // How many clients of a group got c.event, by count: {"<times>": clients}. Waits (bounded)
  // until every client got it at least c.atLeast times, when asked to.
  async countMany(c) {
    const sockets = groups.get(c.prefix) || [];
    const tally = () => {
      const counts = {};
      for (const s of sockets) {
        const n = s.counts[c.event] || 0;
        counts[n] = (counts[n] || 0) + 1;
      }
      return counts;
    };
    const deadline = Date.now() + (c.ms || WAIT);
    while (c.atLeast && Date.now() < deadline) {
      if (sockets.every((s) => (s.counts[c.event] || 0) >= c.atLeast)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return tally();
  },

  async closeMany(c) {
    for (const socket of groups.get(c.prefix) || []) socket.close();
    groups.delete(c.prefix);
    return true;
  },

  async exit() {
    setTimeout(shutdown, 10);
    return true;
  },
};

function shutdown() {
  for (const socket of clients.values()) socket.close();
  for (const sockets of groups.values()) for (const socket of sockets) socket.close();
  setTimeout(() => process.exit(0), 50);
}

function answer(payload) {
  process.stdout.write(JSON.stringify(payload) + "\n");
}

setTimeout(shutdown, DEADLINE).unref();
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    answer({ id: null, ok: false, error: `bad JSON: ${err.message}` });
    return;
  }
  const handler = commands[command.cmd];
  if (!handler) {
    answer({ id: command.id, ok: false, error: `unknown command ${command.cmd}` });
    return;
  }
  handler(command).then(
    (result) => answer({ id: command.id, ok: true, result: result === undefined ? null : result }),
    (err) => answer({ id: command.id, ok: false, error: String(err && err.message ? err.message : err) }),
  );
});
lines.on("close", shutdown);
