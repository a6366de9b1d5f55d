"""The use-case catalogue: the shipped file, and what validation reports for a broken one."""

import hashlib
import re
from pathlib import Path

import pytest

from relais.classifier.catalogue import (
    BOT_ANSWERED_LOOKUPS,
    DEFAULT_CATALOGUE_PATH,
    HUMAN_INTENT,
    KNOWN_LOOKUPS,
    KNOWN_SKILLS,
    MAX_PRIORITY,
    CatalogueError,
    load_catalogue,
)
from relais.classifier.domain import classify
from relais.classifier.model import IntentModel
from relais.common.language import LanguageGuess, guess_language

ORIGINAL_INTENTS = {
    "opening_hours",
    "order_status",
    "account_balance",
    "store_locator",
    "delivery_problem",
    "return_refund",
    "lost_or_stolen_card",
    "card_not_arrived",
    "disputed_payment",
    "complaint",
    "cancellation",
    "speak_to_advisor",
}
FOR_PEOPLE = {
    "complaint",
    "disputed_payment",
    "lost_or_stolen_card",
    "cancellation",
    "speak_to_advisor",
    "close_account",
}
MIN_EXAMPLES = 20


# ------------------------------------------------------------------------------- the shipped file


def test_catalogue_loads_with_every_intent_in_both_languages(catalogue):
    assert catalogue.version == "2026.12.1"
    assert catalogue.languages == ("fr", "en")
    assert 0 < catalogue.default_threshold < 1
    assert len(catalogue) >= 25
    assert ORIGINAL_INTENTS <= set(catalogue.intents)
    for intent in catalogue:
        for lang in ("fr", "en"):
            assert len(intent.examples[lang]) >= MIN_EXAMPLES, (intent.id, lang)
    assert catalogue.get("order_status").lookups == ("order_status",)
    assert catalogue.get("order_status").bot_allowed
    assert catalogue.get("order_status").max_bot_turns == 2
    assert not catalogue.get(HUMAN_INTENT).bot_allowed
    assert catalogue.get("lost_or_stolen_card").skill == "cards"
    assert any("CMD-" in text for text in catalogue.get("order_status").examples["fr"])
    with pytest.raises(KeyError, match="no_such_intent"):
        catalogue.get("no_such_intent")


def test_short_answers_for_the_languages_we_do_not_serve(catalogue):
    replies = dict(catalogue.unsupported_language_replies)
    assert set(replies) == {"es", "de", "it", "pt", "nl"}
    for lang, text in replies.items():
        assert guess_language(text) == LanguageGuess(lang), lang  # each is written in its own language
    assert catalogue.unsupported_language_reply("es") == replies["es"]
    assert catalogue.unsupported_language_reply("pl") is None
    assert catalogue.serves("fr") and not catalogue.serves("es")


def test_sha256_is_the_file_digest(catalogue):
    assert catalogue.sha256 == hashlib.sha256(DEFAULT_CATALOGUE_PATH.read_bytes()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", catalogue.sha256)


def test_the_bot_serves_lookups_and_faqs_and_people_get_the_rest(catalogue):
    for intent in catalogue:
        has_lookup_answer = any(lookup in BOT_ANSWERED_LOOKUPS for lookup in intent.lookups)
        if intent.bot_allowed:
            assert has_lookup_answer or intent.answer, intent.id
            assert intent.max_bot_turns >= 1, intent.id
            assert intent.on_low_confidence == "clarify", intent.id
        else:
            assert intent.answer is None and intent.max_bot_turns == 0, intent.id
            assert intent.tiers is None and intent.max_amount is None, intent.id
            assert intent.on_low_confidence == "handoff", intent.id  # unsure about a people's case: a person
        if intent.answer is not None:
            assert set(intent.answer) == {"fr", "en"} and all(len(t) > 40 for t in intent.answer.values()), intent.id
        assert set(intent.clarify) == {"fr", "en"}, intent.id
        assert all(t.rstrip().endswith("?") for t in intent.clarify.values()), intent.id
        assert 0 <= intent.priority <= MAX_PRIORITY and intent.skill in KNOWN_SKILLS
        assert set(intent.lookups) <= KNOWN_LOOKUPS
    bot = {i.id for i in catalogue if i.bot_allowed}
    assert {"opening_hours", "order_status", "account_balance"} <= bot
    assert {"store_locator", "payment_methods", "invoice_request", "loyalty_points", "promo_code_problem"} <= bot
    assert not FOR_PEOPLE & bot
    assert catalogue.get("lost_or_stolen_card").priority == max(i.priority for i in catalogue)


def test_limits_in_the_shipped_file(catalogue):
    refund = catalogue.get("return_refund")
    assert refund.tiers == frozenset({"standard", "gold"}) and refund.max_amount == 200.0
    assert not refund.serves_tier("vip") and refund.serves_tier("Gold") and refund.serves_tier("")
    assert refund.amount_within_limit(200) and not refund.amount_within_limit(200.01)
    assert refund.amount_within_limit(None)
    # the policy's tests need both kinds: limited tiers, and an amount limit alone
    assert any(i.bot_allowed and i.tiers is not None for i in catalogue)
    assert any(i.bot_allowed and i.max_amount is not None and i.tiers is None for i in catalogue)
    hours = catalogue.get("opening_hours")
    assert hours.tiers is None and hours.serves_tier("vip") and hours.amount_within_limit(1e9)
    assert dict(refund.limits) == {"max_bot_turns": 2, "tiers": ["gold", "standard"], "max_amount": 200.0}


def test_texts_per_language(catalogue):
    order = catalogue.get("order_status")
    assert order.clarify_text("fr") == "Voulez-vous connaître le statut d'une commande ?"
    assert order.clarify_text("de") == order.clarify["en"]
    assert order.answer is None and order.answer_text("fr") is None
    stores = catalogue.get("store_locator")
    assert "Trouver un magasin" in stores.answer_text("fr") and "Find a store" in stores.answer_text("en")
    assert "\n" not in stores.answer_text("fr") and "  " not in stores.answer_text("fr")


def test_examples_are_distinct_across_intents(catalogue):
    """No example of one intent has the same words as an example of another (they would teach nothing)."""
    seen: dict[frozenset[str], str] = {}
    clashes = []
    for text, intent, _ in catalogue.training_examples():
        words = frozenset(re.findall(r"\w+", text.casefold()))
        if words in seen and seen[words] != intent:
            clashes.append((text, intent, seen[words]))
        seen.setdefault(words, intent)
    assert not clashes


# ------------------------------------------------------------------------------------ validation

GOOD_INTENT = """\
  - id: {id}
    description: Something customers ask.
    bot_allowed: {bot}
    lookups: {lookups}
    skill: general
    limits:
      max_bot_turns: {turns}
{extra_limits}    escalation:
      priority: {priority}
      on_low_confidence: {low}
    clarify:
      fr: "{clarify_fr}"
      en: "Do you mean this?"
{answer}    examples:
      fr:
        - "{fr1}"
        - "{fr2}"
      en:
        - "{en1}"
        - "{en2}"
"""


def _write(tmp_path: Path, intents: str, header: str = "") -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text((header or 'version: "t.1"\nlanguages: [fr, en]\ndefault_threshold: 0.3\nintents:\n') + intents)
    return path


def _intent(**overrides: str) -> str:
    fields = dict(
        id="hours",
        bot="true",
        lookups="[opening_hours]",
        fr1="Vous ouvrez quand ?",
        fr2="Horaires svp",
        en1="When do you open?",
        en2="Opening hours please",
        extra_limits="",
        priority="0",
        low="clarify",
        clarify_fr="Vous voulez dire ceci ?",
        answer="",
    )
    fields.update(overrides)
    fields.setdefault("turns", "1" if fields["bot"] == "true" else "0")
    return GOOD_INTENT.format(**fields)


def _people(**overrides: str) -> str:
    return _intent(
        **{
            "id": "other",
            "bot": "false",
            "lookups": "[]",
            "fr1": "Autre chose",
            "fr2": "Encore autre chose",
            "en1": "Something else",
            "en2": "Yet another thing",
            "low": "handoff",
            **overrides,
        }
    )


FAQ_ANSWER = '    answer:\n      fr: "Réponse."\n      en: "Answer."\n'


def _problems(path: Path) -> str:
    with pytest.raises(CatalogueError) as error:
        load_catalogue(path)
    return str(error.value)


def test_minimal_catalogue_file_loads(tmp_path):
    faq_yaml = _intent(
        id="faq",
        lookups="[]",
        answer=FAQ_ANSWER,
        fr1="Question fréquente",
        fr2="Une autre",
        en1="Frequent question",
        en2="Another one",
        extra_limits="      tiers: [Standard, gold]\n      max_amount: 150.5\n",
    )
    path = _write(tmp_path, _intent() + _people(priority="20") + faq_yaml)
    catalogue = load_catalogue(path)
    assert set(catalogue.intents) == {"hours", "other", "faq"}
    assert catalogue.threshold_for("hours") == 0.3
    assert catalogue.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    hours, other, faq = catalogue.get("hours"), catalogue.get("other"), catalogue.get("faq")
    assert (hours.tiers, hours.max_amount, hours.answer, hours.on_low_confidence) == (None, None, None, "clarify")
    assert dict(hours.clarify) == {"fr": "Vous voulez dire ceci ?", "en": "Do you mean this?"}
    assert (other.priority, other.on_low_confidence, other.max_bot_turns) == (20, "handoff", 0)
    assert faq.tiers == frozenset({"standard", "gold"}) and faq.max_amount == 150.5
    assert faq.answer is not None and dict(faq.answer) == {"fr": "Réponse.", "en": "Answer."}


HEADER = 'version: "t.1"\nlanguages: [fr, en]\ndefault_threshold: 0.3\n'


def test_unsupported_language_replies_are_optional_and_validated(tmp_path):
    assert dict(load_catalogue(_write(tmp_path, _intent())).unsupported_language_replies) == {}
    good = HEADER + 'unsupported_language_replies:\n  es: "  Lo sentimos,\n    le pasamos con un asesor. "\nintents:\n'
    assert dict(load_catalogue(_write(tmp_path, _intent(), good)).unsupported_language_replies) == {
        "es": "Lo sentimos, le pasamos con un asesor."
    }
    bad = (
        HEADER + 'unsupported_language_replies:\n  fr: "Désolé"\n  Spanish: "Hola"\n  de: ""\n'
        f'  it: "{"parola " * 80}"\nintents:\n'
    )
    message = _problems(_write(tmp_path, _intent(), bad))
    assert "catalogue.yaml:5: unsupported_language_replies: 'fr' is served" in message
    assert "catalogue.yaml:6: unsupported_language_replies: 'Spanish' is not a lowercase language code" in message
    assert "catalogue.yaml:7: unsupported_language_replies: the text for 'de' must be non-empty text" in message
    assert "catalogue.yaml:8: unsupported_language_replies: the text for 'it' is longer than 400" in message
    message = _problems(_write(tmp_path, _intent(), HEADER + "unsupported_language_replies: [es]\nintents:\n"))
    assert "catalogue.yaml:4: unsupported_language_replies must be a mapping" in message


def test_sha256_follows_the_bytes(tmp_path):
    first = load_catalogue(_write(tmp_path, _intent())).sha256
    second = load_catalogue(_write(tmp_path, _intent() + "\n# a comment\n")).sha256
    assert first != second


def test_unknown_lookup_is_reported_with_intent_and_line(tmp_path):
    message = _problems(_write(tmp_path, _intent(lookups="[opening_hours, weather]")))
    assert "unknown lookup 'weather'" in message
    assert "intent 'hours'" in message
    assert "catalogue.yaml:8:" in message  # the lookups line


def test_missing_language_examples_are_reported(tmp_path):
    intent = _intent().replace('      en:\n        - "When do you open?"\n        - "Opening hours please"\n', "")
    with pytest.raises(CatalogueError, match="intent 'hours': missing examples for language 'en'"):
        load_catalogue(_write(tmp_path, intent))


def test_duplicate_example_is_reported_ignoring_case_and_spaces(tmp_path):
    message = _problems(_write(tmp_path, _intent(en2="  when do   YOU open?")))
    assert "duplicate example" in message and "intent 'hours'" in message
    assert "catalogue.yaml:24:" in message and "already at line 23" in message


def test_duplicate_example_across_intents_names_both(tmp_path):
    path = _write(tmp_path, _intent() + _people(fr1="Horaires SVP"))
    with pytest.raises(CatalogueError, match="intent 'other'.*duplicate example.*intent 'hours'"):
        load_catalogue(path)


def test_duplicate_intent_id_and_bad_threshold_are_reported(tmp_path):
    header = 'version: "t.1"\nlanguages: [fr, en]\ndefault_threshold: 1.5\nintents:\n'
    second = _intent(fr1="a", fr2="b", en1="c", en2="d").replace(
        "    skill: general\n", "    skill: general\n    threshold: -0.1\n"
    )
    with pytest.raises(CatalogueError) as error:
        load_catalogue(_write(tmp_path, _intent() + second, header))
    problems = error.value.problems
    assert any("default_threshold must be a number between 0 and 1" in p for p in problems)
    assert any("intent 'hours'" in p and "threshold must be a number between 0 and 1" in p for p in problems)
    assert any("intent 'hours'" in p and "duplicate intent id" in p for p in problems)


def test_bot_turns_on_an_advisor_only_intent_are_reported(tmp_path):
    message = _problems(_write(tmp_path, _intent(bot="false", lookups="[]", turns="1")))
    assert "intent 'hours': max_bot_turns is above 0 but bot_allowed is false" in message


def test_a_bot_intent_with_no_bot_turns_is_reported(tmp_path):
    message = _problems(_write(tmp_path, _intent(turns="0")))
    assert "intent 'hours': bot_allowed is true but max_bot_turns is 0" in message


def test_unknown_skill_and_misspelt_key_are_reported(tmp_path):
    intent = _intent().replace("skill: general", "skill: astrology").replace("    limits:", "    limit:")
    message = _problems(_write(tmp_path, intent))
    assert "unknown skill 'astrology'" in message
    assert "unknown key 'limit'" in message
    assert "missing 'limits'" in message


def test_unknown_keys_inside_limits_and_escalation(tmp_path):
    message = _problems(
        _write(
            tmp_path,
            _intent(extra_limits="      max_turns: 3\n").replace(
                "      on_low_confidence: clarify\n", "      on_low_confidence: clarify\n      urgent: yes\n"
            ),
        )
    )
    assert "unknown limit 'max_turns'" in message
    assert "unknown escalation key 'urgent'" in message


@pytest.mark.parametrize("tiers", ["vip", "[]", "[standard, 3]", "{gold: true}", '[standard, ""]'])
def test_bad_tiers_are_reported(tmp_path, tiers):
    message = _problems(_write(tmp_path, _intent(extra_limits=f"      tiers: {tiers}\n")))
    assert "intent 'hours': tiers must be a non-empty list of tier names" in message
    assert "catalogue.yaml:12:" in message  # the tiers line


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "true", "[200]", ".nan"])
def test_max_amount_must_be_a_positive_number(tmp_path, amount):
    message = _problems(_write(tmp_path, _intent(extra_limits=f"      max_amount: {amount}\n")))
    assert "intent 'hours': max_amount must be a positive number" in message


def test_limits_of_what_the_bot_serves_need_a_bot_intent(tmp_path):
    message = _problems(_write(tmp_path, _people(extra_limits="      tiers: [gold]\n      max_amount: 10\n")))
    assert "intent 'other': tiers limits what the bot serves, but bot_allowed is false" in message
    assert "intent 'other': max_amount limits what the bot serves, but bot_allowed is false" in message


@pytest.mark.parametrize("priority", ["21", "-1", "2.5", "high", "true"])
def test_priority_out_of_range_is_reported(tmp_path, priority):
    message = _problems(_write(tmp_path, _intent(priority=priority)))
    assert f"intent 'hours': priority must be a whole number from 0 to {MAX_PRIORITY}" in message
    assert "catalogue.yaml:13:" in message  # the priority line


def test_on_low_confidence_must_be_clarify_or_handoff(tmp_path):
    message = _problems(_write(tmp_path, _intent(low="ask_again")))
    assert "on_low_confidence must be one of clarify, handoff, got 'ask_again'" in message
    assert "catalogue.yaml:14:" in message


def test_escalation_and_clarify_are_required(tmp_path):
    intent = _intent().replace("    escalation:\n      priority: 0\n      on_low_confidence: clarify\n", "")
    intent = intent.replace('    clarify:\n      fr: "Vous voulez dire ceci ?"\n      en: "Do you mean this?"\n', "")
    message = _problems(_write(tmp_path, intent))
    assert "intent 'hours': missing 'escalation'" in message
    assert "intent 'hours': missing 'clarify'" in message
    message = _problems(_write(tmp_path, _intent().replace("      priority: 0\n", "")))
    assert "escalation: missing 'priority'" in message


def test_missing_or_foreign_clarify_text_is_reported(tmp_path):
    message = _problems(_write(tmp_path, _intent().replace('      en: "Do you mean this?"\n', "")))
    assert "intent 'hours': missing clarify text for language 'en'" in message
    message = _problems(
        _write(
            tmp_path,
            _intent(clarify_fr="").replace(
                '      en: "Do you mean this?"\n', '      en: "Do you mean this?"\n      de: "Meinen Sie das?"\n'
            ),
        )
    )
    assert "clarify text for 'fr' must be non-empty text" in message
    assert "clarify text for language 'de', which is not in languages" in message


def test_a_bot_intent_needs_something_to_say(tmp_path):
    message = _problems(_write(tmp_path, _intent(lookups="[]")))
    assert "intent 'hours': bot_allowed is true but the bot has nothing to say" in message
    assert "catalogue.yaml:7:" in message  # the bot_allowed line
    assert load_catalogue(_write(tmp_path, _intent(lookups="[]", answer=FAQ_ANSWER))).get("hours").answer


def test_answer_needs_every_language_and_a_bot_intent(tmp_path):
    message = _problems(_write(tmp_path, _intent(lookups="[]", answer='    answer:\n      fr: "Réponse."\n')))
    assert "intent 'hours': missing answer text for language 'en'" in message
    message = _problems(_write(tmp_path, _people(answer=FAQ_ANSWER)))
    assert "intent 'other': answer is set but bot_allowed is false" in message
    message = _problems(_write(tmp_path, _intent(answer="    answer: Réponse.\n")))
    assert "answer must be a mapping of language -> text" in message


def test_every_problem_is_reported_at_once(tmp_path):
    intent = _intent(lookups="[weather]", priority="99", low="maybe", extra_limits="      tiers: gold\n")
    with pytest.raises(CatalogueError) as error:
        load_catalogue(_write(tmp_path, intent))
    assert len(error.value.problems) >= 4
    assert all(p.startswith("catalogue.yaml:") and "intent 'hours'" in p for p in error.value.problems)


def test_missing_file_and_broken_yaml_are_catalogue_errors(tmp_path):
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text('version: "1"\nintents: [\n')
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(broken)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes('version: "é"\n'.encode("latin-1"))
    with pytest.raises(CatalogueError, match="not UTF-8"):
        load_catalogue(latin1)


# ------------------------------------------------------------------------------------- versions


def test_classify_refuses_a_model_from_another_catalogue(tmp_path):
    small = load_catalogue(_write(tmp_path, _intent() + _people()))
    model = IntentModel.train(small, seed=0)
    text = Path(small.source).read_text().replace('version: "t.1"', 'version: "t.2"')
    (tmp_path / "next").mkdir()
    path = tmp_path / "next" / "catalogue.yaml"
    path.write_text(text)
    assert classify("Vous ouvrez quand ?", None, model, small).intent in {"hours", None}
    with pytest.raises(ValueError, match="retrain"):
        classify("hello", None, model, load_catalogue(path))
