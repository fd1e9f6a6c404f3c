//! `cargo xtask …`: everything a newcomer or CI runs, from a fresh Debian 12 machine.
//!
//! - `setup`: install what is missing (Debian packages, wasm-bindgen-cli at the UI's lock-file
//!   version, tauri-driver, wasm-opt from npm).
//! - `build`: the wasm UI into `ui/dist`, then the app (UI embedded) and the server.
//! - `demo`: setup + build, a local union server with demo data, and the app signed in as a demo
//!   member (under Xvfb when there is no display).
//! - `test`: setup + build, then every test, the E2E suite in the real window included.
//! - `bundle`: the `.deb` and `.rpm` members install (Tauri's bundler).
//! - `ui`: the wasm UI only (the bundler's `beforeBuildCommand`).
//! - `bench startup`: the release app's cold start, memory and sizes.

#[cfg(test)]
mod arch;
mod bench;
mod build;
mod bundle;
mod demo;
mod fuzz;
mod session;
mod setup;
mod test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the system packages and tools the build needs (idempotent).
    Setup,
    /// Build the UI, the app and the server.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build the release packages (.deb and .rpm) with the Tauri bundler; prints their paths.
    Bundle,
    /// Build the wasm UI into ui/dist (the bundler runs this before it builds the app).
    Ui,
    /// Run a local union server with demo data and the app signed in as a demo member.
    Demo {
        /// The demo member to sign in.
        #[arg(long, default_value = "M10001")]
        member: String,
        /// Port of the local union server.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Run every test: unit, integration, client store, E2E in the real window.
    Test {
        /// Only the tests whose names contain this.
        filter: Option<String>,
    },
    /// Run a benchmark and print its JSON line.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// (internal) the part of `demo` that runs inside the headless session
    #[command(hide = true)]
    DemoInner {
        #[arg(long)]
        member: String,
        #[arg(long)]
        port: u16,
    },
    /// (internal) the part of `test` that runs inside the headless session
    #[command(hide = true)]
    TestInner { filter: Option<String> },
    /// (internal) the part of `bench startup` that runs inside the headless session
    #[command(hide = true)]
    BenchStartupInner,
    /// (internal) the part of `bench wallet` that runs inside the headless session
    #[command(hide = true)]
    BenchWalletInner,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Setup => setup::run(),
        Cmd::Bundle => {
            setup::run()?;
            for p in bundle::release()? {
                println!("{}", p.display());
            }
            Ok(())
        }
        Cmd::Ui => build::ui(),
        Cmd::Build { release } => {
            setup::run()?;
            build::all(release)
        }
        Cmd::Demo { member, port } => {
            setup::run()?;
            build::all(false)?;
            session::reexec_until_interrupted(
                &[
                    "demo-inner",
                    "--member",
                    &member,
                    "--port",
                    &port.to_string(),
                ],
                &demo::pid_file(),
            )
        }
        Cmd::DemoInner { member, port } => demo::run(&member, port),
        Cmd::Test { filter } => {
            setup::run()?;
            build::all(false)?;
            let mut args = vec!["test-inner".to_string()];
            args.extend(filter);
            session::reexec(&args.iter().map(String::as_str).collect::<Vec<_>>())
        }
        Cmd::TestInner { filter } => test::run(filter.as_deref()),
        Cmd::Bench {
            which: bench::Which::Startup,
        } => {
            setup::run()?;
            build::all(true)?;
            session::reexec(&["bench-startup-inner"])
        }
        Cmd::Bench {
            which: bench::Which::Grab(args),
        } => {
            setup::run()?;
            build::server_release()?;
            bench::grab(&args)
        }
        Cmd::Bench {
            which: bench::Which::Signup(args),
        } => {
            setup::run()?;
            build::server_release()?;
            bench::signup(&args)
        }
        Cmd::Bench {
            which: bench::Which::LoginFlood(args),
        } => {
            setup::run()?;
            build::server_release()?;
            bench::login_flood(&args)
        }
        Cmd::Bench {
            which: bench::Which::Sync(args),
        } => {
            setup::run()?;
            build::server_release()?;
            bench::sync(&args)
        }
        Cmd::Bench {
            which: bench::Which::Passport,
        } => {
            setup::run()?;
            bench::passport()
        }
        Cmd::Bench {
            which: bench::Which::Points,
        } => {
            setup::run()?;
            bench::points()
        }
        Cmd::Bench {
            which: bench::Which::Wallet,
        } => {
            setup::run()?;
            build::all(true)?;
            session::reexec(&["bench-wallet-inner"])
        }
        Cmd::BenchStartupInner => bench::startup(),
        Cmd::BenchWalletInner => bench::wallet(),
    }
}
