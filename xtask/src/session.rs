//! Run the rest of a command inside a headless session: Xvfb (when there is no display), a
//! private D-Bus session bus, and a throw-away unlocked keyring (`xtask/session.sh`).

use std::path::Path;
use std::process::Command;

use crate::util::{root, run};

/// Re-run this xtask binary with `args` inside the session.
pub fn reexec(args: &[&str]) -> anyhow::Result<()> {
    run(&mut session(args)?)
}

/// [`reexec`] for the demo, which runs until Ctrl-C: the session gets its own process group, so
/// the terminal's Ctrl-C reaches only this process, which asks the inner xtask (its pid in
/// `pid_file`) to stop the app and the servers in order; the display and the bus go last.
/// Without this, Ctrl-C hit Xvfb, the bus and the app at once, and the app died mid-frame
/// with a lost-bus error and a stack trace.
pub fn reexec_until_interrupted(args: &[&str], pid_file: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _ = std::fs::remove_file(pid_file);
    let stopping = Arc::new(AtomicBool::new(false));
    let (flag, file) = (stopping.clone(), pid_file.to_path_buf());
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            return; // asked once already
        }
        // not eprintln!: with stderr gone (a closed pipe) it would panic before the kill
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            "\n[xtask] stopping the demo…\n".as_bytes(),
        );
        if let Ok(pid) = std::fs::read_to_string(&file) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
    })?;
    let mut c = session(args)?;
    c.process_group(0);
    eprintln!("[xtask] $ {}", crate::util::show(&c));
    let status = c.status()?;
    if stopping.load(Ordering::SeqCst) {
        eprintln!("[xtask] demo stopped");
        return Ok(());
    }
    anyhow::ensure!(status.success(), "the demo ended with {status}");
    Ok(())
}

fn session(args: &[&str]) -> anyhow::Result<Command> {
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
    Ok(c)
}
