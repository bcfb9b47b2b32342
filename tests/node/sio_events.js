// Events against the feature handlers (tests/socketio/feature_sockets.py): plain `def`
// handlers, a handler that raises, events nobody handles, catch-all, class-based handlers,
// and server-side emits with invalid event names.
// Usage: node sio_events.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const {
  call, callAll, callOrTimeout, flushed, main, nextEvent, received,
} = require("./sio_common");

main({
  async "sync-handler"(ctx) {
    const socket = await ctx.open("/features");
    const answer = await call(socket, "sync-echo", "a", 2, { c: [3] });
    return { answer, sid: socket.id };
  },

  // The handlers raise, or return what cannot be sent (at once, and after a wait): no
  // acknowledgement, and the connection carries on.
  async raising(ctx) {
    const socket = await ctx.open("/features");
    const boom = await callOrTimeout(socket, 800, "boom", "x");
    const boomLater = await callOrTimeout(socket, 800, "boom-later", "x");
    const badAck = await callOrTimeout(socket, 800, "bad-ack");
    const badAckLater = await callOrTimeout(socket, 800, "bad-ack-later");
    const unhandled = await callOrTimeout(socket, 500, "no-such-event", "y");
    const after = await call(socket, "sync-echo", "after");
    return {
      boom,
      boom_later: boomLater,
      bad_ack: badAck,
      bad_ack_later: badAckLater,
      unhandled,
      after: after.args,
      connected: socket.connected,
    };
  },

  // A handler that waits, then one that cannot, sent back to back; then two events that set a
  // context variable.
  async order(ctx) {
    const socket = await ctx.open("/features");
    const acks = [];
    const first = call(socket, "waits-first", "a").then((answer) => {
      acks.push("a");
      return answer;
    });
    const second = call(socket, "at-once", "b").then((answer) => {
      acks.push("b");
      return answer;
    });
    const [a, b] = await Promise.all([first, second]);
    const contexts = [await call(socket, "set-context", "one"), await call(socket, "set-context", "two")];
    return { a, b, acks, contexts };
  },

  async "catch-all"(ctx) {
    const socket = await ctx.open("/catchall");
    return {
      caught: await call(socket, "anything", 1, "two", { three: 3 }),
      caught_bare: await call(socket, "bare"),
      known: await call(socket, "known", 3),
    };
  },

  async "class-based"(ctx) {
    const one = await ctx.open("/class", { auth: { who: "one" } });
    const two = await ctx.open("/class");
    const welcome = [await nextEvent(one, "welcome"), await nextEvent(two, "welcome")];
    const echo = await callAll(one, "echo", 1, { a: 2 }, "three");
    const add = await call(one, "sync_add", 2, 3);
    const shouted = await call(one, "shout", "hey");
    const heard = [await nextEvent(one, "shout"), await nextEvent(two, "shout")];
    // One more round trip on each: a duplicate shout would have arrived by now.
    await call(one, "echo");
    await call(two, "echo");
    return {
      welcome,
      echo,
      add,
      shouted,
      heard,
      events: [received(one), received(two)],
    };
  },

  // args: {"names": [...]}: each must make every emit path raise ValueError, sending nothing.
  async "bad-emit"(ctx) {
    const socket = await ctx.open("/features");
    const errors = [];
    for (const name of ctx.args.names) errors.push(await call(socket, "bad-emit", name));
    await flushed(socket, [socket], ["/features"]);
    return { errors, received: received(socket) };
  },
});
