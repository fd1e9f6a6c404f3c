CREATE TABLE unions (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;
CREATE TABLE members (
    id            INTEGER PRIMARY KEY,
    member_no     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    union_id      INTEGER NOT NULL REFERENCES unions(id),
    role          TEXT NOT NULL CHECK (role IN ('member', 'staff')),
    password_hash TEXT NOT NULL,
    language      TEXT,
    created_at    TEXT NOT NULL
) STRICT;
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    device_name TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_member ON sessions(member_id);
CREATE TABLE passports (
    member_id   INTEGER PRIMARY KEY REFERENCES members(id),
    credential  TEXT NOT NULL,
    kid         TEXT NOT NULL,
    valid_from  TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    issued_at   TEXT NOT NULL
) STRICT;
-- what sync delivers; member_id NULL means every member sees it
CREATE TABLE change_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id INTEGER REFERENCES members(id),
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL
) STRICT;
CREATE INDEX change_log_member ON change_log(member_id, seq);
-- idempotency: the first result of every applied mutation id
CREATE TABLE applied_mutations (
    id         TEXT PRIMARY KEY,
    member_id  INTEGER NOT NULL REFERENCES members(id),
    applied_at TEXT NOT NULL,
    result     TEXT NOT NULL
) STRICT;
