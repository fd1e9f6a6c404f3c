//! The embedded SQLite backend: one connection in WAL mode, used from blocking tasks.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use unionpass_core::api::{
    Change, ChangeKind, Mutation, MutationOp, MutationOutcome, MutationResult, PassportInfo,
    Profile, Role, Union,
};
use unionpass_core::Lang;
use unionpass_sqlite::{migrate, Migration};

use super::sqlite_grab::GrabWriter;
use super::{Audit, GrabJob, MemberAuth, NewMember, NewSession, Store, StoreError};
use unionpass_core::campaign::{Campaign, GrabResponse};
use uuid::Uuid;

/// The server's SQLite schema. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_foundation",
        sql: "
        CREATE TABLE unions (
            id   INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        ) STRICT;
        CREATE TABLE members (
            id            INTEGER PRIMARY KEY,
            member_no     TEXT NOT NULL UNIQUE,
            name          TEXT NOT NULL,
            union_id      INTEGER NOT NULL REFERENCES unions(id),
            role          TEXT NOT NULL CHECK (role IN ('member', 'staff')),
            password_hash TEXT NOT NULL,
            language      TEXT,
            created_at    TEXT NOT NULL
        ) STRICT;
        CREATE TABLE sessions (
            token_hash  TEXT PRIMARY KEY,
            member_id   INTEGER NOT NULL REFERENCES members(id),
            device_name TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            expires_at  TEXT NOT NULL
        ) STRICT;
        CREATE INDEX sessions_member ON sessions(member_id);
        CREATE TABLE passports (
            member_id   INTEGER PRIMARY KEY REFERENCES members(id),
            credential  TEXT NOT NULL,
            kid         TEXT NOT NULL,
            valid_from  TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            issued_at   TEXT NOT NULL
        ) STRICT;
        -- what sync delivers; member_id NULL means every member sees it
        CREATE TABLE change_log (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,
            member_id INTEGER REFERENCES members(id),
            at        TEXT NOT NULL,
            kind      TEXT NOT NULL,
            data      TEXT NOT NULL
        ) STRICT;
        CREATE INDEX change_log_member ON change_log(member_id, seq);
        -- idempotency: the first result of every applied mutation id
        CREATE TABLE applied_mutations (
            id         TEXT PRIMARY KEY,
            member_id  INTEGER NOT NULL REFERENCES members(id),
            applied_at TEXT NOT NULL,
            result     TEXT NOT NULL
        ) STRICT;
    ",
    },
    Migration {
        name: "0002_campaigns",
        sql: "
        -- body: the campaign's descriptive fields as JSON; counters and limits are columns
        CREATE TABLE campaigns (
            id               INTEGER PRIMARY KEY,
            body             TEXT NOT NULL,
            stock            INTEGER NOT NULL CHECK (stock >= 0),
            granted          INTEGER NOT NULL DEFAULT 0,
            per_member_limit INTEGER NOT NULL CHECK (per_member_limit >= 1),
            release_at       TEXT NOT NULL,
            end_at           TEXT NOT NULL,
            created_at       TEXT NOT NULL,
            CHECK (granted <= stock)
        ) STRICT;
        -- one row per granted coupon; (campaign, member, n) unique is the last defence against
        -- a double grant, the CHECK on campaigns.granted the last defence against overselling
        CREATE TABLE grants (
            id          INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            member_id   INTEGER NOT NULL REFERENCES members(id),
            n           INTEGER NOT NULL CHECK (n >= 1),
            code        TEXT NOT NULL,
            granted_at  TEXT NOT NULL,
            grab_key    TEXT NOT NULL UNIQUE,
            UNIQUE (campaign_id, member_id, n)
        ) STRICT;
        -- the first answer to every grab key
        CREATE TABLE grab_keys (
            key         TEXT PRIMARY KEY,
            member_id   INTEGER NOT NULL,
            campaign_id INTEGER NOT NULL,
            response    TEXT NOT NULL,
            at          TEXT NOT NULL
        ) STRICT;
    ",
    },
];

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

#[derive(Clone)]
pub struct SqliteStore {
    /// Every write goes through this connection (SQLite has one writer at a time).
    conn: Arc<Mutex<Connection>>,
    /// Reads (sessions, profiles, sync pages) use their own connection: in WAL mode they see the
    /// last commit without waiting for a grab group that holds the writer.
    read: Arc<Mutex<Connection>>,
    writer: Arc<GrabWriter>,
}

/// The campaign with id `id`, read inside whatever transaction `conn` is in.
pub(crate) fn load_campaign(conn: &Connection, id: i64) -> Result<Option<Campaign>, StoreError> {
    let row = conn
        .query_row(
            "SELECT body, stock, per_member_limit FROM campaigns WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(body, stock, limit)| {
        let mut c: Campaign =
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        c.id = id;
        c.stock = stock;
        c.per_member_limit = limit;
        Ok(c)
    })
    .transpose()
}

impl SqliteStore {
    /// Open or create the database file and migrate it. A database from a newer server is refused.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn, MIGRATIONS)?;
        let read = Connection::open(path)?;
        read.busy_timeout(std::time::Duration::from_secs(5))?;
        read.pragma_update(None, "query_only", "ON")?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(SqliteStore {
            writer: Arc::new(GrabWriter::start(conn.clone())),
            conn,
            read: Arc::new(Mutex::new(read)),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        Self::on(self.conn.clone(), f).await
    }

    /// Like `with`, on the read-only connection.
    async fn with_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        Self::on(self.read.clone(), f).await
    }

    async fn on<T, F>(conn: Arc<Mutex<Connection>>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn change_kind_row(kind: &str, data: &str) -> ChangeKind {
    ChangeKind::from_parts(kind, serde_json::from_str(data).unwrap_or_default())
}

fn apply_op(
    tx: &rusqlite::Transaction<'_>,
    member_id: i64,
    op: &MutationOp,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    match op {
        MutationOp::SetLanguage { language } => {
            tx.execute(
                "UPDATE members SET language = ?2 WHERE id = ?1",
                params![member_id, language.tag()],
            )?;
            tx.execute(
                "INSERT INTO change_log(member_id, at, kind, data) VALUES (?1, ?2, 'preferences', ?3)",
                params![member_id, ts(now), serde_json::json!({ "language": language }).to_string()],
            )?;
            Ok(MutationOutcome::Applied)
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn member_auth(&self, member_no: &str) -> Result<Option<MemberAuth>, StoreError> {
        let member_no = member_no.to_string();
        self.with_read(move |c| {
            Ok(c.query_row(
                "SELECT id, password_hash FROM members WHERE member_no = ?1",
                [member_no],
                |r| {
                    Ok(MemberAuth {
                        member_id: r.get(0)?,
                        password_hash: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn create_session(&self, s: NewSession) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions(token_hash, member_id, device_name, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    s.token_hash,
                    s.member_id,
                    s.device_name,
                    ts(s.created_at),
                    ts(s.expires_at)
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
    ) -> Result<Option<i64>, StoreError> {
        let token_hash = token_hash.to_string();
        self.with_read(move |c| {
            Ok(c.query_row(
                "SELECT member_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, ts(now)],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
        .await
    }

    async fn profile(&self, member_id: i64) -> Result<Option<Profile>, StoreError> {
        self.with_read(move |c| {
            let row = c
                .query_row(
                    "SELECT m.member_no, m.name, m.role, m.language, u.id, u.name
                     FROM members m JOIN unions u ON u.id = m.union_id WHERE m.id = ?1",
                    [member_id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((member_no, name, role, language, union_id, union_name)) = row else {
                return Ok(None);
            };
            Ok(Some(Profile {
                member_id,
                member_no,
                name,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
                union: Union {
                    id: union_id,
                    name: union_name,
                },
                language: language.as_deref().and_then(Lang::from_tag),
            }))
        })
        .await
    }

    async fn passport(&self, member_id: i64) -> Result<Option<PassportInfo>, StoreError> {
        self.with_read(move |c| {
            let row = c
                .query_row(
                    "SELECT credential, kid, valid_from, valid_until FROM passports WHERE member_id = ?1",
                    [member_id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)),
                )
                .optional()?;
            row.map(|(credential, kid, from, until)| {
                Ok(PassportInfo { credential, kid, valid_from: parse_ts(&from)?, valid_until: parse_ts(&until)? })
            })
            .transpose()
        })
        .await
    }

    async fn save_passport(
        &self,
        member_id: i64,
        p: &PassportInfo,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let p = p.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO passports(member_id, credential, kid, valid_from, valid_until, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(member_id) DO UPDATE SET credential = excluded.credential, kid = excluded.kid,
                   valid_from = excluded.valid_from, valid_until = excluded.valid_until,
                   issued_at = excluded.issued_at",
                params![member_id, p.credential, p.kid, ts(p.valid_from), ts(p.valid_until), ts(issued_at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn changes_since(
        &self,
        member_id: i64,
        cursor: i64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.with_read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, kind, data FROM change_log
                 WHERE seq > ?2 AND (member_id = ?1 OR member_id IS NULL)
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![member_id, cursor, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, at, kind, data) = row?;
                out.push(Change {
                    seq,
                    at: parse_ts(&at)?,
                    kind: change_kind_row(&kind, &data),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn apply_mutation(
        &self,
        member_id: i64,
        mutation: &Mutation,
        now: DateTime<Utc>,
    ) -> Result<MutationResult, StoreError> {
        let mutation = mutation.clone();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = mutation.id.to_string();
            let earlier: Option<(i64, String)> = tx
                .query_row(
                    "SELECT member_id, result FROM applied_mutations WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((owner, result)) = earlier {
                let outcome = if owner == member_id {
                    serde_json::from_str(&result).map_err(|e| StoreError::Corrupt(e.to_string()))?
                } else {
                    // Another member's id: refuse without saying anything about it.
                    MutationOutcome::Rejected {
                        code: unionpass_core::ErrorCode::Forbidden,
                        message: "This change id is already used; create a new change.".into(),
                    }
                };
                return Ok(MutationResult { id: mutation.id, outcome, replayed: true });
            }
            let outcome = apply_op(&tx, member_id, &mutation.op, now)?;
            tx.execute(
                "INSERT INTO applied_mutations(id, member_id, applied_at, result) VALUES (?1, ?2, ?3, ?4)",
                params![id, member_id, ts(now), serde_json::to_string(&outcome).expect("outcome serializes")],
            )?;
            tx.commit()?;
            Ok(MutationResult { id: mutation.id, outcome, replayed: false })
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
                return Err(StoreError::Duplicate(format!("member {}", m.member_no)));
            }
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn create_campaign(
        &self,
        c: Campaign,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO campaigns(body, stock, per_member_limit, release_at, end_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    serde_json::to_string(&c).expect("serializes"),
                    c.stock,
                    c.per_member_limit,
                    ts(c.release_at),
                    ts(c.end_at),
                    ts(now)
                ],
            )?;
            let created = Campaign { id: tx.last_insert_rowid(), ..c };
            tx.execute(
                "INSERT INTO change_log(member_id, at, kind, data) VALUES (NULL, ?1, 'campaign', ?2)",
                params![ts(now), serde_json::to_string(&created).expect("serializes")],
            )?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        self.with_read(|conn| {
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM campaigns ORDER BY release_at, id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.into_iter()
                .filter_map(|id| load_campaign(conn, id).transpose())
                .collect()
        })
        .await
    }

    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError> {
        self.with_read(move |conn| load_campaign(conn, id)).await
    }

    async fn grab(&self, job: GrabJob) -> Result<GrabResponse, StoreError> {
        self.writer.grab(job).await
    }

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
            let answers: i64 =
                conn.query_row("SELECT count(*) FROM grab_keys WHERE campaign_id = ?1", [campaign_id], |r| r.get(0))?;
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

    async fn bench_members(&self, n: usize, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("INSERT INTO unions(name) VALUES ('压测工会') ON CONFLICT(name) DO NOTHING", [])?;
            let union_id: i64 = tx.query_row("SELECT id FROM unions WHERE name = '压测工会'", [], |r| r.get(0))?;
            let mut tokens = Vec::with_capacity(n);
            {
                let mut member = tx.prepare(
                    "INSERT INTO members(member_no, name, union_id, role, password_hash, created_at)
                     VALUES (?1, ?2, ?3, 'member', '!', ?4)",
                )?;
                let mut session = tx.prepare(
                    "INSERT INTO sessions(token_hash, member_id, device_name, created_at, expires_at)
                     VALUES (?1, ?2, 'bench', ?3, ?4)",
                )?;
                let expires = now + crate::auth::SESSION_TTL;
                for i in 0..n {
                    member.execute(params![format!("B{:07}", i + 1), format!("压测会员{}", i + 1), union_id, ts(now)])?;
                    let id = tx.last_insert_rowid();
                    let token = crate::auth::new_token();
                    session.execute(params![crate::auth::token_hash(&token), id, ts(now), ts(expires)])?;
                    tokens.push(token);
                }
            }
            tx.commit()?;
            Ok(tokens)
        })
        .await
    }
}
