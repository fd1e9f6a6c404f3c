//! The PostgreSQL backend, for several stateless server instances over one database.
//!
//! - **Grab** ([`grab`], [`grants`]): refusals from memory; the rest in groups, one transaction
//!   each, from stock leased to the instance (several instances share a campaign's stock without
//!   a hot row; a dead instance's lease is taken over when it expires).
//! - **Change log ordering**: with concurrent writers, identity values are not handed out in
//!   commit order, so a reader could pass over a row that commits late. Rows are therefore
//!   written without a sequence number; a sequencer (one at a time, under an advisory lock)
//!   numbers the committed ones in one transaction, and sync reads only numbered rows.
//! - **Migrations**: `schema/NNNN_name.sql`, append-only, applied in one transaction under an
//!   advisory lock (several instances may start at once); a database newer than the binary is
//!   refused.
//! - **Errors** keep their `tokio_postgres::Error`; a transaction that failed on a deadlock or a
//!   serialization failure (by SQLSTATE) is run again ([`StoreError::is_retryable`]).

mod accounts;
mod activities;
mod events;
mod grab;
mod grants;
mod groups;
mod ops;
mod points;
mod sync;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
pub mod tls;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use unionpass_core::api::ChangeKind;
use unionpass_core::campaign::Campaign;
use unionpass_sqlite::Migration;

use super::rules::{self, CampaignCache};
use super::StoreError;
pub use grab::SHARDS;

const MIGRATION_LOCK: i64 = 0x554e_494f_4e50_0001;
const SEQUENCER_LOCK: i64 = 0x554e_494f_4e50_0002;

/// The stock left of campaign `c` (SQL): what its stock rows and every instance's lease hold.
/// A macro so that the statements using it stay literals (`prepare_cached`).
macro_rules! stock_left_of_c {
    () => {
        "(coalesce((SELECT sum(remaining) FROM campaign_stock s WHERE s.campaign_id = c.id), 0)
          + coalesce((SELECT sum(remaining) FROM stock_leases l WHERE l.campaign_id = c.id), 0))::BIGINT"
    };
}
pub(crate) use stock_left_of_c;

/// The server's PostgreSQL schema, `schema/NNNN_name.sql`. Append only.
pub const MIGRATIONS: &[Migration] = unionpass_sqlite::schema!(
    "src/store/postgres/schema";
    "0001_foundation",
    "0002_campaigns",
    "0003_passport_v2_events",
    "0004_coupon_use",
    "0005_points",
    "0006_security",
    "0007_activities",
    "0008_feedback",
    "0009_polls",
    "0010_coupon_void",
    "0011_stock_leases",
    "0012_sync_indexes",
    "0013_signups_by_activity",
    "0014_race_references",
    "0015_signup_group_holds",
    "0016_change_log_numbered_indexes",
    "0017_event_title_en",
    "0018_event_place_en",
    "0019_checkin_staff",
    "0020_checkin_shown",
    "0021_password_resets",
);

pub(crate) fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes")
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
) -> Result<T, StoreError> {
    Ok(serde_json::from_value(v)?)
}

/// Append a change to the log (unnumbered until the sequencer numbers it), for one member or
/// (`None`) for everyone.
pub(crate) async fn log_change(
    c: &impl GenericClient,
    member_id: Option<i64>,
    at: DateTime<Utc>,
    change: &ChangeKind,
) -> Result<(), StoreError> {
    let (kind, data) = rules::change_parts(change);
    c.execute(
        &c.prepare_cached(
            "INSERT INTO change_log(member_id, at, kind, data) VALUES ($1, $2, $3, $4)",
        )
        .await?,
        &[&member_id, &at, &kind, &data],
    )
    .await?;
    Ok(())
}

/// The campaign with id `id`, read with `client` (inside its transaction, if any).
pub(crate) async fn campaign_row(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<Campaign>, StoreError> {
    let row = client
        .query_opt(
            "SELECT body, stock, per_member_limit FROM campaigns WHERE id = $1",
            &[&id],
        )
        .await?;
    row.map(|r| {
        let mut c: Campaign = from_json(r.get(0))?;
        c.id = id;
        c.stock = r.get(1);
        c.per_member_limit = r.get(2);
        Ok(c)
    })
    .transpose()
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The grab's campaign cache and sold-out memo, shared by this instance's requests.
    campaigns: Arc<Mutex<CampaignCache>>,
    /// Sign-ups this instance decides in groups, one transaction each.
    signups: activities::SignupGroups,
    /// What this instance remembers of its full activities.
    signup_memo: Arc<crate::store::memo::SignupMemo>,
    /// Which way this instance's sign-up groups went.
    signup_paths: Arc<activities::PathCounts>,
    /// Grabs this instance decides in groups, from the stock it leases.
    grants: grants::GrantGroups,
    /// This instance as the holder of stock leases.
    holder: uuid::Uuid,
}

/// How an instance uses the database (`serve --pool`, `--pool-wait-ms`, `--lease-units`).
#[derive(Clone, Copy, Debug)]
pub struct PgSettings {
    /// Connections of the request pool.
    pub pool: usize,
    /// How long a request waits for a connection before it is answered `unavailable` (503,
    /// `Retry-After`) instead of queueing without end.
    pub pool_wait: std::time::Duration,
    /// Units of a campaign's stock the instance leases at a time for its grabs (`grants`).
    pub lease_units: i64,
}

impl Default for PgSettings {
    fn default() -> PgSettings {
        PgSettings {
            pool: 32,
            pool_wait: std::time::Duration::from_secs(2),
            lease_units: 50,
        }
    }
}

impl PgStore {
    /// Connect (`postgres://user@host:port/db`, TLS as [`tls`] reads the URL) and migrate.
    pub async fn connect(url: &str, pool_size: usize) -> Result<PgStore, StoreError> {
        PgStore::connect_with(
            url,
            PgSettings {
                pool: pool_size,
                ..PgSettings::default()
            },
        )
        .await
    }

    /// [`PgStore::connect`] with other settings.
    pub async fn connect_with(url: &str, settings: PgSettings) -> Result<PgStore, StoreError> {
        let target = tls::target(url)?;
        if target.check == tls::Check::Nothing
            && target.config.get_ssl_mode() != tokio_postgres::config::SslMode::Disable
        {
            tracing::warn!(
                "PostgreSQL: the server's certificate is not checked; set sslmode=verify-full \
                 and sslrootcert in the database URL when the database is on another machine"
            );
        }
        let manager = Manager::from_config(
            target.config,
            target.tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool)
            .wait_timeout(Some(settings.pool_wait))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?;
        // the groups' own connections (one group of each kind at a time per instance)
        let own_pool = |url: &str| -> Result<Pool, StoreError> {
            let mut t = tls::target(url)?;
            // a group holds rows locked: the database ends a connection that stops talking in
            // the middle of one (an instance frozen or cut off) after 10 s, and no group waits
            // more than 5 s for a lock (it is answered `unavailable`, and retried by the app)
            let options = format!(
                "{} -c idle_in_transaction_session_timeout=10000 -c lock_timeout=5000",
                t.config.get_options().unwrap_or_default()
            );
            t.config.options(options.trim());
            t.config.keepalives_idle(std::time::Duration::from_secs(30));
            Ok(Pool::builder(Manager::from_config(
                t.config,
                t.tls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            ))
            .max_size(1)
            .build()?)
        };
        let campaigns: Arc<Mutex<CampaignCache>> = Default::default();
        let holder = uuid::Uuid::new_v4();
        let signup_memo: Arc<crate::store::memo::SignupMemo> = Default::default();
        let signup_paths: Arc<activities::PathCounts> = Default::default();
        let store = PgStore {
            signups: activities::SignupGroups::start(
                own_pool(url)?,
                Arc::new(activities::SignupJudge {
                    memo: signup_memo.clone(),
                    known: Default::default(),
                    paths: signup_paths.clone(),
                }),
            )?,
            grants: grants::GrantGroups::start(
                own_pool(url)?,
                Arc::new(grants::GrantJudge {
                    holder,
                    lease_units: settings.lease_units,
                    campaigns: campaigns.clone(),
                }),
            )?,
            holder,
            pool,
            campaigns,
            signup_memo,
            signup_paths,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .await?;
        let found: i32 = match tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await?
        {
            Some(row) => row.get(0),
            None => {
                tx.execute("INSERT INTO schema_version VALUES (0)", &[])
                    .await?;
                0
            }
        };
        let known = MIGRATIONS.len() as i32;
        if found > known {
            return Err(StoreError::Migrate(
                unionpass_sqlite::MigrateError::TooNew {
                    found: found as u32,
                    known: known as u32,
                },
            ));
        }
        for m in &MIGRATIONS[found as usize..] {
            tx.batch_execute(m.sql)
                .await
                .map_err(|source| StoreError::PgMigration {
                    name: m.name,
                    source,
                })?;
        }
        tx.execute("UPDATE schema_version SET version = $1", &[&known])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Number the committed, unnumbered change-log rows in id order. One sequencer at a time
    /// (advisory lock); returns false when another one is running.
    pub async fn sequence(&self) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        sequence_on(&mut client).await
    }

    /// Keep numbering new change-log rows in the background.
    pub fn spawn_sequencer(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.sequence().await {
                    tracing::warn!(error = %crate::error::chain(&e), "change-log sequencer");
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    }
}

/// [`PgStore::sequence`] on a connection the caller holds (a reader that found rows waiting
/// numbers them on its own connection: taking a second one from the pool while holding the
/// first could wait on itself when the pool is short).
pub(super) async fn sequence_on(
    client: &mut deadpool_postgres::Object,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SEQUENCER_LOCK])
        .await?
        .get(0);
    if !locked {
        return Ok(false);
    }
    tx.execute(
        "WITH base AS (SELECT coalesce(max(seq), 0) AS top FROM change_log),
                  pending AS (SELECT id, row_number() OVER (ORDER BY id) AS rn
                              FROM change_log WHERE seq IS NULL ORDER BY id LIMIT 50000)
             UPDATE change_log c SET seq = base.top + pending.rn
             FROM pending, base WHERE c.id = pending.id",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    /// Every file in `schema/` is a listed migration, in order; released ones are unchanged.
    #[test]
    fn the_schema_folder_is_the_migration_list_and_released_steps_are_pinned() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/postgres/schema");
        let problems = unionpass_sqlite::schema_problems(
            &dir,
            super::MIGRATIONS,
            &crate::store::tests::POSTGRES_PINNED,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }
}
