//! Events, check-ins and the scanner's data on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use unionpass_core::api::MutationOutcome;
use unionpass_core::checkin::{CheckIn, Conflict, Event, RevokedDevice};

use super::{parse_ts, ts, uuid_col, SqliteStore};
use crate::store::rules::{checkin_refusal, EVENT_GRACE};
use crate::store::{Events, ScannerData, StoreError};

const EVENT_COLS: &str = "id, title, place, starts_at, ends_at, capacity, union_id, points";
const CHECKIN_COLS: &str = "event_id, member_id, member_no, scanned_at, scanner, nonce";

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

/// The `check_in` mutation, inside the mutation's transaction: staff of the event's union (or a
/// district-wide event) only; the first check-in of a member at an event is kept and earns the
/// event's points, a later one from another scan is kept as a conflict.
pub(super) fn check_in(
    tx: &Connection,
    member_id: i64,
    c: &CheckIn,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let staff = super::accounts::role_and_union(tx, member_id)?;
    let event_union: Option<Option<i64>> = tx
        .query_row(
            "SELECT union_id FROM events WHERE id = ?1",
            [c.event_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(refused) = checkin_refusal(staff, event_union) {
        return Ok(refused);
    }
    let row = params![
        c.event_id,
        c.member_id,
        c.member_no,
        ts(c.scanned_at),
        c.scanner.to_string(),
        c.nonce.to_string(),
        ts(now)
    ];
    let insert = |table: &str| {
        format!(
            "INSERT INTO {table}({CHECKIN_COLS}, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
        )
    };
    let first = tx.execute(&insert("checkins"), row)?;
    // not the first check-in of this member here: a conflict, unless it is this very scan
    // delivered again under another mutation id
    if first == 0
        && !tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM checkins WHERE nonce = ?1)",
            [c.nonce.to_string()],
            |r| r.get::<_, bool>(0),
        )?
    {
        tx.execute(&insert("checkin_conflicts"), row)?;
    }
    if first == 1 {
        // the member's first check-in here earns the event's points
        let (points, known): (i64, bool) = tx.query_row(
            "SELECT e.points, EXISTS(SELECT 1 FROM members WHERE id = ?2)
             FROM events e WHERE e.id = ?1",
            params![c.event_id, c.member_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let (Some(kind), true) = (
            unionpass_core::points::activity_accrual(c.event_id, points, now),
            known,
        ) {
            super::points::append(tx, c.member_id, kind, now)?;
        }
    }
    Ok(MutationOutcome::Applied)
}

#[async_trait]
impl Events for SqliteStore {
    async fn create_event(&self, e: Event, now: DateTime<Utc>) -> Result<Event, StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO events(title, place, starts_at, ends_at, capacity, union_id, created_at, points)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![e.title, e.place, ts(e.starts_at), ts(e.ends_at), e.capacity, e.union_id, ts(now), e.points],
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
                "SELECT {CHECKIN_COLS} FROM checkins WHERE event_id = ?1 ORDER BY scanned_at"
            ))?;
            let mut later = c.prepare(&format!(
                "SELECT {CHECKIN_COLS} FROM checkin_conflicts WHERE event_id = ?1 ORDER BY id"
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
            Ok(data)
        })
        .await
    }
}
