-- enrolled devices; each holds the level-1 credential issued to it (the 0001 passports
-- table is no longer used)
CREATE TABLE devices (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL UNIQUE,
    device_kid  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    credential  TEXT,
    kid         TEXT,
    valid_from  TEXT,
    valid_until TEXT,
    issued_at   TEXT
) STRICT;
CREATE INDEX devices_member ON devices(member_id);
CREATE INDEX devices_revoked ON devices(revoked_at, valid_until);
ALTER TABLE sessions ADD COLUMN device_id INTEGER REFERENCES devices(id);
CREATE INDEX sessions_device ON sessions(device_id);
ALTER TABLE members ADD COLUMN suspended_at TEXT;
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    title      TEXT NOT NULL,
    place      TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    capacity   INTEGER NOT NULL CHECK (capacity >= 0),
    union_id   INTEGER REFERENCES unions(id),
    created_at TEXT NOT NULL
) STRICT;
-- the first check-in of a member at an event
CREATE TABLE checkins (
    event_id    INTEGER NOT NULL REFERENCES events(id),
    member_id   INTEGER NOT NULL,
    member_no   TEXT NOT NULL,
    scanned_at  TEXT NOT NULL,
    scanner     TEXT NOT NULL,
    nonce       TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    PRIMARY KEY (event_id, member_id)
) STRICT;
-- later check-ins of the same member at the same event, from another scan
CREATE TABLE checkin_conflicts (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES events(id),
    member_id   INTEGER NOT NULL,
    member_no   TEXT NOT NULL,
    scanned_at  TEXT NOT NULL,
    scanner     TEXT NOT NULL,
    nonce       TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL
) STRICT;
