-- routing (issue 4): skills with levels, capacity per channel, timed states, reservations, task history.

-- Agents: skill levels ({"billing": 3}), capacity per channel ({"chat": 3, "voice": 1}),
-- state offline | available | busy | wrap_up | break; wrap-up and offers are timed.
ALTER TABLE agents
    ADD COLUMN skill_levels jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN capacity     jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN state_until  timestamptz;
CREATE INDEX agents_token ON agents (token_sha256) WHERE token_sha256 <> '';

-- Tasks: what the hand-off requires ({"billing": 2}), preferred skills, its channel, its kind
-- (handoff | callback), overflow stage, the agents who declined it, and the current reservation.
-- status: queued | offered | assigned | closed | abandoned.
ALTER TABLE tasks
    ADD COLUMN kind             text        NOT NULL DEFAULT 'handoff',
    ADD COLUMN customer_id      text        NOT NULL DEFAULT '',
    ADD COLUMN intent           text        NOT NULL DEFAULT '',
    ADD COLUMN channel          text        NOT NULL DEFAULT 'chat',
    ADD COLUMN required         jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN preferred        text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN stage            int         NOT NULL DEFAULT 0,
    ADD COLUMN queue            text        NOT NULL DEFAULT '',
    ADD COLUMN declined_by      text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN offer_expires_at timestamptz,
    ADD COLUMN due_at           timestamptz,                        -- a callback: not offered before
    ADD COLUMN queued_at        timestamptz NOT NULL DEFAULT now(),  -- (re)entered the queue: aging, overflow
    ADD COLUMN note             text        NOT NULL DEFAULT '',
    ADD COLUMN last_position    int,
    ADD COLUMN last_update_at   timestamptz,
    ADD COLUMN updates_sent     int         NOT NULL DEFAULT 0;
DROP INDEX tasks_open_per_conversation;
CREATE UNIQUE INDEX tasks_open_per_conversation ON tasks (conversation_id) WHERE status IN ('queued', 'offered', 'assigned');
CREATE INDEX tasks_active_by_agent ON tasks (agent_id) WHERE status IN ('offered', 'assigned');
CREATE INDEX tasks_by_customer ON tasks (customer_id, created_at);

-- Every step of a task: queued, offered, accepted, rejected, offer_timeout, overflow, transferred,
-- customer_message, abandoned, callback_requested, closed.
CREATE TABLE task_events (
    id       bigserial   PRIMARY KEY,
    task_id  text        NOT NULL REFERENCES tasks,
    kind     text        NOT NULL,
    agent_id text        NOT NULL DEFAULT '',
    detail   text        NOT NULL DEFAULT '',
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_events_task ON task_events (task_id, id);

-- analytics: the agents' answers to assist suggestions (used | edited | ignored), once each.
CREATE TABLE kpi_suggestions (
    feedback_id   text        PRIMARY KEY,
    suggestion_id text        NOT NULL,
    agent_id      text        NOT NULL DEFAULT '',
    intent        text        NOT NULL DEFAULT '',
    language      text        NOT NULL DEFAULT '',
    source        text        NOT NULL DEFAULT '',
    use           text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
