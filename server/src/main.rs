//! `unionpass-server`: serve the union API, or seed demo data.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use unionpass_server::keys::UnionKeys;
use unionpass_server::store::{SqliteStore, Store};
use unionpass_server::{seed, AppState, Clock, SystemClock};

#[derive(Parser)]
#[command(
    name = "unionpass-server",
    version,
    about = "The UnionPass union server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// The SQLite database file (created if missing).
        #[arg(long, env = "UNIONPASS_DB")]
        db: PathBuf,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Folder of the union signing keys [default: next to the database, `<db>.keys`].
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
    },
    /// Create data in the database.
    Seed {
        #[arg(long, env = "UNIONPASS_DB")]
        db: PathBuf,
        /// Demo unions and members (idempotent).
        #[arg(long)]
        demo: bool,
    },
}

fn keys_dir(db: &Path, keys: Option<PathBuf>) -> PathBuf {
    keys.unwrap_or_else(|| {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".keys");
        db.with_file_name(name)
    })
}

fn open_store(db: &Path) -> anyhow::Result<SqliteStore> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    SqliteStore::open(db).with_context(|| format!("opening the database {}", db.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    match cli.command {
        Command::Serve {
            db,
            listen,
            keys,
            json_logs,
        } => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr);
            if json_logs {
                builder.json().init();
            } else {
                builder.init();
            }
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let store = open_store(&db)?;
            let keys = UnionKeys::load_or_create(&keys_dir(&db, keys), clock.now())?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            // The first line on stdout is the address: scripts and tests read it (port 0).
            println!("unionpass-server listening on http://{addr}");
            tracing::info!(%addr, db = %db.display(), kid = %keys.current().kid.to_hex(), "serving");
            let state = AppState::new(Arc::new(store), keys, clock);
            unionpass_server::serve(listener, state, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Seed { db, demo } => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            anyhow::ensure!(demo, "nothing to seed: pass --demo");
            let store = open_store(&db)?;
            let created = seed::seed_demo(&store as &dyn Store, SystemClock.now()).await?;
            println!(
                "created {created} demo accounts in {}; every password is {}",
                db.display(),
                seed::DEMO_PASSWORD
            );
            for a in seed::demo_accounts() {
                println!(
                    "  {}  {}  {}  ({})",
                    a.member_no,
                    a.name,
                    a.union,
                    a.role.as_str()
                );
            }
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
