// Disconnections and the reasons both sides give: client namespace disconnect, server
// namespace disconnect, forced server close, transport close, ping timeout.
// Usage: node sio_disconnect.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const { call, callAll, disconnected, main, sleep } = require("./sio_common");

// The server-side reasons (and handler runs) of these socket ids, asked through `via`.
async function serverSide(via, ids) {
  const keys = ids.flatMap((id) => [`disconnect:${id}`, `disconnects:${id}`]);
  const report = await call(via, "report", keys);
  return ids.map((id) => [report[`disconnect:${id}`], report[`disconnects:${id}`]]);
}

// "/features" and "/" on one connection, its manager made with `options`.
async function featuresAndMain(ctx, options) {
  const mgr = ctx.manager(options);
  const features = await ctx.openOn(mgr, "/features");
  const main = await ctx.openOn(mgr, "/");
  return { mgr, features, main };
}

// `leave(features)` disconnects /features alone: "/" on the same connection stays.
async function featuresLeaves(ctx, leave) {
  const { features, main } = await featuresAndMain(ctx);
  const id = features.id;
  const reason = disconnected(features);
  leave(features);
  const client = await reason;
  const server = await serverSide(main, [id]);
  return {
    client,
    server,
    after: await callAll(main, "message-with-ack", "still"),
    connected: [features.connected, main.connected],
  };
}

main({
  // The client leaves /features.
  "client-namespace": (ctx) => featuresLeaves(ctx, (features) => features.disconnect()),

  // socket.disconnect() on the server.
  "server-namespace": (ctx) =>
    featuresLeaves(ctx, (features) => features.emit("disconnect-me", false, () => {})),

  // socket.disconnect(close=True): every namespace of the connection goes, then the connection.
  async "forced-server-close"(ctx) {
    const watcher = await ctx.open("/features");
    const { features, main } = await featuresAndMain(ctx, {
      reconnection: true,
      reconnectionDelay: 100,
    });
    const ids = [features.id, main.id];
    const reasons = [disconnected(features), disconnected(main)];
    features.emit("disconnect-me", true, () => {});
    const client = await Promise.all(reasons);
    // A client disconnected by the server does not come back on its own.
    await sleep(500);
    const server = await serverSide(watcher, ids);
    return { client, server, reconnected: [features.connected, main.connected] };
  },

  // The client drops the Engine.IO connection: every socket of it gets "transport close".
  async "transport-close"(ctx) {
    const watcher = await ctx.open("/features");
    const { mgr, features, main } = await featuresAndMain(ctx);
    const ids = [features.id, main.id];
    mgr.engine.close();
    const server = await serverSide(watcher, ids);
    return { server };
  },

  // A raw client that stops answering pings.
  async "ping-timeout"(ctx) {
    const watcher = await ctx.open("/features");
    const raw = await ctx.raw({ pong: false });
    await raw.handshake();
    const id = await raw.join("/features");
    const closed = await raw.waitClosed(3000);
    const server = await serverSide(watcher, [id]);
    return { closed: closed !== null, afterMs: raw.closedAt - raw.openedAt, server };
  },
});
