//! `cargo xtask demo`: a local union server with demo data and the app signed in as a member.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

use crate::util::{profile_dir, root};

/// 32 random hex characters from the OS.
fn uuid_like() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return; // already ended (and reaped: its pid may be someone else's now)
        }
        // SIGTERM first so it can shut down cleanly
        let _ = Command::new("kill")
            .arg(self.0.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// Start `unionpass-server serve <args>` logging at `level` (stderr to `log`); returns it and the
/// URL it prints first.
pub fn spawn_server(
    bin: &Path,
    args: &[String],
    level: &str,
    log: &Path,
) -> anyhow::Result<(Guard, String)> {
    let mut child = Command::new(bin)
        .args(["serve"])
        .args(args)
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting the union server")?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first)?;
    let guard = Guard(child);
    let url = first
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .with_context(|| format!("the server did not start (see {})", log.display()))?
        .to_string();
    Ok((guard, url))
}

/// Start the demo fulfilment provider (`unionpass-provider`, next to the server binary) on a free
/// loopback port; returns it and its URL.
pub fn start_provider(server_bin: &Path) -> anyhow::Result<(Guard, String)> {
    let bin = server_bin.with_file_name("unionpass-provider");
    let mut child = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut first)?;
    let guard = Guard(child);
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("the provider did not start: {first:?}"))?;
    Ok((guard, format!("http://{addr}")))
}

/// Seed demo data into the SQLite file `db` (with `everything`: activities, campaigns, coupons and
/// redemptions too) and serve it on `listen`, with `provider` fulfilling
/// redemptions.
pub fn start_server(
    bin: &Path,
    db: &Path,
    listen: &str,
    log: &Path,
    provider: Option<&str>,
    everything: bool,
) -> anyhow::Result<(Guard, String)> {
    let mut seed = Command::new(bin);
    seed.args(["seed", "--demo", "--db"]).arg(db);
    if everything {
        seed.args(["--activities", "--campaigns"]);
    }
    let seed = seed.output()?;
    if !seed.status.success() {
        bail!("seeding failed: {}", String::from_utf8_lossy(&seed.stderr));
    }
    print!("{}", String::from_utf8_lossy(&seed.stdout));
    let mut args = vec![
        "--listen".to_string(),
        listen.to_string(),
        "--db".to_string(),
        db.to_string_lossy().into_owned(),
    ];
    if let Some(p) = provider {
        args.extend(["--provider".to_string(), p.to_string()]);
    }
    spawn_server(bin, &args, "info", log)
}

/// Sign `member` in on a device data dir through the client library (token and device key into
/// the keyring), with the `unionpass-signin` tool built next to the app.
pub fn sign_in(bin: &Path, data_dir: &Path, url: &str, member: &str) -> anyhow::Result<()> {
    let status = Command::new(bin.join("unionpass-signin"))
        .arg(data_dir)
        .arg(url)
        .arg(member)
        .env("UNIONPASS_PASSWORD", "demo1234")
        .status()
        .context("running unionpass-signin (built by `cargo xtask build`)")?;
    if !status.success() {
        bail!("signing in {member} failed ({status})");
    }
    Ok(())
}

/// Where the demo's inner xtask writes its pid, for the outer one to ask it to stop.
pub fn pid_file() -> std::path::PathBuf {
    root().join(".demo/inner.pid")
}

pub fn run(member: &str, port: u16) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    // asked to stop (SIGTERM from the outer xtask on Ctrl-C): end the app, then the servers
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    let demo = root().join(".demo");
    std::fs::create_dir_all(&demo)?;
    std::fs::write(pid_file(), std::process::id().to_string())?;
    let app_dir = demo.join("app");
    let _ = std::fs::remove_dir_all(&app_dir); // a fresh device each time; the server data stays
    std::fs::create_dir_all(&app_dir)?;
    let bin = profile_dir(false);
    // the provider channel's shared secret, for this demo's provider and server (children
    // inherit it)
    std::env::set_var("UNIONPASS_PROVIDER_SECRET", uuid_like());
    let (_provider, provider_url) = start_provider(&bin.join("unionpass-server"))?;
    let (_server, url) = start_server(
        &bin.join("unionpass-server"),
        &demo.join("server.sqlite"),
        &format!("127.0.0.1:{port}"),
        &demo.join("server.log"),
        Some(&provider_url),
        true,
    )?;
    sign_in(&bin, &app_dir, &url, member)?;
    println!();
    println!("union server: {url}   (log: .demo/server.log)");
    println!(
        "demo provider (phone/electricity/catalog): {provider_url} (requests are signed with a secret made for this demo)"
    );
    println!("app signed in as {member}; every demo account's password is demo1234");
    println!("staff account: S20001");
    if let Some(display) = std::env::var_os("DISPLAY") {
        let display = display.to_string_lossy();
        match std::env::var_os("XAUTHORITY") {
            Some(auth) => println!(
                "window on the virtual display {display}; screenshot from another shell:\n  XAUTHORITY={} DISPLAY={display} import -window root shot.png",
                auth.to_string_lossy()
            ),
            None => println!("window on DISPLAY={display}"),
        }
    }
    println!(
        "closing the window keeps the app in the tray (reminders); quit from the tray, or Ctrl-C"
    );
    let app = Command::new(bin.join("unionpass-app"))
        .env("UNIONPASS_DATA_DIR", &app_dir)
        .env("UNIONPASS_SERVER", &url)
        .spawn()
        .context("starting the app")?;
    let mut app = Guard(app);
    loop {
        if let Some(status) = app.0.try_wait()? {
            println!("app exited ({status})");
            break;
        }
        if stop.load(Ordering::SeqCst) {
            drop(app); // SIGTERM, then wait for it
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(pid_file());
    Ok(())
}
