// Acknowledgements both ways: client->server (message-with-ack), server->client
// (socket.emit with a callback, socket.emit_with_ack with a timeout), and broadcasts with
// acknowledgements (sio.timeout(ms).emit_with_ack) gathering every client's answer.
// Usage: node sio_acks.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const {
  call, callAll, disconnected, fromWire, main, nextEvent, sleep, toWire,
} = require("./sio_common");

// How this client answers the server's questions.
function answer(socket, name) {
  socket.on("q-echo", (...args) => {
    const ack = args.pop();
    ack(...toWire(fromWire(args)));
  });
  socket.on("q-none", (ack) => ack());
  socket.on("q-late", (delay, ack) => setTimeout(() => ack("late"), delay));
  socket.on("q-never", () => {});
  socket.on("q-bye", () => socket.disconnect());
  socket.on("poll", (question, ack) => {
    if (name.startsWith("late")) setTimeout(() => ack({ name, question }), 1500);
    else if (!name.startsWith("mute")) ack({ name, question });
  });
}

main({
  async "client-to-server"(ctx) {
    const socket = await ctx.open("/");
    return {
      none: await callAll(socket, "message-with-ack"),
      one: await callAll(socket, "message-with-ack", "one"),
      many: await callAll(socket, "message-with-ack", 1, null, false, { deep: [{ x: "y" }] }),
    };
  },

  async "server-to-client"(ctx) {
    const socket = await ctx.open("/features");
    answer(socket, "me");
    const asks = {};
    const ask = (key, spec) => call(socket, "ask", spec).then((outcome) => { asks[key] = outcome; });
    await ask("many", { mode: "with_ack", event: "q-echo", args: ["a", 1, { b: [2] }], timeout: 2 });
    await ask("one", { mode: "with_ack", event: "q-echo", args: ["single"], timeout: 2 });
    await ask("none", { mode: "with_ack", event: "q-none", timeout: 2 });
    await ask("no-timeout", { mode: "with_ack", event: "q-echo", args: ["waits"] });
    await ask("callback", { mode: "callback", event: "q-echo", args: ["x", { y: 2 }] });
    await ask("sync-callback", { mode: "sync_callback", event: "q-echo", args: ["z"] });
    await ask("late", { mode: "with_ack", event: "q-late", args: [700], timeout: 0.3 });
    await ask("never", { mode: "with_ack", event: "q-never", timeout: 0.3 });
    // The late acknowledgement arrives now, for an id the server forgot: ignored.
    await sleep(600);
    const still = await call(socket, "sync-echo", "still");
    return { asks, still: still.args, connected: socket.connected };
  },

  // The client disconnects while the server awaits its acknowledgement.
  async "ack-disconnected"(ctx) {
    const watcher = await ctx.open("/features");
    const socket = await ctx.open("/features");
    answer(socket, "me");
    const id = socket.id;
    socket.emit("ask", { mode: "with_ack", event: "q-bye", timeout: 3 });
    const reason = await disconnected(socket);
    const report = await call(watcher, "report", [`ask:${id}`, `disconnect:${id}`]);
    return { reason, report };
  },

  // args: {"names": [...], "spec": {...}, "asker": index}; each client answers "poll" as its
  // name says (late*: after 1.5 s, mute*: never). Returns the asker's outcome and the polls
  // each client got.
  async broadcast(ctx) {
    const { names, spec, rooms } = ctx.args;
    const sockets = [];
    for (const name of names) {
      const socket = await ctx.open("/features", { auth: { rooms: rooms[name] || [] } });
      answer(socket, name);
      sockets.push(socket);
    }
    const asker = sockets[ctx.args.asker || 0];
    const started = Date.now();
    const outcome = await call(asker, "ask-all", { event: "poll", args: ["q?"], ...spec });
    const tookMs = Date.now() - started;
    if (outcome.responses) outcome.responses.sort((a, b) => (a.name < b.name ? -1 : 1));
    // Late answers, if any, arrive meanwhile and are ignored; everyone is still connected.
    await sleep(names.some((n) => n.startsWith("late")) ? 1200 : 0);
    for (const socket of sockets) await call(socket, "sync-echo");
    return {
      outcome,
      took_ms: tookMs,
      polled: Object.fromEntries(
        names.map((name, i) => [name, sockets[i].events.filter(([e]) => e === "poll").length]),
      ),
      connected: sockets.map((s) => s.connected),
    };
  },
});
