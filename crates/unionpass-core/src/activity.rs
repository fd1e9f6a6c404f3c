//! Activities (心悦活动): what a member can sign up for, and the pure rules of a fair sign-up.
//!
//! An activity extends an offline [`crate::checkin::Event`] with words, a category and, when it
//! needs one, a sign-up: a window, seats (companions take seats too), a waitlist of a stated
//! length and a cancellation deadline. The server decides every sign-up with [`decide`] inside
//! the transaction that counts the seats, so both backends apply the same rule; the app calls
//! the same function to explain a refusal offline.
//!
//! Fairness has two parts. The race: requests are judged in the order the server receives them,
//! the waitlist keeps that order, and a freed seat goes to the head of the waitlist
//! ([`promotions`]: strictly in order, the head is never jumped). No-shows (爽约): a member who
//! signed up and did not come [`NoShowRule::misses`] times within [`NoShowRule::window_days`]
//! cannot sign up for popular activities for [`NoShowRule::ban_days`] after the last miss
//! ([`no_show_ban`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// An activity as members see it (the `activity` change every member receives; eligibility is
/// inside). Its id is the id of the offline event staff check members in to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activity {
    pub id: i64,
    pub title_zh: String,
    pub title_en: String,
    pub description_zh: String,
    pub description_en: String,
    pub category: ActivityCategory,
    /// Where, in Chinese (what staff and most members read).
    pub place: String,
    /// Where, in English; empty when the union gave none (English then shows [`Activity::place`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub place_en: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The workplace union it belongs to; `None`: district-wide.
    pub union_id: Option<i64>,
    /// Points for checking in.
    pub points: i64,
    /// `None`: no sign-up, eligible members walk in.
    pub signup: Option<SignupRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Activity {
    pub fn title(&self, lang: crate::Lang) -> &str {
        match lang {
            crate::Lang::ZhCn => &self.title_zh,
            crate::Lang::En => &self.title_en,
        }
    }

    /// Where, in `lang`: the English place when there is one, else the Chinese.
    pub fn place_in(&self, lang: crate::Lang) -> &str {
        match lang {
            crate::Lang::En if !self.place_en.trim().is_empty() => &self.place_en,
            _ => &self.place,
        }
    }

    pub fn admits_union(&self, union_id: i64) -> bool {
        self.union_id.is_none_or(|u| u == union_id)
    }

    /// Seats for a walk-in activity are the event's capacity, with no sign-up needed.
    pub fn check(&self) -> Result<(), ErrorCode> {
        let ok = self.starts_at < self.ends_at
            && !self.title_zh.trim().is_empty()
            && self.points >= 0
            && self.title_zh.chars().count() <= 100
            && self.description_zh.chars().count() <= 4000
            && self.description_en.chars().count() <= 4000;
        if !ok {
            return Err(ErrorCode::BadRequest);
        }
        match &self.signup {
            Some(r) => r.check(self.starts_at),
            None => Ok(()),
        }
    }
}

/// An activity with its live counts (`GET /v1/activities`): seats taken and sign-ups waiting
/// change with every sign-up, so they are not in the synced activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityLive {
    pub activity: Activity,
    pub seats_taken: i64,
    pub waiting: i64,
    /// The asking member's place on its waitlist now (1 = next), while they wait: the place
    /// their own sign-up change gave moves up as those ahead leave or are promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_position: Option<i64>,
    /// Until when the asking member may not sign up for it: a popular activity, under the
    /// no-show rule (what a sign-up would be refused with, told before the member asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_ban_until: Option<DateTime<Utc>>,
}

/// `POST /v1/activities/{id}/signup`: the key is made on the device and stored before the
/// first send, so a double tap or a retry is the same request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignupRequest {
    pub key: uuid::Uuid,
    #[serde(default)]
    pub companions: i64,
}

/// One member's sign-up as they see it (the answer to a sign-up or a cancellation, and the
/// `signup` change their devices receive when it changes, e.g. on promotion).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MySignup {
    pub activity_id: i64,
    pub state: SignupState,
    pub companions: i64,
    /// Place on the waitlist (1 = next), while waitlisted, as of `updated_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// The answer to a sign-up request: the sign-up, or why not. Read through [`SignupAnswerWire`]
/// (an internally tagged enum would be buffered into an intermediate tree first, and the crowd
/// at an opening reads one each at the busiest moment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(
    tag = "result",
    rename_all = "snake_case",
    try_from = "SignupAnswerWire"
)]
pub enum SignupAnswer {
    Accepted {
        signup: MySignup,
        /// This key was answered before: the same answer again, nothing new happened.
        #[serde(default)]
        replayed: bool,
    },
    Refused {
        refusal: Refusal,
    },
}

/// The flat wire form of [`SignupAnswer`]: `result` names the variant and its fields sit beside
/// it, as the derived `Serialize` writes them. Unknown fields are ignored.
#[derive(Deserialize)]
struct SignupAnswerWire {
    result: SignupResult,
    #[serde(default)]
    signup: Option<MySignup>,
    #[serde(default)]
    replayed: bool,
    #[serde(default)]
    refusal: Option<Refusal>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SignupResult {
    Accepted,
    Refused,
}

/// A sign-up answer whose `result` lacks the field it carries.
#[derive(Debug, thiserror::Error)]
#[error("a `{0}` sign-up answer without its `{1}`")]
pub struct SignupWireError(&'static str, &'static str);

impl TryFrom<SignupAnswerWire> for SignupAnswer {
    type Error = SignupWireError;

    fn try_from(w: SignupAnswerWire) -> Result<Self, SignupWireError> {
        Ok(match w.result {
            SignupResult::Accepted => SignupAnswer::Accepted {
                signup: w.signup.ok_or(SignupWireError("accepted", "signup"))?,
                replayed: w.replayed,
            },
            SignupResult::Refused => SignupAnswer::Refused {
                refusal: w.refusal.ok_or(SignupWireError("refused", "refusal"))?,
            },
        })
    }
}

/// What kind of activity it is (the filter chips).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActivityCategory {
    /// 体育
    Sports,
    /// 文化
    Culture,
    /// 教培
    Training,
    /// 亲子
    Family,
    /// 公益
    Volunteering,
    /// 健康
    Health,
    /// 其他
    Other,
}

impl ActivityCategory {
    pub const ALL: [ActivityCategory; 7] = [
        ActivityCategory::Sports,
        ActivityCategory::Culture,
        ActivityCategory::Training,
        ActivityCategory::Family,
        ActivityCategory::Volunteering,
        ActivityCategory::Health,
        ActivityCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityCategory::Sports => "sports",
            ActivityCategory::Culture => "culture",
            ActivityCategory::Training => "training",
            ActivityCategory::Family => "family",
            ActivityCategory::Volunteering => "volunteering",
            ActivityCategory::Health => "health",
            ActivityCategory::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<ActivityCategory> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How an activity takes sign-ups. Seats count people: a member and each companion take one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignupRules {
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    /// Seats, companions included.
    pub seats: i64,
    /// Sign-ups kept waiting once the seats are taken (0: none).
    pub waitlist: i64,
    /// Companions a member may bring (家属), each taking a seat.
    pub max_companions: i64,
    /// Until when a sign-up can be cancelled (its seats go to the waitlist).
    pub cancel_until: DateTime<Utc>,
    /// Popular activities are closed to members under a no-show ban.
    pub popular: bool,
}

impl SignupRules {
    /// Whether these rules hold together: a window that opens before it closes and before the
    /// activity starts, seats, a waitlist and companions that are not negative.
    pub fn check(&self, starts_at: DateTime<Utc>) -> Result<(), ErrorCode> {
        let ok = self.opens_at < self.closes_at
            && self.closes_at <= starts_at
            && self.cancel_until <= starts_at
            && self.seats >= 1
            && self.waitlist >= 0
            && (0..=MAX_COMPANIONS).contains(&self.max_companions);
        if ok {
            Ok(())
        } else {
            Err(ErrorCode::BadRequest)
        }
    }
}

/// How long before sign-up opens the member's "remind me" comes (or a minute before, when the
/// opening is closer than that).
pub const OPENING_LEAD: Duration = Duration::minutes(5);
/// How long before an activity the member has a place at the app reminds them.
pub const START_LEAD: Duration = Duration::hours(1);

/// When the "remind me before sign-up opens" comes, at `now`: [`OPENING_LEAD`] before, or a
/// minute before when that has passed; `None` when even that is past.
pub fn opening_reminder_at(opens_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    [OPENING_LEAD, Duration::minutes(1)]
        .into_iter()
        .map(|lead| opens_at - lead)
        .find(|due| *due > now)
}

/// The most companions any activity may allow per member.
pub const MAX_COMPANIONS: i64 = 5;

/// Where one member's sign-up stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SignupState {
    /// Has seats.
    Confirmed,
    /// Waiting, in the order received.
    Waitlisted,
    /// Was waiting, now has seats (a cancellation freed them).
    Promoted,
    /// Cancelled by the member before the deadline, or by the union with the activity.
    Cancelled,
}

impl SignupState {
    pub fn as_str(self) -> &'static str {
        match self {
            SignupState::Confirmed => "confirmed",
            SignupState::Waitlisted => "waitlisted",
            SignupState::Promoted => "promoted",
            SignupState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<SignupState> {
        [
            SignupState::Confirmed,
            SignupState::Waitlisted,
            SignupState::Promoted,
            SignupState::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Holds seats (and is expected at the door).
    pub fn has_seats(self) -> bool {
        matches!(self, SignupState::Confirmed | SignupState::Promoted)
    }

    /// Counts as a live sign-up (a second one is refused).
    pub fn is_active(self) -> bool {
        self != SignupState::Cancelled
    }
}

/// What the server knows when it judges one sign-up request, read in the same transaction that
/// will write the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignupFacts {
    /// Seats taken by confirmed and promoted sign-ups, companions included.
    pub seats_taken: i64,
    /// Sign-ups waiting.
    pub waitlisted: i64,
    /// The member's live sign-up for this activity, if any.
    pub existing: Option<SignupState>,
    /// The member's no-show ban, if one runs (see [`no_show_ban`]).
    pub banned_until: Option<DateTime<Utc>>,
    /// Whether the member's union may take part.
    pub eligible: bool,
    pub cancelled: bool,
}

/// Why a sign-up was refused, with what the member needs to know to act on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refusal {
    pub code: ErrorCode,
    /// For a no-show ban: when it ends. For a window not yet open: when it opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl Refusal {
    fn of(code: ErrorCode) -> Refusal {
        Refusal { code, until: None }
    }
}

/// Judge one sign-up for `companions` companions at `now`: seats if there are enough for the
/// member and the companions, else a place on the waitlist if it has room, else a refusal. The
/// checks run in this order, so the member hears the most useful reason first.
pub fn decide(
    rules: &SignupRules,
    facts: &SignupFacts,
    companions: i64,
    now: DateTime<Utc>,
) -> Result<SignupState, Refusal> {
    if facts.cancelled {
        return Err(Refusal::of(ErrorCode::ActivityCancelled));
    }
    if !facts.eligible {
        return Err(Refusal::of(ErrorCode::NotEligible));
    }
    if now < rules.opens_at {
        return Err(Refusal {
            code: ErrorCode::SignupNotOpen,
            until: Some(rules.opens_at),
        });
    }
    if now >= rules.closes_at {
        return Err(Refusal::of(ErrorCode::SignupClosed));
    }
    if !(0..=rules.max_companions).contains(&companions) {
        return Err(Refusal::of(ErrorCode::TooManyCompanions));
    }
    if facts.existing.is_some_and(SignupState::is_active) {
        return Err(Refusal::of(ErrorCode::AlreadySignedUp));
    }
    if rules.popular {
        if let Some(until) = facts.banned_until.filter(|u| *u > now) {
            return Err(Refusal {
                code: ErrorCode::NoShowBanned,
                until: Some(until),
            });
        }
    }
    if facts.seats_taken + 1 + companions <= rules.seats {
        Ok(SignupState::Confirmed)
    } else if facts.waitlisted < rules.waitlist {
        Ok(SignupState::Waitlisted)
    } else {
        Err(Refusal::of(ErrorCode::SignupFull))
    }
}

/// Whether a sign-up may be cancelled by its member at `now`.
pub fn may_cancel(
    rules: &SignupRules,
    state: SignupState,
    now: DateTime<Utc>,
) -> Result<(), ErrorCode> {
    if !state.is_active() {
        return Err(ErrorCode::NotFound);
    }
    if now >= rules.cancel_until {
        return Err(ErrorCode::CancelTooLate);
    }
    Ok(())
}

/// Which waiting sign-ups get seats when `free` seats are there: the waitlist in the order
/// received (`(id, companions)`, head first), each taking 1 + companions, strictly in order (a
/// head that does not fit keeps its place, and nobody behind it jumps ahead). Answers the ids.
pub fn promotions(waitlist: &[(i64, i64)], mut free: i64) -> Vec<i64> {
    let mut out = Vec::new();
    for &(id, companions) in waitlist {
        let need = 1 + companions;
        if need > free {
            break;
        }
        free -= need;
        out.push(id);
    }
    out
}

/// The no-show rule's numbers (configuration, the server's `--no-show-*` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoShowRule {
    /// Misses that start a ban.
    pub misses: u32,
    /// How far back misses count.
    pub window_days: i64,
    /// How long a ban lasts, from the last miss that counts.
    pub ban_days: i64,
}

impl Default for NoShowRule {
    fn default() -> NoShowRule {
        NoShowRule {
            misses: 2,
            window_days: 90,
            ban_days: 30,
        }
    }
}

/// Until when a member is banned from popular activities at `now`, given the end times of the
/// activities they had seats for and did not check in to (misses). A ban runs `ban_days` from
/// the latest miss, once at least `misses` misses fall within `window_days` before that miss.
pub fn no_show_ban(
    rule: &NoShowRule,
    missed_ends: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if rule.misses == 0 {
        return None;
    }
    let mut ends: Vec<DateTime<Utc>> = missed_ends.iter().copied().filter(|e| *e <= now).collect();
    ends.sort();
    // the latest miss that completes a run of `misses` within the window starts the ban
    let n = rule.misses as usize;
    let window = Duration::days(rule.window_days);
    let mut until = None;
    for i in (n - 1)..ends.len() {
        if ends[i] - ends[i + 1 - n] <= window {
            until = Some(ends[i] + Duration::days(rule.ban_days));
        }
    }
    until.filter(|u| *u > now)
}

/// The `feedback` mutation: a member's rating and comment on an activity they checked in to,
/// from its end (queued offline like every change; sent again, it replaces the earlier one within
/// the week).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Feedback {
    pub activity_id: i64,
    pub rating: i64,
    #[serde(default)]
    pub comment: String,
}

/// The member's feedback as kept (the `feedback` change their devices receive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackGiven {
    pub activity_id: i64,
    pub rating: i64,
    pub comment: String,
    pub first_given_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A needs poll (征集) before activities: what the union should organise next. Members of its
/// union (or everyone) vote once for one option, and may change the vote until it closes; they
/// see the results after voting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Poll {
    pub id: i64,
    pub question_zh: String,
    pub question_en: String,
    pub options: Vec<PollOption>,
    pub union_id: Option<i64>,
    pub closes_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PollOption {
    pub zh: String,
    pub en: String,
}

/// The `vote` mutation: one option of a poll (by index), queued offline like every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vote {
    pub poll_id: i64,
    pub option: i64,
}

/// The count per option (`GET /v1/polls/{id}/results`, for members who voted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PollResults {
    pub poll_id: i64,
    pub counts: Vec<i64>,
    /// The member's own vote.
    pub mine: Option<i64>,
}

impl Poll {
    /// A poll that holds together: a question, 2 to 10 options, each with words.
    pub fn check(&self) -> Result<(), ErrorCode> {
        let ok = !self.question_zh.trim().is_empty()
            && (2..=MAX_POLL_OPTIONS).contains(&self.options.len())
            && self.options.iter().all(|o| !o.zh.trim().is_empty());
        if ok {
            Ok(())
        } else {
            Err(ErrorCode::BadRequest)
        }
    }
}

/// The most options a poll may offer.
pub const MAX_POLL_OPTIONS: usize = 10;

/// Whether a member of `union_id` may vote `option` at `now` (a vote before the close replaces
/// the earlier one).
pub fn may_vote(
    poll: &Poll,
    union_id: i64,
    option: i64,
    now: DateTime<Utc>,
) -> Result<(), ErrorCode> {
    if poll.union_id.is_some_and(|u| u != union_id) {
        return Err(ErrorCode::NotEligible);
    }
    if now >= poll.closes_at {
        return Err(ErrorCode::PollClosed);
    }
    if !(0..poll.options.len() as i64).contains(&option) {
        return Err(ErrorCode::BadRequest);
    }
    Ok(())
}

/// The activity as an iCalendar file (RFC 5545) to add to a phone's or computer's calendar:
/// times in UTC, the title, description and place in `lang`, a reminder an hour before, and
/// a stable UID so adding it again updates the same entry. `now` stamps it.
pub fn ics(a: &Activity, lang: crate::Lang, now: DateTime<Utc>) -> String {
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    // TEXT values escape backslash, semicolon, comma and line breaks (RFC 5545 3.3.11)
    let text = |s: &str| {
        s.replace('\\', "\\\\")
            .replace(';', "\\;")
            .replace(',', "\\,")
            .replace("\r\n", "\\n")
            .replace('\n', "\\n")
    };
    let description = match lang {
        crate::Lang::ZhCn => &a.description_zh,
        crate::Lang::En => &a.description_en,
    };
    let lines = [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//UnionPass//Activities//ZH".into(),
        "CALSCALE:GREGORIAN".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:activity-{}@unionpass", a.id),
        format!("DTSTAMP:{}", stamp(now)),
        format!("DTSTART:{}", stamp(a.starts_at)),
        format!("DTEND:{}", stamp(a.ends_at)),
        format!("SUMMARY:{}", text(a.title(lang))),
        format!("LOCATION:{}", text(a.place_in(lang))),
        format!("DESCRIPTION:{}", text(description)),
        if a.cancelled_at.is_some() {
            "STATUS:CANCELLED".into()
        } else {
            "STATUS:CONFIRMED".into()
        },
        "BEGIN:VALARM".into(),
        "ACTION:DISPLAY".into(),
        "TRIGGER:-PT1H".into(),
        format!("DESCRIPTION:{}", text(a.title(lang))),
        "END:VALARM".into(),
        "END:VEVENT".into(),
        "END:VCALENDAR".into(),
    ];
    // lines of at most 75 octets, folded with CRLF and a space (RFC 5545 3.1), never inside a
    // UTF-8 character
    let mut out = String::new();
    for line in lines {
        let mut width = 0;
        for ch in line.chars() {
            if width + ch.len_utf8() > 75 {
                out.push_str("\r\n ");
                width = 1;
            }
            out.push(ch);
            width += ch.len_utf8();
        }
        out.push_str("\r\n");
    }
    out
}

/// What a member with a sign-up is told when the union changes an activity (`activity move`,
/// `activity cancel`), learnt by sync: natively once, and on the activity's card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeNotice {
    /// Moved; it was to take place from `was_starts_at` to `was_ends_at`.
    Moved {
        was_starts_at: DateTime<Utc>,
        was_ends_at: DateTime<Utc>,
    },
    Cancelled,
}

/// The notice `new` (as synced) calls for over `old` (as the device held it) for a member whose
/// sign-up for it is `mine`, given the notice `earlier` held for it and not told yet: only for a
/// live sign-up (a place or on the waitlist), when it was cancelled now, or its start or end
/// moved. A second move before the member is told still says when it was first to take place,
/// and a move back to that time leaves nothing to tell (`Some(None)`: drop the earlier notice).
/// `None`: nothing to tell of this change, keep what is held.
pub fn change_notice(
    old: &Activity,
    new: &Activity,
    mine: Option<SignupState>,
    earlier: Option<ChangeNotice>,
) -> Option<Option<ChangeNotice>> {
    if !mine.is_some_and(SignupState::is_active) {
        return None;
    }
    if new.cancelled_at.is_some() {
        return old
            .cancelled_at
            .is_none()
            .then_some(Some(ChangeNotice::Cancelled));
    }
    if (old.starts_at, old.ends_at) == (new.starts_at, new.ends_at) {
        return None;
    }
    let (was_starts_at, was_ends_at) = match earlier {
        Some(ChangeNotice::Moved {
            was_starts_at,
            was_ends_at,
        }) => (was_starts_at, was_ends_at),
        _ => (old.starts_at, old.ends_at),
    };
    let back = (was_starts_at, was_ends_at) == (new.starts_at, new.ends_at);
    Some((!back).then_some(ChangeNotice::Moved {
        was_starts_at,
        was_ends_at,
    }))
}

/// The activity list's date filter: when an activity takes place, in days of the member's zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateRange {
    Any,
    /// Any part of it today.
    Today,
    /// Any part of it from today's start through the sixth day after today.
    NextSevenDays,
    /// Any part of it from today's start to the end of this month.
    ThisMonth,
}

impl DateRange {
    pub const ALL: [DateRange; 4] = [
        DateRange::Any,
        DateRange::Today,
        DateRange::NextSevenDays,
        DateRange::ThisMonth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DateRange::Any => "any",
            DateRange::Today => "today",
            DateRange::NextSevenDays => "week",
            DateRange::ThisMonth => "month",
        }
    }

    /// Whether `a` takes place, any part of it, within this range as seen at `now` in `zone`.
    /// An activity that ended earlier today is still today's.
    pub fn holds(self, a: &Activity, now: DateTime<Utc>, zone: crate::time::Zone) -> bool {
        let offset = zone.offset();
        let today = now.with_timezone(&offset).date_naive();
        let midnight = |day: chrono::NaiveDate| {
            day.and_time(chrono::NaiveTime::MIN)
                .and_local_timezone(offset)
                .single()
                .expect("a fixed offset has one local midnight")
                .with_timezone(&Utc)
        };
        let until = match self {
            DateRange::Any => return true,
            DateRange::Today => midnight(today + Duration::days(1)),
            DateRange::NextSevenDays => midnight(today + Duration::days(7)),
            DateRange::ThisMonth => crate::time::YearMonth::of(now, zone).next().start(zone),
        };
        a.starts_at < until && a.ends_at > midnight(today)
    }
}

/// Feedback after an activity: a rating 1–5 and a comment of at most this many characters.
pub const MAX_COMMENT_CHARS: usize = 500;
/// How long feedback stays editable after it was first given.
pub const FEEDBACK_EDITABLE: Duration = Duration::days(7);

/// A character a member's own words may not carry: a control character other than a line break
/// or a tab (NUL, escape sequences that rewrite a terminal's screen, a carriage return that hides
/// what came before it), or a mark that reorders the text around it (bidirectional embeddings,
/// overrides and isolates, and the invisible direction marks LRM, RLM and ALM, which move the
/// digits and punctuation beside them), or a line or paragraph separator (a line break a
/// terminal does not show as one). Such text is shown to staff and read in a terminal, where it
/// could pass for something else.
pub fn hidden_control(ch: char) -> bool {
    (ch.is_control() && ch != '\n' && ch != '\t')
        || matches!(
            ch,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&ch)
        || ('\u{2066}'..='\u{2069}').contains(&ch)
}

/// `text` without its [`hidden_control`] characters: what a device keeps of what a member typed
/// or pasted, before it checks and sends it.
pub fn without_hidden_controls(text: &str) -> String {
    text.chars().filter(|&ch| !hidden_control(ch)).collect()
}

/// Whether a member may give (or change) feedback at `now`: only after checking in and once the
/// activity has ended (`ends_at`: how it was is known then, not at the door), the rating 1–5 and
/// the comment within [`MAX_COMMENT_CHARS`] with no [`hidden_control`] character; once given,
/// editable for [`FEEDBACK_EDITABLE`].
pub fn may_give_feedback(
    checked_in: bool,
    ends_at: DateTime<Utc>,
    first_given_at: Option<DateTime<Utc>>,
    rating: i64,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<(), ErrorCode> {
    if !(1..=5).contains(&rating)
        || comment.chars().count() > MAX_COMMENT_CHARS
        || comment.chars().any(hidden_control)
    {
        return Err(ErrorCode::BadRequest);
    }
    if !checked_in {
        return Err(ErrorCode::FeedbackNotAttended);
    }
    if now < ends_at {
        return Err(ErrorCode::FeedbackTooEarly);
    }
    if first_given_at.is_some_and(|t| now - t > FEEDBACK_EDITABLE) {
        return Err(ErrorCode::FeedbackLocked);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn rules() -> SignupRules {
        SignupRules {
            opens_at: t("2026-12-01T02:00:00Z"),
            closes_at: t("2026-12-05T00:00:00Z"),
            seats: 10,
            waitlist: 2,
            max_companions: 2,
            cancel_until: t("2026-12-05T00:00:00Z"),
            popular: true,
        }
    }

    fn facts() -> SignupFacts {
        SignupFacts {
            seats_taken: 0,
            waitlisted: 0,
            existing: None,
            banned_until: None,
            eligible: true,
            cancelled: false,
        }
    }

    const OPEN: &str = "2026-12-01T02:00:00Z";

    #[test]
    fn a_signup_answer_reads_back_what_was_written_and_refuses_half_answers() {
        let accepted = SignupAnswer::Accepted {
            signup: MySignup {
                activity_id: 4,
                state: SignupState::Waitlisted,
                companions: 1,
                position: Some(3),
                created_at: t(OPEN),
                updated_at: t(OPEN),
            },
            replayed: true,
        };
        let refused = SignupAnswer::Refused {
            refusal: Refusal {
                code: ErrorCode::NoShowBanned,
                until: Some(t("2026-12-30T00:00:00Z")),
            },
        };
        for a in [&accepted, &refused] {
            let text = serde_json::to_string(a).unwrap();
            assert_eq!(&serde_json::from_str::<SignupAnswer>(&text).unwrap(), a);
        }
        // `result` last and a field a newer server might add; `replayed` may be absent
        let text =
            r#"{"refusal":{"code":"signup_full","until":null},"queue_ms":2,"result":"refused"}"#;
        assert_eq!(
            serde_json::from_str::<SignupAnswer>(text).unwrap(),
            SignupAnswer::Refused {
                refusal: Refusal::of(ErrorCode::SignupFull)
            }
        );
        for half in [
            r#"{"result":"accepted","replayed":false}"#,
            r#"{"result":"refused"}"#,
            r#"{"result":"maybe","refusal":{"code":"signup_full","until":null}}"#,
            r#"{"refusal":{"code":"signup_full","until":null}}"#,
        ] {
            let err = serde_json::from_str::<SignupAnswer>(half).unwrap_err();
            assert!(err.is_data(), "{half}: {err}");
        }
    }

    #[test]
    fn the_window_opens_on_its_instant_and_closes_on_its_instant() {
        let r = rules();
        let early = decide(&r, &facts(), 0, t("2026-12-01T01:59:59.999Z")).unwrap_err();
        assert_eq!(early.code, ErrorCode::SignupNotOpen);
        assert_eq!(early.until, Some(r.opens_at), "says when it opens");
        assert_eq!(decide(&r, &facts(), 0, t(OPEN)), Ok(SignupState::Confirmed));
        assert_eq!(
            decide(&r, &facts(), 0, r.closes_at).unwrap_err().code,
            ErrorCode::SignupClosed
        );
    }

    #[test]
    fn companions_take_seats_then_the_waitlist_then_full() {
        let r = rules();
        let f = |seats_taken, waitlisted| SignupFacts {
            seats_taken,
            waitlisted,
            ..facts()
        };
        // 8 taken: a member with one companion fits exactly, with two does not
        assert_eq!(decide(&r, &f(8, 0), 1, t(OPEN)), Ok(SignupState::Confirmed));
        assert_eq!(
            decide(&r, &f(8, 0), 2, t(OPEN)),
            Ok(SignupState::Waitlisted)
        );
        assert_eq!(
            decide(&r, &f(10, 1), 0, t(OPEN)),
            Ok(SignupState::Waitlisted)
        );
        assert_eq!(
            decide(&r, &f(10, 2), 0, t(OPEN)).unwrap_err().code,
            ErrorCode::SignupFull
        );
        assert_eq!(
            decide(&r, &facts(), 3, t(OPEN)).unwrap_err().code,
            ErrorCode::TooManyCompanions
        );
        assert_eq!(
            decide(&r, &facts(), -1, t(OPEN)).unwrap_err().code,
            ErrorCode::TooManyCompanions
        );
    }

    #[test]
    fn one_live_sign_up_per_member_and_the_reasons_come_in_order() {
        let r = rules();
        let again = SignupFacts {
            existing: Some(SignupState::Waitlisted),
            ..facts()
        };
        assert_eq!(
            decide(&r, &again, 0, t(OPEN)).unwrap_err().code,
            ErrorCode::AlreadySignedUp
        );
        let after_cancel = SignupFacts {
            existing: Some(SignupState::Cancelled),
            ..facts()
        };
        assert_eq!(
            decide(&r, &after_cancel, 0, t(OPEN)),
            Ok(SignupState::Confirmed)
        );
        // a cancelled activity says so before anything else, then eligibility
        let both = SignupFacts {
            cancelled: true,
            eligible: false,
            ..facts()
        };
        assert_eq!(
            decide(&r, &both, 0, t(OPEN)).unwrap_err().code,
            ErrorCode::ActivityCancelled
        );
        let other_union = SignupFacts {
            eligible: false,
            ..facts()
        };
        assert_eq!(
            decide(&r, &other_union, 0, t("2026-11-01T00:00:00Z"))
                .unwrap_err()
                .code,
            ErrorCode::NotEligible
        );
    }

    /// The whole order of the reasons, one pair at a time: facts that break two checks get the
    /// earlier one's refusal.
    #[test]
    fn each_reason_comes_before_the_next() {
        let r = rules();
        let before = t("2026-11-30T00:00:00Z");
        let after = t("2026-12-06T00:00:00Z");
        let full = SignupFacts {
            seats_taken: r.seats,
            waitlisted: r.waitlist,
            ..facts()
        };
        // (facts, companions, when) breaking check n and every check after it
        let breaking = |n: usize| -> (SignupFacts, i64, DateTime<Utc>) {
            let mut f = full.clone();
            f.cancelled = n == 0;
            f.eligible = n > 1;
            f.existing = (n <= 5).then_some(SignupState::Confirmed);
            f.banned_until = (n <= 6).then_some(after);
            let companions = if n <= 4 { r.max_companions + 1 } else { 0 };
            let when = match n {
                0..=2 => before,
                3 => after,
                _ => t(OPEN),
            };
            (f, companions, when)
        };
        let order = [
            ErrorCode::ActivityCancelled,
            ErrorCode::NotEligible,
            ErrorCode::SignupNotOpen,
            ErrorCode::SignupClosed,
            ErrorCode::TooManyCompanions,
            ErrorCode::AlreadySignedUp,
            ErrorCode::NoShowBanned,
            ErrorCode::SignupFull,
        ];
        for (n, code) in order.iter().enumerate() {
            let (f, companions, when) = breaking(n);
            assert_eq!(
                decide(&r, &f, companions, when).unwrap_err().code,
                *code,
                "check {n}"
            );
        }
    }

    #[test]
    fn a_ban_closes_popular_activities_only_and_says_until_when() {
        let until = t("2026-12-20T00:00:00Z");
        let banned = SignupFacts {
            banned_until: Some(until),
            ..facts()
        };
        let refused = decide(&rules(), &banned, 0, t(OPEN)).unwrap_err();
        assert_eq!(
            (refused.code, refused.until),
            (ErrorCode::NoShowBanned, Some(until))
        );
        let ordinary = SignupRules {
            popular: false,
            ..rules()
        };
        assert_eq!(
            decide(&ordinary, &banned, 0, t(OPEN)),
            Ok(SignupState::Confirmed)
        );
        // a banned member hears of the ban, not that the activity is full
        let full = SignupFacts {
            seats_taken: rules().seats,
            waitlisted: rules().waitlist,
            ..banned.clone()
        };
        assert_eq!(
            decide(&rules(), &full, 0, t(OPEN)).unwrap_err().code,
            ErrorCode::NoShowBanned
        );
        // a ban that has run out does not count
        let over = SignupFacts {
            banned_until: Some(t(OPEN)),
            ..facts()
        };
        assert_eq!(
            decide(&rules(), &over, 0, t(OPEN)),
            Ok(SignupState::Confirmed)
        );
    }

    #[test]
    fn misses_within_the_window_ban_from_the_last_one() {
        let rule = NoShowRule::default(); // 2 misses in 90 days: 30 days
        let now = t("2026-12-01T00:00:00Z");
        assert_eq!(no_show_ban(&rule, &[t("2026-11-20T00:00:00Z")], now), None);
        assert_eq!(
            no_show_ban(
                &rule,
                &[t("2026-11-25T00:00:00Z"), t("2026-10-01T00:00:00Z")],
                now
            ),
            Some(t("2026-12-25T00:00:00Z"))
        );
        // too far apart: no run of two within 90 days
        assert_eq!(
            no_show_ban(
                &rule,
                &[t("2026-11-25T00:00:00Z"), t("2026-07-01T00:00:00Z")],
                now
            ),
            None
        );
        // a ban that has run its course
        assert_eq!(
            no_show_ban(
                &rule,
                &[t("2026-10-01T00:00:00Z"), t("2026-10-20T00:00:00Z")],
                now
            ),
            None
        );
        // misses in the future (an activity not ended yet) do not count
        assert_eq!(
            no_show_ban(
                &rule,
                &[t("2026-11-25T00:00:00Z"), t("2026-12-02T00:00:00Z")],
                now
            ),
            None
        );
        // exactly 90 days apart still counts; a second more does not
        let last = t("2026-11-25T00:00:00Z");
        assert_eq!(
            no_show_ban(&rule, &[last, last - Duration::days(90)], now),
            Some(t("2026-12-25T00:00:00Z"))
        );
        assert_eq!(
            no_show_ban(
                &rule,
                &[last, last - Duration::days(90) - Duration::seconds(1)],
                now
            ),
            None
        );
        let off = NoShowRule { misses: 0, ..rule };
        assert_eq!(no_show_ban(&off, &[now, now, now], now), None);
    }

    #[test]
    fn freed_seats_go_to_the_head_of_the_waitlist_in_order() {
        let waitlist = [(1, 0), (2, 2), (3, 0)];
        assert_eq!(promotions(&waitlist, 1), vec![1]);
        // the second needs 3 seats: with 3 free, 1 and 2 would need 4, so only 1 goes, and 3
        // does not jump ahead of 2
        assert_eq!(promotions(&waitlist, 3), vec![1]);
        assert_eq!(promotions(&waitlist, 4), vec![1, 2]);
        assert_eq!(promotions(&waitlist, 10), vec![1, 2, 3]);
        assert_eq!(promotions(&waitlist, 0), Vec::<i64>::new());
    }

    #[test]
    fn cancelling_ends_at_the_deadline() {
        let r = rules();
        let before = r.cancel_until - Duration::milliseconds(1);
        assert_eq!(may_cancel(&r, SignupState::Confirmed, before), Ok(()));
        assert_eq!(may_cancel(&r, SignupState::Waitlisted, before), Ok(()));
        assert_eq!(
            may_cancel(&r, SignupState::Confirmed, r.cancel_until),
            Err(ErrorCode::CancelTooLate)
        );
        assert_eq!(
            may_cancel(&r, SignupState::Cancelled, before),
            Err(ErrorCode::NotFound)
        );
    }

    #[test]
    fn members_with_a_sign_up_are_told_of_a_move_or_a_cancel() {
        let old = Activity {
            id: 1,
            title_zh: "插花课".into(),
            title_en: "Flowers".into(),
            description_zh: String::new(),
            description_en: String::new(),
            category: ActivityCategory::Culture,
            place: "文化宫".into(),
            place_en: String::new(),
            starts_at: t("2026-12-12T06:00:00Z"),
            ends_at: t("2026-12-12T08:00:00Z"),
            union_id: None,
            points: 0,
            signup: None,
            cancelled_at: None,
        };
        let shifted = |days: i64, hours: i64| Activity {
            starts_at: old.starts_at + Duration::days(days),
            ends_at: old.ends_at + Duration::days(days) + Duration::hours(hours),
            ..old.clone()
        };
        let off = Activity {
            cancelled_at: Some(t("2026-12-10T00:00:00Z")),
            ..old.clone()
        };
        let moved = Some(ChangeNotice::Moved {
            was_starts_at: old.starts_at,
            was_ends_at: old.ends_at,
        });
        let cancelled = Some(Some(ChangeNotice::Cancelled));
        for mine in [
            SignupState::Confirmed,
            SignupState::Promoted,
            SignupState::Waitlisted,
        ] {
            let tell = |from: &Activity, to: &Activity, earlier| {
                change_notice(from, to, Some(mine), earlier)
            };
            assert_eq!(tell(&old, &shifted(1, 0), None), Some(moved));
            assert_eq!(tell(&old, &shifted(0, 1), None), Some(moved), "a new end");
            // moved again: still the time first given; moved back to it: nothing to tell
            assert_eq!(tell(&shifted(1, 0), &shifted(2, 0), moved), Some(moved));
            assert_eq!(tell(&shifted(1, 0), &old, moved), Some(None));
            assert_eq!(tell(&old, &off, None), cancelled);
            assert_eq!(tell(&shifted(1, 0), &off, moved), cancelled);
            assert_eq!(tell(&old, &old, moved), None, "nothing changed: keep it");
            assert_eq!(tell(&off, &off, None), None, "cancelled before");
        }
        // no live sign-up: nothing to tell
        assert_eq!(change_notice(&old, &shifted(1, 0), None, None), None);
        assert_eq!(
            change_notice(&old, &off, Some(SignupState::Cancelled), None),
            None
        );
    }

    #[test]
    fn the_date_filter_takes_days_in_the_members_zone() {
        use crate::time::Zone;
        let at = |starts: &str, hours: i64| Activity {
            id: 1,
            title_zh: "健步走".into(),
            title_en: "Walk".into(),
            description_zh: String::new(),
            description_en: String::new(),
            category: ActivityCategory::Health,
            place: "绿道".into(),
            place_en: String::new(),
            starts_at: t(starts),
            ends_at: t(starts) + Duration::hours(hours),
            union_id: None,
            points: 0,
            signup: None,
            cancelled_at: None,
        };
        // 23:30 on 30 November in Shanghai (15:30 UTC)
        let now = t("2026-11-30T15:30:00Z");
        let zone = Zone::AsiaShanghai;
        let kinds = |a: &Activity| {
            DateRange::ALL
                .into_iter()
                .filter(|r| r.holds(a, now, zone))
                .map(DateRange::as_str)
                .collect::<Vec<_>>()
        };
        // this morning's, over: still today's
        assert_eq!(
            kinds(&at("2026-11-30T01:00:00Z", 2)),
            ["any", "today", "week", "month"]
        );
        // 00:30 tomorrow in Shanghai (still 30 November in UTC): not today, not this month
        assert_eq!(kinds(&at("2026-11-30T16:30:00Z", 2)), ["any", "week"]);
        // the sixth day after today, and the seventh
        assert_eq!(kinds(&at("2026-12-06T15:00:00Z", 1)), ["any", "week"]);
        assert_eq!(kinds(&at("2026-12-06T16:00:00Z", 1)), ["any"]);
        // yesterday's: only "any"
        assert_eq!(kinds(&at("2026-11-29T01:00:00Z", 2)), ["any"]);
        // running since yesterday, into today
        assert_eq!(
            kinds(&at("2026-11-29T12:00:00Z", 8)),
            ["any", "today", "week", "month"]
        );
        // later this month (mid-month)
        let mid = t("2026-12-10T04:00:00Z");
        let later = at("2026-12-28T02:00:00Z", 2);
        assert!(DateRange::ThisMonth.holds(&later, mid, zone));
        assert!(!DateRange::NextSevenDays.holds(&later, mid, zone));
        assert!(!DateRange::ThisMonth.holds(&at("2027-01-01T02:00:00Z", 2), mid, zone));
    }

    #[test]
    fn feedback_after_attending_from_the_end_once_and_editable_for_a_week() {
        let now = t("2026-12-10T00:00:00Z");
        let ended = now - Duration::hours(1);
        // not while it is still going on: from its end on
        assert_eq!(
            may_give_feedback(true, now + Duration::seconds(1), None, 5, "", now),
            Err(ErrorCode::FeedbackTooEarly)
        );
        assert_eq!(may_give_feedback(true, now, None, 5, "", now), Ok(()));
        assert_eq!(
            may_give_feedback(false, now + Duration::hours(1), None, 5, "", now),
            Err(ErrorCode::FeedbackNotAttended),
            "who did not come hears that, not when"
        );
        assert_eq!(may_give_feedback(true, ended, None, 5, "很好", now), Ok(()));
        assert_eq!(
            may_give_feedback(false, ended, None, 5, "", now),
            Err(ErrorCode::FeedbackNotAttended)
        );
        assert_eq!(
            may_give_feedback(true, ended, None, 0, "", now),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            may_give_feedback(true, ended, None, 4, &"好".repeat(501), now),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            may_give_feedback(true, ended, None, 4, &"好".repeat(500), now),
            Ok(())
        );
        // lines and tabs are the member's; what hides or rewrites text is not
        assert_eq!(
            may_give_feedback(true, ended, None, 4, "场地很好\n\t下次还来 👍", now),
            Ok(())
        );
        for hidden in [
            "a\0b",
            "\x1b[2K5★ 好",
            "差\r好",
            "\u{7f}",
            "\u{85}",
            "\u{202e}好差",
            "\u{2066}x",
            "5\u{200f}★ 1",
            "\u{200e}好",
            "\u{061c}12",
            "好\u{2028}差",
            "好\u{2029}差",
        ] {
            assert_eq!(
                may_give_feedback(true, ended, None, 4, hidden, now),
                Err(ErrorCode::BadRequest),
                "{hidden:?}"
            );
            assert!(
                may_give_feedback(true, ended, None, 4, &without_hidden_controls(hidden), now)
                    .is_ok(),
                "{hidden:?} cleaned"
            );
        }
        assert_eq!(without_hidden_controls("\x1b[2K好\n"), "[2K好\n");
        let first = now - FEEDBACK_EDITABLE;
        assert_eq!(
            may_give_feedback(true, ended, Some(first), 3, "", now),
            Ok(())
        );
        assert_eq!(
            may_give_feedback(true, ended, Some(first - Duration::seconds(1)), 3, "", now),
            Err(ErrorCode::FeedbackLocked)
        );
    }

    #[test]
    fn votes_until_the_close_for_an_offered_option_by_an_eligible_member() {
        let poll = Poll {
            id: 1,
            question_zh: "下个月办什么？".into(),
            question_en: "What next month?".into(),
            options: vec![
                PollOption {
                    zh: "羽毛球".into(),
                    en: "Badminton".into(),
                },
                PollOption {
                    zh: "读书会".into(),
                    en: "Book club".into(),
                },
            ],
            union_id: Some(1),
            closes_at: t("2026-12-10T00:00:00Z"),
        };
        assert_eq!(poll.check(), Ok(()));
        let before = t("2026-12-09T23:59:59Z");
        assert_eq!(may_vote(&poll, 1, 1, before), Ok(()));
        assert_eq!(may_vote(&poll, 2, 1, before), Err(ErrorCode::NotEligible));
        assert_eq!(may_vote(&poll, 1, 2, before), Err(ErrorCode::BadRequest));
        assert_eq!(may_vote(&poll, 1, -1, before), Err(ErrorCode::BadRequest));
        assert_eq!(
            may_vote(&poll, 1, 0, poll.closes_at),
            Err(ErrorCode::PollClosed)
        );
        let one = Poll {
            options: poll.options[..1].to_vec(),
            ..poll.clone()
        };
        assert_eq!(one.check(), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn an_ics_file_names_the_event_in_utc_escapes_text_and_folds_long_lines() {
        let a = Activity {
            id: 7,
            title_zh: "亲子手工日，做花灯".into(),
            title_en: "Family craft day".into(),
            description_zh: "材料由工会准备；带孩子来".repeat(6),
            description_en: String::new(),
            category: ActivityCategory::Family,
            place: "职工之家 3 楼".into(),
            place_en: String::new(),
            starts_at: t("2026-12-12T06:00:00Z"),
            ends_at: t("2026-12-12T09:00:00Z"),
            union_id: None,
            points: 0,
            signup: None,
            cancelled_at: None,
        };
        let f = ics(&a, crate::Lang::ZhCn, t("2026-12-01T00:00:00Z"));
        assert!(f.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(f.ends_with("END:VCALENDAR\r\n"));
        assert!(f.contains("\r\nUID:activity-7@unionpass\r\n"));
        assert!(f.contains("\r\nDTSTART:20261212T060000Z\r\n"));
        assert!(f.contains("\r\nDTEND:20261212T090000Z\r\n"));
        // full-width punctuation is text; only ASCII , ; \ are escaped
        assert!(f.contains("\r\nSUMMARY:亲子手工日，做花灯\r\n"));
        assert!(f.contains("TRIGGER:-PT1H"));
        // every physical line fits 75 octets, and unfolding gives the escaped description back
        assert!(f.split("\r\n").all(|l| l.len() <= 75), "{f}");
        let unfolded = f.replace("\r\n ", "");
        assert!(unfolded.contains(&format!(
            "\r\nDESCRIPTION:{}\r\n",
            "材料由工会准备；带孩子来".repeat(6)
        )));
        assert!(f.contains("\r\nLOCATION:职工之家 3 楼\r\n"));
        // with no English place, English shows the Chinese one
        let en = ics(&a, crate::Lang::En, t("2026-12-01T00:00:00Z"));
        assert!(en.contains("\r\nLOCATION:职工之家 3 楼\r\n"), "{en}");
        // the place in the file's language; a comma and a semicolon in ASCII are escaped
        let b = Activity {
            place_en: "Hall 3, floor 2; east".into(),
            ..a
        };
        let f = ics(&b, crate::Lang::En, t("2026-12-01T00:00:00Z"));
        assert!(f.contains("LOCATION:Hall 3\\, floor 2\\; east"));
        let zh = ics(&b, crate::Lang::ZhCn, t("2026-12-01T00:00:00Z"));
        assert!(zh.contains("\r\nLOCATION:职工之家 3 楼\r\n"), "{zh}");
        assert!(f.contains("\r\nSTATUS:CONFIRMED\r\n"));
        // a backslash is doubled first, line breaks become \n: one physical line each
        let c = Activity {
            description_en: "Bring C:\\shoes\r\nand water\nthat's all".into(),
            cancelled_at: Some(t("2026-12-05T00:00:00Z")),
            ..b
        };
        let f = ics(&c, crate::Lang::En, t("2026-12-06T00:00:00Z"));
        assert!(
            f.contains("\r\nDESCRIPTION:Bring C:\\\\shoes\\nand water\\nthat's all\r\n"),
            "{f}"
        );
        // a cancelled activity updates the calendar entry of the same UID to cancelled
        assert!(f.contains("\r\nSTATUS:CANCELLED\r\n"));
        assert!(f.contains("\r\nUID:activity-7@unionpass\r\n"));
    }

    #[test]
    fn the_opening_reminder_comes_five_minutes_before_or_one_when_closer() {
        let opens = t("2026-12-01T10:00:00Z");
        assert_eq!(
            opening_reminder_at(opens, t("2026-12-01T09:00:00Z")),
            Some(t("2026-12-01T09:55:00Z"))
        );
        assert_eq!(
            opening_reminder_at(opens, t("2026-12-01T09:57:00Z")),
            Some(t("2026-12-01T09:59:00Z"))
        );
        assert_eq!(opening_reminder_at(opens, t("2026-12-01T09:59:30Z")), None);
    }

    #[test]
    fn rules_that_do_not_hold_together_are_refused() {
        let starts = t("2026-12-06T00:00:00Z");
        assert_eq!(rules().check(starts), Ok(()));
        let backwards = SignupRules {
            closes_at: rules().opens_at,
            ..rules()
        };
        assert_eq!(backwards.check(starts), Err(ErrorCode::BadRequest));
        let after_start = SignupRules {
            closes_at: starts + Duration::hours(1),
            ..rules()
        };
        assert_eq!(after_start.check(starts), Err(ErrorCode::BadRequest));
        let many = SignupRules {
            max_companions: MAX_COMPANIONS + 1,
            ..rules()
        };
        assert_eq!(many.check(starts), Err(ErrorCode::BadRequest));
        // each other rule alone, and the edges that still hold
        let broken = [
            SignupRules {
                cancel_until: starts + Duration::seconds(1),
                ..rules()
            },
            SignupRules {
                seats: 0,
                ..rules()
            },
            SignupRules {
                waitlist: -1,
                ..rules()
            },
            SignupRules {
                max_companions: -1,
                ..rules()
            },
        ];
        for r in broken {
            assert_eq!(r.check(starts), Err(ErrorCode::BadRequest), "{r:?}");
        }
        let edges = SignupRules {
            closes_at: starts,
            cancel_until: starts,
            seats: 1,
            waitlist: 0,
            max_companions: 0,
            ..rules()
        };
        assert_eq!(edges.check(starts), Ok(()));
    }
}
