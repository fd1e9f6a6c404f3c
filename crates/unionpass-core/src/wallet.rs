//! The coupon wallet's rules: a coupon's status at an instant, what counts as "expiring soon",
//! and the filters the wallet screen offers. Pure: the client's store runs the same rules in SQL
//! for large wallets, and tests compare the two.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::campaign::{Category, Coupon};

/// A usable coupon that expires within this span is listed on top as "expiring soon".
pub const EXPIRING_SOON: Duration = Duration::days(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponStatus {
    /// Can be shown to a merchant now.
    Usable,
    /// Valid later (a campaign whose coupons start after the grab).
    NotYetValid,
    Used,
    Expired,
    /// Withdrawn by the union before it was used.
    Voided,
}

impl CouponStatus {
    pub const ALL: [CouponStatus; 5] = [
        CouponStatus::Usable,
        CouponStatus::NotYetValid,
        CouponStatus::Used,
        CouponStatus::Expired,
        CouponStatus::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CouponStatus::Usable => "usable",
            CouponStatus::NotYetValid => "not_yet_valid",
            CouponStatus::Used => "used",
            CouponStatus::Expired => "expired",
            CouponStatus::Voided => "voided",
        }
    }
}

/// A coupon's status at `now`. Used wins over voided and expired: a coupon used in time stays
/// "used"; one withdrawn before it was used is "voided" whatever its dates.
pub fn status(c: &Coupon, used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> CouponStatus {
    if used_at.is_some() {
        CouponStatus::Used
    } else if c.voided_at.is_some() {
        CouponStatus::Voided
    } else if now >= c.valid_until {
        CouponStatus::Expired
    } else if now < c.valid_from {
        CouponStatus::NotYetValid
    } else {
        CouponStatus::Usable
    }
}

pub fn expiring_soon(c: &Coupon, used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    status(c, used_at, now) == CouponStatus::Usable && c.valid_until - now <= EXPIRING_SOON
}

/// Whole days from `now`'s day to the coupon's last usable day, in `zone`: 0 when it lapses
/// today ("今天到期"), 1 tomorrow. `valid_until` is the first instant it no longer works.
pub fn days_left(valid_until: DateTime<Utc>, now: DateTime<Utc>, zone: crate::time::Zone) -> i64 {
    let day = |t: DateTime<Utc>| t.with_timezone(&zone.offset()).date_naive();
    (day(valid_until - Duration::seconds(1)) - day(now)).num_days()
}

/// What the wallet screen asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletFilter {
    pub category: Option<Category>,
    pub status: Option<CouponStatus>,
    /// Matched against both titles and the usage code, case-insensitively.
    #[serde(default)]
    pub query: String,
}

impl WalletFilter {
    pub fn matches(&self, c: &Coupon, used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let q = self.query.trim().to_lowercase();
        self.category.is_none_or(|x| x == c.category)
            && self.status.is_none_or(|x| x == status(c, used_at, now))
            && (q.is_empty()
                || c.title_zh.to_lowercase().contains(&q)
                || c.title_en.to_lowercase().contains(&q)
                || c.code.to_lowercase().contains(&q))
    }
}

/// The order of the list: usable first (soonest expiry first), then not yet valid, then used,
/// withdrawn and expired (most recent first).
pub fn sort_key(c: &Coupon, used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> (u8, i64) {
    match status(c, used_at, now) {
        CouponStatus::Usable => (0, c.valid_until.timestamp()),
        CouponStatus::NotYetValid => (1, c.valid_from.timestamp()),
        CouponStatus::Used => (2, -used_at.map_or(0, |t| t.timestamp())),
        CouponStatus::Expired => (2, -c.valid_until.timestamp()),
        CouponStatus::Voided => (2, -c.voided_at.map_or(0, |t| t.timestamp())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_count_calendar_days_in_the_zone() {
        use crate::time::Zone;
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 23:00 on 1 December in Shanghai
        let now = t("2026-12-01T15:00:00Z");
        // ends at midnight there: today is its last day
        assert_eq!(
            days_left(t("2026-12-01T16:00:00Z"), now, Zone::AsiaShanghai),
            0
        );
        // one second later it still works on the 2nd
        assert_eq!(
            days_left(t("2026-12-01T16:00:01Z"), now, Zone::AsiaShanghai),
            1
        );
        assert_eq!(
            days_left(t("2026-12-08T16:00:00Z"), now, Zone::AsiaShanghai),
            7
        );
    }

    fn coupon(from: &str, until: &str) -> Coupon {
        Coupon {
            id: 1,
            campaign_id: 1,
            code: "0001-000001-1234".into(),
            category: Category::Meal,
            title_zh: "工会午餐券".into(),
            title_en: "Union lunch voucher".into(),
            face_value_cents: 1500,
            terms_zh: String::new(),
            terms_en: String::new(),
            valid_from: from.parse().unwrap(),
            valid_until: until.parse().unwrap(),
            granted_at: from.parse().unwrap(),
            voided_at: None,
        }
    }

    #[test]
    fn status_on_the_boundaries() {
        let c = coupon("2026-12-01T00:00:00Z", "2026-12-31T16:00:00Z");
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            status(&c, None, t("2026-11-30T23:59:59Z")),
            CouponStatus::NotYetValid
        );
        assert_eq!(
            status(&c, None, t("2026-12-01T00:00:00Z")),
            CouponStatus::Usable
        );
        assert_eq!(
            status(&c, None, t("2026-12-31T15:59:59Z")),
            CouponStatus::Usable
        );
        assert_eq!(
            status(&c, None, t("2026-12-31T16:00:00Z")),
            CouponStatus::Expired
        );
        let used = Some(t("2026-12-05T04:00:00Z"));
        assert_eq!(
            status(&c, used, t("2027-01-10T00:00:00Z")),
            CouponStatus::Used
        );
        assert!(!expiring_soon(&c, None, t("2026-12-28T15:59:59Z")));
        assert!(expiring_soon(&c, None, t("2026-12-28T16:00:00Z")));
        assert!(!expiring_soon(&c, used, t("2026-12-30T00:00:00Z")));
        // withdrawn: voided inside its dates and after them; a use before the withdrawal stays
        let voided = Coupon {
            voided_at: Some(t("2026-12-10T00:00:00Z")),
            ..c.clone()
        };
        for now in ["2026-12-20T00:00:00Z", "2027-01-10T00:00:00Z"] {
            assert_eq!(status(&voided, None, t(now)), CouponStatus::Voided);
        }
        assert_eq!(
            status(&voided, used, t("2026-12-20T00:00:00Z")),
            CouponStatus::Used
        );
        assert!(!expiring_soon(&voided, None, t("2026-12-30T00:00:00Z")));
    }

    #[test]
    fn filters_combine_and_search_titles_and_codes() {
        let c = coupon("2026-12-01T00:00:00Z", "2026-12-31T16:00:00Z");
        let now = "2026-12-10T00:00:00Z".parse().unwrap();
        let f = |category, status, query: &str| WalletFilter {
            category,
            status,
            query: query.into(),
        };
        assert!(f(None, None, "").matches(&c, None, now));
        assert!(f(Some(Category::Meal), Some(CouponStatus::Usable), "午餐").matches(&c, None, now));
        assert!(f(None, None, "LUNCH").matches(&c, None, now));
        assert!(f(None, None, "000001").matches(&c, None, now));
        assert!(!f(Some(Category::Bike), None, "").matches(&c, None, now));
        assert!(!f(None, Some(CouponStatus::Used), "").matches(&c, None, now));
        assert!(!f(None, None, "taxi").matches(&c, None, now));
    }
}
