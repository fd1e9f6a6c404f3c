//! The client library's integration tests, one binary: real SQLite files, the OS keyring (a
//! private one under `cargo xtask test`), and a real union server over HTTP on 127.0.0.1.

mod activities;
mod background;
mod device;
mod grab;
mod points;
mod reminders;
mod scanner;
mod wallet;
