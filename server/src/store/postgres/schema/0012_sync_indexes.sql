-- Indexes a sync page's reads can use whatever the planner knows of the tables. Found with a
-- burst of 110,000 syncs right after the members were loaded (no statistics yet): the cached
-- (generic) plans read every live device through devices_revoked to find one member's devices,
-- and walked the whole change log in seq order to find the few rows for everyone. Each index
-- here matches its query's condition exactly, so it is chosen with or without statistics.
-- Built inside the migration's transaction: on a long log this holds writes to change_log and
-- devices for the seconds the build takes, before the upgraded server starts serving.
CREATE INDEX devices_live ON devices(member_id, id) WHERE revoked_at IS NULL;
CREATE INDEX change_log_global ON change_log(seq) WHERE member_id IS NULL;
