//! The embedded SQLite backend: one writer connection in WAL mode (every write, and the group
//! commit of grabs and sign-ups in [`writer`]), read-only connections (sessions, profiles, sync pages), both used from
//! blocking tasks. One module per domain; each works on the connection or transaction it is given.

mod accounts;
mod activities;
mod events;
mod grab;
mod ops;
mod points;
mod sync;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use unionpass_core::api::ChangeKind;
use unionpass_core::campaign::Campaign;
use unionpass_sqlite::{migrate, Migration};
use uuid::Uuid;

use super::rules;
use super::StoreError;
pub use writer::MAX_GROUP;

/// The server's SQLite schema, `schema/NNNN_name.sql`. Append only.
pub const MIGRATIONS: &[Migration] = unionpass_sqlite::schema!(
    "src/store/sqlite/schema";
    "0001_foundation",
    "0002_campaigns",
    "0003_passport_v2_events",
    "0004_coupon_use",
    "0005_points",
    "0006_security",
    "0007_activities",
    "0008_feedback",
    "0009_polls",
    "0010_coupon_void",
    "0011_signups_by_activity",
    "0012_signup_state_check",
    "0013_event_title_en",
    "0014_event_place_en",
    "0015_checkin_staff",
    "0016_checkin_shown",
    "0017_password_resets",
);

pub(crate) use unionpass_sqlite::ts;

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

pub(crate) fn uuid_col(s: &str) -> Result<Uuid, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("uuid {s:?}: {e}")))
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializes")
}

/// Append a change to the log, for one member or (`None`) for everyone.
pub(crate) fn log_change(
    conn: &Connection,
    member_id: Option<i64>,
    at: DateTime<Utc>,
    change: &ChangeKind,
) -> Result<(), StoreError> {
    let (kind, data) = rules::change_text(change);
    conn.prepare_cached(
        "INSERT INTO change_log(member_id, at, kind, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![member_id, ts(at), kind, data])?;
    Ok(())
}

/// The campaign with id `id`, read inside whatever transaction `conn` is in.
pub(crate) fn load_campaign(conn: &Connection, id: i64) -> Result<Option<Campaign>, StoreError> {
    let row = conn
        .prepare_cached("SELECT body, stock, per_member_limit FROM campaigns WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    row.map(|(body, stock, limit)| {
        let mut c: Campaign = serde_json::from_str(&body)?;
        c.id = id;
        c.stock = stock;
        c.per_member_limit = limit;
        Ok(c)
    })
    .transpose()
}

/// How many read-only connections the server keeps (reads run side by side in WAL mode).
const READERS: usize = 4;

/// The read-only connections not in use, and a permit for each.
struct Readers {
    free: Mutex<Vec<Connection>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Readers {
    /// A free reader; call only while holding one of the permits (there is one per reader).
    fn lend(&self) -> Lent<'_> {
        Lent {
            conn: self.free.lock().unwrap_or_else(|p| p.into_inner()).pop(),
            readers: self,
        }
    }
}

/// A reader lent to one call; back in the pool when dropped (also if the call panics).
struct Lent<'a> {
    conn: Option<Connection>,
    readers: &'a Readers,
}

impl Lent<'_> {
    fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a free reader for every permit")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.readers
                .free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(c);
        }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    /// Every write goes through this connection (SQLite has one writer at a time).
    conn: Arc<Mutex<Connection>>,
    /// Reads (sessions, profiles, sync pages) use their own connections: in WAL mode they see
    /// the last commit without waiting for a write group that holds the writer, and run side
    /// by side.
    readers: Arc<Readers>,
    writer: Arc<writer::Writer>,
    /// The grab's campaign cache, sold-out memo and granted keys, shared by the writer and the
    /// grabs answered from memory.
    campaigns: Arc<Mutex<rules::CampaignCache>>,
    /// What this server remembers of its full activities.
    signup_memo: Arc<crate::store::memo::SignupMemo>,
}

impl SqliteStore {
    /// Open or create the database file and migrate it. A database from a newer server is
    /// refused before anything is written to it or beside it ([`unionpass_sqlite::open`]).
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = unionpass_sqlite::open(path, MIGRATIONS)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // the writer's statements (a grab's, a sign-up's, the savepoints', the change log's) all
        // stay prepared when grabs and sign-ups share a group; rusqlite keeps 16 by default
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, MIGRATIONS)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let read = Connection::open(path)?;
            read.busy_timeout(std::time::Duration::from_secs(5))?;
            read.pragma_update(None, "query_only", "ON")?;
            readers.push(read);
        }
        let conn = Arc::new(Mutex::new(conn));
        let campaigns = Arc::new(Mutex::new(rules::CampaignCache::default()));
        let signup_memo: Arc<crate::store::memo::SignupMemo> = Default::default();
        Ok(SqliteStore {
            writer: Arc::new(writer::Writer::start(
                conn.clone(),
                campaigns.clone(),
                signup_memo.clone(),
            )),
            campaigns,
            signup_memo,
            conn,
            readers: Arc::new(Readers {
                free: Mutex::new(readers),
                slots: Arc::new(tokio::sync::Semaphore::new(READERS)),
            }),
        })
    }

    /// Run `f` on the writer connection, off the async runtime.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        Self::on(self.conn.clone(), f).await
    }

    /// Like `with`, on a free read-only connection. A read waits for one in the runtime (a
    /// semaphore with a permit per connection), not as a blocked thread: under a burst of
    /// syncs, hundreds of threads parked on one lock cost more than the reads themselves.
    async fn with_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .readers
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the readers' semaphore is never closed");
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut lent = readers.lend();
            let out = f(lent.conn());
            drop(lent); // back in the pool before the permit goes
            drop(permit);
            out
        })
        .await?
    }

    /// A short read (a session, a sync page's rows) on the calling thread when a reader is
    /// free, else as [`Self::with_read`]. Under a burst of requests, handing each read to the
    /// blocking pool and back costs more than the read itself (two thread wake-ups each); a read
    /// in WAL mode does not wait for writers, so it holds the thread only for its own work.
    async fn read_now<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Ok(permit) = self.readers.slots.clone().try_acquire_owned() {
            let mut lent = self.readers.lend();
            let out = f(lent.conn());
            drop(lent);
            drop(permit);
            return out;
        }
        self.with_read(f).await
    }

    /// Like `with`, inside one `BEGIN IMMEDIATE` transaction committed when `f` succeeds.
    async fn in_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.in_tx_then(f, || {}).await
    }

    /// As [`Self::in_tx`], then `after` on the same thread once committed: it runs even if the
    /// caller went away meanwhile (the blocking task finishes regardless).
    async fn in_tx_then<T, F, A>(&self, f: F, after: A) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce() + Send + 'static,
    {
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            after();
            Ok(out)
        })
        .await
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
        .await?
    }
}

#[cfg(test)]
mod tests {
    /// Every file in `schema/` is a listed migration, in order; released ones are unchanged.
    #[test]
    fn the_schema_folder_is_the_migration_list_and_released_steps_are_pinned() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/sqlite/schema");
        let problems = unionpass_sqlite::schema_problems(
            &dir,
            super::MIGRATIONS,
            &crate::store::tests::SQLITE_PINNED,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }
}
