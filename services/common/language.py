"""Language detection for the languages relais serves (French and English)."""

from functools import lru_cache

SUPPORTED = ("fr", "en")
DEFAULT = "en"


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    # Restricting to the served languages makes short messages ("bonjour", "hi there") reliable.
    return LanguageDetectorBuilder.from_languages(Language.FRENCH, Language.ENGLISH).build()


def detect_language(text: str, hint: str | None = None) -> str:
    """"fr" or "en": the hint when it is a served language, else the detected one."""
    if hint and hint[:2].lower() in SUPPORTED:
        return hint[:2].lower()
    if not text.strip():
        return DEFAULT
    detected = _detector().detect_language_of(text)
    return detected.iso_code_639_1.name.lower() if detected is not None else DEFAULT
