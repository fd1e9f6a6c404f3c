//! What the Tauri shell hands to the UI: plain data, serialized over IPC, shared by both sides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::Profile;
use crate::error::ErrorCode;
use crate::i18n::Lang;

/// Everything the screens show, read from the local store in one go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub logged_in: bool,
    pub language: Lang,
    /// The server this device talks to (prefills the login form).
    pub server_url: Option<String>,
    pub profile: Option<Profile>,
    pub passport: Option<PassportView>,
    pub sync: SyncState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassportView {
    pub credential: String,
    pub qr_svg: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub expired: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    pub syncing: bool,
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Set when the last attempt failed; `Offline` means the server was not reachable.
    pub last_error: Option<ErrorCode>,
    /// Mutations waiting in the outbox.
    pub pending: i64,
    /// Mutations the server refused, kept for the member to see.
    pub rejected: i64,
}

impl SyncState {
    pub fn offline(&self) -> bool {
        self.last_error == Some(ErrorCode::Offline)
    }
}

/// An error as the UI receives it from a command: a stable code, plus a detail for logs only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    pub code: ErrorCode,
    pub detail: String,
}
