//! The server's storage, behind one trait so that SQLite (embedded, the default) and PostgreSQL
//! (several stateless servers) serve the same handlers and pass the same test story.

pub mod postgres;
pub mod sqlite;
mod sqlite_grab;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use unionpass_core::api::{Change, Mutation, MutationResult, PassportInfo, Profile, Role};
use unionpass_core::campaign::{Campaign, GrabResponse};
use uuid::Uuid;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Migrate(#[from] unionpass_sqlite::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("a storage task failed: {0}")]
    Task(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("no campaign {0}")]
    NoCampaign(i64),
    #[error("the grab writer has stopped")]
    WriterGone,
}

/// What login needs to know about a member.
#[derive(Clone, Debug)]
pub struct MemberAuth {
    pub member_id: i64,
    pub password_hash: String,
}

#[derive(Clone, Debug)]
pub struct NewMember {
    pub member_no: String,
    pub name: String,
    pub union_id: i64,
    pub role: Role,
    pub password_hash: String,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    /// SHA-256 of the token, hex; the token itself is never stored.
    pub token_hash: String,
    pub member_id: i64,
    pub device_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn member_auth(&self, member_no: &str) -> Result<Option<MemberAuth>, StoreError>;
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;
    /// The member a live (unexpired) session belongs to.
    async fn session_member(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;

    async fn profile(&self, member_id: i64) -> Result<Option<Profile>, StoreError>;
    async fn passport(&self, member_id: i64) -> Result<Option<PassportInfo>, StoreError>;
    async fn save_passport(
        &self,
        member_id: i64,
        passport: &PassportInfo,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Changes visible to the member with `seq > cursor`, oldest first, at most `limit`.
    async fn changes_since(
        &self,
        member_id: i64,
        cursor: i64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError>;

    /// Apply a device's mutation exactly once: a repeated id returns the first result, marked
    /// `replayed`, and changes nothing.
    async fn apply_mutation(
        &self,
        member_id: i64,
        mutation: &Mutation,
        now: DateTime<Utc>,
    ) -> Result<MutationResult, StoreError>;

    /// Create the workplace union if missing; returns its id.
    async fn ensure_union(&self, name: &str) -> Result<i64, StoreError>;
    async fn insert_member(&self, member: NewMember, now: DateTime<Utc>)
        -> Result<i64, StoreError>;

    /// Create a campaign (its id is assigned) and announce it to every member through sync.
    async fn create_campaign(
        &self,
        campaign: Campaign,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError>;
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError>;

    /// One grab, decided and made durable before this returns: exactly the stock is granted, no
    /// member gets more than the limit, and a repeated key returns the first answer (`replayed`).
    async fn grab(&self, grab: GrabJob) -> Result<GrabResponse, StoreError>;

    /// Counts straight from the stored rows, for `campaign stats` and the bench's audit.
    async fn audit(&self, campaign_id: i64) -> Result<Audit, StoreError>;

    /// How many of these grab keys have no grant row (acknowledged grants that were lost).
    async fn missing_grants(&self, keys: Vec<Uuid>) -> Result<i64, StoreError>;

    /// Bench support: create `n` members (`B000001`…) in one union, each with a session; returns
    /// the tokens in member order. Only the hidden `bench-seed` command calls it.
    async fn bench_members(&self, n: usize, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
}

/// A member's grab request, as the store sees it.
#[derive(Clone, Debug)]
pub struct GrabJob {
    pub member_id: i64,
    pub union_id: i64,
    pub campaign_id: i64,
    pub key: Uuid,
    pub now: DateTime<Utc>,
}

/// What the database holds for one campaign.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    pub campaign_id: i64,
    pub stock: i64,
    /// Grant rows.
    pub granted: i64,
    /// The campaign's own counter of granted stock (must equal `granted`).
    pub counter: i64,
    /// Members holding a grant.
    pub members: i64,
    /// Grants beyond the stock.
    pub oversold: i64,
    /// Grants beyond a member's limit, summed over members.
    pub double_grants: i64,
    /// Answers stored under idempotency keys.
    pub answers: i64,
}
