-- The references of the two tables a sign-up burst writes most (sign-ups and the change log),
-- checked once per statement instead of once per row (issue 14).
--
-- A foreign key checks each new row with its own query, which also locks the referenced row
-- (FOR KEY SHARE). A sign-up group writes about a hundred sign-ups and as many changes in two
-- statements: its three foreign keys were a third of its database time (bench/RESULTS.md, "Where
-- a PostgreSQL sign-up burst's time goes"). The same guarantee here:
-- - an insert is refused (SQLSTATE 23503, as a foreign key's) when any of its rows names a
--   member or an activity that does not exist; one query per statement, one index probe per row;
-- - the references of a written row never change;
-- - a member or an activity is never deleted, and its id never changes. Nothing in the server
--   deletes either (a member is suspended, an activity cancelled); this makes it a rule. Because
--   the referenced rows cannot go away, the insert's check needs no lock on them, which is what a
--   foreign key's lock is for.
-- The SQLite schema keeps its foreign keys: SQLite checks them in the writer's own connection,
-- where they cost little.

-- The tables locked first, in the order a sign-up group takes them (the activity, then the rest),
-- so that an instance of the version before still judging a group while this runs waits for it
-- instead of deadlocking with it.
LOCK TABLE activities, members, signups, change_log IN ACCESS EXCLUSIVE MODE;

ALTER TABLE signups
    DROP CONSTRAINT signups_activity_id_fkey,
    DROP CONSTRAINT signups_member_id_fkey;
ALTER TABLE change_log DROP CONSTRAINT change_log_member_id_fkey;

-- Each lookup is a scalar subquery, so it is one primary-key probe per row (a transition table
-- has no statistics; a join could be planned as a scan of every member).
CREATE FUNCTION signups_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT activity_id FROM new_signups) n
               WHERE (SELECT a.event_id FROM activities a WHERE a.event_id = n.activity_id) IS NULL)
       OR EXISTS (SELECT 1 FROM new_signups n
               WHERE (SELECT m.id FROM members m WHERE m.id = n.member_id) IS NULL) THEN
        RAISE EXCEPTION 'a sign-up names a member or an activity that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'signups';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER signups_references AFTER INSERT ON signups
    REFERENCING NEW TABLE AS new_signups
    FOR EACH STATEMENT EXECUTE FUNCTION signups_references_exist();

CREATE FUNCTION change_log_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_changes n
               WHERE n.member_id IS NOT NULL
                 AND (SELECT m.id FROM members m WHERE m.id = n.member_id) IS NULL) THEN
        RAISE EXCEPTION 'a change names a member that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'change_log';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER change_log_references AFTER INSERT ON change_log
    REFERENCING NEW TABLE AS new_changes
    FOR EACH STATEMENT EXECUTE FUNCTION change_log_references_exist();

CREATE FUNCTION references_are_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows keep the references they were written with', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
END $$;
CREATE TRIGGER signups_references_fixed BEFORE UPDATE OF activity_id, member_id ON signups
    FOR EACH ROW
    WHEN (OLD.activity_id IS DISTINCT FROM NEW.activity_id OR OLD.member_id IS DISTINCT FROM NEW.member_id)
    EXECUTE FUNCTION references_are_fixed();
CREATE TRIGGER change_log_references_fixed BEFORE UPDATE OF member_id ON change_log
    FOR EACH ROW WHEN (OLD.member_id IS DISTINCT FROM NEW.member_id)
    EXECUTE FUNCTION references_are_fixed();

CREATE FUNCTION never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted or renumbered (suspend a member, cancel an activity)', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME;
END $$;
CREATE TRIGGER members_never_deleted BEFORE DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION never_deleted();
CREATE TRIGGER members_never_truncated BEFORE TRUNCATE ON members
    FOR EACH STATEMENT EXECUTE FUNCTION never_deleted();
CREATE TRIGGER members_never_renumbered BEFORE UPDATE OF id ON members
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION never_deleted();
CREATE TRIGGER activities_never_deleted BEFORE DELETE ON activities
    FOR EACH ROW EXECUTE FUNCTION never_deleted();
CREATE TRIGGER activities_never_truncated BEFORE TRUNCATE ON activities
    FOR EACH STATEMENT EXECUTE FUNCTION never_deleted();
CREATE TRIGGER activities_never_renumbered BEFORE UPDATE OF event_id ON activities
    FOR EACH ROW WHEN (OLD.event_id IS DISTINCT FROM NEW.event_id) EXECUTE FUNCTION never_deleted();
