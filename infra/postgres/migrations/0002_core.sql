-- Exactly-once processing: each consumer records the events it applied (see relais.common.outbox).
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_key    text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_key)
);

-- Records to publish, written in the same transaction as the state change that produced them.
CREATE TABLE outbox (
    consumer   text        NOT NULL,
    event_key  text        NOT NULL,
    seq        int         NOT NULL,
    topic      text        NOT NULL,
    key        bytea       NOT NULL,
    value      bytea       NOT NULL,
    headers    text        NOT NULL,
    published  boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_key, seq)
);
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE NOT published;

-- intake: conversations and their turns as received (normalised).
CREATE TABLE conversations (
    conversation_id text        PRIMARY KEY,
    customer_id     text        NOT NULL,
    channel         text        NOT NULL,
    language        text        NOT NULL,
    tier            text        NOT NULL DEFAULT '',
    traceparent     text        NOT NULL DEFAULT '',  -- the conversation's trace: one per conversation
    turn_count      int         NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_customer ON conversations (customer_id, created_at);

CREATE TABLE turns (
    turn_id         text        PRIMARY KEY,  -- "<source>#<id>" of the inbound CloudEvent
    conversation_id text        NOT NULL REFERENCES conversations,
    seq             int         NOT NULL,
    language        text        NOT NULL,
    text            text        NOT NULL,
    sent_at         timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq)
);

-- bot: what the bot knows of each conversation, as the ConversationContext it would hand off.
CREATE TABLE bot_conversations (
    conversation_id text        PRIMARY KEY,
    context         bytea       NOT NULL,  -- relais.v1.ConversationContext
    failed_attempts int         NOT NULL DEFAULT 0,
    handed_off      boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- routing: agents and tasks.
CREATE TABLE agents (
    agent_id      text        PRIMARY KEY,
    display_name  text        NOT NULL DEFAULT '',
    languages     text[]      NOT NULL DEFAULT '{}',
    skills        text[]      NOT NULL DEFAULT '{}',
    state         text        NOT NULL DEFAULT 'offline',  -- offline | available | busy
    token_sha256  text        NOT NULL DEFAULT '',
    idle_since    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    task_id         text        PRIMARY KEY,
    conversation_id text        NOT NULL,
    language        text        NOT NULL,
    skill           text        NOT NULL,
    priority        int         NOT NULL DEFAULT 0,
    status          text        NOT NULL DEFAULT 'queued',  -- queued | offered | assigned | closed
    agent_id        text        REFERENCES agents,
    context         bytea       NOT NULL,  -- relais.v1.ConversationContext, grows with new messages
    traceparent     text        NOT NULL DEFAULT '',  -- the conversation's trace, for offer/assignment spans
    disposition     text        NOT NULL DEFAULT '',
    resolved        boolean,
    created_at      timestamptz NOT NULL DEFAULT now(),
    offered_at      timestamptz,
    assigned_at     timestamptz,
    closed_at       timestamptz
);
CREATE UNIQUE INDEX tasks_open_per_conversation ON tasks (conversation_id) WHERE status <> 'closed';
CREATE INDEX tasks_queued ON tasks (priority DESC, created_at) WHERE status = 'queued';

-- analytics: one row per conversation, counted at read time.
CREATE TABLE kpi_conversations (
    conversation_id text        PRIMARY KEY,
    intent          text        NOT NULL DEFAULT '',
    language        text        NOT NULL DEFAULT '',
    channel         text        NOT NULL DEFAULT '',
    bot_answered    boolean     NOT NULL DEFAULT false,
    handed_off      boolean     NOT NULL DEFAULT false,
    first_seen      timestamptz NOT NULL DEFAULT now()
);

-- lookup (demo enterprise systems): seeded by services/lookup/seed.sql.
CREATE TABLE demo_opening_hours (
    site    text NOT NULL,
    weekday int  NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens   text NOT NULL DEFAULT '',
    closes  text NOT NULL DEFAULT '',
    PRIMARY KEY (site, weekday)
);
CREATE TABLE demo_orders (
    order_id          text PRIMARY KEY,
    customer_id       text NOT NULL,
    status            text NOT NULL,
    carrier           text NOT NULL DEFAULT '',
    expected_delivery date
);
CREATE TABLE demo_accounts (
    customer_id    text   PRIMARY KEY,
    account_masked text   NOT NULL,
    balance_cents  bigint NOT NULL,
    currency       text   NOT NULL DEFAULT 'EUR',
    as_of          timestamptz NOT NULL DEFAULT now()
);
