//! Sync on PostgreSQL: numbered change-log pages, and mutations applied exactly once in one
//! transaction (the id is claimed first, so a concurrent duplicate waits for the first and then
//! reads its answer).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use unionpass_core::api::{
    Change, Mutation, MutationOp, MutationOutcome, MutationResult, StockLeft,
};
use unionpass_core::redeem::{CatalogItem, PointsOffer};

use super::{from_json, json, stock_left_of_c, PgStore};
use crate::store::rules::{fingerprint, replay_mutation, retrying};
use crate::store::{Changes, Proven, ProvenCheckin, StoreError};
use deadpool_postgres::GenericClient;

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
                let proof = proven
                    .checkin
                    .clone()
                    .unwrap_or_else(ProvenCheckin::missing);
                super::events::check_in(&tx, member_id, c, &proof, now).await?
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
        // one connection for the page and three statements at most, sent together (the
        // statements of one tokio-postgres client are pipelined): under a burst of syncs each
        // statement's own cost in the database, not the rows, was the limit
        let mut client = self.pool.get().await?;
        let ((mut changes, waiting), (profile, device, devices)) = tokio::try_join!(
            changes_on(&client, member_id, cursor, limit),
            super::accounts::member_page_on(&client, member_id, device_id),
        )?;
        if waiting {
            changes = number_then_read(&mut client, member_id, cursor, limit).await?;
        }
        let (stock_left, points_offer) = if crate::store::rules::last_page(changes.len(), limit) {
            let (stock, offer) = last_page_on(&client, now).await?;
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
        let (mut page, waiting) = changes_on(&client, member_id, cursor, limit).await?;
        if waiting {
            page = number_then_read(&mut client, member_id, cursor, limit).await?;
        }
        Ok(page.iter().map(crate::store::PageChange::read).collect())
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

/// Rows were waiting to be numbered: number what has committed so far (unless another
/// sequencer is at it right now), on the connection held, and read the page again. Without
/// this a member would see their own change only after the background sequencer's next turn.
async fn number_then_read(
    client: &mut deadpool_postgres::Object,
    member_id: i64,
    cursor: i64,
    limit: usize,
) -> Result<Vec<crate::store::PageChange>, StoreError> {
    super::sequence_on(client).await?;
    Ok(changes_on(&*client, member_id, cursor, limit).await?.0)
}

/// The member's changes and everyone's after `cursor`, oldest first, at most `limit`, and
/// whether any committed row waits to be numbered (one probe of the unnumbered rows' index, in
/// the same statement). The page is two index ranges merged (the member's rows by
/// `change_log_member`, everyone's by `change_log_global`), so it reads about `limit` rows
/// however long the log is and whatever the planner knows of it (an `OR` of the two walked the
/// log in `seq` order).
async fn changes_on(
    c: &impl GenericClient,
    member_id: i64,
    cursor: i64,
    limit: usize,
) -> Result<(Vec<crate::store::PageChange>, bool), StoreError> {
    let rows = c
        .query(
            &c.prepare_cached(
                "(SELECT seq, at, kind, data::text FROM (
                    (SELECT seq, at, kind, data FROM change_log
                      WHERE member_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)
                    UNION ALL
                    (SELECT seq, at, kind, data FROM change_log
                      WHERE member_id IS NULL AND seq > $2 ORDER BY seq LIMIT $3)
                  ) page ORDER BY seq LIMIT $3)
                 UNION ALL
                 (SELECT NULL, NULL, NULL, NULL::text
                   WHERE EXISTS (SELECT 1 FROM change_log WHERE seq IS NULL))",
            )
            .await?,
            &[&member_id, &cursor, &(limit as i64)],
        )
        .await?;
    let mut waiting = false;
    let mut changes = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(seq) = r.get::<_, Option<i64>>(0) else {
            waiting = true;
            continue;
        };
        // JSONB as text: what the log stored, sent as it is
        changes.push(crate::store::PageChange::stored(
            seq,
            r.get(1),
            r.get(2),
            r.get(3),
        ));
    }
    // the two parts of a UNION ALL come in no promised order
    changes.sort_unstable_by_key(|c| c.seq);
    Ok((changes, waiting))
}

/// What the last page adds for everyone, in one statement: the stock left of the campaigns
/// that have not ended at `now` (as [`super::grab::stock_left_on`]) and the points offer with
/// its catalog (as [`super::points::offer`]).
async fn last_page_on(
    c: &impl GenericClient,
    now: DateTime<Utc>,
) -> Result<(Vec<StockLeft>, PointsOffer), StoreError> {
    let r = c
        .query_one(
            &c.prepare_cached(concat!(
                "SELECT (SELECT body FROM points_offer WHERE id = 1),
                        k.ids, k.zh, k.en, k.points, k.stock, s.ids, s.lefts
                 FROM (SELECT array_agg(id ORDER BY points, id) AS ids,
                              array_agg(title_zh ORDER BY points, id) AS zh,
                              array_agg(title_en ORDER BY points, id) AS en,
                              array_agg(points ORDER BY points, id) AS points,
                              array_agg(stock ORDER BY points, id) AS stock FROM catalog) k,
                      (SELECT array_agg(c.id ORDER BY c.id) AS ids,
                              array_agg(",
                stock_left_of_c!(),
                " ORDER BY c.id) AS lefts
                       FROM campaigns c WHERE c.end_at > $1) s"
            ))
            .await?,
            &[&now],
        )
        .await?;
    fn list<'a, T: tokio_postgres::types::FromSql<'a>>(
        r: &'a tokio_postgres::Row,
        i: usize,
    ) -> Vec<T> {
        r.get::<_, Option<Vec<T>>>(i).unwrap_or_default()
    }
    let mut offer = match r.get::<_, Option<serde_json::Value>>(0) {
        Some(body) => from_json(body)?,
        None => PointsOffer::none(),
    };
    let (ids, zh, en, points, stock) = (
        list::<i64>(&r, 1),
        list::<String>(&r, 2),
        list::<String>(&r, 3),
        list::<i64>(&r, 4),
        list::<i64>(&r, 5),
    );
    offer.catalog = (ids.into_iter().zip(zh).zip(en).zip(points).zip(stock))
        .map(
            |((((id, title_zh), title_en), points), stock)| CatalogItem {
                id,
                title_zh,
                title_en,
                points,
                stock,
            },
        )
        .collect();
    let stock_left = list::<i64>(&r, 6)
        .into_iter()
        .zip(list::<i64>(&r, 7))
        .map(|(campaign_id, left)| StockLeft { campaign_id, left })
        .collect();
    Ok((stock_left, offer))
}
