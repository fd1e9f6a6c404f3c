//! Packages members install: the `.deb` and the `.rpm`, made by the official Tauri bundler
//! (`tauri-cli`, prebuilt from npm: `@tauri-apps/cli` in package.json). Its configuration is
//! `src-tauri/tauri.conf.json`; its `beforeBuildCommand` is `cargo xtask ui`, this tool's wasm step.

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
    for &kind in kinds {
        let (sub, ext) = (kind, kind);
        let version = env!("CARGO_PKG_VERSION");
        let mut these: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .with_context(|| format!("the bundler wrote no {sub} folder in {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == ext)
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains(version))
            })
            .collect();
        if these.len() != 1 {
            bail!(
                "expected one .{ext} of version {version} in {}, found {these:?}",
                dir.display()
            );
        }
        found.append(&mut these);
    }
    Ok(found)
}

/// `cargo xtask bundle`: `tauri build` (the wasm step, the release app, then the packages).
pub fn release() -> anyhow::Result<Vec<PathBuf>> {
    let _ = std::fs::remove_dir_all(profile_dir(true).join("bundle"));
    run(tauri()?.args([
        "build",
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
