-- Routing's expected wait reads the handling time of a language's last 50 closed tasks on every hand-off and queue
-- message: without this index that read went through every task, the waiting ones included.
CREATE INDEX tasks_closed_by_language ON tasks (language, closed_at DESC) WHERE status = 'closed';
