//! Grab reminders ("提醒我") and the server clock, as pure functions.
//!
//! - [`plan`] decides, from the stored reminders, the campaigns as last synced and `now`, which
//!   reminders fire, which are reported as missed, which moved with their campaign, which were
//!   cancelled, and when to wake next. The scheduler in the shell only carries out the plan, so
//!   every rule is tested here on a fake clock.
//! - [`estimate_offset`] turns `GET /v1/time` samples into the device's offset from the server
//!   clock; [`server_now`] and [`grab_open`] use it, so the grab button opens at release by the
//!   server's clock, not the phone's.
//!
//! Instants are UTC; China time has no daylight saving, so "5 minutes before release" is the same
//! span all year.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The lead times a member can choose, in minutes.
pub const LEADS: [i64; 4] = [1, 5, 10, 30];
pub const DEFAULT_LEAD: i64 = 5;
/// A reminder that comes due while the app runs fires if it is at most this late (the scheduler
/// wakes a little late, the machine was busy). Later than that it is reported as missed: a
/// reminder for a grab that has already begun is worse than an honest "missed".
pub const GRACE: Duration = Duration::seconds(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReminderState {
    /// Waiting for `due_at`.
    Pending,
    Fired {
        at: DateTime<Utc>,
    },
    /// Its time passed while it could not fire (app not running, clock jumped).
    Missed {
        due_at: DateTime<Utc>,
    },
    /// The campaign was withdrawn.
    Cancelled,
}

/// A stored reminder for one campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub campaign_id: i64,
    pub lead_minutes: i64,
    /// When it is due, as last scheduled (release − lead); a moved campaign changes it.
    pub due_at: DateTime<Utc>,
    pub state: ReminderState,
}

/// What the scheduler knows about a campaign from the last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignTime {
    Release(DateTime<Utc>),
    /// Withdrawn by the union.
    Cancelled,
}

/// Set a reminder: due `lead_minutes` before the release.
pub fn new_reminder(campaign_id: i64, release_at: DateTime<Utc>, lead_minutes: i64) -> Reminder {
    Reminder {
        campaign_id,
        lead_minutes,
        due_at: release_at - Duration::minutes(lead_minutes),
        state: ReminderState::Pending,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Show the notification now.
    Fire {
        campaign_id: i64,
        due_at: DateTime<Utc>,
    },
    /// Tell the member it was missed (at the next start, or after a clock jump).
    Missed {
        campaign_id: i64,
        due_at: DateTime<Utc>,
    },
    /// The campaign moved: the reminder now comes due at `due_at`.
    Moved {
        campaign_id: i64,
        from: DateTime<Utc>,
        due_at: DateTime<Utc>,
    },
    /// The campaign was withdrawn: the reminder is removed, and the member told.
    Cancelled { campaign_id: i64 },
}

/// The outcome of one scheduler tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// In order of due time, then campaign id.
    pub actions: Vec<Action>,
    /// The reminders with their new states (store them).
    pub reminders: Vec<Reminder>,
    /// When to tick next: the earliest pending due time.
    pub wake_at: Option<DateTime<Utc>>,
}

/// One scheduler tick at `now`. `campaign` looks a campaign up by id (`None`: not known, which
/// leaves the reminder as it is).
pub fn plan(
    reminders: &[Reminder],
    campaign: impl Fn(i64) -> Option<CampaignTime>,
    now: DateTime<Utc>,
) -> Plan {
    let mut out = Plan::default();
    let mut due_now: Vec<(DateTime<Utc>, i64, Action)> = Vec::new();
    for r in reminders {
        let mut r = r.clone();
        if r.state == ReminderState::Pending {
            match campaign(r.campaign_id) {
                Some(CampaignTime::Cancelled) => {
                    r.state = ReminderState::Cancelled;
                    out.actions.push(Action::Cancelled {
                        campaign_id: r.campaign_id,
                    });
                }
                Some(CampaignTime::Release(release)) => {
                    let due = release - Duration::minutes(r.lead_minutes);
                    if due != r.due_at {
                        out.actions.push(Action::Moved {
                            campaign_id: r.campaign_id,
                            from: r.due_at,
                            due_at: due,
                        });
                        r.due_at = due;
                    }
                }
                None => {}
            }
        }
        if r.state == ReminderState::Pending && r.due_at <= now {
            let late = now - r.due_at;
            let action = if late <= GRACE {
                r.state = ReminderState::Fired { at: now };
                Action::Fire {
                    campaign_id: r.campaign_id,
                    due_at: r.due_at,
                }
            } else {
                r.state = ReminderState::Missed { due_at: r.due_at };
                Action::Missed {
                    campaign_id: r.campaign_id,
                    due_at: r.due_at,
                }
            };
            due_now.push((r.due_at, r.campaign_id, action));
        }
        if r.state == ReminderState::Pending {
            out.wake_at = Some(out.wake_at.map_or(r.due_at, |w| w.min(r.due_at)));
        }
        out.reminders.push(r);
    }
    due_now.sort_by_key(|(due, id, _)| (*due, *id));
    out.actions.extend(due_now.into_iter().map(|(_, _, a)| a));
    out
}

/// One `GET /v1/time` exchange: when the request left, what the server said, when the answer came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSample {
    pub sent: DateTime<Utc>,
    pub server: DateTime<Utc>,
    pub received: DateTime<Utc>,
}

/// The device clock's offset from the server's (server − device), from the sample with the
/// shortest round trip (the server read its clock about half-way through it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    pub offset_ms: i64,
    /// The round trip of the sample used: the offset is good to about half of it.
    pub rtt_ms: i64,
    pub measured_at: DateTime<Utc>,
}

pub fn estimate_offset(samples: &[TimeSample]) -> Option<ClockOffset> {
    samples
        .iter()
        .filter(|s| s.received >= s.sent)
        .min_by_key(|s| s.received - s.sent)
        .map(|s| {
            let rtt = s.received - s.sent;
            let midpoint = s.sent + rtt / 2;
            ClockOffset {
                offset_ms: (s.server - midpoint).num_milliseconds(),
                rtt_ms: rtt.num_milliseconds(),
                measured_at: s.received,
            }
        })
}

/// The server's time now, by the device clock and the measured offset.
pub fn server_now(device_now: DateTime<Utc>, offset: Option<ClockOffset>) -> DateTime<Utc> {
    device_now + Duration::milliseconds(offset.map_or(0, |o| o.offset_ms))
}

/// Whether the grab button is enabled: from release (by the server's clock) until the end.
pub fn grab_open(
    release_at: DateTime<Utc>,
    end_at: DateTime<Utc>,
    device_now: DateTime<Utc>,
    offset: Option<ClockOffset>,
) -> bool {
    let now = server_now(device_now, offset);
    release_at <= now && now < end_at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    // campaigns 1..=3 release at 12:00 China time (04:00 UTC)
    fn release() -> DateTime<Utc> {
        t("2026-12-01T04:00:00Z")
    }

    fn at_release(_: i64) -> Option<CampaignTime> {
        Some(CampaignTime::Release(release()))
    }

    #[test]
    fn fires_at_the_lead_time_and_wakes_for_the_next() {
        let rs = vec![new_reminder(1, release(), 5), new_reminder(2, release(), 1)];
        let p = plan(&rs, at_release, t("2026-12-01T03:50:00Z"));
        assert!(p.actions.is_empty());
        assert_eq!(
            p.wake_at,
            Some(t("2026-12-01T03:55:00Z")),
            "11:55 China time"
        );
        let p = plan(&p.reminders, at_release, t("2026-12-01T03:55:00Z"));
        assert_eq!(
            p.actions,
            vec![Action::Fire {
                campaign_id: 1,
                due_at: t("2026-12-01T03:55:00Z")
            }]
        );
        assert_eq!(p.wake_at, Some(t("2026-12-01T03:59:00Z")));
        // a tick just after does not fire it again
        let p = plan(&p.reminders, at_release, t("2026-12-01T03:55:01Z"));
        assert!(p.actions.is_empty());
    }

    #[test]
    fn a_reminder_due_while_the_app_was_closed_is_missed_not_dropped() {
        let rs = vec![new_reminder(1, release(), 5)];
        // the app starts again at 12:10 China time
        let p = plan(&rs, at_release, t("2026-12-01T04:10:00Z"));
        assert_eq!(
            p.actions,
            vec![Action::Missed {
                campaign_id: 1,
                due_at: t("2026-12-01T03:55:00Z")
            }]
        );
        assert_eq!(
            p.reminders[0].state,
            ReminderState::Missed {
                due_at: t("2026-12-01T03:55:00Z")
            }
        );
        assert_eq!(p.wake_at, None);
        // a little late (within the grace) still fires
        let p = plan(&rs, at_release, t("2026-12-01T03:55:59Z"));
        assert!(matches!(p.actions[0], Action::Fire { .. }));
    }

    #[test]
    fn a_moved_campaign_moves_its_reminder_and_a_cancelled_one_removes_it() {
        let rs = vec![
            new_reminder(1, release(), 10),
            new_reminder(2, release(), 10),
        ];
        let later = release() + Duration::hours(2);
        let lookup = |id| match id {
            1 => Some(CampaignTime::Release(later)),
            2 => Some(CampaignTime::Cancelled),
            _ => None,
        };
        let p = plan(&rs, lookup, t("2026-12-01T03:00:00Z"));
        assert_eq!(
            p.actions,
            vec![
                Action::Moved {
                    campaign_id: 1,
                    from: t("2026-12-01T03:50:00Z"),
                    due_at: t("2026-12-01T05:50:00Z")
                },
                Action::Cancelled { campaign_id: 2 },
            ]
        );
        assert_eq!(p.wake_at, Some(t("2026-12-01T05:50:00Z")));
        // at the old time nothing happens
        let p = plan(&p.reminders, lookup, t("2026-12-01T03:50:00Z"));
        assert!(p.actions.is_empty());
        // an unknown campaign (not synced yet) leaves the reminder alone
        let p = plan(&rs, |_| None, t("2026-12-01T03:00:00Z"));
        assert_eq!(p.reminders, rs);
    }

    #[test]
    fn clock_jumps_forward_and_backward() {
        let rs = vec![new_reminder(1, release(), 5)];
        // the clock jumps forward past the due time by more than the grace: missed, said so
        let p = plan(&rs, at_release, t("2026-12-01T03:58:00Z"));
        assert!(matches!(p.actions[0], Action::Missed { .. }));
        // fired, then the clock jumps back before the due time: not fired a second time
        let fired = plan(&rs, at_release, t("2026-12-01T03:55:00Z")).reminders;
        let p = plan(&fired, at_release, t("2026-12-01T03:40:00Z"));
        assert!(p.actions.is_empty());
        assert_eq!(p.wake_at, None);
        // pending, and the clock jumps back: it waits for its time again
        let p = plan(&rs, at_release, t("2026-12-01T02:00:00Z"));
        assert!(p.actions.is_empty());
        assert_eq!(p.wake_at, Some(t("2026-12-01T03:55:00Z")));
    }

    #[test]
    fn many_reminders_at_the_same_instant_all_fire_in_one_tick_in_a_stable_order() {
        let rs: Vec<Reminder> = (1..=200)
            .rev()
            .map(|id| new_reminder(id, release(), 1))
            .collect();
        let p = plan(&rs, at_release, t("2026-12-01T03:59:00Z"));
        assert_eq!(p.actions.len(), 200);
        let ids: Vec<i64> = p
            .actions
            .iter()
            .map(|a| match a {
                Action::Fire { campaign_id, .. } => *campaign_id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, (1..=200).collect::<Vec<_>>());
    }

    #[test]
    fn the_offset_comes_from_the_shortest_round_trip() {
        let device = t("2026-12-01T03:59:00Z");
        let s = |sent_ms: i64, rtt_ms: i64, server_ahead_ms: i64| TimeSample {
            sent: device + Duration::milliseconds(sent_ms),
            server: device + Duration::milliseconds(sent_ms + rtt_ms / 2 + server_ahead_ms),
            received: device + Duration::milliseconds(sent_ms + rtt_ms),
        };
        // the server runs 1.5 s ahead; a slow sample would suggest otherwise
        let samples = [s(0, 400, 1700), s(500, 40, 1500), s(1000, 120, 1450)];
        let o = estimate_offset(&samples).unwrap();
        assert_eq!((o.offset_ms, o.rtt_ms), (1500, 40));
        assert_eq!(estimate_offset(&[]), None);
        // the button opens at release by the server's clock: 1.5 s before the device's
        let end = release() + Duration::hours(1);
        assert!(!grab_open(
            release(),
            end,
            release() - Duration::milliseconds(1501),
            Some(o)
        ));
        assert!(grab_open(
            release(),
            end,
            release() - Duration::milliseconds(1500),
            Some(o)
        ));
        assert!(!grab_open(
            release(),
            end,
            release() - Duration::milliseconds(1),
            None
        ));
        assert!(!grab_open(release(), end, end, None));
    }
}
