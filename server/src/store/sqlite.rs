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
use super::{
    checkin_refusal, no_such_device, Audit, DevicePassport, DeviceRow, GrabJob, MemberAuth,
    NewMember, NewSession, ScannerData, SessionInfo, Store, StoreError, EVENT_GRACE,
};
use unionpass_core::campaign::{Campaign, GrabResponse};
use unionpass_core::checkin::{CheckIn, Conflict, Event, RevokedDevice};
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
    Migration {
        name: "0003_passport_v2_events",
        sql: "
        -- enrolled devices; each holds the level-1 credential issued to it (the 0001 passports
        -- table is no longer used)
        CREATE TABLE devices (
            id          INTEGER PRIMARY KEY,
            member_id   INTEGER NOT NULL REFERENCES members(id),
            name        TEXT NOT NULL,
            public_key  TEXT NOT NULL UNIQUE,
            device_kid  TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            revoked_at  TEXT,
            credential  TEXT,
            kid         TEXT,
            valid_from  TEXT,
            valid_until TEXT,
            issued_at   TEXT
        ) STRICT;
        CREATE INDEX devices_member ON devices(member_id);
        CREATE INDEX devices_revoked ON devices(revoked_at, valid_until);
        ALTER TABLE sessions ADD COLUMN device_id INTEGER REFERENCES devices(id);
        CREATE INDEX sessions_device ON sessions(device_id);
        ALTER TABLE members ADD COLUMN suspended_at TEXT;
        CREATE TABLE events (
            id         INTEGER PRIMARY KEY,
            title      TEXT NOT NULL,
            place      TEXT NOT NULL,
            starts_at  TEXT NOT NULL,
            ends_at    TEXT NOT NULL,
            capacity   INTEGER NOT NULL CHECK (capacity >= 0),
            union_id   INTEGER REFERENCES unions(id),
            created_at TEXT NOT NULL
        ) STRICT;
        -- the first check-in of a member at an event
        CREATE TABLE checkins (
            event_id    INTEGER NOT NULL REFERENCES events(id),
            member_id   INTEGER NOT NULL,
            member_no   TEXT NOT NULL,
            scanned_at  TEXT NOT NULL,
            scanner     TEXT NOT NULL,
            nonce       TEXT NOT NULL UNIQUE,
            received_at TEXT NOT NULL,
            PRIMARY KEY (event_id, member_id)
        ) STRICT;
        -- later check-ins of the same member at the same event, from another scan
        CREATE TABLE checkin_conflicts (
            id          INTEGER PRIMARY KEY,
            event_id    INTEGER NOT NULL REFERENCES events(id),
            member_id   INTEGER NOT NULL,
            member_no   TEXT NOT NULL,
            scanned_at  TEXT NOT NULL,
            scanner     TEXT NOT NULL,
            nonce       TEXT NOT NULL UNIQUE,
            received_at TEXT NOT NULL
        ) STRICT;
    ",
    },
    Migration {
        name: "0004_coupon_use",
        sql: "ALTER TABLE grants ADD COLUMN used_at TEXT;",
    },
    Migration {
        name: "0005_points",
        sql: super::sqlite_points::MIGRATION,
    },
];

pub(crate) use unionpass_sqlite::ts;

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
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
    id: Uuid,
    op: &MutationOp,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    match op {
        MutationOp::Redeem(req) => super::sqlite_points::redeem(tx, member_id, id, req, now),
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
        MutationOp::RevokeDevice { device_id } => {
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
        MutationOp::UseCoupon { coupon_id, used_at } => {
            use_coupon(tx, member_id, *coupon_id, *used_at, now)
        }
        MutationOp::CheckIn(c) => {
            let (role, union_id): (String, i64) = tx.query_row(
                "SELECT role, union_id FROM members WHERE id = ?1",
                [member_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let role = Role::parse(&role).unwrap_or(Role::Member);
            let event_union: Option<Option<i64>> = tx
                .query_row(
                    "SELECT union_id FROM events WHERE id = ?1",
                    [c.event_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(refused) = checkin_refusal((role, union_id), event_union) {
                return Ok(refused);
            }
            let row = params![
                c.event_id,
                c.member_id,
                c.member_no,
                ts(c.scanned_at),
                c.scanner.to_string(),
                c.nonce.to_string(),
                ts(now)
            ];
            let insert = |table: &str| {
                format!(
                    "INSERT INTO {table}(event_id, member_id, member_no, scanned_at, scanner, nonce, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
                )
            };
            let first = tx.execute(&insert("checkins"), row)?;
            // not the first check-in of this member here: a conflict, unless it is this very
            // scan delivered again under another mutation id
            if first == 0
                && !tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM checkins WHERE nonce = ?1)",
                    [c.nonce.to_string()],
                    |r| r.get::<_, bool>(0),
                )?
            {
                tx.execute(&insert("checkin_conflicts"), row)?;
            }
            if first == 1 {
                // the member's first check-in here earns the event's points
                let (points, known): (i64, bool) = tx.query_row(
                    "SELECT e.points, EXISTS(SELECT 1 FROM members WHERE id = ?2)
                     FROM events e WHERE e.id = ?1",
                    params![c.event_id, c.member_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                if let (Some(kind), true) = (
                    unionpass_core::points::activity_accrual(c.event_id, points, now),
                    known,
                ) {
                    super::sqlite_points::append(tx, c.member_id, kind, now)?;
                }
            }
            Ok(MutationOutcome::Applied)
        }
    }
}

fn use_coupon(
    tx: &rusqlite::Transaction<'_>,
    member_id: i64,
    coupon_id: i64,
    used_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let row: Option<(i64, Option<String>)> = tx
        .query_row(
            "SELECT campaign_id, used_at FROM grants WHERE id = ?1 AND member_id = ?2",
            params![coupon_id, member_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let validity = match &row {
        Some((campaign_id, _)) => {
            load_campaign(tx, *campaign_id)?.map(|c| (c.coupon_valid_from, c.coupon_valid_until))
        }
        None => None,
    };
    let at = used_at.min(now);
    if let Some(refused) = super::coupon_use_refusal(validity, at) {
        return Ok(refused);
    }
    if let Some((_, None)) = row {
        tx.execute(
            "UPDATE grants SET used_at = ?2 WHERE id = ?1",
            params![coupon_id, ts(at)],
        )?;
        tx.execute(
            "INSERT INTO change_log(member_id, at, kind, data) VALUES (?1, ?2, 'coupon_used', ?3)",
            params![
                member_id,
                ts(now),
                serde_json::json!({ "coupon_id": coupon_id, "used_at": at }).to_string()
            ],
        )?;
    }
    Ok(MutationOutcome::Applied)
}

fn uuid_col(s: String) -> Result<Uuid, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("uuid {s:?}: {e}")))
}

fn checkin_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<[String; 6]> {
    Ok([
        r.get::<_, i64>(0)?.to_string(),
        r.get::<_, i64>(1)?.to_string(),
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ])
}

fn checkin_of(row: [String; 6]) -> Result<CheckIn, StoreError> {
    let [event_id, member_id, member_no, scanned_at, scanner, nonce] = row;
    Ok(CheckIn {
        event_id: event_id
            .parse()
            .map_err(|_| StoreError::Corrupt(event_id))?,
        member_id: member_id
            .parse()
            .map_err(|_| StoreError::Corrupt(member_id))?,
        member_no,
        scanned_at: parse_ts(&scanned_at)?,
        scanner: uuid_col(scanner)?,
        nonce: uuid_col(nonce)?,
    })
}

/// An event row as read: id, title, place, starts_at, ends_at, capacity, union_id.
type EventRow = (i64, String, String, String, String, i64, Option<i64>, i64);

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn event_of(
    (id, title, place, starts_at, ends_at, capacity, union_id, points): EventRow,
) -> Result<Event, StoreError> {
    Ok(Event {
        id,
        title,
        place,
        starts_at: parse_ts(&starts_at)?,
        ends_at: parse_ts(&ends_at)?,
        capacity,
        union_id,
        points,
    })
}

const EVENT_COLS: &str = "id, title, place, starts_at, ends_at, capacity, union_id, points";

#[async_trait]
impl Store for SqliteStore {
    async fn member_auth(&self, member_no: &str) -> Result<Option<MemberAuth>, StoreError> {
        let member_no = member_no.to_string();
        self.with_read(move |c| {
            Ok(c.query_row(
                "SELECT id, password_hash, suspended_at IS NOT NULL FROM members WHERE member_no = ?1",
                [member_no],
                |r| {
                    Ok(MemberAuth {
                        member_id: r.get(0)?,
                        password_hash: r.get(1)?,
                        suspended: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn create_session(&self, s: NewSession) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let device_id = match &s.device {
                Some(d) => {
                    let key = super::key_text(&d.public_key);
                    let kid = unionpass_core::passport::DeviceKid::of(&d.public_key).to_hex();
                    let n = tx.execute(
                        "INSERT INTO devices(member_id, name, public_key, device_kid, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(public_key) DO NOTHING",
                        params![s.member_id, d.name, key, kid, ts(s.created_at)],
                    )?;
                    if n == 0 {
                        return Err(StoreError::Duplicate("device key".into()));
                    }
                    Some(tx.last_insert_rowid())
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
            tx.commit()?;
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
        self.with_read(move |c| {
            Ok(c.query_row(
                "SELECT member_id, device_id FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, ts(now)],
                |r| {
                    Ok(SessionInfo {
                        member_id: r.get(0)?,
                        device_id: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE devices SET revoked_at = ?2 WHERE revoked_at IS NULL
                   AND id = (SELECT device_id FROM sessions WHERE token_hash = ?1)",
                params![token_hash, ts(now)],
            )?;
            tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            tx.commit()?;
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

    async fn device_passport(&self, device_id: i64) -> Result<Option<DevicePassport>, StoreError> {
        self.with_read(move |c| {
            type Row = (String, bool, Option<String>, Option<String>, Option<String>, Option<String>);
            let row: Option<Row> = c
                .query_row(
                    "SELECT public_key, revoked_at IS NOT NULL, credential, kid, valid_from, valid_until
                     FROM devices WHERE id = ?1",
                    [device_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
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
            Ok(Some(DevicePassport { public_key: super::key_bytes(&key)?, revoked, passport }))
        })
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
        self.with_read(move |c| {
            let mut stmt = c.prepare(
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
        })
        .await
    }

    async fn suspend_member(
        &self,
        member_no: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let member_no = member_no.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn create_event(&self, e: Event, now: DateTime<Utc>) -> Result<Event, StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO events(title, place, starts_at, ends_at, capacity, union_id, created_at, points)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![e.title, e.place, ts(e.starts_at), ts(e.ends_at), e.capacity, e.union_id, ts(now), e.points],
            )?;
            Ok(Event { id: c.last_insert_rowid(), ..e })
        })
        .await
    }

    async fn events(&self) -> Result<Vec<Event>, StoreError> {
        self.with_read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events ORDER BY starts_at, id"
            ))?;
            let rows: Vec<_> = stmt
                .query_map([], event_row)?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter().map(event_of).collect()
        })
        .await
    }

    async fn scanner_data(
        &self,
        staff_member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<ScannerData, StoreError> {
        self.with_read(move |c| {
            let union_id: i64 =
                c.query_row("SELECT union_id FROM members WHERE id = ?1", [staff_member_id], |r| r.get(0))?;
            let mut stmt = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE ends_at > ?1 AND (union_id IS NULL OR union_id = ?2)
                 ORDER BY starts_at, id"
            ))?;
            let rows: Vec<_> = stmt
                .query_map(params![ts(now - EVENT_GRACE), union_id], event_row)?
                .collect::<rusqlite::Result<_>>()?;
            let events: Vec<Event> = rows.into_iter().map(event_of).collect::<Result<_, _>>()?;
            let mut data = ScannerData { events, ..Default::default() };
            let mut first = c.prepare(
                "SELECT event_id, member_id, member_no, scanned_at, scanner, nonce FROM checkins
                 WHERE event_id = ?1 ORDER BY scanned_at",
            )?;
            let mut later = c.prepare(
                "SELECT event_id, member_id, member_no, scanned_at, scanner, nonce FROM checkin_conflicts
                 WHERE event_id = ?1 ORDER BY id",
            )?;
            for e in &data.events {
                let rows: Vec<_> = first.query_map([e.id], checkin_row)?.collect::<rusqlite::Result<_>>()?;
                let firsts: Vec<CheckIn> = rows.into_iter().map(checkin_of).collect::<Result<_, _>>()?;
                let rows: Vec<_> = later.query_map([e.id], checkin_row)?.collect::<rusqlite::Result<_>>()?;
                for row in rows {
                    let second = checkin_of(row)?;
                    if let Some(f) = firsts.iter().find(|f| f.member_id == second.member_id) {
                        data.conflicts.push(Conflict { first: f.clone(), second });
                    }
                }
                data.checkins.extend(firsts);
            }
            let mut stmt = c.prepare(
                "SELECT device_kid, valid_until FROM devices
                 WHERE revoked_at IS NOT NULL AND valid_until > ?1 ORDER BY id",
            )?;
            let rows: Vec<(String, String)> = stmt
                .query_map([ts(now)], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (device_kid, until) in rows {
                data.revoked_devices.push(RevokedDevice { device_kid, until: parse_ts(&until)? });
            }
            data.revoked_members = c
                .prepare("SELECT id FROM members WHERE suspended_at IS NOT NULL ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(data)
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
            let outcome = apply_op(&tx, member_id, mutation.id, &mutation.op, now)?;
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

    async fn reschedule_campaign(
        &self,
        id: i64,
        change: unionpass_core::campaign::Reschedule,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let old = load_campaign(&tx, id)?.ok_or(StoreError::NoCampaign(id))?;
            let new = unionpass_core::campaign::reschedule(&old, change, now)?;
            // a cancelled campaign ends now: it leaves the stock-left list
            let end_at = new.cancelled_at.unwrap_or(new.end_at);
            tx.execute(
                "UPDATE campaigns SET body = ?2, release_at = ?3, end_at = ?4 WHERE id = ?1",
                params![
                    id,
                    serde_json::to_string(&new).expect("serializes"),
                    ts(new.release_at),
                    ts(end_at)
                ],
            )?;
            tx.execute(
                "INSERT INTO change_log(member_id, at, kind, data) VALUES (NULL, ?1, 'campaign', ?2)",
                params![ts(now), serde_json::to_string(&new).expect("serializes")],
            )?;
            tx.commit()?;
            Ok(new)
        })
        .await
    }

    async fn points_offer(&self) -> Result<unionpass_core::redeem::PointsOffer, StoreError> {
        self.with_read(|c| super::sqlite_points::offer(c)).await
    }

    async fn set_points_offer(
        &self,
        offer: unionpass_core::redeem::PointsOffer,
    ) -> Result<(), StoreError> {
        self.with(move |c| super::sqlite_points::set_offer(c, &offer))
            .await
    }

    async fn put_catalog_item(
        &self,
        item: unionpass_core::redeem::CatalogItem,
    ) -> Result<(), StoreError> {
        self.with(move |c| super::sqlite_points::put_item(c, &item))
            .await
    }

    async fn accrue_points(
        &self,
        member_id: i64,
        points: i64,
        expires_at: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<unionpass_core::points::Entry, StoreError> {
        let source = source.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let e = super::sqlite_points::append(
                &tx,
                member_id,
                unionpass_core::points::EntryKind::Accrual {
                    points,
                    expires_at,
                    source,
                },
                now,
            )?;
            tx.commit()?;
            Ok(e)
        })
        .await
    }

    async fn points_entries(
        &self,
        member_id: i64,
    ) -> Result<Vec<unionpass_core::points::Entry>, StoreError> {
        self.with_read(move |c| super::sqlite_points::entries(c, member_id))
            .await
    }

    async fn grant_reauth(
        &self,
        member_id: i64,
        id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(move |c| super::sqlite_points::grant_reauth(c, member_id, id, until))
            .await
    }

    async fn claim_redemptions(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<super::Claimed>, StoreError> {
        self.with(move |c| super::sqlite_points::claim(c, now, lease, limit))
            .await
    }

    async fn finish_redemption(
        &self,
        id: Uuid,
        how: super::Fulfilment,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done = super::sqlite_points::finish(&tx, id, &how, now)?;
            tx.commit()?;
            Ok(done)
        })
        .await
    }

    async fn record_expirations(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<usize, StoreError> {
        self.with(move |c| super::sqlite_points::record_expirations(c, now, limit))
            .await
    }

    async fn redemptions(
        &self,
        member_id: i64,
    ) -> Result<Vec<unionpass_core::redeem::Redemption>, StoreError> {
        self.with_read(move |c| super::sqlite_points::redemptions(c, member_id))
            .await
    }

    async fn stock_left(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<unionpass_core::api::StockLeft>, StoreError> {
        self.with_read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, stock - granted FROM campaigns WHERE end_at > ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([ts(now)], |r| {
                Ok(unionpass_core::api::StockLeft {
                    campaign_id: r.get(0)?,
                    left: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
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
