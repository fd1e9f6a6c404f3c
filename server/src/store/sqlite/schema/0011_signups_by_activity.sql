-- Every sign-up of one activity, cancelled ones included: the sign-up memo reads an activity's
-- keys once it is full (a cancelled sign-up's key still replays), and the no-show suspects are
-- read activity by activity for the few activities that ended recently.
CREATE INDEX signups_activity ON signups(activity_id);
