-- a check-in staff made over the door list, which had refused the member (no place on it, or
-- still waiting) when they had checked the place on the member's phone; the server judges it by
-- its own list like any other, and the scanner's log says it was let in by hand
ALTER TABLE checkins ADD COLUMN by_hand INTEGER NOT NULL DEFAULT 0;
-- the door's count reads, after every scan, those let in by hand and not yet judged: this index
-- holds just those rows, so the count does not read every check-in of the event
CREATE INDEX checkins_by_hand ON checkins(event_id, member_id) WHERE by_hand = 1;
