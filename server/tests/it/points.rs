//! The points story on every backend, over real HTTP, with the demo provider as its own process:
//! the ledger and the offer reach the app through sync; a redemption is checked (number, amount,
//! price, password, cap, balance, stock), held exactly once, then settled or refunded by what
//! the provider answers (done, refused, no answer).

use std::sync::Arc;
use std::time::Duration;

use crate::util::{t0, TestServer};
use serde_json::{json, Value};
use unionpass_core::api::{MutationOutcome, MutationResult, PushResponse, SyncResponse};
use unionpass_core::points::{EntryKind, Ledger};
use unionpass_core::redeem::{RedemptionStatus, RefundReason};
use unionpass_core::ErrorCode;
use unionpass_server::testing::ProviderProcess;
use uuid::Uuid;

async fn redeem(
    s: &TestServer,
    token: &str,
    id: Uuid,
    target: Value,
    points: i64,
) -> MutationResult {
    let resp = s
        .http
        .post(s.at("/v1/sync/push"))
        .bearer_auth(token)
        .json(&json!({"mutations": [{
            "id": id, "created_at": t0(), "op": "redeem",
            "args": {"target": target, "points": points}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut r: PushResponse = resp.json().await.unwrap();
    r.results.remove(0)
}

fn refused(r: &MutationResult) -> Option<ErrorCode> {
    match &r.outcome {
        MutationOutcome::Rejected { code, .. } => Some(*code),
        MutationOutcome::Applied => None,
    }
}

fn phone(mobile: &str, yuan: i64) -> Value {
    json!({"kind": "phone_bill", "mobile": mobile, "amount_cents": yuan * 100})
}

async fn ledger_of(s: &TestServer, member_no: &str) -> Ledger {
    let m = s.store.member_auth(member_no).await.unwrap().unwrap();
    Ledger::fold(&s.store.points_entries(m.member_id).await.unwrap()).expect("a consistent ledger")
}

async fn redemptions_of(
    s: &TestServer,
    member_no: &str,
) -> Vec<unionpass_core::redeem::Redemption> {
    let m = s.store.member_auth(member_no).await.unwrap().unwrap();
    s.store.redemptions(m.member_id).await.unwrap()
}

async fn redemption_story(s: TestServer) {
    unionpass_server::seed::seed_demo_points(s.store.as_ref(), t0())
        .await
        .unwrap();
    let token = s.login("M10001").await;

    // sync brings the offer and the member's three batches (9,500 points)
    let page: SyncResponse = s.get_json("/v1/sync?cursor=0", Some(&token)).await;
    let offer = page.points_offer.expect("the offer, with the last page");
    assert_eq!(
        offer.phone.amounts_cents,
        vec![1000, 2000, 3000, 5000, 10000]
    );
    assert_eq!(offer.catalog.len(), 3);
    let accruals = page
        .changes
        .iter()
        .filter(|c| matches!(c.kind, unionpass_core::api::ChangeKind::PointsEntry(_)))
        .count();
    assert_eq!(accruals, 3);
    assert_eq!(ledger_of(&s, "M10001").await.balance(t0()).available, 9500);

    // refusals say why, hold nothing, and are final for their id
    let bad_number = redeem(&s, &token, Uuid::new_v4(), phone("1380013800", 30), 3000).await;
    assert_eq!(refused(&bad_number), Some(ErrorCode::InvalidMobile));
    let odd_amount = redeem(&s, &token, Uuid::new_v4(), phone("13800138000", 25), 2500).await;
    assert_eq!(refused(&odd_amount), Some(ErrorCode::AmountNotOffered));
    let cheaper = redeem(&s, &token, Uuid::new_v4(), phone("13800138000", 30), 2000).await;
    assert_eq!(refused(&cheaper), Some(ErrorCode::PriceChanged));

    // a phone top-up of 30 yuan: held once, however often it is sent
    let first = Uuid::new_v4();
    let a = redeem(&s, &token, first, phone("138 0013 8000", 30), 3000).await;
    assert_eq!((refused(&a), a.replayed), (None, false));
    let again = redeem(&s, &token, first, phone("138 0013 8000", 30), 3000).await;
    assert_eq!((refused(&again), again.replayed), (None, true));
    let l = ledger_of(&s, "M10001").await;
    assert_eq!(
        (l.balance(t0()).available, l.balance(t0()).pending),
        (6500, 3000)
    );
    assert_eq!(l.holds.len(), 1);

    // the phone cap is 100 yuan a month: 30 + 50 fit, another 30 does not
    let b = redeem(&s, &token, Uuid::new_v4(), phone("13800138000", 50), 5000).await;
    assert_eq!(refused(&b), None);
    let c = redeem(&s, &token, Uuid::new_v4(), phone("13800138000", 30), 3000).await;
    assert_eq!(refused(&c), Some(ErrorCode::CapReached));
    let poor = redeem(
        &s,
        &token,
        Uuid::new_v4(),
        json!({"kind": "power_bill", "account": "0123456789", "amount_cents": 2000}),
        2000,
    )
    .await;
    assert_eq!(
        refused(&poor),
        Some(ErrorCode::InsufficientPoints),
        "1,500 left"
    );

    // above 5,000 points the password is asked again (another member with points to spare)
    let rich = s.login("M10002").await;
    let check = Uuid::new_v4();
    let exam = json!({"kind": "catalog", "item_id": 3});
    let r = redeem(&s, &rich, check, exam.clone(), 6000).await;
    assert_eq!(refused(&r), Some(ErrorCode::ReauthRequired));
    let reauth = |password: &'static str, id: Uuid| {
        s.http
            .post(s.at("/v1/reauth"))
            .bearer_auth(&rich)
            .json(&json!({"password": password, "redemption_id": id}))
            .send()
    };
    assert_eq!(reauth("wrong", check).await.unwrap().status(), 401);
    assert_eq!(reauth("demo1234", check).await.unwrap().status(), 204);
    // the answer for `check` was final: the member submits it again under a new id
    let exam_id = Uuid::new_v4();
    assert_eq!(reauth("demo1234", exam_id).await.unwrap().status(), 204);
    let r = redeem(&s, &rich, exam_id, exam.clone(), 6000).await;
    assert_eq!(refused(&r), None);
    let stock = |s: &TestServer| {
        let store = s.store.clone();
        async move {
            store
                .points_offer()
                .await
                .unwrap()
                .catalog
                .iter()
                .find(|i| i.id == 3)
                .unwrap()
                .stock
        }
    };
    assert_eq!(stock(&s).await, 9);

    // fulfilment: the provider does the first two, refuses the next, does not answer the last
    let provider = ProviderProcess::start();
    let client = provider.provider(Duration::from_millis(400));
    assert_eq!(s.fulfil(&client).await, 3);
    let settled: Vec<_> = redemptions_of(&s, "M10001").await;
    assert!(settled
        .iter()
        .all(|r| matches!(r.status, RedemptionStatus::Settled { .. })));
    let l = ledger_of(&s, "M10001").await;
    assert_eq!(
        (l.balance(t0()).available, l.balance(t0()).pending, l.spent),
        (1500, 0, 8000)
    );

    provider
        .set_mode("fail", Some("空号 / no such number"))
        .await;
    let failing = Uuid::new_v4();
    let power = json!({"kind": "power_bill", "account": "0123456789", "amount_cents": 2000});
    assert_eq!(
        refused(&redeem(&s, &rich, failing, power, 2000).await),
        None
    );
    assert_eq!(s.fulfil(&client).await, 1, "refused at once");
    provider.set_mode("timeout", None).await;
    let timing_out = Uuid::new_v4();
    let top_up = phone("13900139000", 10);
    assert_eq!(
        refused(&redeem(&s, &rich, timing_out, top_up, 1000).await),
        None
    );
    assert_eq!(
        s.fulfil(&client).await,
        1,
        "asked after the timeout: cancelled, refunded"
    );
    // a carrier that did top up but answered too late: asked, it says done; never refunded
    provider.set_mode("slow", None).await;
    let late = Uuid::new_v4();
    assert_eq!(
        refused(&redeem(&s, &rich, late, phone("13900139001", 10), 1000).await),
        None
    );
    assert_eq!(s.fulfil(&client).await, 1, "settled after asking");
    assert_eq!(s.fulfil(&client).await, 0, "nothing held any more");

    let mine = redemptions_of(&s, "M10002").await;
    let status_of = |id: Uuid| mine.iter().find(|r| r.id == id).unwrap().status.clone();
    assert!(matches!(
        status_of(exam_id),
        RedemptionStatus::Settled { .. }
    ));
    assert_eq!(
        status_of(failing),
        RedemptionStatus::Refunded {
            reason: RefundReason::ProviderFailed {
                message: "空号 / no such number".into()
            }
        }
    );
    assert_eq!(
        status_of(timing_out),
        RedemptionStatus::Refunded {
            reason: RefundReason::ProviderTimeout
        }
    );
    assert!(matches!(status_of(late), RedemptionStatus::Settled { .. }));
    // the refunds gave the points back; the settled exam and the late top-up are spent
    let l = ledger_of(&s, "M10002").await;
    assert_eq!(
        (l.balance(t0()).available, l.spent),
        (9500 - 6000 - 1000, 7000)
    );
    // the provider fulfilled exactly the settled ones, once each
    let orders = provider.orders().await;
    let fulfilled: Vec<&Value> = orders
        .iter()
        .filter(|o| o["answer"]["status"] == "done")
        .collect();
    assert_eq!(fulfilled.len(), 4);
    assert!(orders.iter().all(|o| o["times"] == 1));

    // the app learns every step: holds, settles, refunds, and the redemptions' states
    let page: SyncResponse = s.get_json("/v1/sync?cursor=0", Some(&rich)).await;
    let kinds: Vec<String> = page
        .changes
        .iter()
        .filter_map(|c| match c.kind.clone() {
            unionpass_core::api::ChangeKind::PointsEntry(e) => Some(
                match e.kind {
                    EntryKind::Accrual { .. } => "accrual",
                    EntryKind::Hold { .. } => "hold",
                    EntryKind::Settle { .. } => "settle",
                    EntryKind::Refund { .. } => "refund",
                    _ => "other",
                }
                .to_string(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "accrual", "accrual", "accrual", "hold", "settle", "hold", "refund", "hold", "refund",
            "hold", "settle"
        ]
    );
}

/// Expired points are written down once by the sweep; points refunded into a batch that expired
/// meanwhile are written down as they come back.
async fn expired_points_are_written_down_once(s: TestServer) {
    unionpass_server::seed::seed_demo_points(s.store.as_ref(), t0())
        .await
        .unwrap();
    let m = s.store.member_auth("M10005").await.unwrap().unwrap();
    let soon = s
        .store
        .accrue_points(
            m.member_id,
            1000,
            t0() + chrono::Duration::days(1),
            "grant",
            t0(),
        )
        .await
        .unwrap();
    let token = s.login("M10005").await;
    // 3,000 points held at t0: taken from the oldest batch (4,000, expiring in 30 days)
    let id = Uuid::new_v4();
    assert_eq!(
        refused(&redeem(&s, &token, id, phone("13800138000", 30), 3000).await),
        None
    );
    assert_eq!(
        s.store.record_expirations(t0(), 100).await.unwrap(),
        0,
        "nothing due"
    );

    // two days on, the 1,000 have expired: written down once
    let later = t0() + chrono::Duration::days(2);
    assert_eq!(s.store.record_expirations(later, 100).await.unwrap(), 1);
    assert_eq!(s.store.record_expirations(later, 100).await.unwrap(), 0);
    // forty days on, the first batch expired with 1,000 free; then the redemption fails, and its
    // 3,000 go back to that expired batch: expired too, and written down as they come back
    let much_later = t0() + chrono::Duration::days(40);
    assert_eq!(
        s.store.record_expirations(much_later, 100).await.unwrap(),
        unionpass_server::seed::demo_accounts().len(),
        "every demo account's first batch"
    );
    s.clock.set(much_later);
    let provider = ProviderProcess::start();
    provider.set_mode("fail", None).await;
    assert_eq!(
        s.fulfil(&provider.provider(Duration::from_secs(2))).await,
        1
    );
    let entries = s.store.points_entries(m.member_id).await.unwrap();
    let expired: Vec<(i64, i64)> = entries
        .iter()
        .filter_map(|e| match e.kind {
            EntryKind::Expiration { batch, points } => Some((batch, points)),
            _ => None,
        })
        .collect();
    let first_batch = entries[0].seq;
    assert_eq!(
        expired,
        vec![(soon.seq, 1000), (first_batch, 1000), (first_batch, 3000)]
    );
    let l = Ledger::fold(&entries).unwrap();
    assert_eq!(l.balance(much_later).available, 3000 + 2500);
    assert!(l.unrecorded_expirations(much_later).is_empty());
}

/// A member's first check-in at an event earns its points, once: not again for the same scan
/// delivered twice, nor for a second scan by another scanner (a conflict).
async fn a_first_check_in_earns_the_event_points_once(s: TestServer) {
    let member = s.store.member_auth("M10001").await.unwrap().unwrap();
    let profile = s.store.profile(member.member_id).await.unwrap().unwrap();
    let event = s
        .store
        .create_event(
            unionpass_core::checkin::Event {
                id: 0,
                title: "职工运动会".into(),
                title_en: None,
                place_en: None,
                place: "体育中心".into(),
                starts_at: t0(),
                ends_at: t0() + chrono::Duration::hours(8),
                capacity: 100,
                union_id: Some(profile.union.id),
                points: 300,
            },
            t0(),
        )
        .await
        .unwrap();
    let staff = s.login("S20001").await;
    let holder = crate::util::Holder::of(&s, "M10001").await;
    let scan = |scanner: Uuid, nonce: Uuid| {
        crate::util::check_in(event.id, &holder, scanner, nonce, t0()).1
    };
    let push = |m: Value| {
        s.http
            .post(s.at("/v1/sync/push"))
            .bearer_auth(&staff)
            .json(&json!({ "mutations": [m] }))
            .send()
    };
    let (gate, nonce) = (Uuid::new_v4(), Uuid::new_v4());
    for m in [
        scan(gate, nonce),
        scan(gate, nonce),
        scan(Uuid::new_v4(), Uuid::new_v4()),
    ] {
        let r: PushResponse = push(m).await.unwrap().json().await.unwrap();
        assert_eq!(r.results[0].outcome, MutationOutcome::Applied);
    }
    let earned: Vec<(i64, String)> = s
        .store
        .points_entries(member.member_id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            EntryKind::Accrual { points, source, .. } => Some((points, source)),
            _ => None,
        })
        .collect();
    assert_eq!(earned, vec![(300, format!("activity:{}", event.id))]);
}

/// The provider channel is signed both ways: a request or an answer without the shared secret's
/// signature changes nothing (the redemption stays held, nothing is placed, nothing refunded),
/// and the channel must be https outside this computer.
async fn the_provider_channel_is_signed_both_ways(s: TestServer) {
    use unionpass_server::fulfil::{HttpProvider, Provider, ProviderSetupError};
    let secret = b"a-shared-secret-of-32-bytes-long";
    assert!(matches!(
        HttpProvider::new("http://carrier.example.com", secret, Duration::from_secs(1)),
        Err(ProviderSetupError::Insecure)
    ));
    assert!(matches!(
        HttpProvider::new(
            "https://carrier.example.com",
            b"short",
            Duration::from_secs(1)
        ),
        Err(ProviderSetupError::NoSecret)
    ));
    assert!(HttpProvider::new(
        "https://carrier.example.com",
        secret,
        Duration::from_secs(1)
    )
    .is_ok());
    assert!(HttpProvider::new("http://127.0.0.1:9", secret, Duration::from_secs(1)).is_ok());

    unionpass_server::seed::seed_demo_points(s.store.as_ref(), t0())
        .await
        .unwrap();
    let token = s.login("M10001").await;
    let id = Uuid::new_v4();
    assert_eq!(
        refused(&redeem(&s, &token, id, phone("13800138000", 30), 3000).await),
        None
    );
    let held = |l: Ledger| (l.balance(t0()).available, l.balance(t0()).pending);
    assert_eq!(held(ledger_of(&s, "M10001").await), (6500, 3000));

    // requests signed with another secret: the provider refuses them, nothing is placed
    let provider = ProviderProcess::start();
    let unsigned = reqwest::Client::new()
        .post(format!("{}/v1/orders", provider.url))
        .json(&json!({"id": id, "target": phone("13800138000", 30), "points": 3000}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let impostor: Arc<dyn Provider> =
        Arc::new(HttpProvider::new(&provider.url, secret, Duration::from_millis(400)).unwrap());
    assert_eq!(s.fulfil(&impostor).await, 0);
    assert!(provider.orders().await.is_empty(), "no order was placed");
    assert_eq!(
        held(ledger_of(&s, "M10001").await),
        (6500, 3000),
        "still held"
    );

    // an answer that is not signed (a carrier impostor saying "done") settles nothing
    // (each round below starts after the last one's lease on the redemption ran out)
    let after_lease =
        |n: i32| t0() + (unionpass_server::fulfil::LEASE + chrono::Duration::seconds(1)) * n;
    s.clock.set(after_lease(1));
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = asked.clone();
    let fake = axum::Router::new().fallback(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { axum::Json(json!({"status": "done", "reference": "forged"})) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await });
    let forged: Arc<dyn Provider> = Arc::new(
        HttpProvider::new(
            &fake_url,
            provider.secret.as_bytes(),
            Duration::from_millis(400),
        )
        .unwrap(),
    );
    assert_eq!(s.fulfil(&forged).await, 0);
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "placed, then asked for its status; both answers unsigned"
    );
    assert_eq!(
        held(ledger_of(&s, "M10001").await),
        (6500, 3000),
        "still held"
    );
    s.clock.set(after_lease(2));

    // the real channel settles it, once
    assert_eq!(
        s.fulfil(&provider.provider(Duration::from_secs(2))).await,
        1
    );
    let l = ledger_of(&s, "M10001").await;
    assert_eq!((held(l.clone()), l.spent), ((6500, 0), 3000));
    let orders = provider.orders().await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["times"], 1);
}

on_every_backend!(
    the_provider_channel_is_signed_both_ways,
    redemption_story,
    expired_points_are_written_down_once,
    a_first_check_in_earns_the_event_points_once
);
