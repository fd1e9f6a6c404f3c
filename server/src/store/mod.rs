//! The server's storage, behind one trait so that SQLite (embedded, the default) and PostgreSQL
//! (several stateless servers) serve the same handlers and pass the same test story.

pub mod postgres;
mod postgres_points;
pub mod sqlite;
mod sqlite_grab;
mod sqlite_points;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use unionpass_core::api::{Change, Mutation, MutationResult, PassportInfo, Profile, Role};
use unionpass_core::campaign::{Campaign, GrabResponse};
use unionpass_core::checkin::{CheckIn, Conflict, Event, RevokedDevice};
use uuid::Uuid;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Migrate(#[from] unionpass_sqlite::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("a storage task failed: {0}")]
    Task(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("no campaign {0}")]
    NoCampaign(i64),
    #[error(transparent)]
    Reschedule(#[from] unionpass_core::campaign::RescheduleError),
    #[error("the grab writer has stopped")]
    WriterGone,
}

/// What login needs to know about a member.
#[derive(Clone, Debug)]
pub struct MemberAuth {
    pub member_id: i64,
    pub password_hash: String,
    /// Suspended members cannot sign in, and their passports are on the revocation list.
    pub suspended: bool,
}

#[derive(Clone, Debug)]
pub struct NewMember {
    pub member_no: String,
    pub name: String,
    pub union_id: i64,
    pub role: Role,
    pub password_hash: String,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    /// SHA-256 of the token, hex; the token itself is never stored.
    pub token_hash: String,
    pub member_id: i64,
    pub device_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The device to enrol with this session (its passport key), if the client sent one.
    pub device: Option<NewDevice>,
}

#[derive(Clone, Debug)]
pub struct NewDevice {
    pub name: String,
    /// The device's Ed25519 public key.
    pub public_key: [u8; 32],
}

/// Who a live session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub member_id: i64,
    /// The device enrolled with the session.
    pub device_id: Option<i64>,
}

/// An enrolled device and the credential last issued to it.
#[derive(Clone, Debug)]
pub struct DevicePassport {
    pub public_key: [u8; 32],
    pub revoked: bool,
    pub passport: Option<PassportInfo>,
}

/// An enrolled, unrevoked device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: i64,
    pub name: String,
    pub device_kid: String,
    pub created_at: DateTime<Utc>,
}

/// What a scanner of one staff member's union needs (the keys are added by the handler).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScannerData {
    pub events: Vec<Event>,
    pub checkins: Vec<CheckIn>,
    pub conflicts: Vec<Conflict>,
    pub revoked_devices: Vec<RevokedDevice>,
    pub revoked_members: Vec<i64>,
}

/// Events listed to a scanner: those not ended more than this long ago.
pub const EVENT_GRACE: chrono::Duration = chrono::Duration::days(1);

/// How a held redemption ended at the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fulfilment {
    Settled { reference: String },
    Refunded(unionpass_core::redeem::RefundReason),
}

/// A redemption claimed for fulfilment, with its member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub member_id: i64,
    pub redemption: unionpass_core::redeem::Redemption,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn member_auth(&self, member_no: &str) -> Result<Option<MemberAuth>, StoreError>;
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;
    /// The member (and enrolled device) a live (unexpired) session belongs to.
    async fn session_member(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionInfo>, StoreError>;
    /// End a session (logout); the device it enrolled is revoked with it.
    async fn delete_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    async fn profile(&self, member_id: i64) -> Result<Option<Profile>, StoreError>;

    async fn device_passport(&self, device_id: i64) -> Result<Option<DevicePassport>, StoreError>;
    async fn save_device_passport(
        &self,
        device_id: i64,
        passport: &PassportInfo,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The member's enrolled devices that are not revoked, oldest first.
    async fn devices(&self, member_id: i64) -> Result<Vec<DeviceRow>, StoreError>;
    /// Suspend a member: sign-in refused, sessions ended, passport revoked. False if unknown.
    async fn suspend_member(&self, member_no: &str, now: DateTime<Utc>)
        -> Result<bool, StoreError>;

    /// Create an event (its id is assigned).
    async fn create_event(&self, event: Event, now: DateTime<Utc>) -> Result<Event, StoreError>;
    async fn events(&self) -> Result<Vec<Event>, StoreError>;
    /// The scanner data for a staff member: their union's events and district-wide ones,
    /// check-ins and conflicts at them, and the revocation list.
    async fn scanner_data(
        &self,
        staff_member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<ScannerData, StoreError>;

    /// Changes visible to the member with `seq > cursor`, oldest first, at most `limit`.
    async fn changes_since(
        &self,
        member_id: i64,
        cursor: i64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError>;

    /// Apply a device's mutation exactly once: a repeated id returns the first result, marked
    /// `replayed`, and changes nothing.
    async fn apply_mutation(
        &self,
        member_id: i64,
        mutation: &Mutation,
        now: DateTime<Utc>,
    ) -> Result<MutationResult, StoreError>;

    /// Create the workplace union if missing; returns its id.
    async fn ensure_union(&self, name: &str) -> Result<i64, StoreError>;
    async fn insert_member(&self, member: NewMember, now: DateTime<Utc>)
        -> Result<i64, StoreError>;

    /// Create a campaign (its id is assigned) and announce it to every member through sync.
    async fn create_campaign(
        &self,
        campaign: Campaign,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError>;
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
    /// Move or cancel a campaign (rules in `unionpass_core::campaign::reschedule`) and announce
    /// the new version to every member through sync. Running servers pick it up within
    /// `campaign::CACHE_FOR`.
    async fn reschedule_campaign(
        &self,
        id: i64,
        change: unionpass_core::campaign::Reschedule,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError>;
    /// Stock left of the campaigns that have not ended at `now`.
    async fn stock_left(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<unionpass_core::api::StockLeft>, StoreError>;
    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError>;

    // --- points ---
    /// What points can be redeemed for now (the catalog with its stock left).
    async fn points_offer(&self) -> Result<unionpass_core::redeem::PointsOffer, StoreError>;
    /// Set the rate, amounts, caps and password limit (`offer.catalog` is ignored: see
    /// [`Store::put_catalog_item`]).
    async fn set_points_offer(
        &self,
        offer: unionpass_core::redeem::PointsOffer,
    ) -> Result<(), StoreError>;
    /// Add a catalog item, or change one (its stock is set to `item.stock`).
    async fn put_catalog_item(
        &self,
        item: unionpass_core::redeem::CatalogItem,
    ) -> Result<(), StoreError>;
    /// Add a batch of points to a member's ledger; the member's apps get it with their next sync.
    async fn accrue_points(
        &self,
        member_id: i64,
        points: i64,
        expires_at: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::points::Entry, StoreError>;
    /// A member's ledger, in order.
    async fn points_entries(
        &self,
        member_id: i64,
    ) -> Result<Vec<unionpass_core::points::Entry>, StoreError>;
    /// The member gave their password again for redemption `id`: its `redeem` mutation passes
    /// the password check until `until`.
    async fn grant_reauth(
        &self,
        member_id: i64,
        id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Take up to `limit` held redemptions for fulfilment, oldest first, each for `lease` (another
    /// worker takes it only after that).
    async fn claim_redemptions(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Settle or refund a held redemption, in one transaction with its ledger entry. `false` when
    /// it is not held (any more): nothing changes.
    async fn finish_redemption(
        &self,
        id: Uuid,
        how: Fulfilment,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The expiry sweep: write expiration entries for batches that expired by `now` (for up to
    /// `limit` members); answers how many entries were written.
    async fn record_expirations(&self, now: DateTime<Utc>, limit: i64)
        -> Result<usize, StoreError>;
    /// Every redemption of a member (for tests and support).
    async fn redemptions(
        &self,
        member_id: i64,
    ) -> Result<Vec<unionpass_core::redeem::Redemption>, StoreError>;

    /// One grab, decided and made durable before this returns: exactly the stock is granted, no
    /// member gets more than the limit, and a repeated key returns the first answer (`replayed`).
    async fn grab(&self, grab: GrabJob) -> Result<GrabResponse, StoreError>;

    /// Counts straight from the stored rows, for `campaign stats` and the bench's audit.
    async fn audit(&self, campaign_id: i64) -> Result<Audit, StoreError>;

    /// How many of these grab keys have no grant row (acknowledged grants that were lost).
    async fn missing_grants(&self, keys: Vec<Uuid>) -> Result<i64, StoreError>;

    /// Bench support: create `n` members (`B000001`…) in one union, each with a session; returns
    /// the tokens in member order. Only the hidden `bench-seed` command calls it.
    async fn bench_members(&self, n: usize, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
}

/// A member's grab request, as the store sees it.
#[derive(Clone, Debug)]
pub struct GrabJob {
    pub member_id: i64,
    pub union_id: i64,
    pub campaign_id: i64,
    pub key: Uuid,
    pub now: DateTime<Utc>,
}

/// What the database holds for one campaign.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    pub campaign_id: i64,
    pub stock: i64,
    /// Grant rows.
    pub granted: i64,
    /// The campaign's own counter of granted stock (must equal `granted`).
    pub counter: i64,
    /// Members holding a grant.
    pub members: i64,
    /// Grants beyond the stock.
    pub oversold: i64,
    /// Grants beyond a member's limit, summed over members.
    pub double_grants: i64,
    /// Answers stored under idempotency keys.
    pub answers: i64,
}

/// A device public key as stored: base64url without padding.
pub(crate) fn key_text(key: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

pub(crate) fn key_bytes(text: &str) -> Result<[u8; 32], StoreError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("device key {text:?}")))
}

/// Whether a member may upload a check-in for an event, decided the same way by every backend:
/// `staff` is the uploader's (role, union), `event_union` the event's union (`None`: no such
/// event; `Some(None)`: district-wide). `None` means allowed.
pub(crate) fn checkin_refusal(
    staff: (Role, i64),
    event_union: Option<Option<i64>>,
) -> Option<unionpass_core::api::MutationOutcome> {
    use unionpass_core::api::MutationOutcome::Rejected;
    use unionpass_core::ErrorCode;
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
pub(crate) fn coupon_use_refusal(
    validity: Option<(DateTime<Utc>, DateTime<Utc>)>,
    at: DateTime<Utc>,
) -> Option<unionpass_core::api::MutationOutcome> {
    use unionpass_core::api::MutationOutcome::Rejected;
    use unionpass_core::ErrorCode;
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
pub(crate) fn redeem_refusal(
    code: unionpass_core::ErrorCode,
) -> unionpass_core::api::MutationOutcome {
    unionpass_core::api::MutationOutcome::Rejected {
        code,
        message: code.message().text(unionpass_core::Lang::En).to_string(),
    }
}

/// The ledger entry and the new state of a held redemption that ended `how`.
pub(crate) fn finished(
    r: &unionpass_core::redeem::Redemption,
    how: &Fulfilment,
    now: DateTime<Utc>,
) -> (
    unionpass_core::points::EntryKind,
    unionpass_core::redeem::Redemption,
) {
    use unionpass_core::points::EntryKind;
    use unionpass_core::redeem::RedemptionStatus;
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

/// The answer to revoking a device that is not the member's.
pub(crate) fn no_such_device() -> unionpass_core::api::MutationOutcome {
    unionpass_core::api::MutationOutcome::Rejected {
        code: unionpass_core::ErrorCode::NotFound,
        message: "No such device.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkin_uploads_need_staff_and_the_right_union() {
        assert!(checkin_refusal((Role::Staff, 1), Some(Some(1))).is_none());
        assert!(checkin_refusal((Role::Staff, 1), Some(None)).is_none());
        assert!(checkin_refusal((Role::Staff, 1), Some(Some(2))).is_some());
        assert!(checkin_refusal((Role::Staff, 1), None).is_some());
        assert!(checkin_refusal((Role::Member, 1), Some(None)).is_some());
    }
}
