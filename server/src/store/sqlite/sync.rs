//! Sync on SQLite: change-log pages, and mutations applied exactly once in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use unionpass_core::api::{Change, Mutation, MutationOp, MutationOutcome, MutationResult};
use uuid::Uuid;

use super::{json, parse_ts, ts, SqliteStore};
use crate::store::rules::{fingerprint, replay_mutation};
use crate::store::{Changes, Proven, ProvenCheckin, StoreError};

/// One mutation's effect, inside its transaction; each domain does its own part.
fn apply_op(
    tx: &Connection,
    member_id: i64,
    id: Uuid,
    op: &MutationOp,
    proven: &Proven,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    match op {
        MutationOp::Redeem(req) => super::points::redeem(tx, member_id, id, req, now),
        MutationOp::Feedback(f) => super::activities::give_feedback(tx, member_id, f, now),
        MutationOp::Vote(v) => super::activities::vote(tx, member_id, v, now),
        MutationOp::SetLanguage { language } => {
            super::accounts::set_language(tx, member_id, *language, now)
        }
        MutationOp::RevokeDevice { device_id } => {
            super::accounts::revoke_device(tx, member_id, *device_id, now)
        }
        MutationOp::UseCoupon { coupon_id, used_at } => {
            super::grab::use_coupon(tx, member_id, *coupon_id, *used_at, now)
        }
        MutationOp::CheckIn(c) => {
            let proof = proven
                .checkin
                .clone()
                .unwrap_or_else(ProvenCheckin::missing);
            super::events::check_in(tx, member_id, c, &proof, now)
        }
    }
}

#[async_trait]
impl Changes for SqliteStore {
    async fn sync_reads(
        &self,
        member_id: i64,
        device_id: i64,
        cursor: i64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<crate::store::SyncReads, StoreError> {
        self.read_now(move |c| {
            let changes = changes_on(c, member_id, cursor, limit)?;
            let last = crate::store::rules::last_page(changes.len(), limit);
            Ok(crate::store::SyncReads {
                profile: super::accounts::profile_on(c, member_id)?,
                device: super::accounts::device_passport_on(c, device_id)?,
                devices: super::accounts::devices_on(c, member_id)?,
                stock_left: if last {
                    super::grab::stock_left_on(c, now)?
                } else {
                    Vec::new()
                },
                points_offer: if last {
                    Some(super::points::offer(c)?)
                } else {
                    None
                },
                changes,
            })
        })
        .await
    }

    async fn changes_since(
        &self,
        member_id: i64,
        cursor: i64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let page = self
            .with_read(move |c| changes_on(c, member_id, cursor, limit))
            .await?;
        Ok(page.iter().map(crate::store::PageChange::read).collect())
    }

    async fn apply_mutation(
        &self,
        member_id: i64,
        mutation: &Mutation,
        proven: &Proven,
        now: DateTime<Utc>,
    ) -> Result<MutationResult, StoreError> {
        let mutation = mutation.clone();
        let proven = proven.clone();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = mutation.id.to_string();
            let this = fingerprint(&mutation.op);
            let earlier: Option<(i64, String, Option<String>)> = tx
                .query_row(
                    "SELECT member_id, result, fingerprint FROM applied_mutations WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((owner, result, stored)) = earlier {
                return replay_mutation(
                    mutation.id,
                    member_id,
                    owner,
                    stored.as_deref(),
                    &this,
                    || Ok(serde_json::from_str(&result)?),
                );
            }
            let outcome = apply_op(&tx, member_id, mutation.id, &mutation.op, &proven, now)?;
            tx.execute(
                "INSERT INTO applied_mutations(id, member_id, applied_at, result, fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, member_id, ts(now), json(&outcome), this],
            )?;
            tx.commit()?;
            Ok(MutationResult {
                id: mutation.id,
                outcome,
                replayed: false,
            })
        })
        .await
    }

    async fn forget_idempotency(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.in_tx(move |tx| {
            let a = tx.execute(
                "DELETE FROM applied_mutations WHERE applied_at < ?1",
                [ts(before)],
            )?;
            let b = tx.execute("DELETE FROM grab_keys WHERE at < ?1", [ts(before)])?;
            Ok(a + b)
        })
        .await
    }
}

/// Changes visible to the member after `cursor`, at most `limit`, read on `c`.
pub(super) fn changes_on(
    c: &Connection,
    member_id: i64,
    cursor: i64,
    limit: usize,
) -> Result<Vec<crate::store::PageChange>, StoreError> {
    // the limit is written into the statement, not bound: SQLite (with STAT4, as built here)
    // plans by a bound LIMIT's value and so prepares the statement again at every run, which
    // cost three times the read itself (a handful of page sizes are ever asked for)
    let mut stmt = c.prepare_cached(&format!(
        "SELECT seq, at, kind, data FROM change_log
             WHERE seq > ?2 AND (member_id = ?1 OR member_id IS NULL)
             ORDER BY seq LIMIT {limit}"
    ))?;
    let mut rows = stmt.query(params![member_id, cursor])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(crate::store::PageChange::stored(
            r.get(0)?,
            parse_ts(&r.get::<_, String>(1)?)?,
            r.get(2)?,
            r.get(3)?,
        ));
    }
    Ok(out)
}
