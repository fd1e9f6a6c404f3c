//! Activities in the app: the list as last synced (with seats left as last fetched), the
//! member's sign-ups, and the sign-up race.
//!
//! - Activities and the member's sign-ups arrive by sync (`activity`, `signup` changes); seats
//!   taken and the waitlist's length change with every sign-up, so they are fetched with
//!   `GET /v1/activities` when the screen opens and kept with their time ("as of 10:02").
//! - A sign-up's key is written to the store before the request leaves. A tap while a request for
//!   the activity has no answer sends the same key (and companions) again: a double tap or a
//!   retry can never sign up twice. The answer is kept until the next sync brings the sign-up.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use unionpass_core::activity::{
    change_notice, may_give_feedback, may_vote, opening_reminder_at, Activity, ActivityLive,
    ChangeNotice, Feedback, FeedbackGiven, MySignup, Poll, PollResults, SignupAnswer, SignupState,
    Vote, OPENING_LEAD, START_LEAD,
};
use unionpass_core::api::MutationOp;
use unionpass_core::view::{ActivitiesView, ActivityCard, PollCard};
use uuid::Uuid;

use crate::error::Result;
use crate::store::{parse_ts, ts, Store};

/// Until when the no-show rule keeps the member from popular activities, as last fetched.
const K_BAN_UNTIL: &str = "no_show_ban_until";

impl Store {
    /// Every activity not ended more than a week ago, soonest first, with this member's
    /// sign-up, eligibility and the last fetched counts.
    pub fn activities(&self, now: DateTime<Utc>) -> Result<ActivitiesView> {
        let union: Option<i64> = self.profile()?.map(|p| p.union.id);
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.body, s.body, c.seats_taken, c.waiting, c.at, k.key IS NOT NULL,
                    t.activity_id IS NOT NULL, f.rating, f.comment, f.first_given_at,
                    f.updated_at, coalesce(f.pending, 0),
                    EXISTS (SELECT 1 FROM activity_reminders r
                            WHERE r.activity_id = a.id AND r.kind = 'opens' AND r.fired = 0),
                    n.notice
             FROM activities a
             LEFT JOIN my_signups s ON s.activity_id = a.id
             LEFT JOIN activity_counts c ON c.activity_id = a.id
             LEFT JOIN signup_keys k ON k.activity_id = a.id
             LEFT JOIN attended t ON t.activity_id = a.id
             LEFT JOIN my_feedback f ON f.activity_id = a.id
             LEFT JOIN activity_notices n ON n.activity_id = a.id
             WHERE json_extract(a.body, '$.ends_at') > ?1
             ORDER BY a.starts_at, a.id",
        )?;
        let since = ts(now - chrono::Duration::days(7));
        let rows = stmt.query_map([since], |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, bool>(5)?,
                ),
                (
                    r.get::<_, bool>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, bool>(11)?,
                    r.get::<_, bool>(12)?,
                ),
                r.get::<_, Option<String>>(13)?,
            ))
        })?;
        let mut cards = Vec::new();
        for row in rows {
            let ((body, mine, taken, waiting, at, pending), fb, change) = row?;
            let (attended, rating, comment, first, updated, feedback_pending, opening_reminder) =
                fb;
            let feedback = match (rating, comment, first, updated) {
                (Some(rating), Some(comment), Some(first), Some(updated)) => Some(FeedbackGiven {
                    activity_id: 0,
                    rating,
                    comment,
                    first_given_at: parse_ts(first)?,
                    updated_at: parse_ts(updated)?,
                }),
                _ => None,
            };
            let activity: Activity = serde_json::from_str(&body).map_err(bad)?;
            let mine: Option<MySignup> = mine
                .map(|m| serde_json::from_str(&m))
                .transpose()
                .map_err(bad)?;
            let (seats_left, waitlist_left) = match (&activity.signup, taken, waiting) {
                (Some(r), Some(t), Some(w)) => {
                    (Some((r.seats - t).max(0)), Some((r.waitlist - w).max(0)))
                }
                _ => (None, None),
            };
            let feedback = feedback.map(|f| FeedbackGiven {
                activity_id: activity.id,
                ..f
            });
            // one this version cannot read is not shown (it is replaced at the next change)
            let change: Option<ChangeNotice> = change.and_then(|n| serde_json::from_str(&n).ok());
            cards.push(ActivityCard {
                change,
                opening_reminder,
                attended,
                feedback,
                feedback_pending,
                eligible: union.is_some_and(|u| activity.admits_union(u)),
                activity,
                mine,
                seats_left,
                waitlist_left,
                counted_at: at.map(parse_ts).transpose()?,
                pending,
            });
        }
        let ban_until = crate::store::meta_get(&self.conn, K_BAN_UNTIL)?
            .map(parse_ts)
            .transpose()?;
        Ok(ActivitiesView {
            ban_until,
            cards,
            polls: self.poll_cards(union, now)?,
            offset: self.clock_offset()?,
        })
    }

    /// Open polls (and those closed within a week, for their results), soonest close first.
    fn poll_cards(&self, union: Option<i64>, now: DateTime<Utc>) -> Result<Vec<PollCard>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.body, v.option, coalesce(v.pending, 0), r.counts, r.at
             FROM polls p LEFT JOIN my_votes v ON v.poll_id = p.id
             LEFT JOIN poll_results r ON r.poll_id = p.id
             WHERE p.closes_at > ?1 ORDER BY p.closes_at, p.id",
        )?;
        let rows = stmt.query_map([ts(now - chrono::Duration::days(7))], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, mine, pending, counts, at) = row?;
            let poll: Poll = serde_json::from_str(&body).map_err(bad)?;
            out.push(PollCard {
                eligible: union.is_some_and(|u| poll.union_id.is_none_or(|p| p == u)),
                poll,
                mine,
                pending,
                counts: counts
                    .map(|c| serde_json::from_str(&c))
                    .transpose()
                    .map_err(bad)?,
                counted_at: at.map(parse_ts).transpose()?,
            });
        }
        Ok(out)
    }

    /// Vote (or change the vote), offline: checked as the server will, kept as pending and
    /// queued.
    pub fn vote(&mut self, poll_id: i64, option: i64, now: DateTime<Utc>) -> Result<()> {
        let body: String = self
            .conn
            .query_row("SELECT body FROM polls WHERE id = ?1", [poll_id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or(crate::ClientError::Refused(
                unionpass_core::ErrorCode::NotFound,
            ))?;
        let poll: Poll = serde_json::from_str(&body).map_err(bad)?;
        let union = self.profile()?.map(|p| p.union.id).unwrap_or(-1);
        may_vote(&poll, union, option, now).map_err(crate::ClientError::Refused)?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO my_votes(poll_id, option, pending) VALUES (?1, ?2, 1)
             ON CONFLICT(poll_id) DO UPDATE SET option = excluded.option, pending = 1",
            params![poll_id, option],
        )?;
        crate::store::enqueue_in(&tx, MutationOp::Vote(Vote { poll_id, option }), now)?;
        tx.commit()?;
        Ok(())
    }

    /// Keep a poll's results fetched after voting, as of `now`.
    pub fn set_poll_results(&self, r: &PollResults, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO poll_results(poll_id, counts, at) VALUES (?1, ?2, ?3)
             ON CONFLICT(poll_id) DO UPDATE SET counts = excluded.counts, at = excluded.at",
            params![
                r.poll_id,
                serde_json::to_string(&r.counts).expect("serializes"),
                ts(now)
            ],
        )?;
        Ok(())
    }

    /// Polls the member voted in (and the server has the vote): their results can be fetched.
    pub fn voted_polls(&self, now: DateTime<Utc>) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.poll_id FROM my_votes v JOIN polls p ON p.id = v.poll_id
             WHERE v.pending = 0 AND p.closes_at > ?1",
        )?;
        let rows = stmt.query_map([ts(now - chrono::Duration::days(7))], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One activity as synced.
    pub fn activity(&self, id: i64) -> Result<Option<Activity>> {
        activity_in(&self.conn, id)
    }

    /// Keep the live counts fetched from the server, as of `now`, and the member's place on each
    /// waitlist they are still on there (it moves up as those ahead leave).
    pub fn set_activity_counts(&mut self, live: &[ActivityLive], now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.transaction()?;
        for l in live {
            tx.execute(
                "INSERT INTO activity_counts(activity_id, seats_taken, waiting, at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(activity_id) DO UPDATE SET seats_taken = excluded.seats_taken,
                   waiting = excluded.waiting, at = excluded.at",
                params![l.activity.id, l.seats_taken, l.waiting, ts(now)],
            )?;
            if let Some(place) = l.my_position {
                tx.execute(
                    "UPDATE my_signups SET body = json_set(body, '$.position', ?2)
                     WHERE activity_id = ?1 AND state = 'waitlisted'",
                    params![l.activity.id, place],
                )?;
            }
        }
        // the no-show ban is the member's, said on each popular activity; a list with none
        // to say it on leaves it unknown, which closes nothing (the server still judges)
        match live.iter().find_map(|l| l.my_ban_until) {
            Some(until) => crate::store::meta_set(&tx, K_BAN_UNTIL, &ts(until))?,
            None => {
                tx.execute("DELETE FROM meta WHERE key = ?1", [K_BAN_UNTIL])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The key for a sign-up request: the open one for this activity when its companions are the
    /// same (a double tap, a retry), else a new one, stored before anything is sent.
    pub fn signup_key(
        &self,
        activity_id: i64,
        companions: i64,
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        let open: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT key, companions FROM signup_keys WHERE activity_id = ?1",
                [activity_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((k, c)) = open {
            if c == companions {
                if let Ok(k) = k.parse() {
                    return Ok(k);
                }
            }
        }
        let key = Uuid::new_v4();
        self.conn.execute(
            "INSERT INTO signup_keys(activity_id, key, companions, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(activity_id) DO UPDATE SET key = excluded.key,
               companions = excluded.companions, created_at = excluded.created_at",
            params![activity_id, key.to_string(), companions, ts(now)],
        )?;
        Ok(key)
    }

    /// The final answer to a sign-up request: its key is done with; an accepted sign-up is kept
    /// as the member's (the next sync brings the same).
    pub fn record_signup(&mut self, activity_id: i64, answer: &SignupAnswer) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM signup_keys WHERE activity_id = ?1",
            [activity_id],
        )?;
        if let SignupAnswer::Accepted { signup, .. } = answer {
            put_signup(&tx, signup)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Give (or change) feedback on an activity, offline: checked as the server will (checked in,
    /// the activity ended, rating 1–5, comment within bounds, within the week), kept as pending
    /// and queued. Control
    /// characters pasted with the comment are dropped first (the server refuses them).
    pub fn give_feedback(
        &mut self,
        activity_id: i64,
        rating: i64,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let comment = &unionpass_core::activity::without_hidden_controls(comment);
        let attended: bool = self
            .conn
            .query_row(
                "SELECT 1 FROM attended WHERE activity_id = ?1",
                [activity_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let first: Option<String> = self
            .conn
            .query_row(
                "SELECT first_given_at FROM my_feedback WHERE activity_id = ?1",
                [activity_id],
                |r| r.get(0),
            )
            .optional()?;
        let first = first.map(parse_ts).transpose()?;
        // an activity this device has not synced yet: the member cannot have come to it here
        let ends_at = self.activity(activity_id)?.map(|a| a.ends_at).ok_or({
            crate::ClientError::Refused(if attended {
                unionpass_core::ErrorCode::NotFound
            } else {
                unionpass_core::ErrorCode::FeedbackNotAttended
            })
        })?;
        may_give_feedback(attended, ends_at, first, rating, comment, now)
            .map_err(crate::ClientError::Refused)?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO my_feedback(activity_id, rating, comment, first_given_at, updated_at, pending)
             VALUES (?1, ?2, ?3, ?4, ?4, 1)
             ON CONFLICT(activity_id) DO UPDATE SET rating = excluded.rating,
               comment = excluded.comment, updated_at = excluded.updated_at, pending = 1",
            params![activity_id, rating, comment, ts(now)],
        )?;
        crate::store::enqueue_in(
            &tx,
            MutationOp::Feedback(Feedback {
                activity_id,
                rating,
                comment: comment.to_string(),
            }),
            now,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A cancellation the server confirmed.
    pub fn record_cancel(&mut self, signup: &MySignup) -> Result<()> {
        let tx = self.conn.transaction()?;
        put_signup(&tx, signup)?;
        if !signup.state.is_active() {
            forget_change(&tx, signup.activity_id)?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Store {
    /// The activities of promotions not announced yet, marked announced; an activity already
    /// over is marked without being returned.
    pub fn take_promotions(&mut self, now: DateTime<Utc>) -> Result<Vec<Activity>> {
        let tx = self.conn.transaction()?;
        let bodies: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.body FROM signup_notices n JOIN activities a ON a.id = n.activity_id
                 WHERE n.notified = 0 ORDER BY n.activity_id",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "UPDATE signup_notices SET notified = 1 WHERE notified = 0",
            [],
        )?;
        tx.commit()?;
        let mut out = Vec::new();
        for b in bodies {
            let a: Activity = serde_json::from_str(&b).map_err(bad)?;
            if a.ends_at > now && a.cancelled_at.is_none() {
                out.push(a);
            }
        }
        Ok(out)
    }
}

impl Store {
    /// The activity changes a sync found and the member was not told of natively yet (each
    /// once; not for an activity already over), now marked told.
    pub fn take_activity_notices(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Activity, ChangeNotice)>> {
        let tx = self.conn.transaction()?;
        let rows: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.body, n.notice FROM activity_notices n
                 JOIN activities a ON a.id = n.activity_id
                 WHERE n.notified = 0 ORDER BY n.activity_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "UPDATE activity_notices SET notified = 1 WHERE notified = 0",
            [],
        )?;
        tx.commit()?;
        let mut out = Vec::new();
        for (body, notice) in rows {
            let a: Activity = serde_json::from_str(&body).map_err(bad)?;
            let notice: Option<ChangeNotice> = serde_json::from_str(&notice).ok();
            if let Some(notice) = notice.filter(|_| a.ends_at > now) {
                out.push((a, notice));
            }
        }
        Ok(out)
    }
}

/// Activity `id` as `conn` holds it (the store's, or a transaction's).
fn activity_in(conn: &rusqlite::Connection, id: i64) -> Result<Option<Activity>> {
    let body: Option<String> = conn
        .query_row("SELECT body FROM activities WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    body.map(|b| serde_json::from_str(&b).map_err(bad))
        .transpose()
}

/// A synced change of activity `new` (at `at`, the server's time of it), kept to tell the
/// member when they have a live sign-up for it ([`change_notice`] over the body held before and
/// the notice already held): natively once ([`Store::take_activity_notices`]) and on its card.
/// Not for history (`catching_up`: a new device's first sync, or what a store fetching the log
/// again after an upgrade had synced before): what it replays is not news, and compared with a
/// body held from later it would say the wrong thing.
pub(crate) fn note_change(
    tx: &rusqlite::Transaction<'_>,
    new: &Activity,
    at: DateTime<Utc>,
    catching_up: bool,
) -> Result<()> {
    if catching_up {
        return Ok(());
    }
    let Some(old) = activity_in(tx, new.id)? else {
        return Ok(());
    };
    let mine: Option<String> = tx
        .query_row(
            "SELECT state FROM my_signups WHERE activity_id = ?1",
            [new.id],
            |r| r.get(0),
        )
        .optional()?;
    // a notice not told yet is this one's start (a second move says the time first given; a
    // move back to it leaves nothing to tell); one already told is what the member knows, and a
    // new move is news from the time they were told of
    let earlier: Option<(String, bool)> = tx
        .query_row(
            "SELECT notice, notified FROM activity_notices WHERE activity_id = ?1",
            [new.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let earlier: Option<ChangeNotice> = earlier
        .filter(|(_, told)| !told)
        .and_then(|(n, _)| serde_json::from_str(&n).ok());
    let mine = mine.as_deref().and_then(SignupState::parse);
    match change_notice(&old, new, mine, earlier) {
        None => {}
        Some(None) => forget_change(tx, new.id)?,
        Some(Some(notice)) => {
            tx.execute(
                "INSERT INTO activity_notices(activity_id, notice, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(activity_id) DO UPDATE SET notice = excluded.notice,
                   at = excluded.at, notified = 0",
                params![
                    new.id,
                    serde_json::to_string(&notice).expect("serializes"),
                    ts(at)
                ],
            )?;
        }
    }
    Ok(())
}

/// The member's sign-up for `activity_id` ended (or the activity is back at its time): what the
/// union changed is no longer theirs to be told, natively or on the card.
pub(crate) fn forget_change(tx: &rusqlite::Transaction<'_>, activity_id: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM activity_notices WHERE activity_id = ?1",
        [activity_id],
    )?;
    Ok(())
}

/// A place at an activity brings the automatic reminder [`START_LEAD`] before it starts; a
/// cancelled sign-up takes it away (unless it already fired).
pub(crate) fn schedule_start_reminder(tx: &rusqlite::Transaction<'_>, s: &MySignup) -> Result<()> {
    if s.state.has_seats() {
        let starts: Option<String> = tx
            .query_row(
                "SELECT json_extract(body, '$.starts_at') FROM activities WHERE id = ?1",
                [s.activity_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(starts) = starts {
            let due = parse_ts(starts)? - START_LEAD;
            tx.execute(
                "INSERT OR IGNORE INTO activity_reminders(activity_id, kind, due_at) VALUES (?1, 'starts', ?2)",
                params![s.activity_id, ts(due)],
            )?;
        }
    } else if s.state == SignupState::Cancelled {
        tx.execute(
            "DELETE FROM activity_reminders WHERE activity_id = ?1 AND kind = 'starts' AND fired = 0",
            [s.activity_id],
        )?;
    }
    Ok(())
}

/// A moved activity moves its unfired reminders; a cancelled one drops them.
pub(crate) fn reschedule_reminders(tx: &rusqlite::Transaction<'_>, a: &Activity) -> Result<()> {
    if a.cancelled_at.is_some() {
        tx.execute(
            "DELETE FROM activity_reminders WHERE activity_id = ?1 AND fired = 0",
            [a.id],
        )?;
        return Ok(());
    }
    tx.execute(
        "UPDATE activity_reminders SET due_at = ?2 WHERE activity_id = ?1 AND kind = 'starts' AND fired = 0",
        params![a.id, ts(a.starts_at - START_LEAD)],
    )?;
    if let Some(r) = &a.signup {
        tx.execute(
            "UPDATE activity_reminders SET due_at = ?2 WHERE activity_id = ?1 AND kind = 'opens' AND fired = 0",
            params![a.id, ts(r.opens_at - OPENING_LEAD)],
        )?;
    }
    Ok(())
}

impl Store {
    /// "Remind me before sign-up opens" for `activity_id`, at `now` (server time).
    pub fn set_opening_reminder(&self, activity_id: i64, now: DateTime<Utc>) -> Result<()> {
        let a = self
            .activity(activity_id)?
            .ok_or(crate::ClientError::Refused(
                unionpass_core::ErrorCode::NotFound,
            ))?;
        let opens = a
            .signup
            .as_ref()
            .map(|r| r.opens_at)
            .ok_or(crate::ClientError::Refused(
                unionpass_core::ErrorCode::BadRequest,
            ))?;
        let due = opening_reminder_at(opens, now).ok_or(crate::ClientError::Refused(
            unionpass_core::ErrorCode::ReminderTooLate,
        ))?;
        self.conn.execute(
            "INSERT INTO activity_reminders(activity_id, kind, due_at, fired) VALUES (?1, 'opens', ?2, 0)
             ON CONFLICT(activity_id, kind) DO UPDATE SET due_at = excluded.due_at, fired = 0",
            params![activity_id, ts(due)],
        )?;
        Ok(())
    }

    pub fn clear_opening_reminder(&self, activity_id: i64) -> Result<()> {
        self.conn.execute(
            "DELETE FROM activity_reminders WHERE activity_id = ?1 AND kind = 'opens'",
            [activity_id],
        )?;
        Ok(())
    }

    /// The activity reminders due at `now` (server time), marked fired: the activity and
    /// whether it is the opening (`true`) or the start. Those for a cancelled or ended
    /// activity are marked without being returned.
    pub fn due_activity_reminders(&mut self, now: DateTime<Utc>) -> Result<Vec<(Activity, bool)>> {
        let tx = self.conn.transaction()?;
        let due: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.body, r.kind FROM activity_reminders r JOIN activities a ON a.id = r.activity_id
                 WHERE r.fired = 0 AND r.due_at <= ?1 ORDER BY r.due_at",
            )?;
            let rows = stmt.query_map([ts(now)], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "UPDATE activity_reminders SET fired = 1 WHERE fired = 0 AND due_at <= ?1",
            [ts(now)],
        )?;
        tx.commit()?;
        let mut out = Vec::new();
        for (body, kind) in due {
            let a: Activity = serde_json::from_str(&body).map_err(bad)?;
            if a.cancelled_at.is_none() && a.ends_at > now {
                out.push((a, kind == "opens"));
            }
        }
        Ok(out)
    }

    /// When the next unfired activity reminder is due.
    pub fn next_activity_reminder(&self) -> Result<Option<DateTime<Utc>>> {
        let t: Option<String> = self.conn.query_row(
            "SELECT min(due_at) FROM activity_reminders WHERE fired = 0",
            [],
            |r| r.get(0),
        )?;
        t.map(parse_ts).transpose().map_err(Into::into)
    }
}

pub(crate) fn put_signup(tx: &rusqlite::Transaction<'_>, s: &MySignup) -> Result<()> {
    schedule_start_reminder(tx, s)?;
    tx.execute(
        "INSERT INTO my_signups(activity_id, state, body) VALUES (?1, ?2, ?3)
         ON CONFLICT(activity_id) DO UPDATE SET state = excluded.state, body = excluded.body",
        params![
            s.activity_id,
            s.state.as_str(),
            serde_json::to_string(s).expect("serializes")
        ],
    )?;
    Ok(())
}

fn bad(e: serde_json::Error) -> crate::ClientError {
    crate::ClientError::BadResponse(format!("stored activity data: {e}"))
}
