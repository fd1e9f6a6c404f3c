//! The SQLite grab path: group commit.
//!
//! SQLite has one writer, and a durable commit costs an fsync. A burst of grabs therefore goes
//! through one writer thread: it takes every request waiting in its queue (up to [`MAX_GROUP`]),
//! decides each in order inside one transaction (each in its own savepoint), commits once, and
//! only then answers every request of the group. An answer is never sent before the grant it
//! reports is on disk, and a failed commit answers the whole group with an error.

use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Arc, Mutex};

use chrono::{DateTime, Utc};
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use unionpass_core::campaign::{precheck, usage_code, Campaign, Coupon, GrabOutcome, GrabResponse};

use super::sqlite::{load_campaign, ts};
use super::{GrabJob, StoreError};

/// The most grabs decided in one transaction.
pub const MAX_GROUP: usize = 512;

type Reply = tokio::sync::oneshot::Sender<Result<GrabResponse, StoreError>>;

pub struct GrabWriter {
    tx: Mutex<mpsc::Sender<(GrabJob, Reply)>>,
}

impl GrabWriter {
    pub fn start(conn: Arc<Mutex<Connection>>) -> GrabWriter {
        let (tx, rx) = mpsc::channel::<(GrabJob, Reply)>();
        std::thread::Builder::new()
            .name("grab-writer".into())
            .spawn(move || run(conn, rx))
            .expect("spawn the grab writer");
        GrabWriter { tx: Mutex::new(tx) }
    }

    pub async fn grab(&self, job: GrabJob) -> Result<GrabResponse, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((job, reply))
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// What the writer remembers between groups.
#[derive(Default)]
struct Memo {
    campaigns: HashMap<i64, (Campaign, DateTime<Utc>)>,
    /// Campaigns whose stock is gone (it never comes back): skip the stock queries.
    sold_out: HashSet<i64>,
}

fn run(conn: Arc<Mutex<Connection>>, rx: mpsc::Receiver<(GrabJob, Reply)>) {
    let mut campaigns = Memo::default();
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        let decided = decide_group(&mut guard, &mut campaigns, &group);
        drop(guard);
        match decided {
            Ok(answers) => {
                for ((_, reply), answer) in group.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, size = group.len(), "a grab group failed to commit");
                let msg = e.to_string();
                for (_, reply) in group {
                    let _ = reply.send(Err(StoreError::Task(msg.clone())));
                }
            }
        }
    }
}

/// Decide every job in one transaction; the answers are valid only if this returns `Ok` (the
/// transaction committed).
fn decide_group(
    conn: &mut Connection,
    campaigns: &mut Memo,
    group: &[(GrabJob, Reply)],
) -> Result<Vec<Result<GrabResponse, StoreError>>, StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut answers = Vec::with_capacity(group.len());
    for (job, _) in group {
        let mut sp = tx.savepoint()?;
        match decide(&sp, campaigns, job) {
            Ok(answer) => {
                sp.commit()?;
                answers.push(Ok(answer));
            }
            Err(e) => {
                sp.rollback()?;
                drop(sp);
                answers.push(Err(e));
            }
        }
    }
    tx.commit()?;
    Ok(answers)
}

/// The campaign, from memory when it was read less than `campaign::CACHE_FOR` ago (a moved or
/// cancelled campaign is picked up within that).
fn campaign<'a>(
    conn: &Connection,
    campaigns: &'a mut HashMap<i64, (Campaign, DateTime<Utc>)>,
    id: i64,
    now: DateTime<Utc>,
) -> Result<&'a Campaign, StoreError> {
    let fresh = campaigns
        .get(&id)
        .is_some_and(|(_, read_at)| now - *read_at < unionpass_core::campaign::CACHE_FOR);
    if !fresh {
        let c = load_campaign(conn, id)?.ok_or(StoreError::NoCampaign(id))?;
        campaigns.insert(id, (c, now));
    }
    Ok(&campaigns[&id].0)
}

fn decide(conn: &Connection, memo: &mut Memo, job: &GrabJob) -> Result<GrabResponse, StoreError> {
    let key = job.key.to_string();
    let earlier: Option<(i64, String)> = conn
        .query_row(
            "SELECT member_id, response FROM grab_keys WHERE key = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((owner, response)) = earlier {
        if owner != job.member_id {
            // someone else's key: answer nothing about it
            return Err(StoreError::Duplicate(format!("grab key {key}")));
        }
        let mut first: GrabResponse =
            serde_json::from_str(&response).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        first.replayed = true;
        return Ok(first);
    }
    let c = campaign(conn, &mut memo.campaigns, job.campaign_id, job.now)?.clone();
    let outcome = match precheck(&c, job.union_id, job.now) {
        Some(outcome) => outcome,
        None if memo.sold_out.contains(&c.id) => GrabOutcome::SoldOut,
        None => {
            let outcome = take_one(conn, &c, job)?;
            if outcome == GrabOutcome::SoldOut {
                memo.sold_out.insert(c.id);
            }
            outcome
        }
    };
    let response = GrabResponse {
        key: job.key,
        campaign_id: c.id,
        outcome,
        replayed: false,
    };
    conn.execute(
        "INSERT INTO grab_keys(key, member_id, campaign_id, response, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key, job.member_id, c.id, serde_json::to_string(&response).expect("serializes"), ts(job.now)],
    )?;
    Ok(response)
}

fn take_one(conn: &Connection, c: &Campaign, job: &GrabJob) -> Result<GrabOutcome, StoreError> {
    let held: i64 = conn.query_row(
        "SELECT count(*) FROM grants WHERE campaign_id = ?1 AND member_id = ?2",
        params![c.id, job.member_id],
        |r| r.get(0),
    )?;
    if held >= c.per_member_limit {
        return Ok(GrabOutcome::LimitReached);
    }
    let took = conn.execute(
        "UPDATE campaigns SET granted = granted + 1 WHERE id = ?1 AND granted < stock",
        [c.id],
    )?;
    if took == 0 {
        return Ok(GrabOutcome::SoldOut);
    }
    let coupon = grant(conn, c, job, held + 1)?;
    Ok(GrabOutcome::Granted { coupon })
}

fn grant(conn: &Connection, c: &Campaign, job: &GrabJob, n: i64) -> Result<Coupon, StoreError> {
    conn.execute(
        "INSERT INTO grants(campaign_id, member_id, n, code, granted_at, grab_key) VALUES (?1, ?2, ?3, '', ?4, ?5)",
        params![c.id, job.member_id, n, ts(job.now), job.key.to_string()],
    )?;
    let id = conn.last_insert_rowid();
    let code = usage_code(c.id, id, rand::thread_rng().gen());
    conn.execute(
        "UPDATE grants SET code = ?2 WHERE id = ?1",
        params![id, code],
    )?;
    let coupon = coupon_of(c, id, code, job.now);
    conn.execute(
        "INSERT INTO change_log(member_id, at, kind, data) VALUES (?1, ?2, 'coupon_granted', ?3)",
        params![
            job.member_id,
            ts(job.now),
            serde_json::to_string(&coupon).expect("serializes")
        ],
    )?;
    Ok(coupon)
}

pub fn coupon_of(c: &Campaign, id: i64, code: String, granted_at: DateTime<Utc>) -> Coupon {
    Coupon {
        id,
        campaign_id: c.id,
        code,
        category: c.category,
        title_zh: c.title_zh.clone(),
        title_en: c.title_en.clone(),
        face_value_cents: c.face_value_cents,
        terms_zh: c.terms_zh.clone(),
        terms_en: c.terms_en.clone(),
        valid_from: c.coupon_valid_from,
        valid_until: c.coupon_valid_until,
        granted_at,
    }
}
