//! The real app window: sign in and see the passport; restart offline; switch language.
//! Each test saves a screenshot. Run through `cargo xtask test` (one test at a time).

use ed25519_dalek::VerifyingKey;
use unionpass_core::api::{KeysResponse, SyncResponse};
use unionpass_core::passport;
use unionpass_core::Lang;
use unionpass_e2e::{decode_qr, files_containing, token_of, App, Server};

async fn sync_as(server: &Server, token: &str) -> SyncResponse {
    reqwest::Client::new()
        .get(format!("{}/v1/sync?cursor=0", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_shows_the_passport_whose_qr_is_the_signed_credential() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4444).await?;
    let result = async {
        app.sign_in("M10001", "demo1234").await?;
        app.wait_text("#passport-name", "王芳", 30).await?;
        assert_eq!(app.text("#passport-member-no").await?, "M10001");
        assert_eq!(app.text("#passport-union").await?, "智云科技有限公司工会");
        assert_eq!(app.text("#passport-title").await?, "电子护照");
        app.wait_for("#passport-qr svg", 10).await?;
        app.wait_for("#sync-status", 5).await?;
        let png = app.shot("01-passport").await?;

        // What a standard QR reader sees on screen is the credential the server issued...
        let token = token_of(&data)?;
        let issued = sync_as(&server, &token).await.passport.credential;
        let seen = decode_qr(&png)?;
        assert_eq!(seen, vec![issued.clone()], "the QR in the window");
        // ...and it verifies with the union key the server publishes.
        let keys: KeysResponse = reqwest::get(format!("{}/v1/keys", server.url))
            .await?
            .json()
            .await?;
        let vks: Vec<VerifyingKey> = keys
            .keys
            .iter()
            .map(|k| k.verifying_key().expect("a valid published key"))
            .collect();
        let claims = passport::decode(&seen[0])?.verify(&vks, chrono_now())?;
        assert_eq!(claims.member_id, 1);

        // The token is in the keyring only: not in the SQLite file, the logs, WebKit's data, or
        // anything else under the app's data dir, nor in the server's log.
        assert!(token.len() >= 40);
        assert_eq!(
            files_containing(&data, token.as_bytes()),
            Vec::<std::path::PathBuf>::new()
        );
        assert!(data.join("unionpass.sqlite").exists() && data.join("logs/unionpass.log").exists());
        assert!(!std::fs::read_to_string(&server.log)?.contains(&token));
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test]
async fn restarted_with_the_server_down_the_passport_shows_from_the_store_offline(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4454).await?;
    let first = async {
        app.sign_in("M10014", "demo1234").await?;
        app.wait_text("#passport-name", "朱建国", 30).await?;
        app.wait_for("#passport-qr svg", 10).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    first?;

    server.stop();
    let app = App::launch(&data, &server.url, 4464).await?;
    let second = async {
        app.wait_text("#passport-name", "朱建国", 15).await?;
        app.wait_for("#passport-qr svg", 5).await?;
        app.wait_for("#offline-badge", 20).await?;
        assert_eq!(app.text("#offline-badge").await?, "离线");
        app.shot("02-offline-restart").await?;

        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    second
}

#[tokio::test]
async fn switching_to_english_relabels_the_screen_and_syncs_the_choice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path())?;
    let data = dir.path().join("device");
    let app = App::launch(&data, &server.url, 4474).await?;
    let result = async {
        app.sign_in("M10008", "demo1234").await?;
        app.wait_text("#passport-name", "黄晓东", 30).await?;
        app.wait_text("#passport-title", "电子护照", 5).await?;
        app.click("#lang-toggle").await?;
        app.wait_text("#passport-title", "Electronic passport", 10)
            .await?;
        app.wait_text("#tab-passport .tab-label", "Passport", 5)
            .await?;
        app.wait_text("#tab-me .tab-label", "Me", 5).await?;
        app.shot("03-english").await?;
        // The choice went through the outbox to the server.
        let token = token_of(&data)?;
        let mut language = None;
        for _ in 0..50 {
            language = sync_as(&server, &token).await.profile.language;
            if language.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(language, Some(Lang::En));
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.close().await;
    result
}
