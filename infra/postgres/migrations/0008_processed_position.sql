-- Where each event was read (topic:partition:offset, relais.common.unit_of_work): an event found processed is sent
-- again only when it is the same record read again (its offset was never committed, so its outputs may never have
-- reached the broker), not when a sender published it twice. The outbox rows of such units need no "published"
-- mark: they are stored published. '' for rows written before (their unpublished outbox rows are sent again).
ALTER TABLE processed_events ADD COLUMN position text NOT NULL DEFAULT '';
