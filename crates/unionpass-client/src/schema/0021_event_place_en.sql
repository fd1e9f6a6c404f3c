-- an event's English place, for the scanner's event picker in English (else the Chinese
-- place). The bundle's parts held here are forgotten, so the next sync fetches the events whole:
-- a scanner whose server was upgraded first holds the digest of events it kept without the
-- English place (or, before 0020, the English title), and the server would answer them unchanged
ALTER TABLE events ADD COLUMN place_en TEXT;
DELETE FROM meta WHERE key = 'scanner_bundle_digests';
