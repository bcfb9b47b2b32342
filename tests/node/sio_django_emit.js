// channels_sio.emit / async_emit called from Django views (tests/socketio/feature_urls.py)
// reach exactly the sockets they name.
// Usage: node sio_django_emit.js URL TRANSPORTS SCENARIO [ARGS_JSON]
const { call, main, nextEvent, received } = require("./sio_common");

async function post(url, view, body) {
  const response = await fetch(`${url}/_features/${view}/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(4000),
  });
  return { status: response.status, body: await response.json() };
}

main({
  // args: {"steps": [{"view": "emit-sync"|"emit-async", "body": {...}}]}. Clients: F1 on
  // /features in room "news", F2 on /features in "other", F3 on /features in no room, M on "/"
  // in room "news". After each step a sentinel emitted the same way to both namespaces marks
  // the end of what the step delivered (the node handles emits in order).
  async steps(ctx) {
    const clients = {
      F1: await ctx.open("/features", { auth: { rooms: ["news"] } }),
      F2: await ctx.open("/features", { auth: { rooms: ["other"] } }),
      F3: await ctx.open("/features"),
      M: await ctx.open("/"),
    };
    await call(clients.M, "join", ["news"]);
    await nextEvent(clients.M, "auth");
    const results = [];
    for (const { view, body } of ctx.args.steps) {
      for (const socket of Object.values(clients)) {
        socket.events.splice(0);
        socket.taken = {};
      }
      const answer = await post(ctx.url, view, body);
      const sentinels = Object.values(clients).map((s) => nextEvent(s, "django-flush"));
      for (const namespace of ["/features", "/"]) {
        await post(ctx.url, view, { event: "django-flush", namespace });
      }
      await Promise.all(sentinels);
      const got = {};
      for (const [name, socket] of Object.entries(clients)) {
        const events = received(socket).filter(([e]) => e !== "django-flush");
        if (events.length) got[name] = events;
      }
      results.push({ answer, got });
    }
    return results;
  },
});
