//! The grab calendar and the grab from the app.
//!
//! - The calendar lists the campaigns as last synced that have not ended, by release time.
//! - The device's offset from the server clock is measured with `GET /v1/time` and kept in the
//!   store, so countdowns and the grab button follow the server's clock.
//! - A grab's idempotency key is written to the store before the request leaves. A tap while a
//!   grab for the campaign has no final answer sends the same key again: a double tap or a retry
//!   after a dropped connection can never be granted twice. A granted coupon goes straight into
//!   the wallet.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use unionpass_core::campaign::{Campaign, GrabOutcome, GrabResponse};
use unionpass_core::reminder::{estimate_offset, ClockOffset, Reminder, TimeSample};
use uuid::Uuid;

use crate::error::Result;
use crate::store::{ts, Store};
pub use unionpass_core::view::{Calendar, CalendarEntry};

const K_OFFSET: &str = "clock_offset";

impl Store {
    pub fn clock_offset(&self) -> Result<Option<ClockOffset>> {
        Ok(self
            .get(K_OFFSET)?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    pub fn set_clock_offset(&self, o: &ClockOffset) -> Result<()> {
        self.set(K_OFFSET, &serde_json::to_string(o).expect("serializes"))
    }

    /// Campaigns that have not ended, soonest release first, then those that ended within
    /// [`unionpass_core::campaign::SHOW_ENDED_FOR`] (a member who missed one sees it ended
    /// rather than gone), latest end first. Withdrawn ones are not shown.
    pub fn calendar(&self, now: DateTime<Utc>) -> Result<Calendar> {
        let mut stmt = self.conn.prepare(
            "SELECT c.body, g.answer, g.key IS NOT NULL AND g.answer IS NULL, c.stock_left,
                    c.stock_synced_at, r.lead_minutes, r.due_at, r.state,
                    (SELECT count(*) FROM coupons k WHERE k.campaign_id = c.id)
             FROM campaigns c LEFT JOIN grabs g ON g.campaign_id = c.id AND g.seq =
               (SELECT max(seq) FROM grabs WHERE campaign_id = c.id)
             LEFT JOIN reminders r ON r.campaign_id = c.id
             WHERE c.end_at > ?1 AND json_extract(c.body, '$.cancelled_at') IS NULL
             ORDER BY c.end_at <= ?2,
                      CASE WHEN c.end_at <= ?2 THEN '' ELSE c.release_at END,
                      c.end_at DESC, c.id",
        )?;
        let since = now - unionpass_core::campaign::SHOW_ENDED_FOR;
        let rows = stmt.query_map([ts(since), ts(now)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, i64>(8)?,
            ))
        })?;
        let union: Option<i64> = self
            .conn
            .query_row("SELECT union_id FROM profile", [], |r| r.get(0))
            .optional()?;
        let mut entries = Vec::new();
        for row in rows {
            let (body, answer, unanswered, stock_left, synced, lead, due, state, held) = row?;
            let Ok(campaign) = serde_json::from_str::<Campaign>(&body) else {
                continue;
            };
            entries.push(CalendarEntry {
                held,
                eligible: campaign.eligible_unions.is_empty()
                    || union.is_some_and(|u| campaign.eligible_unions.contains(&u)),
                answer: answer.and_then(|a| serde_json::from_str(&a).ok()),
                unanswered,
                stock_left,
                stock_synced_at: synced.map(crate::store::parse_ts).transpose()?,
                reminder: match (lead, due, state) {
                    (Some(lead_minutes), Some(due), Some(state)) => Some(Reminder {
                        campaign_id: campaign.id,
                        lead_minutes,
                        due_at: crate::store::parse_ts(due)?,
                        state: serde_json::from_str(&state)
                            .unwrap_or(unionpass_core::reminder::ReminderState::Pending),
                    }),
                    _ => None,
                },
                campaign,
            });
        }
        Ok(Calendar {
            entries,
            offset: self.clock_offset()?,
        })
    }

    /// The key to send for a grab of `campaign_id`: the unanswered one if there is one, else a
    /// new one, stored before it is used.
    pub fn grab_key(&self, campaign_id: i64, now: DateTime<Utc>) -> Result<Uuid> {
        let open: Option<String> = self
            .conn
            .query_row(
                "SELECT key FROM grabs WHERE campaign_id = ?1 AND answer IS NULL
                 ORDER BY seq DESC LIMIT 1",
                [campaign_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(k) = open.and_then(|k| k.parse().ok()) {
            return Ok(k);
        }
        let key = Uuid::new_v4();
        self.conn.execute(
            "INSERT INTO grabs(campaign_id, key, created_at) VALUES (?1, ?2, ?3)",
            params![campaign_id, key.to_string(), ts(now)],
        )?;
        Ok(key)
    }

    /// Keep the server's final answer for a key; a granted coupon goes into the wallet.
    pub fn record_grab(&mut self, answer: &GrabResponse) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE grabs SET answer = ?2 WHERE key = ?1",
            params![
                answer.key.to_string(),
                serde_json::to_string(&answer.outcome).expect("serializes")
            ],
        )?;
        // the stock as this answer shows it, until the next sync says otherwise
        match &answer.outcome {
            GrabOutcome::Granted { coupon } => {
                crate::wallet::insert_coupon(&tx, coupon)?;
                tx.execute(
                    "UPDATE campaigns SET stock_left = max(stock_left - 1, 0)
                     WHERE id = ?1 AND stock_left IS NOT NULL",
                    [coupon.campaign_id],
                )?;
            }
            GrabOutcome::SoldOut => {
                tx.execute(
                    "UPDATE campaigns SET stock_left = 0 WHERE id =
                       (SELECT campaign_id FROM grabs WHERE key = ?1)",
                    [answer.key.to_string()],
                )?;
            }
            _ => {}
        }
        tx.commit()?;
        Ok(())
    }
}

/// Measure the offset from `samples` exchanges with the server: `clock` is the device clock.
pub async fn measure_offset(
    api: &crate::api::Api,
    clock: impl Fn() -> DateTime<Utc>,
    samples: usize,
) -> Result<Option<ClockOffset>> {
    let mut got = Vec::with_capacity(samples);
    for _ in 0..samples {
        let sent = clock();
        let server = api.time().await?.now;
        let received = clock();
        got.push(TimeSample {
            sent,
            server,
            received,
        });
    }
    Ok(estimate_offset(&got))
}
