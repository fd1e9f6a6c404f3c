//! Benchmarks. `startup`: the release app's cold start (server up, member already synced) until
//! the passport QR is on screen, its memory 10 s later (PSS of the app and its WebKit processes),
//! and the sizes of the release binary and the wasm. Prints one JSON line last.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::demo::{sign_in, start_server, Guard};
use crate::util::{profile_dir, root, target_dir};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Which {
    Startup,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Startup => "startup",
        }
    }
}

pub fn run(which: Which) -> anyhow::Result<()> {
    match which {
        Which::Startup => startup(),
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Every process whose parent chain leads to `pid` (WebKit's web and network processes).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                // the field after the ")" that closes the command name: state, then ppid
                if let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) {
                    if let Some(ppid) = after
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse::<u32>().ok())
                    {
                        parent_of.push((p, ppid));
                    }
                }
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == cur)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn one_start(
    app: &Path,
    data: &Path,
    url: &str,
    ready: &Path,
    keep: bool,
) -> anyhow::Result<(u128, Option<Guard>)> {
    let _ = std::fs::remove_file(ready);
    let t0 = now_ms();
    let child = Command::new(app)
        .env("UNIONPASS_DATA_DIR", data)
        .env("UNIONPASS_SERVER", url)
        .env("UNIONPASS_READY_FILE", ready)
        .env("RUST_LOG", "warn")
        .spawn()?;
    let guard = Guard(child);
    let started = Instant::now();
    let ts = loop {
        if let Ok(text) = std::fs::read_to_string(ready) {
            if let Some(ms) = text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u128>().ok())
            {
                break ms;
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the passport QR did not appear within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok((ts.saturating_sub(t0), keep.then_some(guard)))
}

fn startup() -> anyhow::Result<()> {
    let bin = profile_dir(true);
    let work = target_dir().join("bench-startup");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let (_server, url) = start_server(
        &bin.join("unionpass-server"),
        &work.join("server.sqlite"),
        "127.0.0.1:0",
        &work.join("server.log"),
    )?;
    let data = work.join("app");
    sign_in(&data, &url, "M10001")?;
    let app = bin.join("unionpass-app");
    let ready = work.join("ready");
    // one warm-up start (WebKit's caches), then five measured ones
    one_start(&app, &data, &url, &ready, false)?;
    let mut times = Vec::new();
    for _ in 0..5 {
        times.push(one_start(&app, &data, &url, &ready, false)?.0);
    }
    let (last, guard) = one_start(&app, &data, &url, &ready, true)?;
    times.push(last);
    std::thread::sleep(Duration::from_secs(10));
    let guard = guard.context("the last start is kept")?;
    let pids = descendants(guard.0.id());
    let mem_kb: u64 = pids.iter().map(|p| pss_kb(*p)).sum();
    for p in &pids {
        let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        eprintln!("[bench] pid {p} {}: PSS {} kB", name.trim(), pss_kb(*p));
    }
    drop(guard);
    let binary = std::fs::metadata(&app)?.len();
    let wasm = std::fs::metadata(root().join("ui/dist/unionpass-ui_bg.wasm"))?.len();
    eprintln!(
        "[bench] starts (ms): {times:?}; processes measured: {}",
        pids.len()
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "startup",
            "qr_visible_ms": median(times) as u64,
            "mem_mb": (mem_kb as f64 / 1024.0 * 10.0).round() / 10.0,
            "binary_mb": (binary as f64 / 1048576.0 * 100.0).round() / 100.0,
            "wasm_kb": (wasm as f64 / 1024.0).round() as u64,
        })
    );
    Ok(())
}
