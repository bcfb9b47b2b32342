// The reference configuration (settings_protocol's handlers): connect to "/" and "/custom"
// gets `auth` with the auth payload, `message` -> `message-back`, `message-with-ack` -> ack,
// any other namespace -> connect_error "Invalid namespace".
// Usage: node sio_reference.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const {
  callAll, main, nextEvent, received, sleep, transportOf, within, WAIT,
} = require("./sio_common");

const MESSAGES = [["hello"], [1, "two", { three: [3, null, true] }], [], [{ "é": "✓" }]];

async function exercise(socket) {
  const back = [];
  for (const args of MESSAGES) {
    const wait = nextEvent(socket, "message-back");
    socket.emit("message", ...args);
    back.push(await wait);
  }
  const acks = [];
  for (const args of MESSAGES) acks.push(await callAll(socket, "message-with-ack", ...args));
  return { back, acks };
}

async function upgraded(socket, transports) {
  // With polling+websocket, finish on the upgraded transport so both paths are exercised.
  if (transports === "polling,websocket" && transportOf(socket) !== "websocket") {
    await within(new Promise((resolve) => socket.io.engine.once("upgrade", resolve)), WAIT, "upgrade");
  }
  return transportOf(socket);
}

main({
  // One connection per namespace; args: {"auth": object or null}.
  async reference(ctx) {
    const extra = ctx.args.auth === null ? {} : { auth: ctx.args.auth };
    const result = {};
    for (const nsp of ["/", "/custom"]) {
      const socket = await ctx.open(nsp, extra);
      const auth = await nextEvent(socket, "auth");
      const exchanged = await exercise(socket);
      result[nsp] = {
        auth,
        ...exchanged,
        events: received(socket).map(([event]) => event),
        transport: await upgraded(socket, ctx.transports),
        id_ok: typeof socket.id === "string" && socket.id.length > 0,
      };
    }
    const { outcome } = await ctx.tryOpen("/random", extra);
    result.invalid = outcome;
    return result;
  },

  // "/", "/custom" and an invalid namespace on ONE connection.
  async multiplex(ctx) {
    const mgr = ctx.manager();
    const main = await ctx.openOn(mgr, "/", { auth: { who: "main" } });
    const custom = await ctx.openOn(mgr, "/custom", { auth: { who: "custom" } });
    const auths = [await nextEvent(main, "auth"), await nextEvent(custom, "auth")];
    const bad = mgr.socket("/nope");
    ctx.track(bad);
    const error = within(
      new Promise((resolve) => bad.once("connect_error", (err) => resolve(err.message))),
      WAIT,
      "connect_error",
    );
    bad.connect();
    const invalid = await error;
    await sleep(100);
    const acks = [
      await callAll(main, "message-with-ack", "to main"),
      await callAll(custom, "message-with-ack", "to custom"),
    ];
    return {
      auths,
      invalid,
      acks,
      same_engine: main.io.engine === custom.io.engine,
      connected: [main.connected, custom.connected, bad.connected],
      events: [received(main).map(([e]) => e), received(custom).map(([e]) => e)],
    };
  },

  // At the wire: the CONNECT reply comes first, then the `auth` event (a raw WebSocket).
  async wire(ctx) {
    const raw = await ctx.raw();
    await raw.handshake();
    raw.send('40{"token":"abc"}');
    const frames = [await raw.next("4"), await raw.next("4")];
    raw.send("40/custom,");
    frames.push(await raw.next("4"), await raw.next("4"));
    return { frames };
  },
});
