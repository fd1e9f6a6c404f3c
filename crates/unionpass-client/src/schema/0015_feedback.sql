-- activities the member was checked in to (feedback opens), and their own feedback; `pending`
-- until the server has it
CREATE TABLE attended (
    activity_id INTEGER PRIMARY KEY,
    at          TEXT NOT NULL
) STRICT;
CREATE TABLE my_feedback (
    activity_id    INTEGER PRIMARY KEY,
    rating         INTEGER NOT NULL,
    comment        TEXT NOT NULL,
    first_given_at TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    pending        INTEGER NOT NULL DEFAULT 0
) STRICT;
