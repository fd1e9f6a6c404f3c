CREATE TABLE points_entries (
    seq  INTEGER PRIMARY KEY,
    at   TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX points_entries_at ON points_entries(at);
-- body: unionpass_core::redeem::Redemption as JSON; status repeated for queries
CREATE TABLE redemptions (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    points       INTEGER NOT NULL,
    status       TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX redemptions_created ON redemptions(created_at);
CREATE INDEX redemptions_kind ON redemptions(kind, status, created_at);
