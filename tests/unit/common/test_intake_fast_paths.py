"""Intake's fast paths agree with the plain code they replace, on corpora and on generated input.

Each reference below is the former implementation, kept here as the specification of what the fast one must do.
"""

import csv
import json
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings, strategies as st

from relais.common import cloudevents, language, redact
from relais.common.bus import BadInput
from relais.common.language import DETECTED_LANGUAGES, SUPPORTED_LANGUAGES, LanguageGuess
from relais.common.pb import conversation_pb2 as pb
from tests.unit.common.test_language import HELD_OUT, MESSAGES


def reference_set_time(target: Timestamp, name: str, value) -> None:
    """cloudevents._set_time as it was: through datetime with its time zone and Timestamp.FromDatetime."""
    match = cloudevents.RFC3339.fullmatch(value)
    if not match:
        raise BadInput("not RFC 3339")
    year, month, day, hour, minute, second, offset_hours, offset_minutes = (
        int(match[group] or 0) for group in ("year", "month", "day", "hour", "minute", "second", "oh", "om")
    )
    try:
        if offset_minutes > 59:
            raise ValueError("offset minutes")
        offset = timedelta(hours=offset_hours, minutes=offset_minutes) * (-1 if match["sign"] == "-" else 1)
        moment = datetime(year, month, day, hour, minute, 59 if second == 60 else second, tzinfo=timezone(offset))
    except ValueError:
        raise BadInput("not a valid date and time") from None
    try:
        target.FromDatetime(moment)
    except (OverflowError, ValueError):
        raise BadInput("out of range") from None
    target.nanos = int((match["fraction"] or "0")[:9].ljust(9, "0"))


def outcome(set_time, value: str):
    """(seconds, nanos) or the kind of refusal."""
    target = Timestamp()
    try:
        set_time(target, "`time`", value)
    except BadInput as bad:
        return next(
            kind
            for kind in ("not RFC 3339", "not a valid date and time", "out of range")
            if kind in str(bad).replace("is not an RFC 3339", "not RFC 3339")
        )
    return target.seconds, target.nanos


EDGES = [
    "2026-11-26T10:00:00Z",
    "2026-11-26t10:00:00z",
    "2026-11-26T11:00:00.250+01:00",
    "2026-11-26T10:00:00.123456789123Z",
    "2026-12-31T23:59:60Z",
    "2026-02-29T10:00:00Z",
    "2024-02-29T10:00:00Z",
    "2026-04-31T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2026-00-10T10:00:00Z",
    "2026-01-00T10:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T23:60:00Z",
    "2026-01-01T23:59:61Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00-01:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-00:01",
    "9999-12-31T23:00:00+23:59",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00-23:59",
    "2026-01-01T00:00:00+05:60",
    "2026-01-01T00:00:00+99:00",
    "2026-01-01T00:00:00-00:00",
    "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:00:00Z",
    "2026-11-26 10:00:00Z",
    "2026-11-26T10:00Z",
    "2026-11-26T10:00:00",
    "not a time",
    "",
]


@pytest.mark.parametrize("value", EDGES)
def test_event_times_are_read_as_before(value):
    assert outcome(cloudevents._set_time, value) == outcome(reference_set_time, value)


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(
        re.compile(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?"
            r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
        ),
        fullmatch=True,
    )
)
def test_generated_event_times_are_read_as_before(value):
    assert outcome(cloudevents._set_time, value) == outcome(reference_set_time, value)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_valid_times_across_the_range_are_read_as_before(moment, offset_minutes):
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    value = f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{sign}{hours:02d}:{minutes:02d}"
    assert outcome(cloudevents._set_time, value) == outcome(reference_set_time, value)


# ----------------------------------------------------------------------------------------- language


def reference_guess_language(text: str, hint: str | None = None, previous: str | None = None) -> LanguageGuess:
    """language.guess_language as it was: the detector asked for every message the marker words do not settle."""
    declared = language.declared_language(hint)
    if declared:
        return LanguageGuess(declared)
    previous = language.declared_language(previous)
    letters = re.sub(r"\S*\d\S*", " ", text)
    words = [w for w in re.findall(r"[a-z]+", language.fold(letters)) if w not in language.NEUTRAL_WORDS]
    if not words:
        guess = LanguageGuess(language.DEFAULT_LANGUAGE, sure=False)
        return LanguageGuess(previous, sure=False) if previous else guess
    candidates = language.DETECTED_LANGUAGES
    if len(words) <= language.SHORT_MESSAGE_WORDS:
        votes = {lang: sum(w in markers for w in words) for lang, markers in language.LANGUAGE_MARKERS.items()}
        best = max(votes.values())
        winners = tuple(lang for lang, n in votes.items() if n == best)
        if best and previous in winners:
            return LanguageGuess(previous)
        if best and len(winners) == 1 and not previous:
            return LanguageGuess(winners[0])
        if best and not previous:
            candidates = winners
    score = {
        value.language.iso_code_639_1.name.lower(): value.value
        for value in language._language_detector().compute_language_confidence_values(letters)
    }
    return reference_decision(score, text, words, candidates, previous)


def reference_decision(score: dict[str, float], text: str, words: list[str], candidates, previous) -> LanguageGuess:
    """What the rules make of the detector's confidences `score` (changed in place), as guess_language did."""
    for lang, common in language.FUNCTION_WORDS.items():
        score[lang] = score.get(lang, 0.0) + language.FUNCTION_WORD_WEIGHT * sum(w in common for w in words)
    if "¿" in text or "¡" in text:
        score["es"] += language.FUNCTION_WORD_WEIGHT
    if previous in score:
        score[previous] += language.CONTINUITY_BONUS
    served = max((lang for lang in candidates if lang in SUPPORTED_LANGUAGES), key=score.__getitem__, default="")
    unserved = max((lang for lang in candidates if lang not in SUPPORTED_LANGUAGES), key=score.__getitem__, default="")
    if candidates != DETECTED_LANGUAGES:
        guess = LanguageGuess(served or language.DEFAULT_LANGUAGE, sure=False, ambiguous_with=unserved)
    else:
        margin = language.SURE_MARGIN if len(words) > 1 else language.SURE_MARGIN_ONE_WORD
        runner_up = max(score[lang] for lang in DETECTED_LANGUAGES if lang not in (*SUPPORTED_LANGUAGES, unserved))
        if score[served] - score[unserved] >= margin:
            guess = LanguageGuess(served)
        elif score[unserved] - score[served] >= margin and score[unserved] - runner_up >= margin:
            guess = LanguageGuess(unserved)
        else:
            guess = LanguageGuess(served, sure=False, ambiguous_with=unserved)
    return LanguageGuess(previous, sure=False) if previous and not guess.sure else guess


def corpus_texts() -> list[str]:
    with (Path(__file__).parents[1] / "classifier" / "evaluation_set.csv").open(encoding="utf-8") as f:
        evaluation = [row["text"] for row in csv.DictReader(f)]
    table = [text for texts in (*MESSAGES.values(), *HELD_OUT.values()) for text in texts]
    chat = [
        "hola",
        "danke",
        "ok merci",
        "no",
        "ja",
        "si",
        "non",
        "hallo",
        "pizza",
        "ciao",
        "pedido",
        "ok",
        "CMD-123456 ok",
        "",
        "12345",
        "no no no",
        "ja nee",
        "si si",
        "oui non",
        "¿no?",
        "merci danke grazie",
        "hallo ja nee",
    ]
    # Long messages full of one language's function words: the ones the rules settle without the detector.
    long = [
        "je ne sais pas ce que vous avez fait de ma commande mais je suis toujours sans nouvelles et ce n'est pas normal",
        "I do not know what you did with my order but I have still not got it and it is not fine at all",
        "no sé qué han hecho con mi pedido pero todavía no lo tengo y no es normal que nadie me conteste",
        "ich weiß nicht was mit meiner Bestellung ist aber ich habe sie noch nicht und das ist nicht in Ordnung",
        "il mio ordine non è ancora arrivato e non so che cosa fare perché nessuno mi risponde da una settimana",
        "a minha encomenda ainda não chegou e eu não sei o que fazer porque ninguém me responde há uma semana",
        "ik weet niet wat er met mijn bestelling is maar ik heb hem nog niet en dat is niet in orde voor mij",
    ]
    return table + evaluation + chat + long


CORPUS = corpus_texts()
CONVERSATION_LANGUAGES = [None, "fr", "en", "es", "de", "it", "pt", "nl"]


def test_a_batch_of_guesses_is_the_former_guess_of_each_message():
    asks: list[tuple[str, str | None, str | None]] = [
        (text, None, previous) for previous in CONVERSATION_LANGUAGES for text in CORPUS
    ]
    asks += [(text, hint, None) for text in CORPUS[:40] for hint in ("fr", "es-ES", "und", "")]
    expected = [reference_guess_language(*ask) for ask in asks]
    assert language.guess_languages(asks) == expected
    assert [language.guess_language(*ask) for ask in asks[::7]] == expected[::7]


def test_the_language_of_a_later_turn_is_the_former_guess_s():
    asks: list[tuple[str, str | None, str]] = [
        (text, None, previous) for previous in CONVERSATION_LANGUAGES if previous for text in CORPUS
    ]
    asks += [(text, "de", "fr") for text in CORPUS[:20]]
    assert language.turn_languages(asks) == [reference_guess_language(*ask).language for ask in asks]


def test_the_detector_is_asked_once_per_distinct_text_and_not_when_the_rules_settle(monkeypatch):
    read: list[str] = []
    confidences = language._confidences

    def counted(texts):
        read.extend(texts)
        return confidences(texts)

    monkeypatch.setattr(language, "_confidences", counted)
    long = CORPUS[-7:]
    language.guess_languages([(text, None, None) for text in long * 3])
    assert len(read) == len(set(read)) and set(read) < set(long)  # some settled by their function words alone
    read.clear()
    language.turn_languages(
        [(text, None, lang) for text, lang in zip(long, ("fr", "en", "es", "de", "it", "pt", "nl"))]
    )
    assert read == []  # each in its conversation's language, whatever the detector says


def confidence_vectors(rng: random.Random, n: int) -> list[dict[str, float]]:
    """The corners of the detector's range (all on one language, or none) and random points in it."""
    corners = [dict.fromkeys(DETECTED_LANGUAGES, 0.0)] + [
        {lang: float(lang == top) for lang in DETECTED_LANGUAGES} for top in DETECTED_LANGUAGES
    ]
    randoms = []
    for _ in range(n):
        weights = [rng.random() ** 3 for _ in DETECTED_LANGUAGES]
        randoms.append({lang: w / sum(weights) for lang, w in zip(DETECTED_LANGUAGES, weights)})
    return corners + randoms


def test_what_the_rules_settle_holds_whatever_the_detector_says():
    """A guess made without the detector must be the one made with any confidences it could give."""
    rng = random.Random(7)
    settled = 0
    for text in CORPUS:
        for previous in CONVERSATION_LANGUAGES:
            reading = language._read(text, previous)
            if not isinstance(reading, language._Reading):
                continue
            letters = re.sub(r"\S*\d\S*", " ", text)
            words = [w for w in re.findall(r"[a-z]+", language.fold(letters)) if w not in language.NEUTRAL_WORDS]
            for language_only in (False, True):
                guess = language._settled(reading, language_only)
                if guess is None:
                    continue
                settled += 1
                for confidences in confidence_vectors(rng, 40):
                    expected = reference_decision(dict(confidences), text, words, reading.candidates, previous)
                    assert guess == (expected.language if isinstance(guess, str) else expected), (text, previous)
    assert settled > 100


# ----------------------------------------------------------------------------------------- events


@pytest.mark.parametrize("field", ["id", "language", "tier", "phone", "time_zone", "text"])
@pytest.mark.parametrize("mode", ["json", "protobuf"])
def test_a_nul_in_the_message_is_refused_in_either_mode_although_json_data_is_checked_once(field, mode):
    customer = {"id": "c-1", "language": "fr", "tier": "gold", "phone": "+33612345678", "time_zone": "Europe/Paris"}
    text = "x\x00y" if field == "text" else "Bonjour"
    data = {"channel": "chat", "customer": customer, "text": text, "sent_at": "2026-11-26T10:00:00Z"}
    if field != "text":
        customer[field] = "x\x00y"
    attrs = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:test",
        "type": cloudevents.CONTACT_MESSAGE,
        "subject": "conv-1",
    }
    if mode == "json":
        value = json.dumps({**attrs, "data": data}).encode()
        headers = [("content-type", b"application/cloudevents+json")]
    else:
        message = pb.ContactMessage(channel=pb.CHANNEL_CHAT, customer=pb.Customer(**customer), text=text)
        value = message.SerializeToString()
        headers = [(f"ce_{k}", v.encode()) for k, v in attrs.items()] + [("content-type", b"application/protobuf")]
    name = "data.text" if field == "text" else f"data.customer.{field}"
    with pytest.raises(BadInput, match=f"{re.escape(name)} contains a NUL character"):
        cloudevents.parse_contact_event(value, headers)


# ----------------------------------------------------------------------------------------- redaction


def redaction_texts() -> list[str]:
    with (Path(__file__).parents[1] / "common" / "redaction_corpus.csv").open(encoding="utf-8") as f:
        corpus = [row["text"] for row in csv.DictReader(f)]
    letters_only_codice_fiscale = "RSSMRAURTMLARSNL"  # RSSMRA85T10A562S with every digit written as a letter
    with_orders = [
        f"{prefix}{order}{suffix}"
        for order in ("CMD-123456", "ord 0612345678", "CMD4111111111111111", "cmd-12345")
        for prefix, suffix in (
            ("Où est ma commande ", " ?"),
            ("", ""),
            ("my order ", " and my mail a@b.fr"),
            ("commande ", f", mon code {letters_only_codice_fiscale}"),
            ("", " FR7630006000011234567890189"),
            ("(", ") 06 12 34 56 78"),
        )
    ]
    return corpus + with_orders + [f"{text} CMD-778812" for text in corpus[:200]]


def test_a_text_whose_only_digits_are_order_numbers_is_searched_no_further_and_loses_nothing():
    texts = redaction_texts()
    skipped = 0
    for text in texts:
        kept = [redact.Finding("order", m.start(), m.end()) for m in redact.ORDER_NUMBER.finditer(text)]
        if not kept:
            continue
        assert redact.find_personal_data(text) == redact._find_all(text, None, kept), text
        skipped += redact._only_order_numbers(redact._mask(text, kept))
    assert skipped >= 8
    assert (
        redact.redact("commande CMD-123456, mon code RSSMRAURTMLARSNL") == "commande CMD-123456, mon code [NATIONAL_ID]"
    )
