//! `unionpass-loadgen`: fire one request per member token, `--concurrency` at a time, starting at
//! `--start-at`, and print one JSON summary line (throughput, latency percentiles, outcomes).
//! `--mode grab` posts grabs (each member one fresh idempotency key; every tenth member double
//! taps, sending it twice at once, and every tenth from the fifth sends it again after the answer,
//! as a retry, which must be answered `replayed` with the same outcome) and writes the keys of the
//! acknowledged grants to `--acked-out`; `--mode noop` asks the trivial health endpoint, to
//! compare against. `--mode signup` signs each member up for `--activity` (every fourth with one
//! companion) and writes each acknowledged sign-up (`key state position index`) to `--acked-out`;
//! `--mode cancel` cancels each member's sign-up. `--mode login-flood` keeps `--concurrency` sign-ins with wrong passwords in
//! flight for `--duration-s` seconds, each from a different `X-Forwarded-For` address (a botnet,
//! seen through a trusted proxy), while honest members sign in once a second, in turn, from their
//! own address (one member alone would run into the guard's free sign-ins, ten in 15 minutes); it
//! prints what the flood got back and how long each honest sign-in took, retries after
//! `Retry-After` included, first without the flood (the baseline) and then during it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use unionpass_core::activity::{SignupAnswer, SignupRequest};
use unionpass_core::campaign::{GrabOutcome, GrabRequest, GrabResponse};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Grab,
    Noop,
    LoginFlood,
    /// Sign up for `--activity` (every fourth member with one companion), a fresh key each.
    Signup,
    /// Cancel the sign-up for `--activity`.
    Cancel,
    /// One sync page each (`GET /v1/sync?cursor=0`): the member's app after a district-wide
    /// campaign was published. Answered as asked when the page holds a campaign.
    Sync,
}

#[derive(Parser)]
struct Args {
    /// The server; several instances comma separated (requests go to each in turn).
    #[arg(long)]
    url: String,
    /// Session tokens, one per line (one request each; not for `login-flood`).
    #[arg(long, required_unless_present = "honest_member")]
    tokens: Option<std::path::PathBuf>,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value_t = 0)]
    campaign: i64,
    #[arg(long, default_value_t = 0)]
    activity: i64,
    /// When to fire (RFC 3339); now if absent.
    #[arg(long)]
    start_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Where to write the keys of acknowledged grants.
    #[arg(long)]
    acked_out: Option<std::path::PathBuf>,
    /// `login-flood`: the honest members' numbers (comma separated, signing in in turn) and
    /// their password.
    #[arg(long)]
    honest_member: Option<String>,
    #[arg(long, default_value = "")]
    honest_password: String,
    /// `login-flood`: member numbers the flood guesses at, comma separated; unknown numbers when
    /// empty.
    #[arg(long, default_value = "")]
    flood_members: String,
    /// `login-flood`: how long the flood lasts.
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Open loop: send at this fixed rate (requests per second), each request timed from the
    /// instant it was due, instead of `--concurrency` requests kept in flight (which then caps
    /// the connections in use).
    #[arg(long)]
    open_loop: Option<f64>,
    /// Report `fcfs`: the share of acknowledged grants that went to the first N requests sent.
    #[arg(long)]
    fcfs_first: Option<usize>,
}

#[derive(Default)]
struct Done {
    latency_us: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
    acked: Vec<String>,
    /// The send order (member index) of each acknowledged grant.
    granted_at: Vec<usize>,
    /// When the last acknowledged grant or sign-up was answered, since the start: the end of
    /// the phase in which requests are still accepted (after it, all are refused).
    last_acked: Option<Duration>,
    /// When each member's answer came, in microseconds since the start (failures too).
    answered_at_us: Vec<u64>,
    /// Requests beyond one per member (double taps, retries).
    extra: u64,
    /// Of those, the ones answered well-formed and the same as the first answer.
    extra_answered: u64,
    /// Double taps or retries answered other than the first answer.
    mismatched: u64,
    /// Sign-up answers kept as they came, read after the run (see [`Answer`]).
    kept: Vec<Kept>,
}

/// What a request came to: its outcome's label, or (a sign-up's 2xx) the answer's body, kept as
/// it came and read after the run. The phones of a real opening read their answers on their own
/// processors; here they share the server's, so the load generator's part of a sign-up during
/// the burst is closer to the no-op's: send bytes ready beforehand, copy the answer's bytes.
enum Answer {
    Label(String),
    /// Copied out of the connection's read buffer: a slice of it kept would keep the whole
    /// buffer, and each answer would then need a new one (measured: the burst a fifth slower).
    Body(Vec<u8>),
}

/// A sign-up answer kept to be read after the run: the member, the body, and when it came.
struct Kept {
    member: usize,
    body: Vec<u8>,
    took: Duration,
    answered_at: Duration,
}

impl Done {
    /// One member's outcome, how long it took and when (since the start) it was answered;
    /// latency counts well-formed answers only (a fast error is not a fast answer).
    fn record(&mut self, member: usize, answer: Answer, took: Duration, answered_at: Duration) {
        self.answered_at_us.push(answered_at.as_micros() as u64);
        match answer {
            Answer::Label(outcome) => self.count(outcome, took),
            Answer::Body(body) => self.kept.push(Kept {
                member,
                body,
                took,
                answered_at,
            }),
        }
    }

    fn count(&mut self, outcome: String, took: Duration) {
        if !failure(&outcome) {
            self.latency_us.push(took.as_micros() as u64);
        }
        *self.outcomes.entry(outcome).or_default() += 1;
    }

    /// Read the kept sign-up answers (after the run): each one's outcome, and each acknowledged
    /// sign-up (`key state position index`) with when it came.
    fn read_kept(&mut self, phones: &[Phone]) {
        for kept in std::mem::take(&mut self.kept) {
            let outcome = match serde_json::from_slice::<SignupAnswer>(&kept.body) {
                Ok(SignupAnswer::Accepted { signup, .. }) => {
                    let state = signup.state.as_str();
                    let position = signup
                        .position
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into());
                    let key = phones[kept.member].key;
                    self.acked
                        .push(format!("{key} {state} {position} {}", kept.member));
                    self.last_acked = self.last_acked.max(Some(kept.answered_at));
                    state.to_string()
                }
                Ok(SignupAnswer::Refused { refusal }) => refusal.code.as_str().to_string(),
                Err(_) => "bad_body".to_string(),
            };
            self.count(outcome, kept.took);
        }
    }
}

/// Whether an outcome label is a failure (not an answer the client asked for).
fn failure(outcome: &str) -> bool {
    outcome.starts_with("http_") || outcome == "error" || outcome == "bad_body"
}

/// Whether `again` answers the same key as `first` should: a grant is replayed with the same
/// coupon; a refusal is not kept, so the key is judged again and refused the same way (in this
/// load no stock comes back).
fn same_answer(first: &GrabResponse, again: &GrabResponse) -> bool {
    match &first.outcome {
        GrabOutcome::Granted { .. } => again.replayed && again.outcome == first.outcome,
        refused => !first.replayed && again.outcome.code() == refused.code(),
    }
}

/// One grab request: the answer, or the failure's label.
async fn grab_once(
    http: &reqwest::Client,
    url: &Paths,
    phone: &Phone,
) -> Result<GrabResponse, String> {
    let resp = http
        .post(url.grab.clone())
        .header(AUTHORIZATION, phone.auth.clone())
        .json(&GrabRequest { key: phone.key })
        .send()
        .await;
    match resp {
        Ok(r) if r.status().is_success() => r
            .json::<GrabResponse>()
            .await
            .map_err(|_| "bad_body".to_string()),
        Ok(r) => Err(format!("http_{}", r.status().as_u16())),
        Err(_) => Err("error".to_string()),
    }
}

/// The `n` longest pauses between consecutive answer times (sorted), longest first, each with
/// when it began.
fn longest_gaps(sorted: &[u64], n: usize) -> Vec<(u64, u64)> {
    let mut gaps: Vec<(u64, u64)> = sorted.windows(2).map(|w| (w[1] - w[0], w[0])).collect();
    gaps.sort_unstable_by(|a, b| b.cmp(a));
    gaps.truncate(n);
    gaps
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if matches!(args.mode, Mode::LoginFlood) {
        return login_flood(&args).await;
    }
    let tokens_path = args.tokens.clone().context("--tokens")?;
    let urls: Arc<Vec<Paths>> = Arc::new(
        args.url
            .split(',')
            .map(|u| Paths::of(u, &args))
            .collect::<anyhow::Result<_>>()?,
    );
    // each phone is signed in and holds the key of its next change before the start
    let phones: Arc<Vec<Phone>> = Arc::new(
        std::fs::read_to_string(&tokens_path)
            .context("reading tokens")?
            .lines()
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, token)| Phone::of(i, token))
            .collect::<anyhow::Result<_>>()?,
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        // as the app states itself: every request passes the server's app-version check
        .user_agent(concat!("UnionPass/", env!("CARGO_PKG_VERSION")))
        .build()?;
    // open the connections before the start, as phones already online would be
    let warm: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let (http, url) = (http.clone(), urls[i % urls.len()].health.clone());
            tokio::spawn(async move { http.get(url).send().await.is_ok() })
        })
        .collect();
    for w in warm {
        w.await?;
    }
    if let Some(at) = args.start_at {
        let wait = (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        http: http.clone(),
        mode: args.mode,
        started,
    });
    let mut workers = Vec::new();
    match args.open_loop {
        // open loop: member i's request leaves at i / rate whatever came back before; its
        // latency runs from that instant (a request held back by the client is late, not fast)
        Some(rate) => {
            anyhow::ensure!(rate > 0.0, "--open-loop: a rate above 0");
            // at most `--concurrency` connections in use: a request due while all are busy waits
            // its turn in the client (and its latency counts the wait)
            let slots = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
            for i in 0..phones.len() {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let (ctx, phones, urls, slots) =
                    (ctx.clone(), phones.clone(), urls.clone(), slots.clone());
                workers.push(tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await.expect("open");
                    let mut done = Done::default();
                    let answer =
                        request(&ctx, &urls[i % urls.len()], i, &phones[i], &mut done).await;
                    done.record(i, answer, due.elapsed(), ctx.started.elapsed());
                    done
                }));
            }
        }
        None => {
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..args.concurrency {
                let (ctx, phones, next, urls) =
                    (ctx.clone(), phones.clone(), next.clone(), urls.clone());
                workers.push(tokio::spawn(async move {
                    let mut done = Done::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(phone) = phones.get(i) else { break };
                        // several instances: the requests spread over them in turn
                        let url = &urls[i % urls.len()];
                        let t = Instant::now();
                        let answer = request(&ctx, url, i, phone, &mut done).await;
                        done.record(i, answer, t.elapsed(), ctx.started.elapsed());
                    }
                    done
                }));
            }
        }
    }
    let mut all = Done::default();
    for w in workers {
        let d = w.await?;
        all.latency_us.extend(d.latency_us);
        for (k, v) in d.outcomes {
            *all.outcomes.entry(k).or_default() += v;
        }
        all.acked.extend(d.acked);
        all.granted_at.extend(d.granted_at);
        all.last_acked = all.last_acked.max(d.last_acked);
        all.answered_at_us.extend(d.answered_at_us);
        all.extra += d.extra;
        all.extra_answered += d.extra_answered;
        all.mismatched += d.mismatched;
        all.kept.extend(d.kept);
    }
    // the run is over (its time stops here): now the answers kept as they came are read
    let elapsed = started.elapsed().as_secs_f64();
    all.read_kept(&phones);
    // first come, first served: the share of grants that went to the first requests sent
    let fcfs = args.fcfs_first.map(|first| {
        let early = all.granted_at.iter().filter(|&&i| i < first).count();
        if all.granted_at.is_empty() {
            0.0
        } else {
            (early as f64 / all.granted_at.len() as f64 * 1000.0).round() / 1000.0
        }
    });
    all.latency_us.sort_unstable();
    all.answered_at_us.sort_unstable();
    let ms = |us: u64| (us as f64 / 100.0).round() / 10.0;
    if let Some(path) = &args.acked_out {
        std::fs::write(path, all.acked.join("\n") + "\n")?;
    }
    let n: u64 = all.outcomes.values().sum();
    // what the server answered as asked (not 429/5xx/transport errors): the throughput that counts
    let failed: u64 = all
        .outcomes
        .iter()
        .filter(|(k, _)| failure(k))
        .map(|(_, v)| *v)
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "requests": n,
            "failed": failed,
            "answered_rps": ((n - failed) as f64 / elapsed).round(),
            // every request answered well-formed, the double taps' and retries' too (those of a
            // member whose own answer failed are not counted): the unit of the no-op's rate
            "answered_requests_rps": ((n - failed + all.extra_answered) as f64 / elapsed).round(),
            "extra_requests": all.extra,
            "extra_answered": all.extra_answered,
            "mismatched_replays": all.mismatched,
            "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
            "rps": (n as f64 / elapsed).round(),
            "p50_ms": (percentile(&all.latency_us, 0.50) * 10.0).round() / 10.0,
            "p99_ms": (percentile(&all.latency_us, 0.99) * 10.0).round() / 10.0,
            "outcomes": all.outcomes,
            "acked": all.acked.len(),
            "open_loop_rps": args.open_loop,
            "fcfs": fcfs,
            "accepting_s": all.last_acked.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
            // where a run's time goes besides its requests: how long before the first answer,
            // and the longest pauses with no answer at all (`[length, at]` in ms)
            "first_answer_ms": all.answered_at_us.first().map(|&us| ms(us)),
            "gaps_ms": longest_gaps(&all.answered_at_us, 3)
                .into_iter()
                .map(|(gap, at)| [ms(gap), ms(at)])
                .collect::<Vec<_>>(),
        })
    );
    Ok(())
}

fn device_key() -> String {
    use base64::Engine;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())
}

fn login_body(member_no: &str, password: &str, device_key: &str) -> serde_json::Value {
    serde_json::json!({
        "member_no": member_no,
        "password": password,
        "device_key": device_key,
        "device_name": "loadgen",
    })
}

/// One honest sign-in, waiting out `Retry-After` as the app does: its time until success, or
/// `None` after 60 s.
async fn honest_login(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    addr: &str,
) -> (Option<f64>, u32) {
    let t = Instant::now();
    let mut refusals = 0;
    while t.elapsed() < Duration::from_secs(60) {
        let resp = http
            .post(format!("{url}/v1/login"))
            .header("x-forwarded-for", addr)
            .json(body)
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => {
                return (Some(t.elapsed().as_secs_f64() * 1000.0), refusals)
            }
            // only "not now" (429, 503) is worth waiting out; anything else is a failure
            Ok(r) if !matches!(r.status().as_u16(), 429 | 503) => {
                eprintln!("honest sign-in refused: {}", r.status());
                return (None, refusals + 1);
            }
            Ok(r) => {
                refusals += 1;
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.min(10))).await;
            }
            Err(_) => {
                refusals += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    (None, refusals)
}

/// Honest sign-ins, one a second for `duration`, the members in turn from `*turn`, each as the
/// app makes one: with a new device key.
async fn honest_run(
    http: reqwest::Client,
    url: String,
    (members, password): (&[String], &str),
    turn: &mut usize,
    duration: Duration,
) -> serde_json::Value {
    let started = Instant::now();
    let (mut times, mut failed, mut refusals) = (Vec::new(), 0u32, 0u32);
    while started.elapsed() < duration {
        let t = Instant::now();
        let member = &members[*turn % members.len()];
        *turn += 1;
        let body = login_body(member, password, &device_key());
        match honest_login(&http, &url, &body, "198.51.100.7").await {
            (Some(ms), r) => {
                times.push(ms);
                refusals += r;
            }
            (None, r) => {
                failed += 1;
                refusals += r;
            }
        }
        if let Some(rest) = Duration::from_secs(1).checked_sub(t.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    times.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .map(|ms| (ms * 10.0).round() / 10.0)
            .unwrap_or(0.0)
    };
    serde_json::json!({
        "ok": times.len(),
        "failed": failed,
        "refusals": refusals,
        "median_ms": pick(0.5),
        "max_ms": pick(1.0),
    })
}

async fn login_flood(args: &Args) -> anyhow::Result<()> {
    let members: Vec<String> = args
        .honest_member
        .as_deref()
        .context("--honest-member")?
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    anyhow::ensure!(!members.is_empty(), "--honest-member: no member number");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency + 4)
        .timeout(Duration::from_secs(60))
        .build()?;
    let honest = (members.as_slice(), args.honest_password.as_str());
    let mut turn = 0;
    let duration = Duration::from_secs(args.duration_s);
    // the baseline: the same honest sign-ins with nothing else going on
    let baseline = honest_run(
        http.clone(),
        args.url.clone(),
        honest,
        &mut turn,
        Duration::from_secs(5),
    )
    .await;
    let targets: Arc<Vec<String>> = Arc::new(
        args.flood_members
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect(),
    );
    let deadline = Instant::now() + duration;
    let next = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..args.concurrency {
        let (http, url, targets, next) = (
            http.clone(),
            args.url.clone(),
            targets.clone(),
            next.clone(),
        );
        flood.push(tokio::spawn(async move {
            let key = device_key();
            let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let member = match targets.get(i % targets.len().max(1)) {
                    Some(m) if !targets.is_empty() => m.clone(),
                    _ => format!("X{}", 900_000 + i),
                };
                // a different address each time: no per-address limit can stop this
                let addr = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                let resp = http
                    .post(format!("{url}/v1/login"))
                    .header("x-forwarded-for", addr)
                    .json(&login_body(&member, "not-the-password", &key))
                    .send()
                    .await;
                let outcome = match resp {
                    Ok(r) => format!("http_{}", r.status().as_u16()),
                    Err(_) => "error".to_string(),
                };
                *outcomes.entry(outcome).or_default() += 1;
            }
            outcomes
        }));
    }
    // let the flood fill the server before the first honest sign-in
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = honest_run(
        http.clone(),
        args.url.clone(),
        honest,
        &mut turn,
        duration.saturating_sub(Duration::from_millis(500)),
    )
    .await;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for f in flood {
        for (k, v) in f.await? {
            *outcomes.entry(k).or_default() += v;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "flood_requests": outcomes.values().sum::<u64>(),
            "flood_outcomes": outcomes,
            "honest_baseline": baseline,
            "honest_during": during,
        })
    );
    Ok(())
}

/// What a request of the run needs besides its member.
struct Ctx {
    http: reqwest::Client,
    mode: Mode,
    /// When the run started (`accepting_s`).
    started: Instant,
}

/// One server's addresses for the run, parsed once (as an app holds its server's).
struct Paths {
    health: Url,
    sync: Url,
    grab: Url,
    signup: Url,
    cancel: Url,
}

impl Paths {
    fn of(base: &str, args: &Args) -> anyhow::Result<Paths> {
        let at = |path: String| Url::parse(&format!("{base}{path}")).context("--url");
        Ok(Paths {
            health: at("/v1/health".into())?,
            sync: at("/v1/sync?cursor=0".into())?,
            grab: at(format!("/v1/campaigns/{}/grab", args.campaign))?,
            signup: at(format!("/v1/activities/{}/signup", args.activity))?,
            cancel: at(format!("/v1/activities/{}/cancel", args.activity))?,
        })
    }
}

/// A member's phone before the start: signed in (its session's header), and holding the key of
/// the change it is about to send (the app stores it before the first send), and the sign-up
/// it is about to send, written out (member `i` brings a companion when `i` is a multiple of 4).
struct Phone {
    auth: HeaderValue,
    key: uuid::Uuid,
    signup: Bytes,
}

impl Phone {
    fn of(i: usize, token: &str) -> anyhow::Result<Phone> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).context("a token")?;
        auth.set_sensitive(true);
        let key = uuid::Uuid::new_v4();
        let companions = i64::from(i.is_multiple_of(4));
        let signup = serde_json::to_vec(&SignupRequest { key, companions })?.into();
        Ok(Phone { auth, key, signup })
    }
}

/// Member `i`'s request(s) to `url`: the outcome's label (a failure's, or the answer's code), or
/// a sign-up's answer to read after the run; acknowledged grants, extra requests and mismatched
/// replays go into `done`.
async fn request(ctx: &Ctx, url: &Paths, i: usize, phone: &Phone, done: &mut Done) -> Answer {
    Answer::Label(match label(ctx, url, i, phone, done).await {
        Ok(label) => label,
        Err(answer) => return answer,
    })
}

/// [`request`]'s label, or `Err` with a sign-up's answer.
async fn label(
    ctx: &Ctx,
    url: &Paths,
    i: usize,
    phone: &Phone,
    done: &mut Done,
) -> Result<String, Answer> {
    let http = &ctx.http;
    Ok(match ctx.mode {
        Mode::Noop => match http.get(url.health.clone()).send().await {
            Ok(r) if r.status().is_success() => "ok".to_string(),
            Ok(r) => format!("http_{}", r.status().as_u16()),
            Err(_) => "error".to_string(),
        },
        Mode::LoginFlood => unreachable!("handled above"),
        Mode::Sync => {
            match http
                .get(url.sync.clone())
                .header(AUTHORIZATION, phone.auth.clone())
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => match r.text().await {
                    Ok(body) if body.contains("\"kind\":\"campaign\"") => "page".to_string(),
                    Ok(_) => "bad_body".to_string(),
                    Err(_) => "error".to_string(),
                },
                Ok(r) => format!("http_{}", r.status().as_u16()),
                Err(_) => "error".to_string(),
            }
        }
        Mode::Signup => {
            let resp = http
                .post(url.signup.clone())
                .header(AUTHORIZATION, phone.auth.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(phone.signup.clone())
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(body) => return Err(Answer::Body(body.to_vec())),
                    Err(_) => "error".to_string(),
                },
                Ok(r) => format!("http_{}", r.status().as_u16()),
                Err(_) => "error".to_string(),
            }
        }
        Mode::Cancel => {
            match http
                .post(url.cancel.clone())
                .header(AUTHORIZATION, phone.auth.clone())
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => "cancelled".to_string(),
                Ok(r) => format!("http_{}", r.status().as_u16()),
                Err(_) => "error".to_string(),
            }
        }
        Mode::Grab => {
            let once = || grab_once(http, url, phone);
            let first = if i.is_multiple_of(10) {
                // a double tap: the same key twice at once; one is the first answer
                let (a, b) = tokio::join!(once(), once());
                done.extra += 1;
                match (a, b) {
                    (Ok(a), Ok(b)) => {
                        if !same_answer(&a, &b) && !same_answer(&b, &a) {
                            done.mismatched += 1;
                        } else {
                            done.extra_answered += 1;
                        }
                        Ok(if a.replayed { b } else { a })
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            } else {
                once().await
            };
            let first = match (first, i % 10 == 5) {
                (Ok(a), true) => {
                    // a retry of the same key after its answer: replayed, the same
                    done.extra += 1;
                    match once().await {
                        Ok(again) if same_answer(&a, &again) => {
                            done.extra_answered += 1;
                            Ok(a)
                        }
                        Ok(_) => {
                            done.mismatched += 1;
                            Ok(a)
                        }
                        Err(e) => Err(e),
                    }
                }
                (other, _) => other,
            };
            match first {
                Ok(a) => {
                    if matches!(a.outcome, GrabOutcome::Granted { .. }) {
                        done.acked.push(a.key.to_string());
                        done.granted_at.push(i);
                        done.last_acked = Some(ctx.started.elapsed());
                    }
                    a.outcome.code().to_string()
                }
                Err(e) => e,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::longest_gaps;

    #[test]
    fn the_longest_pauses_between_answers_come_first_with_when_they_began() {
        let at = [100, 150, 900, 905, 2_000, 2_010];
        assert_eq!(longest_gaps(&at, 2), vec![(1_095, 905), (750, 150)]);
        assert_eq!(
            longest_gaps(&at, 9).len(),
            5,
            "one pause between each two answers"
        );
        assert!(
            longest_gaps(&[7], 3).is_empty(),
            "a single answer has no pause"
        );
    }
}
