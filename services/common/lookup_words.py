"""What the enterprise lookups deal in, in the words of each language: weekday and month names and order statuses
(the bot answers with them, agent assist drafts and checks with them, routing tells a callback's time with them),
and order numbers as customers write them (the bot looks them up; redaction keeps them, as they are no personal
data)."""

import re

# "CMD-123456", "cmd 123456", "ORD1234": the digits are the order's number at the lookup.
ORDER_NUMBER = re.compile(r"\b(?:CMD|ORD)[-\s]?([0-9]{4,10})\b", re.IGNORECASE)


def order_numbers(text: str) -> list[str]:
    """The orders `text` names, in the form the lookup knows and replies write ("cmd 123456" -> "CMD-123456"),
    in the order written."""
    return [f"CMD-{m.group(1)}" for m in ORDER_NUMBER.finditer(text)]


DAYS = {  # ISO weekday 1 (Monday) is DAYS[lang][0]
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
MONTHS = {  # month 1 (January) is MONTHS[lang][0]
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(),
    "en": "January February March April May June July August September October November December".split(),
}
ORDER_STATUS = {
    "fr": {"preparing": "en préparation", "shipped": "expédiée", "delivered": "livrée", "cancelled": "annulée"},
    "en": {"preparing": "being prepared", "shipped": "shipped", "delivered": "delivered", "cancelled": "cancelled"},
}
