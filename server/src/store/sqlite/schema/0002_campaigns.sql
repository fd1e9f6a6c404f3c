-- body: the campaign's descriptive fields as JSON; counters and limits are columns
CREATE TABLE campaigns (
    id               INTEGER PRIMARY KEY,
    body             TEXT NOT NULL,
    stock            INTEGER NOT NULL CHECK (stock >= 0),
    granted          INTEGER NOT NULL DEFAULT 0,
    per_member_limit INTEGER NOT NULL CHECK (per_member_limit >= 1),
    release_at       TEXT NOT NULL,
    end_at           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    CHECK (granted <= stock)
) STRICT;
-- one row per granted coupon; (campaign, member, n) unique is the last defence against
-- a double grant, the CHECK on campaigns.granted the last defence against overselling
CREATE TABLE grants (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    n           INTEGER NOT NULL CHECK (n >= 1),
    code        TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    grab_key    TEXT NOT NULL UNIQUE,
    UNIQUE (campaign_id, member_id, n)
) STRICT;
-- the first answer to every grab key
CREATE TABLE grab_keys (
    key         TEXT PRIMARY KEY,
    member_id   INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL,
    response    TEXT NOT NULL,
    at          TEXT NOT NULL
) STRICT;
