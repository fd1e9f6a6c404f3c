//! What the Tauri shell hands to the UI: plain data, serialized over IPC, shared by both sides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{DeviceInfo, Profile};
use crate::checkin::Event;
use crate::error::ErrorCode;
use crate::i18n::Lang;

/// Everything the screens show, read from the local store in one go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub logged_in: bool,
    pub language: Lang,
    /// The server this device talks to (prefills the login form).
    pub server_url: Option<String>,
    pub profile: Option<Profile>,
    pub passport: Option<PassportView>,
    /// The member's enrolled devices, as last synced.
    pub devices: Vec<DeviceInfo>,
    pub sync: SyncState,
    /// Reminder notices not yet dismissed: missed, moved, cancelled.
    #[serde(default)]
    pub notices: Vec<ReminderNotice>,
    /// Changes the server refused that the member has not seen yet, oldest first.
    #[serde(default)]
    pub rejections: Vec<RejectionView>,
    /// Why the member was signed out without asking (`session_ended`), until the next sign-in.
    #[serde(default)]
    pub signed_out: Option<ErrorCode>,
    /// Changes made here that were not uploaded when the server ended the session: they wait
    /// for the same member's next sign-in here, and go if another member signs in.
    #[serde(default)]
    pub held: i64,
    /// The number of the member they wait for (the sign-in screen fills it in).
    #[serde(default)]
    pub held_for: Option<String>,
    /// This app's version.
    #[serde(default)]
    pub app_version: String,
    /// Whether a newer version is available, or needed (as the server last said).
    #[serde(default)]
    pub update: crate::api::UpdateState,
    /// Whether this copy can install it itself (set by the shell: installed from a package the
    /// updater knows).
    #[serde(default)]
    pub update_installable: bool,
}

/// A change made on this device that the server refused: what it was, in the member's terms,
/// and why (the code picks the words and what to do next). Shown until the member has seen it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionView {
    /// The change's id (its idempotency key).
    pub id: uuid::Uuid,
    /// When the member made it.
    pub made_at: DateTime<Utc>,
    pub what: RejectedChange,
    pub code: ErrorCode,
}

/// What a refused change was about. Titles are as this device last knew them (empty if it never
/// did).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectedChange {
    UseCoupon {
        coupon_id: i64,
        title_zh: String,
        title_en: String,
    },
    CheckIn {
        member_no: String,
        event_title: String,
    },
    SetLanguage {
        language: Lang,
    },
    RevokeDevice {
        device_id: i64,
        name: String,
    },
    Redeem {
        points: i64,
    },
    Feedback {
        activity_id: i64,
        title_zh: String,
        title_en: String,
    },
    Vote {
        poll_id: i64,
        question_zh: String,
        question_en: String,
    },
}

/// Something the member must be told about a reminder, kept until dismissed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderNotice {
    pub id: i64,
    pub campaign_id: i64,
    pub title_zh: String,
    pub title_en: String,
    #[serde(flatten)]
    pub kind: NoticeKind,
    /// When the app noticed.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoticeKind {
    /// Its time passed while the app could not fire it.
    Missed {
        due_at: DateTime<Utc>,
        release_at: DateTime<Utc>,
    },
    /// The campaign moved; the reminder moved with it.
    Moved {
        release_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
    },
    /// The campaign was withdrawn; the reminder is removed.
    Cancelled,
}

/// The level-1 credential held on the device (the QR itself comes from [`LivePassport`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassportView {
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub expired: bool,
}

/// The passport kept in a store this version of the app cannot open (a newer version wrote it):
/// read once, read-only, so a member whose app went back a version can still get in at a door.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptPassport {
    /// Who it belongs to, as last synced (absent when the newer store keeps it elsewhere).
    pub profile: Option<crate::api::Profile>,
    pub passport: PassportView,
}

/// The QR for the current time step, made on the device with its key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivePassport {
    pub text: String,
    pub qr_svg: String,
    pub step_starts_at: DateTime<Utc>,
    /// When this code is replaced by the next one.
    pub step_ends_at: DateTime<Utc>,
}

/// One check-in in the scanner's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInRow {
    pub member_no: String,
    /// The member's name, when the scanner knows it (its own union's members).
    #[serde(default)]
    pub name: Option<String>,
    pub member_id: i64,
    pub scanned_at: DateTime<Utc>,
    /// Made by this scanner (otherwise synced from another one).
    pub ours: bool,
    /// The server has it.
    pub uploaded: bool,
    /// The scanner's device id, shortened for display.
    pub scanner_short: String,
    /// Who scanned it, as the server names the staff member who uploaded it (another scanner's
    /// check-in; `None` for this scanner's own until it comes back, or when the server kept it
    /// before it recorded this).
    #[serde(default)]
    pub staff: Option<String>,
    /// The server did not record it, and why (e.g. `checkin_proof_missing` for a check-in made by
    /// an older app).
    #[serde(default)]
    pub refused: Option<crate::ErrorCode>,
    /// Let in by hand over the door list ([`ScanOutcome::by_hand`]).
    #[serde(default)]
    pub by_hand: bool,
}

/// A member checked in to the same event by two scanners, as reported by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRow {
    pub member_no: String,
    pub first_at: DateTime<Utc>,
    pub first_scanner: String,
    /// Who scanned it ([`CheckInRow::staff`]).
    #[serde(default)]
    pub first_staff: Option<String>,
    pub second_at: DateTime<Utc>,
    pub second_scanner: String,
    #[serde(default)]
    pub second_staff: Option<String>,
}

/// The scanner screen: events, the trust list's age, and the log of the chosen event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScannerView {
    pub events: Vec<Event>,
    pub event: Option<Event>,
    pub trust_synced_at: Option<DateTime<Utc>>,
    /// The trust list is older than `max_age_days` (or missing): warn the staff member.
    pub trust_stale: bool,
    pub max_age_days: i64,
    /// Check-ins at the chosen event, newest first.
    pub checkins: Vec<CheckInRow>,
    /// Members checked in at the chosen event.
    pub checked_in: i64,
    /// The companions those members signed up with (each takes a place, as the member does), by
    /// the event's door list; 0 at an event without sign-ups.
    #[serde(default)]
    pub checked_in_companions: i64,
    /// Of [`ScannerView::checked_in`], those let in by hand only (staff's word, not the list's)
    /// whose check-in the server has not judged yet.
    #[serde(default)]
    pub checked_in_by_hand: i64,
    /// Check-ins made on this device at the chosen event (the log may show only the latest).
    #[serde(default)]
    pub made_here: i64,
    /// Of [`ScannerView::made_here`], those not uploaded yet: what staff wait for before they
    /// leave a door with no network.
    #[serde(default)]
    pub made_here_waiting: i64,
    pub conflicts: Vec<ConflictRow>,
}

/// The answer to one scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanOutcome {
    pub ok: bool,
    /// Why it failed (a stable code; the UI picks the words).
    pub code: Option<ErrorCode>,
    pub member_no: Option<String>,
    pub at: DateTime<Utc>,
    /// For `already_checked_in`: when, and by which scanner (`None`: this one).
    pub earlier_at: Option<DateTime<Utc>>,
    pub earlier_scanner: Option<String>,
    /// Who scanned that earlier check-in, when the server named them ([`CheckInRow::staff`]).
    #[serde(default)]
    pub earlier_staff: Option<String>,
    /// The member's name, when the scanner knows it (members of the staff member's union).
    #[serde(default)]
    pub name: Option<String>,
    /// The member's workplace union, in words.
    #[serde(default)]
    pub union_name: Option<String>,
    /// Companions who come in with the member (an activity's sign-up).
    #[serde(default)]
    pub companions: Option<i64>,
    /// Let in by hand over the door list (staff checked the member's place on their phone); the
    /// server judges it by its own list when the scanner syncs.
    #[serde(default)]
    pub by_hand: bool,
    /// The scanned code, when only the door list refused the member (no place on it, or still
    /// waiting): what staff send back to let them in by hand ([`crate::ipc::LetIn`]).
    #[serde(default)]
    pub by_hand_code: Option<String>,
}

impl ScanOutcome {
    /// A scan refused at `at` with nothing more to say than `code`.
    pub fn refused(code: ErrorCode, at: DateTime<Utc>) -> ScanOutcome {
        ScanOutcome {
            ok: false,
            code: Some(code),
            member_no: None,
            at,
            earlier_at: None,
            earlier_scanner: None,
            earlier_staff: None,
            name: None,
            union_name: None,
            companions: None,
            by_hand: false,
            by_hand_code: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    pub syncing: bool,
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Set when the last attempt failed; `Offline` means the server was not reachable.
    pub last_error: Option<ErrorCode>,
    /// Mutations waiting in the outbox.
    pub pending: i64,
    /// The same, by kind (`MutationOp::kind`), oldest kind first: what would be lost is named.
    #[serde(default)]
    pub pending_kinds: Vec<PendingKind>,
    /// Mutations the server refused that the member has not seen yet.
    pub rejected: i64,
    /// After a failed sync: when the app tries again by itself (device time).
    #[serde(default)]
    pub retry_at: Option<DateTime<Utc>>,
}

/// Changes of one kind waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingKind {
    /// As written in a mutation's `op` (`check_in`, `use_coupon`, ...).
    pub kind: String,
    pub n: i64,
}

impl SyncState {
    pub fn offline(&self) -> bool {
        self.last_error == Some(ErrorCode::Offline)
    }

    /// What waits besides `door_waiting` check-ins (a door's own, counted by its log): the
    /// changes the sync line's count holds that the door's upload line does not, by kind.
    pub fn pending_besides_check_ins(&self, door_waiting: i64) -> Vec<PendingKind> {
        self.pending_kinds
            .iter()
            .map(|k| PendingKind {
                kind: k.kind.clone(),
                n: if k.kind == crate::api::kind::CHECK_IN {
                    (k.n - door_waiting).max(0)
                } else {
                    k.n
                },
            })
            .filter(|k| k.n > 0)
            .collect()
    }

    /// Why the last sync failed, when the member has to act (free space, unlock the keyring)
    /// rather than wait: not while it passes by itself (offline, the server busy), nor when
    /// another screen already says it (signed out, this version no longer served).
    pub fn problem(&self) -> Option<ErrorCode> {
        self.last_error.filter(|code| {
            !code.is_transient()
                && !matches!(
                    code,
                    ErrorCode::Unauthenticated
                        | ErrorCode::NotLoggedIn
                        | ErrorCode::SessionEnded
                        | ErrorCode::ClientTooOld
                )
        })
    }
}

/// An error as the UI receives it from a command: a stable code, plus a detail for logs only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    pub code: ErrorCode,
    pub detail: String,
    /// How long the server asked to wait before trying again, in seconds, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

/// A code alone: no detail, no wait.
impl From<ErrorCode> for CommandError {
    fn from(code: ErrorCode) -> CommandError {
        CommandError {
            code,
            detail: String::new(),
            retry_after_s: None,
        }
    }
}

impl CommandError {
    /// What to tell the member: the code's words, and for too many attempts how long to wait
    /// when the server said ("请 2 秒后再试", "Try again in 2 seconds").
    pub fn text(&self, lang: Lang) -> String {
        match (self.code, self.retry_after_s) {
            (ErrorCode::RateLimited, Some(s)) if s > 0 => crate::i18n::fill(
                crate::i18n::Msg::ErrRateLimitedWait.text(lang),
                &[("wait", &crate::i18n::wait_text(s, lang))],
            ),
            _ => self.code.message().text(lang).to_string(),
        }
    }
}

/// One coupon as the wallet shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponView {
    pub coupon: crate::campaign::Coupon,
    pub status: crate::wallet::CouponStatus,
    pub used_at: Option<DateTime<Utc>>,
    /// Marked used on this device, not yet confirmed by the server.
    pub use_pending: bool,
    pub expiring_soon: bool,
}

impl CouponView {
    /// The last instant the coupon works (`valid_until` is the first it does not): its date is
    /// the one to print after "valid until".
    pub fn last_day(&self) -> DateTime<Utc> {
        self.coupon.valid_until - chrono::Duration::seconds(1)
    }
}

/// One coupon with the QR of its usage code, for showing at a merchant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponDetail {
    pub view: CouponView,
    pub qr_svg: String,
}

/// The wallet screen: "expiring soon" on top, then one page of the filtered list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletView {
    pub expiring: Vec<CouponView>,
    pub items: Vec<CouponView>,
    /// How many coupons match the filter (the list may show fewer: ask for more).
    pub matching: i64,
    /// Per category, the coupons the other filters (status, search) let through: the count each
    /// category chip shows.
    pub by_category: Vec<(crate::campaign::Category, i64)>,
}

/// One campaign in the grab calendar, with this device's last grab answer for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarEntry {
    pub campaign: crate::campaign::Campaign,
    /// The last final answer this device got for it (`None`: not grabbed, or no answer yet).
    pub answer: Option<crate::campaign::GrabOutcome>,
    /// A grab was sent and its answer did not arrive (the next tap retries the same key).
    pub unanswered: bool,
    /// Stock left as last synced, and when (`None`: not known yet).
    #[serde(default)]
    pub stock_left: Option<i64>,
    #[serde(default)]
    pub stock_synced_at: Option<DateTime<Utc>>,
    /// The member's reminder for it, if set.
    #[serde(default)]
    pub reminder: Option<crate::reminder::Reminder>,
    /// Coupons of this campaign the member holds (used ones too: they count against the limit).
    #[serde(default)]
    pub held: i64,
    /// Whether the member's workplace union is among those the campaign is for.
    #[serde(default = "yes")]
    pub eligible: bool,
}

fn yes() -> bool {
    true
}

/// What a grab card's button can honestly offer, at one instant of the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CardState {
    /// Not released yet: counting down.
    Upcoming,
    /// Released, with stock as last known: the button grabs.
    Open,
    /// No stock left (as last synced or answered).
    SoldOut,
    /// The member holds as many as the limit allows: the button goes to the wallet.
    Held,
    /// For other workplace unions' members.
    NotEligible,
    /// Past its end, or withdrawn.
    Ended,
}

/// How soon (ms) after a grab tap on a card another tap on it is the rest of a double tap. Once
/// the grab is answered the button goes to the wallet ([`CardState::Held`]); that tap must not
/// take the member away before they have read the answer.
pub const DOUBLE_TAP_MS: f64 = 1000.0;

/// Whether a tap at `now_ms` on campaign `id`'s card is the rest of the double tap begun by
/// `last_grab` (the card and the time of the last grab tap, on the same monotonic clock in ms).
pub fn rest_of_double_tap(last_grab: Option<(i64, f64)>, id: i64, now_ms: f64) -> bool {
    last_grab.is_some_and(|(card, at)| card == id && (0.0..DOUBLE_TAP_MS).contains(&(now_ms - at)))
}

impl CalendarEntry {
    /// The card's state at `server_now`. What the member can do nothing about comes first
    /// (ended, not eligible), then what they already have, then the stock, then the clock.
    pub fn state(&self, server_now: DateTime<Utc>) -> CardState {
        let c = &self.campaign;
        if c.cancelled_at.is_some() || server_now >= c.end_at {
            CardState::Ended
        } else if !self.eligible {
            CardState::NotEligible
        } else if self.held >= c.per_member_limit
            || matches!(
                self.answer,
                Some(crate::campaign::GrabOutcome::LimitReached)
            )
        {
            CardState::Held
        } else if self.stock_left == Some(0) {
            CardState::SoldOut
        } else if server_now < c.release_at {
            CardState::Upcoming
        } else {
            CardState::Open
        }
    }
}

/// The grab calendar: campaigns not ended, soonest release first, and the server clock offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub entries: Vec<CalendarEntry>,
    pub offset: Option<crate::reminder::ClockOffset>,
}

/// One activity on the activities screen, with the member's sign-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityCard {
    pub activity: crate::activity::Activity,
    pub mine: Option<crate::activity::MySignup>,
    /// The member's union may take part.
    pub eligible: bool,
    /// Seats and waitlist places left, as last fetched (`counted_at`); `None` for walk-ins or
    /// before the first fetch.
    pub seats_left: Option<i64>,
    pub waitlist_left: Option<i64>,
    pub counted_at: Option<DateTime<Utc>>,
    /// A sign-up request was sent and has no answer yet (its key is kept for the retry).
    pub pending: bool,
    /// The member was checked in to it: feedback is open.
    #[serde(default)]
    pub attended: bool,
    /// The member's feedback, as given on this device or synced.
    #[serde(default)]
    pub feedback: Option<crate::activity::FeedbackGiven>,
    /// That feedback is queued and the server does not have it yet.
    #[serde(default)]
    pub feedback_pending: bool,
    /// "Remind me before sign-up opens" is set and has not fired.
    #[serde(default)]
    pub opening_reminder: bool,
    /// The union moved or cancelled it since the member signed up (as synced).
    #[serde(default)]
    pub change: Option<crate::activity::ChangeNotice>,
}

/// Where an activity sits in the member's own list (我的活动).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MineGroup {
    /// A live sign-up (a place or the waitlist) for one not over yet.
    Upcoming,
    /// Checked in (a sign-up or a walk-in).
    Attended,
    /// A place at one that took place and ended with no check-in: what the no-show rule counts.
    Missed,
}

impl ActivityCard {
    /// Its group in the member's own list at `now`; `None` when it is not theirs (no live
    /// sign-up, not attended), the union cancelled it, or it is over with nothing to count (a
    /// waitlist place that never moved up).
    pub fn mine_group(&self, now: DateTime<Utc>) -> Option<MineGroup> {
        if self.attended {
            return Some(MineGroup::Attended);
        }
        let state = self.mine.as_ref()?.state;
        if !state.is_active() || self.activity.cancelled_at.is_some() {
            return None;
        }
        if self.activity.ends_at > now {
            return Some(MineGroup::Upcoming);
        }
        state.has_seats().then_some(MineGroup::Missed)
    }
}

/// One needs poll on the activities screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollCard {
    pub poll: crate::activity::Poll,
    /// The member's union may vote.
    pub eligible: bool,
    /// The member's vote, and whether it still waits to be sent.
    pub mine: Option<i64>,
    pub pending: bool,
    /// The count per option as last fetched (after voting), with when.
    pub counts: Option<Vec<i64>>,
    pub counted_at: Option<DateTime<Utc>>,
}

/// The activities screen: every activity not long over, soonest first, the open needs polls,
/// and the server clock's offset (the sign-up button opens by the server's clock).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitiesView {
    pub cards: Vec<ActivityCard>,
    /// Until when the no-show rule keeps the member from popular activities, as the server said
    /// with the last counts (`ActivityLive::my_ban_until`).
    #[serde(default)]
    pub ban_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub polls: Vec<PollCard>,
    pub offset: Option<crate::reminder::ClockOffset>,
}

/// Free points whose last usable day is `date` (`2026-12-21`, in the member's zone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryDay {
    pub date: String,
    pub points: i64,
}

/// What is left of a bill kind's monthly cap this month, in fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapLeft {
    pub left_cents: i64,
    pub cap_cents: i64,
}

/// One month of the points history chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMonth {
    pub month: String,
    pub earned: i64,
    pub spent: i64,
    pub expired: i64,
}

/// How far ahead the points screen warns of points about to lapse.
pub const EXPIRY_WARNING_DAYS: i64 = 60;

/// The points screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsView {
    pub balance: crate::points::Balance,
    /// Points of redemptions queued on this device, not yet held by the server.
    pub queued: i64,
    /// Free points by their last usable day, within a year, soonest first.
    pub expiry: Vec<ExpiryDay>,
    /// The soonest expiry within [`EXPIRY_WARNING_DAYS`]: its instant and the points lapsing that day.
    #[serde(default)]
    pub expiring_soon: Option<(DateTime<Utc>, i64)>,
    /// The last 12 months, oldest first.
    pub history: Vec<HistoryMonth>,
    /// Newest first.
    pub redemptions: Vec<crate::redeem::Redemption>,
    pub offer: crate::redeem::PointsOffer,
    /// This month's phone-bill and electricity caps and what is left of them (queued, held and
    /// settled redemptions count).
    #[serde(default)]
    pub phone_cap: CapLeft,
    #[serde(default)]
    pub power_cap: CapLeft,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_attempts_says_how_long_to_wait_when_the_server_said() {
        let e = |code: ErrorCode, retry_after_s| CommandError {
            retry_after_s,
            ..code.into()
        };
        let limited = |s| e(ErrorCode::RateLimited, s);
        assert_eq!(
            limited(Some(2)).text(Lang::ZhCn),
            "尝试次数过多，请 2 秒后再试。"
        );
        assert_eq!(
            limited(Some(1)).text(Lang::En),
            "Too many attempts. Try again in 1 second."
        );
        assert_eq!(
            limited(Some(60)).text(Lang::En),
            "Too many attempts. Try again in 1 minute."
        );
        assert_eq!(
            limited(Some(61)).text(Lang::En),
            "Too many attempts. Try again in 2 minutes."
        );
        assert_eq!(
            limited(Some(900)).text(Lang::ZhCn),
            "尝试次数过多，请 15 分钟后再试。"
        );
        // no wait said: the code's own words; another code keeps its words whatever the wait
        assert_eq!(
            limited(None).text(Lang::En),
            ErrorCode::RateLimited.message().text(Lang::En)
        );
        assert_eq!(
            e(ErrorCode::Unavailable, Some(2)).text(Lang::En),
            ErrorCode::Unavailable.message().text(Lang::En)
        );
        // an error without the field (an older shell's) still reads
        let old: CommandError =
            serde_json::from_str(r#"{"code":"rate_limited","detail":""}"#).unwrap();
        assert_eq!(old, limited(None));
    }
    use crate::campaign::{Campaign, Category, GrabOutcome};

    #[test]
    fn a_tap_right_after_a_grab_tap_on_the_same_card_is_the_rest_of_a_double_tap() {
        let grab = Some((7, 10_000.0));
        assert!(rest_of_double_tap(grab, 7, 10_000.0));
        assert!(rest_of_double_tap(grab, 7, 10_999.0));
        // a second later it is a tap of its own (the button goes to the wallet)
        assert!(!rest_of_double_tap(grab, 7, 11_000.0));
        // another card, or no grab tap at all
        assert!(!rest_of_double_tap(grab, 8, 10_100.0));
        assert!(!rest_of_double_tap(None, 7, 10_100.0));
        // a time before the grab tap (a clock that went back) swallows nothing
        assert!(!rest_of_double_tap(grab, 7, 9_000.0));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_members_own_activities_are_upcoming_attended_or_missed() {
        use crate::activity::{Activity, ActivityCategory, MySignup, SignupState};
        let now = at("2026-12-10T00:00:00Z");
        let card = |ends: &str, mine: Option<SignupState>, attended: bool, cancelled: bool| {
            let ends_at = at(ends);
            ActivityCard {
                activity: Activity {
                    id: 1,
                    title_zh: "讲座".into(),
                    title_en: "Talk".into(),
                    description_zh: String::new(),
                    description_en: String::new(),
                    category: ActivityCategory::Health,
                    place: "礼堂".into(),
                    place_en: String::new(),
                    starts_at: ends_at - chrono::Duration::hours(2),
                    ends_at,
                    union_id: None,
                    points: 0,
                    signup: None,
                    cancelled_at: cancelled.then_some(now),
                },
                mine: mine.map(|state| MySignup {
                    activity_id: 1,
                    state,
                    companions: 0,
                    position: None,
                    created_at: now,
                    updated_at: now,
                }),
                eligible: true,
                seats_left: None,
                waitlist_left: None,
                counted_at: None,
                pending: false,
                attended,
                feedback: None,
                feedback_pending: false,
                opening_reminder: false,
                change: None,
            }
        };
        let (ahead, past) = ("2026-12-11T00:00:00Z", "2026-12-09T00:00:00Z");
        use SignupState::*;
        let group = |c: ActivityCard| c.mine_group(now);
        assert_eq!(
            group(card(ahead, Some(Confirmed), false, false)),
            Some(MineGroup::Upcoming)
        );
        assert_eq!(
            group(card(ahead, Some(Waitlisted), false, false)),
            Some(MineGroup::Upcoming)
        );
        assert_eq!(
            group(card(past, Some(Promoted), true, false)),
            Some(MineGroup::Attended)
        );
        assert_eq!(
            group(card(past, None, true, false)),
            Some(MineGroup::Attended),
            "a walk-in"
        );
        assert_eq!(
            group(card(past, Some(Confirmed), false, false)),
            Some(MineGroup::Missed)
        );
        assert_eq!(
            group(card(past, Some(Waitlisted), false, false)),
            None,
            "never had a place"
        );
        assert_eq!(group(card(ahead, Some(Cancelled), false, false)), None);
        assert_eq!(
            group(card(past, Some(Confirmed), false, true)),
            None,
            "the union cancelled it"
        );
        assert_eq!(group(card(ahead, Some(Confirmed), false, true)), None);
        assert_eq!(group(card(ahead, None, false, false)), None);
    }

    #[test]
    fn a_sync_problem_is_one_the_member_must_act_on() {
        let state = |code| SyncState {
            last_error: code,
            ..SyncState::default()
        };
        assert_eq!(
            state(Some(ErrorCode::StorageFull)).problem(),
            Some(ErrorCode::StorageFull)
        );
        assert_eq!(
            state(Some(ErrorCode::KeyringUnavailable)).problem(),
            Some(ErrorCode::KeyringUnavailable)
        );
        for passes in [
            None,
            Some(ErrorCode::Offline),
            Some(ErrorCode::RateLimited),
            Some(ErrorCode::Unavailable),
            Some(ErrorCode::SessionEnded),
            Some(ErrorCode::ClientTooOld),
        ] {
            assert_eq!(state(passes).problem(), None, "{passes:?}");
        }
    }

    #[test]
    fn besides_a_doors_check_ins_the_rest_of_what_waits_is_named() {
        let k = |kind: &str, n| PendingKind {
            kind: kind.into(),
            n,
        };
        let state = SyncState {
            pending: 5,
            pending_kinds: vec![k("check_in", 3), k("set_language", 1), k("use_coupon", 1)],
            ..SyncState::default()
        };
        // two of the three check-ins are this door's: one from another event is left, with
        // the rest in their order
        assert_eq!(
            state.pending_besides_check_ins(2),
            vec![k("check_in", 1), k("set_language", 1), k("use_coupon", 1)]
        );
        // all three are this door's
        assert_eq!(
            state.pending_besides_check_ins(3),
            vec![k("set_language", 1), k("use_coupon", 1)]
        );
        // a log that counts more than the outbox holds (a row uploaded meanwhile) never leaves
        // a negative count
        assert_eq!(
            state.pending_besides_check_ins(9),
            vec![k("set_language", 1), k("use_coupon", 1)]
        );
        assert_eq!(SyncState::default().pending_besides_check_ins(0), vec![]);
    }

    fn entry() -> CalendarEntry {
        CalendarEntry {
            campaign: Campaign {
                id: 1,
                title_zh: "午餐券".into(),
                title_en: "Lunch".into(),
                category: Category::Meal,
                face_value_cents: 1250,
                terms_zh: String::new(),
                terms_en: String::new(),
                coupon_valid_from: at("2026-12-01T09:00:00Z"),
                coupon_valid_until: at("2026-12-31T09:00:00Z"),
                stock: 10,
                per_member_limit: 2,
                release_at: at("2026-12-01T09:00:00Z"),
                end_at: at("2026-12-01T12:00:00Z"),
                eligible_unions: vec![],
                eligible_union_names: vec![],
                cancelled_at: None,
            },
            answer: None,
            unanswered: false,
            stock_left: Some(3),
            stock_synced_at: None,
            reminder: None,
            held: 0,
            eligible: true,
        }
    }

    #[test]
    fn a_card_tells_its_true_state() {
        let before = at("2026-12-01T08:59:59Z");
        let during = at("2026-12-01T09:00:00Z");
        let after = at("2026-12-01T12:00:00Z");
        let e = entry();
        assert_eq!(e.state(before), CardState::Upcoming);
        assert_eq!(e.state(during), CardState::Open);
        assert_eq!(e.state(after), CardState::Ended);

        let gone = CalendarEntry {
            stock_left: Some(0),
            ..entry()
        };
        assert_eq!(gone.state(during), CardState::SoldOut);
        assert_eq!(
            gone.state(before),
            CardState::SoldOut,
            "sold out shows before a re-release too"
        );

        // one of two held: still open; two: held, even when the stock is gone
        let one = CalendarEntry { held: 1, ..entry() };
        assert_eq!(one.state(during), CardState::Open);
        let two = CalendarEntry {
            held: 2,
            stock_left: Some(0),
            ..entry()
        };
        assert_eq!(two.state(during), CardState::Held);
        let told = CalendarEntry {
            answer: Some(GrabOutcome::LimitReached),
            ..entry()
        };
        assert_eq!(told.state(during), CardState::Held);

        // another union's campaign says so before anything else but its end
        let other = CalendarEntry {
            eligible: false,
            held: 0,
            stock_left: Some(0),
            ..entry()
        };
        assert_eq!(other.state(before), CardState::NotEligible);
        assert_eq!(other.state(after), CardState::Ended);

        let mut cancelled = entry();
        cancelled.campaign.cancelled_at = Some(before);
        assert_eq!(cancelled.state(before), CardState::Ended);
    }
}
