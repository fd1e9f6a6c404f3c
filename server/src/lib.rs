//! The union server: an axum application over a [`store::Store`].
//!
//! [`http::app`] builds the router from an [`AppState`]; the binary (`main.rs`) parses the command
//! line, opens the store and the union keys, and serves. The clock is part of the state, so every
//! handler reads `now` once and passes it down.

pub mod auth;
pub mod clock;
pub mod error;
pub mod http;
pub mod keys;
pub mod passport;
pub mod seed;
pub mod store;

use std::sync::Arc;

pub use clock::{Clock, SystemClock};
pub use http::app;

/// Shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn store::Store>,
    pub keys: Arc<keys::UnionKeys>,
    pub clock: Arc<dyn Clock>,
    pub limiter: Arc<auth::LoginLimiter>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn store::Store>,
        keys: keys::UnionKeys,
        clock: Arc<dyn Clock>,
    ) -> AppState {
        AppState {
            store,
            keys: Arc::new(keys),
            clock,
            limiter: Arc::new(auth::LoginLimiter::default()),
        }
    }
}

/// Serve `state` on an already bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(feature = "testing")]
pub mod testing;
