-- format 1 credentials are no longer shown; the next sync brings a format 2 one
DELETE FROM passport;
CREATE TABLE devices (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    device_kid TEXT NOT NULL,
    created_at TEXT NOT NULL,
    current    INTEGER NOT NULL
) STRICT;
-- the scanner's trust list, replaced as a whole by each sync
CREATE TABLE trust_keys (
    kid        TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE TABLE revoked_devices (
    device_kid TEXT PRIMARY KEY,
    until      TEXT NOT NULL
) STRICT;
CREATE TABLE revoked_members (
    member_id INTEGER PRIMARY KEY
) STRICT;
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    title     TEXT NOT NULL,
    place     TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at   TEXT NOT NULL,
    capacity  INTEGER NOT NULL,
    union_id  INTEGER
) STRICT;
-- check-ins made here (ours = 1) or synced from other scanners; nonce identifies a scan
CREATE TABLE checkins (
    nonce      TEXT PRIMARY KEY,
    event_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    member_no  TEXT NOT NULL,
    scanned_at TEXT NOT NULL,
    scanner    TEXT NOT NULL,
    ours       INTEGER NOT NULL,
    uploaded   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX checkins_member ON checkins(event_id, member_id, scanned_at);
CREATE INDEX checkins_event ON checkins(event_id, scanned_at);
CREATE TABLE checkin_conflicts (
    second_nonce TEXT PRIMARY KEY,
    event_id     INTEGER NOT NULL,
    body         TEXT NOT NULL
) STRICT;
