//! The rows and jobs passed across the store traits.

use chrono::{DateTime, Utc};
use unionpass_core::api::{PassportInfo, Role};
use unionpass_core::checkin::{CheckIn, Conflict, Event, RevokedDevice};
use uuid::Uuid;

/// What login needs to know about a member.
#[derive(Clone, Debug)]
pub struct MemberAuth {
    pub member_id: i64,
    pub password_hash: String,
    /// Suspended members cannot sign in, and their passports are on the revocation list.
    pub suspended: bool,
}

/// A member's password reset code as kept, with what judging a reset needs.
#[derive(Clone)]
pub struct PasswordReset {
    pub member_id: i64,
    /// The code's argon2 hash.
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The password hash the code set, once used.
    pub set_hash: Option<String>,
    /// The member's password now.
    pub password_hash: String,
    pub suspended: bool,
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordReset")
            .field("member_id", &self.member_id)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .field("suspended", &self.suspended)
            .finish_non_exhaustive()
    }
}

/// What a reset code is good for at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetState {
    /// Unused and in time: the right code sets the new password.
    Usable,
    /// Used, still in time, and the password it set still stands: the same code with the same
    /// new password is answered as done (a reset sent again); anything else is refused.
    Used,
    /// Expired, the member suspended, or used and the password changed since: refused, as a
    /// wrong code is (a used code never tests guesses at a later password).
    Void,
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
    /// The member's workplace union.
    pub union_id: i64,
    /// The device enrolled with the session.
    pub device_id: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What one sync page reads, read together ([`crate::store::Changes::sync_reads`]).
#[derive(Clone, Debug)]
pub struct SyncReads {
    pub profile: Option<unionpass_core::api::Profile>,
    pub device: Option<DevicePassport>,
    pub devices: Vec<DeviceRow>,
    pub changes: Vec<PageChange>,
    /// Only with the last page (fewer changes than asked for): the stock left and the offer.
    pub stock_left: Vec<unionpass_core::api::StockLeft>,
    pub points_offer: Option<unionpass_core::redeem::PointsOffer>,
}

/// A change as a sync page sends it: its data is the JSON the log stored, sent as it is (the
/// server neither parses nor re-writes it). Serialised exactly as
/// [`unionpass_core::api::Change`] is (`seq`, `at`, `kind`, `data`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PageChange {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub data: Box<serde_json::value::RawValue>,
}

impl PageChange {
    /// A change read from the log with its data as stored (`data` the JSON text). Data that is
    /// not JSON (a corrupt row) goes out as an `unknown` change, which every app skips, instead
    /// of failing the page for everyone whose log holds it.
    pub fn stored(seq: i64, at: DateTime<Utc>, kind: String, data: String) -> PageChange {
        match serde_json::value::RawValue::from_string(data) {
            Ok(data) => PageChange {
                seq,
                at,
                kind,
                data,
            },
            Err(e) => {
                tracing::error!(seq, kind, error = %e, "a change-log row is not JSON; sent as unknown");
                PageChange {
                    seq,
                    at,
                    kind: "unknown".into(),
                    data: serde_json::value::RawValue::from_string("null".into())
                        .expect("null is JSON"),
                }
            }
        }
    }

    /// The change as the domain reads it (an unknown or unreadable kind is `Unknown`).
    pub fn read(&self) -> unionpass_core::api::Change {
        unionpass_core::api::Change {
            seq: self.seq,
            at: self.at,
            kind: unionpass_core::api::ChangeKind::from_parts(
                &self.kind,
                serde_json::from_str(self.data.get()).unwrap_or_default(),
            ),
        }
    }
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
    pub unions: Vec<unionpass_core::checkin::UnionName>,
    pub roster: Vec<unionpass_core::checkin::Person>,
    pub signup_events: Vec<i64>,
    pub signups: Vec<unionpass_core::checkin::DoorEntry>,
}

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

/// What the server proved about a mutation before applying it (a device's word is not taken).
#[derive(Clone, Debug, Default)]
pub struct Proven {
    /// For a check-in: the claims of the scanned passport, verified with the union keys at the
    /// scan's time (`crate::passport::prove_checkin`), or the code saying why not.
    pub checkin: Option<ProvenCheckin>,
}

/// A check-in's proof, decoded once and verified (`crate::passport::prove_checkin`).
#[derive(Clone, Debug)]
pub struct ProvenCheckin {
    /// The scanned passport's claims, or the code saying why not.
    pub claims: Result<unionpass_core::passport::Claims, unionpass_core::ErrorCode>,
    /// Which showing of the passport it is ([`Presentation::id`]), when the proof decodes.
    ///
    /// [`Presentation::id`]: unionpass_core::passport::Presentation::id
    pub shown: Option<String>,
}

impl ProvenCheckin {
    /// A check-in that came without a proof.
    pub fn missing() -> ProvenCheckin {
        ProvenCheckin {
            claims: Err(unionpass_core::ErrorCode::CheckinProofMissing),
            shown: None,
        }
    }
}

/// A member's grab request, as the store sees it.
#[derive(Clone, Debug)]
pub struct GrabJob {
    pub member_id: i64,
    pub union_id: i64,
    pub campaign_id: i64,
    pub key: Uuid,
    pub now: DateTime<Utc>,
    /// The token hash of the session the request came with: what it is granted (a coupon, a
    /// seat) is granted only if this session is still live in the transaction that writes it
    /// (the request may have been judged from memory, `auth::SessionTable`). `None`: the
    /// server's own callers (the demo seed).
    pub session: Option<String>,
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

/// One sign-up request, as the handler hands it to the store: the member and union come from the
/// session, never from the request.
#[derive(Clone, Debug)]
pub struct SignupJob {
    pub member_id: i64,
    pub union_id: i64,
    pub activity_id: i64,
    pub key: Uuid,
    pub companions: i64,
    pub now: DateTime<Utc>,
    /// The server's no-show rule (configuration).
    pub no_show: unionpass_core::activity::NoShowRule,
    /// The token hash of the session the request came with: what it is granted (a coupon, a
    /// seat) is granted only if this session is still live in the transaction that writes it
    /// (the request may have been judged from memory, `auth::SessionTable`). `None`: the
    /// server's own callers (the demo seed).
    pub session: Option<String>,
}

/// What the union does to a published activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityChange {
    Move {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    Cancel,
}

/// One sign-up as staff list it (`activity signups`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignupRow {
    /// The order received (the waitlist's order).
    pub seq: i64,
    pub member_no: String,
    pub name: String,
    pub companions: i64,
    pub state: unionpass_core::activity::SignupState,
    pub checked_in: bool,
    pub created_at: DateTime<Utc>,
    /// The request's idempotency key (the bench's audit matches acknowledgements to it).
    pub key: Uuid,
}

/// One member's feedback on an activity (`activity feedback`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackRow {
    pub member_no: String,
    pub rating: i64,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// A coupon the union withdrew (`coupon void`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VoidedCoupon {
    pub coupon_id: i64,
    pub member_id: i64,
    pub voided_at: DateTime<Utc>,
}

#[cfg(test)]
mod page_change_tests {
    use super::PageChange;
    use unionpass_core::api::ChangeKind;

    #[test]
    fn stored_data_goes_out_as_stored_and_a_corrupt_row_as_unknown() {
        let at = "2026-12-03T08:00:00Z".parse().unwrap();
        let kept = PageChange::stored(
            7,
            at,
            "coupon_voided".into(),
            r#"{"coupon_id": 3, "at": "2026-12-03T08:00:00Z"}"#.into(),
        );
        assert_eq!(
            kept.data.get(),
            r#"{"coupon_id": 3, "at": "2026-12-03T08:00:00Z"}"#
        );
        assert!(matches!(
            kept.read().kind,
            ChangeKind::CouponVoided { coupon_id: 3, .. }
        ));
        let corrupt = PageChange::stored(8, at, "coupon_voided".into(), "{not json".into());
        assert_eq!(
            (corrupt.kind.as_str(), corrupt.data.get()),
            ("unknown", "null")
        );
        assert_eq!(corrupt.seq, 8);
        // what the apps read of it: a change they skip
        let wire = serde_json::to_string(&corrupt).unwrap();
        let read: unionpass_core::api::Change = serde_json::from_str(&wire).unwrap();
        assert_eq!(read.kind, ChangeKind::Unknown);
    }
}
