//! The decisions both backends share, so that SQLite and PostgreSQL answer the same way: refusals,
//! replaying a stored first answer, how a change is written to the log, the usage-code rule, and
//! the grab's campaign cache with its sold-out memo. No SQL here; the backends call these from
//! inside their transactions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rand::Rng;
use unionpass_core::api::{ChangeKind, MutationOutcome, MutationResult, Role};
use unionpass_core::campaign::{precheck, Campaign, Coupon, GrabOutcome, GrabResponse};
use unionpass_core::points::EntryKind;
use unionpass_core::redeem::{Redemption, RedemptionStatus};
use unionpass_core::ErrorCode;
use uuid::Uuid;

use super::{Fulfilment, GrabJob, StoreError, Taken};

/// Events listed to a scanner: those not ended more than this long ago.
pub const EVENT_GRACE: chrono::Duration = chrono::Duration::days(1);

/// How many times a grab or a mutation is run again after a retryable failure
/// ([`StoreError::is_retryable`]).
pub const RETRIES: usize = 5;

/// A failure that may say running the same work again could succeed.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        StoreError::is_retryable(self)
    }
}

/// Run `attempt`, and again after each retryable failure, at most [`RETRIES`] more times. Only
/// for work that a failure rolls back whole (one transaction).
pub async fn retrying<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && tries < RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// A device public key as stored: base64url without padding.
pub fn key_text(key: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

pub fn key_bytes(text: &str) -> Result<[u8; 32], StoreError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("device key {text:?}")))
}

/// A change as the log stores it: its kind's wire name and its data (the same split the sync
/// answer uses, so the two cannot drift).
pub fn change_parts(kind: &ChangeKind) -> (String, serde_json::Value) {
    let mut v = serde_json::to_value(kind).expect("a change serializes");
    let data = v
        .get_mut("data")
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    let name = v
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("unknown")
        .to_string();
    (name, data)
}

/// The answer to a mutation id seen before: the first outcome when it is this member's, a refusal
/// that says nothing about it when it is another member's.
pub fn replay_mutation(
    id: Uuid,
    member_id: i64,
    owner: i64,
    first: impl FnOnce() -> Result<MutationOutcome, StoreError>,
) -> Result<MutationResult, StoreError> {
    let outcome = if owner == member_id {
        first()?
    } else {
        MutationOutcome::Rejected {
            code: ErrorCode::Forbidden,
            message: "This change id is already used; create a new change.".into(),
        }
    };
    Ok(MutationResult {
        id,
        outcome,
        replayed: true,
    })
}

/// The answer to a grab key seen before: the first answer, marked `replayed`, when it is this
/// member's; another member's key is refused without saying anything about it.
pub fn replay_grab(
    job: &GrabJob,
    owner: i64,
    first: impl FnOnce() -> Result<GrabResponse, StoreError>,
) -> Result<GrabResponse, StoreError> {
    if owner != job.member_id {
        return Err(StoreError::Duplicate(Taken::GrabKey(job.key)));
    }
    let mut first = first()?;
    first.replayed = true;
    Ok(first)
}

/// A fresh answer to a grab.
pub fn grab_answer(job: &GrabJob, outcome: GrabOutcome) -> GrabResponse {
    GrabResponse {
        key: job.key,
        campaign_id: job.campaign_id,
        outcome,
        replayed: false,
    }
}

/// The usage code of a granted coupon: the campaign, the grant's id (the coupon id the member
/// sees) and four random digits, `CCCC-GGGGGG-RRRR`. One rule for every backend.
pub fn usage_code(campaign_id: i64, grant_id: i64) -> String {
    unionpass_core::campaign::usage_code(campaign_id, grant_id, rand::thread_rng().gen())
}

/// The coupon a grant row stands for.
pub fn coupon_of(c: &Campaign, id: i64, code: String, granted_at: DateTime<Utc>) -> Coupon {
    Coupon {
        id,
        campaign_id: c.id,
        code,
        category: c.category,
        title_zh: c.title_zh.clone(),
        title_en: c.title_en.clone(),
        face_value_cents: c.face_value_cents,
        terms_zh: c.terms_zh.clone(),
        terms_en: c.terms_en.clone(),
        valid_from: c.coupon_valid_from,
        valid_until: c.coupon_valid_until,
        granted_at,
    }
}

/// The campaigns a grab server keeps in memory, each for at most `campaign::CACHE_FOR` (a moved
/// or cancelled campaign is picked up within that), and which of them it saw sold out (stock never
/// comes back, so those need no stock query). Bounded: past [`CampaignCache::MAX`] entries the
/// stale ones are dropped, and if that is not enough, all of them (it is only a cache).
#[derive(Default)]
pub struct CampaignCache {
    entries: HashMap<i64, Cached>,
}

struct Cached {
    campaign: Campaign,
    read_at: DateTime<Utc>,
    sold_out: bool,
}

impl CampaignCache {
    pub const MAX: usize = 4096;

    /// The campaign if it was read less than `CACHE_FOR` before `now`.
    pub fn fresh(&self, id: i64, now: DateTime<Utc>) -> Option<&Campaign> {
        self.entries
            .get(&id)
            .filter(|e| now - e.read_at < unionpass_core::campaign::CACHE_FOR)
            .map(|e| &e.campaign)
    }

    /// Keep `campaign` as read at `now` (its sold-out mark stays).
    pub fn put(&mut self, campaign: Campaign, now: DateTime<Utc>) {
        if self.entries.len() >= Self::MAX && !self.entries.contains_key(&campaign.id) {
            self.entries
                .retain(|_, e| now - e.read_at < unionpass_core::campaign::CACHE_FOR);
            if self.entries.len() >= Self::MAX {
                self.entries.clear();
            }
        }
        let sold_out = self.entries.get(&campaign.id).is_some_and(|e| e.sold_out);
        self.entries.insert(
            campaign.id,
            Cached {
                campaign,
                read_at: now,
                sold_out,
            },
        );
    }

    pub fn mark_sold_out(&mut self, id: i64) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.sold_out = true;
        }
    }

    /// What a grab gets without touching stock: the pure refusals (eligibility, window), or sold
    /// out when this server already saw the stock gone. `None`: try to take one.
    pub fn decide_without_stock(
        &self,
        c: &Campaign,
        union_id: i64,
        now: DateTime<Utc>,
    ) -> Option<GrabOutcome> {
        precheck(c, union_id, now).or_else(|| {
            self.entries
                .get(&c.id)
                .is_some_and(|e| e.sold_out)
                .then_some(GrabOutcome::SoldOut)
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a member may upload a check-in for an event, decided the same way by every backend:
/// `staff` is the uploader's (role, union), `event_union` the event's union (`None`: no such
/// event; `Some(None)`: district-wide). `None` means allowed.
pub fn checkin_refusal(
    staff: (Role, i64),
    event_union: Option<Option<i64>>,
) -> Option<MutationOutcome> {
    use MutationOutcome::Rejected;
    if staff.0 != Role::Staff {
        return Some(Rejected {
            code: ErrorCode::Forbidden,
            message: "Only staff accounts can check members in.".into(),
        });
    }
    match event_union {
        None => Some(Rejected {
            code: ErrorCode::NotFound,
            message: "No such event.".into(),
        }),
        Some(Some(u)) if u != staff.1 => Some(Rejected {
            code: ErrorCode::Forbidden,
            message: "This event belongs to another workplace union.".into(),
        }),
        Some(_) => None,
    }
}

/// Whether a coupon may be marked used at `at` (the device's time of use, never later than the
/// server's now): `None` means yes. Coupons of other members are answered "no such coupon".
pub fn coupon_use_refusal(
    validity: Option<(DateTime<Utc>, DateTime<Utc>)>,
    at: DateTime<Utc>,
) -> Option<MutationOutcome> {
    use MutationOutcome::Rejected;
    match validity {
        None => Some(Rejected {
            code: ErrorCode::NotFound,
            message: "No such coupon.".into(),
        }),
        Some((_, until)) if at >= until => Some(Rejected {
            code: ErrorCode::CouponExpired,
            message: "This coupon has expired.".into(),
        }),
        Some((from, _)) if at < from => Some(Rejected {
            code: ErrorCode::CouponNotYetValid,
            message: "This coupon is not valid yet.".into(),
        }),
        Some(_) => None,
    }
}

/// A redemption refused before anything was held.
pub fn redeem_refusal(code: ErrorCode) -> MutationOutcome {
    MutationOutcome::Rejected {
        code,
        message: code.message().text(unionpass_core::Lang::En).to_string(),
    }
}

/// The answer to revoking a device that is not the member's.
pub fn no_such_device() -> MutationOutcome {
    MutationOutcome::Rejected {
        code: ErrorCode::NotFound,
        message: "No such device.".into(),
    }
}

/// The ledger entry and the new state of a held redemption that ended `how`.
pub fn finished(r: &Redemption, how: &Fulfilment, now: DateTime<Utc>) -> (EntryKind, Redemption) {
    let (entry, status) = match how {
        Fulfilment::Settled { reference } => (
            EntryKind::Settle { redemption: r.id },
            RedemptionStatus::Settled {
                reference: reference.clone(),
            },
        ),
        Fulfilment::Refunded(reason) => (
            EntryKind::Refund {
                redemption: r.id,
                reason: reason.code().to_string(),
            },
            RedemptionStatus::Refunded {
                reason: reason.clone(),
            },
        ),
    };
    let mut done = r.clone();
    done.status = status;
    done.updated_at = now;
    (entry, done)
}

/// Redemptions of this long ago and later are enough for any monthly cap.
pub const CAP_WINDOW: chrono::Duration = chrono::Duration::days(32);

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(id: i64) -> Campaign {
        let t: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        Campaign {
            id,
            title_zh: "单车券".into(),
            title_en: "Bike".into(),
            category: unionpass_core::campaign::Category::Bike,
            face_value_cents: 500,
            terms_zh: String::new(),
            terms_en: String::new(),
            coupon_valid_from: t,
            coupon_valid_until: t + chrono::Duration::days(30),
            stock: 10,
            per_member_limit: 1,
            release_at: t,
            end_at: t + chrono::Duration::hours(1),
            eligible_unions: vec![],
            cancelled_at: None,
        }
    }

    #[test]
    fn checkin_uploads_need_staff_and_the_right_union() {
        let code = |r: Option<MutationOutcome>| match r {
            None => None,
            Some(MutationOutcome::Rejected { code, .. }) => Some(code),
            Some(other) => panic!("{other:?}"),
        };
        assert_eq!(code(checkin_refusal((Role::Staff, 1), Some(Some(1)))), None);
        assert_eq!(code(checkin_refusal((Role::Staff, 1), Some(None))), None);
        assert_eq!(
            code(checkin_refusal((Role::Staff, 1), Some(Some(2)))),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(checkin_refusal((Role::Staff, 1), None)),
            Some(ErrorCode::NotFound)
        );
        assert_eq!(
            code(checkin_refusal((Role::Member, 1), Some(None))),
            Some(ErrorCode::Forbidden)
        );
    }

    #[test]
    fn change_parts_are_the_wire_names() {
        let (kind, data) = change_parts(&ChangeKind::CouponUsed {
            coupon_id: 7,
            used_at: "2026-12-01T04:00:00Z".parse().unwrap(),
        });
        assert_eq!(kind, "coupon_used");
        assert_eq!(data["coupon_id"], 7);
        // and they read back as the same change
        assert!(matches!(
            ChangeKind::from_parts(&kind, data),
            ChangeKind::CouponUsed { coupon_id: 7, .. }
        ));
    }

    #[test]
    fn usage_codes_name_the_campaign_and_the_grant() {
        let code = usage_code(12, 345);
        let parts: Vec<&str> = code.split('-').collect();
        assert_eq!(parts.len(), 3, "{code}");
        assert_eq!((parts[0], parts[1]), ("0012", "000345"));
        assert!(parts[2].len() == 4 && parts[2].bytes().all(|b| b.is_ascii_digit()));
        // large ids keep their last digits
        assert!(usage_code(12_345, 1_234_567).starts_with("2345-234567-"));
        // the last part is random
        let tails: std::collections::HashSet<String> = (0..50)
            .map(|_| usage_code(1, 1)[12..].to_string())
            .collect();
        assert!(tails.len() > 10, "{tails:?}");
    }

    #[test]
    fn the_cache_keeps_a_campaign_for_cache_for_and_remembers_sold_out() {
        let t: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        let mut cache = CampaignCache::default();
        cache.put(campaign(1), t);
        assert!(cache.fresh(1, t + chrono::Duration::seconds(4)).is_some());
        assert!(cache
            .fresh(1, t + unionpass_core::campaign::CACHE_FOR)
            .is_none());
        assert_eq!(cache.decide_without_stock(&campaign(1), 9, t), None);
        cache.mark_sold_out(1);
        assert_eq!(
            cache.decide_without_stock(&campaign(1), 9, t),
            Some(GrabOutcome::SoldOut)
        );
        // a campaign read again keeps its mark
        cache.put(campaign(1), t + chrono::Duration::seconds(10));
        assert_eq!(
            cache.decide_without_stock(&campaign(1), 9, t),
            Some(GrabOutcome::SoldOut)
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let t: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        let mut cache = CampaignCache::default();
        for id in 0..CampaignCache::MAX as i64 {
            cache.put(campaign(id), t);
        }
        assert_eq!(cache.len(), CampaignCache::MAX);
        // full: the stale entries go first
        let later = t + chrono::Duration::minutes(1);
        cache.put(campaign(-1), later);
        assert_eq!(cache.len(), 1);
        // full of fresh ones: it starts over rather than grow
        for id in 0..(CampaignCache::MAX as i64 + 10) {
            cache.put(campaign(id), later);
        }
        assert!(cache.len() <= CampaignCache::MAX, "{}", cache.len());
    }

    #[derive(Debug, PartialEq)]
    struct Failed {
        retryable: bool,
    }

    impl Retryable for Failed {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
    }

    #[tokio::test]
    async fn work_is_run_again_only_after_a_retryable_failure_and_not_forever() {
        let mut runs = 0;
        let ok = retrying(|| {
            runs += 1;
            let n = runs;
            async move {
                if n < 3 {
                    Err(Failed { retryable: true })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!((ok, runs), (Ok(3), 3));

        let mut runs = 0;
        let refused: Result<(), Failed> = retrying(|| {
            runs += 1;
            async { Err(Failed { retryable: false }) }
        })
        .await;
        assert_eq!((refused, runs), (Err(Failed { retryable: false }), 1));

        let mut runs = 0;
        let gave_up: Result<(), Failed> = retrying(|| {
            runs += 1;
            async { Err(Failed { retryable: true }) }
        })
        .await;
        assert!(gave_up.is_err());
        assert_eq!(runs, RETRIES + 1);
    }

    #[test]
    fn another_members_grab_key_is_refused_without_its_answer() {
        let job = GrabJob {
            member_id: 1,
            union_id: 1,
            campaign_id: 1,
            key: Uuid::nil(),
            now: "2026-12-01T04:00:00Z".parse().unwrap(),
        };
        let err = replay_grab(&job, 2, || panic!("must not read another member's answer"));
        assert!(matches!(err, Err(StoreError::Duplicate(Taken::GrabKey(_)))));
        let mine = replay_grab(&job, 1, || Ok(grab_answer(&job, GrabOutcome::SoldOut))).unwrap();
        assert!(mine.replayed);
    }
}
