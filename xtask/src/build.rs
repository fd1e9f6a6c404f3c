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

/// Flags for the wasm build, on every route (measured in bench/RESULTS.md, "wasm size"):
/// Leptos type-erases components and reactive children (one `Arc<Mutex<dyn FnMut>>` per closure
/// instead of a monomorphised render path per call site; 1,338 → 1,066 KB).
const UI_RUSTFLAGS: &[&str] = &["--cfg", "erase_components"];
/// Only where std is built here (Debian's rustc-web, `RUSTC_BOOTSTRAP=1`), with std's
/// size-optimised implementations: `Debug` formatting compiled to nothing (the UI never shows
/// it), panics without file and line (about 1,000 distinct locations), and a panic that stops
/// at once, without formatting its message (`immediate-abort`): 1,066 → 987 KB. A UI panic
/// still reaches the log: it surfaces as a JavaScript error (`RuntimeError: unreachable`) with
/// its stack, which `assets/boot.js` sends to the shell's `log_ui_panic`; what is lost is the
/// panic's message and line.
const UI_RUSTFLAGS_BUILD_STD: &[&str] = &[
    "-Zfmt-debug=none",
    "-Zlocation-detail=none",
    "-Zunstable-options",
    "-Cpanic=immediate-abort",
];

/// `--remap-path-prefix` for the source roots whose paths panics carry in the wasm (registry,
/// std, this checkout): a panic still names its file and line, in a few bytes instead of a
/// hundred.
fn remap_flags(sysroot: Option<String>) -> Vec<String> {
    let mut roots = Vec::new();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    if let Some(Ok(dirs)) = cargo_home.map(|h| std::fs::read_dir(h.join("registry/src"))) {
        roots.extend(dirs.flatten().map(|d| d.path()));
    }
    if let Some(sysroot) = sysroot {
        roots.push(Path::new(sysroot.trim()).join("lib/rustlib/src/rust"));
    }
    roots.push(root());
    // in one order whatever the directory listing's: changed flags would rebuild std
    roots.sort();
    roots
        .iter()
        .map(|r| format!("--remap-path-prefix={}/=", r.display()))
        .collect()
}

fn ui_cargo() -> Command {
    let ui = root().join("ui");
    let target = target_dir().join("ui");
    let mut c;
    let mut flags: Vec<String> = UI_RUSTFLAGS.iter().map(|f| f.to_string()).collect();
    if rustup_has_wasm32() {
        c = Command::new("cargo");
        c.args([
            "+stable",
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
        ]);
        flags.extend(remap_flags(output(
            Command::new("rustc").args(["+stable", "--print", "sysroot"]),
        )));
    } else {
        // Debian's rustc-web builds std for wasm32 itself (ui/.cargo/config.toml). RUSTC_BOOTSTRAP is
        // set for this process only: exported around the native build it would rebuild everything.
        c = Command::new("/usr/bin/cargo");
        c.args([
            "build",
            "--release",
            "-Zbuild-std-features=optimize_for_size",
        ]);
        c.env("RUSTC_BOOTSTRAP", "1").env("RUSTC", "/usr/bin/rustc");
        flags.extend(UI_RUSTFLAGS_BUILD_STD.iter().map(|f| f.to_string()));
        flags.extend(remap_flags(output(
            Command::new("/usr/bin/rustc").args(["--print", "sysroot"]),
        )));
    }
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
    ] {
        c.env_remove(var);
    }
    c.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
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
