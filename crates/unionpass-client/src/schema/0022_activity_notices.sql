-- what a sync found the union changed about an activity the member has a sign-up for (moved or
-- cancelled; core activity::ChangeNotice as JSON), told natively once (`notified`) and kept for
-- the activity's card; one per activity, a later change replacing it (a second move still says
-- when it was first to start)
CREATE TABLE activity_notices (
    activity_id INTEGER PRIMARY KEY,
    notice      TEXT NOT NULL,
    at          TEXT NOT NULL,
    notified    INTEGER NOT NULL DEFAULT 0
) STRICT;
