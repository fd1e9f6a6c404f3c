//! `unionpass-redeem-loop DATA_DIR COUNT NOW`: (tests) on a device already signed in, queue
//! `COUNT` ¥10 phone top-ups as the points screen does, syncing after every third, and print each
//! redemption's id once its queueing has committed. The crash test kills this process with
//! SIGKILL at random moments and then checks the store and the server. `NOW` (RFC 3339) is the
//! instant the redemptions are made at, so that they fall in the test server's month.

use std::io::Write;

use anyhow::Context;
use unionpass_core::redeem::Target;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, count, now] = args.as_slice() else {
        anyhow::bail!("usage: unionpass-redeem-loop DATA_DIR COUNT NOW");
    };
    let count: usize = count.parse().context("COUNT")?;
    let now: chrono::DateTime<chrono::Utc> = now.parse().context("NOW")?;
    let client = unionpass_client::Client::open(std::path::Path::new(data_dir))?;
    anyhow::ensure!(client.is_logged_in()?, "sign in first");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let target = Target::PhoneBill {
        mobile: "13800138000".into(),
        amount_cents: 1000,
    };
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let price = client.quote_redemption(&target, now)?.points;
        let r = client.redeem(&target, price, now)?;
        writeln!(out, "{}", r.id)?;
        out.flush()?;
        if i % 3 == 2 {
            if let Err(e) = rt.block_on(client.sync(now)) {
                eprintln!("sync failed: {e}");
            }
        }
    }
    Ok(())
}
