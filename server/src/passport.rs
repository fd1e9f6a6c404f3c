//! Passports on the server: when a device's level-1 credential must be (re)issued and what it
//! says, and the proof behind an uploaded check-in (the scanned code, verified again here).

use base64::Engine;
use chrono::{DateTime, Duration, DurationRound, Utc};
use unionpass_core::api::{PassportInfo, Profile};
use unionpass_core::passport::{issue, Claims, MAX_MEMBER_NO};

use crate::keys::UnionKeys;
use crate::store::ProvenCheckin;

/// How long a credential is valid.
pub const VALIDITY: Duration = Duration::days(30);
/// Reissue when less than this is left, so a device that syncs weekly never holds an expired one.
pub const RENEW_BEFORE: Duration = Duration::days(7);
/// Tolerance for scanners whose clocks run a little behind.
pub const BACKDATE: Duration = Duration::minutes(5);

/// Whether `current` can still be handed out at `now`, or a new credential is needed.
pub fn needs_issue(current: Option<&PassportInfo>, keys: &UnionKeys, now: DateTime<Utc>) -> bool {
    match current {
        None => true,
        Some(p) => p.kid != keys.current().kid.to_hex() || p.valid_until - now < RENEW_BEFORE,
    }
}

/// A new credential for the member's enrolled device, signed with the current union key.
pub fn issue_for(
    profile: &Profile,
    device_key: [u8; 32],
    keys: &UnionKeys,
    now: DateTime<Utc>,
) -> PassportInfo {
    let key = keys.current();
    let start = now.duration_trunc(Duration::seconds(1)).unwrap_or(now) - BACKDATE;
    let claims = Claims {
        kid: key.kid,
        member_id: profile.member_id as u64,
        union_id: profile.union.id as u32,
        role: profile.role,
        valid_from: start,
        valid_until: start + BACKDATE + VALIDITY,
        device_key,
        // member numbers are short ASCII ("M10001"); anything else is left off rather than cut
        member_no: Some(profile.member_no.clone())
            .filter(|n| n.is_ascii() && n.len() <= MAX_MEMBER_NO)
            .unwrap_or_default(),
    };
    PassportInfo {
        credential: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(issue(&claims, &key.signing)),
        kid: key.kid.to_hex(),
        valid_from: claims.valid_from,
        valid_until: claims.valid_until,
    }
}

/// The scanned passport behind an uploaded check-in, verified again with the union's keys at the
/// scan's time (the scanner's word is not taken): the holder's claims, or why not, and which
/// showing of the passport it was. Revocations are checked by the store, against the database as
/// of the scan.
pub fn prove_checkin(c: &unionpass_core::checkin::CheckIn, keys: &UnionKeys) -> ProvenCheckin {
    use unionpass_core::checkin::ScanError;
    use unionpass_core::passport::{decode, TrustList};
    let Some(text) = c.proof.as_deref() else {
        return ProvenCheckin::missing();
    };
    let trust = TrustList {
        keys: keys.verifying_keys(),
        ..TrustList::default()
    };
    match decode(text) {
        Ok(p) => ProvenCheckin {
            shown: Some(p.id()),
            claims: p
                .verify(&trust, c.scanned_at)
                .map_err(|e| ScanError::Passport(e).code()),
        },
        Err(e) => ProvenCheckin {
            claims: Err(ScanError::Passport(e).code()),
            shown: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unionpass_core::api::{Role, Union};
    use unionpass_core::passport::Credential;

    #[test]
    fn issued_credentials_verify_and_renew_before_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let now: DateTime<Utc> = "2026-11-29T08:00:00.250Z".parse().unwrap();
        let keys = UnionKeys::load_or_create(dir.path(), now).unwrap();
        let profile = Profile {
            member_id: 42,
            member_no: "M10042".into(),
            name: "王芳".into(),
            role: Role::Staff,
            union: Union {
                id: 3,
                name: "星河互联工会".into(),
            },
            language: None,
        };
        assert!(needs_issue(None, &keys, now));
        let p = issue_for(&profile, [7; 32], &keys, now);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&p.credential)
            .unwrap();
        let cred = Credential::parse(&bytes).unwrap();
        cred.verify_union(&keys.verifying_keys()).unwrap();
        let claims = cred.claims;
        assert_eq!(
            (
                claims.member_id,
                claims.union_id,
                claims.role,
                claims.device_key
            ),
            (42, 3, Role::Staff, [7; 32])
        );
        assert_eq!(claims.member_no, "M10042");
        assert_eq!(claims.valid_until, p.valid_until);
        assert!(!needs_issue(Some(&p), &keys, now + Duration::days(22)));
        assert!(needs_issue(Some(&p), &keys, now + Duration::days(24)));
    }
}
