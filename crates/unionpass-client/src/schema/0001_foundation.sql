CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE profile (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    member_id  INTEGER NOT NULL,
    member_no  TEXT NOT NULL,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    union_id   INTEGER NOT NULL,
    union_name TEXT NOT NULL,
    language   TEXT
) STRICT;
CREATE TABLE passport (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    credential  TEXT NOT NULL,
    kid         TEXT NOT NULL,
    valid_from  TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;
-- mutations waiting to reach the server; id is the idempotency key
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    body       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    error_code TEXT,
    error_message TEXT
) STRICT;
CREATE TABLE sync_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    ok      INTEGER NOT NULL,
    code    TEXT,
    pushed  INTEGER NOT NULL,
    pulled  INTEGER NOT NULL
) STRICT;
