//! Packages members install: the `.deb` and the `.rpm`, made by the official Tauri bundler
//! (`tauri-cli`, prebuilt from npm: `@tauri-apps/cli` in package.json). Its configuration is
//! `src-tauri/tauri.conf.json`; its `beforeBuildCommand` is `cargo xtask ui`, this tool's wasm
//! step, for anyone who runs `tauri build` there.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::util::{profile_dir, root, run, target_dir};

fn tauri() -> anyhow::Result<Command> {
    let cli = root().join("node_modules/.bin/tauri");
    if !cli.exists() {
        bail!("the Tauri CLI is missing: run `cargo xtask setup` (npm ci)");
    }
    let mut c = Command::new(cli);
    c.current_dir(root().join("src-tauri"))
        .env("CARGO_TARGET_DIR", target_dir())
        // no prompts
        .env("CI", "true");
    Ok(c)
}

/// The packages of `kinds` under `profile`'s bundle folder.
fn packages(release: bool, kinds: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let dir = profile_dir(release).join("bundle");
    let mut found = Vec::new();
    let version = env!("CARGO_PKG_VERSION");
    for &kind in kinds {
        // the bundler writes bundle/<kind>/…<version>….<kind>
        let mut these: Vec<PathBuf> = std::fs::read_dir(dir.join(kind))
            .with_context(|| format!("the bundler wrote no {kind} folder in {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == kind)
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains(version))
            })
            .collect();
        if these.len() != 1 {
            bail!(
                "expected one .{kind} of version {version} in {}, found {these:?}",
                dir.display()
            );
        }
        found.append(&mut these);
    }
    Ok(found)
}

/// `cargo xtask bundle`: the release build every other release command shares (`cargo xtask
/// build --release`: the wasm step, then the workspace with the app's features), then `tauri
/// bundle` packs that binary. (`tauri build` from `src-tauri/` gives the same packages: its
/// `beforeBuildCommand` is the same wasm step, but it builds the app alone, with other features
/// for the shared dependencies, so everything would compile twice on this 2-core machine.)
pub fn release() -> anyhow::Result<Vec<PathBuf>> {
    crate::build::all(true)?;
    let _ = std::fs::remove_dir_all(profile_dir(true).join("bundle"));
    run(tauri()?.args([
        "bundle",
        "--bundles",
        "deb,rpm",
        "--features",
        "custom-protocol",
    ]))?;
    packages(true, &["deb", "rpm"])
}

/// The `.deb` of the debug app `cargo xtask test` just built (`tauri bundle`: the same bundler
/// and configuration, without a second build), for the install test.
pub fn deb_of_test_build() -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(profile_dir(false).join("bundle"));
    run(tauri()?.args([
        "bundle",
        "--debug",
        "--bundles",
        "deb",
        "--features",
        "custom-protocol",
    ]))?;
    Ok(packages(false, &["deb"])?.remove(0))
}
