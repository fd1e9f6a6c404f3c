-- An activity extends an event (same id) with its words, category and sign-up rules. `body` is
-- the member-facing JSON (unionpass_core::activity::Activity); the counters beside it are what
-- the sign-up transaction reads (under a row lock) and writes, and the CHECK is the last
-- defence against more seats than there are.
CREATE TABLE activities (
    event_id     BIGINT PRIMARY KEY REFERENCES events(id),
    body         JSONB NOT NULL,
    seats        BIGINT,
    waitlist     BIGINT NOT NULL DEFAULT 0,
    seats_taken  BIGINT NOT NULL DEFAULT 0,
    waiting      BIGINT NOT NULL DEFAULT 0,
    popular      BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    CHECK (seats IS NULL OR seats_taken <= seats),
    CHECK (waiting >= 0 AND waiting <= waitlist)
);
-- One row per accepted sign-up, numbered in the order the server received them (the waitlist's
-- order); `key` makes a retry the same request.
CREATE TABLE signups (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_id BIGINT NOT NULL REFERENCES activities(event_id),
    member_id   BIGINT NOT NULL REFERENCES members(id),
    companions  BIGINT NOT NULL CHECK (companions >= 0),
    state       TEXT NOT NULL CHECK (state IN ('confirmed', 'waitlisted', 'promoted', 'cancelled')),
    key         UUID NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX signups_live ON signups(activity_id, member_id) WHERE state <> 'cancelled';
CREATE INDEX signups_waiting ON signups(activity_id, id) WHERE state = 'waitlisted';
CREATE INDEX signups_member ON signups(member_id);
