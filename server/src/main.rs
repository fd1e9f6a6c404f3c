//! `unionpass-server`: serve the union API, or seed demo data.

mod activity_cmd;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use unionpass_core::campaign::{Campaign, Category};
use unionpass_server::keys::UnionKeys;
use unionpass_server::store::prelude::*;
use unionpass_server::store::{PgStore, SqliteStore};
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
        #[command(flatten)]
        db: StoreArgs,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Folder of the union signing keys [default: next to the database, `<db>.keys`].
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
        /// Grab requests per second allowed from one address (0: no limit, for load tests).
        #[arg(long, default_value_t = 500.0)]
        grab_address_rate: f64,
        /// Sync requests (pages and pushes) per second allowed for one member, after a burst of
        /// `--sync-burst` (0: no limit). Past it the app is told when to come back.
        #[arg(long, default_value_t = unionpass_server::DEFAULT_SYNC_RATE.0)]
        sync_rate: f64,
        #[arg(long, default_value_t = unionpass_server::DEFAULT_SYNC_RATE.1)]
        sync_burst: f64,
        /// Connections served at once; more wait to be taken. Keep it under the process's
        /// open-file limit (`ulimit -n`).
        #[arg(long, default_value_t = unionpass_server::listen::ConnLimits::default().max)]
        max_connections: usize,
        /// Connections one address may hold open at once (a trusted proxy's is not limited). A
        /// workplace's members behind one NAT share it.
        #[arg(long, default_value_t = unionpass_server::listen::ConnLimits::default().per_address)]
        max_connections_per_address: usize,
        /// No-shows (signed up, did not check in) that close popular activities to a member
        /// (0: the rule is off).
        #[arg(long, default_value_t = 2)]
        no_show_misses: u32,
        /// How far back no-shows count, in days.
        #[arg(long, default_value_t = 90)]
        no_show_window_days: i64,
        /// How long popular activities stay closed after the last no-show, in days.
        #[arg(long, default_value_t = 30)]
        no_show_ban_days: i64,
        /// A reverse proxy (address or CIDR, repeatable) whose `X-Forwarded-For` names the real
        /// client; from anyone else the header is ignored. None by default.
        #[arg(long = "trusted-proxy", value_name = "ADDR_OR_CIDR", value_parser = parse_net)]
        trusted_proxies: Vec<ipnet::IpNet>,
        /// The fulfilment provider for redemptions (e.g. a `unionpass-provider` at
        /// http://127.0.0.1:8090); without one, redemptions stay held.
        #[arg(long, env = "UNIONPASS_PROVIDER")]
        provider: Option<String>,
        /// How long the provider may take to answer before it is asked what became of the order.
        #[arg(long, default_value_t = 5000)]
        provider_timeout_ms: u64,
        /// The provider channel's shared secret (every request and answer is signed with it).
        #[arg(long, env = "UNIONPASS_PROVIDER_SECRET", hide_env_values = true)]
        provider_secret: Option<String>,
        /// The oldest app version served; older apps are told to update (`client_too_old`).
        #[arg(long, default_value = "0.0.0", value_parser = parse_version)]
        client_min_version: String,
        /// The newest app version available (the app offers it in 我的) [default: this
        /// server's version].
        #[arg(long, value_parser = parse_version)]
        client_latest_version: Option<String>,
        /// Where a platform's members download the app (`PLATFORM=URL`, repeatable; platforms
        /// as `GET /v1/version` names them: linux-x86_64, windows-x86_64, macos-aarch64,
        /// android, ios).
        #[arg(long = "client-download", value_name = "PLATFORM=URL", value_parser = parse_download)]
        client_downloads: Vec<(String, String)>,
        /// The newest version's package the app's own updater installs (`KIND=URL`,
        /// repeatable), by platform and package kind: linux-x86_64-deb, linux-x86_64-rpm,
        /// linux-x86_64-appimage, windows-x86_64-nsis, macos-aarch64-app. Each needs its
        /// --client-update-signature.
        #[arg(long = "client-update", value_name = "KIND=URL", value_parser = parse_download)]
        client_updates: Vec<(String, String)>,
        /// The signature file the Tauri bundler wrote beside that package (`KIND=FILE.sig`,
        /// repeatable), made with the union's release key.
        #[arg(long = "client-update-signature", value_name = "KIND=FILE")]
        client_update_signatures: Vec<String>,
    },
    /// Create data in the database.
    Seed {
        #[command(flatten)]
        db: StoreArgs,
        /// Demo unions and members (idempotent).
        #[arg(long)]
        demo: bool,
        /// With --demo: activities in every state too (sign-up opening in two minutes, full with
        /// a waitlist, one today M10001 has a place at, a walk-in); `cargo xtask demo` adds them.
        #[arg(long)]
        activities: bool,
        /// With --demo: the grab calendar in every state (releasing in two minutes, live, sold
        /// out, ended), every member's wallet with a coupon in each category and status, and
        /// redemptions settled, refunded and held; `cargo xtask demo` adds them.
        #[arg(long)]
        campaigns: bool,
    },
    /// Coupon campaigns: create, list, stats.
    Campaign {
        #[command(subcommand)]
        action: CampaignCmd,
    },
    /// Activities members sign up for: create, move, cancel, list, sign-ups.
    Activity {
        #[command(subcommand)]
        action: activity_cmd::ActivityCmd,
    },
    /// Needs polls before activities: create, list, results.
    Poll {
        #[command(subcommand)]
        action: activity_cmd::PollCmd,
    },
    /// Offline events that staff check members in to: create, list.
    Event {
        #[command(subcommand)]
        action: EventCmd,
    },
    /// Union signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysCmd,
    },
    /// Points: grant to a member, stock the catalog.
    Points {
        #[command(subcommand)]
        action: PointsCmd,
    },
    /// Member accounts.
    Member {
        #[command(subcommand)]
        action: MemberCmd,
    },
    /// (benchmarks) create N members with sessions and write their tokens, one per line.
    #[command(hide = true)]
    BenchSeed {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        members: usize,
        #[arg(long)]
        tokens_out: PathBuf,
        /// Also sessions (on new devices) for these existing accounts, written after the others.
        #[arg(long = "also", value_name = "MEMBER_NO")]
        also: Vec<String>,
        /// Give the first bench member two years of history: this many coupons…
        #[arg(long, default_value_t = 0)]
        history_coupons: usize,
        /// …and this many points entries (the sync bench's heavy first sync).
        #[arg(long, default_value_t = 0)]
        history_entries: usize,
        /// Whose history that is (an existing account; default: the first bench member).
        #[arg(long, value_name = "MEMBER_NO", default_value = "B0000001")]
        history_for: String,
        /// A door at a big activity: a staff account `S0000001` in the bench union, an event of
        /// that union running now, and this many check-ins at it; the staff session's token is
        /// written last.
        #[arg(long, default_value_t = 0)]
        door_checkins: usize,
        /// Issue a credential to every device that has none, signed with the union keys in DIR
        /// (the `--keys` the server will serve with), as those devices' earlier syncs would have:
        /// members who used the app before, whose next sync issues nothing.
        #[arg(long, value_name = "DIR")]
        passports_keys: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PointsCmd {
    /// Add a batch of points to a member (it reaches their app with the next sync).
    Grant {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        member: String,
        #[arg(long)]
        points: i64,
        /// Days until the batch expires
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// What earned them (shown in the history)
        #[arg(long, default_value = "grant")]
        source: String,
    },
    /// Add a catalog item or change one (price, stock).
    Catalog {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        title_zh: String,
        #[arg(long)]
        title_en: String,
        #[arg(long)]
        points: i64,
        #[arg(long)]
        stock: i64,
    },
}

#[derive(Subcommand)]
enum CampaignCmd {
    /// Create a campaign; it reaches the apps with their next sync.
    Create {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        title_zh: String,
        #[arg(long)]
        title_en: String,
        /// bike, meal, taxi, cleaning, laundry, cinema or other
        #[arg(long)]
        category: String,
        /// Face value in yuan, e.g. 5 or 12.50
        #[arg(long)]
        face_value: String,
        #[arg(long, default_value = "")]
        terms_zh: String,
        #[arg(long, default_value = "")]
        terms_en: String,
        #[arg(long)]
        stock: i64,
        /// Coupons one member may get
        #[arg(long, default_value_t = 1)]
        limit: i64,
        /// Release instant, RFC 3339 (e.g. 2026-12-01T12:00:00+08:00)
        #[arg(long)]
        release_at: chrono::DateTime<chrono::FixedOffset>,
        /// End of the campaign, RFC 3339
        #[arg(long)]
        end_at: chrono::DateTime<chrono::FixedOffset>,
        /// Days a granted coupon stays usable, from the release
        #[arg(long, default_value_t = 30)]
        valid_days: i64,
        /// Only members of these workplace union ids (comma separated); default everyone
        #[arg(long, value_delimiter = ',')]
        unions: Vec<i64>,
    },
    /// Move a campaign to a new release (and end) time; apps re-schedule their reminders.
    Move {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
        /// New release instant, RFC 3339
        #[arg(long)]
        release_at: chrono::DateTime<chrono::FixedOffset>,
        /// New end, RFC 3339
        #[arg(long)]
        end_at: chrono::DateTime<chrono::FixedOffset>,
    },
    /// Withdraw a campaign: no more grabs; apps remove its reminders and say so.
    Cancel {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
    },
    /// List every campaign.
    List {
        #[command(flatten)]
        db: StoreArgs,
    },
    /// Withdraw one granted coupon (granted in error, or its merchant left): from now on a use
    /// is refused, and the member's app shows it as withdrawn after its next sync. A used coupon
    /// cannot be withdrawn.
    VoidCoupon {
        #[command(flatten)]
        db: StoreArgs,
        /// The coupon's usage code, as the member or the merchant reads it
        /// (`0012-7K3M-9QXD-2RFA-W8PT`)
        #[arg(long)]
        code: String,
    },
    /// Stock, grants and answers of one campaign, counted from the database.
    Stats {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        id: i64,
        /// A file of grab keys (one per line) whose grants clients saw acknowledged: the answer
        /// then also counts `lost_acks`, the ones without a grant row.
        #[arg(long)]
        acked: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum EventCmd {
    /// Create an event; staff scanners receive it with their next sync.
    Create {
        #[command(flatten)]
        db: StoreArgs,
        /// In Chinese.
        #[arg(long)]
        title: String,
        /// In English, for staff who use the scanner in English (else the Chinese title).
        #[arg(long)]
        title_en: Option<String>,
        /// In Chinese.
        #[arg(long)]
        place: String,
        /// In English, for staff who use the scanner in English (else the Chinese place).
        #[arg(long)]
        place_en: Option<String>,
        /// Start, RFC 3339 (e.g. 2026-12-05T09:00:00+08:00)
        #[arg(long)]
        starts_at: chrono::DateTime<chrono::FixedOffset>,
        /// End, RFC 3339
        #[arg(long)]
        ends_at: chrono::DateTime<chrono::FixedOffset>,
        #[arg(long)]
        capacity: i64,
        /// Only members of this workplace union id; default: open to the whole district
        #[arg(long)]
        union: Option<i64>,
        /// Points a member earns for checking in
        #[arg(long, default_value_t = 0)]
        points: i64,
    },
    /// List every event.
    List {
        #[command(flatten)]
        db: StoreArgs,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a new union signing key. Servers sign new credentials with it after their next
    /// start; older keys stay published, so credentials they signed verify until they expire.
    Rotate {
        #[command(flatten)]
        db: StoreArgs,
        /// Folder of the union signing keys [default: next to the database, `<db>.keys`].
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// List the union keys (public parts only).
    List {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(long)]
        keys: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum MemberCmd {
    /// Suspend a member: sign-in refused, sessions ended, passport on the revocation list.
    Suspend {
        #[command(flatten)]
        db: StoreArgs,
        member_no: String,
    },
    /// Give a member who forgot their password a one-time reset code, after checking who they
    /// are. They enter it in the app with a new password; every session then ends. A new code
    /// replaces the last.
    ResetPassword {
        #[command(flatten)]
        db: StoreArgs,
        member_no: String,
        /// How long the code works, in hours.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=168))]
        hours: u16,
    },
}

/// "12.50" yuan -> 1250 fen.
/// `10.0.0.5` or `10.0.0.0/8`.
fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an address nor a CIDR block"))
}

fn parse_yuan(s: &str) -> anyhow::Result<i64> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    anyhow::ensure!(
        frac.len() <= 2 && !whole.is_empty(),
        "face value {s:?}: use yuan with at most 2 decimals"
    );
    let whole: i64 = whole
        .parse()
        .map_err(|_| anyhow::anyhow!("face value {s:?} is not a number"))?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse()?
    };
    anyhow::ensure!(whole >= 0, "face value must not be negative");
    Ok(whole * 100 + frac)
}

/// Where the data lives: an embedded SQLite file (the default) or a PostgreSQL database.
#[derive(clap::Args, Clone)]
struct StoreArgs {
    /// The SQLite database file (created if missing).
    #[arg(long, env = "UNIONPASS_DB", required_unless_present = "database")]
    db: Option<PathBuf>,
    /// A PostgreSQL URL (postgres://user@host:port/dbname), for several server instances.
    #[arg(long, env = "UNIONPASS_DATABASE_URL", conflicts_with = "db")]
    database: Option<String>,
    /// Connections per server instance (PostgreSQL).
    #[arg(long, default_value_t = 32)]
    pool: usize,
    /// Units of a campaign's stock an instance leases at a time for its grabs (PostgreSQL).
    #[arg(long, default_value_t = 50)]
    lease_units: i64,
    /// How long a request waits for a database connection before it is answered 503 with
    /// Retry-After (PostgreSQL).
    #[arg(long, default_value_t = 2000)]
    pool_wait_ms: u64,
}

impl StoreArgs {
    fn describe(&self) -> String {
        match (&self.db, &self.database) {
            (Some(db), _) => db.display().to_string(),
            (None, Some(url)) => {
                // never print a password that may be in the URL
                url.split_once('@')
                    .map(|(_, host)| format!("postgres://…@{host}"))
                    .unwrap_or_else(|| url.clone())
            }
            (None, None) => String::new(),
        }
    }

    /// The union keys folder: given, or next to the SQLite file (`<db>.keys`).
    fn keys_dir(&self, keys: Option<PathBuf>) -> anyhow::Result<PathBuf> {
        match (keys, &self.db) {
            (Some(k), _) => Ok(k),
            (None, Some(db)) => {
                let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
                name.push(".keys");
                Ok(db.with_file_name(name))
            }
            (None, None) => anyhow::bail!(
                "with --database, pass --keys DIR: every instance must use the same union keys"
            ),
        }
    }

    async fn open(&self) -> anyhow::Result<Arc<dyn Ops>> {
        if let Some(url) = &self.database {
            anyhow::ensure!(
                self.lease_units > 0 && self.pool > 0 && self.pool_wait_ms > 0,
                "--pool, --pool-wait-ms and --lease-units must be positive"
            );
            let settings = unionpass_server::store::postgres::PgSettings {
                pool: self.pool,
                pool_wait: std::time::Duration::from_millis(self.pool_wait_ms),
                lease_units: self.lease_units,
            };
            let store = PgStore::connect_with(url, settings)
                .await
                .with_context(|| format!("connecting to {}", self.describe()))?;
            return Ok(Arc::new(store));
        }
        let db = self
            .db
            .as_ref()
            .context("pass --db FILE or --database URL")?;
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Arc::new(SqliteStore::open(db).with_context(|| {
            format!("opening the database {}", db.display())
        })?))
    }
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
            grab_address_rate,
            sync_rate,
            sync_burst,
            max_connections,
            max_connections_per_address,
            no_show_misses,
            no_show_window_days,
            no_show_ban_days,
            trusted_proxies,
            provider,
            provider_timeout_ms,
            provider_secret,
            client_min_version,
            client_latest_version,
            client_downloads,
            client_updates,
            client_update_signatures,
        } => {
            let latest = client_latest_version
                .clone()
                .unwrap_or_else(|| unionpass_server::default_versions().latest);
            let packages = update_packages(client_updates, &client_update_signatures, &latest)?;
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr);
            if json_logs {
                builder.json().init();
            } else {
                builder.init();
            }
            let clock: Arc<dyn Clock> = unionpass_server::clock::serving_clock();
            let store: Arc<dyn Store> = db.open().await?;
            if let Some(url) = &db.database {
                // number change-log rows in commit order (one sequencer across instances)
                PgStore::connect(url, 2).await?.spawn_sequencer();
            }
            let keys = UnionKeys::load_or_create(&db.keys_dir(keys)?, clock.now())?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            // The first line on stdout is the address: scripts and tests read it (port 0).
            println!("unionpass-server listening on http://{addr}");
            tracing::info!(%addr, db = %db.describe(), kid = %keys.current().kid.to_hex(), "serving");
            match provider {
                Some(url) => {
                    let secret = provider_secret.context(
                        "--provider needs the channel's secret (UNIONPASS_PROVIDER_SECRET)",
                    )?;
                    let p: Arc<dyn unionpass_server::fulfil::Provider> = Arc::new(
                        unionpass_server::fulfil::HttpProvider::new(
                            &url,
                            secret.as_bytes(),
                            std::time::Duration::from_millis(provider_timeout_ms),
                        )
                        .with_context(|| format!("the provider at {url}"))?,
                    );
                    tracing::info!(%url, "fulfilling redemptions");
                    unionpass_server::fulfil::spawn(
                        store.clone(),
                        p,
                        clock.clone(),
                        std::time::Duration::from_millis(500),
                    );
                }
                None => tracing::warn!("no --provider: redemptions stay held until one is set"),
            }
            unionpass_server::fulfil::spawn_expiry(
                store.clone(),
                clock.clone(),
                std::time::Duration::from_secs(60),
            );
            let state = AppState::new(store.clone(), keys, clock)
                .with_grab_address_rate(grab_address_rate)
                .with_sync_rate(sync_rate, sync_burst)
                .with_trusted_proxies(trusted_proxies)
                .with_conn_limits(unionpass_server::listen::ConnLimits {
                    max: max_connections.max(1),
                    per_address: max_connections_per_address.max(1),
                    ..Default::default()
                })
                .with_no_show(unionpass_core::activity::NoShowRule {
                    misses: no_show_misses,
                    window_days: no_show_window_days,
                    ban_days: no_show_ban_days,
                });
            let state = state
                .with_versions(unionpass_core::api::VersionInfo {
                    min_supported: client_min_version,
                    latest,
                    downloads: client_downloads.into_iter().collect(),
                })
                .with_update_packages(packages);
            let warm = state.warm_sessions().await?;
            tracing::info!(sessions = warm, "live sessions read into memory");
            unionpass_server::serve(listener, state, shutdown_signal()).await?;
            // stock leased to this instance goes back now rather than when its lease expires
            if let Err(e) = store.return_stock().await {
                tracing::warn!(error = %e, "leased stock not given back; other instances take it from the lease when they need it");
            }
            tracing::info!("stopped");
        }
        Command::Points { action } => match action {
            PointsCmd::Grant {
                db,
                member,
                points,
                days,
                source,
            } => {
                anyhow::ensure!(points > 0 && days > 0, "points and days must be positive");
                let store = db.open().await?;
                let m = store
                    .member_auth(&member)
                    .await?
                    .with_context(|| format!("no member {member}"))?;
                let now = SystemClock.now();
                let e = store
                    .accrue_points(
                        m.member_id,
                        points,
                        now + chrono::Duration::days(days),
                        &source,
                        now,
                    )
                    .await?;
                println!("{}", serde_json::to_string(&e)?);
            }
            PointsCmd::Catalog {
                db,
                id,
                title_zh,
                title_en,
                points,
                stock,
            } => {
                anyhow::ensure!(
                    points > 0 && stock >= 0,
                    "points must be positive, stock not negative"
                );
                db.open()
                    .await?
                    .put_catalog_item(unionpass_core::redeem::CatalogItem {
                        id,
                        title_zh,
                        title_en,
                        points,
                        stock,
                    })
                    .await?;
            }
        },
        Command::Campaign { action } => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            campaign(action).await?;
        }
        Command::Activity { action } => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            activity_cmd::run(action).await?;
        }
        Command::Poll { action } => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            activity_cmd::run_poll(action).await?;
        }
        Command::Event { action } => match action {
            EventCmd::Create {
                db,
                title,
                title_en,
                place,
                place_en,
                starts_at,
                ends_at,
                capacity,
                union,
                points,
            } => {
                anyhow::ensure!(ends_at > starts_at, "the event must end after it starts");
                anyhow::ensure!(capacity >= 0, "capacity must not be negative");
                anyhow::ensure!(points >= 0, "points must not be negative");
                let e = db
                    .open()
                    .await?
                    .create_event(
                        unionpass_core::checkin::Event {
                            id: 0,
                            title,
                            title_en,
                            place,
                            place_en,
                            starts_at: starts_at.with_timezone(&chrono::Utc),
                            ends_at: ends_at.with_timezone(&chrono::Utc),
                            capacity,
                            union_id: union,
                            points,
                        },
                        SystemClock.now(),
                    )
                    .await?;
                println!("{}", serde_json::to_string(&e)?);
            }
            EventCmd::List { db } => {
                for e in db.open().await?.events().await? {
                    println!("{}", serde_json::to_string(&e)?);
                }
            }
        },
        Command::Keys { action } => match action {
            KeysCmd::Rotate { db, keys } => {
                let dir = db.keys_dir(keys)?;
                UnionKeys::load_or_create(&dir, SystemClock.now())?;
                let key = UnionKeys::create(&dir, SystemClock.now())?;
                println!(
                    "created union key {} in {}; restart the servers to sign with it",
                    key.kid.to_hex(),
                    dir.display()
                );
            }
            KeysCmd::List { db, keys } => {
                let keys = UnionKeys::load_or_create(&db.keys_dir(keys)?, SystemClock.now())?;
                for k in keys.public() {
                    println!("{}", serde_json::to_string(&k)?);
                }
            }
        },
        Command::Member {
            action: MemberCmd::Suspend { db, member_no },
        } => {
            let found = db
                .open()
                .await?
                .suspend_member(&member_no, SystemClock.now())
                .await?;
            anyhow::ensure!(found, "no member {member_no}");
            println!("suspended {member_no}; scanners see it after their next sync");
        }
        Command::Member {
            action:
                MemberCmd::ResetPassword {
                    db,
                    member_no,
                    hours,
                },
        } => {
            let store = db.open().await?;
            let member = store
                .member_auth(&member_no)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no member {member_no}"))?;
            anyhow::ensure!(
                !member.suspended,
                "{member_no} is suspended: a new password would not let them sign in"
            );
            let code = unionpass_server::auth::new_reset_code();
            let hash = tokio::task::spawn_blocking({
                let code = code.clone();
                move || unionpass_server::auth::hash_password(&code)
            })
            .await?;
            let now = SystemClock.now();
            let until = now + chrono::Duration::hours(i64::from(hours));
            store
                .issue_password_reset(&member_no, &hash, now, until)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no member {member_no}"))?;
            println!(
                "reset code for {member_no}: {}\nit works once, until {} (Asia/Shanghai); a new code replaces it",
                unionpass_core::api::reset_code_shown(&code),
                unionpass_core::time::format_minute(until, unionpass_core::time::Zone::AsiaShanghai),
            );
        }
        Command::BenchSeed {
            db,
            members,
            tokens_out,
            also,
            history_coupons,
            history_entries,
            history_for,
            door_checkins,
            passports_keys,
        } => {
            let store = db.open().await?;
            let now = SystemClock.now();
            let mut tokens = store.bench_members(members, now).await?;
            let mut also = also;
            if door_checkins > 0 {
                let union_id = store.ensure_union("压测工会").await?;
                let hash =
                    unionpass_server::auth::hash_password(&unionpass_server::auth::new_token());
                match store
                    .insert_member(
                        unionpass_server::store::NewMember {
                            member_no: "S0000001".into(),
                            name: "压测检票员".into(),
                            union_id,
                            role: unionpass_core::api::Role::Staff,
                            password_hash: hash,
                        },
                        now,
                    )
                    .await
                {
                    Ok(_)
                    | Err(unionpass_server::store::StoreError::Duplicate(
                        unionpass_server::store::Taken::Member(_),
                    )) => {}
                    Err(e) => return Err(e.into()),
                }
                let event = store
                    .create_event(
                        unionpass_core::checkin::Event {
                            id: 0,
                            title: "压测入场".into(),
                            title_en: None,
                            place_en: None,
                            place: "体育中心".into(),
                            starts_at: now - chrono::Duration::hours(1),
                            ends_at: now + chrono::Duration::hours(8),
                            capacity: door_checkins as i64 * 2,
                            points: 0,
                            union_id: Some(union_id),
                        },
                        now,
                    )
                    .await?;
                store
                    .bench_checkins(event.id, 5_000_000, door_checkins, now)
                    .await?;
                also.push("S0000001".into());
            }
            if history_coupons + history_entries > 0 {
                store
                    .bench_history(&history_for, history_coupons, history_entries, now)
                    .await?;
            }
            for member_no in also {
                let member = store
                    .member_auth(&member_no)
                    .await?
                    .with_context(|| format!("no member {member_no}"))?;
                let token = unionpass_server::auth::new_token();
                store
                    .create_session(unionpass_server::store::NewSession {
                        token_hash: unionpass_server::auth::token_hash(&token),
                        member_id: member.member_id,
                        device_name: "bench".into(),
                        created_at: now,
                        expires_at: now + unionpass_server::auth::SESSION_IDLE,
                        device: Some(unionpass_server::store::NewDevice {
                            name: "bench".into(),
                            public_key: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
                                .verifying_key()
                                .to_bytes(),
                        }),
                    })
                    .await?;
                tokens.push(token);
            }
            if let Some(dir) = passports_keys {
                let keys = UnionKeys::load_or_create(&dir, now)?;
                let mut profiles = std::collections::HashMap::new();
                let mut issued = 0;
                loop {
                    let batch = store.bench_unissued(20_000).await?;
                    if batch.is_empty() {
                        break;
                    }
                    let mut done = Vec::with_capacity(batch.len());
                    for (device, member, key) in batch {
                        if let std::collections::hash_map::Entry::Vacant(e) = profiles.entry(member)
                        {
                            e.insert(
                                store
                                    .profile(member)
                                    .await?
                                    .with_context(|| format!("no member {member}"))?,
                            );
                        }
                        done.push((
                            device,
                            unionpass_server::passport::issue_for(
                                &profiles[&member],
                                key,
                                &keys,
                                now,
                            ),
                        ));
                    }
                    issued += done.len();
                    store.bench_save_passports(done, now).await?;
                }
                eprintln!("issued {issued} credentials");
            }
            std::fs::write(&tokens_out, tokens.join("\n") + "\n")?;
            println!(
                "created {members} members with sessions; tokens in {}",
                tokens_out.display()
            );
        }
        Command::Seed {
            db,
            demo,
            activities,
            campaigns,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            anyhow::ensure!(demo, "nothing to seed: pass --demo");
            let store = db.open().await?;
            let created = seed::seed_demo(store.as_ref(), SystemClock.now()).await?;
            seed::seed_demo_points(store.as_ref(), SystemClock.now()).await?;
            if activities {
                seed::seed_demo_activities(store.as_ref(), SystemClock.now()).await?;
            }
            if campaigns {
                seed::seed_demo_campaigns(store.as_ref(), SystemClock.now()).await?;
            }
            println!(
                "created {created} demo accounts in {}; every password is {}",
                db.describe(),
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

async fn campaign(action: CampaignCmd) -> anyhow::Result<()> {
    match action {
        CampaignCmd::Create {
            db,
            title_zh,
            title_en,
            category,
            face_value,
            terms_zh,
            terms_en,
            stock,
            limit,
            release_at,
            end_at,
            valid_days,
            unions,
        } => {
            let category = Category::parse(&category)
                .with_context(|| format!("unknown category {category:?}: bike, meal, taxi, cleaning, laundry, cinema, other"))?;
            let release_at = release_at.with_timezone(&chrono::Utc);
            let end_at = end_at.with_timezone(&chrono::Utc);
            anyhow::ensure!(
                end_at > release_at,
                "the campaign must end after its release"
            );
            anyhow::ensure!(
                stock >= 0 && limit >= 1,
                "stock must be >= 0 and limit >= 1"
            );
            let store = db.open().await?;
            let mut union_names = Vec::with_capacity(unions.len());
            for id in &unions {
                union_names.push(
                    store
                        .union_name(*id)
                        .await?
                        .with_context(|| format!("there is no workplace union with id {id}"))?,
                );
            }
            let c = store
                .create_campaign(
                    Campaign {
                        id: 0,
                        title_zh,
                        title_en,
                        category,
                        face_value_cents: parse_yuan(&face_value)?,
                        terms_zh,
                        terms_en,
                        coupon_valid_from: release_at,
                        coupon_valid_until: release_at + chrono::Duration::days(valid_days),
                        stock,
                        per_member_limit: limit,
                        release_at,
                        end_at,
                        eligible_unions: unions,
                        eligible_union_names: union_names,
                        cancelled_at: None,
                    },
                    SystemClock.now(),
                )
                .await?;
            println!("{}", serde_json::to_string(&c)?);
        }
        CampaignCmd::Move {
            db,
            id,
            release_at,
            end_at,
        } => {
            let change = unionpass_core::campaign::Reschedule::Move {
                release_at: release_at.with_timezone(&chrono::Utc),
                end_at: end_at.with_timezone(&chrono::Utc),
            };
            let c = db
                .open()
                .await?
                .reschedule_campaign(id, change, SystemClock.now())
                .await?;
            println!("{}", serde_json::to_string(&c)?);
        }
        CampaignCmd::Cancel { db, id } => {
            let c = db
                .open()
                .await?
                .reschedule_campaign(
                    id,
                    unionpass_core::campaign::Reschedule::Cancel,
                    SystemClock.now(),
                )
                .await?;
            println!("{}", serde_json::to_string(&c)?);
        }
        CampaignCmd::VoidCoupon { db, code } => {
            let v = db
                .open()
                .await?
                .void_coupon(&code, SystemClock.now())
                .await?;
            println!("{}", serde_json::to_string(&v)?);
        }
        CampaignCmd::List { db } => {
            for c in db.open().await?.campaigns().await? {
                println!(
                    "{:>5}  {:<8} stock {:>6}  limit {}  release {}  end {}  {}",
                    c.id,
                    c.category.as_str(),
                    c.stock,
                    c.per_member_limit,
                    c.release_at.to_rfc3339(),
                    c.end_at.to_rfc3339(),
                    c.title_zh
                );
            }
        }
        CampaignCmd::Stats { db, id, acked } => {
            let store = db.open().await?;
            let mut v = serde_json::to_value(store.audit(id).await?)?;
            if let Some(file) = acked {
                let keys = std::fs::read_to_string(&file)?
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.trim().parse::<uuid::Uuid>())
                    .collect::<Result<Vec<_>, _>>()
                    .context("reading acknowledged keys")?;
                v["acked"] = keys.len().into();
                v["lost_acks"] = store.missing_grants(keys).await?.into();
            }
            println!("{v}");
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

/// A semver version (`serve --client-*-version`).
fn parse_version(s: &str) -> Result<String, String> {
    semver::Version::parse(s.trim())
        .map(|v| v.to_string())
        .map_err(|e| format!("not a version like 1.2.3: {e}"))
}

/// The updater's packages: each `--client-update` with the text of its
/// `--client-update-signature` file (base64, as the bundler writes it), and neither without the
/// other; each kind one the updater asks for, each URL https (or http on this machine), and each
/// signature made for `latest` (the app refuses a package signed for another version, so a
/// mismatch is refused here, at start, rather than on members' devices).
fn update_packages(
    updates: Vec<(String, String)>,
    signatures: &[String],
    latest: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, unionpass_core::api::UpdatePackage>> {
    use base64::Engine;
    let known_kind = |kind: &str| {
        let mut parts = kind.splitn(3, '-');
        let (os, arch, bundle) = (parts.next(), parts.next(), parts.next());
        matches!(os, Some("linux" | "windows" | "macos"))
            && matches!(arch, Some("x86_64" | "aarch64" | "i686" | "armv7"))
            && matches!(
                bundle,
                Some("deb" | "rpm" | "appimage" | "nsis" | "msi" | "app")
            )
    };
    let mut sigs = std::collections::BTreeMap::new();
    for arg in signatures {
        let (kind, file) = arg
            .split_once('=')
            .with_context(|| format!("--client-update-signature {arg}: expected KIND=FILE"))?;
        let kind = kind.trim();
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--client-update-signature {kind}: reading {file}"))?;
        let text = text.trim().to_string();
        let minisign = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .with_context(|| {
                format!("--client-update-signature {kind}: {file} is not a .sig file of the Tauri bundler (base64)")
            })?;
        let signed_for = minisign
            .lines()
            .find_map(|l| l.strip_prefix("trusted comment:"))
            .and_then(|c| {
                c.split('\t')
                    .find_map(|kv| kv.trim().strip_prefix("version:"))
            })
            .map(str::trim);
        anyhow::ensure!(
            signed_for == Some(latest),
            "--client-update-signature {kind}: {file} is signed for version {}, not {latest} \
             (--client-latest-version); sign the package with --app-version {latest}",
            signed_for.unwrap_or("(none)")
        );
        sigs.insert(kind.to_string(), text);
    }
    let mut packages = std::collections::BTreeMap::new();
    for (kind, url) in updates {
        anyhow::ensure!(
            known_kind(&kind),
            "--client-update {kind}: not a package kind the updater asks for (like linux-x86_64-deb, \
             linux-x86_64-rpm, linux-x86_64-appimage, windows-x86_64-nsis, macos-aarch64-app)"
        );
        let parsed = reqwest::Url::parse(&url)?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        anyhow::ensure!(
            parsed.scheme() == "https" || loopback,
            "--client-update {kind}: the package must be served over https"
        );
        let signature = sigs.remove(&kind).with_context(|| {
            format!("--client-update {kind} has no --client-update-signature {kind}=FILE")
        })?;
        packages.insert(kind, unionpass_core::api::UpdatePackage { url, signature });
    }
    if let Some(kind) = sigs.keys().next() {
        anyhow::bail!("--client-update-signature {kind} has no --client-update {kind}=URL");
    }
    Ok(packages)
}

/// `PLATFORM=URL` (`serve --client-download`), the URL http(s).
fn parse_download(s: &str) -> Result<(String, String), String> {
    let (platform, url) = s
        .split_once('=')
        .ok_or_else(|| "expected PLATFORM=URL".to_string())?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") || platform.trim().is_empty() {
        return Err("expected PLATFORM=https://…".into());
    }
    Ok((platform.trim().to_string(), url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::update_packages;
    use base64::Engine;

    /// A `.sig` as the bundler writes it (base64 of minisign's text), made for `version`.
    fn sig_file(dir: &std::path::Path, name: &str, version: Option<&str>) -> String {
        let trusted = match version {
            Some(v) => format!("timestamp:1764800000\tfile:UnionPass.deb\tversion:{v}"),
            None => "timestamp:1764800000\tfile:UnionPass.deb".to_string(),
        };
        let text = format!(
            "untrusted comment: signature from tauri secret key\nRUQ=\ntrusted comment: {trusted}\nc2ln\n"
        );
        let path = dir.join(name);
        std::fs::write(
            &path,
            base64::engine::general_purpose::STANDARD.encode(text),
        )
        .unwrap();
        path.display().to_string()
    }

    #[test]
    fn update_packages_pair_each_kind_with_a_signature_for_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let good = sig_file(dir.path(), "good.sig", Some("0.4.0"));
        let url = "https://union.example/UnionPass_0.4.0_amd64.deb".to_string();
        let deb = |u: &str| vec![("linux-x86_64-deb".to_string(), u.to_string())];

        let ok =
            update_packages(deb(&url), &[format!("linux-x86_64-deb={good}")], "0.4.0").unwrap();
        assert_eq!(ok["linux-x86_64-deb"].url, url);
        assert_eq!(
            ok["linux-x86_64-deb"].signature,
            std::fs::read_to_string(&good).unwrap().trim()
        );
        // http only on this machine
        assert!(update_packages(
            deb("http://127.0.0.1:9/UnionPass.deb"),
            &[format!("linux-x86_64-deb={good}")],
            "0.4.0"
        )
        .is_ok());

        type Case<'a> = (Vec<(String, String)>, Vec<String>, &'a str);
        let refused: Vec<Case> = vec![
            // signed for another version, or for none
            (deb(&url), vec![format!("linux-x86_64-deb={good}")], "0.5.0"),
            (
                deb(&url),
                vec![format!(
                    "linux-x86_64-deb={}",
                    sig_file(dir.path(), "bare.sig", None)
                )],
                "0.4.0",
            ),
            // one without the other
            (deb(&url), vec![], "0.4.0"),
            (vec![], vec![format!("linux-x86_64-deb={good}")], "0.4.0"),
            // a kind the updater never asks for
            (
                vec![("linux-amd64-deb".to_string(), url.clone())],
                vec![format!("linux-amd64-deb={good}")],
                "0.4.0",
            ),
            // in clear to another computer
            (
                deb("http://union.example/UnionPass.deb"),
                vec![format!("linux-x86_64-deb={good}")],
                "0.4.0",
            ),
            // not a signature file
            (
                deb(&url),
                vec![format!(
                    "linux-x86_64-deb={}",
                    dir.path().join("none.sig").display()
                )],
                "0.4.0",
            ),
        ];
        for (updates, sigs, latest) in refused {
            let what = format!("{updates:?} {sigs:?} {latest}");
            assert!(update_packages(updates, &sigs, latest).is_err(), "{what}");
        }
    }
}
