//! Scanner mode on a staff device: the synced trust list, events and check-in log, and the
//! offline check of a scanned passport. All decisions come from `unionpass_core`
//! ([`unionpass_core::passport`], [`unionpass_core::checkin`]); this module reads and writes the
//! store around them.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use unionpass_core::api::MutationOp;
use unionpass_core::checkin::{
    admit, trust_age, CheckIn, Conflict, Door, Event, ScanError, ScannerBundle,
};
use unionpass_core::passport::{self, Claims, TrustList};
use unionpass_core::view::{CheckInRow, ConflictRow, ScanOutcome, ScannerView};
use uuid::Uuid;

use crate::error::Result;
use crate::store::{enqueue_in, parse_ts, ts, Store};

const K_TRUST_SYNCED: &str = "trust_synced_at";
/// The validators of the scanner bundle's parts held here (JSON), sent as `have`.
const K_BUNDLE_DIGESTS: &str = "scanner_bundle_digests";
const K_TRUST_MAX_AGE: &str = "trust_max_age_days";
const K_EVENT: &str = "scanner_event";
/// The trust list's age the scanner warns past, unless the staff member chose another.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 7;
/// Rows in the check-in list.
const LOG_ROWS: i64 = 500;

fn short(id: &Uuid) -> String {
    id.simple().to_string()[..8].to_string()
}

fn checkin_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckIn> {
    let uuid = |i: usize| -> rusqlite::Result<Uuid> {
        r.get::<_, String>(i)?.parse().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    Ok(CheckIn {
        event_id: r.get(0)?,
        member_id: r.get(1)?,
        member_no: r.get(2)?,
        scanned_at: parse_ts(r.get(3)?)?,
        scanner: uuid(4)?,
        nonce: uuid(5)?,
        proof: None,
        // read where it is shown (`staff`, after the columns above)
        staff: None,
    })
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get(0)?,
        title: r.get(1)?,
        place: r.get(2)?,
        starts_at: parse_ts(r.get(3)?)?,
        ends_at: parse_ts(r.get(4)?)?,
        capacity: r.get(5)?,
        union_id: r.get(6)?,
        points: r.get(7)?,
        title_en: r.get(8)?,
        place_en: r.get(9)?,
    })
}

const EVENT_COLS: &str =
    "id, title, place, starts_at, ends_at, capacity, union_id, points, title_en, place_en";
const CHECKIN_COLS: &str = "event_id, member_id, member_no, scanned_at, scanner, nonce";

impl Store {
    /// Replace the trust list, events and server-side check-ins with a fresh bundle, in one
    /// transaction; check-ins made here and not yet uploaded stay.
    pub fn apply_bundle(&mut self, b: &ScannerBundle, now: DateTime<Utc>) -> Result<()> {
        let here = self.device_id()?.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // a part the server left out is current here: kept as it is
        let take = |part: &str| !b.keeps(part);
        if take("keys") {
            tx.execute_batch("DELETE FROM trust_keys;")?;
        }
        if take("revocations") {
            tx.execute_batch("DELETE FROM revoked_devices; DELETE FROM revoked_members;")?;
        }
        if take("events") {
            tx.execute_batch("DELETE FROM events; DELETE FROM scanner_signup_events;")?;
        }
        if take("checkins") {
            tx.execute_batch(
                "DELETE FROM checkin_conflicts; DELETE FROM checkins WHERE ours = 0;",
            )?;
        }
        if take("people") {
            tx.execute_batch("DELETE FROM scanner_unions; DELETE FROM scanner_roster;")?;
        }
        if take("signups") {
            tx.execute_batch("DELETE FROM scanner_signups;")?;
        }
        {
            let mut put = tx.prepare_cached(
                "INSERT OR IGNORE INTO scanner_signup_events(event_id) VALUES (?1)",
            )?;
            for e in &b.signup_events {
                put.execute([e])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO scanner_signups(event_id, member_id, companions, waitlisted)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for s in &b.signups {
                put.execute(params![s.event_id, s.member_id, s.companions, s.waitlisted])?;
            }
        }
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO scanner_unions(id, name) VALUES (?1, ?2)",
            )?;
            for u in &b.unions {
                put.execute(params![u.id, u.name])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO scanner_roster(member_id, name) VALUES (?1, ?2)",
            )?;
            for p in &b.roster {
                put.execute(params![p.member_id, p.name])?;
            }
        }
        for k in &b.keys {
            tx.execute(
                "INSERT OR REPLACE INTO trust_keys(kid, public_key, created_at) VALUES (?1, ?2, ?3)",
                params![k.kid, k.public_key, ts(k.created_at)],
            )?;
        }
        for d in &b.revoked_devices {
            tx.execute(
                "INSERT OR REPLACE INTO revoked_devices(device_kid, until) VALUES (?1, ?2)",
                params![d.device_kid, ts(d.until)],
            )?;
        }
        for m in &b.revoked_members {
            tx.execute(
                "INSERT OR IGNORE INTO revoked_members(member_id) VALUES (?1)",
                [m],
            )?;
        }
        for e in &b.events {
            tx.execute(
                &format!(
                    "INSERT INTO events({EVENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    e.id,
                    e.title,
                    e.place,
                    ts(e.starts_at),
                    ts(e.ends_at),
                    e.capacity,
                    e.union_id,
                    e.points,
                    e.title_en,
                    e.place_en
                ],
            )?;
        }
        for c in &b.checkins {
            // ours, or kept before the server named its staff: now confirmed as uploaded, by whom
            let known = tx.execute(
                "UPDATE checkins SET uploaded = 1, staff = ?2 WHERE nonce = ?1",
                params![c.nonce.to_string(), c.staff],
            )?;
            if known == 0 {
                // made on this device, but no longer in its log: held over a session the
                // server ended (`Store::wipe_member_data`), it is still this door's own
                tx.execute(
                    &format!(
                        "INSERT INTO checkins({CHECKIN_COLS}, ours, uploaded, staff)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5 = ?8, 1, ?7)"
                    ),
                    params![
                        c.event_id,
                        c.member_id,
                        c.member_no,
                        ts(c.scanned_at),
                        c.scanner.to_string(),
                        c.nonce.to_string(),
                        c.staff,
                        here
                    ],
                )?;
            }
        }
        for c in &b.conflicts {
            tx.execute(
                "INSERT OR REPLACE INTO checkin_conflicts(second_nonce, event_id, body) VALUES (?1, ?2, ?3)",
                params![
                    c.second.nonce.to_string(),
                    c.second.event_id,
                    serde_json::to_string(c).expect("serializes")
                ],
            )?;
        }
        crate::store::meta_set(&tx, K_TRUST_SYNCED, &ts(now))?;
        // the validators of what is now held, for the next request
        crate::store::meta_set(
            &tx,
            K_BUNDLE_DIGESTS,
            &serde_json::to_string(&b.digests).expect("serializes"),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The validators of the scanner bundle's parts held here (empty before the first bundle,
    /// or when this version cannot read them: then every part is asked for whole).
    pub fn bundle_digests(&self) -> Result<std::collections::BTreeMap<String, String>> {
        Ok(crate::store::meta_get(&self.conn, K_BUNDLE_DIGESTS)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    /// The part of the trust list one code needs: every union key, and whether its device or
    /// member is revoked (an indexed lookup each, not the whole list per scan). Revocations past
    /// their `until` no longer count.
    fn trust_for(&self, claims: &Claims, now: DateTime<Utc>) -> Result<TrustList> {
        let mut t = TrustList::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT public_key FROM trust_keys")?;
        for key in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let k = unionpass_core::api::UnionKey {
                kid: String::new(),
                alg: "Ed25519".into(),
                public_key: key?,
                created_at: now,
            };
            if let Some(vk) = k.verifying_key() {
                t.keys.push(vk);
            }
        }
        let device = claims.device_kid();
        let device_revoked: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM revoked_devices WHERE device_kid = ?1 AND until > ?2)",
            params![device.to_hex(), ts(now)],
            |r| r.get(0),
        )?;
        if device_revoked {
            t.revoked_devices.insert(device);
        }
        let member_revoked: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM revoked_members WHERE member_id = ?1)",
            [claims.member_id as i64],
            |r| r.get(0),
        )?;
        if member_revoked {
            t.revoked_members.insert(claims.member_id);
        }
        Ok(t)
    }

    pub fn trust_max_age_days(&self) -> Result<i64> {
        Ok(self
            .get(K_TRUST_MAX_AGE)?
            .and_then(|v| v.parse().ok())
            .filter(|d| *d >= 1)
            .unwrap_or(DEFAULT_MAX_AGE_DAYS))
    }

    pub fn set_trust_max_age_days(&self, days: i64) -> Result<()> {
        if !(1..=365).contains(&days) {
            return Err(crate::ClientError::InvalidInput("days"));
        }
        self.set(K_TRUST_MAX_AGE, &days.to_string())
    }

    pub fn event(&self, id: i64) -> Result<Option<Event>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {EVENT_COLS} FROM events WHERE id = ?1"),
                [id],
                event_row,
            )
            .optional()?)
    }

    /// Check a scanned code against the trust list and the check-in log, and record the check-in
    /// (log + outbox, in one transaction) when it passes. Every failure is an answer, not an
    /// error: the staff member sees why.
    pub fn scan(
        &mut self,
        event_id: i64,
        text: &str,
        scanner: Uuid,
        now: DateTime<Utc>,
    ) -> Result<ScanOutcome> {
        self.scan_as(event_id, text, scanner, now, false)
    }

    /// [`Store::scan`] for a member staff let in over the door list (see
    /// [`crate::Client::let_in`]), judged as at `scanned_at`: a refusal by the list alone (no
    /// place on it, still waiting) admits them, with no companions, and the check-in is marked
    /// so. Every other rule holds as for any scan.
    pub fn scan_by_hand(
        &mut self,
        event_id: i64,
        text: &str,
        scanner: Uuid,
        scanned_at: DateTime<Utc>,
    ) -> Result<ScanOutcome> {
        self.scan_as(event_id, text, scanner, scanned_at, true)
    }

    fn scan_as(
        &mut self,
        event_id: i64,
        text: &str,
        scanner: Uuid,
        now: DateTime<Utc>,
        by_hand: bool,
    ) -> Result<ScanOutcome> {
        let event = self
            .event(event_id)?
            .ok_or(crate::ClientError::InvalidInput("event"))?;
        // who the code says is standing there, in words: the name (own union's members) and union
        let who = |claims: &Claims| -> Result<(Option<String>, Option<String>)> {
            let name = self
                .conn
                .query_row(
                    "SELECT name FROM scanner_roster WHERE member_id = ?1",
                    [claims.member_id as i64],
                    |r| r.get(0),
                )
                .optional()?;
            let union_name = self
                .conn
                .query_row(
                    "SELECT name FROM scanner_unions WHERE id = ?1",
                    [claims.union_id as i64],
                    |r| r.get(0),
                )
                .optional()?;
            Ok((name, union_name))
        };
        let fail = |e: ScanError, member_no: Option<String>| {
            let (earlier_at, earlier_scanner, earlier_staff) = match &e {
                ScanError::AlreadyCheckedIn(c) if c.scanner != scanner => {
                    (Some(c.scanned_at), Some(short(&c.scanner)), c.staff.clone())
                }
                ScanError::AlreadyCheckedIn(c) => (Some(c.scanned_at), None, None),
                _ => (None, None, None),
            };
            tracing::info!(code = %e.code(), "scan refused");
            ScanOutcome {
                member_no,
                earlier_at,
                earlier_scanner,
                earlier_staff,
                ..ScanOutcome::refused(e.code(), now)
            }
        };
        let code = match passport::decode(text) {
            Ok(p) => p,
            Err(e) => return Ok(fail(e.into(), None)),
        };
        let trust = self.trust_for(&code.credential.claims, now)?;
        let claims = match code.verify(&trust, now) {
            Ok(c) => c,
            Err(e) => return Ok(fail(e.into(), None)),
        };
        let (name, union_name) = who(&claims)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // the first check-in, and whether staff let the member in by hand then
        let (earlier, earlier_by_hand) = tx
            .query_row(
                &format!(
                    "SELECT {CHECKIN_COLS}, by_hand, staff FROM checkins
                     WHERE event_id = ?1 AND member_id = ?2 ORDER BY scanned_at LIMIT 1"
                ),
                params![event_id, claims.member_id as i64],
                |r| {
                    let c = CheckIn {
                        staff: r.get(7)?,
                        ..checkin_row(r)?
                    };
                    Ok((c, r.get::<_, bool>(6)?))
                },
            )
            .optional()?
            .unzip();
        // an activity that takes sign-ups lets in those with a place (and their companions)
        let door = if tx
            .query_row(
                "SELECT 1 FROM scanner_signup_events WHERE event_id = ?1",
                [event_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some()
        {
            tx.query_row(
                "SELECT companions, waitlisted FROM scanner_signups WHERE event_id = ?1 AND member_id = ?2",
                params![event_id, claims.member_id as i64],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)),
            )
            .optional()?
            .map(|(companions, waiting)| Door::of(true, Some((waiting, companions))))
            .unwrap_or(Door::of(true, None))
        } else {
            Door::Open
        };
        let by_hand = by_hand && matches!(door, Door::NotSignedUp | Door::Waitlisted);
        let door = if by_hand {
            Door::SignedUp { companions: 0 }
        } else {
            door
        };
        let companions = match admit(&claims, &event, earlier.as_ref(), door) {
            Ok(n) => n,
            Err(e) => {
                // refused by the door list alone: staff may let the member in by hand
                let by_hand_code = matches!(e, ScanError::NotSignedUp | ScanError::StillWaitlisted)
                    .then(|| text.trim().to_string());
                // already in with a place: who came in with them, as the count has it (none
                // for a member let in by hand)
                let companions = match (&e, door) {
                    (ScanError::AlreadyCheckedIn(_), Door::SignedUp { companions })
                        if companions > 0 && earlier_by_hand != Some(true) =>
                    {
                        Some(companions)
                    }
                    _ => None,
                };
                return Ok(ScanOutcome {
                    name,
                    union_name,
                    by_hand_code,
                    companions,
                    ..fail(e, Some(claims.member_no))
                });
            }
        };
        let checkin = CheckIn {
            event_id,
            member_id: claims.member_id as i64,
            member_no: claims.member_no.clone(),
            scanned_at: now,
            scanner,
            nonce: Uuid::new_v4(),
            // the server checks the same code again before it records anything
            proof: Some(text.trim().to_string()),
            staff: None,
        };
        tx.execute(
            &format!(
                "INSERT INTO checkins({CHECKIN_COLS}, ours, uploaded, by_hand) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 0, ?7)"
            ),
            params![
                checkin.event_id,
                checkin.member_id,
                checkin.member_no,
                ts(checkin.scanned_at),
                checkin.scanner.to_string(),
                checkin.nonce.to_string(),
                by_hand
            ],
        )?;
        enqueue_in(&tx, MutationOp::CheckIn(checkin), now)?;
        tx.commit()?;
        tracing::info!(event_id, by_hand, "checked a member in");
        Ok(ScanOutcome {
            ok: true,
            code: None,
            member_no: Some(claims.member_no),
            at: now,
            earlier_at: None,
            earlier_scanner: None,
            earlier_staff: None,
            name,
            union_name,
            companions: (companions > 0).then_some(companions),
            by_hand,
            by_hand_code: None,
        })
    }

    /// The scanner screen for `event_id` (or the last chosen event, or the one on now or next:
    /// [`unionpass_core::checkin::door_event`]).
    pub fn scanner_view(&self, event_id: Option<i64>, now: DateTime<Utc>) -> Result<ScannerView> {
        let events: Vec<Event> = self
            .conn
            .prepare(&format!(
                "SELECT {EVENT_COLS} FROM events ORDER BY starts_at, id"
            ))?
            .query_map([], event_row)?
            .collect::<rusqlite::Result<_>>()?;
        if let Some(id) = event_id {
            self.set(K_EVENT, &id.to_string())?;
        }
        let chosen = event_id.or(self.get(K_EVENT)?.and_then(|v| v.parse().ok()));
        let event = unionpass_core::checkin::door_event(&events, chosen, now).cloned();
        let synced_at = self.get(K_TRUST_SYNCED)?.map(parse_ts).transpose()?;
        let max_age_days = self.trust_max_age_days()?;
        let (_, trust_stale) = trust_age(synced_at, max_age_days, now);
        let mut view = ScannerView {
            events,
            event: event.clone(),
            trust_synced_at: synced_at,
            trust_stale,
            max_age_days,
            checkins: Vec::new(),
            checked_in: 0,
            checked_in_companions: 0,
            checked_in_by_hand: 0,
            made_here: 0,
            made_here_waiting: 0,
            conflicts: Vec::new(),
        };
        let Some(event) = event else {
            return Ok(view);
        };
        // people through the door: each member once, and the companions of the sign-ups that
        // have some (read after every scan: only those sign-ups are looked up in the check-ins),
        // not of a member let in by hand (their list said no place: staff count those)
        view.checked_in = self.conn.query_row(
            "SELECT count(DISTINCT member_id) FROM checkins WHERE event_id = ?1 AND refused IS NULL",
            [event.id],
            |r| r.get(0),
        )?;
        view.checked_in_by_hand = self.conn.query_row(
            "SELECT count(DISTINCT member_id) FROM checkins c WHERE event_id = ?1 AND refused IS NULL
               AND by_hand = 1 AND uploaded = 0 AND NOT EXISTS (SELECT 1 FROM checkins o WHERE o.event_id = ?1
                 AND o.member_id = c.member_id AND o.refused IS NULL AND o.by_hand = 0)",
            [event.id],
            |r| r.get(0),
        )?;
        // a refused one was uploaded: the server's answer is its refusal
        (view.made_here, view.made_here_waiting) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(uploaded = 0 AND refused IS NULL), 0) FROM checkins
             WHERE event_id = ?1 AND ours = 1",
            [event.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        view.checked_in_companions = self.conn.query_row(
            "SELECT coalesce(sum(s.companions), 0) FROM scanner_signups s
             WHERE s.event_id = ?1 AND s.companions > 0 AND EXISTS (SELECT 1 FROM checkins c
               WHERE c.event_id = ?1 AND c.member_id = s.member_id AND c.refused IS NULL
                 AND c.by_hand = 0)",
            [event.id],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CHECKIN_COLS}, ours, uploaded, refused, by_hand, staff FROM checkins WHERE event_id = ?1
             ORDER BY scanned_at DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![event.id, LOG_ROWS], |r| {
            Ok((
                checkin_row(r)?,
                r.get::<_, bool>(6)?,
                r.get::<_, bool>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, bool>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })?;
        let mut name_of = self
            .conn
            .prepare_cached("SELECT name FROM scanner_roster WHERE member_id = ?1")?;
        for row in rows {
            let (c, ours, uploaded, refused, by_hand, staff) = row?;
            view.checkins.push(CheckInRow {
                name: name_of.query_row([c.member_id], |r| r.get(0)).optional()?,
                member_no: c.member_no,
                member_id: c.member_id,
                scanned_at: c.scanned_at,
                ours,
                uploaded,
                scanner_short: short(&c.scanner),
                staff,
                refused: refused
                    .and_then(|code| serde_json::from_value(serde_json::Value::String(code)).ok()),
                by_hand,
            });
        }
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM checkin_conflicts WHERE event_id = ?1")?;
        for body in stmt.query_map([event.id], |r| r.get::<_, String>(0))? {
            if let Ok(c) = serde_json::from_str::<Conflict>(&body?) {
                view.conflicts.push(ConflictRow {
                    member_no: c.first.member_no,
                    first_at: c.first.scanned_at,
                    first_scanner: short(&c.first.scanner),
                    first_staff: c.first.staff,
                    second_at: c.second.scanned_at,
                    second_scanner: short(&c.second.scanner),
                    second_staff: c.second.staff,
                });
            }
        }
        Ok(view)
    }
}
