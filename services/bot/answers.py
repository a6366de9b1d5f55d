"""The bot's answers to the catalogue intents it handles, through the enterprise lookups.

Each answer function takes the turn and a lookup client and returns what to say, whether the
request was resolved, and the lookups it did (they go into the hand-off context). When intake could
not tell a served language from an unserved one (turn.language_unsure), the bot says it in every
served language, the likelier first, rather than guess wrong.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import grpc

from relais.bot.lookups import Lookups
from relais.common.lookup_words import DAYS, ORDER_STATUS, order_numbers
from relais.common.pb import conversation_pb2 as pb, lookup_pb2

LOOKUP_TIMEOUT_S = 2.0
TEXT = {
    "fr": {
        "hours": "Notre service client est ouvert : {days}.",
        "closed": "fermé",
        "order": "Votre commande {order} est {status}{carrier}{eta}.",
        "order_carrier": " (transporteur : {carrier})",
        "order_eta": ", livraison prévue le {date}",
        "order_missing": "Pouvez-vous me donner votre numéro de commande ? Il commence par CMD- (par exemple CMD-123456).",
        "order_unknown": "Je ne trouve pas la commande {order} sur votre compte. Pouvez-vous vérifier le numéro ?",
        "balance": "Le solde de votre compte {account} est de {amount} au {as_of}.",
        "balance_unknown": "Je ne trouve pas de compte associé à votre profil.",
        "unavailable": "Je n'arrive pas à consulter nos systèmes pour le moment. Pouvez-vous reformuler ou réessayer ?",
        "handoff": "Je vous mets en relation avec un conseiller, qui aura tout l'historique de notre échange : vous n'aurez rien à répéter.",
        "language_not_served": "Notre assistant automatique ne répond pas dans votre langue. Je vous mets en relation avec un conseiller ; vous pouvez aussi nous écrire en français.",
    },
    "en": {
        "hours": "Our customer service is open: {days}.",
        "closed": "closed",
        "order": "Your order {order} is {status}{carrier}{eta}.",
        "order_carrier": " (carrier: {carrier})",
        "order_eta": ", expected delivery on {date}",
        "order_missing": "Could you give me your order number? It starts with CMD- (for example CMD-123456).",
        "order_unknown": "I can't find order {order} on your account. Could you check the number?",
        "balance": "The balance of your account {account} is {amount} as of {as_of}.",
        "balance_unknown": "I can't find an account linked to your profile.",
        "unavailable": "I can't reach our systems right now. Could you try again in a moment?",
        "handoff": "I'm passing you to an advisor, who will see our whole conversation: you won't have to repeat anything.",
        "language_not_served": "Our automatic assistant does not answer in your language. I'm passing you to an advisor; you can also write to us in English.",
    },
}


SERVED = tuple(TEXT)
# Between the languages of one message said in several: a line each, so a reader finds their own.
BETWEEN_LANGUAGES = "\n"


def text(language: str, key: str, **values) -> str:
    return TEXT.get(language, TEXT["en"])[key].format(**values)


def reply_languages(turn: pb.Turn) -> tuple[str, ...]:
    """The languages the bot answers this turn in: the turn's, or every served one when intake was unsure."""
    first = language(turn)
    return (first, *[lang for lang in SERVED if lang != first]) if turn.language_unsure else (first,)


def each(languages: Sequence[str], say: Callable[[str], str]) -> str:
    """`say(language)` for every language, in order."""
    return BETWEEN_LANGUAGES.join(say(lang) for lang in languages)


def language_not_served(language: str, reply: str | None) -> tuple[str, str]:
    """(text, language of the text) telling a customer writing in `language` that a person takes over:
    the catalogue's short answer in that language, else English and French together."""
    if reply:
        return reply, language
    return each(("en", "fr"), lambda lang: text(lang, "language_not_served")), "en"


@dataclass
class Answer:
    text: str
    resolved: bool
    lookups: list[pb.Lookup] = field(default_factory=list)


async def opening_hours(turn: pb.Turn, lookup: Lookups) -> Answer:
    langs = reply_languages(turn)
    record = pb.Lookup(name="opening_hours", turn_id=turn.turn_id)
    try:
        reply = await lookup.GetOpeningHours(lookup_pb2.OpeningHoursRequest(), timeout=LOOKUP_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        return _failed(langs, record, error, "unavailable")

    def say(lang: str) -> str:
        days = []
        for d in reply.days:
            hours = f"{d.opens}–{d.closes}" if d.opens else text(lang, "closed")
            days.append(f"{DAYS[lang][d.weekday - 1]} {hours}")
        return text(lang, "hours", days=", ".join(days))

    record.ok = True
    record.result.update(
        {DAYS["en"][d.weekday - 1].lower(): f"{d.opens}-{d.closes}" if d.opens else "closed" for d in reply.days}
    )
    return Answer(each(langs, say), True, [record])


async def order_status(turn: pb.Turn, lookup: Lookups) -> Answer:
    langs = reply_languages(turn)
    orders = order_numbers(turn.text)
    if not orders:
        return Answer(each(langs, lambda lang: text(lang, "order_missing")), False)
    order_id = orders[0]
    record = pb.Lookup(
        name="order_status", turn_id=turn.turn_id, request={"order_id": order_id, "customer_id": turn.customer.id}
    )
    try:
        reply = await lookup.GetOrderStatus(
            lookup_pb2.OrderStatusRequest(order_id=order_id, customer_id=turn.customer.id), timeout=LOOKUP_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as error:
        key = "order_unknown" if error.code() == grpc.StatusCode.NOT_FOUND else "unavailable"
        return _failed(langs, record, error, key, order=order_id)
    record.ok = True
    record.result.update(
        {"status": reply.status, "carrier": reply.carrier, "expected_delivery": reply.expected_delivery}
    )

    def say(lang: str) -> str:
        status = ORDER_STATUS[lang].get(reply.status, reply.status)
        carrier = text(lang, "order_carrier", carrier=reply.carrier) if reply.carrier else ""
        eta = ""
        if reply.expected_delivery and reply.status != "delivered":
            eta = text(lang, "order_eta", date=_date(lang, date.fromisoformat(reply.expected_delivery)))
        return text(lang, "order", order=reply.order_id, status=status, carrier=carrier, eta=eta)

    return Answer(each(langs, say), True, [record])


async def account_balance(turn: pb.Turn, lookup: Lookups) -> Answer:
    langs = reply_languages(turn)
    record = pb.Lookup(name="account_balance", turn_id=turn.turn_id, request={"customer_id": turn.customer.id})
    try:
        reply = await lookup.GetAccountBalance(
            lookup_pb2.AccountBalanceRequest(customer_id=turn.customer.id), timeout=LOOKUP_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as error:
        key = "balance_unknown" if error.code() == grpc.StatusCode.NOT_FOUND else "unavailable"
        return _failed(langs, record, error, key)
    record.ok = True
    record.result.update(
        {"account": reply.account_masked, "balance_cents": str(reply.balance_cents), "currency": reply.currency}
    )

    def say(lang: str) -> str:
        as_of = _date(lang, date.fromisoformat(reply.as_of[:10]))
        return text(
            lang,
            "balance",
            account=reply.account_masked,
            amount=_money(lang, reply.balance_cents, reply.currency),
            as_of=as_of,
        )

    return Answer(each(langs, say), True, [record])


ANSWERS = {"opening_hours": opening_hours, "order_status": order_status, "account_balance": account_balance}


def language(turn: pb.Turn) -> str:
    """The (first) language the bot answers in: the turn's when served, else English."""
    return turn.language if turn.language in TEXT else "en"


def _failed(langs: Sequence[str], record: pb.Lookup, error: grpc.aio.AioRpcError, key: str, **values) -> Answer:
    record.ok = False
    record.error = f"{error.code().name}: {error.details()}"
    return Answer(each(langs, lambda lang: text(lang, key, **values)), False, [record])


def _date(lang: str, d: date) -> str:
    return d.strftime("%d/%m/%Y") if lang == "fr" else d.strftime("%d %B %Y")


def _money(lang: str, cents: int, currency: str) -> str:
    symbol = {"EUR": "€", "GBP": "£", "USD": "$"}.get(currency, currency)
    amount = f"{cents / 100:,.2f}"
    if lang == "fr":
        return amount.replace(",", " ").replace(".", ",") + f" {symbol}"
    return f"{symbol}{amount}" if symbol != currency else f"{amount} {currency}"
