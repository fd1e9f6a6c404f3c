//! The app's background policies, without a window, against a real server: one sync at a time,
//! benign sync errors, following a redemption until it ends (and giving up after the last
//! round), and the reminder scheduler ticking in server time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use unionpass_client::background::{Background, DeviceClock, Host, Notification, Timing};
use unionpass_client::Client;
use unionpass_core::campaign::{Campaign, Category};
use unionpass_core::redeem::{RedemptionStatus, Target};
use unionpass_core::ErrorCode;
use unionpass_server::store::prelude::*;
use unionpass_server::testing::{t0, ProviderProcess, TestServer};

/// Records what the background tasks asked of the shell.
#[derive(Default)]
struct Recorder {
    state_changed: Mutex<usize>,
    notified: Mutex<Vec<Notification>>,
}

impl Host for Recorder {
    fn state_changed(&self) {
        *self.state_changed.lock().unwrap() += 1;
    }
    fn notify(&self, n: &Notification) {
        self.notified.lock().unwrap().push(n.clone());
    }
}

impl Recorder {
    fn changes(&self) -> usize {
        *self.state_changed.lock().unwrap()
    }
}

/// A device clock the test sets.
#[derive(Clone)]
struct Hand(Arc<Mutex<DateTime<Utc>>>);

impl Hand {
    fn new(t: DateTime<Utc>) -> Hand {
        Hand(Arc::new(Mutex::new(t)))
    }
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
    fn clock(&self) -> DeviceClock {
        let me = self.clone();
        Arc::new(move || *me.0.lock().unwrap())
    }
}

struct App {
    bg: Arc<Background>,
    host: Arc<Recorder>,
    hand: Hand,
    _dir: tempfile::TempDir,
}

fn fast() -> Timing {
    Timing {
        sync_every: Duration::from_secs(3600),
        retry_first: Duration::from_millis(200),
        follow_every: Duration::from_millis(100),
        follow_rounds: 60,
        reminder_max_sleep: Duration::from_secs(60),
    }
}

async fn signed_in(server: &TestServer, member_no: &str, timing: Timing) -> App {
    let dir = tempfile::tempdir().unwrap();
    let client = Arc::new(Client::open(dir.path()).unwrap());
    let host = Arc::new(Recorder::default());
    let hand = Hand::new(t0() + chrono::Duration::minutes(1));
    let bg = Background::with_timing(client, host.clone(), hand.clock(), timing);
    bg.sign_in(&server.url, member_no, "demo1234")
        .await
        .unwrap();
    assert!(bg.client().is_logged_in().unwrap());
    App {
        bg,
        host,
        hand,
        _dir: dir,
    }
}

#[tokio::test]
async fn one_sync_runs_at_a_time_and_a_background_sync_skips_a_running_one() {
    let server = TestServer::start().await;
    let app = signed_in(&server, "M10001", fast()).await;
    let client = app.bg.client().clone();

    let turn = client.sync_turn().await;
    assert!(client.snapshot(t0()).unwrap().sync.syncing);
    let before = app.host.changes();
    assert!(!app.bg.sync_soon().await, "skipped: a sync is running");
    assert_eq!(app.host.changes(), before, "nothing to tell the UI");

    // "sync now" waits for the running sync instead
    let waiter = {
        let bg = app.bg.clone();
        tokio::spawn(async move { bg.sync_now().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "sync now waits its turn");
    drop(turn);
    waiter.await.unwrap().unwrap();
    assert!(!client.snapshot(t0()).unwrap().sync.syncing);

    assert!(app.bg.sync_soon().await);
    assert_eq!(
        app.host.changes(),
        before + 2,
        "told when it started and ended"
    );
    assert!(
        client.calendar(t0()).unwrap().offset.is_some(),
        "a background sync measures the server clock"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_sync_state_not_a_failed_command() {
    let mut server = TestServer::start().await;
    let app = signed_in(&server, "M10002", fast()).await;
    server.stop().await;
    app.bg.sync_now().await.expect("offline is benign");
    let snap = app.bg.client().snapshot(t0()).unwrap();
    assert_eq!(snap.sync.last_error, Some(ErrorCode::Offline));
    // and nobody signed in: nothing to sync, nothing to report
    let dir = tempfile::tempdir().unwrap();
    let quiet = Arc::new(Recorder::default());
    let nobody = Background::with_timing(
        Arc::new(Client::open(dir.path()).unwrap()),
        quiet.clone(),
        Hand::new(t0()).clock(),
        fast(),
    );
    assert!(!nobody.sync_soon().await);
    nobody.sync_now().await.expect("signed out is benign");
    assert_eq!(quiet.changes(), 0);
}

/// Something that answers every request with `200 {}`: not a union server.
async fn not_a_union_server(addr: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                    )
                    .await;
            });
        }
    })
}

#[tokio::test]
async fn a_server_that_answers_nonsense_is_an_error_for_the_member() {
    let mut server = TestServer::start().await;
    let app = signed_in(&server, "M10005", fast()).await;
    server.stop().await;
    let imposter = not_a_union_server(server.addr).await;
    let err = app.bg.sync_now().await.expect_err("not benign");
    assert_eq!(err.code(), ErrorCode::BadResponse);
    imposter.abort();
}

#[tokio::test]
async fn a_redemption_is_followed_until_it_settles_and_given_up_after_the_last_round() {
    let server = TestServer::start().await;
    unionpass_server::seed::seed_demo_points(server.store.as_ref(), t0())
        .await
        .unwrap();
    let provider = ProviderProcess::start();
    let fulfil = provider.provider(Duration::from_millis(500));
    let app = signed_in(&server, "M10003", fast()).await;
    let phone = Target::PhoneBill {
        mobile: "13800138000".into(),
        amount_cents: 3000,
    };

    // nobody fulfils it: following gives up after its rounds, having synced each time
    let short = Background::with_timing(
        app.bg.client().clone(),
        app.host.clone(),
        app.hand.clock(),
        Timing {
            follow_rounds: 3,
            follow_every: Duration::from_millis(50),
            ..fast()
        },
    );
    let r = short.redeem(&phone, 3000, None).await.unwrap();
    let before = app.host.changes();
    assert!(
        !short.follow_redemptions().await,
        "still held at the server"
    );
    assert_eq!(
        app.host.changes(),
        before + 6,
        "three syncs, each started and ended"
    );
    let held = |c: &Client| {
        c.redemptions()
            .unwrap()
            .into_iter()
            .find(|x| x.id == r.id)
            .unwrap()
            .status
    };
    assert_eq!(held(short.client()), RedemptionStatus::Held);

    // the server fulfils it meanwhile: following ends as soon as the app sees it settled
    let worker = {
        let server_store = server.store.clone();
        let clock: Arc<dyn unionpass_server::Clock> = server.clock.clone();
        let store: Arc<dyn Store> = server_store;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            unionpass_server::fulfil::tick(&store, &fulfil, &clock)
                .await
                .unwrap()
        })
    };
    let started = std::time::Instant::now();
    assert!(app.bg.follow_redemptions().await);
    assert_eq!(worker.await.unwrap(), 1);
    assert!(matches!(
        held(app.bg.client()),
        RedemptionStatus::Settled { .. }
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped once settled, not after all {} rounds",
        fast().follow_rounds
    );
}

fn campaign(release_at: DateTime<Utc>) -> Campaign {
    Campaign {
        id: 0,
        title_zh: "洗衣券".into(),
        title_en: "Laundry coupon".into(),
        category: Category::Laundry,
        face_value_cents: 1000,
        terms_zh: String::new(),
        terms_en: String::new(),
        coupon_valid_from: t0(),
        coupon_valid_until: t0() + chrono::Duration::days(30),
        stock: 10,
        per_member_limit: 1,
        release_at,
        end_at: release_at + chrono::Duration::hours(1),
        eligible_unions: vec![],
        eligible_union_names: vec![],
        cancelled_at: None,
    }
}

/// A server with one campaign released at `release`, and a member's app signed in to it whose
/// reminder scheduler sleeps up to 10 minutes (so a plan it failed to make again shows).
async fn campaign_and_sleepy_app(release: DateTime<Utc>) -> (TestServer, Campaign, App) {
    let server = TestServer::start().await;
    let c = server
        .store
        .create_campaign(campaign(release), t0())
        .await
        .unwrap();
    let timing = Timing {
        reminder_max_sleep: Duration::from_secs(600),
        ..fast()
    };
    let app = signed_in(&server, "M10004", timing).await;
    (server, c, app)
}

/// Waits (10 s at most, else fails with `why`) for the app's one notification, for campaign `id`.
async fn notified_once_within_10s(app: &App, id: i64, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.host.notified.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let notified = app.host.notified.lock().unwrap().clone();
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(
        notified[0].opens,
        unionpass_client::background::Opens::Campaign(id)
    );
}

#[tokio::test]
async fn reminders_are_set_and_fired_in_server_time() {
    let release = t0() + chrono::Duration::minutes(10);
    // sleeps up to 10 minutes, so the first tick shows which clock it counts in
    // (the server lives to the end of the test)
    let (_server, c, app) = campaign_and_sleepy_app(release).await;
    // this device's clock is two minutes behind the server's (which reads t0)
    app.hand.set(t0() - chrono::Duration::minutes(2));
    let offset = app
        .bg
        .client()
        .measure_clock({
            let clock = app.hand.clock();
            move || clock()
        })
        .await
        .unwrap()
        .expect("measured");
    assert_eq!(offset.offset_ms, 120_000);
    app.bg.sync_now().await.unwrap();

    // at device t0+4 (server t0+6) a 5-minute lead is already past: refused
    app.hand.set(t0() + chrono::Duration::minutes(4));
    assert_eq!(
        app.bg.set_reminder(c.id, 5).unwrap_err().code(),
        ErrorCode::ReminderTooLate
    );
    // at device t0+1 (server t0+3) it is not
    app.hand.set(t0() + chrono::Duration::minutes(1));
    let r = app.bg.set_reminder(c.id, 5).unwrap();
    assert_eq!(r.due_at, release - chrono::Duration::minutes(5));
    // the scheduler sleeps until the due time by the server's clock (two minutes), not the
    // device's (four)
    let sleep = app.bg.reminder_tick();
    assert!(app.host.notified.lock().unwrap().is_empty());
    assert_eq!(sleep, Duration::from_secs(120));
    app.hand
        .set(t0() + chrono::Duration::minutes(2) + chrono::Duration::seconds(30));
    let sleep = app.bg.reminder_tick();
    assert!(app.host.notified.lock().unwrap().is_empty());
    assert_eq!(sleep, Duration::from_secs(30), "due at server t0+5");

    // device t0+3 is server t0+5: it fires, once, naming the campaign
    app.hand.set(t0() + chrono::Duration::minutes(3));
    let before = app.host.changes();
    app.bg.reminder_tick();
    app.bg.reminder_tick();
    let notified = app.host.notified.lock().unwrap().clone();
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(
        notified[0].opens,
        unionpass_client::background::Opens::Campaign(c.id)
    );
    assert!(notified[0].title.contains("洗衣券"), "{:?}", notified[0]);
    assert!(
        notified[0].body.contains("还有 5 分钟"),
        "{:?}",
        notified[0]
    );
    assert_eq!(app.host.changes(), before + 1, "the UI refreshes once");
}

/// A reminder set while the device's clock is far behind the server's and no offset is known
/// yet: the running scheduler first plans by the device's clock alone (and would sleep its
/// longest), so measuring the offset (after the start-up sync) must wake it to plan again in
/// server time, and the reminder fires then, not a sleep later.
#[tokio::test]
async fn measuring_the_server_clock_wakes_the_scheduler_to_plan_again() {
    let release = t0() + chrono::Duration::minutes(6);
    let (server, c, app) = campaign_and_sleepy_app(release).await;
    app.bg.sync_now().await.unwrap();
    // the device reads t0-2min and knows no offset: the 5-minute reminder (due at server
    // t0+1min) is three minutes ahead by its own clock, so it is accepted
    app.hand.set(t0() - chrono::Duration::minutes(2));
    assert!(app.bg.client().calendar(t0()).unwrap().offset.is_none());
    app.bg.set_reminder(c.id, 5).unwrap();
    // the server's clock is already 10 s past the due time
    server
        .clock
        .set(release - chrono::Duration::minutes(5) + chrono::Duration::seconds(10));
    let running = tokio::spawn({
        let bg = app.bg.clone();
        async move { bg.run().await }
    });
    notified_once_within_10s(
        &app,
        c.id,
        "the reminder waited for the scheduler's longest sleep",
    )
    .await;
    running.abort();
    assert!(app.bg.client().calendar(t0()).unwrap().offset.is_some());
}

/// A campaign moved earlier, learnt by a sync the member asked for (立即同步) while the scheduler
/// sleeps towards the old time: the scheduler plans again at once, and the reminder fires at its
/// new time, not when the old plan would have woken it.
#[tokio::test]
async fn a_sync_on_demand_wakes_the_scheduler_for_a_moved_campaign() {
    use unionpass_core::campaign::Reschedule;
    let (server, c, app) = campaign_and_sleepy_app(t0() + chrono::Duration::minutes(10)).await;
    // device and server both read t0; the 5-minute reminder is due at t0+5min
    app.hand.set(t0());
    app.bg.sync_now().await.unwrap();
    app.bg.set_reminder(c.id, 5).unwrap();
    let running = tokio::spawn({
        let bg = app.bg.clone();
        async move { bg.run().await }
    });
    // the start-up sync measures the offset (0); give the scheduler its first plan
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.bg.client().calendar(t0()).unwrap().offset.is_none() {
        assert!(std::time::Instant::now() < deadline, "no offset measured");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // moved to release at t0+6min (due t0+1min); both clocks then read 10 s past that
    let release = t0() + chrono::Duration::minutes(6);
    server
        .store
        .reschedule_campaign(
            c.id,
            Reschedule::Move {
                release_at: release,
                end_at: release + chrono::Duration::hours(1),
            },
            t0(),
        )
        .await
        .unwrap();
    let later = release - chrono::Duration::minutes(5) + chrono::Duration::seconds(10);
    server.clock.set(later);
    app.hand.set(later);
    assert!(app.host.notified.lock().unwrap().is_empty());
    app.bg.sync_now().await.unwrap();
    notified_once_within_10s(
        &app,
        c.id,
        "the scheduler kept the old campaign time's plan",
    )
    .await;
    running.abort();
}

/// A member waiting for a place hears natively, once, when a cancellation moves them up: the
/// notification names the activity, its time and place, and opens the activities.
#[tokio::test]
async fn a_promotion_from_the_waitlist_is_announced_once() {
    use unionpass_client::background::Opens;
    let server = TestServer::start().await;
    let starts_at = t0() + chrono::Duration::days(2);
    let a = server
        .store
        .create_activity(
            crate::activity("插花课", "工人文化宫", starts_at, t0(), (1, 1, 0)),
            t0(),
        )
        .await
        .unwrap();
    let alice = signed_in(&server, "M10004", fast()).await;
    let bob = signed_in(&server, "M10005", fast()).await;
    let now = t0() + chrono::Duration::minutes(1);
    alice.bg.client().sign_up(a.id, 0, now).await.unwrap();
    bob.bg.client().sign_up(a.id, 0, now).await.unwrap();
    bob.bg.sync_now().await.unwrap();
    assert!(
        bob.host.notified.lock().unwrap().is_empty(),
        "waiting is not news"
    );

    alice.bg.client().cancel_signup(a.id).await.unwrap();
    bob.bg.sync_now().await.unwrap();
    bob.bg.sync_now().await.unwrap();
    let notified = bob.host.notified.lock().unwrap().clone();
    assert_eq!(notified.len(), 1, "once: {notified:?}");
    assert_eq!(notified[0].opens, Opens::Activity(a.id));
    assert_eq!(notified[0].title, "候补成功：插花课");
    assert!(notified[0].body.contains("工人文化宫"), "{:?}", notified[0]);
    assert!(alice.host.notified.lock().unwrap().is_empty());

    // bob lets the place go, waits again behind alice's return, and is moved up again: told again
    bob.bg.client().cancel_signup(a.id).await.unwrap();
    alice.bg.client().sign_up(a.id, 0, now).await.unwrap();
    bob.bg.client().sign_up(a.id, 0, now).await.unwrap();
    bob.bg.sync_now().await.unwrap();
    alice.bg.client().cancel_signup(a.id).await.unwrap();
    bob.bg.sync_now().await.unwrap();
    assert_eq!(bob.host.notified.lock().unwrap().len(), 2);
}

/// Activities remind natively, by the server's clock: five minutes before sign-up opens when the
/// member asked, and an hour before one they have a place at, each once; a cancelled sign-up
/// takes its reminder away.
#[tokio::test]
async fn activities_remind_before_the_opening_and_before_the_start() {
    use unionpass_client::background::Opens;
    let server = TestServer::start().await;
    let app = signed_in(&server, "M10004", fast()).await;
    let start = t0() + chrono::Duration::hours(5);
    let make = |opens_at| crate::activity("羽毛球赛", "体育馆", start, opens_at, (10, 0, 0));
    let later = server
        .store
        .create_activity(make(t0() + chrono::Duration::hours(2)), t0())
        .await
        .unwrap();
    let open_now = server
        .store
        .create_activity(make(t0()), t0())
        .await
        .unwrap();
    app.bg.sync_now().await.unwrap();
    app.bg.set_opening_reminder(later.id, true).unwrap();
    let now = t0() + chrono::Duration::minutes(1);
    app.bg.client().sign_up(open_now.id, 0, now).await.unwrap();

    // nothing is due yet; the scheduler sleeps until the opening reminder (capped)
    app.hand.set(now);
    app.bg.reminder_tick();
    assert!(app.host.notified.lock().unwrap().is_empty());
    // five minutes before sign-up opens
    app.hand
        .set(t0() + chrono::Duration::hours(2) - chrono::Duration::minutes(5));
    app.bg.reminder_tick();
    app.bg.reminder_tick();
    {
        let n = app.host.notified.lock().unwrap().clone();
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].opens, Opens::Activity(later.id));
        assert_eq!(n[0].title, "「羽毛球赛」即将开始报名");
    }
    // an hour before the start: the one with a place only (the other has no sign-up)
    app.hand.set(start - chrono::Duration::hours(1));
    app.bg.reminder_tick();
    let n = app.host.notified.lock().unwrap().clone();
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(n[1].opens, Opens::Activity(open_now.id));
    assert!(n[1].body.contains("体育馆"), "{:?}", n[1]);

    // a cancelled sign-up's reminder goes with it
    let other = signed_in(&server, "M10005", fast()).await;
    other
        .bg
        .client()
        .sign_up(open_now.id, 0, now)
        .await
        .unwrap();
    other.bg.client().cancel_signup(open_now.id).await.unwrap();
    other.hand.set(start - chrono::Duration::hours(1));
    other.bg.reminder_tick();
    assert!(other.host.notified.lock().unwrap().is_empty());
}

/// While the server cannot be reached the periodic sync backs off (each wait longer, the status
/// says when the next try is), and syncs again on its own once the server is back; a server that
/// answers "too many requests" with `Retry-After` is waited for that long, not the short back-off.
#[tokio::test]
async fn the_periodic_sync_backs_off_says_when_it_retries_and_honours_retry_after() {
    let mut server = TestServer::start()
        .await
        .tweaked(|s| s.with_sync_rate(0.05, 4.0))
        .await;
    let app = signed_in(&server, "M10002", fast()).await;
    let client = app.bg.client().clone();
    let now = t0() + chrono::Duration::minutes(1);

    server.stop().await;
    let task = tokio::spawn(app.bg.clone().run());
    // watch the retries: each wait (from the device's fixed clock) within half to all of
    // 200 ms doubled per failure
    let mut waits: Vec<chrono::Duration> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while waits.len() < 4 && std::time::Instant::now() < deadline {
        let sync = client.snapshot(now).unwrap().sync;
        if let Some(at) = sync.retry_at {
            assert_eq!(sync.last_error, Some(ErrorCode::Offline));
            let wait = at - now;
            if waits.last() != Some(&wait) {
                waits.push(wait);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waits.len() >= 4, "retries seen: {waits:?}");
    for (i, w) in waits.iter().enumerate() {
        let ceiling = 200 << i;
        let ms = w.num_milliseconds();
        assert!(
            ms >= ceiling / 2 && ms <= ceiling,
            "retry {i}: waited {ms} ms, not within {}..={ceiling}: {waits:?}",
            ceiling / 2
        );
    }
    // back: the next try works without the member doing anything, and the retry note goes
    server.restart().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sync = client.snapshot(now).unwrap().sync;
        if sync.last_error.is_none() && sync.last_ok_at.is_some() {
            assert_eq!(sync.retry_at, None);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never synced again: {sync:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();

    // the server's limit (4 at once, then one every 20 s on its fixed clock): syncs until
    // refused, then the loop waits as long as the server said, not 200 ms
    let refused = loop {
        match client.sync(now).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert_eq!(refused.retry_after(), Some(Duration::from_secs(20)));
    let task = tokio::spawn(app.bg.clone().run());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let wait = loop {
        let sync = client.snapshot(now).unwrap().sync;
        if let (Some(ErrorCode::RateLimited), Some(at)) = (sync.last_error, sync.retry_at) {
            break at - now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no retry planned: {sync:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    task.abort();
    assert_eq!(
        wait,
        chrono::Duration::seconds(20),
        "Retry-After is the floor"
    );
}
