//! Helpers shared by the server's integration tests.

use std::sync::{Arc, Mutex};

pub use unionpass_server::testing::{t0, TestServer};

/// Collects every log line the server writes while a test runs.
#[derive(Clone, Default)]
pub struct LogCapture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// The process-wide capture (a subscriber can be installed once per test binary).
    pub fn install() -> LogCapture {
        static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let cap = LogCapture::default();
                let writer = cap.clone();
                let _ = tracing_subscriber::fmt()
                    .with_env_filter("trace")
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .try_init();
                cap
            })
            .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Define one `#[tokio::test]` per story function and backend: `mod sqlite { … }` runs each on a
/// SQLite file, `mod postgres { … }` on a fresh PostgreSQL database. Each function takes the
/// started `TestServer`.
macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$story(crate::util::TestServer::start().await).await
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$story(crate::util::TestServer::start_postgres().await).await
                }
            )*
        }
    };
}

/// A member signed in on a device of their own: what a scanner reads off their screen.
pub struct Holder {
    pub member_id: i64,
    pub member_no: String,
    pub token: String,
    l1: Vec<u8>,
    key: ed25519_dalek::SigningKey,
}

impl Holder {
    /// Sign `member_no` in with a fresh device key and fetch its credential.
    pub async fn of(s: &TestServer, member_no: &str) -> Holder {
        use base64::Engine;
        let (token, key) = s.login_device(member_no).await;
        let page: unionpass_core::api::SyncResponse =
            s.get_json("/v1/sync?cursor=0", Some(&token)).await;
        let l1 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&page.passport.expect("a credential").credential)
            .unwrap();
        Holder {
            member_id: page.profile.member_id,
            member_no: member_no.into(),
            token,
            l1,
            key,
        }
    }

    /// The QR text this member's screen shows at `at`.
    pub fn code_at(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        use unionpass_core::passport;
        passport::present(&self.l1, &self.key, passport::step_of(at))
    }
}

/// A `check_in` mutation for `holder` scanned at `at` by `scanner`, with its proof; returns its
/// id and the JSON.
pub fn check_in(
    event_id: i64,
    holder: &Holder,
    scanner: uuid::Uuid,
    nonce: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> (uuid::Uuid, serde_json::Value) {
    let c = unionpass_core::checkin::CheckIn {
        event_id,
        member_id: holder.member_id,
        member_no: holder.member_no.clone(),
        scanned_at: at,
        scanner,
        nonce,
        proof: Some(holder.code_at(at)),
        staff: None,
    };
    let id = uuid::Uuid::new_v4();
    (
        id,
        serde_json::json!({"id": id, "created_at": at, "op": "check_in", "args": c}),
    )
}

/// The first sync page's answer for `token`, as it came (a test of an ended session reads its
/// error).
pub async fn sync_answer(s: &TestServer, token: &str) -> reqwest::Response {
    s.http
        .get(s.at("/v1/sync?cursor=0"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The first sync page for `token`, which must be served.
pub async fn synced(s: &TestServer, token: &str) -> unionpass_core::api::SyncResponse {
    let resp = sync_answer(s, token).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// A fresh device public key, as the app sends at sign-in.
pub fn device_key() -> String {
    use base64::Engine;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())
}

/// Push `mutations` (a JSON array) with `token`; the push itself must be accepted (200).
pub async fn push(
    s: &TestServer,
    token: &str,
    mutations: serde_json::Value,
) -> unionpass_core::api::PushResponse {
    let resp = s
        .http
        .post(s.at("/v1/sync/push"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "mutations": mutations }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}
