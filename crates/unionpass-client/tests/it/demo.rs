//! The demo a newcomer opens (`cargo xtask demo` seeds `seed --demo --activities --campaigns`):
//! every tab of the signed-in member, and the staff scanner, has something to show.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use unionpass_client::Client;
use unionpass_core::campaign::Category;
use unionpass_core::redeem::RedemptionStatus;
use unionpass_core::view::{CardState, MineGroup};
use unionpass_core::wallet::{CouponStatus, WalletFilter};
use unionpass_server::seed;
use unionpass_server::testing::{t0, TestServer};

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

#[tokio::test]
async fn a_fresh_demo_has_content_on_every_tab() {
    let server = TestServer::start().await;
    let store = server.store.as_ref();
    seed::seed_demo_points(store, now()).await.unwrap();
    seed::seed_demo_activities(store, now()).await.unwrap();
    seed::seed_demo_campaigns(store, now()).await.unwrap();
    // seeding again adds nothing
    let campaigns = store.campaigns().await.unwrap().len();
    seed::seed_demo_campaigns(store, now()).await.unwrap();
    assert_eq!(store.campaigns().await.unwrap().len(), campaigns);

    let dir = tempfile::tempdir().unwrap();
    let app = Client::open(dir.path()).unwrap();
    app.login(&server.url, "M10001", "demo1234", "phone", now())
        .await
        .unwrap();

    // 护照: the passport, and today's activity with a place
    let snap = app.snapshot(now()).unwrap();
    assert!(snap.passport.is_some());
    let acts = app.activities(now()).unwrap();
    assert!(acts.cards.len() >= 5, "{} activities", acts.cards.len());
    assert!(
        acts.cards.iter().any(|c| c.mine.is_some()),
        "a place at today's talk"
    );
    // 活动: 我的活动 has one of each: coming up, attended (yesterday's, waiting for their
    // feedback) and missed; a poll is open
    let group = |g| {
        acts.cards
            .iter()
            .filter(|c| c.mine_group(now()) == Some(g))
            .collect::<Vec<_>>()
    };
    assert!(!group(MineGroup::Upcoming).is_empty());
    assert_eq!(group(MineGroup::Missed).len(), 1);
    let came = group(MineGroup::Attended);
    assert_eq!(came.len(), 1);
    assert!(came[0].activity.ends_at < now() && came[0].feedback.is_none());
    app.give_feedback(came[0].activity.id, 5, "很实用", now())
        .unwrap();
    assert!(acts
        .polls
        .iter()
        .any(|p| p.poll.closes_at > now() && p.mine.is_none()));

    // 抢券: one campaign in each state the calendar can show
    let cal = app.calendar(now()).unwrap();
    let states: HashSet<CardState> = cal.entries.iter().map(|e| e.state(now())).collect();
    for s in [
        CardState::Upcoming,
        CardState::Open,
        CardState::SoldOut,
        CardState::Ended,
    ] {
        assert!(
            states.contains(&s),
            "no {s:?} campaign on the calendar: {states:?}"
        );
    }
    let upcoming = cal
        .entries
        .iter()
        .find(|e| e.state(now()) == CardState::Upcoming)
        .unwrap();
    assert_eq!(upcoming.campaign.release_at, now() + Duration::minutes(2));
    // the ended one comes last, after everything still to grab
    assert_eq!(
        cal.entries.last().map(|e| e.state(now())),
        Some(CardState::Ended)
    );

    // 卡券: a coupon in every category and every status, some expiring soon
    let wallet = app.wallet(&WalletFilter::default(), 100, now()).unwrap();
    let statuses: HashSet<CouponStatus> = wallet.items.iter().map(|c| c.status).collect();
    assert_eq!(statuses, CouponStatus::ALL.into_iter().collect());
    let categories: HashSet<Category> = wallet.items.iter().map(|c| c.coupon.category).collect();
    assert_eq!(categories, Category::ALL.into_iter().collect());
    assert!(!wallet.expiring.is_empty(), "one expiring soon");

    // 积分: a balance, a history, and redemptions settled, refunded and in progress
    let points = app.points_view(now()).unwrap();
    assert!(points.balance.available > 0);
    assert!(!points.history.is_empty());
    let kinds: HashSet<&str> = points
        .redemptions
        .iter()
        .map(|r| match r.status {
            RedemptionStatus::Settled { .. } => "settled",
            RedemptionStatus::Refunded { .. } => "refunded",
            RedemptionStatus::Held => "held",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["settled", "refunded", "held"].into_iter().collect());

    // the staff account's scanner has events to choose from
    let staff_dir = tempfile::tempdir().unwrap();
    let staff = Client::open(staff_dir.path()).unwrap();
    staff
        .login(&server.url, "S20001", "demo1234", "laptop", now())
        .await
        .unwrap();
    let scanner = staff.scanner_view(None, now()).unwrap();
    assert!(scanner.events.len() >= 2, "{} events", scanner.events.len());
}
