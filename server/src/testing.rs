//! A real server for tests: 127.0.0.1 port 0, a real SQLite file in a temp dir, demo data, and
//! a hand-set clock. Enabled by the `testing` feature (the server's and the client's tests use it).

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::ManualClock;
use crate::keys::UnionKeys;
use crate::store::prelude::*;
use crate::store::SqliteStore;
use crate::{seed, AppState};

/// The instant a test server's clock starts at.
pub fn t0() -> DateTime<Utc> {
    "2026-11-29T08:00:00Z".parse().expect("valid instant")
}

/// The demo provider (`unionpass-provider`) as its own process on a free loopback port, killed
/// on drop. The binary is looked up next to the test executable (cargo builds it with the
/// workspace), or at `UNIONPASS_PROVIDER_BIN`.
pub struct ProviderProcess {
    child: std::process::Child,
    pub url: String,
    /// The channel's shared secret (random per process).
    pub secret: String,
    http: reqwest::Client,
}

impl ProviderProcess {
    pub fn start() -> ProviderProcess {
        use std::io::BufRead;
        let bin = std::env::var_os("UNIONPASS_PROVIDER_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let exe = std::env::current_exe().expect("test executable");
                // target/<profile>/deps/<test> → target/<profile>/unionpass-provider
                exe.parent()
                    .and_then(|d| d.parent())
                    .expect("target dir")
                    .join("unionpass-provider")
            });
        let secret = crate::auth::new_token();
        let mut child = std::process::Command::new(&bin)
            .args(["--listen", "127.0.0.1:0"])
            .env("UNIONPASS_PROVIDER_SECRET", &secret)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} ({e}); build it with `cargo build -p unionpass-server`",
                    bin.display()
                )
            });
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the provider's first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected provider output {line:?}"))
            .to_string();
        ProviderProcess {
            child,
            url: format!("http://{addr}"),
            secret,
            http: reqwest::Client::new(),
        }
    }

    /// A request signed with the channel's secret (the provider refuses any other).
    async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let now = chrono::Utc::now().timestamp();
        let sig =
            crate::fulfil::channel::sign(self.secret.as_bytes(), method.as_str(), path, now, &body);
        self.http
            .request(method, format!("{}{path}", self.url))
            .header(crate::fulfil::channel::TIMESTAMP, now)
            .header(crate::fulfil::channel::SIGNATURE, sig)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("provider request")
    }

    /// `succeed`, `fail` (with the provider's reason) or `timeout`.
    pub async fn set_mode(&self, mode: &str, reason: Option<&str>) {
        let body = serde_json::json!({ "mode": mode, "reason": reason }).to_string();
        let resp = self
            .signed(reqwest::Method::PUT, "/v1/mode", body.into_bytes())
            .await;
        assert!(resp.status().is_success());
    }

    /// Every order the provider saw: `{order, times, answer}`.
    pub async fn orders(&self) -> Vec<serde_json::Value> {
        self.signed(reqwest::Method::GET, "/v1/orders", Vec::new())
            .await
            .json()
            .await
            .expect("orders JSON")
    }

    /// A client of it, as the server uses, with `timeout`.
    pub fn provider(&self, timeout: std::time::Duration) -> Arc<dyn crate::fulfil::Provider> {
        Arc::new(
            crate::fulfil::HttpProvider::new(&self.url, self.secret.as_bytes(), timeout)
                .expect("a loopback provider with a secret"),
        )
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct TestServer {
    /// The server's store, with the ops and bench helpers the tests use.
    pub store: Arc<dyn Ops>,
    /// The PostgreSQL database made for this server, dropped with it.
    pg: Option<PgTestDb>,
    pub url: String,
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Changes to the server's state (limits, trusted proxies) for one test.
    tweak: Option<Tweak>,
}

/// A change to the server's state, applied each time it serves.
type Tweak = Arc<dyn Fn(AppState) -> AppState + Send + Sync>;

impl TestServer {
    /// A seeded server on a free port, on a SQLite file.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("server.sqlite")).expect("open store");
        Self::start_with(Arc::new(store), dir).await
    }

    /// A seeded server on a free port over `store`; `dir` holds the union keys.
    pub async fn start_with(store: Arc<dyn Ops>, dir: tempfile::TempDir) -> TestServer {
        seed::seed_demo(store.as_ref(), t0()).await.expect("seed");
        Self::serve_as_is(store, dir).await
    }

    /// A server on a free port over `store` as it is (no demo data added); `dir` holds the
    /// union keys (made there if missing).
    pub async fn serve_as_is(store: Arc<dyn Ops>, dir: tempfile::TempDir) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut s = TestServer {
            pg: None,
            store,
            url: format!("http://{addr}"),
            addr,
            clock: Arc::new(ManualClock::new(t0())),
            dir,
            http: reqwest::Client::new(),
            shutdown: None,
            task: None,
            tweak: None,
        };
        s.serve(listener);
        s
    }

    /// Serve again on the same address with `tweak` applied to the state (e.g. other limits,
    /// a trusted proxy).
    pub async fn tweaked(
        mut self,
        tweak: impl Fn(AppState) -> AppState + Send + Sync + 'static,
    ) -> TestServer {
        self.tweak = Some(Arc::new(tweak));
        self.restart().await;
        self
    }

    /// A seeded server on a free port over a fresh PostgreSQL database (dropped afterwards) on
    /// the server at `UNIONPASS_TEST_PG` (default: postgres@127.0.0.1:5432).
    pub async fn start_postgres() -> TestServer {
        Self::on_postgres(
            PgTestDb::create().await,
            true,
            tempfile::tempdir().expect("temp dir"),
        )
        .await
    }

    /// A server on a free port over the PostgreSQL database `db` (migrated on connecting, dropped
    /// with the server), with the demo data added when `seed`; `dir` holds the union keys.
    pub async fn on_postgres(db: PgTestDb, seed: bool, dir: tempfile::TempDir) -> TestServer {
        let store: Arc<dyn Ops> = Arc::new(
            crate::store::PgStore::connect(&db.url, 16)
                .await
                .expect("connect to the test database"),
        );
        let mut s = if seed {
            Self::start_with(store, dir).await
        } else {
            Self::serve_as_is(store, dir).await
        };
        s.pg = Some(db);
        s
    }

    /// The PostgreSQL URL of this server's database, if it runs on one.
    pub fn database_url(&self) -> Option<&str> {
        self.pg.as_ref().map(|d| d.url.as_str())
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let store: Arc<dyn Store> = self.store.clone();
        let keys = UnionKeys::load_or_create(&self.dir.path().join("keys"), self.clock.now_utc())
            .expect("keys");
        let mut state = AppState::new(store, keys, self.clock.clone());
        if let Some(t) = &self.tweak {
            state = t(state);
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.shutdown = Some(tx);
        self.task = Some(tokio::spawn(async move {
            // as the binary does, before the first request is answered (the listener is bound:
            // requests wait for it)
            state.warm_sessions().await.expect("live sessions read");
            crate::serve(listener, state, async move {
                let _ = rx.await;
            })
            .await
        }));
    }

    /// Stop serving (connections are then refused), keeping the data.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// One fulfilment round with `provider` at the server's clock; how many redemptions ended.
    pub async fn fulfil(&self, provider: &Arc<dyn crate::fulfil::Provider>) -> usize {
        let clock: Arc<dyn crate::Clock> = self.clock.clone();
        let store: Arc<dyn Store> = self.store.clone();
        crate::fulfil::tick(&store, provider, &clock)
            .await
            .expect("fulfilment tick")
    }

    /// Serve again on the same address with the same data and keys.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind the same port");
        self.serve(listener);
    }

    /// GET `path`, with the bearer `token` when given, and read the JSON answer (any status).
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> T {
        let mut req = self.http.get(self.at(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a JSON answer")
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Log a demo member in over HTTP, enrolling a fresh device key, and return the token.
    pub async fn login(&self, member_no: &str) -> String {
        self.login_device(member_no).await.0
    }

    /// Log a demo member in, enrolling a new device key; returns the token and the device's key.
    pub async fn login_device(&self, member_no: &str) -> (String, ed25519_dalek::SigningKey) {
        use base64::Engine;
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let public =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let resp = self
            .http
            .post(self.at("/v1/login"))
            .json(
                &serde_json::json!({"member_no": member_no, "password": seed::DEMO_PASSWORD,
                "device_name": "test", "device_key": public}),
            )
            .send()
            .await
            .expect("login request");
        assert_eq!(resp.status(), 200);
        let token = resp.json::<serde_json::Value>().await.expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string();
        (token, key)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The PostgreSQL server tests use.
pub fn pg_admin_url() -> String {
    std::env::var("UNIONPASS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A uniquely named database, created for one test and dropped (with its connections) after it.
pub struct PgTestDb {
    pub name: String,
    pub url: String,
}

impl PgTestDb {
    pub async fn create() -> PgTestDb {
        use rand::Rng;
        let name = format!(
            "unionpass_test_{}_{:08x}",
            std::process::id(),
            rand::thread_rng().gen::<u32>()
        );
        let admin = pg_admin_url();
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL must run on 127.0.0.1:5432 (user postgres); `cargo xtask test` starts it");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        PgTestDb {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// The rows of `schema_version` (one, when a server migrated it).
    pub async fn schema_versions(&self) -> Vec<i32> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .query("SELECT version FROM schema_version", &[])
            .await
            .expect("the schema version")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl PgTestDb {
    /// For upgrade tests: a new database at schema version `version` (the first `version` steps
    /// of the PostgreSQL migrations, as a server that knew only those left it) holding what the
    /// database at `src_url` (a later version) holds that fits: the rows of every table that
    /// existed then, with the columns it had then; identity counters go on after the copied ids.
    /// The rows are today's (see `unionpass_sqlite::older_copy`).
    pub async fn older_copy(src_url: &str, version: usize) -> PgTestDb {
        let db = PgTestDb::create().await;
        let connect = |url: String| async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            client
        };
        let src = connect(src_url.to_string()).await;
        let mut dst = connect(db.url.clone()).await;
        let tx = dst.transaction().await.expect("begin");
        for m in &crate::store::postgres::MIGRATIONS[..version] {
            tx.batch_execute(m.sql).await.expect(m.name);
        }
        tx.batch_execute(&format!(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES ({version});
             SET LOCAL session_replication_role = replica;"
        ))
        .await
        .expect("version and no reference checks while copying");
        let columns = "SELECT table_name::text, column_name::text FROM information_schema.columns
                       WHERE table_schema = 'public' AND table_name <> 'schema_version'";
        let now: Vec<(String, String)> = src
            .query(columns, &[])
            .await
            .expect("columns now")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut then: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for r in tx.query(columns, &[]).await.expect("columns then") {
            let (table, column): (String, String) = (r.get(0), r.get(1));
            if now.contains(&(table.clone(), column.clone())) {
                then.entry(table).or_default().push(format!("\"{column}\""));
            }
        }
        for (table, cols) in &then {
            let cols = cols.join(", ");
            let rows: String = src
                .query_one(
                    &format!(
                        "SELECT coalesce(json_agg(t), '[]')::text FROM (SELECT {cols} FROM \"{table}\") t"
                    ),
                    &[],
                )
                .await
                .expect("read rows")
                .get(0);
            tx.execute(
                &format!(
                    "INSERT INTO \"{table}\" ({cols}) OVERRIDING SYSTEM VALUE
                     SELECT {cols} FROM json_populate_recordset(NULL::\"{table}\", $1::text::json)"
                ),
                &[&rows],
            )
            .await
            .unwrap_or_else(|e| panic!("copy {table}: {e}"));
        }
        let identities = tx
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND is_identity = 'YES'",
                &[],
            )
            .await
            .expect("identity columns");
        for r in identities {
            let (table, column): (String, String) = (r.get(0), r.get(1));
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),
                                   coalesce(max(\"{column}\"), 0) + 1, false) FROM \"{table}\""
                ),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("identity of {table}.{column}: {e}"));
        }
        tx.commit().await.expect("commit the copy");
        db
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let (admin, name) = (pg_admin_url(), self.name.clone());
        // Drop runs inside or outside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            })
        })
        .join();
    }
}
