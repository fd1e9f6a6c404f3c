//! The points ledger, the offer and redemptions on SQLite. Every write of a member's ledger happens
//! in the one writer connection's transactions, so a member's entries are folded and appended in
//! order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use unionpass_core::api::{ChangeKind, MutationOutcome};
use unionpass_core::points::{Entry, EntryKind, Ledger};
use unionpass_core::redeem::{
    self, CatalogItem, PointsOffer, RedeemRequest, Redemption, RedemptionStatus, Target,
};
use unionpass_core::time::Zone;
use unionpass_core::ErrorCode;
use uuid::Uuid;

use super::{json, log_change, parse_ts, ts, SqliteStore};
use crate::store::rules::{finished, redeem_refusal, CAP_WINDOW};
use crate::store::{Claimed, Fulfilment, Points, StoreError};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(super) fn offer(conn: &Connection) -> Result<PointsOffer, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM points_offer WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let mut offer = match body {
        Some(b) => serde_json::from_str(&b)?,
        None => PointsOffer::none(),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT id, title_zh, title_en, points, stock FROM catalog ORDER BY points, id",
    )?;
    offer.catalog = stmt
        .query_map([], |r| {
            Ok(redeem::CatalogItem {
                id: r.get(0)?,
                title_zh: r.get(1)?,
                title_en: r.get(2)?,
                points: r.get(3)?,
                stock: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(offer)
}

pub(super) fn set_offer(conn: &Connection, offer: &PointsOffer) -> Result<(), StoreError> {
    let bare = PointsOffer {
        catalog: Vec::new(),
        ..offer.clone()
    };
    conn.execute(
        "INSERT INTO points_offer(id, body) VALUES (1, ?1)
         ON CONFLICT(id) DO UPDATE SET body = excluded.body",
        [json(&bare)],
    )?;
    Ok(())
}

pub(super) fn put_item(conn: &Connection, item: &CatalogItem) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO catalog(id, title_zh, title_en, points, stock) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET title_zh = excluded.title_zh, title_en = excluded.title_en,
           points = excluded.points, stock = excluded.stock",
        params![
            item.id,
            item.title_zh,
            item.title_en,
            item.points,
            item.stock
        ],
    )?;
    Ok(())
}

pub(super) fn entries(conn: &Connection, member_id: i64) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, body FROM points_entries WHERE member_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([member_id], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body) = row?;
        let e: Entry = serde_json::from_str(&body)?;
        out.push(Entry { seq, ..e });
    }
    Ok(out)
}

/// Append an entry to a member's ledger and announce it to the member's apps.
pub(super) fn append(
    conn: &Connection,
    member_id: i64,
    kind: EntryKind,
    now: DateTime<Utc>,
) -> Result<Entry, StoreError> {
    conn.execute(
        "INSERT INTO points_entries(member_id, at, body) VALUES (?1, ?2, '{}')",
        params![member_id, ts(now)],
    )?;
    let entry = Entry {
        seq: conn.last_insert_rowid(),
        at: now,
        kind,
    };
    conn.execute(
        "UPDATE points_entries SET body = ?2 WHERE seq = ?1",
        params![entry.seq, json(&entry)],
    )?;
    log_change(
        conn,
        Some(member_id),
        now,
        &ChangeKind::PointsEntry(entry.clone()),
    )?;
    if let Some(expires_at) = entry.kind.new_batch_expiry() {
        conn.execute(
            "INSERT INTO points_expiry(batch_seq, member_id, expires_at) VALUES (?1, ?2, ?3)",
            params![entry.seq, member_id, ts(expires_at)],
        )?;
    }
    Ok(entry)
}

/// Write down what has expired in a member's ledger at `now` (nothing when it is all written).
fn record_member_expirations(
    tx: &Connection,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let ledger = Ledger::fold(&entries(tx, member_id)?).map_err(corrupt)?;
    let due = ledger.unrecorded_expirations(now);
    for kind in &due {
        append(tx, member_id, kind.clone(), now)?;
    }
    tx.execute(
        "UPDATE points_expiry SET done = 1 WHERE member_id = ?1 AND expires_at <= ?2",
        params![member_id, ts(now)],
    )?;
    Ok(due.len())
}

/// The expiry sweep: members with batches that expired and are not written down yet, up to
/// `limit` of them, each in its own transaction. Answers how many entries were written.
pub(super) fn record_expirations(
    conn: &mut Connection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StoreError> {
    let members: Vec<i64> = conn
        .prepare_cached(
            "SELECT DISTINCT member_id FROM points_expiry WHERE done = 0 AND expires_at <= ?1
             LIMIT ?2",
        )?
        .query_map(params![ts(now), limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut written = 0;
    for m in members {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        written += record_member_expirations(&tx, m, now)?;
        tx.commit()?;
    }
    Ok(written)
}

fn save_redemption(conn: &Connection, member_id: i64, r: &Redemption) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO redemptions(id, member_id, kind, amount_cents, status, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body",
        params![
            r.id.to_string(),
            member_id,
            r.target.kind(),
            r.target.amount_cents(),
            r.status.as_str(),
            json(r),
            ts(r.created_at)
        ],
    )?;
    log_change(
        conn,
        Some(member_id),
        r.updated_at,
        &ChangeKind::Redemption(r.clone()),
    )?;
    Ok(())
}

/// The `redeem` mutation, inside the mutation's transaction.
pub(super) fn redeem(
    tx: &Connection,
    member_id: i64,
    id: Uuid,
    req: &RedeemRequest,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let offer = offer(tx)?;
    let ledger = Ledger::fold(&entries(tx, member_id)?).map_err(corrupt)?;
    let used: Vec<(DateTime<Utc>, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT created_at, amount_cents FROM redemptions
             WHERE member_id = ?1 AND kind = ?2 AND status IN ('held', 'settled')
               AND created_at >= ?3",
        )?;
        let since = ts(now - CAP_WINDOW);
        let rows = stmt.query_map(params![member_id, req.target.kind(), since], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut used = Vec::new();
        for row in rows {
            let (at, amount) = row?;
            used.push((parse_ts(&at)?, amount));
        }
        used
    };
    let reauthenticated: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM reauth_grants WHERE redemption_id = ?1 AND member_id = ?2
           AND until > ?3)",
        params![id.to_string(), member_id, ts(now)],
        |r| r.get(0),
    )?;
    let q = match redeem::check(
        &offer,
        &ledger,
        &used,
        reauthenticated,
        req,
        now,
        Zone::AsiaShanghai,
    ) {
        Ok(q) => q,
        Err(code) => return Ok(redeem_refusal(code)),
    };
    if let Target::Catalog { item_id } = q.target {
        let taken = tx.execute(
            "UPDATE catalog SET stock = stock - 1 WHERE id = ?1 AND stock > 0",
            [item_id],
        )?;
        if taken == 0 {
            return Ok(redeem_refusal(ErrorCode::OutOfStock));
        }
    }
    append(
        tx,
        member_id,
        EntryKind::Hold {
            redemption: id,
            points: q.points,
        },
        now,
    )?;
    save_redemption(
        tx,
        member_id,
        &Redemption {
            id,
            target: q.target,
            points: q.points,
            created_at: now,
            updated_at: now,
            status: RedemptionStatus::Held,
        },
    )?;
    Ok(MutationOutcome::Applied)
}

pub(super) fn grant_reauth(
    conn: &Connection,
    member_id: i64,
    id: Uuid,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO reauth_grants(redemption_id, member_id, until) VALUES (?1, ?2, ?3)
         ON CONFLICT(redemption_id) DO UPDATE SET until = excluded.until
         WHERE reauth_grants.member_id = excluded.member_id",
        params![id.to_string(), member_id, ts(until)],
    )?;
    Ok(())
}

pub(super) fn claim(
    conn: &Connection,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE redemptions SET claimed_until = ?2 WHERE id IN (
           SELECT id FROM redemptions WHERE status = 'held'
             AND (claimed_until IS NULL OR claimed_until <= ?1)
           ORDER BY created_at LIMIT ?3)
         RETURNING member_id, body",
    )?;
    let rows = stmt.query_map(params![ts(now), ts(now + lease), limit], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (member_id, body) = row?;
        out.push(Claimed {
            member_id,
            redemption: serde_json::from_str(&body)?,
        });
    }
    out.sort_by_key(|c| c.redemption.created_at);
    Ok(out)
}

pub(super) fn finish(
    tx: &Connection,
    id: Uuid,
    how: &Fulfilment,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row: Option<(i64, String)> = tx
        .query_row(
            "SELECT member_id, body FROM redemptions WHERE id = ?1 AND status = 'held'",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((member_id, body)) = row else {
        return Ok(false);
    };
    let held: Redemption = serde_json::from_str(&body)?;
    let (entry, done) = finished(&held, how, now);
    append(tx, member_id, entry, now)?;
    if let (Fulfilment::Refunded(_), Target::Catalog { item_id }) = (how, &held.target) {
        tx.execute(
            "UPDATE catalog SET stock = stock + 1 WHERE id = ?1",
            [item_id],
        )?;
    }
    save_redemption(tx, member_id, &done)?;
    if matches!(how, Fulfilment::Refunded(_)) {
        // points refunded into a batch that has expired meanwhile expire at once, on record
        record_member_expirations(tx, member_id, now)?;
    }
    Ok(true)
}

pub(super) fn redemptions(
    conn: &Connection,
    member_id: i64,
) -> Result<Vec<Redemption>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM redemptions WHERE member_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([member_id], |r| r.get::<_, String>(0))?;
    rows.map(|b| Ok(serde_json::from_str(&b?)?)).collect()
}

#[async_trait]
impl Points for SqliteStore {
    async fn points_offer(&self) -> Result<PointsOffer, StoreError> {
        self.with_read(|c| offer(c)).await
    }

    async fn set_points_offer(&self, o: PointsOffer) -> Result<(), StoreError> {
        self.with(move |c| set_offer(c, &o)).await
    }

    async fn put_catalog_item(&self, item: CatalogItem) -> Result<(), StoreError> {
        self.with(move |c| put_item(c, &item)).await
    }

    async fn accrue_points(
        &self,
        member_id: i64,
        points: i64,
        expires_at: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Entry, StoreError> {
        let source = source.to_string();
        self.in_tx(move |tx| {
            append(
                tx,
                member_id,
                EntryKind::Accrual {
                    points,
                    expires_at,
                    source,
                },
                now,
            )
        })
        .await
    }

    async fn points_entries(&self, member_id: i64) -> Result<Vec<Entry>, StoreError> {
        self.with_read(move |c| entries(c, member_id)).await
    }

    async fn grant_reauth(
        &self,
        member_id: i64,
        id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(move |c| grant_reauth(c, member_id, id, until))
            .await
    }

    async fn claim_redemptions(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.with(move |c| claim(c, now, lease, limit)).await
    }

    async fn finish_redemption(
        &self,
        id: Uuid,
        how: Fulfilment,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.in_tx(move |tx| finish(tx, id, &how, now)).await
    }

    async fn record_expirations(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<usize, StoreError> {
        self.with(move |c| record_expirations(c, now, limit)).await
    }

    async fn redemptions(&self, member_id: i64) -> Result<Vec<Redemption>, StoreError> {
        self.with_read(move |c| redemptions(c, member_id)).await
    }
}
