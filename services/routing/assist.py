"""Agent assist: what an advisor sees on assignment and on every new customer message.

A short summary of the conversation (what the customer wants, what the bot already did, why a person took
over) and of the customer's previous contacts, and 1 to 3 suggested replies drafted from the knowledge base
and the lookups already done, each carrying the ids of the articles it comes from. Pure: no Kafka, no
database; an LLM is only called when configured, and any failure falls back to the offline templates.

Knowledge base: one Markdown file per article in `knowledge/` (or `$RELAIS_KNOWLEDGE_DIR`), with a YAML
front matter:

    ---
    id: kb-lost-card-en
    language: en                 # fr or en
    title: Lost or stolen card
    intents: [lost_or_stolen_card]   # catalogue intents it answers (boosts retrieval)
    reply: "I have blocked your card ..."   # optional: the customer-facing reply the advisor may send
    ---
    The procedure, for the advisor (Markdown).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

import yaml
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer, strip_accents_unicode

from relais.common.pb import conversation_pb2 as pb

log = logging.getLogger(__name__)

KNOWLEDGE_DIR = Path(__file__).with_name("knowledge")
ENV_KNOWLEDGE_DIR = "RELAIS_KNOWLEDGE_DIR"
ENV_LLM_URL, ENV_LLM_MODEL, ENV_LLM_KEY = "RELAIS_ASSIST_LLM_URL", "RELAIS_ASSIST_LLM_MODEL", "RELAIS_ASSIST_LLM_API_KEY"
ENV_LLM_TIMEOUT = "RELAIS_ASSIST_LLM_TIMEOUT_S"
LANGUAGES = ("fr", "en")
INTENT_BOOST = 0.3        # an article declared for the conversation's intent outranks a mere word overlap
RELATIVE_CUTOFF = 0.5     # suggestions only from articles scoring at least half the best one
MAX_SUGGESTIONS = 3
HUMAN_INTENT = "speak_to_advisor"  # says who the customer wants, not what they want
RECENT = timedelta(days=7)
EMOTIONAL = {pb.HANDOFF_REASON_ANGER, pb.HANDOFF_REASON_DISTRESS, pb.HANDOFF_REASON_ESCALATING_SENTIMENT}

FRENCH_STOP_WORDS = frozenset(
    "a à au aux avec ce ces cette dans de des du elle en est et été il ils je la le les leur lui ma mais me mes "
    "mon ne nous on ou où par pas pour qu que qui sa se ses son sur ta te tes ton tu un une vos votre vous y "
    "c d j l m n s t est-ce ai as avez avons suis sont été être avoir bonjour merci svp".split()
)
STOP_WORDS = {"fr": FRENCH_STOP_WORDS, "en": frozenset(ENGLISH_STOP_WORDS | {"hi", "hello", "thanks", "please"})}


class KnowledgeError(ValueError):
    """A knowledge base article is missing, unreadable or malformed; the message names the file."""


@dataclass(frozen=True)
class Article:
    article_id: str
    language: str
    title: str
    body: str
    intents: tuple[str, ...]
    reply: str = ""  # customer-facing text for suggestions; empty: the body's first paragraph is used


@dataclass(frozen=True)
class PastContact:
    conversation_id: str
    started_at: datetime | None
    intent: str
    outcome: str  # "resolved", "unresolved", "abandoned", "bot_answered", ... (free text is shown as is)
    summary: str  # not shown: an earlier conversation's details are not re-exposed


@dataclass(frozen=True)
class Suggestion:
    suggestion_id: str
    text: str
    article_ids: tuple[str, ...]
    source: str  # "template" or "llm"


@dataclass(frozen=True)
class Assist:
    summary: str
    history_summary: str
    suggestions: tuple[Suggestion, ...]


# --------------------------------------------------------------------------------------------- knowledge


class KnowledgeBase:
    """The articles, with one TF-IDF index (words + character n-grams, for typos and inflections) per language."""

    def __init__(self, articles: Sequence[Article]):
        self.articles = tuple(articles)
        self._by_id = {a.article_id: a for a in self.articles}
        self._index: dict[str, tuple[list[Article], list[tuple[TfidfVectorizer, object]]]] = {}
        for language in sorted({a.language for a in self.articles}):
            docs = [a for a in self.articles if a.language == language]
            texts = [f"{a.title}\n{a.title}\n{a.body}\n{a.reply}" for a in docs]  # the title counts twice
            vectorizers = [
                TfidfVectorizer(strip_accents="unicode", sublinear_tf=True, ngram_range=(1, 2),
                                stop_words=sorted({strip_accents_unicode(w) for w in STOP_WORDS.get(language, ())})),
                TfidfVectorizer(strip_accents="unicode", sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5)),
            ]
            self._index[language] = (docs, [(v, v.fit_transform(texts)) for v in vectorizers])

    @classmethod
    def load(cls, directory: Path | None = None) -> KnowledgeBase:
        directory = Path(directory or os.environ.get(ENV_KNOWLEDGE_DIR) or KNOWLEDGE_DIR)
        if not directory.is_dir():
            raise KnowledgeError(f"{directory}: knowledge base directory not found")
        files = sorted(p for p in directory.glob("*.md") if not p.name.upper().startswith("README"))
        if not files:
            raise KnowledgeError(f"{directory}: no article (*.md) in the knowledge base directory")
        articles, seen = [], {}
        for path in files:
            article = parse_article(path)
            if article.article_id in seen:
                raise KnowledgeError(f"{path}: id {article.article_id!r} already used by {seen[article.article_id]}")
            seen[article.article_id] = path.name
            articles.append(article)
        return cls(articles)

    def get(self, article_id: str) -> Article:
        return self._by_id[article_id]

    def search(self, text: str, language: str, k: int = 3, intent: str = "") -> list[tuple[Article, float]]:
        """The k best articles in `language` for `text`, best first; `intent` boosts the articles declared for it."""
        if language not in self._index or k <= 0:
            return []
        docs, indexes = self._index[language]
        scores = [0.0] * len(docs)
        for vectorizer, matrix in indexes:
            similarity = (matrix @ vectorizer.transform([text]).T).toarray().ravel()  # rows are L2-normalised
            scores = [s + float(x) / len(indexes) for s, x in zip(scores, similarity)]
        ranked = sorted(
            ((a, s + (INTENT_BOOST if intent and intent in a.intents else 0.0)) for a, s in zip(docs, scores)),
            key=lambda hit: (-hit[1], hit[0].article_id),
        )
        return [(a, round(s, 6)) for a, s in ranked[:k] if s > 0]


def parse_article(path: Path) -> Article:
    """One article file; a KnowledgeError naming the file says what is wrong."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise KnowledgeError(f"{path}: cannot read: {error}") from None
    match = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", raw, re.DOTALL)
    if not match:
        raise KnowledgeError(f"{path}: no front matter (the file must start with a '---' block)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise KnowledgeError(f"{path}: invalid front matter: {error}") from None
    if not isinstance(meta, dict):
        raise KnowledgeError(f"{path}: the front matter must be a mapping (id, language, title, intents)")
    problems = [f"missing {key!r}" for key in ("id", "language", "title", "intents") if not meta.get(key)]
    unknown = sorted(set(meta) - {"id", "language", "title", "intents", "reply"})
    problems += [f"unknown key {key!r}" for key in unknown]
    if meta.get("language") and meta["language"] not in LANGUAGES:
        problems.append(f"language {meta['language']!r} is not one of {', '.join(LANGUAGES)}")
    intents = meta.get("intents") or []
    if not isinstance(intents, list) or not all(isinstance(i, str) and i for i in intents):
        problems.append("'intents' must be a list of intent ids")
    for key in ("id", "title", "reply"):
        if key in meta and not isinstance(meta[key], str):
            problems.append(f"{key!r} must be text")
    body = match.group(2).strip()
    if not body:
        problems.append("empty body")
    if problems:
        raise KnowledgeError(f"{path}: " + "; ".join(problems))
    return Article(meta["id"], meta["language"], meta["title"].strip(), body, tuple(intents),
                   (meta.get("reply") or "").strip())


# ------------------------------------------------------------------------------------------ summaries

LABELS = {  # intent -> (fr, en): short noun phrases, for the summaries
    "opening_hours": ("horaires d'ouverture", "opening hours"),
    "order_status": ("suivi de commande", "order status"),
    "account_balance": ("solde du compte", "account balance"),
    "store_locator": ("recherche d'un magasin", "finding a store"),
    "return_refund": ("retour et remboursement", "return and refund"),
    "exchange_item": ("échange d'un article", "exchanging an item"),
    "invoice_request": ("demande de facture", "invoice request"),
    "payment_methods": ("moyens de paiement", "payment methods"),
    "promo_code_problem": ("code promo refusé", "promo code not working"),
    "loyalty_points": ("points de fidélité", "loyalty points"),
    "account_access": ("accès au compte en ligne", "online account access"),
    "update_personal_details": ("modification des coordonnées", "updating personal details"),
    "card_limit_increase": ("hausse du plafond de carte", "raising a card limit"),
    "transfer_status": ("virement non reçu", "transfer not arrived"),
    "direct_debit_question": ("prélèvement", "direct debit"),
    "delivery_problem": ("colis en retard ou non reçu", "late or missing delivery"),
    "damaged_item": ("article abîmé ou non conforme", "damaged or wrong item"),
    "change_delivery_address": ("changement d'adresse de livraison", "changing the delivery address"),
    "lost_or_stolen_card": ("carte perdue ou volée", "lost or stolen card"),
    "card_not_arrived": ("carte non reçue", "card not received"),
    "card_payment_declined": ("paiement par carte refusé", "card payment declined"),
    "disputed_payment": ("contestation d'un paiement", "disputed payment"),
    "overdraft_fees": ("frais de découvert", "overdraft fees"),
    "complaint": ("réclamation", "complaint"),
    "cancellation": ("résiliation ou annulation", "cancellation"),
    "close_account": ("clôture du compte", "closing the account"),
    "speak_to_advisor": ("parler à un conseiller", "speaking to an advisor"),
}
REASONS = {  # hand-off reason -> (fr, en)
    pb.HANDOFF_REASON_CUSTOMER_REQUEST: ("a demandé un conseiller", "asked for an advisor"),
    pb.HANDOFF_REASON_ANGER: ("client en colère", "customer angry"),
    pb.HANDOFF_REASON_DISTRESS: ("client en détresse", "customer distressed"),
    pb.HANDOFF_REASON_ESCALATING_SENTIMENT: ("agacement croissant", "growing frustration"),
    pb.HANDOFF_REASON_OUT_OF_SCOPE: ("demande hors du périmètre du bot", "request outside the bot's scope"),
    pb.HANDOFF_REASON_LOW_CONFIDENCE: ("demande mal comprise par le bot", "the bot was unsure of the request"),
    pb.HANDOFF_REASON_REPEATED_FAILURE: ("échecs répétés du bot", "the bot failed repeatedly"),
    pb.HANDOFF_REASON_NOT_BOT_ALLOWED: ("demande réservée aux conseillers", "request reserved for advisors"),
    pb.HANDOFF_REASON_TIER_NOT_SERVED: ("client {tier} servi par un conseiller", "{tier} customer served by advisors"),
    pb.HANDOFF_REASON_AMOUNT_ABOVE_LIMIT: ("montant au-delà de la limite du bot", "amount above the bot's limit"),
    pb.HANDOFF_REASON_BOT_TURN_LIMIT: ("limite d'échanges du bot atteinte", "the bot reached its turn limit"),
}
STATUS = {
    "fr": {"preparing": "en préparation", "shipped": "expédiée", "delivered": "livrée", "cancelled": "annulée"},
    "en": {"preparing": "being prepared", "shipped": "shipped", "delivered": "delivered", "cancelled": "cancelled"},
}
OUTCOMES = {  # PastContact.outcome -> (fr, en)
    "resolved": ("résolu", "resolved"), "unresolved": ("non résolu", "unresolved"),
    "bot_answered": ("réglé par le bot", "answered by the bot"), "bot_resolved": ("réglé par le bot", "answered by the bot"),
    "abandoned": ("abandonné", "abandoned"), "transferred": ("transféré", "transferred"),
    "handed_off": ("transmis à un conseiller", "handed to an advisor"), "open": ("en cours", "still open"),
    "callback": ("rappel programmé", "callback scheduled"), "": ("issue inconnue", "outcome unknown"),
}
TEXT = {
    "fr": {
        "wants": "Demande : {what}.", "words": "« {words} »",
        "bot": "Bot : {done}.", "bot_none": "Bot : aucune réponse donnée.",
        "order_ok": "commande {order} consultée — {status}{carrier}{eta}", "carrier": ", transporteur {carrier}",
        "eta": ", livraison prévue le {date}", "order_failed": "consultation de la commande {order} en échec ({error})",
        "balance_ok": "solde du compte {account} donné ({amount})", "hours_ok": "horaires d'ouverture donnés",
        "lookup_failed": "consultation {name} en échec ({error})", "lookup_ok": "consultation {name} faite",
        "not_found": "introuvable", "unavailable": "systèmes indisponibles",
        "clarified": "a posé une question de clarification",
        "unresolved": ("{n} réponse sans résolution", "{n} réponses sans résolution"),
        "handoff": "Transfert : {reasons}", "tone": "ton {tone}",
        "tones": ("très négatif", "négatif", "neutre", "positif"), "urgent": "urgent",
        "first": "Premier contact connu.", "recent": "{nth} contact en 7 jours ({total} au total)",
        "older": ("{n} contact précédent, pas ces 7 derniers jours", "{n} contacts précédents, aucun ces 7 derniers jours"),
        "last": "dernier{when} : {what}{outcome}", "on": " le {date}",
        "same": ("{n} contact précédent pour la même demande.", "{n} contacts précédents pour la même demande."),
        "sep": " ; ",
        # suggestions
        "anger": "Je comprends votre agacement et vous prie de nous excuser pour la gêne occasionnée.",
        "distress": "Je comprends combien la situation est difficile ; je suis là pour vous aider à la régler tout de suite.",
        "s_order": "Votre commande {order} est {status}{carrier}{eta}.", "s_carrier": " (transporteur : {carrier})",
        "s_eta": ", livraison prévue le {date}",
        "s_order_unknown": "Je ne retrouve pas la commande {order} : pouvez-vous me confirmer son numéro ?",
        "s_balance": "Le solde de votre compte {account} est de {amount}.",
        "s_hours": "Nos horaires : {days}.", "closed": "fermé",
        "generic": "Je reprends votre demande avec tout l'historique de votre échange : je m'en occupe.",
    },
    "en": {
        "wants": "Customer wants: {what}.", "words": "“{words}”",
        "bot": "Bot: {done}.", "bot_none": "Bot: gave no answer.",
        "order_ok": "looked up order {order} — {status}{carrier}{eta}", "carrier": ", carrier {carrier}",
        "eta": ", expected delivery {date}", "order_failed": "lookup of order {order} failed ({error})",
        "balance_ok": "gave the balance of account {account} ({amount})", "hours_ok": "gave the opening hours",
        "lookup_failed": "lookup {name} failed ({error})", "lookup_ok": "ran lookup {name}",
        "not_found": "not found", "unavailable": "systems unavailable",
        "clarified": "asked a clarifying question",
        "unresolved": ("{n} reply did not resolve it", "{n} replies did not resolve it"),
        "handoff": "Handed off: {reasons}", "tone": "tone {tone}",
        "tones": ("very negative", "negative", "neutral", "positive"), "urgent": "urgent",
        "first": "First contact on record.", "recent": "{nth} contact in 7 days ({total} in all)",
        "older": ("{n} previous contact, not in the last 7 days", "{n} previous contacts, none in the last 7 days"),
        "last": "last{when}: {what}{outcome}", "on": " on {date}",
        "same": ("{n} earlier contact about the same request.", "{n} earlier contacts about the same request."),
        "sep": "; ",
        "anger": "I understand your frustration, and I'm sorry for the trouble this has caused.",
        "distress": "I'm sorry you're going through this; I'm here to help you sort it out right away.",
        "s_order": "Your order {order} is {status}{carrier}{eta}.", "s_carrier": " (carrier: {carrier})",
        "s_eta": ", expected to be delivered on {date}",
        "s_order_unknown": "I can't find order {order}: could you confirm its number?",
        "s_balance": "The balance of your account {account} is {amount}.",
        "s_hours": "Our opening hours: {days}.", "closed": "closed",
        "generic": "I have your whole conversation in front of me, and I'm taking care of your request.",
    },
}
DAYS = {
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
LONG_NUMBER = re.compile(r"\d(?:[ .-]?\d){7,}")  # card / account numbers quoted from the customer are masked


def conversation_language(context: pb.ConversationContext) -> str:
    for code in [context.language, context.customer.language] + [t.language for t in reversed(context.turns)]:
        if code and code[:2].lower() in LANGUAGES:
            return code[:2].lower()
    return "en"


def conversation_intent(context: pb.ConversationContext, guess: bool = True) -> str:
    """The hand-off's intent; behind a request for a person, the last real request; else (if `guess`) a best guess."""
    found = [context.intent] + [tu.classification.intent for tu in reversed(context.turns)]
    if guess:
        found += [tu.classification.best_guess for tu in reversed(context.turns)]
    found = [i for i in found if i]
    return next((i for i in found if i != HUMAN_INTENT), found[0] if found else "")


def customer_text(context: pb.ConversationContext) -> str:
    return "\n".join(t.text for t in context.turns if t.text)


def summarize(context: pb.ConversationContext, language: str | None = None,
              descriptions: Mapping[str, str] | None = None) -> str:
    """1–3 sentences: what the customer wants, what the bot did, why a person took over (and the tone)."""
    lang = language or conversation_language(context)
    t = TEXT[lang]
    intent = conversation_intent(context, guess=False)
    what = _label(intent, lang, descriptions)
    last_words = next((tu.text for tu in reversed(context.turns) if tu.text), "")
    if last_words and (not what or intent == HUMAN_INTENT):
        quoted = t["words"].format(words=_shorten(LONG_NUMBER.sub("…", last_words), 100))
        what = f"{what} {quoted}" if what else quoted
    sentences = [t["wants"].format(what=what)] if what else []

    done = [_lookup_summary(lookup, lang) for lookup in context.lookups]
    if any(a.clarification for a in context.bot_attempts):
        done.append(t["clarified"])
    unresolved = sum(1 for a in context.bot_attempts if not a.resolved and not a.clarification)
    if unresolved:
        done.append(_plural(t["unresolved"], unresolved))
    sentences.append(t["bot"].format(done=t["sep"].join(done)) if done else t["bot_none"])

    reasons = [r for r in dict.fromkeys([context.reason, *context.reasons]) if r in REASONS]
    parts = [_reason_text(r, lang, context.customer.tier) for r in reasons]
    tone = _tone(context, lang)
    if tone:
        parts.append(t["tone"].format(tone=tone))
    if parts:
        reasons_text = ", ".join(parts[:-1]) + (t["sep"] if len(parts) > 1 else "") + parts[-1]
        sentences.append(t["handoff"].format(reasons=reasons_text) + ".")
    return " ".join(sentences)


def summarize_history(context: pb.ConversationContext, history: Sequence[PastContact],
                      language: str | None = None, descriptions: Mapping[str, str] | None = None) -> str:
    """Previous contacts and how they ended, e.g. "3rd contact in 7 days (5 in all); last on …: refund, unresolved"."""
    lang = language or conversation_language(context)
    t = TEXT[lang]
    past = [c for c in history if c.conversation_id != context.conversation_id]
    if not past:
        return t["first"]
    now = _reference_time(context)
    past.sort(key=lambda c: (c.started_at is not None, _utc(c.started_at) if c.started_at else now))
    recent = sum(1 for c in past if c.started_at and timedelta(0) <= now - _utc(c.started_at) <= RECENT)
    if recent:
        head = t["recent"].format(nth=_ordinal(recent + 1, lang), total=len(past) + 1)
    else:
        head = _plural(t["older"], len(past))
    last = past[-1]
    when = t["on"].format(date=_date(lang, _utc(last.started_at).date())) if last.started_at else ""
    outcome = OUTCOMES.get(last.outcome.strip().lower(), (last.outcome.replace("_", " "),) * 2)[_i(lang)]
    what = _label(last.intent, lang, descriptions)
    what = f"{what}, " if what else ""
    text = f"{head}{t['sep']}{t['last'].format(when=when, what=what, outcome=outcome)}."
    intent = conversation_intent(context)
    same = sum(1 for c in past if intent and c.intent == intent)
    if same:
        text += " " + _plural(t["same"], same)
    return text


def _i(lang: str) -> int:
    return 0 if lang == "fr" else 1


def _plural(forms: tuple[str, str], n: int) -> str:
    return forms[0 if n == 1 else 1].format(n=n)


def _label(intent: str, lang: str, descriptions: Mapping[str, str] | None) -> str:
    if intent in LABELS:
        return LABELS[intent][_i(lang)]
    if descriptions and intent in descriptions:
        return descriptions[intent].rstrip(".")
    return ""


def _reason_text(reason: int, lang: str, tier: str) -> str:
    return REASONS[reason][_i(lang)].format(tier=(tier or "").upper() or "?")


def _tone(context: pb.ConversationContext, lang: str) -> str:
    turns = [tu for tu in context.turns if tu.HasField("classification")]
    if not turns:
        return ""
    sentiment = turns[-1].classification.sentiment
    tones = TEXT[lang]["tones"]
    score = sentiment.score
    tone = tones[0] if score <= -0.5 else tones[1] if score < -0.15 else tones[3] if score > 0.15 else tones[2]
    return f"{tone}, {TEXT[lang]['urgent']}" if any(tu.classification.sentiment.urgency for tu in turns) else tone


def _lookup_summary(lookup: pb.Lookup, lang: str) -> str:
    t = TEXT[lang]
    order = lookup.request.get("order_id", "")
    if not lookup.ok:
        error = t["not_found"] if lookup.error.startswith("NOT_FOUND") else t["unavailable"]
        if lookup.name == "order_status":
            return t["order_failed"].format(order=order, error=error)
        return t["lookup_failed"].format(name=lookup.name, error=error)
    r = lookup.result
    if lookup.name == "order_status":
        return t["order_ok"].format(order=order, **_order_parts(r, lang, "carrier", "eta"))
    if lookup.name == "account_balance":
        return t["balance_ok"].format(account=r.get("account", ""), amount=_balance(r, lang))
    if lookup.name == "opening_hours":
        return t["hours_ok"]
    return t["lookup_ok"].format(name=lookup.name)


def _order_parts(result: Mapping[str, str], lang: str, carrier_key: str, eta_key: str) -> dict[str, str]:
    t = TEXT[lang]
    status = result.get("status", "")
    carrier = t[carrier_key].format(carrier=result["carrier"]) if result.get("carrier") else ""
    eta = ""
    if result.get("expected_delivery") and status != "delivered":
        try:
            eta = t[eta_key].format(date=_date(lang, date.fromisoformat(result["expected_delivery"][:10])))
        except ValueError:
            eta = t[eta_key].format(date=result["expected_delivery"])
    return {"status": STATUS[lang].get(status, status), "carrier": carrier, "eta": eta}


def _balance(result: Mapping[str, str], lang: str) -> str:
    try:
        cents = int(result.get("balance_cents", ""))
    except ValueError:
        return result.get("balance_cents", "?")
    currency = result.get("currency", "")
    symbol = {"EUR": "€", "GBP": "£", "USD": "$"}.get(currency, currency)
    amount = f"{cents / 100:,.2f}"
    if lang == "fr":
        return amount.replace(",", "\u202f").replace(".", ",") + f" {symbol}"
    return f"{symbol}{amount}" if symbol != currency else f"{amount} {currency}"


def _date(lang: str, d: date) -> str:
    return d.strftime("%d/%m/%Y") if lang == "fr" else f"{d.day} {d.strftime('%B %Y')}"


def _ordinal(n: int, lang: str) -> str:
    if lang == "fr":
        return "1er" if n == 1 else f"{n}e"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _reference_time(context: pb.ConversationContext) -> datetime:
    """The hand-off time (or the last message's), so a summary computed later reads the same."""
    if context.HasField("handed_off_at"):
        return context.handed_off_at.ToDatetime(tzinfo=timezone.utc)
    stamps = [tu.sent_at for tu in context.turns if tu.HasField("sent_at")]
    return stamps[-1].ToDatetime(tzinfo=timezone.utc) if stamps else datetime.now(timezone.utc)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------- suggestions


class Drafter(Protocol):
    def draft(self, context: pb.ConversationContext, articles: Sequence[Article], language: str) -> list[Suggestion]:
        """Suggested replies in `language` from the conversation and the retrieved articles (best first)."""


def suggestion(context: pb.ConversationContext, text: str, article_ids: Sequence[str], source: str) -> Suggestion:
    """A suggestion whose id is a hash of conversation, articles and text: feedback can refer to it across calls."""
    ids = tuple(article_ids)
    digest = hashlib.sha256("\x1f".join([context.conversation_id, ",".join(ids), text]).encode()).hexdigest()
    return Suggestion(f"sug-{digest[:16]}", text, ids, source)


def empathy(context: pb.ConversationContext, language: str) -> str:
    """An empathetic opening when the customer is angry or distressed, else ''."""
    reasons = {context.reason, *context.reasons}
    sentiments = [tu.classification.sentiment for tu in context.turns]
    if pb.HANDOFF_REASON_DISTRESS in reasons or any(s.distress for s in sentiments):
        return TEXT[language]["distress"]
    if reasons & EMOTIONAL or any(s.anger for s in sentiments):
        return TEXT[language]["anger"]
    return ""


def lookup_facts(context: pb.ConversationContext, language: str) -> list[str]:
    """Customer-facing sentences from the lookups already done (the latest of each kind)."""
    t = TEXT[language]
    latest = {lookup.name: lookup for lookup in context.lookups}
    facts = []
    for name, lookup in latest.items():
        r = lookup.result
        if name == "order_status" and lookup.ok:
            facts.append(t["s_order"].format(order=lookup.request.get("order_id", ""),
                                             **_order_parts(r, language, "s_carrier", "s_eta")))
        elif name == "order_status" and lookup.error.startswith("NOT_FOUND"):
            facts.append(t["s_order_unknown"].format(order=lookup.request.get("order_id", "")))
        elif name == "account_balance" and lookup.ok:
            facts.append(t["s_balance"].format(account=r.get("account", ""), amount=_balance(r, language)))
        elif name == "opening_hours" and lookup.ok:
            days = [f"{DAYS[language][i]} {r[d].replace('-', '–') if r[d] != 'closed' else t['closed']}"
                    for i, d in enumerate(x.lower() for x in DAYS["en"]) if d in r]
            facts.append(t["s_hours"].format(days=", ".join(days)))
    return facts


class TemplateDrafter:
    """Offline drafting: empathy if needed, the lookup results, then each article's reply."""

    def draft(self, context: pb.ConversationContext, articles: Sequence[Article], language: str) -> list[Suggestion]:
        opening = empathy(context, language)
        facts = lookup_facts(context, language)
        drafts = []
        for n, article in enumerate(articles[:MAX_SUGGESTIONS]):
            parts = [opening, *(facts if n == 0 else []), article.reply or _first_paragraph(article.body)]
            drafts.append(suggestion(context, " ".join(p for p in parts if p), (article.article_id,), "template"))
        if not drafts:
            text = " ".join(p for p in [opening, *facts, TEXT[language]["generic"]] if p)
            drafts.append(suggestion(context, text, (), "template"))
        return drafts


def _first_paragraph(body: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip() and not p.lstrip().startswith("#")]
    return _shorten(paragraphs[0] if paragraphs else body, 400)


class LLMDrafter:
    """Drafts with an OpenAI-compatible chat completions endpoint; on any error, the templates (and a warning)."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 8.0,
                 fallback: Drafter | None = None):
        url = url.rstrip("/")
        if not url.endswith("/chat/completions"):
            url += "/chat/completions" if url.endswith("/v1") else "/v1/chat/completions"
        self.url, self.model, self.api_key, self.timeout = url, model, api_key, timeout
        self.fallback = fallback or TemplateDrafter()

    def draft(self, context: pb.ConversationContext, articles: Sequence[Article], language: str) -> list[Suggestion]:
        try:
            drafts = self._draft(context, articles, language)
            if drafts:
                return drafts
            log.warning("assist LLM at %s returned no usable suggestion; using templates", self.url)
        except Exception as error:  # noqa: BLE001 - never raise into the advisor's stream
            log.warning("assist LLM at %s failed (%s: %s); using templates", self.url, type(error).__name__, error)
        return self.fallback.draft(context, articles, language)

    def _draft(self, context: pb.ConversationContext, articles: Sequence[Article], language: str) -> list[Suggestion]:
        request = urllib.request.Request(
            self.url, data=json.dumps(self.payload(context, articles, language)).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            content = json.load(response)["choices"][0]["message"]["content"]
        return self.parse(context, content, articles)

    def payload(self, context: pb.ConversationContext, articles: Sequence[Article], language: str) -> dict:
        name = {"fr": "French", "en": "English"}[language]
        system = (
            f"You draft replies that a human contact-center advisor may send to a customer. Write in {name}. "
            "Use only the facts in the summary, the lookup results and the articles; never invent amounts, dates, "
            "order numbers or promises. Be brief, polite, and empathetic if the customer is upset. "
            'Answer with JSON only: {"suggestions": [{"text": "...", "article_ids": ["..."]}]}, 1 to 3 '
            "suggestions, each listing the ids of the articles it relies on."
        )
        last = next((tu.text for tu in reversed(context.turns) if tu.text), "")
        facts = lookup_facts(context, language)
        kb = "\n\n".join(f"[{a.article_id}] {a.title}\n{_shorten(a.body, 1500)}"
                         + (f"\nSuggested reply: {a.reply}" if a.reply else "") for a in articles)
        user = (f"Summary: {summarize(context, language)}\n"
                f"Customer's last message: {_shorten(LONG_NUMBER.sub('…', last), 600)}\n"
                f"Lookup results: {' '.join(facts) or 'none'}\n\nArticles:\n{kb or 'none'}")
        return {"model": self.model, "temperature": 0.2,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}

    @staticmethod
    def parse(context: pb.ConversationContext, content: str, articles: Sequence[Article]) -> list[Suggestion]:
        known = [a.article_id for a in articles]
        content = re.sub(r"\A\s*```(?:json)?\s*|\s*```\s*\Z", "", content)
        try:
            items = json.loads(content)["suggestions"]
        except (ValueError, KeyError, TypeError):
            prose = content.strip() and not content.lstrip().startswith(("{", "["))  # broken JSON is not a reply
            items = [{"text": content}] if prose else []
        drafts = []
        for item in items if isinstance(items, list) else []:
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str) or not text.strip():
                continue
            cited = item.get("article_ids") if isinstance(item.get("article_ids"), list) else []
            ids = tuple(dict.fromkeys(i for i in cited if i in known)) or tuple(known)  # none cited: all it was given
            drafts.append(suggestion(context, text.strip(), ids, "llm"))
        return drafts[:MAX_SUGGESTIONS]


# ------------------------------------------------------------------------------------------ assistant


class Assistant:
    def __init__(self, knowledge: KnowledgeBase, drafter: Drafter | None = None,
                 descriptions: Mapping[str, str] | None = None):
        self.knowledge = knowledge
        self.drafter = drafter or TemplateDrafter()
        self.descriptions = descriptions  # catalogue intent descriptions, for intents without a label here

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Assistant:
        env = os.environ if env is None else env
        knowledge = KnowledgeBase.load(Path(env.get(ENV_KNOWLEDGE_DIR) or KNOWLEDGE_DIR))
        url, model = env.get(ENV_LLM_URL, "").strip(), env.get(ENV_LLM_MODEL, "").strip()
        if url and model:
            timeout = float(env.get(ENV_LLM_TIMEOUT) or 8.0)
            return cls(knowledge, LLMDrafter(url, model, env.get(ENV_LLM_KEY) or None, timeout))
        if url or model:
            log.warning("assist: %s and %s are both needed for an LLM; drafting offline", ENV_LLM_URL, ENV_LLM_MODEL)
        return cls(knowledge)

    def assist(self, context: pb.ConversationContext, history: Sequence[PastContact]) -> Assist:
        language = conversation_language(context)
        hits = self.knowledge.search(customer_text(context), language, MAX_SUGGESTIONS, conversation_intent(context))
        articles = [a for a, score in hits if score >= RELATIVE_CUTOFF * hits[0][1]]
        try:
            drafts = self.drafter.draft(context, articles, language)
        except Exception as error:  # noqa: BLE001 - a custom drafter's failure must not cost the advisor the summary
            log.warning("assist drafter %s failed (%s); using templates", type(self.drafter).__name__, error)
            drafts = []
        drafts = list(drafts)[:MAX_SUGGESTIONS] or TemplateDrafter().draft(context, articles, language)
        return Assist(summarize(context, language, self.descriptions),
                      summarize_history(context, history, language, self.descriptions), tuple(drafts))
