//! What the app does on its own while it runs, window or not: the policies that used to sit in
//! the shell, here so that they are tested without a window.
//!
//! - **Sync**: one at a time ([`Client::sync_turn`]); in the background at start and every
//!   [`Timing::sync_every`], skipped when one is already running; after each background sync the
//!   server clock offset is measured and the reminder scheduler re-plans.
//! - **Following redemptions**: after a redemption (and at start when one is open) the app syncs
//!   every [`Timing::follow_every`] until none is queued or held, at most
//!   [`Timing::follow_rounds`] times (the periodic sync carries on after that).
//! - **Reminders**: the scheduler ticks at start, at the plan's next due time, when woken (a
//!   reminder changed, a sync brought moved campaigns) and at least every
//!   [`Timing::reminder_max_sleep`], in server time (the device clock corrected by the measured
//!   offset), since releases are server instants. A due reminder becomes a [`Notification`] that
//!   the [`Host`] shows.
//! - **Benign sync errors** ([`benign`]): offline, signed out, or transient ones are reported in
//!   the sync state, not as a failed command. A session the server ended makes the client forget
//!   the member (see `Client::sync`); the snapshot then says why.
//! - **Sign-outs made offline** are sent when the server can be reached again.
//!
//! The device clock is an input ([`DeviceClock`]); nothing here reads the system clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use unionpass_core::campaign::Campaign;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::reminder::Action;
use unionpass_core::time::Zone;
use unionpass_core::{ErrorCode, Lang};

use crate::Client;

/// The device's clock, read by the background tasks (the shell passes the system clock).
pub type DeviceClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the app's shell does for the background tasks.
pub trait Host: Send + Sync + 'static {
    /// The local store changed (a sync started or ended, a reminder fired): the UI refreshes.
    fn state_changed(&self);
    /// A reminder came due, or a sign-up moved up from the waitlist: show it natively, with
    /// sound; a click opens what `n.opens` names.
    fn notify(&self, n: &Notification);
}

/// What a click on a notification opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opens {
    Campaign(i64),
    Activity(i64),
}

/// A due reminder or a promotion, worded in the member's language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub opens: Opens,
    pub title: String,
    pub body: String,
}

impl Notification {
    /// The campaign's name, its release in China time and the whole minutes left (rounded up).
    pub fn for_campaign(c: &Campaign, server_now: DateTime<Utc>, lang: Lang) -> Notification {
        let minutes = ((c.release_at - server_now).num_seconds() + 59) / 60;
        let release = unionpass_core::time::format_clock(c.release_at, Zone::AsiaShanghai);
        Notification {
            opens: Opens::Campaign(c.id),
            title: fill(Msg::NotifTitle.text(lang), &[("title", c.title(lang))]),
            body: fill(
                Msg::NotifBody.text(lang),
                &[("release", &release), ("n", &minutes.max(0).to_string())],
            ),
        }
    }
}

impl Notification {
    /// Sign-up for an activity opens soon (the member asked), or an activity they have a place
    /// at starts in an hour.
    pub fn for_activity(
        a: &unionpass_core::activity::Activity,
        opening: bool,
        lang: Lang,
    ) -> Notification {
        let (title, body) = if opening {
            let opens = a.signup.as_ref().map(|r| r.opens_at).unwrap_or(a.starts_at);
            (
                fill(Msg::NotifOpensTitle.text(lang), &[("title", a.title(lang))]),
                fill(
                    Msg::NotifOpensBody.text(lang),
                    &[(
                        "time",
                        &unionpass_core::time::format_clock(opens, Zone::AsiaShanghai),
                    )],
                ),
            )
        } else {
            (
                fill(
                    Msg::NotifStartsTitle.text(lang),
                    &[("title", a.title(lang))],
                ),
                fill(
                    Msg::NotifStartsBody.text(lang),
                    &[
                        (
                            "time",
                            &unionpass_core::time::format_clock(a.starts_at, Zone::AsiaShanghai),
                        ),
                        ("place", a.place_in(lang)),
                    ],
                ),
            )
        };
        Notification {
            opens: Opens::Activity(a.id),
            title,
            body,
        }
    }

    /// The union moved or cancelled an activity the member has a sign-up for: its name, and the
    /// new time (start to end) and place with the old time, or that it is off.
    pub fn for_activity_change(
        a: &unionpass_core::activity::Activity,
        notice: unionpass_core::activity::ChangeNotice,
        lang: Lang,
    ) -> Notification {
        use unionpass_core::activity::ChangeNotice;
        let span = |from, to| unionpass_core::time::format_span(from, to, Zone::AsiaShanghai);
        let (title, body) = match notice {
            ChangeNotice::Moved {
                was_starts_at,
                was_ends_at,
            } => (
                fill(Msg::NotifMovedTitle.text(lang), &[("title", a.title(lang))]),
                fill(
                    Msg::NotifMovedBody.text(lang),
                    &[
                        ("time", &span(a.starts_at, a.ends_at)),
                        ("place", a.place_in(lang)),
                        ("was", &span(was_starts_at, was_ends_at)),
                    ],
                ),
            ),
            ChangeNotice::Cancelled => (
                fill(
                    Msg::NotifCancelledTitle.text(lang),
                    &[("title", a.title(lang))],
                ),
                Msg::NotifCancelledBody.text(lang).to_string(),
            ),
        };
        Notification {
            opens: Opens::Activity(a.id),
            title,
            body,
        }
    }

    /// A place at an activity came free and is now the member's: its name, time and place.
    pub fn for_promotion(a: &unionpass_core::activity::Activity, lang: Lang) -> Notification {
        let when = unionpass_core::time::format_minute(a.starts_at, Zone::AsiaShanghai);
        Notification {
            opens: Opens::Activity(a.id),
            title: fill(
                Msg::NotifPromotedTitle.text(lang),
                &[("title", a.title(lang))],
            ),
            body: fill(
                Msg::NotifPromotedBody.text(lang),
                &[("time", &when), ("place", a.place_in(lang))],
            ),
        }
    }
}

/// How often the background tasks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Between background syncs that worked (each wait spread by ±20 %).
    pub sync_every: Duration,
    /// The first wait after a failed sync; it doubles with each failure in a row, up to
    /// `sync_every` (each wait spread between half and all of it).
    pub retry_first: Duration,
    pub follow_every: Duration,
    pub follow_rounds: usize,
    pub reminder_max_sleep: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            sync_every: Duration::from_secs(300),
            retry_first: Duration::from_secs(10),
            follow_every: Duration::from_secs(3),
            // two minutes of following
            follow_rounds: 40,
            reminder_max_sleep: Duration::from_secs(60),
        }
    }
}

/// Whether a failed sync is only a state to show (offline, signed out, a transient server
/// error), not an error for the member to act on.
pub fn benign(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Offline | ErrorCode::Unauthenticated | ErrorCode::NotLoggedIn
    ) || code.is_transient()
}

/// The longest `Retry-After` the app honours (a server asking for more is waited on this long).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How the last background sync went, for [`next_sync_in`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastSync {
    Worked,
    /// It failed for a reason that may pass (offline, overloaded, rate limited): `failures` in a
    /// row so far, and the server's `Retry-After` if it sent one.
    Failed {
        failures: u32,
        retry_after: Option<Duration>,
    },
    /// It failed for a reason retrying soon will not fix (signed out, this version refused).
    Stuck,
}

/// How long the periodic sync waits before its next attempt, `spread` being a random number in
/// [0, 1) (drawn per wait, so that 110,000 apps started by the same announcement drift apart
/// instead of syncing in lockstep):
/// - after a sync that worked (or one that retrying will not fix), `sync_every` ±20 %;
/// - after a failure that may pass, exponential back-off: `retry_first` doubled per failure in
///   a row, capped at `sync_every`, of which a random half to all is waited ("equal jitter");
///   never less than the server's `Retry-After` (itself capped at [`MAX_RETRY_AFTER`]).
pub fn next_sync_in(last: LastSync, timing: &Timing, spread: f64) -> Duration {
    let spread = spread.clamp(0.0, 1.0);
    match last {
        LastSync::Worked | LastSync::Stuck => timing.sync_every.mul_f64(0.8 + 0.4 * spread),
        LastSync::Failed {
            failures,
            retry_after,
        } => {
            let doublings = failures.saturating_sub(1).min(20);
            let ceiling = timing
                .retry_first
                .saturating_mul(1 << doublings)
                .min(timing.sync_every);
            let backoff = ceiling.mul_f64(0.5 + 0.5 * spread);
            backoff.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
        }
    }
}

/// What a failed sync says about the next one (see [`LastSync`]).
pub fn after_failure(e: &crate::error::ClientError, failures_before: u32) -> LastSync {
    if e.code().is_transient() {
        LastSync::Failed {
            failures: failures_before + 1,
            retry_after: e.retry_after(),
        }
    } else {
        LastSync::Stuck
    }
}

/// The background tasks of one running app.
pub struct Background {
    client: Arc<Client>,
    host: Arc<dyn Host>,
    clock: DeviceClock,
    timing: Timing,
    wake: tokio::sync::Notify,
}

impl Background {
    pub fn new(client: Arc<Client>, host: Arc<dyn Host>, clock: DeviceClock) -> Arc<Background> {
        Self::with_timing(client, host, clock, Timing::default())
    }

    pub fn with_timing(
        client: Arc<Client>,
        host: Arc<dyn Host>,
        clock: DeviceClock,
        timing: Timing,
    ) -> Arc<Background> {
        Arc::new(Background {
            client,
            host,
            clock,
            timing,
            wake: tokio::sync::Notify::new(),
        })
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Everything that runs for the life of the app: the periodic sync, the reminder scheduler,
    /// and following redemptions left open last time. Never returns.
    pub async fn run(self: Arc<Self>) {
        let open_at_start = self.client.has_open_redemptions().unwrap_or(false);
        let follow = async {
            if open_at_start {
                // after the start-up sync
                tokio::time::sleep(self.timing.follow_every).await;
                self.follow_redemptions().await;
            }
        };
        tokio::join!(self.sync_periodically(), self.reminders(), follow);
    }

    /// Sync now unless a sync is running or nobody is signed in; tells the host when it starts
    /// and ends. Afterwards the reminder scheduler re-plans (campaigns may have moved) and the
    /// server clock offset is measured (the grab button follows the server's clock). Answers
    /// whether a sync ran.
    pub async fn sync_soon(&self) -> bool {
        self.sync_if_idle().await.is_some()
    }

    /// [`Background::sync_soon`], answering how the sync went (`None`: none ran).
    async fn sync_if_idle(&self) -> Option<crate::error::Result<crate::sync::SyncReport>> {
        if !self.client.is_logged_in().unwrap_or(false) {
            return None;
        }
        let turn = self.client.sync_turn_if_idle()?;
        self.host.state_changed();
        let result = self.client.sync_in_turn(turn, (self.clock)()).await;
        self.announce_promotions();
        // campaigns may have moved: re-plan now, and again once the offset is measured
        self.wake_reminders();
        self.measure_clock().await;
        self.host.state_changed();
        Some(result)
    }

    /// Measure the device's offset from the server clock and keep it; the reminder scheduler
    /// then re-plans, since reminders are due in server time (a tick planned before the first
    /// measurement slept by the device clock alone). Offline, the stored offset stays.
    pub async fn measure_clock(&self) {
        let clock = self.clock.clone();
        match self.client.measure_clock(move || clock()).await {
            Ok(Some(_)) => self.wake_reminders(),
            Ok(None) => {}
            Err(e) => tracing::debug!(code = %e.code(), "clock offset not measured"),
        }
    }

    /// Sync now, waiting for a running sync to end first; a benign failure ([`benign`]) is not an
    /// error (the sync state shows it).
    pub async fn sync_now(&self) -> crate::error::Result<()> {
        let synced = self.client.sync((self.clock)()).await;
        self.announce_promotions();
        // campaigns may have moved: the scheduler plans again (as after a background sync)
        self.wake_reminders();
        match synced {
            Err(e) if !benign(e.code()) => Err(e),
            _ => Ok(()),
        }
    }

    /// Tell the member, natively, of each sign-up a sync found moved up from the waitlist, and of
    /// each activity they have a sign-up for that the union moved or cancelled (once each; not for
    /// an activity already over).
    pub fn announce_promotions(&self) {
        let now = (self.clock)();
        let promoted = match self.client.take_promotions(now) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(code = %e.code(), "promotions not read");
                return;
            }
        };
        let lang = self.client.language().unwrap_or_default();
        for a in &promoted {
            tracing::info!(activity_id = a.id, "promoted from the waitlist");
            self.host.notify(&Notification::for_promotion(a, lang));
        }
        let changed = match self.client.take_activity_notices(now) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(code = %e.code(), "activity changes not read");
                Vec::new()
            }
        };
        for (a, notice) in &changed {
            tracing::info!(activity_id = a.id, ?notice, "activity changed");
            self.host
                .notify(&Notification::for_activity_change(a, *notice, lang));
        }
        if !promoted.is_empty() || !changed.is_empty() {
            self.host.state_changed();
        }
    }

    /// Sign in with this device's name; the first sync follows. A failed first sync does not
    /// undo the sign-in (the member is signed in, just not synced; the sync state says why).
    pub async fn sign_in(
        &self,
        server_url: &str,
        member_no: &str,
        password: &str,
    ) -> crate::error::Result<()> {
        let result = self
            .client
            .login(
                server_url,
                member_no,
                password,
                &device_name(),
                (self.clock)(),
            )
            .await;
        self.signed_in(result)
    }

    /// A forgotten password reset with the code union staff gave, then signed in with the new
    /// one ([`Client::reset_password`]); as [`Background::sign_in`], a failed first sync is not
    /// an error.
    pub async fn reset_password(
        &self,
        server_url: &str,
        member_no: &str,
        code: &str,
        new_password: &str,
    ) -> crate::error::Result<()> {
        let result = self
            .client
            .reset_password(
                server_url,
                member_no,
                code,
                new_password,
                &device_name(),
                (self.clock)(),
            )
            .await;
        self.signed_in(result)
    }

    /// After a sign-in: the reminders are planned for whoever is signed in now, and a sign-in
    /// whose first sync failed is still a sign-in.
    fn signed_in(
        &self,
        result: crate::error::Result<crate::sync::SyncReport>,
    ) -> crate::error::Result<()> {
        self.wake_reminders();
        match result {
            Ok(_) => Ok(()),
            Err(e) if self.client.is_logged_in().unwrap_or(false) => {
                tracing::info!(code = %e.code(), "signed in, first sync failed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Queue a redemption at the price the member saw (offline works). One that needs the
    /// password again sends it to the server first (online only; never kept). Follow it with
    /// [`Background::follow_redemptions`].
    pub async fn redeem(
        &self,
        target: &unionpass_core::redeem::Target,
        points: i64,
        password: Option<&str>,
    ) -> crate::error::Result<unionpass_core::redeem::Redemption> {
        let now = (self.clock)();
        match password {
            Some(p) => {
                self.client
                    .redeem_with_password(target, points, p, now)
                    .await
            }
            None => self.client.redeem(target, points, now),
        }
    }

    /// Sync at start, then again after [`next_sync_in`]: spread, and backing off while the
    /// server cannot be reached or asks for time. The status bar shows when the next try is.
    async fn sync_periodically(&self) {
        let mut failures = 0;
        loop {
            // a sign-out made offline reaches the server as soon as it can
            if let Err(e) = self.client.finish_pending_sign_out().await {
                tracing::warn!(code = %e.code(), "an earlier sign-out could not be sent");
            }
            let last = match self.sync_if_idle().await {
                Some(Err(e)) => after_failure(&e, failures),
                Some(Ok(_)) => LastSync::Worked,
                // another sync was running (a tap on 立即同步): its outcome is not known here,
                // so the back-off stands and the loop looks again shortly
                None if self.client.is_logged_in().unwrap_or(false) => {
                    tokio::time::sleep(self.timing.retry_first).await;
                    continue;
                }
                // nobody is signed in
                None => LastSync::Worked,
            };
            failures = match last {
                LastSync::Failed { failures, .. } => failures,
                _ => 0,
            };
            let wait = next_sync_in(last, &self.timing, rand::random::<f64>());
            let retry = matches!(last, LastSync::Failed { .. });
            self.client
                .set_retry_at(retry.then(|| {
                    (self.clock)() + chrono::Duration::from_std(wait).unwrap_or_default()
                }));
            if retry {
                tracing::info!(
                    failures,
                    wait_s = wait.as_secs_f64(),
                    "sync failed; trying again later"
                );
            }
            // the status bar shows the retry time, or stops showing it
            self.host.state_changed();
            tokio::time::sleep(wait).await;
        }
    }

    /// Sync every `follow_every` while a redemption is queued here or in progress at the
    /// server, so the member sees it held, then settled or refunded; at most `follow_rounds`
    /// times. Answers whether none was left open.
    pub async fn follow_redemptions(&self) -> bool {
        for round in 0..self.timing.follow_rounds {
            if round > 0 {
                tokio::time::sleep(self.timing.follow_every).await;
            }
            self.sync_soon().await;
            if !self.client.has_open_redemptions().unwrap_or(false) {
                return true;
            }
        }
        false
    }

    /// Wake the reminder scheduler now (a reminder changed, campaigns may have moved).
    pub fn wake_reminders(&self) {
        self.wake.notify_one();
    }

    /// Set (or change) a reminder; `lead_minutes` count back from the release, a server instant,
    /// so the device clock is corrected by the measured offset first. The scheduler re-plans.
    pub fn set_reminder(
        &self,
        campaign_id: i64,
        lead_minutes: i64,
    ) -> crate::error::Result<unionpass_core::reminder::Reminder> {
        let server_now = self.client.server_now((self.clock)())?;
        let r = self
            .client
            .set_reminder(campaign_id, lead_minutes, server_now)?;
        self.wake_reminders();
        Ok(r)
    }

    /// "Remind me before sign-up opens" on or off; the scheduler wakes for it.
    pub fn set_opening_reminder(&self, activity_id: i64, on: bool) -> crate::error::Result<()> {
        let device_now = (self.clock)();
        let server_now = self.client.server_now(device_now).unwrap_or(device_now);
        self.client
            .set_opening_reminder(activity_id, on, server_now)?;
        self.wake_reminders();
        Ok(())
    }

    pub fn clear_reminder(&self, campaign_id: i64) -> crate::error::Result<()> {
        self.client.clear_reminder(campaign_id)?;
        self.wake_reminders();
        Ok(())
    }

    /// One scheduler tick, now in server time: due reminders are shown, the host is told of any
    /// change. Answers how long to sleep before the next tick.
    pub fn reminder_tick(&self) -> Duration {
        let device_now = (self.clock)();
        let server_now = match self.client.server_now(device_now) {
            Ok(t) => t,
            Err(e) => {
                // the stored offset could not be read: this tick plans by the device clock
                tracing::warn!(code = %e.code(), error = %e, "clock offset not read");
                device_now
            }
        };
        let max = self.timing.reminder_max_sleep;
        let plan = match self.client.reminder_tick(server_now) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::error!(code = %e.code(), error = %e, "reminder tick failed");
                return max;
            }
        };
        let lang = self.client.language().unwrap_or_default();
        for action in &plan.actions {
            tracing::info!(?action, "reminder");
            if let Action::Fire { campaign_id, .. } = action {
                match self.client.campaign(*campaign_id) {
                    Ok(Some(c)) => self
                        .host
                        .notify(&Notification::for_campaign(&c, server_now, lang)),
                    _ => tracing::warn!(campaign_id, "a due reminder's campaign is not known"),
                }
            }
        }
        // the activities' reminders: before sign-up opens, and an hour before one with a place
        let activity_due = match self.client.due_activity_reminders(server_now) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(code = %e.code(), "activity reminders not read");
                Vec::new()
            }
        };
        for (a, opening) in &activity_due {
            tracing::info!(activity_id = a.id, opening, "activity reminder");
            self.host
                .notify(&Notification::for_activity(a, *opening, lang));
        }
        if !plan.actions.is_empty() || !activity_due.is_empty() {
            self.host.state_changed();
        }
        let next_activity = self.client.next_activity_reminder().ok().flatten();
        [plan.wake_at, next_activity]
            .into_iter()
            .flatten()
            .min()
            .map(|at| (at - server_now).to_std().unwrap_or_default().min(max))
            .unwrap_or(max)
    }

    async fn reminders(&self) {
        loop {
            let sleep = self.reminder_tick();
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}

/// This device's name as members see it in their device list: the computer's or phone's own
/// name where the platform gives one.
pub fn device_name() -> String {
    device_label(whoami::devicename().ok().as_deref())
}

/// `UnionPass @ <name>`, or `UnionPass` without a usable name.
pub fn device_label(name: Option<&str>) -> String {
    let name: String = name
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(60)
        .collect();
    if name.is_empty() {
        "UnionPass".to_string()
    } else {
        format!("UnionPass @ {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benign_sync_errors_are_states_not_failures() {
        assert!(benign(ErrorCode::Offline));
        assert!(benign(ErrorCode::NotLoggedIn));
        assert!(benign(ErrorCode::Unauthenticated));
        // transient server trouble: the next sync tries again
        assert!(benign(ErrorCode::RateLimited));
        assert!(benign(ErrorCode::Internal));
        assert!(benign(ErrorCode::Unavailable));
        // something the member (or an update) must fix
        assert!(!benign(ErrorCode::BadResponse));
        assert!(!benign(ErrorCode::DatabaseTooNew));
        assert!(!benign(ErrorCode::KeyringUnavailable));
        assert!(!benign(ErrorCode::StorageFull));
    }

    #[test]
    fn syncs_spread_out_and_back_off_after_failures_honouring_retry_after() {
        let t = Timing::default();
        let s = |d: Duration| d.as_secs_f64();
        // a sync that worked: five minutes, ±20 %
        assert_eq!(s(next_sync_in(LastSync::Worked, &t, 0.0)), 240.0);
        assert_eq!(s(next_sync_in(LastSync::Worked, &t, 0.5)), 300.0);
        assert_eq!(
            s(next_sync_in(LastSync::Worked, &t, 0.999_999)).round(),
            360.0
        );
        assert_eq!(next_sync_in(LastSync::Stuck, &t, 0.5), t.sync_every);
        // failures in a row: 10 s doubled each time, capped at five minutes; half to all of it
        let failed = |failures, retry_after| LastSync::Failed {
            failures,
            retry_after,
        };
        let ceilings: Vec<f64> = (1..=8)
            .map(|n| s(next_sync_in(failed(n, None), &t, 1.0)))
            .collect();
        assert_eq!(
            ceilings,
            vec![10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
        );
        assert_eq!(s(next_sync_in(failed(3, None), &t, 0.0)), 20.0);
        assert_eq!(s(next_sync_in(failed(u32::MAX, None), &t, 0.0)), 150.0);
        // the server's Retry-After is a floor, at most an hour
        let asked = Some(Duration::from_secs(120));
        assert_eq!(s(next_sync_in(failed(1, asked), &t, 0.3)), 120.0);
        assert_eq!(
            s(next_sync_in(
                failed(6, Some(Duration::from_secs(30))),
                &t,
                0.0
            )),
            150.0,
            "the back-off is longer than asked"
        );
        let greedy = Some(Duration::from_secs(86_400));
        assert_eq!(next_sync_in(failed(1, greedy), &t, 0.0), MAX_RETRY_AFTER);
        // apps that synced at the same moment do not come back together: 1,000 draws cover
        // most of the two-minute window
        let waits: Vec<f64> = (0..1000)
            .map(|_| s(next_sync_in(LastSync::Worked, &t, rand::random())))
            .collect();
        let (lo, hi) = waits
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), w| (lo.min(*w), hi.max(*w)));
        assert!(lo >= 240.0 && hi < 360.0 && hi - lo > 100.0, "{lo}..{hi}");
    }

    #[test]
    fn which_failures_back_off_and_which_wait_the_usual_time() {
        use crate::error::ClientError;
        let busy = ClientError::Server {
            status: 429,
            code: ErrorCode::RateLimited,
            message: String::new(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            after_failure(&busy, 2),
            LastSync::Failed {
                failures: 3,
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            after_failure(&ClientError::Offline("down".into()), 0),
            LastSync::Failed {
                failures: 1,
                retry_after: None
            }
        );
        assert_eq!(after_failure(&ClientError::NotLoggedIn, 4), LastSync::Stuck);
    }

    #[test]
    fn device_labels_are_short_and_printable() {
        assert_eq!(device_label(None), "UnionPass");
        assert_eq!(device_label(Some("  ")), "UnionPass");
        assert_eq!(device_label(Some("王芳的电脑\n")), "UnionPass @ 王芳的电脑");
        assert_eq!(
            device_label(Some(&"x".repeat(200))).len(),
            "UnionPass @ ".len() + 60
        );
        // whatever this machine is called, it gives a label
        assert!(device_name().starts_with("UnionPass"));
    }

    #[test]
    fn a_notification_names_the_campaign_and_the_minutes_left() {
        let t: DateTime<Utc> = "2026-12-01T02:00:00Z".parse().unwrap();
        let c = Campaign {
            id: 5,
            title_zh: "午餐券".into(),
            title_en: "Lunch coupon".into(),
            category: unionpass_core::campaign::Category::Meal,
            face_value_cents: 1500,
            terms_zh: String::new(),
            terms_en: String::new(),
            coupon_valid_from: t,
            coupon_valid_until: t,
            stock: 1,
            per_member_limit: 1,
            release_at: t,
            end_at: t + chrono::Duration::hours(1),
            eligible_unions: vec![],
            eligible_union_names: vec![],
            cancelled_at: None,
        };
        // 4 min 1 s before a 10:00 (China time) release: 5 minutes, rounded up
        let n = Notification::for_campaign(&c, t - chrono::Duration::seconds(241), Lang::ZhCn);
        assert_eq!(
            n,
            Notification {
                opens: Opens::Campaign(5),
                title: "午餐券 即将开抢".into(),
                body: "10:00 开抢，还有 5 分钟。点击打开。".into(),
            }
        );
        let en = Notification::for_campaign(&c, t - chrono::Duration::seconds(60), Lang::En);
        assert_eq!(en.title, "Lunch coupon releases soon");
        assert_eq!(en.body, "Releases at 10:00, in 1 min. Click to open.");
    }
}
