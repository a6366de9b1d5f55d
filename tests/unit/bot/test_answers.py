"""Answer formatting, in French and English."""

import asyncio
from datetime import date
from typing import cast

from relais.bot import answers
from relais.bot.lookups import Lookups
from relais.common.lookup_words import ORDER_NUMBER
from relais.common.pb import conversation_pb2 as pb, lookup_pb2


def test_money_is_formatted_per_language():
    assert answers._money("fr", 123456, "EUR") == "1 234,56 €"
    assert answers._money("en", 123456, "GBP") == "£1,234.56"
    assert answers._money("fr", -2550, "EUR") == "-25,50 €"
    assert answers._money("en", 500, "CHF") == "5.00 CHF"


def test_dates_per_language():
    assert answers._date("fr", date(2026, 12, 2)) == "02/12/2026"
    assert answers._date("en", date(2026, 12, 2)) == "02 December 2026"


def test_order_numbers_are_found_in_free_text():
    found = [ORDER_NUMBER.search(text) for text in ("ma commande cmd 123456 svp", "order CMD-654321?")]
    assert [match.group(1) if match else None for match in found] == ["123456", "654321"]
    assert ORDER_NUMBER.search("I ordered 3 items") is None


def test_a_turn_is_answered_in_its_language_or_in_both_when_intake_was_unsure():
    assert answers.reply_languages(pb.Turn(language="fr")) == ("fr",)
    assert answers.reply_languages(pb.Turn(language="en", language_unsure=True)) == ("en", "fr")
    assert answers.reply_languages(pb.Turn(language="fr", language_unsure=True)) == ("fr", "en")
    assert answers.reply_languages(pb.Turn(language="es")) == ("en",)  # never reached: the bot hands off first
    assert answers.each(("fr", "en"), lambda lang: answers.text(lang, "closed")) == "fermé\nclosed"


def test_the_short_answer_to_a_language_not_served():
    assert answers.language_not_served("es", "Lo sentimos.") == ("Lo sentimos.", "es")
    text, language = answers.language_not_served("pl", None)
    assert language == "en" and text.splitlines() == [
        answers.TEXT["en"]["language_not_served"],
        answers.TEXT["fr"]["language_not_served"],
    ]


class OneOrderLookup:
    """The lookup's answer for one order; counts the calls."""

    def __init__(self):
        self.calls = 0

    async def GetOrderStatus(self, request, timeout):
        self.calls += 1
        return lookup_pb2.OrderStatusReply(
            order_id=request.order_id, status="shipped", carrier="DHL", expected_delivery="2026-12-02"
        )


def test_an_unsure_turn_gets_one_lookup_told_in_both_languages():
    lookup = OneOrderLookup()
    turn = pb.Turn(turn_id="t1", text="CMD-123456 pedido", language="fr", language_unsure=True)
    answer = asyncio.run(answers.order_status(turn, cast(Lookups, lookup)))  # a fake: the one call it makes
    assert lookup.calls == 1 and len(answer.lookups) == 1 and answer.resolved
    assert answer.text.splitlines() == [
        "Votre commande CMD-123456 est expédiée (transporteur : DHL), livraison prévue le 02/12/2026.",
        "Your order CMD-123456 is shipped (carrier: DHL), expected delivery on 02 December 2026.",
    ]
