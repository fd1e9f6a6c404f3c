//! The passport, format version 2: two levels, as in UIC railway barcodes.
//!
//! - **Level 1, the credential**, is issued by the union server when a device enrols. It names the
//!   member and binds the device's public key, signed with the union's Ed25519 key.
//! - **Level 2, the presentation**, is made by the device every [`STEP_SECS`] seconds: the level-1
//!   bytes plus the current time step, signed with the device key (whose private half lives only
//!   in the device's OS keyring). The QR shows level 2, so a screenshot goes stale within a minute.
//!
//! `docs/passport-format.md` describes the bytes; this module is the reference implementation.
//! Decoding never panics, whatever the input (a property test feeds it random and mutated codes).

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::api::Role;

/// The QR text starts with this, then Base45.
pub const PREFIX: &str = "UP2:";
pub const VERSION: u8 = 2;
/// A presentation is signed for one time step of this many seconds.
pub const STEP_SECS: i64 = 30;
/// A scanner accepts the step before and after its own (clock drift, a code shown at a boundary).
pub const STEP_TOLERANCE: i64 = 1;
/// The longest member number a credential carries.
pub const MAX_MEMBER_NO: usize = 16;

const SIG_LEN: usize = 64;
const KEY_LEN: usize = 32;
/// Fixed part of the level-1 body, before the member number.
const L1_FIXED: usize = 67;
const STEP_LEN: usize = 4;

/// A union key id: the first 4 bytes of SHA-256 over the union public key, shown as 8 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kid(pub [u8; 4]);

impl Kid {
    pub fn of(key: &VerifyingKey) -> Kid {
        let digest = Sha256::digest(key.as_bytes());
        Kid([digest[0], digest[1], digest[2], digest[3]])
    }

    pub fn to_hex(self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Kid> {
        Some(Kid(unhex(s)?))
    }
}

/// A device key id: the first 8 bytes of SHA-256 over the device public key, shown as 16 hex
/// digits. Revocation lists name devices by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKid(pub [u8; 8]);

impl DeviceKid {
    pub fn of(key: &[u8; KEY_LEN]) -> DeviceKid {
        let digest = Sha256::digest(key);
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        DeviceKid(out)
    }

    pub fn to_hex(self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<DeviceKid> {
        Some(DeviceKid(unhex(s)?))
    }
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// What the level-1 credential says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub kid: Kid,
    pub member_id: u64,
    pub union_id: u32,
    pub role: Role,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// The enrolled device's Ed25519 public key.
    pub device_key: [u8; KEY_LEN],
    /// The member number staff read on the scanner (ASCII, at most [`MAX_MEMBER_NO`] bytes).
    pub member_no: String,
}

impl Claims {
    pub fn device_kid(&self) -> DeviceKid {
        DeviceKid::of(&self.device_key)
    }

    /// Past the end of its validity at `now`: every scanner refuses it, and the device that
    /// holds it shows no code.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.valid_until
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PassportError {
    #[error("not a UnionPass passport code: {0}")]
    BadFormat(&'static str),
    #[error("signed with union key {0}, which this scanner does not know; sync the scanner")]
    UnknownKey(String),
    #[error("the union signature does not verify (forged or damaged)")]
    BadUnionSignature,
    #[error("the device signature does not verify (forged, or not made by the enrolled device)")]
    BadDeviceSignature,
    #[error("the passport is not valid yet")]
    NotYetValid,
    #[error("the passport has expired")]
    Expired,
    #[error("the code is {steps} time steps away from this scanner's clock (a screenshot?)")]
    Stale { steps: i64 },
    #[error("the device showing this passport was revoked")]
    RevokedDevice,
    #[error("the member's passport was revoked")]
    RevokedMember,
}

/// The time step an instant falls in.
pub fn step_of(now: DateTime<Utc>) -> u32 {
    now.timestamp()
        .div_euclid(STEP_SECS)
        .clamp(0, u32::MAX as i64) as u32
}

/// When a time step begins.
pub fn step_start(step: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(step as i64 * STEP_SECS, 0)
        .single()
        .expect("a u32 step is a valid instant")
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Member => 0,
        Role::Staff => 1,
    }
}

/// Sign the claims with the union key; returns the level-1 bytes (body + union signature).
/// Panics if the member number is not ASCII of at most [`MAX_MEMBER_NO`] bytes, or the kid is not
/// the key's: both are the issuer's own data.
pub fn issue(claims: &Claims, union_key: &SigningKey) -> Vec<u8> {
    assert!(claims.member_no.is_ascii() && claims.member_no.len() <= MAX_MEMBER_NO);
    assert_eq!(claims.kid, Kid::of(&union_key.verifying_key()));
    let mut b = Vec::with_capacity(L1_FIXED + claims.member_no.len() + SIG_LEN);
    b.push(VERSION);
    b.extend_from_slice(&claims.kid.0);
    b.extend_from_slice(&claims.member_id.to_be_bytes());
    b.extend_from_slice(&claims.union_id.to_be_bytes());
    b.push(role_byte(claims.role));
    b.extend_from_slice(&claims.valid_from.timestamp().to_be_bytes());
    b.extend_from_slice(&claims.valid_until.timestamp().to_be_bytes());
    b.extend_from_slice(&claims.device_key);
    b.push(claims.member_no.len() as u8);
    b.extend_from_slice(claims.member_no.as_bytes());
    let sig = union_key.sign(&b);
    b.extend_from_slice(&sig.to_bytes());
    b
}

/// A parsed level-1 credential (signature not checked yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub claims: Claims,
    /// The exact level-1 bytes, signature included.
    pub bytes: Vec<u8>,
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b.try_into().expect("8 bytes"))
}

fn instant(secs: i64) -> Result<DateTime<Utc>, PassportError> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or(PassportError::BadFormat("invalid time"))
}

impl Credential {
    /// Parse level-1 bytes from the start of `bytes`; returns the credential and the rest.
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Credential, &[u8]), PassportError> {
        if bytes.len() < L1_FIXED {
            return Err(PassportError::BadFormat("too short"));
        }
        if bytes[0] != VERSION {
            return Err(PassportError::BadFormat("unsupported version"));
        }
        let role = match bytes[17] {
            0 => Role::Member,
            1 => Role::Staff,
            _ => return Err(PassportError::BadFormat("unknown role")),
        };
        let n = bytes[66] as usize;
        if n > MAX_MEMBER_NO {
            return Err(PassportError::BadFormat("member number too long"));
        }
        let len = L1_FIXED + n + SIG_LEN;
        if bytes.len() < len {
            return Err(PassportError::BadFormat("too short"));
        }
        let member_no = std::str::from_utf8(&bytes[L1_FIXED..L1_FIXED + n])
            .ok()
            .filter(|s| s.is_ascii())
            .ok_or(PassportError::BadFormat("member number is not ASCII"))?
            .to_string();
        let mut device_key = [0u8; KEY_LEN];
        device_key.copy_from_slice(&bytes[34..66]);
        let claims = Claims {
            kid: Kid(bytes[1..5].try_into().expect("4 bytes")),
            member_id: u64::from_be_bytes(bytes[5..13].try_into().expect("8 bytes")),
            union_id: u32::from_be_bytes(bytes[13..17].try_into().expect("4 bytes")),
            role,
            valid_from: instant(be_i64(&bytes[18..26]))?,
            valid_until: instant(be_i64(&bytes[26..34]))?,
            device_key,
            member_no,
        };
        let cred = Credential {
            claims,
            bytes: bytes[..len].to_vec(),
        };
        Ok((cred, &bytes[len..]))
    }

    /// Parse exactly one level-1 credential.
    pub fn parse(bytes: &[u8]) -> Result<Credential, PassportError> {
        match Credential::parse_prefix(bytes)? {
            (c, []) => Ok(c),
            _ => Err(PassportError::BadFormat("trailing bytes")),
        }
    }

    /// Check the union signature with the key the kid names.
    pub fn verify_union<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k VerifyingKey>,
    ) -> Result<(), PassportError> {
        let key = keys
            .into_iter()
            .find(|k| Kid::of(k) == self.claims.kid)
            .ok_or_else(|| PassportError::UnknownKey(self.claims.kid.to_hex()))?;
        let (body, sig) = self.bytes.split_at(self.bytes.len() - SIG_LEN);
        let sig = Signature::from_bytes(sig.try_into().expect("64 bytes"));
        key.verify_strict(body, &sig)
            .map_err(|_| PassportError::BadUnionSignature)
    }
}

/// Make the level-2 QR text for one time step, on the device.
pub fn present(credential: &[u8], device_key: &SigningKey, step: u32) -> String {
    let mut b = Vec::with_capacity(credential.len() + STEP_LEN + SIG_LEN);
    b.extend_from_slice(credential);
    b.extend_from_slice(&step.to_be_bytes());
    let sig = device_key.sign(&b);
    b.extend_from_slice(&sig.to_bytes());
    format!("{PREFIX}{}", base45::encode(&b))
}

/// A decoded QR code whose signatures have not been checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presentation {
    pub credential: Credential,
    pub step: u32,
    signed: Vec<u8>,
    device_sig: [u8; SIG_LEN],
}

/// Parse the QR text. Never panics.
pub fn decode(text: &str) -> Result<Presentation, PassportError> {
    let payload = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(PassportError::BadFormat("missing the UP2: prefix"))?;
    let bytes =
        base45::decode(payload).map_err(|_| PassportError::BadFormat("damaged (not Base45)"))?;
    let (credential, rest) = Credential::parse_prefix(&bytes)?;
    if rest.len() != STEP_LEN + SIG_LEN {
        return Err(PassportError::BadFormat("wrong length"));
    }
    let step = u32::from_be_bytes(rest[..STEP_LEN].try_into().expect("4 bytes"));
    let signed_len = bytes.len() - SIG_LEN;
    Ok(Presentation {
        credential,
        step,
        device_sig: bytes[signed_len..].try_into().expect("64 bytes"),
        signed: bytes[..signed_len].to_vec(),
    })
}

/// What a scanner trusts: the union keys and the revocation list, both from sync.
#[derive(Clone, Debug, Default)]
pub struct TrustList {
    pub keys: Vec<VerifyingKey>,
    pub revoked_devices: HashSet<DeviceKid>,
    pub revoked_members: HashSet<u64>,
}

impl Presentation {
    /// Which showing of a passport this is: its device and its time step, as
    /// `<device kid hex>:<step>`. A phone shows one code per step, so two scans with the same id
    /// are the same showing, whatever the text around it (a check-in's proof is refused at a
    /// second event on this).
    pub fn id(&self) -> String {
        format!(
            "{}:{}",
            self.credential.claims.device_kid().to_hex(),
            self.step
        )
    }

    /// Every offline check, in this order: union key known, union signature, device signature,
    /// validity window, time step within ±[`STEP_TOLERANCE`] of the scanner's, revocation.
    pub fn verify(&self, trust: &TrustList, now: DateTime<Utc>) -> Result<Claims, PassportError> {
        self.credential.verify_union(&trust.keys)?;
        let claims = &self.credential.claims;
        let device = VerifyingKey::from_bytes(&claims.device_key)
            .map_err(|_| PassportError::BadDeviceSignature)?;
        device
            .verify_strict(&self.signed, &Signature::from_bytes(&self.device_sig))
            .map_err(|_| PassportError::BadDeviceSignature)?;
        if now < claims.valid_from {
            return Err(PassportError::NotYetValid);
        }
        if claims.expired_at(now) {
            return Err(PassportError::Expired);
        }
        let steps = self.step as i64 - step_of(now) as i64;
        if steps.abs() > STEP_TOLERANCE {
            return Err(PassportError::Stale { steps });
        }
        if trust.revoked_devices.contains(&claims.device_kid()) {
            return Err(PassportError::RevokedDevice);
        }
        if trust.revoked_members.contains(&claims.member_id) {
            return Err(PassportError::RevokedMember);
        }
        Ok(claims.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    pub(crate) struct Fixture {
        pub union: SigningKey,
        pub device: SigningKey,
        pub claims: Claims,
        pub l1: Vec<u8>,
    }

    pub(crate) fn fixture() -> Fixture {
        let union = SigningKey::generate(&mut OsRng);
        let device = SigningKey::generate(&mut OsRng);
        let claims = Claims {
            kid: Kid::of(&union.verifying_key()),
            member_id: 1_000_123,
            union_id: 7,
            role: Role::Member,
            valid_from: "2026-11-01T00:00:00Z".parse().unwrap(),
            valid_until: "2026-12-01T00:00:00Z".parse().unwrap(),
            device_key: device.verifying_key().to_bytes(),
            member_no: "M10001".into(),
        };
        let l1 = issue(&claims, &union);
        Fixture {
            union,
            device,
            claims,
            l1,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-29T08:00:10Z".parse().unwrap()
    }

    fn trust(f: &Fixture) -> TrustList {
        TrustList {
            keys: vec![f.union.verifying_key()],
            ..Default::default()
        }
    }

    fn rewrap(bytes: &[u8]) -> String {
        format!("{PREFIX}{}", base45::encode(bytes))
    }

    fn raw(text: &str) -> Vec<u8> {
        base45::decode(text.strip_prefix(PREFIX).unwrap()).unwrap()
    }

    #[test]
    fn round_trip_and_size() {
        let f = fixture();
        assert_eq!(Credential::parse(&f.l1).unwrap().claims, f.claims);
        let text = present(&f.l1, &f.device, step_of(now()));
        let bytes = raw(&text);
        assert_eq!(bytes.len(), 131 + 6 + 4 + 64);
        assert!(bytes.len() <= 300);
        assert!(text
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || " $%*+-./:".contains(c)));
        let p = decode(&text).unwrap();
        assert_eq!(p.step, step_of(now()));
        assert_eq!(p.verify(&trust(&f), now()).unwrap(), f.claims);
    }

    /// A showing's id is its device and step: the same code with spaces around it is the same
    /// showing, the next step or another device is another.
    #[test]
    fn a_showing_is_its_device_and_step() {
        let f = fixture();
        let step = step_of(now());
        let text = present(&f.l1, &f.device, step);
        let id = decode(&text).unwrap().id();
        assert_eq!(id, format!("{}:{step}", f.claims.device_kid().to_hex()));
        assert_eq!(decode(&format!("  {text}\n")).unwrap().id(), id);
        assert_ne!(
            decode(&present(&f.l1, &f.device, step + 1)).unwrap().id(),
            id
        );
        let other = SigningKey::generate(&mut OsRng);
        let mut claims = f.claims.clone();
        claims.device_key = other.verifying_key().to_bytes();
        let l1 = issue(&claims, &f.union);
        assert_ne!(decode(&present(&l1, &other, step)).unwrap().id(), id);
    }

    #[test]
    fn steps_are_thirty_seconds() {
        let t: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        assert_eq!(step_of(t), step_of(t + chrono::Duration::seconds(29)));
        assert_eq!(step_of(t) + 1, step_of(t + chrono::Duration::seconds(30)));
        assert_eq!(step_start(step_of(t)), t);
    }

    #[test]
    fn neighbouring_steps_pass_and_further_ones_are_stale() {
        let f = fixture();
        let s = step_of(now());
        for (step, ok) in [
            (s - 2, false),
            (s - 1, true),
            (s, true),
            (s + 1, true),
            (s + 2, false),
        ] {
            let r = decode(&present(&f.l1, &f.device, step))
                .unwrap()
                .verify(&trust(&f), now());
            assert_eq!(r.is_ok(), ok, "step offset {}", step as i64 - s as i64);
        }
        // a screenshot scanned 90 s later
        let shot = present(&f.l1, &f.device, s);
        assert_eq!(
            decode(&shot)
                .unwrap()
                .verify(&trust(&f), now() + chrono::Duration::seconds(90)),
            Err(PassportError::Stale { steps: -3 })
        );
    }

    #[test]
    fn every_rejection_reason() {
        let f = fixture();
        let t = trust(&f);
        let s = step_of(now());
        let good = present(&f.l1, &f.device, s);
        let check = |text: &str, trust: &TrustList, at| decode(text)?.verify(trust, at);

        // bad format
        for text in ["hello", "UP2:!!", "UP2:", "UP1:ABC"] {
            assert!(
                matches!(check(text, &t, now()), Err(PassportError::BadFormat(_))),
                "{text}"
            );
        }
        let mut b = raw(&good);
        b.push(0);
        assert!(matches!(
            check(&rewrap(&b), &t, now()),
            Err(PassportError::BadFormat(_))
        ));
        let mut b = raw(&good);
        b[0] = 1;
        assert_eq!(
            check(&rewrap(&b), &t, now()),
            Err(PassportError::BadFormat("unsupported version"))
        );
        // unknown key id
        let other = SigningKey::generate(&mut OsRng);
        let stranger = TrustList {
            keys: vec![other.verifying_key()],
            ..Default::default()
        };
        assert!(matches!(
            check(&good, &stranger, now()),
            Err(PassportError::UnknownKey(_))
        ));
        // bad union signature: the member id changed after signing
        let mut claims = f.claims.clone();
        claims.member_id += 1;
        let mut l1 = issue(&claims, &f.union);
        let sig_at = l1.len() - SIG_LEN;
        l1[sig_at..].copy_from_slice(&f.l1[f.l1.len() - SIG_LEN..]);
        assert_eq!(
            check(&present(&l1, &f.device, s), &t, now()),
            Err(PassportError::BadUnionSignature)
        );
        // bad device signature: another device presents this credential (a copied credential)
        let thief = SigningKey::generate(&mut OsRng);
        assert_eq!(
            check(&present(&f.l1, &thief, s), &t, now()),
            Err(PassportError::BadDeviceSignature)
        );
        // ... or the step was edited after signing
        let mut b = raw(&good);
        let at = f.l1.len() + 3;
        b[at] ^= 1;
        assert_eq!(
            check(&rewrap(&b), &t, now()),
            Err(PassportError::BadDeviceSignature)
        );
        // not yet valid / expired (with a code made for that moment)
        let early = f.claims.valid_from - chrono::Duration::seconds(1);
        let text = present(&f.l1, &f.device, step_of(early));
        assert_eq!(check(&text, &t, early), Err(PassportError::NotYetValid));
        let late = f.claims.valid_until;
        let text = present(&f.l1, &f.device, step_of(late));
        assert_eq!(check(&text, &t, late), Err(PassportError::Expired));
        // stale: a screenshot
        let later = now() + chrono::Duration::seconds(95);
        assert!(matches!(
            check(&good, &t, later),
            Err(PassportError::Stale { .. })
        ));
        // revoked device, revoked member
        let mut r = trust(&f);
        r.revoked_devices.insert(f.claims.device_kid());
        assert_eq!(check(&good, &r, now()), Err(PassportError::RevokedDevice));
        let mut r = trust(&f);
        r.revoked_members.insert(f.claims.member_id);
        assert_eq!(check(&good, &r, now()), Err(PassportError::RevokedMember));
    }

    #[test]
    fn old_keys_keep_verifying_their_credentials() {
        let f = fixture();
        let newer = SigningKey::generate(&mut OsRng);
        let t = TrustList {
            keys: vec![newer.verifying_key(), f.union.verifying_key()],
            ..Default::default()
        };
        let text = present(&f.l1, &f.device, step_of(now()));
        assert!(decode(&text).unwrap().verify(&t, now()).is_ok());
    }

    #[test]
    fn kids_round_trip_as_hex() {
        let f = fixture();
        let kid = f.claims.kid;
        assert_eq!(Kid::from_hex(&kid.to_hex()), Some(kid));
        let dk = f.claims.device_kid();
        assert_eq!(dk.to_hex().len(), 16);
        assert_eq!(DeviceKid::from_hex(&dk.to_hex()), Some(dk));
        assert_eq!(Kid::from_hex("zz"), None);
        assert_eq!(Kid::from_hex("é1234567"), None);
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // PROPTEST_CASES raises the number of cases for a long local run (see bench/RESULTS.md).
            #[test]
            fn decoding_arbitrary_text_never_panics(text in "\\PC{0,400}") {
                let _ = decode(&text);
                let _ = decode(&format!("{PREFIX}{text}"));
            }

            #[test]
            fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..320)) {
                if let Ok(p) = decode(&rewrap(&bytes)) {
                    let _ = p.verify(&TrustList::default(), now());
                }
                let _ = Credential::parse(&bytes);
            }

            #[test]
            fn any_single_byte_change_is_rejected(pos in 0usize..205, xor in 1u8..=255) {
                let f = fixture();
                let mut b = raw(&present(&f.l1, &f.device, step_of(now())));
                let pos = pos % b.len();
                b[pos] ^= xor;
                let r = decode(&rewrap(&b)).and_then(|p| p.verify(&trust(&f), now()));
                prop_assert!(r.is_err(), "byte {} changed and still accepted", pos);
            }
        }
    }
}
