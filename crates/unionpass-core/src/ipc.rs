//! The typed contract between the UI and the shell: one request struct per command, with its
//! name and the type of its answer, and the events the shell sends to the UI.
//!
//! The shell's `#[tauri::command]` for `C` takes one argument named [`ARG`] of type `C` and answers
//! `Result<C::Answer, CommandError>`; the UI calls `call::<C>(&req)`. Nothing about a command is
//! typed twice, and no command name is spelled anywhere else. The shell checks at compile time
//! that it registers exactly [`ALL`], each under its own name ([`same`], [`covers`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::activity::{MySignup, SignupAnswer};
use crate::api::EndedSessions;
use crate::campaign::GrabOutcome;
use crate::i18n::Lang;
use crate::redeem::{Quote, Target};
use crate::view::{
    ActivitiesView, Calendar, CouponDetail, CouponView, KeptPassport, LivePassport, PointsView,
    ScanOutcome, ScannerView, Snapshot, WalletView,
};
use crate::wallet::WalletFilter;

/// A command the UI can invoke.
pub trait Command: Serialize + DeserializeOwned {
    /// Its name on the IPC bridge (the shell's function has this name).
    const NAME: &'static str;
    /// What it answers when it succeeds.
    type Answer: Serialize + DeserializeOwned;
}

/// What command `C` answers.
pub type Answer<C> = <C as Command>::Answer;

/// The name of the one argument every command takes.
pub const ARG: &str = "req";

/// An event the shell emits to the UI.
pub trait Event {
    const NAME: &'static str;
    type Payload: Serialize + DeserializeOwned;
}

/// Something in the local store changed (a sync started or ended, a reminder fired): ask for a
/// fresh snapshot.
pub struct StateChanged;
impl Event for StateChanged {
    const NAME: &'static str = "state-changed";
    type Payload = ();
}

/// A reminder's notification was clicked: show this campaign.
pub struct OpenCampaign;
impl Event for OpenCampaign {
    const NAME: &'static str = "open-campaign";
    type Payload = i64;
}

/// A sign-up's notification (promoted from the waitlist) was clicked: show the activities.
pub struct OpenActivity;
impl Event for OpenActivity {
    const NAME: &'static str = "open-activity";
    type Payload = i64;
}

macro_rules! commands {
    ($( $(#[$doc:meta])* $ty:ident = $name:literal -> $answer:ty ;)*) => {
        $(
            impl Command for $ty {
                const NAME: &'static str = $name;
                type Answer = $answer;
            }
        )*
        /// Every command's name.
        pub const ALL: &[&str] = &[$($name),*];
    };
}

commands! {
    GetSnapshot = "snapshot" -> Snapshot;
    Login = "login" -> Snapshot;
    Logout = "logout" -> Snapshot;
    SyncNow = "sync_now" -> Snapshot;
    SetLanguage = "set_language" -> Snapshot;
    UiReady = "ui_ready" -> ();
    LogUiPanic = "log_ui_panic" -> ();
    GetLivePassport = "live_passport" -> LivePassport;
    GetKeptPassport = "kept_passport" -> Option<KeptPassport>;
    RevokeDevice = "revoke_device" -> Snapshot;
    GetScannerView = "scanner_view" -> ScannerView;
    SetTrustMaxAge = "set_trust_max_age" -> ScannerView;
    ScanText = "scan_text" -> ScanOutcome;
    ScanImage = "scan_image" -> ScanOutcome;
    ScanFrame = "scan_frame" -> Option<ScanOutcome>;
    LetIn = "let_in" -> ScanOutcome;
    GetWallet = "wallet" -> WalletView;
    GetCoupon = "coupon" -> CouponDetail;
    UseCoupon = "use_coupon" -> CouponView;
    GetCalendar = "calendar" -> Calendar;
    Grab = "grab" -> GrabOutcome;
    MeasureClock = "measure_clock" -> Calendar;
    SetReminder = "set_reminder" -> Calendar;
    ClearReminder = "clear_reminder" -> Calendar;
    DismissNotices = "dismiss_notices" -> Snapshot;
    RejectionsSeen = "rejections_seen" -> Snapshot;
    GetAutostart = "autostart" -> bool;
    SetAutostart = "set_autostart" -> bool;
    InstallUpdate = "install_update" -> Option<String>;
    GetAppInfo = "app_info" -> AppInfo;
    GetPoints = "points" -> PointsView;
    QuoteRedemption = "quote_redemption" -> Quote;
    Redeem = "redeem" -> Redeemed;
    SignOutEverywhere = "sign_out_everywhere" -> Snapshot;
    GetActivities = "activities" -> ActivitiesView;
    RefreshActivities = "refresh_activities" -> ActivitiesView;
    SignUp = "sign_up" -> SignupAnswer;
    CancelSignup = "cancel_signup" -> MySignup;
    GiveFeedback = "give_feedback" -> ActivitiesView;
    CastVote = "vote" -> ActivitiesView;
    ExportIcs = "export_ics" -> IcsSaved;
    SetOpeningReminder = "set_opening_reminder" -> ActivitiesView;
    ChangePassword = "change_password" -> EndedSessions;
    ResetPassword = "reset_password" -> Snapshot;
}

/// Everything the screens show, from the local store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetSnapshot {}

/// Sign in; the first sync follows. A failed first sync is not an error (the snapshot says it).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Login {
    pub server_url: String,
    pub member_no: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("server_url", &self.server_url)
            .field("member_no", &self.member_no)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Sign out: the server is told (best effort), the token, the key and the member's data go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Logout {}

/// Sync now and answer the new state; a failed sync is not an error (the snapshot says it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncNow {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetLanguage {
    pub language: Lang,
}

/// A milestone the UI reached (the passport QR is on screen; the wallet's rows, with timings),
/// for the logs and the benches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UiReady {
    pub what: String,
}

/// The UI panicked (a bug): its message, for the app's log file. The shell keeps at most
/// [`LogUiPanic::MAX`] bytes of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogUiPanic {
    pub message: String,
}

impl LogUiPanic {
    pub const MAX: usize = 4096;
}

/// The passport QR for the current 30-second step, signed with this device's key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetLivePassport {}

/// The passport kept in a local store this version cannot open (written by a newer version):
/// whose it is and until when; `None` when there is none it can read. Its QR is
/// [`GetLivePassport`], which in that state answers from the kept passport.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetKeptPassport {}

/// Queue the revocation of one of the member's other devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RevokeDevice {
    pub device_id: i64,
}

/// Scanner mode for `event_id` (or the last chosen event).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetScannerView {
    pub event_id: Option<i64>,
}

/// How old the trust list may be before the scanner warns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetTrustMaxAge {
    pub days: i64,
}

/// A code typed, pasted or sent by a hardware scanner acting as a keyboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanText {
    pub event_id: i64,
    pub text: String,
}

/// Let in by hand a member the door list refused (no place on it, or still waiting), after staff
/// checked the place on the member's phone: the refused scan's code and time, as
/// [`ScanOutcome::by_hand_code`] and [`ScanOutcome::at`] gave them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LetIn {
    pub event_id: i64,
    pub text: String,
    pub scanned_at: chrono::DateTime<chrono::Utc>,
}

/// An image file (PNG or JPEG), base64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanImage {
    pub event_id: i64,
    pub data: String,
}

/// A grey-scale camera frame, one byte per pixel, `width` × `height`; answers `None` when it
/// holds no QR. The pixels travel as the raw IPC body (no JSON, no base64: a frame is 300 KB
/// every 400 ms); this request itself travels as JSON in the [`RAW_REQ_HEADER`] header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanFrame {
    pub event_id: i64,
    pub width: usize,
    pub height: usize,
}

/// For a command whose payload is raw bytes (the IPC body): the header carrying its request.
pub const RAW_REQ_HEADER: &str = "x-unionpass-req";

/// The wallet: expiring soon, then up to `limit` coupons matching `filter`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetWallet {
    pub filter: WalletFilter,
    pub limit: i64,
}

/// One coupon with the QR of its usage code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetCoupon {
    pub id: i64,
}

/// Mark a coupon used (offline works; sent with the next sync).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UseCoupon {
    pub id: i64,
}

/// The grab calendar from the local store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetCalendar {}

/// Grab a coupon: one request whose key is stored first, so a retry cannot grant twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grab {
    pub campaign_id: i64,
}

/// Measure the offset from the server clock now; answers the calendar with it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasureClock {}

/// Set (or change) the reminder for a campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetReminder {
    pub campaign_id: i64,
    pub lead_minutes: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClearReminder {
    pub campaign_id: i64,
}

/// The member read these reminder notices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DismissNotices {
    pub ids: Vec<i64>,
}

/// The member read these refused changes (`Snapshot::rejections`): stop counting them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectionsSeen {
    pub ids: Vec<uuid::Uuid>,
}

/// Whether the app starts at login (in the tray, window hidden).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetAutostart {}

/// Ask the union server for a newer signed package of this copy's kind (where
/// `Snapshot::update_installable`), download it, check its signature against the union's
/// release key, install it and restart. Answers the version installed (the app restarts into it
/// in a moment), or `None` when the server has nothing newer for this copy; failures are codes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstallUpdate {}

/// Where an activity's calendar file was written: the Downloads folder, or the home folder
/// where there is none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IcsSaved {
    pub path: String,
    pub in_downloads: bool,
}

/// This copy of the app, for the screen shown when the local store could not be opened (no
/// snapshot then): its version, and whether it can install a newer one itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetAppInfo {}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppInfo {
    pub version: String,
    /// As `Snapshot::update_installable`.
    pub installable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetAutostart {
    pub enabled: bool,
}

/// The points screen, from the local store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetPoints {}

/// Check a redemption by the synced offer and ledger: its price, and whether it needs the
/// password again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuoteRedemption {
    pub target: Target,
}

/// Queue a redemption at the price the member saw (offline works). `password` only for one that
/// needs it: it is sent once to the server and never kept.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Redeem {
    pub target: Target,
    pub points: i64,
    pub password: Option<String>,
}

/// The activities screen from the store (offline works).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetActivities {}

/// Fetch the live seat counts (online), then the activities screen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshActivities {}

/// Sign up for an activity with `companions`; the key is kept before the request leaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignUp {
    pub activity_id: i64,
    pub companions: i64,
}

/// Rate an activity the member attended, with an optional comment (offline works).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GiveFeedback {
    pub activity_id: i64,
    pub rating: i64,
    pub comment: String,
}

/// Vote in a needs poll (offline works; changeable until it closes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CastVote {
    pub poll_id: i64,
    pub option: i64,
}

/// Save the activity as an `.ics` file in the Downloads folder; answers the file's path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportIcs {
    pub activity_id: i64,
}

/// "Remind me before sign-up opens" on or off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetOpeningReminder {
    pub activity_id: i64,
    pub on: bool,
}

/// Cancel the member's sign-up (online).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelSignup {
    pub activity_id: i64,
}

/// A redemption made: its id (the screen follows its state by it) and the points screen after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Redeemed {
    pub id: uuid::Uuid,
    pub view: PointsView,
}

impl std::fmt::Debug for Redeem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redeem")
            .field("target", &self.target)
            .field("points", &self.points)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Sign out everywhere (online): every session of the member ends, this one too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SignOutEverywhere {}

/// A new password, given the current one (online); the member's other sessions end.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePassword { <redacted> }")
    }
}

/// A forgotten password: a new one set with the one-time code union staff gave the member
/// (online), then signed in with it, as [`Login`] does.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetPassword {
    pub server_url: String,
    pub member_no: String,
    pub code: String,
    pub new_password: String,
}

impl std::fmt::Debug for ResetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetPassword")
            .field("server_url", &self.server_url)
            .field("member_no", &self.member_no)
            .finish_non_exhaustive()
    }
}

/// Whether two names are the same (usable in `const` checks).
pub const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `registered` holds every command of [`ALL`] and nothing else (usable in `const`).
pub const fn covers(registered: &[&str]) -> bool {
    if registered.len() != ALL.len() {
        return false;
    }
    let mut i = 0;
    while i < ALL.len() {
        let mut found = false;
        let mut j = 0;
        while j < registered.len() {
            if same(ALL[i], registered[j]) {
                found = true;
            }
            j += 1;
        }
        if !found {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = ALL.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(covers(ALL));
        assert!(!covers(&ALL[1..]), "one left out");
        // one name misspelt, with the same length: only the letters can tell
        let mut misspelt = ALL.to_vec();
        let i = ALL.iter().position(|n| *n == "login").unwrap();
        misspelt[i] = "logon";
        assert!(!covers(&misspelt));
        assert!(same(Login::NAME, "login"));
        assert!(!same("login", "logon") && !same("login", "logout"));
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let l = Login {
            server_url: "https://u.example".into(),
            member_no: "M1".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{l:?}").contains("hunter2"));
        let r = Redeem {
            target: Target::Catalog { item_id: 1 },
            points: 10,
            password: Some("hunter2".into()),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
        let reset = ResetPassword {
            server_url: "https://u.example".into(),
            member_no: "M1".into(),
            code: "482719305521".into(),
            new_password: "hunter2!".into(),
        };
        let shown = format!("{reset:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("4827") && shown.contains("M1"));
    }

    #[test]
    fn a_request_without_fields_is_an_object() {
        // the bridge passes arguments as a JSON object; `null` would not reach the shell
        assert_eq!(
            serde_json::to_value(GetSnapshot {}).unwrap(),
            serde_json::json!({})
        );
    }
}
