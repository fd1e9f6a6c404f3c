//! Idempotent installs for a fresh Debian 12 machine (only the package registries are reachable):
//! Debian packages, wasm-bindgen-cli, tauri-driver, cargo-nextest, wasm-opt, the API fuzz's Python
//! tools, and PostgreSQL up.

use std::process::Command;

use anyhow::{bail, Context};

use crate::util::{have, output, root, run as sh, target_dir};

/// Debian packages: WebKitGTK and friends for Tauri, Debian's rustc-web + std source + lld for the
/// wasm build, Xvfb/D-Bus/gnome-keyring for a headless window and keyring, WebKitWebDriver for
/// E2E, ImageMagick for screenshots and icons, a CJK font so Chinese renders, Python's venv for the
/// API fuzz's tools.
const APT: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libssl-dev",
    "libdbus-1-dev",
    "libwebkit2gtk-4.1-dev",
    "libsoup-3.0-dev",
    "libjavascriptcoregtk-4.1-dev",
    "librsvg2-dev",
    "libayatana-appindicator3-dev",
    "libxdo-dev",
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "lld-22",
    "xvfb",
    "xauth",
    "dbus",
    "dbus-x11",
    "gnome-keyring",
    "webkit2gtk-driver",
    "imagemagick",
    "fonts-wqy-zenhei",
    "python3-venv",
];

const TAURI_DRIVER: &str = "2.1.0";
/// cargo-nextest runs the tests (test groups, time limits, a JUnit report); any 0.9 release.
const NEXTEST: &str = "^0.9";

/// The API fuzz (`crate::fuzz`): schemathesis and openapi-spec-validator, from PyPI, pinned.
const PYTHON_TOOLS: &[&str] = &["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"];

/// The virtualenv the Python tools live in (under the target dir, out of the system's way).
pub fn venv() -> std::path::PathBuf {
    target_dir().join("py")
}

/// Make the virtualenv and install the pinned tools into it, unless they are there already.
fn python_tools() -> anyhow::Result<()> {
    let venv = venv();
    let pip = venv.join("bin/pip");
    let installed = output(Command::new(&pip).args(["freeze"])).unwrap_or_default();
    if PYTHON_TOOLS
        .iter()
        .all(|t| installed.lines().any(|l| l == *t))
    {
        return Ok(());
    }
    if !pip.exists() {
        sh(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    sh(Command::new(&pip)
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PYTHON_TOOLS))
}

fn missing_packages() -> Vec<&'static str> {
    APT.iter()
        .copied()
        .filter(|p| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect()
}

fn apt() -> anyhow::Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("[xtask] installing Debian packages: {}", missing.join(" "));
    let sudo: &[&str] = if output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0") {
        &[]
    } else {
        &["sudo"]
    };
    let apt_get = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut c = Command::new(all[0]);
        c.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    sh(&mut apt_get(&["update", "-qq"]))?;
    let mut install = apt_get(&["install", "-y", "-qq"]);
    install.args(&missing);
    sh(&mut install)
}

/// The wasm-bindgen version pinned in ui/Cargo.lock: the CLI must be exactly this one.
pub fn wasm_bindgen_version() -> anyhow::Result<String> {
    let lock =
        std::fs::read_to_string(root().join("ui/Cargo.lock")).context("reading ui/Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    bail!("ui/Cargo.lock names no wasm-bindgen version")
}

fn cargo_install(krate: &str, version: &str) -> anyhow::Result<()> {
    // --locked can fail when the registry mirror lacks a newest pinned dependency: retry without
    let locked = Command::new("cargo")
        .args(["install", krate, "--version", version, "--locked"])
        .status()?;
    if locked.success() {
        return Ok(());
    }
    sh(Command::new("cargo").args(["install", krate, "--version", version]))
}

fn tools() -> anyhow::Result<()> {
    let wb = wasm_bindgen_version()?;
    let have_wb = output(Command::new("wasm-bindgen").arg("--version"))
        .is_some_and(|v| v.split_whitespace().nth(1) == Some(wb.as_str()));
    if !have_wb {
        cargo_install("wasm-bindgen-cli", &wb)?;
    }
    let have_td =
        output(Command::new("tauri-driver").arg("--help")).is_some() || (have("tauri-driver"));
    if !have_td {
        cargo_install("tauri-driver", TAURI_DRIVER)?;
    }
    if output(Command::new("cargo").args(["nextest", "--version"])).is_none() {
        cargo_install("cargo-nextest", NEXTEST)?;
    }
    if !root().join("node_modules/.bin/wasm-opt").exists()
        || !root().join("node_modules/.bin/tauri").exists()
        || !root().join("node_modules/axe-core/axe.min.js").exists()
    {
        sh(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root()))?;
    }
    Ok(())
}

/// The tests need PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), as these machines
/// have it; start the cluster when it is installed but down.
fn postgres() -> anyhow::Result<()> {
    let ready = || {
        Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready() {
        return Ok(());
    }
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        bail!("PostgreSQL is not installed: install it (apt-get install postgresql) with trust auth for user postgres on 127.0.0.1:5432, or set UNIONPASS_TEST_PG to a server where tests may create databases");
    }
    for v in &versions {
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", v, "main", "start"])
            .status();
    }
    for _ in 0..50 {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    bail!("PostgreSQL did not come up on 127.0.0.1:5432")
}

pub fn run() -> anyhow::Result<()> {
    if cfg!(target_os = "linux") && have("apt-get") {
        apt()?;
        // Node.js comes with these machines; Debian's npm conflicts with it, so only add it if absent
        if !have("npm") {
            sh(Command::new("apt-get")
                .args(["install", "-y", "-qq", "npm"])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
        }
    } else {
        eprintln!(
            "[xtask] not a Debian machine: install WebKitGTK, Xvfb and a wasm32 toolchain yourself"
        );
    }
    tools()?;
    python_tools()?;
    if std::env::var_os("UNIONPASS_TEST_PG").is_none() {
        postgres()?;
    }
    Ok(())
}
