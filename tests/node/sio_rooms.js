// Rooms and broadcasts: every operator flag, server-side socket management (fetch_sockets,
// sockets_join / sockets_leave / disconnect_sockets), each recipient exactly once.
// Usage: node sio_rooms.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const {
  call, disconnected, flushed, main, nextEvent, received, sleep,
} = require("./sio_common");

const FLUSH_NAMESPACES = ["/features", "/custom", "/"];

function reset(socket) {
  socket.events.splice(0);
  socket.taken = {};
}

// A on /features (rooms r1) and A_custom on /custom over the SAME connection; B (r1, r2),
// C (r2), D (none) on /features; O on "/" in room "lobby".
async function cast(ctx) {
  const mgr = ctx.manager();
  const clients = {};
  clients.A = await ctx.openOn(mgr, "/features", { auth: { rooms: ["r1"] } });
  clients.A_custom = await ctx.openOn(mgr, "/custom");
  clients.B = await ctx.open("/features", { auth: { rooms: ["r1", "r2"] } });
  clients.C = await ctx.open("/features", { auth: { rooms: "r2" } });
  clients.D = await ctx.open("/features");
  clients.O = await ctx.open("/");
  await call(clients.O, "join", ["lobby"]);
  const ids = Object.fromEntries(Object.entries(clients).map(([name, s]) => [name, s.id]));
  const all = Object.values(clients);
  const resolve = (value) => {
    if (typeof value === "string" && value.startsWith("$")) return ids[value.slice(1)];
    if (Array.isArray(value)) return value.map(resolve);
    return value;
  };
  await flushed(clients.D, all, FLUSH_NAMESPACES);
  const results = {};
  for (const { label, sender, spec, before } of ctx.args.casts) {
    for (const socket of all) reset(socket);
    if (before) {
      for (const [who, event, ...args] of before) await call(clients[who], event, ...args);
    }
    const resolved = { ...spec, to: resolve(spec.to), except: resolve(spec.except) };
    const sent = await call(clients[sender || "D"], "cast", resolved);
    await flushed(clients.D, all, FLUSH_NAMESPACES);
    results[label] = { sent, got: {} };
    for (const [name, socket] of Object.entries(clients)) {
      const events = received(socket).filter(([e]) => e !== "auth");
      if (events.length) results[label].got[name] = events;
    }
  }
  return results;
}

function describeIds(sockets, ids) {
  const names = Object.fromEntries(Object.entries(ids).map(([name, id]) => [id, name]));
  return sockets.map((s) => ({
    ...s,
    id: names[s.id] || s.id,
    rooms: s.rooms.map((room) => names[room] || room),
  }));
}

main({
  cast,

  // disconnect_sockets(close=True) on a room: the whole connection of each member goes
  // (other namespaces on it too); the others stay.
  async "disconnect-close"(ctx) {
    const mgr = ctx.manager();
    const A = await ctx.openOn(mgr, "/features", { auth: { rooms: ["doomed"] } });
    const A_main = await ctx.openOn(mgr, "/");
    const B = await ctx.open("/features");
    const ids = [A.id, A_main.id, B.id];
    const reasons = [disconnected(A), disconnected(A_main)];
    const ack = await call(B, "disconnect-sockets", { to: "doomed", close: true });
    const client = await Promise.all(reasons);
    const report = await call(B, "report", ids.slice(0, 2).map((id) => `disconnect:${id}`));
    const remaining = (await call(B, "fetch", {})).map((s) => s.id);
    return { ack, client, server: Object.values(report), remaining: remaining.map((id) => ids.indexOf(id)) };
  },

  async rooms(ctx) {
    const socket = await ctx.open("/features");
    return {
      joined: await call(socket, "join", ["a", "b"]),
      again: await call(socket, "join", ["a", "c"]),
      left: await call(socket, "leave", "b"),
      leftUnknown: await call(socket, "leave", "never-joined"),
    };
  },

  // fetch_sockets, sockets_join, sockets_leave, disconnect_sockets, from another client.
  async "server-side"(ctx) {
    const A = await ctx.open("/features", { auth: { rooms: ["r1"], data: { name: "A" } } });
    const B = await ctx.open("/features", { auth: { rooms: ["r1"] }, query: { foo: "bar" } });
    const C = await ctx.open("/features", {
      auth: { data: { name: "C", n: 3 } },
      extraHeaders: { "x-feature": "yes" },
    });
    const ids = { A: A.id, B: B.id, C: C.id };
    const fetched = {
      r1: describeIds(await call(C, "fetch", { to: "r1" }), ids),
      all: describeIds(await call(C, "fetch", {}), ids),
      exceptR1: describeIds(await call(C, "fetch", { except: "r1" }), ids),
      fromSocket: describeIds(await call(C, "fetch", { from: "socket" }), ids),
    };
    const joined = await call(C, "sockets-join", { to: "r1", rooms: ["r3", "r4"] });
    const afterJoin = describeIds(await call(C, "fetch", {}), ids).map((s) => [s.id, s.rooms]);
    const left = await call(C, "sockets-leave", { rooms: ["r1", "r4"] });
    const afterLeave = describeIds(await call(C, "fetch", {}), ids).map((s) => [s.id, s.rooms]);
    const waits = [disconnected(A), disconnected(B)];
    const disconnectedAck = await call(C, "disconnect-sockets", { to: "r3" });
    const reasons = await Promise.all(waits);
    const report = await call(C, "report", [`disconnect:${ids.A}`, `disconnect:${ids.B}`]);
    const remaining = describeIds(await call(C, "fetch", {}), ids).map((s) => s.id);
    return {
      fetched,
      joined,
      afterJoin,
      left,
      afterLeave,
      disconnectedAck,
      reasons,
      serverReasons: Object.values(report),
      remaining,
      connected: [A.connected, B.connected, C.connected],
    };
  },
});
