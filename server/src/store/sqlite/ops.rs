//! Audits and bench seeding on SQLite (the command line and the tests; no handler calls these).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::{ts, SqliteStore};
use crate::store::{Audit, Ops, StoreError};

#[async_trait]
impl Ops for SqliteStore {
    async fn audit(&self, campaign_id: i64) -> Result<Audit, StoreError> {
        self.with_read(move |conn| {
            let (stock, counter, limit): (i64, i64, i64) = conn
                .query_row(
                    "SELECT stock, granted, per_member_limit FROM campaigns WHERE id = ?1",
                    [campaign_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?
                .ok_or(StoreError::NoCampaign(campaign_id))?;
            let (granted, members): (i64, i64) = conn.query_row(
                "SELECT count(*), count(DISTINCT member_id) FROM grants WHERE campaign_id = ?1",
                [campaign_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let double_grants: i64 = conn.query_row(
                "SELECT coalesce(sum(c - ?2), 0) FROM
                   (SELECT count(*) AS c FROM grants WHERE campaign_id = ?1 GROUP BY member_id) WHERE c > ?2",
                params![campaign_id, limit],
                |r| r.get(0),
            )?;
            let answers: i64 = conn.query_row(
                "SELECT count(*) FROM grab_keys WHERE campaign_id = ?1",
                [campaign_id],
                |r| r.get(0),
            )?;
            Ok(Audit {
                campaign_id,
                stock,
                granted,
                counter,
                members,
                oversold: (granted - stock).max(0),
                double_grants,
                answers,
            })
        })
        .await
    }

    async fn missing_grants(&self, keys: Vec<Uuid>) -> Result<i64, StoreError> {
        self.with_read(move |conn| {
            let mut stmt =
                conn.prepare("SELECT EXISTS(SELECT 1 FROM grants WHERE grab_key = ?1)")?;
            let mut missing = 0;
            for k in keys {
                if !stmt.query_row([k.to_string()], |r| r.get::<_, bool>(0))? {
                    missing += 1;
                }
            }
            Ok(missing)
        })
        .await
    }

    async fn bench_unissued(&self, limit: i64) -> Result<Vec<(i64, i64, [u8; 32])>, StoreError> {
        self.with_read(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, member_id, public_key FROM devices
                 WHERE credential IS NULL AND revoked_at IS NULL ORDER BY id LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (device, member, key) = row?;
                out.push((device, member, crate::store::rules::key_bytes(&key)?));
            }
            Ok(out)
        })
        .await
    }

    async fn bench_save_passports(
        &self,
        passports: Vec<(i64, unionpass_core::api::PassportInfo)>,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.in_tx(move |tx| {
            let mut put = tx.prepare(
                "UPDATE devices SET credential = ?2, kid = ?3, valid_from = ?4, valid_until = ?5,
                   issued_at = ?6 WHERE id = ?1",
            )?;
            for (device, p) in &passports {
                put.execute(params![
                    device,
                    p.credential,
                    p.kid,
                    ts(p.valid_from),
                    ts(p.valid_until),
                    ts(issued_at)
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn bench_members(&self, n: usize, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.in_tx(move |tx| {
            tx.execute(
                "INSERT INTO unions(name) VALUES ('压测工会') ON CONFLICT(name) DO NOTHING",
                [],
            )?;
            let union_id: i64 = tx.query_row(
                "SELECT id FROM unions WHERE name = '压测工会'",
                [],
                |r| r.get(0),
            )?;
            // numbered after any bench members already there
            let base: i64 = tx.query_row(
                "SELECT count(*) FROM members WHERE member_no LIKE 'B%'",
                [],
                |r| r.get(0),
            )?;
            let mut tokens = Vec::with_capacity(n);
            let mut member = tx.prepare(
                "INSERT INTO members(member_no, name, union_id, role, password_hash, created_at)
                 VALUES (?1, ?2, ?3, 'member', '!', ?4)",
            )?;
            // every session belongs to a device (random keys: bench members never sync)
            let mut device = tx.prepare(
                "INSERT INTO devices(member_id, name, public_key, device_kid, created_at)
                 VALUES (?1, 'bench', ?2, ?3, ?4)",
            )?;
            let mut session = tx.prepare(
                "INSERT INTO sessions(token_hash, member_id, device_name, created_at, expires_at, device_id)
                 VALUES (?1, ?2, 'bench', ?3, ?4, ?5)",
            )?;
            let expires = now + crate::auth::SESSION_IDLE;
            for i in 0..n as i64 {
                let no = base + i + 1;
                member.execute(params![
                    format!("B{no:07}"),
                    format!("压测会员{no}"),
                    union_id,
                    ts(now)
                ])?;
                let id = tx.last_insert_rowid();
                let key: [u8; 32] = rand::random();
                device.execute(params![
                    id,
                    crate::store::rules::key_text(&key),
                    unionpass_core::passport::DeviceKid::of(&key).to_hex(),
                    ts(now)
                ])?;
                let device_id = tx.last_insert_rowid();
                let token = crate::auth::new_token();
                session.execute(params![
                    crate::auth::token_hash(&token),
                    id,
                    ts(now),
                    ts(expires),
                    device_id
                ])?;
                tokens.push(token);
            }
            Ok(tokens)
        })
        .await
    }

    async fn bench_checkins(
        &self,
        event_id: i64,
        first_member: i64,
        n: usize,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.in_tx(move |tx| {
            let mut put = tx.prepare(
                "INSERT OR IGNORE INTO checkins(event_id, member_id, member_no, scanned_at, scanner,
                   nonce, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4)",
            )?;
            let scanner = Uuid::new_v4().to_string();
            let mut done = 0;
            for m in first_member..first_member + n as i64 {
                done += put.execute(params![
                    event_id,
                    m,
                    format!("B{m:07}"),
                    ts(at),
                    scanner,
                    Uuid::new_v4().to_string()
                ])?;
            }
            Ok(done)
        })
        .await
    }

    async fn demo_checkin(
        &self,
        c: unionpass_core::checkin::CheckIn,
        staff_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use super::events::{first_checkin, insert_checkin};
        self.in_tx(move |tx| {
            let shown = crate::store::rules::shown_of(&c);
            let first = insert_checkin(
                tx,
                "checkins",
                &c,
                (c.member_id, &c.member_no),
                staff_id,
                shown.as_deref(),
                now,
            )? == 1;
            if first {
                first_checkin(tx, staff_id, &c, c.member_id, now)?;
            }
            Ok(first)
        })
        .await
    }

    async fn bench_history(
        &self,
        member_no: &str,
        coupons: usize,
        entries: usize,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        use crate::store::Campaigns;
        let member_no = member_no.to_string();
        let c = self
            .create_campaign(crate::store::history_campaign(coupons, now), now)
            .await?;
        self.in_tx(move |tx| {
            let member_id: i64 = tx
                .query_row(
                    "SELECT id FROM members WHERE member_no = ?1",
                    [&member_no],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| StoreError::Corrupt(format!("no member {member_no}")))?;
            let granted_at = c.release_at;
            for n in 1..=coupons as i64 {
                let code = crate::store::rules::usage_code(c.id);
                tx.execute(
                    "INSERT INTO grants(campaign_id, member_id, n, code, granted_at, grab_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        c.id,
                        member_id,
                        n,
                        code,
                        ts(granted_at),
                        Uuid::new_v4().to_string()
                    ],
                )?;
                let coupon =
                    crate::store::rules::coupon_of(&c, tx.last_insert_rowid(), code, granted_at);
                super::log_change(
                    tx,
                    Some(member_id),
                    now,
                    &unionpass_core::api::ChangeKind::CouponGranted(coupon),
                )?;
            }
            tx.execute(
                "UPDATE campaigns SET granted = ?2 WHERE id = ?1",
                params![c.id, coupons as i64],
            )?;
            for _ in 0..entries {
                super::points::append(
                    tx,
                    member_id,
                    unionpass_core::points::EntryKind::Accrual {
                        points: 1,
                        expires_at: now + chrono::Duration::days(365),
                        source: "bench".into(),
                    },
                    now,
                )?;
            }
            Ok(member_id)
        })
        .await
    }

    async fn durability(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut out = Vec::new();
            for setting in ["journal_mode", "synchronous"] {
                let v: rusqlite::types::Value =
                    c.query_row(&format!("PRAGMA {setting}"), [], |r| r.get(0))?;
                let v = match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                };
                out.push((setting.to_string(), v));
            }
            Ok(out)
        })
        .await
    }

    async fn audit_log(&self, limit: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        self.with_read(move |c| {
            let mut stmt = c.prepare("SELECT detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
            let rows = stmt.query_map([limit], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(serde_json::from_str(&r?)?);
            }
            Ok(out)
        })
        .await
    }
}
