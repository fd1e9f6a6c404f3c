//! Demo data: three workplace unions at science-park companies, twenty members, two staff accounts.

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

/// Staff of the first union: two, so a door has a colleague (the demo's check-in is theirs).
const STAFF: [(&str, &str, usize); 2] = [("S20001", "郑晓梅", 0), ("S20002", "韩立新", 0)];

pub fn demo_accounts() -> Vec<DemoAccount> {
    MEMBERS
        .iter()
        .map(|&(no, name, u)| DemoAccount {
            member_no: no,
            name,
            union: UNIONS[u],
            role: Role::Member,
        })
        .chain(STAFF.iter().map(|&(no, name, u)| DemoAccount {
            member_no: no,
            name,
            union: UNIONS[u],
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
            title_en: Some("Zhiyun Tech workers' fun sports day".into()),
            place: "科学城体育中心 2 号馆".into(),
            place_en: Some("Science City Sports Centre, Hall 2".into()),
            starts_at: hour - Duration::hours(1),
            ends_at: hour + Duration::hours(8),
            capacity: 200,
            points: 200,
            union_id: Some(first_union),
        },
        Event {
            id: 0,
            title: "园区职工心理健康讲座".into(),
            title_en: Some("Talk: mental health at work".into()),
            place: "职工服务中心 301 报告厅".into(),
            place_en: Some("Workers' Service Centre, lecture hall 301".into()),
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
            (1, "职工书屋借阅卡", "Workers' library card", 800, 50),
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

/// `hh:mm` in Shanghai on the day `days` after `now`'s day there.
pub fn demo_day_at(now: DateTime<Utc>, days: i64, hh: u32, mm: u32) -> DateTime<Utc> {
    let zone = unionpass_core::time::Zone::AsiaShanghai.offset();
    let day = (now.with_timezone(&zone) + Duration::days(days)).date_naive();
    day.and_hms_opt(hh, mm, 0)
        .and_then(|t| t.and_local_timezone(zone).single())
        .map_or(now + Duration::days(days), |t| t.with_timezone(&Utc))
}

/// Demo activities in every state, relative to `now` (once: nothing is added if any exist): a
/// popular one whose sign-up opens two minutes from now, a family day that is full with a
/// waitlist, a talk later today that M10001 has a place at (the passport shows it), a walk-in
/// volunteering day, yesterday's training that M10001 signed up for and was checked in to by
/// S20002 (waiting for their feedback), and an art show three days ago that M10001
/// had a place at and missed; and an open needs poll for the whole district.
pub async fn seed_demo_activities(store: &dyn Ops, now: DateTime<Utc>) -> Result<(), StoreError> {
    use unionpass_core::activity::{
        Activity, ActivityCategory, NoShowRule, Poll, PollOption, SignupRules,
    };
    if !store.activities().await?.is_empty() {
        return Ok(());
    }
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    // activities on other days start at an hour such activities start at, whatever hour the demo
    // is seeded (a demo started at night would otherwise hold a sports day at 01:00)
    let at = |days, hh, mm| demo_day_at(now, days, hh, mm);
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
                (place, place_en): (&str, &str),
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
        place_en: place_en.into(),
        starts_at,
        ends_at: starts_at + Duration::hours(hours),
        union_id: None,
        points,
        signup,
        cancelled_at: None,
    };
    let badminton = at(3, 14, 0);
    store
        .create_activity(
            make(
                "园区职工羽毛球联赛",
                "Science park badminton league",
                "单打、双打均可报名，自备球拍。",
                "Singles and doubles; bring your own racket.",
                ActivityCategory::Sports,
                (
                    "科学城体育中心 3 号馆",
                    "Science City Sports Centre, Hall 3",
                ),
                badminton,
                4,
                150,
                signup(now + Duration::minutes(2), badminton, 40, 10, 0, true),
            ),
            now,
        )
        .await?;
    let family = at(5, 9, 30);
    let family = store
        .create_activity(
            make(
                "亲子手工日：做花灯",
                "Family craft day: lanterns",
                "带孩子一起做花灯，材料由工会准备。",
                "Make lanterns with your children; the union brings the materials.",
                ActivityCategory::Family,
                ("职工之家 3 楼", "Workers' Home, floor 3"),
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
                "Workers' mental health talk",
                "如何应对工作压力，讲座后有答疑。",
                "Coping with stress at work, with questions after.",
                ActivityCategory::Health,
                (
                    "职工服务中心 301 报告厅",
                    "Workers' Service Centre, lecture hall 301",
                ),
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
                ("滨江绿道 1 号驿站", "Riverside Greenway, station 1"),
                at(7, 8, 30),
                4,
                120,
                None,
            ),
            now,
        )
        .await?;
    // yesterday's training: M10001 signed up a week before and came
    let training = at(-1, 14, 0);
    let opened = training - Duration::days(8);
    let training = store
        .create_activity(
            make(
                "安全生产与急救培训",
                "Workplace safety and first aid training",
                "消防器材使用与心肺复苏实操，完成可得培训证明。",
                "Fire equipment and CPR, hands on; a certificate for those who finish.",
                ActivityCategory::Training,
                (
                    "职工服务中心 201 培训室",
                    "Workers' Service Centre, training room 201",
                ),
                training,
                3,
                60,
                signup(opened, training, 30, 0, 0, false),
            ),
            opened,
        )
        .await?;
    // three days ago: M10001 had a place and did not come (one no-show; the rule bans at two)
    let show = at(-3, 10, 0);
    let show_opened = show - Duration::days(10);
    let show = store
        .create_activity(
            make(
                "职工书画展导览",
                "Workers' art show: guided tour",
                "由职工书画协会会员讲解参展作品。",
                "Members of the workers' art society show their works.",
                ActivityCategory::Culture,
                ("区文化馆 2 号展厅", "District Cultural Centre, gallery 2"),
                show,
                2,
                30,
                signup(show_opened, show, 50, 0, 0, false),
            ),
            show_opened,
        )
        .await?;
    // the family day fills up and two wait; M10001 has a place at today's talk, had one at the
    // training, and at the art show
    for (member_no, activity, companions, at) in [
        ("M10002", family.id, 1, now),
        ("M10003", family.id, 1, now),
        ("M10004", family.id, 0, now),
        ("M10005", family.id, 0, now),
        ("M10001", talk.id, 0, now),
        ("M10001", training.id, 0, opened + Duration::hours(1)),
        ("M10001", show.id, 0, show_opened + Duration::hours(2)),
    ] {
        let Some((member_id, union_id)) = demo_member(store, member_no).await? else {
            continue;
        };
        store
            .sign_up(crate::store::SignupJob {
                member_id,
                union_id,
                activity_id: activity,
                key: uuid::Uuid::new_v4(),
                companions,
                now: at,
                no_show: NoShowRule::default(),
                session: None,
            })
            .await?;
    }
    if let (Some(member), Some(staff)) = (
        store.member_auth("M10001").await?,
        store.member_auth(STAFF[1].0).await?,
    ) {
        // scanned five minutes in, uploaded when the demo is seeded
        let scan = unionpass_core::checkin::CheckIn {
            event_id: training.id,
            member_id: member.member_id,
            member_no: "M10001".into(),
            scanned_at: training.starts_at + Duration::minutes(5),
            scanner: uuid::Uuid::new_v4(),
            nonce: uuid::Uuid::new_v4(),
            proof: None,
            staff: None,
        };
        store.demo_checkin(scan, staff.member_id, now).await?;
    }
    let option = |zh: &str, en: &str| PollOption {
        zh: zh.into(),
        en: en.into(),
    };
    store
        .create_poll(
            Poll {
                id: 0,
                question_zh: "下个月的职工活动，你最想参加哪一项？".into(),
                question_en: "Which activity would you most like next month?".into(),
                options: vec![
                    option("羽毛球团体赛", "Badminton team games"),
                    option("亲子郊游", "A family outing"),
                    option("读书分享会", "A book club evening"),
                    option("健康体检讲座", "A talk on health checks"),
                ],
                union_id: None,
                closes_at: hour + Duration::days(7),
            },
            now,
        )
        .await?;
    Ok(())
}

/// One demo campaign: what it is and when it runs, relative to the seed's `now`.
struct DemoCampaign {
    title_zh: &'static str,
    title_en: &'static str,
    category: unionpass_core::campaign::Category,
    face_yuan: i64,
    terms_zh: &'static str,
    terms_en: &'static str,
    /// Release and end, from `now`.
    window: (Duration, Duration),
    /// Coupon validity, from `now`.
    valid: (Duration, Duration),
    stock: i64,
}

impl DemoCampaign {
    fn campaign(&self, now: DateTime<Utc>) -> unionpass_core::campaign::Campaign {
        unionpass_core::campaign::Campaign {
            id: 0,
            title_zh: self.title_zh.into(),
            title_en: self.title_en.into(),
            category: self.category,
            face_value_cents: self.face_yuan * 100,
            terms_zh: self.terms_zh.into(),
            terms_en: self.terms_en.into(),
            coupon_valid_from: now + self.valid.0,
            coupon_valid_until: now + self.valid.1,
            stock: self.stock,
            per_member_limit: 1,
            release_at: now + self.window.0,
            end_at: now + self.window.1,
            eligible_unions: Vec::new(),
            eligible_union_names: Vec::new(),
            cancelled_at: None,
        }
    }
}

/// A demo account's member id and union, when it exists.
async fn demo_member(store: &dyn Store, member_no: &str) -> Result<Option<(i64, i64)>, StoreError> {
    let Some(m) = store.member_auth(member_no).await? else {
        return Ok(None);
    };
    Ok(store
        .profile(m.member_id)
        .await?
        .map(|p| (m.member_id, p.union.id)))
}

/// Grab campaign `id` for a member (`demo_member`) at `at` (the seed's own call: no session);
/// answers the coupon when granted.
async fn demo_grab(
    store: &dyn Store,
    (member_id, union_id): (i64, i64),
    campaign_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<unionpass_core::campaign::Coupon>, StoreError> {
    use unionpass_core::campaign::GrabOutcome;
    let answer = store
        .grab(crate::store::GrabJob {
            member_id,
            union_id,
            campaign_id,
            key: uuid::Uuid::new_v4(),
            now: at,
            session: None,
        })
        .await?;
    Ok(match answer.outcome {
        GrabOutcome::Granted { coupon } => Some(coupon),
        _ => None,
    })
}

/// The grab calendar and the wallet of a fresh demo, relative to `now` (once: nothing is added if
/// any campaign exists).
///
/// - The calendar: a taxi campaign releasing two minutes from now (set an alarm, watch the
///   countdown, grab), a live meal campaign with stock, a cinema campaign sold out an hour ago
///   (to five members of the third union, so M10001 sees "sold out"), a bike campaign that ended
///   yesterday.
/// - Every member's wallet: one coupon in each category (grabbed in the past from campaigns
///   that have ended), one in each status: usable, expiring in two days, not yet valid, used
///   yesterday, expired, and withdrawn by the union two days ago (the café's).
/// - Every member's redemptions: a phone top-up settled, a power bill refunded with the
///   carrier's reason, a catalog item held (the demo's provider settles it a moment after the
///   server starts, as it would in real life).
pub async fn seed_demo_campaigns(store: &dyn Store, now: DateTime<Utc>) -> Result<(), StoreError> {
    use unionpass_core::api::{Mutation, MutationOp, MutationOutcome};
    use unionpass_core::campaign::Category;
    use unionpass_core::redeem::{quote, RedeemRequest, RefundReason, Target};
    if !store.campaigns().await?.is_empty() {
        return Ok(());
    }
    let (d, h, m) = (Duration::days, Duration::hours, Duration::minutes);
    let calendar = [
        DemoCampaign {
            title_zh: "周末打车立减券",
            title_en: "Weekend taxi discount",
            category: Category::Taxi,
            face_yuan: 15,
            terms_zh: "单笔满 30 元可用，限本市行程。",
            terms_en: "On rides of ¥30 or more within the city.",
            window: (m(2), d(1)),
            valid: (m(2), d(14)),
            stock: 100,
        },
        DemoCampaign {
            title_zh: "职工食堂午餐券",
            title_en: "Workers' canteen lunch",
            category: Category::Meal,
            face_yuan: 12,
            terms_zh: "园区职工食堂午餐时段可用。",
            terms_en: "At the park's workers' canteens at lunchtime.",
            window: (-m(30), d(2)),
            valid: (Duration::zero(), d(10)),
            stock: 500,
        },
        DemoCampaign {
            title_zh: "影院观影抵扣券",
            title_en: "Cinema ticket voucher",
            category: Category::Cinema,
            face_yuan: 30,
            terms_zh: "合作影院 2D/3D 场次可用，节假日除外。",
            terms_en: "At partner cinemas, 2D and 3D, not on public holidays.",
            window: (-h(1), d(1)),
            valid: (Duration::zero(), d(30)),
            stock: 5,
        },
        DemoCampaign {
            title_zh: "共享单车月卡",
            title_en: "Bike share monthly pass",
            category: Category::Bike,
            face_yuan: 20,
            terms_zh: "30 天内不限次骑行，每次 2 小时内免费。",
            terms_en: "Unlimited rides for 30 days, each free for 2 hours.",
            window: (-d(3), -d(1)),
            valid: (-d(3), d(27)),
            stock: 200,
        },
    ];
    let mut created = Vec::new();
    for c in &calendar {
        created.push(store.create_campaign(c.campaign(now), now - d(4)).await?);
    }
    // the cinema campaign went in its first minute, to members of the third union
    let mut members = Vec::new();
    for (no, _, _) in MEMBERS {
        if let Some(m) = demo_member(store, no).await? {
            members.push((no, m));
        }
    }
    let cinema = ["M10014", "M10015", "M10016", "M10017", "M10018"];
    for (_, m) in members.iter().filter(|(no, _)| cinema.contains(no)) {
        demo_grab(
            store,
            *m,
            created[2].id,
            created[2].release_at + Duration::seconds(3),
        )
        .await?;
    }

    // the wallet: campaigns of the past weeks, each grabbed by every member at its release
    let wallet = [
        DemoCampaign {
            title_zh: "共享单车 7 天骑行卡",
            title_en: "Bike share 7-day pass",
            category: Category::Bike,
            face_yuan: 10,
            terms_zh: "7 天内不限次骑行。",
            terms_en: "Unlimited rides for 7 days.",
            window: (-d(12), -d(11)),
            valid: (-d(12), d(20)),
            stock: 100,
        },
        DemoCampaign {
            title_zh: "工作日午餐补贴券",
            title_en: "Weekday lunch subsidy",
            category: Category::Meal,
            face_yuan: 10,
            terms_zh: "工作日午餐时段可用。",
            terms_en: "On weekdays at lunchtime.",
            window: (-d(20), -d(19)),
            valid: (-d(20), d(2)),
            stock: 100,
        },
        DemoCampaign {
            title_zh: "家政保洁 2 小时",
            title_en: "Home cleaning, 2 hours",
            category: Category::Cleaning,
            face_yuan: 80,
            terms_zh: "下周起可预约，需提前一天预约。",
            terms_en: "Bookable from next week, one day ahead.",
            window: (-d(6), -d(5)),
            valid: (d(3), d(33)),
            stock: 100,
        },
        DemoCampaign {
            title_zh: "洗衣店满减券",
            title_en: "Laundry discount",
            category: Category::Laundry,
            face_yuan: 20,
            terms_zh: "满 50 元可用。",
            terms_en: "On orders of ¥50 or more.",
            window: (-d(9), -d(8)),
            valid: (-d(9), d(21)),
            stock: 100,
        },
        DemoCampaign {
            title_zh: "周末影院观影券",
            title_en: "Weekend cinema ticket",
            category: Category::Cinema,
            face_yuan: 35,
            terms_zh: "周末场次可用。",
            terms_en: "For weekend screenings.",
            window: (-d(40), -d(39)),
            valid: (-d(40), -d(1)),
            stock: 100,
        },
        DemoCampaign {
            title_zh: "机场出行打车券",
            title_en: "Airport taxi ride",
            category: Category::Taxi,
            face_yuan: 25,
            terms_zh: "往返机场行程可用。",
            terms_en: "On rides to or from the airport.",
            window: (-d(4), -d(3)),
            valid: (-d(4), d(26)),
            stock: 100,
        },
        DemoCampaign {
            title_zh: "职工书屋咖啡券",
            title_en: "Workers' library café",
            category: Category::Other,
            face_yuan: 15,
            terms_zh: "职工书屋咖啡吧可用。",
            terms_en: "At the workers' library café.",
            window: (-d(7), -d(6)),
            valid: (-d(7), d(23)),
            stock: 100,
        },
    ];
    for c in &wallet {
        let campaign = store
            .create_campaign(c.campaign(now), now + c.window.0 - d(1))
            .await?;
        for (i, (_, m)) in members.iter().enumerate() {
            let at = campaign.release_at + Duration::seconds(1 + i as i64);
            let coupon = demo_grab(store, *m, campaign.id, at).await?;
            // the café's coupon was withdrawn (the café left the scheme) two days ago
            if let (Category::Other, Some(coupon)) = (c.category, &coupon) {
                store.void_coupon(&coupon.code, now - d(2)).await?;
            }
            // the laundry coupon was used yesterday
            if let (Category::Laundry, Some(coupon)) = (c.category, coupon) {
                let used_at = now - d(1);
                let mutation = Mutation {
                    id: uuid::Uuid::new_v4(),
                    created_at: used_at,
                    op: MutationOp::UseCoupon {
                        coupon_id: coupon.id,
                        used_at,
                    },
                };
                store
                    .apply_mutation(m.0, &mutation, &Default::default(), used_at)
                    .await?;
            }
        }
    }

    // redemptions: settled, refunded, held
    let offer = store.points_offer().await?;
    for (no, (member_id, _)) in &members {
        for (target, outcome, ago) in [
            (
                Target::PhoneBill {
                    mobile: "13800138000".into(),
                    amount_cents: 2000,
                },
                Some(crate::store::Fulfilment::Settled {
                    reference: "CM-DEMO-20".into(),
                }),
                d(6),
            ),
            (
                Target::PowerBill {
                    account: "0101234567".into(),
                    amount_cents: 5000,
                },
                Some(crate::store::Fulfilment::Refunded(
                    RefundReason::ProviderFailed {
                        message: "户号与户名不符".into(),
                    },
                )),
                d(2),
            ),
            (Target::Catalog { item_id: 1 }, None, m(1)),
        ] {
            let Ok(price) = quote(&offer, &target) else {
                continue;
            };
            let at = now - ago;
            let mutation = Mutation {
                id: uuid::Uuid::new_v4(),
                created_at: at,
                op: MutationOp::Redeem(RedeemRequest {
                    target,
                    points: price.points,
                }),
            };
            let result = store
                .apply_mutation(*member_id, &mutation, &Default::default(), at)
                .await?;
            if let MutationOutcome::Rejected { code, .. } = result.outcome {
                tracing::warn!(
                    member = no,
                    code = code.as_str(),
                    "a demo redemption was refused"
                );
                continue;
            }
            if let Some(how) = outcome {
                store
                    .finish_redemption(mutation.id, how, at + Duration::minutes(1))
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_days_are_shanghai_days_whatever_the_hour_of_seeding() {
        // 2026-12-06 00:30 and 23:30 in Shanghai are 16:30 UTC the day before and 15:30 UTC
        for (now, want) in [
            ("2026-12-05T16:30:00Z", "2026-12-09T06:00:00Z"),
            ("2026-12-06T15:30:00Z", "2026-12-09T06:00:00Z"),
            ("2026-12-06T04:00:00Z", "2026-12-09T06:00:00Z"),
        ] {
            let now: DateTime<Utc> = now.parse().unwrap();
            let want: DateTime<Utc> = want.parse().unwrap();
            assert_eq!(demo_day_at(now, 3, 14, 0), want, "{now}");
        }
        let now: DateTime<Utc> = "2026-12-05T16:30:00Z".parse().unwrap();
        // yesterday in Shanghai (2026-12-05) at 14:00 is 06:00 UTC, ten and a half hours before
        assert_eq!(
            demo_day_at(now, -1, 14, 0),
            "2026-12-05T06:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
