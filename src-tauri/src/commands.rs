//! The IPC commands, one per request type of `unionpass_core::ipc`. Each takes its request as the
//! one argument `req`, reads `now`, calls the client library (or its background tasks), and
//! answers the contract's answer type or a [`CmdError`] carrying a stable code (the UI never reads
//! messages).

use std::sync::Arc;

use serde::Serialize;
use tauri::{AppHandle, State};
use unionpass_client::background::Background;
use unionpass_client::{ClientError, Snapshot};
use unionpass_core::ipc::{self, Answer};
use unionpass_core::view::{CommandError, CouponDetail};
use unionpass_core::ErrorCode;

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
            retry_after_s: None,
        })
    }
}

impl From<ClientError> for CmdError {
    fn from(e: ClientError) -> CmdError {
        tracing::warn!(code = %e.code(), error = %e, "command failed");
        CmdError(CommandError {
            code: e.code(),
            detail: e.to_string(),
            retry_after_s: e.retry_after().map(|d| d.as_secs()),
        })
    }
}

type CmdResult<C> = Result<Answer<C>, CmdError>;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Start a background sync (skipped if one is running): a change waits in the outbox until then.
fn sync_soon(bg: &Arc<Background>) {
    let bg = bg.clone();
    crate::spawn(async move {
        bg.sync_soon().await;
    });
}

fn snapshot_of(shell: &Shell) -> Result<Snapshot, CmdError> {
    let mut snap = shell.client()?.snapshot(now())?;
    if snap.server_url.is_none() {
        snap.server_url = Some(shell.default_server.clone());
    }
    snap.update_installable = crate::update::installable();
    Ok(snap)
}

fn base64_arg(data: &str) -> Result<Vec<u8>, CmdError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| CmdError::code(ErrorCode::BadRequest))
}

#[tauri::command(rename_all = "snake_case")]
pub fn snapshot(shell: State<'_, Shell>, req: ipc::GetSnapshot) -> CmdResult<ipc::GetSnapshot> {
    let ipc::GetSnapshot {} = req;
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn login(shell: State<'_, Shell>, req: ipc::Login) -> CmdResult<ipc::Login> {
    shell
        .background()?
        .sign_in(&req.server_url, &req.member_no, &req.password)
        .await?;
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn reset_password(
    shell: State<'_, Shell>,
    req: ipc::ResetPassword,
) -> CmdResult<ipc::ResetPassword> {
    shell
        .background()?
        .reset_password(
            &req.server_url,
            &req.member_no,
            &req.code,
            &req.new_password,
        )
        .await?;
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn logout(shell: State<'_, Shell>, req: ipc::Logout) -> CmdResult<ipc::Logout> {
    let ipc::Logout {} = req;
    shell.client()?.logout().await?;
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sync_now(shell: State<'_, Shell>, req: ipc::SyncNow) -> CmdResult<ipc::SyncNow> {
    let ipc::SyncNow {} = req;
    // a failure is part of the state the snapshot shows (the status bar, the problem notice)
    if let Err(e) = shell.background()?.sync_now().await {
        tracing::warn!(code = %e.code(), "sync on demand failed");
    }
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_language(
    app: AppHandle,
    shell: State<'_, Shell>,
    req: ipc::SetLanguage,
) -> CmdResult<ipc::SetLanguage> {
    let bg = shell.background()?;
    bg.client().set_language(req.language, now())?;
    crate::native::relabel_tray(&app, req.language);
    sync_soon(bg);
    snapshot_of(&shell)
}

/// The UI panicked or a script error went uncaught (`assets/boot.js`): written to the log
/// (`target: unionpass::ui`), cut to `LogUiPanic::MAX` bytes.
#[tauri::command(rename_all = "snake_case")]
pub fn log_ui_panic(req: ipc::LogUiPanic) -> CmdResult<ipc::LogUiPanic> {
    let mut message = req.message;
    if message.len() > ipc::LogUiPanic::MAX {
        let mut end = ipc::LogUiPanic::MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    tracing::error!(target: "unionpass::ui", %message, "uncaught UI error (a panic or a script error)");
    Ok(())
}

/// Logged at debug level; when `UNIONPASS_READY_FILE` is set, a line with the wall-clock time in
/// ms is appended there for the benches.
#[tauri::command(rename_all = "snake_case")]
pub fn ui_ready(req: ipc::UiReady) -> CmdResult<ipc::UiReady> {
    tracing::debug!(what = %req.what, "ui ready");
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
            let _ = writeln!(f, "{} {ms}", req.what);
        }
    }
    Ok(())
}

#[tauri::command(rename_all = "snake_case")]
pub fn live_passport(
    shell: State<'_, Shell>,
    req: ipc::GetLivePassport,
) -> CmdResult<ipc::GetLivePassport> {
    let ipc::GetLivePassport {} = req;
    match (&shell.background, shell.kept.get()) {
        // the store is unreadable to this version, but its passport was read
        (Err(_), Some(Some(kept))) => Ok(kept.live(now())?),
        _ => Ok(shell.client()?.live_passport(now())?),
    }
}

/// Read (once) the passport a store this version cannot open keeps: only when a newer version
/// wrote it. Async, so the keyring's unlock prompt, if any, does not hold the window.
#[tauri::command(rename_all = "snake_case")]
pub async fn kept_passport(
    shell: State<'_, Shell>,
    req: ipc::GetKeptPassport,
) -> CmdResult<ipc::GetKeptPassport> {
    let ipc::GetKeptPassport {} = req;
    if !matches!(shell.background, Err(ErrorCode::DatabaseTooNew)) {
        return Ok(None);
    }
    let kept = shell.kept.get_or_init(|| {
        unionpass_client::kept::KeptPassport::read(&shell.data_dir)
            .inspect_err(|e| {
                tracing::warn!(code = %e.code(), error = %e, "no passport readable in the newer store");
            })
            .ok()
    });
    Ok(kept.as_ref().map(|k| k.view(now())))
}

#[tauri::command(rename_all = "snake_case")]
pub fn revoke_device(
    shell: State<'_, Shell>,
    req: ipc::RevokeDevice,
) -> CmdResult<ipc::RevokeDevice> {
    let bg = shell.background()?;
    bg.client().revoke_device(req.device_id, now())?;
    sync_soon(bg);
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub fn scanner_view(
    shell: State<'_, Shell>,
    req: ipc::GetScannerView,
) -> CmdResult<ipc::GetScannerView> {
    Ok(shell.client()?.scanner_view(req.event_id, now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_trust_max_age(
    shell: State<'_, Shell>,
    req: ipc::SetTrustMaxAge,
) -> CmdResult<ipc::SetTrustMaxAge> {
    let client = shell.client()?;
    client.set_trust_max_age_days(req.days)?;
    Ok(client.scanner_view(None, now())?)
}

/// After a check-in, upload it at once when the network is there (the outbox keeps it if not).
fn upload_if_ok(shell: &Shell, ok: bool) -> Result<(), CmdError> {
    if ok {
        sync_soon(shell.background()?);
    }
    Ok(())
}

#[tauri::command(rename_all = "snake_case")]
pub fn scan_text(shell: State<'_, Shell>, req: ipc::ScanText) -> CmdResult<ipc::ScanText> {
    let outcome = shell.client()?.scan_text(req.event_id, &req.text, now())?;
    upload_if_ok(&shell, outcome.ok)?;
    Ok(outcome)
}

#[tauri::command(rename_all = "snake_case")]
pub fn let_in(shell: State<'_, Shell>, req: ipc::LetIn) -> CmdResult<ipc::LetIn> {
    let outcome = shell
        .client()?
        .let_in(req.event_id, &req.text, req.scanned_at, now())?;
    upload_if_ok(&shell, outcome.ok)?;
    Ok(outcome)
}

#[tauri::command(rename_all = "snake_case")]
pub fn scan_image(shell: State<'_, Shell>, req: ipc::ScanImage) -> CmdResult<ipc::ScanImage> {
    let outcome = shell
        .client()?
        .scan_image(req.event_id, &base64_arg(&req.data)?, now())?;
    upload_if_ok(&shell, outcome.ok)?;
    Ok(outcome)
}

/// A command whose payload is the raw IPC body: its request from the [`ipc::RAW_REQ_HEADER`]
/// header, and the bytes.
fn raw_request<C: ipc::Command>(
    request: tauri::ipc::Request<'_>,
) -> Result<(C, Vec<u8>), CmdError> {
    let bad = || CmdError::code(ErrorCode::BadRequest);
    let req = request
        .headers()
        .get(ipc::RAW_REQ_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<C>(v).ok())
        .ok_or_else(bad)?;
    match request.body() {
        tauri::ipc::InvokeBody::Raw(bytes) => Ok((req, bytes.clone())),
        tauri::ipc::InvokeBody::Json(_) => Err(bad()),
    }
}

/// A camera frame: raw bytes in, decoded off the main thread (every 400 ms while the camera
/// runs).
#[tauri::command(rename_all = "snake_case")]
pub async fn scan_frame(
    shell: State<'_, Shell>,
    request: tauri::ipc::Request<'_>,
) -> CmdResult<ipc::ScanFrame> {
    let (req, luma) = raw_request::<ipc::ScanFrame>(request)?;
    let client = shell.client()?.clone();
    let outcome = tauri::async_runtime::spawn_blocking(move || {
        client.scan_frame(req.event_id, req.width, req.height, &luma, now())
    })
    .await
    .map_err(|_| CmdError::code(ErrorCode::Internal))??;
    upload_if_ok(&shell, outcome.as_ref().is_some_and(|o| o.ok))?;
    Ok(outcome)
}

#[tauri::command(rename_all = "snake_case")]
pub fn wallet(shell: State<'_, Shell>, req: ipc::GetWallet) -> CmdResult<ipc::GetWallet> {
    Ok(shell.client()?.wallet(&req.filter, req.limit, now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn coupon(shell: State<'_, Shell>, req: ipc::GetCoupon) -> CmdResult<ipc::GetCoupon> {
    let (view, qr_svg) = shell.client()?.coupon(req.id, now())?;
    Ok(CouponDetail { view, qr_svg })
}

#[tauri::command(rename_all = "snake_case")]
pub fn use_coupon(shell: State<'_, Shell>, req: ipc::UseCoupon) -> CmdResult<ipc::UseCoupon> {
    let bg = shell.background()?;
    let view = bg.client().use_coupon(req.id, now())?;
    sync_soon(bg);
    Ok(view)
}

#[tauri::command(rename_all = "snake_case")]
pub fn calendar(shell: State<'_, Shell>, req: ipc::GetCalendar) -> CmdResult<ipc::GetCalendar> {
    let ipc::GetCalendar {} = req;
    Ok(shell.client()?.calendar(now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn grab(shell: State<'_, Shell>, req: ipc::Grab) -> CmdResult<ipc::Grab> {
    let bg = shell.background()?.clone();
    let outcome = bg.client().grab(req.campaign_id, now()).await?;
    // the stock changed: refresh the calendar's figures
    sync_soon(&bg);
    Ok(outcome)
}

#[tauri::command(rename_all = "snake_case")]
pub fn activities(
    shell: State<'_, Shell>,
    req: ipc::GetActivities,
) -> CmdResult<ipc::GetActivities> {
    let ipc::GetActivities {} = req;
    Ok(shell.client()?.activities(now())?)
}

/// Offline, the counts as last fetched stay (the screen says as of when).
#[tauri::command(rename_all = "snake_case")]
pub async fn refresh_activities(
    shell: State<'_, Shell>,
    req: ipc::RefreshActivities,
) -> CmdResult<ipc::RefreshActivities> {
    let ipc::RefreshActivities {} = req;
    let bg = shell.background()?.clone();
    if let Err(e) = bg.client().refresh_activities(now()).await {
        tracing::debug!(code = %e.code(), "activity counts not refreshed");
    }
    bg.measure_clock().await;
    Ok(bg.client().activities(now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sign_up(shell: State<'_, Shell>, req: ipc::SignUp) -> CmdResult<ipc::SignUp> {
    let bg = shell.background()?.clone();
    let answer = bg
        .client()
        .sign_up(req.activity_id, req.companions, now())
        .await?;
    sync_soon(&bg);
    Ok(answer)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn cancel_signup(
    shell: State<'_, Shell>,
    req: ipc::CancelSignup,
) -> CmdResult<ipc::CancelSignup> {
    let bg = shell.background()?.clone();
    let mine = bg.client().cancel_signup(req.activity_id).await?;
    sync_soon(&bg);
    Ok(mine)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_opening_reminder(
    shell: State<'_, Shell>,
    req: ipc::SetOpeningReminder,
) -> CmdResult<ipc::SetOpeningReminder> {
    let bg = shell.background()?.clone();
    bg.set_opening_reminder(req.activity_id, req.on)?;
    Ok(bg.client().activities(now())?)
}

/// Written to the Downloads folder (the home folder where there is none); the path and which of
/// the two are answered for the screen to say.
#[tauri::command(rename_all = "snake_case")]
pub fn export_ics(
    app: AppHandle,
    shell: State<'_, Shell>,
    req: ipc::ExportIcs,
) -> CmdResult<ipc::ExportIcs> {
    use tauri::Manager;
    let text = shell.client()?.activity_ics(req.activity_id, now())?;
    let downloads = app.path().download_dir().ok();
    let in_downloads = downloads.is_some();
    let dir = downloads
        .map(Ok)
        .unwrap_or_else(|| app.path().home_dir())
        .map_err(|_| CmdError::code(ErrorCode::Storage))?;
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("unionpass-activity-{}.ics", req.activity_id));
    std::fs::write(&path, text).map_err(|e| {
        tracing::warn!(error = %e, "the calendar file could not be written");
        CmdError::code(if e.raw_os_error() == Some(28) {
            ErrorCode::StorageFull
        } else {
            ErrorCode::Storage
        })
    })?;
    Ok(ipc::IcsSaved {
        path: path.to_string_lossy().into_owned(),
        in_downloads,
    })
}

/// Queued (offline works) and sent with the next sync; the results are fetched after it.
#[tauri::command(rename_all = "snake_case")]
pub async fn vote(shell: State<'_, Shell>, req: ipc::CastVote) -> CmdResult<ipc::CastVote> {
    let bg = shell.background()?.clone();
    bg.client().vote(req.poll_id, req.option, now())?;
    // sent now when online, then the results, so the member sees them at once
    if bg.sync_now().await.is_ok() {
        if let Err(e) = bg.client().refresh_activities(now()).await {
            tracing::debug!(code = %e.code(), "poll results not fetched");
        }
    }
    Ok(bg.client().activities(now())?)
}

/// Queued (offline works) and sent with the next sync.
#[tauri::command(rename_all = "snake_case")]
pub fn give_feedback(
    shell: State<'_, Shell>,
    req: ipc::GiveFeedback,
) -> CmdResult<ipc::GiveFeedback> {
    let bg = shell.background()?.clone();
    bg.client()
        .give_feedback(req.activity_id, req.rating, &req.comment, now())?;
    sync_soon(&bg);
    Ok(bg.client().activities(now())?)
}

/// Offline, the stored offset stays.
#[tauri::command(rename_all = "snake_case")]
pub async fn measure_clock(
    shell: State<'_, Shell>,
    req: ipc::MeasureClock,
) -> CmdResult<ipc::MeasureClock> {
    let ipc::MeasureClock {} = req;
    let bg = shell.background()?.clone();
    bg.measure_clock().await;
    Ok(bg.client().calendar(now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_reminder(shell: State<'_, Shell>, req: ipc::SetReminder) -> CmdResult<ipc::SetReminder> {
    let bg = shell.background()?;
    bg.set_reminder(req.campaign_id, req.lead_minutes)?;
    Ok(bg.client().calendar(now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn clear_reminder(
    shell: State<'_, Shell>,
    req: ipc::ClearReminder,
) -> CmdResult<ipc::ClearReminder> {
    let bg = shell.background()?;
    bg.clear_reminder(req.campaign_id)?;
    Ok(bg.client().calendar(now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn dismiss_notices(
    shell: State<'_, Shell>,
    req: ipc::DismissNotices,
) -> CmdResult<ipc::DismissNotices> {
    shell.client()?.dismiss_notices(&req.ids)?;
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub fn rejections_seen(
    shell: State<'_, Shell>,
    req: ipc::RejectionsSeen,
) -> CmdResult<ipc::RejectionsSeen> {
    shell.client()?.rejections_seen(&req.ids)?;
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub fn autostart(app: AppHandle, req: ipc::GetAutostart) -> CmdResult<ipc::GetAutostart> {
    let ipc::GetAutostart {} = req;
    crate::native::autostart(&app)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_autostart(app: AppHandle, req: ipc::SetAutostart) -> CmdResult<ipc::SetAutostart> {
    crate::native::set_autostart(&app, req.enabled)
}

#[tauri::command(rename_all = "snake_case")]
pub fn app_info(req: ipc::GetAppInfo) -> CmdResult<ipc::GetAppInfo> {
    let ipc::GetAppInfo {} = req;
    Ok(ipc::AppInfo {
        version: unionpass_client::client::APP_VERSION.to_string(),
        installable: crate::update::installable(),
    })
}

/// Once installed the app restarts a moment later, when the window has shown it.
#[tauri::command(rename_all = "snake_case")]
pub async fn install_update(
    app: AppHandle,
    shell: State<'_, Shell>,
    req: ipc::InstallUpdate,
) -> CmdResult<ipc::InstallUpdate> {
    let ipc::InstallUpdate {} = req;
    // the member's server (or the default one before any sign-in), as the snapshot says it; the
    // default one too when the local store could not be opened (written by a newer version: the
    // way out is this update)
    let server = match snapshot_of(&shell) {
        Ok(snap) => snap.server_url.unwrap_or_default(),
        Err(_) if shell.background.is_err() => shell.default_server.clone(),
        Err(e) => return Err(e),
    };
    let done = crate::update::install(&app, &server).await?;
    if done.is_some() {
        crate::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            app.restart();
        });
    }
    Ok(done)
}

#[tauri::command(rename_all = "snake_case")]
pub fn points(shell: State<'_, Shell>, req: ipc::GetPoints) -> CmdResult<ipc::GetPoints> {
    let ipc::GetPoints {} = req;
    Ok(shell.client()?.points_view(now())?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn quote_redemption(
    shell: State<'_, Shell>,
    req: ipc::QuoteRedemption,
) -> CmdResult<ipc::QuoteRedemption> {
    Ok(shell.client()?.quote_redemption(&req.target, now())?)
}

/// Queued (offline works), then followed until it is settled or refunded.
#[tauri::command(rename_all = "snake_case")]
pub async fn redeem(shell: State<'_, Shell>, req: ipc::Redeem) -> CmdResult<ipc::Redeem> {
    let bg = shell.background()?.clone();
    let made = bg
        .redeem(&req.target, req.points, req.password.as_deref())
        .await?;
    let follow = bg.clone();
    crate::spawn(async move {
        follow.follow_redemptions().await;
    });
    Ok(ipc::Redeemed {
        id: made.id,
        view: bg.client().points_view(now())?,
    })
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sign_out_everywhere(
    shell: State<'_, Shell>,
    req: ipc::SignOutEverywhere,
) -> CmdResult<ipc::SignOutEverywhere> {
    let ipc::SignOutEverywhere {} = req;
    shell.client()?.sign_out_everywhere().await?;
    snapshot_of(&shell)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn change_password(
    shell: State<'_, Shell>,
    req: ipc::ChangePassword,
) -> CmdResult<ipc::ChangePassword> {
    let ended = shell
        .client()?
        .change_password(&req.current_password, &req.new_password)
        .await?;
    Ok(unionpass_core::api::EndedSessions { ended })
}
