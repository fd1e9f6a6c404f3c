//! `unionpass-loadgen`: fire one request per member token, `--concurrency` at a time, starting at
//! `--start-at`, and print one JSON summary line (throughput, latency percentiles, outcomes).
//! `--mode grab` posts grabs (each with a fresh idempotency key) and writes the keys of the
//! acknowledged grants to `--acked-out`; `--mode noop` asks the trivial health endpoint, to
//! compare against.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use unionpass_core::campaign::{GrabOutcome, GrabResponse};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Grab,
    Noop,
}

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    /// Session tokens, one per line (one request each).
    #[arg(long)]
    tokens: std::path::PathBuf,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value_t = 0)]
    campaign: i64,
    /// When to fire (RFC 3339); now if absent.
    #[arg(long)]
    start_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Where to write the keys of acknowledged grants.
    #[arg(long)]
    acked_out: Option<std::path::PathBuf>,
}

struct Done {
    latency_us: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
    acked: Vec<String>,
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
    let tokens: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(&args.tokens)
            .context("reading tokens")?
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    // open the connections before the start, as phones already online would be
    let warm: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (http, url) = (http.clone(), args.url.clone());
            tokio::spawn(async move { http.get(format!("{url}/v1/health")).send().await.is_ok() })
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
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (http, tokens, next, url, mode, campaign) = (
            http.clone(),
            tokens.clone(),
            next.clone(),
            args.url.clone(),
            args.mode,
            args.campaign,
        );
        workers.push(tokio::spawn(async move {
            let mut done = Done {
                latency_us: Vec::new(),
                outcomes: BTreeMap::new(),
                acked: Vec::new(),
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { break };
                let t = Instant::now();
                let outcome = match mode {
                    Mode::Noop => match http.get(format!("{url}/v1/health")).send().await {
                        Ok(r) if r.status().is_success() => "ok".to_string(),
                        Ok(r) => format!("http_{}", r.status().as_u16()),
                        Err(_) => "error".to_string(),
                    },
                    Mode::Grab => {
                        let key = uuid::Uuid::new_v4();
                        let resp = http
                            .post(format!("{url}/v1/campaigns/{campaign}/grab"))
                            .bearer_auth(token)
                            .json(&serde_json::json!({ "key": key }))
                            .send()
                            .await;
                        match resp {
                            Ok(r) if r.status().is_success() => {
                                match r.json::<GrabResponse>().await {
                                    Ok(a) => {
                                        if matches!(a.outcome, GrabOutcome::Granted { .. }) {
                                            done.acked.push(a.key.to_string());
                                        }
                                        a.outcome.code().to_string()
                                    }
                                    Err(_) => "bad_body".to_string(),
                                }
                            }
                            Ok(r) => format!("http_{}", r.status().as_u16()),
                            Err(_) => "error".to_string(),
                        }
                    }
                };
                done.latency_us.push(t.elapsed().as_micros() as u64);
                *done.outcomes.entry(outcome).or_default() += 1;
            }
            done
        }));
    }
    let mut all = Done {
        latency_us: Vec::new(),
        outcomes: BTreeMap::new(),
        acked: Vec::new(),
    };
    for w in workers {
        let d = w.await?;
        all.latency_us.extend(d.latency_us);
        for (k, v) in d.outcomes {
            *all.outcomes.entry(k).or_default() += v;
        }
        all.acked.extend(d.acked);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latency_us.sort_unstable();
    if let Some(path) = &args.acked_out {
        std::fs::write(path, all.acked.join("\n") + "\n")?;
    }
    let n = all.latency_us.len();
    println!(
        "{}",
        serde_json::json!({
            "requests": n,
            "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
            "rps": (n as f64 / elapsed).round(),
            "p50_ms": (percentile(&all.latency_us, 0.50) * 10.0).round() / 10.0,
            "p99_ms": (percentile(&all.latency_us, 0.99) * 10.0).round() / 10.0,
            "outcomes": all.outcomes,
            "acked": all.acked.len(),
        })
    );
    Ok(())
}
