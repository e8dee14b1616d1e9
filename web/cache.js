// goTalk web chat page: the browser's cache of one user's conversations in
// localStorage (served at /cache.js, before /app.js). The server holds the
// conversations; this copy only lets the page draw at once and stay readable
// offline. app.js owns what is in it; this file only reads, merges, trims and
// writes it.
"use strict";
(function () {
  const ns = (window.gotalk = window.gotalk || {});
  const USER_PREFIX = "gotalk:user:";
  const HISTORY_MESSAGES = 200;     // newest messages kept per conversation
  const HISTORY_CHARS = 1000000;    // and at most this much text per conversation

  function readJSON(key) {
    try { const v = localStorage.getItem(key); return v ? JSON.parse(v) : null; } catch (_) { return null; }
  }
  function writeJSON(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); return true; } catch (_) { return false; }
  }
  const num = (x) => (Number.isFinite(Number(x)) ? Number(x) : 0);
  function emptyStore() {
    // contacts: name -> {id, readBy}; readBy is the partner's read marker on this user's messages.
    // lastRead: name -> the highest id this user has read in that conversation.
    return { messages: new Map(), contacts: new Map(), lastRead: new Map(), lastContact: null };
  }
  // Stored form: {v: 2, messages: [m…], contacts: [[name, {id, readBy}]…], lastRead: [[name, id]…]}.
  // Version 1 kept plain objects keyed by id and name; it is read as well.
  function decode(raw) {
    const s = emptyStore();
    if (!raw || typeof raw !== "object") return s;
    const pairs = (x) => Array.isArray(x) ? x.filter((p) => Array.isArray(p) && p.length === 2)
      : x && typeof x === "object" ? Object.entries(x) : [];
    const list = Array.isArray(raw.messages) ? raw.messages
      : raw.messages && typeof raw.messages === "object" ? Object.values(raw.messages) : [];
    for (const m of list) if (m && Number.isFinite(m.id)) s.messages.set(m.id, m);
    for (const [name, c] of pairs(raw.contacts)) {
      // An unknown id is stored as null (JSON has no NaN): it stays unknown.
      const id = c && typeof c.id === "number" && Number.isFinite(c.id) ? c.id : NaN;
      if (typeof name === "string") s.contacts.set(name, { id, readBy: num(c && c.readBy) });
    }
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

  /**
   * The cache of user `userId`. `peerName(m)` names the other side of a message.
   * `cache.store` is the state app.js works on; `save` writes it back.
   */
  function open(userId, peerName) {
    const key = USER_PREFIX + userId;
    const cache = { key, store: decode(readJSON(key)) };
    const sorted = () => [...cache.store.messages.values()].sort((a, b) => a.id - b.id);
    // Merges what another tab may have written: no tab drops another's messages or markers.
    cache.mergeFrom = function (other) {
      const store = cache.store;
      for (const [id, m] of other.messages) if (!store.messages.has(id)) store.messages.set(id, m);
      for (const [n, c] of other.contacts) {
        const mine = store.contacts.get(n);
        if (!mine) store.contacts.set(n, c);
        else {
          if (!Number.isFinite(mine.id) && Number.isFinite(c.id)) mine.id = c.id;
          mine.readBy = Math.max(num(mine.readBy), num(c.readBy));
        }
      }
      for (const [n, id] of other.lastRead) store.lastRead.set(n, Math.max(store.lastRead.get(n) || 0, id));
    };
    cache.mergeRaw = (text) => cache.mergeFrom(decode(JSON.parse(text)));
    // What is written: each conversation's newest HISTORY_MESSAGES messages, and
    // no more than HISTORY_CHARS of its text. The page keeps showing the rest.
    function trimmed() {
      const kept = new Map();
      const sizes = new Map(); // peer name -> {count, chars}
      for (const m of sorted().reverse()) {
        const peer = peerName(m);
        const k = sizes.get(peer) || { count: 0, chars: 0 };
        sizes.set(peer, k);
        k.count += 1;
        k.chars += m.content.length;
        if (k.count <= HISTORY_MESSAGES && (k.count === 1 || k.chars <= HISTORY_CHARS)) kept.set(m.id, m);
      }
      return kept;
    }
    // The browser's storage is full: drops the oldest quarter of what is written,
    // keeping the messages in `keep`. False when there is nothing left to drop.
    function dropOldest(kept, keep) {
      const old = [...kept.values()].sort((a, b) => a.id - b.id).filter((m) => !keep.has(m.id));
      if (!old.length) return false;
      for (const m of old.slice(0, Math.max(1, Math.ceil(old.length / 4)))) kept.delete(m.id);
      return true;
    }
    // Last resort: other accounts' caches in this browser. False if there is none.
    function dropOtherAccounts() {
      let dropped = false;
      try {
        for (let i = localStorage.length - 1; i >= 0; i--) {
          const k = localStorage.key(i);
          if (k && k.startsWith(USER_PREFIX) && k !== key) { localStorage.removeItem(k); dropped = true; }
        }
      } catch (_) { /* storage unavailable */ }
      return dropped;
    }
    // Writes the state. `keep` are ids that must not be dropped to make room (the
    // messages just received). False if even they could not be stored.
    cache.save = function (keep, lastContact) {
      cache.mergeFrom(decode(readJSON(key)));
      cache.store.lastContact = lastContact;
      const kept = trimmed();
      for (;;) {
        let full = false;
        try {
          localStorage.setItem(key, JSON.stringify(encode({ ...cache.store, messages: kept })));
          return true;
        } catch (e) {
          full = e && (e.name === "QuotaExceededError" || e.code === 22 || e.name === "NS_ERROR_DOM_QUOTA_REACHED");
        }
        if (!full) return false;
        if (!dropOldest(kept, keep || new Set()) && !dropOtherAccounts()) return false;
      }
    };
    return cache;
  }

  ns.cache = { open, readJSON, writeJSON };
})();
