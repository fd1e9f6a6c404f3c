//! The Tauri shell: a translator. It opens the client library, registers the plugins, and turns
//! IPC calls into `unionpass-client` calls (`commands`), the background tasks' requests into
//! native notifications, tray and window actions (`native`). Policy (when to sync, following
//! redemptions, the reminder scheduler, which errors are benign) lives in
//! `unionpass_client::background`, tested without a window.

mod commands;
mod logging;
mod native;
#[cfg(target_os = "linux")]
mod painting;
mod update;

use std::path::PathBuf;
use std::sync::Arc;

use tauri::{Emitter, Manager};
use unionpass_client::background::{Background, DeviceClock, Host, Notification};
use unionpass_client::Client;
use unionpass_core::ipc::{Event, StateChanged};
use unionpass_core::ErrorCode;

/// Whether closing the window keeps the app running (there is a tray icon to come back from).
struct KeepRunning(bool);

pub struct Shell {
    /// `Err` when the local store cannot be opened (e.g. written by a newer app): the UI shows it.
    background: Result<Arc<Background>, ErrorCode>,
    /// When a newer app wrote that store: its passport, read once and read-only on the first
    /// `GetKeptPassport` (not while the window opens: the keyring may ask to be unlocked), so the
    /// member can still get in at a door; `GetLivePassport` then answers from it.
    kept: std::sync::OnceLock<Option<unionpass_client::kept::KeptPassport>>,
    data_dir: PathBuf,
    /// Prefills the login form: `UNIONPASS_SERVER`, else the local demo server.
    default_server: String,
}

impl Shell {
    fn background(&self) -> Result<&Arc<Background>, commands::CmdError> {
        self.background
            .as_ref()
            .map_err(|code| commands::CmdError::code(*code))
    }

    fn client(&self) -> Result<&Arc<Client>, commands::CmdError> {
        Ok(self.background()?.client())
    }
}

/// What the background tasks ask of the window and the desktop.
struct TauriHost(tauri::AppHandle);

impl Host for TauriHost {
    fn state_changed(&self) {
        let _ = self.0.emit(StateChanged::NAME, ());
    }

    fn notify(&self, n: &Notification) {
        native::notify(&self.0, n);
    }
}

fn data_dir(app: &tauri::App) -> PathBuf {
    match std::env::var_os("UNIONPASS_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => app
            .path()
            .app_data_dir()
            .unwrap_or_else(|_| PathBuf::from(".unionpass")),
    }
}

/// Run a background task on the shell's runtime.
fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(task: F) {
    tauri::async_runtime::spawn(task);
}

/// Registers exactly the commands of `unionpass_core::ipc`, each under its contract name
/// (checked at compile time).
macro_rules! handlers {
    ($($name:ident: $ty:ty),* $(,)?) => {{
        $(const _: () = assert!(
            unionpass_core::ipc::same(stringify!($name), <$ty as unionpass_core::ipc::Command>::NAME),
            concat!("command ", stringify!($name), " is registered under another name than its contract's")
        );)*
        const _: () = assert!(
            unionpass_core::ipc::covers(&[$(stringify!($name)),*]),
            "the shell must register every command of unionpass_core::ipc, and only those"
        );
        tauri::generate_handler![$(commands::$name),*]
    }};
}

/// One app per data directory. The desktop's single-instance guard is keyed by the app's
/// identifier; a data directory set by `UNIONPASS_DATA_DIR` (a second profile, the tests, the
/// demo) gets its own key, so two profiles can run side by side while a second launch on the
/// same data still finds the first.
fn instance_identifier(base: &str, data_dir: Option<&std::ffi::OsStr>) -> String {
    match data_dir {
        None => base.to_string(),
        Some(dir) => {
            // FNV-1a: stable across builds and runs (std's hasher is not promised to be)
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in dir.as_encoded_bytes() {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            format!("{base}.p{h:016x}")
        }
    }
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    use unionpass_core::ipc::*;
    // before anything starts a thread or GTK and WebKit read it: paint on the CPU, with no GPU
    // stack in the app's own process (`painting`). WebKit's hardware-acceleration setting,
    // applied once the window exists, comes too late (bench/RESULTS.md, startup, 2026-12-03).
    #[cfg(target_os = "linux")]
    painting::paint_on_the_cpu();
    let mut context = tauri::generate_context!();
    let identifier = instance_identifier(
        &context.config().identifier,
        std::env::var_os("UNIONPASS_DATA_DIR").as_deref(),
    );
    context.config_mut().identifier = identifier;
    let builder = tauri::Builder::default();
    // first: a second launch hands over to the running app (showing its window) and exits
    #[cfg(desktop)]
    let builder = builder.plugin(tauri_plugin_single_instance::init(|app, args, _cwd| {
        if args.iter().any(|a| a == native::HIDDEN_ARG) {
            return; // "start at login" while already running: stay in the tray
        }
        tracing::info!("launched again: showing the window");
        native::show_main(app);
    }));
    // installs a newer signed package (the endpoint is set per request: the member's server)
    #[cfg(desktop)]
    let builder = builder.plugin(tauri_plugin_updater::Builder::new().build());
    #[cfg(desktop)]
    let builder = builder.plugin(tauri_plugin_autostart::init(
        tauri_plugin_autostart::MacosLauncher::LaunchAgent,
        Some(vec![native::HIDDEN_ARG]),
    ));
    builder
        .setup(|app| {
            let dir = data_dir(app);
            logging::init(&dir.join("logs"));
            tracing::info!(version = env!("CARGO_PKG_VERSION"), data_dir = %dir.display(), "UnionPass starting");
            let clock: DeviceClock = Arc::new(chrono::Utc::now);
            let background = Client::open(&dir)
                .map(|client| {
                    Background::new(
                        Arc::new(client),
                        Arc::new(TauriHost(app.handle().clone())),
                        clock,
                    )
                })
                .map_err(|e| {
                    tracing::error!(error = %e, dir = %dir.display(), "cannot open the local store");
                    e.code()
                });
            let default_server =
                std::env::var("UNIONPASS_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".to_string());
            let lang = background
                .as_ref()
                .ok()
                .and_then(|b| b.client().language().ok())
                .unwrap_or_default();
            if let Ok(b) = &background {
                native::on_notification_click(app.handle());
                spawn(b.clone().run());
            }
            app.manage(Shell {
                background,
                kept: std::sync::OnceLock::new(),
                data_dir: dir,
                default_server,
            });
            native::configure_webview(app);
            // the tray keeps reminders running with the window closed; without a tray (no
            // status-notifier host) closing the window quits, as it would otherwise be lost
            match native::tray(app.handle(), lang) {
                Ok(_) => app.manage(KeepRunning(true)),
                Err(e) => {
                    tracing::warn!(error = %e, "no tray icon: closing the window quits");
                    app.manage(KeepRunning(false))
                }
            };
            if std::env::args().any(|a| a == native::HIDDEN_ARG) {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.hide();
                }
            }
            Ok(())
        })
        .plugin(tauri_plugin_notification::init())
        // closing the window hides it: the app stays in the tray so reminders still fire
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if window.app_handle().state::<KeepRunning>().0 {
                    api.prevent_close();
                    let _ = window.hide();
                    tracing::info!("window closed: still running in the tray");
                }
            }
        })
        // the scanner's camera: granted to our own page (the CSP keeps everything else out)
        .on_permission_request(|_, kind| match kind {
            tauri::webview::PermissionKind::Camera => tauri::webview::PermissionResponse::Allow,
            _ => tauri::webview::PermissionResponse::Default,
        })
        .invoke_handler(handlers![
            snapshot: GetSnapshot,
            login: Login,
            logout: Logout,
            sync_now: SyncNow,
            set_language: SetLanguage,
            ui_ready: UiReady,
            log_ui_panic: LogUiPanic,
            live_passport: GetLivePassport,
            kept_passport: GetKeptPassport,
            revoke_device: RevokeDevice,
            scanner_view: GetScannerView,
            set_trust_max_age: SetTrustMaxAge,
            scan_text: ScanText,
            scan_image: ScanImage,
            scan_frame: ScanFrame,
            let_in: LetIn,
            wallet: GetWallet,
            coupon: GetCoupon,
            use_coupon: UseCoupon,
            calendar: GetCalendar,
            grab: Grab,
            measure_clock: MeasureClock,
            set_reminder: SetReminder,
            clear_reminder: ClearReminder,
            dismiss_notices: DismissNotices,
            rejections_seen: RejectionsSeen,
            autostart: GetAutostart,
            set_autostart: SetAutostart,
            install_update: InstallUpdate,
            app_info: GetAppInfo,
            points: GetPoints,
            quote_redemption: QuoteRedemption,
            redeem: Redeem,
            sign_out_everywhere: SignOutEverywhere,
            change_password: ChangePassword,
            reset_password: ResetPassword,
            activities: GetActivities,
            refresh_activities: RefreshActivities,
            sign_up: SignUp,
            cancel_signup: CancelSignup,
            give_feedback: GiveFeedback,
            vote: CastVote,
            export_ics: ExportIcs,
            set_opening_reminder: SetOpeningReminder,
        ])
        .run(context)
        .expect("error while running the UnionPass window");
}

#[cfg(test)]
mod tests {
    use super::instance_identifier;

    #[test]
    fn each_data_directory_is_its_own_instance() {
        let base = "cn.unionpass.app";
        assert_eq!(instance_identifier(base, None), base);
        let a = instance_identifier(base, Some("/home/a/profile".as_ref()));
        let b = instance_identifier(base, Some("/home/b/profile".as_ref()));
        assert_ne!(a, b);
        assert_eq!(
            a,
            instance_identifier(base, Some("/home/a/profile".as_ref()))
        );
        // a valid D-Bus name element once dots become underscores: no leading digit
        assert!(a.starts_with("cn.unionpass.app.p") && a.len() == base.len() + 18);
    }
}
