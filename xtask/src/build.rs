//! The UI (wasm) and the native binaries.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::util::{cargo, output, root, run, target_dir};

/// Files of `assets/` copied next to the wasm in `ui/dist`.
const ASSETS: &[&str] = &["index.html", "boot.js", "start.js", "app.css"];
const WASM_OPT_FLAGS: &[&str] = &[
    "-Oz",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-mutable-globals",
];

/// Whether rustup's stable toolchain has the wasm32 standard library (a normal laptop).
fn rustup_has_wasm32() -> bool {
    output(Command::new("rustup").args(["+stable", "target", "list", "--installed"]))
        .is_some_and(|s| s.lines().any(|l| l.trim() == "wasm32-unknown-unknown"))
}

fn ui_cargo() -> Command {
    let ui = root().join("ui");
    let target = target_dir().join("ui");
    let mut c;
    if rustup_has_wasm32() {
        c = Command::new("cargo");
        c.args([
            "+stable",
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
        ]);
    } else {
        // Debian's rustc-web builds std for wasm32 itself (ui/.cargo/config.toml). RUSTC_BOOTSTRAP is
        // set for this process only: exported around the native build it would rebuild everything.
        c = Command::new("/usr/bin/cargo");
        c.args(["build", "--release"]);
        c.env("RUSTC_BOOTSTRAP", "1").env("RUSTC", "/usr/bin/rustc");
    }
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
    ] {
        c.env_remove(var);
    }
    c.arg("--target-dir").arg(&target).current_dir(ui);
    c
}

/// Write `bytes` to `path` unless it already holds them, so the app's embedded assets (and the
/// app itself) are not rebuilt when nothing changed.
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).ok().as_deref() != Some(bytes) {
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub fn ui() -> anyhow::Result<()> {
    run(&mut ui_cargo())?;
    let wasm = target_dir().join("ui/wasm32-unknown-unknown/release/unionpass-ui.wasm");
    let staging = target_dir().join("ui-staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    run(Command::new("wasm-bindgen")
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "unionpass-ui",
            "--out-dir",
        ])
        .arg(&staging)
        .arg(&wasm))?;
    let bg = staging.join("unionpass-ui_bg.wasm");
    let wasm_opt = root().join("node_modules/.bin/wasm-opt");
    if wasm_opt.exists() {
        run(Command::new(&wasm_opt)
            .args(WASM_OPT_FLAGS)
            .arg(&bg)
            .arg("-o")
            .arg(&bg))?;
    } else {
        eprintln!("[xtask] wasm-opt (npm binaryen) missing: shipping the unoptimised wasm");
    }
    let dist = root().join("ui/dist");
    std::fs::create_dir_all(&dist)?;
    for entry in std::fs::read_dir(&staging)? {
        let path = entry?.path();
        write_if_changed(
            &dist.join(path.file_name().expect("file")),
            &std::fs::read(&path)?,
        )?;
    }
    for asset in ASSETS {
        write_if_changed(
            &dist.join(asset),
            &std::fs::read(root().join("assets").join(asset))?,
        )?;
    }
    Ok(())
}

/// The feature set every native build and test run uses, so cargo never rebuilds Tauri twice.
pub const FEATURES: &str = "unionpass-app/custom-protocol";

pub fn native(release: bool) -> anyhow::Result<()> {
    let mut c = cargo();
    // not xtask: rebuilding the running xtask binary would delete it under our feet
    c.args([
        "build",
        "--workspace",
        "--exclude",
        "xtask",
        "--bins",
        "--features",
        FEATURES,
    ]);
    if release {
        c.arg("--release");
    }
    run(&mut c)
}

pub fn all(release: bool) -> anyhow::Result<()> {
    ui()?;
    native(release)
}

/// Only what the grab bench runs: the server and the load generator, release.
pub fn server_release() -> anyhow::Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "unionpass-server",
        "-p",
        "unionpass-loadgen",
    ]))
}
