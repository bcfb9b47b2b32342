// The chat demo's client: socket.io-client on the "/chat" namespace, plain DOM, no framework.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const root = $("chat");
  const me = root.dataset.username;
  const ui = {
    rooms: $("room-list"),
    state: $("connection-state"),
    room: $("room"),
    title: $("room-title"),
    members: $("members"),
    leave: $("leave"),
    messages: $("messages"),
    typing: $("typing"),
    form: $("composer"),
    text: $("text"),
    send: $("composer").querySelector("button"),
  };
  const ACK_TIMEOUT = 5000; // ms
  const TYPING_IDLE = 2000; // ms without a keystroke: "stopped typing"
  const TYPING_EXPIRE = 6000; // ms: forget a typist whose "stopped" notice got lost

  const socket = io("/chat", { path: root.dataset.socketioPath });
  let currentRoom = null;

  // -- connection state ------------------------------------------------------------------

  function setState(state, detail = "") {
    ui.state.dataset.state = state;
    root.dataset.state = state;
    ui.state.textContent = detail ? `${state} (${detail})` : state;
    const usable = state === "connected" && currentRoom !== null;
    ui.text.disabled = ui.send.disabled = !usable;
  }

  // Messages shown since the connection dropped: with connection state recovery, those the
  // server replays arrive just before "connect".
  let live = false;
  let missed = 0;

  socket.on("connect", () => {
    live = true;
    if (socket.recovered) {
      // The same server-side socket, rooms and all: nothing to join again.
      setState("connected", `recovered, ${missed} missed message${missed === 1 ? "" : "s"}`);
    } else {
      setState("connected");
      if (currentRoom) joinRoom(currentRoom); // a new server-side socket: join again
    }
  });
  socket.on("disconnect", (reason) => {
    live = false;
    missed = 0;
    setState("disconnected", reason);
  });
  socket.on("connect_error", (err) => {
    // Refused by the server (not logged in): socket.io-client does not retry those.
    if (!socket.active) setState("disconnected", err.message);
  });
  socket.io.on("reconnect_attempt", (attempt) => setState("reconnecting", `attempt ${attempt}`));
  socket.io.on("reconnect_failed", () => setState("disconnected", "gave up"));

  // -- rooms -----------------------------------------------------------------------------

  socket.on("rooms", (rooms) => {
    ui.rooms.replaceChildren(
      ...rooms.map(({ name, members }) => {
        const button = el("button", { type: "button", className: "room-button" });
        button.dataset.room = name;
        button.append(el("span", { textContent: `# ${name}` }));
        button.append(el("span", { className: "count", textContent: String(members) }));
        button.classList.toggle("active", name === currentRoom);
        button.addEventListener("click", () => joinRoom(name));
        const item = el("li");
        item.append(button);
        return item;
      }),
    );
  });

  function joinRoom(room) {
    socket.timeout(ACK_TIMEOUT).emit("join", room, (err, reply) => {
      if (err || reply.error) return notice(err ? "the server did not answer" : reply.error);
      currentRoom = reply.room;
      ui.room.dataset.room = currentRoom;
      ui.title.textContent = `# ${currentRoom}`;
      ui.leave.hidden = false;
      ui.text.placeholder = `Message #${currentRoom}`;
      ui.messages.replaceChildren();
      reply.history.forEach((message) => showMessage(message));
      showMembers(reply.members);
      typists.clear();
      showTyping();
      markActiveRoom();
      setState(ui.state.dataset.state);
      ui.text.focus();
    });
  }

  ui.leave.addEventListener("click", () => {
    socket.emit("leave");
    currentRoom = null;
    ui.room.dataset.room = "";
    ui.title.textContent = "Pick a room";
    ui.leave.hidden = true;
    ui.text.placeholder = "Join a room to chat";
    ui.members.textContent = "";
    ui.messages.replaceChildren();
    typists.clear();
    showTyping();
    markActiveRoom();
    setState(ui.state.dataset.state);
  });

  function markActiveRoom() {
    for (const button of ui.rooms.querySelectorAll("button")) {
      button.classList.toggle("active", button.dataset.room === currentRoom);
    }
  }

  function showMembers(names) {
    ui.members.textContent = `${names.length} here: ${names.join(", ")}`;
  }

  socket.on("joined", ({ room, user, members }) => {
    if (room !== currentRoom) return;
    notice(`${user} joined`);
    showMembers(members);
  });
  socket.on("left", ({ room, user, members }) => {
    if (room !== currentRoom) return;
    notice(`${user} left`);
    showMembers(members);
    typists.delete(user);
    showTyping();
  });

  // -- messages --------------------------------------------------------------------------

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (!text || !currentRoom) return;
    ui.text.value = "";
    stopTyping();
    const item = showMessage({ user: me, text, time: null });
    const tick = item.querySelector(".tick");
    socket.timeout(ACK_TIMEOUT).emit("message", currentRoom, text, (err, reply) => {
      if (err || reply.error) {
        tick.textContent = "not sent ✗";
        tick.title = err ? "the server did not answer" : reply.error;
        item.classList.add("failed");
        return;
      }
      tick.textContent = "sent ✓";
      item.querySelector("time").replaceWith(timeElement(reply.time));
    });
  });

  socket.on("message", (message) => {
    if (message.room !== currentRoom) return;
    if (!live) missed += 1;
    typists.delete(message.user);
    showTyping();
    showMessage(message);
  });

  function showMessage({ user, text, time }) {
    const own = user === me;
    const item = el("li", { className: own ? "message own" : "message" });
    const meta = el("div", { className: "meta" });
    meta.append(el("span", { className: "author", textContent: user }), timeElement(time));
    if (own) meta.append(el("span", { className: "tick", textContent: time ? "sent ✓" : "sending…" }));
    item.append(meta, el("div", { className: "text", textContent: text }));
    return append(item);
  }

  function notice(text) {
    append(el("li", { className: "notice", textContent: text }));
  }

  function append(item) {
    ui.messages.append(item);
    ui.messages.scrollTop = ui.messages.scrollHeight;
    return item;
  }

  function timeElement(iso) {
    const time = el("time");
    if (iso) {
      time.dateTime = iso;
      time.textContent = new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
    return time;
  }

  // -- typing notices --------------------------------------------------------------------

  let typingTimer = null;

  ui.text.addEventListener("input", () => {
    if (!currentRoom) return;
    if (typingTimer === null) socket.emit("typing", currentRoom, true);
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, TYPING_IDLE);
  });

  function stopTyping() {
    if (typingTimer === null) return;
    clearTimeout(typingTimer);
    typingTimer = null;
    if (currentRoom) socket.emit("typing", currentRoom, false);
  }

  const typists = new Map(); // user -> timer forgetting them

  socket.on("typing", ({ room, user, typing }) => {
    if (room !== currentRoom) return;
    clearTimeout(typists.get(user));
    if (typing) {
      typists.set(user, setTimeout(() => { typists.delete(user); showTyping(); }, TYPING_EXPIRE));
    } else {
      typists.delete(user);
    }
    showTyping();
  });

  function showTyping() {
    const names = [...typists.keys()];
    ui.typing.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? `${names[0]} is typing…` :
      `${names.join(" and ")} are typing…`;
  }

  // -- helpers ---------------------------------------------------------------------------

  function el(tag, props = {}) {
    return Object.assign(document.createElement(tag), props);
  }
})();
