//! The grab story: campaign lifecycle, concurrency, idempotency, limits. Every test runs against
//! each storage backend, over real HTTP.

use std::sync::Arc;

use crate::util::{t0, TestServer};
use chrono::Duration;
use futures_util::future::join_all;
use serde_json::Value;
use unionpass_core::campaign::{Campaign, Category, GrabOutcome, GrabResponse};
use unionpass_core::ErrorCode;
use unionpass_server::store::StoreError;
use uuid::Uuid;

pub(crate) fn campaign(stock: i64, limit: i64) -> Campaign {
    Campaign {
        id: 0,
        title_zh: "共享单车骑行券".into(),
        title_en: "Bike ride coupon".into(),
        category: Category::Bike,
        face_value_cents: 500,
        terms_zh: "仅限骑行".into(),
        terms_en: "Rides only".into(),
        coupon_valid_from: t0(),
        coupon_valid_until: t0() + Duration::days(30),
        stock,
        per_member_limit: limit,
        release_at: t0() + Duration::minutes(10),
        end_at: t0() + Duration::hours(1),
        eligible_unions: vec![],
        eligible_union_names: vec![],
        cancelled_at: None,
    }
}

/// POST a grab; Ok(answer) for 200, Err(code) otherwise.
pub(crate) async fn grab(
    s: &TestServer,
    token: &str,
    campaign: i64,
    key: Uuid,
) -> Result<GrabResponse, ErrorCode> {
    let resp = s
        .http
        .post(s.at(&format!("/v1/campaigns/{campaign}/grab")))
        .bearer_auth(token)
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .expect("request");
    if resp.status() == 200 {
        Ok(resp.json().await.expect("grab answer"))
    } else {
        let body: Value = resp.json().await.expect("error body");
        Err(serde_json::from_value(body["code"].clone()).expect("code"))
    }
}

async fn lifecycle(s: TestServer) {
    let c = s.store.create_campaign(campaign(5, 1), t0()).await.unwrap();
    let token = s.login("M10001").await;

    let early = grab(&s, &token, c.id, Uuid::new_v4()).await.unwrap();
    assert_eq!(
        early.outcome,
        GrabOutcome::NotStarted {
            server_time: t0(),
            release_at: c.release_at
        }
    );

    s.clock.set(c.release_at);
    let got = grab(&s, &token, c.id, Uuid::new_v4()).await.unwrap();
    let GrabOutcome::Granted { coupon } = got.outcome else {
        panic!("{got:?}")
    };
    assert_eq!(
        (coupon.campaign_id, coupon.face_value_cents, coupon.category),
        (c.id, 500, Category::Bike)
    );

    // The grant is in the member's next sync, and the campaign was announced to everyone.
    let page: Value = s.get_json("/v1/sync?cursor=0", Some(&token)).await;
    let kinds: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["campaign", "coupon_granted"]);
    assert_eq!(page["changes"][1]["data"]["code"], coupon.code.as_str());

    s.clock.set(c.end_at);
    let late = grab(&s, &s.login("M10002").await, c.id, Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(late.outcome, GrabOutcome::Ended);

    let only = s
        .store
        .create_campaign(
            Campaign {
                eligible_unions: vec![9999],
                eligible_union_names: vec![],
                cancelled_at: None,
                release_at: t0(),
                end_at: t0() + Duration::days(1),
                ..campaign(5, 1)
            },
            t0(),
        )
        .await
        .unwrap();
    s.clock.set(t0() + Duration::minutes(1));
    assert_eq!(
        grab(&s, &token, only.id, Uuid::new_v4())
            .await
            .unwrap()
            .outcome,
        GrabOutcome::NotEligible
    );
    assert_eq!(
        grab(&s, &token, 424242, Uuid::new_v4()).await.unwrap_err(),
        ErrorCode::NotFound
    );
}

/// One usage-code rule on every backend: the campaign's last four digits and 80 random bits
/// (`CCCC-XXXX-XXXX-XXXX-XXXX`, Crockford base32), kept with the grant.
async fn usage_codes_name_the_campaign_and_are_unguessable(s: TestServer) {
    let c = s
        .store
        .create_campaign(
            Campaign {
                release_at: t0(),
                ..campaign(3, 1)
            },
            t0(),
        )
        .await
        .unwrap();
    s.clock.set(t0() + Duration::seconds(1));
    for member in ["M10001", "M10002", "M10003"] {
        let token = s.login(member).await;
        let key = Uuid::new_v4();
        let got = grab(&s, &token, c.id, key).await.unwrap();
        let GrabOutcome::Granted { coupon } = got.outcome else {
            panic!("{got:?}")
        };
        // the code is kept: a retry of the key, and the member's sync, carry the same one
        let again = grab(&s, &token, c.id, key).await.unwrap();
        assert!(again.replayed);
        assert_eq!(
            again.outcome,
            GrabOutcome::Granted {
                coupon: coupon.clone()
            }
        );
        let page: Value = s.get_json("/v1/sync?cursor=0", Some(&token)).await;
        let synced: Vec<&Value> = page["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|ch| ch["kind"] == "coupon_granted")
            .collect();
        assert_eq!(synced.len(), 1);
        assert_eq!(synced[0]["data"]["code"], coupon.code.as_str());
        // the same rule on both backends: the campaign, then 80 random bits in four groups
        let parts: Vec<&str> = coupon.code.split('-').collect();
        assert_eq!(parts.len(), 5, "{}", coupon.code);
        assert_eq!(parts[0], format!("{:04}", c.id % 10_000), "{}", coupon.code);
        for p in &parts[1..] {
            assert!(
                p.len() == 4
                    && p.bytes()
                        .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)),
                "{}",
                coupon.code
            );
        }
    }
}

async fn exact_stock_under_concurrency(s: TestServer) {
    let c = s
        .store
        .create_campaign(
            Campaign {
                release_at: t0(),
                ..campaign(25, 1)
            },
            t0(),
        )
        .await
        .unwrap();
    let tokens = s.store.bench_members(80, t0()).await.unwrap();
    let s = Arc::new(s);
    let answers = join_all(tokens.iter().map(|t| {
        let (s, t) = (s.clone(), t.clone());
        async move { grab(&s, &t, c.id, Uuid::new_v4()).await.unwrap() }
    }))
    .await;
    let granted = answers
        .iter()
        .filter(|a| matches!(a.outcome, GrabOutcome::Granted { .. }))
        .count();
    let sold_out = answers
        .iter()
        .filter(|a| a.outcome == GrabOutcome::SoldOut)
        .count();
    assert_eq!((granted, sold_out), (25, 55));
    let audit = s.store.audit(c.id).await.unwrap();
    assert_eq!((audit.granted, audit.counter, audit.members), (25, 25, 25));
    // only grants are kept under their keys; the 55 refusals wrote nothing
    assert_eq!(
        (audit.oversold, audit.double_grants, audit.answers),
        (0, 0, 25)
    );
    // once sold out, refusals come from memory, and a granted key asked again still gets its
    // coupon, replayed; a refused key asked again is refused again
    let granted = answers
        .iter()
        .zip(&tokens)
        .find(|(a, _)| matches!(a.outcome, GrabOutcome::Granted { .. }))
        .unwrap();
    let again = grab(&s, granted.1, c.id, granted.0.key).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.outcome, granted.0.outcome);
    let refused = answers
        .iter()
        .zip(&tokens)
        .find(|(a, _)| a.outcome == GrabOutcome::SoldOut)
        .unwrap();
    let again = grab(&s, refused.1, c.id, refused.0.key).await.unwrap();
    assert_eq!(
        (again.outcome, again.replayed),
        (GrabOutcome::SoldOut, false)
    );
    assert_eq!(s.store.audit(c.id).await.unwrap().answers, 25);
}

async fn a_key_is_answered_once(s: TestServer) {
    let c = s
        .store
        .create_campaign(
            Campaign {
                release_at: t0(),
                ..campaign(10, 3)
            },
            t0(),
        )
        .await
        .unwrap();
    let token = s.login("M10003").await;
    let key = Uuid::new_v4();
    let s = Arc::new(s);
    // a burst of double taps with one key (within the per-member burst allowance)
    let answers = join_all((0..5).map(|_| {
        let (s, token) = (s.clone(), token.clone());
        async move { grab(&s, &token, c.id, key).await.unwrap() }
    }))
    .await;
    let firsts = answers.iter().filter(|a| !a.replayed).count();
    assert_eq!(firsts, 1, "exactly one answer is the first: {answers:?}");
    assert!(
        answers.iter().all(|a| a.outcome == answers[0].outcome),
        "every retry gets the first answer"
    );
    let audit = s.store.audit(c.id).await.unwrap();
    assert_eq!(audit.granted, 1);

    // Another member cannot use that key.
    let other = s.login("M10004").await;
    assert_eq!(
        grab(&s, &other, c.id, key).await.unwrap_err(),
        ErrorCode::IdempotencyKeyReused
    );
}

async fn per_member_limit_and_rate_limit(s: TestServer) {
    let c = s
        .store
        .create_campaign(
            Campaign {
                release_at: t0(),
                ..campaign(100, 2)
            },
            t0(),
        )
        .await
        .unwrap();
    let token = s.login("M10005").await;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(
            grab(&s, &token, c.id, Uuid::new_v4())
                .await
                .unwrap()
                .outcome
                .code(),
        );
    }
    assert_eq!(outcomes, vec!["granted", "granted", "limit_reached"]);
    // the burst allowance is 5 a member: the next ones are refused until the bucket refills
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(
            grab(&s, &token, c.id, Uuid::new_v4())
                .await
                .map(|a| a.outcome.code().to_string()),
        );
    }
    assert_eq!(
        codes,
        vec![
            Ok("limit_reached".to_string()),
            Ok("limit_reached".to_string()),
            Err(ErrorCode::RateLimited)
        ]
    );
    s.clock.set(t0() + Duration::seconds(2));
    assert!(
        grab(&s, &token, c.id, Uuid::new_v4()).await.is_ok(),
        "refilled after a while"
    );
    let audit = s.store.audit(c.id).await.unwrap();
    assert_eq!((audit.granted, audit.double_grants), (2, 0));
}

/// Two server instances over one PostgreSQL database hand out exactly the stock between them.
#[tokio::test]
async fn postgres_instances_share_the_stock_exactly() {
    let a = TestServer::start_postgres().await;
    let store = unionpass_server::store::PgStore::connect(a.database_url().unwrap(), 8)
        .await
        .unwrap();
    let b = TestServer::start_with(Arc::new(store), tempfile::tempdir().unwrap()).await;
    let c = a
        .store
        .create_campaign(
            Campaign {
                release_at: t0(),
                ..campaign(30, 1)
            },
            t0(),
        )
        .await
        .unwrap();
    let tokens = a.store.bench_members(90, t0()).await.unwrap();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let answers = join_all(tokens.iter().enumerate().map(|(i, t)| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let t = t.clone();
        async move { grab(&s, &t, c.id, Uuid::new_v4()).await.unwrap() }
    }))
    .await;
    let granted = answers
        .iter()
        .filter(|x| matches!(x.outcome, GrabOutcome::Granted { .. }))
        .count();
    assert_eq!(granted, 30);
    let audit = a.store.audit(c.id).await.unwrap();
    assert_eq!(
        (
            audit.granted,
            audit.counter,
            audit.oversold,
            audit.double_grants
        ),
        (30, 30, 0, 0)
    );
    // a grant made through one instance reaches the member's sync through the other
    let winner = answers
        .iter()
        .position(|x| matches!(x.outcome, GrabOutcome::Granted { .. }))
        .unwrap();
    let other = if winner % 2 == 0 { &b } else { &a };
    let page: Value = other
        .get_json("/v1/sync?cursor=0", Some(&tokens[winner]))
        .await;
    let kinds: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["campaign", "coupon_granted"]);
}

async fn push_use(
    s: &TestServer,
    token: &str,
    coupon_id: i64,
    used_at: chrono::DateTime<chrono::Utc>,
) -> unionpass_core::api::MutationResult {
    let resp = s
        .http
        .post(s.at("/v1/sync/push"))
        .bearer_auth(token)
        .json(&serde_json::json!({"mutations": [{
            "id": Uuid::new_v4(), "created_at": used_at, "op": "use_coupon",
            "args": {"coupon_id": coupon_id, "used_at": used_at}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut r: unionpass_core::api::PushResponse = resp.json().await.unwrap();
    r.results.remove(0)
}

async fn used_count(s: &TestServer, token: &str) -> usize {
    let page: unionpass_core::api::SyncResponse =
        s.get_json("/v1/sync?cursor=0", Some(token)).await;
    page.changes
        .iter()
        .filter(|c| matches!(c.kind, unionpass_core::api::ChangeKind::CouponUsed { .. }))
        .count()
}

async fn coupons_are_used_once_in_their_validity_and_only_by_their_holder(s: TestServer) {
    use unionpass_core::api::MutationOutcome::{Applied, Rejected};
    let c = s.store.create_campaign(campaign(5, 1), t0()).await.unwrap();
    let (a, b) = (s.login("M10001").await, s.login("M10002").await);
    s.clock.set(c.release_at);
    let coupon_of = |r: GrabResponse| match r.outcome {
        GrabOutcome::Granted { coupon } => coupon,
        other => panic!("{other:?}"),
    };
    let mine = coupon_of(grab(&s, &a, c.id, Uuid::new_v4()).await.unwrap());
    let theirs = coupon_of(grab(&s, &b, c.id, Uuid::new_v4()).await.unwrap());

    // sync tells the stock left: 5 in stock, 2 granted
    let page: unionpass_core::api::SyncResponse = s.get_json("/v1/sync?cursor=0", Some(&a)).await;
    assert_eq!(
        page.stock_left,
        vec![unionpass_core::api::StockLeft {
            campaign_id: c.id,
            left: 3
        }]
    );
    let at = c.release_at + Duration::minutes(1);
    assert_eq!(push_use(&s, &a, mine.id, at).await.outcome, Applied);
    assert_eq!(
        used_count(&s, &a).await,
        1,
        "other devices learn it through sync"
    );
    // marking it again (another device, a retry with a new id) changes nothing
    assert_eq!(push_use(&s, &a, mine.id, at).await.outcome, Applied);
    assert_eq!(used_count(&s, &a).await, 1);
    // someone else's coupon
    assert!(matches!(
        push_use(&s, &a, theirs.id, at).await.outcome,
        Rejected {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    // after the validity: refused, unless it was used in time (offline) and synced late
    s.clock.set(theirs.valid_until + Duration::seconds(1));
    // a month later the idle session has expired: the member signs in again
    let b = s.login("M10002").await;
    assert!(matches!(
        push_use(&s, &b, theirs.id, theirs.valid_until)
            .await
            .outcome,
        Rejected {
            code: ErrorCode::CouponExpired,
            ..
        }
    ));
    assert_eq!(
        push_use(&s, &b, theirs.id, theirs.valid_until - Duration::hours(1))
            .await
            .outcome,
        Applied
    );
}

/// The union withdraws a coupon by its usage code: a use made before (offline, synced late) is
/// still recorded, a use at or after is refused `coupon_voided`, the member's devices learn it
/// through sync, a second withdrawal answers the first, and a used or unknown coupon cannot be
/// withdrawn.
async fn a_withdrawn_coupon_is_refused_from_then_and_its_holder_is_told(s: TestServer) {
    use unionpass_core::api::ChangeKind;
    use unionpass_core::api::MutationOutcome::{Applied, Rejected};
    let c = s.store.create_campaign(campaign(5, 3), t0()).await.unwrap();
    let a = s.login("M10001").await;
    s.clock.set(c.release_at);
    let coupon_of = |r: GrabResponse| match r.outcome {
        GrabOutcome::Granted { coupon } => coupon,
        other => panic!("{other:?}"),
    };
    let first = coupon_of(grab(&s, &a, c.id, Uuid::new_v4()).await.unwrap());
    let second = coupon_of(grab(&s, &a, c.id, Uuid::new_v4()).await.unwrap());
    let third = coupon_of(grab(&s, &a, c.id, Uuid::new_v4()).await.unwrap());
    let void_time = c.release_at + Duration::minutes(10);
    s.clock.set(void_time);
    // the code as a member reads it out, with spaces around, in lower case
    let v = s
        .store
        .void_coupon(&format!(" {} ", first.code.to_lowercase()), void_time)
        .await
        .unwrap();
    assert_eq!(v.coupon_id, first.id);
    assert_eq!(v.voided_at, void_time);
    s.store.void_coupon(&second.code, void_time).await.unwrap();
    // again, later: the first withdrawal stands, and no second change is logged
    let again = s
        .store
        .void_coupon(&first.code, void_time + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(again.voided_at, void_time);

    // used offline before the withdrawal and synced after: it happened, so it is recorded
    s.clock.set(void_time + Duration::minutes(30));
    assert_eq!(
        push_use(&s, &a, second.id, void_time - Duration::minutes(1))
            .await
            .outcome,
        Applied
    );
    // used after (or at) the withdrawal: refused with the code the app explains
    assert!(matches!(
        push_use(&s, &a, first.id, void_time).await.outcome,
        Rejected {
            code: ErrorCode::CouponVoided,
            ..
        }
    ));
    // the holder's devices learn it: one coupon_voided per withdrawn coupon
    let page: unionpass_core::api::SyncResponse = s.get_json("/v1/sync?cursor=0", Some(&a)).await;
    let voided: Vec<(i64, chrono::DateTime<chrono::Utc>)> = page
        .changes
        .iter()
        .filter_map(|ch| match ch.kind {
            ChangeKind::CouponVoided { coupon_id, at } => Some((coupon_id, at)),
            _ => None,
        })
        .collect();
    assert_eq!(voided, vec![(first.id, void_time), (second.id, void_time)]);
    // another member's devices hear nothing of it
    let b = s.login("M10002").await;
    let page: unionpass_core::api::SyncResponse = s.get_json("/v1/sync?cursor=0", Some(&b)).await;
    assert!(!page
        .changes
        .iter()
        .any(|ch| matches!(ch.kind, ChangeKind::CouponVoided { .. })));

    // a used coupon cannot be withdrawn; nor one that does not exist
    assert_eq!(
        push_use(&s, &a, third.id, void_time + Duration::minutes(31))
            .await
            .outcome,
        Applied
    );
    assert!(matches!(
        s.store.void_coupon(&third.code, void_time).await,
        Err(StoreError::CouponUsed(_))
    ));
    for bad in ["0000-AAAA-AAAA-AAAA-AAAA", "not a code", ""] {
        assert!(
            matches!(
                s.store.void_coupon(bad, void_time).await,
                Err(StoreError::NoCoupon(_))
            ),
            "{bad:?}"
        );
    }
}

/// A moved campaign opens at its new time on running servers (after their cache age), a cancelled
/// one takes no grabs; both reach the apps as new versions of the campaign, and the last minute
/// before release is frozen.
async fn moved_and_cancelled_campaigns(s: TestServer) {
    use unionpass_core::campaign::{Reschedule, RescheduleError, CACHE_FOR};
    let c = s.store.create_campaign(campaign(5, 1), t0()).await.unwrap();
    let other = s.store.create_campaign(campaign(5, 1), t0()).await.unwrap();
    let token = s.login("M10001").await;
    // the running server reads both campaigns into memory
    for id in [c.id, other.id] {
        let early = grab(&s, &token, id, Uuid::new_v4()).await.unwrap();
        assert!(matches!(early.outcome, GrabOutcome::NotStarted { .. }));
    }
    let later = c.release_at + Duration::minutes(20);
    let moved = s
        .store
        .reschedule_campaign(
            c.id,
            Reschedule::Move {
                release_at: later,
                end_at: later + Duration::hours(1),
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(moved.release_at, later);
    let cancelled = s
        .store
        .reschedule_campaign(other.id, Reschedule::Cancel, t0())
        .await
        .unwrap();
    assert_eq!(cancelled.cancelled_at, Some(t0()));
    assert!(matches!(
        s.store
            .reschedule_campaign(other.id, Reschedule::Cancel, t0())
            .await
            .unwrap_err(),
        StoreError::Reschedule(RescheduleError::Cancelled)
    ));

    // at the old release (long after the cache age) the moved one is not open, the cancelled
    // one is over
    s.clock.set(c.release_at + CACHE_FOR);
    let at_old = grab(&s, &token, c.id, Uuid::new_v4()).await.unwrap();
    assert_eq!(
        at_old.outcome,
        GrabOutcome::NotStarted {
            server_time: c.release_at + CACHE_FOR,
            release_at: later
        }
    );
    let gone = grab(&s, &token, other.id, Uuid::new_v4()).await.unwrap();
    assert_eq!(gone.outcome, GrabOutcome::Ended);
    s.clock.set(later);
    let got = grab(&s, &token, c.id, Uuid::new_v4()).await.unwrap();
    assert!(
        matches!(got.outcome, GrabOutcome::Granted { .. }),
        "{got:?}"
    );

    // every app learns both versions through sync; the last one wins
    let page: Value = s.get_json("/v1/sync?cursor=0", Some(&token)).await;
    let versions: Vec<(i64, Value, Value)> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ch| ch["kind"] == "campaign")
        .map(|ch| {
            (
                ch["data"]["id"].as_i64().unwrap(),
                ch["data"]["release_at"].clone(),
                ch["data"]["cancelled_at"].clone(),
            )
        })
        .collect();
    assert_eq!(versions.len(), 4, "{versions:?}");
    let last_of = |id| versions.iter().rev().find(|v| v.0 == id).unwrap().clone();
    assert_eq!(
        serde_json::from_value::<chrono::DateTime<chrono::Utc>>(last_of(c.id).1).unwrap(),
        later
    );
    assert!(!last_of(other.id).2.is_null());
    // the cancelled campaign no longer counts as running
    let left: Vec<i64> = s
        .store
        .stock_left(t0())
        .await
        .unwrap()
        .iter()
        .map(|l| l.campaign_id)
        .collect();
    assert_eq!(left, vec![c.id]);

    // frozen in the last minute before release
    let third = s
        .store
        .create_campaign(campaign(1, 1), later)
        .await
        .unwrap();
    let frozen = s
        .store
        .reschedule_campaign(
            third.id,
            Reschedule::Cancel,
            third.release_at - Duration::seconds(59),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(frozen, StoreError::Reschedule(RescheduleError::TooLate)),
        "{frozen:?}"
    );
}

on_every_backend!(
    usage_codes_name_the_campaign_and_are_unguessable,
    a_withdrawn_coupon_is_refused_from_then_and_its_holder_is_told,
    moved_and_cancelled_campaigns,
    coupons_are_used_once_in_their_validity_and_only_by_their_holder,
    lifecycle,
    exact_stock_under_concurrency,
    a_key_is_answered_once,
    per_member_limit_and_rate_limit,
);
