//! The Tauri shell: thin. Commands translate IPC calls into `unionpass-client` calls, read the
//! clock (the shell is the edge where `now` comes from), and map errors to stable codes.

mod commands;
mod logging;
mod reminders;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tauri::{Emitter, Manager};
use unionpass_client::Client;
use unionpass_core::ErrorCode;

/// How often the shell syncs in the background while running.
const SYNC_EVERY: Duration = Duration::from_secs(300);
/// The event the UI listens to; it then asks for a fresh snapshot.
pub const STATE_CHANGED: &str = "state-changed";

/// Whether closing the window keeps the app running (there is a tray icon to come back from).
struct KeepRunning(bool);

pub struct Shell {
    /// `Err` when the local store cannot be opened (e.g. written by a newer app): the UI shows it.
    client: Result<Arc<Client>, ErrorCode>,
    /// Prefills the login form: `UNIONPASS_SERVER`, else the local demo server.
    default_server: String,
    /// One sync at a time.
    sync_lock: tokio::sync::Mutex<()>,
}

impl Shell {
    fn client(&self) -> Result<&Arc<Client>, commands::CmdError> {
        self.client
            .as_ref()
            .map_err(|code| commands::CmdError::code(*code))
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

/// Sync now (unless one is running), telling the UI when it starts and ends.
pub async fn background_sync(app: tauri::AppHandle) {
    let shell = app.state::<Shell>();
    let Ok(client) = shell.client() else { return };
    let Ok(_guard) = shell.sync_lock.try_lock() else {
        return;
    };
    if !client.is_logged_in().unwrap_or(false) {
        return;
    }
    let client = client.clone();
    let _ = app.emit(STATE_CHANGED, ());
    let _ = client.sync(chrono::Utc::now()).await;
    // moved or cancelled campaigns: the scheduler re-plans
    reminders::wake(&app);
    // the grab button follows the server's clock: measure the offset while online
    if let Err(e) = client.measure_clock(chrono::Utc::now).await {
        tracing::debug!(code = %e.code(), "clock offset not measured");
    }
    let _ = app.emit(STATE_CHANGED, ());
}

/// After a redemption: sync every few seconds while one is queued or in progress, so the member
/// sees it held, then settled or refunded, without waiting for the periodic sync. Gives up after
/// two minutes (the periodic sync carries on).
pub async fn follow_redemptions(app: tauri::AppHandle) {
    for _ in 0..40 {
        background_sync(app.clone()).await;
        let shell = app.state::<Shell>();
        let Ok(client) = shell.client() else { return };
        if !client.has_open_redemptions().unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// WebKitGTK ships with `getUserMedia` switched off; the scanner's camera input needs it.
fn enable_camera(app: &tauri::App) {
    #[cfg(target_os = "linux")]
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.with_webview(|webview| {
            use webkit2gtk::{SettingsExt, WebViewExt};
            if let Some(settings) = webview.inner().settings() {
                settings.set_enable_media_stream(true);
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    tauri::Builder::default()
        .setup(|app| {
            let dir = data_dir(app);
            logging::init(&dir.join("logs"));
            tracing::info!(version = env!("CARGO_PKG_VERSION"), data_dir = %dir.display(), "UnionPass starting");
            let client = Client::open(&dir).map(Arc::new).map_err(|e| {
                tracing::error!(error = %e, dir = %dir.display(), "cannot open the local store");
                e.code()
            });
            let default_server =
                std::env::var("UNIONPASS_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".to_string());
            let lang = client
                .as_ref()
                .ok()
                .and_then(|c| c.language().ok())
                .unwrap_or_default();
            if let Ok(c) = &client {
                reminders::start(app.handle(), c.clone());
            }
            app.manage(Shell { client, default_server, sync_lock: tokio::sync::Mutex::new(()) });
            enable_camera(app);
            // the tray keeps reminders running with the window closed; without a tray (no
            // status-notifier host) closing the window quits, as it would otherwise be lost
            match reminders::tray(app.handle(), lang) {
                Ok(_) => app.manage(KeepRunning(true)),
                Err(e) => {
                    tracing::warn!(error = %e, "no tray icon: closing the window quits");
                    app.manage(KeepRunning(false))
                }
            };
            if std::env::args().any(|a| a == reminders::HIDDEN_ARG) {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.hide();
                }
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                loop {
                    background_sync(handle.clone()).await;
                    tokio::time::sleep(SYNC_EVERY).await;
                }
            });
            // redemptions left queued or in progress last time: follow them to the end (after
            // the start-up sync above)
            let open = app
                .state::<Shell>()
                .client()
                .is_ok_and(|c| c.has_open_redemptions().unwrap_or(false));
            if open {
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    follow_redemptions(handle).await;
                });
            }
            Ok(())
        })
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![reminders::HIDDEN_ARG]),
        ))
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
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::login,
            commands::logout,
            commands::sync_now,
            commands::set_language,
            commands::ui_ready,
            commands::live_passport,
            commands::revoke_device,
            commands::scanner_view,
            commands::set_trust_max_age,
            commands::scan_text,
            commands::scan_image,
            commands::scan_frame,
            commands::wallet,
            commands::coupon,
            commands::use_coupon,
            commands::calendar,
            commands::grab,
            commands::measure_clock,
            commands::set_reminder,
            commands::clear_reminder,
            commands::dismiss_notices,
            commands::autostart,
            commands::set_autostart,
            commands::points,
            commands::quote_redemption,
            commands::redeem,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"))
        .expect("error while running the UnionPass window");
}
