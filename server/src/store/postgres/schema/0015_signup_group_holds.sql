-- What a sign-up group decided from memory rests on, checked in its own transaction (issue 14).
--
-- An instance remembers each activity as its last committed sign-up group left it: the rules,
-- the counters, and the row's version (`xmin`, the transaction that last wrote it). The next group
-- for that activity is then decided before its transaction starts, and sent as one flight:
-- `BEGIN`, this check, the writes, `COMMIT`. The check takes the activities' locks in id order,
-- as every sign-up group does, and raises unless
-- - every activity's row is still the version the decision read: every change to an activity's
--   sign-ups or rules (a sign-up, a cancellation, a promotion, a move, a cancellation of the
--   activity) updates that row, so an unchanged version means unchanged counters and rules;
-- - every accepted member's session is still live at the time of their request (not expired,
--   not revoked, the member not suspended).
-- Raising aborts the transaction, so the flight's `COMMIT` rolls it back, and the instance judges
-- the group again from what it reads under the lock. A member already signed up, or a key used
-- before, fails the flight's insert by the unique indexes, with the same result.
CREATE FUNCTION signup_group_holds(
    activity_ids bigint[],
    versions bigint[],
    token_hashes text[],
    member_ids bigint[],
    asked_at timestamptz[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM activities WHERE event_id = ANY(activity_ids) ORDER BY event_id FOR UPDATE;
    IF (SELECT count(*) FROM activities a
            JOIN unnest(activity_ids, versions) AS v(id, version) ON v.id = a.event_id
            WHERE a.xmin::text::bigint = v.version) <> cardinality(activity_ids) THEN
        RAISE EXCEPTION 'an activity changed since this sign-up group was decided'
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF (SELECT count(*) FROM unnest(token_hashes, member_ids, asked_at) AS t(h, m, at)
            JOIN sessions s ON s.token_hash = t.h AND s.member_id = t.m AND s.expires_at > t.at
            JOIN members m ON m.id = s.member_id AND m.suspended_at IS NULL
            JOIN devices d ON d.id = s.device_id AND d.revoked_at IS NULL)
       <> cardinality(token_hashes) THEN
        RAISE EXCEPTION 'a session of this sign-up group ended'
            USING ERRCODE = 'serialization_failure';
    END IF;
END $$;
