//! The facade the Tauri shell calls. Every method takes `now` from the caller.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use chrono::{DateTime, Utc};
use unionpass_core::api::{LoginRequest, PassportInfo};
use unionpass_core::passport;
use unionpass_core::view::{LivePassport, PassportView, ScanOutcome, ScannerView, SyncState};
use unionpass_core::{ErrorCode, Lang};

use crate::api::{Api, ServerUrl};
use crate::error::{ClientError, Result};
use crate::secrets::{DeviceKeySecret, Sensitive, SessionSecret};
use crate::store::{Store, SyncLogEntry};
use crate::sync::{self, SyncReport};

pub use unionpass_core::view::Snapshot;

/// The file name of the local store inside the data dir.
pub const DB_FILE: &str = "unionpass.sqlite";

/// How long a grab may take before the member is told (and the UI retries with the same key).
pub const GRAB_DEADLINE: std::time::Duration = std::time::Duration::from_millis(4500);

/// This app's version (the one its requests state in `User-Agent`).
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often the app asks the server which app versions it serves.
pub const VERSION_CHECK_EVERY: chrono::Duration = chrono::Duration::hours(6);

pub struct Client {
    store: Mutex<Store>,
    data_dir: PathBuf,
    /// One sync (or sign-in, or sign-out) at a time.
    sync_lock: tokio::sync::Mutex<()>,
    syncing: AtomicBool,
    /// The device's passport key, read from the keyring once per run (it signs every 30 s).
    device_key: Mutex<Option<ed25519_dalek::SigningKey>>,
    /// The one HTTP client of this device: every request reuses its connections.
    http: reqwest::Client,
    /// When the background sync tries again after a failed one (device time), for the status
    /// bar; `None` when the last one worked or none is planned.
    retry_at: Mutex<Option<DateTime<Utc>>>,
    /// The last sync's failure when it could not be written to the store's sync log (the disk
    /// is full): the status still tells the member.
    unlogged: Mutex<Option<ErrorCode>>,
    /// The last scans the door list alone refused, newest last: the only ones staff may let in
    /// by hand ([`Client::let_in`]).
    list_refusals: Mutex<std::collections::VecDeque<ListRefusal>>,
}

/// A scan the door list alone refused: the event, the code as scanned, and when.
struct ListRefusal {
    event_id: i64,
    text: String,
    at: DateTime<Utc>,
}

/// How many of those [`Client::list_refusals`] keeps (a queue at the door, not a history).
const LIST_REFUSALS_KEPT: usize = 16;

/// How long after a scan the door list refused staff may still let the member in by hand
/// ([`Client::let_in`]): time to look at the member's phone, not to come back to a code later.
pub const LET_IN_WITHIN: chrono::Duration = chrono::Duration::minutes(10);

/// The credential the server issued, as its bytes and parsed, when `key` can present it (it
/// names that key); otherwise, or unreadable, `device_not_enrolled`.
pub(crate) fn presentable(
    p: &PassportInfo,
    key: &ed25519_dalek::SigningKey,
) -> Result<(Vec<u8>, passport::Credential)> {
    let l1 = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&p.credential)
        .map_err(|_| ClientError::DeviceNotEnrolled)?;
    let cred = passport::Credential::parse(&l1).map_err(|_| ClientError::DeviceNotEnrolled)?;
    if cred.claims.device_key != key.verifying_key().to_bytes() {
        return Err(ClientError::DeviceNotEnrolled);
    }
    Ok((l1, cred))
}

/// The passport QR for the time step the **server's** time falls in (`device_now` corrected by
/// the last measured clock `offset`: a phone whose clock is two minutes off would otherwise show
/// codes every scanner calls stale), signed by `key`; none once the credential has expired
/// (`passport_expired`). The step's start and end are given back
/// in this device's time, for its countdown. A credential issued to another key (the keyring
/// restored elsewhere) or unreadable is `device_not_enrolled`.
pub(crate) fn live_code(
    p: &PassportInfo,
    key: &ed25519_dalek::SigningKey,
    offset: Option<unionpass_core::reminder::ClockOffset>,
    device_now: DateTime<Utc>,
) -> Result<LivePassport> {
    let now = unionpass_core::reminder::server_now(device_now, offset);
    let ahead = now - device_now;
    let (l1, credential) = presentable(p, key)?;
    // a code every scanner would refuse is not shown (the next sync brings a renewed one)
    if credential.claims.expired_at(now) {
        return Err(ClientError::Refused(ErrorCode::PassportExpired));
    }
    let step = passport::step_of(now);
    let text = passport::present(&l1, key, step);
    Ok(LivePassport {
        qr_svg: crate::qr::svg(&text).unwrap_or_default(),
        text,
        step_starts_at: passport::step_start(step) - ahead,
        // the last code goes at the expiry, not at its step's end: the screen asks again then
        // and is told there is none
        step_ends_at: passport::step_start(step + 1).min(credential.claims.valid_until) - ahead,
    })
}

fn no_qr(now: DateTime<Utc>) -> ScanOutcome {
    ScanOutcome::refused(ErrorCode::NoQrFound, now)
}

/// This caller's turn to sync (or sign in or out): no other sync runs while it is held. While it
/// is held, the snapshot says "syncing".
pub struct SyncTurn<'a> {
    _lock: tokio::sync::MutexGuard<'a, ()>,
    syncing: &'a AtomicBool,
}

impl<'a> SyncTurn<'a> {
    fn new(lock: tokio::sync::MutexGuard<'a, ()>, syncing: &'a AtomicBool) -> SyncTurn<'a> {
        syncing.store(true, Ordering::SeqCst);
        SyncTurn {
            _lock: lock,
            syncing,
        }
    }
}

impl Drop for SyncTurn<'_> {
    fn drop(&mut self) {
        self.syncing.store(false, Ordering::SeqCst);
    }
}

impl Client {
    /// Open the device's store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Client> {
        let store = Store::open(&data_dir.join(DB_FILE))?;
        Ok(Client {
            store: Mutex::new(store),
            data_dir: data_dir.to_path_buf(),
            sync_lock: tokio::sync::Mutex::new(()),
            syncing: AtomicBool::new(false),
            device_key: Mutex::new(None),
            http: crate::api::http_client(),
            retry_at: Mutex::new(None),
            unlogged: Mutex::new(None),
            list_refusals: Mutex::new(std::collections::VecDeque::new()),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn secret(&self) -> Result<SessionSecret> {
        SessionSecret::for_device(self.store().device_id()?)
    }

    fn api(&self) -> Result<Api> {
        let url = self.store().server_url()?.ok_or(ClientError::NotLoggedIn)?;
        Ok(Api::over(self.http.clone(), ServerUrl::parse(&url)?))
    }

    /// Whether a member is signed in on this device (their data is in the store).
    pub fn is_logged_in(&self) -> Result<bool> {
        Ok(self.store().member_id()?.is_some())
    }

    /// The member's language: chosen on this device, else from their profile, else Chinese.
    pub fn language(&self) -> Result<Lang> {
        let s = self.store();
        let profile = s.profile()?;
        language_of(&s, profile.as_ref())
    }

    /// Everything the screens show, from the local store only (no network).
    pub fn snapshot(&self, now: DateTime<Utc>) -> Result<Snapshot> {
        let s = self.store();
        let profile = s.profile()?;
        // by the server's time, as the live code is made
        let server_now = unionpass_core::reminder::server_now(now, s.clock_offset()?);
        let passport = s.passport()?.map(|p| PassportView {
            expired: server_now >= p.valid_until,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
        });
        let rejections = s.unseen_rejections()?;
        let (holding, held_for) = s.held_for_sign_in()?;
        // one read of the outbox, by kind, gives the count too (and, held, the held count)
        let pending_kinds = s.pending_kinds()?;
        let pending: i64 = pending_kinds.iter().map(|k| k.n).sum();
        let unlogged = *self.unlogged.lock().unwrap_or_else(|p| p.into_inner());
        let last_error = match unlogged {
            Some(code) => Some(code),
            None => s.last_sync_error()?,
        };
        Ok(Snapshot {
            logged_in: s.member_id()?.is_some(),
            language: language_of(&s, profile.as_ref())?,
            server_url: s.server_url()?,
            profile,
            passport,
            devices: s.devices()?,
            notices: s.notices()?,
            signed_out: s.signed_out_reason()?,
            held: if holding { pending } else { 0 },
            held_for,
            sync: SyncState {
                syncing: self.syncing.load(Ordering::SeqCst),
                last_ok_at: s.last_sync_ok_at()?,
                last_error,
                pending,
                pending_kinds,
                rejected: rejections.len() as i64,
                retry_at: last_error.and(*self.retry_at.lock().unwrap_or_else(|p| p.into_inner())),
            },
            rejections,
            app_version: APP_VERSION.to_string(),
            update: s
                .versions()?
                .map(|info| info.update_for(APP_VERSION, &unionpass_core::api::platform()))
                .unwrap_or_default(),
            // only the shell knows how this copy was installed
            update_installable: false,
        })
    }

    /// Sign in: the token goes to the keyring, the account to the store, then a first sync.
    /// A failed first sync does not undo the login (the member is signed in, just not synced).
    pub async fn login(
        &self,
        server_url: &str,
        member_no: &str,
        password: &str,
        device_name: &str,
        now: DateTime<Utc>,
    ) -> Result<SyncReport> {
        let member_no = typed_member_no(member_no)?;
        if password.is_empty() {
            return Err(ClientError::InvalidInput("password"));
        }
        let url = ServerUrl::parse(server_url)?;
        let api = Api::over(self.http.clone(), url.clone());
        let turn = self.sync_turn().await;
        let secret = self.secret()?;
        // A fresh passport key for this sign-in: the private half goes to the keyring first, the
        // public half to the server, which binds it into the credential.
        let device_secret = self.device_secret()?;
        let key = device_secret.create()?;
        *self.device_key.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let resp = api
            .login(&LoginRequest {
                member_no: member_no.to_string(),
                password: password.to_string(),
                device_name: device_name.to_string(),
                device_key: Some(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(key.verifying_key().as_bytes()),
                ),
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let _ = device_secret.delete();
                // too old to sign in: learn where the update is, so the screen can say
                self.check_version(&api, e.code() == ErrorCode::ClientTooOld, now)
                    .await;
                return Err(e);
            }
        };
        if self.is_logged_in()? {
            self.store().wipe_member_data(false)?;
        }
        secret.store(&Sensitive::new(resp.token))?;
        self.store().set_account(url.as_str(), resp.member_id)?;
        tracing::info!(member_id = resp.member_id, "signed in");
        self.sync_in_turn(turn, now).await
    }

    /// A forgotten password: set `new_password` with the one-time `code` union staff gave the
    /// member (online; every session of the member ends), then sign in with it as
    /// [`Client::login`] does. Sent again after a lost answer, the server answers it as done.
    pub async fn reset_password(
        &self,
        server_url: &str,
        member_no: &str,
        code: &str,
        new_password: &str,
        device_name: &str,
        now: DateTime<Utc>,
    ) -> Result<SyncReport> {
        let member_no = typed_member_no(member_no)?;
        let code = unionpass_core::api::reset_code_digits(code)
            .ok_or(ClientError::InvalidInput("reset code"))?;
        if new_password.chars().count() < 8 {
            return Err(ClientError::Refused(ErrorCode::WeakPassword));
        }
        // the address is checked before the new password is sent anywhere
        let url = ServerUrl::parse(server_url)?;
        Api::over(self.http.clone(), url)
            .reset_password(&unionpass_core::api::ResetPasswordRequest {
                member_no: member_no.to_string(),
                code,
                new_password: new_password.to_string(),
            })
            .await?;
        tracing::info!("password reset with a code");
        self.login(server_url, member_no, new_password, device_name, now)
            .await
    }

    /// Wait for this caller's turn to sync (a running sync ends first).
    pub async fn sync_turn(&self) -> SyncTurn<'_> {
        SyncTurn::new(self.sync_lock.lock().await, &self.syncing)
    }

    /// This caller's turn to sync, unless a sync is running right now.
    pub fn sync_turn_if_idle(&self) -> Option<SyncTurn<'_>> {
        let lock = self.sync_lock.try_lock().ok()?;
        Some(SyncTurn::new(lock, &self.syncing))
    }

    /// Push the outbox and pull changes, after any running sync. The outcome is logged in the
    /// store either way.
    pub async fn sync(&self, now: DateTime<Utc>) -> Result<SyncReport> {
        let turn = self.sync_turn().await;
        self.sync_in_turn(turn, now).await
    }

    /// Sync in a turn already taken ([`Client::sync_turn`]).
    pub async fn sync_in_turn(&self, turn: SyncTurn<'_>, now: DateTime<Utc>) -> Result<SyncReport> {
        let _turn = turn;
        if !self.is_logged_in()? {
            return Err(ClientError::NotLoggedIn);
        }
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        let api = self.api()?;
        let result = sync::run(&self.store, &api, &token, now).await;
        let entry = match &result {
            Ok(r) => SyncLogEntry {
                at: now,
                ok: true,
                code: None,
                pushed: r.pushed as i64,
                pulled: r.pulled as i64,
            },
            Err(e) => SyncLogEntry {
                at: now,
                ok: false,
                code: Some(e.code()),
                pushed: 0,
                pulled: 0,
            },
        };
        // on a full disk even this small write fails: the status is then kept in memory
        let logged = self.store().log_sync(&entry);
        *self.unlogged.lock().unwrap_or_else(|p| p.into_inner()) = match (&logged, &result) {
            (Ok(()), _) => None,
            (Err(_), Err(e)) => Some(e.code()),
            (Err(e), Ok(_)) => Some(e.code()),
        };
        if let Err(e) = &logged {
            tracing::warn!(code = %e.code(), error = %e, "the sync was not logged");
        }
        match &result {
            // whoever started it, a sync that worked ends any wait to retry
            Ok(_) => self.set_retry_at(None),
            Err(e) => self.ended_if(e),
        }
        let refused = matches!(&result, Err(e) if e.code() == ErrorCode::ClientTooOld);
        self.check_version(&api, refused, now).await;
        match &result {
            Ok(r) => tracing::info!(
                pushed = r.pushed,
                pulled = r.pulled,
                rejected = r.rejected,
                "synced"
            ),
            Err(e) => tracing::warn!(code = %e.code(), error = %e, "sync failed"),
        }
        result
    }

    /// Ask the server which app versions it serves: every [`VERSION_CHECK_EVERY`], and at once
    /// when it refused this version. Best effort (the answer only informs the member).
    async fn check_version(&self, api: &Api, refused: bool, now: DateTime<Utc>) {
        let due = refused
            || self
                .store()
                .versions_checked_at()
                .ok()
                .flatten()
                .is_none_or(|at| now - at >= VERSION_CHECK_EVERY || at > now);
        if !due {
            return;
        }
        match api.version().await {
            Ok(info) => {
                if let Err(e) = self.store().set_versions(&info, now) {
                    tracing::warn!(error = %e, "the server's versions were not kept");
                }
            }
            Err(e) => tracing::info!(code = %e.code(), "the server's versions are unknown"),
        }
    }

    /// Choose the UI language. Takes effect at once; when signed in it is also queued for the
    /// server, so the member's other devices follow.
    pub fn set_language(&self, lang: Lang, now: DateTime<Utc>) -> Result<()> {
        let s = self.store();
        s.set_language(lang)?;
        if s.member_id()?.is_some() {
            s.enqueue_language(lang, now)?;
        }
        Ok(())
    }

    /// Sign out, after any running sync. When the server can be reached, the changes waiting
    /// in the outbox go up first, so a sign-out with the network loses none of them (without
    /// it they are lost, which the screen says before asking). The server is told (when it
    /// cannot be reached, the ended session waits in the keyring and the server is told later,
    /// [`Client::finish_pending_sign_out`]); the token, the device key and the member's local
    /// data go at once.
    pub async fn logout(&self) -> Result<()> {
        let _turn = self.sync_turn().await;
        let secret = self.secret()?;
        if let (Ok(api), Ok(Some(token))) = (self.api(), secret.load()) {
            let told = match sync::push(&self.store, &api, &token).await {
                // unreachable: not tried a second time now, told later
                Err(e) if e.code().is_transient() => Err(e),
                _ => api.logout(&token).await,
            };
            match told {
                Ok(()) => {}
                Err(e) if e.code().is_transient() => {
                    tracing::info!(code = %e.code(), "server not told of the sign-out yet; it is kept to be sent later");
                    self.pending_sign_out()?
                        .store(api.base().as_str(), &token)?;
                }
                // already ended there (or refused): nothing left to tell
                Err(e) => tracing::info!(code = %e.code(), "server sign-out answered"),
            }
        }
        self.end_locally(None)?;
        tracing::info!("signed out");
        Ok(())
    }

    /// Tell the server of a sign-out made while it could not be reached. Answers whether nothing
    /// is left waiting.
    pub async fn finish_pending_sign_out(&self) -> Result<bool> {
        let pending = self.pending_sign_out()?;
        let Some((server, token)) = pending.load()? else {
            return Ok(true);
        };
        let api = Api::over(self.http.clone(), ServerUrl::parse(&server)?);
        match api.logout(&token).await {
            Err(e) if e.code().is_transient() => Ok(false),
            _ => {
                pending.delete()?;
                tracing::info!("an earlier sign-out reached the server");
                Ok(true)
            }
        }
    }

    fn pending_sign_out(&self) -> Result<crate::secrets::PendingSignOut> {
        crate::secrets::PendingSignOut::for_device(self.store().device_id()?)
    }

    /// Forget the member on this device: token and device key out of the keyring, local data
    /// wiped; `reason` (why the server ended the session) is shown at the next sign-in. When the
    /// server ended it, the changes not yet uploaded are held for the member's next sign-in
    /// here ([`Store::wipe_member_data`]): the member did not choose to lose them.
    fn end_locally(&self, reason: Option<ErrorCode>) -> Result<()> {
        self.secret()?.delete()?;
        self.device_secret()?.delete()?;
        *self.device_key.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let mut store = self.store();
        store.wipe_member_data(reason.is_some())?;
        if let Some(code) = reason {
            store.set_signed_out_reason(code)?;
        }
        Ok(())
    }

    /// The server says the session has ended (signed out elsewhere or everywhere, the device
    /// revoked, the password changed, the membership suspended): this device forgets the member,
    /// and the reason is shown at the next sign-in. Other errors are left as they are.
    fn ended_if(&self, e: &ClientError) {
        if e.code() == ErrorCode::SessionEnded {
            tracing::warn!("the server ended this session; forgetting the member here");
            if let Err(w) = self.end_locally(Some(ErrorCode::SessionEnded)) {
                tracing::error!(error = %w, "could not forget the member after the session ended");
            }
        }
    }

    /// Sign out everywhere (online only): this device's waiting changes go up first, then every
    /// session of the member ends, this one too, and this device forgets the member. When the
    /// changes cannot go up, nothing ends.
    pub async fn sign_out_everywhere(&self) -> Result<usize> {
        let _turn = self.sync_turn().await;
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        let api = self.api()?;
        let ended = match sync::push(&self.store, &api, &token).await {
            Ok(_) => api.end_all_sessions(&token).await,
            Err(e) => Err(e),
        };
        let ended = match ended {
            Ok(e) => e.ended,
            Err(e) => {
                self.ended_if(&e);
                return Err(e);
            }
        };
        self.end_locally(None)?;
        tracing::info!(ended, "signed out everywhere");
        Ok(ended)
    }

    /// Change the password (online only); the member's other sessions end, this one stays.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<usize> {
        if new.chars().count() < 8 {
            return Err(ClientError::Refused(ErrorCode::WeakPassword));
        }
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        let req = unionpass_core::api::ChangePasswordRequest {
            current_password: current.to_string(),
            new_password: new.to_string(),
        };
        match self.api()?.change_password(&token, &req).await {
            Ok(e) => Ok(e.ended),
            Err(e) => {
                self.ended_if(&e);
                Err(e)
            }
        }
    }

    fn device_secret(&self) -> Result<DeviceKeySecret> {
        DeviceKeySecret::for_device(self.store().device_id()?)
    }

    fn signing_key(&self) -> Result<ed25519_dalek::SigningKey> {
        let mut cached = self.device_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cached.as_ref() {
            return Ok(k.clone());
        }
        let key = self
            .device_secret()?
            .load()?
            .ok_or(ClientError::DeviceNotEnrolled)?;
        *cached = Some(key.clone());
        Ok(key)
    }

    /// The passport QR for the time step the **server's** time falls in, signed by this
    /// device's key ([`live_code`]).
    pub fn live_passport(&self, device_now: DateTime<Utc>) -> Result<LivePassport> {
        let (p, offset) = {
            let s = self.store();
            (
                s.passport()?.ok_or(ClientError::DeviceNotEnrolled)?,
                s.clock_offset()?,
            )
        };
        live_code(&p, &self.signing_key()?, offset, device_now)
    }

    /// The grab calendar from the store (campaigns not ended, the last answers, the clock offset).
    pub fn calendar(&self, now: DateTime<Utc>) -> Result<crate::grab::Calendar> {
        self.store().calendar(now)
    }

    /// The points screen, from the store.
    pub fn points_view(&self, now: DateTime<Utc>) -> Result<unionpass_core::view::PointsView> {
        self.store().points_view(now)
    }

    /// Whether a redemption is queued here or in progress at the server.
    pub fn has_open_redemptions(&self) -> Result<bool> {
        self.store().has_open_redemptions()
    }

    /// Every redemption kept on this device, newest first.
    pub fn redemptions(&self) -> Result<Vec<unionpass_core::redeem::Redemption>> {
        self.store().redemptions()
    }

    /// Check a redemption (offline, by the synced offer and ledger): its price, and whether it
    /// needs the password again.
    pub fn quote_redemption(
        &self,
        target: &unionpass_core::redeem::Target,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::redeem::Quote> {
        self.store().quote_redemption(target, now)
    }

    /// Queue a redemption (works offline); it goes to the server with the next sync. A price
    /// that needs the password again must go through [`Client::redeem_with_password`].
    pub fn redeem(
        &self,
        target: &unionpass_core::redeem::Target,
        agreed_points: i64,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::redeem::Redemption> {
        let q = self.quote_redemption(target, now)?;
        if q.needs_reauth {
            return Err(ClientError::Refused(ErrorCode::ReauthRequired));
        }
        self.store()
            .queue_redemption(uuid::Uuid::new_v4(), target, agreed_points, now)
    }

    /// A large redemption: the password goes to the server first (online only) for this
    /// redemption's id, then it is queued like any other. The password is never stored.
    pub async fn redeem_with_password(
        &self,
        target: &unionpass_core::redeem::Target,
        agreed_points: i64,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::redeem::Redemption> {
        self.quote_redemption(target, now)?;
        let id = uuid::Uuid::new_v4();
        let api = self.api()?;
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        api.reauth(
            &token,
            &unionpass_core::api::ReauthRequest {
                password: password.to_string(),
                redemption_id: id,
            },
        )
        .await?;
        self.store()
            .queue_redemption(id, target, agreed_points, now)
    }

    /// Set the reminder for a campaign, due `lead_minutes` before its release. The release is
    /// the server's instant: the shell's scheduler ticks with [`Client::server_now`].
    pub fn set_reminder(
        &self,
        campaign_id: i64,
        lead_minutes: i64,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::reminder::Reminder> {
        self.store().set_reminder(campaign_id, lead_minutes, now)
    }

    pub fn reminders(&self) -> Result<Vec<unionpass_core::reminder::Reminder>> {
        self.store().reminders()
    }

    pub fn clear_reminder(&self, campaign_id: i64) -> Result<()> {
        self.store().clear_reminder(campaign_id)
    }

    /// One scheduler tick (see `reminders`): the actions to carry out and the next wake-up.
    pub fn reminder_tick(&self, now: DateTime<Utc>) -> Result<unionpass_core::reminder::Plan> {
        self.store().reminder_tick(now)
    }

    pub fn dismiss_notices(&self, ids: &[i64]) -> Result<()> {
        self.store().dismiss_notices(ids)
    }

    /// When the background sync will try again after a failure (`None`: not waiting to retry).
    pub fn set_retry_at(&self, at: Option<DateTime<Utc>>) {
        *self.retry_at.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// The member has read these refused changes: they stop counting in the status bar.
    pub fn rejections_seen(&self, ids: &[uuid::Uuid]) -> Result<()> {
        self.store().rejections_seen(ids)
    }

    /// The server's time now by this device's clock and the last measured offset.
    pub fn server_now(&self, device_now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        Ok(unionpass_core::reminder::server_now(
            device_now,
            self.store().clock_offset()?,
        ))
    }

    /// A campaign as last synced.
    pub fn campaign(&self, id: i64) -> Result<Option<unionpass_core::campaign::Campaign>> {
        self.store().campaign(id)
    }

    /// Measure the device's offset from the server clock (5 exchanges) and keep it. `clock` is
    /// the device clock, read around each exchange.
    pub async fn measure_clock(
        &self,
        clock: impl Fn() -> DateTime<Utc>,
    ) -> Result<Option<unionpass_core::reminder::ClockOffset>> {
        let api = self.api()?;
        let offset = crate::grab::measure_offset(&api, clock, 5).await?;
        if let Some(o) = &offset {
            self.store().set_clock_offset(o)?;
        }
        Ok(offset)
    }

    /// Grab a coupon of `campaign_id`. The key is stored before sending; a network error is
    /// retried with the same key (twice, then the error is returned and the next tap retries
    /// it again). A granted coupon is in the wallet when this returns.
    /// Grab a coupon of `campaign_id`: the answer, or `offline` within [`GRAB_DEADLINE`] (the
    /// key stays stored, so trying again cannot be granted twice).
    pub async fn grab(
        &self,
        campaign_id: i64,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::campaign::GrabOutcome> {
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        let api = self.api()?;
        let key = self.store().grab_key(campaign_id, now)?;
        // a member in a 30-second rush is told within GRAB_DEADLINE; the key is kept, so the
        // next try (the UI retries by itself) is the same request
        let deadline = tokio::time::Instant::now() + GRAB_DEADLINE;
        let answer = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match api.grab(&token, campaign_id, key, left).await {
                Err(e)
                    if e.code() == ErrorCode::Offline
                        && deadline.saturating_duration_since(tokio::time::Instant::now())
                            > std::time::Duration::from_millis(600) =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                Err(e) => {
                    self.ended_if(&e);
                    return Err(e);
                }
                Ok(answer) => break answer,
            }
        };
        self.store().record_grab(&answer)?;
        tracing::info!(
            campaign_id,
            result = answer.outcome.code(),
            replayed = answer.replayed,
            "grab answered"
        );
        Ok(answer.outcome)
    }

    /// Moves and cancellations of activities the member has a sign-up for, found by sync and not
    /// announced yet (see `Background::announce_promotions`).
    pub fn take_activity_notices(
        &self,
        now: DateTime<Utc>,
    ) -> Result<
        Vec<(
            unionpass_core::activity::Activity,
            unionpass_core::activity::ChangeNotice,
        )>,
    > {
        self.store().take_activity_notices(now)
    }

    /// Promotions found by sync and not announced yet (see `Background::announce_promotions`).
    pub fn take_promotions(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<unionpass_core::activity::Activity>> {
        self.store().take_promotions(now)
    }

    /// Rate an activity the member attended (offline works; queued for the server). Judged at
    /// the server's time by this device's clock and the last measured offset, as the screen shows
    /// the form: a phone whose clock is behind is not told "too early" after the end.
    pub fn give_feedback(
        &self,
        activity_id: i64,
        rating: i64,
        comment: &str,
        device_now: DateTime<Utc>,
    ) -> Result<()> {
        let now = self.server_now(device_now)?;
        self.store()
            .give_feedback(activity_id, rating, comment, now)
    }

    /// The activities screen from the store.
    pub fn activities(&self, now: DateTime<Utc>) -> Result<unionpass_core::view::ActivitiesView> {
        self.store().activities(now)
    }

    /// Fetch the live seat counts, and the results of the polls the member voted in, and keep
    /// them (online); the screen from the store either way is the caller's next step.
    pub async fn refresh_activities(&self, now: DateTime<Utc>) -> Result<()> {
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        let api = self.api()?;
        let live = match api.activities(&token).await {
            Ok(l) => l,
            Err(e) => {
                self.ended_if(&e);
                return Err(e);
            }
        };
        self.store().set_activity_counts(&live, now)?;
        let voted = self.store().voted_polls(now)?;
        for poll_id in voted {
            match api.poll_results(&token, poll_id).await {
                Ok(r) => self.store().set_poll_results(&r, now)?,
                Err(e) => tracing::debug!(poll_id, code = %e.code(), "poll results not fetched"),
            }
        }
        Ok(())
    }

    /// The activity as an iCalendar file in the member's language, to add to a calendar.
    pub fn activity_ics(&self, id: i64, now: DateTime<Utc>) -> Result<String> {
        let a = self
            .store()
            .activity(id)?
            .ok_or(ClientError::Refused(ErrorCode::NotFound))?;
        Ok(unionpass_core::activity::ics(&a, self.language()?, now))
    }

    /// "Remind me before sign-up opens" on (at `server_now`) or off.
    pub fn set_opening_reminder(
        &self,
        activity_id: i64,
        on: bool,
        server_now: DateTime<Utc>,
    ) -> Result<()> {
        if on {
            self.store().set_opening_reminder(activity_id, server_now)
        } else {
            self.store().clear_opening_reminder(activity_id)
        }
    }

    /// Activity reminders due at `server_now`, marked fired (see `Store::due_activity_reminders`).
    pub fn due_activity_reminders(
        &self,
        server_now: DateTime<Utc>,
    ) -> Result<Vec<(unionpass_core::activity::Activity, bool)>> {
        self.store().due_activity_reminders(server_now)
    }

    pub fn next_activity_reminder(&self) -> Result<Option<DateTime<Utc>>> {
        self.store().next_activity_reminder()
    }

    /// Vote in a needs poll (offline works; queued for the server).
    pub fn vote(&self, poll_id: i64, option: i64, now: DateTime<Utc>) -> Result<()> {
        self.store().vote(poll_id, option, now)
    }

    /// Sign up: the key is stored before the request leaves, and answered within
    /// [`GRAB_DEADLINE`] (the same race, the same patience); a retry sends the same key.
    pub async fn sign_up(
        &self,
        activity_id: i64,
        companions: i64,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::activity::SignupAnswer> {
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        let api = self.api()?;
        let key = self.store().signup_key(activity_id, companions, now)?;
        let req = unionpass_core::activity::SignupRequest { key, companions };
        let deadline = tokio::time::Instant::now() + GRAB_DEADLINE;
        let answer = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match api.sign_up(&token, activity_id, &req, left).await {
                Err(e)
                    if e.code() == ErrorCode::Offline
                        && deadline.saturating_duration_since(tokio::time::Instant::now())
                            > std::time::Duration::from_millis(600) =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                Err(e) => {
                    self.ended_if(&e);
                    return Err(e);
                }
                Ok(answer) => break answer,
            }
        };
        self.store().record_signup(activity_id, &answer)?;
        tracing::info!(activity_id, "sign-up answered");
        Ok(answer)
    }

    /// Cancel the member's sign-up (online); the freed seats go to the waitlist on the server.
    pub async fn cancel_signup(
        &self,
        activity_id: i64,
    ) -> Result<unionpass_core::activity::MySignup> {
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        match self.api()?.cancel_signup(&token, activity_id).await {
            Ok(mine) => {
                self.store().record_cancel(&mine)?;
                Ok(mine)
            }
            Err(e) => {
                self.ended_if(&e);
                Err(e)
            }
        }
    }

    /// The wallet: expiring soon, then up to `limit` coupons matching `filter`.
    pub fn wallet(
        &self,
        filter: &unionpass_core::wallet::WalletFilter,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::view::WalletView> {
        self.store().wallet(filter, limit, now)
    }

    /// One coupon and the QR of its usage code, for showing at a merchant.
    pub fn coupon(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(unionpass_core::view::CouponView, String)> {
        let view = self
            .store()
            .coupon(id, now)?
            .ok_or(ClientError::InvalidInput("coupon"))?;
        let svg = crate::qr::svg(&view.coupon.code).unwrap_or_default();
        Ok((view, svg))
    }

    /// Mark a coupon used (works offline; sent with the next sync).
    pub fn use_coupon(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::view::CouponView> {
        self.store().use_coupon(id, now)
    }

    /// Queue the revocation of one of the member's devices (sent with the next sync).
    pub fn revoke_device(&self, device_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.store().revoke_device(device_id, now)?;
        Ok(())
    }

    /// Scanner mode: the screen for an event (or the last chosen one).
    pub fn scanner_view(&self, event_id: Option<i64>, now: DateTime<Utc>) -> Result<ScannerView> {
        self.store().scanner_view(event_id, now)
    }

    pub fn set_trust_max_age_days(&self, days: i64) -> Result<()> {
        self.store().set_trust_max_age_days(days)
    }

    /// Check a code typed or read by a hardware scanner; see [`Store::scan`].
    pub fn scan_text(
        &self,
        event_id: i64,
        text: &str,
        device_now: DateTime<Utc>,
    ) -> Result<ScanOutcome> {
        let mut s = self.store();
        // judged, and the check-in stamped, by the server's time (see `live_passport`)
        let now = unionpass_core::reminder::server_now(device_now, s.clock_offset()?);
        let scanner = s.device_id()?;
        let outcome = s.scan(event_id, text, scanner, now)?;
        if let Some(code) = &outcome.by_hand_code {
            let mut kept = self.list_refusals.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= LIST_REFUSALS_KEPT {
                kept.pop_front();
            }
            kept.push_back(ListRefusal {
                event_id,
                text: code.clone(),
                at: outcome.at,
            });
        }
        Ok(outcome)
    }

    /// Let in by hand a member the door list alone refused: staff checked the member's place on
    /// their phone, as the list's age told them to. `text` and `scanned_at` are one of this
    /// run's last refusals by the list ([`ScanOutcome::by_hand_code`] and [`ScanOutcome::at`]),
    /// at most [`LET_IN_WITHIN`] ago; any other is answered `passport_stale` (scan the live code
    /// again). Everything but the list is judged again as at the scan (the code, the event, a
    /// check-in since); the check-in is recorded and sent like any other, marked as let in by
    /// hand, and the server judges it by its own list.
    pub fn let_in(
        &self,
        event_id: i64,
        text: &str,
        scanned_at: DateTime<Utc>,
        device_now: DateTime<Utc>,
    ) -> Result<ScanOutcome> {
        let mut s = self.store();
        let now = unionpass_core::reminder::server_now(device_now, s.clock_offset()?);
        let known = {
            let mut kept = self.list_refusals.lock().unwrap_or_else(|e| e.into_inner());
            kept.retain(|r| now - r.at <= LET_IN_WITHIN);
            kept.iter()
                .any(|r| r.event_id == event_id && r.text == text.trim() && r.at == scanned_at)
        };
        if !known {
            return Ok(ScanOutcome::refused(ErrorCode::PassportStale, now));
        }
        let scanner = s.device_id()?;
        s.scan_by_hand(event_id, text, scanner, scanned_at)
    }

    /// Check the QR code in an image file (PNG or JPEG).
    pub fn scan_image(
        &self,
        event_id: i64,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ScanOutcome> {
        match crate::qr::decode_image(bytes) {
            Some(text) => self.scan_text(event_id, &text, now),
            None => Ok(no_qr(now)),
        }
    }

    /// Check the QR code in a grey-scale camera frame.
    pub fn scan_frame(
        &self,
        event_id: i64,
        width: usize,
        height: usize,
        luma: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<ScanOutcome>> {
        crate::qr::decode_luma(width, height, luma)
            .map(|text| self.scan_text(event_id, &text, now))
            .transpose()
    }
}

fn language_of(s: &Store, profile: Option<&unionpass_core::api::Profile>) -> Result<Lang> {
    Ok(s.language()?
        .or(profile.and_then(|p| p.language))
        .unwrap_or_default())
}

/// A member number as typed, trimmed; none typed is refused before anything is sent.
fn typed_member_no(typed: &str) -> Result<&str> {
    let n = typed.trim();
    if n.is_empty() {
        return Err(ClientError::InvalidInput("member number"));
    }
    Ok(n)
}
