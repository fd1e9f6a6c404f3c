//! Grab reminders ("提醒我"), kept in the local store.
//!
//! The rules are `unionpass_core::reminder::plan`; this module only loads what it needs, and
//! writes its outcome back in one transaction: new states, moved due times, removed reminders of
//! cancelled campaigns, and a notice for everything the member must be told (missed, moved,
//! cancelled), kept until dismissed. The shell's scheduler calls [`Store::reminder_tick`] at
//! start, at each planned wake-up and after each sync.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use unionpass_core::campaign::Campaign;
use unionpass_core::reminder::{self, Action, CampaignTime, Plan, Reminder, ReminderState};
use unionpass_core::view::{NoticeKind, ReminderNotice};
use unionpass_core::ErrorCode;

use crate::error::{ClientError, Result};
use crate::store::{parse_ts, ts, Store};

fn state_text(s: &ReminderState) -> String {
    serde_json::to_string(s).expect("serializes")
}

fn read_reminder(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_reminder((campaign_id, lead, due, state): (i64, i64, String, String)) -> Result<Reminder> {
    Ok(Reminder {
        campaign_id,
        lead_minutes: lead,
        due_at: parse_ts(due)?,
        state: serde_json::from_str(&state)
            .map_err(|e| ClientError::BadResponse(format!("stored reminder state: {e}")))?,
    })
}

/// A campaign as last synced, with its times at the store's precision (milliseconds), so that a
/// stored due time compares equal to the one computed from the campaign again.
fn load_campaign(conn: &rusqlite::Connection, id: i64) -> Result<Option<Campaign>> {
    let body: Option<String> = conn
        .query_row("SELECT body FROM campaigns WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(mut c) = body.and_then(|b| serde_json::from_str::<Campaign>(&b).ok()) else {
        return Ok(None);
    };
    c.release_at = parse_ts(ts(c.release_at))?;
    c.end_at = parse_ts(ts(c.end_at))?;
    Ok(Some(c))
}

impl Store {
    /// Set (or change) the reminder for a campaign, due `lead_minutes` before its release.
    pub fn set_reminder(
        &self,
        campaign_id: i64,
        lead_minutes: i64,
        now: DateTime<Utc>,
    ) -> Result<Reminder> {
        if !reminder::LEADS.contains(&lead_minutes) {
            return Err(ClientError::InvalidInput("reminder lead"));
        }
        let c = load_campaign(&self.conn, campaign_id)?
            .filter(|c| c.cancelled_at.is_none())
            .ok_or(ClientError::Refused(ErrorCode::CampaignGone))?;
        let r = reminder::new_reminder(campaign_id, c.release_at, lead_minutes);
        if r.due_at <= now {
            return Err(ClientError::Refused(ErrorCode::ReminderTooLate));
        }
        self.conn.execute(
            "INSERT INTO reminders(campaign_id, lead_minutes, due_at, state, pending, set_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5)
             ON CONFLICT(campaign_id) DO UPDATE SET lead_minutes = excluded.lead_minutes,
               due_at = excluded.due_at, state = excluded.state, pending = 1,
               set_at = excluded.set_at",
            params![
                campaign_id,
                lead_minutes,
                ts(r.due_at),
                state_text(&r.state),
                ts(now)
            ],
        )?;
        Ok(r)
    }

    pub fn clear_reminder(&self, campaign_id: i64) -> Result<()> {
        self.conn.execute(
            "DELETE FROM reminders WHERE campaign_id = ?1",
            [campaign_id],
        )?;
        Ok(())
    }

    pub fn reminders(&self) -> Result<Vec<Reminder>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT campaign_id, lead_minutes, due_at, state FROM reminders ORDER BY due_at, campaign_id",
        )?;
        let rows = stmt.query_map([], read_reminder)?;
        rows.map(|r| to_reminder(r?)).collect()
    }

    /// One scheduler tick at `now`: the plan's actions to carry out (fire a notification), and
    /// when to tick next. Everything else is written here, in one transaction.
    pub fn reminder_tick(&mut self, now: DateTime<Utc>) -> Result<Plan> {
        let tx = self.conn.transaction()?;
        let stored: Vec<Reminder> = {
            let mut stmt = tx.prepare(
                "SELECT campaign_id, lead_minutes, due_at, state FROM reminders WHERE pending = 1",
            )?;
            let rows = stmt.query_map([], read_reminder)?;
            rows.map(|r| to_reminder(r?)).collect::<Result<_>>()?
        };
        let mut campaigns = std::collections::HashMap::new();
        for r in &stored {
            if let Some(c) = load_campaign(&tx, r.campaign_id)? {
                campaigns.insert(c.id, c);
            }
        }
        let plan = reminder::plan(
            &stored,
            |id| {
                campaigns.get(&id).map(|c| match c.cancelled_at {
                    Some(_) => CampaignTime::Cancelled,
                    None => CampaignTime::Release(c.release_at),
                })
            },
            now,
        );
        for (old, new) in stored.iter().zip(&plan.reminders) {
            if old == new {
                continue;
            }
            if new.state == ReminderState::Cancelled {
                tx.execute(
                    "DELETE FROM reminders WHERE campaign_id = ?1",
                    [new.campaign_id],
                )?;
            } else {
                tx.execute(
                    "UPDATE reminders SET due_at = ?2, state = ?3, pending = ?4
                     WHERE campaign_id = ?1",
                    params![
                        new.campaign_id,
                        ts(new.due_at),
                        state_text(&new.state),
                        new.state == ReminderState::Pending
                    ],
                )?;
            }
        }
        for action in &plan.actions {
            let (campaign_id, kind) = match *action {
                Action::Fire { .. } => continue,
                Action::Missed {
                    campaign_id,
                    due_at,
                } => {
                    let release_at = campaigns.get(&campaign_id).map_or(due_at, |c| c.release_at);
                    (campaign_id, NoticeKind::Missed { due_at, release_at })
                }
                Action::Moved {
                    campaign_id,
                    due_at,
                    ..
                } => {
                    let Some(c) = campaigns.get(&campaign_id) else {
                        continue;
                    };
                    let release_at = c.release_at;
                    // one notice per campaign: a later move replaces an undismissed one
                    tx.execute(
                        "DELETE FROM reminder_notices WHERE campaign_id = ?1 AND kind = 'moved'
                         AND dismissed = 0",
                        [campaign_id],
                    )?;
                    (campaign_id, NoticeKind::Moved { release_at, due_at })
                }
                Action::Cancelled { campaign_id } => (campaign_id, NoticeKind::Cancelled),
            };
            tx.execute(
                "INSERT INTO reminder_notices(campaign_id, kind, body, at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    campaign_id,
                    match kind {
                        NoticeKind::Missed { .. } => "missed",
                        NoticeKind::Moved { .. } => "moved",
                        NoticeKind::Cancelled => "cancelled",
                    },
                    serde_json::to_string(&kind).expect("serializes"),
                    ts(now)
                ],
            )?;
        }
        tx.commit()?;
        Ok(plan)
    }

    /// Notices not yet dismissed, oldest first, with the campaign's titles.
    pub fn notices(&self) -> Result<Vec<ReminderNotice>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT n.id, n.campaign_id, n.body, n.at, c.body FROM reminder_notices n
             LEFT JOIN campaigns c ON c.id = n.campaign_id
             WHERE n.dismissed = 0 ORDER BY n.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, campaign_id, body, at, campaign) = row?;
            let Ok(kind) = serde_json::from_str::<NoticeKind>(&body) else {
                continue;
            };
            let c = campaign.and_then(|b| serde_json::from_str::<Campaign>(&b).ok());
            out.push(ReminderNotice {
                id,
                campaign_id,
                title_zh: c.as_ref().map(|c| c.title_zh.clone()).unwrap_or_default(),
                title_en: c.map(|c| c.title_en).unwrap_or_default(),
                kind,
                at: parse_ts(at)?,
            });
        }
        Ok(out)
    }

    pub fn dismiss_notices(&self, ids: &[i64]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE reminder_notices SET dismissed = 1 WHERE id = ?1")?;
        for id in ids {
            stmt.execute([id])?;
        }
        Ok(())
    }

    /// A campaign as last synced (for the notification's words).
    pub fn campaign(&self, id: i64) -> Result<Option<Campaign>> {
        load_campaign(&self.conn, id)
    }
}
