// A tiny round-robin HTTP reverse proxy with no stickiness, for the cluster tests: request n
// goes to backend n % backends, whatever its sid. Listens on 127.0.0.1 (a free port), prints
// {"port": N} once listening, and logs every proxied request; GET /_proxy/log answers the log
// as JSON: [{n, backend, method, sid, status, body (for answers >= 400)}]. WebSocket upgrades
// are logged too (method "UPGRADE", status null) and all go to one backend, chosen with
// --upgrades-to=INDEX, or are refused (403) without it.
//
// Usage: node cluster_proxy.js [--upgrades-to=INDEX] BACKEND_PORT [BACKEND_PORT ...]. It exits
// when stdin closes, and after DEADLINE ms (60000) whatever happens.
const http = require("http");
const net = require("net");

const DEADLINE = 60000;
const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const backends = process.argv.slice(2).filter((a) => !a.startsWith("--")).map(Number);
const upgradesFlag = flags.find((f) => f.startsWith("--upgrades-to="));
const upgradesTo = upgradesFlag ? backends[Number(upgradesFlag.split("=")[1])] : null;
const log = [];
let counter = 0;
// No keep-alive towards the backends: every request is its own connection, so nothing but
// this counter decides where it goes.
const agent = new http.Agent({ keepAlive: false, maxSockets: 64 });

const server = http.createServer((req, res) => {
  if (req.url === "/_proxy/log") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(log));
    return;
  }
  const n = counter++;
  const backend = backends[n % backends.length];
  const sid = new URL(req.url, "http://proxy").searchParams.get("sid");
  const entry = { n, backend, method: req.method, sid, status: null, body: null };
  log.push(entry);
  const upstream = http.request(
    {
      host: "127.0.0.1",
      port: backend,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: `127.0.0.1:${backend}`, connection: "close" },
      agent,
      timeout: 30000,
    },
    (answer) => {
      const chunks = [];
      answer.on("data", (chunk) => chunks.push(chunk));
      answer.on("end", () => {
        const body = Buffer.concat(chunks);
        entry.status = answer.statusCode;
        if (answer.statusCode >= 400) entry.body = body.toString();
        const headers = { ...answer.headers };
        delete headers["transfer-encoding"];
        delete headers.connection;
        headers["content-length"] = body.length;
        res.writeHead(answer.statusCode, headers);
        res.end(body);
      });
    },
  );
  upstream.on("timeout", () => upstream.destroy(new Error("backend timeout")));
  upstream.on("error", (err) => {
    entry.status = 502;
    entry.body = String(err.message);
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  // The client went away before the answer: drop the backend request too.
  res.on("close", () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
});

const tunnels = new Set();

server.on("upgrade", (req, socket, head) => {
  const sid = new URL(req.url, "http://proxy").searchParams.get("sid");
  log.push({ n: null, backend: upgradesTo, method: "UPGRADE", sid, status: null, body: null });
  if (upgradesTo === null) {
    socket.end("HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n");
    return;
  }
  // A raw tunnel: the request head as it came, then bytes both ways.
  const upstream = net.connect(upgradesTo, "127.0.0.1", () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i];
      const value = name.toLowerCase() === "host" ? `127.0.0.1:${upgradesTo}` : req.rawHeaders[i + 1];
      lines.push(`${name}: ${value}`);
    }
    upstream.write(lines.join("\r\n") + "\r\n\r\n");
    if (head && head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  tunnels.add(upstream).add(socket);
  const end = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.on("error", end).on("close", end);
  socket.on("error", end).on("close", end);
});

function shutdown() {
  for (const tunnel of tunnels) tunnel.destroy();
  server.close();
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 50).unref();
}

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
setTimeout(shutdown, DEADLINE).unref();
process.stdin.on("end", shutdown);
process.stdin.resume();
