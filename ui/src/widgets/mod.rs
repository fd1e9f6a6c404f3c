//! Pieces shown on several screens.

mod copy;
mod joined;
mod lang_toggle;
mod live_qr;
mod new_password;
mod notices;
mod rejections;
mod sync_status;
mod update;

pub use copy::CopyButton;
pub use joined::Joined;
pub use lang_toggle::LangToggle;
pub use live_qr::LiveQr;
pub use new_password::NewPasswordFields;
pub use notices::Notices;
pub use rejections::Rejections;
pub use sync_status::{SyncProblem, SyncStatus};
pub use update::{UpdateBanner, UpdateWayOut, VersionCard};
