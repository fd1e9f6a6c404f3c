//! Activities and their sign-ups on PostgreSQL. A sign-up or a cancellation locks its
//! activity's row (`FOR UPDATE`), so requests for one activity are judged one at a time across
//! every instance, in the order they take the lock; that order is the waitlist's (`signups.id`).
//! Deadlocks and serialization failures are retried (`rules::retrying`).
//!
//! Sign-ups are a group commit, as on SQLite: each instance has one task that takes every
//! sign-up waiting in its queue (`groups`), judges them in order in one transaction
//! and commits once; only then is each answered. At a full activity the crowd that can only be
//! refused is answered before it queues, from the instance's memory (`store::memo`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::types::ToSql;
use unionpass_core::activity::{
    may_cancel, promotions, Activity, ActivityLive, MySignup, SignupAnswer, SignupState,
};
use unionpass_core::activity::{Feedback, FeedbackGiven, Poll, PollResults, Vote};
use unionpass_core::api::{ChangeKind, MutationOutcome};
use unionpass_core::ErrorCode;

use super::{from_json, log_change, PgStore};
use crate::store::memo::{SignupMemo, SignupSnapshot, SuspectQuery};
use crate::store::rules::{
    changed_activity, judge_feedback, judge_signup, judge_vote, misses_lookback, new_signup,
    retrying, signup_replay, take_place,
};
use crate::store::{Activities, ActivityChange, FeedbackRow, SignupJob, SignupRow, StoreError};

/// A statement's parameter, for arrays of them kept while a pipeline is in flight.
type Param<'a> = dyn ToSql + Sync + 'a;

fn activity_of(body: serde_json::Value, id: i64) -> Result<Activity, StoreError> {
    let mut a: Activity = from_json(body)?;
    a.id = id;
    Ok(a)
}

struct Row {
    activity: Activity,
    seats_taken: i64,
    waiting: i64,
}

/// The activity and its counters, its row locked for the rest of the transaction.
async fn lock(c: &impl GenericClient, id: i64) -> Result<Option<Row>, StoreError> {
    c.query_opt(
        &c.prepare_cached(
            "SELECT body, seats_taken, waiting FROM activities WHERE event_id = $1 FOR UPDATE",
        )
        .await?,
        &[&id],
    )
    .await?
    .map(|r| {
        Ok(Row {
            activity: activity_of(r.get(0), id)?,
            seats_taken: r.get(1),
            waiting: r.get(2),
        })
    })
    .transpose()
}

fn state_of(s: &str) -> Result<SignupState, StoreError> {
    SignupState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("sign-up state {s:?}")))
}

async fn my_signup(c: &impl GenericClient, signup_id: i64) -> Result<MySignup, StoreError> {
    let r = c
        .query_one(
            &c.prepare_cached("SELECT activity_id, state, companions, created_at, updated_at,
                    CASE WHEN state = 'waitlisted' THEN
                      (SELECT count(*) FROM signups w
                       WHERE w.activity_id = s.activity_id AND w.state = 'waitlisted' AND w.id <= s.id)
                    END
             FROM signups s WHERE id = $1").await?,
            &[&signup_id],
        )
        .await?;
    Ok(MySignup {
        activity_id: r.get(0),
        state: state_of(r.get(1))?,
        companions: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
        position: r.get(5),
    })
}

async fn misses(
    c: &impl GenericClient,
    member_id: i64,
    now: DateTime<Utc>,
    days: i64,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let since = now - Duration::days(days);
    Ok(c
        .query(
            &c.prepare_cached("SELECT e.ends_at FROM signups s
             JOIN events e ON e.id = s.activity_id
             JOIN activities a ON a.event_id = s.activity_id
             WHERE s.member_id = $1 AND s.state IN ('confirmed', 'promoted') AND a.cancelled_at IS NULL
               AND e.ends_at <= $2 AND e.ends_at > $3
               AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.event_id = s.activity_id AND c.member_id = s.member_id)").await?,
            &[&member_id, &now, &since],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A sign-up request judged on what `c` sees, the activity's row locked first (the transaction
/// that will write the answer): a key seen before, or the decision.
enum Judged {
    Seen(i64, (i64, i64, i64)),
    /// With the activity's counters it was made on (seats taken, waiting).
    Decision(
        Result<SignupState, unionpass_core::activity::Refusal>,
        (i64, i64),
    ),
}

async fn judge(c: &impl GenericClient, job: &SignupJob) -> Result<Judged, StoreError> {
    // the activity's lock first: a retried key waits for its first answer's transaction, and
    // then the key and the member's sign-up are read as it left them
    let row = self::lock(c, job.activity_id).await?;
    let seen: Option<(i64, (i64, i64, i64))> = c
        .query_opt(
            &c.prepare_cached(
                "SELECT id, member_id, activity_id, companions FROM signups WHERE key = $1",
            )
            .await?,
            &[&job.key],
        )
        .await?
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))));
    // a key used before is answered as such whatever it is sent to now (as the batch and SQLite
    // answer it); only a new one learns that the activity does not exist
    let row = match (row, seen) {
        (Some(row), _) => row,
        (None, Some((id, stored))) => return Ok(Judged::Seen(id, stored)),
        (None, None) => return Err(StoreError::NoActivity(job.activity_id)),
    };
    let existing: Option<String> = c
        .query_opt(
            &c.prepare_cached("SELECT state FROM signups WHERE activity_id = $1 AND member_id = $2 AND state <> 'cancelled'").await?,
            &[&job.activity_id, &job.member_id],
        )
        .await?
        .map(|r| r.get(0));
    if let Some((id, stored)) = seen {
        return Ok(Judged::Seen(id, stored));
    }
    let missed = match misses_lookback(&row.activity, job) {
        Some(days) => misses(c, job.member_id, job.now, days).await?,
        None => Vec::new(),
    };
    Ok(Judged::Decision(
        judge_signup(
            &row.activity,
            row.seats_taken,
            row.waiting,
            existing.as_deref(),
            &missed,
            job,
        )?,
        (row.seats_taken, row.waiting),
    ))
}

async fn sign_up_in(c: &impl GenericClient, job: &SignupJob) -> Result<SignupAnswer, StoreError> {
    let (state, (mut seats_taken, mut waiting)) = match judge(c, job).await? {
        Judged::Seen(id, stored) => {
            signup_replay(stored, job)?;
            return Ok(SignupAnswer::Accepted {
                signup: my_signup(c, id).await?,
                replayed: true,
            });
        }
        Judged::Decision(Err(refusal), _) => return Ok(SignupAnswer::Refused { refusal }),
        Judged::Decision(Ok(state), counters) => (state, counters),
    };
    if let Some(hash) = &job.session {
        if !super::accounts::session_live(c, hash, job.member_id, job.now).await? {
            return Err(StoreError::SessionEnded);
        }
    }
    // the key may have been taken at this moment for another activity (another instance's
    // group, holding another activity's lock): then nothing is written and the request is told
    let id: i64 = c
        .query_opt(
            &c.prepare_cached("INSERT INTO signups(activity_id, member_id, companions, state, key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (key) DO NOTHING RETURNING id").await?,
            &[
                &job.activity_id,
                &job.member_id,
                &job.companions,
                &state.as_str(),
                &job.key,
                &job.now,
            ],
        )
        .await?
        .ok_or(StoreError::KeyReused(job.key))?
        .get(0);
    // the counters as read under the activity's lock, less what this sign-up takes
    take_place(state, job.companions, &mut seats_taken, &mut waiting);
    c.execute(
        &c.prepare_cached(BATCH_COUNTERS).await?,
        &[&job.activity_id, &seats_taken, &waiting],
    )
    .await?;
    let signup = my_signup(c, id).await?;
    log_change(
        c,
        Some(job.member_id),
        job.now,
        &ChangeKind::Signup(signup.clone()),
    )
    .await?;
    Ok(SignupAnswer::Accepted {
        signup,
        replayed: false,
    })
}

/// The statements of [`sign_up_batch`], prepared on the group's connection before the first
/// opening ([`SignupJudge`]'s `idle`): the first group of a burst then waits for no planning.
const BATCH_LOCK: &str =
    "SELECT event_id, body, seats_taken, waiting, xmin::text::bigint FROM activities
    WHERE event_id = ANY($1) ORDER BY event_id FOR UPDATE";
const BATCH_KEYS: &str =
    "SELECT key, id, member_id, activity_id, companions FROM signups WHERE key = ANY($1)";
const BATCH_LIVE: &str = "SELECT activity_id, member_id, state FROM signups
    WHERE activity_id = ANY($1) AND member_id = ANY($2) AND state <> 'cancelled'";
const BATCH_SESSIONS: &str = "SELECT s.token_hash, s.member_id, s.expires_at
    FROM sessions s JOIN members m ON m.id = s.member_id
    JOIN devices d ON d.id = s.device_id
    WHERE s.token_hash = ANY($1) AND m.suspended_at IS NULL AND d.revoked_at IS NULL";
/// The identity's sequence named as a constant: `pg_get_serial_sequence` in its place was looked
/// up and its text parsed again for every id, ten times the cost of the draw itself (0.48 against
/// 0.05 ms for 114 ids). A test pins the name (`the_race_tables_references_hold_on_postgres`).
const BATCH_IDS: &str =
    "SELECT nextval('signups_id_seq'::regclass) FROM generate_series(1::bigint, $1::bigint)";
/// (The ids come last, so that both inserts take [`Rows::insert_params`] first.)
const BATCH_INSERT: &str = "INSERT INTO signups(id, activity_id, member_id, companions, state, key, created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    SELECT i, a, m, c, s, k, t, t
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::uuid[], $6::timestamptz[], $7::bigint[])
    AS x(a, m, c, s, k, t, i)";
/// The counters after a group, and the row's new version ([`Known`]).
const BATCH_COUNTERS: &str =
    "UPDATE activities SET seats_taken = $2, waiting = $3 WHERE event_id = $1
    RETURNING xmin::text::bigint";
/// A group decided from [`Known`]: its ids drawn by the identity in the order received.
const DECIDED_INSERT: &str =
    "INSERT INTO signups(activity_id, member_id, companions, state, key, created_at, updated_at)
    SELECT a, m, c, s, k, t, t
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::uuid[], $6::timestamptz[])
    WITH ORDINALITY AS x(a, m, c, s, k, t, n) ORDER BY n";
/// What a group decided from [`Known`] rests on (schema `0015_signup_group_holds`).
const DECIDED_HOLDS: &str = "SELECT signup_group_holds($1, $2, $3, $4, $5)";
const BATCH_LOG: &str = "INSERT INTO change_log(member_id, at, kind, data)
    SELECT m, t, k, d FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::jsonb[])
    WITH ORDINALITY AS x(m, t, k, d, n) ORDER BY n";
const BATCH_STATEMENTS: [&str; 10] = [
    DECIDED_HOLDS,
    DECIDED_INSERT,
    BATCH_LOCK,
    BATCH_KEYS,
    BATCH_LIVE,
    BATCH_SESSIONS,
    BATCH_IDS,
    BATCH_INSERT,
    BATCH_COUNTERS,
    BATCH_LOG,
];

/// The columns a group's accepted sign-ups are written with, each sign-up as its member is told
/// (`mine`, also the change logged), in the order received: the one shape both ways of judging a
/// group write.
struct Rows {
    activity_ids: Vec<i64>,
    member_ids: Vec<i64>,
    companions: Vec<i64>,
    states: Vec<&'static str>,
    keys: Vec<uuid::Uuid>,
    /// As the database keeps them (microseconds), so a later replay reads back the same.
    times: Vec<DateTime<Utc>>,
    mine: Vec<MySignup>,
    kinds: Vec<String>,
    data: Vec<serde_json::Value>,
}

impl Rows {
    fn of<'a>(accepted: impl Iterator<Item = Acceptance<'a>>) -> Rows {
        let mut r = Rows {
            activity_ids: Vec::new(),
            member_ids: Vec::new(),
            companions: Vec::new(),
            states: Vec::new(),
            keys: Vec::new(),
            times: Vec::new(),
            mine: Vec::new(),
            kinds: Vec::new(),
            data: Vec::new(),
        };
        for (job, state, position) in accepted {
            let at = DateTime::from_timestamp_micros(job.now.timestamp_micros()).unwrap_or(job.now);
            let mine = new_signup(job, state, position, at);
            let (kind, data) = crate::store::rules::change_parts(&ChangeKind::Signup(mine.clone()));
            r.activity_ids.push(job.activity_id);
            r.member_ids.push(job.member_id);
            r.companions.push(job.companions);
            r.states.push(state.as_str());
            r.keys.push(job.key);
            r.times.push(at);
            r.mine.push(mine);
            r.kinds.push(kind);
            r.data.push(data);
        }
        r
    }

    /// The sign-ups' insert parameters (`DECIDED_INSERT`; `BATCH_INSERT` adds the ids after them).
    fn insert_params(&self) -> [&Param<'_>; 6] {
        [
            &self.activity_ids,
            &self.member_ids,
            &self.companions,
            &self.states,
            &self.keys,
            &self.times,
        ]
    }

    /// The change log's insert parameters (`BATCH_LOG`).
    fn log_params(&self) -> [&Param<'_>; 4] {
        [&self.member_ids, &self.times, &self.kinds, &self.data]
    }
}

/// The keys already used, as `BATCH_KEYS` reads them: each one's sign-up and what it asked
/// (member, activity, companions).
fn keys_seen(
    rows: &[tokio_postgres::Row],
) -> std::collections::HashMap<uuid::Uuid, (i64, (i64, i64, i64))> {
    rows.iter()
        .map(|r| (r.get(0), (r.get(1), (r.get(2), r.get(3), r.get(4)))))
        .collect()
}

/// The live sign-ups, as `BATCH_LIVE` reads them: each (activity, member)'s state.
fn live_of(rows: &[tokio_postgres::Row]) -> std::collections::HashMap<(i64, i64), String> {
    rows.iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect()
}

/// A group of sign-ups judged together, in two round trips whatever its size: `BEGIN` and the
/// reads go as one flight (the group's activities, locked; the keys already used; the members'
/// live sign-ups and sessions; the ids), then each request is decided in the order received by
/// [`unionpass_core::activity::decide`], the counters kept as it goes, and the accepted ones are
/// written with `COMMIT` as the second flight, their ids taken in that order (the waitlist's
/// order). Answers only once that `COMMIT` answered. `None`: a key was taken at this moment for
/// another activity (another instance's group): its insert failed, so the `COMMIT` rolled the
/// whole transaction back, and the caller judges the group one request at a time instead.
///
/// `c` is outside any transaction when called. On `Ok` the transaction has ended; on `Err` it
/// may still be open (a read failed), and the caller ends it ([`sign_up_group`]).
async fn sign_up_batch(
    c: &deadpool_postgres::Client,
    jobs: &[&SignupJob],
) -> Result<Option<GroupJudged>, StoreError> {
    use std::collections::HashMap;
    let mut ids: Vec<i64> = jobs.iter().map(|j| j.activity_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let keys: Vec<uuid::Uuid> = jobs.iter().map(|j| j.key).collect();
    let members: Vec<i64> = jobs.iter().map(|j| j.member_id).collect();
    let hashes: Vec<&str> = jobs.iter().filter_map(|j| j.session.as_deref()).collect();
    let most = jobs.len() as i64;
    // One flight: the statements are sent together (tokio-postgres pipelines the queries of one
    // connection that are in flight at once) and the database runs them in the order sent,
    // `BEGIN` first, so the reads after the lock see what the group before this one committed.
    // Ids are taken for every job (those of refused ones are never used; a sequence has gaps
    // anyway), after the lock, so this group's ids follow those of every group before it on
    // these activities.
    let (lock_st, keys_st, live_st, sessions_st, ids_st) = (
        c.prepare_cached(BATCH_LOCK).await?,
        c.prepare_cached(BATCH_KEYS).await?,
        c.prepare_cached(BATCH_LIVE).await?,
        c.prepare_cached(BATCH_SESSIONS).await?,
        c.prepare_cached(BATCH_IDS).await?,
    );
    let lock_p: [&Param<'_>; 1] = [&ids];
    let keys_p: [&Param<'_>; 1] = [&keys];
    let live_p: [&Param<'_>; 2] = [&ids, &members];
    let sessions_p: [&Param<'_>; 1] = [&hashes];
    let ids_p: [&Param<'_>; 1] = [&most];
    // every answer awaited, then the errors taken in the order sent: the first one is the cause
    // (a lock timeout, a deadlock) and the later ones only say the transaction was aborted;
    // `is_busy` and `is_retryable` must see the cause
    let (begun, locked, seen, live, sessions, taken) = tokio::join!(
        c.batch_execute("BEGIN"),
        c.query(&lock_st, &lock_p),
        c.query(&keys_st, &keys_p),
        c.query(&live_st, &live_p),
        c.query(&sessions_st, &sessions_p),
        c.query(&ids_st, &ids_p),
    );
    begun?;
    let (locked, seen, live, sessions, taken) = (locked?, seen?, live?, sessions?, taken?);
    let (mut acts, mut versions) = activity_rows(&locked)?;
    let seen = keys_seen(&seen);
    let mut live = live_of(&live);
    let sessions: HashMap<(String, i64), DateTime<Utc>> = sessions
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let mut taken: Vec<i64> = taken.iter().map(|r| r.get(0)).collect();
    taken.sort_unstable();

    // decide in order; what is accepted is written below
    enum Verdict {
        Answer(Result<SignupAnswer, StoreError>),
        /// The n-th accepted request of this group.
        New(usize),
        /// The same key as the n-th accepted request of this group (a double tap).
        Again(usize, usize),
    }
    struct Accepted<'a> {
        job: &'a SignupJob,
        state: SignupState,
        position: Option<i64>,
    }
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut in_group: HashMap<uuid::Uuid, usize> = HashMap::new();
    let mut verdicts = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if let Some(&n) = in_group.get(&job.key) {
            verdicts.push(Verdict::Again(n, i));
            continue;
        }
        if let Some(&(id, stored)) = seen.get(&job.key) {
            let answer = match signup_replay(stored, job) {
                Ok(()) => my_signup(c, id).await.map(|signup| SignupAnswer::Accepted {
                    signup,
                    replayed: true,
                }),
                Err(e) => Err(e),
            };
            verdicts.push(Verdict::Answer(answer));
            continue;
        }
        let Some(row) = acts.get_mut(&job.activity_id) else {
            verdicts.push(Verdict::Answer(Err(StoreError::NoActivity(
                job.activity_id,
            ))));
            continue;
        };
        let missed = match misses_lookback(&row.activity, job) {
            Some(days) => misses(c, job.member_id, job.now, days).await?,
            None => Vec::new(),
        };
        let judged = judge_signup(
            &row.activity,
            row.seats_taken,
            row.waiting,
            live.get(&(job.activity_id, job.member_id))
                .map(String::as_str),
            &missed,
            job,
        );
        let state = match judged {
            Err(e) => {
                verdicts.push(Verdict::Answer(Err(e)));
                continue;
            }
            Ok(Err(refusal)) => {
                verdicts.push(Verdict::Answer(Ok(SignupAnswer::Refused { refusal })));
                continue;
            }
            Ok(Ok(state)) => state,
        };
        if let Some(hash) = &job.session {
            let ok = sessions
                .get(&(hash.clone(), job.member_id))
                .is_some_and(|until| *until > job.now);
            if !ok {
                verdicts.push(Verdict::Answer(Err(StoreError::SessionEnded)));
                continue;
            }
        }
        let position = take_place(
            state,
            job.companions,
            &mut row.seats_taken,
            &mut row.waiting,
        );
        live.insert((job.activity_id, job.member_id), state.as_str().to_string());
        in_group.insert(job.key, accepted.len());
        verdicts.push(Verdict::New(accepted.len()));
        accepted.push(Accepted {
            job,
            state,
            position,
        });
    }

    if !accepted.is_empty() {
        // ids in the order received, taken from the table's own sequence above
        let new_ids: Vec<i64> = taken[..accepted.len()].to_vec();
        let rows = Rows::of(accepted.iter().map(|a| (a.job, a.state, a.position)));
        let mine = &rows.mine;
        // the writes and `COMMIT` in one flight too; a key taken elsewhere at this moment fails
        // the insert, and the `COMMIT` after it then ends the transaction as a rollback
        let (insert_st, counters_st, log_st) = (
            c.prepare_cached(BATCH_INSERT).await?,
            c.prepare_cached(BATCH_COUNTERS).await?,
            c.prepare_cached(BATCH_LOG).await?,
        );
        let counters: Vec<(i64, i64, i64)> = ids
            .iter()
            .filter_map(|id| acts.get(id).map(|r| (*id, r.seats_taken, r.waiting)))
            .collect();
        let mut insert_p = rows.insert_params().to_vec();
        insert_p.push(&new_ids);
        let counters_p = counter_params(&counters);
        let log_p = rows.log_params();
        // as the reads: every answer awaited, the errors taken in the order sent
        let (written, counted, logged, committed) = tokio::join!(
            c.execute(&insert_st, &insert_p),
            futures_util::future::join_all(counters_p.iter().map(|p| c.query_one(&counters_st, p)),),
            c.execute(&log_st, &log_p),
            c.batch_execute("COMMIT"),
        );
        match written {
            Err(e) if key_taken(&e) => return Ok(None),
            written => written?,
        };
        for ((id, _, _), counted) in counters.iter().zip(counted) {
            versions.insert(*id, counted?.get(0));
        }
        logged?;
        committed?;
        return Ok(Some(GroupJudged {
            known: known_after(acts, &versions),
            answers: verdicts
                .into_iter()
                .map(|v| match v {
                    Verdict::Answer(a) => a,
                    Verdict::New(n) => Ok(SignupAnswer::Accepted {
                        signup: mine[n].clone(),
                        replayed: false,
                    }),
                    Verdict::Again(n, i) => signup_replay(
                        (
                            accepted[n].job.member_id,
                            accepted[n].job.activity_id,
                            accepted[n].job.companions,
                        ),
                        jobs[i],
                    )
                    .map(|()| SignupAnswer::Accepted {
                        signup: mine[n].clone(),
                        replayed: true,
                    }),
                })
                .collect(),
        }));
    }
    // nothing written: the reads' transaction ends
    c.batch_execute("COMMIT").await?;
    Ok(Some(GroupJudged {
        known: known_after(acts, &versions),
        answers: verdicts
            .into_iter()
            .map(|v| match v {
                Verdict::Answer(a) => a,
                Verdict::New(_) | Verdict::Again(..) => unreachable!("nothing was accepted"),
            })
            .collect(),
    }))
}

/// Whether `e` is a sign-up's key already taken (the unique key of `signups.key`), by SQLSTATE
/// and the constraint's name, never the message.
fn key_taken(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|d| d.constraint()) == Some("signups_key_key")
}

/// An activity as this instance's last committed sign-up group left it: its rules, its counters,
/// and the version of its row (`xmin`: the transaction that last wrote it). The next group for it
/// is decided from this before its transaction starts ([`decide_from`]) and sent in one flight
/// whose first statement checks, under the lock, that the row is still this version
/// ([`sign_up_decided`]; schema `0015_signup_group_holds`).
#[derive(Clone)]
pub(super) struct Known {
    activity: Activity,
    seats_taken: i64,
    waiting: i64,
    version: i64,
    /// When the version was read or written.
    learnt: std::time::Instant,
    /// Not decided from before this: after a group decided from memory was rolled back (another
    /// instance keeps changing the activity), the next ones go under the lock for a while, so
    /// they are not sent twice each.
    trust_after: std::time::Instant,
}

/// Activities remembered as [`Known`] at most (beyond, all are forgotten and learnt again).
const MAX_KNOWN: usize = 64;
/// How long a [`Known`] version is decided from at most (far within the 2^32 transactions
/// after which a version could come round again).
const KNOWN_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// How long groups go under the lock after one decided from memory was rolled back.
const DOUBT_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Remember `after` for activity `id`, keeping a doubt already cast on it.
fn keep(known: &mut std::collections::HashMap<i64, Known>, id: i64, mut after: Known) {
    if let Some(old) = known.get(&id) {
        after.trust_after = after.trust_after.max(old.trust_after);
    } else if known.len() >= MAX_KNOWN {
        known.clear();
    }
    known.insert(id, after);
}

/// The answers of a group judged under the lock, and what it leaves known of its activities.
struct GroupJudged {
    answers: Vec<Result<SignupAnswer, StoreError>>,
    known: Vec<(i64, Known)>,
}

/// Activities and their counters by id, and each row's version by id.
type ActivityRows = (
    std::collections::HashMap<i64, Row>,
    std::collections::HashMap<i64, i64>,
);

/// The rows of [`BATCH_LOCK`] or [`WARM`] (id, body, counters, version).
fn activity_rows(rows: &[tokio_postgres::Row]) -> Result<ActivityRows, StoreError> {
    let mut acts = std::collections::HashMap::new();
    let mut versions = std::collections::HashMap::new();
    for r in rows {
        let id: i64 = r.get(0);
        acts.insert(
            id,
            Row {
                activity: activity_of(r.get(1), id)?,
                seats_taken: r.get(2),
                waiting: r.get(3),
            },
        );
        versions.insert(id, r.get(4));
    }
    Ok((acts, versions))
}

fn known_after(
    acts: std::collections::HashMap<i64, Row>,
    versions: &std::collections::HashMap<i64, i64>,
) -> Vec<(i64, Known)> {
    let now = std::time::Instant::now();
    acts.into_iter()
        .filter_map(|(id, r)| {
            versions.get(&id).map(|v| {
                (
                    id,
                    Known {
                        activity: r.activity,
                        seats_taken: r.seats_taken,
                        waiting: r.waiting,
                        version: *v,
                        learnt: now,
                        trust_after: now,
                    },
                )
            })
        })
        .collect()
}

/// An accepted request, its state and its waitlist place.
type Acceptance<'a> = (&'a SignupJob, SignupState, Option<i64>);

/// What [`decide_from`] made of one request.
enum Fate {
    /// The n-th accepted request.
    Accepted(usize),
    /// The same key as the n-th accepted request (a double tap).
    Again(usize),
    /// Refused on the counters at its turn (seats taken, waiting), as long as the member has no
    /// live sign-up and the key was not used before, which the flight reads.
    Refused(unionpass_core::activity::Refusal, i64, i64),
}

/// A group decided from [`Known`].
struct Decided<'a> {
    /// The accepted requests in the order received.
    accepted: Vec<Acceptance<'a>>,
    /// Each request's fate, in the order received.
    fates: Vec<Fate>,
    /// Each activity after the group; `version` is still the one the decision rests on, and
    /// `true` when the group takes places in it (its counters are written).
    after: Vec<(i64, Known, bool)>,
}

/// The group decided from what is known, when that is enough: every activity known, none with a
/// no-show rule to read, no member twice under different keys. A refusal holds only if the
/// member has no live sign-up and the key is new, which the flight reads ([`sign_up_decided`]);
/// an acceptance, by the unique indexes. `None`: the group is judged under the lock instead.
fn decide_from<'a>(
    known: &std::collections::HashMap<i64, Known>,
    jobs: &[&'a SignupJob],
    now: std::time::Instant,
) -> Option<Decided<'a>> {
    use std::collections::{HashMap, HashSet};
    let mut after: HashMap<i64, (Known, bool)> = HashMap::new();
    let mut keys: HashMap<uuid::Uuid, usize> = HashMap::new();
    let mut members: HashSet<(i64, i64)> = HashSet::new();
    let mut accepted = Vec::with_capacity(jobs.len());
    let mut fates = Vec::with_capacity(jobs.len());
    for (i, &job) in jobs.iter().enumerate() {
        if let Some(&first) = keys.get(&job.key) {
            match &fates[first] {
                Fate::Accepted(n) | Fate::Again(n) => fates.push(Fate::Again(*n)),
                // judged on its own contents under the lock (it may name another activity)
                Fate::Refused(..) => return None,
            }
            continue;
        }
        keys.insert(job.key, i);
        if !members.insert((job.activity_id, job.member_id)) {
            return None;
        }
        let (k, takes) = match after.entry(job.activity_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let k = known.get(&job.activity_id).filter(|k| {
                    now >= k.trust_after && now.saturating_duration_since(k.learnt) < KNOWN_FOR
                })?;
                e.insert((k.clone(), false))
            }
        };
        if misses_lookback(&k.activity, job).is_some() {
            return None;
        }
        match judge_signup(&k.activity, k.seats_taken, k.waiting, None, &[], job) {
            Ok(Ok(state)) => {
                let position =
                    take_place(state, job.companions, &mut k.seats_taken, &mut k.waiting);
                *takes = true;
                fates.push(Fate::Accepted(accepted.len()));
                accepted.push((job, state, position));
            }
            Ok(Err(refusal)) => fates.push(Fate::Refused(refusal, k.seats_taken, k.waiting)),
            Err(_) => return None,
        }
    }
    Some(Decided {
        accepted,
        fates,
        after: after
            .into_iter()
            .map(|(id, (k, takes))| (id, k, takes))
            .collect(),
    })
}

/// Send a group [`decide_from`] decided, in one flight: `BEGIN`, the check of what the decision
/// rests on (`signup_group_holds`: each activity's row still the version decided from, each
/// accepted session live), the refused requests' keys and live sign-ups, the sign-ups, the
/// counters, the changes, `COMMIT`. The ids are drawn by the table's identity in the order
/// received.
///
/// `Err`: the `COMMIT` itself failed, so whether it committed is unknown; the connection must not
/// be used again (a judgment under the lock then finds each key that was kept and answers it as a
/// replay). Otherwise the connection is outside any transaction.
async fn sign_up_decided(
    c: &deadpool_postgres::Client,
    jobs: &[&SignupJob],
    d: &Decided<'_>,
) -> Result<Sent, StoreError> {
    let mut activities: Vec<(i64, i64)> =
        d.after.iter().map(|(id, k, _)| (*id, k.version)).collect();
    activities.sort_unstable();
    let ids: Vec<i64> = activities.iter().map(|(id, _)| *id).collect();
    let versions: Vec<i64> = activities.iter().map(|(_, v)| *v).collect();
    let checked: Vec<(&str, i64, DateTime<Utc>)> = d
        .accepted
        .iter()
        .filter_map(|(j, _, _)| j.session.as_deref().map(|h| (h, j.member_id, j.now)))
        .collect();
    let hashes: Vec<&str> = checked.iter().map(|c| c.0).collect();
    let holders: Vec<i64> = checked.iter().map(|c| c.1).collect();
    let asked: Vec<DateTime<Utc>> = checked.iter().map(|c| c.2).collect();
    let refused: Vec<&SignupJob> = jobs
        .iter()
        .zip(&d.fates)
        .filter(|(_, f)| matches!(f, Fate::Refused(..)))
        .map(|(j, _)| *j)
        .collect();
    let refused_keys: Vec<uuid::Uuid> = refused.iter().map(|j| j.key).collect();
    let refused_members: Vec<i64> = refused.iter().map(|j| j.member_id).collect();
    let rows = Rows::of(d.accepted.iter().copied());
    let counters: Vec<(i64, i64, i64)> = d
        .after
        .iter()
        .filter(|(_, _, takes)| *takes)
        .map(|(id, k, _)| (*id, k.seats_taken, k.waiting))
        .collect();
    // prepared while the task is idle (a cache hit); a failure here has sent nothing
    let prepared = async {
        Ok::<_, tokio_postgres::Error>((
            c.prepare_cached(DECIDED_HOLDS).await?,
            c.prepare_cached(BATCH_KEYS).await?,
            c.prepare_cached(BATCH_LIVE).await?,
            c.prepare_cached(DECIDED_INSERT).await?,
            c.prepare_cached(BATCH_COUNTERS).await?,
            c.prepare_cached(BATCH_LOG).await?,
        ))
    };
    let Ok((holds_st, keys_st, live_st, insert_st, counters_st, log_st)) = prepared.await else {
        return Ok(Sent::RolledBack);
    };
    let holds_p: [&Param<'_>; 5] = [&ids, &versions, &hashes, &holders, &asked];
    let keys_p: [&Param<'_>; 1] = [&refused_keys];
    let live_p: [&Param<'_>; 2] = [&ids, &refused_members];
    let insert_p = rows.insert_params();
    let counters_p = counter_params(&counters);
    let log_p = rows.log_params();
    let (any_refused, any_accepted) = (!refused.is_empty(), !d.accepted.is_empty());
    // one flight, run by the database in the order sent; every answer awaited
    let (begun, held, seen, live, written, counted, logged, committed) = tokio::join!(
        c.batch_execute("BEGIN"),
        c.query(&holds_st, &holds_p),
        async {
            match any_refused {
                true => c.query(&keys_st, &keys_p).await.map(Some),
                false => Ok(None),
            }
        },
        async {
            match any_refused {
                true => c.query(&live_st, &live_p).await.map(Some),
                false => Ok(None),
            }
        },
        async {
            match any_accepted {
                true => c.execute(&insert_st, &insert_p).await.map(|_| ()),
                false => Ok(()),
            }
        },
        futures_util::future::join_all(counters_p.iter().map(|p| c.query_one(&counters_st, p))),
        async {
            match any_accepted {
                true => c.execute(&log_st, &log_p).await.map(|_| ()),
                false => Ok(()),
            }
        },
        c.batch_execute("COMMIT"),
    );
    committed?;
    // the first error in the order sent is the cause; those after it only say the transaction
    // was aborted
    let mut first: Option<tokio_postgres::Error> = None;
    fn note<T>(
        first: &mut Option<tokio_postgres::Error>,
        r: Result<T, tokio_postgres::Error>,
    ) -> Option<T> {
        r.map_err(|e| {
            first.get_or_insert(e);
        })
        .ok()
    }
    note(&mut first, begun);
    note(&mut first, held);
    let seen = note(&mut first, seen).flatten();
    let live = note(&mut first, live).flatten();
    note(&mut first, written);
    let counted: Vec<Option<tokio_postgres::Row>> =
        counted.into_iter().map(|r| note(&mut first, r)).collect();
    note(&mut first, logged);
    if let Some(e) = first {
        // a lock not had in time is the group's answer, as under the lock; waiting for it a
        // second time would only double the wait
        if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return Ok(Sent::Failed(e.into()));
        }
        tracing::debug!(error = %e, "a sign-up group decided from memory is judged again");
        return Ok(Sent::RolledBack);
    }
    let versions = counters
        .iter()
        .zip(counted.into_iter().flatten())
        .map(|((id, _, _), row)| (*id, row.get(0)))
        .collect();
    Ok(Sent::Committed {
        versions,
        seen: keys_seen(&seen.unwrap_or_default()),
        live: live_of(&live.unwrap_or_default()),
        mine: rows.mine,
    })
}

/// The answers of a group [`sign_up_decided`] committed. A refused request whose key was used
/// before is answered as a replay (its sign-up as it stands, read now); one whose member has a
/// live sign-up is judged again with it, which can only refuse it, perhaps for another reason.
async fn decided_answers(
    c: &deadpool_postgres::Client,
    jobs: &[&SignupJob],
    d: &Decided<'_>,
    seen: &std::collections::HashMap<uuid::Uuid, (i64, (i64, i64, i64))>,
    live: &std::collections::HashMap<(i64, i64), String>,
    mine: &[MySignup],
) -> Vec<Result<SignupAnswer, StoreError>> {
    let mut answers = Vec::with_capacity(jobs.len());
    for (job, fate) in jobs.iter().zip(&d.fates) {
        answers.push(match fate {
            Fate::Accepted(n) => Ok(SignupAnswer::Accepted {
                signup: mine[*n].clone(),
                replayed: false,
            }),
            Fate::Again(n) => {
                let first = d.accepted[*n].0;
                signup_replay((first.member_id, first.activity_id, first.companions), job).map(
                    |()| SignupAnswer::Accepted {
                        signup: mine[*n].clone(),
                        replayed: true,
                    },
                )
            }
            Fate::Refused(refusal, seats, waiting) => {
                if let Some(&(id, stored)) = seen.get(&job.key) {
                    match signup_replay(stored, job) {
                        Ok(()) => my_signup(c, id).await.map(|signup| SignupAnswer::Accepted {
                            signup,
                            replayed: true,
                        }),
                        Err(e) => Err(e),
                    }
                } else if let Some(state) = live.get(&(job.activity_id, job.member_id)) {
                    let activity = d
                        .after
                        .iter()
                        .find(|(id, _, _)| *id == job.activity_id)
                        .map(|(_, k, _)| &k.activity)
                        .expect("decided from it");
                    match judge_signup(activity, *seats, *waiting, Some(state), &[], job) {
                        Ok(Err(refusal)) => Ok(SignupAnswer::Refused { refusal }),
                        // a live sign-up refuses every request (`decide`)
                        _ => Err(StoreError::Corrupt(format!(
                            "sign-up {state:?} did not refuse another one"
                        ))),
                    }
                } else {
                    Ok(SignupAnswer::Refused {
                        refusal: refusal.clone(),
                    })
                }
            }
        });
    }
    answers
}

/// What became of a group [`sign_up_decided`] sent.
enum Sent {
    /// Committed; the new version of each activity it took places in, and what it read of the
    /// refused requests (their keys used before, their members' live sign-ups).
    Committed {
        versions: Vec<(i64, i64)>,
        seen: std::collections::HashMap<uuid::Uuid, (i64, (i64, i64, i64))>,
        live: std::collections::HashMap<(i64, i64), String>,
        /// Each accepted sign-up as its member is told, in the order accepted.
        mine: Vec<MySignup>,
    },
    /// Nothing kept: what the decision rested on changed (the check raised), or a key or a
    /// member was taken (the unique indexes); the `COMMIT` rolled the transaction back.
    RolledBack,
    /// Nothing kept, and this is the group's answer (a lock not had within `lock_timeout`).
    Failed(StoreError),
}

/// The counters' update parameters (`BATCH_COUNTERS`), one per activity.
fn counter_params(counters: &[(i64, i64, i64)]) -> Vec<[&Param<'_>; 3]> {
    counters
        .iter()
        .map(|(id, seats, waiting)| -> [&Param<'_>; 3] { [id, seats, waiting] })
        .collect()
}

/// The group's connection while [`sign_up_batch`] may hold a transaction open. Dropped before
/// [`InFlight::ended`] (an error that could not be rolled back, or the task's panic), the
/// connection is closed instead of going back to the pool, so the next group never finds itself
/// inside this one's transaction; closing it rolls the transaction back.
struct InFlight(Option<deadpool_postgres::Client>);

impl InFlight {
    fn client(&self) -> &deadpool_postgres::Client {
        self.0.as_ref().expect("held until ended")
    }

    /// The transaction has ended: the connection may be used again.
    fn ended(mut self) -> deadpool_postgres::Client {
        self.0.take().expect("held until ended")
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

async fn cancel_in(
    c: &impl GenericClient,
    member_id: i64,
    activity_id: i64,
    now: DateTime<Utc>,
) -> Result<Result<MySignup, ErrorCode>, StoreError> {
    let row = lock(c, activity_id)
        .await?
        .ok_or(StoreError::NoActivity(activity_id))?;
    let Some(rules) = row.activity.signup.clone() else {
        return Ok(Err(ErrorCode::NotFound));
    };
    let Some(live) = c
        .query_opt(
            &c.prepare_cached(
                "SELECT id, state, companions FROM signups
             WHERE activity_id = $1 AND member_id = $2 AND state <> 'cancelled'",
            )
            .await?,
            &[&activity_id, &member_id],
        )
        .await?
    else {
        return Ok(Err(ErrorCode::NotFound));
    };
    let (id, state, companions): (i64, SignupState, i64) =
        (live.get(0), state_of(live.get(1))?, live.get(2));
    if let Err(code) = may_cancel(&rules, state, now) {
        return Ok(Err(code));
    }
    c.execute(
        &c.prepare_cached("UPDATE signups SET state = 'cancelled', updated_at = $2 WHERE id = $1")
            .await?,
        &[&id, &now],
    )
    .await?;
    if state.has_seats() {
        c.execute(
            &c.prepare_cached(
                "UPDATE activities SET seats_taken = seats_taken - $2 WHERE event_id = $1",
            )
            .await?,
            &[&activity_id, &(1 + companions)],
        )
        .await?;
    } else {
        c.execute(
            &c.prepare_cached("UPDATE activities SET waiting = waiting - 1 WHERE event_id = $1")
                .await?,
            &[&activity_id],
        )
        .await?;
    }
    let mine = my_signup(c, id).await?;
    log_change(c, Some(member_id), now, &ChangeKind::Signup(mine.clone())).await?;
    if row.activity.cancelled_at.is_none() && now < row.activity.starts_at {
        promote(c, activity_id, rules.seats, now).await?;
    }
    Ok(Ok(mine))
}

async fn promote(
    c: &impl GenericClient,
    activity_id: i64,
    seats: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let taken: i64 = c
        .query_one(
            &c.prepare_cached("SELECT seats_taken FROM activities WHERE event_id = $1")
                .await?,
            &[&activity_id],
        )
        .await?
        .get(0);
    let free = seats - taken;
    if free <= 0 {
        return Ok(());
    }
    let waitlist: Vec<(i64, i64, i64)> = c
        .query(
            &c.prepare_cached(
                "SELECT id, companions, member_id FROM signups
             WHERE activity_id = $1 AND state = 'waitlisted' ORDER BY id LIMIT $2",
            )
            .await?,
            &[&activity_id, &free],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let order: Vec<(i64, i64)> = waitlist.iter().map(|(id, c, _)| (*id, *c)).collect();
    for id in promotions(&order, free) {
        let (_, companions, member) = waitlist
            .iter()
            .find(|(w, _, _)| *w == id)
            .copied()
            .expect("promoted from the list");
        c.execute(
            &c.prepare_cached(
                "UPDATE signups SET state = 'promoted', updated_at = $2 WHERE id = $1",
            )
            .await?,
            &[&id, &now],
        )
        .await?;
        c.execute(
            &c.prepare_cached(
                "UPDATE activities SET seats_taken = seats_taken + $2, waiting = waiting - 1
             WHERE event_id = $1",
            )
            .await?,
            &[&activity_id, &(1 + companions)],
        )
        .await?;
        let theirs = my_signup(c, id).await?;
        log_change(c, Some(member), now, &ChangeKind::Signup(theirs)).await?;
    }
    Ok(())
}

/// The `feedback` mutation, inside the mutation's transaction (see the SQLite twin; the rule is
/// `activity::may_give_feedback`).
pub(super) async fn give_feedback(
    tx: &impl GenericClient,
    member_id: i64,
    f: &Feedback,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let ends_at: Option<DateTime<Utc>> = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT e.ends_at FROM activities a JOIN events e ON e.id = a.event_id
                 WHERE a.event_id = $1",
            )
            .await?,
            &[&f.activity_id],
        )
        .await?
        .map(|r| r.get(0));
    let checked_in = tx
        .query_opt(
            &tx.prepare_cached("SELECT 1 FROM checkins WHERE event_id = $1 AND member_id = $2")
                .await?,
            &[&f.activity_id, &member_id],
        )
        .await?
        .is_some();
    let first: Option<DateTime<Utc>> = tx
        .query_opt(
            &tx.prepare_cached("SELECT first_given_at FROM feedback WHERE activity_id = $1 AND member_id = $2 FOR UPDATE").await?,
            &[&f.activity_id, &member_id],
        )
        .await?
        .map(|r| r.get(0));
    let first_given_at = match judge_feedback(ends_at, checked_in, first, f, now) {
        Ok(t) => t,
        Err(refused) => return Ok(refused),
    };
    tx.execute(
        &tx.prepare_cached("INSERT INTO feedback(activity_id, member_id, rating, comment, first_given_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (activity_id, member_id) DO UPDATE SET rating = excluded.rating,
           comment = excluded.comment, updated_at = excluded.updated_at").await?,
        &[
            &f.activity_id,
            &member_id,
            &f.rating,
            &f.comment,
            &first_given_at,
            &now,
        ],
    )
    .await?;
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
    )
    .await?;
    Ok(MutationOutcome::Applied)
}

/// The `vote` mutation, inside the mutation's transaction (see the SQLite twin; the rule is
/// `activity::may_vote`).
pub(super) async fn vote(
    tx: &impl GenericClient,
    member_id: i64,
    v: &Vote,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let poll: Option<Poll> = tx
        .query_opt(
            &tx.prepare_cached("SELECT body FROM polls WHERE id = $1")
                .await?,
            &[&v.poll_id],
        )
        .await?
        .map(|row| from_json(row.get(0)))
        .transpose()?;
    let union_id = super::accounts::role_and_union(tx, member_id).await?.1;
    if let Err(refused) = judge_vote(poll.as_ref(), union_id, v, now) {
        return Ok(refused);
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO poll_votes(poll_id, member_id, option, at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (poll_id, member_id) DO UPDATE SET option = excluded.option, at = excluded.at",
        )
        .await?,
        &[&v.poll_id, &member_id, &v.option, &now],
    )
    .await?;
    log_change(
        tx,
        Some(member_id),
        now,
        &ChangeKind::Voted {
            poll_id: v.poll_id,
            option: v.option,
        },
    )
    .await?;
    Ok(MutationOutcome::Applied)
}

/// How a group of sign-ups is judged (`groups::Groups`): in order, in one transaction; once it
/// committed, the memo forgets each activity that took a sign-up (in the group's task, which
/// finishes whether or not the requests are still there).
pub(super) struct SignupJudge {
    pub memo: std::sync::Arc<SignupMemo>,
    /// What this instance's groups last committed of each activity (only the group's task uses
    /// it, one group at a time).
    pub known: std::sync::Mutex<std::collections::HashMap<i64, Known>>,
    /// Which way each group went ([`crate::store::GroupPaths`]).
    pub paths: std::sync::Arc<PathCounts>,
}

/// [`crate::store::GroupPaths`], counted as the groups go.
#[derive(Default)]
pub(crate) struct PathCounts {
    decided_from_memory: std::sync::atomic::AtomicU64,
    rolled_back: std::sync::atomic::AtomicU64,
    under_the_lock: std::sync::atomic::AtomicU64,
}

impl PathCounts {
    fn count(counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> crate::store::GroupPaths {
        use std::sync::atomic::Ordering::Relaxed;
        crate::store::GroupPaths {
            decided_from_memory: self.decided_from_memory.load(Relaxed),
            rolled_back: self.rolled_back.load(Relaxed),
            under_the_lock: self.under_the_lock.load(Relaxed),
        }
    }
}

/// This instance's sign-up groups.
pub(super) type SignupGroups = super::groups::Groups<SignupJudge>;

#[async_trait]
impl super::groups::Judge for SignupJudge {
    type Job = SignupJob;
    type Answer = SignupAnswer;
    const WHAT: &'static str = "sign-up";

    async fn judge(
        &self,
        pool: &Pool,
        jobs: &[SignupJob],
    ) -> Result<Vec<Result<SignupAnswer, StoreError>>, StoreError> {
        let jobs: Vec<&SignupJob> = jobs.iter().collect();
        let answers = sign_up_group(pool, &jobs, &self.known, &self.memo, &self.paths).await?;
        for a in &answers {
            if let Ok(SignupAnswer::Accepted {
                signup,
                replayed: false,
            }) = a
            {
                self.memo.forget(signup.activity_id);
            }
        }
        Ok(answers)
    }

    /// Between bursts: the group's statements prepared (a cache hit, no round trip, once they
    /// are), so the first group at an opening does not plan eight statements while the crowd
    /// waits (measured: the first two groups of a burst took 36 and 35 ms cold); and the
    /// activities about to open read into [`Known`] ([`WARM`]), so that group is decided from
    /// memory, in one flight.
    async fn idle(&self, pool: &Pool) {
        let Ok(client) = pool.get().await else {
            return;
        };
        for sql in BATCH_STATEMENTS {
            if let Err(e) = client.prepare_cached(sql).await {
                // a database not migrated yet, or gone: the next idle tries again
                tracing::debug!(error = %e, "sign-up statements not prepared yet");
                return;
            }
        }
        // the activities about to open, known before the crowd comes: the first group of their
        // burst is then decided from memory (one flight) instead of under the lock (four round
        // trips, each waiting for the database's turn on cores the crowd keeps busy)
        let warm = async {
            let st = client.prepare_cached(WARM).await?;
            let rows = client.query(&st, &[&(MAX_KNOWN as i64 / 2)]).await?;
            activity_rows(&rows)
        };
        let (acts, versions) = match warm.await {
            Ok(read) => read,
            Err(e) => {
                tracing::debug!(error = %e, "activities about to open not read");
                return;
            }
        };
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        for (id, after) in known_after(acts, &versions) {
            keep(&mut known, id, after);
        }
    }
}

/// The activities whose sign-up opens within ten seconds (or opened in the last ten), read between
/// bursts ([`SignupJudge`]'s `idle`) into [`Known`]. The window is the database's clock, a hint
/// only: a group decided from what this read is checked against the row's version when it is
/// sent (`signup_group_holds`), as one decided from a group's commit is.
const WARM: &str = "SELECT event_id, body, seats_taken, waiting, xmin::text::bigint FROM activities
    WHERE cancelled_at IS NULL
      AND (body #>> '{signup,opens_at}')::timestamptz
          BETWEEN now() - interval '10 seconds' AND now() + interval '10 seconds'
    ORDER BY event_id LIMIT $1";

/// Whether an error of one request was found before it wrote anything (its answer alone); any
/// other error fails the group, so that no half-written request is committed with the rest.
fn before_any_write(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::KeyReused(_)
            | StoreError::NoActivity(_)
            | StoreError::Refused(_)
            | StoreError::SessionEnded
    )
}

/// Judge every job in order in one transaction; the answers hold only if this returns `Ok` (the
/// transaction committed). The group's activities are locked first, in id order, so two
/// instances' groups never wait for each other in a cycle; then each request is judged in the
/// order received. An error of one request's own (a key reused for another activity, an activity
/// that does not exist, an ended session) is that request's answer, found before it writes
/// anything; any other error fails the group (nothing of it is kept).
async fn sign_up_group(
    pool: &Pool,
    jobs: &[&SignupJob],
    known: &std::sync::Mutex<std::collections::HashMap<i64, Known>>,
    memo: &SignupMemo,
    paths: &PathCounts,
) -> Result<Vec<Result<SignupAnswer, StoreError>>, StoreError> {
    let known_now = || known.lock().unwrap_or_else(|p| p.into_inner());
    let forget = |ids: &mut dyn Iterator<Item = i64>| {
        let mut k = known_now();
        for id in ids {
            k.remove(&id);
        }
    };
    // a group decided from memory was rolled back: the next ones go under the lock for a while
    let doubt = |ids: &mut dyn Iterator<Item = i64>| {
        let mut k = known_now();
        let until = std::time::Instant::now() + DOUBT_FOR;
        for id in ids {
            if let Some(e) = k.get_mut(&id) {
                e.trust_after = until;
            }
        }
    };
    let mut held = InFlight(Some(pool.get().await?));
    let decided = decide_from(&known_now(), jobs, std::time::Instant::now());
    if let Some(d) = decided {
        match sign_up_decided(held.client(), jobs, &d).await {
            Ok(Sent::Committed {
                versions,
                seen,
                live,
                mine,
            }) => {
                PathCounts::count(&paths.decided_from_memory);
                {
                    let mut k = known_now();
                    for (id, after, _) in &d.after {
                        let mut after = after.clone();
                        // an activity the group took no place in keeps the version it was checked at
                        if let Some((_, v)) = versions.iter().find(|(v_id, _)| v_id == id) {
                            after.version = *v;
                        }
                        after.learnt = std::time::Instant::now();
                        keep(&mut k, *id, after);
                    }
                }
                let answers = decided_answers(held.client(), jobs, &d, &seen, &live, &mine).await;
                drop(held.ended());
                return Ok(answers);
            }
            // what it rested on changed: judged again under the lock, on the same connection
            Ok(Sent::RolledBack) => {
                PathCounts::count(&paths.rolled_back);
                doubt(&mut d.after.iter().map(|(id, _, _)| *id));
            }
            Ok(Sent::Failed(e)) => {
                doubt(&mut d.after.iter().map(|(id, _, _)| *id));
                drop(held.ended());
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "a sign-up group's COMMIT failed; judging it again");
                PathCounts::count(&paths.rolled_back);
                forget(&mut d.after.iter().map(|(id, _, _)| *id));
                // it may have committed, and then its sign-ups are answered as replays below,
                // which do not make the memo forget (`SignupJudge::judge`): forgotten here
                for (id, _, _) in &d.after {
                    memo.forget(*id);
                }
                // closed, not given back: its state is unknown
                drop(held);
                held = InFlight(Some(pool.get().await?));
            }
        }
    }
    PathCounts::count(&paths.under_the_lock);
    let mut client = match sign_up_batch(held.client(), jobs).await {
        Ok(Some(judged)) => {
            // back to the pool
            drop(held.ended());
            let mut k = known_now();
            for (id, after) in judged.known {
                keep(&mut k, id, after);
            }
            drop(k);
            return Ok(judged.answers);
        }
        // a key was taken elsewhere at this moment: nothing of the batch was kept; one by one
        Ok(None) => {
            forget(&mut jobs.iter().map(|j| j.activity_id));
            held.ended()
        }
        Err(e) => {
            forget(&mut jobs.iter().map(|j| j.activity_id));
            // a read may have failed inside the transaction: end it, or drop the connection
            if held.client().batch_execute("ROLLBACK").await.is_ok() {
                drop(held.ended());
            }
            return Err(e);
        }
    };
    one_at_a_time(&mut client, jobs).await
}

/// A group whose batch kept nothing (a key of it was taken elsewhere at the same moment): judged
/// again in one transaction under its activities' locks, one sign-up at a time, each as a lone
/// request would be (a key used before is answered as such, before whether its activity exists).
pub(super) async fn one_at_a_time(
    client: &mut deadpool_postgres::Client,
    jobs: &[&SignupJob],
) -> Result<Vec<Result<SignupAnswer, StoreError>>, StoreError> {
    let tx = client.transaction().await?;
    let mut ids: Vec<i64> = jobs.iter().map(|j| j.activity_id).collect();
    ids.sort_unstable();
    ids.dedup();
    tx.query(
        &tx.prepare_cached(
            "SELECT event_id FROM activities WHERE event_id = ANY($1) ORDER BY event_id FOR UPDATE",
        )
        .await?,
        &[&ids],
    )
    .await?;
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        match sign_up_in(&tx, job).await {
            Err(e) if !before_any_write(&e) => return Err(e),
            answer => answers.push(answer),
        }
    }
    tx.commit().await?;
    Ok(answers)
}

impl PgStore {
    async fn change_once(
        &self,
        id: i64,
        change: ActivityChange,
        now: DateTime<Utc>,
    ) -> Result<Activity, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = lock(&tx, id).await?.ok_or(StoreError::NoActivity(id))?;
        let a = changed_activity(row.activity, change, now)?;
        tx.execute(
            &tx.prepare_cached(
                "UPDATE activities SET body = $2, cancelled_at = $3 WHERE event_id = $1",
            )
            .await?,
            &[&id, &serde_json::to_value(&a)?, &a.cancelled_at],
        )
        .await?;
        tx.execute(
            &tx.prepare_cached("UPDATE events SET starts_at = $2, ends_at = $3 WHERE id = $1")
                .await?,
            &[&id, &a.starts_at, &a.ends_at],
        )
        .await?;
        log_change(&tx, None, now, &ChangeKind::Activity(a.clone())).await?;
        tx.commit().await?;
        Ok(a)
    }

    async fn cancel_once(
        &self,
        member_id: i64,
        activity_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<MySignup, ErrorCode>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let answer = cancel_in(&tx, member_id, activity_id, now).await?;
        tx.commit().await?;
        Ok(answer)
    }
}

#[async_trait]
impl Activities for PgStore {
    async fn create_activity(
        &self,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> Result<Activity, StoreError> {
        activity.check().map_err(StoreError::Refused)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let seats = activity.signup.as_ref().map(|r| r.seats);
        let id: i64 = tx
            .query_one(
                &tx.prepare_cached("INSERT INTO events(title, place, starts_at, ends_at, capacity, union_id, created_at, points)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id").await?,
                &[
                    &activity.title_zh,
                    &activity.place,
                    &activity.starts_at,
                    &activity.ends_at,
                    &seats.unwrap_or(0),
                    &activity.union_id,
                    &now,
                    &activity.points,
                ],
            )
            .await?
            .get(0);
        let a = Activity { id, ..activity };
        let r = a.signup.as_ref();
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO activities(event_id, body, seats, waitlist, popular, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?,
            &[
                &a.id,
                &serde_json::to_value(&a)?,
                &seats,
                &r.map(|r| r.waitlist).unwrap_or(0),
                &r.is_some_and(|r| r.popular),
                &now,
            ],
        )
        .await?;
        log_change(&tx, None, now, &ChangeKind::Activity(a.clone())).await?;
        tx.commit().await?;
        Ok(a)
    }

    async fn activities(&self) -> Result<Vec<ActivityLive>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                &client
                    .prepare_cached(
                        "SELECT a.event_id, a.body, a.seats_taken, a.waiting
                 FROM activities a JOIN events e ON e.id = a.event_id
                 ORDER BY e.starts_at, a.event_id",
                    )
                    .await?,
                &[],
            )
            .await?
            .into_iter()
            .map(|r| {
                Ok(ActivityLive {
                    activity: activity_of(r.get(1), r.get(0))?,
                    seats_taken: r.get(2),
                    waiting: r.get(3),
                    my_position: None,
                    my_ban_until: None,
                })
            })
            .collect()
    }

    async fn waitlist_places(&self, member_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                &client
                    .prepare_cached(
                        "SELECT s.activity_id,
                           (SELECT count(*) FROM signups w
                            WHERE w.activity_id = s.activity_id AND w.state = 'waitlisted'
                              AND w.id <= s.id)
                         FROM signups s WHERE s.member_id = $1 AND s.state = 'waitlisted'",
                    )
                    .await?,
                &[&member_id],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn missed_ends(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
        days: i64,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        misses(&self.pool.get().await?, member_id, now, days).await
    }

    async fn judge_sign_up(&self, job: SignupJob) -> Result<SignupAnswer, StoreError> {
        // every request is judged in its group under the activity's lock: the crowd refused at
        // a full activity is answered from the memo before it gets here (a judgment without the
        // lock first, one round trip each, was measured: the burst's p99 151-169 ms against
        // 48-61 ms without it, bench/RESULTS.md)
        self.signups.ask(job).await
    }

    fn signup_memo(&self) -> &SignupMemo {
        &self.signup_memo
    }

    async fn signup_snapshot(
        &self,
        activity_id: i64,
    ) -> Result<Option<SignupSnapshot>, StoreError> {
        // one statement, one snapshot: the counters, keys and members as one commit left them
        let client = self.pool.get().await?;
        let Some(r) = client
            .query_opt(
                &client
                    .prepare_cached(
                        "SELECT a.body, a.seats_taken, a.waiting,
                            ARRAY(SELECT k.key FROM signups k WHERE k.activity_id = a.event_id LIMIT $2),
                            ARRAY(SELECT m.member_id FROM signups m
                                  WHERE m.activity_id = a.event_id AND m.state <> 'cancelled')
                         FROM activities a WHERE a.event_id = $1",
                    )
                    .await?,
                &[&activity_id, &(SignupMemo::MAX_KEYS as i64 + 1)],
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(SignupSnapshot {
            live: ActivityLive {
                activity: activity_of(r.get(0), activity_id)?,
                seats_taken: r.get(1),
                waiting: r.get(2),
                my_position: None,
                my_ban_until: None,
            },
            keys: r.get(3),
            members: r.get(4),
        }))
    }

    async fn no_show_suspects(&self, q: SuspectQuery) -> Result<Vec<i64>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                &client
                    .prepare_cached(
                        "SELECT s.member_id FROM events e
                         JOIN activities a ON a.event_id = e.id
                         JOIN signups s ON s.activity_id = e.id
                         WHERE e.ends_at > $1 AND e.ends_at <= $2 AND a.cancelled_at IS NULL
                           AND s.state IN ('confirmed', 'promoted')
                           AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.event_id = s.activity_id AND c.member_id = s.member_id)
                         GROUP BY s.member_id HAVING count(*) >= $3 LIMIT $4",
                    )
                    .await?,
                &[
                    &q.since,
                    &q.until,
                    &q.min_misses,
                    &(SignupMemo::MAX_SUSPECTS as i64 + 1),
                ],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn cancel_signup(
        &self,
        member_id: i64,
        activity_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<MySignup, ErrorCode>, StoreError> {
        // in a task of its own: the commit and the memo's forgetting happen together even if
        // this request goes away
        let store = self.clone();
        tokio::spawn(async move {
            let answer = retrying(|| store.cancel_once(member_id, activity_id, now)).await;
            store.signup_memo.forget(activity_id);
            answer
        })
        .await?
    }

    async fn change_activity(
        &self,
        id: i64,
        change: ActivityChange,
        now: DateTime<Utc>,
    ) -> Result<Activity, StoreError> {
        // in a task of its own, as a cancellation is
        let store = self.clone();
        tokio::spawn(async move {
            let changed = store.change_once(id, change, now).await;
            store.signup_memo.forget_changed(id);
            changed
        })
        .await?
    }

    async fn create_poll(&self, poll: Poll, now: DateTime<Utc>) -> Result<Poll, StoreError> {
        poll.check().map_err(StoreError::Refused)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let id: i64 = tx
            .query_one(
                &tx.prepare_cached("INSERT INTO polls(body, union_id, closes_at, created_at) VALUES ($1, $2, $3, $4)
                 RETURNING id").await?,
                &[
                    &serde_json::to_value(&poll)?,
                    &poll.union_id,
                    &poll.closes_at,
                    &now,
                ],
            )
            .await?
            .get(0);
        let p = Poll { id, ..poll };
        tx.execute(
            &tx.prepare_cached("UPDATE polls SET body = $2 WHERE id = $1")
                .await?,
            &[&id, &serde_json::to_value(&p)?],
        )
        .await?;
        log_change(&tx, None, now, &ChangeKind::Poll(p.clone())).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn polls(&self) -> Result<Vec<Poll>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                &client
                    .prepare_cached("SELECT id, body FROM polls ORDER BY closes_at, id")
                    .await?,
                &[],
            )
            .await?
            .into_iter()
            .map(|r| {
                let mut p: Poll = from_json(r.get(1))?;
                p.id = r.get(0);
                Ok(p)
            })
            .collect()
    }

    async fn poll_results(
        &self,
        poll_id: i64,
        member_id: i64,
    ) -> Result<Option<PollResults>, StoreError> {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                &client
                    .prepare_cached("SELECT body FROM polls WHERE id = $1")
                    .await?,
                &[&poll_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let poll: Poll = from_json(row.get(0))?;
        let mut counts = vec![0i64; poll.options.len()];
        for r in client
            .query(
                &client.prepare_cached("SELECT option, count(*) FROM poll_votes WHERE poll_id = $1 GROUP BY option").await?,
                &[&poll_id],
            )
            .await?
        {
            let (o, n): (i64, i64) = (r.get(0), r.get(1));
            if let Some(slot) = counts.get_mut(o as usize) {
                *slot = n;
            }
        }
        let mine = client
            .query_opt(
                &client
                    .prepare_cached(
                        "SELECT option FROM poll_votes WHERE poll_id = $1 AND member_id = $2",
                    )
                    .await?,
                &[&poll_id, &member_id],
            )
            .await?
            .map(|r| r.get(0));
        Ok(Some(PollResults {
            poll_id,
            counts,
            mine,
        }))
    }

    async fn feedback(&self, activity_id: i64) -> Result<Vec<FeedbackRow>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                &client
                    .prepare_cached(
                        "SELECT m.member_no, f.rating, f.comment, f.updated_at
                 FROM feedback f JOIN members m ON m.id = f.member_id
                 WHERE f.activity_id = $1 ORDER BY f.updated_at, m.member_no",
                    )
                    .await?,
                &[&activity_id],
            )
            .await?
            .iter()
            .map(|r| FeedbackRow {
                member_no: r.get(0),
                rating: r.get(1),
                comment: r.get(2),
                at: r.get(3),
            })
            .collect())
    }

    async fn signups(&self, activity_id: i64) -> Result<Vec<SignupRow>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                &client.prepare_cached("SELECT s.id, m.member_no, m.name, s.companions, s.state, s.created_at,
                        EXISTS (SELECT 1 FROM checkins c WHERE c.event_id = s.activity_id AND c.member_id = s.member_id),
                        s.key
                 FROM signups s JOIN members m ON m.id = s.member_id
                 WHERE s.activity_id = $1 ORDER BY s.id").await?,
                &[&activity_id],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(SignupRow {
                    seq: r.get(0),
                    member_no: r.get(1),
                    name: r.get(2),
                    companions: r.get(3),
                    state: state_of(r.get(4))?,
                    created_at: r.get(5),
                    checked_in: r.get(6),
                    key: r.get(7),
                })
            })
            .collect()
    }
}
