-- One group of bench/sql/signup-group.sql, in a transaction rolled back; each statement
-- prefixed with :run (empty, or EXPLAIN (ANALYZE)).
BEGIN;
:run EXECUTE lock(ARRAY[:act]::bigint[]);
:run EXECUTE keys(:'keys'::uuid[]);
:run EXECUTE live(ARRAY[:act]::bigint[], :'members'::bigint[]);
:run EXECUTE sess(:'hashes'::text[]);
:run EXECUTE ids(114);
:run EXECUTE ins(:'ids', :'acts', :'members', :'comps', :'states', :'keys', :'times');
:run EXECUTE counters(:act, 2000, 14);
:run EXECUTE log(:'members', :'times', :'kinds', :'data');
ROLLBACK;
