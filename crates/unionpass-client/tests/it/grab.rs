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
