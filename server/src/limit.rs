//! Token-bucket rate limits per key (a member, an address), in memory, clock passed in.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub struct Buckets {
    state: Mutex<HashMap<String, (f64, DateTime<Utc>)>>,
    /// Tokens added per second; 0 disables the limit.
    pub rate: f64,
    /// The most tokens a key can hold (the burst allowed).
    pub burst: f64,
}

impl Buckets {
    pub fn new(rate: f64, burst: f64) -> Buckets {
        Buckets {
            state: Mutex::new(HashMap::new()),
            rate,
            burst,
        }
    }

    /// Take one token for `key` at `now`; false when the key has none left.
    pub fn allow(&self, key: &str, now: DateTime<Utc>) -> bool {
        self.take(key, now).is_ok()
    }

    /// Take one token for `key` at `now`, or answer how long until the key has one again (what
    /// a refusal's `Retry-After` says).
    pub fn take(&self, key: &str, now: DateTime<Utc>) -> Result<(), chrono::Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut map = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 200_000 {
            // forget keys that are full again
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, (tokens, at)| {
                *tokens + (now - *at).num_milliseconds() as f64 / 1000.0 * rate < burst
            });
        }
        let (tokens, at) = map.entry(key.to_string()).or_insert((self.burst, now));
        let elapsed = (now - *at).num_milliseconds().max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = ((1.0 - *tokens) / self.rate * 1000.0).ceil() as i64;
            Err(chrono::Duration::milliseconds(wait_ms.max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_refusal_says_how_long_until_the_next_token() {
        let b = Buckets::new(0.5, 2.0);
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        assert_eq!(b.take("m", t0), Ok(()));
        assert_eq!(b.take("m", t0), Ok(()));
        assert_eq!(b.take("m", t0), Err(Duration::seconds(2)));
        // half a token later: one more second
        assert_eq!(
            b.take("m", t0 + Duration::seconds(1)),
            Err(Duration::seconds(1))
        );
        assert_eq!(b.take("m", t0 + Duration::seconds(2)), Ok(()));
        assert_eq!(
            Buckets::new(0.0, 0.0).take("m", t0),
            Ok(()),
            "0 turns it off"
        );
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let b = Buckets::new(2.0, 3.0);
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        assert!((0..3).all(|_| b.allow("m1", t0)));
        assert!(!b.allow("m1", t0));
        assert!(b.allow("m2", t0), "keys are independent");
        assert!(
            b.allow("m1", t0 + Duration::milliseconds(500)),
            "one token back after 0.5 s at 2/s"
        );
        assert!(!b.allow("m1", t0 + Duration::milliseconds(500)));
        assert!(
            Buckets::new(0.0, 0.0).allow("x", t0),
            "rate 0 means no limit"
        );
    }
}
