//! Points on the device: the ledger as synced, the offer, and redemptions.
//!
//! - Ledger entries arrive as `points_entry` changes and are kept as they are. The folded ledger
//!   (`unionpass_core::points::Ledger`) is kept too, with the last entry folded into it, and
//!   brought up to date when entries arrive, so the balance and the expiry view never fold the
//!   whole history.
//! - A redemption is checked here first by the same rules as on the server (so most refusals
//!   come at once, offline), then queued: the redemption row and the `redeem` mutation are
//!   written in one transaction, under an id made before anything is sent. The server's answer
//!   comes back as a rejection of that mutation (kept, with its code) or as `redemption` changes
//!   (held, settled, refunded with a reason).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use unionpass_core::api::MutationOp;
use unionpass_core::points::{self, Entry, Ledger};
use unionpass_core::redeem::{
    self, PointsOffer, Quote, RedeemRequest, Redemption, RedemptionStatus, Target,
};
use unionpass_core::time::Zone;
use unionpass_core::view::{CapLeft, ExpiryDay, HistoryMonth, PointsView};
use unionpass_core::ErrorCode;
use uuid::Uuid;

use crate::error::{ClientError, Result};
use crate::store::{meta_get, meta_set, parse_ts, ts, Store};

const K_OFFER: &str = "points_offer";
const K_LEDGER: &str = "points_ledger";
/// The last entry folded into `K_LEDGER`, kept apart so that taking an entry in does not read
/// the whole folded ledger.
const K_LEDGER_SEQ: &str = "points_ledger_seq";
/// The member's zone (the union's: Asia/Shanghai).
const ZONE: Zone = Zone::AsiaShanghai;
/// Redemptions listed on the points screen.
const LIST: i64 = 50;

fn bad(e: impl std::fmt::Display) -> ClientError {
    ClientError::BadResponse(format!("stored points data: {e}"))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializes")
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Folded {
    /// The last entry folded in.
    seq: i64,
    ledger: Ledger,
}

/// Keep an entry from sync. An entry older than the folded ledger (never expected: the server
/// appends one member's entries in order) makes the next read fold from the start.
pub(crate) fn insert_entry(conn: &Connection, e: &Entry) -> Result<()> {
    // cached: a first sync inserts thousands
    let new = conn
        .prepare_cached(
            "INSERT INTO points_entries(seq, at, body) VALUES (?1, ?2, ?3) ON CONFLICT(seq) DO NOTHING",
        )?
        .execute(params![e.seq, ts(e.at), json(e)])?
        == 1;
    if !new {
        return Ok(()); // sent again (e.g. after a cursor reset): nothing changes
    }
    let folded_to: Option<i64> = meta_get(conn, K_LEDGER_SEQ)?.and_then(|v| v.parse().ok());
    if folded_to.is_some_and(|s| e.seq <= s) {
        conn.execute(
            "DELETE FROM meta WHERE key IN (?1, ?2)",
            params![K_LEDGER, K_LEDGER_SEQ],
        )?;
    }
    Ok(())
}

/// A redemption's state from the server (held, settled, refunded).
pub(crate) fn upsert_redemption(conn: &Connection, r: &Redemption) -> Result<()> {
    conn.execute(
        "INSERT INTO redemptions(id, kind, amount_cents, points, status, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body",
        params![
            r.id.to_string(),
            r.target.kind(),
            r.target.amount_cents(),
            r.points,
            r.status.as_str(),
            json(r),
            ts(r.created_at)
        ],
    )?;
    Ok(())
}

pub(crate) fn set_offer(conn: &Connection, offer: &PointsOffer) -> Result<()> {
    meta_set(conn, K_OFFER, &json(offer))
}

/// The server refused a queued redemption: keep it, with the reason.
pub(crate) fn reject(conn: &Connection, id: Uuid, code: ErrorCode) -> Result<()> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM redemptions WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(body) = body {
        let mut r: Redemption = serde_json::from_str(&body).map_err(bad)?;
        r.status = RedemptionStatus::Rejected { code };
        upsert_redemption(conn, &r)?;
    }
    Ok(())
}

impl Store {
    pub fn points_offer(&self) -> Result<PointsOffer> {
        Ok(meta_get(&self.conn, K_OFFER)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_else(PointsOffer::none))
    }

    /// The ledger folded up to the last entry kept (and that fold remembered).
    pub fn ledger(&self) -> Result<Ledger> {
        let mut folded: Folded = meta_get(&self.conn, K_LEDGER)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM points_entries WHERE seq > ?1 ORDER BY seq")?;
        let rows = stmt.query_map([folded.seq], |r| r.get::<_, String>(0))?;
        let mut moved = false;
        for body in rows {
            let e: Entry = serde_json::from_str(&body?).map_err(bad)?;
            folded.ledger.apply(&e).map_err(bad)?;
            folded.seq = e.seq;
            moved = true;
        }
        if moved {
            // one statement: the fold and its position change together
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2), (?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![
                    K_LEDGER,
                    json(&folded),
                    K_LEDGER_SEQ,
                    folded.seq.to_string()
                ],
            )?;
        }
        Ok(folded.ledger)
    }

    /// Points of redemptions queued on this device that the server has not held yet.
    fn queued_points(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT coalesce(sum(points), 0) FROM redemptions WHERE status = 'queued'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Redemptions of `kind` that count against its monthly cap (queued, held, settled), from
    /// a little over a month before `now`: when, and the amount in fen.
    fn cap_used(&self, kind: &str, now: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT created_at, amount_cents FROM redemptions
             WHERE kind = ?1 AND status IN ('queued', 'held', 'settled') AND created_at >= ?2",
        )?;
        let since = ts(now - chrono::Duration::days(32));
        let rows = stmt.query_map(params![kind, since], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut used = Vec::new();
        for row in rows {
            let (at, amount) = row?;
            used.push((parse_ts(at)?, amount));
        }
        Ok(used)
    }

    /// Check a redemption as the server will (the password aside), counting what is queued
    /// here. Answers its price and whether it needs the password again.
    pub fn quote_redemption(&self, target: &Target, now: DateTime<Utc>) -> Result<Quote> {
        let offer = self.points_offer()?;
        let q = redeem::quote(&offer, target).map_err(ClientError::Refused)?;
        let used = self.cap_used(target.kind(), now)?;
        redeem::check_cap(&offer, &q.target, &used, now, ZONE).map_err(ClientError::Refused)?;
        let available = self.ledger()?.balance(now).available - self.queued_points()?;
        if available < q.points {
            return Err(ClientError::Refused(ErrorCode::InsufficientPoints));
        }
        Ok(q)
    }

    /// Queue a redemption under `id` (made by the caller before anything is sent), after the
    /// same checks as [`Store::quote_redemption`]; `agreed` is the price the member saw.
    pub fn queue_redemption(
        &mut self,
        id: Uuid,
        target: &Target,
        agreed: i64,
        now: DateTime<Utc>,
    ) -> Result<Redemption> {
        let q = self.quote_redemption(target, now)?;
        if q.points != agreed {
            return Err(ClientError::Refused(ErrorCode::PriceChanged));
        }
        let r = Redemption {
            id,
            target: q.target.clone(),
            points: q.points,
            created_at: now,
            updated_at: now,
            status: RedemptionStatus::Queued,
        };
        let tx = self.conn.transaction()?;
        upsert_redemption(&tx, &r)?;
        crate::store::enqueue_as(
            &tx,
            id,
            MutationOp::Redeem(RedeemRequest {
                target: q.target,
                points: q.points,
            }),
            now,
        )?;
        tx.commit()?;
        Ok(r)
    }

    /// Whether a redemption is queued here or in progress at the server.
    pub fn has_open_redemptions(&self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM redemptions WHERE status IN ('queued', 'held'))",
            [],
            |r| r.get(0),
        )?)
    }

    /// Every redemption kept on this device, newest first.
    pub fn redemptions(&self) -> Result<Vec<Redemption>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM redemptions ORDER BY created_at DESC, id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut v = Vec::new();
        for b in rows {
            v.push(serde_json::from_str(&b?).map_err(bad)?);
        }
        Ok(v)
    }

    /// Everything the points screen shows.
    pub fn points_view(&self, now: DateTime<Utc>) -> Result<PointsView> {
        let ledger = self.ledger()?;
        let queued = self.queued_points()?;
        let expiring_soon = ledger.expiring_soon(
            now,
            chrono::Duration::days(unionpass_core::view::EXPIRY_WARNING_DAYS),
            ZONE,
        );
        let expiry = ledger
            .expiry_days(now, ZONE)
            .into_iter()
            .map(|(d, points)| ExpiryDay {
                date: d.format("%Y-%m-%d").to_string(),
                points,
            })
            .collect();
        // the chart's 12 months, and a margin for holds settled inside them
        let mut first = unionpass_core::time::YearMonth::of(now, ZONE);
        for _ in 0..11 {
            first = first.prev();
        }
        let since = first.start(ZONE) - chrono::Duration::days(62);
        let entries: Vec<Entry> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT body FROM points_entries WHERE at >= ?1 ORDER BY seq")?;
            let rows = stmt.query_map([ts(since)], |r| r.get::<_, String>(0))?;
            let mut v = Vec::new();
            for b in rows {
                v.push(serde_json::from_str(&b?).map_err(bad)?);
            }
            v
        };
        let history = points::monthly_history(&entries, now, ZONE)
            .into_iter()
            .map(|(m, f)| HistoryMonth {
                month: m.label(),
                earned: f.earned,
                spent: f.spent,
                expired: f.expired,
            })
            .collect();
        let redemptions = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT body FROM redemptions ORDER BY created_at DESC, id LIMIT ?1",
            )?;
            let rows = stmt.query_map([LIST], |r| r.get::<_, String>(0))?;
            let mut v = Vec::new();
            for b in rows {
                v.push(serde_json::from_str(&b?).map_err(bad)?);
            }
            v
        };
        let offer = self.points_offer()?;
        let cap = |kind: &str, cap_cents: i64| -> Result<CapLeft> {
            let used = self.cap_used(kind, now)?;
            Ok(CapLeft {
                left_cents: points::cap_left(cap_cents, &used, now, ZONE),
                cap_cents,
            })
        };
        Ok(PointsView {
            balance: ledger.balance(now),
            queued,
            expiry,
            expiring_soon,
            history,
            redemptions,
            phone_cap: cap("phone_bill", offer.phone.monthly_cap_cents)?,
            power_cap: cap("power_bill", offer.power.monthly_cap_cents)?,
            offer,
        })
    }
}
