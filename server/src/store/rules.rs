//! The decisions both backends share, so that SQLite and PostgreSQL answer the same way: refusals,
//! replaying a stored first answer, how a change is written to the log, the usage-code rule, and
//! the grab's campaign cache with its sold-out memo. No SQL here; the backends call these from
//! inside their transactions.

use chrono::{DateTime, Utc};
use rand::Rng;
use unionpass_core::api::{ChangeKind, MutationOutcome, MutationResult, Role};
use unionpass_core::campaign::{precheck, Campaign, Coupon, GrabOutcome, GrabResponse};
use unionpass_core::passport::Claims;
use unionpass_core::points::EntryKind;
use unionpass_core::redeem::{Redemption, RedemptionStatus};
use unionpass_core::ErrorCode;
use uuid::Uuid;

use super::{Fulfilment, GrabJob, StoreError, Taken};

/// Devices a member has signed in at once. Signing in on one more revokes the one enrolled
/// longest ago, with its session, so no account grows its devices, sessions and sync answer
/// without bound however often it signs in.
pub const MAX_DEVICES: usize = 10;

impl super::PasswordReset {
    /// What the code is good for at `now` (one rule for the handler's check and for both
    /// stores' use of it, inside their transaction).
    pub fn state(&self, now: DateTime<Utc>) -> super::ResetState {
        use super::ResetState;
        if self.suspended || now >= self.expires_at {
            ResetState::Void
        } else if self.used_at.is_none() {
            ResetState::Usable
        } else if self.set_hash.as_deref() == Some(self.password_hash.as_str()) {
            ResetState::Used
        } else {
            ResetState::Void
        }
    }

    /// Whether `code_hash` (the code as the handler checked it) may be used now: still the
    /// member's code, unused, in time, the member not suspended.
    pub fn usable_as(&self, code_hash: &str, now: DateTime<Utc>) -> bool {
        self.code_hash == code_hash && self.state(now) == super::ResetState::Usable
    }
}

/// Which of a member's signed-in devices (their ids, the one enrolled first first) a sign-in
/// just enrolled, the last of them, leaves over [`MAX_DEVICES`]: the oldest.
pub fn devices_over_cap(signed_in: &[i64]) -> &[i64] {
    &signed_in[..signed_in.len().saturating_sub(MAX_DEVICES)]
}

/// Events listed to a scanner: those not ended more than this long ago. Two days, so that all of
/// yesterday's events are still there at any hour of today (the door says when one ended).
pub const EVENT_GRACE: chrono::Duration = chrono::Duration::days(2);

/// How many times a grab or a mutation is run again after a retryable failure
/// ([`StoreError::is_retryable`]).
pub const RETRIES: usize = 5;

/// A failure that may say running the same work again could succeed.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        StoreError::is_retryable(self)
    }
}

/// Run `attempt`, and again after each retryable failure, at most [`RETRIES`] more times. Only
/// for work that a failure rolls back whole (one transaction).
pub async fn retrying<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && tries < RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// A device public key as stored: base64url without padding.
pub fn key_text(key: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

pub fn key_bytes(text: &str) -> Result<[u8; 32], StoreError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("device key {text:?}")))
}

/// A change as the log stores it: its kind's wire name and its data (the same split the sync
/// answer uses, so the two cannot drift).
pub fn change_parts(kind: &ChangeKind) -> (String, serde_json::Value) {
    let mut v = serde_json::to_value(kind).expect("a change serializes");
    let data = v
        .get_mut("data")
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    let name = v
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("unknown")
        .to_string();
    (name, data)
}

/// [`change_parts`] with the data as JSON text, written straight from the change rather than
/// through a `serde_json::Value` tree (by the profile, about 8,000 instructions less for an
/// accepted sign-up's change). The same kind and the same data; its keys in the order the type declares
/// them rather than sorted.
pub fn change_text(kind: &ChangeKind) -> (String, String) {
    let whole = serde_json::to_string(kind).expect("a change serializes");
    split_change(&whole).unwrap_or_else(|| {
        let (name, data) = change_parts(kind);
        (name, data.to_string())
    })
}

/// A change's name and data, cut out of the adjacently tagged form as serde_json writes it,
/// `{"kind":"<name>","data":<data>}`; `None` for any other shape (no data, another order).
fn split_change(whole: &str) -> Option<(String, String)> {
    let (name, tail) = whole.strip_prefix("{\"kind\":\"")?.split_once('"')?;
    let data = tail.strip_prefix(",\"data\":")?.strip_suffix('}')?;
    Some((name.to_string(), data.to_string()))
}

/// The `feedback` mutation's decision, the same on every backend: the activity must exist
/// (`ends_at`: when it ends, `None` for no such activity), the rest is
/// `activity::may_give_feedback`. `Ok` gives the instant it was first given (kept when it is
/// changed).
pub fn judge_feedback(
    ends_at: Option<DateTime<Utc>>,
    checked_in: bool,
    first_given_at: Option<DateTime<Utc>>,
    f: &unionpass_core::activity::Feedback,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, MutationOutcome> {
    let Some(ends_at) = ends_at else {
        return Err(rejected(ErrorCode::NotFound, "No such activity."));
    };
    unionpass_core::activity::may_give_feedback(
        checked_in,
        ends_at,
        first_given_at,
        f.rating,
        &f.comment,
        now,
    )
    .map_err(|code| rejected(code, "This feedback cannot be given."))?;
    Ok(first_given_at.unwrap_or(now))
}

/// The `vote` mutation's decision, the same on every backend: the poll must exist, the rest is
/// `activity::may_vote` for the voter's union.
pub fn judge_vote(
    poll: Option<&unionpass_core::activity::Poll>,
    union_id: i64,
    v: &unionpass_core::activity::Vote,
    now: DateTime<Utc>,
) -> Result<(), MutationOutcome> {
    let poll = poll.ok_or_else(|| rejected(ErrorCode::NotFound, "No such poll."))?;
    unionpass_core::activity::may_vote(poll, union_id, v.option, now)
        .map_err(|code| rejected(code, "This vote cannot be taken."))
}

/// How many days of the member's misses a sign-up to `activity` needs read (`None`: none; the
/// no-show rule closes popular activities only): the rule's window and the ban after it.
pub fn misses_lookback(
    activity: &unionpass_core::activity::Activity,
    job: &crate::store::SignupJob,
) -> Option<i64> {
    activity
        .signup
        .as_ref()
        .filter(|r| r.popular)
        .map(|_| ban_lookback(&job.no_show))
}

/// How far back a member's misses can still ban them (`activity::no_show_ban`): the rule's
/// window before the latest miss, and the ban after it.
pub fn ban_lookback(rule: &unionpass_core::activity::NoShowRule) -> i64 {
    rule.window_days + rule.ban_days
}

/// One sign-up request judged on what the store read under the activity's lock: its seats taken
/// and sign-ups waiting, the member's live sign-up (its state's name), and their misses (read for
/// [`misses_lookback`] days). The same on every backend, and for one request or a group.
pub fn judge_signup(
    activity: &unionpass_core::activity::Activity,
    seats_taken: i64,
    waiting: i64,
    existing: Option<&str>,
    misses: &[DateTime<Utc>],
    job: &crate::store::SignupJob,
) -> Result<
    Result<unionpass_core::activity::SignupState, unionpass_core::activity::Refusal>,
    StoreError,
> {
    use unionpass_core::activity::{decide, no_show_ban, SignupFacts, SignupState};
    let rules = activity
        .signup
        .as_ref()
        .ok_or(StoreError::Refused(ErrorCode::BadRequest))?;
    let facts = SignupFacts {
        seats_taken,
        waitlisted: waiting,
        existing: existing.and_then(SignupState::parse),
        banned_until: rules
            .popular
            .then(|| no_show_ban(&job.no_show, misses, job.now))
            .flatten(),
        eligible: activity.admits_union(job.union_id),
        cancelled: activity.cancelled_at.is_some(),
    };
    Ok(decide(rules, &facts, job.companions, job.now))
}

/// What a sign-up accepted in `state` takes from its activity's counters (as read under the
/// activity's lock, and kept as a group goes): its seats with companions, or the next waitlist
/// place; answers that place (the last one), `None` with seats. The same on every backend.
pub fn take_place(
    state: unionpass_core::activity::SignupState,
    companions: i64,
    seats_taken: &mut i64,
    waiting: &mut i64,
) -> Option<i64> {
    if state.has_seats() {
        *seats_taken += 1 + companions;
        None
    } else {
        *waiting += 1;
        Some(*waiting)
    }
}

/// The member's view of a sign-up just accepted in `state` at `at` (the time as the store keeps
/// it, so that a replay reads back the same), with its waitlist place from [`take_place`].
pub fn new_signup(
    job: &crate::store::SignupJob,
    state: unionpass_core::activity::SignupState,
    position: Option<i64>,
    at: DateTime<Utc>,
) -> unionpass_core::activity::MySignup {
    unionpass_core::activity::MySignup {
        activity_id: job.activity_id,
        state,
        companions: job.companions,
        position,
        created_at: at,
        updated_at: at,
    }
}

/// The English title or place a scanner shows for an event: its own (`event create --title-en`,
/// `--place-en`), else its activity's; none where neither says anything (the Chinese one is shown
/// then).
pub fn event_english(own: Option<String>, activity: Option<String>) -> Option<String> {
    own.into_iter()
        .chain(activity)
        .find(|t| !t.trim().is_empty())
}

/// A sign-up key seen before: the same request (member, activity, companions) is answered again;
/// the key with anything else is a reused key.
pub fn signup_replay(
    stored: (i64, i64, i64),
    job: &crate::store::SignupJob,
) -> Result<(), StoreError> {
    if stored == (job.member_id, job.activity_id, job.companions) {
        Ok(())
    } else {
        Err(StoreError::KeyReused(job.key))
    }
}

/// An activity after the union's change: moved (the cancellation deadline moves with the start,
/// so a member who cannot come at the new time may still cancel; a sign-up window or deadline
/// past the new start is brought back to it) or cancelled (once; the first instant stays).
pub fn changed_activity(
    mut a: unionpass_core::activity::Activity,
    change: crate::store::ActivityChange,
    now: DateTime<Utc>,
) -> Result<unionpass_core::activity::Activity, StoreError> {
    use crate::store::ActivityChange;
    match change {
        ActivityChange::Move { starts_at, ends_at } => {
            if starts_at >= ends_at {
                return Err(StoreError::Refused(ErrorCode::BadRequest));
            }
            let by = starts_at - a.starts_at;
            a.starts_at = starts_at;
            a.ends_at = ends_at;
            if let Some(r) = a.signup.as_mut() {
                r.closes_at = r.closes_at.min(starts_at);
                r.cancel_until = (r.cancel_until + by).min(starts_at);
                r.opens_at = r.opens_at.min(r.closes_at - chrono::Duration::minutes(1));
            }
        }
        ActivityChange::Cancel => {
            a.cancelled_at.get_or_insert(now);
        }
    }
    Ok(a)
}

/// How long first answers are kept under their idempotency keys (mutation ids, grab keys). A
/// device resends a change long before this (the outbox retries at every sync).
pub const IDEMPOTENCY_TTL: chrono::Duration = chrono::Duration::days(90);

/// What a mutation id was first used for: the SHA-256 of its operation's JSON.
pub fn fingerprint(op: &unionpass_core::api::MutationOp) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(op).expect("a mutation serializes");
    format!("{:x}", Sha256::digest(json))
}

/// The answer to a mutation id seen before: the first outcome when it is this member's and the
/// same change (`stored`: the first one's fingerprint; `None` for ids kept before fingerprints);
/// a refusal when the id comes back with another change; a refusal that says nothing about it
/// when it is another member's.
pub fn replay_mutation(
    id: Uuid,
    member_id: i64,
    owner: i64,
    stored: Option<&str>,
    this: &str,
    first: impl FnOnce() -> Result<MutationOutcome, StoreError>,
) -> Result<MutationResult, StoreError> {
    if owner != member_id {
        return Ok(MutationResult {
            id,
            outcome: rejected(
                ErrorCode::Forbidden,
                "This change id is already used; create a new change.",
            ),
            replayed: true,
        });
    }
    if stored.is_some_and(|s| s != this) {
        return Ok(MutationResult {
            id,
            outcome: rejected(
                ErrorCode::IdempotencyKeyReused,
                "This change id was first used for another change; create a new change.",
            ),
            replayed: false,
        });
    }
    Ok(MutationResult {
        id,
        outcome: first()?,
        replayed: true,
    })
}

/// The answer to a grab key seen before: the first answer, marked `replayed`, when it is this
/// member's for the same campaign; the key reused for another campaign is refused; another
/// member's key is refused without saying anything about it.
pub fn replay_grab(
    job: &GrabJob,
    owner: i64,
    campaign_id: i64,
    first: impl FnOnce() -> Result<GrabResponse, StoreError>,
) -> Result<GrabResponse, StoreError> {
    if owner != job.member_id {
        return Err(StoreError::Duplicate(Taken::GrabKey(job.key)));
    }
    if campaign_id != job.campaign_id {
        return Err(StoreError::KeyReused(job.key));
    }
    let mut first = first()?;
    first.replayed = true;
    Ok(first)
}

/// A fresh answer to a grab.
pub fn grab_answer(job: &GrabJob, outcome: GrabOutcome) -> GrabResponse {
    GrabResponse {
        key: job.key,
        campaign_id: job.campaign_id,
        outcome,
        replayed: false,
    }
}

/// The usage code of a granted coupon, what a merchant types or scans: the campaign's last four
/// digits, then 80 random bits in Crockford base32 (no I, L, O or U), in groups of four:
/// `0012-7K3M-9QXD-2RFA-W8PT`. Unguessable (a code cannot be derived from another), and the
/// same rule on every backend.
pub fn usage_code(campaign_id: i64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bits: u128 = rand::thread_rng().gen::<u128>() >> 48; // 80 bits
    let mut out = format!("{:04}", campaign_id.rem_euclid(10_000));
    for i in 0..16 {
        if i % 4 == 0 {
            out.push('-');
        }
        let digit = (bits >> (5 * (15 - i))) & 31;
        out.push(ALPHABET[digit as usize] as char);
    }
    out
}

/// The coupon a grant row stands for.
pub fn coupon_of(c: &Campaign, id: i64, code: String, granted_at: DateTime<Utc>) -> Coupon {
    Coupon {
        id,
        campaign_id: c.id,
        code,
        category: c.category,
        title_zh: c.title_zh.clone(),
        title_en: c.title_en.clone(),
        face_value_cents: c.face_value_cents,
        terms_zh: c.terms_zh.clone(),
        terms_en: c.terms_en.clone(),
        valid_from: c.coupon_valid_from,
        valid_until: c.coupon_valid_until,
        granted_at,
        voided_at: None,
    }
}

/// The campaigns a grab server keeps in memory, each for at most `campaign::CACHE_FOR` (a moved
/// or cancelled campaign is picked up within that), and which of them it saw sold out (stock never
/// comes back, so those need no stock query). Bounded: past [`CampaignCache::MAX`] entries the
/// stale ones are dropped, and if that is not enough, all of them (it is only a cache).
#[derive(Default)]
pub struct CampaignCache {
    entries: foldhash::HashMap<i64, Cached>,
}

struct Cached {
    campaign: Campaign,
    read_at: DateTime<Utc>,
    sold_out: bool,
    /// Once sold out: every key that holds a grant of it (read when the stock was seen gone, so
    /// no grant comes after). `None`: not known (a retried key is then judged by the store).
    /// Keys are chosen by clients, so std's SipHash (unlike the campaigns' ids: see the
    /// server's Cargo.toml).
    granted_keys: Option<std::sync::Arc<std::collections::HashSet<Uuid>>>,
}

impl CampaignCache {
    pub const MAX: usize = 4096;
    /// Granted keys kept for a sold-out campaign at most (beyond, retries go to the store).
    pub const MAX_KEYS: usize = 200_000;

    /// The campaign if it was read less than `CACHE_FOR` before `now`.
    pub fn fresh(&self, id: i64, now: DateTime<Utc>) -> Option<&Campaign> {
        self.entries
            .get(&id)
            .filter(|e| now - e.read_at < unionpass_core::campaign::CACHE_FOR)
            .map(|e| &e.campaign)
    }

    /// Keep `campaign` as read at `now` (its sold-out mark stays).
    pub fn put(&mut self, campaign: Campaign, now: DateTime<Utc>) {
        if self.entries.len() >= Self::MAX && !self.entries.contains_key(&campaign.id) {
            self.entries
                .retain(|_, e| now - e.read_at < unionpass_core::campaign::CACHE_FOR);
            if self.entries.len() >= Self::MAX {
                self.entries.clear();
            }
        }
        let (sold_out, granted_keys) = self
            .entries
            .get(&campaign.id)
            .map(|e| (e.sold_out, e.granted_keys.clone()))
            .unwrap_or_default();
        self.entries.insert(
            campaign.id,
            Cached {
                campaign,
                read_at: now,
                sold_out,
                granted_keys,
            },
        );
    }

    /// The stock of `id` was seen gone; `granted_keys`, if read then, are the keys holding its
    /// grants (kept only up to [`CampaignCache::MAX_KEYS`]).
    pub fn mark_sold_out(
        &mut self,
        id: i64,
        granted_keys: Option<std::collections::HashSet<Uuid>>,
    ) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.sold_out = true;
            e.granted_keys = granted_keys
                .filter(|k| k.len() <= Self::MAX_KEYS)
                .map(std::sync::Arc::new);
        }
    }

    /// Whether `id` is already known sold out with its granted keys (they need no reading again).
    pub fn knows_granted_keys(&self, id: i64) -> bool {
        self.entries
            .get(&id)
            .is_some_and(|e| e.sold_out && e.granted_keys.is_some())
    }

    /// A grab answered from memory, before the store (no write, no database read): not started
    /// (no grant exists before the release: a campaign cannot be moved in its last minute, longer
    /// than a copy is kept), or sold out as this server saw it, for a key that holds no grant. A
    /// refusal is not kept under its key: the same key again is judged again, and can only be
    /// refused again, or granted if stock came back. `None`: the store judges (ended or not
    /// eligible may concern a key granted earlier).
    pub fn refusal_from_memory(&self, job: &GrabJob) -> Option<GrabOutcome> {
        let e = self
            .entries
            .get(&job.campaign_id)
            .filter(|e| job.now - e.read_at < unionpass_core::campaign::CACHE_FOR)?;
        match precheck(&e.campaign, job.union_id, job.now) {
            Some(o @ GrabOutcome::NotStarted { .. }) => Some(o),
            Some(_) => None,
            None => e
                .granted_keys
                .as_ref()
                .filter(|keys| e.sold_out && !keys.contains(&job.key))
                .map(|_| GrabOutcome::SoldOut),
        }
    }

    /// What a grab gets without touching stock: the pure refusals (eligibility, window), or sold
    /// out when this server already saw the stock gone. `None`: try to take one.
    pub fn decide_without_stock(
        &self,
        c: &Campaign,
        union_id: i64,
        now: DateTime<Utc>,
    ) -> Option<GrabOutcome> {
        precheck(c, union_id, now).or_else(|| {
            self.entries
                .get(&c.id)
                .is_some_and(|e| e.sold_out)
                .then_some(GrabOutcome::SoldOut)
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a member holding `held` grants of `c` has reached its per-member limit (one rule for
/// both backends: SQLite counts grants, PostgreSQL the member's locked counter).
pub fn limit_reached(c: &Campaign, held: i64) -> bool {
    held >= c.per_member_limit
}

/// The answer to a grab from this server's memory, when [`CampaignCache::refusal_from_memory`]
/// has one (the same on every backend).
pub fn answer_from_memory(
    cache: &std::sync::Mutex<CampaignCache>,
    job: &GrabJob,
) -> Option<GrabResponse> {
    let outcome = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .refusal_from_memory(job)?;
    Some(grab_answer(job, outcome))
}

/// A check-in may have been scanned this long before its event starts (doors open early)…
pub const CHECKIN_EARLY: chrono::Duration = chrono::Duration::hours(2);
/// …or this long after it ends.
pub const CHECKIN_LATE: chrono::Duration = chrono::Duration::hours(2);
/// How far a scanner's clock may run ahead of the server's.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// What the database says about an uploaded check-in, read by the backend inside the mutation's
/// transaction.
#[derive(Clone, Debug)]
pub struct CheckinFacts {
    /// The uploader's role and workplace union.
    pub staff: (Role, i64),
    /// The event: its union (`None`: district-wide), start and end; `None`: no such event.
    pub event: Option<(Option<i64>, DateTime<Utc>, DateTime<Utc>)>,
    /// When the scanned device was revoked, if it was.
    pub device_revoked_at: Option<DateTime<Utc>>,
    /// When the scanned member was suspended, if they were; `None` in the outer option: no such
    /// member.
    pub member: Option<Option<DateTime<Utc>>>,
    /// The scanned member's sign-up, when the event is an activity that takes them.
    pub door: unionpass_core::checkin::Door,
    /// The scanned code (that showing of the passport, [`Presentation::id`]) already checked the
    /// member in at another event.
    ///
    /// [`Presentation::id`]: unionpass_core::passport::Presentation::id
    pub shown_elsewhere: bool,
}

/// Which showing of a passport a check-in's proof is ([`Presentation::id`]), when it decodes:
/// for the demo's check-ins, which are not proved (an upload's is read with its proof,
/// [`crate::store::ProvenCheckin::shown`]).
///
/// [`Presentation::id`]: unionpass_core::passport::Presentation::id
pub fn shown_of(c: &unionpass_core::checkin::CheckIn) -> Option<String> {
    let text = c.proof.as_deref()?;
    unionpass_core::passport::decode(text).ok().map(|p| p.id())
}

pub(crate) fn rejected(code: ErrorCode, message: &str) -> MutationOutcome {
    MutationOutcome::Rejected {
        code,
        message: message.into(),
    }
}

/// Whether an uploaded check-in is recorded, decided the same way by every backend: the uploader
/// is staff of the event's union (or the event is district-wide); the scanned passport was
/// proved (`claims`: verified with the union keys at the scan's time); its holder belongs where
/// the event admits; the scanned code has not checked them in at another event (a scan proves
/// the member was at one door, not at every event on at that moment); the scan time is
/// plausible (not ahead of the server, inside the event's hours with [`CHECKIN_EARLY`] and
/// [`CHECKIN_LATE`]); the device and the member were not revoked by then. `Ok` gives the
/// proved claims: record it, for the member they name.
pub fn admit_checkin<'a>(
    facts: &CheckinFacts,
    claims: &'a Result<Claims, ErrorCode>,
    scanned_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> Result<&'a Claims, MutationOutcome> {
    let (role, staff_union) = facts.staff;
    if role != Role::Staff {
        return Err(rejected(
            ErrorCode::Forbidden,
            "Only staff accounts can check members in.",
        ));
    }
    let Some((event_union, starts_at, ends_at)) = facts.event else {
        return Err(rejected(ErrorCode::NotFound, "No such event."));
    };
    if event_union.is_some_and(|u| u != staff_union) {
        return Err(rejected(
            ErrorCode::Forbidden,
            "This event belongs to another workplace union.",
        ));
    }
    let claims = match claims {
        Ok(c) => c,
        Err(code) => {
            return Err(rejected(
                *code,
                "The scanned passport does not prove this check-in.",
            ))
        }
    };
    if facts.shown_elsewhere {
        return Err(rejected(
            ErrorCode::CheckinProofReused,
            "This scanned code already checked the member in at another event.",
        ));
    }
    if event_union.is_some_and(|u| u != i64::from(claims.union_id)) {
        return Err(rejected(
            ErrorCode::NotEligible,
            "The member is not eligible for this event.",
        ));
    }
    if let Err(e) = unionpass_core::checkin::door_rule(facts.door) {
        return Err(rejected(
            e.code(),
            "The activity takes sign-ups and the member has no place.",
        ));
    }
    if scanned_at > received_at + CLOCK_SKEW
        || scanned_at < starts_at - CHECKIN_EARLY
        || scanned_at > ends_at + CHECKIN_LATE
    {
        return Err(rejected(
            ErrorCode::CheckinOutsideEvent,
            "The scan time is outside the event's hours.",
        ));
    }
    if facts.device_revoked_at.is_some_and(|t| t <= scanned_at) {
        return Err(rejected(
            ErrorCode::PassportRevokedDevice,
            "The scanned device was revoked.",
        ));
    }
    match facts.member {
        None => Err(rejected(ErrorCode::NotFound, "No such member.")),
        Some(Some(t)) if t <= scanned_at => Err(rejected(
            ErrorCode::PassportRevokedMember,
            "The member was suspended.",
        )),
        Some(_) => Ok(claims),
    }
}

/// The audit record of points a staff member's scan credited.
pub fn accrual_audit(
    staff_member_id: i64,
    c: &unionpass_core::checkin::CheckIn,
    member_id: i64,
    points: i64,
) -> serde_json::Value {
    serde_json::json!({
        "staff": staff_member_id,
        "member": member_id,
        "event": c.event_id,
        "scanner": c.scanner,
        "nonce": c.nonce,
        "scanned_at": c.scanned_at,
        "points": points,
    })
}

/// Whether a coupon may be marked used at `at` (the device's time of use, never later than the
/// server's now): `None` means yes. Coupons of other members are answered "no such coupon"; a
/// coupon the union withdrew is refused for a use at or after the withdrawal (one used before it,
/// offline, is still recorded: it happened).
pub fn coupon_use_refusal(
    validity: Option<(DateTime<Utc>, DateTime<Utc>)>,
    voided_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Option<MutationOutcome> {
    use MutationOutcome::Rejected;
    match validity {
        None => Some(Rejected {
            code: ErrorCode::NotFound,
            message: "No such coupon.".into(),
        }),
        Some(_) if voided_at.is_some_and(|v| at >= v) => Some(Rejected {
            code: ErrorCode::CouponVoided,
            message: "The union withdrew this coupon.".into(),
        }),
        Some((_, until)) if at >= until => Some(Rejected {
            code: ErrorCode::CouponExpired,
            message: "This coupon has expired.".into(),
        }),
        Some((from, _)) if at < from => Some(Rejected {
            code: ErrorCode::CouponNotYetValid,
            message: "This coupon is not valid yet.".into(),
        }),
        Some(_) => None,
    }
}

/// A usage code as a member or merchant reads it out (spaces around, any case), in its stored
/// form, with the campaign digits it starts with (the campaign id modulo 10,000), so a coupon is
/// found by its code among that campaign's grants without an index on codes. `None`: it cannot
/// be a usage code.
pub fn read_usage_code(code: &str) -> Option<(String, i64)> {
    let code = code.trim().to_ascii_uppercase();
    let digits = code.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.parse().ok()?;
    Some((code, digits))
}

/// A grant row's `(used_at, voided_at)`.
pub type UseState = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Withdrawing the coupon with usage code `code` whose grant row reads `row` (`None`: no such
/// coupon): the instant it counts as withdrawn, and whether that is `now` (a change to write) or
/// an earlier withdrawal (nothing to do).
pub fn void_at(
    code: &str,
    row: Option<UseState>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, bool), StoreError> {
    match row {
        None => Err(StoreError::NoCoupon(code.to_string())),
        Some((Some(_), _)) => Err(StoreError::CouponUsed(code.to_string())),
        Some((None, Some(earlier))) => Ok((earlier, false)),
        Some((None, None)) => Ok((now, true)),
    }
}

/// A redemption refused before anything was held.
pub fn redeem_refusal(code: ErrorCode) -> MutationOutcome {
    MutationOutcome::Rejected {
        code,
        message: code.message().text(unionpass_core::Lang::En).to_string(),
    }
}

/// The answer to revoking a device that is not the member's.
pub fn no_such_device() -> MutationOutcome {
    MutationOutcome::Rejected {
        code: ErrorCode::NotFound,
        message: "No such device.".into(),
    }
}

/// The ledger entry and the new state of a held redemption that ended `how`.
pub fn finished(r: &Redemption, how: &Fulfilment, now: DateTime<Utc>) -> (EntryKind, Redemption) {
    let (entry, status) = match how {
        Fulfilment::Settled { reference } => (
            EntryKind::Settle { redemption: r.id },
            RedemptionStatus::Settled {
                reference: reference.clone(),
            },
        ),
        Fulfilment::Refunded(reason) => (
            EntryKind::Refund {
                redemption: r.id,
                reason: reason.code().to_string(),
            },
            RedemptionStatus::Refunded {
                reason: reason.clone(),
            },
        ),
    };
    let mut done = r.clone();
    done.status = status;
    done.updated_at = now;
    (entry, done)
}

/// Redemptions of this long ago and later are enough for any monthly cap.
pub const CAP_WINDOW: chrono::Duration = chrono::Duration::days(32);

/// A sync page asks the log for one change more than it sends: it is the last page when fewer
/// than `asked` came, and only the last page carries the stock left and the points offer.
pub fn last_page(got: usize, asked: usize) -> bool {
    got < asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_over_the_device_cap_takes_the_oldest_only() {
        let ids: Vec<i64> = (1..=MAX_DEVICES as i64 + 2).collect();
        assert_eq!(devices_over_cap(&ids), &[1, 2]);
        assert!(devices_over_cap(&ids[..MAX_DEVICES]).is_empty());
        assert!(devices_over_cap(&[]).is_empty());
    }

    #[test]
    fn an_events_own_english_comes_before_its_activitys_and_blank_is_none() {
        let t = |s: &str| Some(s.to_string());
        assert_eq!(
            event_english(t("Sports day"), t("Family day")),
            t("Sports day")
        );
        assert_eq!(event_english(None, t("Family day")), t("Family day"));
        assert_eq!(event_english(t("  "), t("Family day")), t("Family day"));
        assert_eq!(event_english(t(""), None), None);
        assert_eq!(event_english(None, None), None);
    }

    #[test]
    fn a_place_is_seats_with_companions_or_the_next_on_the_waitlist() {
        use unionpass_core::activity::SignupState;
        let (mut seats, mut waiting) = (3, 2);
        assert_eq!(
            take_place(SignupState::Confirmed, 2, &mut seats, &mut waiting),
            None
        );
        assert_eq!((seats, waiting), (6, 2));
        assert_eq!(
            take_place(SignupState::Waitlisted, 1, &mut seats, &mut waiting),
            Some(3)
        );
        assert_eq!(
            take_place(SignupState::Waitlisted, 0, &mut seats, &mut waiting),
            Some(4)
        );
        assert_eq!((seats, waiting), (6, 4), "a waiting one holds no seats yet");
    }

    fn campaign(id: i64) -> Campaign {
        let t: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        Campaign {
            id,
            title_zh: "单车券".into(),
            title_en: "Bike".into(),
            category: unionpass_core::campaign::Category::Bike,
            face_value_cents: 500,
            terms_zh: String::new(),
            terms_en: String::new(),
            coupon_valid_from: t,
            coupon_valid_until: t + chrono::Duration::days(30),
            stock: 10,
            per_member_limit: 1,
            release_at: t,
            end_at: t + chrono::Duration::hours(1),
            eligible_unions: vec![],
            eligible_union_names: vec![],
            cancelled_at: None,
        }
    }

    fn claims(union_id: u32) -> Claims {
        let t: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        Claims {
            kid: unionpass_core::passport::Kid([0; 4]),
            member_id: 7,
            union_id,
            role: Role::Member,
            valid_from: t,
            valid_until: t + chrono::Duration::days(30),
            device_key: [1; 32],
            member_no: "M10007".into(),
        }
    }

    #[test]
    fn a_check_in_needs_staff_of_the_union_a_proof_a_plausible_time_and_no_revocation() {
        let start: DateTime<Utc> = "2026-12-05T01:00:00Z".parse().unwrap();
        let end = start + chrono::Duration::hours(8);
        let facts = CheckinFacts {
            staff: (Role::Staff, 1),
            event: Some((Some(1), start, end)),
            device_revoked_at: None,
            member: Some(None),
            door: unionpass_core::checkin::Door::Open,
            shown_elsewhere: false,
        };
        let during = start + chrono::Duration::hours(1);
        let code = |f: &CheckinFacts, c: &Result<Claims, ErrorCode>, at, now| match admit_checkin(
            f, c, at, now,
        ) {
            Ok(_) => None,
            Err(MutationOutcome::Rejected { code, .. }) => Some(code),
            Err(other) => panic!("{other:?}"),
        };
        let ok = Ok(claims(1));
        assert_eq!(code(&facts, &ok, during, during), None);
        // uploaded later (offline scanner): fine
        assert_eq!(
            code(&facts, &ok, during, end + chrono::Duration::days(3)),
            None
        );
        let not_staff = CheckinFacts {
            staff: (Role::Member, 1),
            ..facts.clone()
        };
        assert_eq!(
            code(&not_staff, &ok, during, during),
            Some(ErrorCode::Forbidden)
        );
        let other_union = CheckinFacts {
            staff: (Role::Staff, 2),
            ..facts.clone()
        };
        assert_eq!(
            code(&other_union, &ok, during, during),
            Some(ErrorCode::Forbidden)
        );
        let no_event = CheckinFacts {
            event: None,
            ..facts.clone()
        };
        assert_eq!(
            code(&no_event, &ok, during, during),
            Some(ErrorCode::NotFound)
        );
        // the proof: missing, or not verifying, is what the rejection says
        assert_eq!(
            code(&facts, &Err(ErrorCode::CheckinProofMissing), during, during),
            Some(ErrorCode::CheckinProofMissing)
        );
        assert_eq!(
            code(
                &facts,
                &Err(ErrorCode::PassportBadSignature),
                during,
                during
            ),
            Some(ErrorCode::PassportBadSignature)
        );
        // the same showing of the passport already checked the member in elsewhere; a proof that
        // does not verify says so first
        let elsewhere = CheckinFacts {
            shown_elsewhere: true,
            ..facts.clone()
        };
        assert_eq!(
            code(&elsewhere, &ok, during, during),
            Some(ErrorCode::CheckinProofReused)
        );
        assert_eq!(
            code(&elsewhere, &Err(ErrorCode::PassportStale), during, during),
            Some(ErrorCode::PassportStale)
        );
        // the passport's holder belongs to another union
        assert_eq!(
            code(&facts, &Ok(claims(2)), during, during),
            Some(ErrorCode::NotEligible)
        );
        // a district-wide event admits every union
        let district = CheckinFacts {
            event: Some((None, start, end)),
            ..facts.clone()
        };
        assert_eq!(code(&district, &Ok(claims(2)), during, during), None);
        // an activity that takes sign-ups: a place lets in, waiting or none does not
        use unionpass_core::checkin::Door;
        for (door, want) in [
            (Door::SignedUp { companions: 1 }, None),
            (Door::Waitlisted, Some(ErrorCode::StillWaitlisted)),
            (Door::NotSignedUp, Some(ErrorCode::NotSignedUp)),
        ] {
            let f = CheckinFacts {
                door,
                ..facts.clone()
            };
            assert_eq!(code(&f, &ok, during, during), want, "{door:?}");
        }
        // the scan time: before the doors, after the end, ahead of the server
        let early = start - CHECKIN_EARLY - chrono::Duration::seconds(1);
        let late = end + CHECKIN_LATE + chrono::Duration::seconds(1);
        for at in [early, late] {
            assert_eq!(
                code(&facts, &ok, at, during),
                Some(ErrorCode::CheckinOutsideEvent),
                "{at}"
            );
        }
        assert_eq!(
            code(&facts, &ok, during + chrono::Duration::minutes(6), during),
            Some(ErrorCode::CheckinOutsideEvent),
            "more than the clock skew ahead"
        );
        // revoked or suspended by the time of the scan (not after)
        let revoked = CheckinFacts {
            device_revoked_at: Some(during - chrono::Duration::minutes(1)),
            ..facts.clone()
        };
        assert_eq!(
            code(&revoked, &ok, during, during),
            Some(ErrorCode::PassportRevokedDevice)
        );
        let revoked_later = CheckinFacts {
            device_revoked_at: Some(during + chrono::Duration::minutes(1)),
            ..facts.clone()
        };
        assert_eq!(code(&revoked_later, &ok, during, during), None);
        let suspended = CheckinFacts {
            member: Some(Some(during - chrono::Duration::minutes(1))),
            ..facts.clone()
        };
        assert_eq!(
            code(&suspended, &ok, during, during),
            Some(ErrorCode::PassportRevokedMember)
        );
        let unknown = CheckinFacts {
            member: None,
            ..facts.clone()
        };
        assert_eq!(
            code(&unknown, &ok, during, during),
            Some(ErrorCode::NotFound)
        );
    }

    #[test]
    fn a_mutation_id_replays_only_the_same_change_of_the_same_member() {
        use unionpass_core::api::MutationOp;
        let en = fingerprint(&MutationOp::SetLanguage {
            language: unionpass_core::Lang::En,
        });
        let zh = fingerprint(&MutationOp::SetLanguage {
            language: unionpass_core::Lang::ZhCn,
        });
        assert_ne!(en, zh);
        let id = Uuid::nil();
        let first = || Ok(MutationOutcome::Applied);
        let same = replay_mutation(id, 1, 1, Some(&en), &en, first).unwrap();
        assert_eq!(
            (same.outcome, same.replayed),
            (MutationOutcome::Applied, true)
        );
        let other = replay_mutation(id, 1, 1, Some(&en), &zh, first).unwrap();
        assert!(matches!(
            other.outcome,
            MutationOutcome::Rejected {
                code: ErrorCode::IdempotencyKeyReused,
                ..
            }
        ));
        let theirs = replay_mutation(id, 1, 2, Some(&en), &en, || panic!("not theirs")).unwrap();
        assert!(matches!(
            theirs.outcome,
            MutationOutcome::Rejected {
                code: ErrorCode::Forbidden,
                ..
            }
        ));
        // kept before fingerprints: the first answer
        assert!(
            replay_mutation(id, 1, 1, None, &zh, first)
                .unwrap()
                .replayed
        );
    }

    #[test]
    fn change_text_is_change_parts_as_text() {
        let t: DateTime<Utc> = "2026-12-01T04:00:00.125Z".parse().unwrap();
        let changes = [
            ChangeKind::Signup(unionpass_core::activity::MySignup {
                activity_id: 3,
                state: unionpass_core::activity::SignupState::Waitlisted,
                companions: 1,
                position: Some(7),
                created_at: t,
                updated_at: t,
            }),
            ChangeKind::CouponUsed {
                coupon_id: 7,
                used_at: t,
            },
            ChangeKind::Voted {
                poll_id: 2,
                option: 1,
            },
            ChangeKind::Preferences { language: None },
            ChangeKind::Unknown,
        ];
        for change in changes {
            // every change with data takes the quick cut, not the slower way round
            let whole = serde_json::to_string(&change).unwrap();
            let cut = split_change(&whole);
            assert_eq!(
                cut.is_some(),
                !matches!(change, ChangeKind::Unknown),
                "{whole}"
            );
            let (kind, data) = change_text(&change);
            let (want_kind, want_data) = change_parts(&change);
            assert_eq!(kind, want_kind);
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&data).unwrap(),
                want_data,
                "{change:?}"
            );
            assert!(matches!(
                ChangeKind::from_parts(&kind, serde_json::from_str(&data).unwrap()),
                c if c == change
            ));
        }
    }

    #[test]
    fn change_parts_are_the_wire_names() {
        let (kind, data) = change_parts(&ChangeKind::CouponUsed {
            coupon_id: 7,
            used_at: "2026-12-01T04:00:00Z".parse().unwrap(),
        });
        assert_eq!(kind, "coupon_used");
        assert_eq!(data["coupon_id"], 7);
        // and they read back as the same change
        assert!(matches!(
            ChangeKind::from_parts(&kind, data),
            ChangeKind::CouponUsed { coupon_id: 7, .. }
        ));
    }

    #[test]
    fn usage_codes_name_the_campaign_and_carry_80_random_bits() {
        let code = usage_code(12);
        let parts: Vec<&str> = code.split('-').collect();
        assert_eq!(parts.len(), 5, "{code}");
        assert_eq!(parts[0], "0012");
        for p in &parts[1..] {
            assert_eq!(p.len(), 4, "{code}");
            assert!(
                p.bytes()
                    .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)),
                "{code}"
            );
        }
        assert!(usage_code(12_345).starts_with("2345-"));
        // 1,000 codes of one campaign: all different, and every character position varies
        let codes: std::collections::HashSet<String> = (0..1000).map(|_| usage_code(1)).collect();
        assert_eq!(codes.len(), 1000);
        for pos in 5..24 {
            if code.as_bytes()[pos] == b'-' {
                continue;
            }
            let seen: std::collections::HashSet<u8> =
                codes.iter().map(|c| c.as_bytes()[pos]).collect();
            assert!(seen.len() > 16, "position {pos}: {}", seen.len());
        }
    }

    #[test]
    fn the_cache_keeps_a_campaign_for_cache_for_and_remembers_sold_out() {
        let t: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        let mut cache = CampaignCache::default();
        cache.put(campaign(1), t);
        assert!(cache.fresh(1, t + chrono::Duration::seconds(4)).is_some());
        assert!(cache
            .fresh(1, t + unionpass_core::campaign::CACHE_FOR)
            .is_none());
        assert_eq!(cache.decide_without_stock(&campaign(1), 9, t), None);
        cache.mark_sold_out(1, None);
        assert_eq!(
            cache.decide_without_stock(&campaign(1), 9, t),
            Some(GrabOutcome::SoldOut)
        );
        // a campaign read again keeps its mark
        cache.put(campaign(1), t + chrono::Duration::seconds(10));
        assert_eq!(
            cache.decide_without_stock(&campaign(1), 9, t),
            Some(GrabOutcome::SoldOut)
        );
    }

    #[test]
    fn refusals_from_memory_only_where_no_key_can_hold_a_grant() {
        let t: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        let job = |key: u128, now: DateTime<Utc>, union_id: i64| GrabJob {
            member_id: 1,
            union_id,
            campaign_id: 1,
            key: Uuid::from_u128(key),
            now,
            session: None,
        };
        let mut cache = CampaignCache::default();
        // nothing known: the store judges
        assert_eq!(cache.refusal_from_memory(&job(1, t, 9)), None);
        cache.put(campaign(1), t - chrono::Duration::seconds(2));
        // before the release: nobody holds a grant yet
        assert!(matches!(
            cache.refusal_from_memory(&job(1, t - chrono::Duration::seconds(1), 9)),
            Some(GrabOutcome::NotStarted { .. })
        ));
        // open, not sold out: the store takes stock
        assert_eq!(cache.refusal_from_memory(&job(1, t, 9)), None);
        // sold out with the keys unknown: the store (a retried granted key must be replayed)
        cache.mark_sold_out(1, None);
        assert_eq!(cache.refusal_from_memory(&job(1, t, 9)), None);
        // sold out with the granted keys: those go to the store, the rest are refused here
        cache.mark_sold_out(1, Some([Uuid::from_u128(7)].into_iter().collect()));
        assert_eq!(cache.refusal_from_memory(&job(7, t, 9)), None);
        assert_eq!(
            cache.refusal_from_memory(&job(8, t, 9)),
            Some(GrabOutcome::SoldOut)
        );
        // the keys survive a fresh read of the campaign
        cache.put(campaign(1), t);
        assert_eq!(
            cache.refusal_from_memory(&job(8, t, 9)),
            Some(GrabOutcome::SoldOut)
        );
        // ended: a key may hold a grant from before the end; the store answers
        let ended = t + chrono::Duration::hours(1);
        cache.put(campaign(1), ended);
        assert_eq!(cache.refusal_from_memory(&job(8, ended, 9)), None);
        // a copy older than CACHE_FOR is not used
        let stale = ended + unionpass_core::campaign::CACHE_FOR;
        assert_eq!(cache.refusal_from_memory(&job(8, stale, 9)), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let t: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        let mut cache = CampaignCache::default();
        for id in 0..CampaignCache::MAX as i64 {
            cache.put(campaign(id), t);
        }
        assert_eq!(cache.len(), CampaignCache::MAX);
        // full: the stale entries go first
        let later = t + chrono::Duration::minutes(1);
        cache.put(campaign(-1), later);
        assert_eq!(cache.len(), 1);
        // full of fresh ones: it starts over rather than grow
        for id in 0..(CampaignCache::MAX as i64 + 10) {
            cache.put(campaign(id), later);
        }
        assert!(cache.len() <= CampaignCache::MAX, "{}", cache.len());
    }

    #[derive(Debug, PartialEq)]
    struct Failed {
        retryable: bool,
    }

    impl Retryable for Failed {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
    }

    #[tokio::test]
    async fn work_is_run_again_only_after_a_retryable_failure_and_not_forever() {
        let mut runs = 0;
        let ok = retrying(|| {
            runs += 1;
            let n = runs;
            async move {
                if n < 3 {
                    Err(Failed { retryable: true })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!((ok, runs), (Ok(3), 3));

        let mut runs = 0;
        let refused: Result<(), Failed> = retrying(|| {
            runs += 1;
            async { Err(Failed { retryable: false }) }
        })
        .await;
        assert_eq!((refused, runs), (Err(Failed { retryable: false }), 1));

        let mut runs = 0;
        let gave_up: Result<(), Failed> = retrying(|| {
            runs += 1;
            async { Err(Failed { retryable: true }) }
        })
        .await;
        assert!(gave_up.is_err());
        assert_eq!(runs, RETRIES + 1);
    }

    #[test]
    fn another_members_grab_key_is_refused_without_its_answer() {
        let job = GrabJob {
            member_id: 1,
            union_id: 1,
            campaign_id: 1,
            key: Uuid::nil(),
            now: "2026-12-01T04:00:00Z".parse().unwrap(),
            session: None,
        };
        let err = replay_grab(&job, 2, 1, || {
            panic!("must not read another member's answer")
        });
        assert!(matches!(err, Err(StoreError::Duplicate(Taken::GrabKey(_)))));
        let other = replay_grab(&job, 1, 2, || {
            panic!("must not answer for another campaign")
        });
        assert!(matches!(other, Err(StoreError::KeyReused(_))));
        let mine = replay_grab(&job, 1, 1, || Ok(grab_answer(&job, GrabOutcome::SoldOut))).unwrap();
        assert!(mine.replayed);
    }
}
