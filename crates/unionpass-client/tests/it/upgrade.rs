//! Upgrades with data: the app finds a store written by an older release, at every earlier
//! schema version, holding a member's coupons, points, sign-up and reminder and changes still
//! waiting in the outbox (a coupon marked used, a phone top-up). It migrates the store, keeps the
//! member signed in, sends the waiting changes exactly once, and after its next sync shows what a store that was never old shows.
//!
//! The older stores are made from a live one (`unionpass_sqlite::older_copy`: the first N
//! migrations, then the rows that fit them), so each new migration is tested against every
//! older schema without a fixture to keep.

use chrono::Duration;
use unionpass_client::client::DB_FILE;
use unionpass_client::store::Store;
use unionpass_client::Client;
use unionpass_core::api::ChangeKind;
use unionpass_core::wallet::WalletFilter;
use unionpass_server::testing::{t0, TestServer};

/// Everything the member's screens show, as JSON, for comparing two stores.
fn screens(client: &Client, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let snapshot = client.snapshot(now).unwrap();
    let activities = client.activities(now).unwrap();
    serde_json::json!({
        "profile": snapshot.profile,
        "wallet": client.wallet(&WalletFilter::default(), 10_000, now).unwrap(),
        "points": client.points_view(now).unwrap(),
        "activities": activities.cards,
        "polls": activities.polls,
        "calendar": client.calendar(now).unwrap(),
    })
}

/// The screens without what only this device knew and a store of `version` could not hold: a
/// reminder (version 6 brought them), an activity's opening reminder (17). The server's data
/// all comes back with the next sync; these do not, as nothing older ever stored them.
fn without_local_only(mut screens: serde_json::Value, version: usize) -> serde_json::Value {
    if version < 6 {
        for e in screens["calendar"]["entries"].as_array_mut().unwrap() {
            e["reminder"] = serde_json::Value::Null;
        }
    }
    if version < 17 {
        for a in screens["activities"].as_array_mut().unwrap() {
            a["opening_reminder"] = serde_json::Value::Null;
        }
    }
    screens
}

/// Where two JSON values first differ (a path and both values), if they do.
fn first_difference(
    got: &serde_json::Value,
    want: &serde_json::Value,
    path: String,
) -> Option<String> {
    use serde_json::Value;
    match (got, want) {
        (Value::Object(a), Value::Object(b)) => b.iter().find_map(|(k, v)| {
            first_difference(a.get(k).unwrap_or(&Value::Null), v, format!("{path}.{k}"))
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: shows {a}, a store never old shows {b}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_every_earlier_version_is_migrated_keeps_its_member_and_sends_its_outbox_once()
{
    let server = TestServer::start()
        .await
        .tweaked(|s| s.with_sync_rate(0.0, 0.0))
        .await;
    let member_id = server
        .store
        .bench_history("M10001", 30, 200, t0())
        .await
        .unwrap();
    // the demo offer, and enough points for a top-up
    unionpass_server::seed::seed_demo_points(server.store.as_ref(), t0())
        .await
        .unwrap();
    server
        .store
        .accrue_points(member_id, 10_000, t0() + Duration::days(300), "grant", t0())
        .await
        .unwrap();
    let later = server
        .store
        .create_campaign(
            unionpass_core::campaign::Campaign {
                release_at: t0() + Duration::days(2),
                end_at: t0() + Duration::days(3),
                ..crate::wallet::released_campaign(
                    "电影票",
                    "Cinema ticket",
                    unionpass_core::campaign::Category::Cinema,
                    3000,
                    30,
                )
            },
            t0(),
        )
        .await
        .unwrap();
    let activity = server
        .store
        .create_activity(
            crate::activity(
                "读书会",
                "职工书屋",
                t0() + Duration::days(5),
                t0(),
                (20, 5, 1),
            ),
            t0(),
        )
        .await
        .unwrap();

    // the live store: signed in and synced, a sign-up and a reminder, and a coupon marked used
    // at the merchant while offline (its change waits in the outbox)
    let live_dir = tempfile::tempdir().unwrap();
    let now = t0() + Duration::minutes(1);
    let live = Client::open(live_dir.path()).unwrap();
    live.login(&server.url, "M10001", "demo1234", "phone", now)
        .await
        .unwrap();
    live.sign_up(activity.id, 1, now).await.unwrap();
    live.set_reminder(later.id, 5, now).unwrap();
    // the union withdraws one of the member's coupons (a kind of change only the newest stores
    // keep: an older one skipped it, and must fetch the log again to learn it)
    let first = live.wallet(&WalletFilter::default(), 10_000, now).unwrap();
    server
        .store
        .void_coupon(&first.items[0].coupon.code, now)
        .await
        .unwrap();
    live.sync(now).await.unwrap();
    let wallet = live.wallet(&WalletFilter::default(), 10_000, now).unwrap();
    assert!(
        wallet
            .items
            .iter()
            .any(|c| c.status == unionpass_core::wallet::CouponStatus::Voided),
        "the withdrawal arrived"
    );
    let coupon = wallet
        .items
        .iter()
        .find(|c| c.status == unionpass_core::wallet::CouponStatus::Usable)
        .expect("a usable coupon")
        .coupon
        .id;
    live.use_coupon(coupon, now).unwrap();
    // and a phone top-up queued offline: unlike marking a coupon used, applying it twice
    // would take the points twice
    let phone = unionpass_core::redeem::Target::PhoneBill {
        mobile: "13800138000".into(),
        amount_cents: 3000,
    };
    let price = live.quote_redemption(&phone, now).unwrap().points;
    let top_up = live.redeem(&phone, price, now).unwrap().id;
    drop(live);
    let src = live_dir.path().join(DB_FILE);
    let held = Store::open(&src).unwrap().held().unwrap();
    assert_eq!(held.outbox, 2);
    assert!(held.coupons >= 30 && held.points_entries >= 200, "{held:?}");

    // older copies, made before anyone sends the waiting change
    let migrations = unionpass_client::store::MIGRATIONS;
    let copies: Vec<(usize, tempfile::TempDir)> = (1..migrations.len())
        .map(|version| {
            let dir = tempfile::tempdir().unwrap();
            let rows =
                unionpass_sqlite::older_copy(&src, &dir.path().join(DB_FILE), migrations, version)
                    .unwrap();
            assert!(rows > 0, "version {version}: nothing copied");
            if version < 7 {
                // an app without points (7) could not have queued a top-up
                rusqlite::Connection::open(dir.path().join(DB_FILE))
                    .unwrap()
                    .execute(
                        "DELETE FROM outbox WHERE body LIKE '%\"op\":\"redeem\"%'",
                        [],
                    )
                    .unwrap();
            }
            (version, dir)
        })
        .collect();

    // what a store that was never old shows after its next sync
    let live = Client::open(live_dir.path()).unwrap();
    live.sync(now).await.unwrap();
    let want = screens(&live, now);
    let want_held = Store::open(&src).unwrap().held().unwrap();
    assert_eq!(want_held.outbox, 0);
    drop(live);

    for (version, dir) in copies {
        let at = format!("from schema version {version}");
        let client = Client::open(dir.path()).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(client.is_logged_in().unwrap(), "{at}: still signed in");
        let before = Store::open(&dir.path().join(DB_FILE))
            .unwrap()
            .held()
            .unwrap();
        assert_eq!(
            before.outbox,
            if version < 7 { 1 } else { 2 },
            "{at}: the waiting changes are kept"
        );
        client
            .sync(now)
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        let store = Store::open(&dir.path().join(DB_FILE)).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "{at}");
        assert_eq!(store.held().unwrap(), want_held, "{at}");
        drop(store);
        let (got, want) = (
            without_local_only(screens(&client, now), version),
            without_local_only(want.clone(), version),
        );
        if let Some(diff) = first_difference(&got, &want, String::new()) {
            panic!("{at}: {diff}");
        }
    }

    // every copy sent the same changes: the server applied each once
    let holds = server
        .store
        .points_entries(member_id)
        .await
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(&e.kind, unionpass_core::points::EntryKind::Hold { redemption, .. }
                if *redemption == top_up)
        })
        .count();
    assert_eq!(holds, 1, "the top-up's points were held once");
    assert_eq!(
        server
            .store
            .redemptions(member_id)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.id == top_up)
            .count(),
        1
    );
    let log = server
        .store
        .changes_since(member_id, 0, 1_000_000)
        .await
        .unwrap();
    let uses = log
        .iter()
        .filter(
            |c| matches!(&c.kind, ChangeKind::CouponUsed { coupon_id, .. } if *coupon_id == coupon),
        )
        .count();
    assert_eq!(uses, 1);
}

/// A store from before [`REFETCH_BELOW`] fetches the whole log again after the upgrade. What it
/// had synced is history there: a promotion and a move the member was told of on this device are
/// not told again. What happened since its last sync is news, told as any sync tells it: the
/// promotion the member waited for, and the move of an activity they have a place at.
///
/// [`REFETCH_BELOW`]: unionpass_client::store::REFETCH_BELOW
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_fetching_the_log_again_tells_what_happened_since_its_last_sync_once() {
    use unionpass_core::activity::ChangeNotice;
    use unionpass_server::store::ActivityChange;
    let server = TestServer::start().await;
    let now = t0() + Duration::minutes(1);
    let starts = t0() + Duration::days(3);
    let create = |title: &'static str, seats: i64| {
        let store = server.store.clone();
        async move {
            store
                .create_activity(
                    crate::activity(title, "职工之家", starts, t0(), (seats, 1, 0)),
                    t0(),
                )
                .await
                .unwrap()
        }
    };
    let move_a_day = |a: &unionpass_core::activity::Activity| {
        let (store, id) = (server.store.clone(), a.id);
        let to = ActivityChange::Move {
            starts_at: a.starts_at + Duration::days(1),
            ends_at: a.ends_at + Duration::days(1),
        };
        async move { store.change_activity(id, to, now).await.unwrap() }
    };
    // promoted and moved before the copy (told on this device), and after it
    let (promoted_before, moved_before) = (create("合唱排练", 1).await, create("读书会", 5).await);
    let (promoted_after, moved_after) = (create("羽毛球赛", 1).await, create("插花课", 5).await);

    let sign_in = |no: &'static str, dir: &tempfile::TempDir| {
        let (url, path) = (server.url.clone(), dir.path().to_path_buf());
        async move {
            let app = Client::open(&path).unwrap();
            app.login(&url, no, "demo1234", "phone", now).await.unwrap();
            app
        }
    };
    let (live_dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (live, other) = (
        sign_in("M10004", &live_dir).await,
        sign_in("M10005", &other_dir).await,
    );
    for a in [&promoted_before, &promoted_after] {
        other.sign_up(a.id, 0, now).await.unwrap();
    }
    for a in [
        &promoted_before,
        &moved_before,
        &promoted_after,
        &moved_after,
    ] {
        live.sign_up(a.id, 0, now).await.unwrap();
    }
    other.cancel_signup(promoted_before.id).await.unwrap();
    move_a_day(&moved_before).await;
    live.sync(now).await.unwrap();
    let ids =
        |v: Vec<unionpass_core::activity::Activity>| v.iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(live.take_promotions(now).unwrap()),
        vec![promoted_before.id]
    );
    let told = live.take_activity_notices(now).unwrap();
    assert_eq!(
        ids(told.into_iter().map(|(a, _)| a).collect()),
        vec![moved_before.id]
    );
    drop(live);

    // the store as the last release that fetches again left it, then what happened since
    let old_copy = || {
        let dir = tempfile::tempdir().unwrap();
        unionpass_sqlite::older_copy(
            &live_dir.path().join(DB_FILE),
            &dir.path().join(DB_FILE),
            unionpass_client::store::MIGRATIONS,
            unionpass_client::store::REFETCH_BELOW as usize - 1,
        )
        .unwrap();
        dir
    };
    let old_dir = old_copy();
    // the same store, had its first sync been cut off before the last page: it never finished
    // one, so what it fetches after the upgrade is all history, as on a new phone
    let cut_dir = old_copy();
    let forgotten = rusqlite::Connection::open(cut_dir.path().join(DB_FILE))
        .unwrap()
        .execute("DELETE FROM meta WHERE key = 'last_sync_ok_at'", [])
        .unwrap();
    assert_eq!(forgotten, 1);
    other.cancel_signup(promoted_after.id).await.unwrap();
    move_a_day(&moved_after).await;

    let upgraded = Client::open(old_dir.path()).unwrap();
    upgraded.sync(now).await.unwrap();
    assert_eq!(
        ids(upgraded.take_promotions(now).unwrap()),
        vec![promoted_after.id],
        "only the promotion since the last sync"
    );
    let told = upgraded.take_activity_notices(now).unwrap();
    assert_eq!(
        told.iter().map(|(a, n)| (a.id, *n)).collect::<Vec<_>>(),
        vec![(
            moved_after.id,
            ChangeNotice::Moved {
                was_starts_at: moved_after.starts_at,
                was_ends_at: moved_after.ends_at,
            }
        )],
        "only the move since the last sync, from the time the member knew"
    );
    let cut = Client::open(cut_dir.path()).unwrap();
    cut.sync(now).await.unwrap();
    assert!(cut.take_promotions(now).unwrap().is_empty());
    assert!(cut.take_activity_notices(now).unwrap().is_empty());
    let mine = |app: &Client| {
        let cards = app.activities(now).unwrap().cards;
        cards
            .iter()
            .map(|c| format!("{} {:?}", c.activity.id, c.mine))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        mine(&cut),
        mine(&upgraded),
        "the same activities and places as the store that had finished its syncs"
    );
    // and a new phone catching up tells nothing: all of it is history there
    let phone_dir = tempfile::tempdir().unwrap();
    let phone = sign_in("M10004", &phone_dir).await;
    assert!(phone.take_promotions(now).unwrap().is_empty());
    assert!(phone.take_activity_notices(now).unwrap().is_empty());
}
