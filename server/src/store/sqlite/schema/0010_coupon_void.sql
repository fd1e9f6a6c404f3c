-- The union withdrew a coupon (`coupon void`): a use at or after this instant is refused.
ALTER TABLE grants ADD COLUMN voided_at TEXT;
