//! One error type for every handler; it answers `{code, message}` and hides internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use unionpass_core::api::ApiError;
use unionpass_core::ErrorCode;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    Api { code: ErrorCode, message: String },
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
        }
    }
}

fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::InvalidInput | ErrorCode::UnsupportedMutation => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::InvalidCredentials | ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            AppError::Api { code, message } => (code, message),
            internal => {
                tracing::error!(error = %chain(&internal), "internal error");
                (
                    ErrorCode::Internal,
                    "The server failed to handle the request; try again later.".into(),
                )
            }
        };
        (status(code), Json(ApiError { code, message })).into_response()
    }
}
