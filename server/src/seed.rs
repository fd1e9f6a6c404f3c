//! Demo data: three workplace unions at science-park companies, twenty members, one staff account.

use chrono::{DateTime, Duration, DurationRound, Utc};
use unionpass_core::api::Role;
use unionpass_core::checkin::Event;

use crate::auth::hash_password;
use crate::store::prelude::*;
use crate::store::{NewMember, StoreError, Taken};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo1234";

pub struct DemoAccount {
    pub member_no: &'static str,
    pub name: &'static str,
    pub union: &'static str,
    pub role: Role,
}

const UNIONS: [&str; 3] = [
    "智云科技有限公司工会",
    "星河互联网络技术有限公司工会",
    "北辰生物医药股份有限公司工会",
];

const MEMBERS: [(&str, &str, usize); 20] = [
    ("M10001", "王芳", 0),
    ("M10002", "李强", 0),
    ("M10003", "张伟", 0),
    ("M10004", "刘洋", 0),
    ("M10005", "陈静", 0),
    ("M10006", "杨磊", 0),
    ("M10007", "赵敏", 0),
    ("M10008", "黄晓东", 1),
    ("M10009", "周婷", 1),
    ("M10010", "吴昊", 1),
    ("M10011", "徐丽娜", 1),
    ("M10012", "孙鹏", 1),
    ("M10013", "马晓燕", 1),
    ("M10014", "朱建国", 2),
    ("M10015", "胡雪", 2),
    ("M10016", "郭志强", 2),
    ("M10017", "何佳怡", 2),
    ("M10018", "高远", 2),
    ("M10019", "林晨", 2),
    ("M10020", "罗思琪", 2),
];

const STAFF: (&str, &str, usize) = ("S20001", "郑晓梅", 0);

pub fn demo_accounts() -> Vec<DemoAccount> {
    MEMBERS
        .iter()
        .map(|&(no, name, u)| DemoAccount {
            member_no: no,
            name,
            union: UNIONS[u],
            role: Role::Member,
        })
        .chain(std::iter::once(DemoAccount {
            member_no: STAFF.0,
            name: STAFF.1,
            union: UNIONS[STAFF.2],
            role: Role::Staff,
        }))
        .collect()
}

/// Create the demo unions and accounts. Running it again adds nothing and fails nothing.
/// Returns how many accounts were created.
pub async fn seed_demo(store: &dyn Store, now: DateTime<Utc>) -> Result<usize, StoreError> {
    // one hash for all: every demo account has the same password, and argon2 is slow on purpose
    let hash = tokio::task::spawn_blocking(|| hash_password(DEMO_PASSWORD)).await?;
    let mut created = 0;
    for a in demo_accounts() {
        let union_id = store.ensure_union(a.union).await?;
        let member = NewMember {
            member_no: a.member_no.into(),
            name: a.name.into(),
            union_id,
            role: a.role,
            password_hash: hash.clone(),
        };
        match store.insert_member(member, now).await {
            Ok(_) => created += 1,
            Err(StoreError::Duplicate(Taken::Member(_))) => {}
            Err(e) => return Err(e),
        }
    }
    if store.events().await?.is_empty() {
        let first_union = store.ensure_union(UNIONS[0]).await?;
        for e in demo_events(first_union, now) {
            store.create_event(e, now).await?;
        }
    }
    Ok(created)
}

/// Two events around `now`: one for the first union (running today), one for the whole district.
pub fn demo_events(first_union: i64, now: DateTime<Utc>) -> Vec<Event> {
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    vec![
        Event {
            id: 0,
            title: "智云科技职工趣味运动会".into(),
            place: "科学城体育中心 2 号馆".into(),
            starts_at: hour - Duration::hours(1),
            ends_at: hour + Duration::hours(8),
            capacity: 200,
            points: 200,
            union_id: Some(first_union),
        },
        Event {
            id: 0,
            title: "园区职工心理健康讲座".into(),
            place: "职工服务中心 301 报告厅".into(),
            starts_at: hour + Duration::days(1),
            ends_at: hour + Duration::days(1) + Duration::hours(2),
            capacity: 120,
            points: 100,
            union_id: None,
        },
    ]
}

/// The demo union's points: the offer (rates, amounts, caps), a small catalog, and three batches
/// of points for every demo account, earned over the last months with staggered expiry, so the
/// points screen has a history and something expiring. Idempotent.
pub async fn seed_demo_points(store: &dyn Store, now: DateTime<Utc>) -> Result<(), StoreError> {
    use unionpass_core::redeem::{CatalogItem, PointsOffer};
    if store.points_offer().await?.phone.amounts_cents.is_empty() {
        store.set_points_offer(PointsOffer::demo()).await?;
        for (id, zh, en, points, stock) in [
            (1, "职工书屋借阅卡", "Staff library card", 800, 50),
            (2, "保温杯", "Thermos flask", 1500, 30),
            (3, "体检套餐（基础）", "Basic health check", 6000, 10),
        ] {
            store
                .put_catalog_item(CatalogItem {
                    id,
                    title_zh: zh.into(),
                    title_en: en.into(),
                    points,
                    stock,
                })
                .await?;
        }
    }
    for a in demo_accounts() {
        let Some(m) = store.member_auth(a.member_no).await? else {
            continue;
        };
        if !store.points_entries(m.member_id).await?.is_empty() {
            continue;
        }
        for (days_ago, points, expires_in_days, source) in [
            (150, 4000, 30, "activity"),
            (60, 3000, 150, "campaign"),
            (5, 2500, 330, "grant"),
        ] {
            store
                .accrue_points(
                    m.member_id,
                    points,
                    now + Duration::days(expires_in_days),
                    source,
                    now - Duration::days(days_ago),
                )
                .await?;
        }
    }
    Ok(())
}

/// Demo activities in every state, relative to `now` (once: nothing is added if any exist): a
/// popular one whose sign-up opens two minutes from now, a family day that is full with a
/// waitlist, a talk later today that M10001 has a place at (the passport shows it), and a
/// walk-in volunteering day.
pub async fn seed_demo_activities(store: &dyn Store, now: DateTime<Utc>) -> Result<(), StoreError> {
    use unionpass_core::activity::{Activity, ActivityCategory, NoShowRule, SignupRules};
    if !store.activities().await?.is_empty() {
        return Ok(());
    }
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let signup = |opens_at: DateTime<Utc>,
                  starts_at: DateTime<Utc>,
                  seats,
                  waitlist,
                  companions,
                  popular| {
        Some(SignupRules {
            opens_at,
            closes_at: starts_at - Duration::hours(1),
            seats,
            waitlist,
            max_companions: companions,
            cancel_until: starts_at - Duration::hours(2),
            popular,
        })
    };
    let make = |title_zh: &str,
                title_en: &str,
                description_zh: &str,
                description_en: &str,
                category,
                place: &str,
                starts_at: DateTime<Utc>,
                hours: i64,
                points,
                signup| Activity {
        id: 0,
        title_zh: title_zh.into(),
        title_en: title_en.into(),
        description_zh: description_zh.into(),
        description_en: description_en.into(),
        category,
        place: place.into(),
        starts_at,
        ends_at: starts_at + Duration::hours(hours),
        union_id: None,
        points,
        signup,
        cancelled_at: None,
    };
    let badminton = hour + Duration::days(3) + Duration::hours(2);
    store
        .create_activity(
            make(
                "园区职工羽毛球联赛",
                "Science park badminton league",
                "单打、双打均可报名，自备球拍。",
                "Singles and doubles; bring your own racket.",
                ActivityCategory::Sports,
                "科学城体育中心 3 号馆",
                badminton,
                4,
                150,
                signup(now + Duration::minutes(2), badminton, 40, 10, 0, true),
            ),
            now,
        )
        .await?;
    let family = hour + Duration::days(5);
    let family = store
        .create_activity(
            make(
                "亲子手工日：做花灯",
                "Family craft day: lanterns",
                "带孩子一起做花灯，材料由工会准备。",
                "Make lanterns with your children; the union brings the materials.",
                ActivityCategory::Family,
                "职工之家 3 楼",
                family,
                3,
                80,
                signup(now - Duration::days(1), family, 4, 3, 2, false),
            ),
            now,
        )
        .await?;
    let talk = (hour + Duration::hours(3)).max(now + Duration::hours(2));
    let talk = store
        .create_activity(
            make(
                "职工心理健康讲座",
                "Staff mental health talk",
                "如何应对工作压力，讲座后有答疑。",
                "Coping with stress at work, with questions after.",
                ActivityCategory::Health,
                "职工服务中心 301 报告厅",
                talk,
                2,
                100,
                Some(SignupRules {
                    opens_at: now - Duration::days(2),
                    closes_at: talk,
                    seats: 200,
                    waitlist: 0,
                    max_companions: 0,
                    cancel_until: talk,
                    popular: false,
                }),
            ),
            now,
        )
        .await?;
    store
        .create_activity(
            make(
                "城市骑行志愿服务",
                "City cycling volunteers",
                "在绿道站点引导骑行，无需报名，直接到场签到。",
                "Guide riders at greenway stops; no sign-up, just come and check in.",
                ActivityCategory::Volunteering,
                "滨江绿道 1 号驿站",
                hour + Duration::days(7),
                4,
                120,
                None,
            ),
            now,
        )
        .await?;
    // the family day fills up and two wait; M10001 has a place at today's talk
    for (member_no, activity, companions) in [
        ("M10002", family.id, 1),
        ("M10003", family.id, 1),
        ("M10004", family.id, 0),
        ("M10005", family.id, 0),
        ("M10001", talk.id, 0),
    ] {
        let Some(m) = store.member_auth(member_no).await? else {
            continue;
        };
        let Some(p) = store.profile(m.member_id).await? else {
            continue;
        };
        store
            .sign_up(crate::store::SignupJob {
                member_id: m.member_id,
                union_id: p.union.id,
                activity_id: activity,
                key: uuid::Uuid::new_v4(),
                companions,
                now,
                no_show: NoShowRule::default(),
                session: None,
            })
            .await?;
    }
    Ok(())
}
