//! Welfare coupon campaigns and the grab: what a campaign is, what a grab can answer, and the
//! pure rules decided before stock is touched. Stock and per-member limits are enforced
//! atomically by the server's store; see `unionpass-server`'s `store` module.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::i18n::Lang;

/// How long an ended campaign stays on the grab calendar (marked ended).
pub const SHOW_ENDED_FOR: chrono::Duration = chrono::Duration::days(2);

/// What the coupon is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Their names, in the same order, so a card can say "仅限××工会" to members of others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eligible_union_names: Vec<String>,
    /// Withdrawn by the union (no grabs from then on; reminders are removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// When the union withdrew it (granted in error, or its merchant left); it cannot be used
    /// from then on. Absent on the wire until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<DateTime<Utc>>,
}

/// `POST /v1/campaigns/{id}/grab` body: the idempotency key, made on the device and stored there
/// before the first send; a retry sends the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrabRequest {
    pub key: Uuid,
}

/// Every answer a grab can get. Each is final for its key: a retry returns the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Read through [`GrabResponseWire`]: serde's `flatten` over an internally tagged enum would
/// buffer every answer into an intermediate tree first, and every grab answer is read by the
/// app and by the load generator at the busiest moment the server has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "GrabResponseWire")]
pub struct GrabResponse {
    pub key: Uuid,
    pub campaign_id: i64,
    #[serde(flatten)]
    pub outcome: GrabOutcome,
    /// This is the stored answer of an earlier request with the same key.
    pub replayed: bool,
}

/// The flat wire form of [`GrabResponse`]: `result` names the outcome and the outcome's own
/// fields sit beside it, as the derived `Serialize` writes them. Unknown fields are ignored.
#[derive(Deserialize)]
struct GrabResponseWire {
    key: Uuid,
    campaign_id: i64,
    result: GrabResult,
    #[serde(default)]
    coupon: Option<Coupon>,
    #[serde(default)]
    server_time: Option<DateTime<Utc>>,
    #[serde(default)]
    release_at: Option<DateTime<Utc>>,
    replayed: bool,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum GrabResult {
    Granted,
    SoldOut,
    LimitReached,
    NotStarted,
    Ended,
    NotEligible,
}

/// A grab answer whose `result` lacks the fields that outcome carries.
#[derive(Debug, thiserror::Error)]
#[error("a `{result}` grab answer without its `{field}`")]
pub struct GrabWireError {
    result: &'static str,
    field: &'static str,
}

impl TryFrom<GrabResponseWire> for GrabResponse {
    type Error = GrabWireError;

    fn try_from(w: GrabResponseWire) -> Result<Self, GrabWireError> {
        let missing = |result, field| GrabWireError { result, field };
        let outcome = match w.result {
            GrabResult::Granted => GrabOutcome::Granted {
                coupon: w.coupon.ok_or(missing("granted", "coupon"))?,
            },
            GrabResult::SoldOut => GrabOutcome::SoldOut,
            GrabResult::LimitReached => GrabOutcome::LimitReached,
            GrabResult::NotStarted => GrabOutcome::NotStarted {
                server_time: w.server_time.ok_or(missing("not_started", "server_time"))?,
                release_at: w.release_at.ok_or(missing("not_started", "release_at"))?,
            },
            GrabResult::Ended => GrabOutcome::Ended,
            GrabResult::NotEligible => GrabOutcome::NotEligible,
        };
        Ok(GrabResponse {
            key: w.key,
            campaign_id: w.campaign_id,
            outcome,
            replayed: w.replayed,
        })
    }
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
    } else if now >= c.end_at || c.cancelled_at.is_some_and(|at| now >= at) {
        Some(GrabOutcome::Ended)
    } else {
        None
    }
}

/// How close to its release a campaign can still be moved or cancelled. Running servers keep a
/// campaign in memory for up to [`CACHE_FOR`], so a change this late could not reach every grab.
pub const FREEZE_BEFORE_RELEASE: chrono::Duration = chrono::Duration::minutes(1);
/// How long a server instance may answer grabs from its in-memory copy of a campaign.
pub const CACHE_FOR: chrono::Duration = chrono::Duration::seconds(5);

/// A change of schedule made by the union after a campaign was announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reschedule {
    /// New release (and end) time.
    Move {
        release_at: DateTime<Utc>,
        end_at: DateTime<Utc>,
    },
    /// Withdraw it.
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RescheduleError {
    #[error("the campaign was cancelled already")]
    Cancelled,
    #[error("too late: the campaign releases in less than a minute, or has released")]
    TooLate,
    #[error("the new release must be at least a minute from now, and before the end")]
    BadTimes,
}

/// The campaign after `change` made at `now`, or why it cannot be made.
pub fn reschedule(
    c: &Campaign,
    change: Reschedule,
    now: DateTime<Utc>,
) -> Result<Campaign, RescheduleError> {
    if c.cancelled_at.is_some() {
        return Err(RescheduleError::Cancelled);
    }
    if now + FREEZE_BEFORE_RELEASE > c.release_at {
        return Err(RescheduleError::TooLate);
    }
    let mut out = c.clone();
    match change {
        Reschedule::Move { release_at, end_at } => {
            if now + FREEZE_BEFORE_RELEASE > release_at || end_at <= release_at {
                return Err(RescheduleError::BadTimes);
            }
            out.release_at = release_at;
            out.end_at = end_at;
        }
        Reschedule::Cancel => out.cancelled_at = Some(now),
    }
    Ok(out)
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
            eligible_union_names: vec![],
            cancelled_at: None,
        }
    }

    #[test]
    fn reschedule_rules() {
        let c = campaign();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let early = c.release_at - chrono::Duration::hours(1);
        let moved = reschedule(
            &c,
            Reschedule::Move {
                release_at: t("2026-12-01T05:00:00Z"),
                end_at: t("2026-12-01T06:00:00Z"),
            },
            early,
        )
        .unwrap();
        assert_eq!(moved.release_at, t("2026-12-01T05:00:00Z"));
        assert_eq!(moved.end_at, t("2026-12-01T06:00:00Z"));
        // the last minute before release is frozen: running servers may still hold the old times
        let last_minute = c.release_at - FREEZE_BEFORE_RELEASE + chrono::Duration::seconds(1);
        assert_eq!(
            reschedule(&c, Reschedule::Cancel, last_minute),
            Err(RescheduleError::TooLate)
        );
        assert!(reschedule(&c, Reschedule::Cancel, c.release_at - FREEZE_BEFORE_RELEASE).is_ok());
        // a move into the frozen minute, or an end before the release, is refused
        for (release_at, end_at) in [
            (early + chrono::Duration::seconds(30), c.end_at),
            (c.release_at, c.release_at),
        ] {
            assert_eq!(
                reschedule(&c, Reschedule::Move { release_at, end_at }, early),
                Err(RescheduleError::BadTimes)
            );
        }
        let cancelled = reschedule(&c, Reschedule::Cancel, early).unwrap();
        assert_eq!(cancelled.cancelled_at, Some(early));
        assert_eq!(
            precheck(&cancelled, 1, c.release_at),
            Some(GrabOutcome::Ended),
            "no grab once cancelled"
        );
        assert_eq!(
            reschedule(&cancelled, Reschedule::Cancel, early),
            Err(RescheduleError::Cancelled)
        );
        // older apps' bodies have no cancelled_at; new bodies without it stay the same
        let v = serde_json::to_value(&c).unwrap();
        assert!(v.get("cancelled_at").is_none());
        assert_eq!(serde_json::from_value::<Campaign>(v).unwrap(), c);
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
            eligible_union_names: vec![],
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
    }

    fn answer(outcome: GrabOutcome) -> GrabResponse {
        GrabResponse {
            key: Uuid::from_u128(0x5eed),
            campaign_id: 9,
            outcome,
            replayed: true,
        }
    }

    fn coupon() -> Coupon {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        Coupon {
            id: 77,
            campaign_id: 9,
            code: "UP-7F3K".into(),
            category: Category::Meal,
            title_zh: "午餐券".into(),
            title_en: "Lunch coupon".into(),
            face_value_cents: 1500,
            terms_zh: "限工作日".into(),
            terms_en: "Weekdays only".into(),
            valid_from: at("2026-12-01T00:00:00Z"),
            valid_until: at("2026-12-31T15:59:59Z"),
            granted_at: at("2026-12-01T02:00:00.123Z"),
            voided_at: None,
        }
    }

    #[test]
    fn every_outcome_reads_back_as_written() {
        let now: DateTime<Utc> = "2026-12-01T01:59:58Z".parse().unwrap();
        let all = [
            GrabOutcome::Granted { coupon: coupon() },
            GrabOutcome::SoldOut,
            GrabOutcome::LimitReached,
            GrabOutcome::NotStarted {
                server_time: now,
                release_at: now + chrono::Duration::seconds(2),
            },
            GrabOutcome::Ended,
            GrabOutcome::NotEligible,
        ];
        for outcome in all {
            let r = answer(outcome);
            let text = serde_json::to_string(&r).unwrap();
            assert!(
                text.contains(&format!(r#""result":"{}""#, r.outcome.code())),
                "{text}"
            );
            assert_eq!(
                serde_json::from_str::<GrabResponse>(&text).unwrap(),
                r,
                "{text}"
            );
        }
    }

    #[test]
    fn wire_form_ignores_order_and_unknown_fields_but_not_missing_ones() {
        let coupon_json = serde_json::to_string(&coupon()).unwrap();
        // `result` last, the coupon first, and a field a newer server might add.
        let text = format!(
            r#"{{"coupon":{coupon_json},"replayed":false,"queue_ms":3,"campaign_id":9,"key":"{}","result":"granted"}}"#,
            Uuid::from_u128(0x5eed)
        );
        let r: GrabResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(r.outcome, GrabOutcome::Granted { coupon: coupon() });
        assert!(!r.replayed);

        let key = Uuid::nil();
        let granted_bare =
            format!(r#"{{"key":"{key}","campaign_id":1,"result":"granted","replayed":false}}"#);
        let err = serde_json::from_str::<GrabResponse>(&granted_bare).unwrap_err();
        assert!(err.is_data(), "{err}");
        let half_not_started = format!(
            r#"{{"key":"{key}","campaign_id":1,"result":"not_started","server_time":"2026-12-01T00:00:00Z","replayed":false}}"#
        );
        let err = serde_json::from_str::<GrabResponse>(&half_not_started).unwrap_err();
        assert!(err.is_data(), "half_not_started: {err}");
        let unknown =
            format!(r#"{{"key":"{key}","campaign_id":1,"result":"maybe","replayed":false}}"#);
        let err = serde_json::from_str::<GrabResponse>(&unknown).unwrap_err();
        assert!(err.is_data(), "unknown: {err}");
        let no_result = format!(r#"{{"key":"{key}","campaign_id":1,"replayed":false}}"#);
        let err = serde_json::from_str::<GrabResponse>(&no_result).unwrap_err();
        assert!(err.is_data(), "no_result: {err}");
    }
}
