-- a sign-up's key is kept before the request leaves: a double tap or a retry is the same request
CREATE TABLE signup_keys (
    activity_id INTEGER PRIMARY KEY,
    key         TEXT NOT NULL,
    companions  INTEGER NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
-- seats taken and sign-ups waiting as last fetched (GET /v1/activities), with when
CREATE TABLE activity_counts (
    activity_id INTEGER PRIMARY KEY,
    seats_taken INTEGER NOT NULL,
    waiting     INTEGER NOT NULL,
    at          TEXT NOT NULL
) STRICT;
-- a sign-up a sync found moved up from the waitlist, until the member was told natively
CREATE TABLE signup_notices (
    activity_id INTEGER PRIMARY KEY,
    notified    INTEGER NOT NULL DEFAULT 0
) STRICT;
