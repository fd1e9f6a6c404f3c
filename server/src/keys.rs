//! The union's Ed25519 signing keys, kept as files with 0600 permissions in a 0700 folder.
//!
//! The first start creates a key. Every `*.key` file in the folder is loaded; the newest signs new
//! passports, all are published at `/v1/keys` so that credentials signed by an older key verify
//! until they expire. A key file readable by others is refused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use unionpass_core::api::UnionKey;
use unionpass_core::passport::Kid;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("union key folder {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("union key file {0} is readable by other users; run `chmod 600` on it")]
    TooOpen(PathBuf),
    #[error("union key file {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    kid: String,
    created_at: DateTime<Utc>,
    /// The 32-byte Ed25519 secret key, hex.
    secret: String,
}

pub struct LoadedKey {
    pub kid: Kid,
    pub created_at: DateTime<Utc>,
    pub signing: SigningKey,
}

pub struct UnionKeys {
    /// Oldest first; the last one signs.
    keys: Vec<LoadedKey>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl UnionKeys {
    /// Load the keys in `dir`, creating the folder and a first key if there is none.
    pub fn load_or_create(dir: &Path, now: DateTime<Utc>) -> Result<UnionKeys, KeyError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("key") {
                continue;
            }
            keys.push(Self::read(&path)?);
        }
        if keys.is_empty() {
            keys.push(Self::create(dir, now)?);
        }
        keys.sort_by_key(|k| k.created_at);
        Ok(UnionKeys { keys })
    }

    fn read(path: &Path) -> Result<LoadedKey, KeyError> {
        let meta = std::fs::metadata(path).map_err(io(path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::TooOpen(path.to_path_buf()));
        }
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let damaged = |reason: String| KeyError::Damaged {
            path: path.to_path_buf(),
            reason,
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        let secret =
            unhex32(&file.secret).ok_or_else(|| damaged("secret is not 32 hex bytes".into()))?;
        let signing = SigningKey::from_bytes(&secret);
        let kid = Kid::of(&signing.verifying_key());
        if kid.to_hex() != file.kid {
            return Err(damaged(format!(
                "kid {} does not match the key ({})",
                file.kid,
                kid.to_hex()
            )));
        }
        Ok(LoadedKey {
            kid,
            created_at: file.created_at,
            signing,
        })
    }

    /// Create a new key file; it becomes the signing key on the next load.
    pub fn create(dir: &Path, now: DateTime<Utc>) -> Result<LoadedKey, KeyError> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = Kid::of(&signing.verifying_key());
        let file = KeyFile {
            kid: kid.to_hex(),
            created_at: now,
            secret: hex(signing.as_bytes()),
        };
        let path = dir.join(format!(
            "union-{}-{}.key",
            now.format("%Y%m%d%H%M%S"),
            kid.to_hex()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(
            serde_json::to_string_pretty(&file)
                .expect("key file serializes")
                .as_bytes(),
        )
        .and_then(|_| f.sync_all())
        .map_err(io(&path))?;
        tracing::info!(kid = %kid.to_hex(), "created a new union signing key");
        Ok(LoadedKey {
            kid,
            created_at: now,
            signing,
        })
    }

    /// The key that signs new credentials.
    pub fn current(&self) -> &LoadedKey {
        self.keys.last().expect("at least one key is loaded")
    }

    pub fn verifying_keys(&self) -> Vec<VerifyingKey> {
        self.keys
            .iter()
            .map(|k| k.signing.verifying_key())
            .collect()
    }

    /// The public keys, as `/v1/keys` publishes them.
    pub fn public(&self) -> Vec<UnionKey> {
        self.keys
            .iter()
            .map(|k| UnionKey {
                kid: k.kid.to_hex(),
                alg: "Ed25519".into(),
                public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(k.signing.verifying_key().as_bytes()),
                created_at: k.created_at,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_with_private_permissions_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let t0: DateTime<Utc> = "2026-11-29T00:00:00Z".parse().unwrap();
        let first = UnionKeys::load_or_create(dir.path(), t0).unwrap();
        let kid = first.current().kid;
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
            0o700
        );

        let again = UnionKeys::load_or_create(dir.path(), t0).unwrap();
        assert_eq!(
            again.current().kid,
            kid,
            "the same key is loaded, not a new one"
        );

        UnionKeys::create(dir.path(), "2026-12-01T00:00:00Z".parse().unwrap()).unwrap();
        let rotated = UnionKeys::load_or_create(dir.path(), t0).unwrap();
        assert_ne!(rotated.current().kid, kid, "the newest key signs");
        assert_eq!(rotated.public().len(), 2, "old keys stay published");
    }

    #[test]
    fn a_world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t0: DateTime<Utc> = "2026-11-29T00:00:00Z".parse().unwrap();
        UnionKeys::load_or_create(dir.path(), t0).unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            UnionKeys::load_or_create(dir.path(), t0),
            Err(KeyError::TooOpen(_))
        ));
    }
}
