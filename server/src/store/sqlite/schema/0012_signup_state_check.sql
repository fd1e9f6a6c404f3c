-- The sign-up's state checked by comparisons instead of `IN (...)`: SQLite builds a list of four
-- or more constants into a temporary b-tree every time the insert runs (about 11,000 of an
-- accepted sign-up's 190,000 instructions). The same rule, the same rows, ids and indexes; SQLite
-- cannot change a constraint in place, so the table is rebuilt (nothing references it).
CREATE TABLE signups_rebuilt (
    id          INTEGER PRIMARY KEY,
    activity_id INTEGER NOT NULL REFERENCES activities(event_id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    companions  INTEGER NOT NULL CHECK (companions >= 0),
    state       TEXT NOT NULL CHECK (state = 'confirmed' OR state = 'waitlisted'
                                     OR state = 'promoted' OR state = 'cancelled'),
    key         TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
INSERT INTO signups_rebuilt(id, activity_id, member_id, companions, state, key, created_at, updated_at)
    SELECT id, activity_id, member_id, companions, state, key, created_at, updated_at FROM signups;
DROP TABLE signups;
ALTER TABLE signups_rebuilt RENAME TO signups;
CREATE UNIQUE INDEX signups_live ON signups(activity_id, member_id) WHERE state <> 'cancelled';
CREATE INDEX signups_waiting ON signups(activity_id, id) WHERE state = 'waitlisted';
CREATE INDEX signups_member ON signups(member_id);
CREATE INDEX signups_activity ON signups(activity_id);
