// Disconnections and the reasons both sides give: client namespace disconnect, server
// namespace disconnect, forced server close, transport close, ping timeout.
// Usage: node sio_disconnect.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const {
  call, callAll, disconnected, main, sleep, within, WAIT,
} = require("./sio_common");

// The server-side reasons (and handler runs) of these socket ids, asked through `via`.
async function serverSide(via, ids) {
  const keys = ids.flatMap((id) => [`disconnect:${id}`, `disconnects:${id}`]);
  const report = await call(via, "report", keys);
  return ids.map((id) => [report[`disconnect:${id}`], report[`disconnects:${id}`]]);
}

main({
  // The client leaves /features; "/" on the same connection stays.
  async "client-namespace"(ctx) {
    const mgr = ctx.manager();
    const features = await ctx.openOn(mgr, "/features");
    const main = await ctx.openOn(mgr, "/");
    const id = features.id;
    const reason = disconnected(features);
    features.disconnect();
    const client = await reason;
    const server = await serverSide(main, [id]);
    return {
      client,
      server,
      after: await callAll(main, "message-with-ack", "still"),
      connected: [features.connected, main.connected],
    };
  },

  // socket.disconnect() on the server: /features goes, "/" on the same connection stays.
  async "server-namespace"(ctx) {
    const mgr = ctx.manager();
    const features = await ctx.openOn(mgr, "/features");
    const main = await ctx.openOn(mgr, "/");
    const id = features.id;
    const reason = disconnected(features);
    features.emit("disconnect-me", false, () => {});
    const client = await reason;
    const server = await serverSide(main, [id]);
    return {
      client,
      server,
      after: await callAll(main, "message-with-ack", "still"),
      connected: [features.connected, main.connected],
    };
  },

  // socket.disconnect(close=True): every namespace of the connection goes, then the connection.
  async "forced-server-close"(ctx) {
    const watcher = await ctx.open("/features");
    const mgr = ctx.manager({ reconnection: true, reconnectionDelay: 100 });
    const features = await ctx.openOn(mgr, "/features");
    const main = await ctx.openOn(mgr, "/");
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
    const mgr = ctx.manager();
    const features = await ctx.openOn(mgr, "/features");
    const main = await ctx.openOn(mgr, "/");
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
