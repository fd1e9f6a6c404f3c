//! `cargo xtask test`: every test through cargo-nextest (same features as the build, so nothing is
//! built twice), with the E2E suite pointed at the binaries just built. Test groups
//! (`.config/nextest.toml`) run the window tests one at a time with nothing beside them, and
//! everything else in parallel, each with a time limit. An ignored test fails the run, named; the
//! totals are read from nextest's JUnit report.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::build::FEATURES;
use crate::util::{cargo, output, profile_dir, show, target_dir};

fn nextest(sub: &str, filter: Option<&str>) -> Command {
    let mut c = cargo();
    c.args(["nextest", sub, "--workspace", "--features", FEATURES]);
    if let Some(f) = filter {
        c.arg(f);
    }
    c
}

/// Tests marked `#[ignore]` would stop running unnoticed: name them.
fn ignored(filter: Option<&str>) -> anyhow::Result<Vec<String>> {
    let mut c = nextest("list", filter);
    c.args(["--message-format", "json"]);
    eprintln!("[xtask] $ {}", show(&c));
    let out = output(&mut c).context("cargo nextest list failed")?;
    ignored_in(&out)
}

/// The ignored tests (that the filter selects) in the output of `nextest list
/// --message-format json`, as `binary name`.
pub fn ignored_in(list: &str) -> anyhow::Result<Vec<String>> {
    let list: serde_json::Value = serde_json::from_str(list).context("reading nextest's list")?;
    let suites = list["rust-suites"]
        .as_object()
        .context("nextest's list has no rust-suites")?;
    let mut names = Vec::new();
    for (binary, suite) in suites {
        let cases = suite["testcases"]
            .as_object()
            .with_context(|| format!("nextest's list has no testcases for {binary}"))?;
        for (name, case) in cases {
            let selected = case["filter-match"]["status"].as_str() == Some("matches");
            if selected && case["ignored"].as_bool() == Some(true) {
                names.push(format!("{binary} {name}"));
            }
        }
    }
    Ok(names)
}

/// The totals of a JUnit report: tests, failures, errors, and the names of failed tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub tests: u64,
    pub failures: u64,
    pub errors: u64,
    pub failed: Vec<String>,
}

pub fn junit_totals(xml: &str) -> anyhow::Result<Totals> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut totals = Totals::default();
    let mut seen_root = false;
    let mut current: Option<String> = None;
    loop {
        match reader.read_event()? {
            Event::Start(e) | Event::Empty(e) => {
                let attr = |key: &str| -> anyhow::Result<Option<String>> {
                    for a in e.attributes() {
                        let a = a?;
                        if a.key.as_ref() == key {
                            return Ok(Some(quick_xml::escape::unescape(&a.value)?.into_owned()));
                        }
                    }
                    Ok(None)
                };
                let num = |key: &str| -> anyhow::Result<u64> {
                    Ok(attr(key)?.map(|v| v.parse()).transpose()?.unwrap_or(0))
                };
                match e.name().as_ref() {
                    "testsuites" => {
                        seen_root = true;
                        totals.tests = num("tests")?;
                        totals.failures = num("failures")?;
                        totals.errors = num("errors")?;
                    }
                    "testcase" => {
                        current = Some(format!(
                            "{} {}",
                            attr("classname")?.unwrap_or_default(),
                            attr("name")?.unwrap_or_default()
                        ));
                    }
                    "failure" | "error" => {
                        if let Some(name) = current.take() {
                            totals.failed.push(name);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        bail!("the JUnit report has no <testsuites>");
    }
    Ok(totals)
}

/// The E2E test that installs the `.deb` (it needs the package built first).
const INSTALL_TEST: &str = "the_installed_package_signs_in_and_leaves_nothing_behind";

pub fn run(filter: Option<&str>) -> anyhow::Result<()> {
    if filter == Some("api_fuzz") {
        return crate::fuzz::run();
    }
    let bin = profile_dir(false);
    let shots = target_dir().join("e2e-shots");
    std::fs::create_dir_all(&shots)?;
    // written by the window tests when a close took more than one (`desktop::close_until_hidden`)
    let retries = shots.join("close-retries.log");
    let _ = std::fs::remove_file(&retries);

    let ignored = ignored(filter)?;
    if !ignored.is_empty() {
        bail!(
            "ignored tests would not run: {}; run them or remove them",
            ignored.join(", ")
        );
    }

    // `[store] dir` in .config/nextest.toml
    let report = crate::util::root().join("target/nextest/default/junit.xml");
    let _ = std::fs::remove_file(&report);
    let mut c = nextest("run", filter);
    // the install test's package, made from this build by the Tauri bundler
    if filter.is_none_or(|f| INSTALL_TEST.contains(f)) {
        c.env("UNIONPASS_DEB", crate::bundle::deb_of_test_build()?);
    }
    c.arg("--no-fail-fast")
        .env("APP_BIN", bin.join("unionpass-app"))
        .env("SERVER_BIN", bin.join("unionpass-server"))
        .env("PROVIDER_BIN", bin.join("unionpass-provider"))
        .env("E2E_SHOTS", &shots);
    // a test that fails with an error ends with what failed, not with a backtrace of the harness
    // and the runtime: the end of the output is what a CI log keeps (panics keep theirs)
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        c.env("RUST_LIB_BACKTRACE", "0");
    }
    eprintln!("[xtask] $ {}", show(&c));
    let status = c.status().context("running cargo nextest")?;

    let totals = read_report(&report)?;
    println!("screenshots: {}", shots.display());
    if let Ok(text) = std::fs::read_to_string(&retries) {
        println!("window closes that needed more than one (a close the app did not answer):");
        print!("{text}");
    }
    println!(
        "all tests: {} passed, {} failed",
        totals.tests - totals.failures - totals.errors,
        totals.failures + totals.errors
    );
    for name in &totals.failed {
        println!("  failed: {name}");
    }
    if !status.success() || totals.failures + totals.errors > 0 {
        bail!("tests failed");
    }
    if totals.tests == 0 {
        bail!("no test ran");
    }
    // the API fuzz, with the whole run (alone: `cargo xtask test api_fuzz`)
    if filter.is_none() {
        crate::fuzz::run()?;
    }
    Ok(())
}

fn read_report(path: &Path) -> anyhow::Result<Totals> {
    let xml = std::fs::read_to_string(path)
        .with_context(|| format!("nextest wrote no report at {}", path.display()))?;
    junit_totals(&xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_ignored_tests_the_filter_selects() {
        let list = r#"{"test-count": 3, "rust-suites": {
          "unionpass-core": {"binary-id": "unionpass-core", "testcases": {
            "a::runs": {"kind": "test", "ignored": false, "filter-match": {"status": "matches"}},
            "a::skipped": {"kind": "test", "ignored": true, "filter-match": {"status": "matches"}}
          }},
          "unionpass-server::it": {"binary-id": "unionpass-server::it", "testcases": {
            "b::not_selected": {"kind": "test", "ignored": true,
              "filter-match": {"status": "mismatch", "reason": "string"}}
          }}
        }}"#;
        assert_eq!(
            ignored_in(list).unwrap(),
            vec!["unionpass-core a::skipped".to_string()]
        );
        // another shape than expected is an error, not "nothing ignored"
        assert!(ignored_in(r#"{"suites": {}}"#).is_err());
        assert!(ignored_in(r#"{"rust-suites": {"x": {"cases": {}}}}"#).is_err());
    }

    #[test]
    fn reads_nextest_junit_totals_and_failed_names() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="4" failures="1" errors="1" uuid="x" timestamp="t" time="1.0">
  <testsuite name="unionpass-core" tests="4" disabled="0" errors="1" failures="1">
    <testcase name="a::ok" classname="unionpass-core" timestamp="t" time="0.1"></testcase>
    <testcase name="a::bad" classname="unionpass-core" timestamp="t" time="0.1">
      <failure type="test failure">boom</failure>
    </testcase>
    <testcase name="a::fine" classname="unionpass-core" timestamp="t" time="0.1"/>
    <testcase name="a::&lt;crashed&gt;" classname="unionpass-core" timestamp="t" time="0.1">
      <error type="SIGSEGV"/>
    </testcase>
  </testsuite>
</testsuites>"#;
        let t = junit_totals(xml).unwrap();
        assert_eq!((t.tests, t.failures, t.errors), (4, 1, 1));
        assert_eq!(
            t.failed,
            vec![
                "unionpass-core a::bad".to_string(),
                "unionpass-core a::<crashed>".to_string()
            ]
        );
        assert!(junit_totals("<nothing/>").is_err());
    }
}
