//! Routes and handlers. Each handler reads the clock once and passes `now` down. Every answer,
//! errors included (unknown routes, wrong methods, bad paths, oversized bodies), is JSON.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use unionpass_core::api::{
    ChangePasswordRequest, DeviceInfo, EndedSessions, KeysResponse, LoginRequest, LoginResponse,
    Mutation, MutationOp, MutationOutcome, MutationResult, PushRequest, PushResponse,
    ReauthRequest, ResetPasswordRequest, Role, SyncResponse, TimeResponse,
};
use unionpass_core::campaign::{Campaign, GrabRequest, GrabResponse};
use unionpass_core::checkin::ScannerBundle;
use unionpass_core::ErrorCode;

use crate::auth::{self, AuthMember, RaceMember};
use crate::error::{AppError, Body, PathParam, QueryParam};
use crate::guard::{HashError, Outcome, Refused};
use crate::passport;
use crate::store::{GrabJob, NewDevice, NewSession, Proven, SignupJob, StoreError, Taken};
use crate::AppState;
use unionpass_core::activity::{ActivityLive, MySignup, PollResults, SignupAnswer, SignupRequest};

/// Changes per sync page: a heavy first sync (12,000 rows) is seven pages, each one transaction
/// (one fsync) on the device; a page is a few hundred KB before gzip.
pub const PAGE: usize = 2000;
/// Mutations per push request.
pub const MAX_PUSH: usize = 500;
/// The largest request body (a push of [`MAX_PUSH`] mutations with check-in proofs fits).
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest body of any other request.
pub const MAX_SMALL_BODY: usize = 16 * 1024;

/// The longest a request may take before it is answered `unavailable`.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn app(state: AppState) -> Router {
    let routes = Router::new();
    // the tests need a handler that panics (never in a build without the `testing` feature)
    #[cfg(feature = "testing")]
    let routes = routes.route(
        "/v1/testing/panic",
        get(|| async {
            if true {
                panic!("a test asked for a panic");
            }
        }),
    );
    routes
        .route("/v1/health", get(health))
        .route("/v1/time", get(time))
        .route("/v1/version", get(version))
        .route("/v1/update/{target}/{arch}/{bundle}/{current}", get(update))
        .route("/v1/keys", get(keys))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/login", post(login))
        .route("/v1/logout", post(logout))
        .route("/v1/sessions/end-all", post(end_all_sessions))
        .route("/v1/password", post(change_password))
        .route("/v1/password/reset", post(reset_password))
        .route("/v1/sync", get(sync))
        .route(
            "/v1/sync/push",
            post(push).layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .route("/v1/campaigns", get(campaigns))
        .route("/v1/campaigns/{id}/grab", post(grab))
        .route("/v1/activities", get(activities))
        .route("/v1/activities/{id}/signup", post(sign_up))
        .route("/v1/activities/{id}/cancel", post(cancel_signup))
        .route("/v1/polls/{id}/results", get(poll_results))
        .route("/v1/scanner", get(scanner))
        .route("/v1/reauth", post(reauth))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_old_apps,
        ))
        // every route's body limit (`/v1/sync/push` sets its own, larger, inside this one). Set
        // once here, not again on each route: a layer on a route wraps it in one more boxed
        // service, cloned for every request (about 1,800 instructions of a race refusal)
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY))
        // Around every route, outermost first: the `Authorization` header is marked sensitive
        // (never logged); each request gets an `x-request-id` (in its log lines, and sent back);
        // an access log line at INFO with method, path, status and time (never headers or query
        // strings: they may carry tokens); a panicking handler is answered 500 and the server
        // keeps serving; a request taking longer than REQUEST_TIMEOUT is answered
        // `unavailable`; answers are gzipped when the client accepts it.
        .layer(
            tower::ServiceBuilder::new()
                .layer(
                    tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
                        header::AUTHORIZATION,
                        header::COOKIE,
                        header::PROXY_AUTHORIZATION,
                    ]),
                )
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &axum::extract::Request| {
                            let id = req
                                .headers()
                                .get(&REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                        })
                        .on_response(
                            tower_http::trace::DefaultOnResponse::new()
                                .level(tracing::Level::INFO)
                                .latency_unit(tower_http::LatencyUnit::Millis),
                        ),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
                .layer(axum::error_handling::HandleErrorLayer::new(timed_out))
                .layer(tower::timeout::TimeoutLayer::new(REQUEST_TIMEOUT))
                // the fastest gzip level: sync pages are JSON, which it still shrinks about
                // fivefold, at a fraction of the default level's time per answer; and only
                // answers above `COMPRESS_ABOVE`: a compressor's set-up (clearing its tables)
                // costs more than a short answer (a grab's, a sign-up's) saves, and was the
                // largest single cost of a refusal at a burst. The size is asked first: it
                // settles a short answer at once, where the default predicate's content-type
                // checks (three header lookups) cost a refusal about 670 instructions
                .layer(
                    tower_http::compression::CompressionLayer::new()
                        .quality(tower_http::CompressionLevel::Fastest)
                        .compress_when(
                            tower_http::compression::Predicate::and(
                                tower_http::compression::predicate::SizeAbove::new(
                                    COMPRESS_ABOVE,
                                ),
                                tower_http::compression::predicate::DefaultPredicate::new(),
                            ),
                        ),
                ),
        )
        .with_state(state)
}

/// Answers shorter than this many bytes are sent as they are (see the compression layer): a
/// grab's or a sign-up's refusal (100–200 bytes) is not worth a compressor; a staff device's
/// sync with nothing new (a few answers of 500 bytes and more) still is, to stay under 2 KiB.
pub const COMPRESS_ABOVE: u16 = 512;

static REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// A handler panicked: logged, answered 500 as JSON; the server goes on.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %what, "a handler panicked");
    AppError::new(
        ErrorCode::Internal,
        "The server failed to handle the request; try again later.",
    )
    .into_response()
}

async fn timed_out(err: tower::BoxError) -> AppError {
    if err.is::<tower::timeout::error::Elapsed>() {
        AppError::new(
            ErrorCode::Unavailable,
            "The server took too long; try again in a moment.",
        )
    } else {
        tracing::error!(error = %err, "a request failed in the middleware");
        AppError::new(ErrorCode::Internal, "The server failed; try again later.")
    }
}

async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "No such endpoint.")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        ErrorCode::MethodNotAllowed,
        "This endpoint does not take this method.",
    )
}

/// The address a request comes from: the peer, or what a trusted proxy says the client was
/// (`serve --trusted-proxy`). Never a header from anyone else.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let forwarded = || {
            parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
        };
        Ok(ClientAddr(crate::guard::client_addr(
            peer,
            forwarded,
            &s.trusted_proxies,
        )))
    }
}

/// A member number as logged: enough to follow one account through the logs, not the number.
pub fn hashed(member_no: &str) -> String {
    let digest = Sha256::digest(format!("unionpass-log:{member_no}").as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// `{"ok": true}`: the request did what it asked.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Done {
    pub ok: bool,
}

#[utoipa::path(get, path = "/v1/health", tag = "server",
    responses((status = 200, description = "The server is up", body = Done), crate::openapi::Errors))]
pub(crate) async fn health() -> Json<Done> {
    Json(Done { ok: true })
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "server",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object), crate::openapi::Errors))]
pub(crate) async fn openapi_json() -> axum::response::Response {
    crate::openapi::answer()
}

#[utoipa::path(get, path = "/v1/time", tag = "server",
    responses((status = 200, description = "The server's clock (apps measure their offset)", body = TimeResponse), crate::openapi::Errors))]
pub(crate) async fn time(State(s): State<AppState>) -> Json<TimeResponse> {
    Json(TimeResponse { now: s.clock.now() })
}

#[utoipa::path(get, path = "/v1/version", tag = "server",
    responses((status = 200, description = "The app versions served, the newest, and where to download it per platform", body = unionpass_core::api::VersionInfo), crate::openapi::Errors))]
pub(crate) async fn version(State(s): State<AppState>) -> Json<unionpass_core::api::VersionInfo> {
    Json(s.versions.info.clone())
}

#[utoipa::path(get, path = "/v1/update/{target}/{arch}/{bundle}/{current}", tag = "server",
    params(
        ("target" = String, Path, description = "The asking app's OS as Tauri's updater names it", example = "linux"),
        ("arch" = String, Path, description = "Its CPU architecture", example = "x86_64"),
        ("bundle" = String, Path, description = "How it was installed (deb, rpm, appimage, nsis, msi, app)", example = "deb"),
        ("current" = String, Path, description = "Its version (semver)", example = "0.1.0"),
    ),
    description = "The app's updater asks here (Tauri's dynamic update server form). A newer \
        version with a package configured for this platform and package kind answers where it is \
        and its signature; anything else answers 204.",
    responses(
        (status = 200, description = "A newer signed package", body = unionpass_core::api::UpdateRelease),
        (status = 204, description = "Nothing newer for this platform and package kind"),
        crate::openapi::Errors))]
pub(crate) async fn update(
    State(s): State<AppState>,
    PathParam((target, arch, bundle, current)): PathParam<(String, String, String, String)>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let parts = [&target, &arch, &bundle, &current];
    if parts.iter().any(|p| p.is_empty() || p.len() > 32)
        || unionpass_core::api::parse_version(&current).is_none()
    {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "Ask as /v1/update/{target}/{arch}/{bundle}/{current}, each at most 32 characters and the version like 1.2.3.",
        ));
    }
    let key = unionpass_core::api::package_key(&target, &arch, &bundle);
    Ok(
        match s
            .versions
            .info
            .release_for(&current, &key, &s.versions.packages)
        {
            Some(release) => Json(release).into_response(),
            None => axum::http::StatusCode::NO_CONTENT.into_response(),
        },
    )
}

/// The app's version as its `User-Agent` says it (`UnionPass/<version>`); none from other clients.
fn app_version(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(unionpass_core::api::app_version_of)
}

/// An app older than the oldest served (its `User-Agent: UnionPass/<version>`) is answered
/// `client_too_old` (426) on everything but `/v1/version`, `/v1/update/…`, `/v1/time` and
/// `/v1/health`, so it can tell the member to update (or update itself) instead of failing in
/// other ways. Other clients are not affected.
async fn refuse_old_apps(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    let open = matches!(path, "/v1/version" | "/v1/time" | "/v1/health")
        || path.starts_with("/v1/update/");
    let too_old = !open && app_version(req.headers()).is_some_and(|v| s.versions.refuses(v));
    if too_old {
        return AppError::new(
            ErrorCode::ClientTooOld,
            format!(
                "This version of UnionPass is no longer served; install {} or newer (see GET /v1/version).",
                s.versions.info.min_supported
            ),
        )
        .into_response();
    }
    next.run(req).await
}

#[utoipa::path(get, path = "/v1/keys", tag = "server",
    responses((status = 200, description = "The union's public passport keys", body = KeysResponse), crate::openapi::Errors))]
pub(crate) async fn keys(State(s): State<AppState>) -> Json<KeysResponse> {
    Json(KeysResponse {
        keys: s.keys.public(),
    })
}

fn refused(r: Refused) -> AppError {
    match r {
        Refused::TooMany { retry_after } => AppError::new(
            ErrorCode::RateLimited,
            "Too many attempts; wait a moment and try again.",
        )
        .retry_after(retry_after),
        Refused::Busy { retry_after } => AppError::new(
            ErrorCode::Unavailable,
            "The server is busy checking passwords; try again in a moment.",
        )
        .retry_after(retry_after),
    }
}

/// Check `password` against the account of `member_no` (an unknown number takes as long, without
/// a hash), counted under `key` from `addr` before the hash (`crate::guard`). `None` when
/// the number or the password is wrong.
async fn check_password(
    s: &AppState,
    key: &str,
    member_no: &str,
    password: &str,
    addr: IpAddr,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<crate::store::MemberAuth>, AppError> {
    guarded(s, key, member_no, addr, now, |clean| async move {
        let Some(member) = s.store.member_auth(member_no).await? else {
            // no such number: no hash, the same queue and wait (see `crate::guard`)
            imitate(s, clean).await?;
            return Ok(None);
        };
        let (password, hash) = (password.to_string(), member.password_hash.clone());
        let ok = hash_check(s, clean, move || auth::verify_password(&password, &hash)).await?;
        Ok(Some(member).filter(|_| ok))
    })
    .await
}

/// Run `check` (which looks a secret up and checks it with [`hash_check`]) as one attempt
/// counted under `key` from `addr` before it starts (`crate::guard`): `Some` is a right secret,
/// `None` a wrong one. `clean` is the ticket's, for [`hash_check`].
async fn guarded<T, F>(
    s: &AppState,
    key: &str,
    member_no: &str,
    addr: IpAddr,
    now: chrono::DateTime<chrono::Utc>,
    check: impl FnOnce(bool) -> F,
) -> Result<Option<T>, AppError>
where
    F: std::future::Future<Output = Result<Option<T>, AppError>>,
{
    let ticket = s.guard.begin(key, addr, now).map_err(|r| {
        tracing::warn!(target: "security", event = "password_attempt_refused", %addr, member = %hashed(member_no), "too many attempts");
        refused(r)
    })?;
    let result = check(ticket.clean()).await;
    // a refusal to hash (busy) or a failing store is neither a wrong secret nor a right one
    let outcome = match &result {
        Ok(Some(_)) => Outcome::Right,
        Ok(None) => Outcome::Wrong,
        Err(_) => Outcome::Unchecked,
    };
    s.guard.finish(ticket, outcome, now);
    if matches!(result, Ok(None)) {
        tracing::warn!(target: "security", event = "password_wrong", %addr, member = %hashed(member_no), "wrong member number, password or reset code");
    }
    result
}

/// A password hash check on one of the guard's hashing slots.
async fn hash_check(
    s: &AppState,
    clean: bool,
    check: impl FnOnce() -> bool + Send + 'static,
) -> Result<bool, AppError> {
    match s.guard.hash(clean, check).await {
        Ok(ok) => Ok(ok),
        Err(HashError::Refused(r)) => Err(refused(r)),
        Err(HashError::Task(e)) => Err(e.into()),
    }
}

/// As long as [`hash_check`] takes, and refused as it is under load, without a hash.
async fn imitate(s: &AppState, clean: bool) -> Result<(), AppError> {
    match s.guard.imitate(clean).await {
        Ok(()) => Ok(()),
        Err(HashError::Refused(r)) => Err(refused(r)),
        Err(HashError::Task(e)) => Err(e.into()),
    }
}

/// A forgotten password, reset with the one-time code union staff gave the member.
#[utoipa::path(post, path = "/v1/password/reset", tag = "session", request_body = ResetPasswordRequest,
    description = "A new password for a member who forgot theirs, with the one-time code union \
        staff issued (`member reset-password`; 12 digits, valid 24 hours). Every session of the \
        member ends and their devices are revoked. Attempts are counted before the code is \
        checked, like sign-ins but on their own count (guesses at codes never slow the member's \
        sign-in). A wrong, expired or used code is `invalid_credentials`; the same code with the \
        same new password again (an answer lost) is answered as done, with no session ended.",
    responses((status = 200, description = "Reset; how many sessions ended", body = EndedSessions), crate::openapi::Errors))]
pub(crate) async fn reset_password(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(req): Body<ResetPasswordRequest>,
) -> Result<Json<EndedSessions>, AppError> {
    use crate::store::ResetState;
    let now = s.clock.now();
    let member_no = normalise_member_no(&req.member_no)?;
    check_password_length(&req.new_password)?;
    let code = unionpass_core::api::reset_code_digits(&req.code).ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidInput,
            "A reset code has 12 digits; check the one your union gave you.",
        )
    })?;
    if !auth::password_acceptable(&member_no, &req.new_password) {
        return Err(AppError::new(
            ErrorCode::WeakPassword,
            "The new password needs 8 to 128 characters and must differ from the member number.",
        ));
    }
    let wrong = || {
        AppError::new(
            ErrorCode::InvalidCredentials,
            "The reset code is wrong, has expired or was already used; ask your union for a new one.",
        )
    };
    // counted apart from sign-ins: guesses at a code never slow the member's own sign-in
    let key = format!("reset:{member_no}");
    let new_password = &req.new_password;
    let reset = guarded(&s, &key, &member_no, addr, now, |clean| {
        let (s, member_no) = (&s, &member_no);
        async move {
            let found = s.store.password_reset(member_no).await?;
            let Some(reset) = found.filter(|r| r.state(now) != ResetState::Void) else {
                // no code, expired, or suspended: no hash, the same queue and wait
                imitate(s, clean).await?;
                return Ok(None);
            };
            let (typed, hash) = (code, reset.code_hash.clone());
            if !hash_check(s, clean, move || auth::verify_password(&typed, &hash)).await? {
                return Ok(None);
            }
            if reset.state(now) == ResetState::Used
                && !same_password(s, clean, new_password, &reset.password_hash).await?
            {
                // sent again after its answer was lost: right only with the password the code
                // set (and still stands); anything else counts as a wrong guess
                return Ok(None);
            }
            Ok(Some(reset))
        }
    })
    .await?
    .ok_or_else(wrong)?;
    if reset.state(now) == ResetState::Used {
        return Ok(Json(EndedSessions { ended: 0 }));
    }
    let new = req.new_password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&new)).await?;
    let Some(ended) = s
        .store
        .use_password_reset(&member_no, &reset.code_hash, &hash, now)
        .await?
    else {
        // no longer usable: used by another request since the check (the same reset sent
        // twice at once; done if that one set this very password), or expired or suspended
        let used = s
            .store
            .password_reset(&member_no)
            .await?
            .filter(|r| r.code_hash == reset.code_hash && r.state(now) == ResetState::Used)
            .ok_or_else(wrong)?;
        return if same_password(&s, false, &req.new_password, &used.password_hash).await? {
            Ok(Json(EndedSessions { ended: 0 }))
        } else {
            Err(wrong())
        };
    };
    s.sessions.forget_member(reset.member_id);
    // the member proved who they are to staff: the guesses that led here (their own, most
    // likely) do not make the sign-in that follows wait
    s.guard.forgive(&member_no, addr, now);
    tracing::warn!(target: "security", event = "password_reset", %addr, member_id = reset.member_id, ended, "password reset with a code; every session ended");
    Ok(Json(EndedSessions { ended }))
}

/// Whether `password` is the one `hash` was made of, checked on a hashing slot.
async fn same_password(
    s: &AppState,
    clean: bool,
    password: &str,
    hash: &str,
) -> Result<bool, AppError> {
    let (password, hash) = (password.to_string(), hash.to_string());
    hash_check(s, clean, move || auth::verify_password(&password, &hash)).await
}

fn normalise_member_no(raw: &str) -> Result<String, AppError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > auth::MAX_MEMBER_NO {
        return Err(AppError::new(
            ErrorCode::InvalidInput,
            "Enter the member number (at most 32 characters).",
        ));
    }
    Ok(n.to_string())
}

fn check_password_length(p: &str) -> Result<(), AppError> {
    if p.is_empty() || p.chars().count() > auth::MAX_PASSWORD {
        return Err(AppError::new(
            ErrorCode::InvalidInput,
            "Enter the password (at most 128 characters).",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/login", tag = "session", request_body = LoginRequest,
    description = "Sign in on a device: its passport key is enrolled with the session. Attempts \
        are counted before the password is checked, per member number, per address and \
        server-wide; past the free ones they wait (429, `Retry-After`). 503 when too many \
        passwords are being checked at once.",
    responses((status = 200, description = "Signed in", body = LoginResponse), crate::openapi::Errors))]
pub(crate) async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Body(req): Body<LoginRequest>,
) -> Result<Json<LoginResponse>, AppError> {
    let now = s.clock.now();
    let member_no = normalise_member_no(&req.member_no)?;
    check_password_length(&req.password)?;
    // every session belongs to an enrolled device: that is what a revocation reaches
    let device_key = req
        .device_key
        .as_deref()
        .and_then(parse_device_key)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidInput,
                "Sign-in needs this device's passport key; update the app.",
            )
        })?;
    let member = check_password(&s, &member_no, &member_no, &req.password, addr, now)
        .await?
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidCredentials,
                "The member number or password is wrong.",
            )
        })?;
    if member.suspended {
        tracing::warn!(target: "security", event = "sign_in_suspended", %addr, member = %hashed(&member_no), "suspended member tried to sign in");
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "This membership is suspended; contact your workplace union.",
        ));
    }
    let token = auth::new_token();
    let expires_at = now + auth::SESSION_IDLE;
    let device_name: String = req
        .device_name
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let created = s
        .store
        .create_session(NewSession {
            token_hash: auth::token_hash(&token),
            member_id: member.member_id,
            device_name: device_name.clone(),
            created_at: now,
            expires_at,
            device: Some(NewDevice {
                name: device_name,
                public_key: device_key,
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
    tracing::info!(member_id = member.member_id, %addr, "signed in");
    Ok(Json(LoginResponse {
        token,
        member_id: member.member_id,
        expires_at,
    }))
}

#[utoipa::path(post, path = "/v1/logout", tag = "session", security(("session" = [])),
    responses((status = 200, description = "This session ended", body = Done), crate::openapi::Errors))]
pub(crate) async fn logout(
    State(s): State<AppState>,
    who: AuthMember,
) -> Result<Json<Done>, AppError> {
    s.store
        .delete_session(&who.token_hash, s.clock.now())
        .await?;
    s.sessions.forget(&who.token_hash);
    tracing::info!(member_id = who.member_id, "signed out");
    Ok(Json(Done { ok: true }))
}

/// Sign out everywhere: every session of the member ends (this one too), and the devices they
/// enrolled are revoked.
#[utoipa::path(post, path = "/v1/sessions/end-all", tag = "session", security(("session" = [])),
    description = "Sign out everywhere: every session of the member ends, this one too, and \
        their devices are revoked.",
    responses((status = 200, description = "How many sessions ended", body = EndedSessions), crate::openapi::Errors))]
pub(crate) async fn end_all_sessions(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    who: AuthMember,
) -> Result<Json<EndedSessions>, AppError> {
    let ended = s
        .store
        .end_sessions(who.member_id, None, s.clock.now())
        .await?;
    s.sessions.forget_member(who.member_id);
    tracing::warn!(target: "security", event = "signed_out_everywhere", %addr, member_id = who.member_id, ended, "every session ended");
    Ok(Json(EndedSessions { ended }))
}

/// A new password, given the current one; every other session ends (a thief's with them).
#[utoipa::path(post, path = "/v1/password", tag = "session", security(("session" = [])),
    request_body = ChangePasswordRequest,
    description = "A new password, given the current one; the member's other sessions end.",
    responses((status = 200, description = "Changed; how many other sessions ended", body = EndedSessions), crate::openapi::Errors))]
pub(crate) async fn change_password(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    who: AuthMember,
    Body(req): Body<ChangePasswordRequest>,
) -> Result<Json<EndedSessions>, AppError> {
    let now = s.clock.now();
    check_password_length(&req.current_password)?;
    let profile = s
        .store
        .profile(who.member_id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::SessionEnded, "Sign in again."))?;
    if !auth::password_acceptable(&profile.member_no, &req.new_password) {
        return Err(AppError::new(
            ErrorCode::WeakPassword,
            "The new password needs 8 to 128 characters and must differ from the member number.",
        ));
    }
    // guesses through a stolen session are counted against that session, not the member's sign-in
    let key = format!("session:{}", &who.token_hash[..16]);
    if check_password(
        &s,
        &key,
        &profile.member_no,
        &req.current_password,
        addr,
        now,
    )
    .await?
    .is_none()
    {
        return Err(AppError::new(
            ErrorCode::InvalidCredentials,
            "The current password is wrong.",
        ));
    }
    let new = req.new_password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&new)).await?;
    s.store.set_password(who.member_id, &hash).await?;
    let ended = s
        .store
        .end_sessions(who.member_id, Some(&who.token_hash), now)
        .await?;
    s.sessions.forget_member(who.member_id);
    tracing::warn!(target: "security", event = "password_changed", %addr, member_id = who.member_id, ended, "password changed; other sessions ended");
    Ok(Json(EndedSessions { ended }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SyncQuery {
    /// The `cursor` of the last page applied; 0 (or absent) for everything.
    #[serde(default)]
    #[param(minimum = 0)]
    cursor: i64,
}

/// The per-member sync limit: past it, `rate_limited` with the seconds until the next request
/// is taken.
fn sync_allowed(
    s: &AppState,
    member_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    s.sync_per_member.take(&member_id, now).map_err(|wait| {
        AppError::new(
            ErrorCode::RateLimited,
            "Too many sync requests from this account; the app tries again by itself.",
        )
        .retry_after(wait + chrono::Duration::milliseconds(999))
    })
}

/// [`SyncResponse`] as the server writes it: the same fields in the same order, with each
/// change's data sent as the log stored it (parsing and writing again each of a first sync's
/// thousands of rows was most of a page's cost). The document names `SyncResponse`; the tests
/// read every page as one.
#[derive(serde::Serialize)]
pub(crate) struct SyncPage {
    cursor: i64,
    server_time: chrono::DateTime<chrono::Utc>,
    profile: unionpass_core::api::Profile,
    passport: Option<unionpass_core::api::PassportInfo>,
    devices: Vec<DeviceInfo>,
    changes: Vec<crate::store::PageChange>,
    more: bool,
    stock_left: Vec<unionpass_core::api::StockLeft>,
    points_offer: Option<unionpass_core::redeem::PointsOffer>,
}

#[utoipa::path(get, path = "/v1/sync", tag = "sync", security(("session" = [])), params(SyncQuery),
    responses((status = 200, description = "Changes after the cursor, a page at a time", body = SyncResponse), crate::openapi::Errors))]
pub(crate) async fn sync(
    State(s): State<AppState>,
    who: AuthMember,
    QueryParam(q): QueryParam<SyncQuery>,
) -> Result<Json<SyncPage>, AppError> {
    if q.cursor < 0 {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "The cursor must not be negative.",
        ));
    }
    let now = s.clock.now();
    sync_allowed(&s, who.member_id, now)?;
    let reads = s
        .store
        .sync_reads(who.member_id, who.device_id, q.cursor, PAGE + 1, now)
        .await?;
    let profile = reads
        .profile
        .ok_or_else(|| AppError::new(ErrorCode::SessionEnded, "This account no longer exists."))?;
    let device = reads.device.filter(|d| !d.revoked).ok_or_else(|| {
        AppError::new(
            ErrorCode::SessionEnded,
            "This device was revoked; sign in again.",
        )
    })?;
    let passport = match device.passport {
        Some(p) if !passport::needs_issue(Some(&p), &s.keys, now) => Some(p),
        _ => {
            let p = passport::issue_for(&profile, device.public_key, &s.keys, now);
            s.store.save_device_passport(who.device_id, &p, now).await?;
            tracing::info!(member_id = who.member_id, device_id = who.device_id, kid = %p.kid, "issued a passport credential");
            Some(p)
        }
    };
    let devices = reads
        .devices
        .into_iter()
        .map(|d| DeviceInfo {
            current: d.id == who.device_id,
            id: d.id,
            name: d.name,
            device_kid: d.device_kid,
            created_at: d.created_at,
        })
        .collect();
    let mut changes = reads.changes;
    let more = !crate::store::rules::last_page(changes.len(), PAGE + 1);
    changes.truncate(PAGE);
    let cursor = changes.last().map(|c| c.seq).unwrap_or(q.cursor);
    // once per sync, with its last page (read with it)
    let (stock_left, points_offer) = (reads.stock_left, reads.points_offer);
    Ok(Json(SyncPage {
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

#[utoipa::path(post, path = "/v1/reauth", tag = "session", security(("session" = [])),
    request_body = ReauthRequest,
    description = "The password again, for one large redemption: its `redeem` passes for 10 minutes.",
    responses((status = 204, description = "Accepted"), crate::openapi::Errors))]
pub(crate) async fn reauth(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    who: AuthMember,
    Body(req): Body<ReauthRequest>,
) -> Result<axum::http::StatusCode, AppError> {
    let now = s.clock.now();
    check_password_length(&req.password)?;
    let profile = s
        .store
        .profile(who.member_id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::SessionEnded, "Sign in again."))?;
    // guesses through a stolen session slow that session only, never the member's sign-in
    let key = format!("session:{}", &who.token_hash[..16]);
    if check_password(&s, &key, &profile.member_no, &req.password, addr, now)
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

/// The result for a change this server cannot read: an unknown kind (the app is newer), or a
/// known kind with arguments it cannot accept.
fn unreadable(id: uuid::Uuid, v: &serde_json::Value, e: &serde_json::Error) -> MutationResult {
    let known = v["op"]
        .as_str()
        .is_some_and(|op| MutationOp::KINDS.contains(&op));
    let (code, message) = if known {
        (
            ErrorCode::BadRequest,
            format!("This change cannot be read: {e}"),
        )
    } else {
        (
            ErrorCode::UnsupportedMutation,
            "This server does not know this kind of change.".to_string(),
        )
    };
    MutationResult {
        id,
        outcome: MutationOutcome::Rejected { code, message },
        replayed: false,
    }
}

#[utoipa::path(post, path = "/v1/sync/push", tag = "sync", security(("session" = [])),
    request_body = PushRequest,
    description = "The device's outbox: each change is applied exactly once under its id, and \
        answered on its own (a change this server does not know is `unsupported_mutation`, \
        the others still apply). An id used again with other contents is refused \
        (`idempotency_key_reused`). A check-in carries the scanned passport as proof.",
    responses((status = 200, description = "One result per change, in order", body = PushResponse), crate::openapi::Errors))]
pub(crate) async fn push(
    State(s): State<AppState>,
    who: AuthMember,
    headers: axum::http::HeaderMap,
    Body(req): Body<PushRequest<serde_json::Value>>,
) -> Result<Json<PushResponse>, AppError> {
    // a refusal is said in a code the app reads (an older app fails on one it does not know)
    let app = app_version(&headers).and_then(unionpass_core::api::parse_version);
    if req.mutations.len() > MAX_PUSH {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            format!("Send at most {MAX_PUSH} changes at once."),
        ));
    }
    let now = s.clock.now();
    sync_allowed(&s, who.member_id, now)?;
    // every change's id first: a push refused whole is refused before any of it is applied
    let ids = req
        .mutations
        .iter()
        .map(|raw| {
            raw.get("id")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<uuid::Uuid>().ok())
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            AppError::new(ErrorCode::BadRequest, "Every change needs its id (a UUID).")
        })?;
    let mut results = Vec::with_capacity(req.mutations.len());
    for (raw, id) in req.mutations.into_iter().zip(ids) {
        let m: Mutation = match serde_json::from_value(raw.clone()) {
            Ok(m) => m,
            Err(e) => {
                results.push(unreadable(id, &raw, &e));
                continue;
            }
        };
        // what the device says it did is proved here first
        let proven = Proven {
            checkin: match &m.op {
                MutationOp::CheckIn(c) => Some(passport::prove_checkin(c, &s.keys)),
                _ => None,
            },
        };
        let result = s
            .store
            .apply_mutation(who.member_id, &m, &proven, now)
            .await?;
        if let (MutationOp::CheckIn(c), MutationOutcome::Rejected { code, .. }) =
            (&m.op, &result.outcome)
        {
            tracing::warn!(target: "security", event = "check_in_refused", staff = who.member_id, event_id = c.event_id, %code, "an uploaded check-in was refused");
        }
        results.push(result);
    }
    for r in &mut results {
        if let MutationOutcome::Rejected { code, .. } = &mut r.outcome {
            *code = code.for_app(app.as_ref());
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
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ScannerQuery {
    /// The validators of the parts this scanner holds (`part.digest`, comma separated, from the
    /// last answer's `digests`); those parts are left out if unchanged. Unknown or malformed
    /// entries are ignored (that part is sent whole).
    #[serde(default)]
    #[param(max_length = 512)]
    have: String,
}

#[utoipa::path(get, path = "/v1/scanner", tag = "scanner", security(("session" = [])),
    params(ScannerQuery),
    responses((status = 200, description = "What a staff scanner needs offline; the parts it \
        already holds unchanged are left out and named in `unchanged`", body = ScannerBundle),
        crate::openapi::Errors))]
pub(crate) async fn scanner(
    State(s): State<AppState>,
    who: AuthMember,
    QueryParam(q): QueryParam<ScannerQuery>,
) -> Result<Json<ScannerBundle>, AppError> {
    let now = s.clock.now();
    if q.have.len() > 512 {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "`have` is at most 512 characters.",
        ));
    }
    sync_allowed(&s, who.member_id, now)?;
    let have = unionpass_core::checkin::parse_have(&q.have);
    let profile =
        s.store.profile(who.member_id).await?.ok_or_else(|| {
            AppError::new(ErrorCode::SessionEnded, "This account no longer exists.")
        })?;
    if profile.role != Role::Staff {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Only staff accounts can scan passports.",
        ));
    }
    let data = s.store.scanner_data(who.member_id, now).await?;
    Ok(Json(
        ScannerBundle {
            generated_at: now,
            keys: s.keys.public(),
            revoked_devices: data.revoked_devices,
            revoked_members: data.revoked_members,
            events: data.events,
            checkins: data.checkins,
            conflicts: data.conflicts,
            unions: data.unions,
            roster: data.roster,
            signup_events: data.signup_events,
            signups: data.signups,
            digests: Default::default(),
            unchanged: vec![],
        }
        .for_scanner(&have),
    ))
}

#[utoipa::path(get, path = "/v1/campaigns", tag = "grab", security(("session" = [])),
    responses((status = 200, description = "Every campaign", body = Vec<Campaign>), crate::openapi::Errors))]
pub(crate) async fn campaigns(
    State(s): State<AppState>,
    _who: AuthMember,
) -> Result<Json<Vec<Campaign>>, AppError> {
    Ok(Json(s.store.campaigns().await?))
}

#[utoipa::path(get, path = "/v1/activities", tag = "activities", security(("session" = [])),
    description = "Every activity, soonest first, with its seats taken and sign-ups waiting now \
        (members receive the activities by sync; the counts change with every sign-up), the \
        asking member's place on each waitlist they are on, and on popular activities until when \
        the no-show rule keeps them from signing up.",
    responses((status = 200, description = "Every activity with its live counts", body = Vec<ActivityLive>), crate::openapi::Errors))]
pub(crate) async fn activities(
    State(s): State<AppState>,
    who: AuthMember,
) -> Result<Json<Vec<ActivityLive>>, AppError> {
    let now = s.clock.now();
    let mut all = s.store.activities().await?;
    let places: std::collections::HashMap<i64, i64> = s
        .store
        .waitlist_places(who.member_id)
        .await?
        .into_iter()
        .collect();
    // the member's misses only where the rule bans and something is popular (a read fewer for
    // every member fetching the counts)
    let popular = |l: &ActivityLive| l.activity.signup.as_ref().is_some_and(|r| r.popular);
    let banned_until = if s.no_show.misses > 0 && all.iter().any(popular) {
        let lookback = crate::store::rules::ban_lookback(&s.no_show);
        let missed = s.store.missed_ends(who.member_id, now, lookback).await?;
        unionpass_core::activity::no_show_ban(&s.no_show, &missed, now)
    } else {
        None
    };
    for live in &mut all {
        live.my_position = places.get(&live.activity.id).copied();
        live.my_ban_until = banned_until.filter(|_| popular(live));
    }
    Ok(Json(all))
}

/// A race request judged with a session that had ended by the time its grant was written.
fn session_ended() -> AppError {
    AppError::new(
        ErrorCode::SessionEnded,
        "This session has ended (signed out, revoked, expired or suspended); sign in again.",
    )
}

/// The writer's queue is full: the request was not taken.
fn busy() -> AppError {
    AppError::new(
        ErrorCode::Unavailable,
        "Very many members are pressing at this moment; your request was not taken. Try again in a second.",
    )
    .retry_after(chrono::Duration::seconds(1))
}

/// The answer to a store failure of the activity routes.
fn activity_error(e: StoreError) -> AppError {
    match e {
        StoreError::NoActivity(_) => AppError::new(ErrorCode::NotFound, "No such activity."),
        StoreError::KeyReused(_) => AppError::new(
            ErrorCode::IdempotencyKeyReused,
            "This sign-up key was first used for another request; make a new key.",
        ),
        StoreError::Refused(code) => AppError::new(
            code,
            "This activity takes no sign-up: eligible members just come.",
        ),
        StoreError::SessionEnded => session_ended(),
        StoreError::Busy => busy(),
        e => e.into(),
    }
}

#[utoipa::path(post, path = "/v1/activities/{id}/signup", tag = "activities", security(("session" = [])),
    params(("id" = i64, Path, description = "The activity", example = 1)), request_body = SignupRequest,
    description = "Sign up, with companions. Judged in the order received: seats, else the         waitlist, else refused with the reason (and, for a window not open or a no-show ban, until         when). Answered once the sign-up is durable. The key is the request's idempotency key: the         same key again answers the sign-up as it stands (`replayed`); with other contents, 409.",
    responses((status = 200, description = "Accepted (confirmed or waitlisted), or why not", body = SignupAnswer), crate::openapi::Errors))]
pub(crate) async fn sign_up(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    PathParam(id): PathParam<i64>,
    RaceMember(who): RaceMember,
    Body(req): Body<SignupRequest>,
) -> Result<Json<SignupAnswer>, AppError> {
    // read once the body is in: a client that holds its body back is judged (limits, the
    // window, the session) when it has sent it, not when it started
    let now = s.clock.now();
    // the same buckets as the grab: both are races at an opening instant
    if !s.grab_per_address.allow(&addr, now) || !s.grab_per_member.allow(&who.member_id, now) {
        return Err(AppError::new(
            ErrorCode::RateLimited,
            "Too many sign-up requests; wait a second and try again.",
        ));
    }
    s.store
        .sign_up(SignupJob {
            member_id: who.member_id,
            union_id: who.union_id,
            activity_id: id,
            key: req.key,
            companions: req.companions,
            now,
            no_show: s.no_show,
            session: Some(who.token_hash),
        })
        .await
        .map(Json)
        .map_err(activity_error)
}

#[utoipa::path(post, path = "/v1/activities/{id}/cancel", tag = "activities", security(("session" = [])),
    params(("id" = i64, Path, description = "The activity", example = 1)),
    description = "Cancel the member's sign-up before the activity's deadline; the seats go to         the waitlist in order. 404 when there is no live sign-up, 409 after the deadline.",
    responses((status = 200, description = "The cancelled sign-up", body = MySignup), crate::openapi::Errors))]
pub(crate) async fn cancel_signup(
    State(s): State<AppState>,
    PathParam(id): PathParam<i64>,
    who: AuthMember,
) -> Result<Json<MySignup>, AppError> {
    let now = s.clock.now();
    match s
        .store
        .cancel_signup(who.member_id, id, now)
        .await
        .map_err(activity_error)?
    {
        Ok(mine) => Ok(Json(mine)),
        Err(ErrorCode::CancelTooLate) => Err(AppError::new(
            ErrorCode::CancelTooLate,
            "The cancellation deadline has passed.",
        )),
        Err(code) => Err(AppError::new(
            code,
            "You have no sign-up for this activity.",
        )),
    }
}

#[utoipa::path(get, path = "/v1/polls/{id}/results", tag = "activities", security(("session" = [])),
    params(("id" = i64, Path, description = "The poll", example = 1)),
    description = "The count per option and the member's own vote; only for a member who voted \
        (403 before), so that the results do not sway the vote.",
    responses((status = 200, description = "The results", body = PollResults), crate::openapi::Errors))]
pub(crate) async fn poll_results(
    State(s): State<AppState>,
    PathParam(id): PathParam<i64>,
    who: AuthMember,
) -> Result<Json<PollResults>, AppError> {
    match s.store.poll_results(id, who.member_id).await? {
        None => Err(AppError::new(ErrorCode::NotFound, "No such poll.")),
        Some(r) if r.mine.is_none() => Err(AppError::new(
            ErrorCode::Forbidden,
            "The results show after you vote.",
        )),
        Some(r) => Ok(Json(r)),
    }
}

#[utoipa::path(post, path = "/v1/campaigns/{id}/grab", tag = "grab", security(("session" = [])),
    params(("id" = i64, Path, description = "The campaign", example = 1)), request_body = GrabRequest,
    description = "Grab one coupon. The key is the grab's idempotency key: the same key again \
        answers the first answer (`replayed`); on another campaign it is refused with 409.",
    responses((status = 200, description = "Granted, or why not", body = GrabResponse), crate::openapi::Errors))]
pub(crate) async fn grab(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    PathParam(id): PathParam<i64>,
    RaceMember(who): RaceMember,
    Body(req): Body<GrabRequest>,
) -> Result<Json<GrabResponse>, AppError> {
    // read once the body is in (as for the sign-up)
    let now = s.clock.now();
    if !s.grab_per_address.allow(&addr, now) || !s.grab_per_member.allow(&who.member_id, now) {
        return Err(AppError::new(
            ErrorCode::RateLimited,
            "Too many grab requests; wait a second and try again.",
        ));
    }
    match s
        .store
        .grab(GrabJob {
            member_id: who.member_id,
            union_id: who.union_id,
            campaign_id: id,
            key: req.key,
            now,
            session: Some(who.token_hash),
        })
        .await
    {
        Ok(answer) => Ok(Json(answer)),
        Err(StoreError::NoCampaign(_)) => {
            Err(AppError::new(ErrorCode::NotFound, "No such campaign."))
        }
        Err(StoreError::Duplicate(Taken::GrabKey(_))) => Err(AppError::new(
            ErrorCode::IdempotencyKeyReused,
            "This grab key is already used; make a new key.",
        )),
        Err(StoreError::KeyReused(_)) => Err(AppError::new(
            ErrorCode::IdempotencyKeyReused,
            "This grab key was first used for another campaign; make a new key.",
        )),
        Err(StoreError::SessionEnded) => Err(session_ended()),
        Err(StoreError::Busy) => Err(busy()),
        Err(e) => Err(e.into()),
    }
}
