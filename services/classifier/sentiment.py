"""Emotion and explicit requests, per message: sentiment with anger/distress/urgency, and "I want a person"."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from relais.common.language import SUPPORTED_LANGUAGES, fold


# Phrases are written naturally; they go through the same folding as messages (accents, case,
# apostrophes, "n't" -> " not"). The longest phrase wins where phrases overlap. A cue preceded in
# the same clause (up to 3 words back) by a negation is flipped, unless the cue itself contains one
# (or "plus": "je n'ai plus un sou" is distress, not its negation).

ANGER = {
    "fr": [
        "scandale", "scandaleux", "scandaleuse", "inadmissible", "inacceptable", "c'est honteux", "honteux",
        "une honte", "quelle honte", "ras-le-bol", "ras le bol", "j'en ai marre", "j'en ai ras le bol",
        "marre", "en colère", "furieux", "furieuse", "énervé", "énervée", "exaspéré", "exaspérée",
        "exaspérant", "insupportable", "n'importe quoi", "foutage de gueule", "vous vous moquez",
        "se moquer du monde", "vous foutez", "lamentable", "pitoyable", "minable",
        "incompétents", "incompétent", "incapables", "nuls", "bande d'incapables", "c'est une arnaque",
        "arnaqueurs", "escrocs", "voleurs", "dégoûté", "dégoûtée", "écœuré", "écœurée", "révoltant",
        "c'est une blague", "outré", "outrée", "intolérable",
    ],
    "en": [
        "furious", "ridiculous", "unacceptable", "worst service", "the worst", "disgusting", "disgrace",
        "disgraceful", "outrageous", "outraged", "pathetic", "useless", "incompetent", "is a scam", "scammers",
        "rip off", "ripoff", "rip-off", "thieves", "fed up", "sick of", "sick and tired", "angry", "livid",
        "fuming", "pissed off", "shameful", "shame on you", "how dare", "absurd", "appalling",
        "terrible service", "is a joke", "a total joke", "such a joke", "never again", "infuriating",
        "not acceptable", "beyond a joke", "taking the piss",
    ],
}

# Swearing is matched whatever the message's language ("c'est quoi ce bordel, wtf").
SWEARING = {
    "fr": ["putain", "merde", "bordel", "connard", "connards", "connasse", "enculé", "enculés", "salaud",
           "salauds", "salopard", "foutre", "bande de cons", "vous êtes nuls", "fait chier", "chier"],
    "en": ["fuck", "fucking", "fucked", "shit", "shitty", "bullshit", "crap", "damn", "bloody hell",
           "idiots", "morons", "bastards", "wtf", "asshole", "assholes"],
}

DISTRESS = {
    "fr": [
        "désespéré", "désespérée", "désespoir", "je ne sais plus quoi faire", "je sais plus quoi faire",
        "je ne sais pas quoi faire", "je sais pas quoi faire", "panique", "paniqué", "paniquée", "je panique",
        "très peur", "tellement peur", "vraiment peur", "terrifié", "terrifiée", "angoissé", "angoissée",
        "angoisse", "au secours", "sans argent", "n'ai plus d'argent", "j'ai plus d'argent", "plus un sou",
        "plus un centime", "pas un centime", "pas un sou", "ai plus rien", "à la rue", "bloqué à l'étranger",
        "bloquée à l'étranger", "coincé à l'étranger", "coincée à l'étranger", "détresse", "en pleurs",
        "je pleure", "je vous en supplie", "je vous supplie", "aidez-moi je vous en prie", "de quoi manger",
        "nourrir mes enfants",
    ],
    "en": [
        "scared", "terrified", "frightened", "so afraid", "really afraid", "desperate", "desperately",
        "panic", "panicking", "panicked", "don't know what to do", "dont know what to do",
        "no money", "no cash", "not a penny", "without money", "can't buy food", "can't feed",
        "stranded", "stuck abroad", "i beg you", "begging you", "worried sick", "anxious", "distressed",
        "crying", "in tears", "helpless", "lost everything", "nothing left", "no food",
    ],
}

URGENCY = {
    "fr": [
        "urgent", "urgente", "urgence", "en urgence", "immédiatement", "tout de suite", "de suite",
        "au plus vite", "au plus tôt", "dès que possible", "le plus vite possible",
        "le plus rapidement possible", "sans attendre", "aujourd'hui même", "c'est pressé", "pressé",
        "asap",
    ],
    "en": [
        "urgent", "urgently", "emergency", "immediately", "right now", "right away", "asap",
        "as soon as possible", "straight away", "at once", "time sensitive", "time-sensitive",
        "without delay", "hurry",
    ],
}

NEGATIVE = {
    "fr": ["problème", "souci", "retard", "en retard", "déçu", "déçue", "déception", "mécontent", "mécontente",
           "insatisfait", "insatisfaite", "erreur", "bloqué", "bloquée", "toujours pas", "jamais reçu",
           "cassé", "cassée", "abîmé", "abîmée", "endommagé", "nul", "nulle", "mauvais", "mauvaise",
           "agacé", "agacée", "pénible", "galère", "inquiet", "inquiète", "perdu", "volé", "pas normal",
           "arnaque", "catastrophique", "catastrophe", "honte", "peur"],
    "en": ["problem", "issue", "late", "delayed", "disappointed", "disappointing", "unhappy", "dissatisfied",
           "broken", "damaged", "wrong", "error", "still not", "still no", "never arrived", "annoyed",
           "annoying", "frustrated", "frustrating", "bad", "poor", "terrible", "awful", "horrible",
           "worried", "lost", "stolen", "scam", "not happy", "afraid"],
}

# Phrases that look like cues but are not: matched first and worth nothing.
NEUTRAL = {
    "fr": ["nulle part", "à l'aide de", "j'ai bien peur", "match nul", "pas mal de"],
    "en": ["i'm afraid", "i am afraid", "no matter", "no problem with", "damn good"],
}

POSITIVE = {
    "fr": ["merci", "parfait", "parfaitement", "génial", "excellent", "top", "content", "contente",
           "satisfait", "satisfaite", "ravi", "ravie", "bravo", "formidable", "efficace", "rapide",
           "sympa", "agréable", "bien", "impeccable"],
    "en": ["thanks", "thank you", "thank", "great", "perfect", "excellent", "happy", "satisfied", "awesome",
           "love", "good", "wonderful", "appreciate", "appreciated", "helpful", "brilliant", "amazing",
           "fantastic", "lovely", "cheers"],
}

NEGATORS = frozenset({
    # English ("n't" is rewritten to " not" before matching)
    "not", "no", "never", "without", "nothing", "nobody", "neither", "nor", "hardly",
    "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "cant", "wont", "havent",
    # French ("n'" becomes the word "n")
    "ne", "n", "pas", "jamais", "aucun", "aucune", "sans", "rien", "ni", "guere",
})
INTENSIFIERS = frozenset({"tres", "vraiment", "tellement", "trop", "super", "completement", "totalement", "absolument",
                          "very", "really", "so", "extremely", "totally", "absolutely", "completely", "utterly"})
CLAUSE_BREAKS = frozenset({".", "!", "?", ";", ",", ":", "but", "mais", "however", "cependant"})
NOT_SHOUTING = frozenset({"CMD", "SVP", "STP", "PIN", "RIB", "IBAN", "SMS", "TVA", "SAV", "EUR", "USD", "GBP",
                          "ATM", "PDF", "URL", "FAQ", "CB", "OK", "UK", "USA", "DPD", "UPS", "DHL", "ASAP",
                          "SEPA", "BIC", "CVV", "RGPD", "GDPR", "CEO", "TV", "PC", "SNCF", "RATP", "PS"})

WEIGHTS = {"anger": -2.0, "swearing": -2.0, "distress": -1.5, "negative": -1.0, "positive": 1.0, "urgency": -0.3,
           "neutral": 0.0}
NEGATED_BAD_WEIGHT = 0.5      # "pas de problème", "not angry": mildly positive
SHOUTING_WEIGHT = -1.0
EXCLAMATION_WEIGHT = -0.5
SCORE_SCALE = 3.0             # score = tanh(total / SCORE_SCALE)


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


def _tokens(text: str) -> list[str]:
    """Folded words and clause punctuation: "Je n'en peux PLUS !" -> [je, n, en, peux, plus, !]."""
    folded = fold(text)
    folded = re.sub(r"n't\b", " not", folded)
    folded = re.sub(r"\bcannot\b", "can not", folded)
    return _TOKEN.findall(folded.replace("'", " ").replace("-", " "))


_ANY_LANGUAGE = "*"  # lexicon key of the cues matched in every language


def _compile_lexicon() -> dict[str, dict[str, list[_Cue]]]:
    """Per language: first token -> cues starting with it, longest first."""
    lexicon: dict[str, dict[str, list[_Cue]]] = {}
    for kind, table in (("anger", ANGER), ("swearing", SWEARING), ("distress", DISTRESS),
                        ("urgency", URGENCY), ("negative", NEGATIVE), ("positive", POSITIVE),
                        ("neutral", NEUTRAL)):
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


def _find_cues(tokens: list[str], lexicons: list[dict[str, list[_Cue]]]) -> list[tuple[int, _Cue]]:
    """Non-overlapping cues, longest match first, scanning left to right."""
    found: list[tuple[int, _Cue]] = []
    i = 0
    while i < len(tokens):
        match = None
        for lexicon in lexicons:
            for cue in lexicon.get(tokens[i], ()):
                if tuple(tokens[i:i + len(cue.tokens)]) == cue.tokens and (
                        match is None or len(cue.tokens) > len(match.tokens)):
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
    for token in reversed(tokens[max(0, start - window):start]):
        if token in CLAUSE_BREAKS:
            return False
        if token in NEGATORS:
            return True
    return False


def _is_intensified(tokens: list[str], start: int) -> bool:
    return start > 0 and tokens[start - 1] in INTENSIFIERS


def _shouting(text: str) -> bool:
    """Two or more words in capitals (acronyms aside), or a message mostly in capitals."""
    words = re.findall(r"[^\W\d_]{3,}", text)
    shouted = [w for w in words if w.isupper() and w not in NOT_SHOUTING]
    letters = [c for c in text if c.isalpha()]
    mostly_upper = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) >= 0.7
    return len(shouted) >= 2 or (mostly_upper and len(shouted) >= 1)


def _exclamation_burst(text: str) -> bool:
    """Three "!" in a row, or "!!" twice."""
    return bool(re.search(r"!\s*!\s*!", text)) or len(re.findall(r"!\s*!", text)) >= 2


def analyse_sentiment(text: str, language: str) -> Sentiment:
    """Score and anger/distress/urgency flags from lexicons, negation, capitals and "!!!"."""
    tokens = _tokens(text)
    langs = [language] if language in SUPPORTED_LANGUAGES else list(SUPPORTED_LANGUAGES)
    cues = _find_cues(tokens, [_LEXICON[lang] for lang in (*langs, _ANY_LANGUAGE)])

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

    if _shouting(text):
        flags["anger"] = True
        total += SHOUTING_WEIGHT
    if _exclamation_burst(text) and total <= 0:
        flags["anger"] = True
        total += EXCLAMATION_WEIGHT

    score = round(math.tanh(total / SCORE_SCALE), 4)
    return Sentiment(score=score, anger=flags["anger"], distress=flags["distress"], urgency=flags["urgency"])


# Matched on folded text (no accents, lower case, apostrophes and hyphens as spaces), so
# "Passez-moi quelqu'un" is "passez moi quelqu un". Mentions of an advisor that are not a request
# ("mon conseiller m'a dit...", "my advisor said...") must not match: every pattern needs a request
# verb, a "not a robot" rejection, or a message that is nothing but the noun ("conseiller svp").

_FR_DET = (r"(?:(?:un|une|le|la|l|des|les|votre|vos|ton|un de vos|une de vos)\s+)*"
           r"(?:(?:vrai|vraie|vrais|vraies|autre)\s+)?")
_FR_PERSON = (r"(?:conseill(?:er|ere|e)s?|humains?|etres? humains?|(?:une|la|vraie|des)\s+personnes?"
              r"|personnes? (?:reelle|physique|humaine)s?|agents?|operat(?:eur|rice)s?|interlocut(?:eur|rice)s?"
              r"|quelqu un|responsable|superieur|employes?|collaborat(?:eur|rice)s?)\b")
_EN_DET = r"(?:(?:a|an|the|some|any|one of your|one of the|your)\s+)*(?:(?:real|live|actual|human|proper)\s+)?"
_EN_PERSON_STRICT = (r"(?:advis[oe]rs?|agents?|humans?|human beings?|persons?|representatives?|reps?|operators?"
                     r"|manager|supervisor|customer service(?: agent| advis[oe]r)?|member of (?:staff|your team)"
                     r"|consultant)\b")
_EN_PERSON = r"(?:someone|somebody|some one|anyone|anybody|people|staff|" + _EN_PERSON_STRICT[3:]
_BOT = r"(?:robot|bot|chatbot|ia|repondeur|serveur vocal|automate)s?\b"

# A request verb followed by a person: negated requests ("I don't need an agent") are skipped.
_HUMAN_REQUEST = [re.compile(p) for p in (
    # French
    rf"\b(?:parler|discuter|echanger|causer|communiquer)\s+(?:a|avec|au|aux)\s+{_FR_DET}{_FR_PERSON}",
    rf"\b(?:passez|passe|passer|transferez|transfere|transferer|redirigez|rediriger|orientez|basculez)"
    rf"(?:\s+moi)?\s+(?:(?:a|au|vers|sur)\s+)?{_FR_DET}{_FR_PERSON}",
    rf"\ben relation avec\s+{_FR_DET}{_FR_PERSON}",
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
    rf"\b(?:speak|talk|chat)\s+(?:to|with)\s+{_EN_DET}{_EN_PERSON}",
    rf"\b(?:connect|put|transfer|pass|patch|redirect|forward|route|escalate)\s+me\s+(?:through\s+|over\s+)?"
    rf"(?:to|with)\s+{_EN_DET}{_EN_PERSON}",
    r"\bput me through\b",
    rf"\b(?:be|get|being)\s+(?:transferred|connected|put through|passed|redirected|escalated)\s+(?:to|with)\s+"
    rf"{_EN_DET}{_EN_PERSON}",
    rf"\b(?:want|need|like|get|give|prefer|request|demand)\s+(?:me\s+)?(?:to\s+(?:speak|talk)\s+(?:to|with)\s+)?"
    rf"{_EN_DET}{_EN_PERSON_STRICT}",
    r"\b(?:a|an)\s+(?:real|live|actual|human)\s+(?:person|human|being|agent|advis[oe]r)\b",
    rf"\b(?:is there|are there)\s+{_EN_DET}{_EN_PERSON}",
)]

# Rejecting the bot is a request for a person: "je ne veux pas parler à un robot", "not a bot".
_BOT_REJECTION = [re.compile(p) for p in (
    rf"\b(?:pas|plus|jamais)\s+(?:(?:parler|discuter|echanger|affaire)\s+(?:a|avec|au)\s+)?"
    rf"(?:(?:un|une|le|la|ce|cette|votre|a)\s+)?{_BOT}",
    rf"\b(?:marre|assez)\s+(?:du|de ce|de cette|de votre|de la|de parler a un|de parler a une)\s+{_BOT}",
    rf"\b(?:arretez|stop|stoppez)\s+(?:(?:le|ce|votre)\s+)?{_BOT}",
    rf"\b(?:not|no|never|dont)\s+(?:(?:want|wish|like|going)\s+to\s+)?(?:(?:talk|speak|chat)(?:ing)?\s+(?:to|with)\s+)?"
    rf"(?:(?:a|an|the|this|your|some)\s+)?{_BOT}",
    rf"\b(?:stop|enough|done with|hate|sick of|fed up with)\s+"
    rf"(?:(?:the|this|your|talking to a|talking to the)\s+)?{_BOT}",
)]

# "I don't need to speak to an agent", "pas besoin de parler à un conseiller".
_DECLINED = re.compile(
    r"\b(?:pas besoin|pas la peine|inutile|pas envie|veux pas|voulais pas|not need|no need|not want|dont want"
    r"|dont need|not necessary|never wanted|without)\b[^.!?,;]*$")

_FILLER = frozenset({
    "svp", "stp", "s", "il", "vous", "te", "plait", "plais", "merci", "bonjour", "bonsoir", "allo", "oui",
    "maintenant", "vite", "un", "une", "le", "la", "vrai", "vraie", "please", "pls", "plz", "now", "hi", "hello",
    "a", "an", "the", "real", "live", "actual", "yes", "thanks", "thank", "you", "asap", "just", "only",
    "seulement", "juste", "directement", "immediatement", "to", "want", "je", "veux", "i",
})
_PERSON_ALONE = frozenset({
    "conseiller", "conseillere", "humain", "etre humain", "operateur", "operatrice", "agent", "interlocuteur",
    "advisor", "adviser", "human", "human being", "person", "representative", "rep", "operator", "someone",
    "somebody", "customer service", "quelqu un", "personne humaine", "agent humain", "live agent",
})


def _request_folded(text: str) -> str:
    folded = re.sub(r"n't\b", " not", fold(text)).replace("'", " ").replace("-", " ")
    folded = re.sub(r"[^a-z0-9.!?,;:]+", " ", folded)  # keep clause punctuation only
    return " ".join(folded.split())


def asks_for_human(text: str) -> bool:
    """True when the message explicitly asks for a person (advisor, agent, human), FR or EN."""
    folded = _request_folded(text)
    words = [w for w in re.findall(r"[a-z0-9]+", folded) if w not in _FILLER]
    if words and " ".join(words) in _PERSON_ALONE:
        return True
    if any(pattern.search(folded) for pattern in _BOT_REJECTION):
        return True
    for pattern in _HUMAN_REQUEST:
        for match in pattern.finditer(folded):
            clause = re.split(r"[.!?;,]", folded[:match.start()])[-1] + match.group(0)
            if not _DECLINED.search(clause):
                return True
    return False
