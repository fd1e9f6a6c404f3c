-- campaigns as last synced (the grab calendar reads them)
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY,
    release_at TEXT NOT NULL,
    end_at     TEXT NOT NULL,
    body       TEXT NOT NULL
) STRICT;
CREATE TABLE coupons (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL,
    category    TEXT NOT NULL,
    title_zh    TEXT NOT NULL,
    title_en    TEXT NOT NULL,
    code        TEXT NOT NULL,
    face_value_cents INTEGER NOT NULL,
    valid_from  TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    used_at     TEXT,
    -- marked used here, not yet confirmed by the server
    use_pending INTEGER NOT NULL DEFAULT 0,
    body        TEXT NOT NULL
) STRICT;
CREATE INDEX coupons_until ON coupons(valid_until);
CREATE INDEX coupons_category ON coupons(category, valid_until);
-- earlier versions skipped campaign and coupon changes: fetch the log again
DELETE FROM meta WHERE key = 'cursor';
