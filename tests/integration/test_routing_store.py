"""Routing's statements against the real PostgreSQL (relais.routing.store): what each writes and reads, checked in a
transaction rolled back at the end of each test (the statements' own now() is the transaction's)."""

import json
import uuid

import asyncpg
import pytest

from relais.common.pb import conversation_pb2 as pb
from relais.routing import records, rules, store


@pytest.fixture
async def conn(postgres_dsn):
    connection = await asyncpg.connect(postgres_dsn)
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def need(language="fr", required=None, priority=2, channel="chat", preferred=()) -> rules.Requirement:
    return rules.Requirement(language, channel, required or {"billing": 2}, tuple(preferred), priority)


def conversation(conversation_id: str) -> pb.ConversationContext:
    return pb.ConversationContext(
        conversation_id=conversation_id,
        language="fr",
        intent="disputed_payment",
        customer=pb.Customer(id=f"customer-{conversation_id}"),
    )


async def sign_in(conn, agent_id: str, state="available", languages=("fr",)) -> None:
    await store.sign_in(conn, agent_id, agent_id, list(languages), {"billing": 3}, {"chat": 2}, f"sha-{agent_id}")
    await store.set_agent_state(conn, agent_id, state, 0)


async def insert_task(
    conn, task_id: str, status="queued", agent_id=None, language="fr", priority=0, queued_ago=0.0, due_in=None, stage=0
) -> None:
    await conn.execute(
        "INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, status, agent_id, queued_at,"
        " due_at, stage, required) VALUES ($1, $1, $2, '', $3, '', $4, $5, now() - make_interval(secs => $6),"
        " now() + make_interval(secs => $7), $8, '{\"billing\": 1}')",
        task_id,
        language,
        priority,
        status,
        agent_id,
        queued_ago,
        due_in,
        stage,
    )


async def events(conn, task_id: str) -> list[tuple[str, str, str]]:
    return [
        tuple(r)
        for r in await conn.fetch(
            "SELECT kind, agent_id, detail FROM task_events WHERE task_id = $1 ORDER BY id", task_id
        )
    ]


async def test_queueing_a_task_returns_when_it_was_queued_and_writes_its_queued_step(conn):
    task_id = unique("queued")
    queued_at = await store.queue_task(
        conn,
        task_id,
        conversation(task_id),
        need(preferred=("x",)),
        "00-trace",
        "handoff",
        "needs billing ≥ 2",
        stage=1,
    )
    row = await conn.fetchrow(
        "SELECT *, date_part('epoch', queued_at) AS queued FROM tasks WHERE task_id = $1", task_id
    )
    assert queued_at == row["queued"] == float(await conn.fetchval("SELECT date_part('epoch', now())"))
    assert (row["status"], row["language"], row["skill"], row["priority"], row["stage"], row["kind"]) == (
        "queued",
        "fr",
        "billing",
        2,
        1,
        "handoff",
    )
    assert json.loads(row["required"]) == {"billing": 2} and row["preferred"] == ["x"]
    assert row["customer_id"] == f"customer-{task_id}" and row["traceparent"] == "00-trace"
    assert await events(conn, task_id) == [("queued", "", "needs billing ≥ 2")]


async def test_a_handoff_offered_in_one_statement_is_written_once_with_its_steps_and_the_agents_state_change(conn):
    agent_id, key = unique("agent"), unique("turn") + "/handoff"
    await sign_in(conn, agent_id)
    task_id = unique("fast")
    busy = records.state_event(agent_id, "available", "busy", "offer")
    row = await store.handoff_offered(
        conn, key, task_id, conversation(task_id), need(), "needs billing ≥ 2", "00-trace", agent_id, 20.0, busy
    )
    assert row["first"] and row["previous"] == "available"
    assert await conn.fetchval("SELECT $1::timestamptz - now()", row["expires"]) == await conn.fetchval(
        "SELECT make_interval(secs => 20)"
    )
    task = await store.task(conn, task_id)
    assert (task["status"], task["agent_id"], task["offered_at"] is not None) == ("offered", agent_id, True)
    assert await events(conn, task_id) == [("queued", "", "needs billing ≥ 2"), ("offered", agent_id, "")]
    assert await store.agent_state(conn, agent_id) == "busy"
    outbox = await conn.fetch("SELECT seq, topic, value FROM outbox WHERE consumer = 'routing' AND event_key = $1", key)
    assert [(r["seq"], r["topic"], r["value"]) for r in outbox] == [(0, busy.topic, busy.value)]

    # The same hand-off again (a redelivery): nothing more is written.
    again = await store.handoff_offered(conn, key, task_id, conversation(task_id), need(), "", "", agent_id, 20.0, busy)
    assert not again["first"] and again["expires"] is None and again["previous"] is None
    assert len(await events(conn, task_id)) == 2
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE event_key = $1", key) == 1


async def test_a_handoff_offered_to_a_busy_agent_stores_no_state_change(conn):
    agent_id, key = unique("agent"), unique("turn") + "/handoff"
    await sign_in(conn, agent_id, state="busy")
    task_id = unique("fast")
    row = await store.handoff_offered(
        conn,
        key,
        task_id,
        conversation(task_id),
        need(),
        "",
        "",
        agent_id,
        20.0,
        records.state_event(agent_id, "available", "busy", "offer"),
    )
    assert row["first"] and row["previous"] == "busy"
    assert await store.agent_state(conn, agent_id) == "busy"
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE event_key = $1", key) == 0


async def test_an_offer_takes_only_a_waiting_task_and_reserves_the_agent(conn):
    agent_id, waiting, closed = unique("agent"), unique("waiting"), unique("closed")
    await sign_in(conn, agent_id)
    await insert_task(conn, waiting)
    await insert_task(conn, closed, status="closed")
    await store.offer(conn, waiting, agent_id, 20.0)
    await store.offer(conn, closed, agent_id, 20.0)
    assert (await store.task(conn, waiting))["status"] == "offered" and await events(conn, waiting) == [
        ("offered", agent_id, "")
    ]
    assert (await store.task(conn, closed))["status"] == "closed" and await events(conn, closed) == []
    assert await store.reserve(conn, agent_id) == "available" and await store.agent_state(conn, agent_id) == "busy"
    assert await store.reserve(conn, agent_id) == "busy"  # busy stays busy
    assert await store.holding(conn, agent_id) == 1
    assert await store.state_and_holding(conn, agent_id) == ("busy", 1)
    assert await store.state_and_holding(conn, unique("nobody")) == (None, 0)


async def test_a_withdrawn_offer_waits_again_declined_by_its_agent_unless_it_ended(conn):
    agent_id, offered, ended = unique("agent"), unique("offered"), unique("ended")
    await sign_in(conn, agent_id, state="busy")
    await insert_task(conn, offered, status="offered", agent_id=agent_id)
    await insert_task(conn, ended, status="abandoned", agent_id=agent_id)
    await store.withdraw(conn, offered, agent_id, declined=True)
    await store.withdraw(conn, ended, agent_id, declined=False)
    row = await store.task(conn, offered)
    assert (row["status"], row["agent_id"], row["declined_by"], row["offer_expires_at"]) == (
        "queued",
        None,
        [agent_id],
        None,
    )
    row = await store.task(conn, ended)
    assert (row["status"], row["agent_id"], row["declined_by"]) == ("abandoned", agent_id, [])


async def test_the_conversations_of_an_agent_who_left_wait_again_in_their_place(conn):
    agent_id, assigned, offered = unique("agent"), unique("assigned"), unique("offered")
    await sign_in(conn, agent_id, state="busy")
    await insert_task(conn, assigned, status="assigned", agent_id=agent_id, queued_ago=300, stage=2)
    await insert_task(conn, offered, status="offered", agent_id=agent_id)
    queued_before = await conn.fetchval("SELECT queued_at FROM tasks WHERE task_id = $1", assigned)
    requeue = rules.requeue_after_leaving(agent_id, signed_out=True)
    rows = await store.requeue_assigned(conn, agent_id, requeue.stage, list(requeue.declined_by), requeue.note)
    assert [(r["task_id"], r["conversation_id"], r["language"]) for r in rows] == [(assigned, assigned, "fr")]
    row = await store.task(conn, assigned)
    assert (row["status"], row["agent_id"], row["stage"], row["declined_by"], row["note"]) == (
        "queued",
        None,
        0,
        [agent_id],
        "the previous advisor signed out",
    )
    assert row["queued_at"] == queued_before  # ahead of newcomers
    assert (await store.task(conn, offered))["status"] == "offered"  # offers are withdrawn one by one
    assert await store.offered_to(conn, agent_id) == [offered]


async def test_a_transfer_moves_only_the_agents_assigned_task_to_the_queue_asked_for(conn):
    agent_id, other = unique("agent"), unique("other")
    await sign_in(conn, agent_id, state="busy")
    await sign_in(conn, other, state="busy")
    mine, theirs = unique("mine"), unique("theirs")
    await insert_task(conn, mine, status="assigned", agent_id=agent_id, queued_ago=300, stage=1)
    await insert_task(conn, theirs, status="assigned", agent_id=other)
    moved = rules.transferred("cards", agent_id)
    assert moved.required is not None
    args = (dict(moved.required), list(moved.preferred), moved.stage, list(moved.declined_by), "a note")
    assert not await store.transfer(conn, theirs, agent_id, *args)
    assert await store.transfer(conn, mine, agent_id, *args)
    row = await conn.fetchrow(
        "SELECT *, required::text AS needs, queued_at = now() AS now FROM tasks WHERE task_id = $1", mine
    )
    assert (
        row["status"],
        row["agent_id"],
        json.loads(row["needs"]),
        row["stage"],
        row["declined_by"],
        row["note"],
        row["now"],
    ) == ("queued", None, {"cards": 1}, 0, [agent_id], "a note", True)
    assert (await store.task(conn, theirs))["status"] == "assigned"


async def test_accept_and_close_change_only_the_agents_own_task_once(conn):
    agent_id, task_id = unique("agent"), unique("task")
    await sign_in(conn, agent_id, state="busy")
    await insert_task(conn, task_id, status="offered", agent_id=agent_id)
    assert not await store.accept(conn, task_id, unique("someone-else"))
    assert await store.accept(conn, task_id, agent_id)
    assert not await store.accept(conn, task_id, agent_id)  # accepted already
    assert await store.assigned_context(conn, task_id, agent_id) is not None
    assert await store.close(conn, task_id, agent_id, "resolved", True)
    assert not await store.close(conn, task_id, agent_id, "resolved", True)
    row = await store.task(conn, task_id)
    assert (row["status"], row["disposition"], row["resolved"]) == ("closed", "resolved", True)


async def test_the_tickers_reads_find_what_is_due_and_only_that(conn):
    await conn.execute("UPDATE tasks SET status = 'closed' WHERE status IN ('queued', 'offered')")  # this test's alone
    await conn.execute("UPDATE agents SET state = 'offline'")
    steps = rules.overflow_steps(rules.load_rules())
    agent_id, resting = unique("agent"), unique("resting")
    await sign_in(conn, agent_id, state="busy")
    await sign_in(conn, resting, state="wrap_up")
    quiet = await store.tick_due(conn, [agent_id, resting], steps, 2.0)
    assert set(quiet["unconnected"]) == set() and not any(
        quiet[k] for k in ("expired", "wrap_up_over", "overflow", "widen", "callback")
    )
    assert quiet["signed_in"] == await store.signed_in_signature(conn) != ""
    assert set((await store.tick_due(conn, [agent_id], steps, 2.0))["unconnected"]) == {resting}
    assert await store.unconnected(conn, [agent_id]) == {resting}

    expired, later = unique("expired"), unique("later")
    await insert_task(conn, expired, status="offered", agent_id=agent_id)
    await insert_task(conn, later, status="offered", agent_id=agent_id)
    await conn.execute("UPDATE tasks SET offer_expires_at = now() - interval '1 second' WHERE task_id = $1", expired)
    await conn.execute("UPDATE tasks SET offer_expires_at = now() + interval '1 minute' WHERE task_id = $1", later)
    await conn.execute("UPDATE agents SET state_until = now() - interval '1 second' WHERE agent_id = $1", resting)
    due_callback, future_callback = unique("callback"), unique("future")
    await insert_task(conn, due_callback, due_in=-1.0)
    await insert_task(conn, future_callback, due_in=3600.0)
    assert [(r["task_id"], r["agent_id"]) for r in await store.expired_offers(conn)] == [(expired, agent_id)]
    assert await store.wrap_ups_over(conn) == [resting]
    assert await store.callback_due(conn, 2.0) and not await store.callback_due(conn, 0.5)
    due = await store.tick_due(conn, [agent_id, resting], steps, 2.0)
    assert due["expired"] and due["wrap_up_over"] and due["callback"] and due["widen"]  # a task queued now, in French
    assert not due["overflow"]  # nothing has waited for the first step yet

    await store.sign_in(conn, agent_id, agent_id, ["fr"], {"billing": 3}, {"chat": 2}, "another-token")
    assert (await store.tick_due(conn, [agent_id, resting], steps, 2.0))["signed_in"] != quiet["signed_in"]


async def test_widening_reads_waiting_tasks_in_a_language_someone_signed_in_speaks(conn):
    await conn.execute("UPDATE tasks SET status = 'closed' WHERE status = 'queued'")
    await conn.execute("UPDATE agents SET state = 'offline'")
    await sign_in(conn, unique("agent"), languages=("fr",))
    recent, old, german, last = unique("recent"), unique("old"), unique("german"), unique("last")
    await insert_task(conn, recent)
    await insert_task(conn, old, queued_ago=60)
    await insert_task(conn, german, language="de")
    await insert_task(conn, last, stage=2)
    assert {r["task_id"] for r in await store.widenable(conn, 2, recent_only=False)} == {recent, old}
    assert {r["task_id"] for r in await store.widenable(conn, 2, recent_only=True)} == {recent}
    await store.set_stage(conn, recent, 2)
    assert {r["task_id"] for r in await store.widenable(conn, 2, recent_only=False)} == {old}


async def test_the_waiting_places_and_the_tasks_a_dispatch_reads(conn):
    await conn.execute("UPDATE tasks SET status = 'closed' WHERE status = 'queued'")
    first, second, urgent, callback, english = (unique(n) for n in ("first", "second", "urgent", "callback", "english"))
    await insert_task(conn, first, queued_ago=30)
    await insert_task(conn, second, queued_ago=20)
    await insert_task(conn, urgent, priority=5, queued_ago=1)
    await insert_task(conn, callback, due_in=600.0)  # waits from its due time
    await insert_task(conn, english, language="en")
    await conn.execute("UPDATE tasks SET queued_at = due_at WHERE task_id = $1", callback)
    assert await store.waiting_counts(conn) == {"fr": 4, "en": 1}
    now = float(await conn.fetchval("SELECT date_part('epoch', now())"))
    places = await store.load_places(conn, 60.0)
    assert [places.place(t, now) for t in (urgent, first, second, english, callback)] == [1, 2, 3, 1, 1]
    assert {r["task_id"] for r in await store.waiting_tasks(conn, ["fr"])} == {first, second, urgent}
    rows = await store.tasks_for_dispatch(conn, [first, english])
    assert {r["task_id"]: (r["language"], json.loads(r["required"]), r["due"]) for r in rows} == {
        first: ("fr", {"billing": 1}, None),
        english: ("en", {"billing": 1}, None),
    }


async def test_what_a_waiting_customer_was_told_is_kept_and_decides_when_they_hear_again(conn):
    await conn.execute("UPDATE tasks SET status = 'closed' WHERE status = 'queued'")
    told, untold = unique("told"), unique("untold")
    await insert_task(conn, told, queued_ago=120)
    await insert_task(conn, untold, queued_ago=120)
    await store.record_told(conn, [told], [3], [True], [False])
    row = await store.task(conn, told)
    assert (row["last_position"], row["updates_sent"], row["callback_offered"], row["told_nobody"]) == (
        3,
        1,
        True,
        False,
    )
    # Told just now: only the other one is due to hear again after 60 s.
    kinds = await store.queue_due_kinds(conn, 60.0)
    assert [(k["language"], k["channel"], json.loads(k["required"]), k["stage"]) for k in kinds] == [
        ("fr", "chat", {"billing": 1}, 0)
    ]
    news = await store.queue_news(conn, 60.0, 60.0, [])
    assert [r["task_id"] for r in news] == [untold]


# --- the supervisors' live view ---

LATER = 4_102_444_800.0  # 2100-01-01 00:00 UTC: a minute boundary after anything other tests wrote
LATER_MINUTE = int(LATER // 60)


async def insert_step(conn, task_id: str, kind: str, at: float) -> int:
    return await conn.fetchval(
        "INSERT INTO task_events (task_id, kind, at) VALUES ($1, $2, to_timestamp($3)) RETURNING id", task_id, kind, at
    )


async def test_the_database_clock_is_the_transactions_now(conn):
    now = await store.database_now(conn)
    assert isinstance(now, float) and now == (await conn.fetchval("SELECT now()")).timestamp()


async def test_who_waits_now_is_grouped_per_language_needs_and_stage_with_the_oldest(conn):
    await conn.execute("UPDATE tasks SET status = 'closed' WHERE status IN ('queued', 'offered')")
    assert await store.waiting_groups(conn) == []
    agent_id = unique("agent")
    await sign_in(conn, agent_id, state="busy")
    await insert_task(conn, unique("old"), queued_ago=30)
    await insert_task(conn, unique("offered"), status="offered", agent_id=agent_id, queued_ago=10)
    await insert_task(conn, unique("due-callback"), due_in=-1.0, queued_ago=5)
    await insert_task(conn, unique("overflowed"), stage=2, queued_ago=200)
    await insert_task(conn, unique("english"), language="en")
    await insert_task(conn, unique("later-callback"), due_in=600.0)  # not due: not waiting yet
    await insert_task(conn, unique("assigned"), status="assigned", agent_id=agent_id)
    await insert_task(conn, unique("closed"), status="closed")
    now = await store.database_now(conn)
    groups = {
        (r["language"], r["stage"]): (json.loads(r["required"]), r["n"], float(r["oldest"]))
        for r in await store.waiting_groups(conn)
    }
    assert groups == {
        ("fr", 0): ({"billing": 1}, 3, pytest.approx(now - 30, abs=1e-6)),
        ("fr", 2): ({"billing": 1}, 1, pytest.approx(now - 200, abs=1e-6)),
        ("en", 0): ({"billing": 1}, 1, pytest.approx(now, abs=1e-6)),
    }


async def test_every_agents_state_and_languages_are_read_offline_ones_too(conn):
    await conn.execute("UPDATE tasks SET agent_id = NULL WHERE agent_id IS NOT NULL")
    await conn.execute("DELETE FROM agents")
    assert await store.agents_and_languages(conn) == []
    await sign_in(conn, unique("available"), languages=("fr", "en"))
    await sign_in(conn, unique("break"), state="break", languages=("de",))
    await sign_in(conn, unique("offline"), state="offline")
    rows = await store.agents_and_languages(conn)
    assert sorted((r["state"], r["languages"]) for r in rows) == [
        ("available", ["fr", "en"]),
        ("break", ["de"]),
        ("offline", ["fr"]),
    ]


async def test_the_steps_are_found_by_id_and_the_last_one_before_a_time_by_bisection(conn):
    task_id = unique("task")
    await insert_task(conn, task_id)
    before = await store.last_step(conn)
    first = await insert_step(conn, task_id, "queued", LATER)
    second = await insert_step(conn, task_id, "offered", LATER + 60)
    third = await insert_step(conn, task_id, "accepted", LATER + 120)
    assert await store.last_step(conn) == third
    assert await store.step_from(conn, first) == (first, LATER)
    assert await store.step_from(conn, second) == (second, LATER + 60)
    assert await store.step_from(conn, third + 1) is None
    assert await store.last_step_before(conn, LATER) == before  # every earlier step was written before 2100
    assert await store.last_step_before(conn, LATER + 1) == first
    assert await store.last_step_before(conn, LATER + 60) == first  # a step at `since` is not before it
    assert await store.last_step_before(conn, LATER + 61) == second
    assert await store.last_step_before(conn, LATER + 3600) == third


async def test_without_steps_the_last_is_0_and_none_is_found(conn):
    await conn.execute("DELETE FROM task_events")
    assert await store.last_step(conn) == 0
    assert await store.step_from(conn, 1) is None
    assert await store.last_step_before(conn, LATER) == 0
    assert await store.steps_per_minute(conn, 0, 0, ["queued"], 20.0) == []


async def test_the_steps_in_a_range_are_counted_per_minute_kind_and_queue_with_those_answered_in_time(conn):
    french, english = unique("french"), unique("english")
    await insert_task(conn, french)
    await insert_task(conn, english, language="en", stage=2)
    await conn.execute("UPDATE tasks SET queued_at = to_timestamp($2) WHERE task_id = $1", french, LATER)
    await conn.execute("UPDATE tasks SET queued_at = to_timestamp($2) WHERE task_id = $1", english, LATER + 30)
    before = await store.last_step(conn)
    await insert_step(conn, french, "queued", LATER)
    await insert_step(conn, french, "offered", LATER + 10)
    accepted = await insert_step(conn, french, "accepted", LATER + 20)  # waited 20 s: within a 20 s target
    await insert_step(conn, french, "customer_message", LATER + 25)
    await insert_step(conn, english, "queued", LATER + 30)
    await insert_step(conn, english, "accepted", LATER + 61)  # waited 31 s, in the next minute
    last = await store.last_step(conn)
    kinds = ["abandoned", "accepted", "queued"]

    def counted(rows) -> set:
        return {(r["minute"], r["kind"], r["language"], r["required"], r["stage"], r["n"], r["within"]) for r in rows}

    assert counted(await store.steps_per_minute(conn, before, last, kinds, 20.0)) == {
        (LATER_MINUTE, "queued", "fr", '{"billing": 1}', 0, 1, 1),
        (LATER_MINUTE, "accepted", "fr", '{"billing": 1}', 0, 1, 1),
        (LATER_MINUTE, "queued", "en", '{"billing": 1}', 2, 1, 1),
        (LATER_MINUTE + 1, "accepted", "en", '{"billing": 1}', 2, 1, 0),
    }
    assert counted(await store.steps_per_minute(conn, before, accepted - 1, ["accepted"], 20.0)) == set()
    assert counted(await store.steps_per_minute(conn, accepted - 1, accepted, kinds, 20.0)) == {
        (LATER_MINUTE, "accepted", "fr", '{"billing": 1}', 0, 1, 1)
    }
    assert await store.steps_per_minute(conn, last, last, kinds, 20.0) == []


async def test_the_bots_answers_are_counted_per_minute_from_a_time(conn):
    assert await store.bot_answers_per_minute(conn, LATER) == {}
    for kind, at in [
        ("bot_answered", LATER - 1),  # before `since`
        ("bot_answered", LATER),
        ("bot_answered", LATER + 59),
        ("handed_off", LATER + 10),
        ("bot_answered", LATER + 61),
    ]:
        await conn.execute(
            "INSERT INTO kpi_outcomes (outcome_id, conversation_id, kind, at) VALUES ($1, $1, $2, to_timestamp($3))",
            unique("outcome"),
            kind,
            at,
        )
    assert await store.bot_answers_per_minute(conn, LATER) == {LATER_MINUTE: 2, LATER_MINUTE + 1: 1}
    assert await store.bot_answers_per_minute(conn, LATER + 60) == {LATER_MINUTE + 1: 1}
    assert await store.bot_answers_per_minute(conn, LATER + 120) == {}
