//! The group commit. SQLite has one writer, and a durable commit costs an fsync. A burst of grabs
//! and sign-ups therefore goes through one writer thread: it takes every request waiting in its
//! queue (up to [`MAX_GROUP`]), decides each in order inside one transaction (a failed one leaves
//! nothing of itself and the others are kept: see [`decide_group`]), commits once, and only then
//! answers every request of the group. An answer is never sent before what it reports is on
//! disk, and a failed commit answers the whole group with an error.

use std::sync::{mpsc, Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use unionpass_core::activity::SignupAnswer;
use unionpass_core::campaign::GrabResponse;

use super::activities::Parsed;
use crate::store::memo::SignupMemo;
use crate::store::rules::CampaignCache;
use crate::store::{GrabJob, SignupJob, StoreError};

/// The most requests decided in one transaction.
pub const MAX_GROUP: usize = 512;
/// Requests waiting for the writer at most; past this a request is answered busy at once.
const QUEUE: usize = 16_384;

type Reply<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

/// One request for the writer, with where its answer goes once the group committed.
enum Job {
    Grab(GrabJob, Reply<GrabResponse>),
    Signup(SignupJob, Reply<SignupAnswer>),
}

enum Answer {
    Grab(Result<GrabResponse, StoreError>),
    Signup(Result<SignupAnswer, StoreError>),
}

impl Answer {
    fn failed(&self) -> bool {
        match self {
            Answer::Grab(a) => a.is_err(),
            Answer::Signup(a) => a.is_err(),
        }
    }
}

pub(super) struct Writer {
    tx: Mutex<mpsc::SyncSender<Job>>,
}

impl Writer {
    pub fn start(
        conn: Arc<Mutex<Connection>>,
        cache: Arc<Mutex<CampaignCache>>,
        memo: Arc<SignupMemo>,
    ) -> Writer {
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("group-writer".into())
            .spawn(move || run(conn, cache, memo, rx))
            .expect("spawn the group writer");
        Writer { tx: Mutex::new(tx) }
    }

    async fn send<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_send(job(reply))
            .map_err(|e| match e {
                mpsc::TrySendError::Full(_) => StoreError::Busy,
                mpsc::TrySendError::Disconnected(_) => StoreError::WriterGone,
            })?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    pub async fn grab(&self, job: GrabJob) -> Result<GrabResponse, StoreError> {
        self.send(|reply| Job::Grab(job, reply)).await
    }

    pub async fn sign_up(&self, job: SignupJob) -> Result<SignupAnswer, StoreError> {
        self.send(|reply| Job::Signup(job, reply)).await
    }
}

fn run(
    conn: Arc<Mutex<Connection>>,
    cache: Arc<Mutex<CampaignCache>>,
    memo: Arc<SignupMemo>,
    rx: mpsc::Receiver<Job>,
) {
    let mut parsed = Parsed::default();
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        // a panic in one group answers it with an error (its transaction rolls back) and the
        // writer goes on
        let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decide_group(&mut guard, &cache, &mut parsed, &group)
        }))
        .unwrap_or_else(|_| Err(StoreError::Corrupt("a write group panicked".into())));
        drop(guard);
        if decided.is_err() {
            // what the failed group taught the cache (a sold-out mark) was never committed
            *cache.lock().unwrap_or_else(|p| p.into_inner()) = CampaignCache::default();
        }
        match decided {
            Ok(answers) => {
                if answers.iter().any(|a| {
                    matches!(a, Answer::Grab(Ok(r)) if matches!(r.outcome, unionpass_core::campaign::GrabOutcome::Granted { .. }))
                }) {
                    crate::store::exit_after_grant_commit();
                }
                // committed: what the memo remembers of an activity that took a sign-up is gone
                for a in &answers {
                    if let Answer::Signup(Ok(SignupAnswer::Accepted {
                        signup,
                        replayed: false,
                    })) = a
                    {
                        memo.forget(signup.activity_id);
                    }
                }
                for (job, answer) in group.into_iter().zip(answers) {
                    match (job, answer) {
                        (Job::Grab(_, reply), Answer::Grab(a)) => {
                            let _ = reply.send(a);
                        }
                        (Job::Signup(_, reply), Answer::Signup(a)) => {
                            let _ = reply.send(a);
                        }
                        _ => unreachable!("answers follow their jobs"),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, size = group.len(), "a write group failed to commit");
                let e = Arc::new(e);
                for job in group {
                    let failed = StoreError::GroupFailed(e.clone());
                    match job {
                        Job::Grab(_, reply) => {
                            let _ = reply.send(Err(failed));
                        }
                        Job::Signup(_, reply) => {
                            let _ = reply.send(Err(failed));
                        }
                    }
                }
            }
        }
    }
}

/// Decide every job in one transaction; the answers are valid only if this returns `Ok` (the
/// transaction committed).
///
/// A job that fails must leave nothing of itself, and the others must be kept. A job that fails
/// before writing anything (an unknown activity, a key reused, an ended session: the common
/// failures) leaves nothing by itself, so the group is first decided without savepoints: a
/// savepoint copies every page a job touches into SQLite's sub-journal (about 40,000
/// instructions an accepted sign-up, a sixth of its cost at a burst). Only when a job fails
/// after it wrote is that pass rolled back and the group decided again, each job in a savepoint
/// of its own ([`decide_each_undoable`]).
fn decide_group(
    conn: &mut Connection,
    cache: &Mutex<CampaignCache>,
    parsed: &mut Parsed,
    group: &[Job],
) -> Result<Vec<Answer>, StoreError> {
    if let Some(answers) = decide_in_one(conn, cache, parsed, group)? {
        return Ok(answers);
    }
    // what the rolled-back pass taught the cache was never committed
    *cache.lock().unwrap_or_else(|p| p.into_inner()) = CampaignCache::default();
    decide_each_undoable(conn, cache, parsed, group)
}

/// Decide and commit the group's jobs with no savepoint. `None`: a job failed after it wrote
/// (the connection's count of written rows moved; SQLite undoes a failed statement by itself,
/// so a job that wrote nothing before failing left nothing), and the transaction was rolled back.
fn decide_in_one(
    conn: &mut Connection,
    cache: &Mutex<CampaignCache>,
    parsed: &mut Parsed,
    group: &[Job],
) -> Result<Option<Vec<Answer>>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        let written = tx.total_changes();
        let answer = decide_one(&tx, cache, parsed, job);
        if answer.failed() && tx.total_changes() != written {
            tx.rollback()?;
            return Ok(None);
        }
        answers.push(answer);
    }
    tx.commit()?;
    Ok(Some(answers))
}

/// Decide and commit the group's jobs, each in its own savepoint, so that a job failing after it
/// wrote is undone alone.
fn decide_each_undoable(
    conn: &mut Connection,
    cache: &Mutex<CampaignCache>,
    parsed: &mut Parsed,
    group: &[Job],
) -> Result<Vec<Answer>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        // its statements prepared once (`Savepoint` parses its SQL again every time)
        tx.prepare_cached("SAVEPOINT job")?.execute([])?;
        let answer = decide_one(&tx, cache, parsed, job);
        if answer.failed() {
            tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        tx.prepare_cached("RELEASE job")?.execute([])?;
        answers.push(answer);
    }
    tx.commit()?;
    Ok(answers)
}

/// One job decided in the group's transaction.
fn decide_one(
    tx: &Connection,
    cache: &Mutex<CampaignCache>,
    parsed: &mut Parsed,
    job: &Job,
) -> Answer {
    match job {
        Job::Grab(job, _) => Answer::Grab(super::grab::decide(tx, cache, job)),
        Job::Signup(job, _) => Answer::Signup(super::activities::sign_up_in(tx, parsed, job)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Activities, Ops};
    use chrono::{DateTime, Utc};
    use unionpass_core::activity::NoShowRule;

    /// A sign-up for no companion, with no session to check and no reply awaited.
    fn signup_job(member_id: i64, activity_id: i64, key: u128, now: DateTime<Utc>) -> Job {
        let (reply, _) = tokio::sync::oneshot::channel();
        let job = SignupJob {
            member_id,
            union_id: 1,
            activity_id,
            key: uuid::Uuid::from_u128(key),
            companions: 0,
            now,
            no_show: NoShowRule::default(),
            session: None,
        };
        Job::Signup(job, reply)
    }

    /// The ids of the members `bench_members` made, in order.
    fn bench_members(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT id FROM members WHERE member_no LIKE 'B%' ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A job that fails after it wrote (here the change log refuses its row, after its sign-up
    /// and the activity's counters were written) leaves nothing behind, and the jobs before and
    /// after it in the same group are kept.
    #[tokio::test]
    async fn a_job_that_fails_after_writing_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&dir.path().join("server.sqlite")).unwrap();
        let now: DateTime<Utc> = "2026-12-04T02:00:00Z".parse().unwrap();
        store.bench_members(3, now).await.unwrap();
        // five seats, no waitlist, no companions: all three would be signed up
        let mut activity = crate::store::tests::sports_day(now);
        if let Some(rules) = activity.signup.as_mut() {
            (rules.seats, rules.waitlist, rules.max_companions) = (5, 0, 0);
        }
        let activity = store.create_activity(activity, now).await.unwrap();
        let mut conn = store.conn.lock().unwrap();
        let members = bench_members(&conn);
        conn.execute_batch(&format!(
            "CREATE TEMP TRIGGER refuse_log BEFORE INSERT ON main.change_log
             WHEN NEW.member_id = {} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            members[1]
        ))
        .unwrap();
        let job = |member_id: i64, key: u128| signup_job(member_id, activity.id, key, now);
        let group = [job(members[0], 1), job(members[1], 2), job(members[2], 3)];
        let cache = Mutex::new(CampaignCache::default());
        let answers = decide_group(&mut conn, &cache, &mut Parsed::default(), &group).unwrap();
        let failed: Vec<bool> = answers.iter().map(Answer::failed).collect();
        assert_eq!(failed, [false, true, false]);
        let count =
            |sql: &str, id: i64| -> i64 { conn.query_row(sql, [id], |r| r.get(0)).unwrap() };
        assert_eq!(
            count(
                "SELECT count(*) FROM signups WHERE activity_id = ?1",
                activity.id
            ),
            2
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM signups WHERE member_id = ?1",
                members[1]
            ),
            0
        );
        assert_eq!(
            count(
                "SELECT seats_taken FROM activities WHERE event_id = ?1",
                activity.id
            ),
            2
        );
    }

    /// The writer keeps activities as it parsed them, across groups; an activity changed between
    /// two groups (here cancelled) is judged as it is now, not as it was parsed.
    #[tokio::test]
    async fn a_changed_activity_is_judged_as_it_is_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&dir.path().join("server.sqlite")).unwrap();
        let now: DateTime<Utc> = "2026-12-04T02:00:00Z".parse().unwrap();
        store.bench_members(2, now).await.unwrap();
        let activity = store
            .create_activity(crate::store::tests::sports_day(now), now)
            .await
            .unwrap();
        let members = bench_members(&store.conn.lock().unwrap());
        let job = |member_id: i64, key: u128| signup_job(member_id, activity.id, key, now);
        let cache = Mutex::new(CampaignCache::default());
        let mut parsed = Parsed::default();
        let accepted = |a: &Answer| matches!(a, Answer::Signup(Ok(SignupAnswer::Accepted { .. })));
        let first = {
            let mut conn = store.conn.lock().unwrap();
            decide_group(&mut conn, &cache, &mut parsed, &[job(members[0], 1)]).unwrap()
        };
        assert!(accepted(&first[0]));
        store
            .change_activity(activity.id, crate::store::ActivityChange::Cancel, now)
            .await
            .unwrap();
        let mut conn = store.conn.lock().unwrap();
        let second = decide_group(&mut conn, &cache, &mut parsed, &[job(members[1], 2)]).unwrap();
        assert!(
            matches!(&second[0], Answer::Signup(Ok(SignupAnswer::Refused { .. }))),
            "a cancelled activity takes no sign-up"
        );
    }
}
