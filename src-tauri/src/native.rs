//! The desktop around the window: native notifications for due reminders (a click shows the
//! window on that campaign), the tray icon that keeps the app and its reminders running with the
//! window closed, "start at login", and the camera switch of WebKitGTK. Translation only: when to
//! notify and what it says come from `unionpass_client::background`.
//!
//! The tray and "start at login" exist on desktops only (`cfg(desktop)`); on phones the
//! reminders are the notification plugin's scheduled notifications (see ARCHITECTURE.md).

#[cfg(desktop)]
use tauri::menu::{Menu, MenuItem};
#[cfg(desktop)]
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use unionpass_client::background::{Notification, Opens};
use unionpass_core::i18n::Msg;
use unionpass_core::ipc::{Event, OpenActivity, OpenCampaign};
use unionpass_core::{ErrorCode, Lang};

use crate::commands::CmdError;

/// The argument autostart launches the app with: start in the tray, window hidden.
pub const HIDDEN_ARG: &str = "--hidden";
const TRAY_ID: &str = "main";

/// Show the main window and bring it to the front.
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// Show a due reminder or a promotion natively, with the platform's alarm sound.
pub fn notify(app: &AppHandle, n: &Notification) {
    // one notification per campaign and per activity (negative ids), replaced if shown again
    let (id, key, value) = match n.opens {
        Opens::Campaign(c) => (i32::try_from(c).unwrap_or(i32::MAX), "campaign_id", c),
        Opens::Activity(a) => (
            i32::try_from(a).map(|x| -x).unwrap_or(i32::MIN),
            "activity_id",
            a,
        ),
    };
    // freedesktop sound naming on Linux; the platform's default sound elsewhere
    let sound = if cfg!(target_os = "linux") {
        "alarm-clock-elapsed"
    } else {
        "Default"
    };
    let shown = app
        .notification()
        .builder()
        .id(id)
        .title(&n.title)
        .body(&n.body)
        .sound(sound)
        .extra(key, value)
        .show();
    match shown {
        Ok(()) => tracing::info!(opens = ?n.opens, "notification shown"),
        Err(e) => tracing::error!(opens = ?n.opens, error = %e, "notification failed"),
    }
}

/// What a clicked notification opens.
fn clicked(a: &tauri_plugin_notification::ActionPerformed) -> Option<Opens> {
    let n = a.notification()?;
    let extra = n.extra();
    if let Some(id) = extra.get("activity_id").and_then(|v| v.as_i64()) {
        return Some(Opens::Activity(id));
    }
    let id = extra
        .get("campaign_id")
        .and_then(|v| v.as_i64())
        .unwrap_or(i64::from(n.id()));
    (id > 0).then_some(Opens::Campaign(id))
}

/// A click on a notification shows the window on its campaign or the activities.
pub fn on_notification_click(app: &AppHandle) {
    let handle = app.clone();
    let _ = app.notification().on_action(move |a| {
        if let Some(opens) = clicked(a) {
            tracing::info!(?opens, action = a.action_id(), "notification clicked");
            show_main(&handle);
            let _ = match opens {
                Opens::Campaign(id) => handle.emit(OpenCampaign::NAME, id),
                Opens::Activity(id) => handle.emit(OpenActivity::NAME, id),
            };
        }
    });
}

/// WebKitGTK, set up for this app: the camera on (`getUserMedia` ships switched off; the
/// scanner needs it), and a small footprint: one page that never navigates needs no
/// back-forward page cache, and a document viewer's cache model keeps WebKit's memory caches at
/// their smallest. (How WebKit paints is set in `run()`, before WebKit starts: `painting`.)
pub fn configure_webview(app: &tauri::App) {
    #[cfg(target_os = "linux")]
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.with_webview(|webview| {
            use webkit2gtk::{CacheModel, SettingsExt, WebContextExt, WebViewExt};
            let view = webview.inner();
            if let Some(settings) = view.settings() {
                settings.set_enable_media_stream(true);
                settings.set_enable_page_cache(false);
            }
            if let Some(context) = view.context() {
                context.set_cache_model(CacheModel::DocumentViewer);
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

/// Whether the app starts at login (in the tray, window hidden).
#[cfg(desktop)]
pub fn autostart(app: &AppHandle) -> Result<bool, CmdError> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch().is_enabled().map_err(|e| {
        tracing::warn!(error = %e, "autostart state unknown");
        CmdError::code(ErrorCode::AutostartUnavailable)
    })
}

#[cfg(desktop)]
pub fn set_autostart(app: &AppHandle, enabled: bool) -> Result<bool, CmdError> {
    use tauri_plugin_autostart::ManagerExt;
    let manager = app.autolaunch();
    let done = if enabled {
        manager.enable()
    } else {
        manager.disable()
    };
    done.map_err(|e| {
        tracing::warn!(error = %e, enabled, "autostart not changed");
        CmdError::code(ErrorCode::AutostartUnavailable)
    })?;
    autostart(app)
}

/// Phones start apps themselves: there is no "start at login".
#[cfg(mobile)]
pub fn autostart(_app: &AppHandle) -> Result<bool, CmdError> {
    Err(CmdError::code(ErrorCode::AutostartUnavailable))
}

#[cfg(mobile)]
pub fn set_autostart(_app: &AppHandle, _enabled: bool) -> Result<bool, CmdError> {
    Err(CmdError::code(ErrorCode::AutostartUnavailable))
}

#[cfg(desktop)]
fn tray_menu<R: Runtime>(app: &AppHandle<R>, lang: Lang) -> tauri::Result<Menu<R>> {
    let open = MenuItem::with_id(app, "open", Msg::TrayOpen.text(lang), true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", Msg::TrayQuit.text(lang), true, None::<&str>)?;
    Menu::with_items(app, &[&open, &quit])
}

/// The tray icon with "open" and "quit". Closing the window hides it; the app (and its
/// reminders) keep running until "quit".
#[cfg(desktop)]
pub fn tray(app: &AppHandle, lang: Lang) -> tauri::Result<()> {
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .menu(&tray_menu(app, lang)?)
        .tooltip(Msg::TrayTooltip.text(lang))
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => show_main(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_main(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app).map(|_| ())
}

/// Phones have no tray: the system keeps (or ends) the app, and scheduled notifications fire
/// without it.
#[cfg(mobile)]
pub fn tray(_app: &AppHandle, _lang: Lang) -> tauri::Result<()> {
    Err(tauri::Error::Io(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no tray on phones",
    )))
}

/// The tray's words follow the member's language.
#[cfg(desktop)]
pub fn relabel_tray(app: &AppHandle, lang: Lang) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        if let Ok(menu) = tray_menu(app, lang) {
            let _ = tray.set_menu(Some(menu));
        }
        let _ = tray.set_tooltip(Some(Msg::TrayTooltip.text(lang)));
    }
}

#[cfg(mobile)]
pub fn relabel_tray(_app: &AppHandle, _lang: Lang) {}
