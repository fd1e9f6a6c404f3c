//! UnionPass on the device.
//!
//! - [`store`]: the local SQLite store (profile, passport, outbox, sync log) with append-only
//!   migrations; everything the app shows comes from here, so it works offline.
//! - [`secrets`]: the session token in the OS keyring, nowhere else.
//! - [`api`]: the union server's HTTP API.
//! - [`sync`]: push the outbox, then pull changes; the planning steps are pure functions.
//! - [`client`]: the facade the Tauri shell calls.
//!
//! Nothing here reads the system clock: callers pass `now`.

pub mod api;
pub mod client;
pub mod error;
pub mod qr;
pub mod secrets;
pub mod store;
pub mod sync;

pub use client::{Client, Snapshot};
pub use error::ClientError;
pub use unionpass_core::view::SyncState;
