//! `wallet-bench`: the release app with 5,000 coupons in its store. It measures the time from the
//! wallet command's call to the list's first rows on screen (`first_render_ms`), and from pressing
//! a category filter to the filtered rows (`filter_ms`). The page measures both and reports them
//! through `ui_ready` into `UNIONPASS_READY_FILE`. Medians over 11 rounds (the first ones include the JIT warming up). Run by
//! `cargo xtask bench wallet` inside the headless session; the last line printed is one JSON object.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use unionpass_client::store::Store;
use unionpass_core::api::{Change, ChangeKind, SyncResponse};
use unionpass_core::campaign::{Category, Coupon};
use unionpass_e2e::{App, Server};

const COUPONS: i64 = 5000;
/// Rounds of (open the wallet, filter by a category); the medians are reported.
const ROUNDS: usize = 11;

fn coupons(n: i64) -> Vec<Coupon> {
    let now = Utc::now();
    (1..=n)
        .map(|i| {
            let from = now - chrono::Duration::days(400) + chrono::Duration::hours(i * 2);
            Coupon {
                id: 1_000_000 + i,
                campaign_id: i % 50,
                code: format!("{:04}-{:06}-{:04}", i % 50, i, (i * 7919) % 10_000),
                category: Category::ALL[(i % 7) as usize],
                title_zh: format!("福利券 {i}"),
                title_en: format!("Welfare coupon {i}"),
                face_value_cents: 500 + (i % 20) * 100,
                terms_zh: "限本人使用".into(),
                terms_en: "Holder only".into(),
                valid_from: from,
                valid_until: from + chrono::Duration::days(30 + i % 90),
                granted_at: from,
                voided_at: None,
            }
        })
        .collect()
}

/// Put the coupons into the signed-in device's store, as a sync page would.
fn inject(data: &Path, list: Vec<Coupon>) -> anyhow::Result<()> {
    let mut store = Store::open(&data.join(unionpass_client::client::DB_FILE))?;
    let page = SyncResponse {
        cursor: store.cursor()?,
        server_time: Utc::now(),
        profile: store.profile()?.context("signed in")?,
        passport: store.passport()?,
        devices: store.devices()?,
        changes: list
            .into_iter()
            .enumerate()
            .map(|(i, c)| Change {
                seq: i as i64,
                at: Utc::now(),
                kind: ChangeKind::CouponGranted(c),
            })
            .collect(),
        more: false,
        stock_left: vec![],
        points_offer: None,
    };
    store.apply_sync(&page, Utc::now())?;
    Ok(())
}

/// Wait for the `n`th line (1-based) that starts with `what=` in the ready file; its value in ms.
async fn reported(ready: &Path, what: &str, n: usize) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(ready).unwrap_or_default();
        let values: Vec<f64> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{what}=")))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        if values.len() >= n {
            return Ok(values[n - 1]);
        }
        if Instant::now() > deadline {
            bail!("no report #{n} of {what} in {}: {text}", ready.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let client = unionpass_client::Client::open(&data)?;
    client
        .login(
            &server.url,
            "M10001",
            "demo1234",
            "wallet bench",
            Utc::now(),
        )
        .await?;
    drop(client);
    inject(&data, coupons(COUPONS))?;
    let ready = dir.path().join("ready");
    std::env::set_var("UNIONPASS_READY_FILE", &ready);
    let app = App::launch(&data, &server.url, 4524).await?;
    let result = async {
        app.wait_for("#passport-name", 30).await?;
        let mut first = Vec::new();
        let mut filter = Vec::new();
        let cats = [
            "meal", "bike", "taxi", "cinema", "cleaning", "laundry", "other",
        ];
        for round in 1..=ROUNDS {
            app.click("#tab-wallet").await?;
            first.push(reported(&ready, "wallet_first_rows", round).await?);
            app.wait_for("#wallet-list li", 10).await?;
            app.click(&format!("#cat-{}", cats[(round - 1) % cats.len()]))
                .await?;
            filter.push(reported(&ready, "wallet_filter", round).await?);
            app.click("#tab-passport").await?;
        }
        app.click("#tab-wallet").await?;
        app.wait_contains("#wallet-count", &format!("{COUPONS}"), 10)
            .await?;
        // the share of the command call (IPC, SQL, serialization) in each measurement
        let ipc: Vec<String> = std::fs::read_to_string(&ready)?
            .lines()
            .filter(|l| l.starts_with("wallet_filter="))
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|s| s.trim_start_matches("ipc=").to_string())
            .collect();
        eprintln!("[bench] filter: of which the command call (ms): {ipc:?}");
        app.shot("09-wallet-5000").await?;
        eprintln!("[bench] first rows (ms): {first:?}; filter (ms): {filter:?}");
        Ok::<_, anyhow::Error>((median(first), median(filter)))
    }
    .await;
    app.close().await;
    let (first_render_ms, filter_ms) = result?;
    println!(
        "{}",
        serde_json::json!({
            "bench": "wallet",
            "coupons": COUPONS,
            "first_render_ms": (first_render_ms * 10.0).round() / 10.0,
            "filter_ms": (filter_ms * 10.0).round() / 10.0,
        })
    );
    Ok(())
}
