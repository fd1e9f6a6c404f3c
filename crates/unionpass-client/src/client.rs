//! The facade the Tauri shell calls. Every method takes `now` from the caller.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use unionpass_core::api::{LoginRequest, MutationOp};
use unionpass_core::view::{PassportView, SyncState};
use unionpass_core::Lang;

use crate::api::{Api, ServerUrl};
use crate::error::{ClientError, Result};
use crate::secrets::{Sensitive, SessionSecret};
use crate::store::{Store, SyncLogEntry};
use crate::sync::{self, SyncReport};

pub use unionpass_core::view::Snapshot;

/// The file name of the local store inside the data dir.
pub const DB_FILE: &str = "unionpass.sqlite";

pub struct Client {
    store: Mutex<Store>,
    data_dir: PathBuf,
    syncing: AtomicBool,
}

/// Clears the `syncing` flag however the sync ends.
struct SyncingGuard<'a>(&'a AtomicBool);

impl Drop for SyncingGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Client {
    /// Open the device's store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Client> {
        let store = Store::open(&data_dir.join(DB_FILE))?;
        Ok(Client {
            store: Mutex::new(store),
            data_dir: data_dir.to_path_buf(),
            syncing: AtomicBool::new(false),
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
        Ok(Api::new(ServerUrl::parse(&url)?))
    }

    /// Whether a member is signed in on this device (their data is in the store).
    pub fn is_logged_in(&self) -> Result<bool> {
        Ok(self.store().member_id()?.is_some())
    }

    /// Everything the screens show, from the local store only (no network).
    pub fn snapshot(&self, now: DateTime<Utc>) -> Result<Snapshot> {
        let s = self.store();
        let profile = s.profile()?;
        let passport = s.passport()?.map(|p| PassportView {
            qr_svg: crate::qr::svg(&p.credential).unwrap_or_default(),
            expired: now >= p.valid_until,
            credential: p.credential,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
        });
        Ok(Snapshot {
            logged_in: s.member_id()?.is_some(),
            language: s
                .language()?
                .or(profile.as_ref().and_then(|p| p.language))
                .unwrap_or_default(),
            server_url: s.server_url()?,
            profile,
            passport,
            sync: SyncState {
                syncing: self.syncing.load(Ordering::SeqCst),
                last_ok_at: s.last_sync_ok_at()?,
                last_error: s.last_sync_error()?,
                pending: s.pending_count()?,
                rejected: s.rejected()?.len() as i64,
            },
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
        let member_no = member_no.trim();
        if member_no.is_empty() {
            return Err(ClientError::InvalidInput("member number"));
        }
        if password.is_empty() {
            return Err(ClientError::InvalidInput("password"));
        }
        let url = ServerUrl::parse(server_url)?;
        let api = Api::new(url.clone());
        let secret = self.secret()?;
        let resp = api
            .login(&LoginRequest {
                member_no: member_no.to_string(),
                password: password.to_string(),
                device_name: device_name.to_string(),
            })
            .await?;
        if self.is_logged_in()? {
            self.store
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .wipe_member_data()?;
        }
        secret.store(&Sensitive::new(resp.token))?;
        self.store().set_account(url.as_str(), resp.member_id)?;
        tracing::info!(member_id = resp.member_id, "signed in");
        self.sync(now).await
    }

    /// Push the outbox and pull changes. The outcome is logged in the store either way.
    pub async fn sync(&self, now: DateTime<Utc>) -> Result<SyncReport> {
        if !self.is_logged_in()? {
            return Err(ClientError::NotLoggedIn);
        }
        let token = self.secret()?.load()?.ok_or(ClientError::NotLoggedIn)?;
        let api = self.api()?;
        self.syncing.store(true, Ordering::SeqCst);
        let _guard = SyncingGuard(&self.syncing);
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
        self.store().log_sync(&entry)?;
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

    /// Choose the UI language. Takes effect at once; when signed in it is also queued for the
    /// server, so the member's other devices follow.
    pub fn set_language(&self, lang: Lang, now: DateTime<Utc>) -> Result<()> {
        let s = self.store();
        s.set_language(lang)?;
        if s.member_id()?.is_some() {
            s.enqueue(MutationOp::SetLanguage { language: lang }, now)?;
        }
        Ok(())
    }

    /// Sign out: tell the server (best effort), delete the token, wipe the member's local data.
    pub async fn logout(&self) -> Result<()> {
        let secret = self.secret()?;
        if let (Ok(api), Ok(Some(token))) = (self.api(), secret.load()) {
            if let Err(e) = api.logout(&token).await {
                tracing::info!(code = %e.code(), "server logout failed; the token is deleted locally anyway");
            }
        }
        secret.delete()?;
        self.store().wipe_member_data()?;
        tracing::info!("signed out");
        Ok(())
    }
}
