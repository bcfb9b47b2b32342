// Raw Engine.IO frames over a WebSocket (the `ws` package) beside official clients: malformed
// Socket.IO packets close only the sender's connection; sessions that join no namespace are
// closed after connect_timeout.
// Usage: node sio_raw.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const { Socket: EngineSocket } = require("engine.io-client");
const { call, callAll, main, within, WAIT } = require("./sio_common");

main({
  // args: {"frames": [...], "closes": bool}: a raw client joined to /features sends the frames
  // (strings, or {"$bin": hex} binary frames); an official client on the same server watches.
  async malformed(ctx) {
    const watcher = await ctx.open("/features");
    const raw = await ctx.raw();
    await raw.handshake();
    const id = await raw.join("/features");
    const sentAt = Date.now();
    for (const frame of ctx.args.frames) raw.send(frame);
    const closed = await raw.waitClosed(ctx.args.closes ? WAIT : 1000);
    // A connection that stayed open has no reason to wait for.
    const report = await call(watcher, "report", [`disconnect:${id}`], closed ? 3 : 0);
    // The watcher keeps working, and the server takes new connections.
    const still = await call(watcher, "sync-echo", "still");
    const fresh = await ctx.open("/");
    const freshAck = await callAll(fresh, "message-with-ack", "fresh");
    return {
      closed: closed !== null,
      closeCode: closed ? closed.code : null,
      afterMs: closed ? raw.closedAt - sentAt : null,
      leftover: raw.frames,
      serverReason: report[`disconnect:${id}`],
      still: still.args,
      watcherConnected: watcher.connected,
      freshAck,
    };
  },

  // A raw session answering pings that never sends "40" (args.join: a namespace it tries).
  async "connect-timeout-raw"(ctx) {
    const raw = await ctx.raw();
    const handshake = await raw.handshake();
    let reply = null;
    if (ctx.args && ctx.args.join) {
      raw.send(`40${ctx.args.join},`);
      reply = await raw.next("4");
    }
    const closed = await raw.waitClosed(3000);
    return {
      closed: closed !== null,
      afterMs: closed ? raw.closedAt - raw.openedAt : null,
      pongs: raw.pongs,
      reply,
      handshake,
    };
  },

  // A raw session that joins "/" in time stays open past connect_timeout.
  async "connect-timeout-joined"(ctx) {
    const raw = await ctx.raw();
    await raw.handshake();
    await raw.join("/");
    const closed = await raw.waitClosed(1800);
    return { closed: closed !== null, pongs: raw.pongs };
  },

  // The official engine.io-client on the Socket.IO path: it opens, then never joins.
  async "connect-timeout-eio"(ctx) {
    const transports = ctx.transports.split(",");
    const socket = new EngineSocket(ctx.url, { path: "/socket.io/", transports, upgrade: false });
    ctx.track(socket);
    const opened = await within(new Promise((r) => socket.once("open", () => r(Date.now()))), WAIT, "open");
    const reason = await within(
      new Promise((r) => socket.once("close", (why) => r([why, Date.now()]))),
      3000,
      "close",
    );
    return { reason: reason[0], afterMs: reason[1] - opened };
  },
});
