-- needs polls before activities; `body` is the member-facing JSON (unionpass_core::activity::Poll)
CREATE TABLE polls (
    id         INTEGER PRIMARY KEY,
    body       TEXT NOT NULL,
    union_id   INTEGER REFERENCES unions(id),
    closes_at  TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
-- one vote per member per poll, replaced until the poll closes
CREATE TABLE poll_votes (
    poll_id   INTEGER NOT NULL REFERENCES polls(id),
    member_id INTEGER NOT NULL REFERENCES members(id),
    option    INTEGER NOT NULL CHECK (option >= 0),
    at        TEXT NOT NULL,
    PRIMARY KEY (poll_id, member_id)
) STRICT;
