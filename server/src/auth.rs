//! Passwords (argon2), session tokens (random, stored as SHA-256), the bearer-token extractor and
//! a login attempt limiter.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use unionpass_core::ErrorCode;

use crate::error::AppError;
use crate::AppState;

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing in particular: checked against when the member number is unknown, so that
/// a wrong number takes as long to refuse as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password"))
}

/// A fresh session token: 32 random bytes, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How long a session lives.
pub const SESSION_TTL: Duration = Duration::days(180);

/// The member behind a valid `Authorization: Bearer` token, plus the token's hash.
pub struct AuthMember {
    pub member_id: i64,
    /// The member's workplace union.
    pub union_id: i64,
    /// The device this session enrolled (its passport key), if any.
    pub device_id: Option<i64>,
    pub token_hash: String,
}

/// How long a checked session is trusted without asking the database again. A logout on this
/// instance takes effect at once; one made through another instance, within this time.
pub const SESSION_CACHE_TTL: Duration = Duration::seconds(30);

/// Recently checked sessions: token hash -> (member, union, checked at). In a flash sale every
/// member sends a few requests within seconds; this keeps the database for the grabs.
#[derive(Default)]
pub struct SessionCache(Mutex<HashMap<String, CachedSession>>);

/// A checked session and when it was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedSession {
    pub member_id: i64,
    pub union_id: i64,
    pub device_id: Option<i64>,
    pub checked_at: DateTime<Utc>,
}

impl SessionCache {
    pub fn get(&self, hash: &str, now: DateTime<Utc>) -> Option<CachedSession> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash)
            .filter(|c| now >= c.checked_at && now - c.checked_at < SESSION_CACHE_TTL)
            .copied()
    }

    pub fn put(&self, hash: &str, session: CachedSession) {
        let now = session.checked_at;
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 500_000 {
            map.retain(|_, c| now - c.checked_at < SESSION_CACHE_TTL);
        }
        map.insert(hash.to_string(), session);
    }

    /// Forget the sessions of a revoked device.
    pub fn evict_device(&self, device_id: i64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| c.device_id != Some(device_id));
    }

    pub fn evict(&self, hash: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }
}

impl FromRequestParts<AppState> for AuthMember {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthenticated = || {
            AppError::new(
                ErrorCode::Unauthenticated,
                "Sign in again: the session is missing or has ended.",
            )
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthenticated)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(unauthenticated)?
            .trim();
        if token.is_empty() {
            return Err(unauthenticated());
        }
        let hash = token_hash(token);
        let now = state.clock.now();
        if let Some(c) = state.sessions.get(&hash, now) {
            return Ok(AuthMember {
                member_id: c.member_id,
                union_id: c.union_id,
                device_id: c.device_id,
                token_hash: hash,
            });
        }
        let session = state
            .store
            .session_member(&hash, now)
            .await?
            .ok_or_else(unauthenticated)?;
        let union_id = state
            .store
            .profile(session.member_id)
            .await?
            .ok_or_else(unauthenticated)?
            .union
            .id;
        state.sessions.put(
            &hash,
            CachedSession {
                member_id: session.member_id,
                union_id,
                device_id: session.device_id,
                checked_at: now,
            },
        );
        Ok(AuthMember {
            member_id: session.member_id,
            union_id,
            device_id: session.device_id,
            token_hash: hash,
        })
    }
}

/// Failed logins per member number in a sliding window; past the limit, answer `rate_limited`.
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
    pub max_failures: usize,
    pub window: Duration,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            failures: Mutex::new(HashMap::new()),
            max_failures: 10,
            window: Duration::minutes(5),
        }
    }
}

impl LoginLimiter {
    fn recent<'a>(
        &self,
        map: &'a mut HashMap<String, Vec<DateTime<Utc>>>,
        key: &str,
        now: DateTime<Utc>,
    ) -> &'a mut Vec<DateTime<Utc>> {
        let list = map.entry(key.to_string()).or_default();
        list.retain(|t| now - *t < self.window);
        list
    }

    pub fn is_blocked(&self, key: &str, now: DateTime<Utc>) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.recent(&mut map, key, now).len() >= self.max_failures
    }

    pub fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.recent(&mut map, key, now).push(now);
        if map.len() > 100_000 {
            map.retain(|_, v| !v.is_empty());
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens() {
        let h = hash_password("demo1234");
        assert!(verify_password("demo1234", &h));
        assert!(!verify_password("demo12345", &h));
        assert!(!verify_password("x", "not a hash"));
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn limiter_blocks_after_max_failures_then_forgets() {
        let l = LoginLimiter {
            max_failures: 3,
            ..Default::default()
        };
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        for i in 0..3 {
            assert!(!l.is_blocked("M1", t0));
            l.record_failure("M1", t0 + Duration::seconds(i));
        }
        assert!(l.is_blocked("M1", t0 + Duration::seconds(3)));
        assert!(!l.is_blocked("M2", t0), "other members are not affected");
        assert!(
            !l.is_blocked("M1", t0 + Duration::minutes(6)),
            "the window slides"
        );
    }
}
