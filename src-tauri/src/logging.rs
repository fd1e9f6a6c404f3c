//! Logs go to stderr and to `<data dir>/logs/unionpass.<date>.log`, a new file each day, the last
//! [`KEEP_FILES`] kept (older ones are deleted as the app rolls over). The UI's panics arrive
//! through the `log_ui_panic` command. No secret is ever logged: the client library wraps the
//! token in `Sensitive`, and the E2E suite greps the log for it.

use std::path::Path;

use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Days of logs kept on the device.
pub const KEEP_FILES: usize = 7;

/// The daily log files in `dir`, keeping the last [`KEEP_FILES`].
pub fn appender(dir: &Path) -> Option<RollingFileAppender> {
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("unionpass")
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(dir)
        .ok()
}

/// Delete all but the newest `keep` log files in `dir` (by modification time; the appender prunes
/// only when it rolls over while running, and a member may quit the app every day). The file of
/// earlier versions, `unionpass.log`, counts as one of them.
pub fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("unionpass.") && n.ends_with(".log"))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    logs.sort();
    let extra = logs.len().saturating_sub(keep);
    for (_, path) in logs.into_iter().take(extra) {
        let _ = std::fs::remove_file(path);
    }
}

pub fn init(dir: &Path) {
    let _ = std::fs::create_dir_all(dir);
    // room for today's file among the kept ones
    prune(dir, KEEP_FILES.saturating_sub(1));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = appender(dir).map(|w| fmt::layer().with_writer(w).with_ansi(false));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .with(file_layer)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_log_files_are_pruned_and_today_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let start = std::time::SystemTime::now() - day * 20;
        // twelve days of logs, the legacy file the oldest, and a file that is not a log
        let mut names = vec!["unionpass.log".to_string()];
        names.extend((1..=11).map(|d| format!("unionpass.2026-11-{d:02}.log")));
        for (i, name) in names.iter().enumerate() {
            let path = dir.path().join(name);
            std::fs::write(&path, name).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(start + day * i as u32).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "keep").unwrap();

        prune(dir.path(), KEEP_FILES - 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = (6..=11)
            .map(|d| format!("unionpass.2026-11-{d:02}.log"))
            .collect();
        expected.push("notes.txt".into());
        expected.sort();
        assert_eq!(left, expected);

        use std::io::Write;
        let mut today = appender(dir.path()).unwrap();
        today.write_all(b"hello\n").unwrap();
        today.flush().unwrap();
        let logs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name().into_string().unwrap();
                n.starts_with("unionpass.") && n.ends_with(".log")
            })
            .count();
        assert_eq!(logs, KEEP_FILES);
    }
}
