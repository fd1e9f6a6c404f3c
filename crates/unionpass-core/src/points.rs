//! The points ledger's rules, as pure functions over its entries: what a member holds, what is
//! pending, what expires when, and how a spend is taken from the batches. The server is the
//! authority (it writes entries); the app folds the same entries to show them offline.
//!
//! - Every **accrual** is a batch with its own expiry. A batch is usable up to the second before
//!   `expires_at`; at `expires_at` whatever is left of it has expired.
//! - A **hold** reserves points for a redemption, taken from the unexpired batches that expire
//!   soonest (ties: accrual order), so points about to lapse are used rather than lost. Spends
//!   before [`soonest_expiring_from`] took the oldest-accrued batches first; folding keeps that
//!   rule for them, so no balance already shown changes. A **settle** makes the hold final. A **refund** gives the held points back
//!   to the batches they came from; points that went back to a batch that has since expired are
//!   expired too (a refund never extends an expiry).
//! - An **adjustment** by staff adds a batch (positive, with an expiry) or removes points as a
//!   spend does (negative).
//! - **Expiration** entries are written by the server for the history; the balance does not depend
//!   on them (expiry follows from `now`), so a late expiration job changes nothing shown.
//!
//! Points are whole numbers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::{YearMonth, Zone};

/// One ledger entry. Entries are append-only and applied in `seq` order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// Points earned (check-in, campaign, staff grant): a new batch.
    Accrual {
        points: i64,
        expires_at: DateTime<Utc>,
        /// What earned them, for the history ("activity:12", "grant").
        source: String,
    },
    /// Points reserved for a redemption.
    Hold { redemption: Uuid, points: i64 },
    /// The redemption was fulfilled: the held points are spent.
    Settle { redemption: Uuid },
    /// The redemption failed or was cancelled: the held points go back.
    Refund { redemption: Uuid, reason: String },
    /// A correction by staff: positive adds a batch (with `expires_at`), negative removes points.
    Adjustment {
        points: i64,
        expires_at: Option<DateTime<Utc>>,
        reason: String,
    },
    /// The server recorded that a batch expired (history only).
    Expiration { batch: i64, points: i64 },
}

impl EntryKind {
    /// When the batch this entry creates expires (accruals, and positive adjustments that
    /// expire); `None` for entries that create no batch.
    pub fn new_batch_expiry(&self) -> Option<DateTime<Utc>> {
        match self {
            EntryKind::Accrual { expires_at, .. } => Some(*expires_at),
            EntryKind::Adjustment {
                points, expires_at, ..
            } if *points > 0 => *expires_at,
            _ => None,
        }
    }
}

/// How long points earned at an activity stay usable.
pub const ACTIVITY_POINTS_VALID: chrono::Duration = chrono::Duration::days(365);

/// The accrual for a member's first check-in at event `event_id` worth `points` (none for an
/// event worth nothing).
pub fn activity_accrual(event_id: i64, points: i64, now: DateTime<Utc>) -> Option<EntryKind> {
    (points > 0).then(|| EntryKind::Accrual {
        points,
        expires_at: now + ACTIVITY_POINTS_VALID,
        source: format!("activity:{event_id}"),
    })
}

/// A batch of earned points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The `seq` of the entry that created it.
    pub id: i64,
    pub earned: i64,
    /// Not spent, not held (may be expired: see [`Batch::usable`]).
    pub free: i64,
    pub expires_at: DateTime<Utc>,
    /// Points of it already written down as expired (by expiration entries).
    #[serde(default)]
    pub recorded_expired: i64,
}

impl Batch {
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// Points taken from one batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub batch: i64,
    pub points: i64,
}

/// An open (not settled, not refunded) hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHold {
    pub redemption: Uuid,
    pub points: i64,
    pub at: DateTime<Utc>,
    pub from: Vec<Allocation>,
}

/// The ledger folded at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub batches: Vec<Batch>,
    pub holds: Vec<OpenHold>,
    /// Spent for good (settled redemptions, negative adjustments).
    pub spent: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("not enough points: {available} available, {wanted} wanted")]
    Insufficient { available: i64, wanted: i64 },
    #[error("points must be positive")]
    NotPositive,
    #[error("redemption {0} already has a hold")]
    DuplicateHold(Uuid),
    #[error("redemption {0} has no open hold")]
    NoOpenHold(Uuid),
    #[error("entry {0} is out of order")]
    OutOfOrder(i64),
}

/// The amounts a member sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Held and free points in unexpired batches.
    pub posted: i64,
    /// What can be spent now: posted minus pending.
    pub available: i64,
    /// Held for redemptions not settled yet.
    pub pending: i64,
}

/// When spends began to take the soonest-expiring batches first (2026-12-01T00:00:00Z); spends
/// before it are folded as they were made, oldest accrued first.
pub fn soonest_expiring_from() -> DateTime<Utc> {
    DateTime::from_timestamp(1_796_083_200, 0).expect("a valid instant")
}

impl Ledger {
    /// Apply entries in order. Holds, settles and refunds are checked as the server checks them,
    /// so a ledger that folds without error is a consistent one.
    pub fn fold<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Result<Ledger, LedgerError> {
        let mut l = Ledger::default();
        let mut last = i64::MIN;
        for e in entries {
            if e.seq <= last {
                return Err(LedgerError::OutOfOrder(e.seq));
            }
            last = e.seq;
            l.apply(e)?;
        }
        Ok(l)
    }

    /// Apply one entry (at its own time).
    pub fn apply(&mut self, e: &Entry) -> Result<(), LedgerError> {
        match &e.kind {
            EntryKind::Accrual {
                points, expires_at, ..
            } => self.add_batch(e.seq, *points, *expires_at),
            EntryKind::Adjustment {
                points, expires_at, ..
            } if *points > 0 => self.add_batch(
                e.seq,
                *points,
                expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
            EntryKind::Adjustment { points, .. } => {
                let from = self.take(-*points, e.at)?;
                self.spent += from.iter().map(|a| a.points).sum::<i64>();
                Ok(())
            }
            EntryKind::Hold { redemption, points } => {
                if self.holds.iter().any(|h| h.redemption == *redemption) {
                    return Err(LedgerError::DuplicateHold(*redemption));
                }
                let from = self.take(*points, e.at)?;
                self.holds.push(OpenHold {
                    redemption: *redemption,
                    points: *points,
                    at: e.at,
                    from,
                });
                Ok(())
            }
            EntryKind::Settle { redemption } => {
                let h = self.close(*redemption)?;
                self.spent += h.points;
                Ok(())
            }
            EntryKind::Refund { redemption, .. } => {
                let h = self.close(*redemption)?;
                for a in h.from {
                    if let Some(b) = self.batches.iter_mut().find(|b| b.id == a.batch) {
                        b.free += a.points;
                    }
                }
                Ok(())
            }
            EntryKind::Expiration { batch, points } => {
                if let Some(b) = self.batches.iter_mut().find(|b| b.id == *batch) {
                    b.recorded_expired += points;
                }
                Ok(())
            }
        }
    }

    fn add_batch(
        &mut self,
        id: i64,
        points: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        if points <= 0 {
            return Err(LedgerError::NotPositive);
        }
        self.batches.push(Batch {
            id,
            earned: points,
            free: points,
            expires_at,
            recorded_expired: 0,
        });
        Ok(())
    }

    fn close(&mut self, redemption: Uuid) -> Result<OpenHold, LedgerError> {
        let i = self
            .holds
            .iter()
            .position(|h| h.redemption == redemption)
            .ok_or(LedgerError::NoOpenHold(redemption))?;
        Ok(self.holds.remove(i))
    }

    /// Take `points` from usable batches, in the spending order at `now`.
    fn take(&mut self, points: i64, now: DateTime<Utc>) -> Result<Vec<Allocation>, LedgerError> {
        let from = self.plan(points, now)?;
        for a in &from {
            if let Some(b) = self.batches.iter_mut().find(|b| b.id == a.batch) {
                b.free -= a.points;
            }
        }
        Ok(from)
    }

    /// Which batches a spend of `points` at `now` would take from, without taking: soonest
    /// expiring first (from [`soonest_expiring_from`]; before it, oldest accrued first).
    pub fn plan(&self, points: i64, now: DateTime<Utc>) -> Result<Vec<Allocation>, LedgerError> {
        if points <= 0 {
            return Err(LedgerError::NotPositive);
        }
        let available = self.balance(now).available;
        if available < points {
            return Err(LedgerError::Insufficient {
                available,
                wanted: points,
            });
        }
        let mut usable: Vec<&Batch> = self
            .batches
            .iter()
            .filter(|b| b.usable(now) && b.free > 0)
            .collect();
        if now >= soonest_expiring_from() {
            // stable: batches expiring at the same instant keep their accrual order
            usable.sort_by_key(|b| b.expires_at);
        }
        let mut left = points;
        let mut from = Vec::new();
        for b in usable {
            let n = left.min(b.free);
            from.push(Allocation {
                batch: b.id,
                points: n,
            });
            left -= n;
            if left == 0 {
                break;
            }
        }
        Ok(from)
    }

    /// Expiration entries the server still has to write at `now`: for each expired batch, the
    /// free points not yet written down as expired (a refund into a batch that had expired adds
    /// some after the first record).
    pub fn unrecorded_expirations(&self, now: DateTime<Utc>) -> Vec<EntryKind> {
        self.batches
            .iter()
            .filter(|b| !b.usable(now) && b.free > b.recorded_expired)
            .map(|b| EntryKind::Expiration {
                batch: b.id,
                points: b.free - b.recorded_expired,
            })
            .collect()
    }

    pub fn balance(&self, now: DateTime<Utc>) -> Balance {
        let free: i64 = self
            .batches
            .iter()
            .filter(|b| b.usable(now))
            .map(|b| b.free)
            .sum();
        let pending: i64 = self.holds.iter().map(|h| h.points).sum();
        Balance {
            posted: free + pending,
            available: free,
            pending,
        }
    }

    /// Free points that expire in each of the 12 months starting with `now`'s month (in `zone`).
    /// Held points are not listed: they are spoken for.
    /// The soonest expiry within `within` of `now`: when it is, and the free points that lapse
    /// on that day (in `zone`), for the warning on the balance.
    pub fn expiring_soon(
        &self,
        now: DateTime<Utc>,
        within: chrono::Duration,
        zone: Zone,
    ) -> Option<(DateTime<Utc>, i64)> {
        let usable = || self.batches.iter().filter(|b| b.usable(now) && b.free > 0);
        let first = usable().map(|b| b.expires_at).min()?;
        if first - now > within {
            return None;
        }
        let day = |t: DateTime<Utc>| t.with_timezone(&zone.offset()).date_naive();
        let points = usable()
            .filter(|b| day(b.expires_at) == day(first))
            .map(|b| b.free)
            .sum();
        Some((first, points))
    }

    pub fn expiry_schedule(&self, now: DateTime<Utc>, zone: Zone) -> Vec<(YearMonth, i64)> {
        let first = YearMonth::of(now, zone);
        let mut months = Vec::with_capacity(12);
        let mut m = first;
        for _ in 0..12 {
            months.push((m, 0));
            m = m.next();
        }
        for b in self.batches.iter().filter(|b| b.usable(now) && b.free > 0) {
            let ym = YearMonth::of(b.expires_at, zone);
            if let Some(slot) = months.iter_mut().find(|(m, _)| *m == ym) {
                slot.1 += b.free;
            }
        }
        months
    }

    /// Free points by the last day they can be used (in `zone`), for batches lapsing within a
    /// year of `now`, soonest first: what the member reads as "valid until 2026-12-21".
    pub fn expiry_days(&self, now: DateTime<Utc>, zone: Zone) -> Vec<(chrono::NaiveDate, i64)> {
        let mut days: Vec<(chrono::NaiveDate, i64)> = Vec::new();
        let horizon = now + chrono::Duration::days(365);
        for b in self
            .batches
            .iter()
            .filter(|b| b.usable(now) && b.free > 0 && b.expires_at <= horizon)
        {
            let last = (b.expires_at - chrono::Duration::seconds(1))
                .with_timezone(&zone.offset())
                .date_naive();
            match days.iter_mut().find(|(d, _)| *d == last) {
                Some(slot) => slot.1 += b.free,
                None => days.push((last, b.free)),
            }
        }
        days.sort();
        days
    }
}

/// Earned and spent points per month for the 12 months ending with `now`'s month (in `zone`), for
/// the history chart. Spent counts settled redemptions (at the settle) and negative adjustments;
/// expired counts expiration entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthFlow {
    pub earned: i64,
    pub spent: i64,
    pub expired: i64,
}

pub fn monthly_history(
    entries: &[Entry],
    now: DateTime<Utc>,
    zone: Zone,
) -> Vec<(YearMonth, MonthFlow)> {
    let last = YearMonth::of(now, zone);
    let mut first = last;
    for _ in 0..11 {
        first = first.prev();
    }
    let mut flows: BTreeMap<YearMonth, MonthFlow> = BTreeMap::new();
    let mut m = first;
    for _ in 0..12 {
        flows.insert(m, MonthFlow::default());
        m = m.next();
    }
    let mut held: BTreeMap<Uuid, i64> = BTreeMap::new();
    for e in entries {
        let slot = flows.get_mut(&YearMonth::of(e.at, zone));
        match &e.kind {
            EntryKind::Hold { redemption, points } => {
                held.insert(*redemption, *points);
            }
            EntryKind::Settle { redemption } => {
                if let (Some(f), Some(p)) = (slot, held.get(redemption)) {
                    f.spent += p;
                }
            }
            EntryKind::Accrual { points, .. } => {
                if let Some(f) = slot {
                    f.earned += points;
                }
            }
            EntryKind::Adjustment { points, .. } => {
                if let Some(f) = slot {
                    if *points > 0 {
                        f.earned += points;
                    } else {
                        f.spent -= points;
                    }
                }
            }
            EntryKind::Expiration { points, .. } => {
                if let Some(f) = slot {
                    f.expired += points;
                }
            }
            EntryKind::Refund { .. } => {}
        }
    }
    flows.into_iter().collect()
}

/// How much of a monthly cap is left at `now`: `used` lists (instant, amount) of earlier
/// redemptions of the same kind that count against the cap (held or settled, not refunded). The
/// month is the calendar month in the member's zone.
pub fn cap_left(cap: i64, used: &[(DateTime<Utc>, i64)], now: DateTime<Utc>, zone: Zone) -> i64 {
    let month = YearMonth::of(now, zone);
    let spent: i64 = used
        .iter()
        .filter(|(t, _)| YearMonth::of(*t, zone) == month)
        .map(|(_, a)| a)
        .sum();
    (cap - spent).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    struct Log(Vec<Entry>);

    impl Log {
        fn push(&mut self, at: &str, kind: EntryKind) -> &mut Self {
            let seq = self.0.len() as i64 + 1;
            self.0.push(Entry {
                seq,
                at: t(at),
                kind,
            });
            self
        }
        fn earn(&mut self, at: &str, points: i64, expires: &str) -> &mut Self {
            self.push(
                at,
                EntryKind::Accrual {
                    points,
                    expires_at: t(expires),
                    source: "test".into(),
                },
            )
        }
        fn hold(&mut self, at: &str, r: u128, points: i64) -> &mut Self {
            self.push(
                at,
                EntryKind::Hold {
                    redemption: Uuid::from_u128(r),
                    points,
                },
            )
        }
        fn ledger(&self) -> Ledger {
            Ledger::fold(&self.0).unwrap()
        }
    }

    fn free_of(l: &Ledger) -> Vec<i64> {
        l.batches.iter().map(|b| b.free).collect()
    }

    #[test]
    fn from_the_change_spends_take_the_soonest_expiring_batches_first() {
        // a 2027 batch accrued first, one expiring on 21 December accrued later
        let mut log = Log(vec![]);
        log.earn("2026-06-01T00:00:00Z", 3000, "2027-06-01T00:00:00Z")
            .earn("2026-09-01T00:00:00Z", 500, "2026-12-21T00:00:00Z")
            .earn("2026-10-01T00:00:00Z", 1000, "2027-03-01T00:00:00Z")
            .hold("2026-12-05T00:00:00Z", 1, 1000);
        let l = log.ledger();
        assert_eq!(
            free_of(&l),
            vec![3000, 0, 500],
            "December's 500 first, then March's"
        );
        assert_eq!(
            l.holds[0].from,
            vec![
                Allocation {
                    batch: 2,
                    points: 500
                },
                Allocation {
                    batch: 3,
                    points: 500
                }
            ]
        );
        // nothing is lost on 21 December any more
        assert_eq!(l.balance(t("2026-12-22T00:00:00Z")).available, 3500);

        // the same spend made before the change is folded as it was made: oldest accrued first,
        // and the balance shown then is the balance shown now
        let mut before = Log(vec![]);
        before
            .earn("2026-06-01T00:00:00Z", 3000, "2027-06-01T00:00:00Z")
            .earn("2026-09-01T00:00:00Z", 500, "2026-12-21T00:00:00Z")
            .earn("2026-10-01T00:00:00Z", 1000, "2027-03-01T00:00:00Z")
            .hold("2026-11-30T23:59:59Z", 1, 1000);
        let l = before.ledger();
        assert_eq!(free_of(&l), vec![2000, 500, 1000]);
        assert_eq!(l.balance(t("2026-12-22T00:00:00Z")).available, 3000);
    }

    #[test]
    fn points_about_to_lapse_are_announced_with_their_day() {
        let mut log = Log(vec![]);
        log.earn("2026-06-01T00:00:00Z", 3000, "2027-06-01T00:00:00Z")
            .earn("2026-09-01T00:00:00Z", 500, "2026-12-20T16:00:00Z")
            .earn("2026-09-02T00:00:00Z", 200, "2026-12-20T20:00:00Z")
            .hold("2026-12-05T00:00:00Z", 1, 100);
        let l = log.ledger();
        let sixty = chrono::Duration::days(60);
        let soon = l.expiring_soon(t("2026-12-05T00:00:00Z"), sixty, Zone::AsiaShanghai);
        // both lapse on 21 December in Shanghai; the spend took 100 of the first
        assert_eq!(soon, Some((t("2026-12-20T16:00:00Z"), 600)));
        assert_eq!(
            l.expiring_soon(t("2026-10-01T00:00:00Z"), sixty, Zone::AsiaShanghai),
            None,
            "more than 60 days away"
        );
        assert_eq!(
            l.expiring_soon(t("2026-12-20T17:00:00Z"), sixty, Zone::AsiaShanghai),
            Some((t("2026-12-20T20:00:00Z"), 200)),
            "the first batch has lapsed"
        );
    }

    #[test]
    fn spending_takes_the_oldest_batches_first_across_several() {
        let mut log = Log(vec![]);
        log.earn("2026-01-05T00:00:00Z", 100, "2027-01-05T00:00:00Z")
            .earn("2026-02-05T00:00:00Z", 50, "2027-02-05T00:00:00Z")
            .earn("2026-03-05T00:00:00Z", 80, "2027-03-05T00:00:00Z")
            .hold("2026-04-01T00:00:00Z", 1, 130);
        let l = log.ledger();
        assert_eq!(free_of(&l), vec![0, 20, 80]);
        assert_eq!(
            l.holds[0].from,
            vec![
                Allocation {
                    batch: 1,
                    points: 100
                },
                Allocation {
                    batch: 2,
                    points: 30
                }
            ]
        );
        let now = t("2026-04-02T00:00:00Z");
        assert_eq!(
            l.balance(now),
            Balance {
                posted: 230,
                available: 100,
                pending: 130
            }
        );
        log.push(
            "2026-04-03T00:00:00Z",
            EntryKind::Settle {
                redemption: Uuid::from_u128(1),
            },
        );
        let l = log.ledger();
        assert_eq!(l.spent, 130);
        assert_eq!(
            l.balance(now),
            Balance {
                posted: 100,
                available: 100,
                pending: 0
            }
        );
    }

    #[test]
    fn a_batch_expires_exactly_at_its_expiry_second() {
        let mut log = Log(vec![]);
        log.earn("2026-01-01T00:00:00Z", 100, "2026-06-30T16:00:00Z");
        let l = log.ledger();
        let at = t("2026-06-30T16:00:00Z");
        assert_eq!(l.balance(at - Duration::seconds(1)).available, 100);
        assert_eq!(l.balance(at).available, 0);
        assert!(matches!(
            l.plan(1, at),
            Err(LedgerError::Insufficient { available: 0, .. })
        ));
        // a hold in the last second still works
        log.hold("2026-06-30T15:59:59Z", 1, 100);
        assert!(Ledger::fold(&log.0).is_ok());
        // one a second later would not have
        let mut late = Log(vec![]);
        late.earn("2026-01-01T00:00:00Z", 100, "2026-06-30T16:00:00Z")
            .hold("2026-06-30T16:00:00Z", 1, 100);
        assert!(matches!(
            Ledger::fold(&late.0),
            Err(LedgerError::Insufficient { .. })
        ));
    }

    #[test]
    fn a_refund_restores_the_batches_the_hold_came_from() {
        let mut log = Log(vec![]);
        log.earn("2026-01-01T00:00:00Z", 60, "2026-05-01T00:00:00Z") // batch 1, expires soon
            .earn("2026-02-01T00:00:00Z", 60, "2027-02-01T00:00:00Z") // batch 2
            .hold("2026-04-01T00:00:00Z", 7, 100) // 60 from 1, 40 from 2
            .push(
                "2026-05-10T00:00:00Z", // after batch 1 expired
                EntryKind::Refund {
                    redemption: Uuid::from_u128(7),
                    reason: "carrier timeout".into(),
                },
            );
        let l = log.ledger();
        assert_eq!(
            free_of(&l),
            vec![60, 60],
            "each batch got its own points back"
        );
        assert!(l.holds.is_empty());
        // the 60 returned to batch 1 are expired: a refund does not extend an expiry
        assert_eq!(l.balance(t("2026-05-10T00:00:00Z")).available, 60);
        assert_eq!(l.balance(t("2026-04-30T00:00:00Z")).available, 120);
        // settling or refunding twice is an error, as is a second hold with the same id
        let mut twice = Log(log.0.clone());
        twice.push(
            "2026-05-11T00:00:00Z",
            EntryKind::Settle {
                redemption: Uuid::from_u128(7),
            },
        );
        assert_eq!(
            Ledger::fold(&twice.0),
            Err(LedgerError::NoOpenHold(Uuid::from_u128(7)))
        );
        let mut dup = Log(vec![]);
        dup.earn("2026-01-01T00:00:00Z", 100, "2027-01-01T00:00:00Z")
            .hold("2026-01-02T00:00:00Z", 1, 10)
            .hold("2026-01-03T00:00:00Z", 1, 10);
        assert_eq!(
            Ledger::fold(&dup.0),
            Err(LedgerError::DuplicateHold(Uuid::from_u128(1)))
        );
    }

    #[test]
    fn adjustments_add_batches_or_remove_oldest_first() {
        let mut log = Log(vec![]);
        log.earn("2026-01-01T00:00:00Z", 50, "2027-01-01T00:00:00Z")
            .push(
                "2026-01-02T00:00:00Z",
                EntryKind::Adjustment {
                    points: 30,
                    expires_at: None,
                    reason: "goodwill".into(),
                },
            )
            .push(
                "2026-01-03T00:00:00Z",
                EntryKind::Adjustment {
                    points: -60,
                    expires_at: None,
                    reason: "duplicate accrual".into(),
                },
            );
        let l = log.ledger();
        assert_eq!(free_of(&l), vec![0, 20]);
        assert_eq!(l.spent, 60);
        assert_eq!(
            l.balance(t("2030-01-01T00:00:00Z")).available,
            20,
            "no expiry"
        );
    }

    #[test]
    fn expiry_days_name_the_last_usable_day_in_china_time() {
        let mut log = Log(vec![]);
        // lapses at 00:00 on 22 December in Shanghai: the 21st is its last day
        log.earn("2026-01-01T00:00:00Z", 10, "2026-12-21T16:00:00Z")
            .earn("2026-01-02T00:00:00Z", 20, "2026-12-21T15:00:00Z") // 23:00 on the 21st: same day
            .earn("2026-01-03T00:00:00Z", 40, "2027-03-01T16:00:00Z")
            .earn("2026-01-04T00:00:00Z", 80, "2028-01-01T00:00:00Z") // more than a year away
            .earn("2026-01-05T00:00:00Z", 5, "2026-11-01T00:00:00Z"); // already lapsed
        let l = log.ledger();
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            l.expiry_days(t("2026-12-01T00:00:00Z"), Zone::AsiaShanghai),
            vec![(d("2026-12-21"), 30), (d("2027-03-01"), 40)]
        );
    }

    #[test]
    fn the_expiry_schedule_groups_free_points_by_month_in_china_time() {
        let mut log = Log(vec![]);
        // 2026-11-30T16:30Z is 2026-12-01 00:30 in Shanghai: it expires in December
        log.earn("2026-01-01T00:00:00Z", 10, "2026-11-30T16:30:00Z")
            .earn("2026-01-02T00:00:00Z", 20, "2026-11-30T15:30:00Z") // 23:30 on Nov 30: November
            .earn("2026-01-03T00:00:00Z", 40, "2027-10-15T00:00:00Z") // the 12th month
            .earn("2026-01-04T00:00:00Z", 80, "2027-11-15T00:00:00Z") // past the 12 months
            .hold("2026-02-01T00:00:00Z", 1, 5); // held points are not listed
        let l = log.ledger();
        let s = l.expiry_schedule(t("2026-11-10T00:00:00Z"), Zone::AsiaShanghai);
        assert_eq!(s.len(), 12);
        assert_eq!(
            s[0],
            (
                YearMonth {
                    year: 2026,
                    month: 11
                },
                20
            )
        );
        assert_eq!(
            s[1],
            (
                YearMonth {
                    year: 2026,
                    month: 12
                },
                5
            )
        );
        assert_eq!(
            s[11],
            (
                YearMonth {
                    year: 2027,
                    month: 10
                },
                40
            )
        );
        assert_eq!(s.iter().map(|(_, p)| p).sum::<i64>(), 65);
    }

    #[test]
    fn monthly_caps_reset_at_midnight_on_the_first_in_china_time() {
        let used = [
            (t("2026-11-05T02:00:00Z"), 3000),
            (t("2026-11-30T15:59:59Z"), 2000), // 23:59:59 on Nov 30 in Shanghai
        ];
        let cap = 5000;
        assert_eq!(
            cap_left(cap, &used, t("2026-11-30T15:59:59Z"), Zone::AsiaShanghai),
            0
        );
        // one second later it is December 1st in Shanghai, still November in UTC
        assert_eq!(
            cap_left(cap, &used, t("2026-11-30T16:00:00Z"), Zone::AsiaShanghai),
            5000
        );
        assert_eq!(
            cap_left(cap, &used, t("2026-11-30T16:00:00Z"), Zone::Utc),
            0
        );
    }

    #[test]
    fn expirations_to_record_once_and_again_after_a_late_refund() {
        let mut log = Log(vec![]);
        log.earn("2026-01-01T00:00:00Z", 100, "2026-06-01T00:00:00Z")
            .earn("2026-02-01T00:00:00Z", 50, "2027-02-01T00:00:00Z")
            .hold("2026-05-01T00:00:00Z", 1, 30);
        let before = t("2026-05-31T23:59:59Z");
        let at = t("2026-06-01T00:00:00Z");
        assert!(log.ledger().unrecorded_expirations(before).is_empty());
        let due = log.ledger().unrecorded_expirations(at);
        assert_eq!(
            due,
            vec![EntryKind::Expiration {
                batch: 1,
                points: 70
            }]
        );
        log.push("2026-06-01T00:00:00Z", due[0].clone());
        assert!(
            log.ledger().unrecorded_expirations(at).is_empty(),
            "written once"
        );
        // the redemption fails after the expiry: its 30 points went back to the expired batch
        log.push(
            "2026-06-02T00:00:00Z",
            EntryKind::Refund {
                redemption: Uuid::from_u128(1),
                reason: "provider_failed".into(),
            },
        );
        let l = log.ledger();
        assert_eq!(
            l.unrecorded_expirations(t("2026-06-02T00:00:00Z")),
            vec![EntryKind::Expiration {
                batch: 1,
                points: 30
            }]
        );
        assert_eq!(l.balance(t("2026-06-02T00:00:00Z")).available, 50);
    }

    #[test]
    fn history_has_twelve_months_of_earned_spent_and_expired() {
        let mut log = Log(vec![]);
        log.earn("2025-10-01T00:00:00Z", 999, "2026-10-01T00:00:00Z") // before the window
            .earn("2026-01-10T00:00:00Z", 100, "2027-01-10T00:00:00Z")
            .hold("2026-02-10T00:00:00Z", 1, 40)
            .push(
                "2026-03-10T00:00:00Z",
                EntryKind::Settle {
                    redemption: Uuid::from_u128(1),
                },
            )
            .push(
                "2026-10-01T00:00:00Z",
                EntryKind::Expiration {
                    batch: 1,
                    points: 999,
                },
            );
        let h = monthly_history(&log.0, t("2026-11-29T00:00:00Z"), Zone::AsiaShanghai);
        assert_eq!(h.len(), 12);
        assert_eq!(
            h[0].0,
            YearMonth {
                year: 2025,
                month: 12
            }
        );
        assert_eq!(
            h[11].0,
            YearMonth {
                year: 2026,
                month: 11
            }
        );
        let get = |y, m| {
            h.iter()
                .find(|(ym, _)| *ym == YearMonth { year: y, month: m })
                .unwrap()
                .1
        };
        assert_eq!(get(2026, 1).earned, 100);
        assert_eq!(get(2026, 3).spent, 40, "counted when settled");
        assert_eq!(get(2026, 2).spent, 0);
        assert_eq!(get(2026, 10).expired, 999);
    }

    #[test]
    fn a_large_ledger_folds_consistently() {
        // 10,000 entries: accruals and settled redemptions; posted = earned - spent at the end
        let mut log = Log(vec![]);
        let mut earned = 0;
        let mut spent = 0;
        let start = t("2026-01-01T00:00:00Z");
        for i in 0..5000u128 {
            let at = start + Duration::minutes(i as i64 * 2);
            let at_s = at.to_rfc3339();
            let exp = (at + Duration::days(365 * 3)).to_rfc3339();
            log.earn(&at_s, 10, &exp);
            earned += 10;
            if i % 2 == 1 {
                log.hold(&(at + Duration::seconds(1)).to_rfc3339(), i, 15);
                spent += 15;
            } else {
                log.push(
                    &(at + Duration::seconds(1)).to_rfc3339(),
                    EntryKind::Expiration {
                        batch: 0,
                        points: 0,
                    },
                );
            }
        }
        let l = log.ledger();
        let b = l.balance(start + Duration::days(20));
        assert_eq!(b.posted, earned - spent + b.pending);
        assert_eq!(b.pending, spent);
        assert_eq!(
            l.batches.iter().map(|x| x.free).sum::<i64>(),
            earned - spent
        );
    }
}
