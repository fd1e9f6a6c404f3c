//! Campaigns, the grab and coupon use on PostgreSQL.
//!
//! A refusal the cache can give (not started; sold out, for a key holding no grant) is answered
//! from memory (`rules::CampaignCache::refusal_from_memory`). Otherwise the grab is one
//! transaction per request. The key is claimed first (`INSERT … ON CONFLICT DO NOTHING`; a
//! concurrent duplicate waits, then reads the first answer; the claim of a refusal is dropped,
//! only grants stay under their keys); the member's count is a
//! conditional upsert, so a member over the limit never touches the stock rows; stock is split
//! over [`SHARDS`] rows and taken with one conditional `UPDATE … WHERE remaining > 0` on a random
//! shard (the next ones only when it is empty), never read-then-write; `UNIQUE (campaign_id,
//! member_id, n)` on grants is the last defence against a double grant.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rand::Rng;
use unionpass_core::api::{ChangeKind, MutationOutcome, StockLeft};
use unionpass_core::campaign::{Campaign, GrabOutcome, GrabResponse, Reschedule};

use super::{campaign_row, from_json, json, log_change, PgStore};
use crate::store::rules::{
    answer_from_memory, coupon_of, coupon_use_refusal, grab_answer, read_usage_code, replay_grab,
    retrying, usage_code, void_at,
};
use crate::store::{Campaigns, GrabJob, StoreError, VoidedCoupon};

/// Rows a campaign's stock is split over.
pub const SHARDS: i64 = 16;

/// Take one unit of stock with single conditional updates, a random shard first.
async fn take_stock(
    tx: &deadpool_postgres::Transaction<'_>,
    campaign: i64,
) -> Result<bool, StoreError> {
    let start = rand::thread_rng().gen_range(0..SHARDS);
    for i in 0..SHARDS {
        let shard = (start + i) % SHARDS;
        let n = tx
            .execute(
                &tx.prepare_cached(
                    "UPDATE campaign_stock SET remaining = remaining - 1
                 WHERE campaign_id = $1 AND shard = $2 AND remaining > 0",
                )
                .await?,
                &[&campaign, &shard],
            )
            .await?;
        if n == 1 {
            return Ok(true);
        }
    }
    Ok(false)
}

impl PgStore {
    /// The campaign from this instance's cache, or read (and cached) when it is not fresh.
    async fn cached_campaign(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        job: &GrabJob,
    ) -> Result<Campaign, StoreError> {
        let cached = self
            .campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fresh(job.campaign_id, job.now)
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let c = campaign_row(tx, job.campaign_id)
            .await?
            .ok_or(StoreError::NoCampaign(job.campaign_id))?;
        self.campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(c.clone(), job.now);
        Ok(c)
    }

    async fn grab_once(&self, job: &GrabJob) -> Result<GrabResponse, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Claim the key; a concurrent request with the same key waits here for the first to end.
        let claimed = tx
            .execute(
                &tx.prepare_cached("INSERT INTO grab_keys(key, member_id, campaign_id, response, at) VALUES ($1, $2, $3, NULL, $4)
                 ON CONFLICT (key) DO NOTHING").await?,
                &[&job.key, &job.member_id, &job.campaign_id, &job.now],
            )
            .await?;
        if claimed == 0 {
            let row = tx
                .query_one(
                    &tx.prepare_cached(
                        "SELECT member_id, campaign_id, response FROM grab_keys WHERE key = $1",
                    )
                    .await?,
                    &[&job.key],
                )
                .await?;
            return replay_grab(job, row.get(0), row.get(1), || {
                let response: Option<serde_json::Value> = row.get(2);
                from_json(response.ok_or_else(|| StoreError::Corrupt("unanswered key".into()))?)
            });
        }
        let c = self.cached_campaign(&tx, job).await?;
        let decided = self
            .campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decide_without_stock(&c, job.union_id, job.now);
        let outcome = match decided {
            Some(o) => o,
            None => self.take_one(&tx, &c, job).await?,
        };
        let response = grab_answer(job, outcome);
        if matches!(response.outcome, GrabOutcome::Granted { .. }) {
            tx.execute(
                &tx.prepare_cached("UPDATE grab_keys SET response = $2 WHERE key = $1")
                    .await?,
                &[&job.key, &json(&response)],
            )
            .await?;
        } else {
            // only a grant is kept under its key (a refusal asked again is judged again)
            tx.execute(
                &tx.prepare_cached("DELETE FROM grab_keys WHERE key = $1")
                    .await?,
                &[&job.key],
            )
            .await?;
        }
        tx.commit().await?;
        if matches!(response.outcome, GrabOutcome::Granted { .. }) {
            crate::store::exit_after_grant_commit();
        }
        Ok(response)
    }

    async fn take_one(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        c: &Campaign,
        job: &GrabJob,
    ) -> Result<GrabOutcome, StoreError> {
        // the member's count first: a member over the limit never touches the stock rows
        let n = tx
            .query_opt(
                &tx.prepare_cached(
                    "INSERT INTO member_grants(campaign_id, member_id, n) VALUES ($1, $2, 1)
                 ON CONFLICT (campaign_id, member_id) DO UPDATE SET n = member_grants.n + 1
                 WHERE member_grants.n < $3 RETURNING n",
                )
                .await?,
                &[&c.id, &job.member_id, &c.per_member_limit],
            )
            .await?
            .map(|r| r.get::<_, i64>(0));
        let Some(n) = n else {
            return Ok(GrabOutcome::LimitReached);
        };
        if let Some(hash) = &job.session {
            if !super::accounts::session_live(tx, hash, job.member_id, job.now).await? {
                return Err(StoreError::SessionEnded);
            }
        }
        if !take_stock(tx, c.id).await? {
            // every key holding a grant, complete: a grant commits with the stock it took, and
            // each shard was seen empty after any transaction holding it ended; read once (the
            // requests racing to the same empty stock find it known)
            let known = self
                .campaigns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .knows_granted_keys(c.id);
            if !known {
                let keys: std::collections::HashSet<uuid::Uuid> = tx
                    .query(
                        &tx.prepare_cached("SELECT grab_key FROM grants WHERE campaign_id = $1")
                            .await?,
                        &[&c.id],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                self.campaigns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .mark_sold_out(c.id, Some(keys));
            }
            // undo the count increment: sold out
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE member_grants SET n = n - 1 WHERE campaign_id = $1 AND member_id = $2",
                )
                .await?,
                &[&c.id, &job.member_id],
            )
            .await?;
            return Ok(GrabOutcome::SoldOut);
        }
        let code = usage_code(c.id);
        let id: i64 = tx
            .query_one(
                &tx.prepare_cached(
                    "INSERT INTO grants(campaign_id, member_id, n, code, granted_at, grab_key)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .await?,
                &[&c.id, &job.member_id, &n, &code, &job.now, &job.key],
            )
            .await?
            .get(0);
        let coupon = coupon_of(c, id, code, job.now);
        log_change(
            tx,
            Some(job.member_id),
            job.now,
            &ChangeKind::CouponGranted(coupon.clone()),
        )
        .await?;
        Ok(GrabOutcome::Granted { coupon })
    }
}

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
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT c.id, coalesce(sum(s.remaining), 0)::BIGINT FROM campaigns c
                 LEFT JOIN campaign_stock s ON s.campaign_id = c.id
                 WHERE c.end_at > $1 GROUP BY c.id ORDER BY c.id",
                    )
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

    async fn grab(&self, job: GrabJob) -> Result<GrabResponse, StoreError> {
        // most of a burst is refused (not started, sold out): from memory, no transaction
        if let Some(answer) = answer_from_memory(&self.campaigns, &job) {
            return Ok(answer);
        }
        retrying(|| self.grab_once(&job)).await
    }
}
