-- routing, the customer's side (issue 11): the number to call back, the queue messages' offers, the end of a contact.

-- intake: the number to call the customer back on, from data.customer.phone or from the customer's answer when
-- routing asked for it. Never in a turn's text (redacted to [PHONE]); erased by retention with the transcript.
ALTER TABLE conversations ADD COLUMN callback_phone text NOT NULL DEFAULT '';

ALTER TABLE tasks
    ADD COLUMN callback_phone   text        NOT NULL DEFAULT '',    -- a callback task: the number the advisor calls
    ADD COLUMN phone_asked_at   timestamptz,                        -- the customer chose a callback; its number is asked
    ADD COLUMN callback_offered boolean     NOT NULL DEFAULT false, -- the last queue message offered a callback
    ADD COLUMN told_nobody      boolean     NOT NULL DEFAULT false; -- the last queue message said nobody is signed in
