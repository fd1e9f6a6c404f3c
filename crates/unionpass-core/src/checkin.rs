//! Offline events and check-in: the event model, what a scanner syncs, and the pure decision
//! taken when a staff member scans a passport.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::UnionKey;
use crate::passport::{Claims, PassportError};
use crate::ErrorCode;

/// An offline event (sports day, training, show) that staff check members in to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: i64,
    /// In Chinese (an activity's `title_zh`).
    pub title: String,
    /// In English, where the event is an activity (which has one): the scanner shows it to staff
    /// who read English. A plain event has one title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    pub place: String,
    /// The place in English, where the event or its activity has one (else the Chinese place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_en: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i64,
    /// The workplace union whose members may attend; `None`: open to every member of the district.
    pub union_id: Option<i64>,
    /// Points a member earns for checking in (once per event).
    #[serde(default)]
    pub points: i64,
}

impl Event {
    /// The title in `lang`: the Chinese one where there is no other (the server sends no blank
    /// English title, `event_title_en`).
    pub fn title_in(&self, lang: crate::i18n::Lang) -> &str {
        match (lang, &self.title_en) {
            (crate::i18n::Lang::En, Some(en)) => en,
            _ => &self.title,
        }
    }

    /// The place in `lang`: the Chinese one where there is no other (the server sends no blank
    /// English place).
    pub fn place_in(&self, lang: crate::i18n::Lang) -> &str {
        match (lang, &self.place_en) {
            (crate::i18n::Lang::En, Some(en)) => en,
            _ => &self.place,
        }
    }

    pub fn admits(&self, claims: &Claims) -> bool {
        self.union_id.is_none_or(|u| u == claims.union_id as i64)
    }
}

/// One check-in, as the scanner records it and uploads it through the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckIn {
    pub event_id: i64,
    pub member_id: i64,
    pub member_no: String,
    pub scanned_at: DateTime<Utc>,
    /// The scanning installation's device id.
    pub scanner: Uuid,
    /// Unique per scan; the server keeps the first check-in of a member at an event.
    pub nonce: Uuid,
    /// The scanned passport (the QR text), uploaded as proof: the server verifies it again and
    /// takes the member from it. Not sent back to scanners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The staff member whose signed-in scanner uploaded it, named by the server from the
    /// session (what a scanner sends here is not read): other scanners' logs say who scanned.
    /// `None` while not uploaded, and for check-ins the server kept before it recorded this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<String>,
}

/// The same member checked in to one event by two scanners; the server keeps `first`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conflict {
    pub first: CheckIn,
    pub second: CheckIn,
}

/// A revoked device, until its credential would have expired anyway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedDevice {
    /// [`crate::passport::DeviceKid`] in hex.
    pub device_kid: String,
    pub until: DateTime<Utc>,
}

/// What is known at the door of one member's sign-up for an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "door", rename_all = "snake_case")]
pub enum Door {
    /// The event takes no sign-up: an eligible member walks in.
    Open,
    /// Has a place, bringing `companions`.
    SignedUp { companions: i64 },
    /// Still on the waitlist: no place.
    Waitlisted,
    /// Sign-up is required and the member has none.
    NotSignedUp,
}

impl Door {
    /// The door of an event for one member: `Open` unless the event takes sign-ups; then their
    /// live sign-up (`Some((waiting, companions))`) or none. The scanner and both server backends
    /// read their rows into this.
    pub fn of(takes_signups: bool, live: Option<(bool, i64)>) -> Door {
        match (takes_signups, live) {
            (false, _) => Door::Open,
            (true, Some((true, _))) => Door::Waitlisted,
            (true, Some((false, companions))) => Door::SignedUp { companions },
            (true, None) => Door::NotSignedUp,
        }
    }
}

/// One sign-up as a scanner keeps it (events that take sign-ups only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoorEntry {
    pub event_id: i64,
    pub member_id: i64,
    pub companions: i64,
    /// On the waitlist (no place) rather than signed up with one.
    pub waitlisted: bool,
}

/// A member's name as staff see it at the door.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Person {
    pub member_id: i64,
    pub name: String,
}

/// A workplace union's name, by the id a passport carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnionName {
    pub id: i64,
    pub name: String,
}

/// `GET /v1/scanner` answer (staff only): everything a scanner needs to work offline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScannerBundle {
    pub generated_at: DateTime<Utc>,
    pub keys: Vec<UnionKey>,
    pub revoked_devices: Vec<RevokedDevice>,
    pub revoked_members: Vec<i64>,
    /// Events of the staff member's union, and district-wide ones, that have not ended.
    pub events: Vec<Event>,
    /// Check-ins the server holds for those events (from every scanner).
    pub checkins: Vec<CheckIn>,
    pub conflicts: Vec<Conflict>,
    /// Every workplace union's name: a scan shows the member's union in words.
    #[serde(default)]
    pub unions: Vec<UnionName>,
    /// The names of the staff member's own union's members, so that a scan shows who should be
    /// standing there (members of other unions show their number and union).
    #[serde(default)]
    pub roster: Vec<Person>,
    /// Of those events, the ones that take sign-ups (only signed-up members come in)...
    #[serde(default)]
    pub signup_events: Vec<i64>,
    /// ...and their live sign-ups (with places, or waiting).
    #[serde(default)]
    pub signups: Vec<DoorEntry>,
    /// Each part's validator ([`BUNDLE_PARTS`]), for the scanner's next request (`have`).
    #[serde(default)]
    pub digests: std::collections::BTreeMap<String, String>,
    /// The parts left out (empty above) because the scanner's copy is current.
    #[serde(default)]
    pub unchanged: Vec<String>,
}

/// The parts of a scanner bundle, each sent again only when it changed: the union keys; the
/// revoked devices and members; the events (and which take sign-ups); the check-ins and
/// conflicts; the unions' and roster's names; the sign-ups at the door.
pub const BUNDLE_PARTS: [&str; 6] = [
    "keys",
    "revocations",
    "events",
    "checkins",
    "people",
    "signups",
];

/// A part's validator: the first 8 bytes of SHA-256 over its JSON, in hex (a validator, not a
/// signature: 64 bits make an unnoticed change vanishingly unlikely).
fn digest_of(v: &impl Serialize) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(v).expect("serializes");
    Sha256::digest(&bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ScannerBundle {
    /// Each part's validator, over what this bundle holds.
    pub fn part_digests(&self) -> std::collections::BTreeMap<String, String> {
        let digests = [
            digest_of(&self.keys),
            digest_of(&(&self.revoked_devices, &self.revoked_members)),
            digest_of(&(&self.events, &self.signup_events)),
            digest_of(&(&self.checkins, &self.conflicts)),
            digest_of(&(&self.unions, &self.roster)),
            digest_of(&self.signups),
        ];
        BUNDLE_PARTS
            .iter()
            .zip(digests)
            .map(|(p, d)| (p.to_string(), d))
            .collect()
    }

    /// The bundle to send to a scanner that holds the parts with validators `have`: every
    /// part's validator set, and the parts it already holds left out and named in `unchanged`,
    /// so a sync with nothing new carries a few hundred bytes whatever the event's size.
    pub fn for_scanner(mut self, have: &std::collections::BTreeMap<String, String>) -> Self {
        self.digests = self.part_digests();
        self.unchanged = BUNDLE_PARTS
            .iter()
            .filter(|p| {
                have.get(**p)
                    .is_some_and(|d| self.digests.get(**p) == Some(d))
            })
            .map(|p| p.to_string())
            .collect();
        for part in &self.unchanged {
            match part.as_str() {
                "keys" => self.keys.clear(),
                "revocations" => {
                    self.revoked_devices.clear();
                    self.revoked_members.clear();
                }
                "events" => {
                    self.events.clear();
                    self.signup_events.clear();
                }
                "checkins" => {
                    self.checkins.clear();
                    self.conflicts.clear();
                }
                "people" => {
                    self.unions.clear();
                    self.roster.clear();
                }
                _ => self.signups.clear(),
            }
        }
        self
    }

    /// Whether this bundle left `part` out (the scanner keeps its copy).
    pub fn keeps(&self, part: &str) -> bool {
        self.unchanged.iter().any(|p| p == part)
    }
}

/// Read the `have` query parameter (`part.digest,part.digest`): unknown parts and malformed or
/// oversized entries are ignored (the part is then sent whole).
pub fn parse_have(s: &str) -> std::collections::BTreeMap<String, String> {
    s.split(',')
        .take(BUNDLE_PARTS.len())
        .filter_map(|e| e.split_once('.'))
        .filter(|(p, d)| {
            BUNDLE_PARTS.contains(p) && d.len() == 16 && d.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .map(|(p, d)| (p.to_string(), d.to_ascii_lowercase()))
        .collect()
}

/// Write `have` for a request (the inverse of [`parse_have`]).
pub fn format_have(have: &std::collections::BTreeMap<String, String>) -> String {
    have.iter()
        .map(|(p, d)| format!("{p}.{d}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a scan did not check the member in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Passport(#[from] PassportError),
    #[error("the member is not eligible for this event")]
    NotEligible,
    #[error("already checked in at {} by scanner {}", .0.scanned_at, .0.scanner)]
    AlreadyCheckedIn(Box<CheckIn>),
    #[error("the event takes sign-ups and the member has none")]
    NotSignedUp,
    #[error("the member is still on the waitlist")]
    StillWaitlisted,
}

impl ScanError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ScanError::Passport(p) => match p {
                PassportError::BadFormat(_) => ErrorCode::PassportBadFormat,
                PassportError::UnknownKey(_) => ErrorCode::PassportUnknownKey,
                PassportError::BadUnionSignature => ErrorCode::PassportBadSignature,
                PassportError::BadDeviceSignature => ErrorCode::PassportBadDeviceSignature,
                PassportError::NotYetValid => ErrorCode::PassportNotYetValid,
                PassportError::Expired => ErrorCode::PassportExpired,
                PassportError::Stale { .. } => ErrorCode::PassportStale,
                PassportError::RevokedDevice => ErrorCode::PassportRevokedDevice,
                PassportError::RevokedMember => ErrorCode::PassportRevokedMember,
            },
            ScanError::NotEligible => ErrorCode::NotEligible,
            ScanError::AlreadyCheckedIn(_) => ErrorCode::AlreadyCheckedIn,
            ScanError::NotSignedUp => ErrorCode::NotSignedUp,
            ScanError::StillWaitlisted => ErrorCode::StillWaitlisted,
        }
    }
}

/// After the passport verified: may this member be checked in to `event`? `earlier` is the
/// member's first check-in at the event that this scanner knows of (its own, or synced); `door`
/// their sign-up. Answers the companions who come in with them.
pub fn admit(
    claims: &Claims,
    event: &Event,
    earlier: Option<&CheckIn>,
    door: Door,
) -> Result<i64, ScanError> {
    if !event.admits(claims) {
        return Err(ScanError::NotEligible);
    }
    if let Some(c) = earlier {
        return Err(ScanError::AlreadyCheckedIn(Box::new(c.clone())));
    }
    door_rule(door)
}

/// The sign-up part of admission, shared by the scanner and the server: a place lets the member
/// (and their companions) in; waiting or no sign-up does not, each with its reason.
pub fn door_rule(door: Door) -> Result<i64, ScanError> {
    match door {
        Door::Open => Ok(0),
        Door::SignedUp { companions } => Ok(companions),
        Door::Waitlisted => Err(ScanError::StillWaitlisted),
        Door::NotSignedUp => Err(ScanError::NotSignedUp),
    }
}

/// The event a scanner's door screen opens on: the one staff chose last, while the scanner still
/// has it (an ended one too: a show may run late; the screen says it ended); else the first not
/// ended at `now` (on now, or next), not yesterday's; else the last. `events` are in the order
/// they start.
pub fn door_event(events: &[Event], chosen: Option<i64>, now: DateTime<Utc>) -> Option<&Event> {
    chosen
        .and_then(|id| events.iter().find(|e| e.id == id))
        .or_else(|| events.iter().find(|e| e.ends_at > now))
        .or(events.last())
}

/// The trust list's age, and whether it is past the limit the scanner warns at.
pub fn trust_age(
    synced_at: Option<DateTime<Utc>>,
    max_age_days: i64,
    now: DateTime<Utc>,
) -> (Option<chrono::Duration>, bool) {
    match synced_at {
        None => (None, true),
        Some(t) => {
            let age = now - t;
            (Some(age), age > chrono::Duration::days(max_age_days))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Role;
    use crate::passport::Kid;

    #[test]
    fn the_door_opens_on_the_chosen_event_else_the_one_on_now_or_next() {
        let at = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
        let event = |id: i64, starts: &str, ends: &str| Event {
            id,
            title: format!("event {id}"),
            title_en: None,
            place: "体育中心".into(),
            place_en: None,
            starts_at: at(starts),
            ends_at: at(ends),
            capacity: 10,
            union_id: None,
            points: 0,
        };
        let events = [
            event(1, "2026-12-05T06:00:00Z", "2026-12-05T08:00:00Z"),
            event(2, "2026-12-06T01:00:00Z", "2026-12-06T03:00:00Z"),
            event(3, "2026-12-07T01:00:00Z", "2026-12-07T03:00:00Z"),
        ];
        let id = |chosen, now| door_event(&events, chosen, at(now)).map(|e| e.id);
        // yesterday's has ended: today's, on now
        assert_eq!(id(None, "2026-12-06T02:00:00Z"), Some(2));
        // before today's starts: today's, next
        assert_eq!(id(None, "2026-12-06T00:00:00Z"), Some(2));
        // at its end it is over: the next
        assert_eq!(id(None, "2026-12-06T03:00:00Z"), Some(3));
        // all ended: the last
        assert_eq!(id(None, "2026-12-08T00:00:00Z"), Some(3));
        // the staff's choice holds, ended or not, while the scanner has it
        assert_eq!(id(Some(1), "2026-12-06T02:00:00Z"), Some(1));
        assert_eq!(id(Some(9), "2026-12-06T02:00:00Z"), Some(2));
        assert_eq!(door_event(&[], None, at("2026-12-06T02:00:00Z")), None);
    }

    fn bundle(checkins: i64) -> ScannerBundle {
        let at: DateTime<Utc> = "2026-11-20T02:00:00Z".parse().unwrap();
        ScannerBundle {
            generated_at: at,
            keys: vec![UnionKey {
                kid: "0a0b0c0d".into(),
                alg: "Ed25519".into(),
                public_key: "AAAA".into(),
                created_at: at,
            }],
            revoked_devices: vec![],
            revoked_members: vec![7],
            events: vec![],
            checkins: (1..=checkins)
                .map(|m| CheckIn {
                    event_id: 1,
                    member_id: m,
                    member_no: format!("M{m}"),
                    scanned_at: at,
                    scanner: Uuid::from_u128(1),
                    nonce: Uuid::from_u128(m as u128),
                    proof: None,
                    staff: None,
                })
                .collect(),
            conflicts: vec![],
            unions: vec![UnionName {
                id: 1,
                name: "工会".into(),
            }],
            roster: vec![],
            signup_events: vec![],
            signups: vec![],
            digests: Default::default(),
            unchanged: vec![],
        }
    }

    #[test]
    fn a_scanner_is_sent_only_the_parts_that_changed() {
        // first sync: nothing held, everything sent, every part's validator given
        let first = bundle(1000).for_scanner(&Default::default());
        assert_eq!(first.checkins.len(), 1000);
        assert!(first.unchanged.is_empty());
        assert_eq!(
            first.digests.keys().map(String::as_str).collect::<Vec<_>>(),
            {
                let mut p = BUNDLE_PARTS.to_vec();
                p.sort();
                p
            }
        );
        // the validators travel in the query and come back the same
        let have = parse_have(&format_have(&first.digests));
        assert_eq!(have, first.digests);
        // nothing new: every part left out, and the answer is small whatever the event's size
        let again = bundle(1000).for_scanner(&have);
        // the validators are of the whole parts, not of what was left to send
        assert_eq!(again.digests, first.digests);
        assert_eq!(again.unchanged.len(), BUNDLE_PARTS.len());
        assert!(again.checkins.is_empty() && again.keys.is_empty() && again.unions.is_empty());
        assert!(BUNDLE_PARTS.iter().all(|p| again.keeps(p)));
        assert!(serde_json::to_vec(&again).unwrap().len() < 1024);
        // one more check-in and a new revocation: those two parts travel, the rest does not
        let mut changed = bundle(1001);
        changed.revoked_members.push(8);
        let changed = changed.for_scanner(&have);
        assert_eq!(changed.checkins.len(), 1001);
        assert_eq!(changed.revoked_members, vec![7, 8]);
        assert!(changed.keeps("keys") && changed.keeps("people") && !changed.keeps("checkins"));
        assert!(!changed.keeps("revocations"));
    }

    #[test]
    fn a_malformed_have_is_ignored_and_the_part_sent_whole() {
        let d = "0123456789ABCDEF";
        let have = parse_have(&format!(
            "keys.{d},nonsense.{d},checkins.xyz,events,people.{d}{d},signups.{d}"
        ));
        assert_eq!(have.len(), 2, "{have:?}");
        assert_eq!(have["keys"], d.to_ascii_lowercase());
        assert!(have.contains_key("signups"));
        assert!(parse_have("").is_empty());
        // bounded: no more entries are read than there are parts
        let junk = vec!["x.y"; BUNDLE_PARTS.len()].join(",");
        assert!(parse_have(&format!("{junk},signups.{d}")).is_empty());
        // a part whose validator could not be read is sent whole
        let sent = bundle(1).for_scanner(&parse_have("checkins.xyz"));
        assert_eq!(sent.checkins.len(), 1);
        assert!(sent.unchanged.is_empty());
    }

    fn claims(union_id: u32) -> Claims {
        Claims {
            kid: Kid([0; 4]),
            member_id: 5,
            union_id,
            role: Role::Member,
            valid_from: "2026-11-01T00:00:00Z".parse().unwrap(),
            valid_until: "2026-12-01T00:00:00Z".parse().unwrap(),
            device_key: [0; 32],
            member_no: "M10005".into(),
        }
    }

    fn event(union_id: Option<i64>) -> Event {
        Event {
            id: 1,
            title: "职工运动会".into(),
            title_en: None,
            place_en: None,
            place: "体育中心".into(),
            starts_at: "2026-11-29T01:00:00Z".parse().unwrap(),
            ends_at: "2026-11-29T09:00:00Z".parse().unwrap(),
            capacity: 300,
            points: 0,
            union_id,
        }
    }

    #[test]
    fn the_door_is_read_from_whether_the_event_takes_sign_ups_and_the_members_one() {
        assert_eq!(Door::of(false, Some((true, 0))), Door::Open);
        assert_eq!(Door::of(true, Some((true, 1))), Door::Waitlisted);
        assert_eq!(
            Door::of(true, Some((false, 2))),
            Door::SignedUp { companions: 2 }
        );
        assert_eq!(Door::of(true, None), Door::NotSignedUp);
    }

    #[test]
    fn sign_ups_decide_the_door_of_an_event_that_takes_them() {
        let e = event(None);
        assert_eq!(admit(&claims(1), &e, None, Door::Open), Ok(0));
        assert_eq!(
            admit(&claims(1), &e, None, Door::SignedUp { companions: 2 }),
            Ok(2),
            "with two companions"
        );
        assert_eq!(
            admit(&claims(1), &e, None, Door::Waitlisted),
            Err(ScanError::StillWaitlisted)
        );
        assert_eq!(
            admit(&claims(1), &e, None, Door::NotSignedUp)
                .unwrap_err()
                .code(),
            ErrorCode::NotSignedUp
        );
        // eligibility is said first
        assert_eq!(
            admit(&claims(2), &event(Some(1)), None, Door::NotSignedUp),
            Err(ScanError::NotEligible)
        );
    }

    #[test]
    fn eligibility_and_duplicates() {
        assert_eq!(admit(&claims(1), &event(Some(1)), None, Door::Open), Ok(0));
        assert_eq!(admit(&claims(2), &event(None), None, Door::Open), Ok(0));
        assert_eq!(
            admit(&claims(2), &event(Some(1)), None, Door::Open),
            Err(ScanError::NotEligible)
        );
        let first = CheckIn {
            event_id: 1,
            member_id: 5,
            member_no: "M10005".into(),
            scanned_at: "2026-11-29T02:00:00Z".parse().unwrap(),
            scanner: Uuid::from_u128(9),
            nonce: Uuid::from_u128(10),
            proof: None,
            staff: None,
        };
        let e = admit(&claims(1), &event(Some(1)), Some(&first), Door::Open).unwrap_err();
        assert_eq!(e.code(), ErrorCode::AlreadyCheckedIn);
        assert_eq!(e, ScanError::AlreadyCheckedIn(Box::new(first)));
    }

    #[test]
    fn trust_list_age_warns_past_the_limit() {
        let now: DateTime<Utc> = "2026-11-29T08:00:00Z".parse().unwrap();
        assert_eq!(trust_age(None, 7, now), (None, true));
        let (age, warn) = trust_age(Some(now - chrono::Duration::days(7)), 7, now);
        assert_eq!((age.unwrap().num_days(), warn), (7, false));
        assert!(trust_age(Some(now - chrono::Duration::hours(169)), 7, now).1);
    }
}
