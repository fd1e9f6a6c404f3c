//! The passport credential, format version 1: issued and signed by the union server.
//!
//! Layout of the signed body (all integers big-endian), 34 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format version, `1` |
//! | 1 | 4 | key id: the first 4 bytes of SHA-256 over the union public key |
//! | 5 | 8 | member id (u64) |
//! | 13 | 4 | workplace union id (u32) |
//! | 17 | 1 | role: 0 member, 1 staff |
//! | 18 | 8 | valid from, Unix seconds (i64) |
//! | 26 | 8 | valid until, Unix seconds (i64) |
//!
//! followed by the 64-byte Ed25519 signature of those 34 bytes: 98 bytes in all. The QR text is
//! `UP1:` followed by the Base45 (RFC 9285) encoding of the 98 bytes, which stays within the QR
//! alphanumeric character set.

use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::api::Role;

pub const PREFIX: &str = "UP1:";
pub const VERSION: u8 = 1;
const BODY_LEN: usize = 34;
const SIG_LEN: usize = 64;
pub const CREDENTIAL_LEN: usize = BODY_LEN + SIG_LEN;

/// A union key id: 4 bytes derived from the public key, shown as 8 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kid(pub [u8; 4]);

impl Kid {
    pub fn of(key: &VerifyingKey) -> Kid {
        let digest = Sha256::digest(key.as_bytes());
        Kid([digest[0], digest[1], digest[2], digest[3]])
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Kid> {
        if s.len() != 8 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 4];
        for (i, chunk) in out.iter_mut().enumerate() {
            *chunk = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
        }
        Some(Kid(out))
    }
}

/// What the credential says about the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub kid: Kid,
    pub member_id: u64,
    pub union_id: u32,
    pub role: Role,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PassportError {
    #[error("not a UnionPass passport code (missing the UP1: prefix)")]
    BadPrefix,
    #[error("the passport code is damaged (not valid Base45)")]
    BadEncoding,
    #[error("the passport code has the wrong length: {0} bytes")]
    BadLength(usize),
    #[error("unsupported passport format version {0}")]
    BadVersion(u8),
    #[error("the passport code carries an unknown role byte {0}")]
    BadRole(u8),
    #[error("the passport code carries an invalid time")]
    BadTime,
    #[error("the passport was signed with an unknown union key {0}")]
    UnknownKey(String),
    #[error("the passport's union signature does not verify")]
    BadSignature,
    #[error("the passport is not valid yet")]
    NotYetValid,
    #[error("the passport has expired")]
    Expired,
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Member => 0,
        Role::Staff => 1,
    }
}

fn body(c: &Claims) -> [u8; BODY_LEN] {
    let mut b = [0u8; BODY_LEN];
    b[0] = VERSION;
    b[1..5].copy_from_slice(&c.kid.0);
    b[5..13].copy_from_slice(&c.member_id.to_be_bytes());
    b[13..17].copy_from_slice(&c.union_id.to_be_bytes());
    b[17] = role_byte(c.role);
    b[18..26].copy_from_slice(&c.valid_from.timestamp().to_be_bytes());
    b[26..34].copy_from_slice(&c.valid_until.timestamp().to_be_bytes());
    b
}

/// Sign claims with the union key; returns the QR text. The claims' kid must be the key's.
pub fn issue(claims: &Claims, key: &SigningKey) -> String {
    debug_assert_eq!(claims.kid, Kid::of(&key.verifying_key()));
    let body = body(claims);
    let sig = key.sign(&body);
    let mut bytes = Vec::with_capacity(CREDENTIAL_LEN);
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&sig.to_bytes());
    format!("{PREFIX}{}", base45::encode(&bytes))
}

/// A decoded credential whose signature has not been checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unverified {
    pub claims: Claims,
    body: [u8; BODY_LEN],
    sig: [u8; SIG_LEN],
}

fn read_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    i64::from_be_bytes(a)
}

fn time(secs: i64) -> Result<DateTime<Utc>, PassportError> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or(PassportError::BadTime)
}

/// Parse the QR text. Never panics, whatever the input.
pub fn decode(text: &str) -> Result<Unverified, PassportError> {
    let payload = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(PassportError::BadPrefix)?;
    let bytes = base45::decode(payload).map_err(|_| PassportError::BadEncoding)?;
    if bytes.len() != CREDENTIAL_LEN {
        return Err(PassportError::BadLength(bytes.len()));
    }
    if bytes[0] != VERSION {
        return Err(PassportError::BadVersion(bytes[0]));
    }
    let role = match bytes[17] {
        0 => Role::Member,
        1 => Role::Staff,
        other => return Err(PassportError::BadRole(other)),
    };
    let mut body = [0u8; BODY_LEN];
    body.copy_from_slice(&bytes[..BODY_LEN]);
    let mut sig = [0u8; SIG_LEN];
    sig.copy_from_slice(&bytes[BODY_LEN..]);
    let claims = Claims {
        kid: Kid([bytes[1], bytes[2], bytes[3], bytes[4]]),
        member_id: u64::from_be_bytes(bytes[5..13].try_into().expect("8 bytes")),
        union_id: u32::from_be_bytes(bytes[13..17].try_into().expect("4 bytes")),
        role,
        valid_from: time(read_i64(&bytes[18..26]))?,
        valid_until: time(read_i64(&bytes[26..34]))?,
    };
    Ok(Unverified { claims, body, sig })
}

impl Unverified {
    /// Check the union signature with the key named by the kid, and the validity window at `now`.
    pub fn verify<'k>(
        self,
        keys: impl IntoIterator<Item = &'k VerifyingKey>,
        now: DateTime<Utc>,
    ) -> Result<Claims, PassportError> {
        let key = keys
            .into_iter()
            .find(|k| Kid::of(k) == self.claims.kid)
            .ok_or_else(|| PassportError::UnknownKey(self.claims.kid.to_hex()))?;
        key.verify(&self.body, &Signature::from_bytes(&self.sig))
            .map_err(|_| PassportError::BadSignature)?;
        if now < self.claims.valid_from {
            return Err(PassportError::NotYetValid);
        }
        if now >= self.claims.valid_until {
            return Err(PassportError::Expired);
        }
        Ok(self.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn claims(key: &SigningKey) -> Claims {
        Claims {
            kid: Kid::of(&key.verifying_key()),
            member_id: 1_000_123,
            union_id: 7,
            role: Role::Member,
            valid_from: "2026-11-01T00:00:00Z".parse().unwrap(),
            valid_until: "2027-11-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn issue_decode_verify_round_trip() {
        let key = SigningKey::generate(&mut OsRng);
        let c = claims(&key);
        let text = issue(&c, &key);
        assert!(text.starts_with(PREFIX));
        assert!(text.len() < 160, "compact: {} chars", text.len());
        // QR alphanumeric mode: digits, upper-case letters and " $%*+-./:"
        assert!(text
            .chars()
            .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase() || " $%*+-./:".contains(ch)));
        let now = "2026-11-29T08:00:00Z".parse().unwrap();
        let got = decode(&text)
            .unwrap()
            .verify([&key.verifying_key()], now)
            .unwrap();
        assert_eq!(got, c);
    }

    #[test]
    fn rejections() {
        let key = SigningKey::generate(&mut OsRng);
        let other = SigningKey::generate(&mut OsRng);
        let c = claims(&key);
        let text = issue(&c, &key);
        let now: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();

        assert_eq!(decode("hello"), Err(PassportError::BadPrefix));
        assert_eq!(decode("UP1:!!"), Err(PassportError::BadEncoding));
        assert_eq!(decode("UP1:").unwrap_err(), PassportError::BadLength(0));
        assert!(matches!(
            decode(&text).unwrap().verify([&other.verifying_key()], now),
            Err(PassportError::UnknownKey(_))
        ));
        assert_eq!(
            decode(&text)
                .unwrap()
                .verify([&key.verifying_key()], c.valid_until),
            Err(PassportError::Expired)
        );
        let early = "2026-10-31T23:59:59Z".parse().unwrap();
        assert_eq!(
            decode(&text).unwrap().verify([&key.verifying_key()], early),
            Err(PassportError::NotYetValid)
        );

        // Tamper with the member id: the signature must fail.
        let mut bytes = base45::decode(text.strip_prefix(PREFIX).unwrap()).unwrap();
        bytes[12] ^= 1;
        let forged = format!("{PREFIX}{}", base45::encode(&bytes));
        assert_eq!(
            decode(&forged).unwrap().verify([&key.verifying_key()], now),
            Err(PassportError::BadSignature)
        );
        // A signature made by another key under this key's kid fails too.
        let mut by_other = claims(&key);
        by_other.member_id = 1;
        let body = body(&by_other);
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&other.sign(&body).to_bytes());
        let forged = format!("{PREFIX}{}", base45::encode(&bytes));
        assert_eq!(
            decode(&forged).unwrap().verify([&key.verifying_key()], now),
            Err(PassportError::BadSignature)
        );
    }

    #[test]
    fn kid_hex_round_trips() {
        let key = SigningKey::generate(&mut OsRng);
        let kid = Kid::of(&key.verifying_key());
        assert_eq!(Kid::from_hex(&kid.to_hex()), Some(kid));
        assert_eq!(Kid::from_hex("zz"), None);
    }
}
