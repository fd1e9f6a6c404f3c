//! A real server on 127.0.0.1 port 0 over a real SQLite file, for the integration tests.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use unionpass_server::clock::ManualClock;
use unionpass_server::keys::UnionKeys;
use unionpass_server::store::{SqliteStore, Store};
use unionpass_server::{seed, AppState};

pub struct TestServer {
    pub url: String,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn t0() -> DateTime<Utc> {
    "2026-11-29T08:00:00Z".parse().unwrap()
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let store = SqliteStore::open(&dir.path().join("server.sqlite")).unwrap();
        seed::seed_demo(&store as &dyn Store, t0()).await.unwrap();
        let keys = UnionKeys::load_or_create(&dir.path().join("keys"), t0()).unwrap();
        let state = AppState::new(Arc::new(store), keys, clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(unionpass_server::serve(listener, state, async move {
            let _ = rx.await;
        }));
        TestServer { url, clock, dir, http: reqwest::Client::new(), shutdown: Some(tx) }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Log in and return the token.
    pub async fn login(&self, member_no: &str) -> String {
        let resp = self
            .http
            .post(self.at("/v1/login"))
            .json(&serde_json::json!({"member_no": member_no, "password": seed::DEMO_PASSWORD, "device_name": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

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
    pub fn install() -> LogCapture {
        let cap = LogCapture::default();
        let writer = cap.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        cap
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
