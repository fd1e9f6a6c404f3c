-- the door reads, after every scan, how many of the event's check-ins were made on this device
-- and how many of those wait to upload: this index holds just those rows, so the count does not
-- read every check-in other scanners made at the event (10,000 at a large one)
CREATE INDEX checkins_made_here ON checkins(event_id) WHERE ours = 1;
