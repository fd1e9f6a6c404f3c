//! The machine-readable API: an OpenAPI 3.1 document generated from the handlers' annotations
//! (`#[utoipa::path]` on each handler in [`crate::http`]) and the wire types of `unionpass_core`
//! (their `openapi` feature), served at `GET /v1/openapi.json`. Nothing in it is written by hand
//! twice: a type or a route that changes changes the document. `cargo xtask test` fuzzes the
//! running server against it (schemathesis): no 5xx, no answer outside the document.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use unionpass_core::api::{ApiError, Mutation};
use unionpass_core::ErrorCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

/// The error answers every route may give: `{code, message}` with the status of its code
/// (`crate::error::status`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// `bad_request`, `invalid_input`, `weak_password`: the request cannot be used as sent (a
    /// body, path or query that does not read, a value out of range).
    #[response(status = 400)]
    BadRequest(ApiError),
    /// `unauthenticated` (no or unknown token), `session_ended` (signed out, expired, revoked:
    /// the app wipes the member's data), `invalid_credentials` (wrong member number or password).
    #[response(status = 401)]
    Unauthorized(ApiError),
    /// `forbidden`: the account may not do this (a suspended member, a member at the scanner).
    #[response(status = 403)]
    Forbidden(ApiError),
    /// `not_found`: no such endpoint or campaign.
    #[response(status = 404)]
    NotFound(ApiError),
    /// `method_not_allowed`: the endpoint exists, not with this method.
    #[response(status = 405)]
    MethodNotAllowed(ApiError),
    /// `idempotency_key_reused`: the key was first used for another request.
    #[response(status = 409)]
    Conflict(ApiError),
    /// `payload_too_large`: 16 KiB for most bodies, 1 MiB for a push.
    #[response(status = 413)]
    TooLarge(ApiError),
    /// `rate_limited`: too many attempts; come back after `Retry-After` seconds.
    #[response(status = 429, headers(("retry-after" = u64, description = "Seconds to wait")))]
    RateLimited(ApiError),
    /// `internal`: the server failed (logged with the request id); try again later.
    #[response(status = 500)]
    Internal(ApiError),
    /// `unavailable`: busy (passwords being checked, a request over 30 s); come back after
    /// `Retry-After` seconds.
    #[response(status = 503, headers(("retry-after" = u64, description = "Seconds to wait")))]
    Unavailable(ApiError),
}

/// The session token from `POST /v1/login`, as `Authorization: Bearer <token>`.
struct SessionAuth;

impl utoipa::Modify for SessionAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token `POST /v1/login` answered; a session ends when signed out, \
                         idle for 30 days, a year old, or its device is revoked.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "UnionPass union server",
        description = "The member service platform's API: sign-in, sync, the outbox, coupon \
            grabs, the scanner bundle. Every error is `{code, message}` with a stable `code` \
            (see `ErrorCode`); `Retry-After` comes with 429 and 503. Times are UTC (RFC 3339)."
    ),
    paths(
        crate::http::health,
        crate::http::time,
        crate::http::version,
        crate::http::update,
        crate::http::keys,
        crate::http::openapi_json,
        crate::http::login,
        crate::http::logout,
        crate::http::end_all_sessions,
        crate::http::change_password,
        crate::http::reset_password,
        crate::http::sync,
        crate::http::push,
        crate::http::campaigns,
        crate::http::grab,
        crate::http::activities,
        crate::http::sign_up,
        crate::http::cancel_signup,
        crate::http::poll_results,
        crate::http::scanner,
        crate::http::reauth,
    ),
    components(schemas(ErrorCode, ApiError, Mutation)),
    modifiers(&SessionAuth),
    tags(
        (name = "server", description = "What any client may ask"),
        (name = "session", description = "Signing in and out"),
        (name = "sync", description = "The member's data down, their changes up"),
        (name = "grab", description = "Coupon campaigns and the grab"),
        (name = "activities", description = "Activities: the sign-up race, the waitlist, cancelling"),
        (name = "scanner", description = "Staff devices checking passports at activities"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, made once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    })
}

/// `GET /v1/openapi.json`.
pub fn answer() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
