-- Retention of transcripts (services/common/retention.py).
-- Analytics rows carry event times (`at`), which may be years old in a replay or a generated history;
-- retention counts from when relais stored a row, so the rows get their storage time.
ALTER TABLE kpi_verbatims ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE kpi_outcomes  ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();

-- The last purge of each conversation: a conversation is purged again only if it was active since.
CREATE TABLE retention_purged (
    conversation_id text        PRIMARY KEY,
    purged_at       timestamptz NOT NULL DEFAULT now()
);
