//! The server's integration tests, one binary: the real server over HTTP on 127.0.0.1, on a
//! SQLite file and on a fresh PostgreSQL database (`on_every_backend!` runs each story on both).

#[macro_use]
mod util;

mod activities;
mod api;
mod crash;
mod grab;
mod instances;
mod openapi;
mod passport;
mod pg_tls;
mod points;
mod security;
mod store;
mod upgrade;
