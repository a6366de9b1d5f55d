"""Personal-data redaction, applied before a message is stored or analysed.

Card numbers (Luhn-checked), IBANs (mod-97-checked), e-mail addresses and phone numbers become
typed placeholders; order numbers, amounts, dates, times, postal codes, masked accounts and
tracking numbers stay, because the bot's lookups need them. Pure functions, no state.
`relais redact` pipes standard input through `redact` so an operator can check the rules.
"""

import json
import re
import sys
from dataclasses import dataclass

PLACEHOLDERS = {"card": "[CARD]", "iban": "[IBAN]", "email": "[EMAIL]", "phone": "[PHONE]"}
PRECEDENCE = ("iban", "card", "email", "phone")  # on overlap the earlier kind wins

# Group separators: space, dash, and the no-break spaces French typography puts inside numbers.
SPACES = " \u00a0\u202f"
CARD_SEP = f"[{SPACES}-]"
PHONE_SEP = f"[{SPACES}.-]"

# Digit classes are [0-9], not \d: other scripts' digits are not card or phone numbers here.
DIGIT_RUN = re.compile(rf"(?<![0-9])[0-9]+(?:{CARD_SEP}[0-9]+)*")
DIGIT_GROUP = re.compile("[0-9]+")
CARD_IIN_FIRST_DIGITS = "23456"  # Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard, Discover

IBAN_LENGTHS = {"FR": 27, "DE": 22, "GB": 22, "ES": 24, "IT": 27, "BE": 16, "NL": 18, "CH": 21,
                "LU": 20, "PT": 25, "MC": 27}
IBAN_START = re.compile("[A-Za-z]{2}[0-9]{2}")  # two such matches never overlap, so finditer sees all
IBAN_BODY = re.compile(rf"[A-Za-z0-9](?:{CARD_SEP}?[A-Za-z0-9]){{0,33}}")
IBAN_SHAPE = re.compile("[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
ALNUM = re.compile("[A-Za-z0-9]")

# Dot-terminated domain labels keep the pattern free of catastrophic backtracking.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])")

FR_PAIRS = rf"(?:{PHONE_SEP}?[0-9]{{2}}){{4}}(?![0-9])"
FR_NATIONAL = rf"0[1-9]{FR_PAIRS}"
# +33 6…, +33 (0)6…, 0033 6…, and the common slip +33 06….
FR_INTERNATIONAL = rf"(?:\+|00)33{PHONE_SEP}?(?:\(0\)|0)?{PHONE_SEP}?[1-9]{FR_PAIRS}"
# E.164-style: + or 00, then single digits or a bracketed area code, each after an optional separator.
INTERNATIONAL = rf"(?:\+|00)[1-9](?:{PHONE_SEP}?(?:\([0-9]{{1,4}}\)|[0-9])){{6,16}}(?![0-9])"
# Not inside a word or continuing a number ("1.0612345678", "12/0612345678", "…3704 0044 0532 01").
PHONE = re.compile(rf"(?<![\w+])(?<![0-9][.,/-])(?<![0-9]{{2}}[{SPACES}])(?:{FR_INTERNATIONAL}|{FR_NATIONAL}|{INTERNATIONAL})")
E164_DIGITS = range(8, 16)

# Order numbers as the bot's lookups read them (relais.bot.answers.ORDER_ID): never personal data, even
# when their digits look like a phone or a card number ("CMD-0612345678").
ORDER_NUMBER = re.compile(r"\b(?:CMD|ORD)[-\s]?[0-9]{4,10}\b", re.IGNORECASE)

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
        ends = [body.start() + i + 1 for i, char in enumerate(body.group()) if ALNUM.match(char)]
        chars = "".join(char for char in body.group() if ALNUM.match(char)).upper()
        lengths = [IBAN_LENGTHS[chars[:2]]] if chars[:2] in IBAN_LENGTHS else range(34, 14, -1)
        for length in lengths:
            # Never cut through a run of letters and digits: "…189 merci" ends at the space.
            if length <= len(ends) and not ALNUM.match(text[ends[length - 1]:ends[length - 1] + 1]) \
                    and iban_valid(chars[:length]):
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


def _plausible_phone_length(match: re.Match) -> bool:
    digits = re.sub("[^0-9]", "", match.group())
    return len(digits.removeprefix("00") if match.group().startswith("00") else digits) in E164_DIGITS


def _phone_spans(text: str):
    return _chained_spans(PHONE, text, _plausible_phone_length)


DETECTORS = {"iban": _iban_spans, "card": _card_spans, "email": _email_spans, "phone": _phone_spans}


def find_personal_data(text: str) -> list[Finding]:
    """Non-overlapping findings sorted by position.

    Each kind is searched on the text with the spans already found masked out, and the rounds
    repeat until nothing new turns up, so redacting the output again finds nothing more.
    """
    findings: list[Finding] = []
    kept = [Finding("order", m.start(), m.end()) for m in ORDER_NUMBER.finditer(text)]
    found_in_round = True
    while found_in_round:
        found_in_round = False
        for kind in PRECEDENCE:
            spans = list(DETECTORS[kind](_mask(text, kept + findings)))
            findings += [Finding(kind, start, end) for start, end in spans]
            found_in_round = found_in_round or bool(spans)
    return sorted(findings, key=lambda finding: finding.start)


def _mask(text: str, findings: list[Finding]) -> str:
    if not findings:
        return text
    chars = list(text)
    for finding in findings:
        chars[finding.start:finding.end] = MASK * (finding.end - finding.start)
    return "".join(chars)


def redact_counts(text: str) -> tuple[str, dict[str, int]]:
    parts, counts, copied_to = [], dict.fromkeys(PLACEHOLDERS, 0), 0
    for finding in find_personal_data(text):
        parts += [text[copied_to:finding.start], PLACEHOLDERS[finding.kind]]
        counts[finding.kind] += 1
        copied_to = finding.end
    parts.append(text[copied_to:])
    return "".join(parts), counts


def redact(text: str) -> str:
    return redact_counts(text)[0]


def add_parser(subparsers) -> None:
    command = subparsers.add_parser("redact", help="redact personal data from standard input to standard output")
    command.add_argument("--stats", action="store_true", help="print the count per kind on standard error (JSON)")
    command.set_defaults(func=redact_cli)


def redact_cli(args) -> int:
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
