"use strict";
/*
 * The live feed: GET /v1/events (Server-Sent Events) for the wallet's balance and the receipts, in place of
 * polling. fetch() with a ReadableStream rather than EventSource, because EventSource cannot send the
 * Authorization header (a token in the URL would end up in logs). After a cut it reconnects with the last
 * id it got as Last-Event-ID, so nothing is missed or repeated; a `reset` event means "reload what you show".
 *
 *   OngeaFeed.start(() => token)   follow the token's user (called again with a new token: restarts)
 *   OngeaFeed.stop()
 *   OngeaFeed.receiptShown(p)      the page shows this show_receipt: keep it up to date
 *   OngeaFeed.live                 true while a stream is open
 *   OngeaFeed.on(name, fn)         "profiles" | "transactions" | "balance_history" | "mpesa_transactions" | "reset"
 */
(function () {
  const LAST_KEY = "ongea.feed.lastEventId";
  const listeners = {};
  const feed = { live: false };
  let getToken = null;
  let controller = null;
  let userToken = null;
  let backoff = 1000;
  let shown = null; // {transaction_id, reference} of the receipt on screen

  const byId = (id) => document.getElementById(id);
  const money = (value) => {
    const n = Number(value);
    return Number.isFinite(n) ? `KES ${n.toLocaleString("en-KE", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}` : "";
  };

  function emit(name, data) {
    for (const fn of listeners[name] || []) {
      try {
        fn(data);
      } catch (err) {
        console.error("feed listener", err);
      }
    }
  }

  /** What the page shows, kept current: the balance, and the receipt on screen (status, M-Pesa's code). */
  function apply(name, data) {
    const row = data.row || {};
    if (name === "profiles" && row.wallet_balance !== undefined) {
      if (typeof window.showFeedBalance === "function") window.showFeedBalance(row.wallet_balance);
      else if (byId("balance")) byId("balance").textContent = money(row.wallet_balance);
    }
    if (name === "transactions" && shown && row.id === shown.transaction_id) {
      if (byId("r-status")) byId("r-status").textContent = row.status;
      if (row.reference && byId("r-id")) byId("r-id").textContent = row.reference; // M-Pesa's code, not the id
      shown.reference = row.reference || shown.reference;
    }
    if (name === "transactions" && typeof window.refreshWallet === "function" && row.status !== "pending") {
      clearTimeout(apply.history);
      apply.history = setTimeout(() => window.refreshWallet(), 300); // the history list, once per burst
    }
    if (name === "reset" && typeof window.refreshWallet === "function") window.refreshWallet();
    emit(name, data);
  }

  function parseBlock(block) {
    let id = null;
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    return { id, event, data: data.length ? data.join("\n") : null };
  }

  async function follow() {
    const token = getToken && getToken();
    if (!token) return;
    if (token !== userToken) {
      sessionStorage.removeItem(LAST_KEY); // another user: never resume someone else's position
      userToken = token;
    }
    controller = new AbortController();
    const headers = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
    const last = sessionStorage.getItem(LAST_KEY);
    if (last) headers["Last-Event-ID"] = last;
    let response;
    try {
      response = await fetch("/v1/events", { headers, signal: controller.signal, cache: "no-store" });
    } catch (err) {
      return retry();
    }
    if (response.status === 400 && last) {
      sessionStorage.removeItem(LAST_KEY); // an id this server does not know: start afresh
      return retry(0);
    }
    if (response.status === 401 || response.status === 404) {
      feed.live = false;
      return; // no feed for this token (or none on this server): the page keeps its own refreshes
    }
    if (!response.ok || !response.body) return retry();
    feed.live = true;
    backoff = 1000;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = parseBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (block.id) sessionStorage.setItem(LAST_KEY, block.id);
          if (block.data === null) continue;
          let data;
          try {
            data = JSON.parse(block.data);
          } catch (err) {
            continue;
          }
          apply(block.event, data);
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return;
    }
    feed.live = false;
    retry();
  }

  function retry(delay = backoff) {
    feed.live = false;
    if (!getToken || (controller && controller.signal.aborted)) return;
    backoff = Math.min(backoff * 2, 30000);
    setTimeout(follow, delay);
  }

  feed.start = function (tokenOf) {
    feed.stop();
    getToken = tokenOf;
    follow();
  };
  feed.stop = function () {
    if (controller) controller.abort();
    controller = null;
    feed.live = false;
  };
  feed.receiptShown = function (p) {
    shown = { transaction_id: p.transaction_id, reference: p.reference || "" };
    if (p.reference && byId("r-id")) byId("r-id").textContent = p.reference;
  };
  feed.on = function (name, fn) {
    (listeners[name] = listeners[name] || []).push(fn);
  };
  window.OngeaFeed = feed;
})();
