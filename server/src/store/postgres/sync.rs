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
use deadpool_postgres::GenericClient;
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
        // one connection for the page, and its reads sent together (tokio-postgres pipelines
        // the statements of one client): one round trip instead of one per read
        let mut client = self.pool.get().await?;
        number_waiting(&mut client).await?;
        let c = &client;
        let (changes, profile, device, devices) = tokio::try_join!(
            changes_on(c, member_id, cursor, limit),
            super::accounts::profile_on(c, member_id),
            super::accounts::device_passport_on(c, device_id),
            super::accounts::devices_on(c, member_id),
        )?;
        let (stock_left, points_offer) = if crate::store::rules::last_page(changes.len(), limit) {
            let (stock, offer) = tokio::try_join!(
                super::grab::stock_left_on(c, now),
                super::points::offer(c),
            )?;
            (stock, Some(offer))
        } else {
            (Vec::new(), None)
        };
        Ok(crate::store::SyncReads {
            profile,
            device,
            devices,
            stock_left,
            points_offer,
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
        number_waiting(&mut client).await?;
        changes_on(&client, member_id, cursor, limit).await
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


/// Number what has committed so far (unless another sequencer is at it right now), when
/// anything waits: one probe of the unnumbered rows' index, and the sequencer's write
/// transaction only then (on every sync it was the cost of a burst of syncs).
async fn number_waiting(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
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
        super::sequence_on(client).await?;
    }
    Ok(())
}

/// The member's changes and everyone's after `cursor`, oldest first, at most `limit`: two
/// index ranges merged (the member's rows by `change_log_member`, everyone's by
/// `change_log_global`), so a page reads about `limit` rows however long the log is and
/// whatever the planner knows of it (an `OR` of the two walked the log in `seq` order).
async fn changes_on(
    c: &impl GenericClient,
    member_id: i64,
    cursor: i64,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let rows = c
        .query(
            &c.prepare_cached(
                "SELECT seq, at, kind, data FROM (
                   (SELECT seq, at, kind, data FROM change_log
                     WHERE member_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)
                   UNION ALL
                   (SELECT seq, at, kind, data FROM change_log
                     WHERE member_id IS NULL AND seq > $2 ORDER BY seq LIMIT $3)
                 ) page ORDER BY seq LIMIT $3",
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
