//! The server's storage: one set of domain traits, two backends that pass the same test story.
//!
//! - The traits ([`Accounts`], [`Events`], [`Changes`], [`Campaigns`], [`Points`]) say what each
//!   domain needs from storage; [`Store`] is all of them, and is what the handlers hold.
//!   [`Ops`] (audits, bench seeding) is for the command line and the tests, not for handlers.
//! - [`model`] holds the rows and jobs passed across the traits; [`rules`] the decisions both
//!   backends share (refusals, replaying a stored first answer, the usage-code rule, the
//!   campaign cache with its sold-out memo); [`memo`] what a server remembers of its full
//!   activities, so a crowd is told "full" without a write. None of them holds SQL.
//! - [`sqlite`] (embedded, the default) and [`postgres`] (several instances over one database)
//!   have one module per domain and their migrations as `schema/NNNN_name.sql`. Domain modules
//!   take the transaction they work in and never open one of their own, so a mutation that
//!   touches several domains (a check-in that earns points) stays in one transaction. Neither
//!   backend imports the other.

pub mod memo;
pub mod model;
pub mod postgres;
pub mod rules;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use unionpass_core::activity::{Activity, ActivityLive, MySignup, Poll, PollResults, SignupAnswer};
use unionpass_core::api::{Change, Mutation, MutationResult, PassportInfo, Profile, StockLeft};
use unionpass_core::campaign::{Campaign, GrabResponse, Reschedule};
use unionpass_core::checkin::Event;
use unionpass_core::points::Entry;
use unionpass_core::redeem::{CatalogItem, PointsOffer, Redemption};
use unionpass_core::ErrorCode;
use uuid::Uuid;

pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What a store can fail with. Database errors keep their typed source; callers decide on the
/// variant (and [`StoreError::is_retryable`]), never on the text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection pool")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL connection pool set-up")]
    PoolSetup(#[from] deadpool_postgres::BuildError),
    #[error("TLS to PostgreSQL")]
    PgTls(#[from] postgres::tls::TlsSetupError),
    #[error(transparent)]
    Migrate(#[from] unionpass_sqlite::MigrateError),
    #[error("migration {name} failed")]
    PgMigration {
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("stored JSON is corrupt")]
    CorruptJson(#[from] serde_json::Error),
    #[error("a storage task failed")]
    Task(#[from] tokio::task::JoinError),
    /// A thread of the store (a group task's) could not be started.
    #[error("a storage thread could not be started")]
    Thread(#[source] std::io::Error),
    #[error("{0} already exists")]
    Duplicate(Taken),
    #[error("no campaign {0}")]
    NoCampaign(i64),
    #[error("no activity {0}")]
    NoActivity(i64),
    #[error("no coupon with the usage code {0}")]
    NoCoupon(String),
    /// A used coupon cannot be withdrawn: the use happened.
    #[error("coupon {0} was used already")]
    CouponUsed(String),
    /// The request breaks a rule of the domain (an activity that ends before it starts).
    #[error("refused: {0}")]
    Refused(ErrorCode),
    /// An idempotency key came back with other contents (a grab key for another campaign).
    #[error("idempotency key {0} was first used for something else")]
    KeyReused(Uuid),
    #[error(transparent)]
    Reschedule(#[from] unionpass_core::campaign::RescheduleError),
    #[error("the group writer has stopped")]
    WriterGone,
    /// The write group this request was decided in failed to commit (nothing of it was kept).
    #[error("the write group failed to commit")]
    GroupFailed(#[source] Arc<StoreError>),
    /// The session a race request was judged with has ended (checked where the grant is written).
    #[error("the session has ended")]
    SessionEnded,
    /// Too many requests already wait for the writer: try again in a moment.
    #[error("too many writes are waiting")]
    Busy,
}

/// What a [`StoreError::Duplicate`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    Member(String),
    DeviceKey,
    /// A grab key that another member used first.
    GrabKey(Uuid),
}

impl std::fmt::Display for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Taken::Member(no) => write!(f, "member {no}"),
            Taken::DeviceKey => f.write_str("device key"),
            Taken::GrabKey(k) => write!(f, "grab key {k}"),
        }
    }
}

impl StoreError {
    /// Whether the transaction failed only because of concurrent ones (PostgreSQL deadlock or
    /// serialization failure, by SQLSTATE): running it again may succeed.
    pub fn is_retryable(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            StoreError::Postgres(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
            ),
            _ => false,
        }
    }

    /// Whether this is a moment's congestion, not a failure: a full queue, no connection within
    /// the pool's wait, a lock not had within `lock_timeout`, or a group that failed for one of
    /// these. Answered `unavailable` (503, `Retry-After`).
    pub fn is_busy(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            StoreError::Busy | StoreError::Pool(deadpool_postgres::PoolError::Timeout(_)) => true,
            StoreError::Postgres(e) => e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE),
            StoreError::GroupFailed(inner) => inner.is_busy(),
            _ => false,
        }
    }

    /// The same answer for a request that came twice in one write group (a double tap): the
    /// errors a request earns on its own are repeated; any other one cannot be a single
    /// request's answer (it fails its whole group), so the copy is told to try again.
    pub fn again(&self) -> StoreError {
        match self {
            StoreError::Duplicate(t) => StoreError::Duplicate(t.clone()),
            StoreError::NoCampaign(id) => StoreError::NoCampaign(*id),
            StoreError::NoActivity(id) => StoreError::NoActivity(*id),
            StoreError::KeyReused(k) => StoreError::KeyReused(*k),
            StoreError::Refused(c) => StoreError::Refused(*c),
            StoreError::SessionEnded => StoreError::SessionEnded,
            StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
            _ => StoreError::Busy,
        }
    }
}

/// Sign-in, sessions, devices and their credentials, members and unions.
#[async_trait]
pub trait Accounts: Send + Sync {
    async fn member_auth(&self, member_no: &str) -> Result<Option<MemberAuth>, StoreError>;
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;
    /// The member (with their union) and the enrolled device a live session belongs to: not
    /// expired, its device not revoked, the member not suspended. Read from the database on every
    /// request, so an ended session stops working at once on every instance.
    async fn session_member(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionInfo>, StoreError>;
    /// The live sessions (as [`Accounts::session_member`] would find each at `now`), up to
    /// `limit`, most recently renewed first, with their token hashes.
    async fn live_sessions(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, SessionInfo)>, StoreError>;
    /// Keep a session in use alive until `expires_at`.
    async fn renew_session(
        &self,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// End every session of the member but `keep` (a token hash; `None`: all of them); the
    /// devices they enrolled are revoked with them. Answers how many ended.
    async fn end_sessions(
        &self,
        member_id: i64,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
    /// A new password the member chose, knowing the current one. Their reset code goes with it:
    /// whoever finds the slip later cannot take the account over.
    async fn set_password(&self, member_id: i64, password_hash: &str) -> Result<(), StoreError>;
    /// Keep `code_hash` as the member's one password reset code from `now` until `expires_at`,
    /// replacing any earlier one. `None` when no member has that number.
    async fn issue_password_reset(
        &self,
        member_no: &str,
        code_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;
    /// The reset code kept for the member with that number, if any.
    async fn password_reset(&self, member_no: &str) -> Result<Option<PasswordReset>, StoreError>;
    /// Use the reset code of the member with that number (`code_hash`, as checked): in one
    /// transaction, read it again and, if it is still usable (`PasswordReset::usable_as`), mark
    /// it used (keeping `password_hash` as the one it set), set `password_hash`, and end every
    /// session of the member (their devices revoked). Answers how many sessions ended; `None`
    /// when it is no longer usable (used, replaced or expired meanwhile, the member suspended),
    /// and then nothing changed.
    async fn use_password_reset(
        &self,
        member_no: &str,
        code_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError>;
    /// End a session (logout); the device it enrolled is revoked with it.
    async fn delete_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn profile(&self, member_id: i64) -> Result<Option<Profile>, StoreError>;
    async fn device_passport(&self, device_id: i64) -> Result<Option<DevicePassport>, StoreError>;
    async fn save_device_passport(
        &self,
        device_id: i64,
        passport: &PassportInfo,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The member's enrolled devices that are not revoked, oldest first.
    async fn devices(&self, member_id: i64) -> Result<Vec<DeviceRow>, StoreError>;
    /// Suspend a member: sign-in refused, sessions ended, passport revoked. False if unknown.
    async fn suspend_member(&self, member_no: &str, now: DateTime<Utc>)
        -> Result<bool, StoreError>;
    /// Create the workplace union if missing; returns its id.
    async fn ensure_union(&self, name: &str) -> Result<i64, StoreError>;
    /// A workplace union's name, if it exists.
    async fn union_name(&self, id: i64) -> Result<Option<String>, StoreError>;
    async fn insert_member(&self, member: NewMember, now: DateTime<Utc>)
        -> Result<i64, StoreError>;
}

/// Events, and what a staff scanner needs offline.
#[async_trait]
pub trait Events: Send + Sync {
    /// Create an event (its id is assigned).
    async fn create_event(&self, event: Event, now: DateTime<Utc>) -> Result<Event, StoreError>;
    async fn events(&self) -> Result<Vec<Event>, StoreError>;
    /// The scanner data for a staff member: their union's events and district-wide ones,
    /// check-ins and conflicts at them, and the revocation list.
    async fn scanner_data(
        &self,
        staff_member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<ScannerData, StoreError>;
}

/// Sync: the change log members pull, and the mutations their devices push.
#[async_trait]
pub trait Changes: Send + Sync {
    /// Everything one sync page reads, together: the member's profile, device `device_id`'s
    /// credential, the member's devices, at most `limit` changes after `cursor`, and, when
    /// fewer than `limit` came (the last page), the stock left at `now` and the points offer.
    /// (SQLite reads them on one connection in one blocking call: under a burst of syncs the
    /// hand-offs between threads cost more than the reads.)
    async fn sync_reads(
        &self,
        member_id: i64,
        device_id: i64,
        cursor: i64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<SyncReads, StoreError>;
    /// Changes visible to the member with `seq > cursor`, oldest first, at most `limit`.
    async fn changes_since(
        &self,
        member_id: i64,
        cursor: i64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError>;
    /// Apply a device's mutation exactly once, in one transaction whatever domains it touches:
    /// a repeated id with the same contents returns the first result, marked `replayed`, and
    /// changes nothing; with other contents it is refused (`idempotency_key_reused`). `proven`
    /// is what the server verified itself (a check-in's passport).
    async fn apply_mutation(
        &self,
        member_id: i64,
        mutation: &Mutation,
        proven: &Proven,
        now: DateTime<Utc>,
    ) -> Result<MutationResult, StoreError>;
    /// Forget idempotency records (first answers of mutations and grab keys) made before
    /// `before`; answers how many went. A device must not resend older ones.
    async fn forget_idempotency(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;
}

/// Coupon campaigns and the grab.
#[async_trait]
pub trait Campaigns: Send + Sync {
    /// Create a campaign (its id is assigned) and announce it to every member through sync.
    async fn create_campaign(
        &self,
        campaign: Campaign,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError>;
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError>;
    /// Move or cancel a campaign (rules in `unionpass_core::campaign::reschedule`) and announce
    /// the new version to every member through sync. Running servers pick it up within
    /// `campaign::CACHE_FOR`.
    async fn reschedule_campaign(
        &self,
        id: i64,
        change: Reschedule,
        now: DateTime<Utc>,
    ) -> Result<Campaign, StoreError>;
    /// Withdraw a granted coupon (granted in error, or its merchant left): a use at or after
    /// `now` is refused (`coupon_voided`) and the member's devices get a `coupon_voided` change.
    /// Withdrawing it again answers the first withdrawal; a used coupon cannot be withdrawn.
    /// The coupon is named by its usage code (what the member and the merchant see).
    async fn void_coupon(&self, code: &str, now: DateTime<Utc>)
        -> Result<VoidedCoupon, StoreError>;
    /// Stock left of the campaigns that have not ended at `now`.
    async fn stock_left(&self, now: DateTime<Utc>) -> Result<Vec<StockLeft>, StoreError>;
    /// One grab, decided and made durable before this returns: exactly the stock is granted, no
    /// member gets more than the limit, and a repeated key returns the first answer (`replayed`).
    async fn grab(&self, grab: GrabJob) -> Result<GrabResponse, StoreError>;
    /// Give back the stock this instance holds for its grabs (PostgreSQL leases), as a server
    /// does when it stops; a later grab leases again. Nothing to do where stock is not leased.
    async fn return_stock(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The points ledger, the offer, redemptions and their fulfilment.
#[async_trait]
pub trait Points: Send + Sync {
    /// What points can be redeemed for now (the catalog with its stock left).
    async fn points_offer(&self) -> Result<PointsOffer, StoreError>;
    /// Set the rate, amounts, caps and password limit (`offer.catalog` is ignored: see
    /// [`Points::put_catalog_item`]).
    async fn set_points_offer(&self, offer: PointsOffer) -> Result<(), StoreError>;
    /// Add a catalog item, or change one (its stock is set to `item.stock`).
    async fn put_catalog_item(&self, item: CatalogItem) -> Result<(), StoreError>;
    /// Add a batch of points to a member's ledger; the member's apps get it with their next sync.
    async fn accrue_points(
        &self,
        member_id: i64,
        points: i64,
        expires_at: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Entry, StoreError>;
    /// A member's ledger, in order.
    async fn points_entries(&self, member_id: i64) -> Result<Vec<Entry>, StoreError>;
    /// The member gave their password again for redemption `id`: its `redeem` mutation passes
    /// the password check until `until`.
    async fn grant_reauth(
        &self,
        member_id: i64,
        id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Take up to `limit` held redemptions for fulfilment, oldest first, each for `lease` (another
    /// worker takes it only after that).
    async fn claim_redemptions(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Settle or refund a held redemption, in one transaction with its ledger entry. `false` when
    /// it is not held (any more): nothing changes.
    async fn finish_redemption(
        &self,
        id: Uuid,
        how: Fulfilment,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The expiry sweep: write expiration entries for batches that expired by `now` (for up to
    /// `limit` members); answers how many entries were written.
    async fn record_expirations(&self, now: DateTime<Utc>, limit: i64)
        -> Result<usize, StoreError>;
    /// Every redemption of a member (for support and tests).
    async fn redemptions(&self, member_id: i64) -> Result<Vec<Redemption>, StoreError>;
}

/// Everything the handlers need: every domain.
pub trait Store:
    Accounts + Events + Changes + Campaigns + Points + Activities + Send + Sync + 'static
{
}

impl<T: Accounts + Events + Changes + Campaigns + Points + Activities + Send + Sync + 'static> Store
    for T
{
}

/// Activities (an event with words, a category and maybe a sign-up) and their sign-ups. Every
/// sign-up is decided by `unionpass_core::activity::decide` inside the transaction that counts
/// the seats; a freed seat goes to the waitlist's head by `activity::promotions`.
#[async_trait]
pub trait Activities: Send + Sync {
    /// Publish an activity (its event is created with it; the id is assigned); every member
    /// receives it by sync.
    async fn create_activity(
        &self,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> Result<Activity, StoreError>;
    /// Every activity with its live counts, soonest first.
    async fn activities(&self) -> Result<Vec<ActivityLive>, StoreError>;
    /// Where `member_id` waits now: (activity, place on its waitlist, 1 = next) for each of
    /// their sign-ups still waiting.
    async fn waitlist_places(&self, member_id: i64) -> Result<Vec<(i64, i64)>, StoreError>;
    /// The end times of the activities `member_id` had seats for, did not check in to and were
    /// not cancelled, ended in the `days` before `now`: what the no-show rule counts.
    async fn missed_ends(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
        days: i64,
    ) -> Result<Vec<DateTime<Utc>>, StoreError>;
    /// Decide one sign-up request and, when accepted, make it durable before answering. A key
    /// seen before answers its sign-up as it stands now (`replayed`), or `KeyReused` when it came
    /// with other contents. A refusal writes nothing.
    ///
    /// At a full activity (or one not open yet) most requests are refusals: once the store has
    /// refused one, the activity's snapshot is read and later requests that can only be refused
    /// are answered from [`memo::SignupMemo`] (the same on every backend; see there for what it
    /// may answer).
    async fn sign_up(&self, job: SignupJob) -> Result<SignupAnswer, StoreError> {
        let memo = self.signup_memo();
        if let Some(refusal) = memo.refusal(&job) {
            return Ok(SignupAnswer::Refused { refusal });
        }
        let answer = self.judge_sign_up(job.clone()).await?;
        match &answer {
            SignupAnswer::Accepted { .. } => {}
            SignupAnswer::Refused { .. } => {
                if let Some(reading) = memo.start_reading(job.activity_id, job.now) {
                    // a failed read only leaves the memo empty: the store keeps judging
                    if let Ok(Some(snapshot)) = self.signup_snapshot(job.activity_id).await {
                        let popular = snapshot
                            .live
                            .activity
                            .signup
                            .as_ref()
                            .is_some_and(|r| r.popular);
                        if popular {
                            if let Some(suspects) = memo.start_reading_suspects(&job) {
                                let q = memo::SuspectQuery::at(&job);
                                if let Ok(members) = self.no_show_suspects(q).await {
                                    suspects.keep(members, q, job.now);
                                }
                            }
                        }
                        reading.keep(snapshot, job.now);
                    }
                }
            }
        }
        Ok(answer)
    }
    /// [`Activities::sign_up`] judged by the store itself (the writer, the database).
    async fn judge_sign_up(&self, job: SignupJob) -> Result<SignupAnswer, StoreError>;
    /// What this store remembers of the activities it refused sign-ups for. The code that commits
    /// an accepted sign-up or a cancellation calls [`memo::SignupMemo::forget`] right after the
    /// commit, and an activity change [`memo::SignupMemo::forget_changed`], whether or not the
    /// request that asked is still there.
    fn signup_memo(&self) -> &memo::SignupMemo;
    /// One activity's counters, keys and live members, read in one consistent snapshot. `None`:
    /// no such activity.
    async fn signup_snapshot(
        &self,
        activity_id: i64,
    ) -> Result<Option<memo::SignupSnapshot>, StoreError>;
    /// The members who could be under a no-show ban (see [`memo::SuspectQuery`]); at most
    /// [`memo::SignupMemo::MAX_SUSPECTS`] + 1 of them.
    async fn no_show_suspects(&self, q: memo::SuspectQuery) -> Result<Vec<i64>, StoreError>;
    /// Cancel the member's sign-up (before the deadline); freed seats go to the waitlist in
    /// order, and each promoted member is told by sync.
    async fn cancel_signup(
        &self,
        member_id: i64,
        activity_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<MySignup, ErrorCode>, StoreError>;
    /// Move or cancel an activity; members receive the changed activity by sync.
    async fn change_activity(
        &self,
        id: i64,
        change: ActivityChange,
        now: DateTime<Utc>,
    ) -> Result<Activity, StoreError>;
    /// Every sign-up of an activity, in the order received.
    async fn signups(&self, activity_id: i64) -> Result<Vec<SignupRow>, StoreError>;
    /// Every member's feedback on an activity, oldest first.
    async fn feedback(&self, activity_id: i64) -> Result<Vec<FeedbackRow>, StoreError>;
    /// Publish a needs poll (id assigned); every member receives it by sync.
    async fn create_poll(&self, poll: Poll, now: DateTime<Utc>) -> Result<Poll, StoreError>;
    async fn polls(&self) -> Result<Vec<Poll>, StoreError>;
    /// The count per option, with `member_id`'s vote; `None` for no such poll.
    async fn poll_results(
        &self,
        poll_id: i64,
        member_id: i64,
    ) -> Result<Option<PollResults>, StoreError>;
}

/// Operations and bench support: counts straight from the stored rows and bulk seeding. Used by
/// the command line (`campaign stats`, `bench-seed`) and the tests, never by a handler.
#[async_trait]
pub trait Ops: Store {
    /// What the database holds for one campaign (for `campaign stats` and the bench's audit).
    async fn audit(&self, campaign_id: i64) -> Result<Audit, StoreError>;
    /// How many of these grab keys have no grant row (acknowledged grants that were lost).
    async fn missing_grants(&self, keys: Vec<Uuid>) -> Result<i64, StoreError>;
    /// Create `n` members (`B000001`…) in one union, each with a session; returns the tokens in
    /// member order.
    async fn bench_members(&self, n: usize, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
    /// (benches) Up to `limit` unrevoked devices that hold no credential yet: device id, member
    /// id and the device's public key.
    async fn bench_unissued(&self, limit: i64) -> Result<Vec<(i64, i64, [u8; 32])>, StoreError>;
    /// (benches) Save credentials for many devices in one transaction, as each device's sync
    /// would (members who used the app before: their next sync issues nothing).
    async fn bench_save_passports(
        &self,
        passports: Vec<(i64, PassportInfo)>,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Record `n` check-ins at `event_id` for members `first_member`… (numbers `B…`), scanned at
    /// `at` by one scanner, as a busy door would leave them (benches and tests: a 10,000-person
    /// event without 10,000 passports). Answers how many were recorded.
    async fn bench_checkins(
        &self,
        event_id: i64,
        first_member: i64,
        n: usize,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
    /// (the demo) The scan `c` by staff member `staff_id`, recorded as the door's upload at `now`
    /// would have been (the check-in, the member's `attended` change, the event's points with
    /// their audit record), with no passport to prove it: the demo's past activity, waiting for
    /// the member's feedback. Answers whether it was the member's first check-in there.
    async fn demo_checkin(
        &self,
        c: unionpass_core::checkin::CheckIn,
        staff_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Two years of history for member `member_no` (benches and tests: a heavy first sync):
    /// `coupons` coupons granted by one campaign that ended a month ago, and `entries` points
    /// accruals of one point each, each with its change for the member's devices. Answers the
    /// member's id.
    async fn bench_history(
        &self,
        member_no: &str,
        coupons: usize,
        entries: usize,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// The newest `limit` audit records (what staff scans credited), newest first.
    async fn audit_log(&self, limit: i64) -> Result<Vec<serde_json::Value>, StoreError>;
    /// The settings an acknowledgement rests on ("answered once durable"), as the live writing
    /// connection reports them: SQLite `journal_mode` and `synchronous`, PostgreSQL `fsync` and
    /// `synchronous_commit`.
    async fn durability(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// How this instance's sign-up groups were judged since it started; `None` where groups are
    /// never decided from memory (SQLite's writer judges every sign-up itself).
    fn signup_group_paths(&self) -> Option<GroupPaths> {
        None
    }
    /// (tests) Judge `jobs` the way a sign-up group whose batch kept nothing is judged: on
    /// PostgreSQL in one transaction, one at a time (reached in service only when a key of the
    /// group was taken elsewhere at the same moment, which a test cannot time). SQLite judges
    /// every sign-up one at a time already.
    async fn sign_up_one_at_a_time(
        &self,
        jobs: Vec<SignupJob>,
    ) -> Result<Vec<Result<SignupAnswer, StoreError>>, StoreError> {
        let mut answers = Vec::with_capacity(jobs.len());
        for job in jobs {
            answers.push(self.judge_sign_up(job).await);
        }
        Ok(answers)
    }
}

/// The ways a PostgreSQL sign-up group is judged, each counted (the tests read them to know
/// which way their groups went).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupPaths {
    /// Decided from what the instance knew, and committed so.
    pub decided_from_memory: u64,
    /// Decided from memory, then rolled back: what it rested on had changed (or its `COMMIT`'s
    /// outcome was unknown); judged again under the lock.
    pub rolled_back: u64,
    /// Judged under the activity's lock (cold, doubted, or after a rollback).
    pub under_the_lock: u64,
}

/// Test-only (the `testing` feature): with `UNIONPASS_TEST_EXIT_AFTER_GRANT_COMMIT` set, the
/// process exits right after a commit that granted a coupon and before the answer is sent — the
/// crash test's deterministic window between "durable" and "acknowledged". Without the feature
/// this does nothing.
pub(crate) fn exit_after_grant_commit() {
    #[cfg(feature = "testing")]
    if std::env::var_os("UNIONPASS_TEST_EXIT_AFTER_GRANT_COMMIT").is_some() {
        std::process::exit(86);
    }
}

/// The campaign [`Ops::bench_history`] grants its coupons from (ended before `now`).
pub(crate) fn history_campaign(
    coupons: usize,
    now: DateTime<Utc>,
) -> unionpass_core::campaign::Campaign {
    use chrono::Duration;
    unionpass_core::campaign::Campaign {
        id: 0,
        title_zh: "往期福利券".into(),
        title_en: "Earlier welfare coupon".into(),
        category: unionpass_core::campaign::Category::Meal,
        face_value_cents: 1000,
        terms_zh: String::new(),
        terms_en: String::new(),
        coupon_valid_from: now - Duration::days(60),
        coupon_valid_until: now + Duration::days(300),
        stock: coupons as i64,
        per_member_limit: coupons as i64,
        release_at: now - Duration::days(60),
        end_at: now - Duration::days(30),
        eligible_unions: vec![],
        eligible_union_names: vec![],
        cancelled_at: None,
    }
}

/// Every store trait, for callers that hold a `dyn Store` (methods of a supertrait need it in
/// scope).
pub mod prelude {
    pub use super::{Accounts, Activities, Campaigns, Changes, Events, Ops, Points, Store};
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, Duration, Utc};
    use unionpass_core::activity::{Activity, ActivityCategory, SignupRules};

    /// A district-wide sports day three days after `now`, open for sign-up since an hour before:
    /// two seats, a waitlist of one, one companion allowed, not popular. Tests change what
    /// they are about.
    pub fn sports_day(now: DateTime<Utc>) -> Activity {
        let starts_at = now + Duration::days(3);
        Activity {
            id: 0,
            title_zh: "职工运动会".into(),
            title_en: "Sports day".into(),
            description_zh: String::new(),
            description_en: String::new(),
            category: ActivityCategory::Sports,
            place: "体育中心".into(),
            place_en: "Sports centre".into(),
            starts_at,
            ends_at: starts_at + Duration::hours(3),
            union_id: None,
            points: 10,
            signup: Some(SignupRules {
                opens_at: now - Duration::hours(1),
                closes_at: starts_at,
                seats: 2,
                waitlist: 1,
                max_companions: 1,
                cancel_until: starts_at,
                popular: false,
            }),
            cancelled_at: None,
        }
    }

    /// SHA-256 of each released SQLite migration, in order.
    pub const SQLITE_PINNED: [&str; 13] = [
        "8b624c05cd25af67b2c71f98c4a1ce6bf53cb9158f990754af4bc5aa8066326f",
        "b5a2026d3b2083d0c3951b4891ac2694bb622c65c032690c6a528db778155c81",
        "20a0cf13b89739a810e597549120f199f8a82a4e28d5864adbaa9a08e8749c47",
        "5b7d66ccc0d0e941253b8ecde3e381b29e65937952cf001ede1ffcd003760368",
        "b5b956fec055084de57288a20b219324715704b1a63c0392ea7f591fc573272d",
        "391fd2acb0ceaadb8e5453c572ce86b6694638ece7456a053db685f4ba8e8b3f",
        "68ebe3c7044a839a4217d41d143f1686f3db22376d5d8eac70209385b2e6abad",
        "ff12660e677d9172da5cb1bd24bd301dbb733fdf5e6347bb6da4f7a2f056409f",
        "279a08787bde0ab2cb741f918ddf778b1d87c6737f64b27c8c8448b0f2dc2cd4",
        "a6a1609ee4f2020f2f5cf4810e5f5aa02eeb4a9919f8b64abe8023350fd08f33",
        "f32ba28330a5436b4d1ebcae3f40bcb85f4bca88c93b490e402ac61d794b204a",
        "d96b783faf04427e38b30d99498735a84b3b4f9e5647ea33103c047fa6d1ab7b",
        "3ea1c43b74a8fde051e7cb98c86c71582fcf8e863e3657e37d9ad277eb9061d5",
    ];
    /// SHA-256 of each released PostgreSQL migration, in order.
    pub const POSTGRES_PINNED: [&str; 17] = [
        "2987b2efb86df5d871fcdb3778f76ed92299b4a1cb7ab9bed7f196f64fa66a56",
        "31e6f6a441197f4abd10c559cc0c5f229763e309cb4ec284a113e1a05a530e13",
        "329a4889d3b63561a3c959833dc6fb01e8efbf6f17c5fd9801aaeeb5cb23d090",
        "63a700de401b2c78d432d0f5b6f73d5403271aaa5fc6edcb1e4df8ec7aef2b26",
        "0cdd53e11c3e98de3cd2231b7b6fe6c3a3cf7428e901152a35ccbe20a1b84121",
        "d89412220fe68933b262bc8ab6f4efc9bcc27fadd3666460eebafeb92a688081",
        "4bc8f472d7297911fb5ead75cc1b94f748326ab7627bbfe0c74dd4ec7e35f59b",
        "5425c450d981b3d8065fb42dc315101e0faf5522c8853ff9ab633c9671676062",
        "47fba8e3b8fcb94ea2968f970e3e04ef4d83719a74cbf9bdbece70a0fc2b2e87",
        "f7d8f2c69800632e26af5c9918b7e7eb2e695cf478bbe526306e1f993cd5918f",
        "2cccd7fcd72695d027305171ba7bfd22f7a67d2e10904c80b1ce6a92151952a6",
        "4e03678930ced3653a4da281b14baf666f1e51d17ad43ba52aa395691cf30d62",
        "f32ba28330a5436b4d1ebcae3f40bcb85f4bca88c93b490e402ac61d794b204a",
        "44ed30b044bc1246b5ab6adb24e70db28aacdcd2130eed3a5194602821f39b97",
        "5a3dfb1ee18a78390b312c13720cee97831b64f1823b118e4505854ab084821f",
        "f0b75c832f3652aa6612f9869d27073832ea7ef677a950940b5c4faea85cee95",
        "3ea1c43b74a8fde051e7cb98c86c71582fcf8e863e3657e37d9ad277eb9061d5",
    ];
}
