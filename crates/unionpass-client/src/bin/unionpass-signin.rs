//! `unionpass-signin DATA_DIR SERVER_URL MEMBER_NO`: sign a member in on a device data dir, as the
//! app's login screen would (token and device key into the OS keyring, first sync into the
//! store). The password is read from the `UNIONPASS_PASSWORD` environment variable. Used by
//! `cargo xtask demo` and the startup bench, so that xtask itself needs no keyring libraries.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, url, member] = args.as_slice() else {
        anyhow::bail!("usage: unionpass-signin DATA_DIR SERVER_URL MEMBER_NO (password in UNIONPASS_PASSWORD)");
    };
    let password =
        std::env::var("UNIONPASS_PASSWORD").context("set UNIONPASS_PASSWORD to the password")?;
    let client = unionpass_client::Client::open(std::path::Path::new(data_dir))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(client.login(url, member, &password, "xtask demo", chrono::Utc::now()))
        .with_context(|| format!("signing in {member}"))?;
    println!("signed in {member}");
    Ok(())
}
