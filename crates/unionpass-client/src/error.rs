use unionpass_core::ErrorCode;

/// Everything that can go wrong on the device. [`ClientError::code`] gives the stable code the UI
/// shows words for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server: {0}")]
    Offline(String),
    #[error("the server answered {status} {code}: {message}")]
    Server {
        status: u16,
        code: ErrorCode,
        message: String,
        /// How long the server asked us to wait (`Retry-After`), if it said.
        retry_after: Option<std::time::Duration>,
    },
    #[error("the server's answer could not be understood: {0}")]
    BadResponse(String),
    #[error("the server address is not a valid http(s) URL")]
    InvalidServerUrl,
    #[error(
        "the server address is http:// to another computer; the password would travel in clear"
    )]
    InsecureServerUrl,
    #[error("no member is signed in on this device")]
    NotLoggedIn,
    #[error("the OS keyring is unavailable: {0}")]
    Keyring(String),
    /// This platform has no secure store the app is built with (see `secrets::SECURE_STORE`).
    #[error("this device has no secure store for the sign-in")]
    NoSecureStore,
    #[error("local database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Migrate(#[from] unionpass_sqlite::MigrateError),
    #[error("local files: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    #[error("this device has no enrolled passport key; sign in again")]
    DeviceNotEnrolled,
    /// A rule refused the action on the device (e.g. an expired coupon); the code says which.
    #[error("refused: {0}")]
    Refused(ErrorCode),
}

fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

impl ClientError {
    /// How long the server asked the app to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ClientError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Offline(_) => ErrorCode::Offline,
            ClientError::Server { code, .. } => *code,
            ClientError::BadResponse(_) => ErrorCode::BadResponse,
            ClientError::InvalidServerUrl => ErrorCode::InvalidServerUrl,
            ClientError::InsecureServerUrl => ErrorCode::InsecureServerUrl,
            ClientError::NotLoggedIn => ErrorCode::NotLoggedIn,
            ClientError::Keyring(_) => ErrorCode::KeyringUnavailable,
            ClientError::NoSecureStore => ErrorCode::NoSecureStore,
            ClientError::Db(e) if is_disk_full(e) => ErrorCode::StorageFull,
            ClientError::Db(_) => ErrorCode::Storage,
            ClientError::Migrate(unionpass_sqlite::MigrateError::TooNew { .. }) => {
                ErrorCode::DatabaseTooNew
            }
            ClientError::Migrate(_) => ErrorCode::Storage,
            ClientError::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                ErrorCode::StorageFull
            }
            ClientError::Io(_) => ErrorCode::Storage,
            ClientError::InvalidInput(_) => ErrorCode::InvalidInput,
            ClientError::DeviceNotEnrolled => ErrorCode::DeviceNotEnrolled,
            ClientError::Refused(code) => *code,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;
