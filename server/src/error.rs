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
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError::Api {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        AppError::Internal(e.to_string())
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
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    ErrorCode::Internal,
                    "The server failed to handle the request; try again later.".into(),
                )
            }
        };
        (status(code), Json(ApiError { code, message })).into_response()
    }
}
