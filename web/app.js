// goTalk web chat page: its views, rendering, sending and the one handler
// of everything the server pushes (served at /app.js, after /cache.js,
// /transport.js, /convs.js and /ws.js; the page's Content-Security-Policy
// allows no inline script).
"use strict";
/*
 * State model.
 *  - The server holds the conversations (history, read markers, unread
 *    counts); this page shows them. After log in it loads the conversation
 *    list (`conversations`: partners, unread badges, the partner's read
 *    marker) and, for each conversation opened, its newest history page;
 *    "Load older messages" asks for the page before. So a fresh browser shows
 *    every conversation whole. convs.js does this asking.
 *  - The session {token, id, name} lives in localStorage under "gotalk:session".
 *  - localStorage "gotalk:user:<id>" is a cache only (cache.js): the messages
 *    shown or sent (by server id), the contacts with the partner's read marker,
 *    and this user's read marker per contact, so the page draws at once and
 *    stays readable offline. It writes per conversation the newest
 *    HISTORY_MESSAGES messages and no more than HISTORY_CHARS characters; when
 *    the browser's storage is full the oldest go first, then other accounts'
 *    caches. What is not written is still shown while the page is open.
 *    Once a conversation's history is loaded, only messages from the oldest
 *    page loaded on are shown (the cache below it may have gaps).
 *  - Everything keyed by username or id is a Map, never a plain object, so any
 *    valid username ("__proto__", "constructor") is just a name.
 *  - One function, receive(), takes every event object the server sends
 *    (message, sent copy, read marker, revoked, expired), whichever transport
 *    brought it. The transport (transport.js: HTTP long-poll; ws.js:
 *    WebSocket) stores nothing itself: receive() saves every message to the
 *    cache BEFORE the transport acknowledges it, so nothing is lost while the
 *    browser has room. Each page load starts from after=0, which acknowledges
 *    nothing; a message already known is recognised by its id and not shown
 *    twice (a known id whose message differs is replaced by the server's).
 *  - Over the long-poll only messages arrive, so the page refreshes the
 *    conversation list (and, when the list names a message it has not seen,
 *    the open conversation's newest page) when a long-poll returns and every
 *    REFRESH_MS while visible; that brings sent copies from the user's other
 *    devices and read markers. Over WebSocket they arrive as events.
 *  - A conversation on screen is marked read (`read`) up to its newest
 *    message; the user's own messages up to the partner's marker show a tick.
 *  - All message text goes into the page through textContent, never as HTML.
 */
(function () {
  const ns = window.gotalk;
  const { HttpError, post, sleep } = ns;
  const SESSION_KEY = "gotalk:session";
  const REFRESH_MS = 5000;          // long-poll only: the conversation list is refreshed this often
  const USERNAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
  const AVATAR_COLORS = 8;          // .avatar.c0 … .c7 in app.css

  const $ = (id) => document.getElementById(id);
  const el = {
    authView: $("auth-view"), authForm: $("auth-form"), authUser: $("auth-username"),
    authPass: $("auth-password"), authError: $("auth-error"), loginBtn: $("login-button"),
    registerBtn: $("register-button"), chatView: $("chat-view"), me: $("me"),
    currentUser: $("current-user"), logoutBtn: $("logout-button"), status: $("connection-status"),
    contactForm: $("contact-form"), contactInput: $("contact-input"), contactSubmit: $("contact-submit"),
    contactError: $("contact-error"), contactList: $("contact-list"), convTitle: $("conversation-title"),
    messages: $("messages"), composerForm: $("composer-form"), composerInput: $("composer-input"),
    sendBtn: $("send-button"), composerError: $("composer-error"),
  };

  let session = null;   // {token, id, name}
  let cache = null;     // this user's localStorage cache (cache.js); its .store is the state
  let store = null;     // cache.store: {messages, contacts, lastRead, lastContact}
  let current = null;   // name of the open contact
  let transport = null; // the running transport (transport.js or ws.js)
  let gen = 0;          // bumps on log in / log out, so an old request's answer is dropped
  let pendingSeq = 0;
  const pending = [];   // messages being sent: {tmp, to, content, failed, error}
  const convs = ns.conversations({
    state: () => ({ session, store, current, transport, gen }),
    normalize, peerName: (m) => peerOf(m).name, remember,
    save: () => saveStore(), render: () => { if (session) renderAll(); },
    unauthorized: (e) => logout(describe(e, "sync")),
  });

  function saveStore(keep) { return !session || !cache || cache.save(keep, current); }

  // ---------- errors ----------
  function describe(err, what) {
    if (err instanceof HttpError) {
      switch (err.status) {
        case 400: return what === "auth"
          ? "The server did not accept that" + (err.message ? ": " + err.message : ".")
            + " Usernames are 1–32 letters, digits, '_', '.' or '-', beginning and ending with a letter or digit;"
            + " a new password has at least 8 characters."
          : "The server did not accept that" + (err.message ? ": " + err.message : ".");
        case 401: return what === "auth" ? "Wrong username or password." : "Your session has expired. Please log in again.";
        case 404: return what === "contact" || what === "send" ? "There is no user with that name." : "Not found.";
        case 405: return "The server refused that kind of request (405).";
        case 409: return "That username is already taken.";
        case 413: return "That is too large for the server.";
        case 429: return "Too many requests just now. Please wait a moment and try again.";
        case 503: return "The server is unavailable for a moment. Please try again shortly.";
        case 0: return err.message;
        default: return "The server had a problem (" + err.status + "). Please try again.";
      }
    }
    if (err && err.name === "AbortError") return "The server did not answer in time.";
    return "Cannot reach the server. Check your connection and try again.";
  }

  // ---------- messages ----------
  function normalize(m) {
    const content = m.content !== undefined ? m.content : m.Content;
    return {
      id: Number(m.id),
      from: m.from !== undefined ? String(m.from) : "",
      from_id: Number(m.from_id !== undefined ? m.from_id : m.UserIdSend),
      to: m.to !== undefined ? String(m.to) : "",
      to_id: Number(m.to_id !== undefined ? m.to_id : m.UserIdReceive),
      content: content === undefined || content === null ? "" : String(content),
      ts: Number(m.ts) || Date.now(),
      ...(typeof m.client_id === "string" ? { client_id: m.client_id } : {}),
    };
  }
  // The other side of a message, from this user's point of view.
  function peerOf(m) {
    if (m.from_id === session.id) return { name: m.to, id: m.to_id };
    return { name: m.from, id: m.from_id };
  }
  function sameMessage(a, b) {
    return a.content === b.content && a.from_id === b.from_id && a.to_id === b.to_id;
  }
  function remember(m) {
    if (!Number.isFinite(m.id)) return false;
    const old = store.messages.get(m.id);
    if (old && sameMessage(old, m)) return false;
    store.messages.set(m.id, m);
    const p = peerOf(m);
    if (p.name && !store.contacts.has(p.name)) store.contacts.set(p.name, { id: p.id, readBy: 0 });
    return true;
  }
  function sortedMessages() {
    return [...store.messages.values()].sort((a, b) => a.id - b.id);
  }
  // ---------- rendering ----------
  function fmtTime(ts) {
    const d = new Date(ts);
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return sameDay ? t : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + t;
  }
  function avatar(name) {
    const a = document.createElement("span");
    a.className = "avatar";
    a.setAttribute("aria-hidden", "true");
    a.textContent = (name || "?").slice(0, 1);
    let h = 0x811c9dc5; // FNV-1a: a stable colour per name
    for (const ch of name || "") { h ^= ch.charCodeAt(0); h = Math.imul(h, 0x01000193) >>> 0; }
    a.classList.add("c" + (h % AVATAR_COLORS));
    return a;
  }
  function renderContacts() {
    const counts = convs.unreadCounts();
    const last = new Map([...store.contacts.keys()].map((n) => [n, convs.newestOf(n)]));
    for (const m of store.messages.values()) {
      const p = peerOf(m).name;
      if (p) last.set(p, Math.max(last.get(p) || 0, m.id));
    }
    const names = [...store.contacts.keys()]
      .sort((a, b) => (last.get(b) || 0) - (last.get(a) || 0) || a.localeCompare(b));
    el.contactList.replaceChildren();
    if (!names.length) {
      const li = document.createElement("li");
      li.className = "empty-note";
      li.textContent = "No conversations yet.";
      el.contactList.append(li);
    }
    for (const name of names) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "contact";
      b.dataset.testid = "contact-item";
      b.dataset.contact = name;
      if (name === current) b.setAttribute("aria-current", "true");
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = name;
      b.append(avatar(name), label);
      const n = counts.get(name) || 0;
      if (n) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.dataset.testid = "unread-badge";
        badge.textContent = String(n);
        // The button is named by what it shows, "grace 1 unread": an aria-label
        // would leave out the visible avatar letter (WCAG 2.5.3, label in name).
        const unread = document.createElement("span");
        unread.className = "sr-only";
        unread.textContent = "unread";
        b.append(badge, unread);
      }
      b.addEventListener("click", () => openContact(name));
      li.append(b);
      el.contactList.append(li);
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    document.title = total ? "(" + total + ") goTalk" : "goTalk";
  }
  function bubble(m, dir, extraClass, metaText) {
    const wrap = document.createElement("div");
    wrap.className = "msg " + dir + (extraClass ? " " + extraClass : "");
    wrap.dataset.testid = "message";
    wrap.dataset.direction = dir;
    if (m.id) wrap.dataset.id = String(m.id);
    const b = document.createElement("div");
    b.className = "bubble";
    b.dataset.testid = "message-text";
    b.textContent = m.content;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = metaText;
    if (m.ts) meta.title = new Date(m.ts).toLocaleString();
    wrap.append(b, meta);
    return wrap;
  }
  // The tick on this user's message once the partner has read it.
  function showRead(node, read) {
    if ((node.dataset.read === "true") === read) return;
    node.dataset.read = String(read);
    const meta = node.querySelector(".meta");
    let tick = meta.querySelector(".tick");
    if (read && !tick) {
      tick = document.createElement("span");
      tick.className = "tick";
      tick.dataset.testid = "read-tick";
      tick.textContent = " \u00b7 Read \u2713";
      meta.append(tick);
    } else if (!read && tick) tick.remove();
  }
  const olderBtn = document.createElement("button");
  olderBtn.type = "button";
  olderBtn.className = "secondary older";
  olderBtn.dataset.testid = "load-older";
  olderBtn.addEventListener("click", async () => {
    // Keeps the messages on screen where they are while older ones go above.
    const box = el.messages;
    const fromBottom = box.scrollHeight - box.scrollTop;
    await convs.loadOlder(current);
    box.scrollTop = box.scrollHeight - fromBottom;
  });
  // Draws the open conversation. When only new messages were added at the end (the
  // usual case), only those are appended, so the live region announces just them.
  let renderedFor = null;
  function renderMessages() {
    const box = el.messages;
    const atBottom = stuckToBottom;
    const floor = current ? convs.floorOf(current) : 0;
    const list = current ? sortedMessages().filter((m) => m.id >= floor && peerOf(m).name === current) : [];
    // A message still being sent that the server already shows (its reply was
    // lost, and history brought it) is drawn once, as the stored one.
    const stored = new Set(list.map((m) => m.client_id).filter(Boolean));
    const mine = current ? pending.filter((p) => p.to === current && !stored.has(p.clientId)) : [];
    const keyOf = (m) => m.id + ":" + m.content;
    const wanted = list.map(keyOf);
    // Drop what is always redrawn (placeholder, bubbles still being sent), keep the rest.
    for (const n of [...box.children]) if (!n.dataset.key && n !== olderBtn) n.remove();
    const have = [...box.children].filter((n) => n.dataset.key).map((n) => n.dataset.key);
    const prefix = renderedFor === current && have.length <= wanted.length && have.every((k, i) => k === wanted[i]);
    if (!prefix) box.replaceChildren();
    renderedFor = current;
    for (const m of list.slice(prefix ? have.length : 0)) {
      const out = m.from_id === session.id;
      const node = bubble(m, out ? "out" : "in", "", (out ? "You" : m.from) + " \u00b7 " + fmtTime(m.ts));
      node.dataset.key = keyOf(m);
      box.append(node);
    }
    for (const p of mine) {
      box.append(bubble({ content: p.content, ts: p.ts }, "out", p.failed ? "failed" : "pending",
        p.failed ? "Not sent: " + p.error : "Sending\u2026"));
    }
    const readBy = current && store.contacts.has(current) ? store.contacts.get(current).readBy || 0 : 0;
    for (const n of box.children) if (n.dataset.key && n.dataset.direction === "out") showRead(n, Number(n.dataset.id) <= readBy);
    if (current && convs.canLoadOlder(current)) {
      const busy = convs.loadingOlder(current);
      olderBtn.disabled = busy;
      olderBtn.textContent = busy ? "Loading\u2026" : "Load older messages";
      if (box.firstChild !== olderBtn) box.prepend(olderBtn);
    } else olderBtn.remove();
    if (!list.length && !mine.length) {
      const p = document.createElement("p");
      p.className = "placeholder";
      p.textContent = current ? "No messages with " + current + " yet. Say hello!"
        : "Pick a contact by username to start chatting. New messages appear here as they arrive.";
      box.append(p);
    }
    if (atBottom || renderMessages.forceBottom) { box.scrollTop = box.scrollHeight; stuckToBottom = true; }
    renderMessages.forceBottom = false;
  }
  // Follow new messages while the reader is at the bottom, also when the window is resized.
  let stuckToBottom = true;
  el.messages.addEventListener("scroll", () => {
    const box = el.messages;
    stuckToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }, { passive: true });
  if (window.ResizeObserver) {
    new ResizeObserver(() => { if (stuckToBottom) el.messages.scrollTop = el.messages.scrollHeight; }).observe(el.messages);
  }
  function renderAll() {
    convs.markRead();
    renderContacts();
    renderMessages();
    el.convTitle.textContent = current ? current : "No conversation selected";
    el.composerInput.disabled = !current;
    el.sendBtn.disabled = !current;
    el.composerInput.placeholder = current ? "Message " + current + "…" : "Pick a contact first";
  }
  function setStatus(state, text) {
    el.status.hidden = false;
    if (el.status.dataset.state === state) return;
    el.status.dataset.state = state;
    el.status.textContent = text;
  }

  // ---------- views ----------
  function showAuth(message) {
    el.chatView.hidden = true;
    el.me.hidden = true;
    el.logoutBtn.hidden = true;
    el.status.hidden = true;
    el.status.dataset.state = "idle";
    el.authView.hidden = false;
    el.authError.textContent = message || "";
    document.title = "goTalk";
    el.authUser.focus();
  }
  function showChat() {
    el.authView.hidden = true;
    el.chatView.hidden = false;
    el.me.hidden = false;
    el.logoutBtn.hidden = false;
    el.currentUser.textContent = session.name;
    current = store.lastContact !== null && store.contacts.has(store.lastContact) ? store.lastContact : null;
    renderMessages.forceBottom = true;
    renderAll();
    startTransport();
    if (current) convs.loadNewest(current);
  }
  function startSession(s) {
    session = s;
    ns.cache.writeJSON(SESSION_KEY, s);
    cache = ns.cache.open(s.id, (m) => peerOf(m).name);
    store = cache.store;
    pending.length = 0;
    renderedFor = null;
    gen++;
    convs.reset();
    showChat();
  }
  function logout(message) {
    gen++;
    if (transport) transport.stop();
    transport = null;
    convs.reset();
    try { localStorage.removeItem(SESSION_KEY); } catch (_) { /* ignore */ }
    session = null; cache = null; store = null; current = null; pending.length = 0;
    el.authPass.value = "";
    el.contactError.textContent = "";
    el.composerError.textContent = "";
    showAuth(message);
  }

  // ---------- auth ----------
  async function doAuth(register) {
    const username = el.authUser.value.trim();
    const password = el.authPass.value;
    el.authError.textContent = "";
    if (!USERNAME_RE.test(username)) {
      el.authError.textContent = "Usernames are 1–32 letters, digits, '_', '.' or '-'.";
      el.authUser.focus();
      return;
    }
    if (!password) { el.authError.textContent = "Please enter a password."; el.authPass.focus(); return; }
    el.loginBtn.disabled = el.registerBtn.disabled = true;
    try {
      if (register) await post("/register", { username, password });
      const r = await post("/login", { username, password });
      if (!r.SessionID || r.Id === undefined) throw new HttpError(0, "The server sent an unexpected login reply.");
      el.authPass.value = "";
      startSession({ token: String(r.SessionID), id: Number(r.Id), name: String(r.Name || username) });
    } catch (e) {
      el.authError.textContent = describe(e, "auth");
    } finally {
      el.loginBtn.disabled = el.registerBtn.disabled = false;
    }
  }
  el.authForm.addEventListener("submit", (ev) => { ev.preventDefault(); doAuth(false); });
  el.registerBtn.addEventListener("click", () => doAuth(true));
  el.logoutBtn.addEventListener("click", () => logout(""));

  // ---------- contacts ----------
  function openContact(name) {
    current = name;
    el.contactError.textContent = "";
    el.composerError.textContent = "";
    renderMessages.forceBottom = true;
    saveStore();
    renderAll();
    if (!convs.isLoaded(name)) convs.loadNewest(name);
    el.composerInput.focus();
  }
  el.contactForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = el.contactInput.value.trim();
    el.contactError.textContent = "";
    if (!name) return;
    if (!USERNAME_RE.test(name)) { el.contactError.textContent = "That is not a valid username."; return; }
    if (store.contacts.has(name)) { el.contactInput.value = ""; openContact(name); return; }
    const g = gen;
    el.contactSubmit.disabled = true;
    try {
      const r = await post("/getuseridbyname", { username: name });
      if (g !== gen) return;
      const real = String(r.Name || name);
      if (!store.contacts.has(real)) store.contacts.set(real, { id: Number(r.Id), readBy: 0 });
      el.contactInput.value = "";
      openContact(real);
    } catch (e) {
      if (g !== gen) return;
      el.contactError.textContent = e instanceof HttpError && e.status === 404
        ? "No user named \u201c" + name + "\u201d." : describe(e, "contact");
    } finally {
      el.contactSubmit.disabled = false;
    }
  });

  // ---------- sending ----------
  // A client_id makes a send idempotent on the server: retrying with the same one
  // stores nothing new. Retries after a network failure (automatic, or the person
  // sending the same failed text again) reuse it, so a message is never doubled.
  let lastFailed = null; // {to, content, clientId}
  function newClientId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return "web-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  const retryable = (e) => !(e instanceof HttpError) || e.status === 0 || e.status === 429 || e.status >= 500;
  async function send() {
    const content = el.composerInput.value;
    if (!current || !content.trim()) return;
    const to = current;
    const contact = store.contacts.get(to) || {};
    const clientId = lastFailed && lastFailed.to === to && lastFailed.content === content ? lastFailed.clientId : newClientId();
    lastFailed = null;
    for (let i = pending.length - 1; i >= 0; i--) if (pending[i].failed) pending.splice(i, 1); // a retry replaces them
    const p = { tmp: ++pendingSeq, to, content, clientId, ts: Date.now(), failed: false, error: "" };
    pending.push(p);
    el.composerInput.value = "";
    el.composerError.textContent = "";
    renderMessages.forceBottom = true;
    renderMessages();
    const g = gen;
    const args = { content, client_id: clientId };
    if (Number.isFinite(contact.id)) args.to_id = contact.id; else args.to = to;
    try {
      let r;
      for (let attempt = 0; ; attempt++) {
        try { r = await transport.call("send", args); break; } catch (e) {
          if (g !== gen || attempt >= 2 || !retryable(e)) throw e;
          await sleep(1000 * (attempt + 1));
          if (g !== gen) throw e;
        }
      }
      if (g !== gen) return;
      const id = Number(r.id);
      if (!r.ok || !Number.isFinite(id)) throw new HttpError(0, "The server sent an unexpected reply.");
      pending.splice(pending.indexOf(p), 1);
      remember({ id, from: session.name, from_id: session.id, to, to_id: Number(contact.id), content, ts: Number(r.ts) || p.ts });
      saveStore();
      renderAll();
    } catch (e) {
      if (g !== gen) return;
      if (e instanceof HttpError && e.status === 401) { logout(describe(e, "send")); return; }
      p.failed = true;
      p.error = describe(e, "send");
      if (retryable(e)) lastFailed = { to, content, clientId };
      el.composerError.textContent = "Your message was not sent: " + p.error;
      if (!el.composerInput.value) el.composerInput.value = content;
      renderMessages();
      // The failed bubble stays a while; the text is back in the box to try again.
      setTimeout(() => { const i = pending.indexOf(p); if (i >= 0) { pending.splice(i, 1); if (session) renderMessages(); } }, 8000);
    }
  }
  el.composerForm.addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
  el.composerInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
  });

  // ---------- receiving ----------
  // The one handler of what the server sends, whichever transport brought it:
  // new messages and sent copies from the user's other devices are kept (and
  // saved before the transport acknowledges them), read markers move ticks and
  // badges, and a revoked or expired token ends the session.
  function receive(events) {
    if (!session) return true;
    let changed = false;
    let unbound = null;
    const fresh = new Set();
    for (const ev of events) {
      if (!ev || typeof ev !== "object") continue;
      if ((ev.event === "message" || ev.event === "sent") && ev.message && typeof ev.message === "object") {
        const m = normalize(ev.message);
        if (!Number.isFinite(m.id)) continue;
        fresh.add(m.id);
        if (remember(m)) changed = true;
      } else if (ev.event === "read") {
        if (convs.applyRead(ev)) changed = true;
      } else if (ev.event === "revoked" || ev.event === "expired") {
        unbound = ev.event;
      }
    }
    const saved = saveStore(fresh);
    if (unbound) {
      logout(unbound === "revoked" ? "You were logged out (from another device or tab). Please log in again."
        : "Your session has expired. Please log in again.");
    } else if (changed) renderAll();
    return saved;
  }
  // WebSocket when the page has it (ws.js) and is not told otherwise with
  // ?transport=poll; the long-poll otherwise, or when the WebSocket fails.
  function startTransport() {
    const g = gen;
    const hooks = {
      onEvents: receive,
      onStatus: (state, text) => { if (g === gen) setStatus(state, text); },
      onSynced: () => { if (g === gen) convs.schedule(); },
      onUnauthorized: (e) => { if (g === gen) logout(describe(e, "sync")); },
      onFallback: () => { if (g === gen) run(ns.pollTransport(session, hooks)); },
    };
    // The status line names the transport (data-transport), for people and tests.
    const run = (t) => { transport = t; el.status.dataset.transport = t.kind; t.start(); };
    const asked = new URLSearchParams(location.search).get("transport");
    const ws = ns.wsTransport && window.WebSocket && asked !== "poll";
    run(ws ? ns.wsTransport(session, hooks) : ns.pollTransport(session, hooks));
  }
  // Over the long-poll, sent copies and read markers are fetched, not pushed.
  setInterval(() => { if (session && transport && !transport.live && !document.hidden) convs.schedule(); }, REFRESH_MS);

  // Another tab of the same user wrote new messages: merge and redraw.
  window.addEventListener("storage", (ev) => {
    if (!session) return;
    if (ev.key === SESSION_KEY && !ev.newValue) { logout("You logged out in another tab."); return; }
    if (cache && ev.key === cache.key && ev.newValue) {
      try { cache.mergeRaw(ev.newValue); renderAll(); } catch (_) { /* ignore */ }
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (session && !document.hidden) { renderAll(); if (transport && !transport.live) convs.schedule(); }
  });

  // ---------- start ----------
  const saved = ns.cache.readJSON(SESSION_KEY);
  if (saved && saved.token && Number.isFinite(Number(saved.id)) && saved.name) {
    startSession({ token: String(saved.token), id: Number(saved.id), name: String(saved.name) });
  } else {
    showAuth("");
  }
})();
