// goTalk web chat page: talking to the server over HTTP (served at
// /transport.js, before /app.js): form posts, and the long-poll transport
// that receives messages from /sync. The WebSocket transport (ws.js) offers
// the same face, so app.js does not care which one runs:
//   call(cmd, args) -> Promise of the reply ({ok:true,…}), for "send",
//     "history", "read" and "conversations", with the JSON form's fields
//     (to/to_id, with/with_id, before, limit, upto, content, client_id);
//     a refusal throws HttpError with the HTTP status of its error code;
//   start(), stop(); `live` is true when the server's events (sent copies,
//   read markers) arrive as they happen, false when only messages do.
// Hooks app.js gives: onEvents(list of event objects) -> saved (they were
// stored; only then is their receipt acknowledged), onStatus(state, text),
// onSynced() (caught up with the server), onUnauthorized(error).
"use strict";
(function () {
  const ns = (window.gotalk = window.gotalk || {});
  const WAIT_MS = 25000;            // long-poll length asked of the server
  const FETCH_SLACK_MS = 15000;     // extra time before a long-poll is given up on
  const REQUEST_TIMEOUT_MS = 15000; // plain requests
  const MAX_BACKOFF_MS = 15000;

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  // The HTTP status the shim gives each error code of the line protocol.
  const STATUS = {
    bad_request: 400, unknown_command: 404, unauthorized: 401, not_found: 404, conflict: 409,
    too_large: 413, rate_limited: 429, unavailable: 503,
  };
  const statusOf = (code) => STATUS[code] || 500;

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

  // The form fields of one command: the shim's names for the JSON form's fields.
  function formOf(session, cmd, a) {
    const f = { token: session.token, id: String(session.id) };
    const put = (name, v) => { if (v !== undefined && v !== null && v !== "") f[name] = String(v); };
    if (cmd === "send") {
      put("username", session.name);
      put("content", a.content);
      put("client_id", a.client_id);
      if (a.to_id !== undefined) put("sendToId", a.to_id); else put("to", a.to);
    } else {
      if (a.with_id !== undefined) put("withId", a.with_id); else put("with", a.with);
      put("before", a.before);
      put("limit", a.limit);
      put("upto", a.upto);
    }
    return f;
  }
  const PATHS = { send: "/send", history: "/history", read: "/read", conversations: "/conversations" };

  /** Receives by long-polling /sync; sends and asks with one form post each. */
  function pollTransport(session, hooks) {
    let running = false;
    let abort = null;
    const t = { kind: "poll", live: false };
    t.call = (cmd, args) => post(PATHS[cmd], formOf(session, cmd, args || {}));
    t.stop = () => { running = false; if (abort) abort.abort(); };
    t.start = async () => {
      running = true;
      let backoff = 1000;
      let after = 0; // acknowledges nothing; repeats are recognised by id
      let wait = 0;  // the first request catches up at once, later ones long-poll
      hooks.onStatus("connecting", "connecting…");
      while (running) {
        abort = new AbortController();
        try {
          const list = await post("/sync", { token: session.token, id: String(session.id), after: String(after), wait: String(wait) },
            WAIT_MS + FETCH_SLACK_MS, abort.signal);
          if (!running) return;
          if (!Array.isArray(list)) throw new HttpError(0, "unexpected sync reply");
          let top = after;
          const events = [];
          for (const m of list) {
            if (!m || !Number.isFinite(Number(m.id))) continue;
            top = Math.max(top, Number(m.id));
            events.push({ event: "message", message: m });
          }
          // Stored before the next request acknowledges these ids. If the browser
          // has no room even for them, they are still shown: a full storage never
          // stops new messages from appearing.
          const saved = hooks.onEvents(events);
          after = Math.max(after, top);
          wait = WAIT_MS;
          backoff = 1000;
          if (saved) hooks.onStatus("live", "live");
          else hooks.onStatus("unsaved", "live (this browser has no room to keep history)");
          hooks.onSynced();
        } catch (e) {
          if (!running) return;
          if (e instanceof HttpError && e.status === 401) { running = false; hooks.onUnauthorized(e); return; }
          hooks.onStatus("retrying", "reconnecting…");
          await sleep(backoff);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
      }
    };
    return t;
  }

  Object.assign(ns, { HttpError, post, sleep, statusOf, pollTransport, REQUEST_TIMEOUT_MS, MAX_BACKOFF_MS });
})();
