// Node socket.io with the handlers of bench/servers/pysio_app.py, for the benchmarks' optional
// Node column: "echo" acknowledges with its arguments; "echo_emit" sends them back to the sender
// as an "echo" event; "bcast" emits "tick" with its data to every socket. Same ping timings,
// payload limit and CORS as the other servers; no compression (permessage-deflate off, as for
// uvicorn and daphne; HTTP compression off).
//
// SOCKETIO_RECOVERY=1 turns connectionStateRecovery on (socket.io's defaults: 2 minutes, the
// middlewares skipped), with the default in-memory adapter, which then records every packet
// sent without an acknowledgement, socket.emit included, as channels_sio's stores do.
//
//   NODE_PATH=bench/client/node_modules [SOCKETIO_RECOVERY=1] node bench/servers/socketio_server.js --port 8000
//
// socket.io comes from bench/client's package-lock.json (npm ci there), hence NODE_PATH.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

function portFromArgs(argv) {
  const at = argv.indexOf("--port");
  const port = at === -1 ? NaN : Number(argv[at + 1]);
  if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: node socketio_server.js --port PORT");
    process.exit(2);
  }
  return port;
}

const server = http.createServer();
const io = new Server(server, {
  cors: { origin: "*" },
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
  perMessageDeflate: false,
  httpCompression: false,
  ...(process.env.SOCKETIO_RECOVERY === "1"
    ? { connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true } }
    : {}),
});

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
  });
  socket.on("echo_emit", (...args) => {
    socket.emit("echo", ...args);
  });
  socket.on("bcast", (data) => {
    io.emit("tick", data);
  });
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}

server.listen(portFromArgs(process.argv), "127.0.0.1");
