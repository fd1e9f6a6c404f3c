//! Append-only SQLite migrations, shared by the app's local store and the union server.
//!
//! A schema is a list of [`Migration`]s; `PRAGMA user_version` records how many are applied. On
//! open, the pending ones run inside one `BEGIN IMMEDIATE` transaction together with the version
//! bump, so a crash leaves either the old schema or the new one. A database whose version is
//! higher than the list is long was written by a newer binary: it is refused, never touched.
//!
//! "Never touched" includes finding out: [`open`] reads the version through a read-only
//! connection before any writable one exists, because closing a writable connection copies a
//! write-ahead log that a stopped newer binary left into the file, and setting the journal mode
//! writes the header. [`open_read_only`] is that connection, also for reading what an older
//! binary still can from a newer database.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// How instants are stored in SQLite text columns, by every store: RFC 3339 in UTC with
/// milliseconds, so that text order is time order.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One schema step. Never edit or remove a released step: append a new one.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
}

/// The migrations kept as `<crate>/<dir>/<name>.sql`, in order:
/// `schema!("src/schema"; "0001_foundation", "0002_more")`. (PostgreSQL schemas use it too.)
#[macro_export]
macro_rules! schema {
    ($dir:literal; $($name:literal),+ $(,)?) => {
        &[$($crate::Migration {
            name: $name,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $dir, "/", $name, ".sql")),
        }),+]
    };
}

/// What is wrong with a schema folder, for its tests: every `.sql` file in `dir` must be a listed
/// migration, in order, and nothing else; every released step (`pinned`: the SHA-256 of each
/// released step's text, in order) must be unchanged. Empty when all is well.
pub fn schema_problems(
    dir: &std::path::Path,
    migrations: &[Migration],
    pinned: &[&str],
) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut problems = Vec::new();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let listed: Vec<String> = migrations
        .iter()
        .map(|m| format!("{}.sql", m.name))
        .collect();
    if files != listed {
        problems.push(format!(
            "{} holds {files:?}, the list names {listed:?}",
            dir.display()
        ));
    }
    if migrations.len() < pinned.len() {
        problems.push("a released migration was removed".into());
    }
    for (m, want) in migrations.iter().zip(pinned) {
        let actual = format!("{:x}", Sha256::digest(m.sql.as_bytes()));
        if actual != *want {
            problems.push(format!(
                "migration {} changed after release (now {actual}); append a new one instead",
                m.name
            ));
        }
    }
    problems
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the database is at schema version {found}, newer than this program knows ({known}); update the program")]
    TooNew { found: u32, known: u32 },
    #[error("migration {name} failed: {source}")]
    Step {
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The schema version `conn` is at; a database `migrations` does not reach (a newer binary's)
/// is [`MigrateError::TooNew`].
pub fn version(conn: &Connection, migrations: &[Migration]) -> Result<u32, MigrateError> {
    let known = u32::try_from(migrations.len()).expect("fewer than 2^32 migrations");
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(MigrateError::TooNew { found, known });
    }
    Ok(found)
}

/// Open (creating if needed) the database at `path` for writing, after making sure no newer
/// binary wrote it, without writing to it or beside it to find out. The caller sets its
/// pragmas and calls [`migrate`]. The connection waits up to 5 s for a lock.
///
/// The version is read through [`open_read_only`] first. When that read fails (a rollback
/// journal left mid-write needs rolling back, which only a writer may do), the writable
/// connection reads it before it is handed back, so before the caller writes anything.
pub fn open(path: &Path, migrations: &[Migration]) -> Result<Connection, MigrateError> {
    if path.exists() {
        if let Ok(conn) = open_read_only(path) {
            if let Err(e @ MigrateError::TooNew { .. }) = version(&conn, migrations) {
                return Err(e);
            }
        }
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    version(&conn, migrations)?;
    Ok(conn)
}

/// Open the database at `path` to read only, whatever its schema: no migration, no pragma, and
/// SQLite itself refuses any write. When no log or journal waits beside it, the file is opened
/// immutable: no lock, nothing created beside it. A write-ahead log still holding writes is
/// read through SQLite's read-only path, which keeps its shared-memory index (`-wal`'s `-shm`)
/// beside it as any reader does; the file and its log are not written. A journal left
/// mid-write cannot be read without rolling it back, a write: that is an error. The connection
/// waits up to 5 s for a lock.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    // a file beside the database with something in it, or one that cannot be looked at
    let waiting = |suffix: &str| {
        let mut beside = path.as_os_str().to_owned();
        beside.push(suffix);
        match std::fs::metadata(&beside) {
            Ok(m) => m.len() > 0,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // `file:///C:/…` or `file:///home/…`; a Windows share (`\\server\share`) would need a URI
    // authority, which SQLite refuses: read it the usual read-only way
    let immutable = std::path::absolute(path)
        .ok()
        .and_then(|abs| url::Url::from_file_path(abs).ok())
        .filter(|uri| uri.host().is_none() && !waiting("-wal") && !waiting("-journal"));
    let conn = match immutable {
        Some(mut uri) => {
            uri.set_query(Some("immutable=1"));
            Connection::open_with_flags(uri.as_str(), flags | OpenFlags::SQLITE_OPEN_URI)?
        }
        None => Connection::open_with_flags(path, flags)?,
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Bring `conn` up to date with `migrations`. Returns the number of steps applied.
pub fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<usize, MigrateError> {
    migrate_with(conn, migrations, |_, _| Ok(()))
}

/// [`migrate`], and when steps were applied, `after(tx, found)` in the same transaction
/// (`found`: the version the database was at), so that what an upgrade implies beyond the schema
/// commits with it or not at all.
pub fn migrate_with(
    conn: &mut Connection,
    migrations: &[Migration],
    after: impl FnOnce(&rusqlite::Transaction, u32) -> rusqlite::Result<()>,
) -> Result<usize, MigrateError> {
    let known = u32::try_from(migrations.len()).expect("fewer than 2^32 migrations");
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx, migrations)?;
    let pending = &migrations[found as usize..];
    for m in pending {
        tx.execute_batch(m.sql)
            .map_err(|source| MigrateError::Step {
                name: m.name,
                source,
            })?;
    }
    if !pending.is_empty() {
        after(&tx, found)?;
        tx.pragma_update(None, "user_version", known)?;
    }
    tx.commit()?;
    Ok(pending.len())
}

/// For tests of a newer binary's database: run `sql` on the database at `path` (in WAL mode)
/// as a binary that then stopped without a checkpoint (killed, or a backup restored with its
/// log): the writes stay in the write-ahead log beside the file, as a crash leaves them.
pub fn stop_with_log_waiting(path: &Path, sql: &str) -> rusqlite::Result<()> {
    let newer = Connection::open(path)?;
    newer.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    newer.execute_batch(sql)?;
    Ok(())
}

/// For the same tests: the database at `path` and every file beside it (journal, log, the
/// log's shared-memory index), by name, with their bytes, to compare before and after.
pub fn files_beside(path: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        if file.starts_with(&name) {
            let bytes = std::fs::read(dir.join(&file))?;
            all.push((file, bytes));
        }
    }
    all.sort();
    Ok(all)
}

/// For upgrade tests: make `dst` (a new file) a database at schema version `version` of
/// `migrations`, as a binary that knew only the first `version` steps left it, holding what
/// `src` (a database at a later version) holds that fits: the rows of every table that existed
/// then, with the columns it had then. Returns the number of rows copied.
///
/// The rows are today's (JSON bodies in today's format, written by today's code); what is
/// tested is that every later step runs over real data and that today's code reads the result.
pub fn older_copy(
    src: &std::path::Path,
    dst: &std::path::Path,
    migrations: &[Migration],
    version: usize,
) -> Result<usize, rusqlite::Error> {
    let mut conn = Connection::open(dst)?;
    let tx = conn.transaction()?;
    for m in &migrations[..version] {
        tx.execute_batch(m.sql)?;
    }
    tx.pragma_update(None, "user_version", version as u32)?;
    tx.commit()?;
    // the rows arrive table by table, in name order, not in the order references need
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.execute(
        "ATTACH DATABASE ?1 AS src",
        [src.to_string_lossy().as_ref()],
    )?;
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let columns = |conn: &Connection, schema: &str, table: &str| -> rusqlite::Result<Vec<String>> {
        conn.prepare("SELECT name FROM pragma_table_info(?1, ?2) ORDER BY cid")?
            .query_map([table, schema], |r| r.get(0))?
            .collect()
    };
    let mut copied = 0;
    let tx = conn.transaction()?;
    for table in tables {
        let then = columns(&tx, "main", &table)?;
        let now = columns(&tx, "src", &table)?;
        let kept: Vec<String> = then
            .into_iter()
            .filter(|c| now.contains(c))
            .map(|c| format!("\"{c}\""))
            .collect();
        if kept.is_empty() {
            continue; // gone from the newer schema: nothing to bring
        }
        let cols = kept.join(", ");
        copied += tx.execute(
            &format!("INSERT INTO main.\"{table}\" ({cols}) SELECT {cols} FROM src.\"{table}\""),
            [],
        )?;
    }
    tx.commit()?;
    conn.execute("DETACH DATABASE src", [])?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &[Migration] = &[Migration {
        name: "t",
        sql: "CREATE TABLE t(a INTEGER);",
    }];
    const V2: &[Migration] = &[
        Migration {
            name: "t",
            sql: "CREATE TABLE t(a INTEGER);",
        },
        Migration {
            name: "u",
            sql: "CREATE TABLE u(b INTEGER);",
        },
    ];

    fn open(dir: &tempfile::TempDir) -> Connection {
        Connection::open(dir.path().join("db.sqlite")).unwrap()
    }

    #[test]
    fn applies_pending_steps_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(migrate(&mut open(&dir), V1).unwrap(), 1);
        assert_eq!(migrate(&mut open(&dir), V1).unwrap(), 0);
        assert_eq!(migrate(&mut open(&dir), V2).unwrap(), 1);
        let v: u32 = open(&dir)
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
    }

    #[test]
    fn newer_database_refuses_older_binary() {
        let dir = tempfile::tempdir().unwrap();
        migrate(&mut open(&dir), V2).unwrap();
        let err = migrate(&mut open(&dir), V1).unwrap_err();
        assert!(
            matches!(err, MigrateError::TooNew { found: 2, known: 1 }),
            "{err}"
        );
    }

    fn files(path: &Path) -> Vec<(String, Vec<u8>)> {
        files_beside(path).unwrap()
    }

    #[test]
    fn a_newer_database_is_refused_without_writing_it_or_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        // a newer binary's database in rollback-journal mode: setting WAL on it would write
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, V2).unwrap();
        drop(conn);
        let before = files(&path);
        assert_eq!(before.len(), 1, "nothing beside it: {before:?}");
        let err = super::open(&path, V1).expect_err("refused");
        assert!(
            matches!(err, MigrateError::TooNew { found: 2, known: 1 }),
            "{err}"
        );
        assert!(files(&path) == before, "written, or files made beside it");
        // a binary that knows as much opens it
        let conn = super::open(&path, V2).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        drop(conn);

        // the newer binary stopped with writes in its write-ahead log (killed, or a backup came
        // back with its log): closing without a checkpoint leaves the log as a crash does
        stop_with_log_waiting(&path, "INSERT INTO u VALUES (42)").unwrap();
        let before = files(&path);
        let log = |all: &[(String, Vec<u8>)]| {
            all.iter()
                .find(|(n, _)| n.ends_with("-wal"))
                .map(|(_, b)| b.clone())
        };
        assert!(log(&before).is_some_and(|l| !l.is_empty()), "a log waits");
        let err = super::open(&path, V1).expect_err("refused");
        assert!(matches!(err, MigrateError::TooNew { .. }), "{err}");
        let after = files(&path);
        // the reader keeps the log's shared-memory index beside it, as any reader does; the
        // database and its log are as the newer binary left them
        let kept = |all: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
            all.iter()
                .filter(|(n, _)| !n.ends_with("-shm"))
                .cloned()
                .collect()
        };
        assert!(
            kept(&after) == kept(&before),
            "the log was moved into the file"
        );

        // and what this binary can still read, it reads with the log's writes
        let read = open_read_only(&path).unwrap();
        let b: i64 = read.query_row("SELECT b FROM u", [], |r| r.get(0)).unwrap();
        assert_eq!(b, 42);
        assert!(read.execute("INSERT INTO u VALUES (1)", []).is_err());
        drop(read);
        assert!(kept(&files(&path)) == kept(&before), "written by reading");
    }

    #[test]
    fn a_database_with_nothing_waiting_is_read_immutable_with_nothing_made_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, V2).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        drop(conn); // the last connection checkpoints and removes the log
        let before = files(&path);
        assert_eq!(before.len(), 1, "{before:?}");
        let read = open_read_only(&path).unwrap();
        assert_eq!(version(&read, V2).unwrap(), 2);
        assert!(matches!(
            version(&read, V1),
            Err(MigrateError::TooNew { found: 2, known: 1 })
        ));
        drop(read);
        assert!(files(&path) == before, "{:?}", files(&path));
    }

    #[test]
    fn schema_problems_name_unlisted_files_reordered_lists_and_changed_steps() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.sql"), V2[0].sql).unwrap();
        std::fs::write(dir.path().join("u.sql"), V2[1].sql).unwrap();
        let pins: Vec<String> = V2
            .iter()
            .map(|m| format!("{:x}", Sha256::digest(m.sql.as_bytes())))
            .collect();
        let pinned: Vec<&str> = pins.iter().map(String::as_str).collect();
        assert!(schema_problems(dir.path(), V2, &pinned).is_empty());

        // a file the list does not name
        let problems = schema_problems(dir.path(), V1, &pinned[..1]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("u.sql"), "{problems:?}");
        // the list out of order
        let swapped = [V2[1], V2[0]];
        assert!(!schema_problems(dir.path(), &swapped, &[]).is_empty());
        // a released step edited
        let edited = [
            V2[0],
            Migration {
                name: "u",
                sql: "CREATE TABLE u(b INTEGER, c TEXT);",
            },
        ];
        let problems = schema_problems(dir.path(), &edited, &pinned);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("migration u changed"), "{problems:?}");
        // a released step removed
        let problems = schema_problems(dir.path(), V1, &pinned);
        assert!(
            problems.iter().any(|p| p.contains("removed")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_older_copy_has_the_old_schema_and_the_rows_that_fit_it() {
        let dir = tempfile::tempdir().unwrap();
        let steps = &[
            Migration {
                name: "t",
                sql: "CREATE TABLE t(a INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT NOT NULL);",
            },
            Migration {
                name: "c",
                sql: "ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT 'x'; CREATE TABLE u(d INTEGER);",
            },
        ];
        let src = dir.path().join("new.sqlite");
        let mut conn = Connection::open(&src).unwrap();
        migrate(&mut conn, steps).unwrap();
        conn.execute_batch(
            "INSERT INTO t(a, b, c) VALUES (7, 'kept', 'dropped'); INSERT INTO u VALUES (1);",
        )
        .unwrap();
        drop(conn);

        let old = dir.path().join("old.sqlite");
        assert_eq!(older_copy(&src, &old, steps, 1).unwrap(), 1);
        let mut conn = Connection::open(&old).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        // upgraded, the row is there with the later column's default, and ids go on after it
        assert_eq!(migrate(&mut conn, steps).unwrap(), 1);
        let row: (i64, String, String) = conn
            .query_row("SELECT a, b, c FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(row, (7, "kept".into(), "x".into()));
        conn.execute("INSERT INTO t(b) VALUES ('next')", [])
            .unwrap();
        assert_eq!(conn.last_insert_rowid(), 8);
        let u: i64 = conn
            .query_row("SELECT count(*) FROM u", [], |r| r.get(0))
            .unwrap();
        assert_eq!(u, 0, "a table the old schema lacked starts empty");
    }

    #[test]
    fn what_an_upgrade_implies_commits_with_it_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        migrate_with(&mut open(&dir), V1, |_, found| {
            seen.push(found);
            Ok(())
        })
        .unwrap();
        migrate_with(&mut open(&dir), V1, |_, found| {
            seen.push(found);
            Ok(())
        })
        .unwrap();
        migrate_with(&mut open(&dir), V2, |tx, found| {
            seen.push(found);
            tx.execute("INSERT INTO t VALUES (?1)", [found])?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![0, 1],
            "only when steps were applied, with the old version"
        );
        let a: u32 = open(&dir)
            .query_row("SELECT a FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(a, 1);
        // failing, it takes the steps with it
        let dir = tempfile::tempdir().unwrap();
        migrate(&mut open(&dir), V1).unwrap();
        assert!(migrate_with(&mut open(&dir), V2, |tx, _| {
            tx.execute("INSERT INTO nope VALUES (1)", []).map(|_| ())
        })
        .is_err());
        let v: u32 = open(&dir)
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
    }

    #[test]
    fn a_failing_step_rolls_back_everything() {
        let dir = tempfile::tempdir().unwrap();
        let bad = &[
            Migration {
                name: "t",
                sql: "CREATE TABLE t(a INTEGER);",
            },
            Migration {
                name: "broken",
                sql: "CREATE TABLE nope(",
            },
        ];
        assert!(matches!(
            migrate(&mut open(&dir), bad),
            Err(MigrateError::Step { name: "broken", .. })
        ));
        let conn = open(&dir);
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the first step was rolled back too");
    }
}
