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
