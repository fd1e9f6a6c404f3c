//! Token-bucket rate limits per key (a member, an address), in memory, clock passed in.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Keys a limiter keeps at most before it forgets the ones that are full again.
pub const SWEEP_ABOVE: usize = 200_000;

/// Buckets per member id (assigned by the server, never chosen by a client), hashed by foldhash.
pub type MemberBuckets = Buckets<i64, foldhash::fast::RandomState>;

/// `S` hashes the keys: std's SipHash unless the keys are ones a client cannot choose (a member's
/// id), which may take a cheaper one (`foldhash`).
pub struct Buckets<K = String, S = std::hash::RandomState> {
    state: Mutex<State<K, S>>,
    /// Tokens added per second; 0 disables the limit.
    pub rate: f64,
    /// The most tokens a key can hold (the burst allowed).
    pub burst: f64,
}

struct State<K, S> {
    map: HashMap<K, (f64, DateTime<Utc>), S>,
    /// When the keys that are full again were last forgotten: at most once a second, so a
    /// limiter holding many keys that are all still draining is not walked at every request.
    swept_at: Option<DateTime<Utc>>,
}

impl<K: std::hash::Hash + Eq + Clone, S: std::hash::BuildHasher + Default> Buckets<K, S> {
    pub fn new(rate: f64, burst: f64) -> Buckets<K, S> {
        Buckets {
            state: Mutex::new(State {
                map: HashMap::default(),
                swept_at: None,
            }),
            rate,
            burst,
        }
    }

    /// Take one token for `key` at `now`; false when the key has none left.
    pub fn allow(&self, key: &K, now: DateTime<Utc>) -> bool {
        self.take(key, now).is_ok()
    }

    /// Take one token for `key` at `now`, or answer how long until the key has one again (what
    /// a refusal's `Retry-After` says). Past [`SWEEP_ABOVE`] keys, the full ones are forgotten
    /// (once a second at most); past twice that, a key not yet known is refused for a second
    /// (the map stays bounded under a flood of new keys).
    pub fn take(&self, key: &K, now: DateTime<Utc>) -> Result<(), chrono::Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State { map, swept_at } = &mut *state;
        if map.len() > SWEEP_ABOVE
            && swept_at.is_none_or(|at| now - at >= chrono::Duration::seconds(1))
        {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, (tokens, at)| {
                *tokens + (now - *at).num_milliseconds() as f64 / 1000.0 * rate < burst
            });
            *swept_at = Some(now);
        }
        if map.len() >= 2 * SWEEP_ABOVE && !map.contains_key(key) {
            return Err(chrono::Duration::seconds(1));
        }
        let (tokens, at) = map.entry(key.clone()).or_insert((self.burst, now));
        let elapsed = (now - *at).num_milliseconds().max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        // never backwards: a request that read the clock earlier but came second must not make
        // the next one's refill count the same time twice
        *at = (*at).max(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = ((1.0 - *tokens) / self.rate * 1000.0).ceil() as i64;
            Err(chrono::Duration::milliseconds(wait_ms.max(1)))
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_refusal_says_how_long_until_the_next_token() {
        let b = Buckets::<String>::new(0.5, 2.0);
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        assert_eq!(b.take(&"m".to_string(), t0), Ok(()));
        assert_eq!(b.take(&"m".to_string(), t0), Ok(()));
        assert_eq!(b.take(&"m".to_string(), t0), Err(Duration::seconds(2)));
        // half a token later: one more second
        assert_eq!(
            b.take(&"m".to_string(), t0 + Duration::seconds(1)),
            Err(Duration::seconds(1))
        );
        assert_eq!(b.take(&"m".to_string(), t0 + Duration::seconds(2)), Ok(()));
        assert_eq!(
            Buckets::<String>::new(0.0, 0.0).take(&"m".to_string(), t0),
            Ok(()),
            "0 turns it off"
        );
    }

    #[test]
    fn a_request_that_read_the_clock_earlier_refills_nothing_twice() {
        let b = Buckets::<&str>::new(1.0, 2.0);
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        assert!(b.allow(&"m", t0) && b.allow(&"m", t0));
        // a request judged at an instant ten seconds back (its clock read before it was held)
        assert!(!b.allow(&"m", t0 - Duration::seconds(10)));
        // the bucket's time stayed at t0: no ten seconds of tokens for the next one
        assert!(!b.allow(&"m", t0));
        assert!(b.allow(&"m", t0 + Duration::seconds(1)));
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let b = Buckets::<&str>::new(2.0, 3.0);
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        assert!((0..3).all(|_| b.allow(&"m1", t0)));
        assert!(!b.allow(&"m1", t0));
        assert!(b.allow(&"m2", t0), "keys are independent");
        assert!(
            b.allow(&"m1", t0 + Duration::milliseconds(500)),
            "one token back after 0.5 s at 2/s"
        );
        assert!(!b.allow(&"m1", t0 + Duration::milliseconds(500)));
        assert!(
            Buckets::<&str>::new(0.0, 0.0).allow(&"x", t0),
            "rate 0 means no limit"
        );
    }

    #[test]
    fn a_flood_of_new_keys_stays_bounded_and_is_swept_once_a_second() {
        let b = Buckets::<u32>::new(1.0, 2.0);
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        // twice the sweep mark of keys, each still draining (one token taken of two)
        for k in 0..(2 * SWEEP_ABOVE) as u32 {
            assert!(b.allow(&k, t0));
        }
        assert_eq!(
            b.len(),
            2 * SWEEP_ABOVE,
            "nothing full to forget within the second"
        );
        // full: a new key is refused for a second, a known one is still judged by its tokens
        let new = 2 * SWEEP_ABOVE as u32;
        assert_eq!(b.take(&new, t0), Err(Duration::seconds(1)));
        assert!(b.allow(&7, t0), "a known key keeps its own bucket");
        assert!(!b.allow(&7, t0));
        assert_eq!(b.len(), 2 * SWEEP_ABOVE);
        // a second later every untouched key is full again and is forgotten: room again
        let t1 = t0 + Duration::seconds(1);
        assert!(b.allow(&new, t1));
        assert_eq!(b.len(), 2, "key 7 (drained) and the new one");
    }
}
