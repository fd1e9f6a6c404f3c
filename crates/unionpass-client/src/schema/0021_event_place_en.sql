-- an event's English place, for the scanner's event picker in English (else the Chinese
-- place); filled by the next bundle, whose events part changes with it
ALTER TABLE events ADD COLUMN place_en TEXT;
