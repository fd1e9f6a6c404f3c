//! `points-bench`: a member with 10,000 ledger entries in the app's store (written through the
//! sync path, in pages), then how long the points screen's parts take to compute from the store:
//! `balance_ms` (the folded ledger read and the balance) and `expiry_view_ms` (the same plus what
//! expires in each of the next 12 months), each the median of 50 runs after the first read.
//! Also reported: `first_fold_ms` (the first read after the sync, which folds all entries once)
//! and `view_ms` (the whole screen: balance, expiry, the 12-month history, the redemptions).
//! Run by `cargo xtask bench points` (release build); the last line printed is one JSON object.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use unionpass_client::store::Store;
use unionpass_core::api::{Change, ChangeKind, Profile, Role, SyncResponse, Union};
use unionpass_core::points::{Entry, EntryKind, Ledger};
use unionpass_core::time::Zone;
use uuid::Uuid;

const ENTRIES: usize = 10_000;
const RUNS: usize = 50;

/// Two years of a busy member: accruals, redemption holds settled or refunded, a few
/// adjustments; every hold fits the balance at its time, as on the server.
fn history(now: DateTime<Utc>) -> Vec<Entry> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let start = now - Duration::days(730);
    let step = Duration::days(730) / ENTRIES as i32;
    let mut ledger = Ledger::default();
    let mut open: Vec<Uuid> = Vec::new();
    let mut out = Vec::with_capacity(ENTRIES);
    for i in 0..ENTRIES {
        let at = start + step * i as i32;
        let seq = i as i64 + 1;
        let roll = rng.gen_range(0..100);
        let kind = if roll < 35 || ledger.balance(at).available < 2000 {
            EntryKind::Accrual {
                points: rng.gen_range(100..3000),
                expires_at: at + Duration::days(rng.gen_range(90..540)),
                source: "activity".into(),
            }
        } else if roll < 70 || open.is_empty() {
            let id = Uuid::from_u128(rng.gen());
            open.push(id);
            EntryKind::Hold {
                redemption: id,
                points: rng.gen_range(100..2000),
            }
        } else if roll < 95 {
            EntryKind::Settle {
                redemption: open.remove(0),
            }
        } else {
            EntryKind::Refund {
                redemption: open.remove(0),
                reason: "provider_failed".into(),
            }
        };
        let e = Entry { seq, at, kind };
        ledger.apply(&e).expect("a consistent history");
        out.push(e);
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn main() -> anyhow::Result<()> {
    let now: DateTime<Utc> = "2026-11-29T08:00:00Z".parse()?;
    let dir = tempfile_dir()?;
    let mut store = Store::open(&dir.join("unionpass.sqlite"))?;
    let entries = history(now);
    // through the sync path, 500 changes a page, as the server pages them
    for (page_no, page) in entries.chunks(500).enumerate() {
        let changes = page
            .iter()
            .map(|e| Change {
                seq: e.seq,
                at: e.at,
                kind: ChangeKind::PointsEntry(e.clone()),
            })
            .collect();
        let resp = SyncResponse {
            cursor: ((page_no + 1) * 500) as i64,
            server_time: now,
            profile: Profile {
                member_id: 1,
                member_no: "M10001".into(),
                name: "王芳".into(),
                role: Role::Member,
                union: Union {
                    id: 1,
                    name: "工会".into(),
                },
                language: None,
            },
            passport: None,
            devices: vec![],
            changes,
            more: page_no + 1 < ENTRIES / 500,
            stock_left: vec![],
            points_offer: None,
        };
        store.apply_sync(&resp, now)?;
    }

    let t = Instant::now();
    let first = store.ledger()?.balance(now);
    let first_fold_ms = ms(t);
    let folded = Ledger::fold(&entries).expect("folds");
    anyhow::ensure!(
        first == folded.balance(now),
        "the store's balance differs from the fold"
    );

    let mut balance = Vec::new();
    let mut expiry = Vec::new();
    let mut view = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let b = store.ledger()?.balance(now);
        balance.push(ms(t));
        std::hint::black_box(b);
        let t = Instant::now();
        let l = store.ledger()?;
        let e = (l.balance(now), l.expiry_schedule(now, Zone::AsiaShanghai));
        expiry.push(ms(t));
        std::hint::black_box(e);
        let t = Instant::now();
        let v = store.points_view(now)?;
        view.push(ms(t));
        std::hint::black_box(v);
    }
    let batches = folded.batches.len();
    // the keys in the order the issue names them
    println!(
        "{{\"bench\":\"points\",\"entries\":{ENTRIES},\"balance_ms\":{},\"expiry_view_ms\":{},\
         \"first_fold_ms\":{},\"view_ms\":{},\"batches\":{batches}}}",
        round(median(balance)),
        round(median(expiry)),
        round(first_fold_ms),
        round(median(view)),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("points-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
