// Connects the official engine.io-client to an echo server, sends messages, collects echoes.
// Usage: node eio_echo.js URL PATH TRANSPORTS(comma list) MESSAGES_JSON [WAIT_UPGRADE]
// A message is a JSON string (text) or {"binary": "<hex>"}. Prints one JSON line of results.
const { Socket } = require("engine.io-client");

const [url, path, transportList, messagesJson, waitUpgrade] = process.argv.slice(2);
const transports = transportList.split(",");
const messages = JSON.parse(messagesJson);
const result = { received: [], upgraded: false, transport: null, closeReason: null, handshake: null };

const socket = new Socket(url, { path, transports, upgrade: transports.length > 1 });
const deadline = setTimeout(() => finish("timeout"), 15000);

function decode(m) {
  // engine.io-parser yields undefined for an empty message.
  if (m === undefined) return "";
  if (typeof m === "string") return m;
  const bytes = m instanceof ArrayBuffer ? new Uint8Array(m) : new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
  return { binary: Buffer.from(bytes).toString("hex") };
}
function encode(m) {
  return typeof m === "string" ? m : Uint8Array.from(Buffer.from(m.binary, "hex"));
}
let finished = false;
function finish(why) {
  if (finished) return;
  finished = true;
  clearTimeout(deadline);
  result.transport = socket.transport ? socket.transport.name : null;
  result.end = why;
  console.log(JSON.stringify(result));
  socket.close();
  setTimeout(() => process.exit(0), 50);
}
function sendAll() {
  for (const m of messages) socket.send(encode(m));
}

socket.on("handshake", (data) => { result.handshake = data; });
socket.on("open", () => {
  if (waitUpgrade === "1") socket.once("upgrade", sendAll);
  else sendAll();
});
socket.on("upgrade", (t) => { result.upgraded = t.name; });
socket.on("message", (m) => {
  result.received.push(decode(m));
  if (result.received.length === messages.length) finish("done");
});
socket.on("close", (reason) => { result.closeReason = reason; finish("closed"); });
