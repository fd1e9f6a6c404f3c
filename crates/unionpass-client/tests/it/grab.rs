//! The grab from the app against a real server: the key is stored first, double taps and retries
//! reuse it, a granted coupon lands in the wallet, and the clock offset follows the server.

use chrono::{DateTime, Duration, Utc};
use unionpass_client::Client;
use unionpass_core::campaign::{Campaign, Category, GrabOutcome};
use unionpass_core::wallet::WalletFilter;
use unionpass_core::ErrorCode;
use unionpass_server::testing::{t0, TestServer};

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

fn campaign(stock: i64) -> Campaign {
    Campaign {
        id: 0,
        title_zh: "观影券".into(),
        title_en: "Cinema ticket".into(),
        category: Category::Cinema,
        face_value_cents: 3000,
        terms_zh: String::new(),
        terms_en: String::new(),
        coupon_valid_from: t0(),
        coupon_valid_until: t0() + Duration::days(30),
        stock,
        per_member_limit: 1,
        release_at: t0() + Duration::minutes(5),
        end_at: t0() + Duration::hours(1),
        eligible_unions: vec![],
        eligible_union_names: vec![],
        cancelled_at: None,
    }
}

#[tokio::test]
async fn double_taps_and_retries_grant_once_and_the_coupon_lands_in_the_wallet() {
    let mut server = TestServer::start().await;
    let c = server
        .store
        .create_campaign(campaign(3), t0())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = Client::open(dir.path()).unwrap();
    app.login(&server.url, "M10004", "demo1234", "phone", now())
        .await
        .unwrap();

    // the calendar lists it from the store; the server clock runs 2.5 s ahead of the device
    let cal = app.calendar(now()).unwrap();
    assert_eq!(cal.entries.len(), 1);
    assert_eq!(cal.entries[0].stock_left, Some(3), "synced at sign-in");
    assert_eq!(cal.entries[0].campaign.id, c.id);
    let offset = app
        .measure_clock(|| t0() - Duration::milliseconds(2500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offset.offset_ms, 2500);
    assert_eq!(app.calendar(now()).unwrap().offset, Some(offset));

    // too early: the answer says so and is final for that key
    let early = app.grab(c.id, now()).await.unwrap();
    assert!(matches!(early, GrabOutcome::NotStarted { .. }));

    // the server is unreachable at release: the key stays open, the next tap reuses it
    server.clock.set(c.release_at);
    server.stop().await;
    assert_eq!(
        app.grab(c.id, now()).await.unwrap_err().code(),
        ErrorCode::Offline
    );
    assert!(app.calendar(now()).unwrap().entries[0].unanswered);
    server.restart().await;

    // two taps at once: one grant
    let (a, b) = tokio::join!(app.grab(c.id, now()), app.grab(c.id, now()));
    for outcome in [a.unwrap(), b.unwrap()] {
        assert!(
            matches!(outcome, GrabOutcome::Granted { .. }),
            "{outcome:?}"
        );
    }
    let audit = server.store.audit(c.id).await.unwrap();
    assert_eq!((audit.granted, audit.double_grants), (1, 0));
    let w = app.wallet(&WalletFilter::default(), 10, now()).unwrap();
    assert_eq!(w.items.len(), 1, "in the wallet before any sync");
    let entry = &app.calendar(now()).unwrap().entries[0];
    assert!(matches!(entry.answer, Some(GrabOutcome::Granted { .. })));
    assert!(!entry.unanswered);

    // a later tap makes a new key and gets the limit
    assert_eq!(
        app.grab(c.id, now()).await.unwrap(),
        GrabOutcome::LimitReached
    );
    // the sync brings the same coupon again (still one in the wallet) and the stock left
    app.sync(now()).await.unwrap();
    let entry = &app.calendar(now()).unwrap().entries[0];
    assert_eq!(entry.stock_left, Some(2), "3 in stock, 1 granted");
    assert_eq!(entry.stock_synced_at, Some(now()));
    assert_eq!(
        app.wallet(&WalletFilter::default(), 10, now())
            .unwrap()
            .items
            .len(),
        1
    );
}

/// The calendar tells each card's true state from what the device knows, right after an answer
/// and after a sync: sold out, held, for another union, cancelled (gone); and a server that
/// hangs is answered within seconds, keeping the key.
#[tokio::test]
async fn cards_know_their_state_and_a_hanging_server_is_told_within_seconds() {
    use unionpass_core::campaign::Reschedule;
    use unionpass_core::view::CardState;
    let mut server = TestServer::start().await;
    let single = server
        .store
        .create_campaign(campaign(1), t0())
        .await
        .unwrap();
    let elsewhere = server
        .store
        .create_campaign(
            Campaign {
                eligible_unions: vec![987_654],
                eligible_union_names: vec![],
                ..campaign(5)
            },
            t0(),
        )
        .await
        .unwrap();
    let withdrawn = server
        .store
        .create_campaign(campaign(5), t0())
        .await
        .unwrap();
    let roomy = server
        .store
        .create_campaign(campaign(5), t0())
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

    let state = |app: &Client, id: i64, at: DateTime<Utc>| {
        app.calendar(now())
            .unwrap()
            .entries
            .iter()
            .find(|e| e.campaign.id == id)
            .map(|e| e.state(at))
    };
    let before = single.release_at - Duration::seconds(1);
    assert_eq!(state(&alice, single.id, before), Some(CardState::Upcoming));
    assert_eq!(
        state(&alice, elsewhere.id, before),
        Some(CardState::NotEligible)
    );

    // the union withdraws one: gone from the calendar at the next sync
    server
        .store
        .reschedule_campaign(withdrawn.id, Reschedule::Cancel, now())
        .await
        .unwrap();
    alice.sync(now()).await.unwrap();
    assert_eq!(state(&alice, withdrawn.id, before), None);

    // at release bob gets the only one; alice's answer sets her card to sold out at once
    server.clock.set(single.release_at);
    let open = single.release_at;
    assert!(matches!(
        bob.grab(single.id, open).await.unwrap(),
        GrabOutcome::Granted { .. }
    ));
    assert_eq!(state(&bob, single.id, open), Some(CardState::Held));
    assert_eq!(
        alice.grab(single.id, open).await.unwrap(),
        GrabOutcome::SoldOut
    );
    assert_eq!(state(&alice, single.id, open), Some(CardState::SoldOut));
    assert_eq!(state(&alice, roomy.id, open), Some(CardState::Open));

    // bob signs in on a new device: the card knows he holds it (not "grab" again)
    let dc = tempfile::tempdir().unwrap();
    let bob2 = Client::open(dc.path()).unwrap();
    bob2.login(&server.url, "M10005", "demo1234", "tablet", now())
        .await
        .unwrap();
    assert_eq!(state(&bob2, single.id, open), Some(CardState::Held));

    // the server hangs (accepts, never answers): alice is told within 5 s, the key is kept
    let addr = server.addr;
    server.stop().await;
    let hanging = tokio::net::TcpListener::bind(addr).await.unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = hanging.accept().await {
            open.push(sock);
        }
    });
    let started = std::time::Instant::now();
    let err = alice.grab(roomy.id, open).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), ErrorCode::Offline);
    assert!(
        took < std::time::Duration::from_secs(5),
        "told after {took:?}"
    );
    let entry = alice
        .calendar(now())
        .unwrap()
        .entries
        .into_iter()
        .find(|e| e.campaign.id == roomy.id)
        .unwrap();
    assert!(entry.unanswered, "the key is kept for the retry");
    held.abort();
    let _ = held.await;
    server.restart().await;
    assert!(matches!(
        alice.grab(roomy.id, open).await.unwrap(),
        GrabOutcome::Granted { .. }
    ));
    let audit = server.store.audit(roomy.id).await.unwrap();
    assert_eq!((audit.granted, audit.double_grants), (1, 0));
}
