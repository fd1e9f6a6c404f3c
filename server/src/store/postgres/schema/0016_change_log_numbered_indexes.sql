-- The change log's two indexes on `seq` hold numbered rows only (issue 14).
--
-- A change is written unnumbered (`seq` NULL) and numbered once, later, by the sequencer
-- (`postgres/mod.rs`, `sequence_on`). The unique constraint on `seq` and `change_log_member`
-- (member, seq) both took an entry for the unnumbered row as well, dead as soon as the row was
-- numbered: two of the four index entries of every insert (a sign-up group writes one change
-- per accepted sign-up). Every read through these indexes asks for numbered rows only (a sync
-- page's `seq > cursor`, the sequencer's `max(seq)`), which implies `seq IS NOT NULL`, so the
-- planner still chooses them, generic plans included (`store::the_change_log_indexes_hold_numbered_rows_on_postgres`).
-- Uniqueness is unchanged: NULLs were never equal to each other.
--
-- Built inside the migration's transaction: on a long log this holds writes to change_log for
-- the seconds the build takes, before the upgraded server starts serving.
ALTER TABLE change_log DROP CONSTRAINT change_log_seq_key;
CREATE UNIQUE INDEX change_log_seq ON change_log(seq) WHERE seq IS NOT NULL;
DROP INDEX change_log_member;
CREATE INDEX change_log_member ON change_log(member_id, seq) WHERE seq IS NOT NULL;
