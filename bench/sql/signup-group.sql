-- What one PostgreSQL sign-up group costs the database, statement by statement (issue 14).
--
-- Run on a scratch database holding the server's migrations (for example the PostgreSQL
-- schema files applied in order), as bench/RESULTS.md "Where a PostgreSQL sign-up burst's time
-- goes" did:
--
--   createdb -h 127.0.0.1 -U postgres unionpass_scratch
--   for f in server/src/store/postgres/schema/*.sql; do
--     psql -h 127.0.0.1 -U postgres -d unionpass_scratch -q -v ON_ERROR_STOP=1 -f "$f"; done
--   psql -h 127.0.0.1 -U postgres -d unionpass_scratch -f bench/sql/signup-group.sql
--   dropdb -h 127.0.0.1 -U postgres unionpass_scratch
--
-- It seeds 20,000 members with a device and a session each, one activity with 2,900 sign-up rows
-- already in the table (about as many as the bench's burst leaves), then runs a group of 114 sign-ups (the
-- bench's mean group) three times, each in a transaction rolled back: the eight statements of
-- `sign_up_batch` (server/src/store/postgres/activities.rs) with the same text, as generic plans
-- (what a cached prepared statement runs), under EXPLAIN ANALYZE (signup-group-once.sql). Read the "Execution Time" and
-- "Trigger" lines of the last repetition (before schema 0014, "Trigger for constraint ..._fkey": one
-- foreign-key check per row; since, "Trigger signups_references" and "Trigger
-- change_log_references": one check per statement).

\set ON_ERROR_STOP 1
INSERT INTO unions(name) VALUES ('bench');
INSERT INTO members(member_no, name, union_id, role, password_hash, created_at)
  SELECT 'M' || g, 'n' || g, (SELECT id FROM unions WHERE name = 'bench'), 'member', 'x', now()
  FROM generate_series(1, 20000) g;
INSERT INTO devices(member_id, name, public_key, device_kid, created_at)
  SELECT id, 'd', 'pk' || id, 'k' || id, now() FROM members;
INSERT INTO sessions(token_hash, member_id, device_name, created_at, expires_at, device_id)
  SELECT md5(m.id::text) || md5((m.id + 1)::text), m.id, 'd', now(), now() + interval '30 days', d.id
  FROM members m JOIN devices d ON d.member_id = m.id;
INSERT INTO events(title, place, starts_at, ends_at, capacity, created_at)
  VALUES ('t', 'p', now(), now(), 2000, now());
INSERT INTO activities(event_id, body, seats, waitlist, created_at)
  SELECT max(id), '{}', 2000, 1000, now() FROM events;
INSERT INTO signups(activity_id, member_id, companions, state, key, created_at, updated_at)
  SELECT (SELECT max(event_id) FROM activities), id, 0, 'confirmed', gen_random_uuid(), now(), now()
  FROM members ORDER BY id LIMIT 2900;
INSERT INTO change_log(member_id, at, kind, data)
  SELECT member_id, now(), 'signup', '{"a":1}' FROM signups;
ANALYZE;

-- the group: the next 114 members, fresh keys
SELECT max(event_id) AS act FROM activities \gset
SELECT array_agg(id ORDER BY id)::text AS members,
       array_agg(md5(id::text) || md5((id + 1)::text) ORDER BY id)::text AS hashes,
       array_agg(gen_random_uuid())::text AS keys,
       array_agg(10000000 + id ORDER BY id)::text AS ids,
       array_agg(:act::bigint)::text AS acts,
       array_agg(0::bigint)::text AS comps,
       array_agg('confirmed'::text)::text AS states,
       array_agg(now())::text AS times,
       array_agg('signup'::text)::text AS kinds,
       array_agg('{"activity_id":1,"state":"confirmed","position":null,"companions":0,"created_at":"2026-12-04T10:00:00Z","id":123456}'::jsonb)::text AS data
  FROM (SELECT id FROM members ORDER BY id OFFSET 2900 LIMIT 114) m \gset

SET plan_cache_mode = force_generic_plan;
PREPARE lock(bigint[]) AS SELECT event_id, body, seats_taken, waiting FROM activities
    WHERE event_id = ANY($1) ORDER BY event_id FOR UPDATE;
PREPARE keys(uuid[]) AS
    SELECT key, id, member_id, activity_id, companions FROM signups WHERE key = ANY($1);
PREPARE live(bigint[], bigint[]) AS SELECT activity_id, member_id, state FROM signups
    WHERE activity_id = ANY($1) AND member_id = ANY($2) AND state <> 'cancelled';
PREPARE sess(text[]) AS SELECT s.token_hash, s.member_id, s.expires_at
    FROM sessions s JOIN members m ON m.id = s.member_id
    JOIN devices d ON d.id = s.device_id
    WHERE s.token_hash = ANY($1) AND m.suspended_at IS NULL AND d.revoked_at IS NULL;
PREPARE ids(bigint) AS
    SELECT nextval('signups_id_seq'::regclass) FROM generate_series(1::bigint, $1::bigint);
PREPARE ins(bigint[], bigint[], bigint[], bigint[], text[], uuid[], timestamptz[]) AS
    INSERT INTO signups(id, activity_id, member_id, companions, state, key, created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    SELECT i, a, m, c, s, k, t, t
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::uuid[], $7::timestamptz[])
    AS x(i, a, m, c, s, k, t);
PREPARE counters(bigint, bigint, bigint) AS
    UPDATE activities SET seats_taken = $2, waiting = $3 WHERE event_id = $1;
PREPARE log(bigint[], timestamptz[], text[], jsonb[]) AS
    INSERT INTO change_log(member_id, at, kind, data)
    SELECT m, t, k, d FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::jsonb[])
    WITH ORDINALITY AS x(m, t, k, d, n) ORDER BY n;

-- once without EXPLAIN (warming the caches, output discarded), then twice under EXPLAIN ANALYZE
\set run ''
\o /dev/null
\ir signup-group-once.sql
\o
\set run 'EXPLAIN (ANALYZE)'
\ir signup-group-once.sql
\ir signup-group-once.sql
