//! Welfare coupon campaigns and the grab: what a campaign is, what a grab can answer, and the
//! pure rules decided before stock is touched. Stock and per-member limits are enforced
//! atomically by the server's store; see `unionpass-server`'s `store` module.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::i18n::Lang;

/// What the coupon is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Bike,
    Meal,
    Taxi,
    Cleaning,
    Laundry,
    Cinema,
    Other,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Bike,
        Category::Meal,
        Category::Taxi,
        Category::Cleaning,
        Category::Laundry,
        Category::Cinema,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Bike => "bike",
            Category::Meal => "meal",
            Category::Taxi => "taxi",
            Category::Cleaning => "cleaning",
            Category::Laundry => "laundry",
            Category::Cinema => "cinema",
            Category::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A release of limited coupons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: i64,
    pub title_zh: String,
    pub title_en: String,
    pub category: Category,
    /// The coupon's face value in fen (1/100 yuan).
    pub face_value_cents: i64,
    pub terms_zh: String,
    pub terms_en: String,
    /// When a granted coupon can be used.
    pub coupon_valid_from: DateTime<Utc>,
    pub coupon_valid_until: DateTime<Utc>,
    pub stock: i64,
    pub per_member_limit: i64,
    pub release_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    /// Workplace unions whose members may grab; empty means every member.
    pub eligible_unions: Vec<i64>,
}

impl Campaign {
    pub fn title(&self, lang: Lang) -> &str {
        match lang {
            Lang::ZhCn => &self.title_zh,
            Lang::En => &self.title_en,
        }
    }
}

/// A coupon a member holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub id: i64,
    pub campaign_id: i64,
    /// The usage code shown to a merchant.
    pub code: String,
    pub category: Category,
    pub title_zh: String,
    pub title_en: String,
    pub face_value_cents: i64,
    pub terms_zh: String,
    pub terms_en: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub granted_at: DateTime<Utc>,
}

/// `POST /v1/campaigns/{id}/grab` body: the idempotency key, made on the device and stored there
/// before the first send; a retry sends the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrabRequest {
    pub key: Uuid,
}

/// Every answer a grab can get. Each is final for its key: a retry returns the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GrabOutcome {
    Granted {
        coupon: Coupon,
    },
    SoldOut,
    LimitReached,
    NotStarted {
        server_time: DateTime<Utc>,
        release_at: DateTime<Utc>,
    },
    Ended,
    NotEligible,
}

impl GrabOutcome {
    pub fn code(&self) -> &'static str {
        match self {
            GrabOutcome::Granted { .. } => "granted",
            GrabOutcome::SoldOut => "sold_out",
            GrabOutcome::LimitReached => "limit_reached",
            GrabOutcome::NotStarted { .. } => "not_started",
            GrabOutcome::Ended => "ended",
            GrabOutcome::NotEligible => "not_eligible",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrabResponse {
    pub key: Uuid,
    pub campaign_id: i64,
    #[serde(flatten)]
    pub outcome: GrabOutcome,
    /// This is the stored answer of an earlier request with the same key.
    pub replayed: bool,
}

/// The answer decided without touching stock, or `None` when the grab may compete for stock.
pub fn precheck(c: &Campaign, member_union: i64, now: DateTime<Utc>) -> Option<GrabOutcome> {
    if !c.eligible_unions.is_empty() && !c.eligible_unions.contains(&member_union) {
        Some(GrabOutcome::NotEligible)
    } else if now < c.release_at {
        Some(GrabOutcome::NotStarted {
            server_time: now,
            release_at: c.release_at,
        })
    } else if now >= c.end_at {
        Some(GrabOutcome::Ended)
    } else {
        None
    }
}

/// A coupon's usage code: campaign, member's grant number and a checksum-free random part are
/// combined by the server; this formats them in groups a cashier can read aloud.
pub fn usage_code(campaign_id: i64, grant_id: i64, random: u32) -> String {
    format!(
        "{:04}-{:06}-{:04}",
        campaign_id % 10_000,
        grant_id % 1_000_000,
        random % 10_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign() -> Campaign {
        Campaign {
            id: 1,
            title_zh: "共享单车骑行券".into(),
            title_en: "Bike ride coupon".into(),
            category: Category::Bike,
            face_value_cents: 500,
            terms_zh: "限骑行使用".into(),
            terms_en: "Rides only".into(),
            coupon_valid_from: "2026-12-01T00:00:00Z".parse().unwrap(),
            coupon_valid_until: "2026-12-31T00:00:00Z".parse().unwrap(),
            stock: 1000,
            per_member_limit: 1,
            release_at: "2026-12-01T04:00:00Z".parse().unwrap(),
            end_at: "2026-12-02T04:00:00Z".parse().unwrap(),
            eligible_unions: vec![],
        }
    }

    #[test]
    fn precheck_on_the_boundaries() {
        let c = campaign();
        let before = c.release_at - chrono::Duration::milliseconds(1);
        assert_eq!(
            precheck(&c, 1, before),
            Some(GrabOutcome::NotStarted {
                server_time: before,
                release_at: c.release_at
            })
        );
        assert_eq!(
            precheck(&c, 1, c.release_at),
            None,
            "open exactly at release"
        );
        assert_eq!(
            precheck(&c, 1, c.end_at),
            Some(GrabOutcome::Ended),
            "closed exactly at end"
        );
        let only = Campaign {
            eligible_unions: vec![2, 3],
            ..c
        };
        assert_eq!(
            precheck(&only, 1, only.release_at),
            Some(GrabOutcome::NotEligible)
        );
        assert_eq!(precheck(&only, 3, only.release_at), None);
    }

    #[test]
    fn outcome_wire_shape() {
        let r = GrabResponse {
            key: Uuid::nil(),
            campaign_id: 4,
            outcome: GrabOutcome::SoldOut,
            replayed: false,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["result"], "sold_out");
        assert_eq!(serde_json::from_value::<GrabResponse>(v).unwrap(), r);
        assert_eq!(Category::parse("cinema"), Some(Category::Cinema));
        assert_eq!(usage_code(12, 345, 6789), "0012-000345-6789");
    }
}
