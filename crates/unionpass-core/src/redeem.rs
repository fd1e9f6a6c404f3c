//! Redeeming points: what can be redeemed (server data, delivered by sync), how a request is
//! checked and priced, and the states a redemption goes through. The same checks run in the app
//! (to answer at once, offline) and on the server (the authority).
//!
//! - **Phone bill** top-up: a mainland mobile number and an amount from a fixed list.
//! - **Electricity bill**: a power account number and an amount from a fixed list.
//! - **Catalog item**: one item with stock.
//!
//! Amounts are in fen (1/100 yuan); points are whole numbers; `points_per_yuan` converts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Zone;
use crate::ErrorCode;

/// What a bill redemption may be: the amounts offered and the monthly cap, in fen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillOffer {
    pub amounts_cents: Vec<i64>,
    /// Most a member may redeem of this kind per calendar month (China time), in fen.
    pub monthly_cap_cents: i64,
}

/// One catalog item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogItem {
    pub id: i64,
    pub title_zh: String,
    pub title_en: String,
    pub points: i64,
    /// Left in stock (as last synced, on the device).
    pub stock: i64,
}

impl CatalogItem {
    pub fn title(&self, lang: crate::Lang) -> &str {
        match lang {
            crate::Lang::ZhCn => &self.title_zh,
            crate::Lang::En => &self.title_en,
        }
    }
}

/// Everything the member may redeem, as the union set it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointsOffer {
    /// Points per yuan of a bill.
    pub points_per_yuan: i64,
    pub phone: BillOffer,
    pub power: BillOffer,
    /// A redemption costing more points than this asks for the password again.
    pub reauth_above_points: i64,
    pub catalog: Vec<CatalogItem>,
}

impl PointsOffer {
    /// Nothing to redeem (a server whose union has not set an offer yet).
    pub fn none() -> PointsOffer {
        PointsOffer {
            points_per_yuan: 100,
            phone: BillOffer {
                amounts_cents: Vec::new(),
                monthly_cap_cents: 0,
            },
            power: BillOffer {
                amounts_cents: Vec::new(),
                monthly_cap_cents: 0,
            },
            reauth_above_points: 0,
            catalog: Vec::new(),
        }
    }

    /// The demo union's offer.
    pub fn demo() -> PointsOffer {
        PointsOffer {
            points_per_yuan: 100,
            phone: BillOffer {
                amounts_cents: vec![1000, 2000, 3000, 5000, 10000],
                monthly_cap_cents: 10000,
            },
            power: BillOffer {
                amounts_cents: vec![2000, 5000, 10000, 20000],
                monthly_cap_cents: 20000,
            },
            reauth_above_points: 5000,
            catalog: Vec::new(),
        }
    }
}

/// What a member redeems points for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    PhoneBill { mobile: String, amount_cents: i64 },
    PowerBill { account: String, amount_cents: i64 },
    Catalog { item_id: i64 },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::PhoneBill { .. } => "phone_bill",
            Target::PowerBill { .. } => "power_bill",
            Target::Catalog { .. } => "catalog",
        }
    }

    /// The amount that counts against a monthly cap (bills only).
    pub fn amount_cents(&self) -> i64 {
        match self {
            Target::PhoneBill { amount_cents, .. } | Target::PowerBill { amount_cents, .. } => {
                *amount_cents
            }
            Target::Catalog { .. } => 0,
        }
    }
}

/// The `redeem` mutation: its id is the redemption's idempotency key, made on the device before
/// anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedeemRequest {
    pub target: Target,
    /// The points the member agreed to pay (the price they saw). A price changed since is
    /// refused rather than charged.
    pub points: i64,
}

/// A mainland China mobile number: 11 digits, `1` then `3`–`9`. Spaces, dashes and a `+86` /
/// `86` prefix are accepted and removed.
pub fn normalize_mobile(input: &str) -> Result<String, ErrorCode> {
    let digits: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '+'))
        .collect();
    let digits = digits
        .strip_prefix("86")
        .filter(|d| d.len() == 11)
        .unwrap_or(&digits);
    let ok = digits.len() == 11
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits.starts_with('1')
        && matches!(digits.as_bytes()[1], b'3'..=b'9');
    if ok {
        Ok(digits.to_string())
    } else {
        Err(ErrorCode::InvalidMobile)
    }
}

/// A State Grid household account number: 10 digits (spaces removed), not all the same digit.
pub fn normalize_power_account(input: &str) -> Result<String, ErrorCode> {
    let digits: String = input.chars().filter(|c| *c != ' ').collect();
    let ok = digits.len() == 10
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.chars().all(|c| digits.starts_with(c));
    if ok {
        Ok(digits)
    } else {
        Err(ErrorCode::InvalidAccount)
    }
}

/// A request checked and priced against the offer: the normalized target and its points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub target: Target,
    pub points: i64,
    pub needs_reauth: bool,
}

/// Check `target` against `offer` and price it. Caps and the balance are checked separately
/// (they depend on the member's history).
pub fn quote(offer: &PointsOffer, target: &Target) -> Result<Quote, ErrorCode> {
    let bill_points = |bill: &BillOffer, amount: i64| {
        if bill.amounts_cents.contains(&amount) {
            Ok(amount * offer.points_per_yuan / 100)
        } else {
            Err(ErrorCode::AmountNotOffered)
        }
    };
    let (target, points) = match target {
        Target::PhoneBill {
            mobile,
            amount_cents,
        } => (
            Target::PhoneBill {
                mobile: normalize_mobile(mobile)?,
                amount_cents: *amount_cents,
            },
            bill_points(&offer.phone, *amount_cents)?,
        ),
        Target::PowerBill {
            account,
            amount_cents,
        } => (
            Target::PowerBill {
                account: normalize_power_account(account)?,
                amount_cents: *amount_cents,
            },
            bill_points(&offer.power, *amount_cents)?,
        ),
        Target::Catalog { item_id } => {
            let item = offer
                .catalog
                .iter()
                .find(|i| i.id == *item_id)
                .ok_or(ErrorCode::OutOfStock)?;
            if item.stock <= 0 {
                return Err(ErrorCode::OutOfStock);
            }
            (target.clone(), item.points)
        }
    };
    Ok(Quote {
        needs_reauth: points > offer.reauth_above_points,
        target,
        points,
    })
}

/// The monthly cap for `target`'s kind, if it has one.
pub fn cap_of(offer: &PointsOffer, target: &Target) -> Option<i64> {
    match target {
        Target::PhoneBill { .. } => Some(offer.phone.monthly_cap_cents),
        Target::PowerBill { .. } => Some(offer.power.monthly_cap_cents),
        Target::Catalog { .. } => None,
    }
}

/// Whether `target` fits in its monthly cap, given the earlier redemptions of the same kind that
/// count (`used`: when, amount in fen; refunded and rejected ones excluded by the caller).
pub fn check_cap(
    offer: &PointsOffer,
    target: &Target,
    used: &[(DateTime<Utc>, i64)],
    now: DateTime<Utc>,
    zone: Zone,
) -> Result<(), ErrorCode> {
    match cap_of(offer, target) {
        Some(cap) if crate::points::cap_left(cap, used, now, zone) < target.amount_cents() => {
            Err(ErrorCode::CapReached)
        }
        _ => Ok(()),
    }
}

/// Every check a redemption passes before its points are held, in order: the target and its
/// price (`agreed` is what the member saw), the password when the price needs it, the monthly
/// cap, and the available balance (`ledger` folded at `now`). Stock is the caller's last check
/// (a conditional update where it is kept). Answers the normalized quote.
pub fn check(
    offer: &PointsOffer,
    ledger: &crate::points::Ledger,
    used: &[(DateTime<Utc>, i64)],
    reauthenticated: bool,
    req: &RedeemRequest,
    now: DateTime<Utc>,
    zone: Zone,
) -> Result<Quote, ErrorCode> {
    let q = quote(offer, &req.target)?;
    if q.points != req.points {
        return Err(ErrorCode::PriceChanged);
    }
    if q.needs_reauth && !reauthenticated {
        return Err(ErrorCode::ReauthRequired);
    }
    check_cap(offer, &q.target, used, now, zone)?;
    if ledger.balance(now).available < q.points {
        return Err(ErrorCode::InsufficientPoints);
    }
    Ok(q)
}

/// Where a redemption is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RedemptionStatus {
    /// Made on the device, not yet accepted by the server (maybe offline).
    Queued,
    /// The server placed the hold; the provider is working on it.
    Held,
    /// Fulfilled: the points are spent.
    Settled { reference: String },
    /// The provider failed or did not answer: the points are back.
    Refunded { reason: RefundReason },
    /// The server refused it (nothing was held).
    Rejected { code: ErrorCode },
}

impl RedemptionStatus {
    /// The state's name (`queued`, `held`, `settled`, `refunded`, `rejected`), as stored in the
    /// status columns that queries filter on.
    pub fn as_str(&self) -> &'static str {
        match self {
            RedemptionStatus::Queued => "queued",
            RedemptionStatus::Held => "held",
            RedemptionStatus::Settled { .. } => "settled",
            RedemptionStatus::Refunded { .. } => "refunded",
            RedemptionStatus::Rejected { .. } => "rejected",
        }
    }
}

/// Why held points went back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum RefundReason {
    /// The carrier or power company refused it; `message` is theirs.
    ProviderFailed { message: String },
    /// It did not answer in time; nothing was charged by us.
    ProviderTimeout,
}

impl RefundReason {
    /// The ledger's refund reason text (stable, for the history).
    pub fn code(&self) -> &'static str {
        match self {
            RefundReason::ProviderFailed { .. } => "provider_failed",
            RefundReason::ProviderTimeout => "provider_timeout",
        }
    }
}

/// One redemption as the member sees it (also the `redemption` change the server sends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redemption {
    pub id: Uuid,
    pub target: Target,
    pub points: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(flatten)]
    pub status: RedemptionStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn mobile_numbers() {
        for ok in [
            "13800138000",
            "+86 138 0013 8000",
            "86-19912345678",
            "177-1234-5678",
        ] {
            assert!(normalize_mobile(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            normalize_mobile("+86 138 0013 8000").unwrap(),
            "13800138000"
        );
        for bad in [
            "",
            "1380013800",
            "138001380001",
            "12800138000",
            "23800138000",
            "1380013800a",
            "861380013800",
        ] {
            assert_eq!(
                normalize_mobile(bad),
                Err(ErrorCode::InvalidMobile),
                "{bad}"
            );
        }
    }

    #[test]
    fn power_accounts() {
        assert_eq!(
            normalize_power_account("01 2345 6789").unwrap(),
            "0123456789"
        );
        for bad in ["", "123456789", "12345678901", "000000000O", "1111111111"] {
            assert_eq!(
                normalize_power_account(bad),
                Err(ErrorCode::InvalidAccount),
                "{bad}"
            );
        }
    }

    #[test]
    fn quotes_price_from_the_offer_and_ask_for_the_password_above_the_limit() {
        let mut offer = PointsOffer::demo();
        offer.catalog = vec![
            CatalogItem {
                id: 7,
                title_zh: "保温杯".into(),
                title_en: "Flask".into(),
                points: 1200,
                stock: 3,
            },
            CatalogItem {
                id: 8,
                title_zh: "雨伞".into(),
                title_en: "Umbrella".into(),
                points: 800,
                stock: 0,
            },
        ];
        let phone = |m: &str, a| Target::PhoneBill {
            mobile: m.into(),
            amount_cents: a,
        };
        let q = quote(&offer, &phone("138 0013 8000", 3000)).unwrap();
        assert_eq!(q.points, 3000);
        assert_eq!(q.target, phone("13800138000", 3000));
        assert!(!q.needs_reauth);
        assert!(
            quote(&offer, &phone("13800138000", 10000))
                .unwrap()
                .needs_reauth
        );
        assert_eq!(
            quote(&offer, &phone("13800138000", 2500)),
            Err(ErrorCode::AmountNotOffered)
        );
        assert_eq!(
            quote(&offer, &phone("1380013800", 2000)),
            Err(ErrorCode::InvalidMobile)
        );
        let power = Target::PowerBill {
            account: "0123456789".into(),
            amount_cents: 5000,
        };
        assert_eq!(quote(&offer, &power).unwrap().points, 5000);
        assert_eq!(
            quote(&offer, &Target::Catalog { item_id: 7 })
                .unwrap()
                .points,
            1200
        );
        assert_eq!(
            quote(&offer, &Target::Catalog { item_id: 8 }),
            Err(ErrorCode::OutOfStock)
        );
        assert_eq!(
            quote(&offer, &Target::Catalog { item_id: 9 }),
            Err(ErrorCode::OutOfStock)
        );
    }

    #[test]
    fn caps_count_per_calendar_month_in_china_time() {
        let offer = PointsOffer::demo(); // phone cap 100 yuan
        let phone = |a| Target::PhoneBill {
            mobile: "13800138000".into(),
            amount_cents: a,
        };
        // 50 yuan on Nov 30 at 23:30 China time (15:30 UTC) counts for November
        let used = [(t("2026-11-30T15:30:00Z"), 5000)];
        let nov = t("2026-11-30T15:59:59Z");
        let dec = t("2026-11-30T16:00:00Z"); // midnight Dec 1 in China
        assert_eq!(
            check_cap(&offer, &phone(5000), &used, nov, Zone::AsiaShanghai),
            Ok(())
        );
        assert_eq!(
            check_cap(&offer, &phone(10000), &used, nov, Zone::AsiaShanghai),
            Err(ErrorCode::CapReached)
        );
        assert_eq!(
            check_cap(&offer, &phone(10000), &used, dec, Zone::AsiaShanghai),
            Ok(())
        );
        assert_eq!(
            check_cap(
                &offer,
                &Target::Catalog { item_id: 1 },
                &used,
                nov,
                Zone::AsiaShanghai
            ),
            Ok(())
        );
    }

    #[test]
    fn checks_in_order_price_password_cap_balance() {
        use crate::points::{Entry, EntryKind, Ledger};
        let offer = PointsOffer::demo();
        let now = t("2026-11-29T08:00:00Z");
        let ledger = Ledger::fold(&[Entry {
            seq: 1,
            at: t("2026-11-01T00:00:00Z"),
            kind: EntryKind::Accrual {
                points: 6000,
                expires_at: t("2027-01-01T00:00:00Z"),
                source: "grant".into(),
            },
        }])
        .unwrap();
        let req = |amount: i64, points: i64| RedeemRequest {
            target: Target::PhoneBill {
                mobile: "13800138000".into(),
                amount_cents: amount,
            },
            points,
        };
        let z = Zone::AsiaShanghai;
        assert_eq!(
            check(&offer, &ledger, &[], false, &req(3000, 3000), now, z)
                .unwrap()
                .points,
            3000
        );
        assert_eq!(
            check(&offer, &ledger, &[], false, &req(3000, 2000), now, z),
            Err(ErrorCode::PriceChanged)
        );
        assert_eq!(
            check(&offer, &ledger, &[], false, &req(10000, 10000), now, z),
            Err(ErrorCode::ReauthRequired)
        );
        assert_eq!(
            check(&offer, &ledger, &[], true, &req(10000, 10000), now, z),
            Err(ErrorCode::InsufficientPoints)
        );
        let used = [(now, 8000)];
        assert_eq!(
            check(&offer, &ledger, &used, false, &req(3000, 3000), now, z),
            Err(ErrorCode::CapReached)
        );
    }

    #[test]
    fn wire_shapes() {
        let r = Redemption {
            id: Uuid::nil(),
            target: Target::PowerBill {
                account: "0123456789".into(),
                amount_cents: 2000,
            },
            points: 2000,
            created_at: t("2026-11-29T08:00:00Z"),
            updated_at: t("2026-11-29T08:00:05Z"),
            status: RedemptionStatus::Refunded {
                reason: RefundReason::ProviderTimeout,
            },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "refunded");
        assert_eq!(v["reason"]["why"], "provider_timeout");
        assert_eq!(v["target"]["kind"], "power_bill");
        assert_eq!(serde_json::from_value::<Redemption>(v).unwrap(), r);
    }
}
