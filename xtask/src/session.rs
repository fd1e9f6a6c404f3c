//! Run the rest of a command inside a headless session: Xvfb (when there is no display), a
//! private D-Bus session bus, and a throw-away unlocked keyring (`xtask/session.sh`).

use std::process::Command;

use crate::util::{root, run};

/// Re-run this xtask binary with `args` inside the session.
pub fn reexec(args: &[&str]) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let script = root().join("xtask/session.sh");
    let mut c = if std::env::var_os("DISPLAY").is_some()
        && !args.first().is_some_and(|a| a.starts_with("test"))
    {
        // a desktop: show the window there
        let mut c = Command::new("dbus-run-session");
        c.arg("--");
        c
    } else {
        let mut c = Command::new("xvfb-run");
        c.args([
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            "dbus-run-session",
            "--",
        ]);
        c
    };
    c.arg(script)
        .arg(me)
        .args(args)
        .env("NO_AT_BRIDGE", "1")
        .current_dir(root());
    run(&mut c)
}
