-- activities and this member's sign-ups, as synced (the activity screens read them offline)
CREATE TABLE activities (
    id        INTEGER PRIMARY KEY,
    starts_at TEXT NOT NULL,
    body      TEXT NOT NULL
) STRICT;
CREATE INDEX activities_starts ON activities(starts_at);
CREATE TABLE my_signups (
    activity_id INTEGER PRIMARY KEY,
    state       TEXT NOT NULL,
    body        TEXT NOT NULL
) STRICT;
