"""Language of a customer message, and text folding.

relais serves French and English (SUPPORTED_LANGUAGES: the catalogue, the bot, the queue messages).
Detection also tells apart the languages customers most often write in instead (DETECTED_LANGUAGES:
Spanish, German, Italian, Portuguese, Dutch), so that such a message is not taken for French or
English: it gets a short answer in its own language and goes to an advisor who speaks it.

    guess_language("¿Dónde está mi pedido CMD-123456?")  -> LanguageGuess("es", sure=True)
    guess_language("pizza")                              -> LanguageGuess("en", sure=False, ambiguous_with="it")

Used by intake (language of a turn when the sender gave none) and by the classifier.
"""

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SUPPORTED_LANGUAGES: tuple[str, ...] = ("fr", "en")
DETECTED_LANGUAGES: tuple[str, ...] = ("fr", "en", "es", "de", "it", "pt", "nl")
DEFAULT_LANGUAGE = "en"
# BCP 47 codes that name no language: a customer "declaring" one of them declared nothing.
_NO_LANGUAGE = frozenset({"und", "mul", "mis", "zxx"})
_PRIMARY_TAG = re.compile(r"^[a-z]{2,3}$")

# French words that carry no topic (articles, pronouns, auxiliaries, greetings, politeness), folded (see fold):
# left out of what agent assist matches and of what irritants cluster.
FRENCH_STOP_WORDS = frozenset(
    """
a ai aide aidez aie aies ait al alors as au aucun aussi autre aux avais avait avant avec avez avoir avons
ayant bah beaucoup bien bon bonjour bonne bonsoir c ca car ce cela celle celui ces cet cette chez ci comme
comment cordialement d dans de deja depuis des dois doit donc du elle elles en encore est et etaient etais
etait ete etes etre eu faire fais fait faut fois ici il ils j je jour jours juste l la le les leur leurs lui m
ma madame mais me meme merci mes moi mon monsieur n ne ni non nos notre nous on ont ou oui par parce pas peu
peut peux plus pour pourquoi pouvez qu quand que quel quelle quelles quels qui rien s sa salut sans se sera
ses si sil slt son sont stp suis sur svp t ta te tes toi ton toujours tous tout tres tu un une urgent va vais
veux voila vos votre vous vu y
""".split()
)

_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "’": "'", "‘": "'", "`": "'", "´": "'"})


def fold(text: str) -> str:
    """Case-fold, strip accents and unify apostrophes ("Où ÊTES-vous’" -> "ou etes-vous'")."""
    text = text.casefold().translate(_LIGATURES)
    if text.isascii():  # nothing to decompose
        return text
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


@dataclass(frozen=True)
class LanguageGuess:
    """The language of a message and how sure detection is of it."""

    language: str
    # Declared by the customer, or the text is clearly in `language`. When False, `language` is a
    # fallback (the likelier served language, or DEFAULT_LANGUAGE when the text has no words).
    sure: bool = True
    # When not sure: the unserved language the text could as well be in ("" when none came close).
    ambiguous_with: str = ""


def declared_language(code: str | None) -> str | None:
    """The primary language of a declared tag ("es", "FR", "fr-CA", "en_GB" -> "es", "fr", "fr", "en")."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if _PRIMARY_TAG.match(base) and base not in _NO_LANGUAGE else None


def supported_language(code: str | None) -> str | None:
    """The served language of a code such as "fr", "FR", "fr-CA", "en_GB"; None when not served."""
    base = declared_language(code)
    return base if base in SUPPORTED_LANGUAGES else None


_detector_lock = threading.Lock()
_detector: Any = None
_CODES: dict[Any, str] = {}  # lingua's Language -> its code in DETECTED_LANGUAGES


def _language_detector() -> Any:
    """The lingua detector for DETECTED_LANGUAGES, built once on first use with every model loaded (about 1 s,
    ~120 MB): loaded lazily, its first few hundred calls take ~3 ms each instead of ~60 µs."""
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

                codes = [getattr(IsoCode639_1, code.upper()) for code in DETECTED_LANGUAGES]
                _CODES.update({Language.from_iso_code_639_1(iso): code for iso, code in zip(codes, DETECTED_LANGUAGES)})
                _detector = (
                    LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_preloaded_language_models().build()
                )
    return _detector


# Very short messages ("svp", "hola", "danke", "ok merci") are a coin toss for any statistical
# detector; a handful of unmistakable chat words settles them first. A word may belong to several
# languages ("ja", "hallo", "no"): only a strict majority decides.
SHORT_MESSAGE_WORDS = 3
LANGUAGE_MARKERS = {
    "fr": frozenset(
        {
            "svp",
            "stp",
            "merci",
            "bonjour",
            "bonsoir",
            "salut",
            "oui",
            "non",
            "ouais",
            "allo",
            "coucou",
            "accord",
            "voila",
            "bah",
            "ben",
        }
    ),
    "en": frozenset(
        {
            "thanks",
            "thank",
            "thx",
            "hi",
            "hello",
            "hey",
            "yes",
            "yeah",
            "yep",
            "no",
            "nope",
            "please",
            "pls",
            "plz",
            "cheers",
        }
    ),
    "es": frozenset({"hola", "gracias", "vale", "buenos", "buenas", "adios", "porfa", "no", "si"}),
    "de": frozenset(
        {
            "danke",
            "bitte",
            "hallo",
            "tschuss",
            "guten",
            "ja",
            "nein",
            "genau",
            "servus",
            "moin",
            "gerne",
            "vielen",
            "dank",
        }
    ),
    "it": frozenset({"ciao", "grazie", "buongiorno", "buonasera", "prego", "salve", "arrivederci", "si", "no", "non"}),
    "pt": frozenset({"obrigado", "obrigada", "ola", "bom", "boa", "sim", "nao", "tchau", "valeu"}),
    "nl": frozenset(
        {
            "bedankt",
            "dank",
            "alstublieft",
            "alsjeblieft",
            "hoi",
            "doei",
            "goedemorgen",
            "goedemiddag",
            "graag",
            "ja",
            "nee",
            "hallo",
        }
    ),
}
# The commonest words of each language (articles, pronouns, prepositions, auxiliaries; folded). On a
# short message lingua's n-grams often hesitate ("Where is my parcel" -> en 0.35, pt 0.15); these
# words settle it. A word counts for every language that has it ("de", "la", "no").
FUNCTION_WORDS = {
    "fr": frozenset(
        """le la les un une des du au aux et est je j tu il elle on nous vous ils elles mon ma mes ton
        ta son sa ses notre nos votre vos ce cet cette ces c qui que qu quoi ou pas ne n sur dans avec pour par
        mais jamais toujours rien deja tres ai avez suis sont etait ete fait y en moi lui leur d l quand comment
        pourquoi combien aussi encore plus bien""".split()
    ),
    "en": frozenset(
        """the a an and is are was were be been i you he she it we they my your our their me him us
        them this that these those what where when why how who which do does did don t can cant won not no
        never still yet of to in on at for with from by about have has had get got will would could should
        just any""".split()
    ),
    "es": frozenset(
        """el la los las un una unos unas y es son esta estan estoy he ha han mi mis tu su sus nuestro
        yo usted ustedes me te se le lo que donde cuando como por para con sin pero nunca todavia ya nada muy
        del al no si quiero puedo tengo hay""".split()
    ),
    "de": frozenset(
        """der die das den dem des ein eine einen einem einer und ist sind war bin habe hat haben ich
        du er sie es wir ihr mein meine meinen mir mich dein ihre ihnen nicht kein keine noch schon nie immer
        was wo wann wie warum wer mit von zu auf fur aus bei nach um aber oder auch kann konnen will mochte""".split()
    ),
    "it": frozenset(
        """il lo la i gli le un una uno e ed di del della dei da in con su per tra non ma mai ancora
        gia niente nulla mio mia miei mie tuo suo vostro vostri ho ha hanno sono stato che chi dove quando come
        perche cosa mi ti ci vi si voglio vorrei posso l d""".split()
    ),
    "pt": frozenset(
        """o a os as um uma uns umas e de do da dos das em no na nos nas por para com sem mas nunca
        ainda ja nada muito meu minha meus minhas seu sua vosso nosso eu voce voces me te se lhe que onde quando
        como porque nao sim esta estou tenho tem foi quero posso""".split()
    ),
    "nl": frozenset(
        """de het een en is zijn was ben heb heeft hebben ik jij je u hij zij we wij jullie mijn mij me
        ons onze uw niet geen nog al nooit altijd wat waar wanneer hoe waarom wie met van naar op aan bij voor
        uit om maar of ook kan kunnen wil er dit dat""".split()
    ),
}
# What customers write to us about, per language (folded). A word only one language has is as good as a
# chat word on a short message ("order CMD-123456"); every one of them weighs like a function word.
DOMAIN_WORDS = {
    "fr": frozenset(
        """commande colis carte compte solde remboursement livraison horaires conseiller facture
        adresse paiement abonnement livreur""".split()
    ),
    "en": frozenset(
        """order parcel package card account balance refund delivery hours advisor agent invoice
        address payment subscription courier""".split()
    ),
    "es": frozenset(
        """pedido paquete tarjeta cuenta saldo reembolso entrega horario asesor factura direccion pago
        suscripcion repartidor""".split()
    ),
    "de": frozenset(
        """bestellung paket karte konto kontostand erstattung lieferung offnungszeiten berater rechnung
        adresse zahlung abo""".split()
    ),
    "it": frozenset(
        """ordine pacco carta conto saldo rimborso consegna orari operatore fattura indirizzo pagamento
        abbonamento corriere""".split()
    ),
    "pt": frozenset(
        """encomenda pedido pacote cartao conta saldo reembolso entrega horario assistente fatura
        endereco pagamento assinatura estafeta""".split()
    ),
    "nl": frozenset(
        """bestelling pakket pakje kaart pas rekening saldo terugbetaling levering bezorging
        openingstijden medewerker factuur adres betaling abonnement bezorger""".split()
    ),
}
FUNCTION_WORDS = {lang: FUNCTION_WORDS[lang] | DOMAIN_WORDS[lang] for lang in FUNCTION_WORDS}
LANGUAGE_MARKERS = {
    lang: LANGUAGE_MARKERS[lang]
    | {
        w
        for w in DOMAIN_WORDS[lang]
        if not any(w in DOMAIN_WORDS[other] or w in FUNCTION_WORDS[other] for other in DOMAIN_WORDS if other != lang)
    }
    for lang in LANGUAGE_MARKERS
}
FUNCTION_WORD_WEIGHT = 0.2  # added to lingua's confidence (0..1) per function word of the language
# How much likelier the best language must be than the best one on the other side of the
# served/unserved line to be taken as sure; measured on tests/unit/common/test_language.py.
SURE_MARGIN = 0.25
# A later message must say clearly that the customer changed language: the conversation's gets this much.
CONTINUITY_BONUS = 0.3
SURE_MARGIN_ONE_WORD = 0.6  # one word is little to go on ("pedido" is Spanish and Portuguese)
# Words of every language in a chat: they say nothing of the customer's ("ok merci" is French).
NEUTRAL_WORDS = frozenset(
    {
        "ok",
        "okay",
        "okey",
        "oki",
        "oke",
        "lol",
        "hmm",
        "mmh",
        "cmd",
        "ord",
        "sms",
        "email",
        "mail",
        "internet",
        "wifi",
        "app",
        "web",
        "pdf",
    }
)
_NOT_WORDS = re.compile(r"\S*\d\S*")
# word -> the languages whose FUNCTION_WORDS have it (counting a message's words in one pass)
_FUNCTION_WORD_LANGUAGES = {
    word: tuple(lang for lang in FUNCTION_WORDS if word in FUNCTION_WORDS[lang])
    for word in frozenset().union(*FUNCTION_WORDS.values())
}
_WORD = re.compile("[a-z]+")


def warm_up() -> None:
    """Loads the detector now (a service's start) rather than on its first message."""
    _language_detector()


def guess_language(text: str, hint: str | None = None, previous: str | None = None) -> LanguageGuess:
    """The language of `text`: the declared one (`hint`) when given, else the detected one.

    Unsure between a served and an unserved language, the guess is the likelier served language,
    marked not sure with the other one in `ambiguous_with`: the caller answers in every served
    language rather than guessing wrong. `previous`, the language of the conversation so far, weighs
    in favour of staying in it ("pizza" or "ciao" in a French conversation stays French) and is the
    guess, not sure, when the text cannot tell.
    """
    return guess_languages([(text, hint, previous)])[0]


def guess_languages(messages: Sequence[tuple[str, str | None, str | None]]) -> list[LanguageGuess]:
    """guess_language(text, hint, previous) of each message, the detector asked once per distinct text it must
    read (a batch of messages: the same guesses, for less)."""
    return _guess_all(messages, language_only=False)


def turn_languages(messages: Sequence[tuple[str, str | None, str]]) -> list[str]:
    """guess_language(text, hint, previous).language of each later message of a conversation (`previous` its
    language): the detector is not asked when whatever it says, the language stays the conversation's."""
    return _guess_all(messages, language_only=True)


def detect_language(text: str, hint: str | None = None) -> str:
    """The declared language when given, else the detected one (see guess_language)."""
    return guess_language(text, hint).language


@dataclass
class _Reading:
    """What the rules know of a message before the detector's confidences (0..1 per language) are added."""

    letters: str  # the text without its numbers: what the detector reads
    previous: str | None
    candidates: tuple[str, ...]
    function_words: dict[str, float]  # their weight per language
    spanish_marks: bool  # "¿" or "¡"
    base: dict[str, float]  # all the rules add to the detector's confidence: the above, the conversation's language
    margin: float


def _guess_all(messages, language_only: bool) -> list:
    guesses: list = [None] * len(messages)
    unread: dict[str, list[tuple[int, _Reading]]] = {}  # letters -> the messages the detector must read
    for index, (text, hint, previous) in enumerate(messages):
        declared = declared_language(hint)
        if declared:
            guesses[index] = LanguageGuess(declared)
            continue
        reading = _read(text, declared_language(previous))
        if isinstance(reading, _Reading):
            settled = _settled(reading, language_only)
            if settled is None:
                unread.setdefault(reading.letters, []).append((index, reading))
                continue
            reading = settled
        guesses[index] = reading
    for letters, confidences in zip(unread, _confidences(list(unread))):
        for index, reading in unread[letters]:
            guesses[index] = _decide(reading, confidences)
    if language_only:
        return [guess if isinstance(guess, str) else guess.language for guess in guesses]
    return guesses


def _read(text: str, previous: str | None) -> "LanguageGuess | _Reading":
    """The guess when the rules settle it without the detector, else what they add to the detector's confidences."""
    # Order numbers, amounts and codes are no language: left in, they blur a short message's n-grams.
    letters = _NOT_WORDS.sub(" ", text)
    words = [w for w in _WORD.findall(fold(letters)) if w not in NEUTRAL_WORDS]
    if not words:
        return _finish(LanguageGuess(DEFAULT_LANGUAGE, sure=False), previous)
    candidates = DETECTED_LANGUAGES
    if len(words) <= SHORT_MESSAGE_WORDS:
        votes = {lang: sum(w in markers for w in words) for lang, markers in LANGUAGE_MARKERS.items()}
        best = max(votes.values())
        winners = tuple(lang for lang, n in votes.items() if n == best)
        if best and previous in winners:
            return LanguageGuess(previous)
        if best and len(winners) == 1 and not previous:
            return LanguageGuess(winners[0])
        if best and not previous:
            candidates = winners
    counts = dict.fromkeys(FUNCTION_WORDS, 0)
    for word in words:
        for lang in _FUNCTION_WORD_LANGUAGES.get(word, ()):
            counts[lang] += 1
    function_words = {lang: FUNCTION_WORD_WEIGHT * n for lang, n in counts.items()}
    spanish_marks = "¿" in text or "¡" in text  # only Spanish opens a question or an exclamation
    base = dict(function_words)
    if spanish_marks:
        base["es"] += FUNCTION_WORD_WEIGHT
    if previous in base:
        base[previous] += CONTINUITY_BONUS
    return _Reading(
        letters,
        previous,
        candidates,
        function_words,
        spanish_marks,
        base,
        SURE_MARGIN if len(words) > 1 else SURE_MARGIN_ONE_WORD,
    )


def _confidences(texts: list[str]) -> list[dict[str, float]]:
    if not texts:  # every language declared or settled by the rules: the detector (~200 MB) is not loaded for nothing
        return []
    detector = _language_detector()
    return [
        {_CODES[value.language]: value.value for value in detector.compute_language_confidence_values(text)}
        for text in texts
    ]


def _decide(reading: _Reading, confidences: dict[str, float]) -> LanguageGuess:
    # Summed in this order, as always: a score on the edge of a margin is decided as it always was.
    score = dict(confidences)
    for lang, weight in reading.function_words.items():
        score[lang] = score.get(lang, 0.0) + weight
    if reading.spanish_marks:
        score["es"] += FUNCTION_WORD_WEIGHT
    if reading.previous in score:
        score[reading.previous] += CONTINUITY_BONUS
    candidates, margin = reading.candidates, reading.margin
    served = max((lang for lang in candidates if lang in SUPPORTED_LANGUAGES), key=score.__getitem__, default="")
    unserved = max((lang for lang in candidates if lang not in SUPPORTED_LANGUAGES), key=score.__getitem__, default="")
    if candidates != DETECTED_LANGUAGES:  # chat words of several languages ("no", "ja", "si"): too little to tell
        guess = LanguageGuess(served or DEFAULT_LANGUAGE, sure=False, ambiguous_with=unserved)
    elif score[served] - score[unserved] >= margin:
        guess = LanguageGuess(served)
    else:
        runner_up = max(score[lang] for lang in _UNSERVED if lang != unserved)
        if score[unserved] - score[served] >= margin and score[unserved] - runner_up >= margin:
            guess = LanguageGuess(unserved)
        else:  # too close to call, even between two unserved languages ("pedido": Spanish or Portuguese?)
            guess = LanguageGuess(served, sure=False, ambiguous_with=unserved)
    return _finish(guess, reading.previous)


def _finish(guess: LanguageGuess, previous: str | None) -> LanguageGuess:
    """Unsure in a conversation whose language is known: the conversation's."""
    return LanguageGuess(previous, sure=False) if previous and not guess.sure else guess


# The detector's confidences lie in 0..1, whatever the text. A guess the rules' scores settle for every
# confidence in that range is the detector's guess too: then it is not asked (see _settled).
_SLACK = 1e-6  # rounding in the detector's confidences and in the sums of weights
_UNSERVED = tuple(lang for lang in DETECTED_LANGUAGES if lang not in SUPPORTED_LANGUAGES)


def _settled(reading: _Reading, language_only: bool):
    """The guess `_decide` would make whatever the detector's confidences, else None. With `language_only`, the
    language alone (str) when the conversation's language stays, sure or not."""
    base, margin = reading.base, reading.margin
    if reading.candidates == DETECTED_LANGUAGES:
        # Ahead of every other language by more than any confidence can close, plus the margin: sure.
        top = max(base, key=base.__getitem__)
        if all(base[top] - base[lang] >= 1 + margin + _SLACK for lang in base if lang != top):
            return LanguageGuess(top)
        if (
            language_only
            and reading.previous
            and not any(_may_win(lang, reading) for lang in base if lang != reading.previous)
        ):
            return reading.previous
        return None
    # Chat words of several languages: the guess is unsure, between the likeliest served and unserved candidates.
    served = _fixed_leader([lang for lang in reading.candidates if lang in SUPPORTED_LANGUAGES], base)
    unserved = _fixed_leader([lang for lang in reading.candidates if lang not in SUPPORTED_LANGUAGES], base)
    if served is None or unserved is None:
        return None
    return _finish(LanguageGuess(served or DEFAULT_LANGUAGE, sure=False, ambiguous_with=unserved), reading.previous)


def _fixed_leader(langs: list[str], base: dict[str, float]) -> str | None:
    """max(langs, key=score) for every confidence ("" when `langs` is empty), else None."""
    if len(langs) <= 1:
        return langs[0] if langs else ""
    top = max(langs, key=base.__getitem__)
    return top if all(base[top] - base[lang] > 1 + _SLACK for lang in langs if lang != top) else None


def _may_win(lang: str, reading: _Reading) -> bool:
    """Whether some confidences make `lang` the sure guess: at best it gains 1 and its rivals nothing. A served
    language must lead the served ones and the unserved by the margin; an unserved one every other language."""
    base, margin = reading.base, reading.margin
    best = base[lang] + 1
    rivals: Sequence[str]
    if lang in SUPPORTED_LANGUAGES:
        if any(base[other] > best + _SLACK for other in SUPPORTED_LANGUAGES if other != lang):
            return False
        rivals = _UNSERVED
    else:
        rivals = [other for other in DETECTED_LANGUAGES if other != lang]
    return all(best - base[other] >= margin - _SLACK for other in rivals)
