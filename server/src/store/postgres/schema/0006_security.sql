-- what staff scans credited, for audit: who, which scanner, when, how many points
CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL,
    actor   BIGINT NOT NULL REFERENCES members(id),
    action  TEXT NOT NULL,
    subject BIGINT,
    detail  JSONB NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log(actor, at);
-- the scanned passport each check-in was proved with
ALTER TABLE checkins ADD COLUMN proof TEXT;
ALTER TABLE checkin_conflicts ADD COLUMN proof TEXT;
-- what each change id was first used for (SHA-256 of the change): reused for another, refused
ALTER TABLE applied_mutations ADD COLUMN fingerprint TEXT;
-- idempotency records are forgotten after a while
CREATE INDEX applied_mutations_at ON applied_mutations(applied_at);
CREATE INDEX grab_keys_at ON grab_keys(at);
