-- analytics (issue 5): every fact as it happened, at its event time, applied once by id. KPIs are
-- computed from these rows at read time for any window and dimension, and replaying the Kafka log
-- into an empty store rebuilds the same rows, hence the same numbers.
DROP TABLE kpi_conversations;

-- Outcomes of turns and conversations (relais.v1.Outcome), surveys included.
CREATE TABLE kpi_outcomes (
    outcome_id      text        PRIMARY KEY,
    conversation_id text        NOT NULL,
    customer_id     text        NOT NULL DEFAULT '',
    kind            text        NOT NULL,  -- bot_answered | bot_clarified | handed_off | assigned | agent_replied | closed | survey
    intent          text        NOT NULL DEFAULT '',
    language        text        NOT NULL DEFAULT '',
    channel         text        NOT NULL DEFAULT '',
    reason          text        NOT NULL DEFAULT '',  -- HandoffReason name, hand-offs only
    agent_id        text        NOT NULL DEFAULT '',
    disposition     text        NOT NULL DEFAULT '',
    resolved        boolean     NOT NULL DEFAULT false,
    survey_scale    text        NOT NULL DEFAULT '',  -- csat | nps
    survey_score    int,
    survey_comment  text        NOT NULL DEFAULT '',  -- redacted
    at              timestamptz NOT NULL
);
CREATE INDEX kpi_outcomes_conversation ON kpi_outcomes (conversation_id);
CREATE INDEX kpi_outcomes_at ON kpi_outcomes (at);

-- One row per conversation (a contact), derived from its outcomes; see relais.analytics.kpis.Contact.
CREATE VIEW kpi_contacts AS
SELECT conversation_id,
       coalesce(max(customer_id) FILTER (WHERE customer_id <> ''), '') AS customer_id,
       coalesce((array_agg(intent ORDER BY at DESC) FILTER (WHERE kind = 'handed_off' AND intent <> ''))[1],
                (array_agg(intent ORDER BY at DESC) FILTER (WHERE kind IN ('bot_answered', 'bot_clarified') AND intent <> ''))[1],
                (array_agg(intent ORDER BY at) FILTER (WHERE intent <> ''))[1], '') AS intent,
       coalesce((array_agg(language ORDER BY at) FILTER (WHERE language <> ''))[1], '') AS language,
       coalesce((array_agg(channel ORDER BY at) FILTER (WHERE channel <> ''))[1], '') AS channel,
       min(at) FILTER (WHERE kind <> 'survey') AS started_at,
       max(at) FILTER (WHERE kind <> 'survey') AS ended_at,
       bool_or(kind = 'handed_off') AS handed_off,
       coalesce((array_agg(reason ORDER BY at) FILTER (WHERE kind = 'handed_off'))[1], '') AS handoff_reason,
       bool_or(kind = 'bot_answered') AS bot_answered,
       count(*) FILTER (WHERE kind IN ('bot_answered', 'bot_clarified')) AS bot_interactions,
       min(at) FILTER (WHERE kind IN ('bot_answered', 'bot_clarified')) AS bot_first_at,
       max(at) FILTER (WHERE kind IN ('bot_answered', 'bot_clarified')) AS bot_last_at,
       min(at) FILTER (WHERE kind = 'handed_off') AS handed_off_at,
       min(at) FILTER (WHERE kind = 'assigned') AS assigned_at,
       max(at) FILTER (WHERE kind = 'closed') AS closed_at,
       bool_or(kind = 'closed' AND disposition = 'abandoned') AS abandoned,
       bool_or(kind = 'closed' AND resolved AND disposition <> 'abandoned') AS agent_resolved
FROM kpi_outcomes
GROUP BY conversation_id
HAVING count(*) FILTER (WHERE kind <> 'survey') > 0;

-- Agents' state changes (relais.v1.AgentStateChanged), for occupancy and contacts per agent-hour.
CREATE TABLE kpi_agent_states (
    event_id text        PRIMARY KEY,
    agent_id text        NOT NULL,
    state    text        NOT NULL,  -- offline | available | busy | wrap_up | break
    at       timestamptz NOT NULL
);
CREATE INDEX kpi_agent_states_agent ON kpi_agent_states (agent_id, at);

-- Customers' messages, redacted, with their sentiment: the verbatims the irritants view groups.
CREATE TABLE kpi_verbatims (
    turn_id         text        PRIMARY KEY,
    conversation_id text        NOT NULL,
    language        text        NOT NULL DEFAULT '',
    intent          text        NOT NULL DEFAULT '',
    sentiment       real        NOT NULL DEFAULT 0,
    negative        boolean     NOT NULL DEFAULT false,  -- negative score, anger or distress
    text            text        NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX kpi_verbatims_at ON kpi_verbatims (at);
CREATE INDEX kpi_verbatims_conversation ON kpi_verbatims (conversation_id);

-- Alerts raised on relais.alerts.v1, once each.
CREATE TABLE kpi_alerts (
    alert_id     text        PRIMARY KEY,
    kind         text        NOT NULL,
    window_start timestamptz NOT NULL,
    detail       text        NOT NULL,
    raised_at    timestamptz NOT NULL DEFAULT now()
);
