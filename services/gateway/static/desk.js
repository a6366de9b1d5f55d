// The reference agent desk: the AgentDesk API (proto/relais/v1/agent_desk.proto) over the Connect protocol.
// Sign-in with the front-end (service) token gives a session token, kept in sessionStorage and sent with every
// other call. Offers, assignments, the customer's messages and the assist arrive on one Subscribe stream; when
// it drops the desk subscribes again with back-off, and routing re-sends what the agent holds (offers and
// assignments, with the transcript as it is now), so nothing is lost across a reconnect or a page reload.

import { backoff, call, ConnectError, field, millis, stream } from "./connect.js";
import { h, lang, setup, t } from "./i18n.js";

const API = "relais.v1.AgentDesk";
const SESSION = "relais.desk.session";
const SKILLS = ["general", "orders", "billing", "cards", "accounts", "retention", "complaints", "conflict_handling"];

const TEXTS = {
  en: {
    "desk.title": "desk", "desk.skip": "Skip to the conversation",
    "desk.state.group": "Your availability", "desk.state.set_available": "Available", "desk.state.set_break": "Break",
    "desk.sign_out": "Sign out", "desk.tasks": "Offers and conversations", "desk.offers": "Offers",
    "desk.no_offers": "No offer. New customers appear here.", "desk.conversations": "My conversations",
    "desk.no_conversations": "None yet.", "desk.wrapup.title": "Wrap-up",
    "desk.wrapup.text": "Conversation closed. No new offer comes during the wrap-up time.",
    "desk.wrapup.ready": "Ready for the next customer", "desk.pick": "Pick an offer or a conversation",
    "desk.accept": "Accept", "desk.reject": "Reject", "desk.transcript": "Transcript",
    "desk.reply_label": "Reply to the customer", "desk.editing_cancel": "Cancel the edit", "desk.send": "Send",
    "desk.editing": "Editing suggestion {n}: sent as edited if you change it.",
    "desk.transfer": "Transfer", "desk.transfer_queue": "To the queue", "desk.transfer_note": "Note for the next advisor",
    "desk.transfer_submit": "Transfer", "desk.close": "Close and wrap up", "desk.disposition": "Outcome",
    "desk.disposition.resolved": "Resolved", "desk.disposition.follow_up": "Follow-up needed",
    "desk.disposition.no_answer": "No answer from the customer", "desk.resolved": "The request is resolved",
    "desk.close_submit": "Close the conversation", "desk.assist": "Assist", "desk.history": "Customer history",
    "desk.summary": "Summary", "desk.history_summary": "Before this conversation",
    "desk.suggestions": "Suggested replies", "desk.assist_waiting": "The summary and suggestions are being drafted…",
    "desk.no_suggestion": "No suggested reply for this request.", "desk.sources": "Sources: {list}",
    "desk.source.template": "template", "desk.source.llm": "AI draft", "desk.use": "Send", "desk.edit": "Edit",
    "desk.ignore": "Ignore", "desk.ignored": "ignored", "desk.used": "sent", "desk.suggestion": "Suggestion {n}",
    "desk.history_none": "No earlier conversation.", "desk.history_loading": "Loading…",
    "desk.history_after_accept": "Shown for your offers and conversations.",
    "desk.expires": "{s} s left", "desk.expired": "expired", "desk.priority": "priority {n}",
    "desk.callback": "Call back: {phone}", "desk.callback_nophone": "Callback requested",
    "desk.note": "Note from the previous advisor: {note}", "desk.customer": "Customer {id}",
    "desk.new_offer": "New offer: customer {id}", "desk.new_message": "New message from customer {id}",
    "desk.withdrawn": "Offer for customer {id} withdrawn ({reason})", "desk.withdrawn.timeout": "time is up",
    "desk.withdrawn.customer_left": "the customer left", "desk.withdrawn.rejected": "rejected",
    "desk.transferred": "Transferred to {queue}.", "desk.closed": "Conversation closed.",
    "desk.sent": "Sent.", "desk.unread": "new", "desk.omitted": "{n} earlier lines left out",
    "speaker.customer": "Customer", "speaker.bot": "Bot", "speaker.advisor": "Advisor", "speaker.lookup": "Lookup",
    "speaker.system": "", "speaker.you": "You",
    "state.available": "Available", "state.busy": "Busy", "state.wrap_up": "Wrap-up", "state.break": "On break",
    "state.offline": "Offline",
    "conn.connecting": "Connecting…", "conn.connected": "Connected", "conn.reconnecting": "Connection lost, reconnecting…",
    "signin.title": "Sign in", "signin.token": "Front-end token",
    "signin.token_hint": "The service token of relais (RELAIS_SERVICE_TOKEN), given by your administrator.",
    "signin.agent_id": "Agent id", "signin.display_name": "Name", "signin.languages": "Languages",
    "signin.languages_placeholder": "fr, en", "signin.skills": "Skills",
    "signin.skills_placeholder": "billing:3, orders:2, general",
    "signin.skills_hint": "A skill with its level from 1 to 5 (billing:3), separated by commas.",
    "signin.submit": "Sign in", "signin.expired": "Your session ended: sign in again.",
    "signin.missing": "The front-end token, the agent id and a language are required.",
    "signin.bad_skill": "Skill “{item}”: write skill or skill:level, the level from 1 to 5.",
    "error": "Error: {message}",
    "channel.CHANNEL_CHAT": "chat", "channel.CHANNEL_EMAIL": "email", "channel.CHANNEL_SMS": "SMS",
    "channel.CHANNEL_VOICE_TRANSCRIPT": "voice",
    "reason.HANDOFF_REASON_CUSTOMER_REQUEST": "asked for a person", "reason.HANDOFF_REASON_ANGER": "anger",
    "reason.HANDOFF_REASON_DISTRESS": "distress", "reason.HANDOFF_REASON_OUT_OF_SCOPE": "out of the bot's scope",
    "reason.HANDOFF_REASON_LOW_CONFIDENCE": "unclear request", "reason.HANDOFF_REASON_REPEATED_FAILURE": "the bot failed twice",
    "reason.HANDOFF_REASON_NOT_BOT_ALLOWED": "kept for people", "reason.HANDOFF_REASON_ESCALATING_SENTIMENT": "growing irritation",
    "reason.HANDOFF_REASON_TIER_NOT_SERVED": "customer tier kept for people",
    "reason.HANDOFF_REASON_AMOUNT_ABOVE_LIMIT": "amount above the bot's limit",
    "reason.HANDOFF_REASON_BOT_TURN_LIMIT": "bot turn limit reached",
    "reason.HANDOFF_REASON_LANGUAGE_NOT_SERVED": "language not served by the bot",
    "reason.HANDOFF_REASON_CHURN_RISK": "may leave us", "reason.HANDOFF_REASON_MULTIPLE_REQUESTS": "several requests",
    "reason.HANDOFF_REASON_NEEDS_JUDGEMENT": "needs an advisor's judgement",
    "outcome.bot_answered": "answered by the bot", "outcome.resolved": "resolved", "outcome.unresolved": "unresolved",
    "outcome.abandoned": "abandoned", "outcome.open": "open",
    "skill.general": "general", "skill.orders": "orders", "skill.billing": "billing", "skill.cards": "cards",
    "skill.accounts": "accounts", "skill.retention": "retention", "skill.complaints": "complaints",
    "skill.conflict_handling": "conflict handling",
  },
  fr: {
    "desk.title": "poste conseiller", "desk.skip": "Aller à la conversation",
    "desk.state.group": "Votre disponibilité", "desk.state.set_available": "Disponible", "desk.state.set_break": "Pause",
    "desk.sign_out": "Se déconnecter", "desk.tasks": "Propositions et conversations", "desk.offers": "Propositions",
    "desk.no_offers": "Aucune proposition. Les nouveaux clients s'affichent ici.",
    "desk.conversations": "Mes conversations", "desk.no_conversations": "Aucune pour l'instant.",
    "desk.wrapup.title": "Clôture",
    "desk.wrapup.text": "Conversation close. Aucune proposition pendant le temps de clôture.",
    "desk.wrapup.ready": "Prêt pour le client suivant", "desk.pick": "Choisissez une proposition ou une conversation",
    "desk.accept": "Accepter", "desk.reject": "Refuser", "desk.transcript": "Échanges",
    "desk.reply_label": "Répondre au client", "desk.editing_cancel": "Annuler la modification", "desk.send": "Envoyer",
    "desk.editing": "Suggestion {n} en cours de modification : envoyée comme modifiée si vous la changez.",
    "desk.transfer": "Transférer", "desk.transfer_queue": "Vers la file", "desk.transfer_note": "Note pour le conseiller suivant",
    "desk.transfer_submit": "Transférer", "desk.close": "Clore la conversation", "desk.disposition": "Issue",
    "desk.disposition.resolved": "Résolu", "desk.disposition.follow_up": "Suivi nécessaire",
    "desk.disposition.no_answer": "Le client ne répond plus", "desk.resolved": "La demande est résolue",
    "desk.close_submit": "Clore la conversation", "desk.assist": "Assistance", "desk.history": "Historique du client",
    "desk.summary": "Résumé", "desk.history_summary": "Avant cette conversation",
    "desk.suggestions": "Réponses suggérées", "desk.assist_waiting": "Résumé et suggestions en préparation…",
    "desk.no_suggestion": "Pas de réponse suggérée pour cette demande.", "desk.sources": "Sources : {list}",
    "desk.source.template": "modèle", "desk.source.llm": "brouillon IA", "desk.use": "Envoyer", "desk.edit": "Modifier",
    "desk.ignore": "Ignorer", "desk.ignored": "ignorée", "desk.used": "envoyée", "desk.suggestion": "Suggestion {n}",
    "desk.history_none": "Aucune conversation antérieure.", "desk.history_loading": "Chargement…",
    "desk.history_after_accept": "Affiché pour vos propositions et conversations.",
    "desk.expires": "encore {s} s", "desk.expired": "expirée", "desk.priority": "priorité {n}",
    "desk.callback": "Rappeler : {phone}", "desk.callback_nophone": "Rappel demandé",
    "desk.note": "Note du conseiller précédent : {note}", "desk.customer": "Client {id}",
    "desk.new_offer": "Nouvelle proposition : client {id}", "desk.new_message": "Nouveau message du client {id}",
    "desk.withdrawn": "Proposition du client {id} retirée ({reason})", "desk.withdrawn.timeout": "délai écoulé",
    "desk.withdrawn.customer_left": "le client est parti", "desk.withdrawn.rejected": "refusée",
    "desk.transferred": "Transférée vers {queue}.", "desk.closed": "Conversation close.",
    "desk.sent": "Envoyé.", "desk.unread": "nouveau", "desk.omitted": "{n} lignes plus anciennes omises",
    "speaker.customer": "Client", "speaker.bot": "Bot", "speaker.advisor": "Conseiller", "speaker.lookup": "Consultation",
    "speaker.system": "", "speaker.you": "Vous",
    "state.available": "Disponible", "state.busy": "Occupé", "state.wrap_up": "Clôture", "state.break": "En pause",
    "state.offline": "Hors ligne",
    "conn.connecting": "Connexion…", "conn.connected": "Connecté", "conn.reconnecting": "Connexion perdue, reconnexion…",
    "signin.title": "Connexion", "signin.token": "Jeton du poste",
    "signin.token_hint": "Le jeton de service de relais (RELAIS_SERVICE_TOKEN), fourni par votre administrateur.",
    "signin.agent_id": "Identifiant conseiller", "signin.display_name": "Nom", "signin.languages": "Langues",
    "signin.languages_placeholder": "fr, en", "signin.skills": "Compétences",
    "signin.skills_placeholder": "billing:3, orders:2, general",
    "signin.skills_hint": "Une compétence et son niveau de 1 à 5 (billing:3), séparées par des virgules.",
    "signin.submit": "Se connecter", "signin.expired": "Votre session a pris fin : reconnectez-vous.",
    "signin.missing": "Le jeton du poste, l'identifiant et une langue sont obligatoires.",
    "signin.bad_skill": "Compétence « {item} » : écrivez compétence ou compétence:niveau, niveau de 1 à 5.",
    "error": "Erreur : {message}",
    "channel.CHANNEL_CHAT": "chat", "channel.CHANNEL_EMAIL": "e-mail", "channel.CHANNEL_SMS": "SMS",
    "channel.CHANNEL_VOICE_TRANSCRIPT": "voix",
    "reason.HANDOFF_REASON_CUSTOMER_REQUEST": "a demandé un conseiller", "reason.HANDOFF_REASON_ANGER": "colère",
    "reason.HANDOFF_REASON_DISTRESS": "détresse", "reason.HANDOFF_REASON_OUT_OF_SCOPE": "hors du périmètre du bot",
    "reason.HANDOFF_REASON_LOW_CONFIDENCE": "demande peu claire", "reason.HANDOFF_REASON_REPEATED_FAILURE": "deux échecs du bot",
    "reason.HANDOFF_REASON_NOT_BOT_ALLOWED": "réservé aux conseillers",
    "reason.HANDOFF_REASON_ESCALATING_SENTIMENT": "irritation croissante",
    "reason.HANDOFF_REASON_TIER_NOT_SERVED": "segment client réservé aux conseillers",
    "reason.HANDOFF_REASON_AMOUNT_ABOVE_LIMIT": "montant au-delà de la limite du bot",
    "reason.HANDOFF_REASON_BOT_TURN_LIMIT": "limite d'échanges du bot atteinte",
    "reason.HANDOFF_REASON_LANGUAGE_NOT_SERVED": "langue non traitée par le bot",
    "reason.HANDOFF_REASON_CHURN_RISK": "risque de départ", "reason.HANDOFF_REASON_MULTIPLE_REQUESTS": "plusieurs demandes",
    "reason.HANDOFF_REASON_NEEDS_JUDGEMENT": "demande l'appréciation d'un conseiller",
    "outcome.bot_answered": "répondu par le bot", "outcome.resolved": "résolu", "outcome.unresolved": "non résolu",
    "outcome.abandoned": "abandonné", "outcome.open": "en cours",
    "skill.general": "général", "skill.orders": "commandes", "skill.billing": "facturation", "skill.cards": "cartes",
    "skill.accounts": "comptes", "skill.retention": "fidélisation", "skill.complaints": "réclamations",
    "skill.conflict_handling": "gestion des conflits",
  },
};

const REASONS = ["HANDOFF_REASON_UNSPECIFIED", "HANDOFF_REASON_CUSTOMER_REQUEST", "HANDOFF_REASON_ANGER",
  "HANDOFF_REASON_DISTRESS", "HANDOFF_REASON_OUT_OF_SCOPE", "HANDOFF_REASON_LOW_CONFIDENCE",
  "HANDOFF_REASON_REPEATED_FAILURE", "HANDOFF_REASON_NOT_BOT_ALLOWED", "HANDOFF_REASON_ESCALATING_SENTIMENT",
  "HANDOFF_REASON_TIER_NOT_SERVED", "HANDOFF_REASON_AMOUNT_ABOVE_LIMIT", "HANDOFF_REASON_BOT_TURN_LIMIT",
  "HANDOFF_REASON_LANGUAGE_NOT_SERVED", "HANDOFF_REASON_CHURN_RISK", "HANDOFF_REASON_MULTIPLE_REQUESTS",
  "HANDOFF_REASON_NEEDS_JUDGEMENT"];
const CHANNELS = ["CHANNEL_UNSPECIFIED", "CHANNEL_CHAT", "CHANNEL_EMAIL", "CHANNEL_SMS", "CHANNEL_VOICE_TRANSCRIPT"];

const $ = (id) => document.getElementById(id);
// replaceChildren, skipping the absent parts (null, false) a render leaves out.
const fill = (el, ...children) => el.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));

const desk = {
  session: null, // {token, profile}
  serviceToken: "", // kept in memory only: signs in again when routing forgot the session token
  tasks: new Map(), // task id -> task (below, fromEvent)
  selected: null,
  stateSet: "available", // what SetState last answered (available or break)
  wrapUp: false,
  connection: "connecting",
  abort: null,
  running: false,
};

// --- sign-in -------------------------------------------------------------------------------------------------

function parseSkills(text) {
  const levels = [];
  for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [skill, level = "1"] = item.split(":").map((s) => s.trim());
    const n = Number(level);
    if (!skill || !Number.isInteger(n) || n < 1 || n > 5) throw new Error(t("signin.bad_skill", { item }));
    levels.push({ skill: skill.toLowerCase(), level: n });
  }
  return levels;
}

function profileFromForm() {
  const languages = $("f-languages").value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  const agentId = $("f-agent").value.trim();
  if (!$("f-token").value.trim() || !agentId || !languages.length) throw new Error(t("signin.missing"));
  return {
    agentId,
    displayName: $("f-name").value.trim(),
    languages,
    skillLevels: parseSkills($("f-skills").value),
  };
}

async function signIn(serviceToken, profile) {
  const reply = await call(`${API}/SignIn`, profile, serviceToken);
  desk.serviceToken = serviceToken;
  desk.session = { token: field(reply, "token"), profile };
  sessionStorage.setItem(SESSION, JSON.stringify(desk.session));
}

async function onSignInSubmit(event) {
  event.preventDefault();
  const message = $("signin-message");
  message.textContent = "";
  let profile;
  try {
    profile = profileFromForm();
  } catch (e) {
    message.textContent = e.message;
    return;
  }
  const button = event.submitter || $("signin-form").querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await signIn($("f-token").value.trim(), profile);
    $("f-token").value = "";
    desk.stateSet = "available";
    desk.wrapUp = false;
    desk.tasks.clear();
    enterWorkspace();
  } catch (e) {
    message.textContent = t("error", { message: e.message });
  } finally {
    button.disabled = false;
  }
}

function showSignIn(note) {
  stopStream();
  $("workspace").hidden = true;
  $("agent-bar").hidden = true;
  $("signin").hidden = false;
  $("connection").textContent = "";
  $("signin-message").textContent = note || "";
  const profile = desk.session && desk.session.profile;
  if (profile) {
    $("f-agent").value = profile.agentId;
    $("f-name").value = profile.displayName || "";
    $("f-languages").value = profile.languages.join(", ");
    $("f-skills").value = (profile.skillLevels || []).map((s) => `${s.skill}:${s.level}`).join(", ");
  }
  ($("f-token").value ? $("f-agent") : $("f-token")).focus();
}

function enterWorkspace() {
  $("signin").hidden = true;
  $("workspace").hidden = false;
  $("agent-bar").hidden = false;
  const p = desk.session.profile;
  $("agent-name").textContent = p.displayName ? `${p.displayName} (${p.agentId})` : p.agentId;
  renderAll();
  subscribeLoop();
}

async function signOut() {
  try {
    await call(`${API}/SignOut`, {}, desk.session.token);
  } catch {
    // signed out anyway on this side: routing signs out a desk whose stream stays away
  }
  stopStream();
  sessionStorage.removeItem(SESSION);
  desk.tasks.clear();
  desk.selected = null;
  desk.serviceToken = "";
  showSignIn();
}

/** A unary call with the session token; a session routing no longer knows is signed in again when the service
 * token is still in memory, else the agent is asked to sign in. */
async function api(method, request) {
  try {
    return await call(`${API}/${method}`, request, desk.session.token);
  } catch (e) {
    if (e.code === "unauthenticated" && (await renewSession())) {
      return call(`${API}/${method}`, request, desk.session.token);
    }
    throw e;
  }
}

async function renewSession() {
  if (!desk.serviceToken) {
    sessionStorage.removeItem(SESSION);
    showSignIn(t("signin.expired"));
    return false;
  }
  try {
    await signIn(desk.serviceToken, desk.session.profile);
    desk.tasks.clear(); // routing requeued them when it signed the agent out; what is still held is re-sent
    renderAll();
    return true;
  } catch {
    showSignIn(t("signin.expired"));
    return false;
  }
}

// --- the stream ----------------------------------------------------------------------------------------------

function stopStream() {
  desk.running = false;
  if (desk.abort) desk.abort.abort();
  desk.abort = null;
}

function setConnection(status) {
  desk.connection = status;
  const el = $("connection");
  el.textContent = t(`conn.${status}`);
  el.dataset.status = status;
}

async function subscribeLoop() {
  stopStream();
  desk.running = true;
  const mine = (desk.abort = new AbortController());
  let attempt = 0;
  while (desk.running && desk.abort === mine) {
    setConnection(attempt ? "reconnecting" : "connecting");
    try {
      await stream(`${API}/Subscribe`, {}, desk.session.token, {
        signal: mine.signal,
        onOpen: () => {
          attempt = 0;
          setConnection("connected");
        },
        onMessage: onDeskEvent,
      });
    } catch (e) {
      if (mine.signal.aborted) return;
      if (e.code === "unauthenticated" && !(await renewSession())) return;
    }
    if (mine.signal.aborted) return;
    setConnection("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, backoff(attempt++)));
  }
}

function transcriptOf(lines) {
  return (lines || []).map((line) => ({
    at: millis(field(line, "at")),
    speaker: field(line, "speaker") || "system",
    text: field(line, "text") || "",
    agentId: field(line, "agent_id") || "",
  }));
}

function upsert(kind, message) {
  const id = field(message, "task_id");
  const known = desk.tasks.get(id);
  const task = known || { id, draft: "", uses: {}, history: null, unread: false, assist: null };
  task.kind = kind;
  task.context = field(message, "context") || task.context || {};
  task.transcript = transcriptOf(field(message, "transcript"));
  task.note = field(message, "note") || "";
  task.callback = Boolean(field(message, "callback"));
  task.callbackPhone = field(message, "callback_phone") || "";
  if (kind === "offer") {
    task.expiresAt = millis(field(message, "expires_at"));
    task.priority = Number(field(message, "priority") || 0);
  }
  const assist = field(message, "assist");
  if (assist) task.assist = assist;
  desk.tasks.set(id, task);
  return { task, isNew: !known || known.kind !== kind };
}

function customerId(task) {
  const customer = field(task.context, "customer") || {};
  return field(customer, "id") || "?";
}

function onDeskEvent(event) {
  const offer = field(event, "offer");
  const assignment = field(event, "assignment");
  const message = field(event, "customer_message");
  const withdrawn = field(event, "offer_withdrawn");
  const assist = field(event, "assist");
  if (offer) {
    const { task, isNew } = upsert("offer", offer);
    desk.wrapUp = false; // an offer comes only once the wrap-up is over
    if (isNew) announce(t("desk.new_offer", { id: customerId(task) }));
    if (!desk.selected || !desk.tasks.has(desk.selected)) desk.selected = task.id;
  } else if (assignment) {
    upsert("assignment", assignment);
  } else if (message) {
    const task = desk.tasks.get(field(message, "task_id"));
    if (!task) return;
    const turn = field(message, "turn") || {};
    task.transcript.push({
      at: millis(field(turn, "sent_at") || field(turn, "received_at")) || Date.now(),
      speaker: "customer",
      text: field(turn, "text") || "",
      agentId: "",
    });
    const refreshed = field(message, "assist");
    if (refreshed) task.assist = refreshed;
    if (desk.selected !== task.id) task.unread = true;
    announce(t("desk.new_message", { id: customerId(task) }));
  } else if (withdrawn) {
    const task = desk.tasks.get(field(withdrawn, "task_id"));
    if (!task || task.kind !== "offer") return;
    desk.tasks.delete(task.id);
    const reason = field(withdrawn, "reason") || "timeout";
    if (reason !== "rejected") {
      toast(t("desk.withdrawn", { id: customerId(task), reason: t(`desk.withdrawn.${reason}`) }));
    }
  } else if (assist) {
    const task = desk.tasks.get(field(assist, "task_id"));
    if (!task) return;
    task.assist = field(assist, "assist") || {};
    renderAssist();
    return;
  } else {
    return; // a kind of event this desk does not know yet
  }
  renderAll();
}

// --- actions -------------------------------------------------------------------------------------------------

async function guarded(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (e) {
    toast(t("error", { message: e instanceof ConnectError ? e.message : String(e.message || e) }));
  } finally {
    if (button) button.disabled = false;
  }
}

function selectedTask() {
  return desk.selected ? desk.tasks.get(desk.selected) : undefined;
}

async function accept() {
  const task = selectedTask();
  if (!task || task.kind !== "offer") return;
  await guarded($("accept"), async () => {
    const reply = await api("Accept", { taskId: task.id });
    upsert("assignment", field(reply, "assignment") || { taskId: task.id });
    renderAll();
    $("reply-text").focus();
  });
}

async function reject() {
  const task = selectedTask();
  if (!task || task.kind !== "offer") return;
  await guarded($("reject"), async () => {
    await api("Reject", { taskId: task.id, reason: "rejected_by_agent" });
    desk.tasks.delete(task.id);
    desk.selected = null;
    renderAll();
  });
}

async function sendReply(task, text) {
  await api("Reply", { taskId: task.id, text });
  task.transcript.push({ at: Date.now(), speaker: "advisor", text, agentId: desk.session.profile.agentId });
}

async function recordUse(task, suggestionId, use) {
  await api("RecordSuggestionUse", { taskId: task.id, suggestionId, use });
  task.uses[suggestionId] = use;
}

async function onComposerSubmit(event) {
  event.preventDefault();
  const task = selectedTask();
  const text = $("reply-text").value.trim();
  if (!task || task.kind !== "assignment" || !text) return;
  await guarded($("send"), async () => {
    const editing = task.editing;
    await sendReply(task, text);
    $("reply-text").value = "";
    task.draft = "";
    task.editing = null;
    if (editing) {
      await recordUse(task, editing.id, text === editing.original.trim() ? "SUGGESTION_USE_USED" : "SUGGESTION_USE_EDITED");
    }
    renderAll();
    $("reply-text").focus();
  });
}

async function useSuggestion(task, suggestion, button) {
  await guarded(button, async () => {
    await sendReply(task, suggestion.text);
    await recordUse(task, suggestion.id, "SUGGESTION_USE_USED");
    renderAll();
  });
}

function editSuggestion(task, suggestion) {
  task.editing = { id: suggestion.id, original: suggestion.text, n: suggestion.n };
  $("reply-text").value = suggestion.text;
  renderComposer(task);
  $("reply-text").focus();
}

async function ignoreSuggestion(task, suggestion, button) {
  await guarded(button, async () => {
    await recordUse(task, suggestion.id, "SUGGESTION_USE_IGNORED");
    renderAssist();
  });
}

async function transfer(event) {
  event.preventDefault();
  const task = selectedTask();
  if (!task || task.kind !== "assignment") return;
  const queue = $("transfer-queue").value;
  await guarded(event.submitter, async () => {
    await api("Transfer", { taskId: task.id, queue, note: $("transfer-note").value.trim() });
    desk.tasks.delete(task.id);
    desk.selected = null;
    $("transfer-note").value = "";
    toast(t("desk.transferred", { queue: t(`skill.${queue}`) }));
    afterLastConversation();
    renderAll();
  });
}

async function closeConversation(event) {
  event.preventDefault();
  const task = selectedTask();
  if (!task || task.kind !== "assignment") return;
  await guarded($("close-submit"), async () => {
    await api("Close", { taskId: task.id, disposition: $("close-disposition").value, resolved: $("close-resolved").checked });
    desk.tasks.delete(task.id);
    desk.selected = null;
    toast(t("desk.closed"));
    afterLastConversation();
    renderAll();
  });
}

function afterLastConversation() {
  // Routing puts an agent who closed its last task in wrap-up (no offers meanwhile); "ready" ends it early.
  if (![...desk.tasks.values()].some((task) => task.kind === "assignment")) desk.wrapUp = true;
}

async function setState(wanted, button) {
  await guarded(button, async () => {
    const reply = await api("SetState", { state: `AGENT_STATE_${wanted.toUpperCase()}` });
    const state = String(field(reply, "state") || "").replace("AGENT_STATE_", "").toLowerCase();
    desk.stateSet = state || wanted;
    if (desk.stateSet === "available") desk.wrapUp = false;
    renderAll();
  });
}

async function loadHistory(task) {
  task.history = "loading";
  try {
    const reply = await api("GetCustomerHistory", { taskId: task.id });
    task.history = field(reply, "conversations") || [];
  } catch (e) {
    task.history = { error: e.message };
  }
  if (desk.selected === task.id) renderHistory();
}

// --- rendering -----------------------------------------------------------------------------------------------

function agentState() {
  if (desk.stateSet === "break") return "break";
  if (desk.tasks.size) return "busy";
  if (desk.wrapUp) return "wrap_up";
  return desk.stateSet;
}

// An intent or skill name as people read it: "order_status" -> "order status".
function humanize(name) {
  return name ? String(name).replace(/_/g, " ") : "";
}

function enumName(value, names) {
  return typeof value === "number" ? names[value] || "" : String(value || "");
}

function reasonText(context) {
  const reasons = field(context, "reasons") || [field(context, "reason")];
  return reasons
    .map((r) => enumName(r, REASONS))
    .filter((r) => r && r !== "HANDOFF_REASON_UNSPECIFIED")
    .map((r) => t(`reason.${r}`))
    .join(", ");
}

function timeText(ms) {
  if (!Number.isFinite(ms)) return "";
  return new Date(ms).toLocaleTimeString(lang() === "fr" ? "fr-FR" : "en-GB", { hour: "2-digit", minute: "2-digit" });
}

function dateText(ms) {
  if (!Number.isFinite(ms)) return "";
  return new Date(ms).toLocaleDateString(lang() === "fr" ? "fr-FR" : "en-GB", { day: "numeric", month: "short", year: "numeric" });
}

function secondsLeft(task) {
  return Math.max(0, Math.ceil((task.expiresAt - Date.now()) / 1000));
}

function renderAll() {
  const state = agentState();
  const chip = $("agent-state");
  chip.textContent = t(`state.${state}`);
  chip.dataset.state = state;
  $("set-available").setAttribute("aria-pressed", String(state === "available"));
  $("set-break").setAttribute("aria-pressed", String(state === "break"));
  $("wrapup").hidden = !(desk.wrapUp && !desk.tasks.size);
  renderLists();
  renderConversation();
  renderAssist();
  renderHistory();
}

function taskItem(task) {
  const context = task.context;
  const selected = task.id === desk.selected;
  const meta = [humanize(field(context, "intent")), field(context, "language")].filter(Boolean).join(" · ");
  return h(
    "li",
    { class: `task-item ${task.kind}${selected ? " selected" : ""}` },
    h(
      "button",
      {
        type: "button",
        class: "task-button",
        "aria-current": selected ? "true" : null,
        "data-task": task.id,
        onclick: () => select(task.id),
      },
      h("span", { class: "task-customer" }, t("desk.customer", { id: customerId(task) })),
      h("span", { class: "task-meta" }, meta),
      task.kind === "offer" ? h("span", { class: "countdown", "data-countdown": task.id }, countdownText(task)) : null,
      task.unread ? h("span", { class: "badge" }, t("desk.unread")) : null,
    ),
  );
}

function countdownText(task) {
  const s = secondsLeft(task);
  return s > 0 ? t("desk.expires", { s }) : t("desk.expired");
}

function renderLists() {
  const tasks = [...desk.tasks.values()];
  const offers = tasks.filter((task) => task.kind === "offer");
  const conversations = tasks.filter((task) => task.kind === "assignment");
  fill($("offers"), ...offers.map(taskItem));
  fill($("conversations"), ...conversations.map(taskItem));
  $("no-offers").hidden = offers.length > 0;
  $("no-conversations").hidden = conversations.length > 0;
}

function select(id) {
  const previous = selectedTask();
  if (previous) previous.draft = $("reply-text").value;
  desk.selected = id;
  const task = selectedTask();
  if (task) {
    task.unread = false;
    $("reply-text").value = task.draft || "";
  }
  renderAll();
  $("conversation").focus();
}

function renderConversation() {
  const task = selectedTask();
  $("conversation-empty").hidden = Boolean(task);
  $("conversation-body").hidden = !task;
  if (!task) return;
  const context = task.context;
  const customer = field(context, "customer") || {};
  const chips = [
    field(context, "language"),
    t(`channel.${enumName(field(context, "channel"), CHANNELS) || "CHANNEL_CHAT"}`),
    field(customer, "tier"),
    humanize(field(context, "intent")),
    task.priority ? t("desk.priority", { n: task.priority }) : null,
  ].filter(Boolean);
  fill($("conversation-header"), 
    h("h2", { id: "conversation-title" }, t("desk.customer", { id: customerId(task) })),
    h("p", { class: "chips" }, ...chips.map((c) => h("span", { class: "chip" }, c))),
    reasonText(context) ? h("p", { class: "reason" }, reasonText(context)) : null,
    task.note ? h("p", { class: "note" }, t("desk.note", { note: task.note })) : null,
    task.callback
      ? h("p", { class: "note" }, task.callbackPhone ? t("desk.callback", { phone: task.callbackPhone }) : t("desk.callback_nophone"))
      : null,
  );
  $("offer-actions").hidden = task.kind !== "offer";
  if (task.kind === "offer") $("offer-countdown").textContent = countdownText(task);
  renderTranscript(task);
  renderComposer(task);
  $("task-actions").hidden = task.kind !== "assignment";
}

function speakerLabel(line) {
  if (line.speaker === "advisor") {
    return line.agentId && line.agentId === desk.session.profile.agentId
      ? t("speaker.you")
      : `${t("speaker.advisor")}${line.agentId ? ` (${line.agentId})` : ""}`;
  }
  return t(`speaker.${line.speaker}`) || "";
}

function renderTranscript(task) {
  const list = $("transcript");
  // Follow the conversation: to the latest line when one came or another task is shown.
  const follow = list.dataset.task !== task.id || Number(list.dataset.lines) !== task.transcript.length;
  fill(list, 
    ...task.transcript.map((line) =>
      h(
        "li",
        { class: `line ${line.speaker}` },
        h(
          "div",
          { class: "line-head" },
          h("span", { class: "speaker" }, speakerLabel(line)),
          line.at ? h("time", { datetime: new Date(line.at).toISOString() }, timeText(line.at)) : null,
        ),
        h("p", { class: "text" }, line.text),
      ),
    ),
  );
  if (follow) list.scrollTop = list.scrollHeight;
  list.dataset.task = task.id;
  list.dataset.lines = String(task.transcript.length);
}

function renderComposer(task) {
  $("composer").hidden = task.kind !== "assignment";
  const editing = task.editing;
  $("editing").hidden = !editing;
  if (editing) $("editing-text").textContent = t("desk.editing", { n: editing.n });
}

function suggestionsOf(task) {
  const assist = task.assist || {};
  return (field(assist, "suggestions") || []).map((s, i) => ({
    id: field(s, "suggestion_id"),
    text: field(s, "text") || "",
    articles: field(s, "article_ids") || [],
    source: field(s, "source") || "template",
    n: i + 1,
  }));
}

function renderAssist() {
  const task = selectedTask();
  const body = $("assist-body");
  if (!task) {
    fill(body);
    return;
  }
  if (!task.assist) {
    fill(body, h("p", { class: "empty" }, t("desk.assist_waiting")));
    return;
  }
  const summary = field(task.assist, "summary");
  const before = field(task.assist, "history_summary");
  const suggestions = suggestionsOf(task);
  const canSend = task.kind === "assignment";
  fill(body, 
    summary ? h("section", { class: "summary" }, h("h3", {}, t("desk.summary")), h("p", {}, summary)) : null,
    before ? h("section", { class: "summary" }, h("h3", {}, t("desk.history_summary")), h("p", {}, before)) : null,
    h("h3", {}, t("desk.suggestions")),
    suggestions.length
      ? h(
          "ol",
          { class: "suggestions" },
          ...suggestions.map((s) => {
            const use = task.uses[s.id];
            const label = t("desk.suggestion", { n: s.n });
            return h(
              "li",
              { class: `suggestion${use ? " settled" : ""}`, "data-suggestion": s.id, "aria-label": label },
              h(
                "div",
                { class: "suggestion-head" },
                h("span", { class: "suggestion-n" }, label),
                h("span", { class: `source ${s.source}` }, t(`desk.source.${s.source}`)),
                use ? h("span", { class: "badge" }, t(use === "SUGGESTION_USE_IGNORED" ? "desk.ignored" : "desk.used")) : null,
              ),
              h("p", { class: "text" }, s.text),
              s.articles.length ? h("p", { class: "sources" }, t("desk.sources", { list: s.articles.join(", ") })) : null,
              h(
                "div",
                { class: "suggestion-actions" },
                h("button", {
                  type: "button", class: "primary", disabled: !canSend || Boolean(use),
                  "aria-label": `${t("desk.use")} — ${label}`,
                  onclick: (e) => useSuggestion(task, s, e.currentTarget),
                }, t("desk.use")),
                h("button", {
                  type: "button", disabled: !canSend || Boolean(use),
                  "aria-label": `${t("desk.edit")} — ${label}`, onclick: () => editSuggestion(task, s),
                }, t("desk.edit")),
                h("button", {
                  type: "button", class: "quiet", disabled: Boolean(use),
                  "aria-label": `${t("desk.ignore")} — ${label}`,
                  onclick: (e) => ignoreSuggestion(task, s, e.currentTarget),
                }, t("desk.ignore")),
              ),
            );
          }),
        )
      : h("p", { class: "empty" }, t("desk.no_suggestion")),
  );
}

function renderHistory() {
  const task = selectedTask();
  const body = $("history-body");
  if (!task) {
    fill(body, h("p", { class: "empty" }, t("desk.history_after_accept")));
    return;
  }
  if (task.history === null) {
    loadHistory(task);
  }
  if (task.history === "loading" || task.history === null) {
    fill(body, h("p", { class: "empty" }, t("desk.history_loading")));
  } else if (task.history.error) {
    fill(body, h("p", { class: "empty" }, t("error", { message: task.history.error })));
  } else if (!task.history.length) {
    fill(body, h("p", { class: "empty" }, t("desk.history_none")));
  } else {
    fill(body, 
      h(
        "ul",
        { class: "history" },
        ...task.history.map((past) => {
          const outcome = field(past, "outcome") || "";
          return h(
            "li",
            {},
            h(
              "div",
              { class: "history-head" },
              h("time", {}, dateText(millis(field(past, "started_at")))),
              h("span", { class: "chip" }, humanize(field(past, "intent")) || "—"),
              h("span", { class: `outcome ${outcome}` }, t(`outcome.${outcome}`) === `outcome.${outcome}` ? outcome : t(`outcome.${outcome}`)),
            ),
            field(past, "summary") ? h("p", {}, field(past, "summary")) : null,
          );
        }),
      ),
    );
  }
}

// Once a quarter second: the offers' countdowns (text only, so focus and typing are not disturbed), and offers
// past their expiry dropped (routing withdraws them; this keeps a desk that missed it honest).
function tick() {
  let dropped = false;
  for (const task of desk.tasks.values()) {
    if (task.kind !== "offer") continue;
    if (Date.now() > task.expiresAt + 3000) {
      desk.tasks.delete(task.id);
      dropped = true;
      continue;
    }
    for (const el of document.querySelectorAll(`[data-countdown="${CSS.escape(task.id)}"]`)) el.textContent = countdownText(task);
    if (task.id === desk.selected) {
      $("offer-countdown").textContent = countdownText(task);
      $("offer-countdown").classList.toggle("urgent", secondsLeft(task) <= 5);
    }
  }
  if (dropped) renderAll();
}

let toastTimer = null;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 6000);
}

function announce(text) {
  toast(text);
}

// --- start ---------------------------------------------------------------------------------------------------

function start() {
  setup(TEXTS, () => {
    if (desk.session && !$("workspace").hidden) {
      setConnection(desk.connection);
      renderAll();
    }
    fillQueues();
  });
  fillQueues();
  $("signin-form").addEventListener("submit", onSignInSubmit);
  $("sign-out").addEventListener("click", signOut);
  $("set-available").addEventListener("click", (e) => setState("available", e.currentTarget));
  $("set-break").addEventListener("click", (e) => setState("break", e.currentTarget));
  $("ready").addEventListener("click", (e) => setState("available", e.currentTarget));
  $("accept").addEventListener("click", accept);
  $("reject").addEventListener("click", reject);
  $("composer").addEventListener("submit", onComposerSubmit);
  $("reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("composer").requestSubmit();
  });
  $("editing-cancel").addEventListener("click", () => {
    const task = selectedTask();
    if (task) task.editing = null;
    $("reply-text").value = "";
    if (task) renderComposer(task);
  });
  $("transfer-form").addEventListener("submit", transfer);
  $("close-form").addEventListener("submit", closeConversation);
  $("f-languages").value = $("f-languages").value || (lang() === "fr" ? "fr" : "en");
  setInterval(tick, 250);

  const saved = sessionStorage.getItem(SESSION);
  if (saved) {
    try {
      desk.session = JSON.parse(saved);
      enterWorkspace();
      return;
    } catch {
      sessionStorage.removeItem(SESSION);
    }
  }
  showSignIn();
}

function fillQueues() {
  const select = $("transfer-queue");
  const value = select.value;
  select.replaceChildren(...SKILLS.map((skill) => h("option", { value: skill }, t(`skill.${skill}`))));
  if (value) select.value = value;
}

start();
