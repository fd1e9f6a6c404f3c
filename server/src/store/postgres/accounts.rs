//! Members, unions, sessions and devices on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use unionpass_core::api::{ChangeKind, MutationOutcome, PassportInfo, Profile, Role, Union};
use unionpass_core::Lang;

use super::{log_change, PgStore};
use crate::store::rules::{key_bytes, key_text, no_such_device};
use crate::store::{
    Accounts, DevicePassport, DeviceRow, MemberAuth, NewMember, NewSession, PasswordReset,
    SessionInfo, StoreError, Taken,
};

/// End every session of the member but `keep` (a token hash), revoking their devices, inside
/// the caller's transaction. Answers how many ended.
async fn end_sessions_in(
    tx: &impl GenericClient,
    member_id: i64,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    tx.execute(
        "UPDATE devices SET revoked_at = $3 WHERE revoked_at IS NULL AND id IN
           (SELECT device_id FROM sessions WHERE member_id = $1
              AND ($2::TEXT IS NULL OR token_hash <> $2))",
        &[&member_id, &keep, &now],
    )
    .await?;
    let n = tx
        .execute(
            "DELETE FROM sessions WHERE member_id = $1 AND ($2::TEXT IS NULL OR token_hash <> $2)",
            &[&member_id, &keep],
        )
        .await?;
    Ok(n as usize)
}

/// The reset code kept for the member with that number, if any; `lock`: its row locked until
/// the transaction ends.
async fn reset_of(
    c: &impl GenericClient,
    member_no: &str,
    lock: bool,
) -> Result<Option<PasswordReset>, StoreError> {
    let sql = "SELECT m.id, r.code_hash, r.expires_at, r.used_at, r.set_hash,
                      m.password_hash, m.suspended_at IS NOT NULL
                 FROM members m JOIN password_resets r ON r.member_id = m.id
                WHERE m.member_no = $1";
    let row = if lock {
        c.query_opt(&format!("{sql} FOR UPDATE OF r"), &[&member_no])
            .await?
    } else {
        c.query_opt(sql, &[&member_no]).await?
    };
    Ok(row.map(|r| PasswordReset {
        member_id: r.get(0),
        code_hash: r.get(1),
        expires_at: r.get(2),
        used_at: r.get(3),
        set_hash: r.get(4),
        password_hash: r.get(5),
        suspended: r.get(6),
    }))
}

/// The `set_language` mutation, inside the mutation's transaction.
pub(super) async fn set_language(
    tx: &impl GenericClient,
    member_id: i64,
    language: Lang,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    tx.execute(
        "UPDATE members SET language = $2 WHERE id = $1",
        &[&member_id, &language.tag()],
    )
    .await?;
    log_change(
        tx,
        Some(member_id),
        now,
        &ChangeKind::Preferences {
            language: Some(language),
        },
    )
    .await?;
    Ok(MutationOutcome::Applied)
}

/// The `revoke_device` mutation: only the member's own devices; their sessions end with it.
pub(super) async fn revoke_device(
    tx: &impl GenericClient,
    member_id: i64,
    device_id: i64,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let owned = tx
        .query_opt(
            "SELECT 1 FROM devices WHERE id = $1 AND member_id = $2",
            &[&device_id, &member_id],
        )
        .await?
        .is_some();
    if !owned {
        return Ok(no_such_device());
    }
    tx.execute(
        "UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&device_id, &now],
    )
    .await?;
    tx.execute("DELETE FROM sessions WHERE device_id = $1", &[&device_id])
        .await?;
    Ok(MutationOutcome::Applied)
}

/// The uploader's role and union (for the check-in rule).
pub(super) async fn role_and_union(
    tx: &impl GenericClient,
    member_id: i64,
) -> Result<(Role, i64), StoreError> {
    let r = tx
        .query_one(
            "SELECT role, union_id FROM members WHERE id = $1",
            &[&member_id],
        )
        .await?;
    Ok((Role::parse(r.get(0)).unwrap_or(Role::Member), r.get(1)))
}

#[async_trait]
impl Accounts for PgStore {
    async fn member_auth(&self, member_no: &str) -> Result<Option<MemberAuth>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT id, password_hash, suspended_at IS NOT NULL FROM members WHERE member_no = $1",
                &[&member_no],
            )
            .await?;
        Ok(row.map(|r| MemberAuth {
            member_id: r.get(0),
            password_hash: r.get(1),
            suspended: r.get(2),
        }))
    }

    async fn create_session(&self, s: NewSession) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let device_id: Option<i64> = match &s.device {
            Some(d) => {
                let kid = unionpass_core::passport::DeviceKid::of(&d.public_key).to_hex();
                let row = tx
                    .query_opt(
                        "INSERT INTO devices(member_id, name, public_key, device_kid, created_at)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (public_key) DO NOTHING RETURNING id",
                        &[&s.member_id, &d.name, &key_text(&d.public_key), &kid, &s.created_at],
                    )
                    .await?;
                let device_id: i64 = row.ok_or(StoreError::Duplicate(Taken::DeviceKey))?.get(0);
                // past the cap, the devices enrolled longest ago go, with their sessions (the
                // member's row locked, so two sign-ins at once count each other)
                tx.execute(
                    "SELECT 1 FROM members WHERE id = $1 FOR UPDATE",
                    &[&s.member_id],
                )
                .await?;
                let signed_in: Vec<i64> = tx
                    .query(
                        "SELECT id FROM devices WHERE member_id = $1 AND revoked_at IS NULL
                         ORDER BY id",
                        &[&s.member_id],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let gone = crate::store::rules::devices_over_cap(&signed_in);
                if !gone.is_empty() {
                    tx.execute(
                        "WITH gone AS (
                           UPDATE devices SET revoked_at = $2 WHERE id = ANY($1) RETURNING id)
                         DELETE FROM sessions WHERE device_id IN (SELECT id FROM gone)",
                        &[&gone, &s.created_at],
                    )
                    .await?;
                }
                Some(device_id)
            }
            None => None,
        };
        tx.execute(
            "INSERT INTO sessions(token_hash, member_id, device_name, created_at, expires_at, device_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&s.token_hash, &s.member_id, &s.device_name, &s.created_at, &s.expires_at, &device_id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_member(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &client
                    .prepare_cached(
                        "SELECT s.member_id, m.union_id, s.device_id, s.created_at, s.expires_at
                 FROM sessions s JOIN members m ON m.id = s.member_id
                 JOIN devices d ON d.id = s.device_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2
                   AND m.suspended_at IS NULL AND d.revoked_at IS NULL",
                    )
                    .await?,
                &[&token_hash, &now],
            )
            .await?;
        Ok(row.map(|r| SessionInfo {
            member_id: r.get(0),
            union_id: r.get(1),
            device_id: r.get(2),
            created_at: r.get(3),
            expires_at: r.get(4),
        }))
    }

    async fn live_sessions(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, SessionInfo)>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT s.token_hash, s.member_id, m.union_id, s.device_id, s.created_at, s.expires_at
                 FROM sessions s JOIN members m ON m.id = s.member_id
                 JOIN devices d ON d.id = s.device_id
                 WHERE s.expires_at > $1 AND m.suspended_at IS NULL AND d.revoked_at IS NULL
                 ORDER BY s.expires_at DESC LIMIT $2",
                &[&now, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    SessionInfo {
                        member_id: r.get(1),
                        union_id: r.get(2),
                        device_id: r.get(3),
                        created_at: r.get(4),
                        expires_at: r.get(5),
                    },
                )
            })
            .collect())
    }

    async fn renew_session(
        &self,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sessions SET expires_at = $2 WHERE token_hash = $1",
                &[&token_hash, &expires_at],
            )
            .await?;
        Ok(())
    }

    async fn end_sessions(
        &self,
        member_id: i64,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let n = end_sessions_in(&tx, member_id, keep, now).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn issue_password_reset(
        &self,
        member_no: &str,
        code_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "INSERT INTO password_resets(member_id, code_hash, issued_at, expires_at)
                 SELECT id, $2, $3, $4 FROM members WHERE member_no = $1
                 ON CONFLICT(member_id) DO UPDATE SET code_hash = excluded.code_hash,
                   issued_at = excluded.issued_at, expires_at = excluded.expires_at,
                   used_at = NULL, set_hash = NULL
                 RETURNING member_id",
                &[&member_no, &code_hash, &now, &expires_at],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn password_reset(&self, member_no: &str) -> Result<Option<PasswordReset>, StoreError> {
        let client = self.pool.get().await?;
        reset_of(&client, member_no, false).await
    }

    async fn use_password_reset(
        &self,
        member_no: &str,
        code_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // the row locked: a reset sent twice at once waits here, then finds the code used
        let Some(reset) = reset_of(&tx, member_no, true)
            .await?
            .filter(|r| r.usable_as(code_hash, now))
        else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE password_resets SET used_at = $2, set_hash = $3 WHERE member_id = $1",
            &[&reset.member_id, &now, &password_hash],
        )
        .await?;
        tx.execute(
            "UPDATE members SET password_hash = $2 WHERE id = $1",
            &[&reset.member_id, &password_hash],
        )
        .await?;
        let n = end_sessions_in(&tx, reset.member_id, None, now).await?;
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn set_password(&self, member_id: i64, password_hash: &str) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE members SET password_hash = $2 WHERE id = $1",
            &[&member_id, &password_hash],
        )
        .await?;
        tx.execute(
            "DELETE FROM password_resets WHERE member_id = $1",
            &[&member_id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE devices SET revoked_at = $2 WHERE revoked_at IS NULL
               AND id = (SELECT device_id FROM sessions WHERE token_hash = $1)",
            &[&token_hash, &now],
        )
        .await?;
        tx.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn profile(&self, member_id: i64) -> Result<Option<Profile>, StoreError> {
        profile_on(&self.pool.get().await?, member_id).await
    }

    async fn device_passport(&self, device_id: i64) -> Result<Option<DevicePassport>, StoreError> {
        device_passport_on(&self.pool.get().await?, device_id).await
    }

    async fn save_device_passport(
        &self,
        device_id: i64,
        p: &PassportInfo,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE devices SET credential = $2, kid = $3, valid_from = $4, valid_until = $5, issued_at = $6
                 WHERE id = $1",
                &[&device_id, &p.credential, &p.kid, &p.valid_from, &p.valid_until, &issued_at],
            )
            .await?;
        Ok(())
    }

    async fn devices(&self, member_id: i64) -> Result<Vec<DeviceRow>, StoreError> {
        devices_on(&self.pool.get().await?, member_id).await
    }

    async fn suspend_member(
        &self,
        member_no: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "UPDATE members SET suspended_at = coalesce(suspended_at, $2) WHERE member_no = $1 RETURNING id",
                &[&member_no, &now],
            )
            .await?;
        let Some(r) = row else { return Ok(false) };
        let id: i64 = r.get(0);
        tx.execute("DELETE FROM sessions WHERE member_id = $1", &[&id])
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ensure_union(&self, name: &str) -> Result<i64, StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO unions(name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                &[&name],
            )
            .await?;
        Ok(client
            .query_one("SELECT id FROM unions WHERE name = $1", &[&name])
            .await?
            .get(0))
    }

    async fn union_name(&self, id: i64) -> Result<Option<String>, StoreError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt("SELECT name FROM unions WHERE id = $1", &[&id])
            .await?
            .map(|r| r.get(0)))
    }

    async fn insert_member(&self, m: NewMember, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "INSERT INTO members(member_no, name, union_id, role, password_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (member_no) DO NOTHING RETURNING id",
                &[
                    &m.member_no,
                    &m.name,
                    &m.union_id,
                    &m.role.as_str(),
                    &m.password_hash,
                    &now,
                ],
            )
            .await?;
        row.map(|r| r.get(0))
            .ok_or(StoreError::Duplicate(Taken::Member(m.member_no)))
    }
}

/// Whether the session with token hash `hash` is still live for `member_id` at `now`: read inside
/// the transaction that grants something (a coupon, a seat) to a request judged from memory.
pub(super) async fn session_live(
    c: &impl GenericClient,
    hash: &str,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(c.query_one(
        &c.prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM sessions s JOIN members m ON m.id = s.member_id
                 JOIN devices d ON d.id = s.device_id
                 WHERE s.token_hash = $1 AND s.member_id = $2 AND s.expires_at > $3
                   AND m.suspended_at IS NULL AND d.revoked_at IS NULL)",
        )
        .await?,
        &[&hash, &member_id, &now],
    )
    .await?
    .get(0))
}

/// Reads one sync page makes (also through [`Accounts`]), on a connection the caller holds.
pub(super) async fn profile_on(
    c: &impl GenericClient,
    member_id: i64,
) -> Result<Option<Profile>, StoreError> {
    let row = c
        .query_opt(
            &c.prepare_cached(
                "SELECT m.member_no, m.name, m.role, m.language, u.id, u.name
                     FROM members m JOIN unions u ON u.id = m.union_id WHERE m.id = $1",
            )
            .await?,
            &[&member_id],
        )
        .await?;
    row.map(|r| profile_of(&r, member_id)).transpose()
}

/// A profile from columns 0–5 of `r` (member_no, name, role, language, union id, union name).
fn profile_of(r: &tokio_postgres::Row, member_id: i64) -> Result<Profile, StoreError> {
    let role: String = r.get(2);
    let language: Option<String> = r.get(3);
    Ok(Profile {
        member_id,
        member_no: r.get(0),
        name: r.get(1),
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        union: Union {
            id: r.get(4),
            name: r.get(5),
        },
        language: language.as_deref().and_then(Lang::from_tag),
    })
}

pub(super) async fn device_passport_on(
    c: &impl GenericClient,
    device_id: i64,
) -> Result<Option<DevicePassport>, StoreError> {
    let row = c
        .query_opt(
            &c.prepare_cached(
                "SELECT public_key, revoked_at IS NOT NULL, credential, kid, valid_from,
                       valid_until FROM devices WHERE id = $1",
            )
            .await?,
            &[&device_id],
        )
        .await?;
    row.map_or(Ok(None), |r| device_of(&r, 0))
}

/// A device from columns `at`..`at + 6` of `r` (public key, revoked, credential, kid, valid
/// from, valid until); `None` when the key is NULL (no such device, in an outer join).
fn device_of(r: &tokio_postgres::Row, at: usize) -> Result<Option<DevicePassport>, StoreError> {
    let Some(key) = r.get::<_, Option<String>>(at) else {
        return Ok(None);
    };
    let passport = match (r.get(at + 2), r.get(at + 3), r.get(at + 4), r.get(at + 5)) {
        (Some(credential), Some(kid), Some(valid_from), Some(valid_until)) => Some(PassportInfo {
            credential,
            kid,
            valid_from,
            valid_until,
        }),
        _ => None,
    };
    Ok(Some(DevicePassport {
        public_key: key_bytes(&key)?,
        revoked: r.get(at + 1),
        passport,
    }))
}

pub(super) async fn devices_on(
    c: &impl GenericClient,
    member_id: i64,
) -> Result<Vec<DeviceRow>, StoreError> {
    let rows = c
        .query(
            &c.prepare_cached(
                "SELECT id, name, device_kid, created_at FROM devices
                     WHERE member_id = $1 AND revoked_at IS NULL ORDER BY id",
            )
            .await?,
            &[&member_id],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeviceRow {
            id: r.get(0),
            name: r.get(1),
            device_kid: r.get(2),
            created_at: r.get(3),
        })
        .collect())
}

/// What a sync page needs of the member, in one statement: the profile, device `device_id`'s
/// credential and the member's live devices (oldest first). `None`s and no devices when the
/// member is gone.
pub(super) async fn member_page_on(
    c: &impl GenericClient,
    member_id: i64,
    device_id: i64,
) -> Result<(Option<Profile>, Option<DevicePassport>, Vec<DeviceRow>), StoreError> {
    let row = c
        .query_opt(
            &c.prepare_cached(
                "SELECT m.member_no, m.name, m.role, m.language, u.id, u.name,
                        d.public_key, d.revoked_at IS NOT NULL, d.credential, d.kid,
                        d.valid_from, d.valid_until,
                        l.ids, l.names, l.kids, l.created
                 FROM members m JOIN unions u ON u.id = m.union_id
                 LEFT JOIN devices d ON d.id = $2
                 CROSS JOIN LATERAL (
                   SELECT array_agg(id ORDER BY id) AS ids, array_agg(name ORDER BY id) AS names,
                          array_agg(device_kid ORDER BY id) AS kids,
                          array_agg(created_at ORDER BY id) AS created
                   FROM devices WHERE member_id = $1 AND revoked_at IS NULL) l
                 WHERE m.id = $1",
            )
            .await?,
            &[&member_id, &device_id],
        )
        .await?;
    let Some(r) = row else {
        return Ok((None, None, Vec::new()));
    };
    let (profile, device) = (profile_of(&r, member_id)?, device_of(&r, 6)?);
    let ids: Vec<i64> = r.get::<_, Option<Vec<i64>>>(12).unwrap_or_default();
    let names: Vec<String> = r.get::<_, Option<Vec<String>>>(13).unwrap_or_default();
    let kids: Vec<String> = r.get::<_, Option<Vec<String>>>(14).unwrap_or_default();
    let created: Vec<DateTime<Utc>> = r
        .get::<_, Option<Vec<DateTime<Utc>>>>(15)
        .unwrap_or_default();
    let devices = ids
        .into_iter()
        .zip(names)
        .zip(kids)
        .zip(created)
        .map(|(((id, name), device_kid), created_at)| DeviceRow {
            id,
            name,
            device_kid,
            created_at,
        })
        .collect();
    Ok((Some(profile), device, devices))
}
