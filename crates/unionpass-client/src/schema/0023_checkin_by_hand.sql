-- a check-in staff made over the door list, which had refused the member (no place on it, or
-- still waiting) when they had checked the place on the member's phone; the server judges it by
-- its own list like any other, and the scanner's log says it was let in by hand
ALTER TABLE checkins ADD COLUMN by_hand INTEGER NOT NULL DEFAULT 0;
