"""Emotion and explicit requests, per message: sentiment with anger/distress/urgency, and "I want a person".

Also, across a conversation, the trend of the customer's sentiment (`sentiment_trend`, `escalating`),
and the amount of money a message mentions (`extract_amount`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from relais.common.language import SUPPORTED_LANGUAGES, fold
from relais.common.redact import PLACEHOLDERS

# Phrases are written naturally; they go through the same folding as messages (accents, case,
# apostrophes, "n't" -> " not"). The longest phrase wins where phrases overlap. A cue preceded in
# the same clause (up to 3 words back) by a negation is flipped, unless the cue itself contains one
# (or "plus": "je n'ai plus un sou" is distress, not its negation).

ANGER = {
    "fr": [
        "scandale",
        "scandaleux",
        "scandaleuse",
        "inadmissible",
        "inacceptable",
        "c'est honteux",
        "honteux",
        "une honte",
        "quelle honte",
        "ras-le-bol",
        "ras le bol",
        "j'en ai marre",
        "j'en ai ras le bol",
        "marre",
        "en colère",
        "furieux",
        "furieuse",
        "énervé",
        "énervée",
        "exaspéré",
        "exaspérée",
        "exaspérant",
        "insupportable",
        "n'importe quoi",
        "foutage de gueule",
        "vous vous moquez",
        "se moquer du monde",
        "vous foutez",
        "lamentable",
        "pitoyable",
        "minable",
        "incompétents",
        "incompétent",
        "incapables",
        "nuls",
        "bande d'incapables",
        "c'est une arnaque",
        "arnaqueurs",
        "escrocs",
        "voleurs",
        "dégoûté",
        "dégoûtée",
        "écœuré",
        "écœurée",
        "révoltant",
        "c'est une blague",
        "outré",
        "outrée",
        "intolérable",
        "c'est du vol",
        "honte à vous",
        "c'est abusé",
        "ça suffit",
        "j'en ai assez",
        "hors de moi",
        "furax",
        "ridicule",
        "grotesque",
        "je perds patience",
        "ma patience a des limites",
        "bande de clowns",
        "foutage",
        "se foutre de",
        "c'est pas sérieux",
        "pas sérieux",
        "écoeurant",
        "écœurant",
        "honteuse",
        "vous m'avez volé",
        "vous m'avez arnaqué",
        "arnaque totale",
        "vous vous gavez",
        "humiliant",
        "humiliée",
        "humilié",
    ],
    "en": [
        "furious",
        "ridiculous",
        "unacceptable",
        "worst service",
        "the worst",
        "disgusting",
        "disgrace",
        "disgraceful",
        "outrageous",
        "outraged",
        "pathetic",
        "useless",
        "incompetent",
        "is a scam",
        "scammers",
        "rip off",
        "ripoff",
        "rip-off",
        "thieves",
        "fed up",
        "sick of",
        "sick and tired",
        "angry",
        "livid",
        "fuming",
        "pissed off",
        "shameful",
        "shame on you",
        "how dare",
        "absurd",
        "appalling",
        "terrible service",
        "is a joke",
        "a total joke",
        "such a joke",
        "never again",
        "infuriating",
        "not acceptable",
        "beyond a joke",
        "taking the piss",
        "disgusted",
        "sick to death",
        "had enough",
        "i've had it",
        "enough is enough",
        "shocking",
        "atrocious",
        "clowns",
        "cowboys",
        "daylight robbery",
        "scandalous",
        "an utter joke",
        "a complete joke",
        "losing my patience",
        "lost my patience",
        "beyond frustrated",
        "infuriated",
        "seething",
        "unbelievable",
        "utterly useless",
        "a disgrace",
        "absolute scam",
        "total scam",
        "complete scam",
        "you've stolen",
        "you stole",
        "you have stolen",
        "you're stealing",
        "ripping off",
        "ripping me off",
        "humiliating",
    ],
}

# Swearing is matched whatever the message's language ("c'est quoi ce bordel, wtf").
SWEARING = {
    "fr": [
        "putain",
        "merde",
        "bordel",
        "connard",
        "connards",
        "connasse",
        "enculé",
        "enculés",
        "salaud",
        "salauds",
        "salopard",
        "foutre",
        "bande de cons",
        "vous êtes nuls",
        "fait chier",
        "chier",
    ],
    "en": [
        "fuck",
        "fucking",
        "fucked",
        "shit",
        "shitty",
        "bullshit",
        "crap",
        "damn",
        "bloody hell",
        "idiots",
        "morons",
        "bastards",
        "wtf",
        "asshole",
        "assholes",
    ],
}

DISTRESS = {
    "fr": [
        "désespéré",
        "désespérée",
        "désespoir",
        "je ne sais plus quoi faire",
        "je sais plus quoi faire",
        "je ne sais pas quoi faire",
        "je sais pas quoi faire",
        "panique",
        "paniqué",
        "paniquée",
        "je panique",
        "très peur",
        "tellement peur",
        "vraiment peur",
        "terrifié",
        "terrifiée",
        "angoissé",
        "angoissée",
        "angoisse",
        "au secours",
        "sans argent",
        "n'ai plus d'argent",
        "j'ai plus d'argent",
        "plus un sou",
        "plus un centime",
        "pas un centime",
        "pas un sou",
        "ai plus rien",
        "à la rue",
        "bloqué à l'étranger",
        "bloquée à l'étranger",
        "coincé à l'étranger",
        "coincée à l'étranger",
        "détresse",
        "en pleurs",
        "je pleure",
        "je vous en supplie",
        "je vous supplie",
        "aidez-moi je vous en prie",
        "de quoi manger",
        "nourrir mes enfants",
        "au bout du rouleau",
        "je n'en peux plus",
        "j'en peux plus",
        "pas payer mon loyer",
        "pas à payer mon loyer",
        "plus payer mon loyer",
        "impossible de payer mon loyer",
        "hôpital",
        "décédé",
        "décédée",
        "décès",
        "enterrement",
        "obsèques",
        "j'ai très peur",
        "bloqué à l'aéroport",
        "bloquée à l'aéroport",
        "coincé à l'aéroport",
        "coincée à l'aéroport",
        "plus rien pour",
        "ne dors plus",
        "situation critique",
        "catastrophée",
    ],
    "en": [
        "scared",
        "terrified",
        "frightened",
        "so afraid",
        "really afraid",
        "desperate",
        "desperately",
        "panic",
        "panicking",
        "panicked",
        "don't know what to do",
        "dont know what to do",
        "no money",
        "no cash",
        "not a penny",
        "without money",
        "can't buy food",
        "can't feed",
        "stranded",
        "stuck abroad",
        "i beg you",
        "begging you",
        "worried sick",
        "anxious",
        "distressed",
        "crying",
        "in tears",
        "helpless",
        "lost everything",
        "nothing left",
        "no food",
        "can't pay my rent",
        "can't pay the rent",
        "cannot pay my rent",
        "rent is due",
        "hospital",
        "passed away",
        "funeral",
        "bereavement",
        "wits end",
        "wit's end",
        "falling apart",
        "breaking down",
        "can't sleep",
        "stuck at the airport",
        "stranded at the airport",
        "at the end of my rope",
        "freaking out",
        "really worried",
        "so worried",
        "very worried",
        "beside myself",
    ],
}

URGENCY = {
    "fr": [
        "urgent",
        "urgente",
        "urgence",
        "en urgence",
        "immédiatement",
        "tout de suite",
        "de suite",
        "au plus vite",
        "au plus tôt",
        "dès que possible",
        "le plus vite possible",
        "le plus rapidement possible",
        "sans attendre",
        "aujourd'hui même",
        "c'est pressé",
        "pressé",
        "asap",
    ],
    "en": [
        "urgent",
        "urgently",
        "emergency",
        "immediately",
        "right now",
        "right away",
        "asap",
        "as soon as possible",
        "straight away",
        "at once",
        "time sensitive",
        "time-sensitive",
        "without delay",
        "hurry",
    ],
}

NEGATIVE = {
    "fr": [
        "problème",
        "souci",
        "retard",
        "en retard",
        "déçu",
        "déçue",
        "déception",
        "mécontent",
        "mécontente",
        "insatisfait",
        "insatisfaite",
        "erreur",
        "bloqué",
        "bloquée",
        "toujours pas",
        "jamais reçu",
        "cassé",
        "cassée",
        "abîmé",
        "abîmée",
        "endommagé",
        "nul",
        "nulle",
        "mauvais",
        "mauvaise",
        "agacé",
        "agacée",
        "pénible",
        "galère",
        "inquiet",
        "inquiète",
        "perdu",
        "volé",
        "pas normal",
        "arnaque",
        "catastrophique",
        "catastrophe",
        "honte",
        "peur",
        "aucune réponse",
        "sans réponse",
        "personne ne répond",
        "personne ne m'a répondu",
        "personne ne m'a rappelé",
        "pas de réponse",
        "toujours rien",
        "pas normal",
        "inquiétant",
        "dommage",
        "regrettable",
        "défectueux",
        "injuste",
        "pas correct",
    ],
    "en": [
        "problem",
        "issue",
        "late",
        "delayed",
        "disappointed",
        "disappointing",
        "unhappy",
        "dissatisfied",
        "broken",
        "damaged",
        "wrong",
        "error",
        "still not",
        "still no",
        "never arrived",
        "annoyed",
        "annoying",
        "frustrated",
        "frustrating",
        "bad",
        "poor",
        "terrible",
        "awful",
        "horrible",
        "worried",
        "lost",
        "stolen",
        "scam",
        "not happy",
        "afraid",
        "no reply",
        "no response",
        "no answer",
        "nobody answers",
        "nobody has answered",
        "nobody got back",
        "no one got back",
        "still nothing",
        "not good enough",
        "unfair",
        "faulty",
        "not fair",
    ],
}

# Phrases that look like cues but are not: matched first and worth nothing.
NEUTRAL = {
    "fr": ["nulle part", "à l'aide de", "j'ai bien peur", "match nul", "pas mal de", "ouvert tard", "ouverts tard"],
    "en": [
        "i'm afraid",
        "i am afraid",
        "no matter",
        "no problem with",
        "damn good",
        "open late",
        "late opening",
        "late night opening",
        "stay open late",
    ],
}

POSITIVE = {
    "fr": [
        "merci",
        "parfait",
        "parfaitement",
        "génial",
        "excellent",
        "top",
        "content",
        "contente",
        "satisfait",
        "satisfaite",
        "ravi",
        "ravie",
        "bravo",
        "formidable",
        "efficace",
        "rapide",
        "sympa",
        "agréable",
        "bien",
        "impeccable",
    ],
    "en": [
        "thanks",
        "thank you",
        "thank",
        "great",
        "perfect",
        "excellent",
        "happy",
        "satisfied",
        "awesome",
        "love",
        "good",
        "wonderful",
        "appreciate",
        "appreciated",
        "helpful",
        "brilliant",
        "amazing",
        "fantastic",
        "lovely",
        "cheers",
    ],
}

NEGATORS = frozenset(
    {
        # English ("n't" is rewritten to " not" before matching)
        "not",
        "no",
        "never",
        "without",
        "nothing",
        "nobody",
        "neither",
        "nor",
        "hardly",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "wasnt",
        "arent",
        "cant",
        "wont",
        "havent",
        # French ("n'" becomes the word "n")
        "ne",
        "n",
        "pas",
        "jamais",
        "aucun",
        "aucune",
        "sans",
        "rien",
        "ni",
        "guere",
    }
)
INTENSIFIERS = frozenset(
    {
        "tres",
        "vraiment",
        "tellement",
        "trop",
        "super",
        "completement",
        "totalement",
        "absolument",
        "very",
        "really",
        "so",
        "extremely",
        "totally",
        "absolutely",
        "completely",
        "utterly",
    }
)
CLAUSE_BREAKS = frozenset({".", "!", "?", ";", ",", ":", "but", "mais", "however", "cependant"})
NOT_SHOUTING = frozenset(
    {
        "CMD",
        "SVP",
        "STP",
        "PIN",
        "RIB",
        "IBAN",
        "SMS",
        "TVA",
        "SAV",
        "EUR",
        "USD",
        "GBP",
        "ATM",
        "PDF",
        "URL",
        "FAQ",
        "CB",
        "OK",
        "UK",
        "USA",
        "DPD",
        "UPS",
        "DHL",
        "ASAP",
        "SEPA",
        "BIC",
        "CVV",
        "RGPD",
        "GDPR",
        "CEO",
        "TV",
        "PC",
        "SNCF",
        "RATP",
        "PS",
    }
)

# Customer-service idioms that no single word gives away, matched on the folded message (no accents,
# lower case, apostrophes and hyphens as spaces, "n't" -> " not"). Repeated contacts, long waits on
# hold and "you're making fun of me" are exasperation: they count as anger.
_ORDINAL_FR = (
    r"(?:deuxieme|troisieme|quatrieme|cinquieme|sixieme|septieme|dixieme|enieme|nieme|xieme"
    r"|\d+\s?(?:e|eme|ieme))"
)
_ORDINAL_EN = r"(?:second|third|fourth|fifth|sixth|seventh|tenth|umpteenth|nth|\d+\s?(?:nd|rd|th))"
_COUNT = (
    r"(?:deux|trois|quatre|cinq|six|sept|huit|dix|plusieurs|mille|\d+|two|three|four|five|six|ten|several"
    r"|multiple|many|so many|countless)"
)
_DURATION = (
    r"(?:une|un|une bonne|plus d une|\d+|deux|trois|vingt|trente|quarante|quarante cinq|cinquante|an|one|two"
    r"|half an|twenty|thirty|forty|forty five|fifty|over an|nearly an|almost an)\s*"
    r"(?:heures?|h|minutes?|min|mn|hours?|hrs?|mins?)\b"
)
IDIOMS: dict[str, list[re.Pattern[str]]] = {
    "anger": [
        re.compile(p)
        for p in (
            # repeated contact
            rf"\b(?:ca|cela) fait {_COUNT} fois\b",
            rf"\b{_ORDINAL_FR} (?:fois|appel|relance|message|mail|e mail|courrier|reclamation|demande)\b",
            r"\b(?:j appelle|je vous appelle|je vous ecris|j ecris|je relance) (?:tous les jours|chaque jour|sans arret)\b",
            r"\b(?:n est|c est|c etait) pas la premiere fois\b",
            rf"\b{_ORDINAL_EN} (?:time|call|email|e mail|message|request|attempt|chaser)\b",
            rf"\b(?:called|rang|phoned|written|wrote|emailed|messaged|asked|chased|contacted you|been in touch)"
            rf"\s+(?:you\s+|this\s+|about (?:this|it)\s+)?{_COUNT} times\b",
            r"\bnot the first time\b",
            # being made fun of
            r"\b(?:on|vous|ils) (?:se|vous|me|nous) (?:moque|moquez|moquent|fout|foutez|foutent|fiche|fichez) "
            r"(?:de moi|de nous|du monde|de ma gueule|des clients)\b",
            r"\b(?:on|vous) (?:me|nous) pren(?:d|ds|dre|ez|nent) pour (?:un|une|des) ",
            r"\b(?:vous|on) (?:me|nous) balad(?:e|ez|er)\b",
            r"\b(?:are you|you re|you are|youre) (?:kidding|joking|having a laugh|taking the mick|messing with me"
            r"|taking me for)\b",
            r"\btaking me for an? (?:fool|ride|mug|idiot)\b",
            r"\b(?:treat|treating|treated) (?:me|us|customers) like (?:an? )?(?:idiots?|fools?|dirt|rubbish)\b",
            r"\b(?:runaround|run around|fobbed off|fobbing me off|mugged off|messed about|messing me about)\b",
            # long waits on the phone or in the chat
            rf"\b(?:en attente|attends|patiente|poireaute|au telephone|en ligne|musique d attente)\b[^.!?]{{0,25}}"
            rf"\b(?:depuis|pendant|plus d|plus de|ca fait)\s+{_DURATION}",
            rf"\b{_DURATION}\s+(?:d attente|au telephone|en ligne|a attendre|de musique)",
            rf"\bon hold\b[^.!?]{{0,25}}\b(?:for|over|nearly|almost|since)\s+{_DURATION}",
            rf"\b{_DURATION}\s+(?:on hold|in the queue|waiting on the (?:phone|line))",
            rf"\b(?:been|was|am|m) waiting\b[^.!?]{{0,12}}\b(?:for\s+)?{_DURATION}",
        )
    ],
    # a plea at the end of the message, or nothing left to live on
    "distress": [
        re.compile(p)
        for p in (
            r"\baidez moi\s*(?:svp|s il vous plait|je vous en prie|vite|par pitie)?\s*[.!?]*$",
            r"\bn ai plus\b[^.!?]{0,25}\b(?:d argent|un sou|un centime|de quoi)\b",
            r"\bno (?:card|cards|wallet|phone)\W+no (?:money|cash)\b",
        )
    ],
}

WEIGHTS = {
    "anger": -2.0,
    "swearing": -2.0,
    "distress": -1.5,
    "negative": -1.0,
    "positive": 1.0,
    "urgency": -0.3,
    "neutral": 0.0,
}
NEGATED_BAD_WEIGHT = 0.5  # "pas de problème", "not angry": mildly positive
SHOUTING_WEIGHT = -1.0
EXCLAMATION_WEIGHT = -0.5
SCORE_SCALE = 3.0  # score = tanh(total / SCORE_SCALE)


@dataclass(frozen=True)
class Sentiment:
    """Overall tone in -1..1 and the three flags routing cares about."""

    score: float
    anger: bool
    distress: bool
    urgency: bool


@dataclass(frozen=True)
class _Cue:
    tokens: tuple[str, ...]
    kind: str
    self_negated: bool


_TOKEN = re.compile(r"[a-z0-9]+|[.!?;,:]")


_NOT = re.compile(r"n't\b")
_CANNOT = re.compile(r"\bcannot\b")
_CLAUSE_WORD = re.compile(r"[a-z0-9.!?,;:]+")


def _forms(text: str, folded: str | None = None) -> tuple[list[str], str]:
    """One folding of a message read two ways: its tokens (see _tokens), and its words and clause punctuation
    as one string, single-spaced, for the idioms and the requests for a person ("j ai attendu 2 heures !").
    `folded` is fold(text) when the caller has it."""
    folded = fold(text) if folded is None else folded
    if "n't" in folded:
        folded = _NOT.sub(" not", folded)
    folded = folded.replace("'", " ").replace("-", " ")
    tokens = _TOKEN.findall(_CANNOT.sub("can not", folded) if "cannot" in folded else folded)
    return tokens, " ".join(_CLAUSE_WORD.findall(folded))


def _tokens(text: str) -> list[str]:
    """Folded words and clause punctuation: "Je n'en peux PLUS !" -> [je, n, en, peux, plus, !]."""
    return _forms(text)[0]


def _any_of(patterns: Sequence[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern that matches where any of `patterns` would: one scan of a message instead of one per pattern."""
    flags = {pattern.flags for pattern in patterns}
    if len(flags) != 1:
        raise ValueError("patterns compiled with different flags cannot be joined")
    return re.compile("|".join(f"(?:{pattern.pattern})" for pattern in patterns), flags.pop())


_ANY_LANGUAGE = "*"  # lexicon key of the cues matched in every language


def _compile_lexicon() -> dict[str, dict[str, list[_Cue]]]:
    """Per language: first token -> cues starting with it, longest first."""
    lexicon: dict[str, dict[str, list[_Cue]]] = {}
    for kind, table in (
        ("anger", ANGER),
        ("swearing", SWEARING),
        ("distress", DISTRESS),
        ("urgency", URGENCY),
        ("negative", NEGATIVE),
        ("positive", POSITIVE),
        ("neutral", NEUTRAL),
    ):
        for lang, phrases in table.items():
            index = lexicon.setdefault(_ANY_LANGUAGE if kind == "swearing" else lang, {})
            for phrase in phrases:
                tokens = tuple(_tokens(phrase))
                cue = _Cue(tokens, kind, any(t in NEGATORS or t == "plus" for t in tokens))
                bucket = index.setdefault(tokens[0], [])
                if all(c.tokens != tokens for c in bucket):
                    bucket.append(cue)
    for index in lexicon.values():
        for bucket in index.values():
            bucket.sort(key=lambda c: -len(c.tokens))
    return lexicon


_LEXICON = _compile_lexicon()


def _merged_lexicon(keys: tuple[str, ...]) -> dict[str, list[_Cue]]:
    """The lexicons of `keys` as one, for _find_cues: per first token, every lexicon's cues longest first, ties in
    the order of `keys` (which is what _find_cues picks when given the lexicons one by one)."""
    merged: dict[str, list[_Cue]] = {}
    for key in keys:
        for first, cues in _LEXICON[key].items():
            merged.setdefault(first, []).extend(cues)
    for cues in merged.values():
        cues.sort(key=lambda c: -len(c.tokens))  # stable
    return merged


_MERGED_LEXICONS: dict[tuple[str, ...], dict[str, list[_Cue]]] = {
    (*langs, _ANY_LANGUAGE): _merged_lexicon((*langs, _ANY_LANGUAGE))
    for langs in ((lang,) for lang in SUPPORTED_LANGUAGES)
}
_MERGED_LEXICONS[(*SUPPORTED_LANGUAGES, _ANY_LANGUAGE)] = _merged_lexicon((*SUPPORTED_LANGUAGES, _ANY_LANGUAGE))


def _find_cues(tokens: list[str], lexicons: list[dict[str, list[_Cue]]]) -> list[tuple[int, _Cue]]:
    """Non-overlapping cues, longest match first, scanning left to right."""
    found: list[tuple[int, _Cue]] = []
    i = 0
    while i < len(tokens):
        match = None
        for lexicon in lexicons:
            for cue in lexicon.get(tokens[i], ()):
                if tuple(tokens[i : i + len(cue.tokens)]) == cue.tokens and (
                    match is None or len(cue.tokens) > len(match.tokens)
                ):
                    match = cue
                    break
        if match:
            found.append((i, match))
            i += len(match.tokens)
        else:
            i += 1
    return found


def _is_negated(tokens: list[str], start: int, window: int = 3) -> bool:
    """A negation within `window` words before `start`, in the same clause."""
    for token in reversed(tokens[max(0, start - window) : start]):
        if token in CLAUSE_BREAKS:
            return False
        if token in NEGATORS:
            return True
    return False


def _is_intensified(tokens: list[str], start: int) -> bool:
    return start > 0 and tokens[start - 1] in INTENSIFIERS


# Redaction placeholders ("[CARD]", "[PHONE]", ...) are written in capitals by relais, not by the customer.
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


# Three letters in a row none of which is a lower-case letter of French or English: a shouted word has them,
# most messages do not, and those need no closer look.
_MAYBE_SHOUTED = re.compile(r"[^\W\d_a-z\u00df-\u00f6\u00f8-\u00ff]{3}")


def _shouting(text: str) -> bool:
    """Two or more words in capitals (acronyms and redaction placeholders aside), or a message mostly in capitals."""
    if not _MAYBE_SHOUTED.search(text):
        return False
    text = _PLACEHOLDER.sub(" ", text)
    words = re.findall(r"[^\W\d_]{3,}", text)
    shouted = [w for w in words if w.isupper() and w not in NOT_SHOUTING]
    letters = [c for c in text if c.isalpha()]
    mostly_upper = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) >= 0.7
    return len(shouted) >= 2 or (mostly_upper and len(shouted) >= 1)


def _exclamation_burst(text: str) -> bool:
    """Three "!" in a row, or "!!" twice."""
    if "!" not in text:
        return False
    return bool(re.search(r"!\s*!\s*!", text)) or len(re.findall(r"!\s*!", text)) >= 2


def _question_burst(text: str) -> bool:
    """Three "?" in a row, or "?!" / "!?" mixed: impatience."""
    if "?" not in text:
        return False
    return bool(re.search(r"\?\s*\?\s*\?|\?\s*!|!\s*\?", text))


def _idiom_folded(text: str) -> str:
    return _forms(text)[1]


_IDIOMS_ANY = {kind: _any_of(patterns) for kind, patterns in IDIOMS.items()}


def analyse_sentiment(text: str, language: str) -> Sentiment:
    """Score and anger/distress/urgency flags from lexicons, negation, capitals and "!!!"."""
    return _sentiment(text, language, *_forms(text))


def analyse_message(text: str, language: str, folded: str | None = None) -> tuple[Sentiment, bool]:
    """analyse_sentiment() and asks_for_human() of one message, folding it once for both (`folded`: fold(text)
    when the caller already has it)."""
    tokens, clauses = _forms(text, folded)
    return _sentiment(text, language, tokens, clauses), _asks_for_human(_request_form(clauses))


def _sentiment(text: str, language: str, tokens: list[str], clauses: str) -> Sentiment:
    langs = (language,) if language in SUPPORTED_LANGUAGES else SUPPORTED_LANGUAGES
    cues = _find_cues(tokens, [_MERGED_LEXICONS[(*langs, _ANY_LANGUAGE)]])

    total = 0.0
    flags = {"anger": False, "distress": False, "urgency": False}
    for start, cue in cues:
        weight = WEIGHTS[cue.kind] * (1.5 if _is_intensified(tokens, start) else 1.0)
        negated = not cue.self_negated and _is_negated(tokens, start)
        if negated:  # "pas content" turns negative, "pas de problème" mildly positive, "not urgent" neutral
            total += {"positive": -1.0, "urgency": 0.0, "neutral": 0.0}.get(cue.kind, NEGATED_BAD_WEIGHT)
            continue
        total += weight
        kind = "anger" if cue.kind == "swearing" else cue.kind
        if kind in flags:
            flags[kind] = True

    for kind, pattern in _IDIOMS_ANY.items():
        if pattern.search(clauses):
            total += WEIGHTS[kind]
            flags[kind] = True

    if _shouting(text):
        flags["anger"] = True
        total += SHOUTING_WEIGHT
    if _exclamation_burst(text) and total <= 0:
        flags["anger"] = True
        total += EXCLAMATION_WEIGHT
    elif _question_burst(text) and total < 0.5:  # "Where is my refund???": impatient, not yet angry
        total += EXCLAMATION_WEIGHT

    score = round(math.tanh(total / SCORE_SCALE), 4)
    return Sentiment(score=score, anger=flags["anger"], distress=flags["distress"], urgency=flags["urgency"])


# Matched on folded text (no accents, lower case, apostrophes and hyphens as spaces), so
# "Passez-moi quelqu'un" is "passez moi quelqu un". Mentions of an advisor that are not a request
# ("mon conseiller m'a dit...", "my advisor said...") must not match: every pattern needs a request
# verb, a "not a robot" rejection, or a message that is nothing but the noun ("conseiller svp").

_FR_DET = (
    r"(?:(?:un|une|le|la|l|des|les|votre|vos|ton|un de vos|une de vos)\s+)*"
    r"(?:(?:vrai|vraie|vrais|vraies|autre)\s+)?"
)
_FR_PERSON = (
    r"(?:conseill(?:er|ere|e)s?|humains?|etres? humains?|(?:une|la|vraie|des)\s+personnes?"
    r"|personnes? (?:reelle|physique|humaine)s?|agents?|operat(?:eur|rice)s?|interlocut(?:eur|rice)s?"
    r"|quelqu un|responsable|superieur|employes?|collaborat(?:eur|rice)s?)\b"
)
_EN_DET = r"(?:(?:a|an|the|some|any|one of your|one of the|your)\s+)*(?:(?:real|live|actual|human|proper)\s+)?"
# After "speak to", "connect me with", "mettez-moi en relation avec": "my advisor", "mon conseiller" is a request too.
_EN_DET_MY = (
    r"(?:(?:a|an|the|some|any|one of your|one of the|your|my)\s+)*"
    r"(?:(?:real|live|actual|human|proper|relationship|account|personal|dedicated|usual)\s+)*"
)
_FR_DET_MON = (
    r"(?:(?:un|une|le|la|l|des|les|votre|vos|ton|mon|ma|un de vos|une de vos)\s+)*"
    r"(?:(?:vrai|vraie|vrais|vraies|autre)\s+)?"
)
_EN_PERSON_STRICT = (
    r"(?:advis[oe]rs?|agents?|humans?|human beings?|persons?|representatives?|reps?|operators?"
    r"|manager|supervisor|customer service(?: agent| advis[oe]r)?|member of (?:staff|your team)"
    r"|consultant)\b"
)
_EN_PERSON = r"(?:someone|somebody|some one|anyone|anybody|people|staff|" + _EN_PERSON_STRICT[3:]
_BOT = r"(?:robot|bot|chatbot|ia|repondeur|serveur vocal|automate)s?\b"

# A request verb followed by a person: negated requests ("I don't need an agent") are skipped.
_HUMAN_REQUEST = [
    re.compile(p)
    for p in (
        # French
        rf"\b(?:parler|discuter|echanger|causer|communiquer)\s+(?:a|avec|au|aux)\s+{_FR_DET_MON}{_FR_PERSON}",
        rf"\b(?:passez|passe|passer|transferez|transfere|transferer|redirigez|rediriger|orientez|basculez)"
        rf"(?:\s+moi)?\s+(?:(?:a|au|vers|sur)\s+)?{_FR_DET}{_FR_PERSON}",
        rf"\ben (?:relation|contact)\s+avec\s+{_FR_DET_MON}{_FR_PERSON}",
        rf"\b(?:veux|voudrais|voudrai|souhaite|souhaiterais|aimerais|desire|exige|prefere|faut|besoin d)"
        rf"\s+(?:(?:parler|avoir|joindre|contacter|voir|echanger|discuter)\s+(?:a\s+|avec\s+|au\s+)?)?"
        rf"{_FR_DET}{_FR_PERSON}",
        rf"\betre rappelee?s? par\s+{_FR_DET}{_FR_PERSON}",
        rf"\betre (?:transferee?|redirigee?|mise? en relation|orientee?)s?\s+(?:a|au|avec|vers)\s+{_FR_DET}{_FR_PERSON}",
        rf"\b(?:peux|puis|pourrais|pourrait|pourriez|pouvez|possible d|moyen d)\s+(?:je\s+|on\s+)?"
        rf"(?:avoir|joindre|contacter|voir)\s+{_FR_DET}{_FR_PERSON}",
        rf"\b(?:y a t il|est ce qu il y a)\s+{_FR_DET}{_FR_PERSON}",
        r"\b(?:un|une|des)\s+(?:vrai\s+|vraie\s+)?"
        r"(?:humain|etre humain|vraie personne|personne reelle|personne physique)\b",
        # English
        rf"\b(?:speak|talk|chat)\s+(?:to|with)\s+{_EN_DET_MY}{_EN_PERSON}",
        rf"\b(?:connect|put|transfer|pass|patch|redirect|forward|route|escalate)\s+me\s+(?:through\s+|over\s+)?"
        rf"(?:to|with)\s+{_EN_DET_MY}{_EN_PERSON}",
        r"\bput me through\b",
        rf"\b(?:be|get|being)\s+(?:transferred|connected|put through|passed|redirected|escalated)\s+(?:to|with)\s+"
        rf"{_EN_DET}{_EN_PERSON}",
        rf"\b(?:want|need|like|get|give|prefer|request|demand)\s+(?:me\s+)?(?:to\s+(?:speak|talk)\s+(?:to|with)\s+)?"
        rf"{_EN_DET}{_EN_PERSON_STRICT}",
        r"\b(?:a|an)\s+(?:real|live|actual|human)\s+(?:person|human|being|agent|advis[oe]r)\b",
        rf"\b(?:is there|are there)\s+{_EN_DET}{_EN_PERSON}",
    )
]

# Rejecting the bot is a request for a person: "je ne veux pas parler à un robot", "not a bot".
_BOT_REJECTION = [
    re.compile(p)
    for p in (
        rf"\b(?:pas|plus|jamais)\s+(?:(?:parler|discuter|echanger|affaire)\s+(?:a|avec|au)\s+)?"
        rf"(?:(?:un|une|le|la|ce|cette|votre|a)\s+)?{_BOT}",
        rf"\b(?:marre|assez)\s+(?:du|de ce|de cette|de votre|de la|de parler a un|de parler a une)\s+{_BOT}",
        rf"\b(?:arretez|stop|stoppez)\s+(?:(?:le|ce|votre)\s+)?{_BOT}",
        rf"\b(?:not|no|never|dont)\s+(?:(?:want|wish|like|going)\s+to\s+)?(?:(?:talk|speak|chat)(?:ing)?\s+(?:to|with)\s+)?"
        rf"(?:(?:a|an|the|this|your|some)\s+)?{_BOT}",
        rf"\b(?:stop|enough|done with|hate|sick of|fed up with)\s+"
        rf"(?:(?:the|this|your|talking to a|talking to the)\s+)?{_BOT}",
    )
]

# "I don't need to speak to an agent", "pas besoin de parler à un conseiller".
_DECLINED = re.compile(
    r"\b(?:pas besoin|pas la peine|inutile|pas envie|veux pas|voulais pas|not need|no need|not want|dont want"
    r"|dont need|not necessary|never wanted|without)\b[^.!?,;]*$"
)

_FILLER = frozenset(
    {
        "svp",
        "stp",
        "s",
        "il",
        "vous",
        "te",
        "plait",
        "plais",
        "merci",
        "bonjour",
        "bonsoir",
        "allo",
        "oui",
        "maintenant",
        "vite",
        "un",
        "une",
        "le",
        "la",
        "vrai",
        "vraie",
        "please",
        "pls",
        "plz",
        "now",
        "hi",
        "hello",
        "a",
        "an",
        "the",
        "real",
        "live",
        "actual",
        "yes",
        "thanks",
        "thank",
        "you",
        "asap",
        "just",
        "only",
        "seulement",
        "juste",
        "directement",
        "immediatement",
        "to",
        "want",
        "je",
        "veux",
        "i",
        "need",
        "besoin",
        "d",
        "de",
        "urgent",
        "tout",
        "suite",
        "de suite",
        "ok",
        "hey",
        "bjr",
        "slt",
        "salut",
        "voudrais",
        "aimerais",
        "souhaite",
        "would",
        "like",
        "can",
        "could",
        "get",
        "give",
        "me",
        "moi",
        "un autre",
        "quick",
        "quickly",
    }
)
_PERSON_ALONE = frozenset(
    {
        "conseiller",
        "conseillere",
        "humain",
        "etre humain",
        "operateur",
        "operatrice",
        "agent",
        "interlocuteur",
        "advisor",
        "adviser",
        "human",
        "human being",
        "person",
        "representative",
        "rep",
        "operator",
        "someone",
        "somebody",
        "customer service",
        "quelqu un",
        "personne humaine",
        "agent humain",
        "live agent",
        "customer service agent",
        "customer service advisor",
        "customer service adviser",
        "customer service rep",
        "human agent",
        "service client",
        "conseiller client",
        "conseiller clientele",
        "vraie personne",
        "personne reelle",
        "vrai humain",
        "manager",
        "supervisor",
        "responsable",
        "superviseur",
        "advisers",
        "advisors",
        "agents",
        "humains",
        "conseillers",
        "a person",
        "real person",
        "actual person",
        "live person",
        "live chat agent",
        "support agent",
        "agent conseil",
        "un humain",
        "human person",
    }
)
_PERSON_WORDS = frozenset(
    {
        "conseiller",
        "conseillere",
        "humain",
        "agent",
        "advisor",
        "adviser",
        "human",
        "operator",
        "operateur",
        "representative",
        "person",
        "personne",
    }
)

# Common misspellings and chat shorthand, rewritten before matching: "conseiler", "conseilleur",
# "concseiller" -> "conseiller"; "qqn", "qq1", "quelquun" -> "quelqu un"; "representive" -> "representative".
_TYPOS = [
    (re.compile(p), r)
    for p, r in (
        (r"\bc[o0]n[sc]{1,2}e?[iy]?l{1,2}(?:er|ere|e|eur|euse|eure|ier|iere|ee|ers|eres|es|eurs)\b", "conseiller"),
        (r"\b(?:qqn|qq1|qqun|quelquun|quelqun|kelkun|kelk1|quelq un)\b", "quelqu un"),
        (r"\b(?:humian|hummain|humin|humaim)\b", "humain"),
        (r"\brep(?:r|er)?e?s[ae]?n?t[ae]?t?i?ve?s?\b", "representative"),
        (r"\b(?:operater|operatr|opperator)\b", "operator"),
        (r"\b(?:advicer|advizor|advsor|adivsor)\b", "advisor"),
        (r"\b(?:agant|agnet|ajent)\b", "agent"),
        (r"\b(?:hooman|humam|humna|humen)\b", "human"),
        (r"\b(?:wanna|wana)\b", "want to"),
        (r"\bspk\b", "speak"),
    )
]

# More ways to ask, checked after the patterns above.
_MORE_REQUESTS = [
    re.compile(p)
    for p in (
        rf"\b(?:mettez|mets|mettre|donnez|donne|trouvez|trouve|envoyez|envoie)\s+(?:moi\s+)?(?:en ligne avec\s+)?"
        rf"{_FR_DET}{_FR_PERSON}",
        r"\bquelqu un de (?:reel|vrai|humain|physique|competent|chez vous|votre equipe)\b",
        r"\brappelez moi\s*(?:svp|stp|s il vous plait|vite|rapidement|au plus vite|des que possible|asap|merci"
        r"|sur mon portable|au numero|au \d[\d ]*)?\s*[.!?]*$",
        r"\bqu (?:un|une|le|la|l)\s+(?:conseiller|conseillere|agent|humain|operateur|operatrice|personne|responsable)"
        r"\s+(?:(?:me|m)\s+(?:rappelle|appelle|contacte|recontacte|reponde|telephone|aide|explique)"
        r"|s occupe|prenne (?:en charge|mon dossier|le relais)|gere|traite|regarde)\b",
        rf"\b(?:put|get)\s+me\s+in\s+touch\s+with\s+{_EN_DET_MY}{_EN_PERSON}",
        r"\b(?:can|could|would|will|please|pls)\s+(?:someone|somebody|an? (?:advis[oe]r|agent|person|human)|you)\s+"
        r"(?:please\s+)?(?:call|ring|phone)\s+me(?:\s+back)?\s*(?:please|pls|asap|today|now)?\s*[.!?]*$",
        r"\b(?:want|like|need)\s+(?:someone|somebody|an? (?:advis[oe]r|agent|person|human|representative))\s+to\s+"
        r"(?:call|ring|phone|contact)\s+me\b",
        r"\b(?:transfer|connect|escalate)\s+me\s*(?:please|pls|now|asap|right now)?\s*[.!?]*$",
        r"\b(?:let me|lemme|allow me to)\s+(?:speak|talk|chat)\s+(?:to|with)\s+",
        r"\bhuman (?:needed|required|please|pls|now)\b",
        rf"\b(?:demander|dire)\s+a\s+{_FR_DET_MON}{_FR_PERSON}\s+de\s+me\s+(?:rappeler|contacter|recontacter|appeler)\b",
        rf"\b{_FR_DET_MON}{_FR_PERSON}\s+(?:peut|pourrait|pourra|pourrais|peux)\s+(?:t\s+)?(?:il\s+|elle\s+)?"
        rf"me\s+(?:rappeler|contacter|recontacter|appeler)\b",
        rf"\b(?:can|could|would|will)\s+{_EN_DET_MY}{_EN_PERSON_STRICT}\s+(?:please\s+)?(?:call|ring|phone|contact)\s+me\b",
        r"\b(?:get|give|find)\s+me\s+(?:a|an|some|one)\s+(?:real\s+|live\s+|actual\s+)?"
        r"(?:person|human|agent|advis[oe]r|representative|rep|operator|someone)\b",
    )
]


_ANY_TYPO = _any_of([pattern for pattern, _ in _TYPOS])
_ANY_BOT_REJECTION = _any_of(_BOT_REJECTION)
_ANY_REQUEST = _any_of((*_HUMAN_REQUEST, *_MORE_REQUESTS))


def _request_folded(text: str) -> str:
    return _request_form(_forms(text)[1])


def _request_form(clauses: str) -> str:
    """The typos rewritten. When none is found no rewrite can apply (none creates another's input), so none runs."""
    if _ANY_TYPO.search(clauses):
        for pattern, replacement in _TYPOS:
            clauses = pattern.sub(replacement, clauses)
    return clauses


def asks_for_human(text: str) -> bool:
    """True when the message explicitly asks for a person (advisor, agent, human), FR or EN.

    Typos and shorthand are forgiven ("un conseiler", "parler a qqn"); a message that is nothing but the
    noun ("agent", "humain !!", "conseiller svp") counts; mentions ("my advisor said...") and declined
    requests ("pas besoin de parler à un conseiller") do not.
    """
    return _asks_for_human(_request_folded(text))


def _asks_for_human(folded: str) -> bool:
    words = [w for w in re.findall(r"[a-z0-9]+", folded) if w not in _FILLER]
    if words and (" ".join(words) in _PERSON_ALONE or all(w in _PERSON_WORDS for w in words)):
        return True
    if _ANY_BOT_REJECTION.search(folded):
        return True
    if not _ANY_REQUEST.search(folded):  # the common case: no request pattern matches anywhere
        return False
    for pattern in (*_HUMAN_REQUEST, *_MORE_REQUESTS):
        for match in pattern.finditer(folded):
            clause = re.split(r"[.!?;,]", folded[: match.start()])[-1] + match.group(0)
            if not _DECLINED.search(clause):
                return True
    return False


# ---------------------------------------------------------------------------- across a conversation

TREND_WINDOW = 5
ESCALATING_SLOPE = -0.25


def sentiment_trend(scores: Sequence[float]) -> float:
    """Slope of the customer's sentiment per turn over the last (up to) 5 scores; < 0 = getting worse.

    Least-squares slope against the turn index; 0.0 with fewer than two scores.
    """
    recent = [float(s) for s in scores][-TREND_WINDOW:]
    n = len(recent)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(recent) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(recent))
    variance = sum((x - mean_x) ** 2 for x in range(n))
    return covariance / variance


def escalating(scores: Sequence[float], threshold: float = ESCALATING_SLOPE) -> bool:
    """True when the customer is clearly getting angrier: the trend is at or below `threshold` and the
    latest score is negative, even if no single message raised the anger flag."""
    return len(scores) >= 2 and sentiment_trend(scores) <= threshold and float(scores[-1]) < 0


# -------------------------------------------------------------------------------------------- amounts

# An amount is a number next to a currency sign, code or word ("450 €", "€450", "1 200,50 euros",
# "£1,200.50", "$99", "450 EUR", "2k€", "30 quid"). A bare number is never an amount: order numbers,
# dates, phone numbers and percentages carry no currency.
_CURRENCY_BEFORE = r"(?:€|£|\$|eur\b|gbp\b|usd\b)"
_CURRENCY_AFTER = (
    r"(?:€|£|\$|eur(?:os?)?\b|gbp\b|usd\b|livres?(?: sterling)?\b|pounds?\b|quid\b|dollars?\b"
    r"|balles\b|bucks\b)"
)
_SPACE = "[ \u00a0\u202f]"
_NUMBER = (
    rf"(?<![\w.,/-])(?:\d{{1,3}}(?:(?:{_SPACE}|[.,'’])\d{{3}})+|\d+)(?:[.,]\d{{1,2}})?(?![\d])"
    rf"(?:{_SPACE}?(?P<k>k)\b)?"
)
_AMOUNT = re.compile(
    rf"(?:{_CURRENCY_BEFORE}{_SPACE}?(?P<before>{_NUMBER})"
    rf"|(?P<after>{_NUMBER.replace('(?P<k>', '(?P<k2>')}){_SPACE}?{_CURRENCY_AFTER})",
    re.IGNORECASE,
)


_DIGIT = re.compile(r"\d")


def _parse_number(raw: str) -> float | None:
    """ "1 200,50" -> 1200.5, "1,200.50" -> 1200.5, "12,99" -> 12.99, "1.200" -> 1200.0."""
    raw = re.sub(f"{_SPACE}", "", raw).replace("’", "'").replace("'", "")
    decimals = ""
    match = re.search(r"[.,](\d{1,2})$", raw)
    if match:
        decimals = match.group(1)
        raw = raw[: match.start()]
    digits = re.sub(r"[.,]", "", raw)
    if not digits.isdigit():
        return None
    return float(f"{digits}.{decimals}" if decimals else digits)


def extract_amount(text: str) -> float | None:
    """The largest amount of money the message mentions, in currency units; None when there is none."""
    if not _DIGIT.search(text):  # every amount has a digit (the same \d as _NUMBER's)
        return None
    amounts = []
    for match in _AMOUNT.finditer(text):
        raw = match.group("before") or match.group("after")
        value = _parse_number(re.sub(rf"{_SPACE}?k$", "", raw, flags=re.IGNORECASE))
        if value is None:
            continue
        if match.group("k") or match.group("k2"):
            value *= 1000
        amounts.append(value)
    return max(amounts) if amounts else None
