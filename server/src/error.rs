//! One error type for every handler; it answers `{code, message}` as JSON with the status that
//! goes with the code (and `Retry-After` when the member should come back later), and hides
//! internals. Extractor rejections (a bad body, path or query) are turned into it too, so no
//! answer is plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use unionpass_core::api::ApiError;
use unionpass_core::ErrorCode;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    Api {
        code: ErrorCode,
        message: String,
        /// Seconds after which trying again makes sense (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// A storage failure: logged with its sources, answered as `internal`.
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// A blocking task (password hashing) did not finish.
    #[error("a task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// An error and its sources, one after the other (`a: b: c`), for the logs.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError::Api {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client when to try again.
    pub fn retry_after(self, after: chrono::Duration) -> AppError {
        match self {
            AppError::Api { code, message, .. } => AppError::Api {
                code,
                message,
                retry_after: Some(after.num_seconds().max(1) as u64),
            },
            other => other,
        }
    }

    /// The stable code this error answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Api { code, .. } => *code,
            _ => ErrorCode::Internal,
        }
    }
}

/// The HTTP status for a code.
pub fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::InvalidInput | ErrorCode::WeakPassword => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::InvalidCredentials | ErrorCode::Unauthenticated | ErrorCode::SessionEnded => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::IdempotencyKeyReused
        | ErrorCode::CancelTooLate
        | ErrorCode::ActivityCancelled
        | ErrorCode::FeedbackLocked => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMutation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ClientTooOld => StatusCode::UPGRADE_REQUIRED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (code, message, retry_after) = match self {
            AppError::Api {
                code,
                message,
                retry_after,
            } => (code, message, retry_after),
            // every connection busy for longer than the pool waits: not a failure, a moment
            AppError::Store(e) if e.is_busy() => (
                ErrorCode::Unavailable,
                "The server is very busy at this moment; try again in a second.".into(),
                Some(1),
            ),
            internal => {
                tracing::error!(error = %chain(&internal), "internal error");
                (
                    ErrorCode::Internal,
                    "The server failed to handle the request; try again later.".into(),
                    None,
                )
            }
        };
        let mut resp = (status(code), Json(ApiError { code, message })).into_response();
        let retry_after = retry_after.or(match code {
            ErrorCode::RateLimited | ErrorCode::Unavailable => Some(1),
            _ => None,
        });
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<JsonRejection> for AppError {
    fn from(e: JsonRejection) -> AppError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::new(ErrorCode::PayloadTooLarge, "The request body is too large.");
        }
        AppError::new(
            ErrorCode::BadRequest,
            format!("The request body is not acceptable: {}", e.body_text()),
        )
    }
}

impl From<PathRejection> for AppError {
    fn from(e: PathRejection) -> AppError {
        AppError::new(
            ErrorCode::BadRequest,
            format!("The address is not acceptable: {}", e.body_text()),
        )
    }
}

impl From<QueryRejection> for AppError {
    fn from(e: QueryRejection) -> AppError {
        AppError::new(
            ErrorCode::BadRequest,
            format!("The query is not acceptable: {}", e.body_text()),
        )
    }
}

/// `Json<T>` whose rejections answer as [`AppError`] (JSON, with the right status).
///
/// A body sent as exactly `application/json` (what the app and most clients send) is read and
/// parsed directly; `axum::Json` only for anything else, and for a body that does not parse (so
/// its rejection, and the answer, are the same as before). `axum::Json` parses the media type and
/// tracks the path of each field as it goes: together about 2,000 instructions of a grab's 55,000
/// (callgrind; bench/RESULTS.md).
pub struct Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        let plain_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"));
        if !plain_json {
            let axum::Json(v) =
                <axum::Json<T> as axum::extract::FromRequest<S>>::from_request(req, state).await?;
            return Ok(Body(v));
        }
        let bytes = <axum::body::Bytes as axum::extract::FromRequest<S>>::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Body(v)),
            Err(_) => {
                let axum::Json(v) = axum::Json::<T>::from_bytes(&bytes)?;
                Ok(Body(v))
            }
        }
    }
}

/// `Path<T>` whose rejections answer as [`AppError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct PathParam<T>(pub T);

/// `Query<T>` whose rejections answer as [`AppError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct QueryParam<T>(pub T);
