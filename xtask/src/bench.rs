//! Benchmarks. `startup`: the release app's cold start (server up, member already synced) until
//! the passport QR is on screen, its memory 10 s later (PSS of the app and its WebKit processes),
//! and the sizes of the release binary and the wasm. Prints one JSON line last.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::demo::{sign_in, spawn_server, start_server, Guard};
use crate::util::{profile_dir, root, target_dir};

#[derive(clap::Subcommand)]
pub enum Which {
    /// The release app: cold start to the passport QR, memory, sizes.
    Startup,
    /// The release app with 5,000 coupons: wallet first rows and category filter times.
    Wallet,
    /// Passport checks on a scanner: verify time per code, QR decode time per 640×480 frame.
    Passport,
    /// A member with 10,000 ledger entries in the app's store: balance and expiry view times.
    Points,
    /// The grab: one grab per member at release against the release server, then the same load
    /// on a trivial endpoint; audited from the database.
    Grab(GrabArgs),
    /// The sign-up race: every member signs up at the opening (a quarter with a companion) for
    /// an activity with fewer seats and a waitlist, then random cancellations promote from it;
    /// the same load on a trivial endpoint; audited from the database.
    Signup(SignupArgs),
    /// Sign-ins under a flood: wrong passwords from many addresses at once against the release
    /// server; its peak memory, and how long an honest member's sign-in takes during the flood
    /// against the same sign-in without it.
    LoginFlood(FloodArgs),
    /// Sync: a heavy member's first sync on a new device (2,000 coupons, 10,000 points entries)
    /// through the app's store against the release server, and the same rows inserted bare.
    Sync(SyncArgs),
}

#[derive(clap::Args)]
pub struct SyncArgs {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    #[arg(long, default_value_t = 2_000)]
    pub coupons: usize,
    #[arg(long, default_value_t = 10_000)]
    pub entries: usize,
    /// Members who each sync once after a district-wide campaign is published.
    #[arg(long, default_value_t = 110_000)]
    pub members: usize,
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
}

#[derive(clap::Args)]
pub struct SignupArgs {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    #[arg(long, default_value_t = 20_000)]
    pub members: usize,
    #[arg(long, default_value_t = 2_000)]
    pub seats: i64,
    #[arg(long, default_value_t = 1_000)]
    pub waitlist: i64,
    /// Confirmed sign-ups cancelled after the rush (each frees seats for the waitlist).
    #[arg(long, default_value_t = 300)]
    pub cancellations: usize,
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Rounds, each a fresh activity between two no-op runs; `ratio` is the median round's and
    /// `p99_ms` the worst round's.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[derive(clap::Args)]
pub struct FloodArgs {
    /// Flood requests in flight at once.
    #[arg(long, default_value_t = 120)]
    pub concurrency: usize,
    /// Seconds each flood lasts (one with unknown member numbers, one with real ones).
    #[arg(long, default_value_t = 20)]
    pub duration_s: u64,
}

#[derive(clap::Args)]
pub struct GrabArgs {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    #[arg(long, default_value_t = 110_000)]
    pub members: usize,
    #[arg(long, default_value_t = 1000)]
    pub stock: i64,
    /// Connections the load generator keeps busy.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Server instances over the one database (PostgreSQL), the requests spread over them in
    /// turn (the no-op baseline too).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Send the grabs open loop at this rate (requests per second, each timed from when it was
    /// due) instead of closed loop, and report `fcfs`: the share of grants that went to the
    /// first 1.2 × stock requests sent.
    #[arg(long)]
    pub open_loop: Option<f64>,
    /// Rounds, each a fresh campaign between two no-op runs; `ratio` is the median round's and
    /// `p99_ms` the worst round's.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
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

fn pss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
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

pub fn startup() -> anyhow::Result<()> {
    let bin = profile_dir(true);
    let work = target_dir().join("bench-startup");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let (_server, url) = start_server(
        &bin.join("unionpass-server"),
        &work.join("server.sqlite"),
        "127.0.0.1:0",
        &work.join("server.log"),
        None,
        false,
    )?;
    let data = work.join("app");
    sign_in(&bin, &data, &url, "M10001")?;
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
    // the app and both of WebKit's processes, each with a readable, non-zero PSS: a process
    // missed or unreadable would make the figure look better than it is
    let mut mem_kb = 0;
    let mut seen = Vec::new();
    for p in &pids {
        let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        let pss = pss_kb(*p).with_context(|| format!("no PSS for pid {p} ({})", name.trim()))?;
        anyhow::ensure!(pss > 0, "pid {p} ({}) reads a PSS of 0", name.trim());
        eprintln!("[bench] pid {p} {}: PSS {pss} kB", name.trim());
        mem_kb += pss;
        seen.push(name.trim().to_string());
    }
    // /proc/…/comm keeps 15 bytes: WebKitWebProces, WebKitNetworkPr
    for want in ["unionpass-app", "WebKitWebProces", "WebKitNetworkPr"] {
        anyhow::ensure!(
            seen.iter().any(|s| s == want),
            "{want} was not found among the app's processes {seen:?}"
        );
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

fn server_cli(bin: &Path, args: &[&str], store: &[String]) -> anyhow::Result<String> {
    let out = Command::new(bin).args(args).args(store).output()?;
    if !out.status.success() {
        bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn psql(sql: &str) -> anyhow::Result<()> {
    crate::util::run(Command::new("psql").args([
        "-q",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        sql,
    ]))
}

fn loadgen(
    bin: &Path,
    url: &str,
    tokens: &Path,
    extra: &[&str],
    concurrency: usize,
) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(bin.join("unionpass-loadgen"))
        .args([
            "--url",
            url,
            "--concurrency",
            &concurrency.to_string(),
            "--tokens",
        ])
        .arg(tokens)
        .args(extra)
        .output()?;
    if !out.status.success() {
        bail!("loadgen failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("loadgen output")?;
    eprintln!(
        "[bench] loadgen {}: {v}",
        extra.first().copied().unwrap_or("")
    );
    Ok(v)
}

pub fn grab(args: &GrabArgs) -> anyhow::Result<()> {
    in_fresh_store("grab", args.backend, |bin, server, work, store| {
        grab_on(args, bin, server, work, store)
    })
}

/// Members with sessions (their tokens in `work/tokens`) and the release server on a free
/// loopback port over `store`, with the per-address limit off: the load generator is one client
/// on one address, and the limit would be measured instead of the endpoint (the per-member
/// limit stays on).
fn seed_and_serve(
    server: &Path,
    work: &Path,
    store: &[String],
    members: usize,
) -> anyhow::Result<(std::path::PathBuf, Guard, String)> {
    seed_and_serve_with(
        server,
        work,
        store,
        members,
        &[],
        &["--grab-address-rate", "0"],
    )
}

/// [`seed_and_serve`] with more `bench-seed` arguments and other `serve` arguments.
fn seed_and_serve_with(
    server: &Path,
    work: &Path,
    store: &[String],
    members: usize,
    seed_args: &[&str],
    serve_extra: &[&str],
) -> anyhow::Result<(std::path::PathBuf, Guard, String)> {
    let tokens = work.join("tokens");
    let t = Instant::now();
    let (members_s, tokens_s) = (members.to_string(), tokens.to_string_lossy().into_owned());
    let mut seed = vec![
        "bench-seed",
        "--members",
        &members_s,
        "--tokens-out",
        &tokens_s,
    ];
    seed.extend_from_slice(seed_args);
    server_cli(server, &seed, store)?;
    eprintln!(
        "[bench] {members} members with sessions in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (guard, url) = serve_on(server, work, store, serve_extra, "server.log")?;
    Ok((tokens, guard, url))
}

/// The release server on a free loopback port over `store`, with the bench's union keys and
/// `extra` arguments, logging to `work/<log>`; answers it and its URL.
fn serve_on(
    server: &Path,
    work: &Path,
    store: &[String],
    extra: &[&str],
    log: &str,
) -> anyhow::Result<(Guard, String)> {
    let mut serve_args: Vec<String> = ["--listen", "127.0.0.1:0"].map(String::from).to_vec();
    serve_args.extend(extra.iter().map(|a| a.to_string()));
    serve_args.push("--keys".into());
    serve_args.push(work.join("keys").to_string_lossy().into_owned());
    serve_args.extend(store.iter().cloned());
    spawn_server(server, &serve_args, "warn", &work.join(log))
}

/// `campaign create`: the bench's district-wide bike coupon, `stock` of them, `limit` each,
/// released at `release` for an hour; answers the created campaign.
fn publish_campaign(
    server: &Path,
    store: &[String],
    stock: i64,
    limit: i64,
    release: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&server_cli(
        server,
        &[
            "campaign",
            "create",
            "--title-zh",
            "共享单车骑行券",
            "--title-en",
            "Bike ride coupon",
            "--category",
            "bike",
            "--face-value",
            "5",
            "--stock",
            &stock.to_string(),
            "--limit",
            &limit.to_string(),
            "--release-at",
            &release.to_rfc3339(),
            "--end-at",
            &(release + chrono::Duration::hours(1)).to_rfc3339(),
        ],
        store,
    )?)?)
}

fn grab_on(
    args: &GrabArgs,
    bin: &Path,
    server: &Path,
    work: &Path,
    store: &[String],
) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.instances >= 1 && (args.instances == 1 || args.backend == Backend::Postgres),
        "--instances: one on SQLite, one or more on PostgreSQL"
    );
    let (tokens, _server, first) = seed_and_serve(server, work, store, args.members)?;
    let mut url = first;
    let mut _others = Vec::new();
    for n in 1..args.instances {
        // another instance over the same database, as the first was started
        let (guard, other) = serve_on(
            server,
            work,
            store,
            &["--grab-address-rate", "0"],
            &format!("server-{n}.log"),
        )?;
        url = format!("{url},{other}");
        _others.push(guard);
    }
    let rig = Rig {
        bin,
        server,
        work,
        store,
        url: &url,
        tokens: &tokens,
    };
    let rounds: Vec<GrabRound> = (0..args.rounds.max(1))
        .map(|round| grab_round(args, &rig, round))
        .collect::<anyhow::Result<_>>()?;
    let ratios: Vec<f64> = rounds.iter().map(|r| r.ratio).collect();
    let member_ratios: Vec<f64> = rounds.iter().map(|r| r.member_ratio).collect();
    let p99s: Vec<f64> = rounds.iter().map(|r| r.p99_ms).collect();
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(-1);
    let sum = |key: &str| rounds.iter().map(|r| n(&r.line[key])).sum::<i64>();
    let line = serde_json::json!({
            "bench": "grab",
            "backend": match args.backend { Backend::Sqlite => "sqlite", Backend::Postgres => "postgres" },
            "instances": args.instances,
            "members": args.members,
            "stock": args.stock,
            "rounds": rounds.len(),
            "granted": sum("granted"),
            "oversold": sum("oversold"),
            "double_grants": sum("double_grants"),
            "lost_acks": sum("lost_acks"),
            "errors": sum("errors"),
            "noop_errors": sum("noop_errors"),
            "mismatched_replays": sum("mismatched_replays"),
            "ratio": median_f64(&ratios),
            "member_ratio": median_f64(&member_ratios),
            "ratio_rounds": ratios,
            "member_ratio_rounds": member_ratios,
            "p99_ms": p99s.iter().copied().fold(0.0, f64::max),
            "p99_ms_rounds": p99s,
            "open_loop_rps": args.open_loop,
            "fcfs": rounds.iter().filter_map(|r| r.line["fcfs"].as_f64()).reduce(f64::min),
            "limits": "per-member 2/s burst 5; per-address off",
            "round_lines": rounds.iter().map(|r| r.line.clone()).collect::<Vec<_>>(),
    });
    println!("{line}");
    let wrong: Vec<&str> = [
        "oversold",
        "double_grants",
        "lost_acks",
        "errors",
        "noop_errors",
        "mismatched_replays",
    ]
    .into_iter()
    // each round's own figure (a sum could hide a missing one, read as -1, behind another)
    .filter(|k| rounds.iter().any(|r| r.line[*k].as_i64() != Some(0)))
    .collect();
    let short = rounds.iter().any(|r| r.short || !r.p99_ms.is_finite());
    if !wrong.is_empty() || short {
        bail!(
            "the grab bench's audit failed: {wrong:?} not 0{}",
            if short {
                "; not all the stock was granted, or no latency was measured"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// The median of a non-empty list (the mean of the middle two for an even length), to three
/// decimals as the ratios are.
fn median_f64(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    };
    (median * 1000.0).round() / 1000.0
}

/// What a burst answered, with its baseline: the no-op endpoint's load run right before and
/// right after it. This machine changes speed within seconds (two no-op runs a few seconds apart
/// differed by up to 38 %), so a baseline measured far from its burst makes the ratio swing; the
/// faster of the two neighbours is the conservative choice (a slow baseline flatters the ratio).
struct Bracketed<T> {
    out: T,
    /// The faster no-op rate, answered requests per second.
    baseline: f64,
    /// Both no-op rates, before and after.
    runs: [f64; 2],
    /// The no-op runs' failed requests; -1 when either did not say.
    failed: i64,
}

/// `burst` between two no-op runs (see [`Bracketed`]).
fn between_noops<T>(
    rig: &Rig,
    concurrency: usize,
    burst: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<Bracketed<T>> {
    let noop = || {
        loadgen(
            rig.bin,
            rig.url,
            rig.tokens,
            &["--mode", "noop"],
            concurrency,
        )
    };
    let before = noop()?;
    let out = burst()?;
    let after = noop()?;
    let rps = |v: &serde_json::Value| v["answered_rps"].as_f64().unwrap_or(0.0);
    let runs = [rps(&before), rps(&after)];
    Ok(Bracketed {
        out,
        baseline: runs[0].max(runs[1]),
        runs,
        failed: match (before["failed"].as_i64(), after["failed"].as_i64()) {
            (Some(a), Some(b)) => a + b,
            _ => -1,
        },
    })
}

/// `rps` over `baseline`, to three decimals (0 without a baseline).
fn per_baseline(rps: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        (rps / baseline * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// What every round of a race bench runs against: the release binaries, the bench's work
/// directory, the store's arguments, the server's URL(s) and the members' tokens.
struct Rig<'a> {
    bin: &'a Path,
    server: &'a Path,
    work: &'a Path,
    store: &'a [String],
    url: &'a str,
    tokens: &'a Path,
}

/// One round of the grab bench, audited: its ratios, p99 and whether the stock ran short.
struct GrabRound {
    ratio: f64,
    member_ratio: f64,
    p99_ms: f64,
    short: bool,
    line: serde_json::Value,
}

/// One round: a burst at the release of a fresh campaign between two no-op runs
/// ([`between_noops`]), and the campaign's audit.
fn grab_round(args: &GrabArgs, rig: &Rig, round: usize) -> anyhow::Result<GrabRound> {
    let Rig {
        bin,
        server,
        work,
        store,
        url,
        tokens,
    } = *rig;
    let noops = between_noops(rig, args.concurrency, || {
        let release = chrono::Utc::now() + chrono::Duration::seconds(4);
        // a limit of 2, so that a retried or double-tapped key granted twice would not be stopped
        // by the limit and would show in the audit
        let created = publish_campaign(server, store, args.stock, 2, release)?;
        let id = created["id"].as_i64().context("campaign id")?;
        let acked = work.join(format!("acked-{round}"));
        let (id_s, release_s, acked_s) = (
            id.to_string(),
            release.to_rfc3339(),
            acked.to_string_lossy().into_owned(),
        );
        let mut grab_args = vec![
            "--mode",
            "grab",
            "--campaign",
            &id_s,
            "--start-at",
            &release_s,
            "--acked-out",
            &acked_s,
        ];
        let (rate, first) = (
            args.open_loop.map(|r| r.to_string()).unwrap_or_default(),
            ((args.stock as f64) * 1.2).round().to_string(),
        );
        if args.open_loop.is_some() {
            grab_args.extend(["--open-loop", &rate, "--fcfs-first", &first]);
        }
        let grab = loadgen(bin, url, tokens, &grab_args, args.concurrency)?;
        Ok((id, acked, grab))
    })?;
    let (id, acked, grab) = noops.out;
    let noop_rps = noops.baseline;
    let audit: serde_json::Value = serde_json::from_str(&server_cli(
        server,
        &[
            "campaign",
            "stats",
            "--id",
            &id.to_string(),
            "--acked",
            &acked.to_string_lossy(),
        ],
        store,
    )?)?;
    eprintln!("[bench] round {round} audit: {audit}");
    // well-formed answers only (a 429, 5xx or transport error is not throughput). `ratio` is
    // answered grab requests per second (the double taps and retries included: each was judged
    // and answered) over answered no-op requests per second, like for like; `member_ratio`
    // counts members answered instead (1.2 requests each in this load) over the same no-op rate
    let grab_rps = grab["answered_rps"].as_f64().unwrap_or(0.0);
    let grab_requests_rps = grab["answered_requests_rps"].as_f64().unwrap_or(0.0);
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(-1);
    // each member sends one key (some twice): a member holding two grants got one key twice
    let key_double = n(&audit["granted"]) - n(&audit["members"]);
    let line = serde_json::json!({
            "round": round,
            "granted": audit["granted"],
            "oversold": audit["oversold"],
            "double_grants": n(&audit["double_grants"]) + key_double,
            "lost_acks": audit["lost_acks"],
            "errors": grab["failed"],
            "noop_errors": noops.failed,
            "mismatched_replays": grab["mismatched_replays"],
            "extra_requests": grab["extra_requests"],
            "outcomes": grab["outcomes"],
            "grab_rps": grab_rps,
            "grab_requests_rps": grab_requests_rps,
            "noop_rps": noop_rps,
            "noop_rps_before_after": noops.runs,
            "ratio": per_baseline(grab_requests_rps, noop_rps),
            "member_ratio": per_baseline(grab_rps, noop_rps),
            "p50_ms": grab["p50_ms"],
            "p99_ms": grab["p99_ms"],
            "fcfs": grab["fcfs"],
    });
    Ok(GrabRound {
        ratio: per_baseline(grab_requests_rps, noop_rps),
        member_ratio: per_baseline(grab_rps, noop_rps),
        p99_ms: grab["p99_ms"].as_f64().unwrap_or(f64::INFINITY),
        short: n(&audit["granted"]) != args.stock.min(args.members as i64),
        line,
    })
}

/// One bench run: the release binaries, a fresh `target/bench-<name>` and a fresh database of
/// `backend` (a PostgreSQL one is dropped afterwards, whatever the run did).
fn in_fresh_store(
    name: &str,
    backend: Backend,
    run: impl FnOnce(&Path, &Path, &Path, &[String]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let bin = profile_dir(true);
    let server = bin.join("unionpass-server");
    let work = target_dir().join(format!("bench-{name}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let pg_name = format!("unionpass_bench_{name}_{}", std::process::id());
    let store = bench_store(backend, &work, &pg_name)?;
    let result = run(&bin, &server, &work, &store);
    if backend == Backend::Postgres {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"));
    }
    result
}

/// A database for one bench run: the SQLite file in `work`, or a fresh PostgreSQL database
/// (dropped by the caller with [`drop_db`]).
fn bench_store(backend: Backend, work: &Path, pg_name: &str) -> anyhow::Result<Vec<String>> {
    Ok(match backend {
        Backend::Sqlite => vec![
            "--db".into(),
            work.join("union.sqlite").to_string_lossy().into_owned(),
        ],
        Backend::Postgres => {
            psql(&format!("CREATE DATABASE {pg_name}"))?;
            vec![
                "--database".into(),
                format!("postgres://postgres@127.0.0.1:5432/{pg_name}"),
            ]
        }
    })
}

pub fn signup(args: &SignupArgs) -> anyhow::Result<()> {
    in_fresh_store("signup", args.backend, |bin, server, work, store| {
        signup_on(args, bin, server, work, store)
    })
}

fn signup_on(
    args: &SignupArgs,
    bin: &Path,
    server: &Path,
    work: &Path,
    store: &[String],
) -> anyhow::Result<()> {
    let (tokens, _server, url) = seed_and_serve(server, work, store, args.members)?;
    let rig = Rig {
        bin,
        server,
        work,
        store,
        url: &url,
        tokens: &tokens,
    };
    let rounds: Vec<serde_json::Value> = (0..args.rounds.max(1))
        .map(|round| signup_round(args, &rig, round))
        .collect::<anyhow::Result<_>>()?;
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(-1);
    let sum = |key: &str| rounds.iter().map(|r| n(&r[key])).sum::<i64>();
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|r| r["ratio"].as_f64().unwrap_or(0.0))
        .collect();
    let p99s: Vec<f64> = rounds
        .iter()
        .map(|r| r["p99_ms"].as_f64().unwrap_or(f64::INFINITY))
        .collect();
    let line = serde_json::json!({
        "bench": "signup",
        "backend": match args.backend { Backend::Sqlite => "sqlite", Backend::Postgres => "postgres" },
        "members": args.members,
        "seats": args.seats,
        "waitlist": args.waitlist,
        "rounds": rounds.len(),
        "cancelled": sum("cancelled"),
        "over_capacity": sum("over_capacity"),
        "double_signups": sum("double_signups"),
        "lost_acks": sum("lost_acks"),
        "waitlist_out_of_order": sum("waitlist_out_of_order"),
        "promotions_out_of_order": sum("promotions_out_of_order"),
        "unpromoted": sum("unpromoted"),
        "failed_requests": sum("failed_requests"),
        "noop_errors": sum("noop_errors"),
        "ratio": median_f64(&ratios),
        "ratio_rounds": ratios,
        "p99_ms": p99s.iter().copied().fold(0.0, f64::max),
        "p99_ms_rounds": p99s,
        "round_lines": rounds,
    });
    println!("{line}");
    // a run that broke a correctness rule fails, whatever its speed
    for k in [
        "over_capacity",
        "double_signups",
        "lost_acks",
        "waitlist_out_of_order",
        "promotions_out_of_order",
        "unpromoted",
        "failed_requests",
        "noop_errors",
    ] {
        // each round's own figure (a sum could hide a missing one, read as -1, behind another)
        if let Some(r) = rounds.iter().find(|r| r[k].as_i64() != Some(0)) {
            bail!("sign-up bench: {k} = {} in round {}", r[k], r["round"]);
        }
    }
    if p99s.iter().any(|p| !p.is_finite()) {
        bail!("sign-up bench: a round measured no latency");
    }
    Ok(())
}

/// One round of the sign-up bench: the rush at the opening of a fresh activity between two
/// no-op runs ([`between_noops`]), then the cancellations and the activity's audit; answers the
/// round's JSON.
fn signup_round(args: &SignupArgs, rig: &Rig, round: usize) -> anyhow::Result<serde_json::Value> {
    let Rig {
        bin,
        server,
        work,
        store,
        url,
        tokens,
    } = *rig;
    let noops = between_noops(rig, args.concurrency, || {
        let opens = chrono::Utc::now() + chrono::Duration::seconds(4);
        let starts = opens + chrono::Duration::days(3);
        let created: serde_json::Value = serde_json::from_str(&server_cli(
            server,
            &[
                "activity",
                "create",
                "--title-zh",
                "职工运动会",
                "--title-en",
                "Staff sports day",
                "--category",
                "sports",
                "--place",
                "体育中心",
                "--starts-at",
                &starts.to_rfc3339(),
                "--ends-at",
                &(starts + chrono::Duration::hours(6)).to_rfc3339(),
                "--seats",
                &args.seats.to_string(),
                "--waitlist",
                &args.waitlist.to_string(),
                "--companions",
                "1",
                "--signup-opens-at",
                &opens.to_rfc3339(),
            ],
            store,
        )?)?;
        let id = created["id"].as_i64().context("activity id")?;
        let acked = work.join(format!("acked-{round}"));
        let rush = loadgen(
            bin,
            url,
            tokens,
            &[
                "--mode",
                "signup",
                "--activity",
                &id.to_string(),
                "--start-at",
                &opens.to_rfc3339(),
                "--acked-out",
                &acked.to_string_lossy(),
            ],
            args.concurrency,
        )?;
        Ok((id, acked, rush))
    })?;
    let (id, acked, rush) = noops.out;
    // random cancellations among the confirmed (a waiting one leaving would not promote anyone)
    let all_tokens: Vec<String> = std::fs::read_to_string(tokens)?
        .lines()
        .map(String::from)
        .collect();
    let mut confirmed: Vec<usize> = std::fs::read_to_string(&acked)?
        .lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            (p.get(1) == Some(&"confirmed")).then(|| p.get(3)?.parse().ok())?
        })
        .collect();
    {
        // a random order without another dependency: sort by a randomly keyed hash
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new();
        confirmed.sort_by_key(|i| seed.hash_one(i));
    }
    let leaving: Vec<&str> = confirmed
        .iter()
        .take(args.cancellations)
        .filter_map(|i| all_tokens.get(*i).map(String::as_str))
        .collect();
    let leaving_file = work.join(format!("leaving-{round}"));
    std::fs::write(&leaving_file, leaving.join("\n") + "\n")?;
    let cancels = loadgen(
        bin,
        url,
        &leaving_file,
        &["--mode", "cancel", "--activity", &id.to_string()],
        args.concurrency.min(64),
    )?;
    let audit: serde_json::Value = serde_json::from_str(&server_cli(
        server,
        &[
            "activity",
            "audit",
            "--id",
            &id.to_string(),
            "--acked",
            &acked.to_string_lossy(),
        ],
        store,
    )?)?;
    eprintln!("[bench] round {round} audit: {audit}");
    let signup_rps = rush["answered_rps"].as_f64().unwrap_or(0.0);
    let noop_rps = noops.baseline;
    Ok(serde_json::json!({
        "round": round,
        "cancelled": cancels["outcomes"]["cancelled"],
        "over_capacity": audit["over_capacity"],
        "double_signups": audit["double_signups"],
        "lost_acks": audit["lost_acks"],
        "waitlist_out_of_order": audit["waitlist_out_of_order"],
        "promotions_out_of_order": audit["promotions_out_of_order"],
        "unpromoted": audit["unpromoted"],
        "promoted": audit["promoted"],
        "failed_requests": rush["failed"],
        "noop_errors": noops.failed,
        "signup_rps": signup_rps,
        "noop_rps": noop_rps,
        "noop_rps_before_after": noops.runs,
        "ratio": per_baseline(signup_rps, noop_rps),
        "p50_ms": rush["p50_ms"],
        "p99_ms": rush["p99_ms"],
        // the burst's length, and when its last sign-up was accepted (the rest were refused)
        "burst_s": rush["elapsed_s"],
        "accepting_s": rush["accepting_s"],
        // the burst's first answer and its longest pauses with no answer at all ([ms, at ms])
        "first_answer_ms": rush["first_answer_ms"],
        "gaps_ms": rush["gaps_ms"],
    }))
}

/// `bench passport`: the release `passport-bench` binary; its last line is the JSON result.
pub fn passport() -> anyhow::Result<()> {
    release_bench("passport-bench")
}

/// Build one of `bench/`'s programs in release and run it.
fn release_bench(bin: &str) -> anyhow::Result<()> {
    crate::util::run(crate::util::cargo().args([
        "build",
        "--release",
        "-p",
        "unionpass-loadgen",
        "--bin",
        bin,
    ]))?;
    crate::util::run(&mut Command::new(profile_dir(true).join(bin)))
}

/// `bench points`: the release `points-bench` binary; its last line is the JSON result.
pub fn points() -> anyhow::Result<()> {
    release_bench("points-bench")
}

/// `bench wallet` (inside the headless session): the release app driven by the `wallet-bench`
/// WebDriver program of the E2E crate; its last line is the JSON result.
pub fn wallet() -> anyhow::Result<()> {
    let bin = profile_dir(true);
    crate::util::run(
        crate::util::cargo()
            .args([
                "run",
                "--quiet",
                "-p",
                "unionpass-e2e",
                "--bin",
                "wallet-bench",
            ])
            .env("APP_BIN", bin.join("unionpass-app"))
            .env("SERVER_BIN", bin.join("unionpass-server"))
            .env("PROVIDER_BIN", bin.join("unionpass-provider"))
            .env("E2E_SHOTS", target_dir().join("e2e-shots")),
    )
}

/// Peak and current resident memory of a process (`VmHWM`, `VmRSS`), in MiB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<f64>().ok())
            .map(|kb| (kb / 1024.0 * 10.0).round() / 10.0)
            .unwrap_or(0.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// `bench login-flood`: the release server on SQLite with the demo accounts, behind a "proxy"
/// (loopback is trusted, so each flood request can claim its own address); two floods in turn,
/// unknown member numbers and then ten demo members' numbers (M10011-M10020) with wrong passwords,
/// while the other ten (M10001-M10010) sign in with the right one once a second, in turn.
pub fn login_flood(args: &FloodArgs) -> anyhow::Result<()> {
    let bin = profile_dir(true);
    let server = bin.join("unionpass-server");
    let work = target_dir().join("bench-login-flood");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let store = vec![
        "--db".to_string(),
        work.join("union.sqlite").to_string_lossy().into_owned(),
    ];
    server_cli(&server, &["seed", "--demo"], &store)?;
    let mut serve_args: Vec<String> = ["--listen", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1"]
        .map(String::from)
        .to_vec();
    serve_args.extend(store.iter().cloned());
    let (guard, url) = spawn_server(&server, &serve_args, "warn", &work.join("server.log"))?;
    let pid = guard.0.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss_mb(pid).1;
    let member = |n: u32| format!("M{}", 10_000 + n);
    let honest: Vec<String> = (1..=10).map(member).collect();
    let others: Vec<String> = (11..=20).map(member).collect();
    let mut runs = Vec::new();
    for (name, targets) in [("unknown", String::new()), ("members", others.join(","))] {
        let out = Command::new(bin.join("unionpass-loadgen"))
            .args(["--url", &url, "--mode", "login-flood"])
            .args(["--concurrency", &args.concurrency.to_string()])
            .args(["--duration-s", &args.duration_s.to_string()])
            .args(["--honest-member", &honest.join(",")])
            .args(["--honest-password", "demo1234"])
            .args(["--flood-members", &targets])
            .output()?;
        if !out.status.success() {
            bail!("loadgen failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("loadgen output")?;
        eprintln!("[bench] login flood ({name}): {v}");
        runs.push((name, v));
    }
    let (peak, now) = rss_mb(pid);
    drop(guard);
    let worst = |key: &str| {
        runs.iter()
            .map(|(_, v)| v["honest_during"][key].as_f64().unwrap_or(f64::MAX))
            .fold(0.0, f64::max)
    };
    let baseline = runs
        .iter()
        .map(|(_, v)| v["honest_baseline"]["median_ms"].as_f64().unwrap_or(0.0))
        .fold(0.0, f64::max);
    let failed: u64 = runs
        .iter()
        .map(|(_, v)| v["honest_during"]["failed"].as_u64().unwrap_or(1))
        .sum();
    let flood_requests: u64 = runs
        .iter()
        .map(|(_, v)| v["flood_requests"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "bench": "login_flood",
            "concurrency": args.concurrency,
            "flood_requests": flood_requests,
            "idle_rss_mb": idle,
            "peak_rss_mb": peak,
            "end_rss_mb": now,
            "honest_failed": failed,
            "honest_baseline_ms": baseline,
            "honest_median_ms": worst("median_ms"),
            "honest_max_ms": worst("max_ms"),
            "ratio_median": if baseline > 0.0 { (worst("median_ms") / baseline * 100.0).round() / 100.0 } else { 0.0 },
        })
    );
    anyhow::ensure!(failed == 0, "{failed} honest sign-ins did not get through");
    Ok(())
}

/// `bench sync`: the release server over a fresh database of `members` members, the first
/// holding `coupons` and `entries` of history, and a door of 10,000 check-ins. `sync-bench`
/// times that member's first sync on a new device against the bare insert of the same rows and
/// counts a door scanner's bytes for a sync with nothing new; then every member syncs once after
/// a campaign is published, against the no-op endpoint. One JSON line.
pub fn sync(args: &SyncArgs) -> anyhow::Result<()> {
    in_fresh_store("sync", args.backend, |bin, server, work, store| {
        sync_on(args, bin, server, work, store)
    })
}

fn sync_on(
    args: &SyncArgs,
    bin: &Path,
    server: &Path,
    work: &Path,
    store: &[String],
) -> anyhow::Result<()> {
    let (coupons, entries) = (args.coupons.to_string(), args.entries.to_string());
    let keys = work.join("keys").to_string_lossy().into_owned();
    // every member has used the app before (their devices hold credentials: the syncs timed
    // here issue none); the first has two years of history; a door has 10,000 check-ins
    let (tokens, _guard, url) = seed_and_serve_with(
        server,
        work,
        store,
        args.members.max(1),
        &[
            "--history-coupons",
            &coupons,
            "--history-entries",
            &entries,
            "--door-checkins",
            "10000",
            "--passports-keys",
            &keys,
        ],
        &[],
    )?;
    // PostgreSQL: the seeded rows are numbered by the server's sequencer after it starts; a page
    // asked for while it runs sees only what is numbered (the rest comes at the next sync), so
    // give it a moment: the first sync is timed, not the server's start
    if args.backend == Backend::Postgres {
        std::thread::sleep(Duration::from_secs(2));
    }
    let out = Command::new(bin.join("sync-bench"))
        .args(["--url", &url, "--token-file"])
        .arg(&tokens)
        .arg("--work")
        .arg(work.join("device"))
        // the token file: the bench members, then the door's staff member
        .args(["--staff-token-line", &(args.members.max(1) + 1).to_string()])
        .output()?;
    if !out.status.success() {
        bail!(
            "sync-bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("sync-bench output")?;

    // a district-wide campaign is published; every member's app syncs once (closed loop), and
    // the server's own no-op endpoint is the baseline, in the same run
    publish_campaign(
        server,
        store,
        1000,
        1,
        chrono::Utc::now() + chrono::Duration::hours(2),
    )?;
    if args.backend == Backend::Postgres {
        std::thread::sleep(Duration::from_secs(2)); // numbered by the sequencer
    }
    let members_only = work.join("member-tokens");
    let all = std::fs::read_to_string(&tokens)?;
    let lines: Vec<&str> = all.lines().take(args.members).collect();
    std::fs::write(&members_only, lines.join("\n") + "\n")?;
    let syncs = loadgen(
        bin,
        &url,
        &members_only,
        &["--mode", "sync"],
        args.concurrency,
    )?;
    let noop = loadgen(
        bin,
        &url,
        &members_only,
        &["--mode", "noop"],
        args.concurrency,
    )?;
    let sync_rps = syncs["answered_rps"].as_f64().unwrap_or(0.0);
    let noop_rps = noop["answered_rps"].as_f64().unwrap_or(0.0);

    let line = serde_json::json!({
        "bench": "sync",
        "backend": match args.backend { Backend::Sqlite => "sqlite", Backend::Postgres => "postgres" },
        "rows": v["rows"],
        "coupons": v["coupons"],
        "points_entries": v["points_entries"],
        "pages": v["pages"],
        "first_sync_ms": v["first_sync_ms"],
        "fetch_ms": v["fetch_ms"],
        "apply_ms": v["apply_ms"],
        "first_sync_rows_per_s": v["first_sync_rows_per_s"],
        "bare_insert_ms": v["bare_insert_ms"],
        "vs_bare_insert": v["vs_bare_insert"],
        "scanner_nochange_bytes": v["scanner_nochange_bytes"],
        "scanner_checkins": v["scanner_checkins"],
        "members": args.members,
        "server_sync_rps": sync_rps,
        "noop_rps": noop_rps,
        "server_sync_ratio": if noop_rps > 0.0 { (sync_rps / noop_rps * 1000.0).round() / 1000.0 } else { 0.0 },
        "server_sync_p50_ms": syncs["p50_ms"],
        "server_sync_p99_ms": syncs["p99_ms"],
        "sync_failed": syncs["failed"],
        "noop_failed": noop["failed"],
    });
    println!("{line}");
    if v["coupons"].as_u64() != Some(args.coupons as u64)
        || v["points_entries"].as_u64() != Some(args.entries as u64)
    {
        bail!("the first sync did not bring all the history: {v}");
    }
    if v["scanner_checkins"].as_i64() != Some(10_000) {
        bail!("the door's scanner did not hold its 10,000 check-ins: {v}");
    }
    if syncs["failed"].as_i64() != Some(0) || noop["failed"].as_i64() != Some(0) {
        bail!("syncs or no-ops failed: {line}");
    }
    Ok(())
}
