//! Activities and their sign-ups on SQLite. Sign-ups are decided in the writer's group commit
//! ([`super::writer`]) and cancellations in their own `BEGIN IMMEDIATE` transaction, both on the
//! one writer connection, so requests are judged one at a time in the order they reach it; that
//! order is the waitlist's (`signups.id`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use unionpass_core::activity::{
    may_cancel, promotions, Activity, ActivityLive, MySignup, SignupAnswer, SignupState,
};
use unionpass_core::activity::{Feedback, FeedbackGiven, Poll, PollResults, Vote};
use unionpass_core::api::{ChangeKind, MutationOutcome};
use unionpass_core::ErrorCode;

use super::{json, log_change, parse_ts, ts, SqliteStore};
use crate::store::memo::{SignupMemo, SignupSnapshot, SuspectQuery};
use crate::store::rules::{
    changed_activity, judge_feedback, judge_signup, judge_vote, misses_lookback, new_signup,
    signup_replay, take_place,
};
use crate::store::{Activities, ActivityChange, FeedbackRow, SignupJob, SignupRow, StoreError};

fn activity_of(body: &str, id: i64) -> Result<Activity, StoreError> {
    let mut a: Activity = serde_json::from_str(body)?;
    a.id = id;
    Ok(a)
}

/// The activity's body and its counters, read in the transaction.
struct Row {
    activity: Activity,
    seats_taken: i64,
    waiting: i64,
}

fn load(tx: &Connection, id: i64) -> Result<Option<Row>, StoreError> {
    read(tx, id)?
        .map(|(body, seats_taken, waiting)| {
            Ok(Row {
                activity: activity_of(&body, id)?,
                seats_taken,
                waiting,
            })
        })
        .transpose()
}

/// The activity's stored body and its counters (seats taken, waiting).
fn read(tx: &Connection, id: i64) -> Result<Option<(String, i64, i64)>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT body, seats_taken, waiting FROM activities WHERE event_id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// Activities as the group writer last parsed them, each with the stored text it was parsed
/// from. A burst's sign-ups for one activity then parse its JSON body once, not once a request
/// (about 17,000 instructions each, a tenth of an accepted sign-up). An entry is used only while
/// the stored text is the same, so a changed activity is parsed again; nothing else makes it
/// stale, and a rolled-back group leaves it true.
#[derive(Default)]
pub(super) struct Parsed {
    by_id: std::collections::HashMap<i64, (String, Activity)>,
}

impl Parsed {
    /// Activities kept at most (beyond, all are forgotten and parsed again).
    const MAX: usize = 256;

    /// The activity with id `id` read in `tx`, and its counters (seats taken, waiting).
    fn load(
        &mut self,
        tx: &Connection,
        id: i64,
    ) -> Result<Option<(&Activity, i64, i64)>, StoreError> {
        let Some((body, seats_taken, waiting)) = read(tx, id)? else {
            return Ok(None);
        };
        let known = matches!(self.by_id.get(&id), Some((text, _)) if *text == body);
        if !known {
            if self.by_id.len() >= Self::MAX {
                self.by_id.clear();
            }
            let activity = activity_of(&body, id)?;
            self.by_id.insert(id, (body, activity));
        }
        Ok(self.by_id.get(&id).map(|(_, a)| (a, seats_taken, waiting)))
    }
}

/// A member's waiting sign-ups with their place now: those waiting at the same activity that
/// came before, and theirs (the place [`my_signup`] gives).
const WAITLIST_PLACES: &str = "SELECT s.activity_id,
       (SELECT count(*) FROM signups w
        WHERE w.activity_id = s.activity_id AND w.state = 'waitlisted' AND w.id <= s.id)
     FROM signups s WHERE s.member_id = ?1 AND s.state = 'waitlisted'";

/// A member's sign-up row as they see it, with its waitlist place when waiting.
fn my_signup(tx: &Connection, signup_id: i64) -> Result<MySignup, StoreError> {
    let (activity_id, state, companions, created, updated): (i64, String, i64, String, String) = tx
        .prepare_cached(
            "SELECT activity_id, state, companions, created_at, updated_at FROM signups WHERE id = ?1",
        )?
        .query_row([signup_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let state = SignupState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("sign-up state {state:?}")))?;
    let position = if state == SignupState::Waitlisted {
        Some(tx.prepare_cached(
            "SELECT count(*) FROM signups WHERE activity_id = ?1 AND state = 'waitlisted' AND id <= ?2",
        )?
        .query_row(params![activity_id, signup_id], |r| r.get(0))?)
    } else {
        None
    };
    Ok(MySignup {
        activity_id,
        state,
        companions,
        position,
        created_at: parse_ts(&created)?,
        updated_at: parse_ts(&updated)?,
    })
}

/// End times of the member's activities they had seats for and did not check in to, that ended
/// in the last `days` (cancelled activities do not count).
fn misses(
    tx: &Connection,
    member_id: i64,
    now: DateTime<Utc>,
    days: i64,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT e.ends_at FROM signups s
         JOIN events e ON e.id = s.activity_id
         JOIN activities a ON a.event_id = s.activity_id
         WHERE s.member_id = ?1 AND s.state IN ('confirmed', 'promoted') AND a.cancelled_at IS NULL
           AND e.ends_at <= ?2 AND e.ends_at > ?3
           AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.event_id = s.activity_id AND c.member_id = s.member_id)",
    )?;
    let mut rows = stmt.query(params![member_id, ts(now), ts(now - Duration::days(days))])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(parse_ts(&r.get::<_, String>(0)?)?);
    }
    Ok(out)
}

/// A sign-up request judged on what `tx` sees: a key seen before, or the decision with the
/// activity's counters it was made on (seats taken, waiting).
enum Judged {
    Seen(i64, (i64, i64, i64)),
    Decision(
        Result<SignupState, unionpass_core::activity::Refusal>,
        (i64, i64),
    ),
}

fn judge(tx: &Connection, parsed: &mut Parsed, job: &SignupJob) -> Result<Judged, StoreError> {
    let key = job.key.to_string();
    let seen: Option<(i64, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT id, member_id, activity_id, companions FROM signups WHERE key = ?1",
        )?
        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    if let Some((id, member, activity, companions)) = seen {
        return Ok(Judged::Seen(id, (member, activity, companions)));
    }
    let (activity, seats_taken, waiting) = parsed
        .load(tx, job.activity_id)?
        .ok_or(StoreError::NoActivity(job.activity_id))?;
    let existing: Option<String> = tx
        .prepare_cached(
            "SELECT state FROM signups WHERE activity_id = ?1 AND member_id = ?2 AND state <> 'cancelled'",
        )?
        .query_row(params![job.activity_id, job.member_id], |r| r.get(0))
        .optional()?;
    let missed = match misses_lookback(activity, job) {
        Some(days) => misses(tx, job.member_id, job.now, days)?,
        None => Vec::new(),
    };
    Ok(Judged::Decision(
        judge_signup(
            activity,
            seats_taken,
            waiting,
            existing.as_deref(),
            &missed,
            job,
        )?,
        (seats_taken, waiting),
    ))
}

pub(super) fn sign_up_in(
    tx: &Connection,
    parsed: &mut Parsed,
    job: &SignupJob,
) -> Result<SignupAnswer, StoreError> {
    let key = job.key.to_string();
    let (state, (mut seats_taken, mut waiting)) = match judge(tx, parsed, job)? {
        Judged::Seen(id, stored) => {
            signup_replay(stored, job)?;
            return Ok(SignupAnswer::Accepted {
                signup: my_signup(tx, id)?,
                replayed: true,
            });
        }
        Judged::Decision(Err(refusal), _) => return Ok(SignupAnswer::Refused { refusal }),
        Judged::Decision(Ok(state), counters) => (state, counters),
    };
    if let Some(hash) = &job.session {
        if !super::accounts::session_live(tx, hash, job.member_id, job.now)? {
            return Err(StoreError::SessionEnded);
        }
    }
    tx.prepare_cached(
        "INSERT INTO signups(activity_id, member_id, companions, state, key, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![
        job.activity_id,
        job.member_id,
        job.companions,
        state.as_str(),
        key,
        ts(job.now)
    ])?;
    // the counters as read in this transaction, less what this sign-up takes; its answer as
    // `my_signup` would read it back, without counting the waitlist again (the new row is the
    // last one waiting), its times the stored text's (so a replay reads the same)
    let position = take_place(state, job.companions, &mut seats_taken, &mut waiting);
    tx.prepare_cached("UPDATE activities SET seats_taken = ?2, waiting = ?3 WHERE event_id = ?1")?
        .execute(params![job.activity_id, seats_taken, waiting])?;
    let signup = new_signup(job, state, position, parse_ts(&ts(job.now))?);
    log_change(
        tx,
        Some(job.member_id),
        job.now,
        &ChangeKind::Signup(signup.clone()),
    )?;
    Ok(SignupAnswer::Accepted {
        signup,
        replayed: false,
    })
}

fn cancel_in(
    tx: &Transaction<'_>,
    member_id: i64,
    activity_id: i64,
    now: DateTime<Utc>,
) -> Result<Result<MySignup, ErrorCode>, StoreError> {
    let row = load(tx, activity_id)?.ok_or(StoreError::NoActivity(activity_id))?;
    let Some(rules) = row.activity.signup.clone() else {
        return Ok(Err(ErrorCode::NotFound));
    };
    let live: Option<(i64, String, i64)> = tx
        .prepare_cached(
            "SELECT id, state, companions FROM signups
             WHERE activity_id = ?1 AND member_id = ?2 AND state <> 'cancelled'",
        )?
        .query_row(params![activity_id, member_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((id, state, companions)) = live else {
        return Ok(Err(ErrorCode::NotFound));
    };
    let state = SignupState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("sign-up state {state:?}")))?;
    if let Err(code) = may_cancel(&rules, state, now) {
        return Ok(Err(code));
    }
    tx.prepare_cached("UPDATE signups SET state = 'cancelled', updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, ts(now)])?;
    if state.has_seats() {
        tx.prepare_cached(
            "UPDATE activities SET seats_taken = seats_taken - ?2 WHERE event_id = ?1",
        )?
        .execute(params![activity_id, 1 + companions])?;
    } else {
        tx.prepare_cached("UPDATE activities SET waiting = waiting - 1 WHERE event_id = ?1")?
            .execute([activity_id])?;
    }
    let mine = my_signup(tx, id)?;
    log_change(tx, Some(member_id), now, &ChangeKind::Signup(mine.clone()))?;
    // freed seats go to the head of the waitlist, strictly in order (not after the activity
    // was cancelled or has started: nobody would be told in time)
    if row.activity.cancelled_at.is_none() && now < row.activity.starts_at {
        promote(tx, activity_id, rules.seats, now)?;
    }
    Ok(Ok(mine))
}

/// Give free seats to the waitlist's head, in order; each promoted member is told by sync.
fn promote(
    tx: &Transaction<'_>,
    activity_id: i64,
    seats: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let taken: i64 = tx
        .prepare_cached("SELECT seats_taken FROM activities WHERE event_id = ?1")?
        .query_row([activity_id], |r| r.get(0))?;
    let free = seats - taken;
    if free <= 0 {
        return Ok(());
    }
    let waitlist: Vec<(i64, i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, companions, member_id FROM signups
             WHERE activity_id = ?1 AND state = 'waitlisted' ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![activity_id, free], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let order: Vec<(i64, i64)> = waitlist.iter().map(|(id, c, _)| (*id, *c)).collect();
    for id in promotions(&order, free) {
        let (_, companions, member) = waitlist
            .iter()
            .find(|(w, _, _)| *w == id)
            .copied()
            .expect("promoted from the list");
        tx.prepare_cached("UPDATE signups SET state = 'promoted', updated_at = ?2 WHERE id = ?1")?
            .execute(params![id, ts(now)])?;
        tx.prepare_cached(
            "UPDATE activities SET seats_taken = seats_taken + ?2, waiting = waiting - 1
             WHERE event_id = ?1",
        )?
        .execute(params![activity_id, 1 + companions])?;
        let theirs = my_signup(tx, id)?;
        log_change(tx, Some(member), now, &ChangeKind::Signup(theirs))?;
    }
    Ok(())
}

/// The `feedback` mutation, inside the mutation's transaction: only after checking in and once
/// the activity has ended, rating 1–5, comment within bounds, editable for a week after it was
/// first given (`activity::may_give_feedback`).
pub(super) fn give_feedback(
    tx: &rusqlite::Connection,
    member_id: i64,
    f: &Feedback,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let ends_at: Option<String> = tx
        .query_row(
            "SELECT e.ends_at FROM activities a JOIN events e ON e.id = a.event_id
             WHERE a.event_id = ?1",
            [f.activity_id],
            |r| r.get(0),
        )
        .optional()?;
    let ends_at = ends_at.map(|t| parse_ts(&t)).transpose()?;
    let checked_in: bool = tx
        .query_row(
            "SELECT 1 FROM checkins WHERE event_id = ?1 AND member_id = ?2",
            params![f.activity_id, member_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    let first: Option<String> = tx
        .query_row(
            "SELECT first_given_at FROM feedback WHERE activity_id = ?1 AND member_id = ?2",
            params![f.activity_id, member_id],
            |r| r.get(0),
        )
        .optional()?;
    let first = first.map(|t| parse_ts(&t)).transpose()?;
    let first_given_at = match judge_feedback(ends_at, checked_in, first, f, now) {
        Ok(t) => t,
        Err(refused) => return Ok(refused),
    };
    tx.execute(
        "INSERT INTO feedback(activity_id, member_id, rating, comment, first_given_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(activity_id, member_id) DO UPDATE SET rating = excluded.rating,
           comment = excluded.comment, updated_at = excluded.updated_at",
        params![
            f.activity_id,
            member_id,
            f.rating,
            f.comment,
            ts(first_given_at),
            ts(now)
        ],
    )?;
    log_change(
        tx,
        Some(member_id),
        now,
        &ChangeKind::Feedback(FeedbackGiven {
            activity_id: f.activity_id,
            rating: f.rating,
            comment: f.comment.clone(),
            first_given_at,
            updated_at: now,
        }),
    )?;
    Ok(MutationOutcome::Applied)
}

/// The `vote` mutation, inside the mutation's transaction: `activity::may_vote` (its union, before
/// the close, an offered option); a later vote replaces the earlier one.
pub(super) fn vote(
    tx: &rusqlite::Connection,
    member_id: i64,
    v: &Vote,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let body: Option<String> = tx
        .query_row("SELECT body FROM polls WHERE id = ?1", [v.poll_id], |r| {
            r.get(0)
        })
        .optional()?;
    let poll: Option<Poll> = body.map(|b| serde_json::from_str(&b)).transpose()?;
    let union_id = super::accounts::role_and_union(tx, member_id)?.1;
    if let Err(refused) = judge_vote(poll.as_ref(), union_id, v, now) {
        return Ok(refused);
    }
    tx.execute(
        "INSERT INTO poll_votes(poll_id, member_id, option, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(poll_id, member_id) DO UPDATE SET option = excluded.option, at = excluded.at",
        params![v.poll_id, member_id, v.option, ts(now)],
    )?;
    log_change(
        tx,
        Some(member_id),
        now,
        &ChangeKind::Voted {
            poll_id: v.poll_id,
            option: v.option,
        },
    )?;
    Ok(MutationOutcome::Applied)
}

#[async_trait]
impl Activities for SqliteStore {
    async fn create_activity(
        &self,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> Result<Activity, StoreError> {
        activity.check().map_err(StoreError::Refused)?;
        self.in_tx(move |tx| {
            let seats = activity.signup.as_ref().map(|r| r.seats);
            tx.execute(
                "INSERT INTO events(title, place, starts_at, ends_at, capacity, union_id, created_at, points)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    activity.title_zh,
                    activity.place,
                    ts(activity.starts_at),
                    ts(activity.ends_at),
                    seats.unwrap_or(0),
                    activity.union_id,
                    ts(now),
                    activity.points
                ],
            )?;
            let a = Activity {
                id: tx.last_insert_rowid(),
                ..activity
            };
            let r = a.signup.as_ref();
            tx.execute(
                "INSERT INTO activities(event_id, body, seats, waitlist, popular, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.id,
                    json(&a),
                    seats,
                    r.map(|r| r.waitlist).unwrap_or(0),
                    r.is_some_and(|r| r.popular),
                    ts(now)
                ],
            )?;
            log_change(tx, None, now, &ChangeKind::Activity(a.clone()))?;
            Ok(a)
        })
        .await
    }

    async fn activities(&self) -> Result<Vec<ActivityLive>, StoreError> {
        self.with_read(|c| {
            let mut stmt = c.prepare(
                "SELECT a.event_id, a.body, a.seats_taken, a.waiting
                 FROM activities a JOIN events e ON e.id = a.event_id
                 ORDER BY e.starts_at, a.event_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(ActivityLive {
                    activity: activity_of(&r.get::<_, String>(1)?, r.get(0)?)?,
                    seats_taken: r.get(2)?,
                    waiting: r.get(3)?,
                    my_position: None,
                    my_ban_until: None,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn waitlist_places(&self, member_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        self.with_read(move |c| {
            let mut stmt = c.prepare_cached(WAITLIST_PLACES)?;
            let rows = stmt.query_map([member_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn missed_ends(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
        days: i64,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        self.with_read(move |c| misses(c, member_id, now, days))
            .await
    }

    async fn judge_sign_up(&self, job: SignupJob) -> Result<SignupAnswer, StoreError> {
        // the writer's group commit judges every request in order (a snapshot judged first on
        // the read connection was measured: no faster, and every accepted request judged twice)
        self.writer.sign_up(job).await
    }

    fn signup_memo(&self) -> &SignupMemo {
        &self.signup_memo
    }

    async fn signup_snapshot(
        &self,
        activity_id: i64,
    ) -> Result<Option<SignupSnapshot>, StoreError> {
        self.with_read(move |c| {
            // one read transaction: the counters, keys and members as one commit left them
            let tx = c.transaction()?;
            let Some(row) = load(&tx, activity_id)? else {
                return Ok(None);
            };
            let keys = tx
                .prepare_cached("SELECT key FROM signups WHERE activity_id = ?1 LIMIT ?2")?
                .query_map(params![activity_id, SignupMemo::MAX_KEYS as i64 + 1], |r| {
                    r.get::<_, String>(0)
                })?
                .map(|k| {
                    uuid::Uuid::parse_str(&k?)
                        .map_err(|e| StoreError::Corrupt(format!("sign-up key: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let members = tx
                .prepare_cached(
                    "SELECT member_id FROM signups WHERE activity_id = ?1 AND state <> 'cancelled'",
                )?
                .query_map([activity_id], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            Ok(Some(SignupSnapshot {
                live: ActivityLive {
                    activity: row.activity,
                    seats_taken: row.seats_taken,
                    waiting: row.waiting,
                    my_position: None,
                    my_ban_until: None,
                },
                keys,
                members,
            }))
        })
        .await
    }

    async fn no_show_suspects(&self, q: SuspectQuery) -> Result<Vec<i64>, StoreError> {
        self.with_read(move |c| {
            Ok(c.prepare_cached(
                "SELECT s.member_id FROM events e
                 JOIN activities a ON a.event_id = e.id
                 JOIN signups s ON s.activity_id = e.id
                 WHERE e.ends_at > ?1 AND e.ends_at <= ?2 AND a.cancelled_at IS NULL
                   AND s.state IN ('confirmed', 'promoted')
                   AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.event_id = s.activity_id AND c.member_id = s.member_id)
                 GROUP BY s.member_id HAVING count(*) >= ?3 LIMIT ?4",
            )?
            .query_map(
                params![
                    ts(q.since),
                    ts(q.until),
                    q.min_misses,
                    SignupMemo::MAX_SUSPECTS as i64 + 1
                ],
                |r| r.get(0),
            )?
            .collect::<Result<Vec<i64>, _>>()?)
        })
        .await
    }

    async fn cancel_signup(
        &self,
        member_id: i64,
        activity_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<MySignup, ErrorCode>, StoreError> {
        let memo = self.signup_memo.clone();
        self.in_tx_then(
            move |tx| cancel_in(tx, member_id, activity_id, now),
            move || memo.forget(activity_id),
        )
        .await
    }

    async fn change_activity(
        &self,
        id: i64,
        change: ActivityChange,
        now: DateTime<Utc>,
    ) -> Result<Activity, StoreError> {
        let memo = self.signup_memo.clone();
        self.in_tx_then(
            move |tx| {
                let row = load(tx, id)?.ok_or(StoreError::NoActivity(id))?;
                let a = changed_activity(row.activity, change, now)?;
                tx.execute(
                    "UPDATE activities SET body = ?2, cancelled_at = ?3 WHERE event_id = ?1",
                    params![id, json(&a), a.cancelled_at.map(ts)],
                )?;
                tx.execute(
                    "UPDATE events SET starts_at = ?2, ends_at = ?3 WHERE id = ?1",
                    params![id, ts(a.starts_at), ts(a.ends_at)],
                )?;
                log_change(tx, None, now, &ChangeKind::Activity(a.clone()))?;
                Ok(a)
            },
            move || memo.forget_changed(id),
        )
        .await
    }

    async fn create_poll(&self, poll: Poll, now: DateTime<Utc>) -> Result<Poll, StoreError> {
        poll.check().map_err(StoreError::Refused)?;
        self.in_tx(move |tx| {
            tx.execute(
                "INSERT INTO polls(body, union_id, closes_at, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![json(&poll), poll.union_id, ts(poll.closes_at), ts(now)],
            )?;
            let p = Poll {
                id: tx.last_insert_rowid(),
                ..poll
            };
            tx.execute(
                "UPDATE polls SET body = ?2 WHERE id = ?1",
                params![p.id, json(&p)],
            )?;
            log_change(tx, None, now, &ChangeKind::Poll(p.clone()))?;
            Ok(p)
        })
        .await
    }

    async fn polls(&self) -> Result<Vec<Poll>, StoreError> {
        self.with_read(|c| {
            let mut stmt = c.prepare("SELECT id, body FROM polls ORDER BY closes_at, id")?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let mut p: Poll = serde_json::from_str(&r.get::<_, String>(1)?)?;
                p.id = r.get(0)?;
                out.push(p);
            }
            Ok(out)
        })
        .await
    }

    async fn poll_results(
        &self,
        poll_id: i64,
        member_id: i64,
    ) -> Result<Option<PollResults>, StoreError> {
        self.with_read(move |c| {
            let body: Option<String> = c
                .query_row("SELECT body FROM polls WHERE id = ?1", [poll_id], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(body) = body else {
                return Ok(None);
            };
            let poll: Poll = serde_json::from_str(&body)?;
            let mut counts = vec![0i64; poll.options.len()];
            let mut stmt = c.prepare(
                "SELECT option, count(*) FROM poll_votes WHERE poll_id = ?1 GROUP BY option",
            )?;
            let mut rows = stmt.query([poll_id])?;
            while let Some(r) = rows.next()? {
                let (o, n): (i64, i64) = (r.get(0)?, r.get(1)?);
                if let Some(slot) = counts.get_mut(o as usize) {
                    *slot = n;
                }
            }
            let mine = c
                .query_row(
                    "SELECT option FROM poll_votes WHERE poll_id = ?1 AND member_id = ?2",
                    params![poll_id, member_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(Some(PollResults {
                poll_id,
                counts,
                mine,
            }))
        })
        .await
    }

    async fn feedback(&self, activity_id: i64) -> Result<Vec<FeedbackRow>, StoreError> {
        self.with_read(move |c| {
            let mut stmt = c.prepare(
                "SELECT m.member_no, f.rating, f.comment, f.updated_at
                 FROM feedback f JOIN members m ON m.id = f.member_id
                 WHERE f.activity_id = ?1 ORDER BY f.updated_at, m.member_no",
            )?;
            let mut rows = stmt.query([activity_id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(FeedbackRow {
                    member_no: r.get(0)?,
                    rating: r.get(1)?,
                    comment: r.get(2)?,
                    at: parse_ts(&r.get::<_, String>(3)?)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn signups(&self, activity_id: i64) -> Result<Vec<SignupRow>, StoreError> {
        self.with_read(move |c| {
            let mut stmt = c.prepare(
                "SELECT s.id, m.member_no, m.name, s.companions, s.state, s.created_at,
                        EXISTS (SELECT 1 FROM checkins c WHERE c.event_id = s.activity_id AND c.member_id = s.member_id),
                        s.key
                 FROM signups s JOIN members m ON m.id = s.member_id
                 WHERE s.activity_id = ?1 ORDER BY s.id",
            )?;
            let mut rows = stmt.query([activity_id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let state: String = r.get(4)?;
                out.push(SignupRow {
                    seq: r.get(0)?,
                    member_no: r.get(1)?,
                    name: r.get(2)?,
                    companions: r.get(3)?,
                    state: SignupState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("sign-up state {state:?}")))?,
                    created_at: parse_ts(&r.get::<_, String>(5)?)?,
                    checked_in: r.get(6)?,
                    key: super::uuid_col(&r.get::<_, String>(7)?)?,
                });
            }
            Ok(out)
        })
        .await
    }
}
