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
 * After a reload, GET /v1/sessions/{id}/transcript gives back this session's turns as the server kept them.
 */

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ongea.userToken";
const NOTE_KEY = "ongea.demoNote";
const SESSION_KEY = "ongea.session"; // per tab: a reload goes on with the same session (sessions are capped)
// A business wallet this page speaks for (`?business=ID`, sql/0028): the member's sessions pay from it, and the
// page shows the business's name and colour (white label). Without it, the user's own wallet.
const BUSINESS = (() => {
  const id = new URLSearchParams(location.search).get("business") || "";
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? id.toLowerCase() : null;
})();
const CLOSED_KEY = "ongea.closedReceipts"; // per tab: receipts the person closed stay closed after a reload
const PREFS_KEY = "ongea.prefs";

/* Every word the page itself shows, in both languages the conversation speaks. The page follows the
 * conversation's language (the `language` of each turn) and the switch the person sets. */
const STRINGS = {
  en: {
    starting: "Starting…",
    signed_out: "Signed out",
    ready: "Ready",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline. Send a message to try again.",
    expired: "Session ended. Your next message starts a new one.",
    no_session: "Cannot start a session: {why}",
    unreachable: "the server cannot be reached",
    error_status: "error {status}",
    signin_title: "Sign in",
    token_label: "Your user token",
    token_placeholder: "Paste the token printed by: ongea-pesa user add --phone … --json",
    signin_button: "Sign in",
    or: "or",
    demo_button: "Try it as a demo user",
    demo_hint: "A new user with a balance, a PIN and a few contacts (Mama, JK, Brayo).",
    demo_hint_pin: "A new user with {balance}, the contacts Mama, JK and Brayo, and the PIN {pin}.",
    no_demo: "No demo user: {why}",
    demo_note: "Demo user {phone}. PIN {pin}. Contacts: {names}.",
    bad_token: "That token was not accepted. Paste a fresh one.",
    wallet_title: "Wallet balance",
    signout: "Sign out",
    talk_title: "Talk to pay",
    conversation_label: "Conversation",
    first_hint: "Say or type what you want to do, for example “send 500 to Mama” or “tuma elfu moja kwa JK”.",
    to: "To",
    amount: "Amount",
    fee: "Fee",
    total: "Total",
    confirm: "Confirm",
    cancel: "Cancel",
    card_note: "Tap Confirm, or say “yes”. Nothing moves until you do.",
    card_renewed: "The connection was renewed: say “yes” to confirm or “no” to cancel.",
    card_offline: "You are offline, so Confirm is off until the connection is back. Nothing has been sent.",
    card_pin_below: "Enter your PIN below to send it.",
    confirming: "Confirming…",
    tap_lost: "The connection dropped before an answer came. If your tap arrived you will see the receipt; if not, the card comes back to tap again.",
    pin_title: "Enter your PIN",
    pin_hint: "Amounts over KES 1,000 need your PIN. It is never shown or spoken.",
    pin_count: "{n} of 4 to 6 digits entered",
    pin_offline: "You are offline: the PIN will be asked for again once the connection is back.",
    keypad_label: "PIN keypad",
    pin_back: "Delete last digit",
    pin_ok: "Send PIN",
    pin_cancel: "Cancel payment",
    cancel_word: "cancel",
    pin_sent: "PIN sent.",
    receipt_title: "Receipt",
    status: "Status",
    reference: "Reference",
    new_balance: "New balance",
    done: "Done",
    say_label: "Type what you would say",
    say_placeholder: "Type: send 500 to Mama",
    send: "Send",
    mic_idle: "Hold to talk",
    mic_listening: "Listening… let go to send",
    mic_none: "No voice input in this browser: type instead",
    mic_hint: "Hold the button (or Space on it) while you speak; let go to send.",
    mic_stopped: "Voice input stopped ({why}). You can type instead.",
    language: "Language",
    sound_on: "Sound on",
    sound_off: "Sound off",
    history_title: "Recent transactions",
    history_empty: "Nothing yet.",
    reconnected: "Reconnected.",
    session_ended: "This voice session has ended. Press or type to start a new one.",
    server_refused: "The server could not use that: {why}",
    you_tapped_confirm: "You tapped Confirm.",
    you_tapped_cancel: "You tapped Cancel.",
    you_entered_pin: "PIN entered.",
    type_send_phone: "Send money",
    type_buy_goods_pochi: "Pay Pochi la Biashara",
    type_buy_goods_till: "Buy goods",
    type_paybill: "Pay bill",
    type_withdraw: "Withdraw cash",
    type_bank_to_mpesa: "Bank to M-Pesa",
    type_mpesa_to_bank: "M-Pesa to bank",
    status_pending: "Waiting for you",
    status_processing: "Sent, M-Pesa is confirming",
    status_completed: "Completed",
    status_failed: "Failed, money returned",
    status_cancelled: "Cancelled",
    ref_till: "Till {v}",
    ref_paybill: "Paybill {v}",
    ref_account: "Account {v}",
    ref_agent: "Agent {v}",
    ref_store: "Store {v}",
    ref_bank: "Bank {v}",
  },
  sw: {
    starting: "Inaanza…",
    signed_out: "Umetoka",
    ready: "Tayari",
    connecting: "Inaunganisha…",
    connected: "Imeunganishwa",
    reconnecting: "Inaunganisha tena…",
    offline: "Hakuna mtandao. Tuma ujumbe ujaribu tena.",
    expired: "Kipindi kimeisha. Ujumbe wako ujao utaanzisha kipya.",
    no_session: "Imeshindwa kuanzisha kipindi: {why}",
    unreachable: "seva haipatikani",
    error_status: "hitilafu {status}",
    signin_title: "Ingia",
    token_label: "Tokeni yako ya mtumiaji",
    token_placeholder: "Bandika tokeni iliyochapishwa na: ongea-pesa user add --phone … --json",
    signin_button: "Ingia",
    or: "au",
    demo_button: "Jaribu kama mtumiaji wa majaribio",
    demo_hint: "Mtumiaji mpya mwenye salio, PIN na anwani chache (Mama, JK, Brayo).",
    demo_hint_pin: "Mtumiaji mpya mwenye {balance}, anwani Mama, JK na Brayo, na PIN {pin}.",
    no_demo: "Hakuna mtumiaji wa majaribio: {why}",
    demo_note: "Mtumiaji wa majaribio {phone}. PIN {pin}. Anwani: {names}.",
    bad_token: "Tokeni hiyo haikukubaliwa. Bandika mpya.",
    wallet_title: "Salio la pochi",
    signout: "Toka",
    talk_title: "Ongea ulipe",
    conversation_label: "Mazungumzo",
    first_hint: "Sema au andika unachotaka kufanya, kwa mfano “tuma mia tano kwa Mama” au “tuma elfu moja kwa JK”.",
    to: "Kwa",
    amount: "Kiasi",
    fee: "Ada",
    total: "Jumla",
    confirm: "Thibitisha",
    cancel: "Ghairi",
    card_note: "Gusa Thibitisha, au sema “ndio”. Hakuna kinachotumwa mpaka ufanye hivyo.",
    card_renewed: "Muunganisho umefanywa upya: sema “ndio” kuthibitisha au “hapana” kughairi.",
    card_offline: "Huna mtandao, kwa hivyo Thibitisha imezimwa mpaka muunganisho urudi. Hakuna kilichotumwa.",
    card_pin_below: "Weka PIN yako hapa chini ili kutuma.",
    confirming: "Inathibitisha…",
    tap_lost: "Muunganisho ulikatika kabla ya jibu. Kama mguso wako ulifika utaona risiti; kama sivyo, kadi itarudi uguse tena.",
    pin_title: "Weka PIN yako",
    pin_hint: "Kiasi zaidi ya KES 1,000 kinahitaji PIN yako. Haionyeshwi wala kutamkwa.",
    pin_count: "Tarakimu {n} kati ya 4 hadi 6 zimewekwa",
    pin_offline: "Huna mtandao: PIN itaombwa tena muunganisho ukirudi.",
    keypad_label: "Vitufe vya PIN",
    pin_back: "Futa tarakimu ya mwisho",
    pin_ok: "Tuma PIN",
    pin_cancel: "Ghairi malipo",
    cancel_word: "ghairi",
    pin_sent: "PIN imetumwa.",
    receipt_title: "Risiti",
    status: "Hali",
    reference: "Kumbukumbu",
    new_balance: "Salio jipya",
    done: "Sawa",
    say_label: "Andika ungesema nini",
    say_placeholder: "Andika: tuma 500 kwa Mama",
    send: "Tuma",
    mic_idle: "Shikilia uongee",
    mic_listening: "Nakusikiliza… achilia kutuma",
    mic_none: "Kivinjari hiki hakina sauti: andika badala yake",
    mic_hint: "Shikilia kitufe (au Space juu yake) unapoongea; achilia kutuma.",
    mic_stopped: "Sauti imesimama ({why}). Unaweza kuandika badala yake.",
    language: "Lugha",
    sound_on: "Sauti imewashwa",
    sound_off: "Sauti imezimwa",
    history_title: "Miamala ya hivi karibuni",
    history_empty: "Bado hakuna kitu.",
    reconnected: "Imeunganishwa tena.",
    session_ended: "Kipindi hiki cha sauti kimeisha. Bonyeza au andika kuanzisha kipya.",
    server_refused: "Seva haikuweza kutumia hilo: {why}",
    you_tapped_confirm: "Uligusa Thibitisha.",
    you_tapped_cancel: "Uligusa Ghairi.",
    you_entered_pin: "PIN imewekwa.",
    type_send_phone: "Tuma pesa",
    type_buy_goods_pochi: "Lipa Pochi la Biashara",
    type_buy_goods_till: "Lipa bidhaa",
    type_paybill: "Lipa bili",
    type_withdraw: "Toa pesa",
    type_bank_to_mpesa: "Benki kwenda M-Pesa",
    type_mpesa_to_bank: "M-Pesa kwenda benki",
    status_pending: "Inakusubiri",
    status_processing: "Imetumwa, M-Pesa inathibitisha",
    status_completed: "Imekamilika",
    status_failed: "Imeshindikana, pesa imerudishwa",
    status_cancelled: "Imeghairiwa",
    ref_till: "Till {v}",
    ref_paybill: "Paybill {v}",
    ref_account: "Akaunti {v}",
    ref_agent: "Wakala {v}",
    ref_store: "Stoo {v}",
    ref_bank: "Benki {v}",
  },
};
window.ONGEA_STRINGS = STRINGS; // the tests check a Swahili page against the English of this table

const app = {
  token: localStorage.getItem(TOKEN_KEY),
  feedBalances: 0, // balances the live feed brought: a fetch that started before one of them is out of date
  // {session_id, session_token, ws_url, expires_at} from POST /v1/sessions
  session: JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null"),
  ws: null,
  ready: false, // conversation_initiation_metadata received on the current socket
  opening: null, // the one session/socket being set up, shared by concurrent callers
  outbox: [], // what the person said while the socket was not ready (taps and PINs are never queued)
  retries: 0,
  reconnecting: false,
  greeting: false, // the next agent_response is the greeting every new connection starts with
  proposalCall: null, // tool_call_id of the show_proposal on screen
  pinCall: null, // tool_call_id of the request_pin being answered
  tapSent: false, // a tap went out and its turn has not answered yet
  pin: "",
  receipts: new Set(), // transactions whose receipt was shown (a new connection sends the last one again)
  closed: new Set(JSON.parse(sessionStorage.getItem(CLOSED_KEY) || "[]")), // receipts the person closed
  contacts: new Map(), // phone -> the name the person saved, for the history list
  prefs: { language: "en-KE", sound: false, ...JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") },
  // What is on screen, kept as data so a change of language can draw it again.
  view: { status: ["idle", "starting", {}], card: null, cardNote: "card_note", receipt: null, history: null },
  demoOffer: null,
  // The page follows the language of the conversation's turns until the person picks one on the switch;
  // from then on only an answer to something they said since moves it (a message already on its way, a
  // receipt told in Swahili say, does not take their choice back).
  followTurns: true,
};

// ---------- words ----------

function lang() {
  return app.prefs.language.startsWith("sw") ? "sw" : "en";
}

/** The page's own words in the page's language, {placeholders} filled. */
function t(key, vars = {}) {
  const text = STRINGS[lang()][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Draws every word of the page again in the current language. */
function translate() {
  document.documentElement.lang = lang();
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
  }
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
  // The page's own notes in the conversation (what the assistant said stays as it was said).
  for (const el of document.querySelectorAll("#conversation [data-key]")) {
    el.textContent = t(el.dataset.key, JSON.parse(el.dataset.vars || "{}"));
  }
  const [state, key, vars] = app.view.status;
  setStatus(state, key, vars);
  if (app.demoOffer) $("demo-hint").textContent = t("demo_hint_pin", app.demoOffer);
  showNote();
  if (app.view.card) drawCard(app.view.card);
  $("p-note").textContent = t(app.view.cardNote);
  if (app.view.receipt) drawReceipt(app.view.receipt);
  if (app.view.history) renderHistory(app.view.history);
  drawPin();
  drawSound();
  if (!$("mic").disabled && $("mic").getAttribute("aria-pressed") !== "true") $("mic").textContent = t("mic_idle");
  if ($("mic").disabled) $("mic").textContent = t("mic_none");
}

/** The page follows the language of the conversation, and the switch shows it. */
function setLanguage(code) {
  const full = code.startsWith("sw") ? "sw-KE" : "en-KE";
  if (app.prefs.language === full) return;
  app.prefs.language = full;
  savePrefs();
  translate();
}

// ---------- small helpers ----------

/** "1500.5" -> "KES 1,500.50" without going through floating point. */
function kes(value) {
  if (value === null || value === undefined || value === "") return "KES —";
  const [whole, cents = ""] = String(value).split(".");
  return `KES ${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents.padEnd(2, "0").slice(0, 2)}`;
}

function recipientOf(p) {
  const refs = [];
  const phone = p.phone ? String(p.phone).replace(/^\+/, "") : "";
  if (phone) refs.push(`+${phone}`);
  for (const [field, key] of [
    ["till", "ref_till"],
    ["paybill", "ref_paybill"],
    ["account", "ref_account"],
    ["agent", "ref_agent"],
    ["store", "ref_store"],
    ["bank_code", "ref_bank"],
  ]) {
    if (p[field]) refs.push(t(key, { v: p[field] }));
  }
  const name = p.recipient_name || p.recipient || (phone && app.contacts.get(phone)) || "";
  return [name, refs.join(", ")].filter(Boolean).join(" · ") || "—";
}

function typeName(type) {
  return STRINGS.en[`type_${type}`] ? t(`type_${type}`) : type;
}

function statusName(status) {
  return STRINGS.en[`status_${status}`] ? t(`status_${status}`) : status || "";
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
  return message || (r.status ? t("error_status", { status: r.status }) : t("unreachable"));
}

/** The connection state shown in the top bar (tests and screen readers read data-state). */
function setStatus(state, key, vars = {}) {
  app.view.status = [state, key, vars];
  const el = $("status");
  el.dataset.state = state;
  el.textContent = t(key, vars);
  syncControls();
}

function online() {
  return Boolean(app.ws && app.ready && app.ws.readyState === WebSocket.OPEN);
}

/** A tap or a PIN can only be sent on the connection whose tool call it answers: while there is none,
 * the controls are off and the card says why (never "Confirming…" for a tap that was not sent). */
function syncControls() {
  const live = online();
  if (!$("proposal").hidden && app.proposalCall) {
    for (const id of ["confirm", "cancel"]) $(id).disabled = !live || app.tapSent;
    if (!live && !app.tapSent) setCardNote("card_offline");
    else if (live && app.view.cardNote === "card_offline") setCardNote("card_note");
  }
  $("pin-ok").disabled = !live;
}

function setCardNote(key) {
  app.view.cardNote = key;
  $("p-note").textContent = t(key);
}

/** A line in the conversation; the conversation scrolls to it (the page itself does not jump). */
function addMessage(kind, text, key = null, vars = {}) {
  const li = document.createElement("li");
  li.className = `msg ${kind}`;
  if (key) {
    li.dataset.key = key;
    li.dataset.vars = JSON.stringify(vars);
    li.textContent = t(key, vars);
  } else {
    li.textContent = text;
  }
  const list = $("conversation");
  list.append(li);
  list.scrollTop = list.scrollHeight;
  return li;
}

function note(key, vars = {}) {
  return addMessage("note", "", key, vars);
}

/** A card, the keypad or a receipt comes into view whole (below the sticky bar; see scroll-margin). */
function reveal(el) {
  if (!el || el.hidden) return;
  requestAnimationFrame(() => el.scrollIntoView({ block: "nearest" }));
}

/** The control the person has to act on now, brought into view at the end of a turn. */
function revealOpen() {
  if (!$("pin").hidden) reveal($("pin"));
  else if (!$("proposal").hidden) reveal($("proposal"));
  else if (!$("receipt").hidden) reveal($("receipt"));
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
  setStatus("idle", "signed_out");
  // The demo route exists only on the server's embedded development defaults.
  const offer = await http("GET", "/v1/dev/demo-user", { token: null });
  $("demo").hidden = offer.status !== 200;
  if (offer.status === 200 && offer.data && offer.data.pin) {
    app.demoOffer = { pin: offer.data.pin, balance: kes(offer.data.balance) };
    $("demo-hint").textContent = t("demo_hint_pin", app.demoOffer);
  }
}

function signIn(token, demo = null) {
  app.token = token.trim();
  localStorage.setItem(TOKEN_KEY, app.token);
  if (demo) localStorage.setItem(NOTE_KEY, JSON.stringify(demo));
  else localStorage.removeItem(NOTE_KEY);
  showApp();
}

function showNote() {
  let demo = null;
  try {
    demo = JSON.parse(localStorage.getItem(NOTE_KEY) || "null");
  } catch {
    demo = null;
  }
  $("demo-note").textContent = demo ? t("demo_note", demo) : "";
  $("demo-note").hidden = !demo;
}

async function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  showNote();
  setStatus("idle", "ready");
  await loadContacts();
  if (!app.token) return; // the token was refused (signed out)
  refreshWallet();
  if (window.OngeaFeed) window.OngeaFeed.start(() => app.token); // balance and receipts live (feed.js)
  if (sessionLive()) {
    // Back after a reload: the conversation as the server kept it, then what happened meanwhile.
    await restoreConversation();
    ensureSocket().catch(() => {});
  }
}

function signOut(message = "") {
  closeSocket();
  if (window.OngeaFeed) window.OngeaFeed.stop();
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
    $("signin-error").textContent = t("no_demo", { why: errorText(r) });
    return;
  }
  const names = r.data.contacts.map((c) => c.nickname || c.name).join(", ");
  signIn(r.data.token, { phone: r.data.phone, pin: r.data.pin, names });
  showBalance(r.data.balance);
}

/** This session's turns, from the server (so what is shown is what it heard and did). */
async function restoreConversation() {
  const id = encodeURIComponent(app.session.session_id);
  const r = await http("GET", `/v1/sessions/${id}/transcript`);
  if (!r.ok || !r.data || !Array.isArray(r.data.turns)) return;
  const list = $("conversation");
  list.replaceChildren(...list.querySelectorAll(".hint-msg"));
  for (const turn of r.data.turns) {
    if (turn.input === "utterance" && turn.heard) addMessage("user", turn.heard);
    else if (turn.input === "tap") note(turn.tap === "cancel" ? "you_tapped_cancel" : "you_tapped_confirm");
    else if (turn.input === "pin") note("you_entered_pin");
    for (const said of turn.answered || []) if (said) addMessage("agent", said);
  }
  const last = r.data.turns[r.data.turns.length - 1];
  if (last && last.language && app.followTurns) setLanguage(last.language);
}

// ---------- wallet and history: the app API (GET /v1/me, /v1/transactions) where the server has it -------

async function tool(name, params = {}) {
  if (!app.session) return { ok: false, status: 0, data: null };
  const body = { session_id: app.session.session_id, ...params };
  return http("POST", `/v1/tools/${name}`, { token: app.session.session_token, body });
}

async function loadContacts() {
  const r = await http("GET", "/v1/contacts");
  if (r.status === 401) return signOut(t("bad_token"));
  if (!r.ok || !r.data || !Array.isArray(r.data.items)) return;
  app.contacts = new Map(r.data.items.map((c) => [String(c.phone), c.nickname || c.name]));
}

/** White label: a business wallet's name and colour in the top bar, for every member of it. */
function showWallet(wallet) {
  if (!wallet || !wallet.business) return;
  document.querySelector(".topbar h1").textContent = wallet.name;
  if (/^#[0-9a-f]{6}$/i.test(wallet.colour || "")) document.documentElement.style.setProperty("--green", wallet.colour);
  document.body.dataset.business = wallet.id;
}

async function refreshBusiness() {
  const one = await http("GET", `/v1/business/${BUSINESS}`);
  if (one.status === 401) return signOut(t("bad_token"));
  if (one.ok && one.data) {
    showBalance(one.data.wallet_balance);
    showWallet({ business: true, id: one.data.id, name: one.data.display_name, colour: one.data.colour });
  }
  const list = await http("GET", `/v1/business/${BUSINESS}/payments`);
  const items = list.ok && list.data && Array.isArray(list.data.items) ? list.data.items : null;
  if (items) renderHistory(items);
  $("history").hidden = items === null;
}

async function refreshWallet() {
  if (BUSINESS) return refreshBusiness();
  const seen = app.feedBalances;
  const me = await http("GET", "/v1/me");
  if (me.status === 401) return signOut(t("bad_token"));
  if (me.ok && me.data) {
    // An answer overtaken by the feed (a slow network, a busy server) would put an older balance back.
    if (seen === app.feedBalances) showBalance(me.data.wallet_balance ?? me.data.balance);
  }
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

/** A balance the live feed brought: the newest there is, in the order the ledger committed them. */
function showFeedBalance(balance) {
  app.feedBalances += 1;
  showBalance(balance);
}

function renderHistory(items) {
  app.view.history = items;
  const ul = $("history-list");
  ul.replaceChildren();
  if (!items.length) ul.append(Object.assign(document.createElement("li"), { textContent: t("history_empty") }));
  for (const item of items.slice(0, 5)) {
    const li = document.createElement("li");
    const what = Object.assign(document.createElement("span"), {
      textContent: `${typeName(item.type)} · ${recipientOf(item)}`,
    });
    const amount = Object.assign(document.createElement("span"), {
      className: "amount",
      textContent: kes(item.amount),
    });
    const locale = lang() === "sw" ? "sw-KE" : "en-KE";
    const when = item.created_at
      ? new Date(item.created_at).toLocaleString(locale, { dateStyle: "short", timeStyle: "short", hour12: false })
      : "";
    const meta = Object.assign(document.createElement("span"), {
      className: "meta",
      textContent: [statusName(item.status), when].filter(Boolean).join(" · "),
    });
    li.dataset.status = item.status || "";
    li.append(what, amount, meta);
    // The receipt on screen follows its transaction (processing -> completed or failed).
    if (app.view.receipt && app.view.receipt.transaction_id === item.id) {
      app.view.receipt.status = item.status;
      drawReceipt(app.view.receipt);
    }
    // A card whose proposal ended while nobody spoke (it expired) goes, with its keypad.
    if (item.status !== "pending" && $("proposal").dataset.proposalId === item.id) closeProposal();
    ul.append(li);
  }
}

// ---------- the session and its WebSocket ----------

function keepSession(session) {
  app.session = session;
  showWallet(session && session.wallet);
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
    setStatus("connecting", "connecting");
    const body = BUSINESS ? { language: lang(), business_id: BUSINESS } : { language: lang() };
    const r = await http("POST", "/v1/sessions", { body });
    if (r.status === 401) {
      signOut(t("bad_token"));
      throw new Error("unauthorized");
    }
    if (r.status !== 201) {
      setStatus("error", "no_session", { why: errorText(r) });
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
    ws.send(JSON.stringify({ type: "conversation_initiation_client_data", dynamic_variables: { language: lang() } }));
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
  if (online()) app.ws.send(JSON.stringify(message));
  else app.outbox.push(message);
}

function closeSocket() {
  const ws = app.ws;
  app.ws = null;
  app.ready = false;
  app.outbox = [];
  if (ws) ws.close(1000, "bye");
  syncControls();
}

function onClosed(event) {
  app.ws = null;
  app.ready = false;
  // Tool calls belong to the connection that sent them: the keypad cannot be answered on the next one.
  if (!$("pin").hidden) {
    hidePin();
    setCardNote("pin_offline");
  }
  if (app.tapSent) {
    app.tapSent = false;
    app.proposalCall = null;
    setCardNote("tap_lost");
  }
  // What the person said still counts after a reconnect.
  app.outbox = app.outbox.filter((message) => message.type === "user_message");
  // 1008 (policy): the server refused this session (expired, ended, or not ours): start afresh next time.
  // Its "no pong" is the one 1008 that says nothing of the session: the page was too busy to answer a ping
  // in time (a phone under load), so the connection is made again to the same session.
  const refused = event.code === 1008 && event.reason !== "no pong";
  const ended = event.code === 1000 && /ended|expired/.test(event.reason);
  if (refused || ended || !sessionLive()) return expire();
  app.retries += 1;
  if (app.retries > 6) {
    setStatus("offline", "offline");
    app.retries = 0;
    return;
  }
  app.reconnecting = true;
  setStatus("reconnecting", "reconnecting");
  const delay = Math.min(8000, 250 * 2 ** app.retries);
  setTimeout(() => {
    if (!app.ws && sessionLive()) connect();
  }, delay);
}

function expire() {
  keepSession(null);
  app.reconnecting = false;
  app.outbox = [];
  closeProposal();
  setStatus("expired", "expired");
  note("session_ended");
}

function onServerEvent(message) {
  switch (message.type) {
    case "conversation_initiation_metadata":
      app.ready = true;
      app.retries = 0;
      setStatus("live", "connected");
      for (const queued of app.outbox.splice(0)) app.ws.send(JSON.stringify(queued));
      if (app.reconnecting) {
        note("reconnected");
        staleCard();
      }
      refreshWallet();
      break;
    case "ping":
      send({ type: "pong", event_id: (message.ping_event || {}).event_id });
      break;
    case "agent_response":
      onAgentResponse(message.agent_response_event || {});
      break;
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
        addMessage("note", t("server_refused", { why: event.message || event.code || "error" }));
      }
      break;
    }
    default: // audio, interruption, corrections, ...: nothing to show in a text page
  }
}

function onAgentResponse(event) {
  const turn = event.turn;
  // The page speaks the conversation's language: a turn says which.
  if (turn && turn.language && app.followTurns) setLanguage(turn.language);
  // The greeting is shown only to someone who has not started talking (and not again on a reconnect,
  // where the card of a waiting payment comes back without its read-back being said again).
  const quiet = app.greeting && (app.reconnecting || document.querySelector(".msg.user"));
  if (event.agent_response && !quiet) {
    addMessage("agent", event.agent_response);
    speak(event.agent_response);
  }
  if (!turn) return; // more of the same turn follows
  app.greeting = false;
  app.reconnecting = false;
  app.tapSent = false;
  // Every way a proposal ends (cancelled, expired, refused, answered) closes the card and its keypad.
  if (turn.proposal === null || turn.proposal === undefined) closeProposal();
  else {
    if (!$("pin").hidden && !pinFor(turn.proposal)) hidePin(); // the keypad was for another proposal or version
    if (!sameCard(turn.proposal)) showProposal(null, turn.proposal); // after a reload, answered by voice
  }
  if (turn.balance) showBalance(turn.balance);
  syncControls();
  revealOpen();
  if (["committed", "cancelled", "rejected", "proposed", "ended"].includes(turn.outcome)) refreshWallet();
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
  app.followTurns = true; // the answer to this is in the language they spoke it in
  try {
    await ensureSocket();
  } catch {
    return;
  }
  send({ type: "user_message", text });
}

// ---------- client tools: what the app shows ----------

/** Answers a tool call on the connection that made it; false (nothing sent) when it is gone. */
function answer(toolCallId, result, isError = false) {
  if (!online()) return false;
  app.ws.send(JSON.stringify({ type: "client_tool_result", tool_call_id: toolCallId, result, is_error: isError }));
  return true;
}

function onToolCall(call) {
  const p = call.parameters || {};
  if (call.tool_name === "show_proposal") showProposal(call.tool_call_id, p);
  else if (call.tool_name === "request_pin") showPin(call.tool_call_id, p);
  else if (call.tool_name === "show_receipt") showReceipt(p);
  else if (call.tool_name === "balance_update") showBalance(p.balance);
  else answer(call.tool_call_id, `unknown client tool ${call.tool_name}`, true);
}

function drawCard(p) {
  $("proposal-title").textContent = typeName(p.type);
  $("p-to").textContent = recipientOf(p);
  $("p-amount").textContent = kes(p.amount);
  $("p-fee").textContent = kes(p.fee);
  $("p-total").textContent = kes(p.total);
}

function showProposal(toolCallId, p) {
  if (["cancelled", "expired", "voided"].includes(p.status)) return closeProposal();
  hidePin(); // a card (a new request, or a changed one) is read back for a yes: any keypad was for before
  const fresh = $("proposal").hidden;
  app.proposalCall = toolCallId;
  app.tapSent = false;
  app.view.card = p;
  hideReceipt();
  drawCard(p);
  setCardNote("card_note");
  $("proposal").dataset.proposalId = p.proposal_id || "";
  $("proposal").dataset.version = p.version ?? "";
  for (const id of ["confirm", "cancel"]) $(id).disabled = false;
  $("proposal").hidden = false;
  if (!toolCallId) staleCard();
  syncControls();
  reveal($("proposal"));
  if (fresh && document.activeElement !== $("say-input")) $("proposal").focus({ preventScroll: true });
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
  setCardNote("card_renewed");
}

function hideProposal() {
  app.proposalCall = null;
  app.tapSent = false;
  app.view.card = null;
  $("proposal").hidden = true;
  $("proposal").dataset.proposalId = "";
}

/** A proposal is over: its card and its keypad go together. */
function closeProposal() {
  hidePin();
  hideProposal();
}

function tap(result) {
  if (!app.proposalCall || app.tapSent) return;
  if (!answer(app.proposalCall, result)) {
    syncControls(); // not sent: say so, and leave the card as it was
    return;
  }
  app.tapSent = true;
  for (const id of ["confirm", "cancel"]) $(id).disabled = true;
  if (result === "cancel") closeProposal();
  else setCardNote("confirming");
}

/** The keypad on screen belongs to this proposal, in this version. */
function pinFor(p) {
  const pin = $("pin").dataset;
  return pin.proposalId === p.proposal_id && pin.version === String(p.version);
}

function showPin(toolCallId, p) {
  app.pinCall = toolCallId;
  $("pin").dataset.proposalId = p.proposal_id || "";
  $("pin").dataset.version = p.version ?? $("proposal").dataset.version ?? "";
  setCardNote("card_pin_below");
  app.pin = "";
  drawPin();
  $("pin").hidden = false;
  syncControls();
  reveal($("pin"));
  $("pin").querySelector("[data-digit='1']").focus({ preventScroll: true });
}

function hidePin() {
  app.pinCall = null;
  app.pin = "";
  $("pin").hidden = true;
  $("pin").dataset.proposalId = "";
  $("pin").dataset.version = "";
}

/** Dots only: the digits are never written to the page. */
function drawPin() {
  const n = app.pin.length;
  $("pin-dots").textContent = "●".repeat(n);
  $("pin-dots").setAttribute("aria-label", t("pin_count", { n }));
}

function pinKey(key) {
  if (!app.pinCall) return;
  if (/^[0-9]$/.test(key) && app.pin.length < 6) app.pin += key;
  else if (key === "Backspace") app.pin = app.pin.slice(0, -1);
  else if (key === "Enter" && app.pin.length >= 4) {
    if (!answer(app.pinCall, app.pin)) return syncControls();
    hidePin();
    note("pin_sent");
    return;
  }
  drawPin();
}

/** The keypad's own Cancel: the payment is called off as if the person had said so. */
function cancelFromKeypad() {
  hidePin();
  say(t("cancel_word"));
}

function drawReceipt(p) {
  $("r-status").textContent = statusName(p.status);
  $("r-id").textContent = p.reference || p.transaction_id || "";
  $("r-balance").textContent = kes(p.balance);
}

function showReceipt(p) {
  showBalance(p.balance);
  // The proposal id is the transaction's id: only that card (and its PIN pad) is done.
  if ($("proposal").dataset.proposalId === p.transaction_id) closeProposal();
  if ($("pin").dataset.proposalId === p.transaction_id) hidePin();
  if (app.receipts.has(p.transaction_id) || app.closed.has(p.transaction_id)) return;
  app.receipts.add(p.transaction_id);
  app.view.receipt = { ...p };
  drawReceipt(app.view.receipt);
  $("receipt").hidden = false;
  reveal($("receipt"));
  if (window.OngeaFeed) window.OngeaFeed.receiptShown(p); // M-Pesa's code as the reference, kept current
  refreshWallet();
  const live = window.OngeaFeed && window.OngeaFeed.live;
  if (p.status === "processing" && !live) setTimeout(refreshWallet, 4000); // without the feed: look again
}

function hideReceipt() {
  $("receipt").hidden = true;
  app.view.receipt = null;
}

/** Done: this receipt stays closed, a reload included. */
function closeReceipt() {
  const id = app.view.receipt ? app.view.receipt.transaction_id : "";
  if (id) {
    app.closed.add(id);
    sessionStorage.setItem(CLOSED_KEY, JSON.stringify([...app.closed].slice(-50)));
  }
  hideReceipt();
  $("say-input").focus();
}

// ---------- the microphone: press and hold ----------

function setupMic() {
  const mic = $("mic");
  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  if (!Recognition) {
    mic.disabled = true;
    mic.textContent = t("mic_none");
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
      note("mic_stopped", { why: event.error });
    };
    recognition.onend = () => {
      recognition = null;
      mic.setAttribute("aria-pressed", "false");
      mic.textContent = t("mic_idle");
      if (heard.trim()) {
        $("say-input").value = "";
        say(heard);
      }
    };
    mic.setAttribute("aria-pressed", "true");
    mic.textContent = t("mic_listening");
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

function drawSound() {
  $("sound").setAttribute("aria-pressed", String(app.prefs.sound));
  $("sound").textContent = t(app.prefs.sound ? "sound_on" : "sound_off");
}

function savePrefs() {
  localStorage.setItem(PREFS_KEY, JSON.stringify(app.prefs));
  drawSound();
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
  $("receipt-close").addEventListener("click", closeReceipt);
  for (const key of document.querySelectorAll("[data-digit]")) {
    key.addEventListener("click", () => pinKey(key.dataset.digit));
  }
  $("pin-back").addEventListener("click", () => pinKey("Backspace"));
  $("pin-ok").addEventListener("click", () => pinKey("Enter"));
  $("pin-cancel").addEventListener("click", cancelFromKeypad);
  $("pin").addEventListener("keydown", (e) => {
    if (/^[0-9]$/.test(e.key) || e.key === "Backspace" || e.key === "Enter") {
      if (e.key === "Enter" && e.target === $("pin-cancel")) return;
      e.preventDefault();
      pinKey(e.key);
    }
  });
  $("language").addEventListener("change", () => {
    app.followTurns = false;
    setLanguage($("language").value);
  });
  $("sound").addEventListener("click", () => {
    app.prefs.sound = !app.prefs.sound;
    if (!app.prefs.sound && window.speechSynthesis) window.speechSynthesis.cancel();
    savePrefs();
  });
  // A card left open is checked now and then: one that expired while nobody spoke goes.
  setInterval(() => {
    if (app.token && !$("proposal").hidden) refreshWallet();
  }, 30000);
  setupMic();
  savePrefs();
  translate();
}

wire();
if (app.token) showApp();
else showSignin();
