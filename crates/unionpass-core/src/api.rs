//! Wire types of the union server's HTTP API (`/v1/...`), shared by server, client and UI.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ErrorCode;
use crate::i18n::Lang;

/// The role a member account has on the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "staff" => Some(Role::Staff),
            _ => None,
        }
    }
}

/// `POST /v1/login` body.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// At most 32 characters (the server refuses longer ones before anything else).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 32))]
    pub member_no: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub password: String,
    /// A human label for the device ("王芳的笔记本"), shown in the member's device list.
    pub device_name: String,
    /// The device's Ed25519 public key (32 bytes, base64url without padding), made on the device
    /// at login: the server enrols it and binds it into the passport credential. Required: a
    /// sign-in without one is refused (`invalid_input`), so that every session belongs to a
    /// device a revocation reaches.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_length = 43, max_length = 43)
    )]
    pub device_key: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("member_no", &self.member_no)
            .field("password", &"<redacted>")
            .field("device_name", &self.device_name)
            .field("device_key", &self.device_key)
            .finish()
    }
}

/// `POST /v1/login` answer. The token is a bearer secret: the client keeps it in the OS keyring only.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    pub token: String,
    pub member_id: i64,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &"<redacted>")
            .field("member_id", &self.member_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A workplace union (基层工会).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Union {
    pub id: i64,
    pub name: String,
}

/// What the member sees about themself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub member_id: i64,
    pub member_no: String,
    pub name: String,
    pub role: Role,
    pub union: Union,
    /// The member's chosen UI language, synced across devices; `None` until they pick one.
    pub language: Option<Lang>,
}

/// The server-issued level-1 passport credential (see [`crate::passport`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PassportInfo {
    /// The level-1 bytes, base64url without padding. The device adds level 2 to make the QR.
    pub credential: String,
    pub kid: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// One entry of the server's change log, delivered in order of `seq`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: ChangeKind,
}

/// What changed. Clients ignore kinds they do not know (a newer server may send more).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum ChangeKind {
    /// The member's preferences changed (from this or another device).
    Preferences { language: Option<Lang> },
    /// A campaign was announced or changed (every member receives it; eligibility is inside).
    Campaign(crate::campaign::Campaign),
    /// The member was granted a coupon.
    CouponGranted(crate::campaign::Coupon),
    /// One of the member's coupons was used (from this or another device).
    CouponUsed {
        coupon_id: i64,
        used_at: DateTime<Utc>,
    },
    /// The union withdrew one of the member's coupons (`at`): unusable from then on.
    CouponVoided { coupon_id: i64, at: DateTime<Utc> },
    /// A new entry in the member's points ledger.
    PointsEntry(crate::points::Entry),
    /// A redemption was held, settled or refunded.
    Redemption(crate::redeem::Redemption),
    /// An activity was published or changed, moved or cancelled (every member receives it).
    Activity(crate::activity::Activity),
    /// The member's sign-up changed (made, promoted from the waitlist, cancelled).
    Signup(crate::activity::MySignup),
    /// The member was checked in to an activity (or event): they may give feedback.
    Attended { activity_id: i64, at: DateTime<Utc> },
    /// The member's feedback on an activity, as kept.
    Feedback(crate::activity::FeedbackGiven),
    /// A needs poll was published (every member receives it; eligibility is inside).
    Poll(crate::activity::Poll),
    /// The member's vote, as kept.
    Voted { poll_id: i64, option: i64 },
    #[serde(other)]
    Unknown,
}

impl ChangeKind {
    /// Read a change from its wire parts; a kind this version does not know (or cannot read)
    /// becomes [`ChangeKind::Unknown`] instead of failing the whole sync.
    pub fn from_parts(kind: &str, data: serde_json::Value) -> ChangeKind {
        serde_json::from_value(serde_json::json!({ "kind": kind, "data": data }))
            .unwrap_or(ChangeKind::Unknown)
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            seq: i64,
            at: DateTime<Utc>,
            kind: String,
            #[serde(default)]
            data: serde_json::Value,
        }
        let raw = Raw::deserialize(d)?;
        Ok(Change {
            seq: raw.seq,
            at: raw.at,
            kind: ChangeKind::from_parts(&raw.kind, raw.data),
        })
    }
}

/// `GET /v1/sync?cursor=N` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncResponse {
    /// Pass this back as `cursor` next time.
    pub cursor: i64,
    pub server_time: DateTime<Utc>,
    pub profile: Profile,
    /// The credential for the device this session enrolled. (Every session has a device since
    /// sign-in requires its key; `None` is kept for answers of older servers.)
    pub passport: Option<PassportInfo>,
    /// The member's enrolled devices (not revoked).
    #[serde(default)]
    pub devices: Vec<DeviceInfo>,
    /// Changes with `seq > cursor` (the request's), oldest first.
    pub changes: Vec<Change>,
    /// More changes are waiting: call again with the new cursor.
    pub more: bool,
    /// Stock left now, for campaigns that have not ended (for the grab calendar).
    #[serde(default)]
    pub stock_left: Vec<StockLeft>,
    /// What points can be redeemed for (rate, amounts, caps, catalog with stock), with the last
    /// page.
    #[serde(default)]
    pub points_offer: Option<crate::redeem::PointsOffer>,
}

/// How many coupons of a campaign are left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockLeft {
    pub campaign_id: i64,
    pub left: i64,
}

/// One enrolled device of a member, for the account screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    pub id: i64,
    pub name: String,
    /// [`crate::passport::DeviceKid`] in hex.
    pub device_kid: String,
    pub created_at: DateTime<Utc>,
    /// The device this sync answer was made for.
    pub current: bool,
}

/// A mutation made on a device, carried to the server by the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mutation {
    /// Idempotency key, generated on the device before the first send.
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub op: MutationOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum MutationOp {
    SetLanguage {
        language: Lang,
    },
    /// Revoke one of the member's enrolled devices: its session ends and its passport is listed
    /// as revoked for scanners.
    RevokeDevice {
        device_id: i64,
    },
    /// A staff scanner's check-in (see [`crate::checkin`]).
    CheckIn(crate::checkin::CheckIn),
    /// The member used a coupon at a merchant (marked on the device, possibly offline).
    UseCoupon {
        coupon_id: i64,
        used_at: DateTime<Utc>,
    },
    /// Redeem points (the mutation id is the redemption's id).
    Redeem(crate::redeem::RedeemRequest),
    /// Rate and comment on an activity the member checked in to.
    Feedback(crate::activity::Feedback),
    /// Vote in a needs poll (changeable until it closes).
    Vote(crate::activity::Vote),
}

impl MutationOp {
    /// Every kind of change, as written in `op` (each variant's [`MutationOp::kind`]): a change
    /// of one of these kinds that cannot be read is a mistake (`bad_request`); any other kind is
    /// one this build does not know (`unsupported_mutation`).
    pub const KINDS: [&'static str; 7] = [
        kind::SET_LANGUAGE,
        kind::REVOKE_DEVICE,
        kind::CHECK_IN,
        kind::USE_COUPON,
        kind::REDEEM,
        kind::FEEDBACK,
        kind::VOTE,
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            MutationOp::SetLanguage { .. } => kind::SET_LANGUAGE,
            MutationOp::RevokeDevice { .. } => kind::REVOKE_DEVICE,
            MutationOp::CheckIn(_) => kind::CHECK_IN,
            MutationOp::UseCoupon { .. } => kind::USE_COUPON,
            MutationOp::Redeem(_) => kind::REDEEM,
            MutationOp::Feedback(_) => kind::FEEDBACK,
            MutationOp::Vote(_) => kind::VOTE,
        }
    }
}

/// The kinds of change as written in a mutation's `op` (serde's tags for [`MutationOp`]; a test
/// checks each against a serialized sample). Code that sorts changes by kind names them here.
pub mod kind {
    pub const SET_LANGUAGE: &str = "set_language";
    pub const REVOKE_DEVICE: &str = "revoke_device";
    pub const CHECK_IN: &str = "check_in";
    pub const USE_COUPON: &str = "use_coupon";
    pub const REDEEM: &str = "redeem";
    pub const FEEDBACK: &str = "feedback";
    pub const VOTE: &str = "vote";
}

/// `POST /v1/reauth`: the member's password again, for one large redemption (its id). The
/// `redeem` mutation with that id then passes the password check for 10 minutes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReauthRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub password: String,
    pub redemption_id: Uuid,
}

impl std::fmt::Debug for ReauthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReauthRequest")
            .field("password", &"<redacted>")
            .field("redemption_id", &self.redemption_id)
            .finish()
    }
}

/// `POST /v1/sync/push` body. (The server reads each mutation on its own, `M = Value`, so that
/// one it cannot read is answered alone.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushRequest<M = Mutation> {
    pub mutations: Vec<M>,
}

/// `POST /v1/password`: a new password, given the current one. Every other session ends.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangePasswordRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub current_password: String,
    /// 8 to 128 characters, not the member number (`weak_password` otherwise).
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub new_password: String,
}

impl std::fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePasswordRequest { <redacted> }")
    }
}

/// `POST /v1/password/reset`: a new password for a member who forgot theirs, with the one-time
/// code union staff gave them (`unionpass-server member reset-password`). Every session ends.
/// Sent again with the same code and the same new password (its answer lost), it is answered
/// as done, not refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetPasswordRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, example = "M10001")
    )]
    pub member_no: String,
    /// The code's 12 digits; spaces and dashes between them are ignored.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 12, max_length = 32, example = "4827 1930 5521")
    )]
    pub code: String,
    /// 8 to 128 characters, not the member number (`weak_password` otherwise).
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub new_password: String,
}

impl std::fmt::Debug for ResetPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetPasswordRequest")
            .field("member_no", &self.member_no)
            .finish_non_exhaustive()
    }
}

/// The digits of a password reset code.
pub const RESET_CODE_DIGITS: usize = 12;

/// A reset code as typed ("4827 1930 5521", "4827-1930-5521", or in full-width digits from a
/// Chinese input method) reduced to its digits, or `None` when it is not [`RESET_CODE_DIGITS`]
/// digits.
pub fn reset_code_digits(typed: &str) -> Option<String> {
    if typed.chars().count() > 32 {
        return None;
    }
    let digits: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '－'))
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            c => c,
        })
        .collect();
    (digits.len() == RESET_CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// A reset code's digits in groups of four, to read out: "4827 1930 5521".
pub fn reset_code_shown(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The answer to `POST /v1/sessions/end-all`, `POST /v1/password` and `POST
/// /v1/password/reset`: how many sessions ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndedSessions {
    pub ended: usize,
}

/// `POST /v1/sync/push` answer: one result per mutation, in request order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MutationResult {
    pub id: Uuid,
    pub outcome: MutationOutcome,
    /// True when this answer is the stored first answer of an earlier delivery.
    pub replayed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MutationOutcome {
    Applied,
    Rejected {
        /// Read leniently: a code from a newer server is `bad_request` here.
        #[serde(deserialize_with = "ErrorCode::deserialize_lenient")]
        code: ErrorCode,
        message: String,
    },
}

/// One public union signing key, as published at `GET /v1/keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnionKey {
    pub kid: String,
    pub alg: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
}

impl UnionKey {
    /// The Ed25519 key, when `public_key` is base64url of 32 bytes that form a valid key.
    pub fn verifying_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.public_key)
            .ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw.try_into().ok()?).ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysResponse {
    pub keys: Vec<UnionKey>,
}

/// `GET /v1/time` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeResponse {
    pub now: DateTime<Utc>,
}

/// `GET /v1/version`: which app versions this server serves, and where a newer one is. Apps
/// older than `min_supported` are refused on every other endpoint (`client_too_old`, 426).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    /// The oldest app version served (semver).
    pub min_supported: String,
    /// The newest app version available (semver).
    pub latest: String,
    /// Where to get it, per platform ([`platform`]: `linux-x86_64`, `windows-x86_64`,
    /// `macos-aarch64`, `android`, `ios`, …).
    #[serde(default)]
    pub downloads: std::collections::BTreeMap<String, String>,
}

/// A package the app's own updater installs on one platform (`serve --client-update`): where
/// it is, and the detached signature the Tauri bundler wrote for it with the union's release key
/// (the `.sig` file's text). The app refuses a package whose signature is not by that key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdatePackage {
    pub url: String,
    pub signature: String,
}

/// `GET /v1/update/{target}/{arch}/{bundle}/{current}`: the newer release for the asking app's
/// updater, in the form Tauri's updater plugin reads (a "dynamic update server" answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateRelease {
    /// The version it installs (semver): [`VersionInfo::latest`].
    pub version: String,
    /// Where the package is.
    pub url: String,
    /// The package's minisign signature, base64 (the `.sig` file's text).
    pub signature: String,
}

/// The key a package is configured under: the platform as [`platform`] names it, then the
/// package kind, e.g. `linux-x86_64-deb`, `linux-x86_64-rpm`, `windows-x86_64-nsis`,
/// `macos-aarch64-app`. Tauri's updater says `darwin` where we say `macos`.
pub fn package_key(target: &str, arch: &str, bundle: &str) -> String {
    let os = if target == "darwin" { "macos" } else { target };
    format!("{os}-{arch}-{bundle}")
}

/// This build's platform key for [`VersionInfo::downloads`].
pub fn platform() -> String {
    match std::env::consts::OS {
        os @ ("android" | "ios") => os.to_string(),
        os => format!("{os}-{}", std::env::consts::ARCH),
    }
}

/// What the app should tell the member about its version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpdateState {
    /// Up to date (or nothing known yet).
    #[default]
    Current,
    /// A newer version can be installed; this one still works.
    Available {
        latest: String,
        download: Option<String>,
    },
    /// This version is no longer served: only an update helps.
    Required {
        min_supported: String,
        latest: String,
        download: Option<String>,
    },
}

/// A version as the handshake reads it (semver; `None` when it does not parse).
pub fn parse_version(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v.trim()).ok()
}

/// Whether app version `app` is older than `min` (the one rule for the app and the server; an
/// unreadable version is not called old).
pub fn older_than(app: &str, min: &semver::Version) -> bool {
    parse_version(app).is_some_and(|v| &v < min)
}

impl VersionInfo {
    /// What `own` (this app's version) should say, on `platform`. A version that does not
    /// parse (ours or the server's) says nothing rather than something wrong.
    pub fn update_for(&self, own: &str, platform: &str) -> UpdateState {
        let (Some(own_v), Some(min), Some(latest)) = (
            parse_version(own),
            parse_version(&self.min_supported),
            parse_version(&self.latest),
        ) else {
            return UpdateState::Current;
        };
        let download = self.downloads.get(platform).cloned();
        if older_than(own, &min) {
            UpdateState::Required {
                min_supported: min.to_string(),
                latest: latest.to_string(),
                download,
            }
        } else if own_v < latest {
            UpdateState::Available {
                latest: latest.to_string(),
                download,
            }
        } else {
            UpdateState::Current
        }
    }
}

impl VersionInfo {
    /// What the updater of an app at version `current` gets for package key `key`: the newest
    /// version's package when it is newer and one is configured for that key. The same rule as
    /// [`VersionInfo::update_for`]: nothing is offered when a version does not parse.
    pub fn release_for(
        &self,
        current: &str,
        key: &str,
        packages: &std::collections::BTreeMap<String, UpdatePackage>,
    ) -> Option<UpdateRelease> {
        let (current, latest) = (parse_version(current)?, parse_version(&self.latest)?);
        let package = packages.get(key).filter(|_| current < latest)?;
        Some(UpdateRelease {
            version: latest.to_string(),
            url: package.url.clone(),
            signature: package.signature.clone(),
        })
    }
}

/// The app's version as its requests say it: `User-Agent: UnionPass/<version>`.
pub fn app_version_of(user_agent: &str) -> Option<&str> {
    user_agent
        .split_whitespace()
        .find_map(|part| part.strip_prefix("UnionPass/"))
}

/// The one error body every endpoint answers with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_code_is_read_as_typed_and_shown_in_fours() {
        for typed in [
            "482719305521",
            "4827 1930 5521",
            " 4827-1930-5521 ",
            "4827\t19305521",
            "４８２７　１９３０－５５２１",
        ] {
            assert_eq!(
                reset_code_digits(typed).as_deref(),
                Some("482719305521"),
                "{typed:?}"
            );
        }
        for wrong in [
            "",
            "48271930552",
            "4827193055211",
            "4827 1930 552a",
            "4827 1930 55２",
        ] {
            assert_eq!(reset_code_digits(wrong), None, "{wrong:?}");
        }
        assert_eq!(reset_code_digits(&format!("{}1", " ".repeat(40))), None);
        assert_eq!(reset_code_shown("482719305521"), "4827 1930 5521");
        let req = ResetPasswordRequest {
            member_no: "M1".into(),
            code: "482719305521".into(),
            new_password: "hunter2!".into(),
        };
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("4827") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    /// `KINDS` names every kind of change once, in `kind`'s words, which are serde's.
    #[test]
    fn every_kind_of_change_is_listed_once() {
        let at = "2026-11-29T08:00:00Z";
        let uuid = "6f0c1a52-5d1e-4f7e-9d55-3a0f9b7c0003";
        let samples = [
            serde_json::json!({"op": "set_language", "args": {"language": "en"}}),
            serde_json::json!({"op": "revoke_device", "args": {"device_id": 2}}),
            serde_json::json!({"op": "check_in", "args": {"event_id": 1, "member_id": 2,
                "member_no": "M1", "scanned_at": at, "scanner": uuid, "nonce": uuid}}),
            serde_json::json!({"op": "use_coupon", "args": {"coupon_id": 3, "used_at": at}}),
            serde_json::json!({"op": "redeem", "args": {"target": {"kind": "catalog", "item_id": 4},
                "points": 100}}),
            serde_json::json!({"op": "feedback", "args": {"activity_id": 5, "rating": 4,
                "comment": ""}}),
            serde_json::json!({"op": "vote", "args": {"poll_id": 6, "option": 0}}),
        ];
        // each variant's place, with no wildcard: a new kind of change does not compile until it
        // has a place here, and then the samples miss it until one is added above
        let place = |op: &MutationOp| match op {
            MutationOp::SetLanguage { .. } => 0,
            MutationOp::RevokeDevice { .. } => 1,
            MutationOp::CheckIn(_) => 2,
            MutationOp::UseCoupon { .. } => 3,
            MutationOp::Redeem(_) => 4,
            MutationOp::Feedback(_) => 5,
            MutationOp::Vote(_) => 6,
        };
        let mut kinds = vec![""; samples.len()];
        for json in &samples {
            let op: MutationOp = serde_json::from_value(json.clone()).expect("a sample");
            assert_eq!(
                Some(op.kind()),
                json["op"].as_str(),
                "kind() is serde's name"
            );
            let slot = &mut kinds[place(&op)];
            assert!(slot.is_empty(), "one sample per kind: {}", op.kind());
            *slot = op.kind();
        }
        // every place has its sample, and KINDS lists them all, once
        assert_eq!(kinds, MutationOp::KINDS);
    }

    #[test]
    fn unknown_change_kinds_are_tolerated() {
        let json =
            r#"{"seq":7,"at":"2026-11-29T08:00:00Z","kind":"coupon_granted","data":{"x":1}}"#;
        let c: Change = serde_json::from_str(json).unwrap();
        assert_eq!(c.seq, 7);
        assert_eq!(c.kind, ChangeKind::Unknown);
        let known = Change {
            seq: 8,
            at: "2026-11-29T08:00:00Z".parse().unwrap(),
            kind: ChangeKind::Preferences {
                language: Some(Lang::En),
            },
        };
        let back: Change = serde_json::from_str(&serde_json::to_string(&known).unwrap()).unwrap();
        assert_eq!(back, known);
    }

    #[test]
    fn mutation_wire_shape_is_stable() {
        let m = Mutation {
            id: Uuid::nil(),
            created_at: "2026-11-29T08:00:00Z".parse().unwrap(),
            op: MutationOp::SetLanguage { language: Lang::En },
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["op"], "set_language");
        assert_eq!(v["args"]["language"], "en");
        let back: Mutation = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn login_response_debug_hides_token() {
        let r = LoginResponse {
            token: "very-secret".into(),
            member_id: 1,
            expires_at: "2026-11-29T08:00:00Z".parse().unwrap(),
        };
        assert!(!format!("{r:?}").contains("very-secret"));
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn the_updater_is_offered_the_newest_package_for_its_own_kind_only() {
        let v = info("0.2.0", "0.4.1");
        let packages: std::collections::BTreeMap<String, UpdatePackage> = [(
            package_key("linux", "x86_64", "deb"),
            UpdatePackage {
                url: "https://union.example/UnionPass_0.4.1_amd64.deb".into(),
                signature: "c2ln".into(),
            },
        )]
        .into();
        let offered = v
            .release_for("0.3.0", "linux-x86_64-deb", &packages)
            .unwrap();
        assert_eq!(offered.version, "0.4.1");
        assert_eq!(
            offered.url,
            "https://union.example/UnionPass_0.4.1_amd64.deb"
        );
        assert_eq!(offered.signature, "c2ln");
        // below the oldest served it is offered too: that is when it matters most
        assert!(v
            .release_for("0.1.0", "linux-x86_64-deb", &packages)
            .is_some());
        assert_eq!(v.release_for("0.4.1", "linux-x86_64-deb", &packages), None);
        assert_eq!(v.release_for("0.5.0", "linux-x86_64-deb", &packages), None);
        assert_eq!(v.release_for("0.3.0", "linux-x86_64-rpm", &packages), None);
        assert_eq!(
            v.release_for("0.3.0", "linux-x86_64-unknown", &packages),
            None
        );
        assert_eq!(v.release_for("three", "linux-x86_64-deb", &packages), None);
        assert_eq!(
            info("0.2.0", "soon").release_for("0.3.0", "linux-x86_64-deb", &packages),
            None
        );
        assert_eq!(package_key("darwin", "aarch64", "app"), "macos-aarch64-app");
    }

    fn info(min: &str, latest: &str) -> VersionInfo {
        VersionInfo {
            min_supported: min.into(),
            latest: latest.into(),
            downloads: [(
                "linux-x86_64".to_string(),
                "https://example.org/up.deb".to_string(),
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn an_app_is_current_can_update_or_must_update() {
        assert_eq!(
            info("0.1.0", "0.1.0").update_for("0.1.0", "linux-x86_64"),
            UpdateState::Current
        );
        assert_eq!(
            info("0.1.0", "0.1.0").update_for("0.2.0", "linux-x86_64"),
            UpdateState::Current
        );
        assert_eq!(
            info("0.1.0", "0.10.0").update_for("0.9.3", "linux-x86_64"),
            UpdateState::Available {
                latest: "0.10.0".into(),
                download: Some("https://example.org/up.deb".into())
            },
            "compared as versions, not as text"
        );
        assert_eq!(
            info("1.0.0", "1.2.0").update_for("0.9.9", "windows-x86_64"),
            UpdateState::Required {
                min_supported: "1.0.0".into(),
                latest: "1.2.0".into(),
                download: None
            }
        );
        // a pre-release is older than its release
        assert!(matches!(
            info("1.0.0", "1.0.0").update_for("1.0.0-rc.1", "linux-x86_64"),
            UpdateState::Required { .. }
        ));
        assert_eq!(
            info("x", "1.0.0").update_for("0.1.0", "linux-x86_64"),
            UpdateState::Current
        );
    }

    #[test]
    fn the_version_is_read_from_the_user_agent() {
        assert_eq!(app_version_of("UnionPass/0.3.1"), Some("0.3.1"));
        assert_eq!(
            app_version_of("Mozilla/5.0 UnionPass/1.0.0 (X11)"),
            Some("1.0.0")
        );
        assert_eq!(app_version_of("curl/8.0"), None);
        assert!(platform().contains(std::env::consts::OS));
    }
}
