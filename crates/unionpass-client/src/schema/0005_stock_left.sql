-- stock left as last synced (NULL: not known yet)
ALTER TABLE campaigns ADD COLUMN stock_left INTEGER;
ALTER TABLE campaigns ADD COLUMN stock_synced_at TEXT;
