//! The points ledger, the offer and redemptions on PostgreSQL. A member's ledger writes lock the
//! member's row first, so concurrent instances fold and append one member's entries one at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use unionpass_core::api::{ChangeKind, MutationOutcome};
use unionpass_core::points::{Entry, EntryKind, Ledger};
use unionpass_core::redeem::{
    self, CatalogItem, PointsOffer, RedeemRequest, Redemption, RedemptionStatus, Target,
};
use unionpass_core::time::Zone;
use unionpass_core::ErrorCode;
use uuid::Uuid;

use super::{from_json, json, log_change, PgStore};
use crate::store::rules::{finished, redeem_refusal, CAP_WINDOW};
use crate::store::{Claimed, Fulfilment, Points, StoreError};

pub(super) async fn offer(c: &impl GenericClient) -> Result<PointsOffer, StoreError> {
    // both statements at once (pipelined on one connection), each prepared once per connection
    let (body, items) = (
        c.prepare_cached("SELECT body FROM points_offer WHERE id = 1")
            .await?,
        c.prepare_cached(
            "SELECT id, title_zh, title_en, points, stock FROM catalog ORDER BY points, id",
        )
        .await?,
    );
    let (row, items) = tokio::try_join!(c.query_opt(&body, &[]), c.query(&items, &[]))?;
    let mut offer = match row {
        Some(r) => from_json(r.get(0))?,
        None => PointsOffer::none(),
    };
    offer.catalog = items
        .iter()
        .map(|r| redeem::CatalogItem {
            id: r.get(0),
            title_zh: r.get(1),
            title_en: r.get(2),
            points: r.get(3),
            stock: r.get(4),
        })
        .collect();
    Ok(offer)
}

pub(super) async fn set_offer(
    c: &impl GenericClient,
    offer: &PointsOffer,
) -> Result<(), StoreError> {
    let bare = PointsOffer {
        catalog: Vec::new(),
        ..offer.clone()
    };
    c.execute(
        "INSERT INTO points_offer(id, body) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET body = excluded.body",
        &[&json(&bare)],
    )
    .await?;
    Ok(())
}

pub(super) async fn put_item(c: &impl GenericClient, item: &CatalogItem) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO catalog(id, title_zh, title_en, points, stock) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET title_zh = excluded.title_zh,
           title_en = excluded.title_en, points = excluded.points, stock = excluded.stock",
        &[
            &item.id,
            &item.title_zh,
            &item.title_en,
            &item.points,
            &item.stock,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn entries(
    c: &impl GenericClient,
    member_id: i64,
) -> Result<Vec<Entry>, StoreError> {
    c.query(
        "SELECT seq, body FROM points_entries WHERE member_id = $1 ORDER BY seq",
        &[&member_id],
    )
    .await?
    .iter()
    .map(|r| {
        let e: Entry = from_json(r.get(1))?;
        Ok(Entry { seq: r.get(0), ..e })
    })
    .collect()
}

/// Take the member's row lock: ledger writes of one member happen one at a time.
pub(super) async fn lock_member(tx: &impl GenericClient, member_id: i64) -> Result<(), StoreError> {
    tx.execute(
        "SELECT 1 FROM members WHERE id = $1 FOR UPDATE",
        &[&member_id],
    )
    .await?;
    Ok(())
}

/// Append an entry to a member's ledger (the member's row is locked) and announce it.
pub(super) async fn append(
    tx: &impl GenericClient,
    member_id: i64,
    kind: EntryKind,
    now: DateTime<Utc>,
) -> Result<Entry, StoreError> {
    let seq: i64 = tx
        .query_one(
            "INSERT INTO points_entries(member_id, at, body) VALUES ($1, $2, '{}') RETURNING seq",
            &[&member_id, &now],
        )
        .await?
        .get(0);
    let entry = Entry { seq, at: now, kind };
    tx.execute(
        "UPDATE points_entries SET body = $2 WHERE seq = $1",
        &[&seq, &json(&entry)],
    )
    .await?;
    log_change(
        tx,
        Some(member_id),
        now,
        &ChangeKind::PointsEntry(entry.clone()),
    )
    .await?;
    if let Some(expires_at) = entry.kind.new_batch_expiry() {
        tx.execute(
            "INSERT INTO points_expiry(batch_seq, member_id, expires_at) VALUES ($1, $2, $3)",
            &[&entry.seq, &member_id, &expires_at],
        )
        .await?;
    }
    Ok(entry)
}

/// Write down what has expired in a member's ledger at `now` (the member's row is locked).
pub(super) async fn record_member_expirations(
    tx: &impl GenericClient,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let ledger = Ledger::fold(&entries(tx, member_id).await?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let due = ledger.unrecorded_expirations(now);
    for kind in &due {
        append(tx, member_id, kind.clone(), now).await?;
    }
    tx.execute(
        "UPDATE points_expiry SET done = true WHERE member_id = $1 AND expires_at <= $2",
        &[&member_id, &now],
    )
    .await?;
    Ok(due.len())
}

/// Members with expired batches not written down yet, up to `limit`.
pub(super) async fn members_with_expiry(
    c: &impl GenericClient,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(c.query(
        "SELECT DISTINCT member_id FROM points_expiry WHERE NOT done AND expires_at <= $1
             LIMIT $2",
        &[&now, &limit],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

async fn save_redemption(
    tx: &impl GenericClient,
    member_id: i64,
    r: &Redemption,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO redemptions(id, member_id, kind, amount_cents, status, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body",
        &[
            &r.id,
            &member_id,
            &r.target.kind(),
            &r.target.amount_cents(),
            &r.status.as_str(),
            &json(r),
            &r.created_at,
        ],
    )
    .await?;
    log_change(
        tx,
        Some(member_id),
        r.updated_at,
        &ChangeKind::Redemption(r.clone()),
    )
    .await?;
    Ok(())
}

/// The `redeem` mutation, inside the mutation's transaction.
pub(super) async fn redeem(
    tx: &impl GenericClient,
    member_id: i64,
    id: Uuid,
    req: &RedeemRequest,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    lock_member(tx, member_id).await?;
    let offer = offer(tx).await?;
    let ledger = Ledger::fold(&entries(tx, member_id).await?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let since = now - CAP_WINDOW;
    let used: Vec<(DateTime<Utc>, i64)> = tx
        .query(
            "SELECT created_at, amount_cents FROM redemptions
             WHERE member_id = $1 AND kind = $2 AND status IN ('held', 'settled')
               AND created_at >= $3",
            &[&member_id, &req.target.kind(), &since],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let reauthenticated = tx
        .query_opt(
            "SELECT 1 FROM reauth_grants WHERE redemption_id = $1 AND member_id = $2 AND until > $3",
            &[&id, &member_id, &now],
        )
        .await?
        .is_some();
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
        let taken = tx
            .execute(
                "UPDATE catalog SET stock = stock - 1 WHERE id = $1 AND stock > 0",
                &[&item_id],
            )
            .await?;
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
    )
    .await?;
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
    )
    .await?;
    Ok(MutationOutcome::Applied)
}

pub(super) async fn grant_reauth(
    c: &impl GenericClient,
    member_id: i64,
    id: Uuid,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO reauth_grants(redemption_id, member_id, until) VALUES ($1, $2, $3)
         ON CONFLICT (redemption_id) DO UPDATE SET until = excluded.until
         WHERE reauth_grants.member_id = excluded.member_id",
        &[&id, &member_id, &until],
    )
    .await?;
    Ok(())
}

pub(super) async fn claim(
    c: &impl GenericClient,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let until = now + lease;
    let mut out = c
        .query(
            "UPDATE redemptions SET claimed_until = $2 WHERE id IN (
               SELECT id FROM redemptions WHERE status = 'held'
                 AND (claimed_until IS NULL OR claimed_until <= $1)
               ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING member_id, body",
            &[&now, &until, &limit],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Claimed {
                member_id: r.get(0),
                redemption: from_json(r.get(1))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by_key(|c| c.redemption.created_at);
    Ok(out)
}

pub(super) async fn finish(
    tx: &impl GenericClient,
    id: Uuid,
    how: &Fulfilment,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(row) = tx
        .query_opt(
            "SELECT member_id FROM redemptions WHERE id = $1 AND status = 'held'",
            &[&id],
        )
        .await?
    else {
        return Ok(false);
    };
    let member_id: i64 = row.get(0);
    lock_member(tx, member_id).await?;
    // read again under the member's lock: another instance may have finished it meanwhile
    let Some(row) = tx
        .query_opt(
            "SELECT body FROM redemptions WHERE id = $1 AND status = 'held' FOR UPDATE",
            &[&id],
        )
        .await?
    else {
        return Ok(false);
    };
    let held: Redemption = from_json(row.get(0))?;
    let (entry, done) = finished(&held, how, now);
    append(tx, member_id, entry, now).await?;
    if let (Fulfilment::Refunded(_), Target::Catalog { item_id }) = (how, &held.target) {
        tx.execute(
            "UPDATE catalog SET stock = stock + 1 WHERE id = $1",
            &[item_id],
        )
        .await?;
    }
    save_redemption(tx, member_id, &done).await?;
    if matches!(how, Fulfilment::Refunded(_)) {
        // points refunded into a batch that has expired meanwhile expire at once, on record
        record_member_expirations(tx, member_id, now).await?;
    }
    Ok(true)
}

pub(super) async fn redemptions(
    c: &impl GenericClient,
    member_id: i64,
) -> Result<Vec<Redemption>, StoreError> {
    c.query(
        "SELECT body FROM redemptions WHERE member_id = $1 ORDER BY created_at, id",
        &[&member_id],
    )
    .await?
    .iter()
    .map(|r| from_json(r.get(0)))
    .collect()
}

#[async_trait]
impl Points for PgStore {
    async fn points_offer(&self) -> Result<PointsOffer, StoreError> {
        let client = self.pool.get().await?;
        offer(&client).await
    }

    async fn set_points_offer(&self, o: PointsOffer) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        set_offer(&client, &o).await
    }

    async fn put_catalog_item(&self, item: CatalogItem) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        put_item(&client, &item).await
    }

    async fn accrue_points(
        &self,
        member_id: i64,
        points: i64,
        expires_at: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Entry, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_member(&tx, member_id).await?;
        let e = append(
            &tx,
            member_id,
            EntryKind::Accrual {
                points,
                expires_at,
                source: source.to_string(),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(e)
    }

    async fn points_entries(&self, member_id: i64) -> Result<Vec<Entry>, StoreError> {
        let client = self.pool.get().await?;
        entries(&client, member_id).await
    }

    async fn grant_reauth(
        &self,
        member_id: i64,
        id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        grant_reauth(&client, member_id, id, until).await
    }

    async fn claim_redemptions(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let client = self.pool.get().await?;
        claim(&client, now, lease, limit).await
    }

    async fn finish_redemption(
        &self,
        id: Uuid,
        how: Fulfilment,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let done = finish(&tx, id, &how, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn record_expirations(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<usize, StoreError> {
        let mut client = self.pool.get().await?;
        let members = members_with_expiry(&client, now, limit).await?;
        let mut written = 0;
        for m in members {
            let tx = client.transaction().await?;
            lock_member(&tx, m).await?;
            written += record_member_expirations(&tx, m, now).await?;
            tx.commit().await?;
        }
        Ok(written)
    }

    async fn redemptions(&self, member_id: i64) -> Result<Vec<Redemption>, StoreError> {
        let client = self.pool.get().await?;
        redemptions(&client, member_id).await
    }
}
