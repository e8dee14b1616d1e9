// goTalk web chat page: all of its script (served at /app.js; the page's
// Content-Security-Policy allows no inline script).
"use strict";
/*
 * State model.
 *  - The session {token, id, name} lives in localStorage under "gotalk:session".
 *  - Per user, "gotalk:user:<id>" keeps the messages shown or sent (by server id),
 *    the contacts, and the last-read id per contact. History is capped per
 *    conversation: the newest HISTORY_MESSAGES messages, and no more than
 *    HISTORY_CHARS characters of text. When the browser's storage is full
 *    (QuotaExceededError) the oldest history goes first (of every conversation),
 *    then other accounts' history kept in this browser; if even the newest
 *    messages do not fit, they are still shown (kept in memory only).
 *  - Everything keyed by username or id is a Map, never a plain object, so any
 *    valid username ("__proto__", "constructor") is just a name.
 *  - The receive loop long-polls /sync with after = highest id processed so far.
 *    Every message is saved to localStorage BEFORE the next /sync acknowledges it,
 *    so nothing is lost while the browser has room for it. Each page load starts again from after=0, which
 *    acknowledges nothing: the server sends whatever is still unacknowledged, and
 *    a message already stored is recognised by its id and not shown twice. (This
 *    also stays safe if the server was reset and hands out ids again: a stored id
 *    whose message differs is replaced by the server's.)
 *  - All message text goes into the page through textContent, never as HTML.
 */
(function () {
  const SESSION_KEY = "gotalk:session";
  const WAIT_MS = 25000;            // long-poll length asked of the server
  const FETCH_SLACK_MS = 15000;     // extra time before a long-poll is given up on
  const REQUEST_TIMEOUT_MS = 15000; // plain requests
  const MAX_BACKOFF_MS = 15000;
  const HISTORY_MESSAGES = 200;     // newest messages kept per conversation
  const HISTORY_CHARS = 1000000;    // and at most this much text per conversation
  const USER_PREFIX = "gotalk:user:";
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
  let store = null;     // per-user state, see emptyStore()
  let current = null;   // name of the open contact
  let loopGen = 0;      // bumps on log in / log out so an old loop stops
  let loopAbort = null; // AbortController of the in-flight /sync
  let pendingSeq = 0;
  const pending = [];   // messages being sent: {tmp, to, content, failed, error}

  // ---------- storage ----------
  function readJSON(key) {
    try { const v = localStorage.getItem(key); return v ? JSON.parse(v) : null; } catch (_) { return null; }
  }
  function writeJSON(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); return true; } catch (_) { return false; }
  }
  function emptyStore() {
    return { messages: new Map(), contacts: new Map(), lastRead: new Map(), lastContact: null };
  }
  function userKey() { return USER_PREFIX + session.id; }
  // Stored form: {v: 2, messages: [m…], contacts: [[name, {id}]…], lastRead: [[name, id]…]}.
  // Version 1 kept plain objects keyed by id and name; it is read as well.
  function decode(raw) {
    const s = emptyStore();
    if (!raw || typeof raw !== "object") return s;
    const pairs = (x) => Array.isArray(x) ? x.filter((p) => Array.isArray(p) && p.length === 2)
      : x && typeof x === "object" ? Object.entries(x) : [];
    const list = Array.isArray(raw.messages) ? raw.messages
      : raw.messages && typeof raw.messages === "object" ? Object.values(raw.messages) : [];
    for (const m of list) if (m && Number.isFinite(m.id)) s.messages.set(m.id, m);
    for (const [name, c] of pairs(raw.contacts)) if (typeof name === "string") s.contacts.set(name, { id: Number(c && c.id) });
    for (const [name, id] of pairs(raw.lastRead)) if (typeof name === "string" && Number.isFinite(id)) s.lastRead.set(name, id);
    if (typeof raw.lastContact === "string") s.lastContact = raw.lastContact;
    return s;
  }
  function encode(s) {
    return {
      v: 2, messages: [...s.messages.values()], contacts: [...s.contacts], lastRead: [...s.lastRead],
      lastContact: s.lastContact,
    };
  }
  function loadStore() { return decode(readJSON(userKey())); }
  // Merge what another tab may have written: no tab drops another's messages.
  function mergeFrom(other) {
    for (const [id, m] of other.messages) if (!store.messages.has(id)) store.messages.set(id, m);
    for (const [n, c] of other.contacts) if (!store.contacts.has(n)) store.contacts.set(n, c);
    for (const [n, id] of other.lastRead) store.lastRead.set(n, Math.max(store.lastRead.get(n) || 0, id));
  }
  // Keeps each conversation to its newest HISTORY_MESSAGES messages and HISTORY_CHARS of text.
  function trimHistory() {
    const kept = new Map(); // peer name -> {count, chars}
    for (const m of sortedMessages().reverse()) {
      const peer = peerOf(m).name;
      const k = kept.get(peer) || { count: 0, chars: 0 };
      kept.set(peer, k);
      k.count += 1;
      k.chars += m.content.length;
      if (k.count > HISTORY_MESSAGES || (k.count > 1 && k.chars > HISTORY_CHARS)) store.messages.delete(m.id);
    }
  }
  // The browser's storage is full: drops the oldest quarter of this user's history,
  // keeping the messages in `keep`. False when there is nothing left to drop.
  function dropOldest(keep) {
    const old = sortedMessages().filter((m) => !keep.has(m.id));
    if (!old.length) return false;
    for (const m of old.slice(0, Math.max(1, Math.ceil(old.length / 4)))) store.messages.delete(m.id);
    return true;
  }
  // Last resort: other accounts' history kept in this browser. False if there is none.
  function dropOtherAccounts() {
    let dropped = false;
    try {
      for (let i = localStorage.length - 1; i >= 0; i--) {
        const k = localStorage.key(i);
        if (k && k.startsWith(USER_PREFIX) && k !== userKey()) { localStorage.removeItem(k); dropped = true; }
      }
    } catch (_) { /* storage unavailable */ }
    return dropped;
  }
  // Writes this user's state. `keep` are ids that must not be dropped to make room
  // (the messages just received). False if even they could not be stored.
  function saveStore(keep) {
    if (!session || !store) return true;
    mergeFrom(loadStore());
    trimHistory();
    store.lastContact = current;
    for (;;) {
      let full = false;
      try { localStorage.setItem(userKey(), JSON.stringify(encode(store))); return true; } catch (e) {
        full = e && (e.name === "QuotaExceededError" || e.code === 22 || e.name === "NS_ERROR_DOM_QUOTA_REACHED");
      }
      if (!full) return false;
      if (!dropOldest(keep || new Set()) && !dropOtherAccounts()) return false;
    }
  }

  // ---------- HTTP shim ----------
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function post(path, fields, timeoutMs, outerSignal) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs || REQUEST_TIMEOUT_MS);
    const onOuter = () => ctl.abort();
    if (outerSignal) outerSignal.addEventListener("abort", onOuter);
    try {
      const res = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(fields).toString(),
        signal: ctl.signal,
        cache: "no-store",
        credentials: "same-origin",
      });
      let data = null;
      const text = await res.text();
      try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
      if (!res.ok) {
        const msg = data && data.error && data.error.message ? data.error.message : "";
        throw new HttpError(res.status, msg);
      }
      if (data === null) throw new HttpError(0, "The server sent an unreadable reply.");
      return data;
    } finally {
      clearTimeout(timer);
      if (outerSignal) outerSignal.removeEventListener("abort", onOuter);
    }
  }
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
    if (p.name && !store.contacts.has(p.name)) store.contacts.set(p.name, { id: p.id });
    return true;
  }
  function sortedMessages() {
    return [...store.messages.values()].sort((a, b) => a.id - b.id);
  }
  function unreadCounts() {
    const counts = new Map();
    for (const m of store.messages.values()) {
      if (m.from_id === session.id) continue;
      if (m.id > (store.lastRead.get(m.from) || 0)) counts.set(m.from, (counts.get(m.from) || 0) + 1);
    }
    return counts;
  }
  function markRead() {
    if (!current || document.hidden) return;
    let top = store.lastRead.get(current) || 0;
    for (const m of store.messages.values()) if (m.from === current && m.from_id !== session.id && m.id > top) top = m.id;
    if (top !== (store.lastRead.get(current) || 0)) { store.lastRead.set(current, top); saveStore(); }
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
    const counts = unreadCounts();
    const last = new Map();
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
  // Draws the open conversation. When only new messages were added at the end (the
  // usual case), only those are appended, so the live region announces just them.
  let renderedFor = null;
  function renderMessages() {
    const box = el.messages;
    const atBottom = stuckToBottom;
    const list = current ? sortedMessages().filter((m) => peerOf(m).name === current) : [];
    const mine = current ? pending.filter((p) => p.to === current) : [];
    const keyOf = (m) => m.id + ":" + m.content;
    const wanted = list.map(keyOf);
    // Drop what is always redrawn (placeholder, bubbles still being sent), keep the rest.
    for (const n of [...box.children]) if (!n.dataset.key) n.remove();
    const have = [...box.children].map((n) => n.dataset.key);
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
    markRead();
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
    startLoop();
  }
  function startSession(s) {
    session = s;
    writeJSON(SESSION_KEY, s);
    store = loadStore();
    pending.length = 0;
    renderedFor = null;
    showChat();
  }
  function logout(message) {
    loopGen++;
    if (loopAbort) loopAbort.abort();
    try { localStorage.removeItem(SESSION_KEY); } catch (_) { /* ignore */ }
    session = null; store = null; current = null; pending.length = 0;
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
    el.composerInput.focus();
  }
  el.contactForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = el.contactInput.value.trim();
    el.contactError.textContent = "";
    if (!name) return;
    if (!USERNAME_RE.test(name)) { el.contactError.textContent = "That is not a valid username."; return; }
    if (store.contacts.has(name)) { el.contactInput.value = ""; openContact(name); return; }
    const gen = loopGen;
    el.contactSubmit.disabled = true;
    try {
      const r = await post("/getuseridbyname", { username: name });
      if (gen !== loopGen) return;
      const real = String(r.Name || name);
      store.contacts.set(real, { id: Number(r.Id) });
      el.contactInput.value = "";
      openContact(real);
    } catch (e) {
      if (gen !== loopGen) return;
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
    const p = { tmp: ++pendingSeq, to, content, ts: Date.now(), failed: false, error: "" };
    pending.push(p);
    el.composerInput.value = "";
    el.composerError.textContent = "";
    renderMessages.forceBottom = true;
    renderMessages();
    const gen = loopGen;
    const fields = { token: session.token, id: String(session.id), username: session.name, content, client_id: clientId };
    if (Number.isFinite(contact.id)) fields.sendToId = String(contact.id); else fields.to = to;
    try {
      let r;
      for (let attempt = 0; ; attempt++) {
        try { r = await post("/send", fields); break; } catch (e) {
          if (gen !== loopGen || attempt >= 2 || !retryable(e)) throw e;
          await sleep(1000 * (attempt + 1));
          if (gen !== loopGen) throw e;
        }
      }
      if (gen !== loopGen) return;
      const id = Number(r.id);
      if (!r.ok || !Number.isFinite(id)) throw new HttpError(0, "The server sent an unexpected reply.");
      pending.splice(pending.indexOf(p), 1);
      remember({ id, from: session.name, from_id: session.id, to, to_id: Number(contact.id), content, ts: Number(r.ts) || p.ts });
      saveStore();
      renderAll();
    } catch (e) {
      if (gen !== loopGen) return;
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
  async function startLoop() {
    const gen = ++loopGen;
    let backoff = 1000;
    let after = 0;                // acknowledges nothing; repeats are recognised by id
    let wait = 0;                 // the first request catches up at once, later ones long-poll
    setStatus("connecting", "connecting…");
    while (gen === loopGen) {
      loopAbort = new AbortController();
      try {
        const list = await post("/sync", { token: session.token, id: String(session.id), after: String(after), wait: String(wait) },
          WAIT_MS + FETCH_SLACK_MS, loopAbort.signal);
        if (gen !== loopGen) return;
        if (!Array.isArray(list)) throw new HttpError(0, "unexpected sync reply");
        let changed = false;
        let top = after;
        const fresh = new Set();
        for (const raw of list) {
          const m = normalize(raw);
          if (!Number.isFinite(m.id)) continue;
          if (m.id > top) top = m.id;
          fresh.add(m.id);
          if (remember(m)) changed = true;
        }
        // Saved before the next request acknowledges these ids. If the browser has
        // no room even for them, they are still shown: a full storage never stops
        // new messages from appearing.
        const saved = saveStore(fresh);
        after = Math.max(after, top);
        wait = WAIT_MS;
        backoff = 1000;
        if (saved) setStatus("live", "live");
        else setStatus("unsaved", "live (this browser has no room to keep history)");
        if (changed) renderAll();
      } catch (e) {
        if (gen !== loopGen) return;
        if (e instanceof HttpError && e.status === 401) { logout(describe(e, "sync")); return; }
        setStatus("retrying", "reconnecting…");
        await sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  // Another tab of the same user wrote new messages: merge and redraw.
  window.addEventListener("storage", (ev) => {
    if (!session) return;
    if (ev.key === SESSION_KEY && !ev.newValue) { logout("You logged out in another tab."); return; }
    if (ev.key === userKey() && ev.newValue) {
      try { mergeFrom(decode(JSON.parse(ev.newValue))); renderAll(); } catch (_) { /* ignore */ }
    }
  });
  document.addEventListener("visibilitychange", () => { if (session && !document.hidden) renderAll(); });

  // ---------- start ----------
  const saved = readJSON(SESSION_KEY);
  if (saved && saved.token && Number.isFinite(Number(saved.id)) && saved.name) {
    startSession({ token: String(saved.token), id: Number(saved.id), name: String(saved.name) });
  } else {
    showAuth("");
  }
})();
