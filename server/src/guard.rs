//! Password checks under attack: who may try a password now, and how many hashes run at once.
//!
//! An attempt is counted **before** its password is hashed (so parallel guesses cannot pass the
//! limit), under three keys: the member number from this address, the member number from
//! anywhere, and the address. Each key has a number of free failures in a sliding window; past
//! it, one attempt at a time, each after a delay that doubles with every failure, up to a cap.
//! The member-wide cap is short (a minute), so an attacker elsewhere can slow a member down but
//! not lock them out; the caps for one address are long. Failures are also counted server-wide:
//! past a budget per minute (an attack from many addresses), every key with a recent failure
//! waits the base delay between attempts, while members and addresses without one go on as
//! before. Right passwords are counted too, per member number: past the free sign-ins, the next
//! waits as after a failure, and a member number has at most two attempts in progress, so that
//! whoever holds a password cannot keep the hashers busy with it. Every map is bounded by size
//! and time.
//!
//! Hashing is bounded separately: at most one hash per core runs at once (argon2 takes about
//! 19 MiB and a good fraction of a second each), a few requests may wait briefly for a turn, and
//! the rest are answered `unavailable` with a `Retry-After` at once. One more slot is kept for
//! attempts with no recent failure on any key, so that a flood of wrong guesses cannot keep an
//! honest member from signing in. A member number that does not exist, or a reset code never
//! issued, costs no hash, no slot and no place in the queue: the answer waits about as long as a
//! recent real check took, plus, when every slot it could take is busy, about as long as its
//! turn would take, and is refused as busy when a real check would be (an estimate: see
//! [`Guard::imitate`]). Member numbers are sequential and printed on cards, so whether one
//! exists matters little; whether a member has a reset code waiting is theirs.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// The limits. [`Policy::default`] is what the server runs with.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Failures of one member number from one address before delays start.
    pub free_per_pair: u32,
    /// Failures of one member number from any address before delays start.
    pub free_per_member: u32,
    /// Failures from one address (any member numbers: password spraying) before delays start.
    pub free_per_address: u32,
    /// Attempts one address may have in progress at once.
    pub in_flight_per_address: u32,
    /// Attempts one member number may have in progress at once, from anywhere (an app signs in
    /// once at a time; this keeps one account from holding more than its share of the hashers).
    pub in_flight_per_member: u32,
    /// Right passwords for one member number before delays start: whoever holds a password
    /// (the owner, or someone it leaked to) may not keep the hashers busy with it. A member
    /// holds at most ten devices, so ten sign-ins in the window are as many as any use needs.
    pub free_sign_ins_per_member: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// The first delay past the free failures; it doubles with each further failure.
    pub base_delay: Duration,
    pub max_delay_pair: Duration,
    /// Short on purpose: the owner is never locked out for long by someone else's guesses.
    pub max_delay_member: Duration,
    pub max_delay_address: Duration,
    /// The most keys each map holds; past it, idle ones are forgotten.
    pub max_keys: usize,
    /// Failures per minute, server-wide, past which keys with a recent failure are slowed.
    pub global_failures_per_minute: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            free_per_pair: 5,
            free_per_member: 20,
            free_per_address: 30,
            in_flight_per_address: 4,
            in_flight_per_member: 2,
            free_sign_ins_per_member: 10,
            window: Duration::minutes(15),
            base_delay: Duration::seconds(2),
            max_delay_pair: Duration::minutes(15),
            max_delay_member: Duration::minutes(1),
            max_delay_address: Duration::minutes(15),
            max_keys: 100_000,
            global_failures_per_minute: 600,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    failures: u32,
    last_failure: Option<DateTime<Utc>>,
    in_flight: u32,
    /// Right passwords (kept on the member-wide key only).
    successes: u32,
    last_success: Option<DateTime<Utc>>,
}

impl Record {
    fn forget_old(&mut self, now: DateTime<Utc>, window: Duration) {
        if self.last_failure.is_some_and(|t| now - t >= window) {
            self.failures = 0;
            self.last_failure = None;
        }
        if self.last_success.is_some_and(|t| now - t >= window) {
            self.successes = 0;
            self.last_success = None;
        }
    }

    /// Whether the record still says anything (otherwise it is dropped from its map).
    fn live(&self) -> bool {
        self.failures > 0 || self.in_flight > 0 || self.successes > 0
    }

    /// How long until one more attempt may start, counting right passwords: past the free
    /// ones, a delay from the last that doubles with each, up to `max`.
    fn sign_in_wait(
        &self,
        free: u32,
        base: Duration,
        max: Duration,
        now: DateTime<Utc>,
    ) -> Duration {
        if self.successes < free {
            return Duration::zero();
        }
        let delay = (base * 2i32.pow((self.successes - free).min(20))).min(max);
        match self.last_success {
            Some(t) if now < t + delay => t + delay - now,
            _ => Duration::zero(),
        }
    }

    /// How long until one more attempt may start (zero: now).
    fn wait(&self, free: u32, base: Duration, max: Duration, now: DateTime<Utc>) -> Duration {
        if self.failures + self.in_flight < free {
            return Duration::zero();
        }
        if self.in_flight > 0 {
            // past the free ones, one attempt at a time
            return Duration::seconds(1);
        }
        let over = self.failures.saturating_sub(free).min(20);
        let delay = (base * 2i32.pow(over)).min(max);
        match self.last_failure {
            Some(t) if now < t + delay => t + delay - now,
            _ => Duration::zero(),
        }
    }
}

struct Keyed<K> {
    map: HashMap<K, Record>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new() -> Self {
        Keyed {
            map: HashMap::new(),
        }
    }

    fn get(&mut self, key: &K, now: DateTime<Utc>, window: Duration) -> Record {
        match self.map.get_mut(key) {
            Some(r) => {
                r.forget_old(now, window);
                *r
            }
            None => Record::default(),
        }
    }

    fn update(
        &mut self,
        key: &K,
        max_keys: usize,
        now: DateTime<Utc>,
        window: Duration,
        f: impl FnOnce(&mut Record),
    ) {
        if self.map.len() >= max_keys && !self.map.contains_key(key) {
            self.map.retain(|_, r| {
                r.forget_old(now, window);
                r.live()
            });
            if self.map.len() >= max_keys {
                // then the right passwords: a busy morning of honest sign-ins must not push
                // out the failures that slow a guesser down
                self.map.retain(|_, r| r.failures > 0 || r.in_flight > 0);
            }
            if self.map.len() >= max_keys {
                // still full: keep only what is in progress (the rest is forgotten, not kept
                // without bound)
                self.map.retain(|_, r| r.in_flight > 0);
            }
        }
        let r = self.map.entry(key.clone()).or_default();
        r.forget_old(now, window);
        f(r);
        if !r.live() {
            self.map.remove(key);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

struct Attempts {
    pairs: Keyed<(String, IpAddr)>,
    members: Keyed<String>,
    addresses: Keyed<IpAddr>,
    /// Server-wide failures: a level that drains at the budget's rate (a leaky bucket).
    global: f64,
    global_at: Option<DateTime<Utc>>,
}

impl Attempts {
    /// The server-wide level at `now`, drained since it was last looked at.
    fn global_level(&mut self, now: DateTime<Utc>, per_minute: u32) -> f64 {
        if let Some(at) = self.global_at {
            let elapsed = (now - at).num_milliseconds().max(0) as f64 / 60_000.0;
            self.global = (self.global - elapsed * per_minute as f64).max(0.0);
        }
        self.global_at = Some(now);
        self.global
    }
}

/// Why an attempt may not start now, and when to come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many recent failures (or attempts in progress) for this member or address.
    TooMany { retry_after: Duration },
    /// Too many passwords are being checked right now.
    Busy { retry_after: Duration },
}

impl Refused {
    pub fn retry_after(self) -> Duration {
        match self {
            Refused::TooMany { retry_after } | Refused::Busy { retry_after } => retry_after,
        }
    }
}

/// How a counted attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The password was right.
    Right,
    /// The password (or the member number) was wrong.
    Wrong,
    /// Never checked (no hashing slot, or the store failed): neither.
    Unchecked,
}

/// A counted attempt; give it back with [`Guard::finish`]. Dropped unfinished (its request was
/// cancelled: the client hung up while it waited for a hashing slot or its password was being
/// checked), it ends as a failure. It is no longer in progress: left counted, two such requests
/// with any password would hold a member's attempts in progress at the limit, refusing the
/// owner, for as long as the server runs. And it is not free: its hash still runs to the end
/// (see [`Guard::hash`]), so a client that hangs up on every guess is slowed like one that
/// waits for the answers.
pub struct Ticket<'g> {
    guard: &'g Guard,
    member: String,
    addr: IpAddr,
    /// No recent failure on any of its keys when it began: it may use the kept hashing slot.
    clean: bool,
    began: DateTime<Utc>,
    finished: bool,
}

impl Ticket<'_> {
    pub fn clean(&self) -> bool {
        self.clean
    }
}

impl std::fmt::Debug for Ticket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("addr", &self.addr)
            .field("clean", &self.clean)
            .finish_non_exhaustive()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.guard
                .end(&self.member, self.addr, Outcome::Wrong, self.began);
        }
    }
}

pub struct Guard {
    policy: Policy,
    attempts: Mutex<Attempts>,
    hashing: Arc<tokio::sync::Semaphore>,
    /// How many general hashing slots there are.
    hashers: usize,
    /// The slot kept for attempts without recent failures.
    kept: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    /// Of those waiting, how many may take the kept slot too.
    waiting_clean: AtomicUsize,
    max_waiting: usize,
    max_wait: std::time::Duration,
    /// How long a recent real check took, in microseconds (what an unknown number waits).
    typical_us: AtomicUsize,
}

impl Default for Guard {
    fn default() -> Guard {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        Guard::new(Policy::default(), cores)
    }
}

impl Guard {
    /// `hashers`: how many passwords may be hashed at once (about one per core).
    pub fn new(policy: Policy, hashers: usize) -> Guard {
        Guard {
            policy,
            attempts: Mutex::new(Attempts {
                pairs: Keyed::new(),
                members: Keyed::new(),
                addresses: Keyed::new(),
                global: 0.0,
                global_at: None,
            }),
            hashing: Arc::new(tokio::sync::Semaphore::new(hashers.max(1))),
            hashers: hashers.max(1),
            kept: Arc::new(tokio::sync::Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
            waiting_clean: AtomicUsize::new(0),
            max_waiting: hashers.max(1) * 4,
            max_wait: std::time::Duration::from_secs(3),
            typical_us: AtomicUsize::new(300_000),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Count an attempt for `member` (a normalised member number, or another key such as a
    /// session for the password asked again) from `addr`, or say why it may not start now.
    pub fn begin(
        &self,
        member: &str,
        addr: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Ticket<'_>, Refused> {
        let p = &self.policy;
        let mut a = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let pair_key = (member.to_string(), addr);
        let pair = a.pairs.get(&pair_key, now, p.window);
        let whole = a.members.get(&member.to_string(), now, p.window);
        let address = a.addresses.get(&addr, now, p.window);
        let mut wait = pair
            .wait(p.free_per_pair, p.base_delay, p.max_delay_pair, now)
            .max(whole.wait(p.free_per_member, p.base_delay, p.max_delay_member, now))
            .max(address.wait(p.free_per_address, p.base_delay, p.max_delay_address, now))
            .max(whole.sign_in_wait(
                p.free_sign_ins_per_member,
                p.base_delay,
                p.max_delay_member,
                now,
            ));
        if address.in_flight >= p.in_flight_per_address || whole.in_flight >= p.in_flight_per_member
        {
            wait = wait.max(Duration::seconds(1));
        }
        let failed_before = [pair, whole, address]
            .iter()
            .filter_map(|r| r.last_failure)
            .max();
        if let Some(last) = failed_before {
            // under a server-wide attack, every key with a failure waits between attempts
            if a.global_level(now, p.global_failures_per_minute)
                >= p.global_failures_per_minute as f64
                && now < last + p.base_delay
            {
                wait = wait.max(last + p.base_delay - now);
            }
        }
        if wait > Duration::zero() {
            return Err(Refused::TooMany {
                retry_after: round_up(wait),
            });
        }
        let (max, window) = (p.max_keys, p.window);
        a.pairs
            .update(&pair_key, max, now, window, |r| r.in_flight += 1);
        a.members
            .update(&member.to_string(), max, now, window, |r| r.in_flight += 1);
        a.addresses
            .update(&addr, max, now, window, |r| r.in_flight += 1);
        Ok(Ticket {
            guard: self,
            member: member.to_string(),
            addr,
            clean: failed_before.is_none() && whole.in_flight == 0,
            began: now,
            finished: false,
        })
    }

    /// The attempt ended: a wrong password counts against every key; a right one clears the
    /// failures of this member number from this address (not those made from elsewhere) and
    /// counts against the member's free sign-ins; an attempt never checked counts for nothing.
    pub fn finish(&self, mut t: Ticket<'_>, outcome: Outcome, now: DateTime<Utc>) {
        debug_assert!(std::ptr::eq(t.guard, self), "a ticket of another guard");
        t.finished = true;
        self.end(&t.member, t.addr, outcome, now);
    }

    fn end(&self, member: &str, addr: IpAddr, outcome: Outcome, now: DateTime<Utc>) {
        let p = &self.policy;
        let (max, window) = (p.max_keys, p.window);
        let mut a = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let wrong = outcome == Outcome::Wrong;
        let ended = |r: &mut Record| {
            r.in_flight = r.in_flight.saturating_sub(1);
            if wrong {
                r.failures += 1;
                r.last_failure = Some(now);
            }
        };
        let pair_key = (member.to_string(), addr);
        a.pairs.update(&pair_key, max, now, window, |r| {
            ended(r);
            if outcome == Outcome::Right {
                r.failures = 0;
                r.last_failure = None;
            }
        });
        a.members
            .update(&member.to_string(), max, now, window, |r| {
                ended(r);
                if outcome == Outcome::Right {
                    r.successes += 1;
                    r.last_success = Some(now);
                }
            });
        a.addresses.update(&addr, max, now, window, ended);
        if wrong {
            a.global_level(now, p.global_failures_per_minute);
            // capped, so that the level drains within a minute of the attack's end
            a.global = (a.global + 1.0).min(2.0 * p.global_failures_per_minute as f64);
        }
    }

    /// The member proved who they are another way (a reset code from union staff): their
    /// failures, member-wide and from `addr`, are forgotten, so the sign-in that follows does not
    /// wait for the guesses that led them to reset. Failures from other addresses stay.
    pub fn forgive(&self, member: &str, addr: IpAddr, now: DateTime<Utc>) {
        let p = &self.policy;
        let (max, window) = (p.max_keys, p.window);
        let mut a = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let forget = |r: &mut Record| {
            r.failures = 0;
            r.last_failure = None;
        };
        a.pairs
            .update(&(member.to_string(), addr), max, now, window, forget);
        a.members
            .update(&member.to_string(), max, now, window, forget);
    }

    /// Whether the server-wide failure budget is spent (for tests and the logs).
    pub fn under_attack(&self, now: DateTime<Utc>) -> bool {
        let p = &self.policy;
        let mut a = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        a.global_level(now, p.global_failures_per_minute) >= p.global_failures_per_minute as f64
    }

    /// Run `check` (a password hash) when a hashing slot is free: wait a little for one, or be
    /// refused at once when too many are already waiting. A `clean` attempt (see [`Ticket`]) may
    /// also take the kept slot.
    pub async fn hash<T: Send + 'static>(
        &self,
        clean: bool,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.slot(clean).await?;
        let started = std::time::Instant::now();
        // the slot goes with the hash: if the request is dropped, the hash still runs to its end
        // and holds its slot until then, so dropped requests cannot add hashes
        let out = tokio::task::spawn_blocking(move || {
            let out = check();
            drop(permit);
            out
        })
        .await?;
        // a moving average of real checks: what an unknown number's answer waits
        let took = started.elapsed().as_micros().min(10_000_000) as usize;
        let before = self.typical_us.load(Ordering::Relaxed);
        self.typical_us
            .store((before * 7 + took) / 8, Ordering::Relaxed);
        Ok(out)
    }

    /// Take about as long as a password check and answer as one would, without one (a member
    /// number that does not exist, a reset code never issued), and without taking a hashing
    /// slot or a place in the queue for one: asking for what does not exist costs the server no
    /// hash and no slot. It is refused as busy when a real check would be (the queue full, or
    /// the turn too far off), and when every slot it could take is busy it waits about as long
    /// as its turn would take: an answer that came sooner, or never as a refusal under load,
    /// would tell which numbers and codes exist. (An estimate: imitations do not load the
    /// queue as real checks do, so a burst of them is refused less often than one of real
    /// checks; the per-key limits keep such bursts small.)
    pub async fn imitate(&self, clean: bool) -> Result<(), HashError> {
        let typical = self.typical_us.load(Ordering::Relaxed) as u64;
        let waiting = self.waiting.load(Ordering::SeqCst) as u64;
        let kept_free = clean && self.kept.available_permits() > 0;
        if !kept_free && waiting >= self.max_waiting as u64 {
            return Err(busy());
        }
        // a general slot: after the first of the running checks ends (on average a check's
        // 1/(slots+1) with `slots` of them), then a check per slot for those ahead
        let slots = self.hashers as u64;
        let general = if self.hashing.available_permits() > 0 {
            0
        } else {
            typical * (waiting / slots) + typical * (waiting % slots + 1) / (slots + 1)
        };
        // a clean check takes the kept slot instead when it frees first; only clean checks
        // wait for it
        let turn_us = if kept_free {
            0
        } else if clean {
            let ahead = self.waiting_clean.load(Ordering::SeqCst) as u64;
            general.min(typical * ahead + typical / 2)
        } else {
            general
        };
        if turn_us > self.max_wait.as_micros() as u64 {
            tokio::time::sleep(self.max_wait).await;
            return Err(busy());
        }
        // a little spread, as real checks have
        let jitter = rand::random::<u64>() % (typical / 10 + 1);
        tokio::time::sleep(std::time::Duration::from_micros(
            turn_us + typical * 19 / 20 + jitter,
        ))
        .await;
        Ok(())
    }

    /// A hashing slot: a general one, or for a `clean` attempt the kept one, whichever frees
    /// first; refused at once when too many already wait, or after waiting too long.
    async fn slot(&self, clean: bool) -> Result<tokio::sync::OwnedSemaphorePermit, HashError> {
        if clean {
            if let Ok(p) = self.kept.clone().try_acquire_owned() {
                return Ok(p);
            }
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        // counted down however this ends, also when the request is dropped meanwhile
        let _waiting = Waiting(&self.waiting);
        let _clean = clean.then(|| {
            self.waiting_clean.fetch_add(1, Ordering::SeqCst);
            Waiting(&self.waiting_clean)
        });
        let acquired = if clean {
            tokio::time::timeout(self.max_wait, async {
                tokio::select! {
                    p = self.hashing.clone().acquire_owned() => p,
                    p = self.kept.clone().acquire_owned() => p,
                }
            })
            .await
        } else {
            tokio::time::timeout(self.max_wait, self.hashing.clone().acquire_owned()).await
        };
        match acquired {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy()),
        }
    }

    /// How many keys the limiter holds (for tests and the logs).
    pub fn keys(&self) -> usize {
        let a = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        a.pairs.len() + a.members.len() + a.addresses.len()
    }
}

/// No hashing slot now: come back in a moment.
fn busy() -> HashError {
    HashError::Refused(Refused::Busy {
        retry_after: Duration::seconds(2),
    })
}

/// One request waiting for a hashing slot (counted down on drop).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a password could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("refused: {0:?}")]
    Refused(Refused),
    #[error("the hashing task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// Whole seconds, at least one (for `Retry-After`).
fn round_up(d: Duration) -> Duration {
    let ms = d.num_milliseconds().max(1);
    Duration::seconds((ms + 999) / 1000)
}

/// The address a request comes from: the peer, unless the peer is a trusted proxy, in which case
/// the nearest address in `X-Forwarded-For` that is not itself a trusted proxy. The header is
/// asked for (`forwarded_for`) only then: on a grab or sign-up from anyone else, its lookup was
/// about 330 instructions spent on nothing.
pub fn client_addr<'a>(
    peer: IpAddr,
    forwarded_for: impl FnOnce() -> Option<&'a str>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(list) = forwarded_for() else {
        return peer;
    };
    let mut hops: Vec<IpAddr> = Vec::new();
    for part in list.split(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(a) => hops.push(a),
            // a hop we cannot read: trust nothing before it
            Err(_) => hops.clear(),
        }
    }
    hops.into_iter()
        .rev()
        .find(|a| !is_trusted(a))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-12-01T02:00:00Z".parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn attempts_in_progress_count_before_their_result() {
        let g = Guard::new(Policy::default(), 2);
        let a = ip("10.0.0.1");
        // 40 guesses at once for one member from one address: only 2 start
        let tickets: Vec<_> = (0..40)
            .filter_map(|_| g.begin("M10001", a, t0()).ok())
            .collect();
        assert_eq!(tickets.len(), 2, "a member number may have 2 in progress");
        // 40 more for other numbers from that address: 2 more, up to the address's 4
        let others: Vec<_> = (0..40)
            .filter_map(|i| g.begin(&format!("M2{i:04}"), a, t0()).ok())
            .collect();
        assert_eq!(others.len(), 2, "the address may have 4 in progress");
        for t in tickets.into_iter().chain(others) {
            g.finish(t, Outcome::Wrong, t0());
        }
        // three more free failures for the pair (5), then delays
        for _ in 0..3 {
            let t = g.begin("M10001", a, t0()).unwrap();
            g.finish(t, Outcome::Wrong, t0());
        }
        match g.begin("M10001", a, t0()) {
            Err(Refused::TooMany { retry_after }) => {
                assert_eq!(retry_after, Duration::seconds(2))
            }
            other => panic!("{other:?}"),
        }
        // after the delay, one attempt; each failure doubles the next delay
        let t = g.begin("M10001", a, t0() + Duration::seconds(2)).unwrap();
        g.finish(t, Outcome::Wrong, t0() + Duration::seconds(2));
        assert_eq!(
            g.begin("M10001", a, t0() + Duration::seconds(3))
                .unwrap_err()
                .retry_after(),
            Duration::seconds(3),
            "4 s after the last failure"
        );
    }

    #[test]
    fn right_passwords_past_the_free_sign_ins_wait_and_one_member_holds_two_hashes_at_most() {
        let g = Guard::new(Policy::default(), 2);
        let from = |i: u32| ip(&format!("10.2.{}.{}", i / 200, i % 200));
        // ten sign-ins with the right password, each from its own address
        for i in 0..10 {
            let t = g.begin("M10001", from(i), t0()).unwrap();
            g.finish(t, Outcome::Right, t0());
        }
        // the eleventh waits, from anywhere, and each further one twice as long, up to a minute
        let mut at = t0();
        for (n, expected) in [2, 4, 8, 16, 32, 60, 60].into_iter().enumerate() {
            let wait = g.begin("M10001", from(100 + n as u32), at).unwrap_err();
            assert_eq!(
                wait.retry_after(),
                Duration::seconds(expected),
                "sign-in {}",
                11 + n
            );
            at += Duration::seconds(expected);
            let t = g.begin("M10001", from(100 + n as u32), at).unwrap();
            g.finish(t, Outcome::Right, at);
        }
        // another member is not slowed, and the count is forgotten after the window
        assert!(g.begin("M10002", from(1), at).is_ok());
        assert!(g
            .begin("M10001", from(1), at + Duration::minutes(15))
            .is_ok());

        // attempts never checked (no hashing slot) count as neither
        for i in 0..30 {
            let t = g.begin("M10003", from(i), t0()).unwrap();
            g.finish(t, Outcome::Unchecked, t0());
        }
        // and do not clear a pair's failures the way a right password does
        let a = ip("10.3.0.1");
        for _ in 0..5 {
            let t = g.begin("M10004", a, t0()).unwrap();
            g.finish(t, Outcome::Wrong, t0());
        }
        let t2s = t0() + Duration::seconds(2);
        let t = g.begin("M10004", a, t2s).unwrap();
        g.finish(t, Outcome::Unchecked, t2s);
        let t = g.begin("M10004", a, t2s).unwrap();
        g.finish(t, Outcome::Wrong, t2s);
        assert_eq!(
            g.begin("M10004", a, t2s + Duration::seconds(1))
                .unwrap_err()
                .retry_after(),
            Duration::seconds(3),
            "the sixth failure doubles the delay: the pair's count was kept"
        );

        // one member number: two attempts in progress at once, from anywhere
        let t1 = g.begin("M10005", from(1), t0()).unwrap();
        let t2 = g.begin("M10005", from(2), t0()).unwrap();
        assert_eq!(
            g.begin("M10005", from(3), t0()).unwrap_err(),
            Refused::TooMany {
                retry_after: Duration::seconds(1)
            }
        );
        g.finish(t1, Outcome::Right, t0());
        assert!(g.begin("M10005", from(3), t0()).is_ok());
        g.finish(t2, Outcome::Right, t0());
    }

    #[test]
    fn guesses_from_elsewhere_slow_the_owner_but_do_not_lock_them_out() {
        let g = Guard::new(Policy::default(), 2);
        // an attacker spreads 60 guesses for one member over many addresses
        for i in 0..60u32 {
            let addr = ip(&format!("10.1.{}.{}", i / 200, i % 200));
            if let Ok(t) = g.begin("M10001", addr, t0()) {
                g.finish(t, Outcome::Wrong, t0());
            }
        }
        // the owner, from home, waits at most the member-wide cap
        let home = ip("192.0.2.7");
        let wait = g.begin("M10001", home, t0()).unwrap_err().retry_after();
        assert!(wait <= Duration::minutes(1), "{wait}");
        let t = g.begin("M10001", home, t0() + wait).unwrap();
        g.finish(t, Outcome::Right, t0() + wait);
        // other members are not affected
        assert!(g.begin("M10002", home, t0()).is_ok());
    }

    #[test]
    fn one_address_spraying_many_member_numbers_is_slowed() {
        let g = Guard::new(Policy::default(), 2);
        let a = ip("10.0.0.9");
        let mut checked = 0;
        for i in 0..60 {
            if let Ok(t) = g.begin(&format!("M{}", 10_000 + i), a, t0()) {
                checked += 1;
                g.finish(t, Outcome::Wrong, t0());
            }
        }
        assert_eq!(checked, 30, "the address's free failures, then delays");
        // another address is not affected
        assert!(g.begin("M10099", ip("10.0.0.10"), t0()).is_ok());
        // failures are forgotten after the window
        assert!(g.begin("M10099", a, t0() + Duration::minutes(16)).is_ok());
    }

    /// A guard whose maps hold at most 100 keys each.
    fn small_maps() -> Guard {
        Guard::new(
            Policy {
                max_keys: 100,
                ..Policy::default()
            },
            2,
        )
    }

    #[test]
    fn honest_sign_ins_filling_the_map_do_not_push_out_a_guessers_failures() {
        let g = small_maps();
        let from = |i: u32| ip(&format!("10.4.{}.{}", i / 200, i % 200));
        // 20 guesses at one member from as many addresses: the member-wide free ones are spent
        for i in 0..20 {
            let t = g.begin("M10001", from(i), t0()).unwrap();
            g.finish(t, Outcome::Wrong, t0());
        }
        assert!(g.begin("M10001", from(50), t0()).is_err());
        // then 300 other members sign in, each rightly, from one office
        let office = ip("192.0.2.50");
        for i in 0..300 {
            let t = g.begin(&format!("M2{i:04}"), office, t0()).unwrap();
            g.finish(t, Outcome::Right, t0());
        }
        assert!(g.keys() <= 300, "{}", g.keys());
        // the guesser, from yet another address, still waits
        assert!(
            g.begin("M10001", from(60), t0()).is_err(),
            "the member-wide failures were forgotten"
        );
    }

    #[test]
    fn the_maps_stay_bounded() {
        let g = small_maps();
        for i in 0..1000u32 {
            let addr = ip(&format!("10.{}.{}.1", i / 250, i % 250));
            if let Ok(t) = g.begin(&format!("X{i}"), addr, t0()) {
                g.finish(t, Outcome::Wrong, t0());
            }
        }
        assert!(g.keys() <= 300, "{}", g.keys());
    }

    #[tokio::test]
    async fn hashing_is_bounded_and_refuses_when_too_many_wait() {
        let g = std::sync::Arc::new(Guard::new(Policy::default(), 1));
        let slow = |ms: u64| move || std::thread::sleep(std::time::Duration::from_millis(ms));
        let running = {
            let g = g.clone();
            tokio::spawn(async move { g.hash(false, slow(500)).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // one runs, four may wait; the sixth is refused at once
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                tokio::spawn(async move { g.hash(false, slow(10)).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(matches!(
            g.hash(false, slow(10)).await,
            Err(HashError::Refused(Refused::Busy { .. }))
        ));
        // an attempt without recent failures still gets the kept slot, at once
        let t = std::time::Instant::now();
        assert!(g.hash(true, slow(10)).await.is_ok());
        assert!(t.elapsed() < std::time::Duration::from_millis(300));
        assert!(running.await.unwrap().is_ok());
        for w in waiters {
            assert!(w.await.unwrap().is_ok());
        }
    }

    #[tokio::test]
    async fn dropped_requests_neither_add_hashes_nor_hold_waiting_places() {
        let g = std::sync::Arc::new(Guard::new(Policy::default(), 1));
        let now_running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let check = || {
            let (now_running, most) = (now_running.clone(), most.clone());
            move || {
                let n = now_running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(100));
                now_running.fetch_sub(1, Ordering::SeqCst);
            }
        };
        // twenty requests in a row, each given up (dropped) after 20 ms, as a client that
        // disconnects or a server timeout does
        for _ in 0..20 {
            let _ =
                tokio::time::timeout(std::time::Duration::from_millis(20), g.hash(false, check()))
                    .await;
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            1,
            "one hash at a time, dropped or not"
        );
        // and no waiting place leaked: a request now waits for its turn and gets it
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(g.hash(false, check()).await.is_ok());
        assert_eq!(g.waiting.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_ticket_dropped_unfinished_is_a_failure_no_longer_in_progress() {
        let g = Guard::new(Policy::default(), 2);
        let a = ip("10.0.0.1");
        // a client hangs up mid-check four times: its requests' tickets are dropped
        for _ in 0..4 {
            drop(g.begin("M10001", a, t0()).unwrap());
        }
        // none is still in progress: the member may have two at once, the address four
        let t1 = g.begin("M10001", ip("10.0.0.2"), t0()).unwrap();
        let t2 = g.begin("M10001", ip("10.0.0.3"), t0()).unwrap();
        let others: Vec<_> = (0..4)
            .map(|i| g.begin(&format!("M2{i:04}"), a, t0()).unwrap())
            .collect();
        g.finish(t1, Outcome::Right, t0());
        g.finish(t2, Outcome::Right, t0());
        for t in others {
            g.finish(t, Outcome::Right, t0());
        }
        // and each counted as a failure of the pair: one more is free, the one after waits
        drop(g.begin("M10001", a, t0()).unwrap());
        assert_eq!(
            g.begin("M10001", a, t0()).unwrap_err(),
            Refused::TooMany {
                retry_after: Duration::seconds(2)
            }
        );
    }

    #[test]
    fn a_clean_ticket_has_no_recent_failure_on_any_key() {
        let g = Guard::new(Policy::default(), 2);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let t = g.begin("M10001", a, t0()).unwrap();
        assert!(t.clean());
        g.finish(t, Outcome::Wrong, t0());
        // the member failed from a: not clean from b either, nor the address a for others
        for (member, addr, clean) in [
            ("M10001", b, false),
            ("M10002", a, false),
            ("M10003", b, true),
        ] {
            let t = g.begin(member, addr, t0()).unwrap();
            assert_eq!(t.clean(), clean, "{member} from {addr}");
            g.finish(t, Outcome::Unchecked, t0());
        }
    }

    #[test]
    fn past_the_server_wide_budget_keys_with_failures_wait() {
        let g = Guard::new(
            Policy {
                global_failures_per_minute: 50,
                ..Policy::default()
            },
            2,
        );
        // 50 failures from 50 addresses on 50 numbers: each key is within its own limits
        for i in 0..50u32 {
            let t = g
                .begin(
                    &format!("M{}", 20_000 + i),
                    ip(&format!("10.9.0.{i}")),
                    t0(),
                )
                .unwrap();
            g.finish(t, Outcome::Wrong, t0());
        }
        assert!(g.under_attack(t0()));
        // a key with a failure now waits the base delay; a clean one does not
        let again = g.begin("M20000", ip("10.8.0.1"), t0()).unwrap_err();
        assert_eq!(again.retry_after(), Duration::seconds(2));
        assert!(g.begin("M30000", ip("10.8.0.2"), t0()).is_ok());
        // the level drains: a minute later, no longer under attack
        assert!(!g.under_attack(t0() + Duration::seconds(61)));
    }

    #[tokio::test]
    async fn an_unknown_number_waits_about_as_long_as_a_real_check() {
        let g = Guard::new(Policy::default(), 2);
        for _ in 0..20 {
            g.hash(false, || {
                std::thread::sleep(std::time::Duration::from_millis(40))
            })
            .await
            .unwrap();
        }
        let t = std::time::Instant::now();
        g.imitate(false).await.unwrap();
        let took = t.elapsed().as_millis();
        assert!((30..200).contains(&took), "{took} ms");
    }

    /// Under load an unknown number waits about as long as its turn for a hashing slot would
    /// take, and is refused as busy when the queue is full, as a real check is: answered at
    /// once, it would tell which numbers exist. It takes no slot and no place in the queue.
    #[tokio::test]
    async fn an_unknown_number_waits_its_turn_and_is_refused_as_a_real_check_is() {
        use std::time::{Duration, Instant};
        async fn until(what: &str, done: impl Fn() -> bool) {
            tokio::time::timeout(Duration::from_secs(10), async {
                while !done() {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("never {what}"));
        }
        let ms = |t: Instant| t.elapsed().as_millis();
        let g = std::sync::Arc::new(Guard::new(Policy::default(), 2));
        // a real check takes 100 ms
        g.typical_us.store(100_000, Ordering::Relaxed);
        // real checks hold both general slots and the kept one, and three more wait
        let (gate, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Arc::new(std::sync::Mutex::new(hold));
        let mut real = Vec::new();
        let mut start = |clean: bool| {
            let (g, hold) = (g.clone(), hold.clone());
            real.push(tokio::spawn(async move {
                g.hash(clean, move || {
                    let _ = hold.lock().unwrap().recv();
                })
                .await
            }));
        };
        start(false);
        start(false);
        until("two general slots taken", || {
            g.hashing.available_permits() == 0
        })
        .await;
        start(true);
        until("the kept slot taken", || g.kept.available_permits() == 0).await;
        for _ in 0..3 {
            start(false);
        }
        until("three waiting", || g.waiting.load(Ordering::SeqCst) == 3).await;

        // fourth in line for two slots: a check and two thirds (166 ms), then its own
        let t = Instant::now();
        let imitation = {
            let g = g.clone();
            tokio::spawn(async move { g.imitate(false).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(g.waiting.load(Ordering::SeqCst), 3, "it took a place");
        imitation.await.unwrap().unwrap();
        assert!(ms(t) >= 250, "answered in {} ms, every slot busy", ms(t));
        // a clean one may take the kept slot, which no clean check waits for: half a check,
        // then its own (145 ms)
        let t = Instant::now();
        g.imitate(true).await.unwrap();
        assert!((140..240).contains(&ms(t)), "clean: {} ms", ms(t));

        // a full queue (four a slot): refused at once, as a real check is
        for _ in 0..5 {
            start(false);
        }
        until("eight waiting", || g.waiting.load(Ordering::SeqCst) == 8).await;
        for clean in [false, true] {
            let t = Instant::now();
            assert!(matches!(
                g.imitate(clean).await,
                Err(HashError::Refused(Refused::Busy { .. }))
            ));
            assert!(ms(t) < 50, "refused after {} ms", ms(t));
        }
        for _ in 0..real.len() {
            gate.send(()).unwrap();
        }
        for r in real {
            r.await.unwrap().unwrap();
        }
        // every slot free: a check's time, no turn
        g.typical_us.store(100_000, Ordering::Relaxed);
        let t = Instant::now();
        g.imitate(false).await.unwrap();
        assert!((95..180).contains(&ms(t)), "idle: {} ms", ms(t));
    }

    #[test]
    fn the_client_address_comes_from_a_trusted_proxy_only() {
        let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let peer = ip("127.0.0.1");
        assert_eq!(
            client_addr(peer, || Some("203.0.113.5, 127.0.0.1"), &trusted),
            ip("203.0.113.5")
        );
        // a forged first hop does not matter: the nearest untrusted one counts
        assert_eq!(
            client_addr(peer, || Some("1.1.1.1, 203.0.113.5"), &trusted),
            ip("203.0.113.5")
        );
        // not from the proxy: the header is ignored
        assert_eq!(
            client_addr(ip("198.51.100.2"), || Some("203.0.113.5"), &trusted),
            ip("198.51.100.2")
        );
        // no proxy configured: the header is ignored
        assert_eq!(client_addr(peer, || Some("203.0.113.5"), &[]), peer);
        // garbage: the proxy itself
        assert_eq!(client_addr(peer, || Some("nonsense"), &trusted), peer);
    }
}
