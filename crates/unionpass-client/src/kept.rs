//! The passport kept in a store this version cannot open.
//!
//! A store written by a newer version of the app is refused whole ([`crate::Client::open`] fails
//! with `database_too_new`, and nothing is written to it). A member whose app went back a
//! version (reinstalled from an older package, a backup restored) would then stand at a door
//! with no passport. [`KeptPassport::read`] reads, read-only, the little the passport needs: the
//! credential, whose it is, the measured clock offset, and the device key from the keyring. A
//! newer store that keeps any of it differently is an error (the screen then shows the way to
//! update, as before), never a guess.

use std::path::Path;

use chrono::{DateTime, Utc};
use unionpass_core::api::{PassportInfo, Profile};
use unionpass_core::reminder::ClockOffset;
use unionpass_core::view::{self, LivePassport, PassportView};

use crate::client::{live_code, presentable, DB_FILE};
use crate::error::{ClientError, Result};
use crate::secrets::DeviceKeySecret;
use crate::store::Store;

/// What the passport needs, read once from a store this version cannot open. The store is
/// closed again before [`KeptPassport::read`] returns; the codes are made from memory.
pub struct KeptPassport {
    profile: Option<Profile>,
    passport: PassportInfo,
    offset: Option<ClockOffset>,
    key: ed25519_dalek::SigningKey,
}

impl KeptPassport {
    /// Read the passport kept in `data_dir`'s store without writing to it. Fails when there is
    /// none (`device_not_enrolled`), when this device's key is not in the keyring or belongs to
    /// another credential, or when the store keeps these things in a way this version does not
    /// know.
    pub fn read(data_dir: &Path) -> Result<KeptPassport> {
        let store = Store::open_read_only(&data_dir.join(DB_FILE))?;
        let device_id = store
            .stored_device_id()?
            .ok_or(ClientError::DeviceNotEnrolled)?;
        let passport = store.passport()?.ok_or(ClientError::DeviceNotEnrolled)?;
        let offset = store.clock_offset()?;
        // whose it is, shown beside the code (which does not need it): only when the profile
        // names the member the credential was issued to
        let profile = store.profile().ok().flatten();
        drop(store);
        let key = DeviceKeySecret::for_device(device_id)?
            .load()?
            .ok_or(ClientError::DeviceNotEnrolled)?;
        // a credential this key cannot present is no passport to show
        let (_, credential) = presentable(&passport, &key)?;
        let holder = credential.claims.member_no;
        Ok(KeptPassport {
            profile: profile.filter(|p| p.member_no == holder),
            passport,
            offset,
            key,
        })
    }

    /// Whose passport it is and until when, at the device's `now` (expired by the server's
    /// time, as the live code is made).
    pub fn view(&self, now: DateTime<Utc>) -> view::KeptPassport {
        let server_now = unionpass_core::reminder::server_now(now, self.offset);
        view::KeptPassport {
            profile: self.profile.clone(),
            passport: PassportView {
                valid_from: self.passport.valid_from,
                valid_until: self.passport.valid_until,
                expired: server_now >= self.passport.valid_until,
            },
        }
    }

    /// The QR for the time step the server's time falls in, as the passport screen shows it.
    pub fn live(&self, device_now: DateTime<Utc>) -> Result<LivePassport> {
        live_code(&self.passport, &self.key, self.offset, device_now)
    }
}
