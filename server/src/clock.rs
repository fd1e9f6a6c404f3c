//! The server's one source of time. Handlers read it once per request and pass `now` down.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock (the only place the server reads it).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The machine's clock shifted by a fixed amount: a server whose clock is off, for the tests that
/// show the app follows the server's time, not its own (`serve` with
/// `UNIONPASS_TEST_CLOCK_OFFSET_SECS`, honoured only with the `testing` feature).
pub struct OffsetClock(pub chrono::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// The clock `serve` runs on: the machine's, or (test builds only) the machine's shifted by
/// `UNIONPASS_TEST_CLOCK_OFFSET_SECS` seconds.
pub fn serving_clock() -> std::sync::Arc<dyn Clock> {
    #[cfg(feature = "testing")]
    if let Some(secs) = std::env::var("UNIONPASS_TEST_CLOCK_OFFSET_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        return std::sync::Arc::new(OffsetClock(chrono::Duration::seconds(secs)));
    }
    std::sync::Arc::new(SystemClock)
}

/// A clock set by hand, for tests that need a given instant (token expiry, passport renewal).
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(std::sync::Mutex::new(t))
    }

    pub fn now_utc(&self) -> DateTime<Utc> {
        Clock::now(self)
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
