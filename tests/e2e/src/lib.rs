//! The E2E harness: a real union server process, the real app window driven through
//! tauri-driver, screenshots, and QR decoding of what the window shows.
//!
//! `cargo xtask test` sets `APP_BIN` and `SERVER_BIN` to the binaries it just built, `E2E_SHOTS`
//! to the screenshot folder, and runs everything under Xvfb with a private keyring.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};

pub mod desktop;
pub mod tour;

fn bin(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/debug")
            .join(name)
    });
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// The app binary the tests drive (`APP_BIN`, set by `cargo xtask test`).
pub fn app_bin() -> PathBuf {
    bin("APP_BIN", "unionpass-app")
}

/// SIGTERM, then wait: tauri-driver must stop its WebKitWebDriver, the server its listener.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The union server binary, seeded with demo data, on 127.0.0.1 port 0, fulfilling redemptions
/// through the demo provider (its own process, on loopback too).
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub log: PathBuf,
    db: PathBuf,
    provider: Child,
    pub provider_url: String,
    /// The provider channel's shared secret (random per server).
    provider_secret: String,
    /// How this server is served beyond the defaults (kept for restarts).
    extra: Extra,
}

/// Extra environment and `serve` arguments of a test server.
#[derive(Clone, Default)]
struct Extra {
    env: Vec<(String, String)>,
    args: Vec<String>,
}

/// Start the demo provider on a free port; answers it and its URL.
fn start_provider(secret: &str) -> Result<(Child, String)> {
    let bin = bin("PROVIDER_BIN", "unionpass-provider");
    let mut child = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0"])
        .env("UNIONPASS_PROVIDER_SECRET", secret)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("the provider did not start: {line:?}"))?;
    Ok((child, format!("http://{addr}")))
}

fn serve(
    server: &Path,
    db: &Path,
    listen: &str,
    log: &Path,
    provider: &str,
    secret: &str,
    extra: &Extra,
) -> Result<(Child, String)> {
    let mut child = Command::new(server)
        .args([
            "serve",
            "--listen",
            listen,
            "--provider",
            provider,
            "--provider-timeout-ms",
            "1500",
            "--db",
        ])
        .arg(db)
        .args(&extra.args)
        .env("RUST_LOG", "debug")
        .env("UNIONPASS_PROVIDER_SECRET", secret)
        .envs(extra.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?,
        )
        .spawn()
        .with_context(|| format!("starting {}", server.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    if !url.starts_with("http://") {
        bail!("the server did not start: {line:?}");
    }
    Ok((child, url))
}

impl Server {
    /// Serve again on the same address and data (after [`Server::stop`]).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let listen = self.url.trim_start_matches("http://").to_string();
        let (child, _) = serve(
            &bin("SERVER_BIN", "unionpass-server"),
            &self.db,
            &listen,
            &self.log,
            &self.provider_url,
            &self.provider_secret,
            &self.extra,
        )?;
        self.child = Some(child);
        Ok(())
    }

    /// Run an admin command of the server binary on this server's database (e.g. `campaign
    /// create …`); returns its stdout.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(bin("SERVER_BIN", "unionpass-server"))
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .output()?;
        if !out.status.success() {
            bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn start(dir: &Path) -> Result<Server> {
        Self::start_seeded(dir, &[])
    }

    /// The demo members' server, served with extra `serve` arguments (e.g. `--client-*`).
    pub fn start_serving(dir: &Path, args: &[&str]) -> Result<Server> {
        Self::start_seeded_extra(
            dir,
            &[],
            Extra {
                env: Vec::new(),
                args: args.iter().map(|a| a.to_string()).collect(),
            },
        )
    }

    /// A server on the full demo data, as `cargo xtask demo` serves it: campaigns in every
    /// state, full wallets, activities and polls.
    pub fn start_demo(dir: &Path) -> Result<Server> {
        Self::start_seeded(dir, &["--activities", "--campaigns"])
    }

    /// A demo server whose clock runs `secs` seconds ahead of this machine's (behind when
    /// negative): the app must count down and remind by the server's time, not its own.
    pub fn start_with_clock_offset(dir: &Path, secs: i64) -> Result<Server> {
        Self::start_seeded_extra(
            dir,
            &[],
            Extra {
                env: vec![(
                    "UNIONPASS_TEST_CLOCK_OFFSET_SECS".to_string(),
                    secs.to_string(),
                )],
                args: Vec::new(),
            },
        )
    }

    fn start_seeded(dir: &Path, seed_args: &[&str]) -> Result<Server> {
        Self::start_seeded_extra(dir, seed_args, Extra::default())
    }

    fn start_seeded_extra(dir: &Path, seed_args: &[&str], extra: Extra) -> Result<Server> {
        let server = bin("SERVER_BIN", "unionpass-server");
        let db = dir.join("server.sqlite");
        let seed = Command::new(&server)
            .args(["seed", "--demo"])
            .args(seed_args)
            .arg("--db")
            .arg(&db)
            .output()?;
        if !seed.status.success() {
            bail!("seed failed: {}", String::from_utf8_lossy(&seed.stderr));
        }
        let log = dir.join("server.log");
        let provider_secret = uuid::Uuid::new_v4().to_string();
        let (provider, provider_url) = start_provider(&provider_secret)?;
        let (child, url) = serve(
            &server,
            &db,
            "127.0.0.1:0",
            &log,
            &provider_url,
            &provider_secret,
            &extra,
        )?;
        Ok(Server {
            child: Some(child),
            url,
            log,
            db,
            provider,
            provider_url,
            provider_secret,
            extra,
        })
    }

    /// `campaign create` with one coupon per member unless `extra` says otherwise; answers its id.
    #[allow(clippy::too_many_arguments)]
    pub fn create_campaign(
        &self,
        title_zh: &str,
        title_en: &str,
        category: &str,
        face_value_yuan: u32,
        stock: u32,
        release: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        extra: &[&str],
    ) -> Result<i64> {
        let (face, stock) = (face_value_yuan.to_string(), stock.to_string());
        let (release, end) = (release.to_rfc3339(), end.to_rfc3339());
        let mut args = vec![
            "campaign",
            "create",
            "--title-zh",
            title_zh,
            "--title-en",
            title_en,
            "--category",
            category,
            "--face-value",
            &face,
            "--stock",
            &stock,
            "--release-at",
            &release,
            "--end-at",
            &end,
        ];
        args.extend_from_slice(extra);
        let created: serde_json::Value = serde_json::from_str(self.admin(&args)?.trim())?;
        created["id"]
            .as_i64()
            .context("campaign create printed no id")
    }

    /// Tell the provider to `succeed`, `fail` (with `reason`) or `timeout` from now on.
    pub async fn provider_mode(&self, mode: &str, reason: Option<&str>) -> Result<()> {
        use unionpass_server::fulfil::channel;
        let body = serde_json::json!({ "mode": mode, "reason": reason }).to_string();
        let now = chrono::Utc::now().timestamp();
        let sig = channel::sign(
            self.provider_secret.as_bytes(),
            "PUT",
            "/v1/mode",
            now,
            body.as_bytes(),
        );
        let resp = reqwest::Client::new()
            .put(format!("{}/v1/mode", self.provider_url))
            .header(channel::TIMESTAMP, now)
            .header(channel::SIGNATURE, sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "provider mode: {}",
            resp.status()
        );
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    /// Freeze the server (SIGSTOP): connections are accepted by the kernel and never answered,
    /// a hanging server as the app meets it. `resume` lets it go on.
    pub fn pause(&self) -> Result<()> {
        self.signal("-STOP")
    }

    pub fn resume(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let child = self.child.as_ref().context("the server is not running")?;
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()?
            .success();
        anyhow::ensure!(ok, "kill {sig} failed");
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = self.provider.kill();
        let _ = self.provider.wait();
    }
}

/// One app window, through its own tauri-driver.
pub struct App {
    driver: Child,
    pub c: Client,
    data_dir: PathBuf,
}

impl App {
    /// Start the app on `data_dir` (its store, logs and WebKit data) talking to `server_url`.
    /// `port` and `port + 1` are the WebDriver ports; give each window its own.
    pub async fn launch(data_dir: &Path, server_url: &str, port: u16) -> Result<App> {
        Self::launch_program(&app_bin(), data_dir, server_url, port).await
    }

    /// [`App::launch`] of another build of the app (the installed package's).
    pub async fn launch_program(
        app: &Path,
        data_dir: &Path,
        server_url: &str,
        port: u16,
    ) -> Result<App> {
        std::fs::create_dir_all(data_dir)?;
        let driver = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &(port + 1).to_string(),
            ])
            // inherited by WebKitWebDriver and then by the app
            .env("UNIONPASS_DATA_DIR", data_dir)
            .env("UNIONPASS_SERVER", server_url)
            .env("XDG_DATA_HOME", data_dir.join("xdg"))
            // the app's own home: autostart entries and the like stay in the test's folder
            .env("HOME", data_dir.join("home"))
            .env("RUST_LOG", "debug")
            .spawn()
            .context("starting tauri-driver (run the suite through `cargo xtask test`)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tauri-driver did not listen on {port}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        let c = ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a WebDriver session on the app")?;
        Ok(App {
            driver,
            c,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The app's process id (it runs under WebKitWebDriver).
    pub fn pid(&self) -> Option<u32> {
        desktop::app_pid(&self.data_dir)
    }

    pub async fn close(mut self) {
        let _ = self.keep_painting().await;
        // bounded: if the session does not end, stopping tauri-driver ends the app too
        let _ = tokio::time::timeout(Duration::from_secs(15), self.c.clone().close()).await;
        terminate(&mut self.driver);
    }

    /// The element's text once it equals `want` (or fail after `secs`).
    pub async fn wait_text(&self, css: &str, want: &str, secs: u64) -> Result<()> {
        self.wait_until(css, secs, &format!("{want:?}"), |t| t.trim() == want)
            .await
            .map(|_| ())
    }

    /// Poll the element's text (no-break spaces read as spaces) until `ok` holds; on timeout, save a screenshot and fail with the
    /// last text seen and the app's log.
    pub async fn wait_until(
        &self,
        css: &str,
        secs: u64,
        wanted: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    // a no-break space (a line's part kept whole) reads as a space
                    let t = t.replace('\u{a0}', " ");
                    if ok(&t) {
                        return Ok(t);
                    }
                    last = t;
                }
            }
            if Instant::now() > deadline {
                let _ = self
                    .shot(&format!(
                        "failed-{}",
                        css.replace(|c: char| !c.is_alphanumeric(), "_")
                    ))
                    .await;
                bail!(
                    "{css}: wanted {wanted}, last saw {last:?}\n--- app log ---\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the app logged to its files (one per day: `logs/unionpass.<date>.log`), oldest
    /// first.
    pub fn log_text(&self) -> String {
        log_files(&self.data_dir)
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect()
    }

    /// The last lines of the app's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Wait until the element's text contains `needle` (or fail after `secs`); returns the text.
    pub async fn wait_contains(&self, css: &str, needle: &str, secs: u64) -> Result<String> {
        self.wait_until(css, secs, &format!("text containing {needle:?}"), |t| {
            t.contains(needle)
        })
        .await
    }

    /// Give a file to an `<input type=file>` (as a person choosing it would).
    pub async fn choose_file(&self, css: &str, path: &Path) -> Result<()> {
        self.wait_for(css, 10)
            .await?
            .send_keys(&path.to_string_lossy())
            .await?;
        Ok(())
    }

    /// Wait until no element matches `css` (or fail after `secs`).
    pub async fn wait_gone(&self, css: &str, secs: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.c.find_all(Locator::Css(css)).await?.is_empty() {
            if Instant::now() > deadline {
                bail!("{css} is still shown after {secs} s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    pub async fn wait_for(&self, css: &str, secs: u64) -> Result<fantoccini::elements::Element> {
        self.c
            .wait()
            .at_most(Duration::from_secs(secs))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("waiting for {css}"))
    }

    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self
            .c
            .find(Locator::Css(css))
            .await?
            .text()
            .await?
            .trim()
            .to_string())
    }

    /// Click the element once it is there and enabled, as a person waits for a greyed-out
    /// button (e.g. "sync now" during a background sync) before tapping it; after 10 s it is
    /// clicked as it is.
    /// Scroll the element to the middle of the window (for a screenshot of it, or a tap).
    pub async fn center(&self, css: &str) -> Result<()> {
        self.c
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
                vec![serde_json::json!(css)],
            )
            .await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        let el = self.wait_for(css, 10).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !el.is_enabled().await.unwrap_or(true) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        el.click().await?;
        Ok(())
    }

    /// Sign in through the login form (the server address is prefilled from `UNIONPASS_SERVER`).
    pub async fn sign_in(&self, member_no: &str, password: &str) -> Result<()> {
        self.wait_for("#member-no", 30)
            .await?
            .send_keys(member_no)
            .await?;
        self.c
            .find(Locator::Css("#password"))
            .await?
            .send_keys(password)
            .await?;
        self.click("#login-submit").await
    }

    /// Keep frames coming while WebDriver waits for one. The app paints without accelerated
    /// compositing (as it ships: `native::configure_webview`), and then WebKitWebDriver's
    /// screenshot and session close wait for the page's next paint, which a still page never
    /// makes after a resize; they hung. A 1-px mark animated by the Web Animations API (the
    /// CSP allows no inline style sheet) paints a frame every few milliseconds. Test-only: the
    /// app is not changed for it.
    pub async fn keep_painting(&self) -> Result<()> {
        self.c
            .execute(
                "if (!document.getElementById('e2e-heartbeat')) {
                   const m = document.createElement('div');
                   m.id = 'e2e-heartbeat';
                   m.setAttribute('aria-hidden', 'true');
                   Object.assign(m.style, { position: 'fixed', left: '0', bottom: '0',
                     width: '1px', height: '1px', background: '#000', pointerEvents: 'none' });
                   document.body.appendChild(m);
                   m.animate([{ opacity: 0.01 }, { opacity: 0.02 }],
                             { duration: 200, iterations: Infinity, direction: 'alternate' });
                 }",
                vec![],
            )
            .await?;
        Ok(())
    }

    /// A screenshot under `E2E_SHOTS` (default `target/e2e-shots`); returns the PNG bytes.
    pub async fn shot(&self, name: &str) -> Result<Vec<u8>> {
        self.keep_painting().await?;
        tokio::time::sleep(Duration::from_millis(800)).await; // the screenshot can lag a frame
        let png = tokio::time::timeout(Duration::from_secs(30), self.c.screenshot())
            .await
            .with_context(|| format!("screenshot {name} timed out"))??;
        let dir = std::env::var_os("E2E_SHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-shots")
            });
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), &png)?;
        Ok(png)
    }
}

/// Every QR code found in a PNG, decoded.
pub fn decode_qr(png: &[u8]) -> Result<Vec<String>> {
    let img = image::load_from_memory(png)?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    Ok(prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect())
}

/// The paths of files under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

/// The session token the app stored in the keyring for the device in `data_dir`.
pub fn token_of(data_dir: &Path) -> Result<String> {
    let store =
        unionpass_client::store::Store::open(&data_dir.join(unionpass_client::client::DB_FILE))?;
    let secret = unionpass_client::secrets::SessionSecret::for_device(store.device_id()?)?;
    Ok(secret
        .load()?
        .context("no token in the keyring")?
        .expose()
        .clone())
}

/// The device's passport signing key in the keyring, base64 as stored there.
pub fn device_key_of(data_dir: &Path) -> Result<Vec<u8>> {
    let store =
        unionpass_client::store::Store::open(&data_dir.join(unionpass_client::client::DB_FILE))?;
    let secret = unionpass_client::secrets::DeviceKeySecret::for_device(store.device_id()?)?;
    Ok(secret
        .load()?
        .context("no device key in the keyring")?
        .to_bytes()
        .to_vec())
}

/// A member signed in over HTTP on a device of the test's own (a fresh key registered at login),
/// whose live passport code the test can make: what a second phone would show.
pub struct Phone {
    pub member_id: i64,
    pub token: String,
    credential: Vec<u8>,
    key: ed25519_dalek::SigningKey,
}

impl Phone {
    pub async fn sign_in(server_url: &str, member_no: &str) -> Result<Phone> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let http = reqwest::Client::new();
        let login: serde_json::Value = http
            .post(format!("{server_url}/v1/login"))
            .json(&serde_json::json!({
                "member_no": member_no, "password": "demo1234", "device_name": "e2e phone",
                "device_key": b64.encode(key.verifying_key().as_bytes()),
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = login["token"].as_str().context("a token")?.to_string();
        let page: unionpass_core::api::SyncResponse = http
            .get(format!("{server_url}/v1/sync?cursor=0"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let credential = b64.decode(&page.passport.context("a credential")?.credential)?;
        Ok(Phone {
            member_id: page.profile.member_id,
            token,
            credential,
            key,
        })
    }

    /// The QR text this phone shows at `at`.
    pub fn code_at(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        use unionpass_core::passport;
        passport::present(&self.credential, &self.key, passport::step_of(at))
    }
}

/// The app's daily log files under `data_dir`, oldest first.
pub fn log_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("unionpass.") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    files
}
