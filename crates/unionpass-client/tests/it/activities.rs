//! Activities from the app against a real server: synced into the store, live counts kept with
//! their time, a sign-up whose key is stored first (a retry after a dropped connection and a
//! double tap sign up once), the waitlist, and a promotion reaching the waiting member by sync.

use chrono::{DateTime, Duration, Utc};
use unionpass_client::Client;
use unionpass_core::activity::{Activity, SignupAnswer, SignupState};
use unionpass_core::view::ActivityCard;
use unionpass_core::ErrorCode;
use unionpass_server::testing::{t0, TestServer};

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

fn activity() -> Activity {
    let starts_at = t0() + Duration::days(2);
    crate::activity("职工健步走", "滨江绿道", starts_at, t0(), (2, 1, 1))
}

/// Member `member_no` signed in on a fresh device, with the device's folder (kept while the
/// client is used).
async fn member(server: &TestServer, member_no: &str) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = Client::open(dir.path()).unwrap();
    app.login(&server.url, member_no, "demo1234", "phone", now())
        .await
        .unwrap();
    (app, dir)
}

/// An activity taking sign-ups (two places, a waitlist of one) and two members signed in on
/// their own devices, M10004 and M10005.
async fn two_members_and_an_activity(
    server: &TestServer,
) -> (
    Activity,
    (Client, tempfile::TempDir),
    (Client, tempfile::TempDir),
) {
    let a = server
        .store
        .create_activity(activity(), t0())
        .await
        .unwrap();
    (
        a,
        member(server, "M10004").await,
        member(server, "M10005").await,
    )
}

/// Activity `id`'s card on `app`'s activities screen.
fn card_of(app: &Client, id: i64) -> ActivityCard {
    app.activities(now())
        .unwrap()
        .cards
        .into_iter()
        .find(|c| c.activity.id == id)
        .unwrap()
}

#[tokio::test]
async fn a_sign_up_survives_a_dropped_connection_and_a_promotion_arrives_by_sync() {
    let mut server = TestServer::start().await;
    let (a, (alice, _da), (bob, _db)) = two_members_and_an_activity(&server).await;

    // synced at sign-in; counts unknown until fetched, then kept with their time
    let card = |app: &Client| card_of(app, a.id);
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

/// The union moves an activity, moves it again, then cancels it: the member with a place hears
/// each once (what the background announces natively) and the card says what changed, a move
/// with the time first given; a member with no sign-up hears nothing, nor does a member's new
/// device catching up with the log (history, not news), and a member who gave up their place
/// is no longer told.
#[tokio::test]
async fn a_member_with_a_place_is_told_when_the_union_moves_or_cancels_it() {
    use unionpass_client::background::{Notification, Opens};
    use unionpass_core::activity::ChangeNotice;
    use unionpass_core::i18n::Lang;
    use unionpass_server::store::ActivityChange;
    let server = TestServer::start().await;
    let (a, (alice, _da), (bob, _db)) = two_members_and_an_activity(&server).await;
    alice.sign_up(a.id, 0, now()).await.unwrap();
    let card = |app: &Client| card_of(app, a.id);
    let moved = ChangeNotice::Moved {
        was_starts_at: a.starts_at,
        was_ends_at: a.ends_at,
    };
    let (id, starts_at, ends_at) = (a.id, a.starts_at, a.ends_at);
    let move_to = |days: i64| {
        let store = server.store.clone();
        async move {
            let to = ActivityChange::Move {
                starts_at: starts_at + Duration::days(days),
                ends_at: ends_at + Duration::days(days),
            };
            store.change_activity(id, to, now()).await.unwrap();
        }
    };

    move_to(1).await;
    alice.sync(now()).await.unwrap();
    bob.sync(now()).await.unwrap();
    let told = alice.take_activity_notices(now()).unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!(
        (told[0].0.starts_at, told[0].1),
        (a.starts_at + Duration::days(1), moved)
    );
    let note = Notification::for_activity_change(&told[0].0, told[0].1, Lang::ZhCn);
    assert_eq!(note.opens, Opens::Activity(a.id));
    assert_eq!(note.title, "活动改期：职工健步走");
    // the new time and the old one, each start to end
    assert!(note.body.contains("滨江绿道"), "{}", note.body);
    assert!(note.body.contains("（原定 "), "{}", note.body);
    assert_eq!(note.body.matches('–').count(), 2, "{}", note.body);
    assert!(
        alice.take_activity_notices(now()).unwrap().is_empty(),
        "once"
    );
    assert_eq!(card(&alice).change, Some(moved));
    assert!(bob.take_activity_notices(now()).unwrap().is_empty());
    assert_eq!(card(&bob).change, None);

    // moved again after the member was told: news from the time they were told of; and back
    // again: told that too
    let was = |days: i64| ChangeNotice::Moved {
        was_starts_at: a.starts_at + Duration::days(days),
        was_ends_at: a.ends_at + Duration::days(days),
    };
    let starts_of = |told: Vec<(Activity, ChangeNotice)>| {
        told.into_iter()
            .map(|(a, n)| (a.starts_at, n))
            .collect::<Vec<_>>()
    };
    move_to(2).await;
    alice.sync(now()).await.unwrap();
    assert_eq!(
        starts_of(alice.take_activity_notices(now()).unwrap()),
        vec![(a.starts_at + Duration::days(2), was(1))]
    );
    move_to(0).await;
    alice.sync(now()).await.unwrap();
    assert_eq!(
        starts_of(alice.take_activity_notices(now()).unwrap()),
        vec![(a.starts_at, was(2))]
    );
    // moved twice before the member syncs: one notice, with the time first given; moved away
    // and back before they sync: nothing to tell, the time is the one they know
    move_to(1).await;
    move_to(3).await;
    alice.sync(now()).await.unwrap();
    assert_eq!(
        starts_of(alice.take_activity_notices(now()).unwrap()),
        vec![(a.starts_at + Duration::days(3), moved)]
    );
    move_to(1).await;
    move_to(3).await;
    alice.sync(now()).await.unwrap();
    assert!(alice.take_activity_notices(now()).unwrap().is_empty());
    assert_eq!(card(&alice).change, None);

    // the member's new phone catches up with the whole log: the moves are history there
    let (phone, _dp) = member(&server, "M10004").await;
    assert!(phone.take_activity_notices(now()).unwrap().is_empty());
    assert_eq!(card(&phone).change, None);

    // cancelled: told, in English too
    server
        .store
        .change_activity(a.id, ActivityChange::Cancel, now())
        .await
        .unwrap();
    alice.sync(now()).await.unwrap();
    bob.sync(now()).await.unwrap();
    let told = alice.take_activity_notices(now()).unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].1, ChangeNotice::Cancelled);
    let note = Notification::for_activity_change(&told[0].0, told[0].1, Lang::En);
    assert_eq!(note.title, "Cancelled: 职工健步走");
    assert_eq!(card(&alice).change, Some(ChangeNotice::Cancelled));
    assert!(bob.take_activity_notices(now()).unwrap().is_empty());

    // the union moves an activity, then the member gives up their place on another device: the
    // two arrive in one sync, and the member is not told of a move that is no longer theirs
    let b = placed_then_moved(&server, &bob).await;
    let (other, _do) = member(&server, "M10005").await;
    other.cancel_signup(b.id).await.unwrap();
    bob.sync(now()).await.unwrap();
    assert!(bob.take_activity_notices(now()).unwrap().is_empty());
    assert_eq!(card_of(&bob, b.id).change, None);

    // and giving up the place on this device clears the card's note at once
    let c = placed_then_moved(&server, &bob).await;
    bob.sync(now()).await.unwrap();
    assert!(card_of(&bob, c.id).change.is_some());
    bob.cancel_signup(c.id).await.unwrap();
    assert_eq!(card_of(&bob, c.id).change, None);
}

/// A new activity that `app`'s member takes a place at (synced, then signed up), which the union
/// then moves a day later.
async fn placed_then_moved(server: &TestServer, app: &Client) -> Activity {
    use unionpass_server::store::ActivityChange;
    let a = server
        .store
        .create_activity(activity(), t0())
        .await
        .unwrap();
    app.sync(now()).await.unwrap();
    app.sign_up(a.id, 0, now()).await.unwrap();
    let to = ActivityChange::Move {
        starts_at: a.starts_at + Duration::days(1),
        ends_at: a.ends_at + Duration::days(1),
    };
    server.store.change_activity(a.id, to, now()).await.unwrap();
    a
}

/// A member second in line sees themselves move up to first when the one ahead leaves the
/// waitlist: the place comes with the counts, when the activities are fetched.
#[tokio::test]
async fn the_place_on_the_waitlist_moves_up_when_the_one_ahead_leaves() {
    let server = TestServer::start().await;
    let starts_at = t0() + Duration::days(2);
    let a = server
        .store
        .create_activity(
            crate::activity("插花课", "文化宫", starts_at, t0(), (1, 2, 0)),
            t0(),
        )
        .await
        .unwrap();
    let mut apps = Vec::new();
    for no in ["M10004", "M10005", "M10006"] {
        let (app, dir) = member(&server, no).await;
        app.sign_up(a.id, 0, now()).await.unwrap();
        apps.push((app, dir));
    }
    let apps: Vec<&Client> = apps.iter().map(|(app, _)| app).collect();
    let place = |app: &Client| card_of(app, a.id).mine.map(|m| (m.state, m.position));
    assert_eq!(place(apps[2]), Some((SignupState::Waitlisted, Some(2))));
    // the first in line gives up their place on the waitlist
    apps[1].cancel_signup(a.id).await.unwrap();
    apps[2].refresh_activities(now()).await.unwrap();
    assert_eq!(place(apps[2]), Some((SignupState::Waitlisted, Some(1))));
    // the seat holder's own card has no place to change
    apps[0].refresh_activities(now()).await.unwrap();
    assert_eq!(place(apps[0]), Some((SignupState::Confirmed, None)));
}

/// After two no-shows the app says, before the member asks, until when popular activities are
/// closed to them: the server tells it with the counts, and it is kept with them.
#[tokio::test]
async fn the_app_knows_a_no_show_ban_before_the_member_asks() {
    let server = TestServer::start().await;
    let mut missed = Vec::new();
    for day in [2, 9] {
        let a = crate::activity(
            "读书会",
            "图书馆",
            t0() + Duration::days(day),
            t0(),
            (5, 0, 0),
        );
        missed.push(server.store.create_activity(a, t0()).await.unwrap());
    }
    let mut popular = crate::activity(
        "演唱会",
        "体育馆",
        t0() + Duration::days(30),
        t0(),
        (5, 0, 0),
    );
    popular.signup.as_mut().unwrap().popular = true;
    let popular = server.store.create_activity(popular, t0()).await.unwrap();
    let (alice, _da) = member(&server, "M10004").await;
    for a in &missed {
        alice.sign_up(a.id, 0, now()).await.unwrap();
    }
    alice.refresh_activities(now()).await.unwrap();
    assert_eq!(alice.activities(now()).unwrap().ban_until, None);
    // a day after the second activity ended, neither attended
    let later = missed[1].ends_at + Duration::days(1);
    server.clock.set(later);
    alice.refresh_activities(later).await.unwrap();
    let until = missed[1].ends_at + Duration::days(30);
    assert_eq!(alice.activities(later).unwrap().ban_until, Some(until));
    // the server refuses the same, saying until when
    match alice.sign_up(popular.id, 0, later).await.unwrap() {
        SignupAnswer::Refused { refusal } => {
            assert_eq!(
                (refusal.code, refusal.until),
                (ErrorCode::NoShowBanned, Some(until))
            )
        }
        other => panic!("{other:?}"),
    }
    // once it has run out, the next count says so
    server.clock.set(until + Duration::minutes(1));
    alice.refresh_activities(until).await.unwrap();
    assert_eq!(alice.activities(until).unwrap().ban_until, None);
}
