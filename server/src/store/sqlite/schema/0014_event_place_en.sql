-- a plain event's English place, for the scanner in English (an activity's is in its body);
-- NULL: the event has one place name
ALTER TABLE events ADD COLUMN place_en TEXT;
