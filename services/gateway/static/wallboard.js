// The supervisors' wallboard: LiveView.Watch (proto/relais/v1/live.proto) over the Connect protocol, one
// snapshot a second, drawn in large type. The service token comes from `#token=...` in the URL (then kept and
// taken out of the address bar) or is asked once; it is kept in localStorage.

import { backoff, field, millis, stream } from "./connect.js";
import { h, lang, setup, t } from "./i18n.js";

const STORE = "relais.wallboard.token";
const STATES = ["available", "busy", "wrap_up", "break", "offline"];

const TEXTS = {
  en: {
    "wb.title": "live", "wb.token": "Service token", "wb.token_submit": "Show the live view",
    "wb.token_rejected": "The token was refused: enter the service token (RELAIS_SERVICE_TOKEN).",
    "wb.totals": "Now", "wb.waiting": "Waiting", "wb.oldest": "Oldest wait", "wb.service_level": "Service level 30 min",
    "wb.bot_answers": "Bot answers 15 min", "wb.handoffs": "Hand-offs 15 min", "wb.queues": "Queues",
    "wb.col.queue": "Queue", "wb.col.waiting": "Waiting", "wb.col.oldest": "Oldest", "wb.col.expected": "Expected", "wb.col.agents": "Agents",
    "wb.col.offered": "Offered 15 min", "wb.col.accepted": "Accepted", "wb.col.abandoned": "Abandoned",
    "wb.col.sl": "Service level", "wb.agents": "Agents", "wb.no_queue": "Nobody waits, no queue activity.",
    "wb.queues_count": "in {n} queues", "wb.queue_count": "in 1 queue", "wb.sl_target": "answered within {s} s",
    "wb.sl_base": "{n} ended", "wb.updated": "Updated {time}", "wb.languages": "Signed in by language: {list}",
    "wb.language_queue": "{language}", "wb.skill_queue": "{language} · {queue}",
    "state.available": "Available", "state.busy": "Busy", "state.wrap_up": "Wrap-up", "state.break": "Break",
    "state.offline": "Offline",
    "conn.connecting": "Connecting…", "conn.connected": "Live", "conn.reconnecting": "Connection lost, reconnecting…",
  },
  fr: {
    "wb.title": "en direct", "wb.token": "Jeton de service", "wb.token_submit": "Afficher le direct",
    "wb.token_rejected": "Jeton refusé : saisissez le jeton de service (RELAIS_SERVICE_TOKEN).",
    "wb.totals": "Maintenant", "wb.waiting": "En attente", "wb.oldest": "Plus longue attente",
    "wb.service_level": "Niveau de service 30 min", "wb.bot_answers": "Réponses du bot 15 min",
    "wb.handoffs": "Transferts 15 min", "wb.queues": "Files d'attente",
    "wb.col.queue": "File", "wb.col.waiting": "En attente", "wb.col.oldest": "Plus ancienne", "wb.col.expected": "Prévue", "wb.col.agents": "Conseillers",
    "wb.col.offered": "Proposées 15 min", "wb.col.accepted": "Acceptées", "wb.col.abandoned": "Abandons",
    "wb.col.sl": "Niveau de service", "wb.agents": "Conseillers", "wb.no_queue": "Personne n'attend, aucune activité.",
    "wb.queues_count": "dans {n} files", "wb.queue_count": "dans 1 file", "wb.sl_target": "répondu en moins de {s} s",
    "wb.sl_base": "{n} terminées", "wb.updated": "Mis à jour à {time}", "wb.languages": "Connectés par langue : {list}",
    "wb.language_queue": "{language}", "wb.skill_queue": "{language} · {queue}",
    "state.available": "Disponibles", "state.busy": "Occupés", "state.wrap_up": "En clôture", "state.break": "En pause",
    "state.offline": "Déconnectés",
    "conn.connecting": "Connexion…", "conn.connected": "En direct", "conn.reconnecting": "Connexion perdue, reconnexion…",
  },
};

const $ = (id) => document.getElementById(id);
let token = "";
let last = null;
let controller = null;

function tokenFromUrl() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return "";
  // Out of the address bar (and of screenshots and history) once kept.
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

function askToken(message) {
  if (controller) controller.abort();
  $("board").hidden = true;
  $("token-form").hidden = false;
  $("token-message").textContent = message || "";
  $("token").focus();
}

function setConnection(status) {
  const el = $("connection");
  el.dataset.status = status;
  el.textContent = t(`conn.${status}`);
}

async function watch() {
  if (controller) controller.abort();
  const mine = (controller = new AbortController());
  $("token-form").hidden = true;
  $("board").hidden = false;
  let attempt = 0;
  while (!mine.signal.aborted) {
    setConnection(attempt ? "reconnecting" : "connecting");
    try {
      await stream("relais.v1.LiveView/Watch", { intervalSeconds: 1 }, token, {
        signal: mine.signal,
        onOpen: () => setConnection("connected"),
        onMessage: (snapshot) => {
          attempt = 0;
          setConnection("connected");
          last = snapshot;
          render();
        },
      });
    } catch (e) {
      if (mine.signal.aborted) return;
      if (e.code === "unauthenticated" || e.code === "permission_denied") {
        localStorage.removeItem(STORE);
        askToken(t("wb.token_rejected"));
        return;
      }
    }
    setConnection("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, backoff(attempt++)));
  }
}

const num = (value) => Number(value || 0);

function duration(seconds) {
  const s = Math.round(num(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}:${String(s % 60).padStart(2, "0")}`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")}`;
}

function percent(share) {
  return share === undefined || share === null ? "–" : `${Math.round(Number(share) * 100)} %`;
}

// Green at or above 80 % (the classic 80/20 target), amber from 60 %, red below.
function levelClass(share) {
  if (share === undefined || share === null) return "";
  return share >= 0.8 ? "good" : share >= 0.6 ? "warn" : "bad";
}

// An oldest wait past the service level's target is amber, past twice the target red.
function waitClass(seconds, target) {
  if (!target || !num(seconds)) return "";
  return seconds > 2 * target ? "bad" : seconds > target ? "warn" : "";
}

function queueName(q) {
  const language = (field(q, "language") || "").toUpperCase();
  const queue = field(q, "queue");
  return queue ? t("wb.skill_queue", { language, queue }) : t("wb.language_queue", { language });
}

function setTile(testid, text, cls) {
  const el = document.querySelector(`[data-testid="${testid}"]`);
  el.textContent = text;
  el.parentElement.classList.remove("good", "warn", "bad");
  if (cls) el.parentElement.classList.add(cls);
}

function render() {
  if (!last) return;
  const target = num(field(last, "service_level_target_seconds"));
  const queues = (field(last, "queues") || []).slice().sort(
    (a, b) => num(field(b, "waiting")) - num(field(a, "waiting")) || queueName(a).localeCompare(queueName(b)),
  );
  const waiting = queues.reduce((sum, q) => sum + num(field(q, "waiting")), 0);
  const oldest = Math.max(0, ...queues.map((q) => num(field(q, "oldest_wait_seconds"))));
  const level = field(last, "service_level_30m");
  setTile("total-waiting", String(waiting), waiting ? "warn" : "good");
  const queuesWaiting = queues.filter((q) => num(field(q, "waiting"))).length;
  $("sub-waiting").textContent = t(queuesWaiting === 1 ? "wb.queue_count" : "wb.queues_count", { n: queuesWaiting });
  setTile("oldest-wait", oldest ? duration(oldest) : "–", waitClass(oldest, target));
  document.querySelector('[data-testid="oldest-wait"]').dataset.seconds = String(Math.round(oldest));
  setTile("service-level", percent(level), levelClass(level));
  $("sub-sl").textContent = target ? t("wb.sl_target", { s: Math.round(target) }) : "";
  setTile("bot-answers", String(num(field(last, "bot_answers_15m"))));
  setTile("handoffs", String(num(field(last, "handoffs_15m"))));

  const rows = queues.map((q) => {
    const qLevel = field(q, "service_level_30m");
    const qWaiting = num(field(q, "waiting"));
    const expected = field(q, "expected_wait_seconds"); // unset: no agent of the language signed in
    return h(
      "tr",
      { "data-queue": `${field(q, "language") || ""}/${field(q, "queue") || ""}` },
      h("td", {}, queueName(q)),
      h("td", { class: `waiting ${qWaiting ? "warn" : ""}`, "data-testid": "queue-waiting" }, String(qWaiting)),
      h("td", { class: waitClass(num(field(q, "oldest_wait_seconds")), target) }, qWaiting ? duration(field(q, "oldest_wait_seconds")) : "–"),
      h("td", {}, expected === undefined || expected === null ? "–" : duration(expected)),
      h("td", { class: num(field(q, "agents_signed_in")) ? "" : "bad" }, String(num(field(q, "agents_signed_in")))),
      h("td", {}, String(num(field(q, "offered_15m")))),
      h("td", {}, String(num(field(q, "accepted_15m")))),
      h("td", { class: num(field(q, "abandoned_15m")) ? "bad" : "" }, String(num(field(q, "abandoned_15m")))),
      h("td", { class: levelClass(qLevel) }, percent(qLevel)),
    );
  });
  $("queues").replaceChildren(
    ...(rows.length ? rows : [h("tr", { class: "none" }, h("td", { colspan: 9 }, t("wb.no_queue")))]),
  );

  const byState = field(last, "agents_by_state") || {};
  $("agents").replaceChildren(
    ...STATES.map((state) =>
      h(
        "div",
        { class: `tile state-${state}` },
        h("div", { class: "label" }, t(`state.${state}`)),
        h("div", { class: "value", "data-testid": `agents-${state}` }, String(num(byState[state]))),
      ),
    ),
  );
  const byLanguage = Object.entries(field(last, "agents_by_language") || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([language, n]) => `${language.toUpperCase()} ${num(n)}`);
  $("agents-languages").textContent = byLanguage.length ? t("wb.languages", { list: byLanguage.join(" · ") }) : "";
  const at = millis(field(last, "at"));
  $("updated").textContent = Number.isFinite(at)
    ? t("wb.updated", { time: new Date(at).toLocaleTimeString(lang() === "fr" ? "fr-FR" : "en-GB") })
    : "";
}

function tickClock() {
  $("clock").textContent = new Date().toLocaleTimeString(lang() === "fr" ? "fr-FR" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}

function start() {
  setup(TEXTS, () => {
    render();
    tickClock();
    setConnection($("connection").dataset.status || "connecting");
  });
  tickClock();
  setInterval(tickClock, 1000);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    if (!token) return;
    localStorage.setItem(STORE, token);
    $("token").value = "";
    watch();
  });
  const given = tokenFromUrl();
  if (given) localStorage.setItem(STORE, given);
  token = given || localStorage.getItem(STORE) || "";
  if (token) watch();
  else askToken();
}

start();
