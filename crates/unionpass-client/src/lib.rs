//! UnionPass on the device.
//!
//! - [`store`]: the local SQLite store (profile, passport, outbox, sync log) with append-only
//!   migrations; everything the app shows comes from here, so it works offline.
//! - [`secrets`]: the session token and the device's passport key in the OS keyring, nowhere else.
//! - [`scanner`]: scanner mode for staff: trust list, events, offline passport checks, check-ins.
//! - [`grab`]: the grab calendar, the server clock offset, grabs with a key stored first.
//! - [`activities`]: activities and the member's sign-ups as synced, live seat counts, sign-ups
//!   with a key stored first.
//! - [`wallet`]: the coupons a member holds, filtered and paged from SQLite, marked used offline.
//! - [`qr`]: the QR drawn for the screen and read back from images and camera frames.
//! - [`api`]: the union server's HTTP API.
//! - [`sync`]: push the outbox, then pull changes; the planning steps are pure functions.
//! - [`client`]: the facade the Tauri shell calls.
//! - [`kept`]: the passport read, read-only, from a store a newer version wrote.
//!
//! Nothing here reads the system clock: callers pass `now`.

pub mod activities;
pub mod api;
pub mod background;
pub mod client;
pub mod error;
pub mod grab;
pub mod kept;
pub mod points;
pub mod qr;
pub mod reminders;
pub mod scanner;
pub mod secrets;
pub mod store;
pub mod sync;
pub mod wallet;

pub use client::{Client, Snapshot, SyncTurn};
pub use error::ClientError;
pub use unionpass_core::view::SyncState;
