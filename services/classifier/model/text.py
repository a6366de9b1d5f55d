"""What the intent model reads: a message folded, digits masked and spaces collapsed, and its words."""

from __future__ import annotations

import re

from relais.common.language import fold


def normalise_text(text: str) -> str:
    """What the intent model sees: folded, digits masked (CMD-123456 -> cmd-000000), spaces collapsed."""
    return _normalise_folded(fold(text))


_DIGIT = re.compile(r"\d")


def _normalise_folded(folded: str) -> str:
    return " ".join(_DIGIT.sub("0", folded).split())


_WORD = re.compile(r"[a-z]{2,}")


def _words(normalised: str) -> list[str]:
    """Words of two letters or more (numbers and lone letters such as the "j" of "j'ai" left out)."""
    return _WORD.findall(normalised)
