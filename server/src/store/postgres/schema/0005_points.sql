CREATE TABLE points_entries (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members(id),
    at        TIMESTAMPTZ NOT NULL,
    body      JSONB NOT NULL
);
CREATE INDEX points_entries_member ON points_entries(member_id, seq);
CREATE TABLE redemptions (
    id            UUID PRIMARY KEY,
    member_id     BIGINT NOT NULL REFERENCES members(id),
    kind          TEXT NOT NULL,
    amount_cents  BIGINT NOT NULL,
    status        TEXT NOT NULL,
    body          JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ
);
CREATE INDEX redemptions_member ON redemptions(member_id, kind, created_at);
CREATE INDEX redemptions_status ON redemptions(status, created_at);
CREATE TABLE catalog (
    id       BIGINT PRIMARY KEY,
    title_zh TEXT NOT NULL,
    title_en TEXT NOT NULL,
    points   BIGINT NOT NULL CHECK (points > 0),
    stock    BIGINT NOT NULL CHECK (stock >= 0)
);
CREATE TABLE points_offer (
    id   INT PRIMARY KEY CHECK (id = 1),
    body JSONB NOT NULL
);
CREATE TABLE reauth_grants (
    redemption_id UUID PRIMARY KEY,
    member_id     BIGINT NOT NULL,
    until         TIMESTAMPTZ NOT NULL
);
CREATE TABLE points_expiry (
    batch_seq  BIGINT PRIMARY KEY,
    member_id  BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    done       BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX points_expiry_due ON points_expiry(done, expires_at);
ALTER TABLE events ADD COLUMN points BIGINT NOT NULL DEFAULT 0;
