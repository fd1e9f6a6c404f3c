//! Stable error codes. The server sends them in `{code, message}`; the client library maps its own
//! failures to them; the UI chooses the words to show from the code alone, never from a message.

use serde::{Deserialize, Serialize};

use crate::i18n::Msg;

// On the wire as `as_str` (serde by hand below: a derived deserializer matches every name twice,
// as text and as bytes, about 15 KB of the wasm UI; this one looks the name up in `ALL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", serde(rename_all = "snake_case"))]
pub enum ErrorCode {
    // --- answered by the server ---
    /// The request was malformed (a missing field, a bad cursor).
    BadRequest,
    /// Member number or password is wrong.
    InvalidCredentials,
    /// The session token is missing, unknown, revoked or expired: log in again.
    Unauthenticated,
    /// The token is valid but may not see this.
    Forbidden,
    NotFound,
    /// Too many attempts; wait and retry.
    RateLimited,
    /// The server failed; nothing the member did wrong.
    Internal,
    /// The server is up but cannot serve right now (maintenance, overload).
    Unavailable,
    /// The server does not know this kind of mutation (the app is newer than the server).
    UnsupportedMutation,
    /// The session was ended: signed out (here or everywhere), the device revoked, the password
    /// changed, the membership suspended, or unused for too long. The app clears the member's
    /// data and asks to sign in again.
    SessionEnded,
    /// An idempotency key (a grab key, a change id) came back with different contents.
    IdempotencyKeyReused,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The address exists, but not for this method.
    MethodNotAllowed,
    /// A check-in uploaded without the scanned passport (an older scanner app).
    CheckinProofMissing,
    /// A check-in whose scan time is outside the event's hours, or not plausible.
    CheckinOutsideEvent,
    /// A check-in whose scanned code (that showing of the passport: its device and time step)
    /// already checked the member in at another event.
    CheckinProofReused,
    /// A new password that is too short or too easy.
    WeakPassword,
    // --- raised on the device ---
    /// No connection to the server (offline, DNS, refused, timed out).
    Offline,
    /// The server answered something this app does not understand.
    BadResponse,
    /// The server address typed at login is not a valid http(s) URL.
    InvalidServerUrl,
    /// The server address is `http://` to another computer: the password would travel in clear.
    InsecureServerUrl,
    /// There is no signed-in member on this device.
    NotLoggedIn,
    /// The OS secure store (keyring) is missing or locked.
    KeyringUnavailable,
    /// This device has no secure store the app can keep the sign-in in: it refuses to sign in.
    NoSecureStore,
    /// This app version is older than the oldest the server serves: update the app.
    ClientTooOld,
    /// The local database could not be read or written.
    Storage,
    /// The disk is full: free some space.
    StorageFull,
    /// The local data was written by a newer version of the app.
    DatabaseTooNew,
    /// A field typed by the member is not acceptable (empty member number, …).
    InvalidInput,
    /// This device has no enrolled passport key (signed in before enrolment existed): sign in again.
    DeviceNotEnrolled,
    // --- a scanned passport, checked offline on the scanner ---
    PassportBadFormat,
    PassportUnknownKey,
    PassportBadSignature,
    PassportBadDeviceSignature,
    PassportNotYetValid,
    PassportExpired,
    /// The code is from another time step: a screenshot, or a clock far off.
    PassportStale,
    PassportRevokedDevice,
    PassportRevokedMember,
    NotEligible,
    AlreadyCheckedIn,
    /// No QR code was found in the image or camera frame.
    NoQrFound,
    /// The coupon's validity has ended.
    CouponExpired,
    /// The coupon cannot be used yet.
    CouponNotYetValid,
    /// The union withdrew the coupon (granted in error, or its merchant left) before this use.
    CouponVoided,
    /// The chosen lead time is already past (the release is too close).
    ReminderTooLate,
    /// The campaign was cancelled, or is not known to this device.
    CampaignGone,
    /// The system's login items could not be read or changed.
    AutostartUnavailable,
    /// This copy cannot replace itself (not installed from a package the updater knows, or a
    /// phone, updated by its store): download the new version instead.
    UpdateNotPackaged,
    /// The downloaded update is not signed with the union's release key (or not for the version
    /// announced): nothing was installed.
    UpdateSignatureInvalid,
    /// The package manager did not install the update (the password prompt was cancelled, or it
    /// failed): nothing changed.
    UpdateInstallFailed,
    /// The update server did not hand the package over (it answered an error): nothing was
    /// installed, and trying again later may work.
    UpdateDownloadFailed,
    InvalidMobile,
    InvalidAccount,
    AmountNotOffered,
    OutOfStock,
    CapReached,
    InsufficientPoints,
    ReauthRequired,
    PriceChanged,
    // --- activities ---
    SignupNotOpen,
    SignupClosed,
    SignupFull,
    TooManyCompanions,
    AlreadySignedUp,
    NoShowBanned,
    CancelTooLate,
    ActivityCancelled,
    FeedbackNotAttended,
    FeedbackTooEarly,
    FeedbackLocked,
    NotSignedUp,
    StillWaitlisted,
    PollClosed,
}

impl ErrorCode {
    /// Every code (for tests and the API description).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadRequest,
        ErrorCode::InvalidCredentials,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::UnsupportedMutation,
        ErrorCode::SessionEnded,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::PayloadTooLarge,
        ErrorCode::MethodNotAllowed,
        ErrorCode::CheckinProofMissing,
        ErrorCode::CheckinOutsideEvent,
        ErrorCode::CheckinProofReused,
        ErrorCode::WeakPassword,
        ErrorCode::Offline,
        ErrorCode::BadResponse,
        ErrorCode::InvalidServerUrl,
        ErrorCode::InsecureServerUrl,
        ErrorCode::NotLoggedIn,
        ErrorCode::KeyringUnavailable,
        ErrorCode::NoSecureStore,
        ErrorCode::ClientTooOld,
        ErrorCode::Storage,
        ErrorCode::StorageFull,
        ErrorCode::DatabaseTooNew,
        ErrorCode::InvalidInput,
        ErrorCode::DeviceNotEnrolled,
        ErrorCode::PassportBadFormat,
        ErrorCode::PassportUnknownKey,
        ErrorCode::PassportBadSignature,
        ErrorCode::PassportBadDeviceSignature,
        ErrorCode::PassportNotYetValid,
        ErrorCode::PassportExpired,
        ErrorCode::PassportStale,
        ErrorCode::PassportRevokedDevice,
        ErrorCode::PassportRevokedMember,
        ErrorCode::NotEligible,
        ErrorCode::AlreadyCheckedIn,
        ErrorCode::NoQrFound,
        ErrorCode::CouponExpired,
        ErrorCode::CouponNotYetValid,
        ErrorCode::CouponVoided,
        ErrorCode::ReminderTooLate,
        ErrorCode::CampaignGone,
        ErrorCode::AutostartUnavailable,
        ErrorCode::UpdateNotPackaged,
        ErrorCode::UpdateSignatureInvalid,
        ErrorCode::UpdateInstallFailed,
        ErrorCode::UpdateDownloadFailed,
        ErrorCode::InvalidMobile,
        ErrorCode::InvalidAccount,
        ErrorCode::AmountNotOffered,
        ErrorCode::OutOfStock,
        ErrorCode::CapReached,
        ErrorCode::InsufficientPoints,
        ErrorCode::ReauthRequired,
        ErrorCode::PriceChanged,
        ErrorCode::SignupNotOpen,
        ErrorCode::SignupClosed,
        ErrorCode::SignupFull,
        ErrorCode::TooManyCompanions,
        ErrorCode::AlreadySignedUp,
        ErrorCode::NoShowBanned,
        ErrorCode::CancelTooLate,
        ErrorCode::ActivityCancelled,
        ErrorCode::FeedbackNotAttended,
        ErrorCode::FeedbackTooEarly,
        ErrorCode::FeedbackLocked,
        ErrorCode::NotSignedUp,
        ErrorCode::StillWaitlisted,
        ErrorCode::PollClosed,
    ];

    /// The first app version that reads this code, for the codes added after the first
    /// release (0.1.0), whose apps read codes strictly: one they do not know fails the whole
    /// answer it is in (a push's, and every retry of it).
    pub fn since(self) -> Option<semver::Version> {
        match self {
            ErrorCode::FeedbackTooEarly | ErrorCode::CheckinProofReused => {
                Some(semver::Version::new(0, 2, 0))
            }
            _ => None,
        }
    }

    /// This code as an app of `version` can read it: a code newer than the app is answered as
    /// [`ErrorCode::BadRequest`] (with the same message). An app that does not say its version
    /// is taken to be current.
    pub fn for_app(self, version: Option<&semver::Version>) -> ErrorCode {
        match (self.since(), version) {
            (Some(since), Some(v)) if *v < since => ErrorCode::BadRequest,
            _ => self,
        }
    }

    /// A code read leniently (a mutation's outcome): one this app does not know, from a newer
    /// server, is [`ErrorCode::BadRequest`] rather than an unreadable answer.
    pub fn deserialize_lenient<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<ErrorCode, D::Error> {
        let wire = String::deserialize(d)?;
        Ok(ErrorCode::from_wire(&wire).unwrap_or(ErrorCode::BadRequest))
    }

    /// The code whose wire form is `wire`.
    pub fn from_wire(wire: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == wire)
    }

    /// The stable string form, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::UnsupportedMutation => "unsupported_mutation",
            ErrorCode::SessionEnded => "session_ended",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::CheckinProofMissing => "checkin_proof_missing",
            ErrorCode::CheckinOutsideEvent => "checkin_outside_event",
            ErrorCode::CheckinProofReused => "checkin_proof_reused",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::Offline => "offline",
            ErrorCode::BadResponse => "bad_response",
            ErrorCode::InvalidServerUrl => "invalid_server_url",
            ErrorCode::InsecureServerUrl => "insecure_server_url",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::KeyringUnavailable => "keyring_unavailable",
            ErrorCode::NoSecureStore => "no_secure_store",
            ErrorCode::ClientTooOld => "client_too_old",
            ErrorCode::Storage => "storage",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::DatabaseTooNew => "database_too_new",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::DeviceNotEnrolled => "device_not_enrolled",
            ErrorCode::PassportBadFormat => "passport_bad_format",
            ErrorCode::PassportUnknownKey => "passport_unknown_key",
            ErrorCode::PassportBadSignature => "passport_bad_signature",
            ErrorCode::PassportBadDeviceSignature => "passport_bad_device_signature",
            ErrorCode::PassportNotYetValid => "passport_not_yet_valid",
            ErrorCode::PassportExpired => "passport_expired",
            ErrorCode::PassportStale => "passport_stale",
            ErrorCode::PassportRevokedDevice => "passport_revoked_device",
            ErrorCode::PassportRevokedMember => "passport_revoked_member",
            ErrorCode::NotEligible => "not_eligible",
            ErrorCode::AlreadyCheckedIn => "already_checked_in",
            ErrorCode::NoQrFound => "no_qr_found",
            ErrorCode::CouponExpired => "coupon_expired",
            ErrorCode::CouponNotYetValid => "coupon_not_yet_valid",
            ErrorCode::CouponVoided => "coupon_voided",
            ErrorCode::ReminderTooLate => "reminder_too_late",
            ErrorCode::CampaignGone => "campaign_gone",
            ErrorCode::AutostartUnavailable => "autostart_unavailable",
            ErrorCode::UpdateNotPackaged => "update_not_packaged",
            ErrorCode::UpdateSignatureInvalid => "update_signature_invalid",
            ErrorCode::UpdateInstallFailed => "update_install_failed",
            ErrorCode::UpdateDownloadFailed => "update_download_failed",
            ErrorCode::InvalidMobile => "invalid_mobile",
            ErrorCode::InvalidAccount => "invalid_account",
            ErrorCode::AmountNotOffered => "amount_not_offered",
            ErrorCode::OutOfStock => "out_of_stock",
            ErrorCode::CapReached => "cap_reached",
            ErrorCode::InsufficientPoints => "insufficient_points",
            ErrorCode::ReauthRequired => "reauth_required",
            ErrorCode::PriceChanged => "price_changed",
            ErrorCode::SignupNotOpen => "signup_not_open",
            ErrorCode::SignupClosed => "signup_closed",
            ErrorCode::SignupFull => "signup_full",
            ErrorCode::TooManyCompanions => "too_many_companions",
            ErrorCode::AlreadySignedUp => "already_signed_up",
            ErrorCode::NoShowBanned => "no_show_banned",
            ErrorCode::CancelTooLate => "cancel_too_late",
            ErrorCode::ActivityCancelled => "activity_cancelled",
            ErrorCode::FeedbackNotAttended => "feedback_not_attended",
            ErrorCode::FeedbackTooEarly => "feedback_too_early",
            ErrorCode::FeedbackLocked => "feedback_locked",
            ErrorCode::NotSignedUp => "not_signed_up",
            ErrorCode::StillWaitlisted => "still_waitlisted",
            ErrorCode::PollClosed => "poll_closed",
        }
    }

    /// The words the member reads for this code: what happened and what to do next.
    pub fn message(self) -> Msg {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::BadResponse
            | ErrorCode::UnsupportedMutation
            | ErrorCode::MethodNotAllowed => Msg::ErrUpdateApp,
            ErrorCode::SessionEnded => Msg::ErrSessionEnded,
            ErrorCode::IdempotencyKeyReused => Msg::ErrKeyReused,
            ErrorCode::PayloadTooLarge => Msg::ErrTooLarge,
            ErrorCode::CheckinProofMissing => Msg::ErrCheckinProof,
            ErrorCode::CheckinOutsideEvent => Msg::ErrCheckinOutsideEvent,
            ErrorCode::CheckinProofReused => Msg::ErrCheckinProofReused,
            ErrorCode::WeakPassword => Msg::ErrWeakPassword,
            ErrorCode::InsecureServerUrl => Msg::ErrInsecureServerUrl,
            ErrorCode::InvalidCredentials => Msg::ErrInvalidCredentials,
            ErrorCode::Unauthenticated => Msg::ErrSessionExpired,
            ErrorCode::Forbidden | ErrorCode::NotFound => Msg::ErrForbidden,
            ErrorCode::RateLimited => Msg::ErrRateLimited,
            ErrorCode::Internal | ErrorCode::Unavailable => Msg::ErrServer,
            ErrorCode::Offline => Msg::ErrOffline,
            ErrorCode::InvalidServerUrl => Msg::ErrServerUrl,
            ErrorCode::NotLoggedIn => Msg::ErrNotLoggedIn,
            ErrorCode::KeyringUnavailable => Msg::ErrKeyring,
            ErrorCode::NoSecureStore => Msg::ErrNoSecureStore,
            ErrorCode::ClientTooOld => Msg::ErrClientTooOld,
            ErrorCode::Storage => Msg::ErrStorage,
            ErrorCode::StorageFull => Msg::ErrStorageFull,
            ErrorCode::DatabaseTooNew => Msg::ErrDatabaseTooNew,
            ErrorCode::InvalidInput => Msg::ErrInvalidInput,
            ErrorCode::DeviceNotEnrolled => Msg::ErrDeviceNotEnrolled,
            ErrorCode::PassportBadFormat => Msg::ScanBadFormat,
            ErrorCode::PassportUnknownKey => Msg::ScanUnknownKey,
            ErrorCode::PassportBadSignature => Msg::ScanBadSignature,
            ErrorCode::PassportBadDeviceSignature => Msg::ScanBadDeviceSignature,
            ErrorCode::PassportNotYetValid => Msg::ScanNotYetValid,
            ErrorCode::PassportExpired => Msg::ScanExpired,
            ErrorCode::PassportStale => Msg::ScanStale,
            ErrorCode::PassportRevokedDevice => Msg::ScanRevokedDevice,
            ErrorCode::PassportRevokedMember => Msg::ScanRevokedMember,
            ErrorCode::NotEligible => Msg::ScanNotEligible,
            ErrorCode::AlreadyCheckedIn => Msg::ScanAlreadyCheckedIn,
            ErrorCode::NoQrFound => Msg::NoQrFound,
            ErrorCode::CouponExpired => Msg::ErrCouponExpired,
            ErrorCode::CouponNotYetValid => Msg::ErrCouponNotYetValid,
            ErrorCode::CouponVoided => Msg::ErrCouponVoided,
            ErrorCode::ReminderTooLate => Msg::ErrReminderTooLate,
            ErrorCode::CampaignGone => Msg::ErrCampaignGone,
            ErrorCode::AutostartUnavailable => Msg::ErrAutostart,
            ErrorCode::UpdateNotPackaged => Msg::ErrUpdateNotPackaged,
            ErrorCode::UpdateSignatureInvalid => Msg::ErrUpdateSignature,
            ErrorCode::UpdateInstallFailed => Msg::ErrUpdateInstallFailed,
            ErrorCode::UpdateDownloadFailed => Msg::ErrUpdateDownloadFailed,
            ErrorCode::InvalidMobile => Msg::ErrInvalidMobile,
            ErrorCode::InvalidAccount => Msg::ErrInvalidAccount,
            ErrorCode::AmountNotOffered => Msg::ErrAmountNotOffered,
            ErrorCode::OutOfStock => Msg::ErrOutOfStock,
            ErrorCode::CapReached => Msg::ErrCapReached,
            ErrorCode::InsufficientPoints => Msg::ErrInsufficientPoints,
            ErrorCode::ReauthRequired => Msg::ErrReauthRequired,
            ErrorCode::PriceChanged => Msg::ErrPriceChanged,
            ErrorCode::SignupNotOpen => Msg::ErrSignupNotOpen,
            ErrorCode::SignupClosed => Msg::ErrSignupClosed,
            ErrorCode::SignupFull => Msg::ErrSignupFull,
            ErrorCode::TooManyCompanions => Msg::ErrTooManyCompanions,
            ErrorCode::AlreadySignedUp => Msg::ErrAlreadySignedUp,
            ErrorCode::NoShowBanned => Msg::ErrNoShowBanned,
            ErrorCode::CancelTooLate => Msg::ErrCancelTooLate,
            ErrorCode::ActivityCancelled => Msg::ErrActivityCancelled,
            ErrorCode::FeedbackNotAttended => Msg::ErrFeedbackNotAttended,
            ErrorCode::FeedbackTooEarly => Msg::ErrFeedbackTooEarly,
            ErrorCode::FeedbackLocked => Msg::ErrFeedbackLocked,
            ErrorCode::NotSignedUp => Msg::ErrNotSignedUp,
            ErrorCode::StillWaitlisted => Msg::ErrStillWaitlisted,
            ErrorCode::PollClosed => Msg::ErrPollClosed,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::Offline
                | ErrorCode::RateLimited
                | ErrorCode::Internal
                | ErrorCode::Unavailable
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = String::deserialize(d)?;
        ErrorCode::from_wire(&wire).ok_or_else(|| {
            <D::Error as serde::de::Error>::custom(format_args!("unknown error code `{wire}`"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_matches_as_str_for_every_code() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(seen.insert(code.as_str()), "{code:?} twice");
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *code);
        }
        assert!(serde_json::from_str::<ErrorCode>("\"no_such_code\"").is_err());
        assert!(serde_json::from_str::<ErrorCode>("7").is_err());
    }

    #[test]
    fn apps_older_than_a_code_are_answered_one_they_read() {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        let early = ErrorCode::FeedbackTooEarly;
        assert_eq!(early.for_app(Some(&v("0.1.0"))), ErrorCode::BadRequest);
        assert_eq!(early.for_app(Some(&v("0.2.0"))), early);
        assert_eq!(early.for_app(Some(&v("1.0.0"))), early);
        assert_eq!(early.for_app(None), early, "no version said: current");
        // the codes of the first release reach every app as they are
        assert_eq!(
            ErrorCode::FeedbackLocked.for_app(Some(&v("0.1.0"))),
            ErrorCode::FeedbackLocked
        );
        // this release's apps read a code from a newer server
        let outcome: crate::api::MutationOutcome = serde_json::from_str(
            r#"{"status":"rejected","code":"a_code_from_the_future","message":"m"}"#,
        )
        .unwrap();
        assert_eq!(
            outcome,
            crate::api::MutationOutcome::Rejected {
                code: ErrorCode::BadRequest,
                message: "m".into()
            }
        );
    }

    /// `ALL` is what the wire is read against: a variant left out of it could be sent but never
    /// read back. Counted from this file's own text, so adding a variant without listing it fails.
    #[test]
    fn all_lists_every_variant() {
        let src = include_str!("error.rs");
        let body = &src[src.find("pub enum ErrorCode {").unwrap()..];
        let body = &body[..body.find("\n}").unwrap()];
        let variants = body
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.ends_with(',') && l.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            })
            .count();
        assert!(variants > 50, "counted {variants}");
        assert_eq!(ErrorCode::ALL.len(), variants);
    }
}
