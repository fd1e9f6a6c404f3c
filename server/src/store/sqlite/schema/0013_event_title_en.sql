-- a plain event's English title, for the scanner in English (an activity's is in its body);
-- NULL: the event has one title
ALTER TABLE events ADD COLUMN title_en TEXT;
