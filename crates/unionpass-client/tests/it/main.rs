//! The client library's integration tests, one binary: real SQLite files, the OS keyring (a
//! private one under `cargo xtask test`), and a real union server over HTTP on 127.0.0.1.

mod activities;
mod background;
mod crash;
mod demo;
mod device;
mod grab;
mod points;
mod reminders;
mod scanner;
mod upgrade;
mod wallet;

/// An activity that takes sign-ups, for the stories: `seats` places, a waitlist of `waitlist`,
/// up to `companions` each, two hours long; sign-up from `opens_at` until the start, cancelling
/// too.
pub fn activity(
    title: &str,
    place: &str,
    starts_at: chrono::DateTime<chrono::Utc>,
    opens_at: chrono::DateTime<chrono::Utc>,
    (seats, waitlist, companions): (i64, i64, i64),
) -> unionpass_core::activity::Activity {
    use unionpass_core::activity::{Activity, ActivityCategory, SignupRules};
    Activity {
        id: 0,
        title_zh: title.into(),
        title_en: title.into(),
        description_zh: String::new(),
        description_en: String::new(),
        category: ActivityCategory::Other,
        place: place.into(),
        place_en: String::new(),
        starts_at,
        ends_at: starts_at + chrono::Duration::hours(2),
        union_id: None,
        points: 0,
        signup: Some(SignupRules {
            opens_at,
            closes_at: starts_at,
            seats,
            waitlist,
            max_companions: companions,
            cancel_until: starts_at,
            popular: false,
        }),
        cancelled_at: None,
    }
}
