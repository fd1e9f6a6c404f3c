//! The points ledger and redemptions on PostgreSQL. A member's ledger writes lock the member's
//! row first, so concurrent instances fold and append one member's entries one at a time.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;
use unionpass_core::api::MutationOutcome;
use unionpass_core::points::{Entry, EntryKind, Ledger};
use unionpass_core::redeem::{
    self, PointsOffer, RedeemRequest, Redemption, RedemptionStatus, Target,
};
use unionpass_core::time::Zone;
use unionpass_core::ErrorCode;
use uuid::Uuid;

use super::postgres::{from_json, json, pg};
use super::{finished, redeem_refusal, Claimed, Fulfilment, StoreError};

pub(crate) const MIGRATION: &str = "
    CREATE TABLE points_entries (
        seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        member_id BIGINT NOT NULL REFERENCES members(id),
        at        TIMESTAMPTZ NOT NULL,
        body      JSONB NOT NULL
    );
    CREATE INDEX points_entries_member ON points_entries(member_id, seq);
    CREATE TABLE redemptions (
        id            UUID PRIMARY KEY,
        member_id     BIGINT NOT NULL REFERENCES members(id),
        kind          TEXT NOT NULL,
        amount_cents  BIGINT NOT NULL,
        status        TEXT NOT NULL,
        body          JSONB NOT NULL,
        created_at    TIMESTAMPTZ NOT NULL,
        claimed_until TIMESTAMPTZ
    );
    CREATE INDEX redemptions_member ON redemptions(member_id, kind, created_at);
    CREATE INDEX redemptions_status ON redemptions(status, created_at);
    CREATE TABLE catalog (
        id       BIGINT PRIMARY KEY,
        title_zh TEXT NOT NULL,
        title_en TEXT NOT NULL,
        points   BIGINT NOT NULL CHECK (points > 0),
        stock    BIGINT NOT NULL CHECK (stock >= 0)
    );
    CREATE TABLE points_offer (
        id   INT PRIMARY KEY CHECK (id = 1),
        body JSONB NOT NULL
    );
    CREATE TABLE reauth_grants (
        redemption_id UUID PRIMARY KEY,
        member_id     BIGINT NOT NULL,
        until         TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE points_expiry (
        batch_seq  BIGINT PRIMARY KEY,
        member_id  BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        done       BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX points_expiry_due ON points_expiry(done, expires_at);
    ALTER TABLE events ADD COLUMN points BIGINT NOT NULL DEFAULT 0;
";

pub(crate) async fn offer(c: &impl GenericClient) -> Result<PointsOffer, StoreError> {
    let row = c
        .query_opt("SELECT body FROM points_offer WHERE id = 1", &[])
        .await
        .map_err(pg)?;
    let mut offer = match row {
        Some(r) => from_json(r.get(0))?,
        None => PointsOffer::none(),
    };
    offer.catalog = c
        .query(
            "SELECT id, title_zh, title_en, points, stock FROM catalog ORDER BY points, id",
            &[],
        )
        .await
        .map_err(pg)?
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

pub(crate) async fn set_offer(
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
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn put_item(
    c: &impl GenericClient,
    item: &redeem::CatalogItem,
) -> Result<(), StoreError> {
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
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn entries(
    c: &impl GenericClient,
    member_id: i64,
) -> Result<Vec<Entry>, StoreError> {
    c.query(
        "SELECT seq, body FROM points_entries WHERE member_id = $1 ORDER BY seq",
        &[&member_id],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(|r| {
        let e: Entry = from_json(r.get(1))?;
        Ok(Entry { seq: r.get(0), ..e })
    })
    .collect()
}

/// Take the member's row lock: ledger writes of one member happen one at a time.
pub(crate) async fn lock_member(tx: &Transaction<'_>, member_id: i64) -> Result<(), StoreError> {
    tx.execute(
        "SELECT 1 FROM members WHERE id = $1 FOR UPDATE",
        &[&member_id],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Append an entry to a member's ledger (the member's row is locked) and announce it.
pub(crate) async fn append(
    tx: &Transaction<'_>,
    member_id: i64,
    kind: EntryKind,
    now: DateTime<Utc>,
) -> Result<Entry, StoreError> {
    let seq: i64 = tx
        .query_one(
            "INSERT INTO points_entries(member_id, at, body) VALUES ($1, $2, '{}') RETURNING seq",
            &[&member_id, &now],
        )
        .await
        .map_err(pg)?
        .get(0);
    let entry = Entry { seq, at: now, kind };
    tx.execute(
        "UPDATE points_entries SET body = $2 WHERE seq = $1",
        &[&seq, &json(&entry)],
    )
    .await
    .map_err(pg)?;
    tx.execute(
        "INSERT INTO change_log(member_id, at, kind, data) VALUES ($1, $2, 'points_entry', $3)",
        &[&member_id, &now, &json(&entry)],
    )
    .await
    .map_err(pg)?;
    if let Some(expires_at) = entry.kind.new_batch_expiry() {
        tx.execute(
            "INSERT INTO points_expiry(batch_seq, member_id, expires_at) VALUES ($1, $2, $3)",
            &[&entry.seq, &member_id, &expires_at],
        )
        .await
        .map_err(pg)?;
    }
    Ok(entry)
}

/// Write down what has expired in a member's ledger at `now` (the member's row is locked).
pub(crate) async fn record_member_expirations(
    tx: &Transaction<'_>,
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
    .await
    .map_err(pg)?;
    Ok(due.len())
}

/// Members with expired batches not written down yet, up to `limit`.
pub(crate) async fn members_with_expiry(
    c: &impl GenericClient,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(c.query(
        "SELECT DISTINCT member_id FROM points_expiry WHERE NOT done AND expires_at <= $1
             LIMIT $2",
        &[&now, &limit],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

async fn save_redemption(
    tx: &Transaction<'_>,
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
    .await
    .map_err(pg)?;
    tx.execute(
        "INSERT INTO change_log(member_id, at, kind, data) VALUES ($1, $2, 'redemption', $3)",
        &[&member_id, &r.updated_at, &json(r)],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// The `redeem` mutation, inside the mutation's transaction.
pub(crate) async fn redeem(
    tx: &Transaction<'_>,
    member_id: i64,
    id: Uuid,
    req: &RedeemRequest,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    lock_member(tx, member_id).await?;
    let offer = offer(tx).await?;
    let ledger = Ledger::fold(&entries(tx, member_id).await?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let since = now - chrono::Duration::days(32);
    let used: Vec<(DateTime<Utc>, i64)> = tx
        .query(
            "SELECT created_at, amount_cents FROM redemptions
             WHERE member_id = $1 AND kind = $2 AND status IN ('held', 'settled')
               AND created_at >= $3",
            &[&member_id, &req.target.kind(), &since],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let reauthenticated = tx
        .query_opt(
            "SELECT 1 FROM reauth_grants WHERE redemption_id = $1 AND member_id = $2 AND until > $3",
            &[&id, &member_id, &now],
        )
        .await
        .map_err(pg)?
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
            .await
            .map_err(pg)?;
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

pub(crate) async fn grant_reauth(
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
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn claim(
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
        .await
        .map_err(pg)?
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

pub(crate) async fn finish(
    tx: &Transaction<'_>,
    id: Uuid,
    how: &Fulfilment,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(row) = tx
        .query_opt(
            "SELECT member_id FROM redemptions WHERE id = $1 AND status = 'held'",
            &[&id],
        )
        .await
        .map_err(pg)?
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
        .await
        .map_err(pg)?
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
        .await
        .map_err(pg)?;
    }
    save_redemption(tx, member_id, &done).await?;
    if matches!(how, Fulfilment::Refunded(_)) {
        // points refunded into a batch that has expired meanwhile expire at once, on record
        record_member_expirations(tx, member_id, now).await?;
    }
    Ok(true)
}

pub(crate) async fn redemptions(
    c: &impl GenericClient,
    member_id: i64,
) -> Result<Vec<Redemption>, StoreError> {
    c.query(
        "SELECT body FROM redemptions WHERE member_id = $1 ORDER BY created_at, id",
        &[&member_id],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(|r| from_json(r.get(0)))
    .collect()
}
