-- Stock an instance holds for its grabs (several instances over one database), one row per
-- campaign and instance: moved out of campaign_stock by the group that needs it and spent by
-- the holder's grants in their transactions; taken by another instance whose own lease and the
-- stock are empty (SKIP LOCKED: never while the holder's group holds it); given back when the
-- holder is idle or stops. A dead instance's lease is taken this way by the others.
CREATE TABLE stock_leases (
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id),
    holder      UUID NOT NULL,
    remaining   BIGINT NOT NULL CHECK (remaining >= 0),
    PRIMARY KEY (campaign_id, holder)
);
CREATE INDEX stock_leases_holder ON stock_leases(holder);
