"""Personal-data redaction: the corpus of customer messages, the checksums, properties, the CLI."""

import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from relais.common.config import ConfigError
from relais.common.redact import (
    DEFAULT_PHONE_REGIONS,
    PLACEHOLDERS,
    Finding,
    add_parser,
    find_personal_data,
    iban_valid,
    is_phone_number,
    luhn_valid,
    phone_regions,
    redact,
    redact_cli,
    redact_counts,
)

CORPUS = list(csv.DictReader((Path(__file__).parent / "redaction_corpus.csv").open(encoding="utf-8", newline="")))
NEAR_MISSES = [row for row in CORPUS if row["text"] == row["expected"]]


def test_corpus_size():
    assert len(CORPUS) >= 135
    assert len(NEAR_MISSES) >= 40


@pytest.mark.parametrize("row", CORPUS, ids=[row["text"][:40] for row in CORPUS])
def test_corpus(row):
    assert redact(row["text"]) == row["expected"]


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "79927398713",
        "6011111111111117",
        "30569309025904",
        "4222222222222",
    ],
)
def test_luhn_known_valid(number):
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4111111111111112", "5555555555554443", "378282246310006", "79927398710", "1234567890123456"]
)
def test_luhn_known_invalid(number):
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "iban",
    [
        "FR76 3000 6000 0112 3456 7890 189",
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "gb82west12345698765432",
        "BE68 5390 0754 7034",
        "NO93 8601 1117 947",
        "FR14 2004 1010 0505 0001 3M02 606",
    ],
)
def test_iban_known_valid(iban):
    assert iban_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "FR76 3000 6000 0112 3456 7890 188",  # check digits do not match
        "DE89 3704 0044 0532 0130 01",
        "GB82 WEST 1234 5698 7654 33",
        "FR76 3000 6000 0112 3456 7890 18",  # one character short for FR
        "DE89370400440532013000 0",  # 23 characters: too long for DE
        "XX",
    ],
)
def test_iban_known_invalid(iban):
    assert not iban_valid(iban)


def test_findings_are_spans_in_the_original_text():
    text = "carte 4111 1111 1111 1111, mail a@b.fr, tel 06 12 34 56 78, IBAN DE89 3704 0044 0532 0130 00"
    findings = find_personal_data(text)
    assert [finding.kind for finding in findings] == ["card", "email", "phone", "iban"]
    assert text[findings[0].start : findings[0].end] == "4111 1111 1111 1111"
    assert text[findings[3].start : findings[3].end] == "DE89 3704 0044 0532 0130 00"
    assert findings[0] == Finding("card", 6, 25)


def test_iban_wins_over_the_card_and_phone_numbers_inside_it():
    # The digits of this IBAN hold a French phone-shaped "0112 3456 78…"; the IBAN is one finding.
    assert find_personal_data("FR76 3000 6000 0112 3456 7890 189") == [Finding("iban", 0, 33)]


def test_counts():
    text = "4111111111111111 / 5555 5555 5555 4444 / a@b.fr / 0612345678 / FR7630006000011234567890189"
    redacted, counts = redact_counts(text)
    assert redacted == "[CARD] / [CARD] / [EMAIL] / [PHONE] / [IBAN]"
    assert counts == {"card": 2, "iban": 1, "email": 1, "phone": 1, "national_id": 0}
    assert redact_counts("rien à signaler")[1] == dict.fromkeys(PLACEHOLDERS, 0)


def test_card_glued_to_an_iban_both_go():
    # Found on the masked text in a second round, so redacting the output again changes nothing.
    assert redact("4111111111111111FR7630006000011234567890189") == "[CARD][IBAN]"


# Property tests: arbitrary text mixed with fragments that look like, or are, personal data.
FRAGMENTS = st.sampled_from(
    [
        "4111 1111 1111 1111",
        "5555555555554444",
        "3782 822463 10005",
        "FR76 3000 6000 0112 3456 7890 189",
        "GB82WEST12345698765432",
        "jean.dupont@example.fr",
        "a@b.co",
        "@",
        ".",
        "+33 6 12 34 56 78",
        "06 12 34 56 78",
        "0033",
        "+",
        "+1 (415) 555-2671",
        "(0)",
        " ",
        "\u00a0",
        "\u202f",
        "-",
        "/",
        "\n",
        "[CARD]",
        "0",
        "4",
        "12",
        "FR76",
        "****1234",
        "1 250,00 €",
        "é",
        "020 7946 0958",
        "(415) 555-0132",
        "415-555-0132",
        "1 85 07 75 116 001 91",
        "185077511600191",
        "12/03/2026",
        "CMD-0612345678",
        "RSSMRA85T10A562S",
        "12345678Z",
        "(",
        ")",
    ]
)


@st.composite
def luhn_valid_numbers(draw):
    body = draw(st.text("0123456789", min_size=12, max_size=18))
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


MESSAGES = st.lists(st.one_of(st.text(max_size=20), FRAGMENTS, luhn_valid_numbers()), max_size=12).map("".join)
DIGIT_RUN = re.compile("[0-9]+")


def plausible_card_runs(text: str) -> list[str]:
    return [run for run in DIGIT_RUN.findall(text) if 13 <= len(run) <= 19 and run[0] in "23456" and luhn_valid(run)]


@settings(max_examples=300, deadline=None)
@given(MESSAGES)
def test_no_card_number_survives(text):
    assert plausible_card_runs(redact(text)) == []


@settings(max_examples=300, deadline=None)
@given(MESSAGES)
def test_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_and_findings_do_not_overlap(text):
    findings = find_personal_data(text)
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:]))
    assert all(0 <= f.start < f.end <= len(text) for f in findings)


def run_cli(monkeypatch, argv: list[str], stdin: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="relais")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    return redact_cli(args), out.getvalue(), err.getvalue()


def test_cli_streams_stdin_to_stdout(monkeypatch):
    stdin = "ma carte 4111 1111 1111 1111\n\ncommande 123456789, tel 06 12 34 56 78\nsans fin de ligne a@b.fr"
    code, out, err = run_cli(monkeypatch, ["redact"], stdin)
    assert code == 0
    assert out == "ma carte [CARD]\n\ncommande 123456789, tel [PHONE]\nsans fin de ligne [EMAIL]"
    assert err == ""


def test_cli_stats_on_stderr(monkeypatch):
    code, out, err = run_cli(monkeypatch, ["redact", "--stats"], "IBAN DE89 3704 0044 0532 0130 00\n0612345678\n")
    assert (code, out) == (0, "IBAN [IBAN]\n[PHONE]\n")
    assert json.loads(err) == {"card": 0, "iban": 1, "email": 0, "phone": 1, "national_id": 0}


def test_lists_of_the_same_kind():
    text = "06 12 34 56 78 06 98 76 54 32 ; a@b.fr.c@d.fr ; FR7630006000011234567890189 DE89370400440532013000"
    assert redact(text) == "[PHONE] [PHONE] ; [EMAIL][EMAIL] ; [IBAN] [IBAN]"


@pytest.mark.timeout(10)  # a pattern that backtracks takes minutes on these, not the fraction of a second measured
@pytest.mark.parametrize(
    "text, placeholder",
    [
        ("06 " * 20000, "[PHONE]"),
        ("06 12 34 56 78 " * 4000, "[PHONE]"),
        ("a@b.fr." * 8000, "[EMAIL]"),
        ("a" * 50000 + "@b", None),  # near-misses: kept as written
        ("+1 " * 20000, None),
        ("FR76 " * 10000, None),
        ("4111 " * 10000, None),
    ],
)
def test_long_adversarial_input_stays_linear(text, placeholder):
    started = time.perf_counter()
    redacted = redact(text)
    print(f"\nfigures: redact {len(text)} characters ({text[:8]!r}...) in {time.perf_counter() - started:.3f} s")
    if placeholder is None:
        assert redacted == text
    else:
        assert placeholder in redacted and not re.search(r"[0-9@]", redacted.replace(placeholder, ""))


# ----------------------------------------------------------------------------- phones, by region
def test_the_default_regions_and_the_setting():
    assert {"FR", "BE", "CH", "LU", "GB", "IE", "US", "CA", "DE", "ES", "IT", "NL"} <= set(DEFAULT_PHONE_REGIONS)
    assert phone_regions({}) == DEFAULT_PHONE_REGIONS == phone_regions({"RELAIS_PHONE_REGIONS": " "})
    assert phone_regions({"RELAIS_PHONE_REGIONS": "fr, gb,FR"}) == ("FR", "GB")


@pytest.mark.parametrize("value", ["France", "FR;GB", "FR,,GB", "UK", "FR,XX"])
def test_a_bad_region_setting_names_the_variable_and_the_expected_form(value):
    with pytest.raises(ConfigError, match=r"^RELAIS_PHONE_REGIONS: expected comma-separated ISO 3166 region codes"):
        phone_regions({"RELAIS_PHONE_REGIONS": value})


def test_a_bad_region_setting_is_one_line_at_start_up_and_in_the_cli():
    from relais.common.config import check_environment

    with pytest.raises(ConfigError, match="RELAIS_PHONE_REGIONS: expected .*got 'France'"):
        check_environment({"RELAIS_PHONE_REGIONS": "France"})
    env = os.environ | {"RELAIS_PHONE_REGIONS": "France"}
    done = subprocess.run(
        [sys.executable, "-m", "relais.cli", "redact"],
        input="06 12 34 56 78\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "relais redact: error: RELAIS_PHONE_REGIONS: expected comma-separated ISO 3166 region codes, e.g. FR,BE,GB,US,"
        " got 'France'"
    ]


def test_the_process_setting_is_read_again_when_it_changes(monkeypatch):
    monkeypatch.setenv("RELAIS_PHONE_REGIONS", "US")
    assert redact("06 12 34 56 78 / (415) 555-0132") == "06 12 34 56 78 / [PHONE]"
    monkeypatch.setenv("RELAIS_PHONE_REGIONS", "FR")
    assert redact("06 12 34 56 78 / (415) 555-0132") == "[PHONE] / (415) 555-0132"


def test_national_formats_are_the_served_regions_only():
    text = "(415) 555-0132 / 020 7946 0958 / 06 12 34 56 78 / +1 415 555 0132 / +44 20 7946 0958"
    assert redact(text, ("FR",)) == "(415) 555-0132 / 020 7946 0958 / [PHONE] / [PHONE] / [PHONE]"
    assert redact(text, ("US", "GB")) == "[PHONE] / [PHONE] / 06 12 34 56 78 / [PHONE] / [PHONE]"
    assert redact(text) == "[PHONE] / [PHONE] / [PHONE] / [PHONE] / [PHONE]"


@pytest.mark.parametrize(
    "written",
    [
        "+44 20 7946 0958",
        "0044 20 7946 0958",
        "+44 7700 900123",
        "(415) 555-0132",
        "415-555-0132",
        "06 12 34 56 78",
        "+33 (0)1 42 68 53 00",
        "0151 23456789",
    ],
)
def test_is_phone_number(written):
    assert is_phone_number(written)


@pytest.mark.parametrize(
    "written",
    [
        "4155550132",
        "2024000123",
        "75008",
        "12/03/2026",
        "+1 250",
        "0000000000",
        "402-1234567",
        "12345678901",
        "+999 1234 5678",
    ],
)
def test_is_not_a_phone_number_in_free_text(written):
    assert not is_phone_number(written)


def test_a_phone_field_takes_any_grouping_but_still_a_valid_number():
    assert is_phone_number("4155550132", any_grouping=True) and is_phone_number("2612 3456", any_grouping=True)
    assert not is_phone_number("0000000000", any_grouping=True) and not is_phone_number("12345", any_grouping=True)


def test_phones_in_a_list_split_where_both_are_numbers():
    # 06 12 34 56 78 06 98 would be a valid German number: the split covering both wins.
    assert redact("06 12 34 56 78 06 98 76 54 32") == "[PHONE] [PHONE]"
    assert redact("+33 6 12 34 56 78 06 98 76 54 32") == "[PHONE] [PHONE]"
    assert redact("0151 23456789 0151 23456788") == "[PHONE] [PHONE]"


# ---------------------------------------------------------------------------- national identifiers
@pytest.mark.parametrize(
    "valid,wrong_key",
    [
        ("1 85 07 75 116 001 91", "1 85 07 75 116 001 92"),
        ("185077511600191", "185077511600192"),
        ("85.07.30-033.28", "85.07.30-033.29"),
        ("12345678Z", "12345678Y"),
        ("X1234567L", "X1234567K"),
        ("RSSMRA85T10A562S", "RSSMRA85T10A562T"),
        ("756.1234.5678.97", "756.1234.5678.98"),
        ("1234567T", "1234567U"),
        ("536-90-4399", "000-90-4399"),
    ],
)
def test_a_national_identifier_is_redacted_only_with_its_check(valid, wrong_key):
    assert redact(f"id {valid} ok") == "id [NATIONAL_ID] ok"
    assert [f.kind for f in find_personal_data(f"id {wrong_key} ok")] in ([], ["phone"])


def test_an_identifier_glued_to_a_word_is_not_one():
    assert redact("ref X185077511600191") == "ref X185077511600191"


# ------------------------------------------------------------------------- rescan, without a database
def test_the_rescan_covers_every_table_retention_purges_or_says_why_not():
    from relais.common import rescan

    assert rescan.check_coverage() == []
    assert set(rescan.NOT_RESCANNED) == {"conversations"}


def test_the_rescan_redacts_customer_texts_in_stored_messages_and_leaves_the_rest():
    from relais.common import topics
    from relais.common.pb import conversation_pb2 as pb
    from relais.common.rescan import Column, Redactor

    context = pb.ConversationContext(
        turns=[pb.Turn(text="call 020 7946 0958"), pb.Turn(text="merci")],
        bot_attempts=[pb.BotAttempt(reply_text="our number: 01 42 68 53 00")],
    )
    redactor = Redactor(("GB", "FR"))
    new = pb.ConversationContext.FromString(
        redactor.value(Column("context", "context"), {"context": context.SerializeToString()})
    )
    assert [t.text for t in new.turns] == ["call [PHONE]", "merci"]
    assert new.bot_attempts[0].reply_text == "our number: 01 42 68 53 00"  # the company's words stay
    assert redactor.value(Column("context", "context"), {"context": new.SerializeToString()}) is None  # once
    outcome = pb.Outcome(survey_comment="NIR 1 85 07 75 116 001 91").SerializeToString()
    redacted = redactor.value(Column("value", "outbox"), {"value": outcome, "topic": topics.OUTCOMES})
    assert pb.Outcome.FromString(redacted).survey_comment == "NIR [NATIONAL_ID]"
    assert (
        redactor.value(Column("value", "outbox"), {"value": b'{"text": "020 7946 0958"}', "topic": topics.REPLIES})
        is None
    )
    assert (
        redactor.value(Column("value", "outbox"), {"value": b"\xff\xff", "topic": topics.TURNS}) is None
    )  # unreadable
    assert redactor.value(Column("text"), {"text": "(415) 555-0132"}) is None  # US is not served here
    assert redactor.placeholders == {"card": 0, "iban": 0, "email": 0, "phone": 1, "national_id": 1}
