//! Campaigns, the grab and coupon use on PostgreSQL.
//!
//! A refusal the cache can give (not started; sold out, for a key holding no grant) is answered
//! from memory (`rules::CampaignCache::refusal_from_memory`). Otherwise the grab joins this
//! instance's next group, judged in one transaction from the stock leased to the instance
//! (`grants`). The stock is split over [`SHARDS`] rows, taken a lease at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use unionpass_core::api::{ChangeKind, MutationOutcome, StockLeft};
use unionpass_core::campaign::{Campaign, GrabResponse, Reschedule};

use super::{campaign_row, json, log_change, stock_left_of_c, PgStore};
use crate::store::rules::{answer_from_memory, coupon_use_refusal, read_usage_code, void_at};
use crate::store::{Campaigns, GrabJob, StoreError, VoidedCoupon};

/// Rows a campaign's stock is split over.
pub const SHARDS: i64 = 16;

/// The `use_coupon` mutation, inside the mutation's transaction. A use is accepted when it was
/// made (by the device's clock, never later than the server's) inside the coupon's validity.
pub(super) async fn use_coupon(
    tx: &impl GenericClient,
    member_id: i64,
    coupon_id: i64,
    used_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                // locked: a withdrawal at the same moment waits, then this use sees it
                "SELECT campaign_id, used_at, voided_at FROM grants WHERE id = $1 AND member_id = $2
                 FOR UPDATE",
            )
            .await?,
            &[&coupon_id, &member_id],
        )
        .await?;
    let mut validity = None;
    let mut already: Option<DateTime<Utc>> = None;
    let mut voided_at: Option<DateTime<Utc>> = None;
    if let Some(r) = &row {
        already = r.get(1);
        voided_at = r.get(2);
        validity = campaign_row(tx, r.get(0))
            .await?
            .map(|c| (c.coupon_valid_from, c.coupon_valid_until));
    }
    let at = used_at.min(now);
    if let Some(refused) = coupon_use_refusal(validity, voided_at, at) {
        return Ok(refused);
    }
    if already.is_none() {
        tx.execute(
            &tx.prepare_cached("UPDATE grants SET used_at = $2 WHERE id = $1")
                .await?,
            &[&coupon_id, &at],
        )
        .await?;
        log_change(
            tx,
            Some(member_id),
            now,
            &ChangeKind::CouponUsed {
                coupon_id,
                used_at: at,
            },
        )
        .await?;
    }
    Ok(MutationOutcome::Applied)
}

#[async_trait]
impl Campaigns for PgStore {
    async fn create_campaign(
        &self,
        c: Campaign,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let id: i64 = tx
            .query_one(
                &tx.prepare_cached("INSERT INTO campaigns(body, stock, per_member_limit, release_at, end_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id").await?,
                &[&json(&c), &c.stock, &c.per_member_limit, &c.release_at, &c.end_at, &now],
            )
            .await?
            .get(0);
        // split the stock as evenly as possible over the shards
        for shard in 0..SHARDS {
            let part = c.stock / SHARDS + i64::from(shard < c.stock % SHARDS);
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO campaign_stock(campaign_id, shard, remaining) VALUES ($1, $2, $3)",
                )
                .await?,
                &[&id, &shard, &part],
            )
            .await?;
        }
        let created = Campaign { id, ..c };
        log_change(&tx, None, now, &ChangeKind::Campaign(created.clone())).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let client = self.pool.get().await?;
        let ids = client
            .query(
                &client
                    .prepare_cached("SELECT id FROM campaigns ORDER BY release_at, id")
                    .await?,
                &[],
            )
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for r in ids {
            if let Some(c) = campaign_row(&client, r.get(0)).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError> {
        let client = self.pool.get().await?;
        campaign_row(&client, id).await
    }

    async fn reschedule_campaign(
        &self,
        id: i64,
        change: Reschedule,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            &tx.prepare_cached("SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE")
                .await?,
            &[&id],
        )
        .await?;
        let old = campaign_row(&tx, id)
            .await?
            .ok_or(StoreError::NoCampaign(id))?;
        let new = unionpass_core::campaign::reschedule(&old, change, now)?;
        // a cancelled campaign ends now: it leaves the stock-left list
        let end_at = new.cancelled_at.unwrap_or(new.end_at);
        tx.execute(
            &tx.prepare_cached(
                "UPDATE campaigns SET body = $2, release_at = $3, end_at = $4 WHERE id = $1",
            )
            .await?,
            &[&id, &json(&new), &new.release_at, &end_at],
        )
        .await?;
        log_change(&tx, None, now, &ChangeKind::Campaign(new.clone())).await?;
        tx.commit().await?;
        Ok(new)
    }

    async fn void_coupon(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<VoidedCoupon, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = match read_usage_code(code) {
            None => None,
            Some((code, d)) => {
                tx.query_opt(
                    &tx.prepare_cached(
                        "SELECT id, member_id, used_at, voided_at FROM grants
                         WHERE campaign_id IN (SELECT id FROM campaigns WHERE id % 10000 = $1)
                           AND code = $2
                         FOR UPDATE",
                    )
                    .await?,
                    &[&d, &code],
                )
                .await?
            }
        };
        let (coupon_id, member_id): (i64, i64) =
            row.as_ref().map_or((0, 0), |r| (r.get(0), r.get(1)));
        let state = row.as_ref().map(|r| (r.get(2), r.get(3)));
        let (at, new) = void_at(code, state, now)?;
        if new {
            tx.execute(
                &tx.prepare_cached("UPDATE grants SET voided_at = $2 WHERE id = $1")
                    .await?,
                &[&coupon_id, &at],
            )
            .await?;
            log_change(
                &tx,
                Some(member_id),
                now,
                &ChangeKind::CouponVoided { coupon_id, at },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(VoidedCoupon {
            coupon_id,
            member_id,
            voided_at: at,
        })
    }

    async fn stock_left(&self, now: DateTime<Utc>) -> Result<Vec<StockLeft>, StoreError> {
        stock_left_on(&self.pool.get().await?, now).await
    }

    async fn grab(&self, job: GrabJob) -> Result<GrabResponse, StoreError> {
        // most of a burst is refused (not started, sold out): from memory, no transaction
        if let Some(answer) = answer_from_memory(&self.campaigns, &job) {
            return Ok(answer);
        }
        self.grants.ask(job).await
    }

    async fn return_stock(&self) -> Result<(), StoreError> {
        super::grants::return_stock(&self.pool, self.holder).await
    }
}

/// The stock left of the campaigns that have not ended at `now`, on a held connection.
pub(super) async fn stock_left_on(
    c: &impl GenericClient,
    now: DateTime<Utc>,
) -> Result<Vec<StockLeft>, StoreError> {
    let rows = c
        .query(
            &c.prepare_cached(concat!(
                "SELECT c.id, ",
                stock_left_of_c!(),
                " FROM campaigns c WHERE c.end_at > $1 ORDER BY c.id"
            ))
            .await?,
            &[&now],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StockLeft {
            campaign_id: r.get(0),
            left: r.get(1),
        })
        .collect())
}
