//! Sync on PostgreSQL: numbered change-log pages, and mutations applied exactly once in one
//! transaction (the id is claimed first, so a concurrent duplicate waits for the first and then
//! reads its answer).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use unionpass_core::api::{
    Change, ChangeKind, Mutation, MutationOp, MutationOutcome, MutationResult,
};

use super::{from_json, json, PgStore};
use crate::store::rules::{fingerprint, replay_mutation, retrying};
use crate::store::{Changes, Proven, StoreError};
use unionpass_core::ErrorCode;

impl PgStore {
    async fn apply_once(
        &self,
        member_id: i64,
        m: &Mutation,
        proven: &Proven,
        now: DateTime<Utc>,
    ) -> Result<MutationResult, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let this = fingerprint(&m.op);
        let claimed = tx
            .execute(
                "INSERT INTO applied_mutations(id, member_id, applied_at, result, fingerprint)
                 VALUES ($1, $2, $3, 'null', $4) ON CONFLICT (id) DO NOTHING",
                &[&m.id, &member_id, &now, &this],
            )
            .await?;
        if claimed == 0 {
            let row = tx
                .query_one(
                    "SELECT member_id, result, fingerprint FROM applied_mutations WHERE id = $1",
                    &[&m.id],
                )
                .await?;
            let stored: Option<String> = row.get(2);
            return replay_mutation(
                m.id,
                member_id,
                row.get(0),
                stored.as_deref(),
                &this,
                || from_json(row.get(1)),
            );
        }
        // each domain does its own part, inside this transaction
        let outcome = match &m.op {
            MutationOp::Redeem(req) => {
                super::points::redeem(&tx, member_id, m.id, req, now).await?
            }
            MutationOp::Feedback(f) => {
                super::activities::give_feedback(&tx, member_id, f, now).await?
            }
            MutationOp::Vote(v) => super::activities::vote(&tx, member_id, v, now).await?,
            MutationOp::SetLanguage { language } => {
                super::accounts::set_language(&tx, member_id, *language, now).await?
            }
            MutationOp::RevokeDevice { device_id } => {
                super::accounts::revoke_device(&tx, member_id, *device_id, now).await?
            }
            MutationOp::UseCoupon { coupon_id, used_at } => {
                super::grab::use_coupon(&tx, member_id, *coupon_id, *used_at, now).await?
            }
            MutationOp::CheckIn(c) => {
                let claims = proven
                    .checkin
                    .clone()
                    .unwrap_or(Err(ErrorCode::CheckinProofMissing));
                super::events::check_in(&tx, member_id, c, &claims, now).await?
            }
        };
        tx.execute(
            "UPDATE applied_mutations SET result = $2 WHERE id = $1",
            &[&m.id, &json::<MutationOutcome>(&outcome)],
        )
        .await?;
        tx.commit().await?;
        Ok(MutationResult {
            id: m.id,
            outcome,
            replayed: false,
        })
    }
}

#[async_trait]
impl Changes for PgStore {
    async fn sync_reads(
        &self,
        member_id: i64,
        device_id: i64,
        cursor: i64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<crate::store::SyncReads, StoreError> {
        use crate::store::{Accounts, Campaigns, Points};
        let changes = self.changes_since(member_id, cursor, limit).await?;
        let last = crate::store::rules::last_page(changes.len(), limit);
        Ok(crate::store::SyncReads {
            profile: self.profile(member_id).await?,
            device: self.device_passport(device_id).await?,
            devices: self.devices(member_id).await?,
            stock_left: if last {
                self.stock_left(now).await?
            } else {
                Vec::new()
            },
            points_offer: if last {
                Some(self.points_offer().await?)
            } else {
                None
            },
            changes,
        })
    }

    async fn changes_since(
        &self,
        member_id: i64,
        cursor: i64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let mut client = self.pool.get().await?;
        // number what has committed so far (unless another sequencer is at it right now), when
        // anything waits: one probe of the unnumbered rows' index, and the sequencer's write
        // transaction only then (on every sync it was the cost of a burst of syncs)
        let waiting: bool = client
            .query_one(
                &client
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM change_log WHERE seq IS NULL)")
                    .await?,
                &[],
            )
            .await?
            .get(0);
        if waiting {
            super::sequence_on(&mut client).await?;
        }
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT seq, at, kind, data FROM change_log
                         WHERE seq > $2 AND (member_id = $1 OR member_id IS NULL)
                         ORDER BY seq LIMIT $3",
                    )
                    .await?,
                &[&member_id, &cursor, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let kind: String = r.get(2);
                Change {
                    seq: r.get(0),
                    at: r.get(1),
                    kind: ChangeKind::from_parts(&kind, r.get(3)),
                }
            })
            .collect())
    }

    async fn apply_mutation(
        &self,
        member_id: i64,
        m: &Mutation,
        proven: &Proven,
        now: DateTime<Utc>,
    ) -> Result<MutationResult, StoreError> {
        // a transaction that lost a deadlock was rolled back whole: running it again is safe
        retrying(|| self.apply_once(member_id, m, proven, now)).await
    }

    async fn forget_idempotency(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let client = self.pool.get().await?;
        let a = client
            .execute(
                "DELETE FROM applied_mutations WHERE applied_at < $1",
                &[&before],
            )
            .await?;
        let b = client
            .execute("DELETE FROM grab_keys WHERE at < $1", &[&before])
            .await?;
        Ok((a + b) as usize)
    }
}
