// goTalk web chat page: what the server knows about this user's
// conversations (served at /convs.js, before /app.js): the conversation list
// with its unread counts and read markers, history pages (the newest, and
// older ones on request), and marking a conversation read. app.js draws;
// this file asks the server through the running transport and keeps the
// answers. Events (sent copies, read markers) come through app.js's one
// event handler, which calls applyRead here.
"use strict";
(function () {
  const ns = (window.gotalk = window.gotalk || {});
  const PAGE = 50;            // messages per history page
  const CATCH_UP = 20;        // the first page asked when catching up a conversation
  const CATCH_UP_PAGES = 5;   // pages walked back to meet what is known, before leaving a gap
  const LIST_PAGE = 50;       // conversations per page
  const LIST_PAGES = 4;       // pages of conversations loaded
  const REFRESH_GAP_MS = 1000; // at most one conversations refresh a second

  /**
   * ctx: state() -> {session, store, current, transport, gen}; normalize(m);
   * peerName(m); remember(m) -> changed; save(); render(); unauthorized(err).
   */
  ns.conversations = function (ctx) {
    const snaps = new Map();      // name -> {unread, top}: the server's list, as last loaded
    const hist = new Map();       // name -> {loaded, floor, more, busy, unsupported}
    const readPosted = new Map(); // name -> the read marker the server has from this page
    const readBusy = new Set();
    const refresh = { busy: false, again: false, timer: null, last: 0, off: false };
    const num = (x) => (Number.isFinite(Number(x)) ? Number(x) : 0);
    const lastRead = (store, name) => store.lastRead.get(name) || 0;

    function contactOf(store, name, id) {
      let c = store.contacts.get(name);
      if (!c) { c = { id: Number(id), readBy: 0 }; store.contacts.set(name, c); }
      if (!Number.isFinite(c.id) && Number.isFinite(Number(id))) c.id = Number(id);
      if (!Number.isFinite(c.readBy)) c.readBy = 0;
      return c;
    }
    // The conversation's partner as the server's fields name it: by id when known.
    function withArgs(store, name) {
      const c = store.contacts.get(name);
      return c && Number.isFinite(c.id) ? { with_id: c.id } : { with: name };
    }
    function histOf(name) {
      let h = hist.get(name);
      if (!h) { h = { loaded: false, floor: 0, more: false, busy: false, unsupported: false }; hist.set(name, h); }
      return h;
    }
    // A server that keeps no history (--no-history: unavailable, 503) or
    // predates it (404): the page shows what this browser has kept, as before.
    const noHistory = (e) => e instanceof ns.HttpError && (e.status === 404 || e.status === 503);
    // Failures the page acts on; others are tried again at the next refresh.
    function failed(e, h) {
      if (e instanceof ns.HttpError && e.status === 401) { ctx.unauthorized(e); return; }
      if (!noHistory(e)) return;
      if (h) Object.assign(h, { unsupported: true, loaded: true, floor: 0, more: false });
      else refresh.off = true;
    }
    const sorted = (list) => (Array.isArray(list) ? list : []).map(ctx.normalize)
      .filter((m) => Number.isFinite(m.id)).sort((a, b) => a.id - b.id);

    /** The lowest id shown of a conversation: older cached messages may have gaps. */
    const floorOf = (name) => (hist.has(name) ? hist.get(name).floor : 0);
    const canLoadOlder = (name) => { const h = hist.get(name); return !!h && h.more; };
    const loadingOlder = (name) => { const h = hist.get(name); return !!h && h.busy; };

    /**
     * Loads the newest page of a conversation. The first time, it is what the
     * page shows (older ones on request); later, newer pages are walked back
     * until they meet a message already known.
     */
    async function loadNewest(name) {
      const { store, transport, gen } = ctx.state();
      const h = histOf(name);
      if (!transport || h.busy || h.unsupported) return;
      h.busy = true;
      try {
        let before;
        let pages = 0;
        let oldest = null;
        let more = false;
        let met = false;
        for (;;) {
          const limit = h.loaded && !pages ? CATCH_UP : PAGE;
          const r = await transport.call("history", { ...withArgs(store, name), before, limit });
          if (gen !== ctx.state().gen) return;
          const list = sorted(r.messages);
          met = met || list.some((m) => store.messages.has(m.id));
          for (const m of list) ctx.remember(m);
          pages += 1;
          if (list.length) oldest = list[0].id;
          more = !!r.more && list.length > 0;
          if (!h.loaded || met || !more || pages >= CATCH_UP_PAGES) break;
          before = oldest;
        }
        if (!h.loaded) { h.loaded = true; h.more = more; h.floor = more ? oldest : 0; }
        else if (!met && more) { h.floor = oldest; h.more = true; } // a gap: "load older" fills it
        ctx.save();
      } catch (e) {
        if (gen !== ctx.state().gen) return;
        failed(e, h);
      } finally {
        if (gen === ctx.state().gen) { h.busy = false; ctx.render(); }
      }
    }

    /** One page older than what the open conversation shows. */
    async function loadOlder(name) {
      const { store, transport, gen } = ctx.state();
      const h = histOf(name);
      if (!transport || h.busy || !h.more) return;
      h.busy = true;
      ctx.render();
      try {
        const r = await transport.call("history", { ...withArgs(store, name), before: h.floor, limit: PAGE });
        if (gen !== ctx.state().gen) return;
        const list = sorted(r.messages);
        for (const m of list) ctx.remember(m);
        h.more = !!r.more && list.length > 0;
        h.floor = h.more ? list[0].id : 0;
        ctx.save();
      } catch (e) {
        if (gen !== ctx.state().gen) return;
        failed(e, h);
      } finally {
        if (gen === ctx.state().gen) { h.busy = false; ctx.render(); }
      }
    }

    /** Loads the conversation list: unread counts, partners' read markers, new partners. */
    async function loadList() {
      const { store, transport, gen } = ctx.state();
      if (!transport) return;
      let before;
      for (let page = 0; page < LIST_PAGES; page++) {
        const r = await transport.call("conversations", { before, limit: LIST_PAGE });
        if (gen !== ctx.state().gen) return;
        const list = Array.isArray(r.conversations) ? r.conversations : [];
        for (const c of list) {
          if (!c || typeof c.with !== "string") continue;
          const last = c.last ? ctx.normalize(c.last) : null;
          const top = last && Number.isFinite(last.id) ? last.id : 0;
          const contact = contactOf(store, c.with, c.with_id);
          contact.readBy = Math.max(contact.readBy, num(c.read_upto));
          snaps.set(c.with, { unread: num(c.unread), top });
          if (top) before = top;
        }
        if (!r.more || !list.length) break;
      }
      ctx.save();
      // The open conversation has a message this page has not seen (say, one
      // sent from another device): catch up with its newest page.
      const { current } = ctx.state();
      const s = current && snaps.get(current);
      if (s && s.top && !store.messages.has(s.top)) loadNewest(current);
    }

    /** Refreshes the list soon: at once if idle, at most once a REFRESH_GAP_MS. */
    function schedule() {
      if (refresh.off) return;
      if (refresh.busy) { refresh.again = true; return; }
      if (refresh.timer) return;
      const gen = ctx.state().gen;
      refresh.timer = setTimeout(async () => {
        refresh.timer = null;
        if (gen !== ctx.state().gen) return;
        refresh.busy = true;
        refresh.last = Date.now();
        try { await loadList(); } catch (e) { if (gen === ctx.state().gen) failed(e, null); }
        if (gen !== ctx.state().gen) return;
        refresh.busy = false;
        ctx.render();
        if (refresh.again) { refresh.again = false; schedule(); }
      }, Math.max(0, refresh.last + REFRESH_GAP_MS - Date.now()));
    }

    /** Forgets everything of the last session (log out, or another user). */
    function reset() {
      snaps.clear(); hist.clear(); readPosted.clear(); readBusy.clear();
      if (refresh.timer) clearTimeout(refresh.timer);
      Object.assign(refresh, { busy: false, again: false, timer: null, last: 0, off: false });
    }

    /** Unread messages per partner: the server's count, plus what arrived since. */
    function unreadCounts() {
      const { session, store } = ctx.state();
      const counts = new Map();
      for (const [name, s] of snaps) if (s.unread > 0 && s.top > lastRead(store, name)) counts.set(name, s.unread);
      for (const m of store.messages.values()) {
        if (m.from_id === session.id) continue;
        const s = snaps.get(m.from);
        if (m.id > Math.max(s ? s.top : 0, lastRead(store, m.from))) counts.set(m.from, (counts.get(m.from) || 0) + 1);
      }
      return counts;
    }

    /** The open conversation is on screen: everything in it is read, here and on the server. */
    function markRead() {
      const { session, store, current, transport } = ctx.state();
      if (!current || document.hidden || !transport) return;
      const floor = floorOf(current);
      let top = 0;
      let topIn = 0;
      for (const m of store.messages.values()) {
        if (m.id < floor || ctx.peerName(m) !== current) continue;
        top = Math.max(top, m.id);
        if (m.from === current && m.from_id !== session.id) topIn = Math.max(topIn, m.id);
      }
      const s = snaps.get(current);
      if (s) s.unread = 0;
      if (top > lastRead(store, current)) { store.lastRead.set(current, top); ctx.save(); }
      if (topIn > (readPosted.get(current) || 0) && !readBusy.has(current)) postRead(current, top);
    }
    async function postRead(name, upto) {
      const { store, transport, gen } = ctx.state();
      readBusy.add(name);
      try {
        const r = await transport.call("read", { ...withArgs(store, name), upto });
        if (gen !== ctx.state().gen) return;
        readPosted.set(name, Math.max(readPosted.get(name) || 0, upto, num(r.upto)));
      } catch (e) {
        if (gen !== ctx.state().gen) return;
        if (e instanceof ns.HttpError && e.status === 401) ctx.unauthorized(e);
        // Asked again when a newer message is shown, not at every redraw.
        else readPosted.set(name, Math.max(readPosted.get(name) || 0, upto));
        return;
      } finally {
        if (gen === ctx.state().gen) readBusy.delete(name);
      }
      markRead(); // more may have arrived meanwhile
    }

    /** A read marker moved (`read` event): the partner's on this user's messages, or this user's on another device. */
    function applyRead(ev) {
      const { session, store } = ctx.state();
      const upto = num(ev.upto);
      if (Number(ev.by_id) === session.id || ev.by === session.name) {
        const name = String(ev.with);
        readPosted.set(name, Math.max(readPosted.get(name) || 0, upto));
        const s = snaps.get(name);
        if (s && upto >= s.top) s.unread = 0;
        if (upto <= lastRead(store, name)) return !!s;
        store.lastRead.set(name, upto);
        return true;
      }
      const c = contactOf(store, String(ev.by), ev.by_id);
      if (upto <= c.readBy) return false;
      c.readBy = upto;
      return true;
    }

    /** The newest id known of each partner's conversation, for ordering the list. */
    const newestOf = (name) => { const s = snaps.get(name); return s ? s.top : 0; };
    const isLoaded = (name) => histOf(name).loaded;

    return {
      loadNewest, loadOlder, schedule, reset, unreadCounts, markRead, applyRead,
      floorOf, canLoadOlder, loadingOlder, newestOf, isLoaded,
    };
  };
})();
