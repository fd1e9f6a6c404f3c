-- grab keys, stored before the request leaves; answer is the server's final answer
CREATE TABLE grabs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id INTEGER NOT NULL,
    key         TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    answer      TEXT
) STRICT;
CREATE INDEX grabs_campaign ON grabs(campaign_id, seq);
