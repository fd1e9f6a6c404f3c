//! The IPC commands. Each one reads `now`, calls the client library, and answers a fresh
//! [`Snapshot`] or a [`CmdError`] carrying a stable code (the UI never reads messages).

use serde::Serialize;
use tauri::{AppHandle, State};
use unionpass_client::{ClientError, Snapshot};
use unionpass_core::view::{CommandError, LivePassport, ScanOutcome, ScannerView};
use unionpass_core::{ErrorCode, Lang};

use crate::Shell;

/// A command's error as the UI receives it.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct CmdError(CommandError);

impl CmdError {
    pub fn code(code: ErrorCode) -> CmdError {
        CmdError(CommandError {
            code,
            detail: String::new(),
        })
    }
}

impl From<ClientError> for CmdError {
    fn from(e: ClientError) -> CmdError {
        tracing::warn!(code = %e.code(), error = %e, "command failed");
        CmdError(CommandError {
            code: e.code(),
            detail: e.to_string(),
        })
    }
}

type CmdResult<T> = Result<T, CmdError>;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn snapshot_of(shell: &Shell) -> CmdResult<Snapshot> {
    let mut snap = shell.client()?.snapshot(now())?;
    if snap.server_url.is_none() {
        snap.server_url = Some(shell.default_server.clone());
    }
    Ok(snap)
}

/// Everything the screens show, from the local store.
#[tauri::command(rename_all = "snake_case")]
pub fn snapshot(shell: State<'_, Shell>) -> CmdResult<Snapshot> {
    snapshot_of(&shell)
}

fn device_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    if host.is_empty() {
        "UnionPass".to_string()
    } else {
        format!("UnionPass @ {host}")
    }
}

#[tauri::command(rename_all = "snake_case")]
pub async fn login(
    shell: State<'_, Shell>,
    server_url: String,
    member_no: String,
    password: String,
) -> CmdResult<Snapshot> {
    let client = shell.client()?.clone();
    let _guard = shell.sync_lock.lock().await;
    match client
        .login(&server_url, &member_no, &password, &device_name(), now())
        .await
    {
        // signed in; a failed first sync shows in the snapshot's sync state
        Ok(_) => {}
        Err(e) if client.is_logged_in().unwrap_or(false) => {
            tracing::info!(code = %e.code(), "signed in, first sync failed");
        }
        Err(e) => return Err(e.into()),
    }
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn logout(shell: State<'_, Shell>) -> CmdResult<Snapshot> {
    let client = shell.client()?.clone();
    let _guard = shell.sync_lock.lock().await;
    client.logout().await?;
    snapshot_of(&shell)
}

/// Sync and answer the new state; a failed sync is not a command error (the snapshot says it).
#[tauri::command(rename_all = "snake_case")]
pub async fn sync_now(shell: State<'_, Shell>) -> CmdResult<Snapshot> {
    let client = shell.client()?.clone();
    {
        let _guard = shell.sync_lock.lock().await;
        if let Err(e) = client.sync(now()).await {
            if !matches!(
                e.code(),
                ErrorCode::Offline | ErrorCode::Unauthenticated | ErrorCode::NotLoggedIn
            ) && !e.code().is_transient()
            {
                return Err(e.into());
            }
        }
    }
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn set_language(
    app: AppHandle,
    shell: State<'_, Shell>,
    language: Lang,
) -> CmdResult<Snapshot> {
    shell.client()?.set_language(language, now())?;
    crate::reminders::relabel_tray(&app, language);
    tauri::async_runtime::spawn(crate::background_sync(app));
    snapshot_of(&shell)
}

/// The UI reports a milestone (the passport QR is on screen; the wallet's rows, with the time
/// they took). Logged at debug level; when `UNIONPASS_READY_FILE` is set, a line with the
/// wall-clock time in ms is appended there for the benches.
#[tauri::command(rename_all = "snake_case")]
pub fn ui_ready(what: String) {
    tracing::debug!(%what, "ui ready");
    if let Some(path) = std::env::var_os("UNIONPASS_READY_FILE") {
        use std::io::Write;
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        // one line per milestone, appended (the benches read them in order)
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{what} {ms}");
        }
    }
}

/// The passport QR for the current 30-second step, signed with this device's key.
#[tauri::command(rename_all = "snake_case")]
pub fn live_passport(shell: State<'_, Shell>) -> CmdResult<LivePassport> {
    Ok(shell.client()?.live_passport(now())?)
}

/// Queue the revocation of one of the member's devices and sync it right away if possible.
#[tauri::command(rename_all = "snake_case")]
pub fn revoke_device(
    app: AppHandle,
    shell: State<'_, Shell>,
    device_id: i64,
) -> CmdResult<Snapshot> {
    shell.client()?.revoke_device(device_id, now())?;
    tauri::async_runtime::spawn(crate::background_sync(app));
    snapshot_of(&shell)
}

/// Scanner mode: events, the trust list's age, and the check-in log of `event_id` (or the last
/// chosen event).
#[tauri::command(rename_all = "snake_case")]
pub fn scanner_view(shell: State<'_, Shell>, event_id: Option<i64>) -> CmdResult<ScannerView> {
    Ok(shell.client()?.scanner_view(event_id, now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_trust_max_age(shell: State<'_, Shell>, days: i64) -> CmdResult<ScannerView> {
    let client = shell.client()?;
    client.set_trust_max_age_days(days)?;
    Ok(client.scanner_view(None, now())?)
}

/// After a check-in, upload it at once when the network is there (the outbox keeps it if not).
fn upload_soon(app: AppHandle, outcome: &ScanOutcome) {
    if outcome.ok {
        tauri::async_runtime::spawn(crate::background_sync(app));
    }
}

/// A code typed, pasted or sent by a hardware scanner acting as a keyboard.
#[tauri::command(rename_all = "snake_case")]
pub fn scan_text(
    app: AppHandle,
    shell: State<'_, Shell>,
    event_id: i64,
    text: String,
) -> CmdResult<ScanOutcome> {
    let outcome = shell.client()?.scan_text(event_id, &text, now())?;
    upload_soon(app, &outcome);
    Ok(outcome)
}

fn base64_arg(data: &str) -> CmdResult<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| CmdError::code(ErrorCode::BadRequest))
}

/// An image file (PNG or JPEG), base64.
#[tauri::command(rename_all = "snake_case")]
pub fn scan_image(
    app: AppHandle,
    shell: State<'_, Shell>,
    event_id: i64,
    data: String,
) -> CmdResult<ScanOutcome> {
    let outcome = shell
        .client()?
        .scan_image(event_id, &base64_arg(&data)?, now())?;
    upload_soon(app, &outcome);
    Ok(outcome)
}

/// A grey-scale camera frame (one byte per pixel, base64); `None` when it holds no QR code.
#[tauri::command(rename_all = "snake_case")]
pub fn scan_frame(
    app: AppHandle,
    shell: State<'_, Shell>,
    event_id: i64,
    width: usize,
    height: usize,
    luma: String,
) -> CmdResult<Option<ScanOutcome>> {
    let outcome =
        shell
            .client()?
            .scan_frame(event_id, width, height, &base64_arg(&luma)?, now())?;
    if let Some(o) = &outcome {
        upload_soon(app, o);
    }
    Ok(outcome)
}

/// The wallet: expiring soon, then up to `limit` coupons matching `filter`, from the local store.
#[tauri::command(rename_all = "snake_case")]
pub fn wallet(
    shell: State<'_, Shell>,
    filter: unionpass_core::wallet::WalletFilter,
    limit: i64,
) -> CmdResult<unionpass_core::view::WalletView> {
    Ok(shell.client()?.wallet(&filter, limit, now())?)
}

/// One coupon with the QR of its usage code.
#[derive(Debug, Serialize)]
pub struct CouponDetail {
    pub view: unionpass_core::view::CouponView,
    pub qr_svg: String,
}

#[tauri::command(rename_all = "snake_case")]
pub fn coupon(shell: State<'_, Shell>, id: i64) -> CmdResult<CouponDetail> {
    let (view, qr_svg) = shell.client()?.coupon(id, now())?;
    Ok(CouponDetail { view, qr_svg })
}

/// Mark a coupon used; sent to the server right away when online, else with the next sync.
#[tauri::command(rename_all = "snake_case")]
pub fn use_coupon(
    app: AppHandle,
    shell: State<'_, Shell>,
    id: i64,
) -> CmdResult<unionpass_core::view::CouponView> {
    let view = shell.client()?.use_coupon(id, now())?;
    tauri::async_runtime::spawn(crate::background_sync(app));
    Ok(view)
}

/// The grab calendar from the local store.
#[tauri::command(rename_all = "snake_case")]
pub fn calendar(shell: State<'_, Shell>) -> CmdResult<unionpass_client::grab::Calendar> {
    Ok(shell.client()?.calendar(now())?)
}

/// Grab a coupon (one request; the key is stored first, so a retry cannot grant twice).
#[tauri::command(rename_all = "snake_case")]
pub async fn grab(
    app: AppHandle,
    shell: State<'_, Shell>,
    campaign_id: i64,
) -> CmdResult<unionpass_core::campaign::GrabOutcome> {
    let client = shell.client()?.clone();
    let outcome = client.grab(campaign_id, now()).await?;
    // the stock changed: refresh the calendar's figures
    tauri::async_runtime::spawn(crate::background_sync(app));
    Ok(outcome)
}

/// Measure the offset from the server clock now (the calendar asks when it opens); answers the
/// calendar with it. Offline, the stored offset stays.
#[tauri::command(rename_all = "snake_case")]
pub async fn measure_clock(shell: State<'_, Shell>) -> CmdResult<unionpass_client::grab::Calendar> {
    let client = shell.client()?.clone();
    if let Err(e) = client.measure_clock(chrono::Utc::now).await {
        tracing::debug!(code = %e.code(), "clock offset not measured");
    }
    Ok(client.calendar(now())?)
}

/// Set (or change) the reminder for a campaign; answers the calendar with it.
#[tauri::command(rename_all = "snake_case")]
pub fn set_reminder(
    app: AppHandle,
    shell: State<'_, Shell>,
    campaign_id: i64,
    lead_minutes: i64,
) -> CmdResult<unionpass_client::grab::Calendar> {
    let client = shell.client()?;
    client.set_reminder(campaign_id, lead_minutes, client.server_now(now())?)?;
    crate::reminders::wake(&app);
    Ok(client.calendar(now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn clear_reminder(
    app: AppHandle,
    shell: State<'_, Shell>,
    campaign_id: i64,
) -> CmdResult<unionpass_client::grab::Calendar> {
    let client = shell.client()?;
    client.clear_reminder(campaign_id)?;
    crate::reminders::wake(&app);
    Ok(client.calendar(now())?)
}

/// The member read these reminder notices.
#[tauri::command(rename_all = "snake_case")]
pub fn dismiss_notices(shell: State<'_, Shell>, ids: Vec<i64>) -> CmdResult<Snapshot> {
    shell.client()?.dismiss_notices(&ids)?;
    snapshot_of(&shell)
}

/// Whether the app starts at login (in the tray, window hidden).
#[tauri::command(rename_all = "snake_case")]
pub fn autostart(app: AppHandle) -> CmdResult<bool> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch().is_enabled().map_err(|e| {
        tracing::warn!(error = %e, "autostart state unknown");
        CmdError::code(ErrorCode::AutostartUnavailable)
    })
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_autostart(app: AppHandle, enabled: bool) -> CmdResult<bool> {
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

/// The points screen, from the local store.
#[tauri::command(rename_all = "snake_case")]
pub fn points(shell: State<'_, Shell>) -> CmdResult<unionpass_core::view::PointsView> {
    Ok(shell.client()?.points_view(now())?)
}

/// Check a redemption by the synced offer and ledger: its price and whether it needs the
/// password again (`{points, needs_reauth}`).
#[tauri::command(rename_all = "snake_case")]
pub fn quote_redemption(
    shell: State<'_, Shell>,
    target: unionpass_core::redeem::Target,
) -> CmdResult<Quoted> {
    let q = shell.client()?.quote_redemption(&target, now())?;
    Ok(Quoted {
        points: q.points,
        needs_reauth: q.needs_reauth,
    })
}

#[derive(Serialize)]
pub struct Quoted {
    points: i64,
    needs_reauth: bool,
}

/// Queue a redemption (offline works); a sync is started to send it. `password` only for one
/// that needs it (sent once to the server, never kept).
#[tauri::command(rename_all = "snake_case")]
pub async fn redeem(
    app: AppHandle,
    shell: State<'_, Shell>,
    target: unionpass_core::redeem::Target,
    points: i64,
    password: Option<String>,
) -> CmdResult<unionpass_core::view::PointsView> {
    let client = shell.client()?.clone();
    match password {
        Some(p) => {
            client
                .redeem_with_password(&target, points, &p, now())
                .await?
        }
        None => client.redeem(&target, points, now())?,
    };
    tauri::async_runtime::spawn(crate::follow_redemptions(app));
    Ok(client.points_view(now())?)
}
