-- the staff member who scanned a check-in another scanner uploaded, as the server names them (the
-- log says "郑晓梅" rather than a device number). The bundle's parts held here are forgotten, so
-- the next sync fetches the check-ins whole: a scanner whose server was upgraded first holds the
-- digest of check-ins it kept without the names, and the server would answer them unchanged
ALTER TABLE checkins ADD COLUMN staff TEXT;
DELETE FROM meta WHERE key = 'scanner_bundle_digests';
