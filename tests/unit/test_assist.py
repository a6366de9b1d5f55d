"""Agent assist: knowledge base, summaries, suggestions, and the LLM drafter against a local HTTP server."""

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relais.classifier.catalogue import load_catalogue
from relais.common.pb import conversation_pb2 as pb
from relais.routing import assist
from relais.routing.assist import (
    Article, Assistant, KnowledgeBase, KnowledgeError, LLMDrafter, PastContact, TemplateDrafter,
)

KB = KnowledgeBase.load()
HANDED_OFF = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)


def context(language="fr", intent="delivery_problem", texts=("Mon colis n'est toujours pas arrivé",),
            reasons=(pb.HANDOFF_REASON_CUSTOMER_REQUEST,), anger=False, score=-0.3, conversation_id="conv-42"):
    ctx = pb.ConversationContext(conversation_id=conversation_id, language=language, intent=intent,
                                 customer=pb.Customer(id="cust-fr-001", language=language),
                                 reason=reasons[0], reasons=list(reasons))
    ctx.handed_off_at.FromDatetime(HANDED_OFF)
    for n, text in enumerate(texts, 1):
        ctx.turns.add(turn_id=f"t{n}", seq=n, text=text, language=language, classification=pb.Classification(
            intent=intent, sentiment=pb.Sentiment(score=score, anger=anger)))
    return ctx


def with_order_lookup(ctx, ok=True):
    ctx.lookups.add(name="order_status", turn_id="t1", request={"order_id": "CMD-123456"}, ok=ok,
                    result={"status": "shipped", "carrier": "Colissimo", "expected_delivery": "2026-11-28"} if ok else {},
                    error="" if ok else "NOT_FOUND: no such order")
    return ctx


def write(directory, name, text):
    (directory / name).write_text(text, encoding="utf-8")
    return directory / name


ARTICLE = "---\nid: kb-x-en\nlanguage: en\ntitle: Lost card\nintents: [lost_or_stolen_card]\n---\nBlock the card.\n"


# ------------------------------------------------------------------------------------------ knowledge


def test_shipped_knowledge_base_covers_the_catalogue_in_both_languages():
    catalogue = load_catalogue()
    by_language = {lang: [a for a in KB.articles if a.language == lang] for lang in ("fr", "en")}
    assert len(by_language["fr"]) >= 15 and len(by_language["en"]) >= 15
    for article in KB.articles:
        assert set(article.intents) <= set(catalogue.intents), article.article_id
        assert article.title and article.body and article.reply, article.article_id
    needs_article = set(catalogue.intents) - {"speak_to_advisor", "account_balance"}
    for lang, articles in by_language.items():
        assert needs_article <= {i for a in articles for i in a.intents}, lang
    pairs = {lang: {a.article_id.removesuffix(f"-{lang}") for a in articles} for lang, articles in by_language.items()}
    assert pairs["fr"] == pairs["en"]  # every article exists in both languages


def test_knowledge_dir_comes_from_the_argument_or_the_environment(tmp_path, monkeypatch):
    write(tmp_path, "a.md", ARTICLE)
    write(tmp_path, "README.md", "# not an article")
    assert [a.article_id for a in KnowledgeBase.load(tmp_path).articles] == ["kb-x-en"]
    monkeypatch.setenv("RELAIS_KNOWLEDGE_DIR", str(tmp_path))
    kb = KnowledgeBase.load()
    assert kb.articles == (Article("kb-x-en", "en", "Lost card", "Block the card.", ("lost_or_stolen_card",)),)


@pytest.mark.parametrize("text, problem", [
    ("no front matter here\n", "no front matter"),
    ("---\nid: [unclosed\n---\nbody\n", "invalid front matter"),
    ("---\nid: kb-a\nlanguage: en\ntitle: T\n---\nbody\n", "missing 'intents'"),
    ("---\nid: kb-a\nlanguage: de\ntitle: T\nintents: [complaint]\n---\nbody\n", "language 'de'"),
    ("---\nid: kb-a\nlanguage: en\ntitle: T\nintents: complaint\n---\nbody\n", "list of intent ids"),
    ("---\nid: kb-a\nlanguage: en\ntitle: T\nintents: [complaint]\ntitel: typo\n---\nbody\n", "unknown key 'titel'"),
    ("---\nid: kb-a\nlanguage: en\ntitle: T\nintents: [complaint]\n---\n\n", "empty body"),
])
def test_a_malformed_article_is_reported_with_its_file(tmp_path, text, problem):
    write(tmp_path, "good.md", ARTICLE)
    write(tmp_path, "broken-article.md", text)
    with pytest.raises(KnowledgeError) as error:
        KnowledgeBase.load(tmp_path)
    assert "broken-article.md" in str(error.value) and problem in str(error.value)


def test_duplicate_ids_and_empty_directories_are_errors(tmp_path):
    with pytest.raises(KnowledgeError, match="no article"):
        KnowledgeBase.load(tmp_path)
    write(tmp_path, "a.md", ARTICLE)
    write(tmp_path, "b.md", ARTICLE)
    with pytest.raises(KnowledgeError, match=r"b\.md: id 'kb-x-en' already used by a\.md"):
        KnowledgeBase.load(tmp_path)


@pytest.mark.parametrize("language, message, expected", [
    ("fr", "Mon colis devait arriver mardi et toujours rien", "kb-delivery-delay-fr"),
    ("fr", "le colis est marqué livré mais j'ai rien reçu", "kb-parcel-not-received-fr"),
    ("fr", "on m'a volé mon portefeuille avec ma carte bleue dedans", "kb-lost-stolen-card-fr"),
    ("fr", "ma nouvelle carte n'est toujours pas arrivée", "kb-card-not-arrived-fr"),
    ("fr", "je veux être remboursé de ma robe renvoyée il y a 3 semaines", "kb-returns-refunds-fr"),
    ("fr", "votre service est une honte, personne ne répond jamais", "kb-complaint-fr"),
    ("fr", "je veux résilier mon abonnement", "kb-cancellation-retention-fr"),
    ("en", "tracking says delivered but I never got it", "kb-parcel-not-received-en"),
    ("en", "someone stole my wallet with my debit card", "kb-lost-stolen-card-en"),
    ("en", "there's a payment on my statement I don't recognise", "kb-disputed-payment-en"),
    ("en", "my new card never came in the post", "kb-card-not-arrived-en"),
    ("en", "the vase arrived broken", "kb-damaged-item-en"),
    ("en", "I was charged overdraft fees again, this is ridiculous", "kb-overdraft-fees-en"),
    ("en", "what time are you open on saturday", "kb-opening-hours-stores-en"),
])
def test_retrieval_finds_the_article_for_a_realistic_message(language, message, expected):
    hits = KB.search(message, language)
    assert hits[0][0].article_id == expected, hits
    assert all(a.language == language for a, _ in hits) and len(hits) <= 3


def test_the_conversation_intent_boosts_its_articles():
    message = "je ne reconnais pas un prélèvement de 49,99 sur mon relevé"
    assert KB.search(message, "fr", intent="disputed_payment")[0][0].article_id == "kb-disputed-payment-fr"
    scores = [s for _, s in KB.search(message, "fr", k=10)]
    assert scores == sorted(scores, reverse=True)
    assert KB.search(message, "de") == []


# ------------------------------------------------------------------------------------------ summaries


def test_summary_says_what_the_customer_wants_what_the_bot_found_and_why_a_person_took_over():
    ctx = with_order_lookup(context(reasons=(pb.HANDOFF_REASON_ANGER, pb.HANDOFF_REASON_CUSTOMER_REQUEST),
                                    anger=True, score=-0.8))
    summary = Assistant(KB).assist(ctx, []).summary
    assert "colis en retard ou non reçu" in summary
    assert "CMD-123456" in summary and "expédiée" in summary and "Colissimo" in summary and "28/11/2026" in summary
    assert "en colère" in summary and "a demandé un conseiller" in summary and "très négatif" in summary
    assert 1 <= summary.count(". ") + 1 <= 3

    ctx.language = "en"
    summary = Assistant(KB).assist(ctx, []).summary
    assert summary.startswith("Customer wants: late or missing delivery.")
    assert "order CMD-123456 — shipped, carrier Colissimo, expected delivery 28 November 2026" in summary
    assert "customer angry, asked for an advisor; tone very negative" in summary


def test_summary_reports_a_failed_lookup_and_quotes_the_customer_when_there_is_no_intent():
    ctx = with_order_lookup(context(language="en", intent="", texts=("Card 4970 1012 3456 7890 does weird stuff",),
                                    reasons=(pb.HANDOFF_REASON_OUT_OF_SCOPE,)), ok=False)
    ctx.bot_attempts.add(turn_id="t1", resolved=False)
    summary = assist.summarize(ctx)
    assert "lookup of order CMD-123456 failed (not found)" in summary and "1 reply did not resolve it" in summary
    assert "“Card … does weird stuff”" in summary and "7890" not in summary  # long numbers are masked
    assert "request outside the bot's scope" in summary


def test_behind_a_request_for_a_person_the_summary_names_the_real_request():
    ctx = context(language="en", intent="speak_to_advisor", texts=("my card was stolen", "human please"))
    ctx.turns[0].classification.intent = "lost_or_stolen_card"
    assert assist.summarize(ctx).startswith("Customer wants: lost or stolen card.")


def past(days_ago, intent="return_refund", outcome="unresolved", conversation_id=None):
    started = HANDED_OFF - timedelta(days=days_ago) if days_ago is not None else None
    return PastContact(conversation_id or f"conv-{days_ago}", started, intent, outcome, "secret details")


def test_history_summary_counts_previous_contacts_and_gives_the_last_outcome():
    history = [past(2, "delivery_problem", "resolved"), past(30), past(1), past(0, conversation_id="conv-42")]
    text = Assistant(KB).assist(context(language="en"), history).history_summary
    assert text.startswith("3rd contact in 7 days (4 in all); last on 28 November 2026: return and refund, unresolved.")
    assert "1 earlier contact about the same request." in text and "secret" not in text
    fr = assist.summarize_history(context(), history)
    assert fr.startswith("3e contact en 7 jours (4 au total) ; dernier le 28/11/2026 : retour et remboursement, non résolu.")
    assert assist.summarize_history(context(language="en"), []) == "First contact on record."
    assert assist.summarize_history(context(), [past(40, outcome="abandoned"), past(None, outcome="")]).startswith(
        "2 contacts précédents, aucun ces 7 derniers jours ; dernier le 20/10/2026 : retour et remboursement, abandonné.")
    assert assist.summarize_history(context(language="en"), [past(3, intent="")]) == (
        "2nd contact in 7 days (2 in all); last on 26 November 2026: unresolved.")


# ---------------------------------------------------------------------------------------- suggestions


def test_suggestions_fill_in_the_lookup_and_carry_their_source_articles():
    ctx = with_order_lookup(context(language="en", texts=("My parcel CMD-123456 was due yesterday and still nothing",)))
    suggestions = Assistant(KB).assist(ctx, []).suggestions
    assert 1 <= len(suggestions) <= 3
    first = suggestions[0]
    assert first.article_ids == ("kb-delivery-delay-en",) and first.source == "template"
    assert "Your order CMD-123456 is shipped (carrier: Colissimo), expected to be delivered on 28 November 2026." in first.text
    assert KB.get("kb-delivery-delay-en").reply in first.text
    for s in suggestions:
        assert s.article_ids and all(KB.get(i).language == "en" for i in s.article_ids)
        assert not s.text.startswith("I understand your frustration")  # calm customer: no apology for anger


def test_an_angry_or_distressed_customer_gets_an_empathetic_opening():
    angry = context(reasons=(pb.HANDOFF_REASON_ANGER,), anger=True, score=-0.9)
    assert all(s.text.startswith("Je comprends votre agacement") for s in Assistant(KB).assist(angry, []).suggestions)
    distressed = context(language="en", intent="lost_or_stolen_card", texts=("I've been robbed, I'm panicking",),
                         reasons=(pb.HANDOFF_REASON_DISTRESS,))
    first = Assistant(KB).assist(distressed, []).suggestions[0]
    assert first.text.startswith("I'm sorry you're going through this") and first.article_ids == ("kb-lost-stolen-card-en",)


def test_suggestion_ids_are_deterministic_and_specific_to_the_conversation():
    one = Assistant(KB).assist(context(), []).suggestions
    again = Assistant(KnowledgeBase.load()).assist(context(), []).suggestions
    other = Assistant(KB).assist(context(conversation_id="conv-43"), []).suggestions
    assert [s.suggestion_id for s in one] == [s.suggestion_id for s in again]
    assert len({s.suggestion_id for s in one}) == len(one)
    assert not {s.suggestion_id for s in one} & {s.suggestion_id for s in other}


def test_with_no_matching_article_a_generic_suggestion_keeps_the_lookup_result():
    ctx = with_order_lookup(context(language="en", intent="", texts=("zzz",), reasons=(pb.HANDOFF_REASON_OUT_OF_SCOPE,)))
    (only,) = TemplateDrafter().draft(ctx, [], "en")
    assert only.article_ids == () and "CMD-123456 is shipped" in only.text


def test_a_failing_custom_drafter_does_not_cost_the_advisor_the_assist(caplog):
    class Broken:
        def draft(self, context, articles, language):
            raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING, logger="relais.routing.assist"):
        result = Assistant(KB, Broken()).assist(context(), [])
    assert result.suggestions and result.suggestions[0].source == "template" and "boom" in caplog.text


# ------------------------------------------------------------------------------------------ LLM drafter


class FakeLLM(BaseHTTPRequestHandler):
    requests: list = []
    mode = "ok"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, dict(self.headers), body))
        if self.mode == "slow":
            time.sleep(1.0)
        if self.mode == "error":
            self.send_error(500, "overloaded")
            return
        content = json.dumps({"suggestions": [
            {"text": "Votre colis est en route : je lance une enquête.", "article_ids": ["kb-delivery-delay-fr", "kb-made-up"]},
            {"text": "Je vérifie avec le transporteur.", "article_ids": []},
        ]})
        reply = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": f"```json\n{content}\n```"}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def llm_server():
    FakeLLM.requests, FakeLLM.mode = [], "ok"
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    server.daemon_threads, server.block_on_close = True, False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_llm_drafter_sends_summary_and_articles_and_keeps_the_article_ids(llm_server):
    assistant = Assistant.from_env({"RELAIS_ASSIST_LLM_URL": llm_server, "RELAIS_ASSIST_LLM_MODEL": "tiny",
                                    "RELAIS_ASSIST_LLM_API_KEY": "k-123"})
    assert isinstance(assistant.drafter, LLMDrafter)
    suggestions = assistant.assist(with_order_lookup(context()), []).suggestions
    assert [s.source for s in suggestions] == ["llm", "llm"]
    assert suggestions[0].article_ids == ("kb-delivery-delay-fr",)  # an id the model made up is dropped
    assert "kb-delivery-delay-fr" in suggestions[1].article_ids      # none cited: every article it was given
    assert suggestions[0].suggestion_id == assist.suggestion(context(), suggestions[0].text, ("kb-delivery-delay-fr",), "llm").suggestion_id
    (path, headers, body), = FakeLLM.requests
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer k-123" and body["model"] == "tiny"
    prompt = body["messages"][-1]["content"]
    assert "Demande : colis en retard ou non reçu" in prompt and "CMD-123456" in prompt
    assert "[kb-delivery-delay-fr]" in prompt and "French" in body["messages"][0]["content"]


@pytest.mark.parametrize("mode", ["error", "slow", "down"])
def test_llm_failure_falls_back_to_templates_with_a_warning(llm_server, mode, caplog):
    FakeLLM.mode = mode
    url = "http://127.0.0.1:9" if mode == "down" else llm_server + "/v1"
    drafter = LLMDrafter(url, "tiny", timeout=0.3)
    with caplog.at_level(logging.WARNING, logger="relais.routing.assist"):
        suggestions = Assistant(KB, drafter).assist(with_order_lookup(context()), []).suggestions
    assert suggestions and all(s.source == "template" for s in suggestions)
    assert suggestions[0].article_ids == ("kb-delivery-delay-fr",)
    assert "using templates" in caplog.text


def test_without_llm_settings_the_offline_drafter_is_used(caplog):
    assert isinstance(Assistant.from_env({}).drafter, TemplateDrafter)
    with caplog.at_level(logging.WARNING, logger="relais.routing.assist"):
        assert isinstance(Assistant.from_env({"RELAIS_ASSIST_LLM_URL": "http://x"}).drafter, TemplateDrafter)
    assert "RELAIS_ASSIST_LLM_MODEL" in caplog.text
    assert LLMDrafter("http://h:8/v1/chat/completions", "m").url == "http://h:8/v1/chat/completions"


def test_llm_answers_are_parsed_leniently_but_never_invent_sources():
    articles = [KB.get("kb-complaint-en"), KB.get("kb-damaged-item-en")]
    parse = lambda content: LLMDrafter.parse(context(), content, articles)  # noqa: E731
    (prose,) = parse("Thank you for your patience, I'm on it.")
    assert prose.article_ids == ("kb-complaint-en", "kb-damaged-item-en") and prose.source == "llm"
    assert parse('{"suggestions": [{"text": "broken json"') == []
    assert parse('{"suggestions": ["not an object", {"text": ""}]}') == []
    four = json.dumps({"suggestions": [{"text": f"s{n}", "article_ids": ["kb-damaged-item-en"]} for n in range(4)]})
    assert [s.text for s in parse(four)] == ["s0", "s1", "s2"]
