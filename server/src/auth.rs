//! Passwords (argon2), session tokens (random, stored as SHA-256), sessions that end when idle,
//! and the bearer-token extractor. How many password checks may run is `crate::guard`'s.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
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

/// Whether `password` matches its PHC string `hash`. Argon2's work area (19 MiB with the
/// default parameters) comes from a small pool and goes back to it, so checks under a flood
/// allocate nothing large: with the hashing slots bounded by the guard, the memory for hashing
/// is bounded too (the allocator would otherwise keep freed work areas around per thread).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        argon2::Params::try_from(&parsed),
        argon2::Algorithm::try_from(parsed.algorithm),
    ) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    let mut work = work_area::take(blocks);
    let got = argon2::password_hash::Output::init_with(expected.len(), |out| {
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut work[..blocks])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    });
    work_area::give_back(work);
    // `Output`'s equality is constant-time
    got.is_ok_and(|got| got == expected)
}

/// Argon2 work areas kept for reuse: at most a few (one per hashing slot is what is used).
mod work_area {
    use std::sync::Mutex;

    const KEEP: usize = 8;
    static POOL: Mutex<Vec<Vec<argon2::Block>>> = Mutex::new(Vec::new());

    pub fn take(blocks: usize) -> Vec<argon2::Block> {
        let mut area = POOL
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        if area.len() < blocks {
            area.resize(blocks, argon2::Block::default());
        }
        area
    }

    pub fn give_back(area: Vec<argon2::Block>) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < KEEP {
            pool.push(area);
        }
    }
}

/// A fresh session token: 32 random bytes, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A password reset code: [`unionpass_core::api::RESET_CODE_DIGITS`] random digits (about 40
/// bits; guesses go through the guard, and the code works once, for a day).
pub fn new_reset_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..unionpass_core::api::RESET_CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// What the database keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()).into())
}

/// A session ends when it has not been used for this long; each use keeps it alive this long.
pub const SESSION_IDLE: Duration = Duration::days(30);
/// However much it is used, a session ends this long after sign-in.
pub const SESSION_MAX_AGE: Duration = Duration::days(365);
/// A session in use is renewed at most once this often (a write), not on every request.
pub const RENEW_EVERY: Duration = Duration::days(1);

/// From when a session created at `created_at` and ending at `expires_at` is renewed as it is
/// used: once `now + SESSION_IDLE` would move its end by `RENEW_EVERY` or more. `None` when its
/// maximum age leaves no room for a renewal that long. The renewal rule, stated once: [`renewal`]
/// and [`usable_until`] read it.
fn renew_from(created_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let room = created_at
        .checked_add_signed(SESSION_MAX_AGE)
        .is_none_or(|last| last - expires_at >= RENEW_EVERY);
    // (out of range only at the calendar's very start: then due at once)
    room.then(|| {
        expires_at
            .checked_add_signed(RENEW_EVERY - SESSION_IDLE)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    })
}

/// When a session used at `now` should expire now (its renewed end), if it should change.
pub fn renewal(
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let last = created_at
        .checked_add_signed(SESSION_MAX_AGE)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    renew_from(created_at, expires_at)
        .filter(|from| now >= *from)
        .map(|_| (now + SESSION_IDLE).min(last))
}

/// The instant from which a session created at `created_at` and ending at `expires_at` can no
/// longer be used as it is: it has expired, or [`renewal`] would renew it. Worked out once when
/// the session is kept in [`SessionTable`], so that a race request compares two instants instead
/// of doing `renewal`'s date arithmetic (about 400 instructions a request).
pub fn usable_until(created_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    renew_from(created_at, expires_at).map_or(expires_at, |from| from.min(expires_at))
}

/// Whether `token` has the shape of one this server hands out (43 characters of base64url).
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The member behind a valid `Authorization: Bearer` token, plus the token's hash. Checked
/// against the database on every request, so a session ended anywhere (sign-out, sign-out
/// everywhere, a revoked device, a changed password, a suspension) stops at once on every
/// instance.
pub struct AuthMember {
    pub member_id: i64,
    /// The member's workplace union.
    pub union_id: i64,
    /// The device this session enrolled (its passport key).
    pub device_id: i64,
    pub token_hash: String,
}

impl FromRequestParts<AppState> for AuthMember {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let hash = token_hash(token);
        let now = state.clock.now();
        let Some(session) = state.store.session_member(&hash, now).await? else {
            return Err(AppError::new(
                ErrorCode::SessionEnded,
                "This session has ended (signed out, revoked, expired or suspended); sign in again.",
            ));
        };
        let session = match renewal(session.created_at, session.expires_at, now) {
            Some(until) => {
                state.store.renew_session(&hash, until).await?;
                crate::store::SessionInfo {
                    expires_at: until,
                    ..session
                }
            }
            None => session,
        };
        // the races read it from memory next time
        state.sessions.put(&hash, session, now);
        Ok(AuthMember {
            member_id: session.member_id,
            union_id: session.union_id,
            device_id: session.device_id,
            token_hash: hash,
        })
    }
}

/// Live sessions kept in memory for the races (the grab and sign-up at an opening instant), so
/// that 110,000 members pressing at once are not 110,000 database reads before they are judged.
/// Filled when the server starts (`AppState::warm_sessions`), at each sign-in through this
/// instance and at each miss (read from the database like [`AuthMember`]); bounded.
///
/// It may be stale: a session ended through another instance or the admin command is still in
/// it. That is safe because it only lets a request be *judged*: whatever the race would give (a
/// coupon, a seat) is given only inside the transaction that writes it, after the session is
/// checked there again (`GrabJob::session`, `SignupJob::session`); a refusal from memory gives
/// nothing away. Every other route reads the session from the database on each request.
///
/// Keyed by the token's SHA-256 with foldhash (see the server's Cargo.toml): only sessions the
/// database holds are ever kept, and a client cannot choose what its token hashes to.
pub struct SessionTable {
    map: std::sync::RwLock<foldhash::HashMap<[u8; 32], Kept>>,
    cap: usize,
}

/// A session as [`SessionTable`] keeps it.
#[derive(Clone, Copy)]
struct Kept {
    info: crate::store::SessionInfo,
    /// [`usable_until`] of it.
    usable_until: DateTime<Utc>,
}

/// Sessions the table holds at most (about 100 bytes each): every member with a phone and a
/// computer, with room to spare.
pub const SESSION_TABLE_CAP: usize = 500_000;

impl SessionTable {
    pub fn new(cap: usize) -> SessionTable {
        SessionTable {
            map: Default::default(),
            cap,
        }
    }

    #[cfg(test)]
    fn get(&self, key: &[u8; 32]) -> Option<crate::store::SessionInfo> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(|k| k.info)
    }

    /// The session whose token hashes to `key`, if it can be used as it is at `now` (unexpired
    /// and not due for renewal: [`usable_until`]).
    fn usable(&self, key: &[u8; 32], now: DateTime<Utc>) -> Option<crate::store::SessionInfo> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .filter(|k| now < k.usable_until)
            .map(|k| k.info)
    }

    /// Keep `info` for the session whose token hash (hex, as stored) is `hash`. At the cap the
    /// sessions expired by `now` are dropped first; if it is still full, nothing new is kept
    /// (those sessions are read from the database each time).
    pub fn put(&self, hash: &str, info: crate::store::SessionInfo, now: DateTime<Utc>) {
        let Some(key) = raw_hash(hash) else { return };
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.cap && !map.contains_key(&key) {
            map.retain(|_, s| s.info.expires_at > now);
        }
        if map.len() < self.cap || map.contains_key(&key) {
            let usable_until = usable_until(info.created_at, info.expires_at);
            map.insert(key, Kept { info, usable_until });
        }
    }

    /// Forget one session (signed out through this instance).
    pub fn forget(&self, hash: &str) {
        if let Some(key) = raw_hash(hash) {
            self.map
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }

    /// Forget every session of a member (signed out everywhere, password changed).
    pub fn forget_member(&self, member_id: i64) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.info.member_id != member_id);
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn raw_hash(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The token of a request's `Authorization: Bearer` header, if it has the shape of one.
fn bearer(parts: &Parts) -> Result<&str, AppError> {
    let missing = || {
        AppError::new(
            ErrorCode::Unauthenticated,
            "Sign in: this request carries no valid session token.",
        )
    };
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let token = header.strip_prefix("Bearer ").ok_or_else(missing)?.trim();
    if !well_formed(token) {
        return Err(missing());
    }
    Ok(token)
}

/// The member of a race request (grab, sign-up): from [`SessionTable`] when it holds the
/// session (unexpired, not due for renewal), else as [`AuthMember`] from the database, then
/// kept. What the race grants is checked against the database again where it is written.
pub struct RaceMember(pub AuthMember);

impl FromRequestParts<AppState> for RaceMember {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let raw: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = state.clock.now();
        if let Some(s) = state.sessions.usable(&raw, now) {
            return Ok(RaceMember(AuthMember {
                member_id: s.member_id,
                union_id: s.union_id,
                device_id: s.device_id,
                token_hash: hex(&raw),
            }));
        }
        AuthMember::from_request_parts(parts, state)
            .await
            .map(RaceMember)
    }
}

/// A hash as 64 lowercase hex digits. Written into a buffer (`hex::encode` builds its string one
/// character at a time: about 1,700 instructions a request on the grab's path, against 200).
fn hex(bytes: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    hex::encode_to_slice(bytes, &mut out).expect("64 digits for 32 bytes");
    std::str::from_utf8(&out)
        .expect("hex digits are ASCII")
        .to_owned()
}

/// Whether a new password is acceptable: 8 to 128 characters, not the member number.
pub fn password_acceptable(member_no: &str, password: &str) -> bool {
    let n = password.chars().count();
    (8..=MAX_PASSWORD).contains(&n) && !password.eq_ignore_ascii_case(member_no)
}

/// The longest member number and password a request may carry (longer ones are refused before
/// anything is looked up or hashed).
pub const MAX_MEMBER_NO: usize = 32;
pub const MAX_PASSWORD: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_table_is_bounded_drops_the_expired_first_and_forgets() {
        let t0: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let info = |member_id: i64, expires_at: DateTime<Utc>| crate::store::SessionInfo {
            member_id,
            union_id: 1,
            device_id: member_id,
            created_at: t0,
            expires_at,
        };
        let hash = |token: &str| token_hash(token);
        let table = SessionTable::new(2);
        table.put(&hash("a"), info(1, t0 + Duration::days(1)), t0);
        table.put(&hash("b"), info(2, t0 + Duration::hours(1)), t0);
        // full: a third is not kept while both live...
        table.put(&hash("c"), info(3, t0 + Duration::days(1)), t0);
        assert_eq!(table.len(), 2);
        let raw = |token: &str| -> [u8; 32] { Sha256::digest(token.as_bytes()).into() };
        assert!(table.get(&raw("c")).is_none());
        // ...and is once one of them has expired
        let later = t0 + Duration::hours(2);
        table.put(&hash("c"), info(3, t0 + Duration::days(1)), later);
        assert_eq!(table.get(&raw("c")).map(|s| s.member_id), Some(3));
        assert!(table.get(&raw("b")).is_none(), "the expired one went");
        // each token finds its own member only
        assert_eq!(table.get(&raw("a")).map(|s| s.member_id), Some(1));
        table.forget(&hash("a"));
        assert!(table.get(&raw("a")).is_none());
        table.forget_member(3);
        assert!(table.is_empty());
        // a hash that is not 64 hex digits is never kept
        table.put("not hex", info(4, t0 + Duration::days(1)), t0);
        assert!(table.is_empty());
    }

    #[test]
    fn renewal_and_use_from_memory_follow_the_rule_at_every_boundary() {
        let t0: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let (d, h, s) = (Duration::days(1), Duration::hours(1), Duration::seconds(1));
        // sessions ending soon and late after their sign-in (the latest leaving their maximum
        // age room for a renewal of a day, less or none), used around every instant where the
        // answer could change
        let created = t0;
        let late = created + SESSION_MAX_AGE - RENEW_EVERY;
        let ends = [0, 1, 29, 30, 31, 334, 335, 336, 364, 365, 366]
            .map(|n| created + d * n)
            .into_iter()
            .chain([late - h * 12, late - s, late + s, late + h * 12]);
        let mut usable = 0;
        for expires in ends {
            for at in [
                expires - SESSION_IDLE - d,
                expires - SESSION_IDLE + RENEW_EVERY - s,
                expires - SESSION_IDLE + RENEW_EVERY,
                expires - SESSION_IDLE + RENEW_EVERY + s,
                expires - s,
                expires,
                expires + s,
            ] {
                // the rule as first written: renewed once the new end would move it a day
                let renewed = (at + SESSION_IDLE).min(created + SESSION_MAX_AGE);
                let due = renewed - expires >= RENEW_EVERY;
                assert_eq!(renewal(created, expires, at), due.then_some(renewed));
                let by_rule = expires > at && !due;
                assert_eq!(
                    at < usable_until(created, expires),
                    by_rule,
                    "created {created}, expires {expires}, used at {at}"
                );
                usable += usize::from(by_rule);
            }
        }
        assert!(usable > 20, "both answers are asked often: {usable} usable");
        // and the table answers by it
        let table = SessionTable::new(4);
        let raw: [u8; 32] = Sha256::digest(b"t").into();
        let info = crate::store::SessionInfo {
            member_id: 7,
            union_id: 1,
            device_id: 7,
            created_at: t0,
            expires_at: t0 + SESSION_IDLE,
        };
        table.put(&token_hash("t"), info, t0);
        let due = t0 + RENEW_EVERY;
        assert_eq!(table.usable(&raw, due - s).map(|i| i.member_id), Some(7));
        assert!(
            table.usable(&raw, due).is_none(),
            "due for renewal: read from the database"
        );
    }

    #[test]
    fn passwords_and_tokens() {
        let h = hash_password("demo1234");
        assert!(verify_password("demo1234", &h));
        assert!(!verify_password("demo12345", &h));
        assert!(!verify_password("x", "not a hash"));
        // hashes made with other parameters (older or tuned ones) check the same as argon2's
        // own verifier says, with the pooled work area
        use argon2::password_hash::PasswordVerifier;
        let tuned = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 2, 2, Some(24)).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let other = tuned.hash_password(b"s3cret", &salt).unwrap().to_string();
        for (pw, ok) in [("s3cret", true), ("s3creT", false), ("", false)] {
            assert_eq!(verify_password(pw, &other), ok, "{pw}");
            let theirs = Argon2::default()
                .verify_password(pw.as_bytes(), &PasswordHash::new(&other).unwrap())
                .is_ok();
            assert_eq!(theirs, ok);
        }
        assert!(
            verify_password("demo1234", &h),
            "the default hash after a smaller one"
        );
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn sessions_in_use_are_renewed_once_a_day_up_to_their_maximum_age() {
        let t0: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        let expires = t0 + SESSION_IDLE;
        assert_eq!(renewal(t0, expires, t0 + Duration::hours(23)), None);
        assert_eq!(
            renewal(t0, expires, t0 + Duration::days(2)),
            Some(t0 + Duration::days(2) + SESSION_IDLE)
        );
        // near the maximum age: no longer than that
        let old = t0 - SESSION_MAX_AGE + Duration::days(10);
        assert_eq!(
            renewal(old, t0 + Duration::days(3), t0),
            Some(old + SESSION_MAX_AGE)
        );
        assert_eq!(renewal(old, old + SESSION_MAX_AGE, t0), None);
    }

    #[test]
    fn tokens_and_passwords_have_a_shape() {
        assert!(well_formed(&new_token()));
        assert!(!well_formed("forged"));
        assert!(!well_formed(&"a".repeat(44)));
        assert!(!well_formed(&format!("{}=", &new_token()[..42])));
        assert!(password_acceptable("M10001", "correct horse"));
        assert!(!password_acceptable("M10001", "short"));
        assert!(!password_acceptable("M10001", "m10001"));
        assert!(!password_acceptable("M10001", &"x".repeat(129)));
        assert!(
            password_acceptable("M10001", &"密".repeat(8)),
            "characters, not bytes"
        );
    }
}
