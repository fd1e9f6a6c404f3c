//! Installing a newer version, on desktops installed from a package: Tauri's updater plugin
//! asks the member's own union server (`GET /v1/update/{target}/{arch}/{bundle}/{current}`),
//! downloads the package it names, checks its minisign signature against the union's release
//! key (`plugins.updater.pubkey` in `tauri.conf.json`, and the version the signature was made
//! for: `requireSignedVersion`), has the system install it (deb and rpm through `pkexec`, the
//! AppImage by replacing itself, the Windows installer, the macOS app bundle), then restarts.
//! Phones are updated by their stores; a copy run from the source tree cannot replace itself.
//! The policy (which version, for which package) lives in `unionpass_core::api` and the server.

use unionpass_core::ErrorCode;

use crate::commands::CmdError;

/// Whether this copy was installed from a package the updater can replace (the bundler writes
/// the package kind into the installed binary; on macOS, where every copy says "app", it must
/// also run from inside an app bundle).
#[cfg(desktop)]
pub fn installable() -> bool {
    let packaged = tauri::utils::platform::bundle_type().is_some();
    if cfg!(target_os = "macos") {
        packaged
            && std::env::current_exe()
                .is_ok_and(|p| p.to_string_lossy().contains(".app/Contents/MacOS/"))
    } else {
        packaged
    }
}

#[cfg(mobile)]
pub fn installable() -> bool {
    false
}

/// How long the package may take to arrive before the member is told to try again.
#[cfg(desktop)]
const DOWNLOAD_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The update endpoint on `server`, with the placeholders the updater fills in.
pub fn endpoint(server: &str) -> Option<tauri::Url> {
    let url = format!(
        "{}/v1/update/{{{{target}}}}/{{{{arch}}}}/{{{{bundle_type}}}}/{{{{current_version}}}}",
        server.trim_end_matches('/')
    );
    tauri::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// Check, download, verify and install: the version installed (the caller restarts the app),
/// or `None` when the server has nothing newer for this copy.
#[cfg(desktop)]
pub async fn install(app: &tauri::AppHandle, server: &str) -> Result<Option<String>, CmdError> {
    use tauri_plugin_updater::UpdaterExt;
    if !installable() {
        return Err(CmdError::code(ErrorCode::UpdateNotPackaged));
    }
    let url = endpoint(server).ok_or(CmdError::code(ErrorCode::InvalidServerUrl))?;
    let updater = app
        .updater_builder()
        .endpoints(vec![url])
        .and_then(|b| b.timeout(std::time::Duration::from_secs(60)).build())
        .map_err(failed)?;
    let Some(update) = updater.check().await.map_err(failed)? else {
        return Ok(None);
    };
    let version = update.version.clone();
    tracing::info!(%version, "downloading the update");
    // the download verifies the signature; it is bounded (the plugin's timeout covers the check)
    let bytes = tokio::time::timeout(DOWNLOAD_FOR, update.download(|_, _| {}, || {}))
        .await
        .map_err(|_| {
            tracing::warn!(%version, "update download timed out");
            CmdError::code(ErrorCode::Offline)
        })?
        .map_err(failed)?;
    // installing waits for the system (pkexec's password prompt, the package manager): off the
    // async workers
    tauri::async_runtime::spawn_blocking(move || update.install(bytes))
        .await
        .map_err(|_| CmdError::code(ErrorCode::UpdateInstallFailed))?
        .map_err(failed)?;
    tracing::info!(%version, "update installed");
    Ok(Some(version))
}

#[cfg(mobile)]
pub async fn install(_app: &tauri::AppHandle, _server: &str) -> Result<Option<String>, CmdError> {
    Err(CmdError::code(ErrorCode::UpdateNotPackaged))
}

#[cfg(desktop)]
fn failed(e: tauri_plugin_updater::Error) -> CmdError {
    let code = code_of(&e);
    tracing::warn!(code = %code, error = %e, "update not installed");
    CmdError::code(code)
}

/// The stable code of an updater failure, by its kind.
#[cfg(desktop)]
fn code_of(e: &tauri_plugin_updater::Error) -> ErrorCode {
    use tauri_plugin_updater::Error as E;
    match e {
        E::Minisign(_)
        | E::Base64(_)
        | E::SignatureUtf8(_)
        | E::SignedVersionMismatch { .. }
        | E::MissingSignedVersion => ErrorCode::UpdateSignatureInvalid,
        E::Reqwest(_) => ErrorCode::Offline,
        // the server answered the check or the download with an error status
        E::Network(_) => ErrorCode::UpdateDownloadFailed,
        E::InsecureTransportProtocol => ErrorCode::InsecureServerUrl,
        E::UnsupportedOs | E::UnsupportedArch | E::InvalidUpdaterFormat => {
            ErrorCode::UpdateNotPackaged
        }
        E::Serialization(_)
        | E::Semver(_)
        | E::ReleaseNotFound
        | E::TargetNotFound(_)
        | E::TargetsNotFound(_)
        | E::UrlParse(_) => ErrorCode::BadResponse,
        _ => ErrorCode::UpdateInstallFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[cfg(desktop)]
    #[test]
    fn updater_failures_map_to_codes_by_kind() {
        use super::code_of;
        use tauri_plugin_updater::Error as E;
        use unionpass_core::ErrorCode;
        let cases = [
            (
                E::SignedVersionMismatch {
                    signed: "0.3.0".into(),
                    announced: "0.4.0".into(),
                },
                ErrorCode::UpdateSignatureInvalid,
            ),
            (E::MissingSignedVersion, ErrorCode::UpdateSignatureInvalid),
            (
                E::SignatureUtf8("x".into()),
                ErrorCode::UpdateSignatureInvalid,
            ),
            // a download answered 404 or 500: not the member's connection, nor the package
            // manager; worth trying again later
            (
                E::Network("404 Not Found".into()),
                ErrorCode::UpdateDownloadFailed,
            ),
            (E::AuthenticationFailed, ErrorCode::UpdateInstallFailed),
            (E::DebInstallFailed, ErrorCode::UpdateInstallFailed),
            (E::PackageInstallFailed, ErrorCode::UpdateInstallFailed),
            (E::InsecureTransportProtocol, ErrorCode::InsecureServerUrl),
            (E::UnsupportedOs, ErrorCode::UpdateNotPackaged),
            (E::InvalidUpdaterFormat, ErrorCode::UpdateNotPackaged),
            (E::ReleaseNotFound, ErrorCode::BadResponse),
            (
                E::TargetNotFound("linux-x86_64".into()),
                ErrorCode::BadResponse,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(code_of(&error), code, "{error}");
        }
    }

    #[test]
    fn the_endpoint_is_on_the_members_own_server_with_the_updaters_placeholders() {
        let url = endpoint("https://union.example/").unwrap().to_string();
        // the placeholders survive parsing (percent-encoded in the path; the plugin replaces
        // both spellings)
        assert!(url.starts_with("https://union.example/v1/update/"), "{url}");
        for part in ["target", "arch", "bundle_type", "current_version"] {
            assert!(
                url.contains(&format!("%7B%7B{part}%7D%7D"))
                    || url.contains(&format!("{{{{{part}}}}}")),
                "{url}"
            );
        }
        assert!(endpoint("ftp://union.example").is_none());
        assert!(endpoint("not a url").is_none());
    }
}
