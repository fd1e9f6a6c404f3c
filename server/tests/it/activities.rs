//! The activity story: the sign-up window, seats with companions, the waitlist in the order
//! received, promotion on cancel (strictly in order), the cancel deadline, eligibility, a
//! cancelled activity, walk-ins, the no-show ban, idempotent retries, a crowd at the opening.
//! Every story runs against each storage backend, over real HTTP.

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use reqwest::StatusCode;
use unionpass_core::activity::{
    Activity, ActivityCategory, MySignup, SignupAnswer, SignupRules, SignupState,
};
use unionpass_core::api::ChangeKind;
use unionpass_core::ErrorCode;
use unionpass_server::store::{ActivityChange, StoreError};
use uuid::Uuid;

use crate::util::{synced, t0, TestServer};

pub(crate) fn activity(seats: i64, waitlist: i64, companions: i64) -> Activity {
    let starts_at = t0() + Duration::days(3);
    Activity {
        id: 0,
        title_zh: "亲子手工日".into(),
        title_en: "Family craft day".into(),
        description_zh: "带孩子一起做手工".into(),
        description_en: "Crafts with the children".into(),
        category: ActivityCategory::Family,
        place: "职工之家".into(),
        place_en: "Workers' Home".into(),
        starts_at,
        ends_at: starts_at + Duration::hours(3),
        union_id: None,
        points: 50,
        signup: Some(SignupRules {
            opens_at: t0() + Duration::minutes(10),
            closes_at: t0() + Duration::days(2),
            seats,
            waitlist,
            max_companions: companions,
            cancel_until: t0() + Duration::days(2),
            popular: false,
        }),
        cancelled_at: None,
    }
}

/// An activity that takes sign-ups starting at `starts_at` for two hours: sign-up open from
/// t0 until the start, cancelling too.
fn activity_at(starts_at: DateTime<Utc>, seats: i64, waitlist: i64, companions: i64) -> Activity {
    let mut a = activity(seats, waitlist, companions);
    a.starts_at = starts_at;
    a.ends_at = starts_at + Duration::hours(2);
    let r = a.signup.as_mut().unwrap();
    r.opens_at = t0();
    r.closes_at = starts_at;
    r.cancel_until = starts_at;
    a
}

async fn create(s: &TestServer, a: Activity) -> Activity {
    s.store.create_activity(a, s.clock.now_utc()).await.unwrap()
}

/// Sign up over HTTP: the status and the body.
pub(crate) async fn sign_up_raw(
    s: &TestServer,
    token: &str,
    id: i64,
    key: Uuid,
    companions: i64,
) -> (StatusCode, serde_json::Value) {
    let resp = s
        .http
        .post(s.at(&format!("/v1/activities/{id}/signup")))
        .bearer_auth(token)
        .json(&serde_json::json!({ "key": key, "companions": companions }))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

pub(crate) async fn sign_up(
    s: &TestServer,
    token: &str,
    id: i64,
    key: Uuid,
    companions: i64,
) -> SignupAnswer {
    let (status, body) = sign_up_raw(s, token, id, key, companions).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

/// An activity's counters as the store holds them: seats taken, members waiting.
pub(crate) async fn counters(s: &TestServer, id: i64) -> (i64, i64) {
    let live = s
        .store
        .activities()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.activity.id == id)
        .unwrap();
    (live.seats_taken, live.waiting)
}

/// The job the server makes of a sign-up request with `token` now, to ask the store's memo
/// directly whether it would answer it without the store.
async fn job_of(
    s: &TestServer,
    token: &str,
    activity_id: i64,
    key: Uuid,
    companions: i64,
) -> unionpass_server::store::SignupJob {
    let now = s.clock.now_utc();
    let hash = unionpass_server::auth::token_hash(token);
    let who = s.store.session_member(&hash, now).await.unwrap().unwrap();
    unionpass_server::store::SignupJob {
        member_id: who.member_id,
        union_id: who.union_id,
        activity_id,
        key,
        companions,
        now,
        no_show: Default::default(),
        session: Some(hash),
    }
}

fn accepted(a: &SignupAnswer) -> &MySignup {
    match a {
        SignupAnswer::Accepted { signup, .. } => signup,
        other => panic!("refused: {other:?}"),
    }
}

fn refused(a: &SignupAnswer) -> (ErrorCode, Option<DateTime<Utc>>) {
    match a {
        SignupAnswer::Refused { refusal } => (refusal.code, refusal.until),
        other => panic!("accepted: {other:?}"),
    }
}

async fn cancel(s: &TestServer, token: &str, id: i64) -> (StatusCode, serde_json::Value) {
    let resp = s
        .http
        .post(s.at(&format!("/v1/activities/{id}/cancel")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn sign_up_window_seats_companions_and_the_waitlist_in_order(s: TestServer) {
    let a = create(&s, activity(4, 2, 2)).await;
    let [m1, m2, m3, m4, m5, m6] = {
        let mut t = Vec::new();
        for no in ["M10001", "M10002", "M10003", "M10004", "M10005", "M10006"] {
            t.push(s.login(no).await);
        }
        <[String; 6]>::try_from(t).unwrap()
    };
    let rules = a.signup.clone().unwrap();

    // before the opening instant: refused, with when it opens
    let k1 = Uuid::new_v4();
    assert_eq!(
        refused(&sign_up(&s, &m1, a.id, k1, 1).await),
        (ErrorCode::SignupNotOpen, Some(rules.opens_at))
    );

    s.clock.set(rules.opens_at);
    // m1 and a companion: 2 of 4 seats
    let first = sign_up(&s, &m1, a.id, k1, 1).await;
    assert_eq!(accepted(&first).state, SignupState::Confirmed);
    // m2 with two companions needs 3: only 2 left, so the waitlist's first place
    let w2 = sign_up(&s, &m2, a.id, Uuid::new_v4(), 2).await;
    assert_eq!(
        (accepted(&w2).state, accepted(&w2).position),
        (SignupState::Waitlisted, Some(1))
    );
    assert_eq!(
        accepted(&sign_up(&s, &m3, a.id, Uuid::new_v4(), 0).await).state,
        SignupState::Confirmed
    );
    assert_eq!(
        refused(&sign_up(&s, &m4, a.id, Uuid::new_v4(), 3).await).0,
        ErrorCode::TooManyCompanions
    );
    assert_eq!(
        accepted(&sign_up(&s, &m4, a.id, Uuid::new_v4(), 0).await).state,
        SignupState::Confirmed,
        "the fourth seat"
    );
    let w5 = sign_up(&s, &m5, a.id, Uuid::new_v4(), 0).await;
    assert_eq!(
        (accepted(&w5).state, accepted(&w5).position),
        (SignupState::Waitlisted, Some(2))
    );
    assert_eq!(
        refused(&sign_up(&s, &m6, a.id, Uuid::new_v4(), 0).await).0,
        ErrorCode::SignupFull
    );
    // the live counts members fetch: 4 seats taken, 2 waiting
    let live: Vec<unionpass_core::activity::ActivityLive> = s
        .http
        .get(s.at("/v1/activities"))
        .bearer_auth(&m6)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let this = live.iter().find(|l| l.activity.id == a.id).unwrap();
    assert_eq!((this.seats_taken, this.waiting), (4, 2));
    assert_eq!(this.activity, a);
    // and each member's own place on the waitlist, for those who wait
    async fn my_place(s: &TestServer, token: &str, id: i64) -> Option<i64> {
        let all: Vec<unionpass_core::activity::ActivityLive> =
            s.get_json("/v1/activities", Some(token)).await;
        all.into_iter()
            .find(|l| l.activity.id == id)
            .unwrap()
            .my_position
    }
    assert_eq!(this.my_position, None, "m6 is not waiting");
    assert_eq!(my_place(&s, &m2, a.id).await, Some(1));
    assert_eq!(my_place(&s, &m5, a.id).await, Some(2));
    assert_eq!(my_place(&s, &m1, a.id).await, None, "m1 has a seat");

    // the same key again: the same sign-up, replayed; with other contents: 409
    match sign_up(&s, &m1, a.id, k1, 1).await {
        SignupAnswer::Accepted { signup, replayed } => {
            assert!(replayed);
            assert_eq!(signup, *accepted(&first));
        }
        other => panic!("{other:?}"),
    }
    let (status, body) = sign_up_raw(&s, &m1, a.id, k1, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    // a second sign-up under a new key is refused: one per member
    assert_eq!(
        refused(&sign_up(&s, &m1, a.id, Uuid::new_v4(), 0).await).0,
        ErrorCode::AlreadySignedUp
    );

    // m3 cancels: one seat is free, but the head (m2) needs 3; nobody jumps ahead of m2
    s.clock.set(rules.opens_at + Duration::hours(1));
    let (status, body) = cancel(&s, &m3, a.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
    let list = s.store.signups(a.id).await.unwrap();
    let state_of = |no: &str| {
        list.iter()
            .find(|r| r.member_no == no)
            .map(|r| r.state)
            .unwrap()
    };
    assert_eq!(state_of("M10002"), SignupState::Waitlisted);
    assert_eq!(state_of("M10005"), SignupState::Waitlisted);
    // m1 cancels too (2 seats): 3 free, m2 and companions take them; m5 is next, now first
    assert_eq!(cancel(&s, &m1, a.id).await.0, StatusCode::OK);
    let list = s.store.signups(a.id).await.unwrap();
    let states: Vec<(&str, SignupState)> = list
        .iter()
        .map(|r| (r.member_no.as_str(), r.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("M10001", SignupState::Cancelled),
            ("M10002", SignupState::Promoted),
            ("M10003", SignupState::Cancelled),
            ("M10004", SignupState::Confirmed),
            ("M10005", SignupState::Waitlisted),
        ],
        "in the order received"
    );
    assert!(list.windows(2).all(|w| w[0].seq < w[1].seq));
    // m5 moved up to first in line, and is told so when the counts are fetched
    assert_eq!(my_place(&s, &m5, a.id).await, Some(1));
    assert_eq!(my_place(&s, &m2, a.id).await, None, "m2 has seats now");
    // the promoted member hears it by sync: their last sign-up change says promoted
    let theirs: Vec<MySignup> = synced(&s, &m2)
        .await
        .changes
        .into_iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Signup(x) => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(
        theirs.iter().map(|x| x.state).collect::<Vec<_>>(),
        vec![SignupState::Waitlisted, SignupState::Promoted]
    );
    // and the waitlist's new head sees place 1 when they sign up again... no: they are still on it
    assert_eq!(
        refused(&sign_up(&s, &m5, a.id, Uuid::new_v4(), 0).await).0,
        ErrorCode::AlreadySignedUp
    );
    // m1 may sign up again after cancelling: the seat is back (m2 took 3, m4 has 1: full), so
    // the waitlist, behind m5
    let again = sign_up(&s, &m1, a.id, Uuid::new_v4(), 0).await;
    assert_eq!(
        (accepted(&again).state, accepted(&again).position),
        (SignupState::Waitlisted, Some(2))
    );

    // past the deadline nobody cancels; nothing without a sign-up either
    s.clock.set(rules.cancel_until);
    let (status, body) = cancel(&s, &m4, a.id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("cancel_too_late"))
    );
    assert_eq!(cancel(&s, &m6, a.id).await.0, StatusCode::NOT_FOUND);
    // and sign-up has closed
    assert_eq!(
        refused(&sign_up(&s, &m6, a.id, Uuid::new_v4(), 0).await).0,
        ErrorCode::SignupClosed
    );
}

async fn eligibility_a_cancelled_activity_and_walk_ins(s: TestServer) {
    let member = s.login("M10001").await;
    let own_union = synced(&s, &member).await.profile.union.id;
    let other = s.login("M10020").await;
    let mut only_ours = activity(10, 0, 0);
    only_ours.union_id = Some(own_union);
    let ours = create(&s, only_ours).await;
    s.clock.set(t0() + Duration::minutes(10));
    assert_eq!(
        refused(&sign_up(&s, &other, ours.id, Uuid::new_v4(), 0).await).0,
        ErrorCode::NotEligible
    );
    assert_eq!(
        accepted(&sign_up(&s, &member, ours.id, Uuid::new_v4(), 0).await).state,
        SignupState::Confirmed
    );

    // the union cancels it: members receive the activity, cancelled; sign-ups are refused
    let cancelled = s
        .store
        .change_activity(ours.id, ActivityChange::Cancel, s.clock.now_utc())
        .await
        .unwrap();
    assert!(cancelled.cancelled_at.is_some());
    let seen: Vec<Activity> = synced(&s, &other)
        .await
        .changes
        .into_iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Activity(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(seen.len(), 2, "published, then cancelled");
    assert_eq!(seen[1].cancelled_at, cancelled.cancelled_at);
    assert_eq!(
        refused(&sign_up(&s, &s.login("M10002").await, ours.id, Uuid::new_v4(), 0).await).0,
        ErrorCode::ActivityCancelled
    );

    // moving one reaches members with its new time
    let moved_to = t0() + Duration::days(5);
    let before = create(&s, activity(5, 0, 0)).await;
    let moved = s
        .store
        .change_activity(
            before.id,
            ActivityChange::Move {
                starts_at: moved_to,
                ends_at: moved_to + Duration::hours(2),
            },
            s.clock.now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(moved.starts_at, moved_to);
    // its cancellation deadline moved with it: as long before the new start as before the old
    let deadline = |a: &Activity| a.signup.as_ref().unwrap().cancel_until;
    assert_eq!(
        moved.starts_at - deadline(&moved),
        before.starts_at - deadline(&before)
    );
    assert!(deadline(&moved) > deadline(&before));
    let last = synced(&s, &member)
        .await
        .changes
        .into_iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Activity(a) if a.id == moved.id => Some(a),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert_eq!(last.starts_at, moved_to);

    // a walk-in activity takes no sign-up; an unknown one is 404
    let mut walk_in = activity(1, 0, 0);
    walk_in.signup = None;
    let walk_in = create(&s, walk_in).await;
    let (status, body) = sign_up_raw(&s, &member, walk_in.id, Uuid::new_v4(), 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, _) = sign_up_raw(&s, &member, 999_999, Uuid::new_v4(), 0).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // an activity whose times do not hold together is refused by the store
    let mut backwards = activity(1, 0, 0);
    backwards.ends_at = backwards.starts_at;
    assert!(matches!(
        s.store.create_activity(backwards, t0()).await,
        Err(unionpass_server::store::StoreError::Refused(
            ErrorCode::BadRequest
        ))
    ));
}

async fn no_shows_close_popular_activities_until_the_ban_ends(s: TestServer) {
    let member = s.login("M10003").await;
    // two activities the member signs up for and does not come to
    let mut missed = Vec::new();
    for day in [1, 8] {
        let a = activity_at(t0() + Duration::days(day), 10, 0, 0);
        missed.push(create(&s, a).await);
    }
    for a in &missed {
        assert_eq!(
            accepted(&sign_up(&s, &member, a.id, Uuid::new_v4(), 0).await).state,
            SignupState::Confirmed
        );
    }
    // a popular activity and an ordinary one, open after both have ended
    let later = |popular: bool| {
        let mut a = activity_at(t0() + Duration::days(20), 10, 0, 0);
        let r = a.signup.as_mut().unwrap();
        r.popular = popular;
        a
    };
    let popular = create(&s, later(true)).await;
    let ordinary = create(&s, later(false)).await;
    let now = missed[1].ends_at + Duration::days(1);
    s.clock.set(now);
    // two misses within 90 days: popular activities close for 30 days after the last one
    assert_eq!(
        refused(&sign_up(&s, &member, popular.id, Uuid::new_v4(), 0).await),
        (
            ErrorCode::NoShowBanned,
            Some(missed[1].ends_at + Duration::days(30))
        )
    );
    // the app is told before the member asks: the popular one carries the ban's end when the
    // counts are fetched, the ordinary one nothing, and a member with no misses nothing
    let ban = |token: String| {
        let s = &s;
        async move {
            let all: Vec<unionpass_core::activity::ActivityLive> =
                s.get_json("/v1/activities", Some(&token)).await;
            let of = |id: i64| {
                all.iter()
                    .find(|l| l.activity.id == id)
                    .unwrap()
                    .my_ban_until
            };
            (of(popular.id), of(ordinary.id))
        }
    };
    assert_eq!(
        ban(member.clone()).await,
        (Some(missed[1].ends_at + Duration::days(30)), None)
    );
    assert_eq!(ban(s.login("M10005").await).await, (None, None));
    assert_eq!(
        accepted(&sign_up(&s, &member, ordinary.id, Uuid::new_v4(), 0).await).state,
        SignupState::Confirmed
    );
    // another member with no misses signs up for the popular one
    assert_eq!(
        accepted(&sign_up(&s, &s.login("M10004").await, popular.id, Uuid::new_v4(), 0).await).state,
        SignupState::Confirmed
    );
}

async fn a_crowd_at_the_opening_never_overfills_and_keeps_the_order(s: TestServer) {
    let mut a = activity(7, 5, 1);
    a.signup.as_mut().unwrap().opens_at = t0();
    let a = create(&s, a).await;
    let mut tokens = Vec::new();
    for i in 1..=20 {
        tokens.push(s.login(&format!("M1{i:04}")).await);
    }
    // all at once, every third with a companion, each sent twice under the same key (a retry)
    let keys: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    let answers = join_all((0..40).map(|n| {
        let i = n % 20;
        let (s, t, k) = (&s, &tokens[i], keys[i]);
        async move { (i, sign_up(s, t, a.id, k, i64::from(i % 3 == 0)).await) }
    }))
    .await;
    let list = s.store.signups(a.id).await.unwrap();
    let seats: i64 = list
        .iter()
        .filter(|r| r.state.has_seats())
        .map(|r| 1 + r.companions)
        .sum();
    // never more than the 7 seats, and never fewer: 13 members come alone, and one alone is
    // waitlisted only when no seat is left
    assert_eq!(seats, 7, "{seats} seats for 7");
    assert_eq!(
        counters(&s, a.id).await,
        (7, 5),
        "the counters agree with the rows"
    );
    let waiting: Vec<_> = list
        .iter()
        .filter(|r| r.state == SignupState::Waitlisted)
        .collect();
    assert_eq!(waiting.len(), 5, "the waitlist fills");
    let mut members: Vec<&str> = list.iter().map(|r| r.member_no.as_str()).collect();
    members.sort();
    members.dedup();
    assert_eq!(members.len(), list.len(), "one sign-up per member");
    // both answers under one key agree (the second replays the first, or both were refused)
    let answers_of = |i: usize| -> Vec<&SignupAnswer> {
        answers
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, x)| x)
            .collect()
    };
    for i in 0..20 {
        let states: Vec<Option<SignupState>> = answers_of(i)
            .iter()
            .map(|x| match x {
                SignupAnswer::Accepted { signup, .. } => Some(signup.state),
                SignupAnswer::Refused { refusal } => {
                    assert_eq!(refusal.code, ErrorCode::SignupFull);
                    None
                }
            })
            .collect();
        assert_eq!(states[0], states[1], "member {i}");
        // an accepted key is accepted once: the other answer says it replays that one
        let replays = answers_of(i)
            .iter()
            .filter(|x| matches!(x, SignupAnswer::Accepted { replayed: true, .. }))
            .count();
        let expected = usize::from(states[0].is_some());
        assert_eq!(replays, expected, "member {i}: {:?}", answers_of(i));
    }
    assert_eq!(
        answers
            .iter()
            .filter(|(_, x)| matches!(
                x,
                SignupAnswer::Accepted {
                    replayed: false,
                    ..
                }
            ))
            .count(),
        list.len(),
        "one first acceptance per sign-up recorded"
    );
    // each waitlisted member was told the place that is their rank in the order recorded
    for (rank, r) in waiting.iter().enumerate() {
        let i: usize = r.member_no[1..].parse::<usize>().unwrap() - 10_001;
        for x in answers_of(i) {
            assert_eq!(
                accepted(x).position,
                Some(rank as i64 + 1),
                "{}: told {:?}",
                r.member_no,
                accepted(x).position
            );
        }
    }
}

/// At the door of an activity that takes sign-ups: the scanner bundle carries who has a place
/// (with companions) and who waits; the server records a check-in only for a member with a
/// place, and refuses the others with their reason, whatever the scanner says.
async fn the_door_admits_those_with_a_place_and_says_why_not(s: TestServer) {
    use crate::util::{check_in, push, Holder};
    let a = activity_at(t0() + Duration::hours(2), 2, 2, 2);
    let a = create(&s, a).await;
    let (placed, waiting, stranger) = (
        Holder::of(&s, "M10001").await,
        Holder::of(&s, "M10002").await,
        Holder::of(&s, "M10003").await,
    );
    assert_eq!(
        accepted(&sign_up(&s, &placed.token, a.id, Uuid::new_v4(), 1).await).state,
        SignupState::Confirmed
    );
    assert_eq!(
        accepted(&sign_up(&s, &waiting.token, a.id, Uuid::new_v4(), 0).await).state,
        SignupState::Waitlisted
    );
    let staff = s.login("S20001").await;
    let bundle: unionpass_core::checkin::ScannerBundle =
        s.get_json("/v1/scanner", Some(&staff)).await;
    assert!(bundle.signup_events.contains(&a.id));
    // the event carries both titles and both places, for staff who read English
    let event = bundle.events.iter().find(|e| e.id == a.id).unwrap();
    assert_eq!(
        (event.title.as_str(), event.title_en.as_deref()),
        (a.title_zh.as_str(), Some(a.title_en.as_str()))
    );
    assert_eq!(
        (event.place.as_str(), event.place_en.as_deref()),
        ("职工之家", Some("Workers' Home"))
    );
    let door: Vec<(i64, i64, bool)> = bundle
        .signups
        .iter()
        .filter(|d| d.event_id == a.id)
        .map(|d| (d.member_id, d.companions, d.waitlisted))
        .collect();
    assert_eq!(
        door,
        vec![(placed.member_id, 1, false), (waiting.member_id, 0, true)]
    );

    let at = a.starts_at + Duration::minutes(10);
    s.clock.set(at);
    let scanner = Uuid::new_v4();
    let mut outcomes = Vec::new();
    for h in [&placed, &waiting, &stranger] {
        let (_, m) = check_in(a.id, h, scanner, Uuid::new_v4(), at);
        let r = push(&s, &staff, serde_json::json!([m])).await;
        outcomes.push(match &r.results[0].outcome {
            unionpass_core::api::MutationOutcome::Rejected { code, .. } => Some(*code),
            _ => None,
        });
    }
    assert_eq!(
        outcomes,
        vec![
            None,
            Some(ErrorCode::StillWaitlisted),
            Some(ErrorCode::NotSignedUp)
        ]
    );
    let list = s.store.signups(a.id).await.unwrap();
    assert!(list.iter().any(|r| r.member_no == "M10001" && r.checked_in));
    assert!(list
        .iter()
        .all(|r| r.member_no == "M10001" || !r.checked_in));
}

/// The demo's activities show every state: an opening two minutes away, a full one with a
/// waitlist, one today with M10001's place, a walk-in, yesterday's that M10001 came to (waiting
/// for feedback), and an open needs poll; seeding again adds nothing.
async fn the_demo_has_activities_in_every_state(s: TestServer) {
    // seeded at 01:00 in Shanghai, when an activity a day or more away must not start at its hour
    let now = s.clock.now_utc() + Duration::hours(9);
    unionpass_server::seed::seed_demo_activities(s.store.as_ref(), now)
        .await
        .unwrap();
    unionpass_server::seed::seed_demo_activities(s.store.as_ref(), now)
        .await
        .unwrap();
    let all = s.store.activities().await.unwrap();
    assert_eq!(all.len(), 6);
    // two that ended within the week the app lists: M10001 came to one and missed the other
    let mut past = Vec::new();
    let mut attended = None;
    for l in all.iter().filter(|l| l.activity.ends_at < now) {
        assert!(now - l.activity.ends_at < Duration::days(7), "recent");
        let rows = s.store.signups(l.activity.id).await.unwrap();
        assert!(s.store.feedback(l.activity.id).await.unwrap().is_empty());
        if rows.iter().any(|r| r.checked_in) {
            attended = Some(l.activity.id);
        }
        past.push(
            rows.iter()
                .map(|r| (r.member_no.clone(), r.state, r.checked_in))
                .collect::<Vec<_>>(),
        );
    }
    let m = |came| vec![("M10001".to_string(), SignupState::Confirmed, came)];
    assert_eq!(
        past,
        vec![m(false), m(true)],
        "the art show, then the training"
    );
    // the check-in earned the training's points, credited in the audit log to the staff
    // member who scanned it (the demo's second staff account)
    let audit = s.store.audit_log(20).await.unwrap();
    let staff = s
        .store
        .member_auth("S20002")
        .await
        .unwrap()
        .unwrap()
        .member_id;
    assert!(
        audit.iter().any(|r| r["event"] == attended.unwrap()
            && r["member"].is_i64()
            && r["staff"] == staff
            && r["points"] == 60),
        "{audit:?}"
    );
    let polls = s.store.polls().await.unwrap();
    assert_eq!(polls.len(), 1);
    assert!(polls[0].closes_at > now && polls[0].options.len() >= 3);
    let opening = all
        .iter()
        .find(|l| l.activity.signup.as_ref().is_some_and(|r| r.opens_at > now))
        .unwrap();
    assert_eq!(
        opening.activity.signup.as_ref().unwrap().opens_at,
        now + Duration::minutes(2)
    );
    let full = all
        .iter()
        .find(|l| l.activity.category == ActivityCategory::Family)
        .unwrap();
    assert_eq!((full.seats_taken, full.waiting), (4, 2));
    assert!(all.iter().any(|l| l.activity.signup.is_none()), "a walk-in");
    let talk = all
        .iter()
        .find(|l| l.activity.category == ActivityCategory::Health)
        .unwrap();
    let list = s.store.signups(talk.activity.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].member_no.as_str(), list[0].state),
        ("M10001", SignupState::Confirmed)
    );
    assert!(talk.activity.starts_at > now && talk.activity.starts_at - now <= Duration::hours(3));
    // on other days, at an hour such activities start at in Shanghai (at other hours of seeding:
    // `seed::demo_day_at`'s own test)
    let shanghai = unionpass_core::time::Zone::AsiaShanghai.offset();
    for l in &all {
        let local = l.activity.starts_at.with_timezone(&shanghai);
        if local.date_naive() != now.with_timezone(&shanghai).date_naive() {
            assert!(
                (8..=18).contains(&chrono::Timelike::hour(&local)),
                "{} at {local}",
                l.activity.title_en
            );
        }
    }
}

/// After the activity: feedback only from a member who checked in, once it has ended, rating
/// 1–5, changeable for a week, and the member's other devices learn of it (and of the
/// attendance) by sync.
async fn feedback_comes_from_those_who_came_and_can_be_changed_for_a_week(s: TestServer) {
    use crate::util::{check_in, push, Holder};
    use unionpass_core::activity::Feedback;
    use unionpass_core::api::MutationOutcome;
    let mut a = activity(10, 0, 0);
    a.signup = None;
    a.starts_at = t0() + Duration::hours(1);
    a.ends_at = a.starts_at + Duration::hours(2);
    let a = create(&s, a).await;
    let (came, away) = (
        Holder::of(&s, "M10001").await,
        Holder::of(&s, "M10002").await,
    );
    let staff = s.login("S20001").await;
    let at = a.starts_at + Duration::minutes(5);
    s.clock.set(at);
    let (_, m) = check_in(a.id, &came, Uuid::new_v4(), Uuid::new_v4(), at);
    assert!(matches!(
        push(&s, &staff, serde_json::json!([m])).await.results[0].outcome,
        MutationOutcome::Applied
    ));
    let rate = |h: &Holder, rating: i64, comment: &str| {
        let m = serde_json::json!({
            "id": Uuid::new_v4(),
            "created_at": s.clock.now_utc(),
            "op": "feedback",
            "args": Feedback { activity_id: a.id, rating, comment: comment.into() },
        });
        let token = h.token.clone();
        let s = &s;
        async move {
            match push(s, &token, serde_json::json!([m])).await.results[0]
                .outcome
                .clone()
            {
                MutationOutcome::Rejected { code, .. } => Some(code),
                _ => None,
            }
        }
    };
    // at the door, and up to its last second, it is too early to say how it was
    assert_eq!(rate(&came, 4, "").await, Some(ErrorCode::FeedbackTooEarly));
    // an app of the first release, which reads codes strictly and knows no such code, is told
    // bad_request, the reason in words
    let first_release: unionpass_core::api::PushResponse = s
        .http
        .post(s.at("/v1/sync/push"))
        .bearer_auth(&came.token)
        .header(reqwest::header::USER_AGENT, "UnionPass/0.1.0")
        .json(&serde_json::json!({ "mutations": [{
            "id": Uuid::new_v4(),
            "created_at": s.clock.now_utc(),
            "op": "feedback",
            "args": Feedback { activity_id: a.id, rating: 4, comment: String::new() },
        }]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match &first_release.results[0].outcome {
        MutationOutcome::Rejected { code, message } => {
            assert_eq!(*code, ErrorCode::BadRequest);
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    s.clock.set(a.ends_at - Duration::seconds(1));
    assert_eq!(rate(&came, 4, "").await, Some(ErrorCode::FeedbackTooEarly));
    let after = a.ends_at + Duration::hours(1);
    s.clock.set(after);
    assert_eq!(
        rate(&away, 5, "").await,
        Some(ErrorCode::FeedbackNotAttended)
    );
    assert_eq!(rate(&came, 6, "").await, Some(ErrorCode::BadRequest));
    // words that would rewrite the staff's terminal, or that PostgreSQL cannot hold (NUL), are
    // refused alike on both backends, and nothing of them is kept
    for hidden in [
        "a\0b",
        "\x1b[1A\x1b[2K5★ M10009 很好",
        "\u{202e}好很",
        "12\u{200f}3 好",
    ] {
        assert_eq!(
            rate(&came, 4, hidden).await,
            Some(ErrorCode::BadRequest),
            "{hidden:?}"
        );
    }
    assert!(s.store.feedback(a.id).await.unwrap().is_empty());
    assert_eq!(rate(&came, 4, "场地很好").await, None);
    s.clock.set(after + Duration::days(6));
    assert_eq!(
        rate(&came, 5, "场地很好，希望多办").await,
        None,
        "changed within the week"
    );
    s.clock.set(after + Duration::days(8));
    assert_eq!(rate(&came, 3, "").await, Some(ErrorCode::FeedbackLocked));
    let rows = s.store.feedback(a.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].rating, rows[0].comment.as_str()),
        (5, "场地很好，希望多办")
    );
    let changes = synced(&s, &came.token).await.changes;
    assert!(changes.iter().any(|c| matches!(
        &c.kind,
        ChangeKind::Attended { activity_id, .. } if *activity_id == a.id
    )));
    let last = changes
        .iter()
        .filter_map(|c| match &c.kind {
            ChangeKind::Feedback(f) => Some(f.clone()),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert_eq!((last.rating, last.first_given_at), (5, after));
}

/// Before activities: a needs poll reaches every member; members of its union vote once for an
/// offered option and may change it until the close; results only for those who voted.
async fn a_poll_takes_one_changeable_vote_per_member_until_it_closes(s: TestServer) {
    use crate::util::push;
    use unionpass_core::activity::{Poll, PollOption, PollResults, Vote};
    use unionpass_core::api::MutationOutcome;
    let member = s.login("M10001").await;
    let own = synced(&s, &member).await.profile.union.id;
    let poll = s
        .store
        .create_poll(
            Poll {
                id: 0,
                question_zh: "下个月想参加什么活动？".into(),
                question_en: "What next month?".into(),
                options: vec![
                    PollOption {
                        zh: "羽毛球".into(),
                        en: "Badminton".into(),
                    },
                    PollOption {
                        zh: "读书会".into(),
                        en: "Book club".into(),
                    },
                    PollOption {
                        zh: "亲子游".into(),
                        en: "Family trip".into(),
                    },
                ],
                union_id: Some(own),
                closes_at: t0() + Duration::days(7),
            },
            t0(),
        )
        .await
        .unwrap();
    let vote = |token: String, option: i64| {
        let s = &s;
        async move {
            let m = serde_json::json!({
                "id": Uuid::new_v4(),
                "created_at": s.clock.now_utc(),
                "op": "vote",
                "args": Vote { poll_id: poll.id, option },
            });
            match push(s, &token, serde_json::json!([m])).await.results[0]
                .outcome
                .clone()
            {
                MutationOutcome::Rejected { code, .. } => Some(code),
                _ => None,
            }
        }
    };
    let results = |token: String| {
        let s = &s;
        async move {
            let r = s
                .http
                .get(s.at(&format!("/v1/polls/{}/results", poll.id)))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // every member receives it; results wait for a vote
    assert!(synced(&s, &member)
        .await
        .changes
        .iter()
        .any(|c| matches!(&c.kind, ChangeKind::Poll(p) if p.id == poll.id)));
    assert_eq!(results(member.clone()).await.0, StatusCode::FORBIDDEN);
    let second = s.login("M10002").await;
    let outsider = s.login("M10020").await;
    assert_eq!(vote(member.clone(), 1).await, None);
    assert_eq!(vote(second.clone(), 1).await, None);
    assert_eq!(
        vote(outsider.clone(), 0).await,
        Some(ErrorCode::NotEligible)
    );
    assert_eq!(vote(member.clone(), 5).await, Some(ErrorCode::BadRequest));
    // changed before the close: counted once, where it is now
    assert_eq!(vote(member.clone(), 2).await, None);
    let (status, body) = results(member.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let r: PollResults = serde_json::from_value(body).unwrap();
    assert_eq!((r.counts, r.mine), (vec![0, 1, 1], Some(2)));
    s.clock.set(poll.closes_at);
    assert_eq!(vote(second.clone(), 0).await, Some(ErrorCode::PollClosed));
    assert!(synced(&s, &member).await.changes.iter().any(|c| matches!(
        &c.kind,
        ChangeKind::Voted { poll_id, option: 2 } if *poll_id == poll.id
    )));
}

/// A cancel gives its seats to as many waiting as fit, strictly in order; a retried key tells the
/// sign-up as it stands now (promoted, or its new place); a waiting member's cancel frees a
/// waitlist place and promotes nobody.
async fn a_cancel_promotes_as_many_as_fit_and_a_retry_tells_the_state_now(s: TestServer) {
    let a = create(&s, activity(3, 3, 2)).await;
    s.clock.set(a.signup.as_ref().unwrap().opens_at);
    let tokens = [
        s.login("M10001").await,
        s.login("M10002").await,
        s.login("M10003").await,
        s.login("M10004").await,
    ];
    let keys = [
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    ];
    let companions = [2, 0, 1, 0];
    let mut first = Vec::new();
    for i in 0..4 {
        first.push(sign_up(&s, &tokens[i], a.id, keys[i], companions[i]).await);
    }
    let states: Vec<(SignupState, Option<i64>)> = first
        .iter()
        .map(|x| (accepted(x).state, accepted(x).position))
        .collect();
    assert_eq!(
        states,
        vec![
            (SignupState::Confirmed, None),
            (SignupState::Waitlisted, Some(1)),
            (SignupState::Waitlisted, Some(2)),
            (SignupState::Waitlisted, Some(3)),
        ]
    );
    // the first cancels: 3 seats free, the next two (1 + 2 seats) move up, the last stays
    assert_eq!(cancel(&s, &tokens[0], a.id).await.0, StatusCode::OK);
    let now_state = |i: usize| {
        let (s, t, k) = (&s, tokens[i].clone(), keys[i]);
        async move {
            match sign_up(s, &t, a.id, k, companions[i]).await {
                SignupAnswer::Accepted { signup, replayed } => {
                    assert!(replayed);
                    (signup.state, signup.position)
                }
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(now_state(1).await, (SignupState::Promoted, None));
    assert_eq!(now_state(2).await, (SignupState::Promoted, None));
    assert_eq!(now_state(3).await, (SignupState::Waitlisted, Some(1)));
    async fn live(s: &TestServer, token: &str, id: i64) -> (i64, i64) {
        let all: Vec<unionpass_core::activity::ActivityLive> =
            s.get_json("/v1/activities", Some(token)).await;
        let l = all.into_iter().find(|l| l.activity.id == id).unwrap();
        (l.seats_taken, l.waiting)
    }
    assert_eq!(live(&s, &tokens[3], a.id).await, (3, 1));
    // the waiting member leaves: a waitlist place frees, nobody moves
    assert_eq!(cancel(&s, &tokens[3], a.id).await.0, StatusCode::OK);
    assert_eq!(live(&s, &tokens[0], a.id).await, (3, 0));
    let list = s.store.signups(a.id).await.unwrap();
    assert_eq!(
        list.iter().map(|r| r.state).collect::<Vec<_>>(),
        vec![
            SignupState::Cancelled,
            SignupState::Promoted,
            SignupState::Promoted,
            SignupState::Cancelled
        ]
    );
}

/// Only seats at ended, uncancelled activities without a check-in are misses; the ban ends on
/// its instant.
async fn cancelled_activities_and_check_ins_are_not_no_shows(s: TestServer) {
    use crate::util::{check_in, push, Holder};
    let member = Holder::of(&s, "M10005").await;
    let staff = s.login("S20001").await;
    let mut ids = Vec::new();
    for day in [1, 2, 3, 4] {
        let a = activity_at(t0() + Duration::days(day), 10, 0, 0);
        let a = create(&s, a).await;
        assert_eq!(
            accepted(&sign_up(&s, &member.token, a.id, Uuid::new_v4(), 0).await).state,
            SignupState::Confirmed
        );
        ids.push(a);
    }
    // the first is cancelled by the union; the member comes to the second
    s.store
        .change_activity(ids[0].id, ActivityChange::Cancel, t0())
        .await
        .unwrap();
    let at = ids[1].starts_at + Duration::minutes(10);
    s.clock.set(at);
    let (_, m) = check_in(ids[1].id, &member, Uuid::new_v4(), Uuid::new_v4(), at);
    assert!(matches!(
        push(&s, &staff, serde_json::json!([m])).await.results[0].outcome,
        unionpass_core::api::MutationOutcome::Applied
    ));
    let popular = || {
        let mut a = activity_at(t0() + Duration::days(60), 10, 0, 0);
        let r = a.signup.as_mut().unwrap();
        r.popular = true;
        a
    };
    // after the third ended: one miss only (the cancelled and the attended do not count)
    s.clock.set(ids[2].ends_at + Duration::hours(1));
    let p1 = create(&s, popular()).await;
    let try_popular = |id: i64| {
        let (s, t) = (&s, member.token.clone());
        async move { sign_up(s, &t, id, Uuid::new_v4(), 0).await }
    };
    let first = try_popular(p1.id).await;
    assert_eq!(accepted(&first).state, SignupState::Confirmed);
    // the fourth is missed too: two misses, banned for 30 days after it, then free again
    s.clock.set(ids[3].ends_at + Duration::hours(1));
    let p2 = create(&s, popular()).await;
    let until = ids[3].ends_at + Duration::days(30);
    assert_eq!(
        refused(&try_popular(p2.id).await),
        (ErrorCode::NoShowBanned, Some(until))
    );
    s.clock.set(until);
    assert_eq!(
        accepted(&try_popular(p2.id).await).state,
        SignupState::Confirmed
    );
}

/// At the door after a cancel: the member moved up from the waitlist passes; the one who
/// cancelled is refused as not signed up.
async fn the_door_follows_promotions_and_cancels(s: TestServer) {
    use crate::util::{check_in, push, Holder};
    let a = activity_at(t0() + Duration::hours(2), 1, 1, 0);
    let a = create(&s, a).await;
    let (left, moved_up) = (
        Holder::of(&s, "M10001").await,
        Holder::of(&s, "M10002").await,
    );
    sign_up(&s, &left.token, a.id, Uuid::new_v4(), 0).await;
    assert_eq!(
        accepted(&sign_up(&s, &moved_up.token, a.id, Uuid::new_v4(), 0).await).state,
        SignupState::Waitlisted
    );
    assert_eq!(cancel(&s, &left.token, a.id).await.0, StatusCode::OK);
    let staff = s.login("S20001").await;
    let at = a.starts_at + Duration::minutes(5);
    s.clock.set(at);
    let mut outcomes = Vec::new();
    for h in [&moved_up, &left] {
        let (_, m) = check_in(a.id, h, Uuid::new_v4(), Uuid::new_v4(), at);
        outcomes.push(
            match &push(&s, &staff, serde_json::json!([m])).await.results[0].outcome {
                unionpass_core::api::MutationOutcome::Rejected { code, .. } => Some(*code),
                _ => None,
            },
        );
    }
    assert_eq!(outcomes, vec![None, Some(ErrorCode::NotSignedUp)]);
}

/// Past the last seat and waitlist place, the crowd is answered from the server's memory of the
/// full activity (`store::memo`), and what it answers is what the store would: a retry replays,
/// a member holding a place hears so, a banned member hears why and until when, and a seat freed
/// through this server is offered at once.
async fn a_full_activity_is_answered_from_memory_as_the_store_would(s: TestServer) {
    let banned = s.login("M10005").await;
    let mut missed = Vec::new();
    for day in [1, 8] {
        let a = create(&s, activity_at(t0() + Duration::days(day), 10, 0, 0)).await;
        accepted(&sign_up(&s, &banned, a.id, Uuid::new_v4(), 0).await);
        missed.push(a);
    }
    // a popular activity of 2 seats and a waitlist of 1, open after both misses
    let mut a = activity_at(t0() + Duration::days(20), 2, 1, 1);
    a.signup.as_mut().unwrap().popular = true;
    let a = create(&s, a).await;
    s.clock.set(missed[1].ends_at + Duration::days(1));
    let ban_ends = missed[1].ends_at + Duration::days(30);
    let [m1, m2, m3, m4] = {
        let mut t = Vec::new();
        for no in ["M10001", "M10002", "M10003", "M10004"] {
            t.push(s.login(no).await);
        }
        t.try_into().unwrap()
    };
    let (k1, k2) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(
        accepted(&sign_up(&s, &m1, a.id, k1, 1).await).state,
        SignupState::Confirmed
    );
    assert_eq!(
        accepted(&sign_up(&s, &m2, a.id, k2, 0).await).state,
        SignupState::Waitlisted
    );
    assert!(s.store.signup_memo().is_empty(), "nothing full yet");
    // the store says full, and the server reads what it needs to say it again
    assert_eq!(
        refused(&sign_up(&s, &m3, a.id, Uuid::new_v4(), 0).await),
        (ErrorCode::SignupFull, None)
    );
    assert_eq!(s.store.signup_memo().len(), 1);
    // from here the memo answers "full" itself, without the store; it leaves to the store a
    // member it suspects of misses, a member with a sign-up, and a key it has seen
    let memo = s.store.signup_memo();
    let code = |r: Option<unionpass_core::activity::Refusal>| r.map(|r| (r.code, r.until));
    assert_eq!(
        code(memo.refusal(&job_of(&s, &m4, a.id, Uuid::new_v4(), 1).await)),
        Some((ErrorCode::SignupFull, None))
    );
    assert_eq!(
        code(memo.refusal(&job_of(&s, &banned, a.id, Uuid::new_v4(), 0).await)),
        None
    );
    assert_eq!(
        code(memo.refusal(&job_of(&s, &m1, a.id, Uuid::new_v4(), 0).await)),
        None
    );
    assert_eq!(
        code(memo.refusal(&job_of(&s, &m3, a.id, k2, 0).await)),
        None
    );
    for _ in 0..3 {
        assert_eq!(
            refused(&sign_up(&s, &m4, a.id, Uuid::new_v4(), 1).await),
            (ErrorCode::SignupFull, None)
        );
    }
    // the banned member is told the ban, not "full"
    assert_eq!(
        refused(&sign_up(&s, &banned, a.id, Uuid::new_v4(), 0).await),
        (ErrorCode::NoShowBanned, Some(ban_ends))
    );
    // retries replay; a new key of a member with a place is "already signed up"
    match sign_up(&s, &m1, a.id, k1, 1).await {
        SignupAnswer::Accepted { signup, replayed } => {
            assert!(replayed);
            assert_eq!(signup.state, SignupState::Confirmed);
        }
        other => panic!("{other:?}"),
    }
    match sign_up(&s, &m2, a.id, k2, 0).await {
        SignupAnswer::Accepted { signup, replayed } => {
            assert!(replayed);
            assert_eq!(
                (signup.state, signup.position),
                (SignupState::Waitlisted, Some(1))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        refused(&sign_up(&s, &m1, a.id, Uuid::new_v4(), 0).await),
        (ErrorCode::AlreadySignedUp, None)
    );
    // a reused key with other contents is still caught
    let (status, body) = sign_up_raw(&s, &m1, a.id, k1, 0).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // a cancellation here: the waitlist moves up and its place is offered at once (the clock
    // has not moved, so a remembered "full" would still be fresh)
    assert_eq!(cancel(&s, &m1, a.id).await.0, StatusCode::OK);
    assert!(s.store.signup_memo().is_empty());
    assert_eq!(
        accepted(&sign_up(&s, &m4, a.id, Uuid::new_v4(), 1).await).state,
        SignupState::Waitlisted
    );
    // the promoted member left one seat: too few for a companion, enough for one alone
    assert_eq!(
        accepted(&sign_up(&s, &m3, a.id, Uuid::new_v4(), 0).await).state,
        SignupState::Confirmed
    );
    // full again: then an activity cancelled through the store is told as cancelled at once
    let m6 = s.login("M10006").await;
    assert_eq!(
        refused(&sign_up(&s, &m6, a.id, Uuid::new_v4(), 0).await),
        (ErrorCode::SignupFull, None)
    );
    assert_eq!(s.store.signup_memo().len(), 1);
    s.store
        .change_activity(a.id, ActivityChange::Cancel, s.clock.now_utc())
        .await
        .unwrap();
    assert_eq!(
        refused(&sign_up(&s, &m6, a.id, Uuid::new_v4(), 0).await).0,
        ErrorCode::ActivityCancelled
    );
}

/// Before the opening, the crowd hears when it opens, from memory after the first refusal; at the
/// opening instant the same memory sends the request to the store, which takes it.
async fn before_the_opening_the_crowd_hears_when_and_at_the_opening_signs_up(s: TestServer) {
    let a = create(&s, activity(1, 0, 0)).await;
    let opens_at = a.signup.as_ref().unwrap().opens_at;
    s.clock.set(opens_at - Duration::milliseconds(600));
    let (m1, m2) = (s.login("M10001").await, s.login("M10002").await);
    for token in [&m1, &m2, &m1] {
        assert_eq!(
            refused(&sign_up(&s, token, a.id, Uuid::new_v4(), 0).await),
            (ErrorCode::SignupNotOpen, Some(opens_at))
        );
    }
    assert_eq!(s.store.signup_memo().len(), 1);
    // the memo itself tells a newcomer when; at the opening it leaves the request to the store
    let memo = s.store.signup_memo();
    let m3 = s.login("M10003").await;
    let asked = memo.refusal(&job_of(&s, &m3, a.id, Uuid::new_v4(), 0).await);
    assert_eq!(
        asked.map(|r| (r.code, r.until)),
        Some((ErrorCode::SignupNotOpen, Some(opens_at)))
    );
    s.clock.set(opens_at);
    assert_eq!(
        memo.refusal(&job_of(&s, &m3, a.id, Uuid::new_v4(), 0).await),
        None
    );
    assert_eq!(
        accepted(&sign_up(&s, &m2, a.id, Uuid::new_v4(), 0).await).state,
        SignupState::Confirmed
    );
    assert_eq!(
        refused(&sign_up(&s, &m1, a.id, Uuid::new_v4(), 0).await),
        (ErrorCode::SignupFull, None)
    );
}

/// A cancellation whose request goes away right after it was sent still makes the server forget
/// what it remembered of the full activity: the freed place is offered at once (the clock has
/// not moved, so a remembered "full" would still be fresh).
async fn a_cancel_whose_request_went_away_still_frees_the_place_at_once(s: TestServer) {
    let (m1, m2) = (s.login("M10001").await, s.login("M10002").await);
    let m1_id = s
        .store
        .member_auth("M10001")
        .await
        .unwrap()
        .unwrap()
        .member_id;
    use futures_util::FutureExt;
    // a commit usually takes longer than one poll; when the writer (on its own thread) was
    // quicker, the request was not cut off mid-way: again, with another activity
    for _ in 0..10 {
        let mut a = activity(1, 0, 0);
        a.signup.as_mut().unwrap().opens_at = t0();
        let a = create(&s, a).await;
        accepted(&sign_up(&s, &m1, a.id, Uuid::new_v4(), 0).await);
        assert_eq!(
            refused(&sign_up(&s, &m2, a.id, Uuid::new_v4(), 0).await),
            (ErrorCode::SignupFull, None)
        );
        assert_eq!(s.store.signup_memo().len(), 1);
        // polled once (the work is handed on), then dropped, as a request the client gave up on
        let gone = s
            .store
            .cancel_signup(m1_id, a.id, s.clock.now_utc())
            .now_or_never();
        if gone.is_some() {
            continue;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while s.store.signups(a.id).await.unwrap()[0].state != SignupState::Cancelled {
            assert!(std::time::Instant::now() < deadline, "never cancelled");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            accepted(&sign_up(&s, &m2, a.id, Uuid::new_v4(), 0).await).state,
            SignupState::Confirmed
        );
        return;
    }
    panic!("every cancellation finished within its first poll: none went away mid-way");
}

/// The way a group is judged when its batch kept nothing (PostgreSQL, after a key of it was
/// taken elsewhere at the same moment; SQLite, always): a key used before is answered as such
/// whatever it is sent to now, a missing activity too (409, as a lone request and the batch
/// answer it), and a new key to a missing activity learns that it does not exist; the job beside
/// them is judged as it would be alone.
async fn one_at_a_time_a_used_key_is_answered_before_the_activity_is_looked_for(s: TestServer) {
    let a = create(&s, activity_at(t0() + Duration::days(2), 5, 0, 1)).await;
    let (m1, m2) = (s.login("M10001").await, s.login("M10002").await);
    let used = Uuid::new_v4();
    accepted(&sign_up(&s, &m1, a.id, used, 0).await);
    let missing = a.id + 1000;
    let answers = s
        .store
        .sign_up_one_at_a_time(vec![
            job_of(&s, &m1, missing, used, 0).await,
            job_of(&s, &m2, missing, Uuid::new_v4(), 0).await,
            job_of(&s, &m2, a.id, Uuid::new_v4(), 1).await,
        ])
        .await
        .unwrap();
    assert!(
        matches!(&answers[0], Err(StoreError::KeyReused(k)) if *k == used),
        "{:?}",
        answers[0]
    );
    assert!(
        matches!(&answers[1], Err(StoreError::NoActivity(id)) if *id == missing),
        "{:?}",
        answers[1]
    );
    match &answers[2] {
        Ok(answer) => assert_eq!(accepted(answer).state, SignupState::Confirmed),
        other => panic!("{other:?}"),
    }
    // and over HTTP, the used key on a missing activity: 409 on every backend
    let (status, body) = sign_up_raw(&s, &m1, missing, used, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
}

on_every_backend!(
    sign_up_window_seats_companions_and_the_waitlist_in_order,
    eligibility_a_cancelled_activity_and_walk_ins,
    no_shows_close_popular_activities_until_the_ban_ends,
    a_crowd_at_the_opening_never_overfills_and_keeps_the_order,
    the_door_admits_those_with_a_place_and_says_why_not,
    the_demo_has_activities_in_every_state,
    feedback_comes_from_those_who_came_and_can_be_changed_for_a_week,
    a_poll_takes_one_changeable_vote_per_member_until_it_closes,
    a_cancel_promotes_as_many_as_fit_and_a_retry_tells_the_state_now,
    cancelled_activities_and_check_ins_are_not_no_shows,
    the_door_follows_promotions_and_cancels,
    a_full_activity_is_answered_from_memory_as_the_store_would,
    before_the_opening_the_crowd_hears_when_and_at_the_opening_signs_up,
    a_cancel_whose_request_went_away_still_frees_the_place_at_once,
    one_at_a_time_a_used_key_is_answered_before_the_activity_is_looked_for,
);

/// A connection of its own to the test server's database: what another instance would do.
async fn another_instance(s: &TestServer) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        s.database_url().expect("a PostgreSQL server"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
}

/// PostgreSQL: a sign-up waits for the activity's row lock, and is judged on what the holder
/// committed (several instances over one database decide one at a time per activity).
#[tokio::test]
async fn postgres_a_sign_up_waits_for_the_activity_lock_and_sees_what_was_committed() {
    let s = TestServer::start_postgres().await;
    let a = create(&s, activity(2, 1, 0)).await;
    s.clock.set(a.signup.as_ref().unwrap().opens_at);
    let token = s.login("M10001").await;
    let mut holder = another_instance(&s).await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM activities WHERE event_id = $1 FOR UPDATE",
        &[&a.id],
    )
    .await
    .unwrap();
    // another instance fills the seats while holding the lock
    tx.execute(
        "UPDATE activities SET seats_taken = seats WHERE event_id = $1",
        &[&a.id],
    )
    .await
    .unwrap();
    let url = s.at(&format!("/v1/activities/{}/signup", a.id));
    let http = s.http.clone();
    let request = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "key": Uuid::new_v4(), "companions": 0 }))
            .send()
            .await
            .unwrap()
            .json::<SignupAnswer>()
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        !request.is_finished(),
        "the sign-up did not wait for the lock"
    );
    tx.commit().await.unwrap();
    let answer = request.await.unwrap();
    assert_eq!(
        (accepted(&answer).state, accepted(&answer).position),
        (SignupState::Waitlisted, Some(1)),
        "judged on the committed seats"
    );
}

/// PostgreSQL: a key taken at the same moment for another activity (another instance's group,
/// not committed yet) is refused to that request alone; the others of its group keep their
/// seats, and the counters match the rows. The five requests queue behind a sign-up kept waiting
/// for the activity's lock, so they form one group, and that group waits on the key being taken.
#[tokio::test]
async fn postgres_a_key_taken_elsewhere_at_that_moment_is_refused_alone() {
    use unionpass_server::store::GroupPaths;
    let s = TestServer::start_postgres().await;
    let a = create(&s, activity(10, 0, 0)).await;
    let b = create(&s, activity(10, 0, 0)).await;
    s.clock.set(a.signup.as_ref().unwrap().opens_at);
    let key = Uuid::new_v4();
    let mut holder = another_instance(&s).await;
    let tx = holder.transaction().await.unwrap();
    // "another instance" signs M10009 up for b under that key, and has not committed yet
    tx.execute(
        "INSERT INTO signups(activity_id, member_id, companions, state, key, created_at, updated_at)
         SELECT $1, id, 0, 'confirmed', $2, now(), now() FROM members WHERE member_no = 'M10009'",
        &[&b.id, &key],
    )
    .await
    .unwrap();
    // signed in before the first request: a sign-in hashes a password (a second or more on a
    // busy machine), and the requests must not wait past the group connection's lock timeout
    // (5 s) for the sign-ins after them
    let mut tokens = Vec::new();
    for member in ["M10001", "M10002", "M10003", "M10004", "M10005", "M10006"] {
        tokens.push(s.login(member).await);
    }
    let send = |token: String, k: Uuid| {
        let url = s.at(&format!("/v1/activities/{}/signup", a.id));
        let http = s.http.clone();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({ "key": k, "companions": 0 }))
                .send()
                .await
                .unwrap();
            (
                resp.status(),
                resp.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    // a third instance holds a's lock: M10006's group waits for it, and the five queue behind
    let locker = crate::instances::hold_the_lock(&s, a.id).await;
    let blocker = send(tokens.pop().unwrap(), Uuid::new_v4());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut requests = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        // the first member reuses the key being taken for b
        requests.push(send(token, if i == 0 { key } else { Uuid::new_v4() }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(
        !blocker.is_finished(),
        "the first sign-up waits for the lock"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
    let (status, body) = blocker.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    // the five, one group, now wait on the key M10009's uncommitted sign-up holds
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        requests.iter().all(|r| !r.is_finished()),
        "the group waits on the key being taken"
    );
    tx.commit().await.unwrap();
    let answers = join_all(requests).await;
    let (status, body) = &answers[0].as_ref().unwrap();
    assert_eq!(*status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    for answer in &answers[1..] {
        let (status, body) = answer.as_ref().unwrap();
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["signup"]["state"], "confirmed", "{body}");
    }
    let rows = s.store.signups(a.id).await.unwrap();
    assert_eq!(rows.len(), 5, "M10006 and the four");
    assert_eq!(counters(&s, a.id).await.0, 5);
    // M10006 under the lock (the activity was new to this instance); then the five as one group:
    // decided from memory, rolled back by the key's unique index, judged again under the lock
    assert_eq!(
        s.store.signup_group_paths(),
        Some(GroupPaths {
            decided_from_memory: 0,
            rolled_back: 1,
            under_the_lock: 2,
        })
    );
}
