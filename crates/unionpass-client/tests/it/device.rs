//! The client library against a real server over HTTP, real SQLite files and the real keyring
//! (run through `cargo xtask test`, which provides an unlocked throw-away keyring).

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use unionpass_client::client::DB_FILE;
use unionpass_client::secrets::SessionSecret;
use unionpass_client::store::Store;
use unionpass_client::{Client, ClientError};
use unionpass_core::{ErrorCode, Lang};
use unionpass_server::testing::{t0, TestServer};

fn now() -> DateTime<Utc> {
    t0() + Duration::minutes(1)
}

fn token_of(dir: &Path) -> String {
    let store = Store::open(&dir.join(DB_FILE)).unwrap();
    SessionSecret::for_device(store.device_id().unwrap())
        .unwrap()
        .load()
        .unwrap()
        .unwrap()
        .expose()
        .clone()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            hits.push(p);
        }
    }
    hits
}

#[tokio::test]
async fn login_stores_the_member_locally_and_the_token_only_in_the_keyring() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    assert!(!client.snapshot(now()).unwrap().logged_in);

    let report = client
        .login(&server.url, "M10009", "demo1234", "test device", now())
        .await
        .unwrap();
    assert_eq!(report.pushed, 0);
    let snap = client.snapshot(now()).unwrap();
    assert!(snap.logged_in);
    let profile = snap.profile.unwrap();
    assert_eq!(
        (profile.member_no.as_str(), profile.name.as_str()),
        ("M10009", "周婷")
    );
    let passport = snap.passport.unwrap();
    assert!(!passport.expired);
    assert_eq!(snap.sync.last_ok_at, Some(now()));
    let live = client.live_passport(now()).unwrap();
    assert!(live.qr_svg.contains("<svg"));
    assert!(live.text.starts_with("UP2:"));
    assert!(live.step_starts_at <= now() && now() < live.step_ends_at);
    assert_eq!(snap.devices.len(), 1);
    assert!(snap.devices[0].current);

    let token = token_of(dir.path());
    assert_eq!(
        files_containing(dir.path(), &token),
        Vec::<std::path::PathBuf>::new()
    );
    // the device's private passport key is in the keyring only, in no file
    let store = Store::open(&dir.path().join(DB_FILE)).unwrap();
    let key = unionpass_client::secrets::DeviceKeySecret::for_device(store.device_id().unwrap())
        .unwrap()
        .load()
        .unwrap()
        .expect("a device key in the keyring");
    use base64::Engine;
    for encoded in [
        base64::engine::general_purpose::STANDARD.encode(key.to_bytes()),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_bytes()),
    ] {
        assert_eq!(
            files_containing(dir.path(), &encoded),
            Vec::<std::path::PathBuf>::new()
        );
    }
}

#[tokio::test]
async fn wrong_password_and_bad_server_address_leave_nothing_behind() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    let err = client
        .login(&server.url, "M10009", "nope", "d", now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidCredentials);
    let err = client
        .login("ftp://x", "M10009", "demo1234", "d", now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidServerUrl);
    let err = client
        .login(&server.url, "  ", "demo1234", "d", now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    // nothing is listening on port 9 of loopback
    let err = client
        .login("http://127.0.0.1:9", "M10009", "demo1234", "d", now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Offline);
    assert!(!client.is_logged_in().unwrap());
}

/// A forgotten password, reset with the code union staff gave: the app signs in with the new
/// password at once. A wrong or malformed code, or an insecure address, leaves nothing behind
/// (a malformed code and the address are refused before anything is sent).
#[tokio::test]
async fn a_password_reset_with_a_code_from_staff_signs_in_with_the_new_password() {
    use unionpass_server::auth::{hash_password, new_reset_code};
    let server = TestServer::start().await;
    let code = new_reset_code();
    server
        .store
        .issue_password_reset(
            "M10011",
            &hash_password(&code),
            t0(),
            t0() + Duration::hours(24),
        )
        .await
        .unwrap()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    let off = format!("{}{}", (code.as_bytes()[0] - b'0' + 1) % 10, &code[1..]);
    let tries = [
        (
            server.url.clone(),
            off.as_str(),
            ErrorCode::InvalidCredentials,
        ),
        (server.url.clone(), "1234", ErrorCode::InvalidInput),
        (
            "http://192.0.2.1:8080".into(),
            code.as_str(),
            ErrorCode::InsecureServerUrl,
        ),
    ];
    for (url, typed, want) in tries {
        let err = client
            .reset_password(&url, "M10011", typed, "fresh-secret-1", "d", now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), want, "{typed}");
        assert!(!client.is_logged_in().unwrap());
    }
    client
        .reset_password(&server.url, " M10011 ", &code, "fresh-secret-1", "d", now())
        .await
        .unwrap();
    let snap = client.snapshot(now()).unwrap();
    assert!(snap.logged_in && snap.passport.is_some());
    assert_eq!(snap.profile.unwrap().member_no, "M10011");
    // the new password is the one that signs in now
    let other = tempfile::tempdir().unwrap();
    let other = Client::open(other.path()).unwrap();
    assert_eq!(
        other
            .login(&server.url, "M10011", "demo1234", "d", now())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidCredentials
    );
    other
        .login(&server.url, "M10011", "fresh-secret-1", "d", now())
        .await
        .unwrap();
}

/// A server (or something in the way) that answers a sign-in with a redirect does not get the
/// password sent on: the redirect is not followed, and the member is told the answer was not
/// understood.
#[tokio::test]
async fn a_redirect_does_not_carry_the_password_elsewhere() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_url = format!("http://{}/v1/login", elsewhere.local_addr().unwrap());
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = elsewhere.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let redirecting = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", redirecting.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = redirecting.accept().await {
            let to = elsewhere_url.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    for code in [None, Some("482719305521")] {
        let err = match code {
            None => client.login(&url, "M10009", "demo1234", "d", now()).await,
            Some(code) => {
                client
                    .reset_password(&url, "M10009", code, "fresh-secret-1", "d", now())
                    .await
            }
        }
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadResponse, "{code:?}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(reached.load(Ordering::SeqCst), 0, "followed the redirect");
    assert!(!client.is_logged_in().unwrap());
}

#[tokio::test]
async fn offline_the_passport_still_shows_and_changes_wait_in_the_outbox_until_the_server_is_back()
{
    let mut server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let client = Client::open(dir.path()).unwrap();
        client
            .login(&server.url, "M10010", "demo1234", "d", now())
            .await
            .unwrap();
    }
    server.stop().await;

    // a restarted app, server down
    let client = Client::open(dir.path()).unwrap();
    let later = now() + Duration::minutes(5);
    let err = client.sync(later).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Offline);
    let snap = client.snapshot(later).unwrap();
    assert!(snap.passport.is_some(), "the passport shows from the store");
    assert!(snap.sync.offline());
    assert_eq!(
        snap.sync.last_ok_at,
        Some(now()),
        "the last good sync is still known"
    );

    // switched back and forth offline: one change waits, the last choice
    client.set_language(Lang::En, later).unwrap();
    client.set_language(Lang::ZhCn, later).unwrap();
    client.set_language(Lang::En, later).unwrap();
    let snap = client.snapshot(later).unwrap();
    assert_eq!(snap.language, Lang::En, "the choice applies at once");
    assert_eq!(snap.sync.pending, 1, "only the last choice is sent");

    server.restart().await;
    let report = client.sync(later + Duration::minutes(1)).await.unwrap();
    assert_eq!(report.pushed, 1);
    let snap = client.snapshot(later).unwrap();
    assert_eq!(snap.sync.pending, 0);
    assert!(!snap.sync.offline());
    assert_eq!(
        snap.profile.unwrap().language,
        Some(Lang::En),
        "the server has it"
    );
    // syncing again applies nothing twice
    assert_eq!(
        client
            .sync(later + Duration::minutes(2))
            .await
            .unwrap()
            .pushed,
        0
    );
}

#[tokio::test]
async fn a_mutation_whose_answer_was_lost_is_applied_once_when_resent() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    client
        .login(&server.url, "M10011", "demo1234", "d", now())
        .await
        .unwrap();
    client.set_language(Lang::En, now()).unwrap();

    // Deliver the queued mutation behind the client's back, as if the first push reached the
    // server but its answer was lost: the outbox still holds it.
    let pending = Store::open(&dir.path().join(DB_FILE))
        .unwrap()
        .pending()
        .unwrap();
    assert_eq!(pending.len(), 1);
    let token = token_of(dir.path());
    let body = serde_json::json!({ "mutations": [pending[0].mutation] });
    let first: serde_json::Value = server
        .http
        .post(server.at("/v1/sync/push"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["results"][0]["replayed"], false);

    // The client's own retry is answered from the first result and empties the outbox.
    let report = client.sync(now()).await.unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(client.snapshot(now()).unwrap().sync.pending, 0);
    // and the server logged one change, not two
    let page: serde_json::Value = server.get_json("/v1/sync?cursor=0", Some(&token)).await;
    assert_eq!(page["changes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn logout_deletes_the_token_and_the_member_data() {
    let server = TestServer::start().await;
    unionpass_server::seed::seed_demo_points(server.store.as_ref(), now())
        .await
        .unwrap();
    let campaign = server
        .store
        .create_campaign(
            unionpass_core::campaign::Campaign {
                id: 0,
                title_zh: "观影券".into(),
                title_en: "Cinema ticket".into(),
                category: unionpass_core::campaign::Category::Cinema,
                face_value_cents: 3000,
                terms_zh: String::new(),
                terms_en: String::new(),
                coupon_valid_from: now(),
                coupon_valid_until: now() + chrono::Duration::days(30),
                stock: 5,
                per_member_limit: 1,
                release_at: now() + chrono::Duration::hours(1),
                end_at: now() + chrono::Duration::hours(2),
                eligible_unions: vec![],
                eligible_union_names: vec![],
                cancelled_at: None,
            },
            now(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    client
        .login(&server.url, "M10012", "demo1234", "d", now())
        .await
        .unwrap();
    // the member's reminders, points and a queued redemption are on the device too
    client.set_reminder(campaign.id, 5, now()).unwrap();
    let top_up = unionpass_core::redeem::Target::PhoneBill {
        mobile: "13912345678".into(),
        amount_cents: 1000,
    };
    client.redeem(&top_up, 1000, now()).unwrap();
    assert_eq!(client.points_view(now()).unwrap().balance.available, 9500);
    let token = token_of(dir.path());
    let device = Store::open(&dir.path().join(DB_FILE))
        .unwrap()
        .device_id()
        .unwrap();

    client.logout().await.unwrap();
    assert!(
        SessionSecret::for_device(device)
            .unwrap()
            .load()
            .unwrap()
            .is_none(),
        "token deleted"
    );
    let snap = client.snapshot(now()).unwrap();
    assert!(!snap.logged_in);
    assert!(snap.profile.is_none() && snap.passport.is_none());
    assert!(
        files_containing(dir.path(), "M10012").is_empty(),
        "no trace of the member on disk"
    );
    assert!(files_containing(dir.path(), "13912345678").is_empty());
    assert!(client.reminders().unwrap().is_empty());
    assert!(client.redemptions().unwrap().is_empty());
    let points = client.points_view(now()).unwrap();
    assert_eq!((points.balance.posted, points.offer.catalog.len()), (0, 0));
    // the server ended the session too
    let resp = server
        .http
        .get(server.at("/v1/sync"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(matches!(
        client.sync(now()).await,
        Err(ClientError::NotLoggedIn)
    ));
    // with the server reachable, the redemption queued here went up before the sign-out
    let other_dir = tempfile::tempdir().unwrap();
    let other = Client::open(other_dir.path()).unwrap();
    other
        .login(&server.url, "M10012", "demo1234", "d2", now())
        .await
        .unwrap();
    let ledger = other.points_view(now()).unwrap();
    assert_eq!(ledger.balance.pending, 1000, "{:?}", ledger.balance);
}

#[test]
fn a_store_written_by_a_newer_app_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(Client::open(dir.path()).unwrap());
    let path = dir.path().join(DB_FILE);
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Client::open(dir.path()).err().expect("refused");
    assert_eq!(err.code(), ErrorCode::DatabaseTooNew);
    let v: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

/// The files beside the store (its journal, WAL and shared memory), and the store's own bytes.
fn store_files(path: &Path) -> (Vec<String>, Vec<u8>) {
    let mut beside: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(DB_FILE) && n != DB_FILE)
        .collect();
    beside.sort();
    (beside, std::fs::read(path).unwrap())
}

#[tokio::test]
async fn a_store_written_by_a_newer_app_still_shows_its_passport_and_is_not_written() {
    use unionpass_client::kept::KeptPassport;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    client
        .login(&server.url, "M10009", "demo1234", "d", now())
        .await
        .unwrap();
    let path = dir.path().join(DB_FILE);
    // a phone whose clock runs 95 s behind the server's: the kept passport corrects it too
    Store::open(&path)
        .unwrap()
        .set_clock_offset(&unionpass_core::reminder::ClockOffset {
            offset_ms: 95_000,
            rtt_ms: 40,
            measured_at: now(),
        })
        .unwrap();
    let at = now() + Duration::seconds(7);
    let expected = client.live_passport(at).unwrap();
    drop(client);
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = store_files(&path);
    assert_eq!(
        Client::open(dir.path()).err().expect("refused").code(),
        ErrorCode::DatabaseTooNew
    );

    let kept = KeptPassport::read(dir.path()).unwrap();
    // the very code this device showed before (the signature is deterministic), so it verifies
    // wherever that one did
    assert_eq!(kept.live(at).unwrap(), expected);
    let later = kept.live(at + Duration::seconds(30)).unwrap();
    assert_ne!(later.text, expected.text, "a fresh code every step");
    assert_eq!(later.step_starts_at, expected.step_ends_at);
    let view = kept.view(now());
    let profile = view.profile.clone().expect("whose passport");
    assert_eq!(
        (profile.member_no.as_str(), profile.name.as_str()),
        ("M10009", "周婷")
    );
    assert!(!view.passport.expired);
    assert!(kept.view(view.passport.valid_until).passport.expired);
    // no code past the credential's validity, judged by the server's time (95 s ahead of this
    // device's): every scanner would refuse it
    let end = view.passport.valid_until - Duration::seconds(95);
    let last = kept.live(end - Duration::seconds(1)).unwrap();
    // the last code's countdown ends at the expiry, when the screen asks again
    assert_eq!(last.step_ends_at, end);
    assert_eq!(
        kept.live(end).err().map(|e| e.code()),
        Some(ErrorCode::PassportExpired)
    );
    // and the screen's words agree with the code, by the same time
    assert!(!kept.view(end - Duration::seconds(1)).passport.expired);
    assert!(kept.view(end).passport.expired);
    drop(kept);
    assert!(
        store_files(&path) == before,
        "the newer store or the files beside it changed"
    );
    let v: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);

    // a newer store that keeps the passport in another shape: no passport, not a guess (read
    // immutable: the change is in the file, nothing waits beside it)
    let edit = |sql: &str| {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(sql)
            .unwrap()
    };
    edit("ALTER TABLE passport RENAME TO passport_v99");
    assert_eq!(
        KeptPassport::read(dir.path()).err().map(|e| e.code()),
        Some(ErrorCode::Storage)
    );
    edit("ALTER TABLE passport_v99 RENAME TO passport");
    // a profile that names someone else than the credential's member: the code without a name
    edit("UPDATE profile SET member_no = 'M10010', name = '别人'");
    let kept = KeptPassport::read(dir.path()).unwrap();
    assert_eq!(kept.view(now()).profile, None);
    assert_eq!(kept.live(at).unwrap(), expected);
    edit("UPDATE profile SET member_no = 'M10009', name = '周婷'");

    // a newer app stopped with writes still in its write-ahead log (killed, or a backup came
    // back with its log): closing without a checkpoint leaves the log as a crash does
    unionpass_sqlite::stop_with_log_waiting(
        &path,
        "UPDATE passport SET valid_until = '2031-01-01T00:00:00.000Z'",
    )
    .unwrap();
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    let log = std::fs::read(&wal).unwrap();
    assert!(!log.is_empty(), "a log waiting");
    let file = std::fs::read(&path).unwrap();
    // this version finds out it is too old without copying the log into the file...
    assert_eq!(
        Client::open(dir.path()).err().expect("refused").code(),
        ErrorCode::DatabaseTooNew
    );
    assert!(
        std::fs::read(&path).unwrap() == file,
        "the store was written"
    );
    assert!(std::fs::read(&wal).unwrap() == log, "the log was moved");
    // ...and reads the passport with the log's writes, writing neither
    assert_eq!(
        KeptPassport::read(dir.path())
            .unwrap()
            .view(now())
            .passport
            .valid_until,
        "2031-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert!(
        std::fs::read(&path).unwrap() == file,
        "the store was written"
    );
    assert!(std::fs::read(&wal).unwrap() == log, "the log was moved");

    // nor with another key than the credential's (the keyring restored from elsewhere), or none
    let id: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let secret =
        unionpass_client::secrets::DeviceKeySecret::for_device(id.parse().unwrap()).unwrap();
    secret.create().unwrap();
    assert_eq!(
        KeptPassport::read(dir.path()).err().map(|e| e.code()),
        Some(ErrorCode::DeviceNotEnrolled)
    );
    secret.delete().unwrap();
    assert_eq!(
        KeptPassport::read(dir.path()).err().map(|e| e.code()),
        Some(ErrorCode::DeviceNotEnrolled)
    );
}

#[tokio::test]
async fn a_sign_out_made_offline_reaches_the_server_later() {
    let mut server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::open(dir.path()).unwrap();
    client
        .login(&server.url, "M10013", "demo1234", "d", now())
        .await
        .unwrap();
    let token = token_of(dir.path());
    server.stop().await;
    client.logout().await.unwrap();
    assert!(
        !client.snapshot(now()).unwrap().logged_in,
        "signed out here at once"
    );
    assert!(
        !client.finish_pending_sign_out().await.unwrap(),
        "still waiting"
    );
    server.restart().await;
    // the session still works at the server until it is told
    let alive = |token: String| {
        let server = &server;
        async move {
            server
                .http
                .get(server.at("/v1/sync"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
                == 200
        }
    };
    assert!(alive(token.clone()).await);
    assert!(client.finish_pending_sign_out().await.unwrap());
    assert!(!alive(token).await, "ended at the server");
    // nothing left waiting, and the keyring holds no token
    assert!(client.finish_pending_sign_out().await.unwrap());
    assert!(files_containing(dir.path(), "M10013").is_empty());
}

#[tokio::test]
async fn signing_out_everywhere_and_a_new_password_end_the_other_devices() {
    let server = TestServer::start().await;
    let (phone_dir, laptop_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let phone = Client::open(phone_dir.path()).unwrap();
    let laptop = Client::open(laptop_dir.path()).unwrap();
    for c in [&phone, &laptop] {
        c.login(&server.url, "M10014", "demo1234", "d", now())
            .await
            .unwrap();
    }
    // a new password: the other device is signed out at its next sync, and says why
    assert_eq!(
        laptop
            .change_password("demo1234", "short")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::WeakPassword
    );
    assert_eq!(
        laptop
            .change_password("not it", "a much better one")
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        laptop
            .change_password("demo1234", "a much better one")
            .await
            .unwrap(),
        1
    );
    laptop.sync(now()).await.unwrap();
    assert_eq!(
        phone.sync(now()).await.unwrap_err().code(),
        ErrorCode::SessionEnded
    );
    let snap = phone.snapshot(now()).unwrap();
    assert!(!snap.logged_in);
    assert_eq!(snap.signed_out, Some(ErrorCode::SessionEnded));
    assert!(files_containing(phone_dir.path(), "M10014").is_empty());
    // signing in again clears the notice
    phone
        .login(&server.url, "M10014", "a much better one", "d", now())
        .await
        .unwrap();
    assert_eq!(phone.snapshot(now()).unwrap().signed_out, None);

    // sign out everywhere (a lost laptop): the change waiting here goes up first, then both
    // sessions end; this device forgets the member at once
    phone.set_language(Lang::En, now()).unwrap();
    assert_eq!(phone.snapshot(now()).unwrap().sync.pending, 1);
    assert_eq!(phone.sign_out_everywhere().await.unwrap(), 2);
    assert!(!phone.snapshot(now()).unwrap().logged_in);
    assert_eq!(
        laptop.sync(now()).await.unwrap_err().code(),
        ErrorCode::SessionEnded
    );
    assert!(!laptop.snapshot(now()).unwrap().logged_in);
    let third_dir = tempfile::tempdir().unwrap();
    let third = Client::open(third_dir.path()).unwrap();
    third
        .login(&server.url, "M10014", "a much better one", "d", now())
        .await
        .unwrap();
    assert_eq!(
        third.language().unwrap(),
        Lang::En,
        "the language went up first"
    );
}

/// The version handshake: the app learns a newer version exists (with this platform's download
/// address), and when the union stops serving this version, sync and sign-in say so plainly.
#[tokio::test]
async fn the_app_learns_of_a_new_version_and_is_told_plainly_when_too_old() {
    use unionpass_core::api::{platform, UpdateState, VersionInfo};
    let own = env!("CARGO_PKG_VERSION");
    let serving = |min: &str| {
        let info = VersionInfo {
            min_supported: min.to_string(),
            latest: "99.0.0".into(),
            downloads: [(platform(), "https://example.org/unionpass.deb".to_string())]
                .into_iter()
                .collect(),
        };
        move |s: unionpass_server::AppState| s.with_versions(info.clone())
    };
    let server = TestServer::start().await.tweaked(serving(own)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Client::open(dir.path()).unwrap();
    app.login(&server.url, "M10001", "demo1234", "phone", now())
        .await
        .unwrap();
    let snap = app.snapshot(now()).unwrap();
    assert_eq!(snap.app_version, own);
    assert_eq!(
        snap.update,
        UpdateState::Available {
            latest: "99.0.0".into(),
            download: Some("https://example.org/unionpass.deb".into())
        }
    );

    // the union stops serving this version: the next sync is refused with the plain reason
    let server = server.tweaked(serving("98.0.0")).await;
    let err = app.sync(now() + Duration::minutes(1)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ClientTooOld);
    let snap = app.snapshot(now()).unwrap();
    assert_eq!(snap.sync.last_error, Some(ErrorCode::ClientTooOld));
    assert!(
        matches!(&snap.update, UpdateState::Required { min_supported, download: Some(_), .. } if min_supported == "98.0.0"),
        "{:?}",
        snap.update
    );
    // a new device cannot sign in, and learns where the update is
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Client::open(fresh_dir.path()).unwrap();
    let err = fresh
        .login(&server.url, "M10002", "demo1234", "laptop", now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ClientTooOld);
    assert!(matches!(
        fresh.snapshot(now()).unwrap().update,
        UpdateState::Required { .. }
    ));
}
