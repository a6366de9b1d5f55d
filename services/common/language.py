"""Language detection for the languages relais serves (French and English), and text folding.

Used by intake (language of a turn when the sender gave none) and by the classifier.
"""

import re
import threading
import unicodedata
from typing import Any

SUPPORTED_LANGUAGES: tuple[str, ...] = ("fr", "en")
DEFAULT_LANGUAGE = "en"

_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "’": "'", "‘": "'", "`": "'", "´": "'"})


def fold(text: str) -> str:
    """Case-fold, strip accents and unify apostrophes ("Où ÊTES-vous’" -> "ou etes-vous'")."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    return "".join(c for c in text if not unicodedata.combining(c))


_detector_lock = threading.Lock()
_detector: Any = None


def _language_detector() -> Any:
    """The lingua detector for French and English, built once on first use (about 0.3 s)."""
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                from lingua import Language, LanguageDetectorBuilder

                _detector = LanguageDetectorBuilder.from_languages(Language.FRENCH, Language.ENGLISH).build()
    return _detector


def supported_language(code: str | None) -> str | None:
    """The served language of a code such as "fr", "FR", "fr-CA", "en_GB"; None when not served."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in SUPPORTED_LANGUAGES else None


# Very short messages ("svp", "d'accord", "ok merci") are a coin toss for any statistical
# detector; a handful of unmistakable chat words settles them first.
SHORT_MESSAGE_WORDS = 3
LANGUAGE_MARKERS = {
    "fr": frozenset({"svp", "stp", "merci", "bonjour", "bonsoir", "salut", "oui", "non", "ouais", "allo",
                     "coucou", "accord", "voila", "bah", "ben"}),
    "en": frozenset({"thanks", "thank", "thx", "hi", "hello", "hey", "yes", "yeah", "yep", "no", "nope",
                     "please", "pls", "plz", "cheers"}),
}


def detect_language(text: str, hint: str | None = None) -> str:
    """Return "fr" or "en": the hint when it is a served language, else the detected one, else "en"."""
    hinted = supported_language(hint)
    if hinted:
        return hinted
    if not any(c.isalpha() for c in text):
        return DEFAULT_LANGUAGE
    words = re.findall(r"[a-z]+", fold(text))
    if len(words) <= SHORT_MESSAGE_WORDS:
        votes = {lang: sum(w in markers for w in words) for lang, markers in LANGUAGE_MARKERS.items()}
        if votes["fr"] != votes["en"]:
            return max(votes, key=votes.__getitem__)
    detected = _language_detector().detect_language_of(text)
    if detected is None:
        return DEFAULT_LANGUAGE
    return detected.iso_code_639_1.name.lower()
