//! Events, check-ins and the scanner's data on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use unionpass_core::api::MutationOutcome;
use unionpass_core::checkin::{
    CheckIn, Conflict, Door, DoorEntry, Event, Person, RevokedDevice, UnionName,
};

use super::PgStore;
use crate::store::rules::{accrual_audit, admit_checkin, event_english, CheckinFacts, EVENT_GRACE};
use crate::store::{Events, ProvenCheckin, ScannerData, StoreError};

/// Both English titles and both English places, the event's own and its activity's (from the
/// body), for [`event_english`] to choose.
const EVENT_COLS: &str =
    "id, title, place, starts_at, ends_at, capacity, union_id, points, title_en,
     (SELECT body->>'title_en' FROM activities WHERE event_id = events.id), place_en,
     (SELECT body->>'place_en' FROM activities WHERE event_id = events.id)";
const CHECKIN_COLS: &str = "event_id, member_id, member_no, scanned_at, scanner, nonce";
/// A kept check-in (`c`) as scanners get it, with the name of the staff member who uploaded it
/// (`FROM … c LEFT JOIN members s ON s.id = c.staff_id`).
const CHECKIN_READ: &str =
    "c.event_id, c.member_id, c.member_no, c.scanned_at, c.scanner, c.nonce, s.name";

fn event_of(r: &tokio_postgres::Row) -> Event {
    Event {
        id: r.get(0),
        title: r.get(1),
        place: r.get(2),
        starts_at: r.get(3),
        ends_at: r.get(4),
        capacity: r.get(5),
        union_id: r.get(6),
        points: r.get(7),
        title_en: event_english(r.get(8), r.get(9)),
        place_en: event_english(r.get(10), r.get(11)),
    }
}

fn checkin_of(r: &tokio_postgres::Row) -> CheckIn {
    CheckIn {
        event_id: r.get(0),
        member_id: r.get(1),
        member_no: r.get(2),
        scanned_at: r.get(3),
        scanner: r.get(4),
        nonce: r.get(5),
        proof: None,
        staff: r.get(6),
    }
}

/// The `check_in` mutation, inside the mutation's transaction. The rule is
/// `rules::admit_checkin`; the member is the one the proved passport names (not the one the
/// scanner says). The first check-in of a member at an event is kept, earns the event's points
/// (written to the audit log with the staff member and scanner), and a later one from another
/// scan is kept as a conflict.
/// A member's sign-up for an event, as the door sees it: `Open` unless the event is an activity
/// that takes sign-ups.
async fn door_of(
    tx: &impl GenericClient,
    event_id: i64,
    member_id: i64,
) -> Result<Door, StoreError> {
    let takes: Option<bool> = tx
        .query_opt(
            "SELECT seats IS NOT NULL FROM activities WHERE event_id = $1",
            &[&event_id],
        )
        .await?
        .map(|r| r.get(0));
    if takes != Some(true) {
        return Ok(Door::Open);
    }
    let live: Option<(bool, i64)> = tx
        .query_opt(
            "SELECT state = 'waitlisted', companions FROM signups
             WHERE activity_id = $1 AND member_id = $2 AND state <> 'cancelled'",
            &[&event_id, &member_id],
        )
        .await?
        .map(|r| (r.get(0), r.get(1)));
    Ok(Door::of(true, live))
}

pub(super) async fn check_in(
    tx: &deadpool_postgres::Transaction<'_>,
    staff_id: i64,
    c: &CheckIn,
    proof: &ProvenCheckin,
    now: DateTime<Utc>,
) -> Result<MutationOutcome, StoreError> {
    let (claims, shown) = (&proof.claims, proof.shown.as_deref());
    let staff = super::accounts::role_and_union(tx, staff_id).await?;
    let event = tx
        .query_opt(
            "SELECT union_id, starts_at, ends_at FROM events WHERE id = $1",
            &[&c.event_id],
        )
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2)));
    let (device_revoked_at, member) = match claims {
        Ok(cl) => {
            let revoked: Option<DateTime<Utc>> = tx
                .query_one(
                    "SELECT min(revoked_at) FROM devices WHERE device_kid = $1",
                    &[&cl.device_kid().to_hex()],
                )
                .await?
                .get(0);
            let member: Option<Option<DateTime<Utc>>> = tx
                .query_opt(
                    "SELECT suspended_at FROM members WHERE id = $1",
                    &[&(cl.member_id as i64)],
                )
                .await?
                .map(|r| r.get(0));
            (revoked, member)
        }
        Err(_) => (None, None),
    };
    let door = match claims {
        Ok(cl) => door_of(tx, c.event_id, cl.member_id as i64).await?,
        Err(_) => Door::Open,
    };
    let shown_elsewhere = match (claims, shown) {
        (Ok(_), Some(shown)) => {
            // one showing's uploads one at a time, so two doors' uploads of the same code
            // cannot both find the other not kept yet
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&shown])
                .await?;
            tx.query_one(
                "SELECT EXISTS(SELECT 1 FROM checkins WHERE shown = $1 AND event_id <> $2)",
                &[&shown, &c.event_id],
            )
            .await?
            .get(0)
        }
        _ => false,
    };
    let facts = CheckinFacts {
        door,
        staff,
        event,
        device_revoked_at,
        member,
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
    )
    .await?;
    // not the first check-in of this member here: a conflict, unless it is this very scan
    // delivered again under another mutation id
    if first == 0
        && tx
            .query_opt("SELECT 1 FROM checkins WHERE nonce = $1", &[&c.nonce])
            .await?
            .is_none()
    {
        insert_checkin(
            tx,
            "checkin_conflicts",
            c,
            (member_id, &claims.member_no),
            staff_id,
            shown,
            now,
        )
        .await?;
    }
    if first == 1 {
        first_checkin(tx, staff_id, c, member_id, now).await?;
    }
    Ok(MutationOutcome::Applied)
}

/// `c` as the scan of member `member_id` (`member_no`), uploaded by staff member `staff_id`
/// (`shown`: which showing of the passport it was, [`crate::store::Proven::shown`]),
/// into `table` (`checkins`, or `checkin_conflicts`); answers 0 when the member's check-in there
/// is already kept. What the scanner says of its staff (`c.staff`) is not read.
pub(super) async fn insert_checkin(
    tx: &impl GenericClient,
    table: &str,
    c: &CheckIn,
    (member_id, member_no): (i64, &str),
    staff_id: i64,
    shown: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(tx
        .execute(
            &format!(
                "INSERT INTO {table}({CHECKIN_COLS}, received_at, proof, staff_id, shown)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
            ),
            &[
                &c.event_id,
                &member_id,
                &member_no,
                &c.scanned_at,
                &c.scanner,
                &c.nonce,
                &now,
                &c.proof,
                &staff_id,
                &shown,
            ],
        )
        .await?)
}

/// What a member's first check-in at an event brings, just kept: their devices learn they
/// attended (feedback opens at the end), and it earns the event's points, credited to
/// `staff_id` in the audit log.
pub(super) async fn first_checkin(
    tx: &impl GenericClient,
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
    )
    .await?;
    let points: i64 = tx
        .query_one("SELECT points FROM events WHERE id = $1", &[&c.event_id])
        .await?
        .get(0);
    if let Some(kind) = unionpass_core::points::activity_accrual(c.event_id, points, now) {
        super::points::lock_member(tx, member_id).await?;
        super::points::append(tx, member_id, kind, now).await?;
        tx.execute(
            "INSERT INTO audit_log(at, actor, action, subject, detail)
             VALUES ($1, $2, 'checkin_points', $3, $4)",
            &[
                &now,
                &staff_id,
                &member_id,
                &accrual_audit(staff_id, c, member_id, points),
            ],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl Events for PgStore {
    async fn create_event(&self, e: Event, now: DateTime<Utc>) -> Result<Event, StoreError> {
        let client = self.pool.get().await?;
        let id: i64 = client
            .query_one(
                "INSERT INTO events(title, place, starts_at, ends_at, capacity, union_id, created_at, points, title_en, place_en)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[&e.title, &e.place, &e.starts_at, &e.ends_at, &e.capacity, &e.union_id, &now, &e.points, &e.title_en, &e.place_en],
            )
            .await?
            .get(0);
        Ok(Event { id, ..e })
    }

    async fn events(&self) -> Result<Vec<Event>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {EVENT_COLS} FROM events ORDER BY starts_at, id"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(event_of).collect())
    }

    async fn scanner_data(
        &self,
        staff_member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<ScannerData, StoreError> {
        let client = self.pool.get().await?;
        let union_id: i64 = client
            .query_one(
                "SELECT union_id FROM members WHERE id = $1",
                &[&staff_member_id],
            )
            .await?
            .get(0);
        let rows = client
            .query(
                &format!(
                    "SELECT {EVENT_COLS} FROM events WHERE ends_at > $1 AND (union_id IS NULL OR union_id = $2)
                     ORDER BY starts_at, id"
                ),
                &[&(now - EVENT_GRACE), &union_id],
            )
            .await?;
        let mut data = ScannerData {
            events: rows.iter().map(event_of).collect(),
            ..Default::default()
        };
        let ids: Vec<i64> = data.events.iter().map(|e| e.id).collect();
        let firsts: Vec<CheckIn> = client
            .query(
                &format!(
                    "SELECT {CHECKIN_READ} FROM checkins c LEFT JOIN members s ON s.id = c.staff_id
                     WHERE c.event_id = ANY($1) ORDER BY c.event_id, c.scanned_at, c.nonce"
                ),
                &[&ids],
            )
            .await?
            .iter()
            .map(checkin_of)
            .collect();
        let later = client
            .query(
                &format!(
                    "SELECT {CHECKIN_READ} FROM checkin_conflicts c LEFT JOIN members s ON s.id = c.staff_id
                     WHERE c.event_id = ANY($1) ORDER BY c.id"
                ),
                &[&ids],
            )
            .await?;
        for r in &later {
            let second = checkin_of(r);
            if let Some(f) = firsts
                .iter()
                .find(|f| f.event_id == second.event_id && f.member_id == second.member_id)
            {
                data.conflicts.push(Conflict {
                    first: f.clone(),
                    second,
                });
            }
        }
        data.checkins = firsts;
        data.revoked_devices = client
            .query(
                "SELECT device_kid, valid_until FROM devices
                 WHERE revoked_at IS NOT NULL AND valid_until > $1 ORDER BY id",
                &[&now],
            )
            .await?
            .iter()
            .map(|r| RevokedDevice {
                device_kid: r.get(0),
                until: r.get(1),
            })
            .collect();
        data.revoked_members = client
            .query(
                "SELECT id FROM members WHERE suspended_at IS NOT NULL ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        data.unions = client
            .query("SELECT id, name FROM unions ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| UnionName {
                id: r.get(0),
                name: r.get(1),
            })
            .collect();
        for e in &data.events {
            let takes: Option<bool> = client
                .query_opt(
                    "SELECT seats IS NOT NULL FROM activities WHERE event_id = $1",
                    &[&e.id],
                )
                .await?
                .map(|r| r.get(0));
            if takes != Some(true) {
                continue;
            }
            data.signup_events.push(e.id);
            for r in client
                .query(
                    "SELECT member_id, companions, state = 'waitlisted' FROM signups
                     WHERE activity_id = $1 AND state <> 'cancelled' ORDER BY id",
                    &[&e.id],
                )
                .await?
            {
                data.signups.push(DoorEntry {
                    event_id: e.id,
                    member_id: r.get(0),
                    companions: r.get(1),
                    waitlisted: r.get(2),
                });
            }
        }
        data.roster = client
            .query(
                "SELECT id, name FROM members WHERE union_id = $1 AND suspended_at IS NULL ORDER BY id",
                &[&union_id],
            )
            .await?
            .iter()
            .map(|r| Person {
                member_id: r.get(0),
                name: r.get(1),
            })
            .collect();
        Ok(data)
    }
}
