-- a coupon the union withdrew: unusable from then on
ALTER TABLE coupons ADD COLUMN voided_at TEXT;
-- a change the server refused is shown to the member until they have seen it (older refusals
-- were never shown: they count as unseen)
ALTER TABLE outbox ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
