-- the staff member whose signed-in scanner uploaded the check-in (the server's own record of the
-- session, never what the scanner says), so other scanners' logs name who scanned; NULL for
-- check-ins kept before this column
ALTER TABLE checkins ADD COLUMN staff_id BIGINT;
ALTER TABLE checkin_conflicts ADD COLUMN staff_id BIGINT;
