-- one reminder per campaign; state: unionpass_core::reminder::ReminderState as JSON,
-- pending: whether the scheduler still has to act on it
CREATE TABLE reminders (
    campaign_id  INTEGER PRIMARY KEY,
    lead_minutes INTEGER NOT NULL,
    due_at       TEXT NOT NULL,
    state        TEXT NOT NULL,
    pending      INTEGER NOT NULL,
    set_at       TEXT NOT NULL
) STRICT;
CREATE INDEX reminders_pending ON reminders(pending, due_at);
-- what the member must be told (missed, moved, cancelled), kept until dismissed
CREATE TABLE reminder_notices (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    at          TEXT NOT NULL,
    dismissed   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX reminder_notices_open ON reminder_notices(dismissed, id);
