-- a one-time code union staff give a member who forgot their password (`member reset-password`),
-- kept as an argon2 hash: one per member, a new one replacing the last. Kept once used (used_at,
-- and set_hash: the password hash it set), so that the same reset sent again (its answer lost)
-- is answered as done while that password stands.
CREATE TABLE password_resets (
    member_id  BIGINT PRIMARY KEY REFERENCES members(id),
    code_hash  TEXT NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    set_hash   TEXT
);
