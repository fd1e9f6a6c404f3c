//! The reminder scheduler, the tray and the autostart option: what keeps reminders firing while
//! the window is closed.
//!
//! The scheduler only carries out `Client::reminder_tick` (the rules are pure, in
//! `unionpass_core::reminder`): it ticks at start (which re-arms every stored reminder and
//! reports the ones missed while the app was not running), at the plan's next wake-up, after
//! every sync and whenever the member changes a reminder. A tick uses the server's time (the
//! device clock corrected by the measured offset), since releases are server instants. It also
//! ticks at least every minute, so a device clock that jumps is noticed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tauri::menu::{Menu, MenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use unionpass_client::Client;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::reminder::Action;
use unionpass_core::time::Zone;
use unionpass_core::Lang;

use crate::STATE_CHANGED;

/// The event that asks the UI to show one campaign (payload: its id).
pub const OPEN_CAMPAIGN: &str = "open-campaign";
/// The longest the scheduler sleeps between ticks.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The argument autostart launches the app with: start in the tray, window hidden.
pub const HIDDEN_ARG: &str = "--hidden";
const TRAY_ID: &str = "main";

/// Wakes the scheduler early (a reminder changed, a sync brought moved campaigns).
#[derive(Default)]
pub struct Wake(tokio::sync::Notify);

pub fn wake(app: &AppHandle) {
    if let Some(w) = app.try_state::<Wake>() {
        w.0.notify_one();
    }
}

/// Show the main window and bring it to the front.
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// The notification for a reminder that came due: the campaign's name, its release in China
/// time and the minutes left; a click opens the campaign.
fn notify(app: &AppHandle, client: &Client, campaign_id: i64, server_now: DateTime<Utc>) {
    let lang = client.language().unwrap_or_default();
    let Ok(Some(c)) = client.campaign(campaign_id) else {
        return;
    };
    let minutes = ((c.release_at - server_now).num_seconds() + 59) / 60;
    let release = unionpass_core::time::format_clock(c.release_at, Zone::AsiaShanghai);
    let title = fill(Msg::NotifTitle.text(lang), &[("title", c.title(lang))]);
    let body = fill(
        Msg::NotifBody.text(lang),
        &[("release", &release), ("n", &minutes.max(0).to_string())],
    );
    // freedesktop sound naming on Linux; the platform's default sound elsewhere
    let sound = if cfg!(target_os = "linux") {
        "alarm-clock-elapsed"
    } else {
        "Default"
    };
    let shown = app
        .notification()
        .builder()
        .id(i32::try_from(campaign_id).unwrap_or(i32::MAX))
        .title(title)
        .body(body)
        .sound(sound)
        .extra("campaign_id", campaign_id)
        .show();
    match shown {
        Ok(()) => tracing::info!(campaign_id, "reminder notification shown"),
        Err(e) => tracing::error!(campaign_id, error = %e, "reminder notification failed"),
    }
}

/// The campaign a clicked notification belongs to.
fn clicked_campaign(a: &tauri_plugin_notification::ActionPerformed) -> Option<i64> {
    let n = a.notification()?;
    n.extra()
        .get("campaign_id")
        .and_then(|v| v.as_i64())
        .or(Some(i64::from(n.id())))
}

/// Start the scheduler (call once, after the client is managed).
pub fn start(app: &AppHandle, client: Arc<Client>) {
    app.manage(Wake::default());
    let handle = app.clone();
    let _ = app.notification().on_action(move |a| {
        if let Some(id) = clicked_campaign(a) {
            tracing::info!(campaign_id = id, action = a.action_id(), "reminder clicked");
            show_main(&handle);
            let _ = handle.emit(OPEN_CAMPAIGN, id);
        }
    });
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let device_now = Utc::now();
            let server_now = client.server_now(device_now).unwrap_or(device_now);
            let mut sleep = MAX_SLEEP;
            match client.reminder_tick(server_now) {
                Ok(plan) => {
                    for action in &plan.actions {
                        tracing::info!(?action, "reminder");
                        if let Action::Fire { campaign_id, .. } = action {
                            notify(&app, &client, *campaign_id, server_now);
                        }
                    }
                    if !plan.actions.is_empty() {
                        let _ = app.emit(STATE_CHANGED, ());
                    }
                    if let Some(at) = plan.wake_at {
                        sleep = (at - server_now)
                            .to_std()
                            .unwrap_or_default()
                            .min(MAX_SLEEP);
                    }
                }
                Err(e) => tracing::error!(code = %e.code(), error = %e, "reminder tick failed"),
            }
            let wake = app.state::<Wake>();
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = wake.0.notified() => {}
            }
        }
    });
}

fn tray_menu<R: Runtime>(app: &AppHandle<R>, lang: Lang) -> tauri::Result<Menu<R>> {
    let open = MenuItem::with_id(app, "open", Msg::TrayOpen.text(lang), true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", Msg::TrayQuit.text(lang), true, None::<&str>)?;
    Menu::with_items(app, &[&open, &quit])
}

/// The tray icon with "open" and "quit". Closing the window hides it; the app (and its
/// reminders) keep running until "quit".
pub fn tray(app: &AppHandle, lang: Lang) -> tauri::Result<TrayIcon> {
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
    builder.build(app)
}

/// The tray's words follow the member's language.
pub fn relabel_tray(app: &AppHandle, lang: Lang) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        if let Ok(menu) = tray_menu(app, lang) {
            let _ = tray.set_menu(Some(menu));
        }
        let _ = tray.set_tooltip(Some(Msg::TrayTooltip.text(lang)));
    }
}
