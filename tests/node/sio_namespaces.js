// Namespaces: middlewares refusing with ConnectionRefusedError(message, data), connect
// handlers returning False, dynamic namespaces (regex, sync and async callables).
// Usage: node sio_namespaces.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const {
  call, flushed, main, nextEvent, received, sleep,
} = require("./sio_common");

main({
  // args: {"auths": {label: auth or null}}; connects to /guarded with each.
  async guarded(ctx) {
    const outcomes = {};
    for (const [label, auth] of Object.entries(ctx.args.auths)) {
      const { socket, outcome } = await ctx.tryOpen("/guarded", auth === null ? {} : { auth });
      if (outcome.connected) {
        outcome.ready = await nextEvent(socket, "ready");
        await sleep(50);
        outcome.events = received(socket);
        socket.disconnect();
      }
      outcomes[label] = outcome;
    }
    const refuse = (await ctx.tryOpen("/refuse")).outcome;
    // Middlewares belong to their namespace: /features takes no token.
    const free = (await ctx.tryOpen("/features")).outcome;
    return { outcomes, refuse, free };
  },

  // A refused namespace leaves the others of the same connection working.
  async "refused-beside-connected"(ctx) {
    const mgr = ctx.manager();
    const main = await ctx.openOn(mgr, "/features");
    const guarded = mgr.socket("/guarded", { auth: { token: "wrong" } });
    ctx.track(guarded);
    const error = new Promise((resolve) => guarded.once("connect_error", (err) => resolve({ message: err.message, data: err.data })));
    guarded.connect();
    const refused = await error;
    const echo = await call(main, "sync-echo", "alive");
    return { refused, echo: echo.args, connected: [main.connected, guarded.connected] };
  },

  // args: {"suffix": unique}: regex, sync-callable and async-callable dynamic namespaces.
  async dynamic(ctx) {
    const n = ctx.args.suffix;
    const names = {
      regexA: `/dyn-${n}1`,
      regexB: `/dyn-${n}2`,
      syncOk: `/fn-sync-${n}`,
      asyncOk: `/fn-async-${n}`,
    };
    const sockets = {};
    for (const [label, nsp] of Object.entries(names)) {
      sockets[label] = await ctx.open(nsp, label === "syncOk" ? { auth: { ok: true } } : {});
    }
    const hello = {};
    const whoami = {};
    for (const [label, socket] of Object.entries(sockets)) {
      hello[label] = await nextEvent(socket, "hello");
      whoami[label] = await call(socket, "whoami");
    }
    // A parent's broadcast reaches its children, not other families.
    const family = await call(sockets.regexA, "family", "regex news");
    const asyncFamily = await call(sockets.asyncOk, "family", "async news");
    await sleep(100);
    for (const socket of Object.values(sockets)) await call(socket, "whoami");
    const news = Object.fromEntries(
      Object.entries(sockets).map(([label, s]) => [label, received(s).filter(([e]) => e === "family-news")]),
    );
    const refused = {};
    for (const [label, nsp, auth] of [
      ["regexLetters", `/dyn-x${n}`, null],
      ["regexSuffix", `/dyn-${n}/more`, null],
      ["regexPrefix", `/x/dyn-${n}`, null],
      ["syncNoAuth", `/fn-sync-refused-${n}`, null],
      ["syncFalse", `/fn-sync-refused2-${n}`, { ok: "true" }],
    ]) {
      refused[label] = (await ctx.tryOpen(nsp, auth === null ? {} : { auth })).outcome;
    }
    return { hello, whoami, family, asyncFamily, news, refused, ids: Object.fromEntries(Object.entries(sockets).map(([l, s]) => [l, s.id])) };
  },
});
