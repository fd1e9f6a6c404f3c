//! `cargo xtask test`: every test in one cargo run (same features as the build, so nothing is
//! built twice), with the E2E suite pointed at the binaries just built. Ends with a total line.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::bail;

use crate::build::FEATURES;
use crate::util::{cargo, profile_dir, show, target_dir};

/// Reads `test result: ok. 12 passed; 0 failed; 1 ignored; …`.
fn counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let num = |word: &str| {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .strip_suffix(word)
                    .map(|n| n.trim().rsplit(' ').next().unwrap_or(""))
            })
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((num(" passed")?, num(" failed")?))
}

pub fn run(filter: Option<&str>) -> anyhow::Result<()> {
    let bin = profile_dir(false);
    let shots = target_dir().join("e2e-shots");
    std::fs::create_dir_all(&shots)?;
    let mut c = cargo();
    c.args([
        "test",
        "--workspace",
        "--no-fail-fast",
        "--features",
        FEATURES,
        "--",
    ]);
    // one test at a time: the E2E tests drive one window each through one WebDriver port
    c.arg("--test-threads=1");
    if let Some(f) = filter {
        c.arg(f);
    }
    c.env("APP_BIN", bin.join("unionpass-app"))
        .env("SERVER_BIN", bin.join("unionpass-server"))
        .env("PROVIDER_BIN", bin.join("unionpass-provider"))
        .env("E2E_SHOTS", &shots)
        .stdout(Stdio::piped());
    eprintln!("[xtask] $ {}", show(&c));
    let mut child = c.spawn()?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some((p, f)) = counts(&line) {
            passed += p;
            failed += f;
        }
    }
    let status = child.wait()?;
    println!("screenshots: {}", shots.display());
    println!("all tests: {passed} passed, {failed} failed");
    if !status.success() || failed > 0 {
        bail!("tests failed");
    }
    if passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_cargo_test_summaries() {
        let line = "test result: ok. 12 passed; 3 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.04s";
        assert_eq!(super::counts(line), Some((12, 3)));
        assert_eq!(super::counts("running 3 tests"), None);
    }
}
