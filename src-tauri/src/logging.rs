//! Logs go to stderr and to `<data dir>/logs/unionpass.log`. No secret is ever logged: the client
//! library wraps the token in `Sensitive`, and the E2E suite greps the log for it.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

pub fn init(dir: &Path) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let file = std::fs::create_dir_all(dir)
        .ok()
        .map(|_| tracing_appender::rolling::never(dir, "unionpass.log"));
    let file_layer = file.map(|w| fmt::layer().with_writer(w).with_ansi(false));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .with(file_layer)
        .try_init();
}
