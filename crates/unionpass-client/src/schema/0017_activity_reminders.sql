-- native reminders about activities: before sign-up opens (the member asked) and an hour before
-- an activity they have a place at (automatic); due in server time, fired once
CREATE TABLE activity_reminders (
    activity_id INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('opens', 'starts')),
    due_at      TEXT NOT NULL,
    fired       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (activity_id, kind)
) STRICT;
