"use strict";
/*
 * Ongea Pesa: the voice button, as a phone app would build it. Plain browser JavaScript, no libraries.
 *
 * The whole protocol (../shared/spec/server.md) in five steps:
 *   1. POST /v1/sessions with the user token      -> {session_id, session_token, ws_url, expires_at}
 *   2. open the WebSocket of ws_url (conversation_signature = the session token) and send
 *      {type: "conversation_initiation_client_data", dynamic_variables: {language}}
 *   3. send what the person said: {type: "user_message", text}
 *   4. show what the server sends: agent_response, user_transcript, and client_tool_call for
 *      show_proposal / request_pin / show_receipt / balance_update; answer ping with pong
 *   5. answer a tool call with {type: "client_tool_result", tool_call_id, result, is_error}:
 *      "confirm" or "cancel" for a tapped proposal card, the PIN digits for request_pin.
 * The server decides everything about money; the page only shows and asks.
 */

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ongea.userToken";
const NOTE_KEY = "ongea.demoNote";
const SESSION_KEY = "ongea.session"; // per tab: a reload goes on with the same session (sessions are capped)
const PREFS_KEY = "ongea.prefs";
const TYPE_NAMES = {
  send_phone: "Send money",
  buy_goods_pochi: "Pay Pochi la Biashara",
  buy_goods_till: "Buy goods",
  paybill: "Pay bill",
  withdraw: "Withdraw cash",
  bank_to_mpesa: "Bank to M-Pesa",
  mpesa_to_bank: "M-Pesa to bank",
};
const STATUS_NAMES = {
  pending: "Waiting for you",
  processing: "Sent, M-Pesa is confirming",
  completed: "Completed",
  failed: "Failed, money returned",
  cancelled: "Cancelled",
};

const app = {
  token: localStorage.getItem(TOKEN_KEY),
  // {session_id, session_token, ws_url, expires_at} from POST /v1/sessions
  session: JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null"),
  ws: null,
  ready: false, // conversation_initiation_metadata received on the current socket
  opening: null, // the one session/socket being set up, shared by concurrent callers
  outbox: [], // messages sent while the socket was not ready
  retries: 0,
  reconnecting: false,
  greeting: false, // the next agent_response is the greeting every new connection starts with
  proposalCall: null, // tool_call_id of the show_proposal on screen
  pinCall: null, // tool_call_id of the request_pin being answered
  pin: "",
  receipts: new Set(), // transactions whose receipt was shown (a new connection sends the last one again)
  prefs: { language: "en-KE", sound: false, ...JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") },
};

// ---------- small helpers ----------

/** "1500.5" -> "KES 1,500.50" without going through floating point. */
function kes(value) {
  if (value === null || value === undefined || value === "") return "KES —";
  const [whole, cents = ""] = String(value).split(".");
  return `KES ${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents.padEnd(2, "0").slice(0, 2)}`;
}

function recipientOf(p) {
  const refs = [];
  if (p.phone) refs.push(`+${String(p.phone).replace(/^\+/, "")}`);
  if (p.till) refs.push(`Till ${p.till}`);
  if (p.paybill) refs.push(`Paybill ${p.paybill}`);
  if (p.account) refs.push(`Account ${p.account}`);
  if (p.agent) refs.push(`Agent ${p.agent}`);
  if (p.store) refs.push(`Store ${p.store}`);
  if (p.bank_code) refs.push(`Bank ${p.bank_code}`);
  return [p.recipient_name || p.recipient, refs.join(", ")].filter(Boolean).join(" · ") || "—";
}

async function http(method, path, { token = app.token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await fetch(path, { method, headers, body: payload });
    const data = await res.json().catch(() => null);
    return { status: res.status, ok: res.ok, data };
  } catch (err) {
    return { status: 0, ok: false, data: null };
  }
}

function errorText(r) {
  const message = r.data && r.data.error && r.data.error.message;
  return message || (r.status ? `error ${r.status}` : "the server cannot be reached");
}

/** The connection state shown in the top bar (tests and screen readers read data-state). */
function setStatus(state, text) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = text;
}

function addMessage(kind, text) {
  const li = document.createElement("li");
  li.className = `msg ${kind}`;
  li.textContent = text;
  $("conversation").append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

function speak(text) {
  if (!app.prefs.sound || !window.speechSynthesis) return;
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = app.prefs.language;
  window.speechSynthesis.speak(utterance);
}

// ---------- signing in ----------

async function showSignin(message = "") {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  setStatus("idle", "Signed out");
  // The demo route exists only on the server's embedded development defaults.
  const offer = await http("GET", "/v1/dev/demo-user", { token: null });
  $("demo").hidden = offer.status !== 200;
}

function signIn(token, note = "") {
  app.token = token.trim();
  localStorage.setItem(TOKEN_KEY, app.token);
  localStorage.setItem(NOTE_KEY, note);
  showApp();
}

function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  const note = localStorage.getItem(NOTE_KEY) || "";
  $("demo-note").textContent = note;
  $("demo-note").hidden = !note;
  setStatus("idle", "Ready");
  refreshWallet();
  if (sessionLive()) ensureSocket().catch(() => {}); // back after a reload: see what happened meanwhile
}

function signOut(message = "") {
  closeSocket();
  if (app.session) http("DELETE", `/v1/sessions/${encodeURIComponent(app.session.session_id)}`);
  keepSession(null);
  app.token = null;
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(NOTE_KEY);
  showSignin(message);
}

async function tryDemo() {
  $("demo-button").disabled = true;
  const r = await http("POST", "/v1/dev/demo-user", { token: null, body: {} });
  $("demo-button").disabled = false;
  if (r.status !== 201) {
    $("signin-error").textContent = `No demo user: ${errorText(r)}`;
    return;
  }
  const names = r.data.contacts.map((c) => c.nickname || c.name).join(", ");
  signIn(r.data.token, `Demo user ${r.data.phone}. PIN ${r.data.pin}. Contacts: ${names}.`);
  showBalance(r.data.balance);
}

// ---------- wallet and history: the app API (GET /v1/me, /v1/transactions) where the server has it -------

async function tool(name, params = {}) {
  if (!app.session) return { ok: false, status: 0, data: null };
  const body = { session_id: app.session.session_id, ...params };
  return http("POST", `/v1/tools/${name}`, { token: app.session.session_token, body });
}

async function refreshWallet() {
  const me = await http("GET", "/v1/me");
  if (me.status === 401) return signOut("That token was not accepted. Paste a fresh one.");
  if (me.ok && me.data) showBalance(me.data.wallet_balance ?? me.data.balance);
  else if (app.ready && $("proposal").hidden && $("pin").hidden) {
    // No app API: ask the session's get_balance tool (a turn of its own, so never mid-payment).
    const r = await tool("get_balance");
    if (r.ok && r.data) showBalance(r.data.balance);
  }
  const list = await http("GET", "/v1/transactions?limit=5");
  const items = list.ok && list.data && Array.isArray(list.data.items) ? list.data.items : null;
  if (items) renderHistory(items);
  $("history").hidden = items === null; // no history API on this server: no list rather than an empty one
}

function showBalance(balance) {
  if (balance !== undefined && balance !== null) $("balance").textContent = kes(balance);
}

function renderHistory(items) {
  const ul = $("history-list");
  ul.replaceChildren();
  if (!items.length) ul.append(Object.assign(document.createElement("li"), { textContent: "Nothing yet." }));
  for (const t of items.slice(0, 5)) {
    const li = document.createElement("li");
    const what = Object.assign(document.createElement("span"), {
      textContent: `${TYPE_NAMES[t.type] || t.type} · ${recipientOf(t)}`,
    });
    const amount = Object.assign(document.createElement("span"), {
      className: "amount",
      textContent: kes(t.amount),
    });
    const when = t.created_at ? new Date(t.created_at).toLocaleString() : "";
    const meta = Object.assign(document.createElement("span"), {
      className: "meta",
      textContent: [STATUS_NAMES[t.status] || t.status, when].filter(Boolean).join(" · "),
    });
    li.dataset.status = t.status || "";
    li.append(what, amount, meta);
    // The receipt on screen follows its transaction (processing -> completed or failed).
    if (!$("receipt").hidden && $("r-id").textContent === t.id) {
      $("r-status").textContent = STATUS_NAMES[t.status] || t.status;
    }
    ul.append(li);
  }
}

// ---------- the session and its WebSocket ----------

function keepSession(session) {
  app.session = session;
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

function sessionLive() {
  return Boolean(app.session) && Date.parse(app.session.expires_at) > Date.now() + 5000;
}

/** Makes sure a live session has a socket (minting a new session when there is none or it expired). */
function ensureSocket() {
  if (!app.opening) app.opening = openSocket().finally(() => (app.opening = null));
  return app.opening;
}

async function openSocket() {
  if (app.ws && sessionLive()) return;
  if (!sessionLive()) {
    closeSocket(); // a socket of the old session, if any
    setStatus("connecting", "Connecting…");
    const r = await http("POST", "/v1/sessions", { body: {} });
    if (r.status === 401) {
      signOut("That token was not accepted. Paste a fresh one.");
      throw new Error("unauthorized");
    }
    if (r.status !== 201) {
      setStatus("error", `Cannot start a session: ${errorText(r)}`);
      throw new Error("no session");
    }
    keepSession(r.data);
    app.retries = 0;
  }
  connect();
}

/** The session's WebSocket on the server this page came from (ws_url's path and query, our own host). */
function socketUrl() {
  const given = new URL(app.session.ws_url || "/v1/convai/conversation", location.href);
  if (!given.searchParams.has("conversation_signature")) {
    given.searchParams.set("conversation_signature", app.session.session_token);
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${given.pathname}${given.search}`;
}

function connect() {
  const ws = new WebSocket(socketUrl());
  app.ws = ws;
  app.ready = false;
  app.greeting = true;
  ws.onopen = () => {
    const language = app.prefs.language.slice(0, 2);
    ws.send(JSON.stringify({ type: "conversation_initiation_client_data", dynamic_variables: { language } }));
  };
  ws.onmessage = (event) => {
    if (ws !== app.ws) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    onServerEvent(message);
  };
  ws.onclose = (event) => {
    if (ws === app.ws) onClosed(event);
  };
}

function send(message) {
  if (app.ws && app.ready) app.ws.send(JSON.stringify(message));
  else app.outbox.push(message);
}

function closeSocket() {
  const ws = app.ws;
  app.ws = null;
  app.ready = false;
  app.outbox = [];
  if (ws) ws.close(1000, "bye");
}

function onClosed(event) {
  app.ws = null;
  app.ready = false;
  // Answers to this connection's tool calls mean nothing on the next one; what the person said still counts.
  app.outbox = app.outbox.filter((message) => message.type === "user_message");
  // 1008 (policy): the server refused this session (expired, ended, or not ours): start afresh next time.
  const ended = event.code === 1000 && /ended|expired/.test(event.reason);
  if (event.code === 1008 || ended || !sessionLive()) return expire(event.reason);
  app.retries += 1;
  if (app.retries > 6) {
    setStatus("offline", "Offline. Send a message to try again.");
    app.retries = 0;
    return;
  }
  app.reconnecting = true;
  setStatus("reconnecting", "Reconnecting…");
  const delay = Math.min(8000, 250 * 2 ** app.retries);
  setTimeout(() => {
    if (!app.ws && sessionLive()) connect();
  }, delay);
}

function expire(reason = "") {
  keepSession(null);
  app.reconnecting = false;
  app.outbox = [];
  hideProposal();
  hidePin();
  setStatus("expired", "Session ended. Your next message starts a new one.");
  const why = reason ? ` (${reason})` : "";
  addMessage("note", `This voice session has ended${why}. Press or type to start a new one.`);
}

function onServerEvent(message) {
  switch (message.type) {
    case "conversation_initiation_metadata":
      app.ready = true;
      app.retries = 0;
      setStatus("live", "Connected");
      for (const queued of app.outbox.splice(0)) app.ws.send(JSON.stringify(queued));
      if (app.reconnecting) {
        addMessage("note", "Reconnected.");
        staleCard();
      }
      refreshWallet();
      break;
    case "ping":
      send({ type: "pong", event_id: (message.ping_event || {}).event_id });
      break;
    case "agent_response": {
      const event = message.agent_response_event || {};
      // The greeting is shown only to someone who has not started talking (and not again on a reconnect,
      // where the card of a waiting payment comes back without its read-back being said again).
      const quiet = app.greeting && (app.reconnecting || document.querySelector(".msg.user"));
      if (event.agent_response && !quiet) {
        addMessage("agent", event.agent_response);
        speak(event.agent_response);
      }
      if (!event.turn) break; // more of the same turn follows
      app.greeting = false;
      // This server adds what the turn did; a card whose proposal is gone (cancelled, expired) goes too.
      app.reconnecting = false;
      if (event.turn && event.turn.proposal === null) hideProposal();
      else if (event.turn && event.turn.proposal && !sameCard(event.turn.proposal)) {
        showProposal(null, event.turn.proposal); // after a reload: the open proposal, answered by voice
      }
      if (event.turn && event.turn.balance) showBalance(event.turn.balance);
      break;
    }
    case "user_transcript": {
      const event = message.user_transcription_event || message.user_transcript_event || {};
      showTranscript(event.user_transcript || "");
      break;
    }
    case "client_tool_call":
      onToolCall(message.client_tool_call || message.client_tool_call_event || {});
      break;
    case "error": {
      const event = message.error_event || message.error || {};
      // A session that is over is told by the close that follows.
      if (!String(event.code).startsWith("session_")) {
        addMessage("note", `The server could not use that: ${event.message || event.code || "error"}`);
      }
      break;
    }
    default: // audio, interruption, corrections, ...: nothing to show in a text page
  }
}

/** The server echoes what it heard; typed text was shown already, so only new words are added. */
function showTranscript(text) {
  const pending = document.querySelector(".msg.user[data-pending]");
  if (pending && pending.textContent === text.trim()) delete pending.dataset.pending;
  else if (text) addMessage("user", text);
}

async function say(text) {
  text = text.trim();
  if (!text) return;
  addMessage("user", text).dataset.pending = "1";
  try {
    await ensureSocket();
  } catch {
    return;
  }
  send({ type: "user_message", text });
}

// ---------- client tools: what the app shows ----------

function answer(toolCallId, result, isError = false) {
  send({ type: "client_tool_result", tool_call_id: toolCallId, result, is_error: isError });
}

function onToolCall(call) {
  const p = call.parameters || {};
  if (call.tool_name === "show_proposal") showProposal(call.tool_call_id, p);
  else if (call.tool_name === "request_pin") showPin(call.tool_call_id, p);
  else if (call.tool_name === "show_receipt") showReceipt(p);
  else if (call.tool_name === "balance_update") showBalance(p.balance);
  else answer(call.tool_call_id, `unknown client tool ${call.tool_name}`, true);
}

function showProposal(toolCallId, p) {
  if (["cancelled", "expired", "voided"].includes(p.status)) return hideProposal();
  app.proposalCall = toolCallId;
  $("receipt").hidden = true;
  $("proposal-title").textContent = TYPE_NAMES[p.type] || p.type;
  $("p-to").textContent = recipientOf(p);
  $("p-amount").textContent = kes(p.amount);
  $("p-fee").textContent = kes(p.fee);
  $("p-total").textContent = kes(p.total);
  $("p-note").textContent = "Tap Confirm, or say “yes”. Nothing moves until you do.";
  $("proposal").dataset.proposalId = p.proposal_id || "";
  $("proposal").dataset.version = p.version ?? "";
  for (const id of ["confirm", "cancel"]) $(id).disabled = false;
  $("proposal").hidden = false;
  if (!toolCallId) staleCard();
  $("proposal").scrollIntoView({ block: "nearest" });
}

function sameCard(p) {
  const card = $("proposal");
  const shown = card.dataset.proposalId === p.proposal_id && card.dataset.version === String(p.version);
  return shown && !card.hidden;
}

/** Tool calls belong to the connection that sent them: after a reconnect the old card can no longer be
 * tapped. The new connection's greeting shows a proposal still waiting as a new card (with its own tool call);
 * until it does, and for a server that does not, a spoken answer still works. */
function staleCard() {
  if (!$("pin").hidden) hidePin();
  if ($("proposal").hidden) return;
  app.proposalCall = null;
  for (const id of ["confirm", "cancel"]) $(id).disabled = true;
  $("p-note").textContent = "The connection was renewed: say “yes” to confirm or “no” to cancel.";
}

function hideProposal() {
  app.proposalCall = null;
  $("proposal").hidden = true;
}

function tap(result) {
  if (!app.proposalCall) return;
  answer(app.proposalCall, result);
  for (const id of ["confirm", "cancel"]) $(id).disabled = true;
  if (result === "cancel") hideProposal();
  else $("p-note").textContent = "Confirming…";
}

function showPin(toolCallId, p) {
  app.pinCall = toolCallId;
  $("pin").dataset.proposalId = p.proposal_id || "";
  $("p-note").textContent = "Enter your PIN below to send it.";
  app.pin = "";
  drawPin();
  $("pin").hidden = false;
  $("pin").scrollIntoView({ block: "nearest" });
  $("pin").querySelector("[data-digit='1']").focus();
}

function hidePin() {
  app.pinCall = null;
  app.pin = "";
  $("pin").hidden = true;
}

/** Dots only: the digits are never written to the page. */
function drawPin() {
  const n = app.pin.length;
  $("pin-dots").textContent = n ? "●".repeat(n) : "No digits entered";
  $("pin-dots").setAttribute("aria-label", `${n} of 4 to 6 digits entered`);
}

function pinKey(key) {
  if (!app.pinCall) return;
  if (/^[0-9]$/.test(key) && app.pin.length < 6) app.pin += key;
  else if (key === "Backspace") app.pin = app.pin.slice(0, -1);
  else if (key === "Enter" && app.pin.length >= 4) {
    answer(app.pinCall, app.pin);
    hidePin();
    addMessage("note", "PIN sent.");
    return;
  }
  drawPin();
}

function showReceipt(p) {
  showBalance(p.balance);
  if (app.receipts.has(p.transaction_id)) return;
  app.receipts.add(p.transaction_id);
  // The proposal id is the transaction's id: only that card (and its PIN pad) is done.
  if ($("proposal").dataset.proposalId === p.transaction_id) hideProposal();
  if ($("pin").dataset.proposalId === p.transaction_id) hidePin();
  $("r-status").textContent = STATUS_NAMES[p.status] || p.status || "";
  $("r-id").textContent = p.transaction_id || "";
  $("r-balance").textContent = kes(p.balance);
  $("receipt").hidden = false;
  refreshWallet();
  if (p.status === "processing") setTimeout(refreshWallet, 4000); // M-Pesa usually answers in seconds
}

// ---------- the microphone: press and hold ----------

function setupMic() {
  const mic = $("mic");
  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  if (!Recognition) {
    mic.disabled = true;
    mic.textContent = "No voice input in this browser: type instead";
    return;
  }
  let recognition = null;
  let heard = "";
  const start = () => {
    if (recognition) return;
    heard = "";
    recognition = new Recognition();
    recognition.lang = app.prefs.language;
    recognition.interimResults = true;
    recognition.continuous = true;
    recognition.onresult = (event) => {
      heard = Array.from(event.results, (result) => result[0].transcript).join(" ");
      $("say-input").value = heard;
    };
    recognition.onerror = (event) => {
      addMessage("note", `Voice input stopped (${event.error}). You can type instead.`);
    };
    recognition.onend = () => {
      recognition = null;
      mic.setAttribute("aria-pressed", "false");
      mic.textContent = "Hold to talk";
      if (heard.trim()) {
        $("say-input").value = "";
        say(heard);
      }
    };
    mic.setAttribute("aria-pressed", "true");
    mic.textContent = "Listening… let go to send";
    ensureSocket().catch(() => {}); // mint the session while the person speaks
    try {
      recognition.start();
    } catch (err) {
      recognition.onend();
    }
  };
  const stop = () => recognition && recognition.stop();
  mic.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    mic.setPointerCapture(e.pointerId);
    start();
  });
  mic.addEventListener("pointerup", stop);
  mic.addEventListener("pointercancel", stop);
  mic.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) start();
    if (e.key === " " || e.key === "Enter") e.preventDefault();
  });
  mic.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") stop();
  });
}

// ---------- wiring ----------

function savePrefs() {
  localStorage.setItem(PREFS_KEY, JSON.stringify(app.prefs));
  $("sound").setAttribute("aria-pressed", String(app.prefs.sound));
  $("sound").textContent = app.prefs.sound ? "Sound on" : "Sound off";
  $("language").value = app.prefs.language;
}

function wire() {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if ($("token-input").value.trim()) signIn($("token-input").value);
  });
  $("demo-button").addEventListener("click", tryDemo);
  $("signout").addEventListener("click", () => signOut());
  $("say-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("say-input").value;
    $("say-input").value = "";
    say(text);
  });
  $("confirm").addEventListener("click", () => tap("confirm"));
  $("cancel").addEventListener("click", () => tap("cancel"));
  $("receipt-close").addEventListener("click", () => ($("receipt").hidden = true));
  for (const key of document.querySelectorAll("[data-digit]")) {
    key.addEventListener("click", () => pinKey(key.dataset.digit));
  }
  $("pin-back").addEventListener("click", () => pinKey("Backspace"));
  $("pin-ok").addEventListener("click", () => pinKey("Enter"));
  $("pin").addEventListener("keydown", (e) => {
    if (/^[0-9]$/.test(e.key) || e.key === "Backspace" || e.key === "Enter") {
      e.preventDefault();
      pinKey(e.key);
    }
  });
  $("language").addEventListener("change", () => {
    app.prefs.language = $("language").value;
    savePrefs();
  });
  $("sound").addEventListener("click", () => {
    app.prefs.sound = !app.prefs.sound;
    if (!app.prefs.sound && window.speechSynthesis) window.speechSynthesis.cancel();
    savePrefs();
  });
  setupMic();
  savePrefs();
}

wire();
if (app.token) showApp();
else showSignin();
