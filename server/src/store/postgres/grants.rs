//! The grab on PostgreSQL: grants decided in groups, from stock leased to this instance.
//!
//! A grab the cache cannot refuse (`rules::CampaignCache::refusal_from_memory`) joins this
//! instance's next group (`groups`): one transaction judges the group's requests in the order
//! received, in a fixed number of round trips whatever its size, and each is answered only after
//! it commits. Only a grant is kept under its key; a refused key is judged again if it comes back.
//!
//! **Stock, across instances, without a hot row.** Each instance holds at most one lease per
//! campaign (`stock_leases`, keyed by campaign and holder): units moved out of `campaign_stock`
//! in the transaction of the group that needs them, at least `PgSettings::lease_units` at a time. A
//! group's grants take from its own lease row in the same transaction, so at every commit the
//! stock equals granted + leased + left in `campaign_stock`, and instances busy with their own
//! leases never wait for each other. A lease is never a reason to refuse: an instance whose
//! lease and the stock are empty takes from the other instances' leases (those not in a group
//! at that moment: `SKIP LOCKED`; if one is, the group is judged again a moment later). So the
//! units of an instance that died are granted by the others as soon as they need them, and an
//! instance gives its leases back when it has had no grab for a second and when it stops
//! (`Campaigns::return_stock`).
//!
//! **Sold out** is answered, and kept in memory, only when the stock and every lease are seen
//! empty: no grant can follow then, so the granted keys read at that moment are all of them.
//! `UNIQUE (campaign_id, member_id, n)` on grants stays the last defence against a double grant;
//! the member's count is read `FOR UPDATE`. Locks are taken in one order (keys, then counts, each
//! sorted; then the own lease, then the stock's shards; others' leases are never waited for), so
//! groups of several instances never wait for each other in a cycle.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use deadpool_postgres::{Pool, Transaction};
use unionpass_core::api::ChangeKind;
use unionpass_core::campaign::{Campaign, GrabOutcome, GrabResponse};
use uuid::Uuid;

use super::{campaign_row, from_json, json};
use crate::store::rules::{self, coupon_of, grab_answer, replay_grab, usage_code, CampaignCache};
use crate::store::{GrabJob, StoreError};

/// How often a group whose stock is in another instance's group right now is judged again
/// before it answers sold out anyway (each after [`IN_USE_WAIT`]).
const IN_USE_TRIES: usize = 50;
const IN_USE_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// How a group of grabs is judged, and this instance's identity as a lease holder.
pub(super) struct GrantJudge {
    pub holder: Uuid,
    /// Units taken from the campaign's stock at a time (more when a group needs more).
    pub lease_units: i64,
    pub campaigns: Arc<Mutex<CampaignCache>>,
}

/// This instance's grab groups.
pub(super) type GrantGroups = super::groups::Groups<GrantJudge>;

#[async_trait]
impl super::groups::Judge for GrantJudge {
    type Job = GrabJob;
    type Answer = GrabResponse;
    const WHAT: &'static str = "grab";

    async fn judge(
        &self,
        pool: &Pool,
        jobs: &[GrabJob],
    ) -> Result<Vec<Result<GrabResponse, StoreError>>, StoreError> {
        // requests that queued before the group that saw the stock gone: answered from memory
        // now, without a transaction (a burst's tail waits for no further group)
        let memo: Vec<Option<GrabResponse>> = jobs
            .iter()
            .map(|j| crate::store::rules::answer_from_memory(&self.campaigns, j))
            .collect();
        let rest: Vec<GrabJob> = jobs
            .iter()
            .zip(&memo)
            .filter(|(_, m)| m.is_none())
            .map(|(j, _)| j.clone())
            .collect();
        let mut judged = if rest.is_empty() {
            Vec::new()
        } else {
            self.in_transactions(pool, &rest).await?
        }
        .into_iter();
        Ok(memo
            .into_iter()
            .map(|m| match m {
                Some(answer) => Ok(answer),
                None => judged
                    .next()
                    .unwrap_or_else(|| Err(StoreError::Corrupt("a grab left unjudged".into()))),
            })
            .collect())
    }

    async fn idle(&self, pool: &Pool) {
        if let Err(e) = return_stock(pool, self.holder).await {
            tracing::warn!(error = %e, "could not give leased stock back (other instances take it from the lease when they need it)");
        }
    }
}

impl GrantJudge {
    /// The group judged in one transaction (again, while stock it needs is busy elsewhere), then
    /// committed; what it saw sold out for good is kept in memory after the commit.
    async fn in_transactions(
        &self,
        pool: &Pool,
        jobs: &[GrabJob],
    ) -> Result<Vec<Result<GrabResponse, StoreError>>, StoreError> {
        let mut client = pool.get().await?;
        let mut tries = 0;
        let (answers, sold_out) = loop {
            tries += 1;
            let tx = client.transaction().await?;
            // the last try refuses what it cannot take, even if units are in use elsewhere
            match self.group(&tx, jobs, tries < IN_USE_TRIES).await? {
                Some(judged) => {
                    tx.commit().await?;
                    break judged;
                }
                None => {
                    tx.rollback().await?;
                    tokio::time::sleep(IN_USE_WAIT).await;
                }
            }
        };
        let mut cache = self.campaigns.lock().unwrap_or_else(|p| p.into_inner());
        for (campaign, keys) in sold_out {
            cache.mark_sold_out(campaign, Some(keys));
        }
        drop(cache);
        if answers
            .iter()
            .any(|a| matches!(a, Ok(r) if matches!(r.outcome, GrabOutcome::Granted { .. }) && !r.replayed))
        {
            crate::store::exit_after_grant_commit();
        }
        Ok(answers)
    }
}

/// Whether a group got all the units it wanted for a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Short {
    /// Every unit wanted.
    No,
    /// Fewer, and nothing is left anywhere: sold out for good.
    Gone,
    /// Fewer, while units are left in a lease that stayed busy through every try.
    InUse,
}

/// What each job gets, and the campaigns seen sold out for good with every key holding a grant.
type Judged = (
    Vec<Result<GrabResponse, StoreError>>,
    Vec<(i64, HashSet<Uuid>)>,
);

impl GrantJudge {
    /// The group's answers, or `None` (when `patient`) if stock it needs is in another
    /// instance's group right now: nothing of it is kept, and it is judged again.
    async fn group(
        &self,
        tx: &Transaction<'_>,
        jobs: &[GrabJob],
        patient: bool,
    ) -> Result<Option<Judged>, StoreError> {
        let now = jobs.iter().map(|j| j.now).max().unwrap_or_else(Utc::now);
        let mut answers: Vec<Option<Result<GrabResponse, StoreError>>> =
            jobs.iter().map(|_| None).collect();

        // a key twice in the group: the later ones answer as the first, after it is judged
        let mut first_of: HashMap<Uuid, usize> = HashMap::new();
        let mut again: Vec<(usize, usize)> = Vec::new();
        for (i, j) in jobs.iter().enumerate() {
            match first_of.get(&j.key) {
                Some(&f) => again.push((i, f)),
                None => {
                    first_of.insert(j.key, i);
                }
            }
        }
        let mut firsts: Vec<usize> = first_of.values().copied().collect();
        firsts.sort_unstable_by_key(|&i| jobs[i].key);

        // claim the keys (in key order); a key claimed by a transaction still open elsewhere
        // waits here for it to end
        let claimed: HashSet<Uuid> = tx
            .query(
                &tx.prepare_cached(
                    "INSERT INTO grab_keys(key, member_id, campaign_id, response, at)
                     SELECT k, m, c, NULL::jsonb, $4::timestamptz
                       FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS t(k, m, c)
                     ON CONFLICT (key) DO NOTHING RETURNING key",
                )
                .await?,
                &[
                    &firsts.iter().map(|&i| jobs[i].key).collect::<Vec<_>>(),
                    &firsts
                        .iter()
                        .map(|&i| jobs[i].member_id)
                        .collect::<Vec<_>>(),
                    &firsts
                        .iter()
                        .map(|&i| jobs[i].campaign_id)
                        .collect::<Vec<_>>(),
                    &now,
                ],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let replays: Vec<usize> = firsts
            .iter()
            .copied()
            .filter(|&i| !claimed.contains(&jobs[i].key))
            .collect();
        if !replays.is_empty() {
            let rows = tx
                .query(
                    &tx.prepare_cached(
                        "SELECT key, member_id, campaign_id, response FROM grab_keys
                         WHERE key = ANY($1)",
                    )
                    .await?,
                    &[&replays.iter().map(|&i| jobs[i].key).collect::<Vec<_>>()],
                )
                .await?;
            let found: HashMap<Uuid, &tokio_postgres::Row> =
                rows.iter().map(|r| (r.get(0), r)).collect();
            for &i in &replays {
                let job = &jobs[i];
                answers[i] = Some(match found.get(&job.key) {
                    Some(row) => replay_grab(job, row.get(1), row.get(2), || {
                        let response: Option<serde_json::Value> = row.get(3);
                        from_json(
                            response.ok_or_else(|| StoreError::Corrupt("unanswered key".into()))?,
                        )
                    }),
                    None => Err(StoreError::Corrupt("a claimed key vanished".into())),
                });
            }
        }

        // the rest, in the order received
        let mut open: Vec<usize> = firsts
            .iter()
            .copied()
            .filter(|&i| claimed.contains(&jobs[i].key))
            .collect();
        open.sort_unstable();

        // campaigns, from the cache or read; the refusals that need no stock
        let mut campaigns: HashMap<i64, Campaign> = HashMap::new();
        for &i in &open {
            let id = jobs[i].campaign_id;
            if campaigns.contains_key(&id) {
                continue;
            }
            let cached = self
                .campaigns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fresh(id, now)
                .cloned();
            let c = match cached {
                Some(c) => Some(c),
                None => {
                    let read = campaign_row(tx, id).await?;
                    if let Some(c) = &read {
                        self.campaigns
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .put(c.clone(), now);
                    }
                    read
                }
            };
            if let Some(c) = c {
                campaigns.insert(id, c);
            }
        }
        let mut judged: Vec<usize> = Vec::new();
        {
            let cache = self.campaigns.lock().unwrap_or_else(|p| p.into_inner());
            for &i in &open {
                let job = &jobs[i];
                match campaigns.get(&job.campaign_id) {
                    None => answers[i] = Some(Err(StoreError::NoCampaign(job.campaign_id))),
                    Some(c) => match cache.decide_without_stock(c, job.union_id, job.now) {
                        Some(o) => answers[i] = Some(Ok(grab_answer(job, o))),
                        None => judged.push(i),
                    },
                }
            }
        }

        // whatever is given is given only to a session live now (it may have been judged from
        // memory, `auth::SessionTable`)
        let hashes: Vec<&str> = judged
            .iter()
            .filter_map(|&i| jobs[i].session.as_deref())
            .collect();
        if !hashes.is_empty() {
            let live: HashSet<(String, i64)> = tx
                .query(
                    &tx.prepare_cached(
                        "SELECT s.token_hash, s.member_id FROM sessions s
                         JOIN members m ON m.id = s.member_id JOIN devices d ON d.id = s.device_id
                         WHERE s.token_hash = ANY($1) AND s.expires_at > $2
                           AND m.suspended_at IS NULL AND d.revoked_at IS NULL",
                    )
                    .await?,
                    &[&hashes, &now],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            judged.retain(|&i| {
                let job = &jobs[i];
                let ok = job
                    .session
                    .as_ref()
                    .is_none_or(|h| live.contains(&(h.clone(), job.member_id)));
                if !ok {
                    answers[i] = Some(Err(StoreError::SessionEnded));
                }
                ok
            });
        }

        // each member's count, locked (rows made first, in key order), then decided in order
        let mut pairs: Vec<(i64, i64)> = judged
            .iter()
            .map(|&i| (jobs[i].campaign_id, jobs[i].member_id))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let (pc, pm): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
        let mut counts: HashMap<(i64, i64), i64> = HashMap::new();
        if !pairs.is_empty() {
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO member_grants(campaign_id, member_id, n)
                     SELECT c, m, 0 FROM unnest($1::bigint[], $2::bigint[]) AS t(c, m)
                     ON CONFLICT (campaign_id, member_id) DO NOTHING",
                )
                .await?,
                &[&pc, &pm],
            )
            .await?;
            for r in tx
                .query(
                    &tx.prepare_cached(
                        "SELECT g.campaign_id, g.member_id, g.n FROM member_grants g
                         JOIN unnest($1::bigint[], $2::bigint[]) AS t(c, m)
                           ON g.campaign_id = t.c AND g.member_id = t.m
                         ORDER BY g.campaign_id, g.member_id FOR UPDATE OF g",
                    )
                    .await?,
                    &[&pc, &pm],
                )
                .await?
            {
                counts.insert((r.get(0), r.get(1)), r.get(2));
            }
        }
        // the limit, in the order received (`seen`: the count if every earlier one is granted)
        let mut seen = counts.clone();
        let mut wanting: HashMap<i64, Vec<usize>> = HashMap::new();
        for &i in &judged {
            let job = &jobs[i];
            let c = &campaigns[&job.campaign_id];
            let n = seen.entry((c.id, job.member_id)).or_insert(0);
            if rules::limit_reached(c, *n) {
                answers[i] = Some(Ok(grab_answer(job, GrabOutcome::LimitReached)));
            } else {
                *n += 1;
                wanting.entry(c.id).or_default().push(i);
            }
        }

        // stock from this instance's lease, to the first in the order received
        let mut granted: Vec<(usize, i64)> = Vec::new(); // (job, the member's n)
        let mut sold_out = Vec::new();
        let mut ids: Vec<i64> = wanting.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let want = &wanting[&id];
            let Some((got, short)) = self.take(tx, id, want.len() as i64, patient).await? else {
                return Ok(None);
            };
            for (k, &i) in want.iter().enumerate() {
                let job = &jobs[i];
                if (k as i64) < got {
                    let n = counts.entry((id, job.member_id)).or_insert(0);
                    *n += 1;
                    granted.push((i, *n));
                } else if short == Short::InUse {
                    // units are left, in a lease busy all along: not sold out, try again
                    answers[i] = Some(Err(StoreError::Busy));
                } else {
                    answers[i] = Some(Ok(grab_answer(job, GrabOutcome::SoldOut)));
                }
            }
            // a request held back by the limit only because an earlier one of the member's was
            // counted, and that one got nothing: it could not have been granted either
            for &i in &judged {
                let job = &jobs[i];
                let limited =
                    matches!(&answers[i], Some(Ok(r)) if r.outcome == GrabOutcome::LimitReached);
                if job.campaign_id == id
                    && limited
                    && !rules::limit_reached(
                        &campaigns[&id],
                        counts.get(&(id, job.member_id)).copied().unwrap_or(0),
                    )
                {
                    answers[i] = Some(if short == Short::InUse {
                        Err(StoreError::Busy)
                    } else {
                        Ok(grab_answer(job, GrabOutcome::SoldOut))
                    });
                }
            }
            if short == Short::Gone {
                let mut keys: HashSet<Uuid> = tx
                    .query(
                        &tx.prepare_cached("SELECT grab_key FROM grants WHERE campaign_id = $1")
                            .await?,
                        &[&id],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                keys.extend(
                    granted
                        .iter()
                        .filter(|(i, _)| jobs[*i].campaign_id == id)
                        .map(|(i, _)| jobs[*i].key),
                );
                sold_out.push((id, keys));
            }
        }

        // the grants, their changes, the keys' answers and the counts
        if !granted.is_empty() {
            let codes: Vec<String> = granted
                .iter()
                .map(|(i, _)| usage_code(jobs[*i].campaign_id))
                .collect();
            let rows = tx
                .query(
                    &tx.prepare_cached(
                        "INSERT INTO grants(campaign_id, member_id, n, code, granted_at, grab_key)
                         SELECT c, m, n, code, $5::timestamptz, k FROM unnest($1::bigint[], $2::bigint[],
                           $3::bigint[], $4::text[], $6::uuid[]) AS t(c, m, n, code, k)
                         RETURNING grab_key, id",
                    )
                    .await?,
                    &[
                        &granted
                            .iter()
                            .map(|(i, _)| jobs[*i].campaign_id)
                            .collect::<Vec<_>>(),
                        &granted
                            .iter()
                            .map(|(i, _)| jobs[*i].member_id)
                            .collect::<Vec<_>>(),
                        &granted.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
                        &codes,
                        &now,
                        &granted
                            .iter()
                            .map(|(i, _)| jobs[*i].key)
                            .collect::<Vec<_>>(),
                    ],
                )
                .await?;
            let ids: HashMap<Uuid, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let mut members = Vec::new();
            let mut kinds = Vec::new();
            let mut data = Vec::new();
            let mut keys = Vec::new();
            let mut responses = Vec::new();
            for ((i, _), code) in granted.iter().zip(codes) {
                let job = &jobs[*i];
                let coupon = coupon_of(&campaigns[&job.campaign_id], ids[&job.key], code, now);
                let (kind, d) = rules::change_parts(&ChangeKind::CouponGranted(coupon.clone()));
                members.push(job.member_id);
                kinds.push(kind);
                data.push(d);
                let response = grab_answer(job, GrabOutcome::Granted { coupon });
                keys.push(job.key);
                responses.push(json(&response));
                answers[*i] = Some(Ok(response));
            }
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO change_log(member_id, at, kind, data)
                     SELECT m, $2::timestamptz, k, d FROM unnest($1::bigint[], $3::text[], $4::jsonb[])
                       WITH ORDINALITY AS t(m, k, d, o) ORDER BY o",
                )
                .await?,
                &[&members, &now, &kinds, &data],
            )
            .await?;
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE grab_keys g SET response = t.r
                     FROM unnest($1::uuid[], $2::jsonb[]) AS t(k, r) WHERE g.key = t.k",
                )
                .await?,
                &[&keys, &responses],
            )
            .await?;
        }
        // only a grant is kept under its key (a refusal asked again is judged again)
        let refused: Vec<Uuid> = open
            .iter()
            .filter(|&&i| {
                !matches!(&answers[i], Some(Ok(r)) if matches!(r.outcome, GrabOutcome::Granted { .. }))
            })
            .map(|&i| jobs[i].key)
            .collect();
        if !refused.is_empty() {
            tx.execute(
                &tx.prepare_cached("DELETE FROM grab_keys WHERE key = ANY($1)")
                    .await?,
                &[&refused],
            )
            .await?;
        }
        if !pairs.is_empty() {
            let ns: Vec<i64> = pairs.iter().map(|p| counts[p]).collect();
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE member_grants g SET n = t.n
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(c, m, n)
                     WHERE g.campaign_id = t.c AND g.member_id = t.m AND g.n <> t.n",
                )
                .await?,
                &[&pc, &pm, &ns],
            )
            .await?;
        }

        for (i, f) in again {
            let job = &jobs[i];
            answers[i] = Some(match &answers[f] {
                // the same key twice in one group (a double tap): the first's answer
                Some(Ok(first)) => replay_grab(job, jobs[f].member_id, jobs[f].campaign_id, || {
                    Ok(first.clone())
                })
                .map(|r| match r.outcome {
                    GrabOutcome::Granted { .. } => r,
                    refused => grab_answer(job, refused),
                }),
                Some(Err(e)) => Err(e.again()),
                None => Err(StoreError::Corrupt("a grab left unjudged".into())),
            });
        }
        Ok(Some((
            answers
                .into_iter()
                .map(|a| a.unwrap_or(Err(StoreError::Corrupt("a grab left unjudged".into()))))
                .collect(),
            sold_out,
        )))
    }

    /// Take up to `need` units of campaign `id` for this group: from this instance's lease,
    /// leasing more from the stock when it holds too few, then from other instances' leases not
    /// in a group right now. Answers the units taken and whether the campaign is now sold out for
    /// good (the stock and every lease empty); `None` (when `patient`) if it is short while units
    /// sit in a lease that another group holds at this moment.
    async fn take(
        &self,
        tx: &Transaction<'_>,
        id: i64,
        need: i64,
        patient: bool,
    ) -> Result<Option<(i64, Short)>, StoreError> {
        let mut have: i64 = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT remaining FROM stock_leases WHERE campaign_id = $1 AND holder = $2
                     FOR UPDATE",
                )
                .await?,
                &[&id, &self.holder],
            )
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0);
        if have < need {
            // from the stock's shards, locked in shard order: as much as a lease, or the need
            let want = (need - have).max(self.lease_units);
            have += tx
                .query_one(
                    &tx.prepare_cached(
                        "WITH s AS (SELECT shard, remaining FROM campaign_stock
                                    WHERE campaign_id = $1 AND remaining > 0
                                    ORDER BY shard FOR UPDATE),
                              w AS (SELECT shard, LEAST(remaining, GREATEST(0, $2::bigint -
                                      (sum(remaining) OVER (ORDER BY shard) - remaining)::bigint))
                                      AS take
                                    FROM s),
                              u AS (UPDATE campaign_stock c SET remaining = c.remaining - w.take
                                    FROM w WHERE c.campaign_id = $1 AND c.shard = w.shard
                                      AND w.take > 0 RETURNING w.take)
                         SELECT coalesce(sum(take), 0)::BIGINT FROM u",
                    )
                    .await?,
                    &[&id, &want],
                )
                .await?
                .get::<_, i64>(0);
        }
        if have < need {
            // from the other instances' leases that no group holds now (a dead instance's too)
            have += tx
                .query_one(
                    &tx.prepare_cached(
                        "WITH l AS (SELECT holder, remaining FROM stock_leases
                                    WHERE campaign_id = $1 AND holder <> $2 AND remaining > 0
                                    ORDER BY holder FOR UPDATE SKIP LOCKED),
                              w AS (SELECT holder, LEAST(remaining, GREATEST(0, $3::bigint -
                                      (sum(remaining) OVER (ORDER BY holder) - remaining)::bigint))
                                      AS take
                                    FROM l),
                              u AS (UPDATE stock_leases c SET remaining = c.remaining - w.take
                                    FROM w WHERE c.campaign_id = $1 AND c.holder = w.holder
                                      AND w.take > 0 RETURNING w.take)
                         SELECT coalesce(sum(take), 0)::BIGINT FROM u",
                    )
                    .await?,
                    &[&id, &self.holder, &(need - have)],
                )
                .await?
                .get::<_, i64>(0);
        }
        let got = have.min(need);
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO stock_leases(campaign_id, holder, remaining) VALUES ($1, $2, $3)
                 ON CONFLICT (campaign_id, holder) DO UPDATE SET remaining = excluded.remaining",
            )
            .await?,
            &[&id, &self.holder, &(have - got)],
        )
        .await?;
        if got == need {
            return Ok(Some((got, Short::No)));
        }
        // short: any unit left is in a lease some group holds right now, or came back to the
        // stock since it was read (a lease given back); one snapshot of both tables, so a unit
        // moving from a lease to the stock is seen in one place or the other
        let left: bool = tx
            .query_one(
                &tx.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM stock_leases
                                    WHERE campaign_id = $1 AND holder <> $2 AND remaining > 0)
                         OR EXISTS (SELECT 1 FROM campaign_stock
                                    WHERE campaign_id = $1 AND remaining > 0)",
                )
                .await?,
                &[&id, &self.holder],
            )
            .await?
            .get(0);
        Ok(match (left, patient) {
            (true, true) => None,
            (true, false) => Some((got, Short::InUse)),
            (false, _) => Some((got, Short::Gone)),
        })
    }
}

/// Give every lease of `holder` back to its campaign's stock, in one transaction; the stock
/// rows are updated in campaign order, as groups lock them, so the two never wait in a cycle.
pub(super) async fn return_stock(pool: &Pool, holder: Uuid) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut back: Vec<(i64, i64)> = tx
        .query(
            &tx.prepare_cached(
                "DELETE FROM stock_leases WHERE holder = $1 RETURNING campaign_id, remaining",
            )
            .await?,
            &[&holder],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .filter(|(_, n)| *n > 0)
        .collect();
    back.sort_unstable();
    for (campaign, n) in back {
        tx.execute(
            &tx.prepare_cached(
                "UPDATE campaign_stock SET remaining = remaining + $2
                 WHERE campaign_id = $1 AND shard = 0",
            )
            .await?,
            &[&campaign, &n],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
