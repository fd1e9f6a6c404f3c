//! Campaigns, the grab and coupon use on SQLite. A grab is decided in the writer's group
//! commit ([`super::writer`]): [`decide`] runs inside its group's transaction.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use unionpass_core::api::{ChangeKind, MutationOutcome, StockLeft};
use unionpass_core::campaign::{Campaign, GrabOutcome, GrabResponse, Reschedule};

use super::{json, load_campaign, log_change, parse_ts, ts, SqliteStore};
use crate::store::rules::{
    answer_from_memory, coupon_of, coupon_use_refusal, grab_answer, read_usage_code, replay_grab,
    usage_code, void_at, CampaignCache,
};
use crate::store::{Campaigns, GrabJob, StoreError, VoidedCoupon};

/// One grab, inside the writer group's transaction (`writer::decide_group`).
pub(super) fn decide(
    conn: &Connection,
    cache: &Mutex<CampaignCache>,
    job: &GrabJob,
) -> Result<GrabResponse, StoreError> {
    // the cache is locked for each look, never across a statement: grabs answered from memory
    // (`SqliteStore::grab`) wait for no group
    let cache = || cache.lock().unwrap_or_else(|p| p.into_inner());
    let key = job.key.to_string();
    let earlier: Option<(i64, i64, String)> = conn
        .prepare_cached("SELECT member_id, campaign_id, response FROM grab_keys WHERE key = ?1")?
        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((owner, campaign_id, response)) = earlier {
        return replay_grab(job, owner, campaign_id, || {
            Ok(serde_json::from_str(&response)?)
        });
    }
    let cached = cache().fresh(job.campaign_id, job.now).cloned();
    let c = match cached {
        Some(c) => c,
        None => {
            let c = load_campaign(conn, job.campaign_id)?
                .ok_or(StoreError::NoCampaign(job.campaign_id))?;
            cache().put(c.clone(), job.now);
            c
        }
    };
    let decided = cache().decide_without_stock(&c, job.union_id, job.now);
    let outcome = match decided {
        Some(outcome) => outcome,
        None => {
            let outcome = take_one(conn, &c, job)?;
            if outcome == GrabOutcome::SoldOut {
                // every key holding a grant, complete: this is the only writer and the stock
                // is gone (if the group fails to commit, the writer forgets the cache)
                let keys = conn
                    .prepare_cached(
                        "SELECT grab_key FROM grants WHERE campaign_id = ?1 AND grab_key IS NOT NULL",
                    )?
                    .query_map([c.id], |r| r.get::<_, String>(0))?
                    .map(|k| crate::store::sqlite::uuid_col(&k?))
                    .collect::<Result<std::collections::HashSet<_>, StoreError>>()?;
                cache().mark_sold_out(c.id, Some(keys));
            }
            outcome
        }
    };
    let response = grab_answer(job, outcome);
    // only a grant is kept under its key (a refusal asked again is judged again)
    if matches!(response.outcome, GrabOutcome::Granted { .. }) {
        conn.prepare_cached(
            "INSERT INTO grab_keys(key, member_id, campaign_id, response, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![key, job.member_id, c.id, json(&response), ts(job.now)])?;
    }
    Ok(response)
}

fn take_one(conn: &Connection, c: &Campaign, job: &GrabJob) -> Result<GrabOutcome, StoreError> {
    let held: i64 = conn
        .prepare_cached("SELECT count(*) FROM grants WHERE campaign_id = ?1 AND member_id = ?2")?
        .query_row(params![c.id, job.member_id], |r| r.get(0))?;
    if crate::store::rules::limit_reached(c, held) {
        return Ok(GrabOutcome::LimitReached);
    }
    if let Some(hash) = &job.session {
        if !super::accounts::session_live(conn, hash, job.member_id, job.now)? {
            return Err(StoreError::SessionEnded);
        }
    }
    let took = conn
        .prepare_cached(
            "UPDATE campaigns SET granted = granted + 1 WHERE id = ?1 AND granted < stock",
        )?
        .execute([c.id])?;
    if took == 0 {
        return Ok(GrabOutcome::SoldOut);
    }
    let code = usage_code(c.id);
    conn.prepare_cached(
        "INSERT INTO grants(campaign_id, member_id, n, code, granted_at, grab_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![c.id, job.member_id, held + 1, code, ts(job.now), job.key.to_string()])?;
    let id = conn.last_insert_rowid();
    let coupon = coupon_of(c, id, code, job.now);
    log_change(
        conn,
        Some(job.member_id),
        job.now,
        &ChangeKind::CouponGranted(coupon.clone()),
    )?;
    Ok(GrabOutcome::Granted { coupon })
}

/// The `use_coupon` mutation, inside the mutation's transaction. A use is accepted when it was
/// made (by the device's clock, never later than the server's) inside the coupon's validity.
pub(super) fn use_coupon(
    tx: &Connection,
    member_id: i64,
    coupon_id: i64,
    used_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let row: Option<(i64, Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT campaign_id, used_at, voided_at FROM grants WHERE id = ?1 AND member_id = ?2",
            params![coupon_id, member_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (validity, voided_at) = match &row {
        Some((campaign_id, _, voided)) => (
            load_campaign(tx, *campaign_id)?.map(|c| (c.coupon_valid_from, c.coupon_valid_until)),
            voided.as_deref().map(parse_ts).transpose()?,
        ),
        None => (None, None),
    };
    let at = used_at.min(now);
    if let Some(refused) = coupon_use_refusal(validity, voided_at, at) {
        return Ok(refused);
    }
    if let Some((_, None, _)) = row {
        tx.execute(
            "UPDATE grants SET used_at = ?2 WHERE id = ?1",
            params![coupon_id, ts(at)],
        )?;
        log_change(
            tx,
            Some(member_id),
            now,
            &ChangeKind::CouponUsed {
                coupon_id,
                used_at: at,
            },
        )?;
    }
    Ok(MutationOutcome::Applied)
}

#[async_trait]
impl Campaigns for SqliteStore {
    async fn create_campaign(
        &self,
        c: Campaign,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError> {
        self.in_tx(move |tx| {
            tx.execute(
                "INSERT INTO campaigns(body, stock, per_member_limit, release_at, end_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    json(&c),
                    c.stock,
                    c.per_member_limit,
                    ts(c.release_at),
                    ts(c.end_at),
                    ts(now)
                ],
            )?;
            let created = Campaign {
                id: tx.last_insert_rowid(),
                ..c
            };
            log_change(tx, None, now, &ChangeKind::Campaign(created.clone()))?;
            Ok(created)
        })
        .await
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        self.with_read(|conn| {
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM campaigns ORDER BY release_at, id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.into_iter()
                .filter_map(|id| load_campaign(conn, id).transpose())
                .collect()
        })
        .await
    }

    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError> {
        self.with_read(move |conn| load_campaign(conn, id)).await
    }

    async fn reschedule_campaign(
        &self,
        id: i64,
        change: Reschedule,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError> {
        self.in_tx(move |tx| {
            let old = load_campaign(tx, id)?.ok_or(StoreError::NoCampaign(id))?;
            let new = unionpass_core::campaign::reschedule(&old, change, now)?;
            // a cancelled campaign ends now: it leaves the stock-left list
            let end_at = new.cancelled_at.unwrap_or(new.end_at);
            tx.execute(
                "UPDATE campaigns SET body = ?2, release_at = ?3, end_at = ?4 WHERE id = ?1",
                params![id, json(&new), ts(new.release_at), ts(end_at)],
            )?;
            log_change(tx, None, now, &ChangeKind::Campaign(new.clone()))?;
            Ok(new)
        })
        .await
    }

    async fn void_coupon(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<VoidedCoupon, StoreError> {
        let asked = code.to_string();
        let read = read_usage_code(code);
        self.in_tx(move |tx| {
            let row: Option<(i64, i64, Option<String>, Option<String>)> = match &read {
                None => None,
                Some((code, d)) => tx
                    .query_row(
                        "SELECT id, member_id, used_at, voided_at FROM grants
                         WHERE campaign_id IN (SELECT id FROM campaigns WHERE id % 10000 = ?1)
                           AND code = ?2",
                        params![d, code],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?,
            };
            let (coupon_id, member_id) = row.as_ref().map_or((0, 0), |r| (r.0, r.1));
            let state = match &row {
                Some((_, _, used, voided)) => Some((
                    used.as_deref().map(parse_ts).transpose()?,
                    voided.as_deref().map(parse_ts).transpose()?,
                )),
                None => None,
            };
            let (at, new) = void_at(&asked, state, now)?;
            if new {
                tx.execute(
                    "UPDATE grants SET voided_at = ?2 WHERE id = ?1",
                    params![coupon_id, ts(at)],
                )?;
                log_change(
                    tx,
                    Some(member_id),
                    now,
                    &ChangeKind::CouponVoided { coupon_id, at },
                )?;
            }
            Ok(VoidedCoupon {
                coupon_id,
                member_id,
                voided_at: at,
            })
        })
        .await
    }

    async fn stock_left(&self, now: DateTime<Utc>) -> Result<Vec<StockLeft>, StoreError> {
        self.with_read(move |conn| stock_left_on(conn, now)).await
    }

    async fn grab(&self, job: GrabJob) -> Result<GrabResponse, StoreError> {
        // most of a burst is refused (not started, sold out): from memory, without the writer
        if let Some(answer) = answer_from_memory(&self.campaigns, &job) {
            return Ok(answer);
        }
        self.writer.grab(job).await
    }
}

/// Stock left of the campaigns that have not ended at `now`, read on `conn`.
pub(super) fn stock_left_on(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<Vec<StockLeft>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, stock - granted FROM campaigns WHERE end_at > ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([ts(now)], |r| {
        Ok(StockLeft {
            campaign_id: r.get(0)?,
            left: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
