-- the scanner's events that take sign-ups, and who has a place (with companions) or waits
CREATE TABLE scanner_signup_events (
    event_id INTEGER PRIMARY KEY
) STRICT;
CREATE TABLE scanner_signups (
    event_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    companions INTEGER NOT NULL,
    waitlisted INTEGER NOT NULL,
    PRIMARY KEY (event_id, member_id)
) STRICT;
