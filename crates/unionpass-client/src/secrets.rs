//! Secrets (the session token and the device's passport signing key) live in the OS keyring
//! only: never in SQLite, logs or files.
//!
//! On Linux the store is the Secret Service (GNOME Keyring, KWallet) over D-Bus; on macOS and iOS
//! the Keychain; on Windows the Credential Manager. There is no plaintext or in-memory fallback:
//! without a keyring, login fails with [`crate::ClientError::Keyring`], and on a platform without
//! a secure store at all with [`crate::ClientError::NoSecureStore`].

use std::sync::Once;

use base64::Engine;

use uuid::Uuid;

use crate::error::{ClientError, Result};

const SERVICE: &str = "unionpass";

/// A value that must not be printed. `Debug` shows `<redacted>`; read it with [`Sensitive::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Whether this platform has a secure store the app is built with: the Secret Service on Linux,
/// the Keychain on macOS and iOS, the Credential Manager on Windows. Elsewhere (Android, until
/// its Keystore is wired in: see ARCHITECTURE.md) the app refuses to sign in rather than keep
/// the secrets where they would not survive or would not be safe.
pub const SECURE_STORE: bool = cfg!(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "ios",
    windows
));

fn choose_backend() {
    static ONCE: Once = Once::new();
    // Explicit, so a build never silently falls back to keyring's non-persistent mock store.
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        keyring::set_default_credential_builder(
            keyring::secret_service::default_credential_builder(),
        );
        #[cfg(target_os = "macos")]
        keyring::set_default_credential_builder(keyring::macos::default_credential_builder());
        #[cfg(target_os = "ios")]
        keyring::set_default_credential_builder(keyring::ios::default_credential_builder());
        #[cfg(windows)]
        keyring::set_default_credential_builder(keyring::windows::default_credential_builder());
    });
}

fn keyring_err(e: keyring::Error) -> ClientError {
    ClientError::Keyring(e.to_string())
}

/// One named entry of this app in the OS keyring.
struct Entry(keyring::Entry);

impl Entry {
    fn new(name: &str) -> Result<Entry> {
        if !SECURE_STORE {
            return Err(ClientError::NoSecureStore);
        }
        choose_backend();
        Ok(Entry(
            keyring::Entry::new(SERVICE, name).map_err(keyring_err)?,
        ))
    }

    fn set(&self, secret: &Sensitive<String>) -> Result<()> {
        self.0.set_password(secret.expose()).map_err(keyring_err)
    }

    /// The stored secret, or `None` when there is none.
    fn get(&self) -> Result<Option<Sensitive<String>>> {
        match self.0.get_password() {
            Ok(t) => Ok(Some(Sensitive::new(t))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_err(e)),
        }
    }

    /// Remove the secret; removing a missing one is not an error.
    fn delete(&self) -> Result<()> {
        match self.0.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_err(e)),
        }
    }
}

/// The keyring entry holding one device's session token.
pub struct SessionSecret(Entry);

impl SessionSecret {
    /// The entry for this installation (`device_id` comes from the local store).
    pub fn for_device(device_id: Uuid) -> Result<SessionSecret> {
        Ok(SessionSecret(Entry::new(&format!("session:{device_id}"))?))
    }

    pub fn store(&self, token: &Sensitive<String>) -> Result<()> {
        self.0.set(token)
    }

    /// The token, or `None` when none is stored.
    pub fn load(&self) -> Result<Option<Sensitive<String>>> {
        self.0.get()
    }

    /// Remove the token; removing a missing one is not an error.
    pub fn delete(&self) -> Result<()> {
        self.0.delete()
    }
}

/// A sign-out made while the server was out of reach: the ended session's token and its server,
/// kept in the keyring until the server has been told (`Client::finish_pending_sign_out`).
pub struct PendingSignOut(Entry);

impl PendingSignOut {
    pub fn for_device(device_id: Uuid) -> Result<PendingSignOut> {
        Ok(PendingSignOut(Entry::new(&format!(
            "pending-sign-out:{device_id}"
        ))?))
    }

    /// Keep `token` (of `server`) until the server is told.
    pub fn store(&self, server: &str, token: &Sensitive<String>) -> Result<()> {
        self.0
            .set(&Sensitive::new(format!("{server}\n{}", token.expose())))
    }

    /// The server and token waiting to be signed out, if any.
    pub fn load(&self) -> Result<Option<(String, Sensitive<String>)>> {
        Ok(self.0.get()?.and_then(|v| {
            v.expose()
                .split_once('\n')
                .map(|(server, token)| (server.to_string(), Sensitive::new(token.to_string())))
        }))
    }

    pub fn delete(&self) -> Result<()> {
        self.0.delete()
    }
}

/// The keyring entry holding the device's Ed25519 passport key (the private half of the key the
/// server bound into the level-1 credential). Made at login, deleted at logout.
pub struct DeviceKeySecret(Entry);

impl DeviceKeySecret {
    pub fn for_device(device_id: Uuid) -> Result<DeviceKeySecret> {
        Ok(DeviceKeySecret(Entry::new(&format!(
            "device-key:{device_id}"
        ))?))
    }

    /// Make a new key and keep it in the keyring; returns it.
    pub fn create(&self) -> Result<ed25519_dalek::SigningKey> {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        self.0.set(&Sensitive::new(
            base64::engine::general_purpose::STANDARD.encode(key.to_bytes()),
        ))?;
        Ok(key)
    }

    pub fn load(&self) -> Result<Option<ed25519_dalek::SigningKey>> {
        let Some(text) = self.0.get()? else {
            return Ok(None);
        };
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(text.expose())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| ClientError::Keyring("the stored device key is damaged".into()))?;
        Ok(Some(ed25519_dalek::SigningKey::from_bytes(&bytes)))
    }

    pub fn delete(&self) -> Result<()> {
        self.0.delete()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_debug_is_redacted() {
        let s = Sensitive::new("tok-123".to_string());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "tok-123");
    }
}
