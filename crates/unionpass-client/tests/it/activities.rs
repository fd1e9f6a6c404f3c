//! Activities from the app against a real server: synced into the store, live counts kept with
//! their time, a sign-up whose key is stored first (a retry after a dropped connection and a
//! double tap sign up once), the waitlist, and a promotion reaching the waiting member by sync.

use chrono::{DateTime, Duration, Utc};
use unionpass_client::Client;
use unionpass_core::activity::{Activity, SignupAnswer, SignupState};
use unionpass_core::ErrorCode;
use unionpass_server::testing::{t0, TestServer};

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

fn activity() -> Activity {
    let starts_at = t0() + Duration::days(2);
    crate::activity("职工健步走", "滨江绿道", starts_at, t0(), (2, 1, 1))
}

#[tokio::test]
async fn a_sign_up_survives_a_dropped_connection_and_a_promotion_arrives_by_sync() {
    let mut server = TestServer::start().await;
    let a = server
        .store
        .create_activity(activity(), t0())
        .await
        .unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = Client::open(da.path()).unwrap();
    alice
        .login(&server.url, "M10004", "demo1234", "phone", now())
        .await
        .unwrap();
    let bob = Client::open(db.path()).unwrap();
    bob.login(&server.url, "M10005", "demo1234", "laptop", now())
        .await
        .unwrap();

    // synced at sign-in; counts unknown until fetched, then kept with their time
    let card = |app: &Client| {
        app.activities(now())
            .unwrap()
            .cards
            .into_iter()
            .find(|c| c.activity.id == a.id)
            .unwrap()
    };
    let first = card(&alice);
    assert_eq!(first.activity, a);
    assert!(first.eligible && first.mine.is_none());
    assert_eq!((first.seats_left, first.counted_at), (None, None));
    alice.refresh_activities(now()).await.unwrap();
    let counted = card(&alice);
    assert_eq!(
        (
            counted.seats_left,
            counted.waitlist_left,
            counted.counted_at
        ),
        (Some(2), Some(1), Some(now()))
    );

    // the server is unreachable: the request fails, its key stays for the retry
    server.stop().await;
    assert_eq!(
        alice.sign_up(a.id, 1, now()).await.unwrap_err().code(),
        ErrorCode::Offline
    );
    assert!(card(&alice).pending);
    server.restart().await;
    // a double tap after it: both answered with the one sign-up (the same key)
    let (x, y) = tokio::join!(alice.sign_up(a.id, 1, now()), alice.sign_up(a.id, 1, now()));
    let (x, y) = (x.unwrap(), y.unwrap());
    let state = |ans: &SignupAnswer| match ans {
        SignupAnswer::Accepted { signup, .. } => signup.state,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (state(&x), state(&y)),
        (SignupState::Confirmed, SignupState::Confirmed)
    );
    let rows = server.store.signups(a.id).await.unwrap();
    assert_eq!(rows.len(), 1, "one sign-up for two taps and a retry");
    let mine = card(&alice);
    assert!(!mine.pending);
    assert_eq!(
        mine.mine.map(|m| (m.state, m.companions)),
        Some((SignupState::Confirmed, 1))
    );

    // both seats are taken: bob waits, first in line
    match bob.sign_up(a.id, 0, now()).await.unwrap() {
        SignupAnswer::Accepted { signup, .. } => {
            assert_eq!(
                (signup.state, signup.position),
                (SignupState::Waitlisted, Some(1))
            )
        }
        other => panic!("{other:?}"),
    }
    // alice cancels: her seats go to bob, who hears it at his next sync
    let cancelled = alice.cancel_signup(a.id).await.unwrap();
    assert_eq!(cancelled.state, SignupState::Cancelled);
    assert_eq!(
        card(&alice).mine.map(|m| m.state),
        Some(SignupState::Cancelled)
    );
    bob.sync(now()).await.unwrap();
    assert_eq!(
        card(&bob).mine.map(|m| m.state),
        Some(SignupState::Promoted)
    );
    // a second cancel has nothing to cancel
    assert_eq!(
        alice.cancel_signup(a.id).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}
