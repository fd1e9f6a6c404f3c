-- the ledger: append-only; seq orders each member's entries
CREATE TABLE points_entries (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id INTEGER NOT NULL REFERENCES members(id),
    at        TEXT NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX points_entries_member ON points_entries(member_id, seq);
-- one row per redemption (its id is the device-made idempotency key); body: Redemption JSON
CREATE TABLE redemptions (
    id            TEXT PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members(id),
    kind          TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL,
    status        TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    claimed_until TEXT
);
CREATE INDEX redemptions_member ON redemptions(member_id, kind, created_at);
CREATE INDEX redemptions_status ON redemptions(status, created_at);
CREATE TABLE catalog (
    id       INTEGER PRIMARY KEY,
    title_zh TEXT NOT NULL,
    title_en TEXT NOT NULL,
    points   INTEGER NOT NULL CHECK (points > 0),
    stock    INTEGER NOT NULL CHECK (stock >= 0)
);
-- the rate, amounts, caps and password limit (PointsOffer JSON without the catalog)
CREATE TABLE points_offer (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
);
CREATE TABLE reauth_grants (
    redemption_id TEXT PRIMARY KEY,
    member_id     INTEGER NOT NULL,
    until         TEXT NOT NULL
);
-- batches and when they expire, so the expiry sweep finds them without reading the ledger
CREATE TABLE points_expiry (
    batch_seq  INTEGER PRIMARY KEY,
    member_id  INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    done       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX points_expiry_due ON points_expiry(done, expires_at);
-- points a member earns for checking in at an event
ALTER TABLE events ADD COLUMN points INTEGER NOT NULL DEFAULT 0;
