//! Audits and bench seeding on PostgreSQL (the command line and the tests; no handler calls these).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgStore;
use crate::store::{Accounts, Audit, Ops, StoreError};

#[async_trait]
impl Ops for PgStore {
    async fn audit(&self, campaign_id: i64) -> Result<Audit, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT stock, per_member_limit FROM campaigns WHERE id = $1",
                &[&campaign_id],
            )
            .await?
            .ok_or(StoreError::NoCampaign(campaign_id))?;
        let (stock, limit): (i64, i64) = (row.get(0), row.get(1));
        let remaining: i64 = client
            .query_one(
                "SELECT (coalesce((SELECT sum(remaining) FROM campaign_stock WHERE campaign_id = $1), 0)
                   + coalesce((SELECT sum(remaining) FROM stock_leases WHERE campaign_id = $1), 0))::BIGINT",
                &[&campaign_id],
            )
            .await?
            .get(0);
        let r = client
            .query_one(
                "SELECT count(*), count(DISTINCT member_id) FROM grants WHERE campaign_id = $1",
                &[&campaign_id],
            )
            .await?;
        let (granted, members): (i64, i64) = (r.get(0), r.get(1));
        let double_grants: i64 = client
            .query_one(
                "SELECT coalesce(sum(c - $2), 0)::BIGINT FROM
                   (SELECT count(*) AS c FROM grants WHERE campaign_id = $1 GROUP BY member_id) t WHERE c > $2",
                &[&campaign_id, &limit],
            )
            .await?
            .get(0);
        let answers: i64 = client
            .query_one(
                "SELECT count(*) FROM grab_keys WHERE campaign_id = $1 AND response IS NOT NULL",
                &[&campaign_id],
            )
            .await?
            .get(0);
        Ok(Audit {
            campaign_id,
            stock,
            granted,
            counter: stock - remaining,
            members,
            oversold: (granted - stock).max(0),
            double_grants,
            answers,
        })
    }

    async fn missing_grants(&self, keys: Vec<Uuid>) -> Result<i64, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM unnest($1::UUID[]) AS k(key)
                 WHERE NOT EXISTS (SELECT 1 FROM grants g WHERE g.grab_key = k.key)",
                &[&keys],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn bench_members(&self, n: usize, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let union_id = self.ensure_union("压测工会").await?;
        let tokens: Vec<String> = (0..n).map(|_| crate::auth::new_token()).collect();
        let hashes: Vec<String> = tokens.iter().map(|t| crate::auth::token_hash(t)).collect();
        let client = self.pool.get().await?;
        // numbered after any bench members already there
        let base: i64 = client
            .query_one(
                "SELECT count(*) FROM members WHERE member_no LIKE 'B%'",
                &[],
            )
            .await?
            .get(0);
        let nos: Vec<String> = (0..n as i64)
            .map(|i| format!("B{:07}", base + i + 1))
            .collect();
        let names: Vec<String> = (0..n as i64)
            .map(|i| format!("压测会员{}", base + i + 1))
            .collect();
        // every session belongs to a device (random keys: bench members never sync)
        let keys: Vec<[u8; 32]> = (0..n).map(|_| rand::random()).collect();
        let key_texts: Vec<String> = keys.iter().map(crate::store::rules::key_text).collect();
        let kids: Vec<String> = keys
            .iter()
            .map(|k| unionpass_core::passport::DeviceKid::of(k).to_hex())
            .collect();
        let expires = now + crate::auth::SESSION_IDLE;
        client
            .execute(
                "WITH m AS (
                   INSERT INTO members(member_no, name, union_id, role, password_hash, created_at)
                   SELECT no, name, $3, 'member', '!', $4 FROM unnest($1::TEXT[], $2::TEXT[]) AS t(no, name)
                   RETURNING id, member_no),
                 d AS (
                   INSERT INTO devices(member_id, name, public_key, device_kid, created_at)
                   SELECT m.id, 'bench', k, kid, $4
                   FROM unnest($1::TEXT[], $7::TEXT[], $8::TEXT[]) AS t(no, k, kid)
                   JOIN m ON m.member_no = t.no
                   RETURNING id, member_id)
                 INSERT INTO sessions(token_hash, member_id, device_name, created_at, expires_at, device_id)
                 SELECT h, m.id, 'bench', $4, $5, d.id FROM unnest($1::TEXT[], $6::TEXT[]) AS t(no, h)
                 JOIN m ON m.member_no = t.no JOIN d ON d.member_id = m.id",
                &[&nos, &names, &union_id, &now, &expires, &hashes, &key_texts, &kids],
            )
            .await?;
        Ok(tokens)
    }

    async fn bench_unissued(&self, limit: i64) -> Result<Vec<(i64, i64, [u8; 32])>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, member_id, public_key FROM devices
                 WHERE credential IS NULL AND revoked_at IS NULL ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let key: String = r.get(2);
                Ok((r.get(0), r.get(1), crate::store::rules::key_bytes(&key)?))
            })
            .collect()
    }

    async fn bench_save_passports(
        &self,
        passports: Vec<(i64, unionpass_core::api::PassportInfo)>,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let ids: Vec<i64> = passports.iter().map(|(d, _)| *d).collect();
        let credentials: Vec<&str> = passports
            .iter()
            .map(|(_, p)| p.credential.as_str())
            .collect();
        let kids: Vec<&str> = passports.iter().map(|(_, p)| p.kid.as_str()).collect();
        let from: Vec<DateTime<Utc>> = passports.iter().map(|(_, p)| p.valid_from).collect();
        let until: Vec<DateTime<Utc>> = passports.iter().map(|(_, p)| p.valid_until).collect();
        tx.execute(
            "UPDATE devices d SET credential = v.credential, kid = v.kid, valid_from = v.valid_from,
               valid_until = v.valid_until, issued_at = $6
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TIMESTAMPTZ[], $5::TIMESTAMPTZ[])
               AS v(id, credential, kid, valid_from, valid_until)
             WHERE d.id = v.id",
            &[&ids, &credentials, &kids, &from, &until, &issued_at],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn bench_checkins(
        &self,
        event_id: i64,
        first_member: i64,
        n: usize,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let client = self.pool.get().await?;
        let done = client
            .execute(
                "INSERT INTO checkins(event_id, member_id, member_no, scanned_at, scanner, nonce,
                   received_at)
                 SELECT $1, g, 'B' || lpad(g::text, 7, '0'), $3, $4, gen_random_uuid(), $3
                 FROM generate_series($2::BIGINT, $2::BIGINT + $5::BIGINT - 1) AS g
                 ON CONFLICT DO NOTHING",
                &[&event_id, &first_member, &at, &Uuid::new_v4(), &(n as i64)],
            )
            .await?;
        Ok(done as usize)
    }

    async fn demo_checkin(
        &self,
        c: unionpass_core::checkin::CheckIn,
        staff_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use super::events::{first_checkin, insert_checkin};
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let shown = crate::store::rules::shown_of(&c);
        let first = insert_checkin(
            &tx,
            "checkins",
            &c,
            (c.member_id, &c.member_no),
            staff_id,
            shown.as_deref(),
            now,
        )
        .await?
            == 1;
        if first {
            first_checkin(&tx, staff_id, &c, c.member_id, now).await?;
        }
        tx.commit().await?;
        Ok(first)
    }

    async fn bench_history(
        &self,
        member_no: &str,
        coupons: usize,
        entries: usize,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        use crate::store::Campaigns;
        let c = self
            .create_campaign(crate::store::history_campaign(coupons, now), now)
            .await?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let member_id: i64 = tx
            .query_opt("SELECT id FROM members WHERE member_no = $1", &[&member_no])
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no member {member_no}")))?
            .get(0);
        let granted_at = c.release_at;
        for n in 1..=coupons as i64 {
            let code = crate::store::rules::usage_code(c.id);
            let id: i64 = tx
                .query_one(
                    "INSERT INTO grants(campaign_id, member_id, n, code, granted_at, grab_key)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&c.id, &member_id, &n, &code, &granted_at, &Uuid::new_v4()],
                )
                .await?
                .get(0);
            let coupon = crate::store::rules::coupon_of(&c, id, code, granted_at);
            super::log_change(
                &tx,
                Some(member_id),
                now,
                &unionpass_core::api::ChangeKind::CouponGranted(coupon),
            )
            .await?;
        }
        for _ in 0..entries {
            super::points::append(
                &tx,
                member_id,
                unionpass_core::points::EntryKind::Accrual {
                    points: 1,
                    expires_at: now + chrono::Duration::days(365),
                    source: "bench".into(),
                },
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(member_id)
    }

    async fn durability(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.pool.get().await?;
        let mut out = Vec::new();
        for setting in ["fsync", "synchronous_commit"] {
            let v: String = client
                .query_one(&format!("SHOW {setting}"), &[])
                .await?
                .get(0);
            out.push((setting.to_string(), v));
        }
        Ok(out)
    }

    fn signup_group_paths(&self) -> Option<crate::store::GroupPaths> {
        Some(self.signup_paths.read())
    }

    async fn sign_up_one_at_a_time(
        &self,
        jobs: Vec<crate::store::SignupJob>,
    ) -> Result<Vec<Result<unionpass_core::activity::SignupAnswer, StoreError>>, StoreError> {
        let mut client = self.pool.get().await?;
        let jobs: Vec<&crate::store::SignupJob> = jobs.iter().collect();
        super::activities::one_at_a_time(&mut client, &jobs).await
    }

    async fn audit_log(&self, limit: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query(
                "SELECT detail FROM audit_log ORDER BY id DESC LIMIT $1",
                &[&limit],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}
