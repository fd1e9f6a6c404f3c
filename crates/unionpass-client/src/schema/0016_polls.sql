-- needs polls as synced, the member's vote (`pending` until the server has it), and the last
-- results fetched (only shown after voting)
CREATE TABLE polls (
    id        INTEGER PRIMARY KEY,
    closes_at TEXT NOT NULL,
    body      TEXT NOT NULL
) STRICT;
CREATE TABLE my_votes (
    poll_id INTEGER PRIMARY KEY,
    option  INTEGER NOT NULL,
    pending INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE poll_results (
    poll_id INTEGER PRIMARY KEY,
    counts  TEXT NOT NULL,
    at      TEXT NOT NULL
) STRICT;
