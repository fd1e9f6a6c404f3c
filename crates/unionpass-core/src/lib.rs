//! UnionPass core: the wire protocol, the passport credential format, stable error codes,
//! the i18n message table and time display rules.
//!
//! This crate is shared by the server, the client library, the Tauri shell and the wasm UI.
//! It performs no IO and never reads the system clock: every instant is passed in.

pub mod activity;
pub mod api;
pub mod campaign;
pub mod checkin;
pub mod error;
pub mod i18n;
pub mod ipc;
pub mod passport;
pub mod points;
pub mod redeem;
pub mod reminder;
pub mod time;
pub mod view;
pub mod wallet;

pub use error::ErrorCode;
pub use i18n::{Lang, Msg};
