//! What a server remembers of the activities it just refused sign-ups for (full, not open yet,
//! closed), so that the crowd still arriving is refused without the writer or the database.
//! The same on every backend: a backend only reads the snapshots ([`SignupSnapshot`], the no-show
//! suspects) and says when it committed a change; the decision is
//! [`crate::store::rules::judge_signup`], made on the snapshot's counters at the request's `now`.
//!
//! The memo answers only what the store would answer on the same facts:
//! - a request whose key the snapshot knows (a retry) or whose member holds a live sign-up goes
//!   to the store (a replay, "already signed up");
//! - at a popular activity, a member who might be under a no-show ban (a *suspect*: enough
//!   unchecked sign-ups at activities ending in the ban's lookback, read with a margin) goes to
//!   the store, so a banned member hears why and until when;
//! - everyone else is judged on the counters as read, and only a refusal is answered from
//!   memory (a refusal writes nothing, and the same key is judged again next time).
//!
//! A snapshot (and the suspects with it) is read only when the store itself just refused a
//! request, and kept at most [`SignupMemo::FRESH_FOR`]. Invariant: every sign-up accepted,
//! cancellation and activity change this server commits forgets the activity right after its
//! commit, in the code that commits (the writer thread, the group task, a spawned task: a request
//! that goes away meanwhile cannot skip it), and a snapshot whose read began before that is
//! dropped, not kept. What this leaves, all within `FRESH_FOR`:
//! - another instance's cancellation, or a change made from the command line, is seen late: a
//!   member is told "full" as if they had come that much earlier, and a retry routed here of a
//!   key another instance accepted in that moment (after a cancellation there) is told "full"
//!   (the member's devices still receive the sign-up by sync);
//! - a key already used for *another* activity, sent to a remembered one, gets the refusal
//!   instead of 409 (the memo knows one activity's keys; nothing is written either way, and the
//!   app makes one key per sign-up).

// foldhash for the ids (activities, members: the server's) looked up by every sign-up refused
// from memory; the sign-up keys, chosen by clients, keep std's SipHash (see the server's
// Cargo.toml)
use foldhash::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use unionpass_core::activity::{ActivityLive, Refusal};
use uuid::Uuid;

use super::SignupJob;

/// One activity as a single consistent read saw it: its counters, every key used for it (a
/// cancelled sign-up's too: its key replays), and the members holding a live sign-up.
#[derive(Clone, Debug)]
pub struct SignupSnapshot {
    pub live: ActivityLive,
    pub keys: Vec<Uuid>,
    pub members: Vec<i64>,
}

/// The members who could be under a no-show ban at any moment of
/// [`SignupMemo::FRESH_FOR`] after `now`: at least `rule.misses` sign-ups with seats and no
/// check-in at activities (not cancelled) ending after `now` minus the rule's lookback and
/// before `now` plus [`SignupMemo::SUSPECTS_AHEAD`]. A superset of the banned: check-ins and
/// cancellations arriving later only shrink the true set.
#[derive(Clone, Copy, Debug)]
pub struct SuspectQuery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub min_misses: i64,
}

/// The misses that make a suspect under `job`'s rule (a rule of 0 bans nobody; 1 keeps the
/// query meaningful).
fn min_misses(job: &SignupJob) -> i64 {
    i64::from(job.no_show.misses.max(1))
}

impl SuspectQuery {
    /// For sign-ups judged from `now` on under `job`'s rule.
    pub fn at(job: &SignupJob) -> SuspectQuery {
        SuspectQuery {
            since: job.now - Duration::days(job.no_show.window_days + job.no_show.ban_days),
            until: job.now + SignupMemo::SUSPECTS_AHEAD,
            min_misses: min_misses(job),
        }
    }
}

#[derive(Default)]
pub struct SignupMemo {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    full: HashMap<i64, Full>,
    /// Activities whose snapshot is being read: `true` once forgotten meanwhile (the snapshot may
    /// predate the change, so it is dropped).
    reading: HashMap<i64, bool>,
    suspects: Option<Suspects>,
    /// `Some(stale)` while the suspects are being read: `true` once an activity changed meanwhile.
    reading_suspects: Option<bool>,
}

struct Full {
    live: ActivityLive,
    keys: std::collections::HashSet<Uuid>,
    members: HashSet<i64>,
    read_at: DateTime<Utc>,
}

struct Suspects {
    members: HashSet<i64>,
    read_at: DateTime<Utc>,
    /// The rule's numbers they were read for.
    query_misses: i64,
}

fn fresh(read_at: DateTime<Utc>, now: DateTime<Utc>, bound: Duration) -> bool {
    let age = now - read_at;
    age >= Duration::zero() && age < bound
}

impl SignupMemo {
    /// How long a snapshot, and the no-show suspects, answer.
    pub const FRESH_FOR: Duration = Duration::seconds(1);
    /// How far ahead of their reading the suspects look (far past `FRESH_FOR`).
    pub const SUSPECTS_AHEAD: Duration = Duration::days(1);
    /// Activities remembered at most (past it the stale ones go, then all).
    pub const MAX_ACTIVITIES: usize = 64;
    /// Keys of one activity remembered at most (beyond, its requests go to the store).
    pub const MAX_KEYS: usize = 100_000;
    /// Keys remembered over all activities at most (about 10 MB with the members).
    pub const MAX_KEYS_IN_ALL: usize = 200_000;
    /// Suspects remembered at most (beyond, popular activities' requests go to the store).
    pub const MAX_SUSPECTS: usize = 1_000_000;

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store's answer to `job` on the facts remembered, when it can only be a refusal.
    /// `None`: the store judges.
    pub fn refusal(&self, job: &SignupJob) -> Option<Refusal> {
        let g = self.lock();
        let f = g
            .full
            .get(&job.activity_id)
            .filter(|f| fresh(f.read_at, job.now, Self::FRESH_FOR))?;
        if f.keys.contains(&job.key) || f.members.contains(&job.member_id) {
            return None;
        }
        let popular = f.live.activity.signup.as_ref().is_some_and(|r| r.popular);
        if popular {
            let s = g.suspects.as_ref().filter(|s| {
                fresh(s.read_at, job.now, Self::FRESH_FOR) && s.query_misses == min_misses(job)
            })?;
            if s.members.contains(&job.member_id) {
                return None;
            }
        }
        // no live sign-up and no misses that could ban: the facts the store would read
        match crate::store::rules::judge_signup(
            &f.live.activity,
            f.live.seats_taken,
            f.live.waiting,
            None,
            &[],
            job,
        ) {
            Ok(Err(refusal)) => Some(refusal),
            _ => None,
        }
    }

    /// This server committed a change to `activity_id`'s sign-ups (accepted one, cancelled one):
    /// what it remembers of the activity is gone, and a snapshot being read is dropped.
    pub fn forget(&self, activity_id: i64) {
        let mut g = self.lock();
        g.full.remove(&activity_id);
        if let Some(stale) = g.reading.get_mut(&activity_id) {
            *stale = true;
        }
    }

    /// This server committed a change to the activity itself (moved, cancelled): as
    /// [`SignupMemo::forget`], and the suspects go too (a moved activity may end sooner, and its
    /// places become misses).
    pub fn forget_changed(&self, activity_id: i64) {
        self.forget(activity_id);
        let mut g = self.lock();
        g.suspects = None;
        if let Some(stale) = g.reading_suspects.as_mut() {
            *stale = true;
        }
    }

    /// Whether a snapshot of `activity_id` should be read now (none fresh, none being read); if
    /// so, the returned guard marks it being read until [`Reading::keep`] or its drop.
    pub fn start_reading(&self, activity_id: i64, now: DateTime<Utc>) -> Option<Reading<'_>> {
        let mut g = self.lock();
        let fresh_one = g
            .full
            .get(&activity_id)
            .is_some_and(|f| fresh(f.read_at, now, Self::FRESH_FOR));
        if fresh_one || g.reading.contains_key(&activity_id) {
            return None;
        }
        g.reading.insert(activity_id, false);
        Some(Reading {
            memo: self,
            activity_id,
            done: false,
        })
    }

    /// Whether the no-show suspects should be read for `job` (none fresh for its rule, none
    /// being read); if so, the guard marks them being read until [`SuspectsReading::keep`].
    pub fn start_reading_suspects(&self, job: &SignupJob) -> Option<SuspectsReading<'_>> {
        let mut g = self.lock();
        let fresh_ones = g.suspects.as_ref().is_some_and(|s| {
            fresh(s.read_at, job.now, Self::FRESH_FOR) && s.query_misses == min_misses(job)
        });
        if fresh_ones || g.reading_suspects.is_some() {
            return None;
        }
        g.reading_suspects = Some(false);
        Some(SuspectsReading {
            memo: self,
            done: false,
        })
    }

    /// Activities remembered now.
    pub fn len(&self) -> usize {
        self.lock().full.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A snapshot being read (see [`SignupMemo::start_reading`]).
pub struct Reading<'a> {
    memo: &'a SignupMemo,
    activity_id: i64,
    done: bool,
}

impl Reading<'_> {
    /// Remember `snapshot` as read at `read_at`, unless the activity was changed here while it
    /// was read, or it is too large to keep.
    pub fn keep(mut self, snapshot: SignupSnapshot, read_at: DateTime<Utc>) {
        self.done = true;
        let mut g = self.memo.lock();
        let stale = g.reading.remove(&self.activity_id).unwrap_or(true);
        if stale || snapshot.keys.len() > SignupMemo::MAX_KEYS {
            return;
        }
        g.full.remove(&self.activity_id);
        let keys_held =
            |full: &HashMap<i64, Full>| full.values().map(|f| f.keys.len()).sum::<usize>();
        if g.full.len() >= SignupMemo::MAX_ACTIVITIES
            || keys_held(&g.full) + snapshot.keys.len() > SignupMemo::MAX_KEYS_IN_ALL
        {
            g.full
                .retain(|_, f| fresh(f.read_at, read_at, SignupMemo::FRESH_FOR));
            if g.full.len() >= SignupMemo::MAX_ACTIVITIES
                || keys_held(&g.full) + snapshot.keys.len() > SignupMemo::MAX_KEYS_IN_ALL
            {
                g.full.clear();
            }
        }
        g.full.insert(
            self.activity_id,
            Full {
                live: snapshot.live,
                keys: snapshot.keys.into_iter().collect(),
                members: snapshot.members.into_iter().collect(),
                read_at,
            },
        );
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.memo.lock().reading.remove(&self.activity_id);
        }
    }
}

/// The no-show suspects being read (see [`SignupMemo::start_reading_suspects`]).
pub struct SuspectsReading<'a> {
    memo: &'a SignupMemo,
    done: bool,
}

impl SuspectsReading<'_> {
    /// Remember the suspects read for `query` at `read_at` (dropped when there are too many).
    pub fn keep(mut self, members: Vec<i64>, query: SuspectQuery, read_at: DateTime<Utc>) {
        self.done = true;
        let mut g = self.memo.lock();
        let stale = g.reading_suspects.take().unwrap_or(true);
        g.suspects = (!stale && members.len() <= SignupMemo::MAX_SUSPECTS).then(|| Suspects {
            members: members.into_iter().collect(),
            read_at,
            query_misses: query.min_misses,
        });
    }
}

impl Drop for SuspectsReading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.memo.lock().reading_suspects = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unionpass_core::activity::NoShowRule;
    use unionpass_core::ErrorCode;

    fn t() -> DateTime<Utc> {
        "2026-12-04T02:00:00Z".parse().unwrap()
    }

    /// Two seats, a waitlist of one, one companion allowed, open since an hour before `t`.
    fn snapshot(seats_taken: i64, waiting: i64, popular: bool) -> SignupSnapshot {
        let mut activity = crate::store::tests::sports_day(t());
        activity.id = 5;
        if let Some(rules) = activity.signup.as_mut() {
            rules.popular = popular;
        }
        SignupSnapshot {
            live: ActivityLive {
                activity,
                seats_taken,
                waiting,
                my_position: None,
                my_ban_until: None,
            },
            keys: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
            members: vec![1],
        }
    }

    fn job(member_id: i64, key: u128, companions: i64, now: DateTime<Utc>) -> SignupJob {
        SignupJob {
            member_id,
            union_id: 3,
            activity_id: 5,
            key: Uuid::from_u128(key),
            companions,
            now,
            no_show: NoShowRule::default(),
            session: None,
        }
    }

    fn code(r: Option<Refusal>) -> Option<ErrorCode> {
        r.map(|r| r.code)
    }

    #[test]
    fn only_refusals_for_unknown_keys_and_members_while_fresh() {
        let memo = SignupMemo::default();
        // nothing read: the store judges
        assert_eq!(memo.refusal(&job(2, 9, 0, t())), None);
        let reading = memo.start_reading(5, t()).expect("nothing read yet");
        // one read at a time
        assert!(memo.start_reading(5, t()).is_none());
        reading.keep(snapshot(2, 1, false), t());
        assert_eq!(memo.len(), 1);
        // a fresh snapshot needs no second read
        assert!(memo.start_reading(5, t()).is_none());
        assert_eq!(
            code(memo.refusal(&job(2, 9, 0, t()))),
            Some(ErrorCode::SignupFull)
        );
        // a known key (a retry; member 2 may have signed up under it and cancelled) and a
        // member with a live sign-up go to the store: a replay, "already signed up"
        assert_eq!(memo.refusal(&job(2, 1, 0, t())), None);
        assert_eq!(memo.refusal(&job(1, 9, 0, t())), None);
        // a refusal that comes before the seats is answered too (the store would say the same)
        assert_eq!(
            code(memo.refusal(&job(2, 9, 2, t()))),
            Some(ErrorCode::TooManyCompanions)
        );
        // stale: the store again, and a new read is wanted
        let later = t() + SignupMemo::FRESH_FOR;
        assert_eq!(memo.refusal(&job(2, 9, 0, later)), None);
        assert!(memo.start_reading(5, later).is_some());
        // a clock that went back does not make an old snapshot new
        assert_eq!(
            memo.refusal(&job(2, 9, 0, t() - Duration::milliseconds(1))),
            None
        );
    }

    #[test]
    fn room_left_is_never_answered_from_memory() {
        let memo = SignupMemo::default();
        // one seat left: a member alone gets it (the store), one with a companion is waitlisted
        memo.start_reading(5, t())
            .unwrap()
            .keep(snapshot(1, 0, false), t());
        assert_eq!(memo.refusal(&job(2, 9, 0, t())), None);
        assert_eq!(memo.refusal(&job(2, 9, 1, t())), None);
        // seats gone, the waitlist full: a companion does not change "full"
        memo.forget(5);
        memo.start_reading(5, t())
            .unwrap()
            .keep(snapshot(2, 1, false), t());
        assert_eq!(
            code(memo.refusal(&job(2, 9, 1, t()))),
            Some(ErrorCode::SignupFull)
        );
    }

    #[test]
    fn a_change_here_forgets_and_drops_a_snapshot_read_across_it() {
        let memo = SignupMemo::default();
        memo.start_reading(5, t())
            .unwrap()
            .keep(snapshot(2, 1, false), t());
        memo.forget(5);
        assert_eq!(memo.refusal(&job(2, 9, 0, t())), None);
        // a snapshot whose read began before a cancellation here may predate it: dropped
        let reading = memo.start_reading(5, t()).unwrap();
        memo.forget(5);
        reading.keep(snapshot(2, 1, false), t());
        assert!(memo.is_empty());
        assert_eq!(memo.refusal(&job(2, 9, 0, t())), None);
        // an abandoned read (its request went away) lets the next one read
        drop(memo.start_reading(5, t()).unwrap());
        assert!(memo.start_reading(5, t()).is_some());
    }

    #[test]
    fn popular_activities_need_the_suspects_and_send_them_to_the_store() {
        let memo = SignupMemo::default();
        memo.start_reading(5, t())
            .unwrap()
            .keep(snapshot(2, 1, true), t());
        // without suspects known, a ban cannot be ruled out: the store judges
        assert_eq!(memo.refusal(&job(2, 9, 0, t())), None);
        let j = job(2, 9, 0, t());
        let q = SuspectQuery::at(&j);
        assert_eq!(q.since, t() - Duration::days(120));
        assert_eq!(q.until, t() + SignupMemo::SUSPECTS_AHEAD);
        assert_eq!(q.min_misses, 2);
        let reading = memo.start_reading_suspects(&j).unwrap();
        assert!(memo.start_reading_suspects(&j).is_none());
        reading.keep(vec![7], q, t());
        // a suspect may be banned: the store tells them why and until when
        assert_eq!(memo.refusal(&job(7, 9, 0, t())), None);
        assert_eq!(
            code(memo.refusal(&job(2, 9, 0, t()))),
            Some(ErrorCode::SignupFull)
        );
        // suspects read under another rule do not answer for this one
        let mut strict = job(2, 9, 0, t());
        strict.no_show.misses = 1;
        assert_eq!(memo.refusal(&strict), None);
        assert!(memo.start_reading_suspects(&strict).is_some());
        // nor once stale (the snapshot read again meanwhile)
        let later = t() + SignupMemo::FRESH_FOR;
        memo.forget(5);
        memo.start_reading(5, later)
            .unwrap()
            .keep(snapshot(2, 1, true), later);
        assert_eq!(memo.refusal(&job(2, 9, 0, later)), None);
    }

    #[test]
    fn before_the_opening_not_open_and_at_the_opening_the_store() {
        let memo = SignupMemo::default();
        let mut early = snapshot(0, 0, false);
        let opens_at = t() + Duration::milliseconds(500);
        early.live.activity.signup.as_mut().unwrap().opens_at = opens_at;
        memo.start_reading(5, t()).unwrap().keep(early, t());
        let refusal = memo.refusal(&job(2, 9, 0, t())).expect("not open yet");
        assert_eq!(
            (refusal.code, refusal.until),
            (ErrorCode::SignupNotOpen, Some(opens_at))
        );
        // the same snapshot at the opening instant: seats are free, the store decides
        assert_eq!(memo.refusal(&job(2, 9, 0, opens_at)), None);
    }

    #[test]
    fn an_activity_changed_here_takes_the_suspects_with_it() {
        let memo = SignupMemo::default();
        memo.start_reading(5, t())
            .unwrap()
            .keep(snapshot(2, 1, true), t());
        let j = job(2, 9, 0, t());
        let q = SuspectQuery::at(&j);
        memo.start_reading_suspects(&j)
            .unwrap()
            .keep(vec![7], q, t());
        assert!(memo.refusal(&j).is_some());
        memo.forget_changed(5);
        assert!(memo.is_empty());
        memo.start_reading(5, t())
            .unwrap()
            .keep(snapshot(2, 1, true), t());
        assert_eq!(memo.refusal(&j), None, "no suspects known: the store");
        // suspects whose read began before a change here are dropped
        let reading = memo.start_reading_suspects(&j).unwrap();
        memo.forget_changed(6);
        reading.keep(vec![7], q, t());
        assert_eq!(memo.refusal(&j), None);
        assert!(memo.start_reading_suspects(&j).is_some());
    }

    #[test]
    fn keys_are_bounded_over_all_activities() {
        let memo = SignupMemo::default();
        let keyed = |id: i64, n: u128| {
            let mut s = snapshot(2, 1, false);
            s.live.activity.id = id;
            s.keys = (0..n)
                .map(|k| Uuid::from_u128(k + ((id as u128) << 64)))
                .collect();
            s
        };
        for id in 0..3 {
            memo.start_reading(id, t())
                .unwrap()
                .keep(keyed(id, 90_000), t());
        }
        assert_eq!(
            memo.len(),
            1,
            "the fresh two could not stay beside the third"
        );
        memo.forget(2);
        assert!(memo.is_empty());
        memo.start_reading(3, t())
            .unwrap()
            .keep(keyed(3, 90_000), t());
        memo.start_reading(4, t())
            .unwrap()
            .keep(keyed(4, 90_000), t());
        assert_eq!(
            memo.len(),
            2,
            "the count of keys held follows what is forgotten"
        );
    }

    #[test]
    fn the_memo_is_bounded() {
        let memo = SignupMemo::default();
        let mut big = snapshot(2, 1, false);
        big.keys = (0..=SignupMemo::MAX_KEYS as u128)
            .map(Uuid::from_u128)
            .collect();
        memo.start_reading(5, t()).unwrap().keep(big, t());
        assert!(memo.is_empty());
        for id in 0..SignupMemo::MAX_ACTIVITIES as i64 + 10 {
            let mut s = snapshot(2, 1, false);
            s.live.activity.id = id;
            memo.start_reading(id, t()).unwrap().keep(s, t());
            assert!(memo.len() <= SignupMemo::MAX_ACTIVITIES);
        }
        let j = job(2, 9, 0, t());
        let q = SuspectQuery::at(&j);
        memo.start_reading_suspects(&j).unwrap().keep(
            (0..=SignupMemo::MAX_SUSPECTS as i64).collect(),
            q,
            t(),
        );
        assert!(
            memo.start_reading_suspects(&j).is_some(),
            "too many: not kept"
        );
    }
}
