//! What the store decides from a database error: retries by SQLSTATE, never by message text.

use std::time::Duration;

use unionpass_server::store::StoreError;
use unionpass_server::testing::PgTestDb;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// Two transactions lock two rows in opposite orders: PostgreSQL breaks the deadlock by failing
/// one of them (SQLSTATE 40P01); a concurrent update under REPEATABLE READ fails with 40001. Both
/// are retryable (the store runs such a transaction again, `rules::retrying`); a unique violation
/// is not.
#[tokio::test]
async fn deadlocks_and_serialization_failures_are_retryable_by_sqlstate_unique_violations_not() {
    let db = PgTestDb::create().await;
    let setup = connect(&db.url).await;
    setup
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v INT);
             INSERT INTO t VALUES (1, 0), (2, 0);",
        )
        .await
        .unwrap();
    let a = connect(&db.url).await;
    let b = connect(&db.url).await;
    a.batch_execute("BEGIN; UPDATE t SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE t SET v = 2 WHERE id = 2")
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(a.execute("UPDATE t SET v = 1 WHERE id = 2", &[]), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.execute("UPDATE t SET v = 2 WHERE id = 1", &[]).await
    });
    let failed: Vec<StoreError> = [ra, rb]
        .into_iter()
        .filter_map(|r| r.err())
        .map(StoreError::from)
        .collect();
    assert_eq!(failed.len(), 1, "PostgreSQL fails exactly one of them");
    assert!(failed[0].is_retryable(), "{failed:?}");
    a.batch_execute("ROLLBACK").await.unwrap();
    b.batch_execute("ROLLBACK").await.unwrap();

    // a concurrent update under REPEATABLE READ: a serialization failure (40001), retryable too
    a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT v FROM t WHERE id = 1")
        .await
        .unwrap();
    setup
        .execute("UPDATE t SET v = 5 WHERE id = 1", &[])
        .await
        .unwrap();
    let lost = a
        .execute("UPDATE t SET v = 6 WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(
        lost.code(),
        Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE)
    );
    assert!(StoreError::from(lost).is_retryable());
    a.batch_execute("ROLLBACK").await.unwrap();

    let dup = setup
        .execute("INSERT INTO t VALUES (1, 9)", &[])
        .await
        .unwrap_err();
    assert!(!StoreError::from(dup).is_retryable());
    drop((a, b, setup));
}

/// The promise "answered only once durable" rests on these settings of the live connection: a
/// commit that returns is on disk (SQLite: WAL with `synchronous = FULL`, 2; PostgreSQL: `fsync`
/// and `synchronous_commit` on). A change of them anywhere (a pragma dropped, a connection string
/// that turns commits asynchronous) fails here.
async fn acknowledgements_rest_on_durable_commits(s: crate::util::TestServer) {
    let got = s.store.durability().await.unwrap();
    let want: Vec<(String, String)> = match s.database_url() {
        None => vec![
            ("journal_mode".into(), "wal".into()),
            ("synchronous".into(), "2".into()),
        ],
        Some(_) => vec![
            ("fsync".into(), "on".into()),
            ("synchronous_commit".into(), "on".into()),
        ],
    };
    assert_eq!(got, want);
}

on_every_backend!(acknowledgements_rest_on_durable_commits);
