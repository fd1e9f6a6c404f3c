//! Members, unions, sessions and devices on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use unionpass_core::api::{ChangeKind, MutationOutcome, PassportInfo, Profile, Role, Union};
use unionpass_core::Lang;

use super::{log_change, parse_ts, ts, SqliteStore};
use crate::store::rules::{key_bytes, key_text, no_such_device};
use crate::store::{
    Accounts, DevicePassport, DeviceRow, MemberAuth, NewMember, NewSession, PasswordReset,
    SessionInfo, StoreError, Taken,
};

/// End every session of the member but `keep` (a token hash), revoking their devices, inside
/// the caller's transaction. Answers how many ended.
fn end_sessions_in(
    tx: &Connection,
    member_id: i64,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    tx.execute(
        "UPDATE devices SET revoked_at = ?3 WHERE revoked_at IS NULL AND id IN
           (SELECT device_id FROM sessions WHERE member_id = ?1
              AND (?2 IS NULL OR token_hash <> ?2))",
        params![member_id, keep, ts(now)],
    )?;
    Ok(tx.execute(
        "DELETE FROM sessions WHERE member_id = ?1 AND (?2 IS NULL OR token_hash <> ?2)",
        params![member_id, keep],
    )?)
}

/// The reset code kept for the member with that number, if any.
fn reset_of(c: &Connection, member_no: &str) -> Result<Option<PasswordReset>, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT m.id, r.code_hash, r.expires_at, r.used_at, r.set_hash,
                    m.password_hash, m.suspended_at IS NOT NULL
               FROM members m JOIN password_resets r ON r.member_id = m.id
              WHERE m.member_no = ?1",
        )?
        .query_row([member_no], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, bool>(6)?,
            ))
        })
        .optional()?;
    let Some((member_id, code_hash, expires_at, used_at, set_hash, password_hash, suspended)) = row
    else {
        return Ok(None);
    };
    Ok(Some(PasswordReset {
        member_id,
        code_hash,
        expires_at: parse_ts(&expires_at)?,
        used_at: used_at.as_deref().map(parse_ts).transpose()?,
        set_hash,
        password_hash,
        suspended,
    }))
}

/// The `set_language` mutation, inside the mutation's transaction.
pub(super) fn set_language(
    tx: &Connection,
    member_id: i64,
    language: Lang,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    tx.execute(
        "UPDATE members SET language = ?2 WHERE id = ?1",
        params![member_id, language.tag()],
    )?;
    log_change(
        tx,
        Some(member_id),
        now,
        &ChangeKind::Preferences {
            language: Some(language),
        },
    )?;
    Ok(MutationOutcome::Applied)
}

/// The `revoke_device` mutation: only the member's own devices; their sessions end with it.
pub(super) fn revoke_device(
    tx: &Connection,
    member_id: i64,
    device_id: i64,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let owned: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM devices WHERE id = ?1 AND member_id = ?2)",
        params![device_id, member_id],
        |r| r.get(0),
    )?;
    if !owned {
        return Ok(no_such_device());
    }
    tx.execute(
        "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![device_id, ts(now)],
    )?;
    tx.execute("DELETE FROM sessions WHERE device_id = ?1", [device_id])?;
    Ok(MutationOutcome::Applied)
}

/// The uploader's role and union (for the check-in rule).
pub(super) fn role_and_union(tx: &Connection, member_id: i64) -> Result<(Role, i64), StoreError> {
    let (role, union_id): (String, i64) = tx.query_row(
        "SELECT role, union_id FROM members WHERE id = ?1",
        [member_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((Role::parse(&role).unwrap_or(Role::Member), union_id))
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn member_auth(&self, member_no: &str) -> Result<Option<MemberAuth>, StoreError> {
        let member_no = member_no.to_string();
        self.with_read(move |c| {
            Ok(c
                .prepare_cached(
                    "SELECT id, password_hash, suspended_at IS NOT NULL FROM members WHERE member_no = ?1",
                )?
                .query_row([member_no], |r| {
                    Ok(MemberAuth {
                        member_id: r.get(0)?,
                        password_hash: r.get(1)?,
                        suspended: r.get(2)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn create_session(&self, s: NewSession) -> Result<(), StoreError> {
        self.in_tx(move |tx| {
            let device_id = match &s.device {
                Some(d) => {
                    let kid = unionpass_core::passport::DeviceKid::of(&d.public_key).to_hex();
                    let n = tx.execute(
                        "INSERT INTO devices(member_id, name, public_key, device_kid, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(public_key) DO NOTHING",
                        params![s.member_id, d.name, key_text(&d.public_key), kid, ts(s.created_at)],
                    )?;
                    if n == 0 {
                        return Err(StoreError::Duplicate(Taken::DeviceKey));
                    }
                    let device_id = tx.last_insert_rowid();
                    let signed_in = tx
                        .prepare_cached(
                            "SELECT id FROM devices WHERE member_id = ?1 AND revoked_at IS NULL
                             ORDER BY id",
                        )?
                        .query_map([s.member_id], |r| r.get::<_, i64>(0))?
                        .collect::<rusqlite::Result<Vec<i64>>>()?;
                    for gone in crate::store::rules::devices_over_cap(&signed_in) {
                        tx.execute(
                            "UPDATE devices SET revoked_at = ?2 WHERE id = ?1",
                            params![gone, ts(s.created_at)],
                        )?;
                        tx.execute("DELETE FROM sessions WHERE device_id = ?1", [gone])?;
                    }
                    Some(device_id)
                }
                None => None,
            };
            tx.execute(
                "INSERT INTO sessions(token_hash, member_id, device_name, created_at, expires_at, device_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.token_hash,
                    s.member_id,
                    s.device_name,
                    ts(s.created_at),
                    ts(s.expires_at),
                    device_id
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn session_member(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let token_hash = token_hash.to_string();
        self.read_now(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT s.member_id, m.union_id, s.device_id, s.created_at, s.expires_at
                     FROM sessions s JOIN members m ON m.id = s.member_id
                     JOIN devices d ON d.id = s.device_id
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2
                       AND m.suspended_at IS NULL AND d.revoked_at IS NULL",
                )?
                .query_row(params![token_hash, ts(now)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .optional()?;
            row.map(|(member_id, union_id, device_id, created, expires)| {
                Ok(SessionInfo {
                    member_id,
                    union_id,
                    device_id,
                    created_at: parse_ts(&created)?,
                    expires_at: parse_ts(&expires)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn live_sessions(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, SessionInfo)>, StoreError> {
        self.with_read(move |c| {
            let mut stmt = c.prepare(
                "SELECT s.token_hash, s.member_id, m.union_id, s.device_id, s.created_at, s.expires_at
                 FROM sessions s JOIN members m ON m.id = s.member_id
                 JOIN devices d ON d.id = s.device_id
                 WHERE s.expires_at > ?1 AND m.suspended_at IS NULL AND d.revoked_at IS NULL
                 ORDER BY s.expires_at DESC LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![ts(now), limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push((
                    r.get::<_, String>(0)?,
                    SessionInfo {
                        member_id: r.get(1)?,
                        union_id: r.get(2)?,
                        device_id: r.get(3)?,
                        created_at: parse_ts(&r.get::<_, String>(4)?)?,
                        expires_at: parse_ts(&r.get::<_, String>(5)?)?,
                    },
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn renew_session(
        &self,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE sessions SET expires_at = ?2 WHERE token_hash = ?1",
                params![token_hash, ts(expires_at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn end_sessions(
        &self,
        member_id: i64,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let keep = keep.map(str::to_string);
        self.in_tx(move |tx| end_sessions_in(tx, member_id, keep.as_deref(), now))
            .await
    }

    async fn issue_password_reset(
        &self,
        member_no: &str,
        code_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let (member_no, code_hash) = (member_no.to_string(), code_hash.to_string());
        self.in_tx(move |tx| {
            let Some(member_id) = tx
                .query_row(
                    "SELECT id FROM members WHERE member_no = ?1",
                    [&member_no],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
            else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO password_resets(member_id, code_hash, issued_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(member_id) DO UPDATE SET code_hash = excluded.code_hash,
                   issued_at = excluded.issued_at, expires_at = excluded.expires_at,
                   used_at = NULL, set_hash = NULL",
                params![member_id, code_hash, ts(now), ts(expires_at)],
            )?;
            Ok(Some(member_id))
        })
        .await
    }

    async fn password_reset(&self, member_no: &str) -> Result<Option<PasswordReset>, StoreError> {
        let member_no = member_no.to_string();
        self.with_read(move |c| reset_of(c, &member_no)).await
    }

    async fn use_password_reset(
        &self,
        member_no: &str,
        code_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let (member_no, code_hash, password_hash) = (
            member_no.to_string(),
            code_hash.to_string(),
            password_hash.to_string(),
        );
        // the writer's transaction: nothing changes the code between this read and the use
        self.in_tx(move |tx| {
            let Some(reset) = reset_of(tx, &member_no)?.filter(|r| r.usable_as(&code_hash, now))
            else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE password_resets SET used_at = ?2, set_hash = ?3 WHERE member_id = ?1",
                params![reset.member_id, ts(now), password_hash],
            )?;
            tx.execute(
                "UPDATE members SET password_hash = ?2 WHERE id = ?1",
                params![reset.member_id, password_hash],
            )?;
            end_sessions_in(tx, reset.member_id, None, now).map(Some)
        })
        .await
    }

    async fn set_password(&self, member_id: i64, password_hash: &str) -> Result<(), StoreError> {
        let hash = password_hash.to_string();
        self.in_tx(move |tx| {
            tx.execute(
                "UPDATE members SET password_hash = ?2 WHERE id = ?1",
                params![member_id, hash],
            )?;
            tx.execute(
                "DELETE FROM password_resets WHERE member_id = ?1",
                [member_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.in_tx(move |tx| {
            tx.execute(
                "UPDATE devices SET revoked_at = ?2 WHERE revoked_at IS NULL
                   AND id = (SELECT device_id FROM sessions WHERE token_hash = ?1)",
                params![token_hash, ts(now)],
            )?;
            tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
        .await
    }

    async fn profile(&self, member_id: i64) -> Result<Option<Profile>, StoreError> {
        self.with_read(move |c| profile_on(c, member_id)).await
    }

    async fn device_passport(&self, device_id: i64) -> Result<Option<DevicePassport>, StoreError> {
        self.with_read(move |c| device_passport_on(c, device_id))
            .await
    }

    async fn save_device_passport(
        &self,
        device_id: i64,
        p: &PassportInfo,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let p = p.clone();
        self.with(move |c| {
            c.execute(
                "UPDATE devices SET credential = ?2, kid = ?3, valid_from = ?4, valid_until = ?5, issued_at = ?6
                 WHERE id = ?1",
                params![device_id, p.credential, p.kid, ts(p.valid_from), ts(p.valid_until), ts(issued_at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn devices(&self, member_id: i64) -> Result<Vec<DeviceRow>, StoreError> {
        self.with_read(move |c| devices_on(c, member_id)).await
    }

    async fn suspend_member(
        &self,
        member_no: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let member_no = member_no.to_string();
        self.in_tx(move |tx| {
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM members WHERE member_no = ?1",
                    [&member_no],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else { return Ok(false) };
            tx.execute(
                "UPDATE members SET suspended_at = coalesce(suspended_at, ?2) WHERE id = ?1",
                params![id, ts(now)],
            )?;
            tx.execute("DELETE FROM sessions WHERE member_id = ?1", [id])?;
            Ok(true)
        })
        .await
    }

    async fn ensure_union(&self, name: &str) -> Result<i64, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO unions(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
                [&name],
            )?;
            Ok(
                c.query_row("SELECT id FROM unions WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn union_name(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.with_read(move |c| {
            Ok(
                c.query_row("SELECT name FROM unions WHERE id = ?1", [id], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn insert_member(&self, m: NewMember, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.with(move |c| {
            let n = c.execute(
                "INSERT INTO members(member_no, name, union_id, role, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(member_no) DO NOTHING",
                params![
                    m.member_no,
                    m.name,
                    m.union_id,
                    m.role.as_str(),
                    m.password_hash,
                    ts(now)
                ],
            )?;
            if n == 0 {
                return Err(StoreError::Duplicate(Taken::Member(m.member_no)));
            }
            Ok(c.last_insert_rowid())
        })
        .await
    }
}

/// Whether the session with token hash `hash` is still live for `member_id` at `now`: read inside
/// the transaction that grants something (a coupon, a seat) to a request judged from memory.
pub(super) fn session_live(
    conn: &Connection,
    hash: &str,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM sessions s JOIN members m ON m.id = s.member_id
             JOIN devices d ON d.id = s.device_id
             WHERE s.token_hash = ?1 AND s.member_id = ?2 AND s.expires_at > ?3
               AND m.suspended_at IS NULL AND d.revoked_at IS NULL)",
        )?
        .query_row(params![hash, member_id, ts(now)], |r| r.get(0))?)
}

/// The member's profile, read on `c`.
pub(super) fn profile_on(c: &Connection, member_id: i64) -> Result<Option<Profile>, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT m.member_no, m.name, m.role, m.language, u.id, u.name
                 FROM members m JOIN unions u ON u.id = m.union_id WHERE m.id = ?1",
        )?
        .query_row([member_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((member_no, name, role, language, union_id, union_name)) = row else {
        return Ok(None);
    };
    Ok(Some(Profile {
        member_id,
        member_no,
        name,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        union: Union {
            id: union_id,
            name: union_name,
        },
        language: language.as_deref().and_then(Lang::from_tag),
    }))
}

/// A device's key, revocation and credential, read on `c`.
pub(super) fn device_passport_on(
    c: &Connection,
    device_id: i64,
) -> Result<Option<DevicePassport>, StoreError> {
    type Row = (
        String,
        bool,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT public_key, revoked_at IS NOT NULL, credential, kid, valid_from, valid_until
                 FROM devices WHERE id = ?1",
        )?
        .query_row([device_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((key, revoked, credential, kid, from, until)) = row else {
        return Ok(None);
    };
    let passport = match (credential, kid, from, until) {
        (Some(credential), Some(kid), Some(from), Some(until)) => Some(PassportInfo {
            credential,
            kid,
            valid_from: parse_ts(&from)?,
            valid_until: parse_ts(&until)?,
        }),
        _ => None,
    };
    Ok(Some(DevicePassport {
        public_key: key_bytes(&key)?,
        revoked,
        passport,
    }))
}

/// The member's enrolled, unrevoked devices, read on `c`.
pub(super) fn devices_on(c: &Connection, member_id: i64) -> Result<Vec<DeviceRow>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, name, device_kid, created_at FROM devices
             WHERE member_id = ?1 AND revoked_at IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([member_id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, device_kid, created_at) = row?;
        out.push(DeviceRow {
            id,
            name,
            device_kid,
            created_at: parse_ts(&created_at)?,
        });
    }
    Ok(out)
}
