-- Routing's ticker asks every second which waiting tasks are due an overflow step, were queued in the last seconds
-- (to widen) or are callbacks now due: without these, each question went through the whole queue (a Black Friday
-- queue of tens of thousands, every second).
CREATE INDEX tasks_waiting_by_stage ON tasks (stage, queued_at) WHERE status = 'queued';
CREATE INDEX tasks_waiting_since ON tasks (queued_at) WHERE status = 'queued';
CREATE INDEX tasks_callbacks_due ON tasks (due_at) WHERE status = 'queued' AND due_at IS NOT NULL;
