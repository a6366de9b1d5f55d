"""The retention rule and the transcript scrub, without a database (the purge itself:
tests/integration/test_personal_data.py)."""

import argparse
from datetime import datetime, timedelta, timezone

from relais.common import retention
from relais.common.pb import conversation_pb2 as pb

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
CUTOFF = retention.cutoff(90, NOW)


def test_cutoff_is_the_period_before_now():
    assert CUTOFF == NOW - timedelta(days=90)


def test_closed_needs_no_activity_since_the_cutoff():
    assert retention.is_closed(CUTOFF - timedelta(seconds=1), False, CUTOFF)
    assert not retention.is_closed(CUTOFF, False, CUTOFF)  # active at the cut-off itself: kept
    assert not retention.is_closed(CUTOFF + timedelta(days=1), False, CUTOFF)
    assert not retention.is_closed(None, False, CUTOFF)


def test_an_open_task_keeps_the_conversation_however_old():
    assert not retention.is_closed(CUTOFF - timedelta(days=1000), True, CUTOFF)
    assert retention.OPEN_TASK_STATUSES == ("queued", "offered", "assigned")


def test_purged_once_until_active_again():
    old = CUTOFF - timedelta(days=10)
    assert retention.needs_purge(old, False, None, CUTOFF)
    assert not retention.needs_purge(old, False, old + timedelta(days=1), CUTOFF)  # purged since its last activity
    assert retention.needs_purge(old, False, old - timedelta(days=1), CUTOFF)  # active again after a purge
    assert not retention.needs_purge(old, True, None, CUTOFF)


def context() -> pb.ConversationContext:
    return pb.ConversationContext(
        conversation_id="c-1",
        language="fr",
        intent="order_status",
        reason=pb.HANDOFF_REASON_ANGER,
        reason_detail="anger",
        customer=pb.Customer(id="cust-fr-001", tier="vip"),
        turns=[
            pb.Turn(
                turn_id="t#1",
                seq=1,
                text="Ma commande CMD-123456 ? rappelez-moi au [PHONE]",
                classification=pb.Classification(
                    intent="order_status", confidence=0.9, sentiment=pb.Sentiment(score=-0.5, anger=True)
                ),
            )
        ],
        lookups=[
            pb.Lookup(
                name="order_status",
                request={"order_id": "CMD-123456"},
                result={"status": "shipped"},
                ok=True,
                turn_id="t#1",
            )
        ],
        bot_attempts=[
            pb.BotAttempt(turn_id="t#1", intent="order_status", reply_text="Votre commande est expédiée", resolved=True)
        ],
        reasons=[pb.HANDOFF_REASON_ANGER],
    )


def test_scrub_removes_the_transcript_and_keeps_the_facts():
    scrubbed = pb.ConversationContext.FromString(retention.scrub_context(context().SerializeToString()))
    assert [t.text for t in scrubbed.turns] == [""]
    assert [a.reply_text for a in scrubbed.bot_attempts] == [""]
    assert not scrubbed.lookups[0].request and not scrubbed.lookups[0].result
    # What the KPIs, the routing and the agents' history read stays.
    assert scrubbed.turns[0].turn_id == "t#1" and scrubbed.turns[0].classification.intent == "order_status"
    assert scrubbed.turns[0].classification.sentiment.anger and scrubbed.lookups[0].ok
    assert scrubbed.bot_attempts[0].resolved and scrubbed.intent == "order_status"
    assert list(scrubbed.reasons) == [pb.HANDOFF_REASON_ANGER] and scrubbed.customer.tier == "vip"


def test_scrub_is_idempotent_and_takes_an_empty_context():
    once = retention.scrub_context(context().SerializeToString())
    assert retention.scrub_context(once) == once
    assert retention.scrub_context(b"") == b""


def test_command_status_counts():
    assert retention._count("UPDATE 3") == 3 and retention._count("DELETE 0") == 0


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv("RELAIS_RETENTION_DAYS", raising=False)
    monkeypatch.delenv("RELAIS_RETENTION_CHECK_SECONDS", raising=False)
    assert retention.retention_days() == 90 and retention.check_seconds() == 3600
    monkeypatch.setenv("RELAIS_RETENTION_DAYS", "30")
    monkeypatch.setenv("RELAIS_RETENTION_CHECK_SECONDS", "60")
    assert retention.retention_days() == 30 and retention.check_seconds() == 60


def test_purge_command_line():
    parser = argparse.ArgumentParser()
    retention.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["purge", "--days", "30", "--dry-run"])
    assert (args.command, args.days, args.dry_run) == ("purge", 30, True)
    assert parser.parse_args(["purge"]).days is None
