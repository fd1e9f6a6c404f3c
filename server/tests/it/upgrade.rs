//! Upgrades with data: a server that finds a database written by an older release, at every
//! earlier schema version and with data in it, migrates it and goes on serving the same members.
//!
//! The older databases are made from a live one (`older_copy`: the first N migrations, then the
//! rows that fit them), so each new migration is tested against every older schema without a
//! fixture to keep. A member signed in, grabbed and checked in, earned points and signed up for
//! an activity; after the upgrade each of these must still hold and still work, as far as the
//! older version already had it.

use std::sync::Arc;

use serde_json::json;
use unionpass_core::api::{MutationOutcome, SyncResponse};
use unionpass_core::campaign::GrabOutcome;
use unionpass_core::checkin::ScannerBundle;
use unionpass_server::store::Ops;
use unionpass_server::testing::PgTestDb;
use uuid::Uuid;

use crate::util::{check_in, push, t0, Holder, TestServer};

/// What the members had and did before the upgrade, and what the server answered then.
struct Before {
    member: Holder,
    staff: String,
    campaign: i64,
    coupon_id: i64,
    check_in: serde_json::Value,
    event: i64,
    activity: i64,
    signup_key: Uuid,
    signup_at: chrono::DateTime<chrono::Utc>,
    changes: serde_json::Value,
    points: serde_json::Value,
    granted: i64,
}

async fn live_server_with_data(s: &TestServer) -> Before {
    let member = Holder::of(s, "M10001").await;
    let staff = s.login("S20001").await;
    // a check-in at today's event, scanned a second in
    let bundle: ScannerBundle = s.get_json("/v1/scanner", Some(&staff)).await;
    let event = bundle.events[0].id;
    let (_, m) = check_in(
        event,
        &member,
        Uuid::from_u128(1),
        Uuid::new_v4(),
        t0() + chrono::Duration::seconds(1),
    );
    s.clock.set(t0() + chrono::Duration::seconds(2));
    let r = push(s, &staff, json!([m.clone()])).await;
    assert_eq!(r.results[0].outcome, MutationOutcome::Applied);
    // points
    s.store
        .accrue_points(
            member.member_id,
            1200,
            t0() + chrono::Duration::days(200),
            "activity",
            s.clock.now_utc(),
        )
        .await
        .unwrap();
    // a sign-up, and a coupon from a grab (limit 1)
    let activity = s
        .store
        .create_activity(crate::activities::activity(10, 5, 1), s.clock.now_utc())
        .await
        .unwrap();
    let c = s
        .store
        .create_campaign(crate::grab::campaign(5, 1), t0())
        .await
        .unwrap();
    s.clock.set(c.release_at);
    let signup_key = Uuid::new_v4();
    let signup_at =
        match crate::activities::sign_up(s, &member.token, activity.id, signup_key, 1).await {
            unionpass_core::activity::SignupAnswer::Accepted { signup, .. } => signup.created_at,
            other => panic!("{other:?}"),
        };
    let got = crate::grab::grab(s, &member.token, c.id, Uuid::new_v4())
        .await
        .unwrap();
    let GrabOutcome::Granted { coupon } = got.outcome else {
        panic!("{got:?}")
    };
    Before {
        changes: changes(s.store.as_ref(), member.member_id).await,
        points: serde_json::to_value(s.store.points_entries(member.member_id).await.unwrap())
            .unwrap(),
        granted: s.store.audit(c.id).await.unwrap().granted,
        member,
        staff,
        campaign: c.id,
        coupon_id: coupon.id,
        check_in: m,
        event,
        activity: activity.id,
        signup_key,
        signup_at,
    }
}

async fn changes(store: &dyn Ops, member_id: i64) -> serde_json::Value {
    serde_json::to_value(store.changes_since(member_id, 0, 1_000_000).await.unwrap()).unwrap()
}

/// The members' stories on the upgraded server `s`, whose database was at schema `version`.
async fn still_works(s: &TestServer, b: &Before, version: usize) {
    let at = format!("from schema version {version}");
    // every member can sign in with the password kept since the first version
    let fresh = s.login("M10001").await;
    // the change log is whole: a new device syncs what the member's devices synced before
    assert_eq!(
        changes(s.store.as_ref(), b.member.member_id).await,
        b.changes,
        "{at}"
    );
    let page: SyncResponse = s.get_json("/v1/sync?cursor=0", Some(&fresh)).await;
    assert_eq!(page.profile.member_id, b.member.member_id, "{at}");
    let sent = serde_json::to_value(&page.changes).unwrap();
    assert_eq!(
        sent.as_array().unwrap()[..],
        b.changes.as_array().unwrap()[..page.changes.len()],
        "{at}: the page brings the member's log"
    );
    assert!(!page.changes.is_empty(), "{at}");
    assert!(
        page.passport.is_some(),
        "{at}: a credential for the new device"
    );

    // sessions: since devices exist (3) a kept session goes on; before that a session belonged
    // to no device: it has ended, and its member is asked to sign in again (a clear 401)
    let resp = s
        .http
        .get(s.at("/v1/sync?cursor=0"))
        .bearer_auth(&b.member.token)
        .send()
        .await
        .unwrap();
    if version >= 3 {
        assert_eq!(resp.status(), 200, "{at}: the kept session");
    } else {
        assert_eq!(resp.status(), 401, "{at}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "session_ended", "{at}: {body}");
    }
    let token = if version >= 3 {
        &b.member.token
    } else {
        &fresh
    };

    if version >= 2 {
        // the grant counts: the limit of one is reached, the stock still knows it
        let again = crate::grab::grab(s, token, b.campaign, Uuid::new_v4())
            .await
            .unwrap();
        assert!(
            matches!(again.outcome, GrabOutcome::LimitReached),
            "{at}: {again:?}"
        );
        assert_eq!(
            s.store.audit(b.campaign).await.unwrap().granted,
            b.granted,
            "{at}"
        );
        // and the coupon is used once
        let use_it = json!([{"id": Uuid::new_v4(), "created_at": s.clock.now_utc(), "op": "use_coupon",
            "args": {"coupon_id": b.coupon_id, "used_at": s.clock.now_utc()}}]);
        let r = push(s, token, use_it).await;
        assert_eq!(r.results[0].outcome, MutationOutcome::Applied, "{at}");
        // (marked again from another device: nothing more happens)
        let r = push(
            s,
            token,
            json!([{"id": Uuid::new_v4(), "created_at": s.clock.now_utc(), "op": "use_coupon",
                "args": {"coupon_id": b.coupon_id, "used_at": s.clock.now_utc()}}]),
        )
        .await;
        assert_eq!(r.results[0].outcome, MutationOutcome::Applied, "{at}");
        let uses = s
            .store
            .changes_since(b.member.member_id, 0, 1_000_000)
            .await
            .unwrap()
            .iter()
            .filter(|c| {
                matches!(&c.kind, unionpass_core::api::ChangeKind::CouponUsed { coupon_id, .. }
                    if *coupon_id == b.coupon_id)
            })
            .count();
        assert_eq!(uses, 1, "{at}: used once");
    }
    if version >= 3 {
        // the check-in is kept: the scanners still see it, and the same upload again is the
        // same upload (its first answer), not a second check-in
        let staff = &b.staff;
        let bundle: ScannerBundle = s.get_json("/v1/scanner", Some(staff)).await;
        let ours: Vec<_> = bundle
            .checkins
            .iter()
            .filter(|c| c.event_id == b.event && c.member_id == b.member.member_id)
            .collect();
        assert_eq!(ours.len(), 1, "{at}");
        let r = push(s, staff, json!([b.check_in.clone()])).await;
        assert!(r.results[0].replayed, "{at}: {:?}", r.results[0]);
        assert!(bundle.conflicts.is_empty(), "{at}");
    }
    if version >= 5 {
        assert_eq!(
            serde_json::to_value(s.store.points_entries(b.member.member_id).await.unwrap())
                .unwrap(),
            b.points,
            "{at}"
        );
    }
    if version >= 7 {
        // the same sign-up key is the same sign-up
        match crate::activities::sign_up(s, token, b.activity, b.signup_key, 1).await {
            unionpass_core::activity::SignupAnswer::Accepted { signup, .. } => {
                assert_eq!(signup.created_at, b.signup_at, "{at}: the same sign-up")
            }
            other => panic!("{at}: {other:?}"),
        }
    }
    // and the member goes on: a new campaign is grabbed
    let c = s
        .store
        .create_campaign(crate::grab::campaign(5, 1), s.clock.now_utc())
        .await
        .unwrap();
    s.clock.set(c.release_at);
    let got = crate::grab::grab(s, &fresh, c.id, Uuid::new_v4())
        .await
        .unwrap();
    assert!(
        matches!(got.outcome, GrabOutcome::Granted { .. }),
        "{at}: {got:?}"
    );
}

/// A copy of the directory holding the union keys (the upgraded server signs with the same).
fn keys_copy(from: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (from.join("keys"), dir.path().join("keys"));
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dir
}

#[tokio::test]
async fn a_sqlite_database_from_every_earlier_version_is_migrated_and_its_members_go_on() {
    use unionpass_server::store::sqlite::MIGRATIONS;
    let live = TestServer::start().await;
    let before = live_server_with_data(&live).await;
    let src = live.dir.path().join("server.sqlite");
    for version in 1..MIGRATIONS.len() {
        let dir = keys_copy(live.dir.path());
        let path = dir.path().join("server.sqlite");
        let rows = unionpass_sqlite::older_copy(&src, &path, MIGRATIONS, version).unwrap();
        assert!(rows > 0, "version {version}: no data copied");
        let store = unionpass_server::store::SqliteStore::open(&path)
            .unwrap_or_else(|e| panic!("version {version} does not migrate: {e}"));
        let s = TestServer::serve_as_is(Arc::new(store), dir).await;
        s.clock.set(live.clock.now_utc());
        still_works(&s, &before, version).await;
    }
}

#[tokio::test]
async fn a_postgres_database_from_every_earlier_version_is_migrated_and_its_members_go_on() {
    use unionpass_server::store::postgres::MIGRATIONS;
    let live = TestServer::start_postgres().await;
    let before = live_server_with_data(&live).await;
    let src = live.database_url().unwrap().to_string();
    for version in 1..MIGRATIONS.len() {
        let db = PgTestDb::older_copy(&src, version).await;
        let s = TestServer::on_postgres(db, false, keys_copy(live.dir.path())).await;
        s.clock.set(live.clock.now_utc());
        still_works(&s, &before, version).await;
    }
}

/// The server binary started on `store` (`--db FILE` or `--database URL`): it must stop, within
/// a minute, with an error. Returns what it said.
fn refused_at_start(store: &[&str], keys: &std::path::Path) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_unionpass-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--keys"])
        .arg(keys)
        .args(store)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("the server started on a newer database");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!status.success(), "{said}");
    said
}

/// The files beside a SQLite database (its log, journal) and the bytes of each, the
/// database's own included; not the log's shared-memory index, which every reader keeps.
fn sqlite_files(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut all = unionpass_sqlite::files_beside(path).unwrap();
    all.retain(|(n, _)| !n.ends_with("-shm"));
    all
}

/// A database a newer server migrated is refused by this one at start, with a message that says
/// to update, and finding out writes nothing into it. On SQLite that includes a write-ahead log
/// the newer server left waiting (killed, or a backup restored with its log): a writable
/// connection closing would copy it into the file.
#[tokio::test]
async fn a_database_from_a_newer_server_is_refused_untouched_on_both_backends() {
    use unionpass_server::store::{postgres, sqlite};
    let keys = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("union.sqlite");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    unionpass_sqlite::migrate(&mut conn, sqlite::MIGRATIONS).unwrap();
    drop(conn);
    // the newer server's last migration, still in its log when it stopped
    unionpass_sqlite::stop_with_log_waiting(
        &path,
        &format!(
            "CREATE TABLE from_the_future(a INTEGER); PRAGMA user_version = {};",
            sqlite::MIGRATIONS.len() + 1
        ),
    )
    .unwrap();
    let before = sqlite_files(&path);
    assert!(
        before
            .iter()
            .any(|(n, b)| n.ends_with("-wal") && !b.is_empty()),
        "a log waits: {:?}",
        before.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let db = path.to_string_lossy().into_owned();
    let said = refused_at_start(&["--db", &db], keys.path());
    assert!(said.contains("update the program"), "{said}");
    assert!(
        sqlite_files(&path) == before,
        "the newer database or its log was written"
    );
    assert!(matches!(
        unionpass_server::store::SqliteStore::open(&path).err(),
        Some(unionpass_server::store::StoreError::Migrate(
            unionpass_sqlite::MigrateError::TooNew { .. }
        ))
    ));
    assert!(
        sqlite_files(&path) == before,
        "the newer database or its log was written"
    );

    let pg = PgTestDb::create().await;
    drop(postgres::PgStore::connect(&pg.url, 2).await.unwrap());
    let (client, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let newer = postgres::MIGRATIONS.len() as i32 + 1;
    client
        .batch_execute(&format!(
            "CREATE TABLE from_the_future(a INTEGER); UPDATE schema_version SET version = {newer}"
        ))
        .await
        .unwrap();
    let said = refused_at_start(&["--database", &pg.url], keys.path());
    assert!(said.contains("update the program"), "{said}");
    assert_eq!(pg.schema_versions().await, vec![newer]);
}
