-- a member's rating (1-5) and comment on an activity they checked in to; editable for a week
CREATE TABLE feedback (
    activity_id    BIGINT NOT NULL REFERENCES activities(event_id),
    member_id      BIGINT NOT NULL REFERENCES members(id),
    rating         BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment        TEXT NOT NULL,
    first_given_at TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (activity_id, member_id)
);
