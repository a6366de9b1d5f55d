"""Agent assist: what an advisor sees on assignment and on every new customer message.

A short summary of the conversation (what the customer wants, what the bot already did, why a person took
over) and of the customer's previous contacts, and 1 to 3 suggested replies drafted from the knowledge base
and the lookups already done, each carrying the ids of the articles it comes from. Pure: no Kafka, no
database; an LLM is only called when configured, and any failure falls back to the offline templates.

What a suggestion may say (checked by `check`, measured by bench/assist_eval.py):
- only facts in the conversation context or in the articles it cites: every template sentence declares what
  the context must hold (`Template.requires`, e.g. a successful order lookup) and is said only then;
- it answers the customer's latest request (`latest_request`); a request for a person alone gets a takeover
  greeting that recalls the earlier request; a callback task gets an opening for the call;
- a lookup's result only in a reply its article builds on (`lookup:` in the article); closing an account,
  cancelling, refunding or blocking a card only when the customer asked for it.

Knowledge base: one Markdown file per article in `knowledge/` (or `$RELAIS_KNOWLEDGE_DIR`), with a YAML
front matter:

    ---
    id: kb-lost-card-en
    language: en                 # fr or en
    title: Lost or stolen card
    intents: [lost_or_stolen_card]   # catalogue intents it answers; the first is its main one
    reply: "I'm blocking your card ..."     # optional: the customer-facing reply the advisor may send
    lookup: order_status         # optional: the lookup whose result the reply builds on (said before it)
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
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, Protocol, TypedDict

import yaml
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from relais.classifier.catalogue import HUMAN_INTENT, PLAUSIBLE_GUESS
from relais.common.language import FRENCH_STOP_WORDS, SUPPORTED_LANGUAGES as LANGUAGES, supported_language
from relais.common.lookup_words import DAYS, MONTHS, ORDER_NUMBER, ORDER_STATUS, order_numbers
from relais.common.pb import conversation_pb2 as pb

log = logging.getLogger(__name__)

KNOWLEDGE_DIR = Path(__file__).with_name("knowledge")
ENV_KNOWLEDGE_DIR = "RELAIS_KNOWLEDGE_DIR"
ENV_LLM_URL, ENV_LLM_MODEL, ENV_LLM_KEY = (
    "RELAIS_ASSIST_LLM_URL",
    "RELAIS_ASSIST_LLM_MODEL",
    "RELAIS_ASSIST_LLM_API_KEY",
)
ENV_LLM_TIMEOUT = "RELAIS_ASSIST_LLM_TIMEOUT_S"
LOOKUPS = ("order_status", "account_balance", "opening_hours")  # what the bot can look up (services/bot/answers.py)
INTENT_BOOST = 0.3  # an article declared for the conversation's intent outranks a mere word overlap
MAX_SUGGESTIONS = 3
RECENT = timedelta(days=7)
EMOTIONAL = {pb.HANDOFF_REASON_ANGER, pb.HANDOFF_REASON_DISTRESS, pb.HANDOFF_REASON_ESCALATING_SENTIMENT}

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
    lookup: str = ""  # the lookup whose result (or, for an order, the missing number) goes with the reply


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
    topic: str = ""  # for a suggestion without article: "greeting", "callback" or "generic"


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
                TfidfVectorizer(
                    strip_accents="unicode",
                    sublinear_tf=True,
                    ngram_range=(1, 2),
                    stop_words=sorted(STOP_WORDS.get(language, ())),  # folded already, as the vectorizer folds
                ),
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
        articles: list[Article] = []
        seen: dict[str, str] = {}  # article id -> file name
        for path in files:
            article = parse_article(path)
            if article.article_id in seen:
                raise KnowledgeError(f"{path}: id {article.article_id!r} already used by {seen[article.article_id]}")
            seen[article.article_id] = path.name
            articles.append(article)
        return cls(articles)

    def get(self, article_id: str) -> Article:
        return self._by_id[article_id]

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._by_id

    def scores(self, text: str, language: str) -> dict[str, float]:
        """Similarity of `text` to every article in `language` (0 to 1), by article id."""
        if language not in self._index:
            return {}
        docs, indexes = self._index[language]
        scores = [0.0] * len(docs)
        for vectorizer, matrix in indexes:
            similarity = (matrix @ vectorizer.transform([text]).T).toarray().ravel()  # rows are L2-normalised
            scores = [s + float(x) / len(indexes) for s, x in zip(scores, similarity)]
        return {a.article_id: s for a, s in zip(docs, scores)}

    def search(self, text: str, language: str, k: int = 3, intent: str = "") -> list[tuple[Article, float]]:
        """The k best articles in `language` for `text`, best first; `intent` boosts the articles declared for it."""
        if k <= 0:
            return []
        scores = self.scores(text, language)
        ranked = sorted(
            (
                (self._by_id[i], s + (INTENT_BOOST if intent and intent in self._by_id[i].intents else 0.0))
                for i, s in scores.items()
            ),
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
    unknown = sorted(set(meta) - {"id", "language", "title", "intents", "reply", "lookup"})
    problems += [f"unknown key {key!r}" for key in unknown]
    if meta.get("language") and meta["language"] not in LANGUAGES:
        problems.append(f"language {meta['language']!r} is not one of {', '.join(LANGUAGES)}")
    intents = meta.get("intents") or []
    if not isinstance(intents, list) or not all(isinstance(i, str) and i for i in intents):
        problems.append("'intents' must be a list of intent ids")
    for key in ("id", "title", "reply"):
        if key in meta and not isinstance(meta[key], str):
            problems.append(f"{key!r} must be text")
    if meta.get("lookup") is not None and meta["lookup"] not in LOOKUPS:
        problems.append(f"lookup {meta['lookup']!r} is not one of {', '.join(LOOKUPS)}")
    body = match.group(2).strip()
    if not body:
        problems.append("empty body")
    if problems:
        raise KnowledgeError(f"{path}: " + "; ".join(problems))
    return Article(
        meta["id"],
        meta["language"],
        meta["title"].strip(),
        body,
        tuple(intents),
        (meta.get("reply") or "").strip(),
        meta.get("lookup") or "",
    )


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
SUBJECTS = {  # intent -> (fr, en): what the customer wrote about, as a reply may say it
    "opening_hours": ("au sujet de nos horaires d'ouverture", "about our opening hours"),
    "order_status": ("au sujet du suivi de votre commande", "about where your order is"),
    "account_balance": ("au sujet du solde de votre compte", "about your account balance"),
    "store_locator": ("pour trouver l'un de nos magasins", "about finding one of our stores"),
    "return_refund": ("au sujet d'un retour ou d'un remboursement", "about a return or a refund"),
    "exchange_item": ("au sujet de l'échange d'un article", "about exchanging an item"),
    "invoice_request": ("au sujet d'une facture", "about an invoice"),
    "payment_methods": ("au sujet des moyens de paiement", "about the ways you can pay"),
    "promo_code_problem": ("au sujet d'un code promo", "about a promo code"),
    "loyalty_points": ("au sujet de vos points de fidélité", "about your loyalty points"),
    "account_access": ("au sujet de l'accès à votre compte en ligne", "about getting into your online account"),
    "update_personal_details": ("au sujet de la mise à jour de vos coordonnées", "about updating your details"),
    "card_limit_increase": ("au sujet du plafond de votre carte", "about your card limit"),
    "transfer_status": ("au sujet d'un virement", "about a transfer"),
    "direct_debit_question": ("au sujet d'un prélèvement", "about a direct debit"),
    "delivery_problem": ("au sujet de la livraison de votre colis", "about the delivery of your parcel"),
    "damaged_item": ("au sujet d'un article abîmé ou non conforme", "about a damaged or wrong item"),
    "change_delivery_address": ("au sujet de l'adresse de livraison", "about the delivery address"),
    "lost_or_stolen_card": ("au sujet de votre carte perdue ou volée", "about your lost or stolen card"),
    "card_not_arrived": ("au sujet de votre carte qui n'est pas arrivée", "about your card that hasn't arrived"),
    "card_payment_declined": ("au sujet d'un paiement par carte refusé", "about a declined card payment"),
    "disputed_payment": ("au sujet d'un paiement que vous contestez", "about a payment you dispute"),
    "overdraft_fees": ("au sujet de frais de découvert", "about overdraft fees"),
    "complaint": ("au sujet de votre réclamation", "about your complaint"),
    "cancellation": ("au sujet d'une résiliation", "about a cancellation"),
    "close_account": ("au sujet de la clôture de votre compte", "about closing your account"),
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
    pb.HANDOFF_REASON_LANGUAGE_NOT_SERVED: ("langue non servie par le bot", "a language the bot does not serve"),
    pb.HANDOFF_REASON_CHURN_RISK: ("client susceptible de nous quitter", "customer who may leave us"),
    pb.HANDOFF_REASON_MULTIPLE_REQUESTS: ("plusieurs demandes dans un message", "several requests in one message"),
    pb.HANDOFF_REASON_NEEDS_JUDGEMENT: ("demande à apprécier par un conseiller", "needs an advisor's judgement"),
}
OUTCOMES = {  # PastContact.outcome -> (fr, en)
    "resolved": ("résolu", "resolved"),
    "unresolved": ("non résolu", "unresolved"),
    "bot_answered": ("réglé par le bot", "answered by the bot"),
    "bot_resolved": ("réglé par le bot", "answered by the bot"),
    "abandoned": ("abandonné", "abandoned"),
    "transferred": ("transféré", "transferred"),
    "handed_off": ("transmis à un conseiller", "handed to an advisor"),
    "open": ("en cours", "still open"),
    "callback": ("rappel programmé", "callback scheduled"),
    "": ("issue inconnue", "outcome unknown"),
}


class _Texts(TypedDict):
    """TEXT's entries, the same in each language: texts to format, (one, several) forms for _plural, four tones."""

    wants: str
    words: str
    bot: str
    bot_none: str
    order_ok: str
    carrier: str
    eta: str
    order_failed: str
    balance_ok: str
    hours_ok: str
    lookup_failed: str
    lookup_ok: str
    not_found: str
    unavailable: str
    clarified: str
    answered: tuple[str, str]
    unresolved: tuple[str, str]
    handoff: str
    tone: str
    tones: tuple[str, str, str, str]
    urgent: str
    first: str
    recent: str
    older: tuple[str, str]
    previous: tuple[str, str]
    last: str
    on: str
    same: tuple[str, str]
    sep: str
    before: str
    s_carrier: str
    s_eta: str
    closed: str


TEXT: dict[str, _Texts] = {
    "fr": {
        "wants": "Demande : {what}.",
        "words": "« {words} »",
        "bot": "Bot : {done}.",
        "bot_none": "Bot : aucune réponse donnée.",
        "order_ok": "commande {order} consultée — {status}{carrier}{eta}",
        "carrier": ", transporteur {carrier}",
        "eta": ", livraison prévue le {date}",
        "order_failed": "consultation de la commande {order} en échec ({error})",
        "balance_ok": "solde du compte {account} donné ({amount})",
        "hours_ok": "horaires d'ouverture donnés",
        "lookup_failed": "consultation {name} en échec ({error})",
        "lookup_ok": "consultation {name} faite",
        "not_found": "introuvable",
        "unavailable": "systèmes indisponibles",
        "clarified": "a posé une question de clarification",
        "answered": ("{n} réponse donnée", "{n} réponses données"),
        "unresolved": ("{n} réponse sans résolution", "{n} réponses sans résolution"),
        "handoff": "Transfert : {reasons}",
        "tone": "ton {tone}",
        "tones": ("très négatif", "négatif", "neutre", "positif"),
        "urgent": "urgent",
        "first": "Premier contact connu.",
        "recent": "{nth} contact en 7 jours ({total} au total)",
        "older": (
            "{n} contact précédent, pas ces 7 derniers jours",
            "{n} contacts précédents, aucun ces 7 derniers jours",
        ),
        "previous": ("{n} contact précédent", "{n} contacts précédents"),
        "last": "dernier{when} : {what}{outcome}",
        "on": " le {date}",
        "same": ("{n} contact précédent pour la même demande.", "{n} contacts précédents pour la même demande."),
        "sep": " ; ",
        "before": " (avant : {what})",
        # parts of suggestions (the sentences are TEMPLATES)
        "s_carrier": " (transporteur : {carrier})",
        "s_eta": ", livraison prévue le {date}",
        "closed": "fermé",
    },
    "en": {
        "wants": "Customer wants: {what}.",
        "words": "“{words}”",
        "bot": "Bot: {done}.",
        "bot_none": "Bot: gave no answer.",
        "order_ok": "looked up order {order} — {status}{carrier}{eta}",
        "carrier": ", carrier {carrier}",
        "eta": ", expected delivery {date}",
        "order_failed": "lookup of order {order} failed ({error})",
        "balance_ok": "gave the balance of account {account} ({amount})",
        "hours_ok": "gave the opening hours",
        "lookup_failed": "lookup {name} failed ({error})",
        "lookup_ok": "ran lookup {name}",
        "not_found": "not found",
        "unavailable": "systems unavailable",
        "clarified": "asked a clarifying question",
        "answered": ("gave {n} answer", "gave {n} answers"),
        "unresolved": ("{n} reply did not resolve it", "{n} replies did not resolve it"),
        "handoff": "Handed off: {reasons}",
        "tone": "tone {tone}",
        "tones": ("very negative", "negative", "neutral", "positive"),
        "urgent": "urgent",
        "first": "First contact on record.",
        "recent": "{nth} contact in 7 days ({total} in all)",
        "older": ("{n} previous contact, not in the last 7 days", "{n} previous contacts, none in the last 7 days"),
        "previous": ("{n} previous contact", "{n} previous contacts"),
        "last": "last{when}: {what}{outcome}",
        "on": " on {date}",
        "same": ("{n} earlier contact about the same request.", "{n} earlier contacts about the same request."),
        "sep": "; ",
        "before": " (before: {what})",
        # parts of suggestions (the sentences are TEMPLATES)
        "s_carrier": " (carrier: {carrier})",
        "s_eta": ", expected to be delivered on {date}",
        "closed": "closed",
    },
}
LONG_NUMBER = re.compile(r"\d(?:[ .-]?\d){7,}")  # card / account numbers quoted from the customer are masked


def conversation_language(context: pb.ConversationContext) -> str:
    for code in [context.language, context.customer.language] + [t.language for t in reversed(context.turns)]:
        if served := supported_language(code):
            return served
    return "en"


def conversation_intent(context: pb.ConversationContext, guess: bool = True) -> str:
    """The customer's latest request (behind a request for a person, the one before it), else the hand-off's;
    `guess` lets a best guess count. A request for a person alone gives HUMAN_INTENT."""
    found = [i for i in [*(_topic(tu, guess) for tu in reversed(context.turns)), context.intent] if i]
    topic = next((i for i in found if i != HUMAN_INTENT), "")
    if topic:
        return topic
    return HUMAN_INTENT if HUMAN_INTENT in found or any(_asks_for_person(tu) for tu in context.turns) else ""


def summarize(
    context: pb.ConversationContext, language: str | None = None, descriptions: Mapping[str, str] | None = None
) -> str:
    """1–3 sentences: what the customer wants, what the bot did, why a person took over (and the tone)."""
    lang = language or conversation_language(context)
    t = TEXT[lang]
    intent = conversation_intent(context, guess=False)
    what = _label(intent, lang, descriptions)
    last_words = latest_request(context).text.split("\n")[0]
    if last_words and (not what or intent == HUMAN_INTENT):
        quoted = t["words"].format(words=_shorten(LONG_NUMBER.sub("…", last_words), 100))
        what = f"{what} {quoted}" if what else quoted
    before = [
        _label(i, lang, descriptions)
        for i in dict.fromkeys(_topic(tu, False) for tu in reversed(context.turns))
        if i and i != intent
    ]
    if what and any(before):
        what += t["before"].format(what=", ".join(b for b in before if b))
    sentences = [t["wants"].format(what=what)] if what else []

    done = [_lookup_summary(lookup, lang) for lookup in context.lookups]
    if any(a.clarification for a in context.bot_attempts):
        done.append(t["clarified"])
    looked_up = {lookup.turn_id for lookup in context.lookups if lookup.ok}  # those answers are told above
    answered = sum(1 for a in context.bot_attempts if a.resolved and not a.clarification and a.turn_id not in looked_up)
    if answered:
        done.append(_plural(t["answered"], answered))
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


def summarize_history(
    context: pb.ConversationContext,
    history: Sequence[PastContact],
    language: str | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> str:
    """Previous contacts and how they ended, e.g. "3rd contact in 7 days (5 in all); last on …: refund, unresolved"."""
    lang = language or conversation_language(context)
    t = TEXT[lang]
    past = [c for c in history if c.conversation_id != context.conversation_id]
    if not past:
        return t["first"]
    now = _reference_time(context)
    past.sort(key=lambda c: (c.started_at is not None, _utc(c.started_at) if c.started_at else now))
    # A contact after the reference time (the hand-off) is recent too: the last one is then never "older".
    recent = sum(1 for c in past if c.started_at and now - _utc(c.started_at) <= RECENT)
    if recent:
        head = t["recent"].format(nth=_ordinal(recent + 1, lang), total=len(past) + 1)
    elif all(c.started_at for c in past):
        head = _plural(t["older"], len(past))
    else:  # undated contacts: nothing can be said about the last 7 days
        head = _plural(t["previous"], len(past))
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


def _reason_text(reason: pb.HandoffReason, lang: str, tier: str) -> str:
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


def _order_parts(
    result: Mapping[str, str], lang: str, carrier_key: Literal["carrier", "s_carrier"], eta_key: Literal["eta", "s_eta"]
) -> dict[str, str]:
    t = TEXT[lang]
    status = result.get("status", "")
    carrier = t[carrier_key].format(carrier=result["carrier"]) if result.get("carrier") else ""
    eta = ""
    if result.get("expected_delivery") and status != "delivered":
        try:
            eta = t[eta_key].format(date=_date(lang, date.fromisoformat(result["expected_delivery"][:10])))
        except ValueError:
            eta = t[eta_key].format(date=result["expected_delivery"])
    return {"status": ORDER_STATUS[lang].get(status, status), "carrier": carrier, "eta": eta}


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


# ------------------------------------------------------------------------------------ the latest request


@dataclass(frozen=True)
class Request:
    """What the advisor's reply should answer: the customer's latest request, not the first."""

    intent: str  # "" when the customer only asked for a person, or nothing was understood
    earlier: tuple[str, ...]  # earlier requests the classifier was sure of, latest first
    person: bool  # the latest message asks for a person and nothing else
    text: str  # the customer's words since that request was made (to rank its articles)


def _topic(turn: pb.Turn, guess: bool = True) -> str:
    c = turn.classification
    intent = c.intent or (c.best_guess if guess and c.confidence >= PLAUSIBLE_GUESS else "")
    return "" if intent == HUMAN_INTENT else intent


def _asks_for_person(turn: pb.Turn) -> bool:
    c = turn.classification
    return c.intent == HUMAN_INTENT or (not c.intent and c.asks_for_human and c.best_guess in ("", HUMAN_INTENT))


def latest_request(context: pb.ConversationContext) -> Request:
    """The last message that says what the customer wants; a message without an intent (a follow-up such as
    "hello??", or a queue command such as CALLBACK) continues the request before it."""
    turns = list(context.turns)
    at = next((n for n in range(len(turns) - 1, -1, -1) if _topic(turns[n]) or _asks_for_person(turns[n])), None)
    if at is None:
        intent = "" if context.intent == HUMAN_INTENT else context.intent
        return Request(intent, (), False, "\n".join(t.text for t in turns[-2:] if t.text))
    intent = "" if _asks_for_person(turns[at]) else _topic(turns[at])
    earlier = tuple(
        dict.fromkeys(i for i in (_topic(t, guess=False) for t in reversed(turns[:at])) if i and i != intent)
    )
    return Request(intent, earlier, not intent, "\n".join(t.text for t in turns[at:] if t.text))


def asked_intents(context: pb.ConversationContext) -> set[str]:
    """Every request the customer made in this conversation (sure or best guess), the hand-off's included."""
    found = {context.intent} | {
        i for t in context.turns for i in (t.classification.intent, t.classification.best_guess)
    }
    return found - {"", HUMAN_INTENT}


# ---------------------------------------------------------------------------------- evidence and claims
#
# A requirement names something the conversation context must hold before a sentence may say it:
#   lookup_ok:NAME         the latest lookup NAME succeeded        lookup_failed:NAME     it failed
#   lookup_not_found:NAME  it failed with NOT_FOUND                bot_answered[:INTENT]  the bot gave an answer
#   asked:INTENT           the customer made that request          callback               this is a callback task
#   order_delivered        the order lookup or the customer says the order was delivered
#   reported_late          the customer reported a late delivery (the request, or words such as "never arrived")
# Templates declare theirs (TEMPLATES); `check` finds the claims in any text and asks the same question.

KINDS = ("handoff", "callback")


def holds(requirement: str, context: pb.ConversationContext, kind: str = "handoff") -> bool:
    name, _, arg = requirement.partition(":")
    latest = {lookup.name: lookup for lookup in context.lookups}.get(arg)
    if name == "lookup_ok":
        return latest is not None and latest.ok
    if name == "lookup_failed":
        return latest is not None and not latest.ok
    if name == "lookup_not_found":
        return latest is not None and not latest.ok and latest.error.startswith("NOT_FOUND")
    if name == "bot_answered":
        return any(a.resolved and not a.clarification and (not arg or a.intent == arg) for a in context.bot_attempts)
    if name == "asked":
        return arg in asked_intents(context)
    if name == "callback":
        return kind == "callback"
    if name == "reported_late":  # a late-delivery request, or the customer's words say it has not come
        return "delivery_problem" in asked_intents(context) or bool(
            LATE_WORDS.search(" ".join(t.text for t in context.turns))
        )
    if name == "order_delivered":  # the order lookup says so, or the customer does
        order = {lookup.name: lookup for lookup in context.lookups}.get("order_status")
        looked_up = order is not None and order.ok and order.result.get("status") == "delivered"
        return looked_up or bool(re.search(r"\b(?:delivered|livrée?)\b", " ".join(t.text for t in context.turns), re.I))
    raise ValueError(f"unknown requirement {requirement!r}")


APOSTROPHE = "['’]"
LATE_WORDS = re.compile(
    r"\b(?:late|delayed|never (?:came|arrived|turned up)|(?:hasn't|has not|not|never|still not) "
    r"(?:arrived|come|turned up|here)|retard|(?:pas|jamais|toujours pas) (?:encore )?(?:arrivée?|reçue?))\b".replace(
        "'", APOSTROPHE
    ),
    re.IGNORECASE,
)
_CLAIM_REGEXES = [  # (what a sentence says, the requirement that makes it true); English and French
    (
        r"\b(?:I|we)(?:'ve| have)\s+(?:just |already |now )?(?:checked|looked (?:up|at|into)|verified|tracked|traced)\b"
        r"[^.?!]*\b(?:track|order|parcel|package|carrier|deliver)",
        "lookup_ok:order_status",
    ),
    (
        r"\b(?:j'ai|nous avons)\s+(?:déjà |bien )?(?:vérifié|consulté|regardé|contrôlé|suivi)\b"
        r"[^.?!]*\b(?:suivi|commande|colis|transporteur|livraison)",
        "lookup_ok:order_status",
    ),
    (
        r"\b(?:I|we)(?:'ve| have)\s+(?:just |already |now )?(?:checked|looked (?:up|at|into)|verified)\b[^.?!]*\b(?:balance|account)",
        "lookup_ok:account_balance",
    ),
    (
        r"\b(?:j'ai|nous avons)\s+(?:déjà |bien )?(?:vérifié|consulté|regardé|contrôlé)\b[^.?!]*\b(?:solde|compte)",
        "lookup_ok:account_balance",
    ),
    (
        r"\b(?:balance of your account|your (?:account )?balance is|solde de votre compte\b[^.?!]*\best|votre solde est)",
        "lookup_ok:account_balance",
    ),
    (r"\b(?:our|the) opening hours\s*:|\bnos horaires\s*:", "lookup_ok:opening_hours"),
    (
        r"\bI can(?:no|')t find\b[^.?!]*\border|\bje ne (?:trouve|retrouve) pas\b[^.?!]*\bcommande",
        "lookup_not_found:order_status",
    ),
    (
        r"\border tracking\b[^.?!]*\b(?:isn't|is not) (?:responding|answering)|\bsuivi des commandes\b[^.?!]*\bne répond pas",
        "lookup_failed:order_status",
    ),
    (
        r"\baccount system\b[^.?!]*\b(?:isn't|is not) (?:responding|answering)|\bconsultation des comptes\b[^.?!]*\bne répond pas",
        "lookup_failed:account_balance",
    ),
    (
        r"\b(?:our|the) (?:virtual )?(?:assistant|bot|chatbot)\b[^.?!]*\b(?:answered|replied|told|gave|said)\b"
        r"|\b(?:notre|l')\s?(?:assistant|robot|chatbot)\b[^.?!]*\b(?:répondu|indiqué|donné|dit)\b",
        "bot_answered",
    ),
    (r"\bcall(?:ing)? you back\b|\bje vous rappelle\b|\bnous vous rappelons\b", "callback"),
    (
        r"(?<!\bif )(?<!\bsi )\b(?:your (?:parcel|order|package)|it|votre (?:colis|commande))\s+(?:shows|is shown|is marked|"
        r"appears|apparaît|est indiquée?|est marquée?)\s+(?:as |comme )?(?:delivered|livrée?)\b",
        "order_delivered",
    ),
    (
        r"\byour (?:parcel|order|package|delivery) (?:is|was) (?:late|delayed)\b|\bvotre (?:colis|commande|livraison) "
        r"(?:soit|est) en retard\b",
        "reported_late",
    ),
]
CLAIMS = [
    (re.compile(pattern.replace("'", APOSTROPHE), re.IGNORECASE), requirement)
    for pattern, requirement in _CLAIM_REGEXES
]
# A first-person perfect ("I've blocked", "j'ai enregistré") claims something was done: unsupported unless a
# claim above backs it. Reading and understanding the conversation are things the advisor has done.
PERFECT = re.compile(
    r"\b(?:I|we)(?:'ve| have)\s+(?:just |already |now |also )?([a-z]+)\b"
    r"|\b(?:j'ai|nous avons|on a)\s+(?:déjà |bien |aussi )?([a-zàâçéèêëîïôûùüÿœ]+)\b".replace("'", APOSTROPHE),
    re.IGNORECASE,
)
LATER = re.compile(r"\b(?:once|after|when|as soon as|dès que|une fois que|quand|lorsque)\s*$", re.IGNORECASE)
PASSIVE = re.compile(r"\b(?:has|have) been ([a-z]+)\b|\b(?:a|ont) été ([a-zàâçéèêëîïôûùüÿœ]+)\b", re.IGNORECASE)
EN_PARTICIPLES = frozenset(
    "sent done made taken given set put found told spoken written begun run paid kept "
    "brought bought left lost sold shut".split()
)
FR_PARTICIPLES = frozenset("fait pris mis dit ouvert écrit offert transmis remis permis".split())
UNDERSTOOD = frozenset("read seen understood noted received got gotten compris noté notés lu vu reçu".split())


def _participle(word: str) -> bool:
    word = word.lower()
    if word in UNDERSTOOD:
        return False
    return (
        word.endswith("ed")
        or word in EN_PARTICIPLES
        or word in FR_PARTICIPLES
        or word.endswith(("é", "ée", "és", "ées"))
    )


PROPOSAL = re.compile(
    r"\b(?:I can|I could|I'll|I will|I'm going to|I am going to|we can|we could|we'll|we will|let me|shall I|"
    r"would you like (?:me|us) to|I'm \w+ing|you can choose|je peux|je pourrais|je vais|nous pouvons|nous allons|"
    r"voulez-vous que|souhaitez-vous que|vous pourrez choisir|"
    r"(?:je (?:vous |l'|les |la |le )?|j')(?:lance|fais|résilie|clôture|rembourse|annule|bloque|propose|envoie|commande|"
    r"ouvre|applique))\b".replace("'", APOSTROPHE),
    re.IGNORECASE,
)
_IRREVERSIBLE_REGEXES = {  # action -> (words that propose it, the requests that ask for it)
    "close the account": (
        r"\bclos(?:e|ing|ure)\b(?! to)|\bclôtur\w*|\bfermer votre compte|\bfermeture de (?:votre|du) compte",
        {"close_account"},
    ),
    "cancel": (r"\bcancel\w*|\brésili\w*|\bannul\w*", {"cancellation"}),
    "refund": (
        r"\brefund\w*|\bmoney back\b|\brembours\w*",
        {"return_refund", "damaged_item", "disputed_payment", "overdraft_fees"},
    ),
    "block a card": (
        r"\bblock\w* (?:your|the|it)\b|\bopposition\b|\bbloqu\w* (?:votre|la) carte",
        {"lost_or_stolen_card", "disputed_payment", "card_not_arrived"},
    ),
}
IRREVERSIBLE = {
    action: (re.compile(words, re.IGNORECASE), intents) for action, (words, intents) in _IRREVERSIBLE_REGEXES.items()
}
RELEVANT_LOOKUPS = {  # lookup -> the requests its result helps answer
    "order_status": {
        "order_status",
        "delivery_problem",
        "change_delivery_address",
        "damaged_item",
        "exchange_item",
        "return_refund",
        "invoice_request",
    },
    "account_balance": {
        "account_balance",
        "overdraft_fees",
        "card_payment_declined",
        "transfer_status",
        "direct_debit_question",
        "close_account",
    },
    "opening_hours": {"opening_hours", "store_locator"},
}
MONTH_NUMBER = {name.lower(): n for names in MONTHS.values() for n, name in enumerate(names, 1)}
DATE = re.compile(
    r"\b(\d{4})-(\d{2})-(\d{2})\b|\b(\d{1,2})/(\d{1,2})/(\d{4})\b"
    r"|\b(\d{1,2})(?:er)? (" + "|".join(MONTH_NUMBER) + r") (\d{4})\b",
    re.IGNORECASE,
)
AMOUNT = re.compile(
    r"[£$€]\s?-?\d[\d,.\u202f\u00a0 ]*\d|[£$€]\s?\d|-?\d[\d,.\u202f\u00a0 ]*\d\s?(?:€|EUR|GBP|USD|euros?)\b"
    r"|-?\d\s?(?:€|EUR|GBP|USD|euros?)\b",
    re.IGNORECASE,
)
SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Problem:
    kind: str  # "unsupported" (a fact or an action the context does not hold), "irreversible" (an action the
    # customer did not ask for), "off_topic" (a lookup result unrelated to the request)
    detail: str


def _dates(text: str) -> set[date]:
    found = set()
    for m in DATE.finditer(text):
        try:
            if m.group(1):
                found.add(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
            elif m.group(4):
                found.add(date(int(m.group(6)), int(m.group(5)), int(m.group(4))))
            else:
                found.add(date(int(m.group(9)), MONTH_NUMBER[m.group(8).lower()], int(m.group(7))))
        except ValueError:
            continue
    return found


def _amounts(text: str) -> set[int]:
    """Amounts of money in cents, whatever the notation: "£1,250.34", "1 250,34 €", "-84,20 €"."""
    found = set()
    for m in AMOUNT.finditer(text):
        digits = re.sub(r"[^\d,.-]", "", m.group())
        parts = re.fullmatch(r"(-?[\d,.]*?)(?:[.,](\d{2}))?", digits)
        assert parts is not None  # AMOUNT's digits: an optional minus, then digits, commas and dots
        whole, cents = parts.groups()
        try:
            found.add(
                int(re.sub(r"[,.]", "", whole) or "0") * 100 + int(cents or 0) * (-1 if whole.startswith("-") else 1)
            )
        except ValueError:
            continue
    return found


def _evidence_text(context: pb.ConversationContext, articles: Sequence[Article]) -> str:
    """Everything a suggestion may quote: the customer's and the bot's words, the lookups (raw and as we word
    them), the cited articles."""
    parts = [t.text for t in context.turns] + [a.reply_text for a in context.bot_attempts]
    for lookup in context.lookups:
        parts += [*lookup.request.values(), *lookup.result.values()]
        if lookup.name == "account_balance" and lookup.ok:
            parts += [_balance(lookup.result, lang) for lang in LANGUAGES]
    parts += [f"{a.title}\n{a.body}\n{a.reply}" for a in articles]
    return "\n".join(parts)


def check(
    context: pb.ConversationContext, text: str, articles: Sequence[Article] = (), kind: str = "handoff"
) -> list[Problem]:
    """What in a suggestion's `text` the conversation context (and the `articles` it cites) does not support."""
    problems: list[Problem] = []
    evidence = _evidence_text(context, articles)
    asked = asked_intents(context)
    for sentence in SENTENCE.split(text):
        backed = []  # spans of the claims found: a perfect inside one is that claim, judged once
        for pattern, requirement in CLAIMS:
            for m in pattern.finditer(sentence):
                backed.append(m.span())
                if not holds(requirement, context, kind):
                    problems.append(Problem("unsupported", f"needs {requirement}: {sentence!r}"))
        for m in PERFECT.finditer(sentence):
            inside = any(start <= m.start() < end for start, end in backed)
            later = LATER.search(sentence[: m.start()])  # "once I've checked": a promise, not a claim
            if not inside and not later and _participle(m.group(1) or m.group(2)):
                problems.append(Problem("unsupported", f"claims an action nobody took: {m.group()!r}"))
        for m in PASSIVE.finditer(sentence):
            if _participle(m.group(1) or m.group(2)) and not _status_backed(context, sentence):
                problems.append(Problem("unsupported", f"claims an action nobody took: {m.group()!r}"))
        for intent, phrases in SUBJECTS.items():
            if any(phrase.lower() in sentence.lower() for phrase in phrases) and intent not in asked:
                problems.append(Problem("unsupported", f"the customer never asked {phrases[1]!r}"))
        if PROPOSAL.search(sentence):
            customer_words = " ".join(t.text for t in context.turns)
            for action, (words, asking) in IRREVERSIBLE.items():
                if words.search(sentence) and not (asked & asking) and not words.search(customer_words):
                    problems.append(Problem("irreversible", f"proposes to {action}: {sentence!r}"))
    problems += [
        Problem("unsupported", f"order {order} is not in the conversation")
        for order in sorted(set(order_numbers(text)) - set(order_numbers(evidence)))
    ]
    unknown_dates = _dates(text) - _dates(evidence)
    problems += [
        Problem("unsupported", f"date {d.isoformat()} is not in the conversation") for d in sorted(unknown_dates)
    ]
    problems += [
        Problem("unsupported", f"amount {c / 100:.2f} is not in the conversation")
        for c in sorted(_amounts(text) - _amounts(evidence))
    ]
    rest = ORDER_NUMBER.sub(" ", AMOUNT.sub(" ", DATE.sub(" ", text)))
    known = set(re.findall(r"\d+", evidence))
    problems += [
        Problem("unsupported", f"number {n} is not in the conversation")
        for n in sorted(set(re.findall(r"\d+", rest)) - known)
    ]
    problems += _off_topic(context, text, articles)
    return problems


def _status_backed(context: pb.ConversationContext, sentence: str) -> bool:
    """ "has been delivered" / "a été livrée": true when the order lookup says so."""
    lookup = {lookup.name: lookup for lookup in context.lookups}.get("order_status")
    if lookup is None or not lookup.ok:
        return False
    status = lookup.result.get("status", "")
    words = {status, *(ORDER_STATUS[lang].get(status, "") for lang in LANGUAGES)} - {""}
    return any(w.lower() in sentence.lower() for w in words)


def _off_topic(context: pb.ConversationContext, text: str, articles: Sequence[Article]) -> list[Problem]:
    """A lookup's result quoted in a suggestion whose topic it does not serve (opening hours in a delivery
    apology, a balance in an address change), or an order other than the one the customer now writes about."""
    topics = {i for a in articles for i in a.intents} or {latest_request(context).intent}
    request = latest_request(context)
    mentioned = set(order_numbers(request.text))
    problems = []
    for lookup in {lookup.name: lookup for lookup in context.lookups}.values():
        if lookup.name == "order_status":
            order = lookup.request.get("order_id", "").upper()
            quoted = bool(order) and order in text.upper()
            if quoted and mentioned and order not in mentioned:
                problems.append(
                    Problem(
                        "off_topic", f"order {order} while the customer writes about {', '.join(sorted(mentioned))}"
                    )
                )
                continue
        elif lookup.name == "account_balance":
            r = lookup.result
            quoted = lookup.ok and (
                any(_balance(r, lang) in text for lang in LANGUAGES) or bool(r.get("account")) and r["account"] in text
            )
        elif lookup.name == "opening_hours":
            times = {t for v in lookup.result.values() for t in re.findall(r"\d{1,2}:\d{2}", v)}
            quoted = any(t in text for t in times)
        else:
            continue
        if quoted and not topics & RELEVANT_LOOKUPS.get(lookup.name, set()):
            problems.append(
                Problem(
                    "off_topic",
                    f"{lookup.name} result in a reply about {', '.join(sorted(topics - {''})) or 'nothing known'}",
                )
            )
    return problems


# ---------------------------------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class Template:
    """A sentence a suggestion may contain, and what the context must hold for it to be true (see `holds`)."""

    fr: str
    en: str
    requires: tuple[str, ...] = ()


TEMPLATES = {
    "anger": Template(
        "Je comprends votre agacement et vous prie de nous excuser pour la gêne occasionnée.",
        "I understand your frustration, and I'm sorry for the trouble this has caused.",
    ),
    "distress": Template(
        "Je comprends combien la situation est difficile ; je suis là pour vous aider à la régler tout de suite.",
        "I'm sorry you're going through this; I'm here to help you sort it out right away.",
    ),
    "order": Template(
        "Votre commande {order} est {status}{carrier}{eta}.",
        "Your order {order} is {status}{carrier}{eta}.",
        ("lookup_ok:order_status",),
    ),
    "order_unknown": Template(
        "Je ne retrouve pas la commande {order} : pouvez-vous me confirmer son numéro ?",
        "I can't find order {order}: could you confirm its number?",
        ("lookup_not_found:order_status",),
    ),
    "order_down": Template(
        "Notre suivi des commandes ne répond pas pour le moment : je vérifie à nouveau la commande {order} "
        "dans un instant.",
        "Our order tracking isn't responding right now: I'll check order {order} again in a moment.",
        ("lookup_failed:order_status",),
    ),
    "order_check": Template("Je vérifie la commande {order} tout de suite.", "I'm checking order {order} right away."),
    "order_ask": Template(
        "Pouvez-vous me donner le numéro de votre commande (il commence par CMD-) pour que je vérifie où elle en est ?",
        "Could you give me your order number (it starts with CMD-) so that I can check where it is?",
    ),
    "balance": Template(
        "Le solde de votre compte {account} est de {amount}.",
        "The balance of your account {account} is {amount}.",
        ("lookup_ok:account_balance",),
    ),
    "balance_down": Template(
        "Notre consultation des comptes ne répond pas pour le moment : je réessaie dans un instant.",
        "Our account system isn't responding right now: I'll try again in a moment.",
        ("lookup_failed:account_balance",),
    ),
    "hours": Template("Nos horaires : {days}.", "Our opening hours: {days}.", ("lookup_ok:opening_hours",)),
    "takeover": Template(
        "Bonjour, ici le service client : je prends le relais.",
        "Hello, this is customer service: I'm taking over from here.",
    ),
    "earlier": Template(
        "Je vois que vous nous avez écrit {subject}.", "I can see you wrote to us {subject}.", ("asked:{intent}",)
    ),
    "earlier_answered": Template(
        "Je vois que vous nous avez écrit {subject} et que notre assistant vous a répondu.",
        "I can see you wrote to us {subject} and that our assistant answered.",
        ("asked:{intent}", "bot_answered:{intent}"),
    ),
    "how": Template("Que puis-je faire pour vous ?", "How can I help you?"),
    "what_else": Template(
        "Qu'est-ce qui reste à régler, ou que puis-je faire d'autre pour vous ?",
        "What is still unresolved, or what else can I do for you?",
    ),
    "tell_more": Template(
        "Pouvez-vous m'en dire un peu plus, pour que je puisse vous aider ?",
        "Could you tell me a little more, so that I can help?",
    ),
    "callback": Template(
        "Bonjour, ici le service client : je vous rappelle comme vous l'avez demandé.",
        "Hello, this is customer service calling you back, as you asked.",
        ("callback",),
    ),
    "callback_about": Template(
        "Bonjour, ici le service client : je vous rappelle comme vous l'avez demandé, {subject}.",
        "Hello, this is customer service calling you back, as you asked, {subject}.",
        ("callback", "asked:{intent}"),
    ),
    "good_time": Template(
        "Est-ce un bon moment pour en parler ?", "Is this a good time to talk about it?", ("callback",)
    ),
    "generic": Template(
        "Je reprends votre demande avec tout l'historique de votre échange : je m'en occupe.",
        "I have your whole conversation in front of me, and I'm taking care of your request.",
    ),
}


def say(name: str, language: str, context: pb.ConversationContext, kind: str = "handoff", **values: str) -> str:
    """The template's sentence, or "" when the context does not hold what it requires: only true things are said."""
    template = TEMPLATES[name]
    if not all(holds(requirement.format(**values), context, kind) for requirement in template.requires):
        return ""
    return getattr(template, language).format(**values)


class Drafter(Protocol):
    def draft(self, context: pb.ConversationContext, articles: Sequence[Article], language: str) -> list[Suggestion]:
        """Suggested replies in `language` from the conversation and the articles chosen for its latest request."""


def suggestion(
    context: pb.ConversationContext, text: str, article_ids: Sequence[str], source: str, topic: str = ""
) -> Suggestion:
    """A suggestion whose id is a hash of conversation, articles and text: feedback can refer to it across calls."""
    ids = tuple(article_ids)
    digest = hashlib.sha256("\x1f".join([context.conversation_id, ",".join(ids), text]).encode()).hexdigest()
    return Suggestion(f"sug-{digest[:16]}", text, ids, source, topic)


def empathy(context: pb.ConversationContext, language: str) -> str:
    """An empathetic opening when the customer is angry or distressed, else ''."""
    reasons = {context.reason, *context.reasons}
    sentiments = [tu.classification.sentiment for tu in context.turns]
    if pb.HANDOFF_REASON_DISTRESS in reasons or any(s.distress for s in sentiments):
        return say("distress", language, context)
    if reasons & EMOTIONAL or any(s.anger for s in sentiments):
        return say("anger", language, context)
    return ""


def lookup_sentences(
    context: pb.ConversationContext, name: str, language: str, request: Request
) -> tuple[list[str], list[str]]:
    """What an article built on lookup `name` adds: the result before its reply, or after it what is still
    needed (the order number, another try). An order the customer no longer writes about is left out."""
    latest = {lookup.name: lookup for lookup in context.lookups}.get(name)
    if name == "order_status":
        said = order_numbers(request.text)
        if latest is not None and said and latest.request.get("order_id", "").upper() not in said:
            latest = None
        if latest is None:
            return [], [
                say("order_check", language, context, order=said[-1]) if said else say("order_ask", language, context)
            ]
        order = latest.request.get("order_id", "")
        if latest.ok:
            return [
                say(
                    "order",
                    language,
                    context,
                    order=order,
                    **_order_parts(latest.result, language, "s_carrier", "s_eta"),
                )
            ], []
        unknown = latest.error.startswith("NOT_FOUND")
        return [], [say("order_unknown" if unknown else "order_down", language, context, order=order)]
    if latest is None:
        return [], []
    if name == "account_balance":
        if latest.ok:
            r = latest.result
            return [say("balance", language, context, account=r.get("account", ""), amount=_balance(r, language))], []
        return [], [say("balance_down", language, context)]
    if name == "opening_hours" and latest.ok:
        return [say("hours", language, context, days=_days(latest.result, language))], []
    return [], []


def lookup_facts(context: pb.ConversationContext, language: str) -> list[str]:
    """Customer-facing sentences from the successful lookups (the latest of each kind) that serve the latest
    request: the LLM's prompt gets no opening hours for a delivery question."""
    request = latest_request(context)
    intent = request.intent or (request.earlier[0] if request.earlier else "")
    return [
        fact
        for name in dict.fromkeys(lookup.name for lookup in context.lookups)
        if intent in RELEVANT_LOOKUPS.get(name, ())
        for fact in lookup_sentences(context, name, language, request)[0]
    ]


def _days(result: Mapping[str, str], language: str) -> str:
    days = [
        f"{DAYS[language][i]} {result[d].replace('-', '–') if result[d] != 'closed' else TEXT[language]['closed']}"
        for i, d in enumerate(x.lower() for x in DAYS["en"])
        if d in result
    ]
    return ", ".join(days)


class TemplateDrafter:
    """Offline drafting, one suggestion per article: empathy if needed, the result of the lookup the article
    builds on, the article's reply, then what is still needed. Nothing else: no other lookup, no claim."""

    def draft(self, context: pb.ConversationContext, articles: Sequence[Article], language: str) -> list[Suggestion]:
        opening = empathy(context, language)
        request = latest_request(context)
        drafts = []
        for article in articles[:MAX_SUGGESTIONS]:
            before, after = lookup_sentences(context, article.lookup, language, request) if article.lookup else ([], [])
            reply = article.reply or _first_paragraph(article.body)
            empathic = re.match(r"(?:I understand|Je comprends)\b", reply)  # the reply already says it: not twice
            parts = ["" if empathic else opening, *before, reply, *after]
            drafts.append(suggestion(context, " ".join(p for p in parts if p), (article.article_id,), "template"))
        if not drafts:
            text = " ".join(p for p in [opening, say("generic", language, context)] if p)
            drafts.append(suggestion(context, text, (), "template", "generic"))
        return drafts


def opening_suggestion(
    context: pb.ConversationContext, request: Request, language: str, kind: str
) -> Suggestion | None:
    """For a callback, introduce yourself and refer to the request; for a request for a person alone (or a message
    nobody understood), take over and ask how to help, recalling what the customer asked before. None when the
    customer's latest request has a topic: its articles answer it."""
    subject_of = request.intent or (request.earlier[0] if request.earlier else "")
    subject = SUBJECTS.get(subject_of, ("", ""))[_i(language)]
    if kind == "callback":
        about = say("callback_about", language, context, kind, subject=subject, intent=subject_of) if subject else ""
        parts = [
            about or say("callback", language, context, kind),
            empathy(context, language),
            say("good_time", language, context, kind) if about else say("how", language, context),
        ]
        return suggestion(context, " ".join(p for p in parts if p), (), "template", "callback")
    if request.intent:
        return None
    parts = [say("takeover", language, context), empathy(context, language)]
    if request.person and subject:
        answered = say("earlier_answered", language, context, subject=subject, intent=subject_of)
        parts += [
            answered or say("earlier", language, context, subject=subject, intent=subject_of),
            say("what_else" if answered else "how", language, context),
        ]
    else:
        parts.append(say("how" if request.person else "tell_more", language, context))
    return suggestion(context, " ".join(p for p in parts if p), (), "template", "greeting")


def _first_paragraph(body: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip() and not p.lstrip().startswith("#")]
    return _shorten(paragraphs[0] if paragraphs else body, 400)


class LLMDrafter:
    """Drafts with an OpenAI-compatible chat completions endpoint; on any error, the templates (and a warning)."""

    def __init__(
        self, url: str, model: str, api_key: str | None = None, timeout: float = 8.0, fallback: Drafter | None = None
    ):
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
            self.url,
            data=json.dumps(self.payload(context, articles, language)).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
        )
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
        kb = "\n\n".join(
            f"[{a.article_id}] {a.title}\n{_shorten(a.body, 1500)}"
            + (f"\nSuggested reply: {a.reply}" if a.reply else "")
            for a in articles
        )
        user = (
            f"Summary: {summarize(context, language)}\n"
            f"Customer's last message: {_shorten(LONG_NUMBER.sub('…', last), 600)}\n"
            f"Lookup results: {' '.join(facts) or 'none'}\n\nArticles:\n{kb or 'none'}"
        )
        return {
            "model": self.model,
            "temperature": 0.2,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }

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

# Words that only ask for a person: what is left of such a message may still say what it is about
# ("a person please: my card was declined twice").
PERSON_WORDS = re.compile(
    r"\b[cdjlmnst]'|\béchanger avec\b|\b(?:talk|speak|chat|put|transfer|connect|get|give|want|wanna|would|like|need|"
    r"can|could|may|please|pls|plz|to|with|me|through|a|an|the|some|real|actual|live|proper|human|humans|person|people|"
    r"someone|somebody|anyone|agents?|advis[oe]rs?|representatives?|rep|operators?|staff|member|team|i|i'd|i'm|now|"
    r"just|ok|okay|thanks|thank|you|your|hello|hi|hey|there|really|appreciate|if|so|much|of|it|it's|is|this|right|"
    r"away|asap|not|bot|robot|machine|parler|discuter|passer|passez|mettre|mettez|relation|en|avec|à|un|une|le|la|"
    r"les|des|de|du|vos|votre|vrai|vraie|réel|réelle|humains?|humaines?|personne|quelqu'un|qqn|conseill(?:er|ère)s?|"
    r"conseiler|opérat(?:eur|rice)s?|je|voudrais|veux|voudrai|souhaite|souhaiterais|aimerais|serait|il|possible|"
    r"avance|svp|stp|s'il|vous|plaît|plait|merci|bonjour|moi|me|physique|est|ce|que|qu|d'accord|pas|tout|suite|"
    r"maintenant|vite|bien|mais|but|and|et|ou|or|pour|for|about|au|sujet)\b".replace("'", APOSTROPHE),
    re.IGNORECASE,
)
TOPIC_IN_WORDS = 0.16  # an article this close to what is left of a request for a person names its topic
UNKNOWN_REQUEST = 0.25  # an article this close to a message the classifier did not place is offered


class Assistant:
    def __init__(
        self, knowledge: KnowledgeBase, drafter: Drafter | None = None, descriptions: Mapping[str, str] | None = None
    ):
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

    def assist(self, context: pb.ConversationContext, history: Sequence[PastContact], kind: str = "handoff") -> Assist:
        """Summaries and up to 3 suggestions answering the customer's latest request. `kind` is "callback" for a
        task the customer asked to be called back on (the first suggestion then opens the call)."""
        if kind not in KINDS:
            raise ValueError(f"assist kind {kind!r} is not one of {', '.join(KINDS)}")
        language = conversation_language(context)
        request = self.request(context, language)
        articles = self.articles_for(context, request, language)
        opener = opening_suggestion(context, request, language, kind)
        room = MAX_SUGGESTIONS - (opener is not None)
        drafts = self._draft(context, articles[:room], language, kind)[:room] if articles or opener is None else []
        return Assist(
            summarize(context, language, self.descriptions),
            summarize_history(context, history, language, self.descriptions),
            tuple(([opener] if opener else []) + drafts),
        )

    def request(self, context: pb.ConversationContext, language: str) -> Request:
        """The latest request; a request for a person that also says what it is about takes that topic."""
        request = latest_request(context)
        if not request.person:
            return request
        said = PERSON_WORDS.sub(" ", request.text.split("\n")[0])
        hits = self.knowledge.search(said, language, MAX_SUGGESTIONS) if re.search(r"\w{3}", said) else []
        topic = next((a for a, score in hits if score >= TOPIC_IN_WORDS and self._may_offer(a, context)), None)
        return replace(request, intent=topic.intents[0], person=False) if topic else request

    def articles_for(self, context: pb.ConversationContext, request: Request, language: str) -> list[Article]:
        """The articles declared for the request (behind a request for a person alone, for the one before), those
        whose first intent it is first, then the closest to the customer's words; for a message the classifier did
        not place, only articles close to it."""
        intent = request.intent or (request.earlier[0] if request.person and request.earlier else "")
        if intent:
            query = " ".join([request.text, *lookup_facts(context, language)])
            scores = self.knowledge.scores(query, language)
            pool = [a for a in self.knowledge.articles if a.language == language and intent in a.intents]
            return sorted(pool, key=lambda a: (a.intents.index(intent), -scores.get(a.article_id, 0.0), a.article_id))
        if request.person or not request.text:
            return []
        hits = self.knowledge.search(request.text, language, MAX_SUGGESTIONS)
        return [a for a, score in hits if score >= UNKNOWN_REQUEST and self._may_offer(a, context)]

    @staticmethod
    def _may_offer(article: Article, context: pb.ConversationContext) -> bool:
        """On a guessed topic, an article whose reply proposes an irreversible step (closing, cancelling,
        refunding, blocking a card) is offered only when the customer's own words ask for that step."""
        words = " ".join(t.text for t in context.turns)
        proposals = [s for s in SENTENCE.split(article.reply) if PROPOSAL.search(s)]
        return not any(
            pattern.search(s) and not pattern.search(words) for s in proposals for pattern, _ in IRREVERSIBLE.values()
        )

    def _draft(
        self, context: pb.ConversationContext, articles: list[Article], language: str, kind: str
    ) -> list[Suggestion]:
        try:
            drafts = list(self.drafter.draft(context, articles, language))
        except Exception as error:  # noqa: BLE001 - a custom drafter's failure must not cost the advisor the summary
            log.warning("assist drafter %s failed (%s); using templates", type(self.drafter).__name__, error)
            drafts = []
        kept = []
        for (
            draft
        ) in drafts:  # templates are true by construction (tests/unit/routing/test_assist.py); others are checked
            problems = (
                []
                if draft.source == "template"
                else check(
                    context, draft.text, [self.knowledge.get(a) for a in draft.article_ids if a in self.knowledge], kind
                )
            )
            if problems:
                log.warning("assist: a %s suggestion was dropped: %s", draft.source, problems[0].detail)
            else:
                kept.append(draft)
        return kept or TemplateDrafter().draft(context, articles, language)
