//! `sync-bench --url URL --token-file FILE --work DIR`: a heavy member's first sync on a new
//! device, from the first request to the last page applied in the app's own store
//! (`unionpass_client::store::Store::apply_sync`, the code the app runs), against a real server
//! on loopback; then the same rows inserted bare (prepared statements, one transaction) into a
//! fresh store of the same schema, as the floor. With `--staff-token-line N` also a staff laptop
//! at a door with many check-ins (the token on line N): it syncs once, then again with nothing
//! new, and the bytes of that second sync (requests and answers, counted by a loopback proxy)
//! are `scanner_nochange_bytes`. Prints one JSON line.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use unionpass_client::api::{Api, ServerUrl};
use unionpass_client::secrets::Sensitive;
use unionpass_client::store::Store;
use unionpass_core::api::ChangeKind;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    /// A file whose first line is the member's session token.
    #[arg(long)]
    token_file: std::path::PathBuf,
    #[arg(long)]
    work: std::path::PathBuf,
    /// The line of the token file holding a staff session (`bench-seed --door-checkins`).
    #[arg(long)]
    staff_token_line: Option<usize>,
}

/// A loopback TCP proxy to `to` counting every byte both ways.
async fn counting_proxy(
    to: &str,
) -> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicU64>)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let to = to
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let total = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&to).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut from, mut into) in [
                (
                    Box::new(cr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                ),
                (Box::new(sr), Box::new(cw)),
            ] {
                let total = total.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = from.read(&mut buf).await {
                        if n == 0 || into.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        total.fetch_add(n as u64, Ordering::SeqCst);
                    }
                });
            }
        }
    });
    Ok((format!("http://{addr}"), count))
}

/// A staff device's first sync, then its bytes for a sync with nothing new.
async fn scanner_nochange_bytes(
    url: &str,
    token: Sensitive<String>,
    work: &std::path::Path,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(u64, i64)> {
    use std::sync::atomic::Ordering;
    let (proxy, bytes) = counting_proxy(url).await?;
    let api = Api::new(ServerUrl::parse(&proxy)?);
    let store = std::sync::Mutex::new(Store::open(&work.join("staff.sqlite"))?);
    unionpass_client::sync::run(&store, &api, &token, now).await?;
    let checked_in: i64 = {
        let store = store.lock().map_err(|_| anyhow::anyhow!("store lock"))?;
        let mut n = 0;
        for e in store.scanner_view(None, now)?.events {
            n += store.scanner_view(Some(e.id), now)?.checked_in;
        }
        n
    };
    let before = bytes.load(Ordering::SeqCst);
    unionpass_client::sync::run(&store, &api, &token, now).await?;
    Ok((bytes.load(Ordering::SeqCst) - before, checked_in))
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let token = std::fs::read_to_string(&args.token_file)?;
    let token = Sensitive::new(token.lines().next().context("a token")?.trim().to_string());
    let api = Api::new(ServerUrl::parse(&args.url)?);
    std::fs::create_dir_all(&args.work)?;
    let now = chrono::Utc::now();

    // the real first sync: every page fetched, then applied in one transaction each
    let mut store = Store::open(&args.work.join("first.sqlite"))?;
    let mut pages = Vec::new();
    let mut rows = 0usize;
    let started = Instant::now();
    let mut cursor = 0;
    let (mut fetching, mut applying) = (0.0, 0.0);
    loop {
        let t = Instant::now();
        let page = api.sync(&token, cursor).await?;
        fetching += t.elapsed().as_secs_f64();
        let t = Instant::now();
        rows += store.apply_sync(&page, now)?;
        applying += t.elapsed().as_secs_f64();
        cursor = page.cursor;
        let more = page.more;
        pages.push(page);
        if !more {
            break;
        }
    }
    let first_sync = started.elapsed();
    let held = store.held()?;
    drop(store);

    // the floor: the same coupons and entries, values ready, inserted bare into the same schema
    let bare_path = args.work.join("bare.sqlite");
    drop(Store::open(&bare_path)?);
    let mut coupons = Vec::new();
    let mut entries = Vec::new();
    for page in &pages {
        for change in &page.changes {
            match &change.kind {
                ChangeKind::CouponGranted(c) => coupons.push((
                    c.id,
                    c.campaign_id,
                    c.category.as_str(),
                    c.title_zh.clone(),
                    c.title_en.clone(),
                    c.code.clone(),
                    c.face_value_cents,
                    ts(c.valid_from),
                    ts(c.valid_until),
                    ts(c.granted_at),
                    serde_json::to_string(c)?,
                )),
                ChangeKind::PointsEntry(e) => {
                    entries.push((e.seq, ts(e.at), serde_json::to_string(e)?))
                }
                _ => {}
            }
        }
    }
    let mut conn = rusqlite::Connection::open(&bare_path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare(
            "INSERT INTO coupons(id, campaign_id, category, title_zh, title_en, code,
               face_value_cents, valid_from, valid_until, granted_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for c in &coupons {
            put.execute(rusqlite::params![
                c.0, c.1, c.2, c.3, c.4, c.5, c.6, c.7, c.8, c.9, c.10
            ])?;
        }
        let mut put =
            tx.prepare("INSERT INTO points_entries(seq, at, body) VALUES (?1, ?2, ?3)")?;
        for e in &entries {
            put.execute(rusqlite::params![e.0, e.1, e.2])?;
        }
    }
    tx.commit()?;
    let bare = started.elapsed();

    let scanner = match args.staff_token_line {
        Some(line) => {
            let staff = std::fs::read_to_string(&args.token_file)?
                .lines()
                .nth(line.saturating_sub(1))
                .context("the staff token's line")?
                .trim()
                .to_string();
            Some(scanner_nochange_bytes(&args.url, Sensitive::new(staff), &args.work, now).await?)
        }
        None => None,
    };

    let secs = first_sync.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "scanner_nochange_bytes": scanner.map(|s| s.0),
            "scanner_checkins": scanner.map(|s| s.1),
            "rows": rows,
            "coupons": held.coupons,
            "points_entries": held.points_entries,
            "pages": pages.len(),
            "first_sync_ms": (secs * 1000.0).round(),
            "fetch_ms": (fetching * 1000.0).round(),
            "apply_ms": (applying * 1000.0).round(),
            "first_sync_rows_per_s": (rows as f64 / secs).round(),
            "bare_insert_ms": (bare.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
            "bare_rows": coupons.len() + entries.len(),
            "vs_bare_insert": ((secs / bare.as_secs_f64()) * 100.0).round() / 100.0,
        })
    );
    Ok(())
}
