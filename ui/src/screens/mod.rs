//! One module per screen. Screens use the shared modules (`ctx`, `fmt`, `ipc`, `bench`,
//! `widgets`), never the root (`app`) or each other.

pub mod activities;
pub mod calendar;
pub mod failed;
pub mod login;
pub mod me;
pub mod passport;
pub mod points;
pub mod scanner;
pub mod wallet;
