//! The API fuzz (part of `cargo xtask test`): a demo server on loopback, its OpenAPI document
//! validated as OpenAPI 3 (openapi-spec-validator), then schemathesis generating requests from
//! that document, a bounded number per route, valid and invalid, with a member's session, a staff
//! member's, and (for the routes that end sessions) a third. Any 5xx, or an answer the document
//! does not allow (status, content type, headers, body schema), fails the run. Both tools come
//! from PyPI into a virtualenv that `cargo xtask setup` makes (`setup::python_tools`).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::demo::spawn_server;
use crate::util::{profile_dir, show, target_dir};

/// Test cases per route and run (schemathesis `--max-examples`).
const EXAMPLES_PER_ROUTE: &str = "40";

/// What is checked on every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance";

/// Validates the document at the URL given as the first argument.
const VALIDATE: &str = r#"
import json, sys, urllib.request
from openapi_spec_validator import validate
doc = json.load(urllib.request.urlopen(sys.argv[1]))
validate(doc)
print(f"[fuzz] {sys.argv[1]} is a valid OpenAPI {doc['openapi']} document, {len(doc['paths'])} paths")
"#;

fn server_cli(server: &Path, db: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(server)
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .with_context(|| format!("running {}", server.display()))?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn schemathesis(url: &str, token: &str, routes: &[&str], seed: u64) -> anyhow::Result<()> {
    let mut c = Command::new(crate::setup::venv().join("bin/schemathesis"));
    c.args(["run", &format!("{url}/v1/openapi.json"), "--no-color"])
        .args(["--checks", CHECKS])
        .args(["--max-examples", EXAMPLES_PER_ROUTE])
        .args(["--seed", &seed.to_string()])
        .args(["--request-timeout", "35"])
        .args(["--workers", "2"]);
    for r in routes {
        c.args(["--include-path", r]);
    }
    eprintln!("[xtask] $ {} (with a session token)", show(&c));
    c.args(["-H", &format!("Authorization: Bearer {token}")]);
    let status = c.status().context("running schemathesis")?;
    if !status.success() {
        bail!("the API fuzz found answers outside the document or 5xx (seed {seed}; see above)");
    }
    Ok(())
}

pub fn run() -> anyhow::Result<()> {
    let server = profile_dir(false).join("unionpass-server");
    let work = target_dir().join("api-fuzz");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let db = work.join("union.sqlite");
    server_cli(&server, &db, &["seed", "--demo"])?;
    // campaigns to grab: one open now, one later
    let now = chrono::Utc::now();
    for (release, title) in [
        (now, "Open now"),
        (now + chrono::Duration::days(1), "Tomorrow"),
    ] {
        server_cli(
            &server,
            &db,
            &[
                "campaign",
                "create",
                "--title-zh",
                "美食券",
                "--title-en",
                title,
                "--category",
                "meal",
                "--face-value",
                "12.50",
                "--stock",
                "50",
                "--limit",
                "2",
                "--release-at",
                &release.to_rfc3339(),
                "--end-at",
                &(release + chrono::Duration::days(2)).to_rfc3339(),
            ],
        )?;
    }
    let tokens_file = work.join("tokens");
    server_cli(
        &server,
        &db,
        &[
            "bench-seed",
            "--members",
            "3",
            "--also",
            "S20001",
            "--tokens-out",
            &tokens_file.to_string_lossy(),
        ],
    )?;
    let tokens: Vec<String> = std::fs::read_to_string(&tokens_file)?
        .lines()
        .map(String::from)
        .collect();
    let [member, ender, leaver, staff] = tokens.as_slice() else {
        bail!("expected four tokens in {}", tokens_file.display());
    };
    let (_server, url) = spawn_server(
        &server,
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--db".into(),
            db.to_string_lossy().into_owned(),
        ],
        "warn",
        &work.join("server.log"),
    )?;

    crate::util::run(
        Command::new(crate::setup::venv().join("bin/python"))
            .args(["-c", VALIDATE])
            .arg(format!("{url}/v1/openapi.json")),
    )?;

    let seed: u64 = std::env::var("UNIONPASS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now.timestamp_subsec_nanos() as u64);
    let member_routes = [
        "/v1/health",
        "/v1/time",
        "/v1/keys",
        "/v1/openapi.json",
        "/v1/login",
        "/v1/password",
        "/v1/sync",
        "/v1/sync/push",
        "/v1/campaigns",
        "/v1/campaigns/{id}/grab",
        "/v1/reauth",
    ];
    schemathesis(&url, member, &member_routes, seed)?;
    schemathesis(&url, staff, &["/v1/scanner", "/v1/sync/push"], seed)?;
    // last, each with a session of its own: these end the session they are called with
    schemathesis(&url, ender, &["/v1/sessions/end-all"], seed)?;
    schemathesis(&url, leaver, &["/v1/logout"], seed)?;
    println!("API fuzz: no 5xx and every answer as documented (seed {seed})");
    Ok(())
}
