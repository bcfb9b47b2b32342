// Binary data (Buffers) anywhere in nested arguments, both ways, in events and in
// acknowledgements, several attachments in one packet.
// Usage: node sio_binary.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const {
  call, callAll, flushed, fromWire, main, nextEvent, received, toWire,
} = require("./sio_common");

main({
  // args: {"payload": [...]} with {"$bin": hex} markers.
  async echo(ctx) {
    const socket = await ctx.open("/features");
    const payload = ctx.args.payload;
    const ack = await callAll(socket, "binary-echo", ...payload);
    const back = await nextEvent(socket, "binary-back");
    const types = await call(socket, "binary-types", ...payload);
    return { ack, back, types, received: received(socket) };
  },

  async make(ctx) {
    const socket = await ctx.open("/features");
    const ack = await callAll(socket, "binary-make");
    const made = await nextEvent(socket, "binary-made");
    return { ack, made, received: received(socket) };
  },

  // The server asks the client with binary, the client acknowledges with binary.
  async "client-ack"(ctx) {
    const socket = await ctx.open("/features");
    socket.on("q-echo", (...args) => {
      const ack = args.pop();
      ack(...toWire(fromWire(args)), Buffer.from("from client"));
    });
    const outcome = await call(socket, "ask", {
      mode: "with_ack", event: "q-echo", args: ctx.args.payload, timeout: 3,
    });
    return { outcome };
  },

  // A binary broadcast to a room: each member once, others nothing.
  async broadcast(ctx) {
    const a = await ctx.open("/features", { auth: { rooms: ["bin"] } });
    const b = await ctx.open("/features", { auth: { rooms: ["bin"] } });
    const c = await ctx.open("/features");
    await call(c, "cast", { to: "bin", event: "bin-news", args: ctx.args.payload });
    await flushed(c, [a, b, c], ["/features"]);
    return { received: [received(a), received(b), received(c)] };
  },
});
