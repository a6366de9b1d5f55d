"""Every SQL statement routing runs, and nothing else: named statements and one small function per statement, each
taking a connection (or the pool, which answers the same calls). Contract tests against the real PostgreSQL:
tests/integration/test_routing_store.py."""

import json

import asyncpg

from relais.common.unit_of_work import headers_json
from relais.routing.places import Places

AGENT_COLUMNS = (
    "agent_id, token_sha256, languages, skill_levels::text AS levels, capacity::text AS capacity,"
    " extract(epoch FROM idle_since) AS idle, state"
)
TASK_COLUMNS = (
    "task_id, language, channel, required::text AS required, priority, extract(epoch FROM queued_at) AS queued,"
    " preferred, stage, declined_by, extract(epoch FROM due_at) AS due"
)
ACTIVE = "status IN ('offered', 'assigned')"  # the tasks an agent holds
# Who is signed in (each agent with its sign-in's token), as one value: it changes with every sign-in and sign-out.
SIGNED_IN = (
    "SELECT coalesce(md5(string_agg(agent_id || ' ' || token_sha256, ',' ORDER BY agent_id)), '') FROM agents"
    " WHERE state <> 'offline'"
)
# The languages someone signed in speaks (as ARRAY(...), read once per statement, not once per task).
SPOKEN = "SELECT DISTINCT unnest(languages) FROM agents WHERE state <> 'offline'"
# The agents signed in without a stream here ($1: those with one).
UNCONNECTED = "SELECT agent_id FROM agents WHERE state <> 'offline' AND agent_id <> ALL($1::text[])"


def _overflow_due(steps: str, count: str) -> str:
    """The waiting tasks due their next overflow step (`steps`: the steps' after_seconds, `count`: how many): stage by
    stage, each a range of the tasks_waiting_by_stage index, not a pass over the queue."""
    return f"""
SELECT t.task_id, t.stage, date_part('epoch', now() - t.queued_at) AS waited
FROM generate_subscripts({steps}::float8[], 1) AS step,
     LATERAL (SELECT task_id, stage, queued_at FROM tasks WHERE status = 'queued' AND stage = step - 1
                     AND queued_at <= now() - make_interval(secs => ({steps}::float8[])[step])
                     AND (due_at IS NULL OR due_at <= now())) t
WHERE step <= {count}"""


OVERFLOW_DUE = _overflow_due("$1", "$2")
# Callbacks that came due within the last $1 seconds (twice the tick): they are offered at the tick they come due.
CALLBACK_DUE = (
    "SELECT EXISTS (SELECT 1 FROM tasks WHERE status = 'queued' AND due_at BETWEEN now() - make_interval(secs => $1)"
    " AND now())"
)
# What the ticker's step would act on, in one read: the same conditions as its own queries (tick), each as a yes or no.
TICK_DUE = f"""
SELECT ARRAY({UNCONNECTED}) AS unconnected, ({SIGNED_IN}) AS signed_in,
       EXISTS (SELECT FROM tasks WHERE status = 'offered' AND offer_expires_at < now()) AS expired,
       EXISTS (SELECT FROM agents WHERE state = 'wrap_up' AND state_until < now()) AS wrap_up_over,
       EXISTS ({_overflow_due("$2", "$3")}) AS overflow,
       EXISTS (SELECT FROM tasks WHERE status = 'queued' AND stage < $3 AND queued_at >= now() - interval '5 seconds'
               AND language = ANY (ARRAY({SPOKEN}))) AS widen,
       EXISTS (SELECT FROM tasks WHERE status = 'queued' AND due_at BETWEEN now() - make_interval(secs => $4) AND now()) AS callback
"""
# The waiting customers due to hear again (not told for queue_update_seconds, $1): their kinds of needs.
QUEUE_DUE = (
    "status = 'queued' AND kind = 'handoff' AND coalesce(last_update_at, queued_at) < now() - make_interval(secs => $1)"
)
QUEUE_DUE_KINDS = f"SELECT DISTINCT language, channel, required::text AS required, stage FROM tasks WHERE {QUEUE_DUE}"
# Of those, the ones with news: nobody serves their needs now and they were not told so (or the reverse), or advisors
# serve them and their place improved since they were told it. $2: aging_seconds_per_point; $3-$6: the kinds of needs
# nobody serves. Places in rules.queue_order's order, each queue sorted once, and only when a customer due in it is
# served (told nobody serves them, they have no place to hear).
QUEUE_NEWS = f"""
WITH unserved AS (SELECT * FROM unnest($3::text[], $4::text[], $5::jsonb[], $6::int[]) AS u (language, channel, required, stage)),
due AS (SELECT t.task_id, t.language, t.updates_sent, t.last_position, t.told_nobody,
               EXISTS (SELECT FROM unserved u WHERE (u.language, u.channel, u.required, u.stage)
                                                  = (t.language, t.channel, t.required, t.stage)) AS nobody
        FROM tasks t WHERE {QUEUE_DUE}),
q AS (SELECT task_id, language, queued_at,
             priority + floor(greatest(0, date_part('epoch', now() - queued_at)) / $2)::int AS eff
      FROM tasks WHERE status = 'queued' AND (due_at IS NULL OR due_at <= now())
                       AND language IN (SELECT language FROM due WHERE NOT nobody)),
places AS (SELECT task_id, row_number() OVER (PARTITION BY language COLLATE "C"
                                              ORDER BY eff DESC, queued_at, task_id COLLATE "C") AS place FROM q)
SELECT due.task_id, due.updates_sent FROM due LEFT JOIN places USING (task_id)
WHERE due.nobody <> due.told_nobody OR (NOT due.nobody AND (due.last_position IS NULL OR coalesce(places.place, 0) < due.last_position))
ORDER BY due.task_id"""
# A hand-off that an agent can take at once, in one statement (one round trip, its own transaction, committed —
# fsync included — before PostgreSQL answers): the deduplication row, the task already offered, its 'queued' and
# 'offered' steps, the agent's reservation and, when the agent was available, its state change in the outbox.
# A redelivered hand-off finds its processed_events row and changes nothing.
HANDOFF_OFFERED = """
WITH first AS (
    INSERT INTO processed_events (consumer, event_key) VALUES ('routing', $1) ON CONFLICT DO NOTHING RETURNING event_key),
t AS (
    INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, traceparent, kind, customer_id, intent,
                       channel, required, preferred, status, agent_id, offered_at, offer_expires_at)
    SELECT $2, $3, $4, $5, $6, $7, $8, 'handoff', $9, $10, $11, $12::jsonb, $13, 'offered', $15, now(),
           now() + make_interval(secs => $16) FROM first
    RETURNING task_id, offer_expires_at),
steps AS (
    INSERT INTO task_events (task_id, kind, agent_id, detail)
    SELECT t.task_id, s.kind, s.agent_id, s.detail FROM t,
           (VALUES (1, 'queued', '', $14::text), (2, 'offered', $15::text, '')) AS s (n, kind, agent_id, detail) ORDER BY s.n),
old AS (SELECT state FROM agents WHERE agent_id = $15 AND EXISTS (SELECT FROM t) FOR UPDATE),
a AS (
    UPDATE agents SET idle_since = now(), updated_at = now(),
           state = CASE WHEN old.state = 'available' THEN 'busy' ELSE old.state END
    FROM old WHERE agents.agent_id = $15 RETURNING old.state AS previous),
o AS (
    INSERT INTO outbox (consumer, event_key, seq, topic, key, value, headers)
    SELECT 'routing', $1, 0, $17, $18, $19, $20 FROM a WHERE a.previous = 'available')
SELECT EXISTS (SELECT FROM t) AS first, (SELECT offer_expires_at FROM t) AS expires, (SELECT previous FROM a) AS previous
"""
# A new task and its 'queued' step, in one statement; returns when it was queued (epoch seconds).
QUEUE_TASK = (
    "WITH t AS (INSERT INTO tasks (task_id, conversation_id, language, skill, priority, context, traceparent, kind,"
    " customer_id, intent, channel, required, preferred, stage)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $15) RETURNING task_id, queued_at)"
    " INSERT INTO task_events (task_id, kind, detail) SELECT task_id, 'queued', $14 FROM t"
    " RETURNING (SELECT date_part('epoch', queued_at) FROM t)"
)
# The offer of a waiting task to an agent, with its 'offered' step (nothing when the task no longer waits).
OFFER = (
    "WITH o AS (UPDATE tasks SET status = 'offered', agent_id = $2, offered_at = now(),"
    " offer_expires_at = now() + make_interval(secs => $3) WHERE task_id = $1 AND status = 'queued' RETURNING task_id)"
    " INSERT INTO task_events (task_id, kind, agent_id) SELECT task_id, 'offered', $2 FROM o"
)
# The agent reserved for an offer: busy if it was available; returns its state before.
RESERVE = (
    "UPDATE agents a SET idle_since = now(), updated_at = now(),"
    " state = CASE WHEN old.state = 'available' THEN 'busy' ELSE old.state END"
    " FROM (SELECT state FROM agents WHERE agent_id = $1 FOR UPDATE) old WHERE a.agent_id = $1 RETURNING old.state"
)
# An offer taken back: the task waits again (unless it ended meanwhile), declined by the agent when $3.
WITHDRAW = (
    "UPDATE tasks SET status = CASE WHEN status = 'offered' THEN 'queued' ELSE status END, offer_expires_at = NULL,"
    " agent_id = CASE WHEN status = 'offered' THEN NULL ELSE agent_id END,"
    " declined_by = CASE WHEN $3 THEN array_append(declined_by, $2) ELSE declined_by END WHERE task_id = $1"
    " RETURNING conversation_id"
)
# The open conversations of an agent who left, back in the queue as rules.requeue_after_leaving says: $2 stage, $3 who
# declined it, $4 the note; queued_at is not set, so they keep their place ahead of newcomers.
REQUEUE_ASSIGNED = (
    "UPDATE tasks SET status = 'queued', agent_id = NULL, stage = $2, declined_by = $3::text[],"
    " note = $4 WHERE agent_id = $1 AND status = 'assigned' RETURNING task_id, conversation_id, language, traceparent"
)
# A transfer as rules.transferred says: $3 required, $4 preferred, $5 stage, $6 declined_by; queued from now.
TRANSFER = (
    "UPDATE tasks SET status = 'queued', agent_id = NULL, required = $3::jsonb, preferred = $4::text[], stage = $5,"
    " queued_at = now(), note = $7, declined_by = $6::text[] WHERE task_id = $1 AND status = 'assigned' AND agent_id = $2"
    " RETURNING conversation_id"
)
CALLBACK = (
    "UPDATE tasks SET kind = 'callback', channel = 'voice', due_at = $2, queued_at = $2,"
    " callback_phone = $3, phone_asked_at = NULL WHERE task_id = $1"
)
TOLD = (
    "UPDATE tasks SET last_position = t.position, last_update_at = now(), updates_sent = updates_sent + 1,"
    " callback_offered = t.callback_offered, told_nobody = t.told_nobody"
    " FROM unnest($1::text[], $2::int[], $3::bool[], $4::bool[]) AS t(task_id, position, callback_offered, told_nobody)"
    " WHERE tasks.task_id = t.task_id"
)
RECENT_HANDLE = (
    "SELECT avg(extract(epoch FROM closed_at - assigned_at)) FROM (SELECT closed_at, assigned_at FROM tasks"
    " WHERE status = 'closed' AND language = $1 AND assigned_at IS NOT NULL ORDER BY closed_at DESC LIMIT 50) recent"
)
SIGN_IN = (
    "INSERT INTO agents (agent_id, display_name, languages, skills, skill_levels, capacity, token_sha256, idle_since)"
    " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, now()) ON CONFLICT (agent_id) DO UPDATE SET"
    " display_name = $2, languages = $3, skills = $4, skill_levels = $5::jsonb, capacity = $6::jsonb,"
    " token_sha256 = $7, updated_at = now()"
)
# What an agent holds, as its front end shows it after a (re)connect: an offer that expired while it was away is the
# ticker's to withdraw and offer again, not shown.
HELD = (
    "SELECT * FROM tasks t WHERE agent_id = $1 AND (status = 'assigned' OR status = 'offered'"
    " AND offer_expires_at > now()) ORDER BY offered_at,"
    " (SELECT max(id) FROM task_events e WHERE e.task_id = t.task_id AND e.kind = 'offered')"
)
# The customer's other conversations, newest first: what the bot or an advisor did with each.
HISTORY = (
    "SELECT c.conversation_id, c.created_at, b.handed_off, b.context AS bot_context, t.status, t.disposition,"
    " t.resolved, t.intent,"
    " (SELECT text FROM turns WHERE conversation_id = c.conversation_id ORDER BY seq LIMIT 1) AS first_text"
    " FROM conversations c LEFT JOIN bot_conversations b USING (conversation_id)"
    " LEFT JOIN LATERAL (SELECT status, disposition, resolved, intent FROM tasks WHERE conversation_id = c.conversation_id"
    "   ORDER BY created_at DESC LIMIT 1) t ON true"
    " WHERE c.customer_id = $1 AND c.conversation_id <> $2 ORDER BY c.created_at DESC LIMIT 10"
)


# --- tasks: queued, offered, withdrawn, requeued ---


async def handoff_offered(
    conn,
    key: str,
    task_id: str,
    context,
    need,
    detail: str,
    traceparent: str,
    agent_id: str,
    offer_seconds: float,
    busy,
) -> asyncpg.Record:
    """HANDOFF_OFFERED; `busy` is the agent's state-change record, stored only if it was available."""
    return await conn.fetchrow(
        HANDOFF_OFFERED,
        key,
        task_id,
        context.conversation_id,
        need.language,
        ",".join(need.required),
        need.priority,
        context.SerializeToString(),
        traceparent,
        context.customer.id,
        context.intent,
        need.channel,
        json.dumps(need.required),
        list(need.preferred),
        detail,
        agent_id,
        offer_seconds,
        busy.topic,
        busy.key,
        busy.value,
        headers_json(busy.headers),
    )


async def queue_task(conn, task_id: str, context, need, traceparent: str, kind: str, detail: str, stage: int) -> float:
    """QUEUE_TASK: the new task waits; returns its queued_at (epoch seconds)."""
    return await conn.fetchval(
        QUEUE_TASK,
        task_id,
        context.conversation_id,
        need.language,
        ",".join(need.required),
        need.priority,
        context.SerializeToString(),
        traceparent,
        kind,
        context.customer.id,
        context.intent,
        need.channel,
        json.dumps(need.required),
        list(need.preferred),
        detail,
        stage,
    )


async def task_event(conn, task_id: str, kind: str, agent_id: str = "", detail: str = "") -> None:
    """One step of a task in task_events: queued, offered, rejected, overflow, closed, ..."""
    await conn.execute(
        "INSERT INTO task_events (task_id, kind, agent_id, detail) VALUES ($1, $2, $3, $4)",
        task_id,
        kind,
        agent_id or "",
        detail,
    )


async def task_event_count(conn, task_id: str, kind: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM task_events WHERE task_id = $1 AND kind = $2", task_id, kind)


async def task(conn, task_id: str):
    return await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1", task_id)


async def task_of_conversation(conn, conversation_id: str):
    """The conversation's open task, else its latest; locked."""
    return await conn.fetchrow(
        "SELECT * FROM tasks WHERE conversation_id = $1 ORDER BY status IN ('queued', 'offered', 'assigned') DESC,"
        " created_at DESC LIMIT 1 FOR UPDATE",
        conversation_id,
    )


async def task_context(conn, task_id: str) -> bytes:
    return await conn.fetchval("SELECT context FROM tasks WHERE task_id = $1", task_id)


async def task_context_and_trace(conn, task_id: str):
    return await conn.fetchrow("SELECT context, traceparent FROM tasks WHERE task_id = $1", task_id)


async def set_context(conn, task_id: str, context: bytes) -> None:
    await conn.execute("UPDATE tasks SET context = $2 WHERE task_id = $1", task_id, context)


async def task_for_dispatch(conn, task_id: str):
    return await conn.fetchrow(f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = $1", task_id)


async def tasks_for_dispatch(conn, task_ids: list[str]) -> list:
    """The tasks as the rules see them, with their traceparent (what is said to their customers is in their trace)."""
    return await conn.fetch(f"SELECT {TASK_COLUMNS}, traceparent FROM tasks WHERE task_id = ANY($1::text[])", task_ids)


async def waiting_tasks(conn, languages: list[str]) -> list:
    """The tasks that may be offered now (callbacks from their due time), in these languages."""
    return await conn.fetch(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = 'queued'"
        " AND (due_at IS NULL OR due_at <= now()) AND language = ANY($1::text[])",
        languages,
    )


async def offer(conn, task_id: str, agent_id: str, offer_seconds: float) -> None:
    await conn.execute(OFFER, task_id, agent_id, offer_seconds)


async def reserve(conn, agent_id: str) -> str | None:
    """RESERVE; the agent's state before."""
    return await conn.fetchval(RESERVE, agent_id)


async def withdraw(conn, task_id: str, agent_id: str, declined: bool) -> str | None:
    """WITHDRAW; the task's conversation."""
    return await conn.fetchval(WITHDRAW, task_id, agent_id, declined)


async def offered_to(conn, agent_id: str) -> list[str]:
    return [
        r["task_id"]
        for r in await conn.fetch("SELECT task_id FROM tasks WHERE agent_id = $1 AND status = 'offered'", agent_id)
    ]


async def requeue_assigned(conn, agent_id: str, stage: int, declined_by: list[str], note: str) -> list:
    return await conn.fetch(REQUEUE_ASSIGNED, agent_id, stage, declined_by, note)


async def waited_seconds(conn, task_id: str) -> int:
    return int(
        await conn.fetchval("SELECT extract(epoch FROM now() - created_at) FROM tasks WHERE task_id = $1", task_id)
    )


async def abandon(conn, task_id: str) -> None:
    await conn.execute(
        "UPDATE tasks SET status = 'abandoned', closed_at = now(), disposition = 'abandoned',"
        " resolved = false, callback_phone = '' WHERE task_id = $1",
        task_id,
    )


async def answered_after_end(conn, task_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT FROM task_events WHERE task_id = $1 AND kind = 'after_end')", task_id
    )


async def make_callback(conn, task_id: str, due, phone: str) -> None:
    await conn.execute(CALLBACK, task_id, due, phone)


async def ask_phone(conn, task_id: str) -> None:
    await conn.execute("UPDATE tasks SET phone_asked_at = now() WHERE task_id = $1", task_id)


async def conversation_phone(conn, conversation_id: str) -> str:
    """The number intake kept for the conversation ('' when unknown)."""
    return (
        await conn.fetchval("SELECT callback_phone FROM conversations WHERE conversation_id = $1", conversation_id)
        or ""
    )


async def set_stage(conn, task_id: str, stage: int) -> None:
    """An overflow step: the task's needs widen, and whoever declined it may be offered it again."""
    await conn.execute("UPDATE tasks SET stage = $2, declined_by = '{}' WHERE task_id = $1", task_id, stage)


async def accept(conn, task_id: str, agent_id: str) -> bool:
    """The agent's offer becomes its assignment; False when it was not (or no longer) offered to it."""
    return (
        await conn.execute(
            "UPDATE tasks SET status = 'assigned', assigned_at = now(), offer_expires_at = NULL"
            " WHERE task_id = $1 AND status = 'offered' AND agent_id = $2",
            task_id,
            agent_id,
        )
        == "UPDATE 1"
    )


async def offered_status(conn, task_id: str, agent_id: str) -> str | None:
    """The task's status if it is this agent's; locked."""
    return await conn.fetchval(
        "SELECT status FROM tasks WHERE task_id = $1 AND agent_id = $2 FOR UPDATE", task_id, agent_id
    )


async def assigned_context(conn, task_id: str, agent_id: str):
    """Context and traceparent of the task if assigned to this agent; locked."""
    return await conn.fetchrow(
        "SELECT context, traceparent FROM tasks WHERE task_id = $1 AND status = 'assigned'"
        " AND agent_id = $2 FOR UPDATE",
        task_id,
        agent_id,
    )


async def transfer(
    conn,
    task_id: str,
    agent_id: str,
    required: dict[str, int],
    preferred: list[str],
    stage: int,
    declined_by: list[str],
    note: str,
) -> str | None:
    """TRANSFER; the task's conversation, None when it was not (or no longer) this agent's."""
    return await conn.fetchval(TRANSFER, task_id, agent_id, json.dumps(required), preferred, stage, declined_by, note)


async def close(conn, task_id: str, agent_id: str, disposition: str, resolved: bool) -> bool:
    return (
        await conn.execute(
            "UPDATE tasks SET status = 'closed', closed_at = now(), disposition = $3, resolved = $4"
            " WHERE task_id = $1 AND status = 'assigned' AND agent_id = $2",
            task_id,
            agent_id,
            disposition,
            resolved,
        )
        == "UPDATE 1"
    )


async def holder(conn, task_id: str) -> str | None:
    """The agent holding the task (offered or assigned), if any."""
    return await conn.fetchval(f"SELECT agent_id FROM tasks WHERE task_id = $1 AND {ACTIVE}", task_id)


async def held(conn, agent_id: str) -> list:
    return await conn.fetch(HELD, agent_id)


# --- waiting customers ---


async def load_places(conn, aging_seconds_per_point: float) -> Places:
    """The waiting customers' places as the database has them (rules.queue_order's order)."""
    places = Places(aging_seconds_per_point)
    for row in await conn.fetch(
        "SELECT task_id, language, priority, date_part('epoch', queued_at) AS queued FROM tasks WHERE status = 'queued'"
    ):
        places.add(row["task_id"], row["language"], row["priority"], row["queued"])
    return places


async def waiting_counts(conn) -> dict[str, int]:
    """How many tasks wait per language."""
    return dict(await conn.fetch("SELECT language, count(*) FROM tasks WHERE status = 'queued' GROUP BY 1"))


# What the metrics show (relais.common.metrics): the customers waiting now (a callback once due) per language and overflow
# stage, with the longest wait; the agents per state.
METRICS_QUEUES = (
    "SELECT language, stage, count(*) AS waiting, date_part('epoch', now() - min(queued_at)) AS oldest FROM tasks"
    " WHERE status = 'queued' AND queued_at <= now() GROUP BY 1, 2"
)
METRICS_AGENTS = "SELECT state, count(*) FROM agents GROUP BY 1"


async def metrics_snapshot(conn) -> tuple[list, dict[str, int]]:
    """METRICS_QUEUES' rows, and METRICS_AGENTS as state -> count."""
    return await conn.fetch(METRICS_QUEUES), dict(await conn.fetch(METRICS_AGENTS))


async def record_told(
    conn, task_ids: list[str], positions: list[int], callback_offered: list[bool], told_nobody: list[bool]
) -> None:
    """TOLD: what each waiting customer was just told."""
    await conn.execute(TOLD, task_ids, positions, callback_offered, told_nobody)


async def recent_handle(conn, language: str) -> float | None:
    handle = await conn.fetchval(RECENT_HANDLE, language)
    return float(handle) if handle else None


async def queue_due_kinds(conn, update_seconds: float) -> list:
    return await conn.fetch(QUEUE_DUE_KINDS, update_seconds)


async def queue_news(conn, update_seconds: float, aging_seconds_per_point: float, unserved: list) -> list:
    """QUEUE_NEWS, given the kinds of needs nobody serves (rows of QUEUE_DUE_KINDS)."""
    return await conn.fetch(
        QUEUE_NEWS,
        update_seconds,
        aging_seconds_per_point,
        [k["language"] for k in unserved],
        [k["channel"] for k in unserved],
        [k["required"] for k in unserved],
        [k["stage"] for k in unserved],
    )


# --- agents ---


async def sign_in(
    conn,
    agent_id: str,
    display_name: str,
    languages: list[str],
    levels: dict[str, int],
    capacity: dict[str, int],
    token_sha256: str,
) -> None:
    await conn.execute(
        SIGN_IN,
        agent_id,
        display_name,
        languages,
        sorted(levels),
        json.dumps(levels),
        json.dumps(capacity),
        token_sha256,
    )


async def agent_of_token(conn, token_sha256: str) -> str | None:
    return await conn.fetchval(
        "SELECT agent_id FROM agents WHERE token_sha256 = $1 AND state <> 'offline'", token_sha256
    )


async def revoke_token(conn, agent_id: str) -> None:
    await conn.execute("UPDATE agents SET token_sha256 = '' WHERE agent_id = $1", agent_id)


async def agent_state(conn, agent_id: str) -> str | None:
    return await conn.fetchval("SELECT state FROM agents WHERE agent_id = $1", agent_id)


async def state_and_holding(conn, agent_id: str) -> tuple[str | None, int]:
    """The agent's state, and how many tasks it holds (offered or assigned)."""
    row = await conn.fetchrow(
        f"SELECT state, (SELECT count(*) FROM tasks WHERE agent_id = $1 AND {ACTIVE}) AS holding"
        " FROM agents WHERE agent_id = $1",
        agent_id,
    )
    return (row["state"], row["holding"]) if row is not None else (None, 0)


async def holding(conn, agent_id: str) -> int:
    """How many tasks the agent holds (offered or assigned)."""
    return await conn.fetchval(f"SELECT count(*) FROM tasks WHERE agent_id = $1 AND {ACTIVE}", agent_id)


async def set_agent_state(conn, agent_id: str, state: str, until_seconds: float) -> None:
    await conn.execute(
        "UPDATE agents SET state = $2, state_until = now() + make_interval(secs => $3),"
        " updated_at = now() WHERE agent_id = $1",
        agent_id,
        state,
        until_seconds,
    )


async def touch_idle(conn, agent_id: str) -> None:
    await conn.execute("UPDATE agents SET idle_since = now() WHERE agent_id = $1", agent_id)


async def signed_in(conn, language: str | None = None) -> list:
    """The agents signed in (in any state but offline), of one language or all."""
    return await conn.fetch(
        f"SELECT {AGENT_COLUMNS} FROM agents WHERE state <> 'offline' AND ($1::text IS NULL OR $1 = ANY(languages))",
        language,
    )


async def offerable_agents(conn) -> tuple[list, dict[str, dict[str, int]]]:
    """The agents who may get offers, and each one's load per channel."""
    rows = await conn.fetch(f"SELECT {AGENT_COLUMNS} FROM agents WHERE state IN ('available', 'busy')")
    load: dict[str, dict[str, int]] = {}
    for row in await conn.fetch(f"SELECT agent_id, channel, count(*) AS n FROM tasks WHERE {ACTIVE} GROUP BY 1, 2"):
        load.setdefault(row["agent_id"], {})[row["channel"]] = row["n"]
    return rows, load


async def unconnected(conn, connected: list[str]) -> set[str]:
    return {r["agent_id"] for r in await conn.fetch(UNCONNECTED, connected)}


async def signed_in_signature(conn) -> str:
    return await conn.fetchval(SIGNED_IN)


# --- the ticker ---


async def tick_due(conn, connected: list[str], steps: list[float], window_seconds: float):
    return await conn.fetchrow(TICK_DUE, connected, steps, len(steps), window_seconds)


async def expired_offers(conn) -> list:
    return await conn.fetch(
        "SELECT task_id, agent_id FROM tasks WHERE status = 'offered' AND offer_expires_at < now() FOR UPDATE"
    )


async def wrap_ups_over(conn) -> list[str]:
    return [
        r["agent_id"]
        for r in await conn.fetch("SELECT agent_id FROM agents WHERE state = 'wrap_up' AND state_until < now()")
    ]


async def overflow_due(conn, steps: list[float]) -> list:
    return await conn.fetch(OVERFLOW_DUE, steps, len(steps))


async def widenable(conn, stages: int, recent_only: bool) -> list:
    """Waiting tasks below the last overflow stage in a language someone signed in speaks (a long queue nobody here
    speaks is not read); with `recent_only`, those (re)queued in the last seconds (a range of tasks_waiting_since)."""
    recent = " AND queued_at >= now() - interval '5 seconds'" if recent_only else ""
    return await conn.fetch(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = 'queued' AND stage < $1{recent}"
        f" AND language = ANY (ARRAY({SPOKEN}))",
        stages,
    )


async def callback_due(conn, window_seconds: float) -> bool:
    return await conn.fetchval(CALLBACK_DUE, window_seconds)


async def unpublished(conn, consumer: str) -> list[str]:
    """Event keys whose outputs were committed but not marked sent for more than a few seconds."""
    return [
        r["event_key"]
        for r in await conn.fetch(
            "SELECT DISTINCT event_key FROM outbox WHERE consumer = $1 AND NOT published"
            " AND created_at < now() - interval '5 seconds'",
            consumer,
        )
    ]


# --- what an agent is shown ---


async def history(conn, customer_id: str, conversation_id: str) -> list:
    return await conn.fetch(HISTORY, customer_id, conversation_id)


# --- the supervisors' live view (live_api.LiveFeed, in one read-only snapshot) ---

# Who waits now (a callback once due), per language, needs and overflow stage, with the oldest queued_at.
LIVE_WAITING = (
    "SELECT language, required::text AS required, stage, count(*) AS n, extract(epoch FROM min(queued_at)) AS oldest"
    " FROM tasks WHERE status IN ('queued', 'offered') AND (due_at IS NULL OR due_at <= now())"
    " GROUP BY language, required::text, stage"
)
# The steps in ($1, $2] (task_events.id), counted per minute, kind and queue, and how many waited at most $4 seconds.
# Routing writes them one transaction at a time under its decision lock, so ids become visible in order and a cursor
# on the id misses none; counting in the database keeps a refresh's cost in routing to a few rows, however many steps.
STEPS_PER_MINUTE = (
    "SELECT floor(extract(epoch FROM e.at) / 60)::bigint AS minute, e.kind, t.language, t.required::text AS required,"
    " t.stage, count(*) AS n, count(*) FILTER (WHERE e.at - t.queued_at <= make_interval(secs => $4)) AS within"
    " FROM task_events e JOIN tasks t USING (task_id) WHERE e.id > $1 AND e.id <= $2 AND e.kind = ANY($3::text[])"
    " GROUP BY 1, 2, 3, 4, 5"
)
LAST_STEP = "SELECT coalesce(max(id), 0) FROM task_events"
STEP_FROM = "SELECT id, extract(epoch FROM at) FROM task_events WHERE id >= $1 ORDER BY id LIMIT 1"
BOT_ANSWERS_PER_MINUTE = (
    "SELECT floor(extract(epoch FROM at) / 60)::bigint AS minute, count(*) AS n FROM kpi_outcomes"
    " WHERE kind = 'bot_answered' AND at >= to_timestamp($1) GROUP BY 1"
)


async def database_now(conn) -> float:
    """The database's clock (epoch seconds): the steps' times are its, not this host's."""
    return float(await conn.fetchval("SELECT extract(epoch FROM now())"))


async def waiting_groups(conn) -> list:
    """LIVE_WAITING's rows: language, required (JSON text), stage, n, oldest (epoch seconds)."""
    return await conn.fetch(LIVE_WAITING)


async def agents_and_languages(conn) -> list:
    """Every agent's state and languages (offline ones too: the view shows each state)."""
    return await conn.fetch("SELECT state, languages FROM agents")


async def last_step(conn) -> int:
    """The newest task_events.id, 0 when there is none."""
    return int(await conn.fetchval(LAST_STEP))


async def step_from(conn, step_id: int) -> tuple[int, float] | None:
    """The first step whose id is at least `step_id`, as (id, epoch seconds); None past the last."""
    row = await conn.fetchrow(STEP_FROM, step_id)
    return None if row is None else (row[0], float(row[1]))


async def last_step_before(conn, since: float) -> int:
    """The id of the last step before `since` (epoch seconds), 0 when none: bisected on the primary key, since ids grow
    with time, rather than a pass over the whole history."""
    low, high = 0, await last_step(conn)  # the answer is in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        found = await step_from(conn, middle)
        if found is None or found[1] >= since:
            high = middle - 1
        else:
            low = found[0]
    return low


async def steps_per_minute(conn, after: int, upto: int, kinds: list[str], within_seconds: float) -> list:
    """STEPS_PER_MINUTE's rows: minute, kind, language, required (JSON text), stage, n, within."""
    return await conn.fetch(STEPS_PER_MINUTE, after, upto, kinds, within_seconds)


async def bot_answers_per_minute(conn, since: float) -> dict[int, int]:
    """The bot's answers (analytics' kpi_outcomes) per minute (epoch seconds // 60) from `since` (epoch seconds)."""
    return {r["minute"]: r["n"] for r in await conn.fetch(BOT_ANSWERS_PER_MINUTE, since)}
