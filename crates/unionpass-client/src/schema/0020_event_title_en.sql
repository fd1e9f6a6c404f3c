-- an activity's English title, for the scanner's event picker in English (a plain event has
-- one title); filled by the next bundle, whose events part changes with it
ALTER TABLE events ADD COLUMN title_en TEXT;
