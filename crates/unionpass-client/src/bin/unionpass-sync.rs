//! `unionpass-sync DATA_DIR`: one sync of a signed-in device data dir, as the app's background
//! sync does it (push the outbox, pull every page). The crash tests kill it with SIGKILL at
//! random moments and check what it leaves behind.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: unionpass-sync DATA_DIR")?;
    let client = unionpass_client::Client::open(std::path::Path::new(&dir))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(client.sync(chrono::Utc::now()))?;
    println!("{report:?}");
    Ok(())
}
