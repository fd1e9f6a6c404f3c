//! Routes and handlers. Each handler reads the clock once and passes `now` down.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tower_http::trace::TraceLayer;
use unionpass_core::api::{
    KeysResponse, LoginRequest, LoginResponse, PushRequest, PushResponse, SyncResponse,
    TimeResponse,
};
use unionpass_core::ErrorCode;

use crate::auth::{self, AuthMember};
use crate::error::AppError;
use crate::passport;
use crate::store::{GrabJob, NewDevice, NewSession, StoreError, Taken};
use crate::AppState;
use unionpass_core::api::{DeviceInfo, MutationOp, Role};
use unionpass_core::campaign::{Campaign, GrabRequest, GrabResponse};
use unionpass_core::checkin::ScannerBundle;

/// Changes per sync page.
pub const PAGE: usize = 500;
/// Mutations per push request.
pub const MAX_PUSH: usize = 500;

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/time", get(time))
        .route("/v1/keys", get(keys))
        .route("/v1/login", post(login))
        .route("/v1/logout", post(logout))
        .route("/v1/sync", get(sync))
        .route("/v1/sync/push", post(push))
        .route("/v1/campaigns", get(campaigns))
        .route("/v1/campaigns/{id}/grab", post(grab))
        .route("/v1/scanner", get(scanner))
        .route("/v1/reauth", post(reauth))
        .fallback(not_found)
        // The trace layer logs method, path and status; never headers (they carry the token).
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn bad_json(e: JsonRejection) -> AppError {
    AppError::new(
        ErrorCode::BadRequest,
        format!("The request body is not acceptable: {}", e.body_text()),
    )
}

async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "No such endpoint.")
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true }))
}

async fn time(State(s): State<AppState>) -> Json<TimeResponse> {
    Json(TimeResponse { now: s.clock.now() })
}

async fn keys(State(s): State<AppState>) -> Json<KeysResponse> {
    Json(KeysResponse {
        keys: s.keys.public(),
    })
}

/// The member's account when `password` is theirs; `None` (recorded as a failure) when the
/// member number or the password is wrong. Refused outright while too many recent failures are
/// on record for that member number. An unknown number costs the same hashing time.
async fn check_password(
    s: &AppState,
    member_no: &str,
    password: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<crate::store::MemberAuth>, AppError> {
    if s.limiter.is_blocked(member_no, now) {
        return Err(AppError::new(
            ErrorCode::RateLimited,
            "Too many wrong passwords; wait a few minutes.",
        ));
    }
    let member = s.store.member_auth(member_no).await?;
    let hash = member
        .as_ref()
        .map(|m| m.password_hash.clone())
        .unwrap_or_else(|| auth::dummy_hash().to_string());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash)).await?;
    match member {
        Some(m) if ok => {
            s.limiter.clear(member_no);
            Ok(Some(m))
        }
        _ => {
            s.limiter.record_failure(member_no, now);
            Ok(None)
        }
    }
}

async fn login(
    State(s): State<AppState>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, AppError> {
    let Json(req) = body.map_err(bad_json)?;
    let now = s.clock.now();
    let member_no = req.member_no.trim().to_string();
    if member_no.is_empty() || req.password.is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidInput,
            "Enter the member number and the password.",
        ));
    }
    let device_key = match req.device_key.as_deref() {
        None => None,
        Some(text) => Some(parse_device_key(text).ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidInput,
                "The device key is not a valid Ed25519 public key; update the app.",
            )
        })?),
    };
    let member = check_password(&s, &member_no, &req.password, now)
        .await?
        .ok_or_else(|| {
            tracing::info!("sign-in refused");
            AppError::new(
                ErrorCode::InvalidCredentials,
                "The member number or password is wrong.",
            )
        })?;
    if member.suspended {
        tracing::info!(member_id = member.member_id, "sign-in refused: suspended");
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "This membership is suspended; contact your workplace union.",
        ));
    }
    let token = auth::new_token();
    let expires_at = now + auth::SESSION_TTL;
    let device_name: String = req.device_name.chars().take(100).collect();
    let created = s
        .store
        .create_session(NewSession {
            token_hash: auth::token_hash(&token),
            member_id: member.member_id,
            device_name: device_name.clone(),
            created_at: now,
            expires_at,
            device: device_key.map(|public_key| NewDevice {
                name: device_name,
                public_key,
            }),
        })
        .await;
    match created {
        Err(StoreError::Duplicate(Taken::DeviceKey)) => {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "This device key is already enrolled; sign in again to make a new one.",
            ))
        }
        other => other?,
    }
    tracing::info!(member_id = member.member_id, "signed in");
    Ok(Json(LoginResponse {
        token,
        member_id: member.member_id,
        expires_at,
    }))
}

async fn logout(
    State(s): State<AppState>,
    who: AuthMember,
) -> Result<Json<serde_json::Value>, AppError> {
    s.store
        .delete_session(&who.token_hash, s.clock.now())
        .await?;
    s.sessions.evict(&who.token_hash);
    tracing::info!(member_id = who.member_id, "signed out");
    Ok(Json(serde_json::json!({ "ok": true })))
}

#[derive(Deserialize)]
struct SyncQuery {
    #[serde(default)]
    cursor: i64,
}

async fn sync(
    State(s): State<AppState>,
    who: AuthMember,
    query: Result<Query<SyncQuery>, QueryRejection>,
) -> Result<Json<SyncResponse>, AppError> {
    let Query(q) = query.map_err(|e| AppError::new(ErrorCode::BadRequest, e.body_text()))?;
    if q.cursor < 0 {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "The cursor must not be negative.",
        ));
    }
    let now = s.clock.now();
    let profile = s.store.profile(who.member_id).await?.ok_or_else(|| {
        AppError::new(ErrorCode::Unauthenticated, "This account no longer exists.")
    })?;
    let passport = match who.device_id {
        None => None,
        Some(device_id) => {
            let device = s
                .store
                .device_passport(device_id)
                .await?
                .filter(|d| !d.revoked)
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::Unauthenticated,
                        "This device was revoked; sign in again.",
                    )
                })?;
            match device.passport {
                Some(p) if !passport::needs_issue(Some(&p), &s.keys, now) => Some(p),
                _ => {
                    let p = passport::issue_for(&profile, device.public_key, &s.keys, now);
                    s.store.save_device_passport(device_id, &p, now).await?;
                    tracing::info!(member_id = who.member_id, device_id, kid = %p.kid, "issued a passport credential");
                    Some(p)
                }
            }
        }
    };
    let devices = s
        .store
        .devices(who.member_id)
        .await?
        .into_iter()
        .map(|d| DeviceInfo {
            current: Some(d.id) == who.device_id,
            id: d.id,
            name: d.name,
            device_kid: d.device_kid,
            created_at: d.created_at,
        })
        .collect();
    let mut changes = s
        .store
        .changes_since(who.member_id, q.cursor, PAGE + 1)
        .await?;
    let more = changes.len() > PAGE;
    changes.truncate(PAGE);
    let cursor = changes.last().map(|c| c.seq).unwrap_or(q.cursor);
    // once per sync, with its last page
    let (stock_left, points_offer) = if more {
        (Vec::new(), None)
    } else {
        (
            s.store.stock_left(now).await?,
            Some(s.store.points_offer().await?),
        )
    };
    Ok(Json(SyncResponse {
        cursor,
        server_time: now,
        profile,
        passport,
        devices,
        changes,
        more,
        stock_left,
        points_offer,
    }))
}

/// How long a password given again lets one redemption through.
const REAUTH_FOR: chrono::Duration = chrono::Duration::minutes(10);

async fn reauth(
    State(s): State<AppState>,
    who: AuthMember,
    body: Result<Json<unionpass_core::api::ReauthRequest>, JsonRejection>,
) -> Result<axum::http::StatusCode, AppError> {
    let Json(req) = body.map_err(bad_json)?;
    let now = s.clock.now();
    let profile = s
        .store
        .profile(who.member_id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::Unauthenticated, "Sign in again."))?;
    if check_password(&s, &profile.member_no, &req.password, now)
        .await?
        .is_none()
    {
        return Err(AppError::new(
            ErrorCode::InvalidCredentials,
            "The password is wrong.",
        ));
    }
    s.store
        .grant_reauth(who.member_id, req.redemption_id, now + REAUTH_FOR)
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn push(
    State(s): State<AppState>,
    who: AuthMember,
    body: Result<Json<PushRequest>, JsonRejection>,
) -> Result<Json<PushResponse>, AppError> {
    let Json(req) = body.map_err(bad_json)?;
    if req.mutations.len() > MAX_PUSH {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            format!("Send at most {MAX_PUSH} changes at once."),
        ));
    }
    let now = s.clock.now();
    let mut results = Vec::with_capacity(req.mutations.len());
    for m in &req.mutations {
        results.push(s.store.apply_mutation(who.member_id, m, now).await?);
        if let MutationOp::RevokeDevice { device_id } = m.op {
            s.sessions.evict_device(device_id);
        }
    }
    Ok(Json(PushResponse { results }))
}

fn parse_device_key(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let raw: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?
        .try_into()
        .ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&raw).ok()?;
    Some(raw)
}

/// Everything a staff scanner needs offline: keys, revocations, events, check-ins, conflicts.
async fn scanner(
    State(s): State<AppState>,
    who: AuthMember,
) -> Result<Json<ScannerBundle>, AppError> {
    let now = s.clock.now();
    let profile = s.store.profile(who.member_id).await?.ok_or_else(|| {
        AppError::new(ErrorCode::Unauthenticated, "This account no longer exists.")
    })?;
    if profile.role != Role::Staff {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Only staff accounts can scan passports.",
        ));
    }
    let data = s.store.scanner_data(who.member_id, now).await?;
    Ok(Json(ScannerBundle {
        generated_at: now,
        keys: s.keys.public(),
        revoked_devices: data.revoked_devices,
        revoked_members: data.revoked_members,
        events: data.events,
        checkins: data.checkins,
        conflicts: data.conflicts,
    }))
}

async fn campaigns(
    State(s): State<AppState>,
    _who: AuthMember,
) -> Result<Json<Vec<Campaign>>, AppError> {
    Ok(Json(s.store.campaigns().await?))
}

async fn grab(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    who: AuthMember,
    body: Result<Json<GrabRequest>, JsonRejection>,
) -> Result<Json<GrabResponse>, AppError> {
    let Json(req) = body.map_err(bad_json)?;
    let now = s.clock.now();
    if !s.grab_per_address.allow(&peer.ip().to_string(), now)
        || !s.grab_per_member.allow(&who.member_id.to_string(), now)
    {
        return Err(AppError::new(
            ErrorCode::RateLimited,
            "Too many grab requests; wait a second and try again.",
        ));
    }
    let union_id = who.union_id;
    match s
        .store
        .grab(GrabJob {
            member_id: who.member_id,
            union_id,
            campaign_id: id,
            key: req.key,
            now,
        })
        .await
    {
        Ok(answer) => Ok(Json(answer)),
        Err(StoreError::NoCampaign(_)) => {
            Err(AppError::new(ErrorCode::NotFound, "No such campaign."))
        }
        Err(StoreError::Duplicate(Taken::GrabKey(_))) => Err(AppError::new(
            ErrorCode::BadRequest,
            "This grab key is already used; make a new key.",
        )),
        Err(e) => Err(e.into()),
    }
}
