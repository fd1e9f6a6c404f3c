//! `sync-bench --url URL --token-file FILE --work DIR`: a heavy member's first sync on a new
//! device, from the first request to the last page applied in the app's own store
//! (`unionpass_client::store::Store::apply_sync`, the code the app runs), against a real server
//! on loopback; then the same rows inserted bare (prepared statements, one transaction) into a
//! fresh store of the same schema, as the floor. Prints one JSON line.

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

    let secs = first_sync.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
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
