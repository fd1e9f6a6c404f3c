-- An activity extends an event (same id) with its words, category and sign-up rules. `body` is
-- the member-facing JSON (unionpass_core::activity::Activity); the counters beside it are what
-- the sign-up transaction reads and writes, and the CHECK is the last defence against more
-- seats than there are.
CREATE TABLE activities (
    event_id     INTEGER PRIMARY KEY REFERENCES events(id),
    body         TEXT NOT NULL,
    seats        INTEGER,
    waitlist     INTEGER NOT NULL DEFAULT 0,
    seats_taken  INTEGER NOT NULL DEFAULT 0,
    waiting      INTEGER NOT NULL DEFAULT 0,
    popular      INTEGER NOT NULL DEFAULT 0,
    cancelled_at TEXT,
    created_at   TEXT NOT NULL,
    CHECK (seats IS NULL OR seats_taken <= seats),
    CHECK (waiting >= 0 AND waiting <= waitlist)
) STRICT;
-- One row per accepted sign-up, numbered in the order the server received them (the waitlist's
-- order); `key` makes a retry the same request.
CREATE TABLE signups (
    id          INTEGER PRIMARY KEY,
    activity_id INTEGER NOT NULL REFERENCES activities(event_id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    companions  INTEGER NOT NULL CHECK (companions >= 0),
    state       TEXT NOT NULL CHECK (state IN ('confirmed', 'waitlisted', 'promoted', 'cancelled')),
    key         TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX signups_live ON signups(activity_id, member_id) WHERE state <> 'cancelled';
CREATE INDEX signups_waiting ON signups(activity_id, id) WHERE state = 'waitlisted';
CREATE INDEX signups_member ON signups(member_id);
