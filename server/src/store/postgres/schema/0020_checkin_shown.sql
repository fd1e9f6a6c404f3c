-- which showing of the passport a check-in's scan was (`Presentation::id`: the device and the
-- code's time step), so the same code cannot check the member in at a second event; NULL for
-- check-ins kept before this column (their proofs are not read back)
ALTER TABLE checkins ADD COLUMN shown TEXT;
ALTER TABLE checkin_conflicts ADD COLUMN shown TEXT;
CREATE INDEX checkins_shown ON checkins(shown) WHERE shown IS NOT NULL;
