-- the grab calendar counts the coupons a member holds per campaign
CREATE INDEX coupons_campaign ON coupons(campaign_id);
