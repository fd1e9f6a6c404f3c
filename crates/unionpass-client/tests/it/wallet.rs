//! The wallet: the store's SQL against the pure rules on a large wallet, and the whole path with
//! a real server (grab, sync into the wallet, use offline, sync the use).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use unionpass_client::store::Store;
use unionpass_client::Client;
use unionpass_core::api::{Change, ChangeKind, Profile, Role, SyncResponse, Union};
use unionpass_core::campaign::{Campaign, Category, Coupon, GrabOutcome, GrabResponse};
use unionpass_core::view::RejectedChange;
use unionpass_core::wallet::{sort_key, status, CouponStatus, WalletFilter};
use unionpass_core::ErrorCode;
use unionpass_server::testing::{t0, TestServer};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

fn coupon(i: i64) -> Coupon {
    let cat = Category::ALL[(i % 7) as usize];
    // spread validity around `now`: expired, usable (some expiring soon), not yet valid
    let from = now() + Duration::hours((i % 11) * 24 - 200);
    Coupon {
        id: i,
        campaign_id: i % 13,
        code: format!("{:04}-{:06}-{:04}", i % 13, i, (i * 7919) % 10_000),
        category: cat,
        title_zh: format!(
            "{}券{}",
            ["单车", "午餐", "打车", "保洁", "洗衣", "电影", "其他"][(i % 7) as usize],
            i
        ),
        title_en: format!("Coupon {i}"),
        face_value_cents: 500 + i,
        terms_zh: String::new(),
        terms_en: String::new(),
        valid_from: from,
        valid_until: from + Duration::hours(24 * (i % 5) + 30),
        granted_at: from - Duration::hours(1),
        voided_at: None,
    }
}

fn page(changes: Vec<ChangeKind>) -> SyncResponse {
    SyncResponse {
        cursor: changes.len() as i64,
        server_time: now(),
        profile: Profile {
            member_id: 1,
            member_no: "M10001".into(),
            name: "王芳".into(),
            role: Role::Member,
            union: Union {
                id: 1,
                name: "工会".into(),
            },
            language: None,
        },
        passport: None,
        devices: vec![],
        changes: changes
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Change {
                seq: i as i64 + 1,
                at: now(),
                kind,
            })
            .collect(),
        more: false,
        stock_left: vec![],
        points_offer: None,
    }
}

#[test]
fn the_stores_filters_and_order_agree_with_the_rules_on_a_large_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("w.sqlite")).unwrap();
    let coupons: Vec<Coupon> = (1..=2000).map(coupon).collect();
    let mut changes: Vec<ChangeKind> = coupons
        .iter()
        .cloned()
        .map(ChangeKind::CouponGranted)
        .collect();
    // some used (from another device)
    for c in coupons.iter().filter(|c| c.id % 9 == 0) {
        changes.push(ChangeKind::CouponUsed {
            coupon_id: c.id,
            used_at: c.valid_from + Duration::minutes(5),
        });
    }
    // some withdrawn by the union (a few of them used before: used wins)
    let voided_at = |c: &Coupon| (c.id % 17 == 0).then(|| c.granted_at + Duration::minutes(30));
    for c in &coupons {
        if let Some(at) = voided_at(c) {
            changes.push(ChangeKind::CouponVoided {
                coupon_id: c.id,
                at,
            });
        }
    }
    store.apply_sync(&page(changes), now()).unwrap();
    let coupons: Vec<Coupon> = coupons
        .into_iter()
        .map(|c| Coupon {
            voided_at: voided_at(&c),
            ..c
        })
        .collect();
    assert!(coupons
        .iter()
        .any(|c| c.voided_at.is_some() && c.id % 9 != 0));
    let used = |c: &Coupon| (c.id % 9 == 0).then(|| c.valid_from + Duration::minutes(5));

    let mut filters = vec![WalletFilter::default()];
    for cat in Category::ALL {
        filters.push(WalletFilter {
            category: Some(cat),
            ..Default::default()
        });
    }
    for st in CouponStatus::ALL {
        filters.push(WalletFilter {
            status: Some(st),
            ..Default::default()
        });
        filters.push(WalletFilter {
            category: Some(Category::Meal),
            status: Some(st),
            ..Default::default()
        });
    }
    for q in ["午餐", "COUPON 12", "0003-", "%", "_"] {
        filters.push(WalletFilter {
            query: q.into(),
            ..Default::default()
        });
    }
    for f in &filters {
        let view = store.wallet(f, 10_000, now()).unwrap();
        let want: BTreeSet<i64> = coupons
            .iter()
            .filter(|c| f.matches(c, used(c), now()))
            .map(|c| c.id)
            .collect();
        let got: BTreeSet<i64> = view.items.iter().map(|v| v.coupon.id).collect();
        assert_eq!(got, want, "{f:?}");
        assert_eq!(view.matching, want.len() as i64, "{f:?}");
        // order: by the rules' sort key
        let keys: Vec<_> = view
            .items
            .iter()
            .map(|v| sort_key(&v.coupon, v.used_at, now()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{f:?}");
        for v in &view.items {
            assert_eq!(v.status, status(&v.coupon, v.used_at, now()));
        }
    }
    let all = store.wallet(&WalletFilter::default(), 50, now()).unwrap();
    assert_eq!(all.items.len(), 50, "a page");
    assert_eq!(all.matching, 2000);
    assert!(all.expiring.iter().all(|v| v.expiring_soon));
    assert!(!all.expiring.is_empty());
    // using an expired or not yet valid coupon is refused on the device, with the reason
    let expired = coupons
        .iter()
        .find(|c| status(c, used(c), now()) == CouponStatus::Expired)
        .unwrap();
    assert_eq!(
        store.use_coupon(expired.id, now()).unwrap_err().code(),
        ErrorCode::CouponExpired
    );
    let early = coupons
        .iter()
        .find(|c| status(c, used(c), now()) == CouponStatus::NotYetValid)
        .unwrap();
    assert_eq!(
        store.use_coupon(early.id, now()).unwrap_err().code(),
        ErrorCode::CouponNotYetValid
    );
    let voided = coupons
        .iter()
        .find(|c| status(c, used(c), now()) == CouponStatus::Voided)
        .unwrap();
    assert_eq!(
        store.use_coupon(voided.id, now()).unwrap_err().code(),
        ErrorCode::CouponVoided
    );
    assert_eq!(store.pending_kinds().unwrap(), vec![]);
    // the chips count what the other filters let through
    let all = store.wallet(&WalletFilter::default(), 1, now()).unwrap();
    assert_eq!(all.by_category.iter().map(|(_, n)| n).sum::<i64>(), 2000);
    let usable_only = WalletFilter {
        status: Some(CouponStatus::Usable),
        ..WalletFilter::default()
    };
    let usable = store.wallet(&usable_only, 1, now()).unwrap();
    for (cat, n) in &usable.by_category {
        assert_eq!(
            *n,
            coupons
                .iter()
                .filter(|c| c.category == *cat && status(c, used(c), now()) == CouponStatus::Usable)
                .count() as i64,
            "{cat:?}"
        );
    }
    let usable_n: i64 = usable.by_category.iter().map(|(_, n)| n).sum();
    assert_eq!(usable_n, usable.matching);
    // choosing a category keeps every chip's count
    let one_cat = WalletFilter {
        category: usable.by_category.first().map(|(c, _)| *c),
        ..usable_only
    };
    assert_eq!(
        store.wallet(&one_cat, 1, now()).unwrap().by_category,
        usable.by_category
    );
}

/// The changes waiting are counted by kind, the kind waiting longest first (the sync line and
/// the door name them in that order), whatever the kinds' names or counts.
#[test]
fn waiting_changes_are_counted_by_kind_oldest_kind_first() {
    use unionpass_core::api::MutationOp;
    use unionpass_core::view::PendingKind;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("client.sqlite")).unwrap();
    let used = |coupon_id| MutationOp::UseCoupon {
        coupon_id,
        used_at: now(),
    };
    store.enqueue(used(1), now()).unwrap();
    store
        .enqueue_language(unionpass_core::Lang::En, now())
        .unwrap();
    let vote = unionpass_core::activity::Vote {
        poll_id: 1,
        option: 0,
    };
    store.enqueue(MutationOp::Vote(vote), now()).unwrap();
    store.enqueue(used(2), now()).unwrap();
    let k = |kind: &str, n| PendingKind {
        kind: kind.into(),
        n,
    };
    // by name it would be set_language first; by the newest, use_coupon last
    assert_eq!(
        store.pending_kinds().unwrap(),
        vec![k("use_coupon", 2), k("set_language", 1), k("vote", 1)]
    );
}

/// A campaign released at t0 whose coupons are valid for `days` from t0, one per member.
pub(crate) fn released_campaign(
    title_zh: &str,
    title_en: &str,
    category: Category,
    cents: i64,
    days: i64,
) -> Campaign {
    Campaign {
        id: 0,
        title_zh: title_zh.into(),
        title_en: title_en.into(),
        category,
        face_value_cents: cents,
        terms_zh: String::new(),
        terms_en: String::new(),
        coupon_valid_from: t0(),
        coupon_valid_until: t0() + Duration::days(days),
        stock: 10,
        per_member_limit: 1,
        release_at: t0(),
        end_at: t0() + Duration::hours(1),
        eligible_unions: vec![],
        eligible_union_names: vec![],
        cancelled_at: None,
    }
}

/// Grab one coupon of `campaign_id` over HTTP with the session of the device in `dir` (the
/// button itself is tested in the window).
async fn grab_with_session_of(
    server: &TestServer,
    dir: &std::path::Path,
    campaign_id: i64,
) -> Coupon {
    let token = {
        let store = Store::open(&dir.join(unionpass_client::client::DB_FILE)).unwrap();
        unionpass_client::secrets::SessionSecret::for_device(store.device_id().unwrap())
            .unwrap()
            .load()
            .unwrap()
            .unwrap()
    };
    let resp: GrabResponse = server
        .http
        .post(server.at(&format!("/v1/campaigns/{campaign_id}/grab")))
        .bearer_auth(token.expose())
        .json(&serde_json::json!({ "key": Uuid::new_v4() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let GrabOutcome::Granted { coupon } = resp.outcome else {
        panic!("{resp:?}")
    };
    coupon
}

#[tokio::test]
async fn a_grabbed_coupon_reaches_the_wallet_and_is_used_offline_exactly_once() {
    let mut server = TestServer::start().await;
    let campaign = server
        .store
        .create_campaign(
            Campaign {
                id: 0,
                title_zh: "工会午餐券".into(),
                title_en: "Union lunch voucher".into(),
                category: Category::Meal,
                face_value_cents: 1500,
                terms_zh: "限工作日".into(),
                terms_en: "Weekdays".into(),
                coupon_valid_from: t0(),
                coupon_valid_until: t0() + Duration::days(2),
                stock: 10,
                per_member_limit: 1,
                release_at: t0(),
                end_at: t0() + Duration::hours(1),
                eligible_unions: vec![],
                eligible_union_names: vec![],
                cancelled_at: None,
            },
            t0(),
        )
        .await
        .unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let phone = Client::open(d1.path()).unwrap();
    let laptop = Client::open(d2.path()).unwrap();
    phone
        .login(&server.url, "M10003", "demo1234", "phone", now())
        .await
        .unwrap();
    laptop
        .login(&server.url, "M10003", "demo1234", "laptop", now())
        .await
        .unwrap();
    let coupon = grab_with_session_of(&server, d1.path(), campaign.id).await;

    phone.sync(now()).await.unwrap();
    let w = phone.wallet(&WalletFilter::default(), 100, now()).unwrap();
    assert_eq!(w.items.len(), 1);
    assert_eq!(w.items[0].coupon, coupon);
    assert_eq!(w.items[0].status, CouponStatus::Usable);
    assert!(
        w.expiring.iter().any(|v| v.coupon.id == coupon.id),
        "two days left"
    );
    let (_, qr) = phone.coupon(coupon.id, now()).unwrap();
    assert!(qr.contains("<svg"));

    // at the merchant, offline: marked used at once, a double tap changes nothing
    server.stop().await;
    let used = phone.use_coupon(coupon.id, now()).unwrap();
    assert_eq!((used.status, used.use_pending), (CouponStatus::Used, true));
    phone.use_coupon(coupon.id, now()).unwrap();
    assert_eq!(phone.snapshot(now()).unwrap().sync.pending, 1);
    let filter = WalletFilter {
        status: Some(CouponStatus::Used),
        ..Default::default()
    };
    assert_eq!(phone.wallet(&filter, 100, now()).unwrap().matching, 1);

    server.restart().await;
    phone.sync(now()).await.unwrap();
    let after = phone.coupon(coupon.id, now()).unwrap().0;
    assert_eq!(
        (after.status, after.use_pending),
        (CouponStatus::Used, false)
    );
    laptop.sync(now()).await.unwrap();
    assert_eq!(
        laptop.coupon(coupon.id, now()).unwrap().0.status,
        CouponStatus::Used
    );
    // the laptop cannot use it again, and an expired coupon is refused on the device
    assert_eq!(
        laptop.use_coupon(coupon.id, now()).unwrap().status,
        CouponStatus::Used
    );
    let later = coupon.valid_until;
    assert_eq!(
        phone
            .wallet(
                &WalletFilter {
                    status: Some(CouponStatus::Expired),
                    ..Default::default()
                },
                10,
                later
            )
            .unwrap()
            .matching,
        0,
        "used stays used after the validity"
    );
    assert!(matches!(
        phone.use_coupon(999_999, now()).unwrap_err().code(),
        ErrorCode::InvalidInput
    ));
}

/// The union withdrew a coupon while the member's phone was offline; the member marks it used at
/// the merchant anyway (the phone did not know). At the next sync the server refuses the use:
/// the coupon shows as withdrawn, not used, and the refusal is kept, counted and described (which
/// coupon, why) until the member has read it.
#[tokio::test]
async fn a_use_the_server_refuses_is_told_to_the_member_until_read() {
    let mut server = TestServer::start().await;
    let campaign = server
        .store
        .create_campaign(
            released_campaign("洗衣券", "Laundry coupon", Category::Laundry, 800, 7),
            t0(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let phone = Client::open(dir.path()).unwrap();
    phone
        .login(&server.url, "M10004", "demo1234", "phone", now())
        .await
        .unwrap();
    let coupon = grab_with_session_of(&server, dir.path(), campaign.id).await;
    phone.sync(now()).await.unwrap();
    assert_eq!(
        phone.coupon(coupon.id, now()).unwrap().0.status,
        CouponStatus::Usable
    );

    // offline at the merchant; meanwhile the union withdraws the coupon
    server.stop().await;
    phone.use_coupon(coupon.id, now()).unwrap();
    server.restart().await;
    // (the server's clock reads t0, the phone's a minute later: the server dates the use t0)
    server.store.void_coupon(&coupon.code, t0()).await.unwrap();
    let snap = phone.snapshot(now()).unwrap();
    assert_eq!((snap.sync.pending, snap.sync.rejected), (1, 0));

    phone.sync(now()).await.unwrap();
    let snap = phone.snapshot(now()).unwrap();
    assert_eq!((snap.sync.pending, snap.sync.rejected), (0, 1));
    assert_eq!(snap.rejections.len(), 1);
    let r = &snap.rejections[0];
    assert_eq!(r.code, ErrorCode::CouponVoided);
    assert_eq!(r.made_at, now());
    assert_eq!(
        r.what,
        RejectedChange::UseCoupon {
            coupon_id: coupon.id,
            title_zh: "洗衣券".into(),
            title_en: "Laundry coupon".into(),
        }
    );
    // the coupon is not "used" (the use did not count) but withdrawn, and cannot be used again
    let (v, _) = phone.coupon(coupon.id, now()).unwrap();
    assert_eq!(
        (v.status, v.use_pending, v.used_at),
        (CouponStatus::Voided, false, None)
    );
    assert_eq!(v.coupon.voided_at, Some(t0()));
    assert_eq!(
        phone.use_coupon(coupon.id, now()).unwrap_err().code(),
        ErrorCode::CouponVoided
    );
    // still there after another sync and a restart of the app, until read
    phone.sync(now()).await.unwrap();
    drop(phone);
    let phone = Client::open(dir.path()).unwrap();
    assert_eq!(phone.snapshot(now()).unwrap().sync.rejected, 1);
    phone.rejections_seen(&[r.id]).unwrap();
    let snap = phone.snapshot(now()).unwrap();
    assert_eq!((snap.sync.rejected, snap.rejections.len()), (0, 0));
    phone.sync(now()).await.unwrap();
    assert_eq!(phone.snapshot(now()).unwrap().sync.rejected, 0);
}
