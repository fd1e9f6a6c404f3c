//! Events, check-ins and the scanner's data on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use unionpass_core::api::MutationOutcome;
use unionpass_core::checkin::{
    CheckIn, Conflict, Door, DoorEntry, Event, Person, RevokedDevice, UnionName,
};

use super::{parse_ts, ts, uuid_col, SqliteStore};
use crate::store::rules::{accrual_audit, admit_checkin, event_english, CheckinFacts, EVENT_GRACE};
use crate::store::{Events, ProvenCheckin, ScannerData, StoreError};

/// Both English titles and both English places, the event's own and its activity's (from the
/// body), for [`event_english`] to choose.
const EVENT_COLS: &str =
    "id, title, place, starts_at, ends_at, capacity, union_id, points, title_en,
     (SELECT json_extract(body, '$.title_en') FROM activities WHERE event_id = events.id), place_en,
     (SELECT json_extract(body, '$.place_en') FROM activities WHERE event_id = events.id)";
const CHECKIN_COLS: &str = "event_id, member_id, member_no, scanned_at, scanner, nonce";
/// A kept check-in (`c`) as scanners get it, with the name of the staff member who uploaded it
/// (`FROM … c LEFT JOIN members s ON s.id = c.staff_id`).
const CHECKIN_READ: &str =
    "c.event_id, c.member_id, c.member_no, c.scanned_at, c.scanner, c.nonce, s.name";

fn event_of(r: &rusqlite::Row<'_>) -> Result<Event, StoreError> {
    Ok(Event {
        id: r.get(0)?,
        title: r.get(1)?,
        place: r.get(2)?,
        starts_at: parse_ts(&r.get::<_, String>(3)?)?,
        ends_at: parse_ts(&r.get::<_, String>(4)?)?,
        capacity: r.get(5)?,
        union_id: r.get(6)?,
        points: r.get(7)?,
        title_en: event_english(r.get(8)?, r.get(9)?),
        place_en: event_english(r.get(10)?, r.get(11)?),
    })
}

fn checkin_of(r: &rusqlite::Row<'_>) -> Result<CheckIn, StoreError> {
    Ok(CheckIn {
        event_id: r.get(0)?,
        member_id: r.get(1)?,
        member_no: r.get(2)?,
        scanned_at: parse_ts(&r.get::<_, String>(3)?)?,
        scanner: uuid_col(&r.get::<_, String>(4)?)?,
        nonce: uuid_col(&r.get::<_, String>(5)?)?,
        proof: None,
        staff: r.get(6)?,
    })
}

/// Every row of `stmt` run with `params`, read by `read`.
fn rows<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    read: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    let mut rs = stmt.query(params)?;
    while let Some(r) = rs.next()? {
        out.push(read(r)?);
    }
    Ok(out)
}

/// A member's sign-up for an event, as the door sees it: `Open` unless the event is an activity
/// that takes sign-ups.
fn door_of(tx: &Connection, event_id: i64, member_id: i64) -> Result<Door, StoreError> {
    let takes_signups: bool = tx
        .query_row(
            "SELECT seats IS NOT NULL FROM activities WHERE event_id = ?1",
            [event_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    if !takes_signups {
        return Ok(Door::Open);
    }
    let live: Option<(bool, i64)> = tx
        .query_row(
            "SELECT state = 'waitlisted', companions FROM signups
             WHERE activity_id = ?1 AND member_id = ?2 AND state <> 'cancelled'",
            params![event_id, member_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(Door::of(true, live))
}

/// The `check_in` mutation, inside the mutation's transaction. The rule is
/// `rules::admit_checkin`; the member is the one the proved passport names (not the one the
/// scanner says). The first check-in of a member at an event is kept, earns the event's points
/// (written to the audit log with the staff member and scanner), and a later one from another
/// scan is kept as a conflict.
pub(super) fn check_in(
    tx: &Connection,
    staff_id: i64,
    c: &CheckIn,
    proof: &ProvenCheckin,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let (claims, shown) = (&proof.claims, proof.shown.as_deref());
    let staff = super::accounts::role_and_union(tx, staff_id)?;
    let event = tx
        .query_row(
            "SELECT union_id, starts_at, ends_at FROM events WHERE id = ?1",
            [c.event_id],
            |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?
        .map(|(u, s, e)| Ok::<_, StoreError>((u, parse_ts(&s)?, parse_ts(&e)?)))
        .transpose()?;
    let (device_revoked_at, member) = match claims {
        Ok(cl) => {
            let revoked: Option<String> = tx
                .query_row(
                    "SELECT min(revoked_at) FROM devices WHERE device_kid = ?1",
                    [cl.device_kid().to_hex()],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let member: Option<Option<String>> = tx
                .query_row(
                    "SELECT suspended_at FROM members WHERE id = ?1",
                    [cl.member_id as i64],
                    |r| r.get(0),
                )
                .optional()?;
            (
                revoked.map(|t| parse_ts(&t)).transpose()?,
                member
                    .map(|m| m.map(|t| parse_ts(&t)).transpose())
                    .transpose()?,
            )
        }
        Err(_) => (None, None),
    };
    let door = match claims {
        Ok(cl) => door_of(tx, c.event_id, cl.member_id as i64)?,
        Err(_) => Door::Open,
    };
    let shown_elsewhere = match (claims, shown) {
        (Ok(_), Some(shown)) => tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM checkins WHERE shown = ?1 AND event_id <> ?2)",
            params![shown, c.event_id],
            |r| r.get::<_, bool>(0),
        )?,
        _ => false,
    };
    let facts = CheckinFacts {
        staff,
        event,
        device_revoked_at,
        member,
        door,
        shown_elsewhere,
    };
    let claims = match admit_checkin(&facts, claims, c.scanned_at, now) {
        Ok(claims) => claims,
        Err(refused) => return Ok(refused),
    };
    let member_id = claims.member_id as i64;
    let first = insert_checkin(
        tx,
        "checkins",
        c,
        (member_id, &claims.member_no),
        staff_id,
        shown,
        now,
    )?;
    // not the first check-in of this member here: a conflict, unless it is this very scan
    // delivered again under another mutation id
    if first == 0
        && !tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM checkins WHERE nonce = ?1)",
            [c.nonce.to_string()],
            |r| r.get::<_, bool>(0),
        )?
    {
        insert_checkin(
            tx,
            "checkin_conflicts",
            c,
            (member_id, &claims.member_no),
            staff_id,
            shown,
            now,
        )?;
    }
    if first == 1 {
        first_checkin(tx, staff_id, c, member_id, now)?;
    }
    Ok(MutationOutcome::Applied)
}

/// `c` as the scan of member `member_id` (`member_no`), uploaded by staff member `staff_id`
/// (`shown`: which showing of the passport it was, [`crate::store::Proven::shown`]),
/// into `table` (`checkins`, or `checkin_conflicts`); answers 0 when the member's check-in there
/// is already kept. What the scanner says of its staff (`c.staff`) is not read.
pub(super) fn insert_checkin(
    tx: &Connection,
    table: &str,
    c: &CheckIn,
    (member_id, member_no): (i64, &str),
    staff_id: i64,
    shown: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(tx.execute(
        &format!(
            "INSERT INTO {table}({CHECKIN_COLS}, received_at, proof, staff_id, shown)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING"
        ),
        params![
            c.event_id,
            member_id,
            member_no,
            ts(c.scanned_at),
            c.scanner.to_string(),
            c.nonce.to_string(),
            ts(now),
            c.proof,
            staff_id,
            shown
        ],
    )?)
}

/// What a member's first check-in at an event brings, just kept: their devices learn they
/// attended (feedback opens at the end), and it earns the event's points, credited to
/// `staff_id` in the audit log.
pub(super) fn first_checkin(
    tx: &Connection,
    staff_id: i64,
    c: &CheckIn,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::log_change(
        tx,
        Some(member_id),
        now,
        &unionpass_core::api::ChangeKind::Attended {
            activity_id: c.event_id,
            at: c.scanned_at,
        },
    )?;
    let points: i64 = tx.query_row(
        "SELECT points FROM events WHERE id = ?1",
        [c.event_id],
        |r| r.get(0),
    )?;
    if let Some(kind) = unionpass_core::points::activity_accrual(c.event_id, points, now) {
        super::points::append(tx, member_id, kind, now)?;
        tx.execute(
            "INSERT INTO audit_log(at, actor, action, subject, detail)
             VALUES (?1, ?2, 'checkin_points', ?3, ?4)",
            params![
                ts(now),
                staff_id,
                member_id,
                accrual_audit(staff_id, c, member_id, points).to_string()
            ],
        )?;
    }
    Ok(())
}

#[async_trait]
impl Events for SqliteStore {
    async fn create_event(&self, e: Event, now: DateTime<Utc>) -> Result<Event, StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO events(title, place, starts_at, ends_at, capacity, union_id, created_at, points, title_en, place_en)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![e.title, e.place, ts(e.starts_at), ts(e.ends_at), e.capacity, e.union_id, ts(now), e.points, e.title_en, e.place_en],
            )?;
            Ok(Event { id: c.last_insert_rowid(), ..e })
        })
        .await
    }

    async fn events(&self) -> Result<Vec<Event>, StoreError> {
        self.with_read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events ORDER BY starts_at, id"
            ))?;
            rows(&mut stmt, [], event_of)
        })
        .await
    }

    async fn scanner_data(
        &self,
        staff_member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<ScannerData, StoreError> {
        self.with_read(move |c| {
            let union_id: i64 = c.query_row(
                "SELECT union_id FROM members WHERE id = ?1",
                [staff_member_id],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE ends_at > ?1 AND (union_id IS NULL OR union_id = ?2)
                 ORDER BY starts_at, id"
            ))?;
            let events = rows(&mut stmt, params![ts(now - EVENT_GRACE), union_id], event_of)?;
            let mut data = ScannerData {
                events,
                ..Default::default()
            };
            let mut first = c.prepare(&format!(
                "SELECT {CHECKIN_READ} FROM checkins c LEFT JOIN members s ON s.id = c.staff_id
                 WHERE c.event_id = ?1 ORDER BY c.scanned_at, c.nonce"
            ))?;
            let mut later = c.prepare(&format!(
                "SELECT {CHECKIN_READ} FROM checkin_conflicts c LEFT JOIN members s ON s.id = c.staff_id
                 WHERE c.event_id = ?1 ORDER BY c.id"
            ))?;
            for e in &data.events {
                let firsts = rows(&mut first, [e.id], checkin_of)?;
                for second in rows(&mut later, [e.id], checkin_of)? {
                    if let Some(f) = firsts.iter().find(|f| f.member_id == second.member_id) {
                        data.conflicts.push(Conflict {
                            first: f.clone(),
                            second,
                        });
                    }
                }
                data.checkins.extend(firsts);
            }
            let mut stmt = c.prepare(
                "SELECT device_kid, valid_until FROM devices
                 WHERE revoked_at IS NOT NULL AND valid_until > ?1 ORDER BY id",
            )?;
            data.revoked_devices = rows(&mut stmt, [ts(now)], |r| {
                Ok(RevokedDevice {
                    device_kid: r.get(0)?,
                    until: parse_ts(&r.get::<_, String>(1)?)?,
                })
            })?;
            let mut stmt =
                c.prepare("SELECT id FROM members WHERE suspended_at IS NOT NULL ORDER BY id")?;
            data.revoked_members = rows(&mut stmt, [], |r| Ok(r.get(0)?))?;
            let mut stmt = c.prepare("SELECT id, name FROM unions ORDER BY id")?;
            data.unions = rows(&mut stmt, [], |r| {
                Ok(UnionName {
                    id: r.get(0)?,
                    name: r.get(1)?,
                })
            })?;
            let mut stmt = c.prepare(
                "SELECT id, name FROM members WHERE union_id = ?1 AND suspended_at IS NULL ORDER BY id",
            )?;
            data.roster = rows(&mut stmt, [union_id], |r| {
                Ok(Person {
                    member_id: r.get(0)?,
                    name: r.get(1)?,
                })
            })?;
            // the events that take sign-ups, and who has a place or waits
            let mut takes = c.prepare_cached(
                "SELECT seats IS NOT NULL FROM activities WHERE event_id = ?1",
            )?;
            let mut live = c.prepare_cached(
                "SELECT member_id, companions, state = 'waitlisted' FROM signups
                 WHERE activity_id = ?1 AND state <> 'cancelled' ORDER BY id",
            )?;
            for e in &data.events {
                let signups: bool = takes
                    .query_row([e.id], |r| r.get(0))
                    .optional()?
                    .unwrap_or(false);
                if !signups {
                    continue;
                }
                data.signup_events.push(e.id);
                let event_id = e.id;
                data.signups.extend(rows(&mut live, [e.id], |r| {
                    Ok(DoorEntry {
                        event_id,
                        member_id: r.get(0)?,
                        companions: r.get(1)?,
                        waitlisted: r.get(2)?,
                    })
                })?);
            }
            Ok(data)
        })
        .await
    }
}
