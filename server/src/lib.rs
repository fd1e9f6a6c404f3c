//! The union server: an axum application over a [`store::Store`].
//!
//! [`http::app`] builds the router from an [`AppState`]; the binary (`main.rs`) parses the command
//! line, opens the store and the union keys, and serves. The clock is part of the state, so every
//! handler reads `now` once and passes it down.

pub mod auth;
pub mod clock;
pub mod error;
pub mod fulfil;
pub mod guard;
pub mod http;
pub mod keys;
pub mod limit;
pub mod listen;
pub mod openapi;
pub mod passport;
pub mod seed;
pub mod store;

use std::sync::Arc;

pub use clock::{Clock, SystemClock};
pub use http::app;

/// Sync requests per member and second, and the burst: 120 pages is a first sync of about
/// 60,000 rows on a new phone; an app syncs every few minutes.
pub const DEFAULT_SYNC_RATE: (f64, f64) = (2.0, 120.0);

/// Shared by all handlers: one `Arc`, so a request's copy of the state is one count (axum
/// clones the state into every request; a dozen `Arc`s counted up and down showed in the
/// grab's profile). The parts are read through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn store::Store>,
    pub keys: Arc<keys::UnionKeys>,
    pub clock: Arc<dyn Clock>,
    /// Who may try a password now, and how many hashes run at once.
    pub guard: Arc<guard::Guard>,
    /// Proxies whose `X-Forwarded-For` is believed (`serve --trusted-proxy`); none by default.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Grab requests per member.
    pub grab_per_member: Arc<limit::MemberBuckets>,
    /// Grab requests per client address.
    pub grab_per_address: Arc<limit::Buckets<std::net::IpAddr>>,
    /// Sync requests (pages and pushes) per member: a first sync on a new phone takes a burst of
    /// pages; an app stuck in a loop is told when to come back (`Retry-After`).
    pub sync_per_member: Arc<limit::MemberBuckets>,
    /// The no-show rule for popular activities (`serve --no-show-*`).
    pub no_show: unionpass_core::activity::NoShowRule,
    /// Live sessions in memory, for the grab's and sign-up's judgments only.
    pub sessions: Arc<auth::SessionTable>,
    /// The app versions served and where to get a newer one (`serve --client-*`); set with
    /// [`AppState::with_versions`].
    pub versions: Arc<Versions>,
    /// What the listener allows (`serve --max-connections*`).
    pub conn_limits: listen::ConnLimits,
}

/// What `GET /v1/version` answers, with its minimum parsed once (every request's `User-Agent`
/// is compared with it).
pub struct Versions {
    pub info: unionpass_core::api::VersionInfo,
    min: Option<semver::Version>,
    /// The packages the app's updater installs, by [`unionpass_core::api::package_key`].
    pub packages: std::collections::BTreeMap<String, unionpass_core::api::UpdatePackage>,
}

impl Versions {
    pub fn new(info: unionpass_core::api::VersionInfo) -> Versions {
        let min = unionpass_core::api::parse_version(&info.min_supported);
        Versions {
            info,
            min,
            packages: Default::default(),
        }
    }

    /// Whether an app stating version `app` is older than the oldest served.
    pub fn refuses(&self, app: &str) -> bool {
        self.min
            .as_ref()
            .is_some_and(|min| unionpass_core::api::older_than(app, min))
    }
}

/// Every app version is served and the newest is this server's own release, unless `serve`
/// says otherwise.
pub fn default_versions() -> unionpass_core::api::VersionInfo {
    unionpass_core::api::VersionInfo {
        min_supported: "0.0.0".into(),
        latest: env!("CARGO_PKG_VERSION").into(),
        downloads: Default::default(),
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn store::Store>,
        keys: keys::UnionKeys,
        clock: Arc<dyn Clock>,
    ) -> AppState {
        AppState(Arc::new(Shared {
            store,
            keys: Arc::new(keys),
            clock,
            guard: Arc::new(guard::Guard::default()),
            trusted_proxies: Arc::new(Vec::new()),
            // a member presses a few times at most; an address may be a whole office behind NAT
            grab_per_member: Arc::new(limit::Buckets::new(2.0, 5.0)),
            grab_per_address: Arc::new(limit::Buckets::new(500.0, 1000.0)),
            sync_per_member: Arc::new(limit::Buckets::new(
                DEFAULT_SYNC_RATE.0,
                DEFAULT_SYNC_RATE.1,
            )),
            no_show: Default::default(),
            sessions: Arc::new(auth::SessionTable::new(auth::SESSION_TABLE_CAP)),
            versions: Arc::new(Versions::new(default_versions())),
            conn_limits: listen::ConnLimits::default(),
        }))
    }

    /// The parts, to change while the state is being built (before it is shared).
    fn parts(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    /// The app versions this server serves (`serve --client-*`).
    pub fn with_versions(mut self, info: unionpass_core::api::VersionInfo) -> AppState {
        let mut versions = Versions::new(info);
        versions.packages = self.versions.packages.clone();
        self.parts().versions = Arc::new(versions);
        self
    }

    /// The packages the app's updater is offered (`serve --client-update`), for the versions
    /// set by [`AppState::with_versions`] (before or after).
    pub fn with_update_packages(
        mut self,
        packages: std::collections::BTreeMap<String, unionpass_core::api::UpdatePackage>,
    ) -> AppState {
        let mut versions = Versions::new(self.versions.info.clone());
        versions.packages = packages;
        self.parts().versions = Arc::new(versions);
        self
    }

    /// Read the live sessions into [`auth::SessionTable`] (at start, before serving), up to its
    /// cap; answers how many.
    pub async fn warm_sessions(&self) -> Result<usize, store::StoreError> {
        let now = self.clock.now();
        let live = self
            .store
            .live_sessions(now, auth::SESSION_TABLE_CAP)
            .await?;
        let n = live.len();
        for (hash, info) in live {
            self.sessions.put(&hash, info, now);
        }
        Ok(n)
    }

    /// Another no-show rule (configuration).
    pub fn with_no_show(mut self, rule: unionpass_core::activity::NoShowRule) -> AppState {
        self.parts().no_show = rule;
        self
    }

    /// Other limits on password checks (tests use small ones).
    pub fn with_guard(mut self, guard: guard::Guard) -> AppState {
        self.parts().guard = Arc::new(guard);
        self
    }

    /// Other limits on connections (`serve --max-connections*`; tests use small ones).
    pub fn with_conn_limits(mut self, limits: listen::ConnLimits) -> AppState {
        self.parts().conn_limits = limits;
        self
    }

    /// Believe `X-Forwarded-For` from these proxies (the address they report is the client's).
    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> AppState {
        self.parts().trusted_proxies = Arc::new(proxies);
        self
    }

    /// Set the per-member sync limit: requests per second and the burst (0 turns it off).
    pub fn with_sync_rate(mut self, rate: f64, burst: f64) -> AppState {
        self.parts().sync_per_member = Arc::new(limit::Buckets::new(rate, burst));
        self
    }

    /// Set the per-address grab limit (requests per second; 0 turns it off, as the load bench
    /// does, since all its traffic comes from one address).
    pub fn with_grab_address_rate(mut self, rate: f64) -> AppState {
        self.parts().grab_per_address = Arc::new(limit::Buckets::new(rate, rate * 2.0));
        self
    }
}

/// Serve `state` on an already bound listener until `shutdown` resolves.
pub use listen::serve;

#[cfg(feature = "testing")]
pub mod testing;
