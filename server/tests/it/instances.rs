//! Several server instances over one PostgreSQL database, tested together: each instance has its
//! own memory (sessions, campaign copies), so what one instance learns the others must learn from
//! the database, in time.

use std::sync::Arc;

use chrono::Duration;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use unionpass_core::campaign::{GrabOutcome, Reschedule};
use unionpass_core::ErrorCode;
use unionpass_server::store::postgres::PgSettings;
use unionpass_server::store::prelude::*;
use unionpass_server::store::{GrabJob, GroupPaths, PgStore};
use unionpass_server::testing::PgTestDb;
use uuid::Uuid;

use crate::grab::{campaign, grab};
use crate::util::{t0, TestServer};

/// A second instance over the first one's database, its clock at the same time.
async fn second(a: &TestServer) -> TestServer {
    let store = PgStore::connect(a.database_url().expect("PostgreSQL"), 8)
        .await
        .unwrap();
    let b = TestServer::start_with(Arc::new(store), tempfile::tempdir().unwrap()).await;
    b.clock.set(a.clock.now_utc());
    b
}

/// Sign-out everywhere through one instance: the other refuses the session on its next request,
/// and its race path, which judges from memory, gives no coupon.
#[tokio::test]
async fn a_session_ended_through_one_instance_is_refused_by_the_other() {
    let a = TestServer::start_postgres().await;
    let b = second(&a).await;
    let c = a.store.create_campaign(campaign(5, 1), t0()).await.unwrap();
    let token = a.login("M10002").await;
    // b knows the session (it judged a grab with it) before it ends
    assert!(matches!(
        grab(&b, &token, c.id, Uuid::new_v4())
            .await
            .map(|r| r.outcome),
        Ok(GrabOutcome::NotStarted { .. })
    ));
    let ended: Value = a
        .http
        .post(a.at("/v1/sessions/end-all"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ended["ended"], 1);
    let sync = b
        .http
        .get(b.at("/v1/sync?cursor=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), StatusCode::UNAUTHORIZED);
    a.clock.set(c.release_at);
    b.clock.set(c.release_at);
    assert_eq!(
        grab(&b, &token, c.id, Uuid::new_v4()).await.unwrap_err(),
        ErrorCode::SessionEnded
    );
    assert_eq!(a.store.audit(c.id).await.unwrap().granted, 0);
}

/// A campaign cancelled through one instance (the admin command's store call) is obeyed by every
/// instance from its release: each keeps its copy at most `CACHE_FOR`, and a campaign cannot be
/// changed in its last minute.
#[tokio::test]
async fn a_campaign_cancelled_through_one_instance_is_obeyed_by_every_instance() {
    let a = TestServer::start_postgres().await;
    let b = second(&a).await;
    let c = a.store.create_campaign(campaign(5, 1), t0()).await.unwrap();
    let (ta, tb) = (a.login("M10003").await, a.login("M10004").await);
    // both instances hold a copy of the campaign
    for (s, t) in [(&a, &ta), (&b, &tb)] {
        assert!(matches!(
            grab(s, t, c.id, Uuid::new_v4()).await.map(|r| r.outcome),
            Ok(GrabOutcome::NotStarted { .. })
        ));
    }
    b.store
        .reschedule_campaign(c.id, Reschedule::Cancel, t0() + Duration::minutes(2))
        .await
        .unwrap();
    for (s, t) in [(&a, &ta), (&b, &tb)] {
        s.clock.set(c.release_at);
        let answer = grab(s, t, c.id, Uuid::new_v4()).await.unwrap();
        assert_eq!(answer.outcome, GrabOutcome::Ended, "{answer:?}");
    }
    assert_eq!(a.store.audit(c.id).await.unwrap().granted, 0);
}

/// Two instances starting at once on a fresh database migrate it once: both connect, and the
/// schema is at the last version, recorded once.
#[tokio::test]
async fn two_instances_starting_at_once_migrate_once() {
    let db = PgTestDb::create().await;
    let (a, b) = tokio::join!(PgStore::connect(&db.url, 2), PgStore::connect(&db.url, 2));
    a.unwrap();
    b.unwrap();
    assert_eq!(
        db.schema_versions().await,
        vec![unionpass_server::store::postgres::MIGRATIONS.len() as i32]
    );
}

/// Fulfilment run by two instances at the same moment: each redemption reaches the provider once
/// (the claim is a lease in the database, not a lock in one process) and is settled once.
#[tokio::test]
async fn fulfilment_on_two_instances_at_once_reaches_the_provider_once_per_order() {
    use unionpass_core::redeem::RedemptionStatus;
    let (a, b, token) = two_instances_with_points().await;
    let ids: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    let pushed = redeem_top_ups(&a, &token, &ids).await;
    assert!(
        pushed
            .results
            .iter()
            .all(|r| matches!(r.outcome, unionpass_core::api::MutationOutcome::Applied)),
        "{pushed:?}"
    );
    let provider = unionpass_server::testing::ProviderProcess::start();
    let client = provider.provider(std::time::Duration::from_secs(2));
    let (on_a, on_b) = tokio::join!(a.fulfil(&client), b.fulfil(&client));
    assert_eq!(on_a + on_b, ids.len(), "each settled once: {on_a} + {on_b}");
    let orders = provider.orders().await;
    assert_eq!(orders.len(), ids.len());
    assert!(
        orders.iter().all(|o| o["times"] == 1),
        "one request per order: {orders:?}"
    );
    // and nothing is left for either
    assert_eq!(a.fulfil(&client).await + b.fulfil(&client).await, 0);
    let member = a.store.member_auth("M10001").await.unwrap().unwrap();
    let all = a.store.redemptions(member.member_id).await.unwrap();
    assert!(all
        .iter()
        .filter(|r| ids.contains(&r.id))
        .all(|r| matches!(r.status, RedemptionStatus::Settled { .. })));
}

/// Two instances writing a member's changes at the same time while the member's app pulls: the
/// pages, followed by their cursors, carry every change once — none skipped (a change committed
/// late with a smaller number) and none twice.
#[tokio::test]
async fn writers_on_two_instances_while_a_client_pulls_skip_and_repeat_nothing() {
    use unionpass_core::api::{ChangeKind, SyncResponse};
    use unionpass_core::campaign::Campaign;
    use unionpass_server::store::GrabJob;
    let a = TestServer::start_postgres().await;
    let b = second(&a).await;
    let grants = 40usize;
    let c = a
        .store
        .create_campaign(
            Campaign {
                release_at: t0(),
                ..campaign(grants as i64, grants as i64)
            },
            t0(),
        )
        .await
        .unwrap();
    let token = a.login("M10005").await;
    let member = a.store.member_auth("M10005").await.unwrap().unwrap();
    let page0: SyncResponse = a.get_json("/v1/sync?cursor=0", Some(&token)).await;
    let union_id = page0.profile.union.id;
    let writers = (0..grants).map(|i| {
        let store = if i % 2 == 0 {
            a.store.clone()
        } else {
            b.store.clone()
        };
        async move {
            store
                .grab(GrabJob {
                    member_id: member.member_id,
                    union_id,
                    campaign_id: c.id,
                    key: Uuid::new_v4(),
                    now: t0(),
                    session: None,
                })
                .await
                .unwrap()
        }
    });
    let writing = tokio::spawn(futures_util::future::join_all(writers));
    let mut cursor = page0.cursor;
    let mut seen: Vec<i64> = Vec::new();
    let pull = |cursor: i64| {
        let (s, token) = (if cursor % 2 == 0 { &a } else { &b }, token.clone());
        async move {
            s.get_json::<SyncResponse>(&format!("/v1/sync?cursor={cursor}"), Some(&token))
                .await
        }
    };
    let mut pulled_while_writing = 0;
    while !writing.is_finished() {
        pulled_while_writing += 1;
        let page = pull(cursor).await;
        for ch in &page.changes {
            if let ChangeKind::CouponGranted(coupon) = &ch.kind {
                seen.push(coupon.id);
            }
        }
        cursor = page.cursor;
    }
    assert!(pulled_while_writing > 0, "the pulls ran during the writes");
    let answers = writing.await.unwrap();
    assert!(answers
        .iter()
        .all(|r| matches!(r.outcome, GrabOutcome::Granted { .. })));
    loop {
        let page = pull(cursor).await;
        for ch in &page.changes {
            if let ChangeKind::CouponGranted(coupon) = &ch.kind {
                seen.push(coupon.id);
            }
        }
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a change came twice: {seen:?}");
    assert_eq!(seen.len(), grants, "a change was skipped: {seen:?}");
}

/// Three instances over one database, a burst spread over them (two grabs per member and a
/// double tap of each): each instance grants from the stock it leased, and together they grant
/// exactly the stock, none twice, each member at most their limit, every grant kept under its
/// key.
#[tokio::test]
async fn three_instances_grant_exactly_the_stock_from_their_leases() {
    let a = TestServer::start_postgres().await;
    let (b, c) = (second(&a).await, second(&a).await);
    let camp = released(&a, 130, 2).await;
    let tokens = a.store.bench_members(90, t0()).await.unwrap();
    let servers = [Arc::new(a), Arc::new(b), Arc::new(c)];
    for s in &servers {
        s.clock.set(t0() + Duration::minutes(1));
    }
    // each member: two keys, the first sent twice, through three different instances
    let sends: Vec<(usize, String, Uuid)> = tokens
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            let (k1, k2) = (Uuid::new_v4(), Uuid::new_v4());
            [
                (i, t.clone(), k1),
                ((i + 1), t.clone(), k1),
                ((i + 2), t.clone(), k2),
            ]
        })
        .collect();
    let answers = join_all(sends.iter().map(|(i, t, k)| {
        let s = servers[i % 3].clone();
        let (t, k) = (t.clone(), *k);
        async move { grab(&s, &t, camp.id, k).await.unwrap() }
    }))
    .await;
    let mut by_key: std::collections::HashMap<Uuid, Vec<&GrabOutcome>> = Default::default();
    for a in &answers {
        by_key.entry(a.key).or_default().push(&a.outcome);
    }
    let granted: Vec<Uuid> = by_key
        .iter()
        .filter(|(_, o)| o.iter().any(|o| matches!(o, GrabOutcome::Granted { .. })))
        .map(|(k, _)| *k)
        .collect();
    // a granted key answers the same coupon each time it is asked
    for k in &granted {
        let o = &by_key[k];
        assert!(o.iter().all(|x| x == &o[0]), "{o:?}");
    }
    assert_eq!(granted.len(), 130);
    let audit = servers[0].store.audit(camp.id).await.unwrap();
    assert_eq!(
        (
            audit.granted,
            audit.counter,
            audit.oversold,
            audit.double_grants
        ),
        (130, 130, 0, 0)
    );
    assert_eq!(
        servers[1]
            .store
            .missing_grants(granted.clone())
            .await
            .unwrap(),
        0
    );
    // every instance answers sold out now (or the limit), and nothing is left anywhere
    for s in &servers {
        let again = grab(s, &tokens[89], camp.id, Uuid::new_v4()).await.unwrap();
        assert!(
            matches!(
                again.outcome,
                GrabOutcome::SoldOut | GrabOutcome::LimitReached
            ),
            "{again:?}"
        );
        let left = s
            .store
            .stock_left(t0() + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(
            left.iter().find(|l| l.campaign_id == camp.id).unwrap().left,
            0
        );
    }
}

/// A grab on an instance of its own, in a runtime that is then shut down without running
/// anything more: the instance dies holding the stock it leased (no goodbye).
fn grab_and_die(url: &str, job: GrabJob, settings: PgSettings) -> GrabOutcome {
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let answer = rt.block_on(async {
            let store = PgStore::connect_with(&url, settings).await.unwrap();
            let answer = store.grab(job).await.unwrap();
            std::mem::forget(store);
            answer
        });
        rt.shutdown_background();
        answer.outcome
    })
    .join()
    .unwrap()
}

/// An instance that dies holding leased stock loses nothing: once the stock is gone, the others
/// take its lease (no group of it holds the row any more) and grant it, and only then is the
/// campaign sold out. No one is told sold out while a unit is left anywhere.
#[tokio::test]
async fn a_dead_instances_leased_stock_is_granted_by_the_others() {
    let a = TestServer::start_postgres().await;
    let url = a.database_url().unwrap().to_string();
    let camp = released(&a, 40, 1).await;
    let at = t0() + Duration::minutes(1);
    let first = a.store.member_auth("M10001").await.unwrap().unwrap();
    let job = GrabJob {
        member_id: first.member_id,
        union_id: 0,
        campaign_id: camp.id,
        key: Uuid::new_v4(),
        now: at,
        session: None,
    };
    let died = grab_and_die(
        &url,
        job,
        PgSettings {
            pool: 2,
            lease_units: 30,
            ..PgSettings::default()
        },
    );
    assert!(matches!(died, GrabOutcome::Granted { .. }), "{died:?}");
    // 29 units leased to the dead instance, 10 in the stock: all of it is still "left"
    let left = || async {
        a.store
            .stock_left(at)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.campaign_id == camp.id)
            .unwrap()
            .left
    };
    assert_eq!(left().await, 39);

    let tokens = a.store.bench_members(45, t0()).await.unwrap();
    a.clock.set(at);
    let outcomes = join_all(tokens.iter().map(|t| {
        let (a, t) = (&a, t.clone());
        async move { grab(a, &t, camp.id, Uuid::new_v4()).await.unwrap().outcome }
    }))
    .await;
    let granted = outcomes
        .iter()
        .filter(|o| matches!(o, GrabOutcome::Granted { .. }))
        .count();
    let sold_out = outcomes
        .iter()
        .filter(|o| matches!(o, GrabOutcome::SoldOut))
        .count();
    assert_eq!((granted, sold_out), (39, 6), "{outcomes:?}");
    let audit = a.store.audit(camp.id).await.unwrap();
    assert_eq!(
        (
            audit.granted,
            audit.counter,
            audit.oversold,
            audit.double_grants
        ),
        (40, 40, 0, 0)
    );
    assert_eq!(left().await, 0);
}

/// An instance that stops gives the stock it leased back at once: another instance grants all
/// of it without waiting for the lease to expire.
#[tokio::test]
async fn a_stopping_instance_gives_its_leased_stock_back() {
    let a = TestServer::start_postgres().await;
    let b = second(&a).await;
    let camp = released(&a, 60, 1).await;
    let tokens = a.store.bench_members(70, t0()).await.unwrap();
    a.clock.set(t0() + Duration::minutes(1));
    b.clock.set(t0() + Duration::minutes(1));
    // b leases 50 and grants 1
    assert!(matches!(
        grab(&b, &tokens[0], camp.id, Uuid::new_v4())
            .await
            .unwrap()
            .outcome,
        GrabOutcome::Granted { .. }
    ));
    b.store.return_stock().await.unwrap();
    // back in the stock itself, no lease left holding any
    let url = a.database_url().unwrap().to_string();
    assert_eq!(
        db_number(
            &url,
            "SELECT coalesce(sum(remaining), 0)::BIGINT FROM campaign_stock"
        )
        .await,
        59
    );
    assert_eq!(
        db_number(
            &url,
            "SELECT coalesce(sum(remaining), 0)::BIGINT FROM stock_leases"
        )
        .await,
        0
    );
    let a = Arc::new(a);
    let outcomes = join_all(tokens[1..].iter().map(|t| {
        let (a, t) = (a.clone(), t.clone());
        async move { grab(&a, &t, camp.id, Uuid::new_v4()).await.unwrap().outcome }
    }))
    .await;
    let granted = outcomes
        .iter()
        .filter(|o| matches!(o, GrabOutcome::Granted { .. }))
        .count();
    assert_eq!(granted, 59);
    let audit = a.store.audit(camp.id).await.unwrap();
    assert_eq!((audit.granted, audit.counter, audit.oversold), (60, 60, 0));
}

/// A request that cannot get a database connection within the pool's wait is answered
/// `unavailable` (503, `Retry-After`), not held without end and not an internal error; once a
/// connection is free again the same request is served.
#[tokio::test]
async fn a_request_with_no_connection_in_time_is_answered_unavailable() {
    let db = unionpass_server::testing::PgTestDb::create().await;
    let store = PgStore::connect_with(
        &db.url,
        PgSettings {
            pool: 1,
            pool_wait: std::time::Duration::from_millis(300),
            ..PgSettings::default()
        },
    )
    .await
    .unwrap();
    let s = Arc::new(TestServer::start_with(Arc::new(store), tempfile::tempdir().unwrap()).await);
    let c = s.store.create_campaign(campaign(5, 1), t0()).await.unwrap();
    let token = s.login("M10001").await;
    // another client holds the campaign's row; a move of it waits for that with the pool's only
    // connection
    let (mut other, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let held = other.transaction().await.unwrap();
    held.execute("SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE", &[&c.id])
        .await
        .unwrap();
    let mover = {
        let s = s.clone();
        tokio::spawn(async move {
            s.store
                .reschedule_campaign(
                    c.id,
                    unionpass_core::campaign::Reschedule::Cancel,
                    t0() + Duration::minutes(1),
                )
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let resp = s
        .http
        .get(s.at("/v1/sync?cursor=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(3),
        "{waited:?}"
    );
    held.rollback().await.unwrap();
    mover.await.unwrap().unwrap();
    let again = s
        .http
        .get(s.at("/v1/sync?cursor=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

/// An instance claims held redemptions (its lease on them) and dies: one order it had sent, the
/// rest not. Another instance leaves them alone while the lease runs, then takes them: each order
/// reaches the provider again at most once more, is fulfilled once, and is settled once.
#[tokio::test]
async fn a_redemption_claimed_by_an_instance_that_died_is_fulfilled_once_after_its_lease() {
    use unionpass_core::redeem::RedemptionStatus;
    let (a, b, token) = two_instances_with_points().await;
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let pushed = redeem_top_ups(&a, &token, &ids).await;
    assert_eq!(pushed.results.len(), 3);
    let provider = unionpass_server::testing::ProviderProcess::start();
    let client = provider.provider(std::time::Duration::from_secs(2));
    // "a": claims them, sends the first order, and dies before settling anything
    let claimed = a
        .store
        .claim_redemptions(t0(), unionpass_server::fulfil::LEASE, 32)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let first = &claimed[0].redemption;
    client
        .fulfil(&unionpass_server::fulfil::Order {
            id: first.id,
            target: first.target.clone(),
            points: first.points,
        })
        .await
        .unwrap();
    // (a's database stays: the test database lives as long as a's test server; a does no more)
    // "b": nothing to take while the lease runs; after it, every one, once
    b.clock.set(t0() + Duration::seconds(30));
    assert_eq!(b.fulfil(&client).await, 0, "leased to the dead instance");
    b.clock
        .set(t0() + unionpass_server::fulfil::LEASE + Duration::seconds(1));
    assert_eq!(b.fulfil(&client).await, 3);
    assert_eq!(b.fulfil(&client).await, 0);
    let orders = provider.orders().await;
    assert_eq!(orders.len(), 3, "{orders:?}");
    for o in &orders {
        let sent_twice = o["order"]["id"] == first.id.to_string();
        assert_eq!(o["times"], if sent_twice { 2 } else { 1 }, "{o}");
        assert_eq!(o["answer"]["status"], "done", "fulfilled once: {o}");
    }
    let member = b.store.member_auth("M10001").await.unwrap().unwrap();
    let all = b.store.redemptions(member.member_id).await.unwrap();
    assert_eq!(
        all.iter()
            .filter(|r| ids.contains(&r.id) && matches!(r.status, RedemptionStatus::Settled { .. }))
            .count(),
        3
    );
}

/// One number read straight from the test database (what no store call shows).
async fn db_number(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// A phone top-up of 10 yuan for 1,000 points per id, pushed through `s` as the app's outbox
/// sends it.
async fn redeem_top_ups(
    s: &TestServer,
    token: &str,
    ids: &[Uuid],
) -> unionpass_core::api::PushResponse {
    let mutations: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            serde_json::json!({"id": id, "created_at": t0(), "op": "redeem", "args": {
                "target": {"kind": "phone_bill", "mobile": format!("1380013800{i}"), "amount_cents": 1000},
                "points": 1000}})
        })
        .collect();
    crate::util::push(s, token, Value::Array(mutations)).await
}

/// A campaign of `stock` coupons, `limit` each, released at `t0()`, created through `s`.
async fn released(s: &TestServer, stock: i64, limit: i64) -> unionpass_core::campaign::Campaign {
    s.store
        .create_campaign(
            unionpass_core::campaign::Campaign {
                release_at: t0(),
                ..campaign(stock, limit)
            },
            t0(),
        )
        .await
        .unwrap()
}

/// Two instances over one database with the demo's points, and M10001 signed in through the
/// first (the fulfilment stories).
async fn two_instances_with_points() -> (TestServer, TestServer, String) {
    let a = TestServer::start_postgres().await;
    let b = second(&a).await;
    unionpass_server::seed::seed_demo_points(a.store.as_ref(), t0())
        .await
        .unwrap();
    let token = a.login("M10001").await;
    (a, b, token)
}

/// Two instances over one database, and an activity (`activities::activity`) whose sign-up has
/// just opened on both clocks.
async fn two_at_an_opening(
    seats: i64,
    waitlist: i64,
    companions: i64,
) -> (TestServer, TestServer, unionpass_core::activity::Activity) {
    let (a, act) = one_at_an_opening(seats, waitlist, companions).await;
    let b = second(&a).await;
    b.clock.set(act.signup.as_ref().unwrap().opens_at);
    (a, b, act)
}

/// An instance over a fresh database with a new activity, its clock at the sign-up's opening.
async fn one_at_an_opening(
    seats: i64,
    waitlist: i64,
    companions: i64,
) -> (TestServer, unionpass_core::activity::Activity) {
    let a = TestServer::start_postgres().await;
    let act = a
        .store
        .create_activity(
            crate::activities::activity(seats, waitlist, companions),
            t0(),
        )
        .await
        .unwrap();
    a.clock.set(act.signup.as_ref().unwrap().opens_at);
    (a, act)
}

/// Which way `s`'s sign-up groups went so far.
fn paths(s: &TestServer) -> GroupPaths {
    s.store
        .signup_group_paths()
        .expect("PostgreSQL counts its groups' paths")
}

/// Another instance frozen in the middle of a group: a connection of its own holding the
/// activity's row lock until it sends `ROLLBACK`.
pub(crate) async fn hold_the_lock(a: &TestServer, activity_id: i64) -> tokio_postgres::Client {
    let (other, conn) = tokio_postgres::connect(a.database_url().unwrap(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    other
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM activities WHERE event_id = {activity_id} FOR UPDATE"
        ))
        .await
        .unwrap();
    other
}

/// A place freed through another instance is offered by this one within
/// `SignupMemo::FRESH_FOR`: this instance's memory of the full activity is not told of the other's
/// cancellation, it only ages (a member is told "full" as if they had come that much earlier).
#[tokio::test]
async fn a_place_freed_through_another_instance_is_offered_within_the_memo_bound() {
    use unionpass_core::activity::{SignupAnswer, SignupState};
    use unionpass_server::store::memo::SignupMemo;
    let (a, b, act) = two_at_an_opening(1, 0, 0).await;
    let opens = act.signup.as_ref().unwrap().opens_at;
    let (m1, m2) = (a.login("M10001").await, a.login("M10002").await);
    let state = |answer: SignupAnswer| match answer {
        SignupAnswer::Accepted { signup, .. } => Ok(signup.state),
        SignupAnswer::Refused { refusal } => Err(refusal.code),
    };
    let sign_up = |token: &String| {
        let token = token.clone();
        let a = &a;
        async move { crate::activities::sign_up(a, &token, act.id, Uuid::new_v4(), 0).await }
    };
    assert_eq!(state(sign_up(&m1).await), Ok(SignupState::Confirmed));
    assert_eq!(state(sign_up(&m2).await), Err(ErrorCode::SignupFull));
    assert_eq!(a.store.signup_memo().len(), 1);
    let cancelled = b
        .http
        .post(b.at(&format!("/v1/activities/{}/cancel", act.id)))
        .bearer_auth(&m1)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    // a was not told of b's cancellation: it remembers the activity full for a moment
    assert_eq!(state(sign_up(&m2).await), Err(ErrorCode::SignupFull));
    a.clock.set(opens + SignupMemo::FRESH_FOR);
    assert_eq!(state(sign_up(&m2).await), Ok(SignupState::Confirmed));
}

/// A sign-up group whose activity is locked by someone else past the groups' `lock_timeout`
/// (another instance frozen in the middle of a group) is answered `unavailable` (503,
/// `Retry-After`), the lock timeout being the cause reported, not the "transaction aborted" of
/// the statements pipelined after the lock; once the lock is gone the same key signs up. A group
/// decided from memory (the next one) is answered so after one wait, not two.
#[tokio::test]
async fn a_sign_up_group_kept_waiting_past_the_lock_timeout_is_answered_unavailable() {
    use unionpass_core::activity::{SignupAnswer, SignupState};
    let (a, act) = one_at_an_opening(5, 0, 0).await;
    let token = a.login("M10001").await;
    let held = hold_the_lock(&a, act.id).await;
    let key = Uuid::new_v4();
    let started = std::time::Instant::now();
    let (status, body) = crate::activities::sign_up_raw(&a, &token, act.id, key, 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{body}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "answered after the lock timeout, not before: {:?}",
        started.elapsed()
    );
    held.batch_execute("ROLLBACK").await.unwrap();
    match crate::activities::sign_up(&a, &token, act.id, key, 0).await {
        SignupAnswer::Accepted { signup, replayed } => {
            assert_eq!((signup.state, replayed), (SignupState::Confirmed, false))
        }
        other => panic!("{other:?}"),
    }
    // two groups under the lock: the one that timed out, and the retry that taught the instance
    let learnt = GroupPaths {
        decided_from_memory: 0,
        rolled_back: 0,
        under_the_lock: 2,
    };
    assert_eq!(paths(&a), learnt);
    // the instance now decides the activity's next group from memory: kept waiting for the lock,
    // that group is answered after one lock timeout too, not judged again to wait a second time
    let token = a.login("M10002").await;
    let held = hold_the_lock(&a, act.id).await;
    let started = std::time::Instant::now();
    let (status, body) =
        crate::activities::sign_up_raw(&a, &token, act.id, Uuid::new_v4(), 0).await;
    let waited = started.elapsed();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{body}"
    );
    assert!(
        waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(9),
        "one lock timeout (5 s), not two: {waited:?}"
    );
    // it went from memory (under the lock it would count a third time) and kept nothing
    assert_eq!(paths(&a), learnt);
    held.batch_execute("ROLLBACK").await.unwrap();
}

/// A sign-up group decided from what this instance last committed of the activity (its counters
/// and the row's version) is judged again under the lock whenever that changed: another
/// instance's sign-up in between is seen (no seat given twice), a member already signed up
/// elsewhere is refused as such, a key used elsewhere is answered as a replay, and a session
/// ended elsewhere gives no place. The counters always match the rows.
#[tokio::test]
async fn a_sign_up_decided_from_memory_yields_to_what_another_instance_changed() {
    use unionpass_core::activity::{SignupAnswer, SignupState};
    let (a, b, act) = two_at_an_opening(3, 2, 0).await;
    let mut tokens = Vec::new();
    for n in 1..=7 {
        tokens.push(a.login(&format!("M1000{n}")).await);
    }
    async fn on(s: &TestServer, token: &str, id: i64, key: Uuid) -> SignupAnswer {
        crate::activities::sign_up(s, token, id, key, 0).await
    }
    let fate = |answer: SignupAnswer| match answer {
        SignupAnswer::Accepted { signup, replayed } => {
            Ok((signup.state, signup.position, replayed))
        }
        SignupAnswer::Refused { refusal } => Err(refusal.code),
    };
    let confirmed = Ok((SignupState::Confirmed, None, false));
    // a learns the activity, then decides the next from memory
    assert_eq!(
        fate(on(&a, &tokens[0], act.id, Uuid::new_v4()).await),
        confirmed
    );
    assert_eq!(
        fate(on(&a, &tokens[1], act.id, Uuid::new_v4()).await),
        confirmed
    );
    assert_eq!(
        paths(&a),
        GroupPaths {
            decided_from_memory: 1,
            rolled_back: 0,
            under_the_lock: 1,
        },
        "the first under the lock, the second from memory"
    );
    // b takes the last seat; a's memory says one is left
    let b_key = Uuid::new_v4();
    assert_eq!(fate(on(&b, &tokens[2], act.id, b_key).await), confirmed);
    assert_eq!(
        fate(on(&a, &tokens[3], act.id, Uuid::new_v4()).await),
        Ok((SignupState::Waitlisted, Some(1), false)),
        "the seat b gave is not given again"
    );
    assert_eq!(
        paths(&a),
        GroupPaths {
            decided_from_memory: 1,
            rolled_back: 1,
            under_the_lock: 2,
        },
        "decided from memory, rolled back, judged again under the lock"
    );
    // a member signed up through b, asking a under another key: refused as signed up; under
    // b's key: the same sign-up again
    assert_eq!(
        fate(on(&a, &tokens[2], act.id, Uuid::new_v4()).await),
        Err(ErrorCode::AlreadySignedUp)
    );
    assert_eq!(
        fate(on(&a, &tokens[2], act.id, b_key).await),
        Ok((SignupState::Confirmed, None, true))
    );
    // b fills the waitlist; a still remembers one place on it
    let b_key = Uuid::new_v4();
    assert_eq!(
        fate(on(&b, &tokens[4], act.id, b_key).await),
        Ok((SignupState::Waitlisted, Some(2), false))
    );
    assert_eq!(
        fate(on(&a, &tokens[5], act.id, Uuid::new_v4()).await),
        Err(ErrorCode::SignupFull)
    );
    // refusals decided from memory (a knows the activity full now) still read the member's
    // sign-up and the key: the member waitlisted through b hears that, and b's key replays
    assert_eq!(
        fate(on(&a, &tokens[4], act.id, Uuid::new_v4()).await),
        Err(ErrorCode::AlreadySignedUp)
    );
    assert_eq!(
        fate(on(&a, &tokens[4], act.id, b_key).await),
        Ok((SignupState::Waitlisted, Some(2), true))
    );
    // a session ended through b, still in a's session table (a judged a request with it), gets
    // no place at a
    assert_eq!(
        fate(on(&a, &tokens[6], act.id, Uuid::new_v4()).await),
        Err(ErrorCode::SignupFull)
    );
    let other = a
        .store
        .create_activity(crate::activities::activity(5, 0, 0), t0())
        .await
        .unwrap();
    crate::activities::sign_up(&a, &tokens[0], other.id, Uuid::new_v4(), 0).await;
    let ended = b
        .http
        .post(b.at("/v1/sessions/end-all"))
        .bearer_auth(&tokens[6])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    let (status, body) =
        crate::activities::sign_up_raw(&a, &tokens[6], other.id, Uuid::new_v4(), 0).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_ended")),
        "{body}"
    );
    for (id, rows) in [(act.id, 5), (other.id, 1)] {
        let signups = a.store.signups(id).await.unwrap();
        assert_eq!(signups.len(), rows);
        let seated = signups
            .iter()
            .filter(|s| s.state.has_seats())
            .map(|s| 1 + s.companions)
            .sum::<i64>();
        let waiting = signups
            .iter()
            .filter(|s| s.state == SignupState::Waitlisted)
            .count() as i64;
        assert_eq!(
            crate::activities::counters(&a, id).await,
            (seated, waiting),
            "activity {id}"
        );
    }
}

/// A whole group decided from memory answers each request as judging them one by one under the
/// lock would: seats, then the waitlist in the order received, a double tap replayed, then
/// "full"; a member already signed up hears that, and a key already used for another sign-up is
/// refused as reused. The requests queue behind a group kept waiting for the activity's lock,
/// so they form one group.
#[tokio::test]
async fn a_group_decided_from_memory_answers_as_one_by_one_under_the_lock() {
    use unionpass_core::activity::{SignupAnswer, SignupState};
    let (a, act) = one_at_an_opening(3, 2, 1).await;
    let mut tokens = Vec::new();
    for n in 1..=6 {
        tokens.push(a.login(&format!("M1000{n}")).await);
    }
    // the first sign-up teaches the instance the activity
    let first_key = Uuid::new_v4();
    crate::activities::sign_up(&a, &tokens[0], act.id, first_key, 0).await;
    assert_eq!(paths(&a).under_the_lock, 1);
    let held = hold_the_lock(&a, act.id).await;
    let tap = Uuid::new_v4();
    // (member, key, companions), in the order sent
    let asks = [
        (1, Uuid::new_v4(), 1),
        (2, tap, 0),
        (2, tap, 0),
        (3, Uuid::new_v4(), 1),
        (4, Uuid::new_v4(), 0),
        (0, Uuid::new_v4(), 0),
        (5, first_key, 0),
    ];
    // sent 100 ms apart, the lock given up 100 ms after the last
    let apart = |n: usize| std::time::Duration::from_millis(100 * n as u64);
    let sending = join_all(asks.iter().enumerate().map(|(n, &(who, key, companions))| {
        let (a, token, id) = (&a, &tokens[who], act.id);
        async move {
            tokio::time::sleep(apart(n)).await;
            crate::activities::sign_up_raw(a, token, id, key, companions).await
        }
    }));
    let released = async {
        tokio::time::sleep(apart(asks.len())).await;
        held.batch_execute("ROLLBACK").await.unwrap();
    };
    let (answers, ()) = tokio::join!(sending, released);
    let mut got = Vec::new();
    for (status, body) in answers {
        got.push(match status {
            StatusCode::OK => match serde_json::from_value::<SignupAnswer>(body).unwrap() {
                SignupAnswer::Accepted { signup, replayed } => {
                    format!("{:?} {:?} {replayed}", signup.state, signup.position)
                }
                SignupAnswer::Refused { refusal } => format!("refused {:?}", refusal.code),
            },
            other => format!("{other} {}", body["code"]),
        });
    }
    assert_eq!(
        got,
        [
            "Confirmed None false",
            "Waitlisted Some(1) false",
            "Waitlisted Some(1) true",
            "Waitlisted Some(2) false",
            "refused SignupFull",
            "refused AlreadySignedUp",
            "409 Conflict \"idempotency_key_reused\"",
        ]
        .map(String::from)
    );
    // what this test is about: the groups after the first were decided from memory
    assert_eq!(
        paths(&a),
        GroupPaths {
            decided_from_memory: 2,
            rolled_back: 0,
            under_the_lock: 1,
        }
    );
    let rows = a.store.signups(act.id).await.unwrap();
    let order: Vec<(String, SignupState)> = rows
        .iter()
        .map(|r| (r.member_no.clone(), r.state))
        .collect();
    assert_eq!(
        order,
        [
            ("M10001".to_string(), SignupState::Confirmed),
            ("M10002".to_string(), SignupState::Confirmed),
            ("M10003".to_string(), SignupState::Waitlisted),
            ("M10004".to_string(), SignupState::Waitlisted),
        ]
    );
}

/// An activity whose sign-up is about to open is read between bursts, so the first group at its
/// opening is decided from memory (one flight), not under the lock; one that opened long ago is
/// not. What was read is a hint only: another instance's sign-up in between rolls the group back
/// and it is judged again under the lock, so no seat is given twice. (The window is the
/// database's clock: the activities here are placed on the real time, the instances' clocks at
/// the opening. An instance reads only after a second without sign-ups, so b's read cannot be
/// renewed between its group for the other activity and its first for this one.)
#[tokio::test]
async fn an_activity_about_to_open_is_known_before_its_first_group() {
    use unionpass_core::activity::{SignupAnswer, SignupState};
    let now = chrono::Utc::now();
    let opens_at = now + Duration::seconds(2);
    let placed = |opens_at: chrono::DateTime<chrono::Utc>| {
        let mut act = crate::activities::activity(2, 0, 0);
        act.starts_at = now + Duration::days(2);
        act.ends_at = act.starts_at + Duration::hours(3);
        let rules = act.signup.as_mut().unwrap();
        rules.opens_at = opens_at;
        rules.closes_at = now + Duration::days(1);
        rules.cancel_until = now + Duration::days(1);
        act
    };
    let a = TestServer::start_postgres().await;
    let b = second(&a).await;
    let soon = a
        .store
        .create_activity(placed(opens_at), now)
        .await
        .unwrap();
    let long_open = a
        .store
        .create_activity(placed(now - Duration::hours(1)), now)
        .await
        .unwrap();
    a.clock.set(opens_at);
    b.clock.set(opens_at);
    let mut tokens = Vec::new();
    for n in 1..=5 {
        tokens.push(a.login(&format!("M1000{n}")).await);
    }
    // each instance's sign-up task goes idle for a second at least twice after the creation
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let on = |s: &'static str, member: usize, act: i64| {
        let (server, token) = (if s == "a" { &a } else { &b }, tokens[member].clone());
        async move {
            match crate::activities::sign_up(server, &token, act, Uuid::new_v4(), 0).await {
                SignupAnswer::Accepted { signup, .. } => Ok(signup.state),
                SignupAnswer::Refused { refusal } => Err(refusal.code),
            }
        }
    };
    let confirmed = Ok(SignupState::Confirmed);
    let way = |decided_from_memory, rolled_back, under_the_lock| GroupPaths {
        decided_from_memory,
        rolled_back,
        under_the_lock,
    };
    // (instance, member, activity, answer, the instance's group ways after it, why)
    let steps = [
        (
            "a",
            0,
            long_open.id,
            confirmed,
            way(0, 0, 1),
            "an activity open for an hour is learnt under the lock",
        ),
        // b's task judges a group: it cannot read again for a second
        (
            "b",
            1,
            long_open.id,
            confirmed,
            way(0, 0, 1),
            "the same on b",
        ),
        (
            "a",
            2,
            soon.id,
            confirmed,
            way(1, 0, 1),
            "the first group at the opening is decided from what was read before it",
        ),
        // b read the activity before a's sign-up: its first group rests on a version gone
        (
            "b",
            3,
            soon.id,
            confirmed,
            way(0, 1, 2),
            "read before another instance's sign-up: rolled back, judged under the lock",
        ),
        // a still counts one seat left; b took it
        (
            "a",
            4,
            soon.id,
            Err(ErrorCode::SignupFull),
            way(1, 1, 2),
            "a's memory after b's sign-up: rolled back, judged under the lock",
        ),
    ];
    for (s, member, act, answer, ways, why) in steps {
        assert_eq!(on(s, member, act).await, answer, "{why}");
        assert_eq!(paths(if s == "a" { &a } else { &b }), ways, "{why}");
    }
    for act in [soon.id, long_open.id] {
        assert_eq!(
            crate::activities::counters(&a, act).await,
            (2, 0),
            "activity {act}"
        );
    }
}
