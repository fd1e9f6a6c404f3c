//! The desktop around the app window in tests: a notification server on the test's private
//! session bus that records every `org.freedesktop.Notifications.Notify` call (and can click a
//! notification), and the window manager's "close" (`WM_DELETE_WINDOW`, as the title bar's ×
//! sends it) over X11.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, EventMask, MapState, Window,
};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

/// One notification as the app sent it, and when it arrived.
#[derive(Clone, Debug)]
pub struct Note {
    pub id: u32,
    pub app_name: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    /// The `sound-name` hint, if any.
    pub sound: Option<String>,
    pub received: DateTime<Utc>,
}

struct Recorder {
    next: AtomicU32,
    tx: mpsc::UnboundedSender<Note>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let received = Utc::now();
        let id = if replaces_id != 0 {
            replaces_id
        } else {
            self.next.fetch_add(1, Ordering::SeqCst)
        };
        let sound = hints
            .get("sound-name")
            .and_then(|v| String::try_from(v.try_clone().ok()?).ok());
        let _ = self.tx.send(Note {
            id,
            app_name,
            summary,
            body,
            actions,
            sound,
            received,
        });
        id
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        ["actions", "body", "sound"].map(String::from).to_vec()
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "unionpass-e2e".into(),
            "UnionPass".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(emitter: &SignalEmitter<'_>, id: u32, key: &str) -> zbus::Result<()>;
}

const PATH: &str = "/org/freedesktop/Notifications";

/// The notification server on the session bus (the one the app inherits).
pub struct Notifications {
    conn: zbus::Connection,
    rx: mpsc::UnboundedReceiver<Note>,
}

impl Notifications {
    pub async fn start() -> Result<Notifications> {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Recorder {
            next: AtomicU32::new(1),
            tx,
        };
        let conn = zbus::connection::Builder::session()?
            .name("org.freedesktop.Notifications")?
            .serve_at(PATH, recorder)?
            .build()
            .await
            .context("owning org.freedesktop.Notifications on the session bus")?;
        Ok(Notifications { conn, rx })
    }

    /// The next notification, waiting up to `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Note> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The member clicks the notification (the spec's `default` action).
    pub async fn click(&self, id: u32) -> Result<()> {
        let iface = self
            .conn
            .object_server()
            .interface::<_, Recorder>(PATH)
            .await?;
        Recorder::action_invoked(iface.signal_emitter(), id, "default").await?;
        Ok(())
    }
}

fn atom(conn: &impl x11rb::connection::Connection, name: &str) -> Result<u32> {
    Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
}

/// The visible top-level windows of process `pid` that accept `WM_DELETE_WINDOW`.
fn windows_of(
    conn: &impl x11rb::connection::Connection,
    root: Window,
    pid: u32,
) -> Result<Vec<Window>> {
    let pid_atom = atom(conn, "_NET_WM_PID")?;
    let protocols = atom(conn, "WM_PROTOCOLS")?;
    let delete = atom(conn, "WM_DELETE_WINDOW")?;
    let mut out = Vec::new();
    for w in conn.query_tree(root)?.reply()?.children {
        let owner = conn
            .get_property(false, w, pid_atom, AtomEnum::CARDINAL, 0, 1)?
            .reply()?;
        if owner.value32().and_then(|mut v| v.next()) != Some(pid) {
            continue;
        }
        let accepts = conn
            .get_property(false, w, protocols, AtomEnum::ATOM, 0, 32)?
            .reply()?;
        if !accepts
            .value32()
            .is_some_and(|mut v| v.any(|a| a == delete))
        {
            continue;
        }
        if conn.get_window_attributes(w)?.reply()?.map_state == MapState::VIEWABLE {
            out.push(w);
        }
    }
    Ok(out)
}

/// How many visible windows process `pid` has.
pub fn visible_windows(pid: u32) -> Result<usize> {
    let (conn, screen) = x11rb::connect(None)?;
    let root = conn.setup().roots[screen].root;
    Ok(windows_of(&conn, root, pid)?.len())
}

/// Wait until process `pid` shows a window (`shown`) or none (`!shown`), for up to `secs`;
/// `what` names the failure.
pub async fn wait_windows(pid: u32, shown: bool, secs: u64, what: &str) -> Result<()> {
    let by = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while (visible_windows(pid)? > 0) != shown {
        if std::time::Instant::now() > by {
            bail!("{what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Close process `pid`'s window as the × in its title bar does.
pub fn close_window(pid: u32) -> Result<()> {
    let (conn, screen) = x11rb::connect(None)?;
    let root = conn.setup().roots[screen].root;
    let windows = windows_of(&conn, root, pid)?;
    if windows.is_empty() {
        bail!("process {pid} shows no window to close");
    }
    let protocols = atom(&conn, "WM_PROTOCOLS")?;
    let delete = atom(&conn, "WM_DELETE_WINDOW")?;
    for w in windows {
        let ev = ClientMessageEvent::new(32, w, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
        conn.send_event(false, w, EventMask::NO_EVENT, ev)?;
    }
    conn.flush()?;
    Ok(())
}

/// Close process `pid`'s window as a person does who sees it still there after a click on its ×:
/// again, every 3 s, up to five times. Twice on a loaded
/// machine (a fresh CI machine, with the server tests beside the window) a close sent within
/// seconds of the app's start never reached the app: its handler logged nothing and the window
/// stayed up for 15 s. Not explained; a close that needed more than one is recorded in
/// `E2E_SHOTS/close-retries.log`, so how often it happens is on record.
pub async fn close_until_hidden(pid: u32, what: &str) -> Result<()> {
    if visible_windows(pid)? == 0 {
        bail!("{what}: process {pid} shows no window to close");
    }
    let mut closes = 0;
    while visible_windows(pid)? > 0 {
        if closes == 5 {
            bail!("{what}: the window did not close after {closes} closes");
        }
        // the window may hide between the look and the close: then there is none to close
        if let Err(e) = close_window(pid) {
            if visible_windows(pid)? > 0 {
                return Err(e);
            }
        }
        closes += 1;
        let _ = wait_windows(pid, false, 3, what).await;
    }
    if closes > 1 {
        // (a close that was only slow to hide counts here too: the record errs towards showing)
        let dir = std::env::var_os("E2E_SHOTS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-shots")
            });
        let line = format!("{} {what}: {closes} closes\n", Utc::now().to_rfc3339());
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("close-retries.log"))
        {
            let _ = std::io::Write::write_all(&mut f, line.as_bytes());
        }
    }
    Ok(())
}

/// The pid of the app process running on `data_dir` (found by its environment).
pub fn app_pid(data_dir: &std::path::Path) -> Option<u32> {
    app_pids(data_dir).into_iter().next()
}

/// Every app process running on `data_dir`.
pub fn app_pids(data_dir: &std::path::Path) -> Vec<u32> {
    let want = format!("UNIONPASS_DATA_DIR={}", data_dir.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            if comm.trim() != "unionpass-app" {
                return None;
            }
            let env = std::fs::read(e.path().join("environ")).ok()?;
            env.split(|b| *b == 0)
                .any(|kv| kv == want.as_bytes())
                .then_some(pid)
        })
        .collect()
}
