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

/// On PostgreSQL the references of sign-ups and changes are checked once per statement
/// (migration 0014, in place of three foreign keys that checked and locked row by row): a row
/// naming a member or an activity that does not exist is refused with a foreign key's SQLSTATE,
/// a written row's references never change, and members and activities are never deleted or
/// renumbered (which is what lets the check go without a lock). The group's id draw names the
/// identity's sequence, pinned here.
#[tokio::test]
async fn the_race_tables_references_hold_on_postgres() {
    use tokio_postgres::error::SqlState;
    let s = crate::util::TestServer::start_postgres().await;
    let c = connect(s.database_url().expect("postgres")).await;
    let one = |sql: &'static str| {
        let c = &c;
        async move {
            // as bigint whatever the column's type
            let sql = format!("SELECT ({sql})::bigint");
            c.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0)
        }
    };
    let (member, other) = (
        one("SELECT min(id) FROM members").await,
        one("SELECT max(id) FROM members").await,
    );
    // two activities, and an event that is not one (a sign-up names an activity, not an event)
    c.batch_execute(
        "WITH e AS (INSERT INTO events(title, place, starts_at, ends_at, capacity, created_at)
                    SELECT 't', 'p', now(), now(), 10, now() FROM generate_series(1, 3) RETURNING id)
         INSERT INTO activities(event_id, body, seats, waitlist, created_at)
         SELECT id, '{}', 10, 0, now() FROM e ORDER BY id LIMIT 2",
    )
    .await
    .unwrap();
    let (activity, second) = (
        one("SELECT min(event_id) FROM activities").await,
        one("SELECT max(event_id) FROM activities").await,
    );
    let no_member = one("SELECT max(id) + 1 FROM members").await;
    let no_activity = one("SELECT max(id) FROM events").await;
    assert!(activity < second && second < no_activity);
    let signups = one("SELECT count(*) FROM signups").await;
    let insert = "INSERT INTO signups(activity_id, member_id, companions, state, key, created_at, updated_at)
        SELECT a, m, 0, 'cancelled', gen_random_uuid(), now(), now()
        FROM unnest($1::bigint[], $2::bigint[]) AS x(a, m)";
    let code = |r: Result<u64, tokio_postgres::Error>| r.unwrap_err().code().cloned();
    let fk = Some(SqlState::FOREIGN_KEY_VIOLATION);

    // one bad row among good ones refuses the whole statement
    for (acts, members) in [
        (vec![activity, activity], vec![member, no_member]),
        (vec![activity, no_activity], vec![member, other]),
    ] {
        assert_eq!(code(c.execute(insert, &[&acts, &members]).await), fk);
    }
    assert_eq!(one("SELECT count(*) FROM signups").await, signups);
    let written = c
        .execute(insert, &[&vec![activity, activity], &vec![member, other]])
        .await
        .unwrap();
    assert_eq!(written, 2);

    let change = "INSERT INTO change_log(member_id, at, kind, data)
        SELECT m, now(), 'test', '{}' FROM unnest($1::bigint[]) AS x(m)";
    let nobody: Option<i64> = None;
    assert_eq!(
        c.execute(change, &[&vec![Some(member), nobody]])
            .await
            .unwrap(),
        2,
        "a change for everyone names no member"
    );
    assert_eq!(
        code(
            c.execute(change, &[&vec![Some(member), Some(no_member)]])
                .await
        ),
        fk
    );

    // written references stay, even pointed at rows that exist (which a foreign key allows);
    // other columns change as before
    for sql in [
        "UPDATE signups SET member_id = $1 WHERE state = 'cancelled' AND member_id = $2",
        "UPDATE signups SET activity_id = $1 WHERE state = 'cancelled' AND activity_id = $2",
        "UPDATE change_log SET member_id = $1 WHERE kind = 'test' AND member_id = $2",
    ] {
        let (to, from) = if sql.contains("activity_id") {
            (second, activity)
        } else {
            (other, member)
        };
        assert_eq!(code(c.execute(sql, &[&to, &from]).await), fk, "{sql}");
    }
    assert!(
        c.execute(
            "UPDATE signups SET updated_at = now() WHERE state = 'cancelled'",
            &[]
        )
        .await
        .unwrap()
            >= 2
    );

    // what is referenced is never deleted, truncated or renumbered
    let kept = Some(SqlState::RESTRICT_VIOLATION);
    for sql in [
        "DELETE FROM members WHERE id = (SELECT max(id) FROM members)",
        "UPDATE members SET id = id + 1000000 WHERE id = (SELECT max(id) FROM members)",
        "TRUNCATE members CASCADE",
        "DELETE FROM activities WHERE event_id = (SELECT max(event_id) FROM activities)",
        "UPDATE activities SET event_id = event_id + 1000000 WHERE event_id = (SELECT max(event_id) FROM activities)",
        "TRUNCATE activities CASCADE",
    ] {
        assert_eq!(code(c.execute(sql, &[]).await), kept, "{sql}");
    }

    let sequence: String = c
        .query_one("SELECT pg_get_serial_sequence('signups', 'id')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sequence, "public.signups_id_seq");
}

/// On PostgreSQL the change log's indexes on `seq` hold numbered rows only (migration 0016): a
/// change is written unnumbered and numbered later by the sequencer, and its unnumbered version
/// takes no entry in them. Numbers stay unique, and the reads that use these indexes still
/// choose them as generic plans (a cached prepared statement's): a member's sync page by
/// `change_log_member`, the sequencer's highest number by `change_log_seq`.
#[tokio::test]
async fn the_change_log_indexes_hold_numbered_rows_on_postgres() {
    let s = crate::util::TestServer::start_postgres().await;
    let c = connect(s.database_url().expect("postgres")).await;
    let partial: Vec<(String, String)> = c
        .query(
            "SELECT indexname, indexdef FROM pg_indexes
             WHERE tablename = 'change_log' AND indexdef LIKE '%seq)%' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names: Vec<&str> = partial.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["change_log_global", "change_log_member", "change_log_seq"]
    );
    for (name, def) in &partial[1..] {
        assert!(def.ends_with("WHERE (seq IS NOT NULL)"), "{name}: {def}");
    }
    assert!(partial[2].1.starts_with("CREATE UNIQUE INDEX"));

    // two numbers the same are refused (in a transaction the sequencer cannot see)
    let member: i64 = c
        .query_one("SELECT min(id) FROM members", &[])
        .await
        .unwrap()
        .get(0);
    c.batch_execute("BEGIN").await.unwrap();
    let ids: Vec<i64> = c
        .query(
            "INSERT INTO change_log(member_id, at, kind, data)
             SELECT $1, now(), 'test', '{}' FROM generate_series(1, 2) RETURNING id",
            &[&member],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let number = "UPDATE change_log SET seq = 9000000001 WHERE id = $1";
    c.execute(number, &[&ids[0]]).await.unwrap();
    let twice = c.execute(number, &[&ids[1]]).await.unwrap_err();
    assert_eq!(
        twice.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    c.batch_execute("ROLLBACK").await.unwrap();

    c.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    for (sql, index) in [
        (
            "PREPARE page(bigint, bigint, bigint) AS SELECT seq FROM change_log
               WHERE member_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;
             EXPLAIN EXECUTE page(1, 0, 100)",
            "change_log_member",
        ),
        (
            "PREPARE top AS SELECT coalesce(max(seq), 0) FROM change_log; EXPLAIN EXECUTE top",
            "change_log_seq",
        ),
    ] {
        let plan: String = c
            .simple_query(sql)
            .await
            .unwrap()
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(plan.contains(&format!(" using {index} ")), "{sql}:\n{plan}");
    }
}
