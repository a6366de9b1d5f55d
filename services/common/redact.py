"""Personal-data redaction, applied before a message is stored or analysed.

Card numbers (Luhn-checked), IBANs (mod-97-checked), national identifiers with a check digit
(python-stdnum), e-mail addresses and phone numbers (the numbering plans of libphonenumber, through
`phonenumbers`) become typed placeholders; order numbers, amounts, dates, times, postal codes, masked
accounts and tracking numbers stay, because the bot's lookups need them. Pure functions, no state.

Phone numbers: international ones (+ or 00, then a country code) of any country; national ones in the
formats of the regions in RELAIS_PHONE_REGIONS (default DEFAULT_PHONE_REGIONS). A cheap regex finds runs
of digit groups; only runs with enough digits reach the library. `relais redact` pipes standard input
through `redact` so an operator can check the rules; `relais redact --rescan` applies them to what is
stored (relais.common.rescan).
"""

import json
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from stdnum.be import nn as be_national_number
from stdnum.ch import ssn as ch_avs_number
from stdnum.es import dni as es_dni, nie as es_nie
from stdnum.fr import nir as fr_nir
from stdnum.ie import pps as ie_pps
from stdnum.it import codicefiscale as it_codice_fiscale
from stdnum.us import ssn as us_ssn

from relais.common.config import setting
from relais.common.lookup_words import ORDER_NUMBER

PLACEHOLDERS = {
    "card": "[CARD]",
    "iban": "[IBAN]",
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "national_id": "[NATIONAL_ID]",
}
# On overlap the earlier kind wins: an identifier's mod-97 key is stronger evidence than a Luhn digit.
PRECEDENCE = ("iban", "national_id", "card", "email", "phone")

# Group separators: space, dash, and the no-break spaces French typography puts inside numbers.
SPACES = " \u00a0\u202f"
CARD_SEP = f"[{SPACES}-]"
PHONE_SEP = f"[{SPACES}./-]"

# Digit classes are [0-9], not \d: other scripts' digits are not card or phone numbers here.
DIGIT_RUN = re.compile(rf"(?<![0-9])[0-9]+(?:{CARD_SEP}[0-9]+)*")
DIGIT_GROUP = re.compile("[0-9]+")
CARD_IIN_FIRST_DIGITS = "23456"  # Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard, Discover

IBAN_LENGTHS = {
    "FR": 27,
    "DE": 22,
    "GB": 22,
    "ES": 24,
    "IT": 27,
    "BE": 16,
    "NL": 18,
    "CH": 21,
    "LU": 20,
    "PT": 25,
    "MC": 27,
}
IBAN_START = re.compile("[A-Za-z]{2}[0-9]{2}")  # two such matches never overlap, so finditer sees all
IBAN_BODY = re.compile(rf"[A-Za-z0-9](?:{CARD_SEP}?[A-Za-z0-9]){{0,33}}")
IBAN_SHAPE = re.compile("[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
ALNUM = re.compile("[A-Za-z0-9]")

# Dot-terminated domain labels keep the pattern free of catastrophic backtracking.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])")

# ------------------------------------------------------------------------------------------- phones
PHONE_REGIONS_VARIABLE = "RELAIS_PHONE_REGIONS"
DEFAULT_PHONE_REGIONS = ("FR", "BE", "CH", "LU", "GB", "IE", "US", "CA", "DE", "ES", "IT", "NL")


def phone_regions(environ=None) -> tuple[str, ...]:
    """The regions whose national formats are phone numbers: RELAIS_PHONE_REGIONS, comma-separated; ConfigError
    naming the variable and its form for a region libphonenumber does not know (checked at start-up too)."""
    return setting(PHONE_REGIONS_VARIABLE, DEFAULT_PHONE_REGIONS, environ)


_configured: tuple[str, tuple[str, ...]] = ("", DEFAULT_PHONE_REGIONS)


def configured_regions() -> tuple[str, ...]:
    """phone_regions() of the process's environment, parsed again only when the variable changes."""
    global _configured
    raw = os.environ.get(PHONE_REGIONS_VARIABLE, "")
    if raw != _configured[0]:
        _configured = (raw, phone_regions())
    return _configured[1]


# A run of digit groups, each after one separator, an opening bracket, or a closing one ("+33 (0)1 42 68 53 00").
# Every group is introduced by something, so the pattern is linear however long the run.
PHONE_RUN = re.compile(rf"\+?\(?[0-9]+\)?(?:(?:{PHONE_SEP}\(?|\(|(?<=\)))[0-9]+\)?)*")
PHONE_RUN_DIGITS = re.compile(r"[0-9](?:\D{0,3}[0-9]){5}")  # cheap pre-filter: 6 digits close together
DATE_SHAPE = re.compile(
    r"\(?(?:[0-9]{1,2}[./-][0-9]{1,2}[./-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}[./-][0-9]{1,2}[./-][0-9]{1,2})\)?"
)
NATIONAL_DIGITS = range(8, 16)  # fewer is a postal code or an amount; an E.164 number has at most 15
INTERNATIONAL_DIGITS = range(8, 16)  # country code included
NANPA_GROUPS = ((3, 3, 4), (1, 3, 3, 4))  # (415) 555-0132, 415-555-0132, 1 415 555 0132


@lru_cache(maxsize=4096)
def _national_phone(digits: str, groups: tuple[int, ...] | None, regions: tuple[str, ...]) -> bool:
    """A valid number of one of the regions, written as that region writes it nationally.

    A region with a trunk prefix ("0" in most of Europe) needs it: "2024000123" is no German number.
    North America (country code 1) needs its 3-3-4 grouping: a compact ten-digit reference stays. A
    region without a trunk prefix (ES, IT, LU) needs groups of 2 to 4 digits, or a compact number
    that is a mobile or fills a fixed-length plan: "402-1234567" stays though Luxembourg's plan allows it.
    `groups` None: any grouping (a field that holds a phone number by definition).
    """
    if len(digits) not in NATIONAL_DIGITS:
        return False
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            continue
        prefix = metadata.national_prefix
        if metadata.country_code == 1:
            if groups is not None and groups not in NANPA_GROUPS or len(digits) == 11 and digits[0] != "1":
                continue
        elif prefix:
            if not digits.startswith(prefix) or digits.startswith(prefix * 2):
                continue
        elif (
            groups is not None and len(groups) > 1 and not (len(groups) >= 3 and all(2 <= size <= 4 for size in groups))
        ):
            continue
        try:
            number = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number_for_region(number, region):
            continue
        if not prefix and metadata.country_code != 1 and groups is not None and len(groups) == 1:
            kind = phonenumbers.number_type(number)
            general = metadata.general_desc
            assert general is not None  # every region's metadata describes its plan
            if kind != phonenumbers.PhoneNumberType.MOBILE and len(general.possible_length) > 1:
                continue
        return True
    return False


@lru_cache(maxsize=4096)
def _international_phone(digits: str) -> int:
    """2 for a valid number of any country ("+" or "00" removed), 1 for one of a possible length, else 0.

    The + says it is a phone number, so a possible one is enough: a new range the library does not know yet,
    a number reserved for fiction, are still redacted."""
    if len(digits) not in INTERNATIONAL_DIGITS:
        return 0
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return 0
    country = number.country_code  # set by parse
    if country is None or phonenumbers.region_code_for_country_code(country) == phonenumbers.UNKNOWN_REGION:
        return 0
    return 2 if phonenumbers.is_valid_number(number) else 1 if phonenumbers.is_possible_number(number) else 0


def is_phone_number(written: str, regions: tuple[str, ...] | None = None, *, any_grouping: bool = False) -> bool:
    """Whether `written` ("+44 20 7946 0958", "(415) 555-0132") is one phone number by the redaction rules.

    `any_grouping` accepts a national number however its digits are grouped: for a field that holds a phone
    number by definition (data.customer.phone), not for free text."""
    written = written.strip()
    digits = "".join(DIGIT_GROUP.findall(written))
    if written.startswith("+") or digits.startswith("00"):
        return bool(_international_phone(digits[2:] if not written.startswith("+") else digits))
    groups = None if any_grouping else tuple(len(g) for g in DIGIT_GROUP.findall(written))
    return _national_phone(digits, groups, regions or configured_regions())


def _phone_ends(text: str, run: re.Match, groups: list[re.Match], first: int, regions) -> list[tuple[int, int]]:
    """(last group, score) of each phone number starting at group `first`: score 2 for a valid number, 1 for an
    international one of a possible length only."""
    international = first == 0 and run.group().startswith("+") or groups[first].group().startswith("00")
    ends, digits = [], ""
    for last in range(first, len(groups)):
        digits += groups[last].group()
        if len(digits) > 17:
            break
        if len(digits) < NATIONAL_DIGITS.start or DATE_SHAPE.fullmatch(text, groups[first].start(), groups[last].end()):
            continue
        if international:
            score = _international_phone(digits[2:] if digits.startswith("00") else digits)
        else:
            score = 2 * _national_phone(digits, tuple(len(g.group()) for g in groups[first : last + 1]), regions)
        if score:
            ends.append((last, score))
    return ends


def _phones_in_run(text: str, run: re.Match, groups: list[re.Match], regions) -> list[tuple[int, int]]:
    """(first, last) groups of the numbers of a run: one starts the run, each next one follows the previous
    ("06 12 34 56 78 06 98 76 54 32"). Where plans allow several lengths (a German number may have 14
    digits), the split covering the most digits wins, then valid over possible, then the longer first number."""
    # From the last group back to the first: best[first] is the best split of groups[first:].
    best: list[tuple[tuple[int, int], int | None]] = [((0, 0), None)] * (len(groups) + 1)
    for first in range(len(groups) - 1, -1, -1):
        options: list[tuple[tuple[int, int], int | None, int]] = [((0, 0), None, 0)]
        for last, score in _phone_ends(text, run, groups, first, regions):
            covered, scores = best[last + 1][0]
            digits = sum(len(g.group()) for g in groups[first : last + 1])
            options.append(((covered + digits, scores + score), last, last))
        value, end, _ = max(options, key=lambda option: (option[0], option[2]))
        best[first] = (value, end)
    phones, first = [], 0
    while first < len(groups) and (end := best[first][1]) is not None:
        phones.append((first, end))
        first = end + 1
    return phones


def _phone_spans(text: str, regions=None):
    regions = regions or configured_regions()
    for run in PHONE_RUN.finditer(text):
        start = run.start()
        # Not inside a word or continuing a number ("1,0612345678", "12/0612345678", "ab0612345678").
        if start and (
            text[start - 1].isalnum()
            or text[start - 1] in "_+"
            or start > 1
            and text[start - 1] in ".,/-"
            and text[start - 2].isdigit()
        ):
            continue
        if run.end() - start < NATIONAL_DIGITS.start or not PHONE_RUN_DIGITS.search(run.group()):
            continue
        groups = list(DIGIT_GROUP.finditer(text, start, run.end()))
        for first, last in _phones_in_run(text, run, groups, regions):
            span_start = run.start() if first == 0 and run.group().startswith("+") else groups[first].start()
            # An area code in brackets ("(415) 555-0132") is part of the number; brackets around it stay.
            if text[span_start - 1 : span_start] == "(" and text[groups[first].end() : groups[first].end() + 1] == ")":
                span_start -= 1
            span_end = groups[last].end()
            if text[span_end : span_end + 1] == ")" and text[span_start:span_end].count("(") > text[
                span_start:span_end
            ].count(")"):
                span_end += 1
            yield span_start, span_end


# --------------------------------------------------------------------------- national identifiers
# Each shape is checked by python-stdnum; only identifiers whose check digit or letter keeps a random run of
# digits from passing are here. GB's National Insurance number, Dutch BSN and German tax ID are not (no check
# digit, or one a tenth of random numbers pass).
ID_SEP = f"[{SPACES}.-]"
NATIONAL_IDS = [
    # FR NIR (sécurité sociale) with its key: 1 85 07 75 116 001 91, 185077511600191; Corsica 2A/2B.
    (
        re.compile(
            rf"[1-478]{ID_SEP}?[0-9]{{2}}{ID_SEP}?[0-9]{{2}}{ID_SEP}?(?:[0-9]{{2}}|2[ABab]){ID_SEP}?"
            rf"[0-9]{{3}}{ID_SEP}?[0-9]{{3}}{ID_SEP}?[0-9]{{2}}"
        ),
        fr_nir.is_valid,
    ),
    # BE national register number: 85.07.30-033.28, 85073003328.
    (re.compile(rf"[0-9]{{2}}\.?[0-9]{{2}}\.?[0-9]{{2}}{ID_SEP}?[0-9]{{3}}\.?[0-9]{{2}}"), be_national_number.is_valid),
    # CH AVS/AHV number: 756.1234.5678.97.
    (re.compile(rf"756{ID_SEP}?[0-9]{{4}}{ID_SEP}?[0-9]{{4}}{ID_SEP}?[0-9]{{2}}"), ch_avs_number.is_valid),
    # ES DNI and NIE with their check letter: 12345678Z, X1234567L.
    (re.compile("[0-9]{8}-?[A-Z]|[XYZ]-?[0-9]{7}-?[A-Z]"), lambda v: es_dni.is_valid(v) or es_nie.is_valid(v)),
    # IT codice fiscale: RSSMRA85T10A562S (digits may be letters for homonyms).
    (
        re.compile("[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]", re.IGNORECASE),
        lambda v: it_codice_fiscale.is_valid(v.upper()),
    ),
    # IE PPS number with its check letter: 1234567T, 1234567FA.
    (re.compile("[0-9]{7}[A-W][ABWH]?"), ie_pps.is_valid),
    # US SSN, written with its dashes only (no check digit: the shape and the SSA's rules stand in): 536-90-4399.
    (re.compile("[0-9]{3}-[0-9]{2}-[0-9]{4}"), us_ssn.is_valid),
]
WORD_CHAR = re.compile(r"\w")


def _national_id_spans(text: str):
    spans: list[tuple[int, int]] = []
    for pattern, valid in NATIONAL_IDS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if start and WORD_CHAR.match(text[start - 1]) or WORD_CHAR.match(text[end : end + 1]):
                continue  # a whole identifier, not a piece of a longer word or number
            if any(s < end and start < e for s, e in spans):
                continue
            try:
                if valid(match.group()):
                    spans.append((start, end))
            except Exception:  # a library's own edge case is not an identifier
                continue
    return spans


# Order numbers (as the bot's lookups read them) are never personal data, even when their digits look like a
# phone or a card number ("CMD-0612345678").

MASK = "\x00"  # stands in for a placeholder while detecting: matched by no pattern, like "[" and "]"


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int  # span in the original text
    end: int


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Shape, the country's length where known, and the ISO 13616 mod-97 check."""
    iban = re.sub(CARD_SEP, "", iban).upper()
    if not IBAN_SHAPE.fullmatch(iban) or len(iban) != IBAN_LENGTHS.get(iban[:2], len(iban)):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _iban_spans(text: str):
    resume = 0
    for start in IBAN_START.finditer(text):
        # Starts a word, or right where the previous IBAN ended (as if it were already masked).
        if start.start() < resume or start.start() > resume and ALNUM.match(text[start.start() - 1]):
            continue
        body = IBAN_BODY.match(text, start.start())
        assert body is not None  # it matches wherever IBAN_START does
        ends = [body.start() + i + 1 for i, char in enumerate(body.group()) if ALNUM.match(char)]
        chars = "".join(char for char in body.group() if ALNUM.match(char)).upper()
        lengths = [IBAN_LENGTHS[chars[:2]]] if chars[:2] in IBAN_LENGTHS else range(34, 14, -1)
        for length in lengths:
            # Never cut through a run of letters and digits: "…189 merci" ends at the space.
            if (
                length <= len(ends)
                and not ALNUM.match(text[ends[length - 1] : ends[length - 1] + 1])
                and iban_valid(chars[:length])
            ):
                yield start.start(), ends[length - 1]
                resume = ends[length - 1]
                break


def _card_end(text: str, groups: list[tuple[int, int]], first: int) -> int | None:
    """Index of the last group of the longest card starting at group `first`, if any."""
    best, digits = None, ""
    for last in range(first, len(groups)):
        group = text[slice(*groups[last])]
        # Printed cards group 3-6 digits (4-4-4-4, 4-6-5, 4-6-4); a long group stands alone.
        if last > first and not all(3 <= len(g) <= 6 for g in (group, text[slice(*groups[first])])):
            break
        digits += group
        if len(digits) > 19:
            break
        if len(digits) >= 13 and digits[0] in CARD_IIN_FIRST_DIGITS and luhn_valid(digits):
            best = last
    return best


def _card_spans(text: str):
    for run in DIGIT_RUN.finditer(text):
        groups = [(run.start() + g.start(), run.start() + g.end()) for g in DIGIT_GROUP.finditer(run.group())]
        first = 0
        while first < len(groups):
            last = _card_end(text, groups, first)
            if last is None:
                first += 1
            else:
                yield groups[first][0], groups[last][1]
                first = last + 1


def _chained_spans(pattern: re.Pattern, text: str, accept=lambda match: True):
    """Matches of `pattern`; after each, the search goes on in the rest of the text only, so the
    lookbehinds see the match as masked and a list ("06 12 34 56 78 06 98 76 54 32") needs one pass."""
    offset, rest, position = 0, text, 0
    while match := pattern.search(rest, position):
        if accept(match):
            yield offset + match.start(), offset + match.end()
            offset += match.end()
            rest, position = text[offset:], 0
        else:
            position = match.start() + 1


def _email_spans(text: str):
    return _chained_spans(EMAIL, text)


ANY_DIGIT_OR_AT = re.compile("[0-9@]")
DETECTORS = {
    "iban": _iban_spans,
    "national_id": _national_id_spans,
    "card": _card_spans,
    "email": _email_spans,
    "phone": _phone_spans,
}


def find_personal_data(text: str, regions: tuple[str, ...] | None = None) -> list[Finding]:
    """Non-overlapping findings sorted by position; `regions` default to RELAIS_PHONE_REGIONS.

    Each kind is searched on the text with the spans already found masked out, and the rounds
    repeat until nothing new turns up, so redacting the output again finds nothing more.
    """
    if not ANY_DIGIT_OR_AT.search(text):
        return []  # most messages: nothing any detector could find
    kept = [Finding("order", m.start(), m.end()) for m in ORDER_NUMBER.finditer(text)]
    if kept and _only_order_numbers(_mask(text, kept)):
        return []
    return _find_all(text, regions, kept)


def _only_order_numbers(masked: str) -> bool:
    """Whether a text whose order numbers are masked holds nothing to redact, known cheaply: with no digit and no @
    left, only an identifier written in letters (an Italian codice fiscale may be) could be found."""
    return not ANY_DIGIT_OR_AT.search(masked) and not _national_id_spans(masked)


def _find_all(text: str, regions: tuple[str, ...] | None, kept: list[Finding]) -> list[Finding]:
    detectors = DETECTORS | {"phone": lambda masked: _phone_spans(masked, regions)}
    findings: list[Finding] = []
    while True:
        found_in_round: list[tuple[int, int]] = []
        for kind in PRECEDENCE:
            spans = list(detectors[kind](_mask(text, kept + findings)))
            findings += [Finding(kind, start, end) for start, end in spans]
            found_in_round += spans
        # Masking a finding can reveal another (a card glued to an IBAN) only through the characters next to it.
        if all(_stands_alone(text, *span) for span in found_in_round):
            break
    return sorted(findings, key=lambda finding: finding.start)


SPACE = re.compile(r"\s")
CLOSING = frozenset(".,;:!?)]}»\"'")
OPENING = frozenset("([{«\"'")


def _stands_alone(text: str, start: int, end: int) -> bool:
    """Between spaces (or the ends of the text), a closing mark and a space after it, an opening mark and a space
    before it: no detector looks further, so masking it reveals nothing."""

    def edge(index: int, marks: frozenset, step: int) -> bool:
        if not 0 <= index < len(text) or SPACE.match(text[index]):
            return True
        return text[index] in marks and (not 0 <= index + step < len(text) or bool(SPACE.match(text[index + step])))

    return edge(start - 1, OPENING, -1) and edge(end, CLOSING, 1)


def _mask(text: str, findings: list[Finding]) -> str:
    if not findings:
        return text
    chars = list(text)
    for finding in findings:
        chars[finding.start : finding.end] = MASK * (finding.end - finding.start)
    return "".join(chars)


def redact_counts(text: str, regions: tuple[str, ...] | None = None) -> tuple[str, dict[str, int]]:
    parts, counts, copied_to = [], dict.fromkeys(PLACEHOLDERS, 0), 0
    for finding in find_personal_data(text, regions):
        parts += [text[copied_to : finding.start], PLACEHOLDERS[finding.kind]]
        counts[finding.kind] += 1
        copied_to = finding.end
    parts.append(text[copied_to:])
    return "".join(parts), counts


def redact(text: str, regions: tuple[str, ...] | None = None) -> str:
    return redact_counts(text, regions)[0]


def add_parser(subparsers) -> None:
    command = subparsers.add_parser(
        "redact", help="redact personal data from standard input to standard output; --rescan: what is stored"
    )
    command.add_argument("--stats", action="store_true", help="print the count per kind on standard error (JSON)")
    command.add_argument(
        "--rescan",
        action="store_true",
        help="apply the current rules to the texts already stored (relais.common.rescan); prints JSON",
    )
    command.add_argument(
        "--dry-run", action="store_true", help="with --rescan: count what would change, change nothing"
    )
    command.add_argument(
        "--batch-rows", type=int, default=500, help="with --rescan: rows per transaction (default 500)"
    )
    command.add_argument("--endpoints", help="endpoints.env written by `make up` (default .relais/endpoints.env)")
    command.set_defaults(func=redact_cli)


def redact_cli(args) -> int:
    if getattr(args, "dry_run", False) and not getattr(args, "rescan", False):
        print("relais redact: error: --dry-run goes with --rescan", file=sys.stderr)
        return 2
    totals = dict.fromkeys(PLACEHOLDERS, 0)
    # Line by line: output follows input interactively, and no pattern crosses a newline.
    for line in sys.stdin:
        redacted, counts = redact_counts(line)
        sys.stdout.write(redacted)
        sys.stdout.flush()
        totals = {kind: totals[kind] + counts[kind] for kind in totals}
    if getattr(args, "stats", False):
        print(json.dumps(totals), file=sys.stderr)
    return 0
