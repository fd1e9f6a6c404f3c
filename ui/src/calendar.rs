//! The grab calendar: upcoming and live campaigns with a countdown by the server's clock, and the
//! grab button, which opens exactly at release by that clock. One tap sends one request; the
//! shell stores its key first, so a second tap or a retry can never be granted twice.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;
use unionpass_core::campaign::GrabOutcome;
use unionpass_core::i18n::{fill, Lang, Msg};
use unionpass_core::reminder::{
    grab_open, server_now, Reminder, ReminderState, DEFAULT_LEAD, LEADS,
};
use unionpass_core::view::{Calendar, CalendarEntry, NoticeKind, ReminderNotice, Snapshot};
use unionpass_core::ErrorCode;

use crate::app::{ctx, now, when, Ctx};
use crate::ipc;
use leptos::prelude::document;

#[derive(Serialize)]
struct GrabArgs {
    campaign_id: i64,
}

#[derive(Serialize)]
struct ReminderArgs {
    campaign_id: i64,
    lead_minutes: i64,
}

#[derive(Serialize)]
struct DismissArgs {
    ids: Vec<i64>,
}

#[derive(Serialize)]
struct AutostartArgs {
    enabled: bool,
}

/// "提醒我": the lead times, the reminder's state, and "cancel reminder". A lead whose time has
/// passed by the server clock cannot be chosen.
#[component]
fn ReminderRow(
    id: i64,
    release_at: DateTime<Utc>,
    initial: Option<Reminder>,
    cal: RwSignal<Option<Calendar>>,
    tick: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    let c = ctx();
    let reminder = RwSignal::new(initial);
    let error = RwSignal::new(None::<ErrorCode>);
    let offset = move || cal.with(|c| c.as_ref().and_then(|c| c.offset));
    let apply = move |cmd: &'static str, lead: i64| {
        error.set(None);
        spawn_local(async move {
            let args = ReminderArgs {
                campaign_id: id,
                lead_minutes: lead,
            };
            match ipc::call::<_, Calendar>(cmd, &args).await {
                Ok(new) => {
                    reminder.set(
                        new.entries
                            .iter()
                            .find(|e| e.campaign.id == id)
                            .and_then(|e| e.reminder.clone()),
                    );
                }
                Err(code) => error.set(Some(code)),
            }
        });
    };
    let state_text = move || match reminder.get() {
        None => String::new(),
        Some(r) => match r.state {
            ReminderState::Pending => {
                fill(c.t(Msg::ReminderSet), &[("n", &r.lead_minutes.to_string())])
            }
            ReminderState::Fired { .. } => c.t(Msg::ReminderFired).to_string(),
            ReminderState::Missed { .. } => c.t(Msg::ReminderMissedShort).to_string(),
            ReminderState::Cancelled => String::new(),
        },
    };
    let pending = move || {
        reminder.with(|r| {
            r.as_ref()
                .is_some_and(|r| r.state == ReminderState::Pending)
        })
    };
    // "提醒我" sets the default lead, or 1 minute when the release is closer than that
    let quick_lead = move || {
        let now = server_now(tick.get(), offset());
        [DEFAULT_LEAD, 1]
            .into_iter()
            .find(|l| release_at - chrono::Duration::minutes(*l) > now)
    };
    view! {
        <div class="reminder" id=format!("reminder-{id}")>
            <Show when=move || reminder.with(|r| r.is_none())>
                <button type="button" class="remind" id=format!("remind-{id}")
                    prop:disabled=move || quick_lead().is_none()
                    on:click=move |_| {
                        if let Some(lead) = quick_lead() {
                            apply("set_reminder", lead);
                        }
                    }>
                    {move || c.t(Msg::RemindMe)}
                </button>
            </Show>
            <span class="small" id=format!("reminder-state-{id}") class:ok=pending>{state_text}</span>
            <div class="choices small-choices" role="group">
                {LEADS.into_iter().map(|lead| view! {
                    <button type="button" class="choice" id=format!("remind-{id}-{lead}")
                        class:active=move || pending() && reminder.with(|r| r.as_ref().is_some_and(|r| r.lead_minutes == lead))
                        prop:disabled=move || release_at - chrono::Duration::minutes(lead) <= server_now(tick.get(), offset())
                        on:click=move |_| apply("set_reminder", lead)>
                        {move || fill(c.t(Msg::ReminderLead), &[("n", &lead.to_string())])}
                    </button>
                }).collect_view()}
                <Show when=move || reminder.with(|r| r.is_some())>
                    <button type="button" class="link" id=format!("remind-off-{id}")
                        on:click=move |_| apply("clear_reminder", 0)>{move || c.t(Msg::ReminderOff)}</button>
                </Show>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="notice warn small" role="alert">{move || error.get().map(|e| c.t(e.message())).unwrap_or_default()}</p>
            </Show>
        </div>
    }
}

fn notice_text(n: &ReminderNotice, lang: Lang) -> String {
    let title = match lang {
        Lang::ZhCn => &n.title_zh,
        Lang::En => &n.title_en,
    };
    match n.kind {
        NoticeKind::Missed { due_at, release_at } => fill(
            Msg::NoticeMissed.text(lang),
            &[
                ("title", title),
                ("time", &when(due_at)),
                ("release", &when(release_at)),
            ],
        ),
        NoticeKind::Moved { release_at, due_at } => fill(
            Msg::NoticeMoved.text(lang),
            &[
                ("title", title),
                ("time", &when(due_at)),
                ("release", &when(release_at)),
            ],
        ),
        NoticeKind::Cancelled => fill(Msg::NoticeCancelled.text(lang), &[("title", title)]),
    }
}

/// Reminder notices (missed, moved, cancelled), on every screen until the member dismisses them.
#[component]
pub fn Notices() -> impl IntoView {
    let c = ctx();
    let notices = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.notices.clone()).unwrap_or_default())
    };
    let dismiss = move |_| {
        let ids = notices().iter().map(|n| n.id).collect();
        spawn_local(async move {
            if let Ok(s) = ipc::call::<_, Snapshot>("dismiss_notices", &DismissArgs { ids }).await {
                c.snap.set(Some(s));
            }
        });
    };
    view! {
        <Show when=move || !notices().is_empty()>
            <section id="notices" class="notices" role="alert">
                <h2 class="small">{move || c.t(Msg::NoticesTitle)}</h2>
                <ul>
                    {move || notices().into_iter().map(|n| {
                        let missed = matches!(n.kind, NoticeKind::Missed { .. });
                        view! {
                            <li class="notice-item" class:warn=missed id=format!("notice-{}", n.id)>
                                {notice_text(&n, c.lang.get())}
                            </li>
                        }
                    }).collect_view()}
                </ul>
                <button type="button" id="notices-dismiss" on:click=dismiss>{move || c.t(Msg::Dismiss)}</button>
            </section>
        </Show>
    }
}

/// "Start at login", with why it matters for reminders.
#[component]
pub fn AutostartCard() -> impl IntoView {
    let c = ctx();
    let on = RwSignal::new(None::<bool>);
    let error = RwSignal::new(None::<ErrorCode>);
    spawn_local(async move {
        match ipc::call0::<bool>("autostart").await {
            Ok(v) => on.set(Some(v)),
            Err(code) => error.set(Some(code)),
        }
    });
    let toggle = move |_| {
        let enabled = !on.get_untracked().unwrap_or(false);
        spawn_local(async move {
            match ipc::call::<_, bool>("set_autostart", &AutostartArgs { enabled }).await {
                Ok(v) => {
                    on.set(Some(v));
                    error.set(None);
                }
                Err(code) => error.set(Some(code)),
            }
        });
    };
    view! {
        <div class="card">
            <h2>{move || c.t(Msg::RemindersSection)}</h2>
            <p class="muted small">{move || c.t(Msg::ReminderKeepRunning)}</p>
            <label class="check">
                <input type="checkbox" id="autostart" prop:checked=move || on.get().unwrap_or(false)
                    prop:disabled=move || on.get().is_none() on:change=toggle/>
                {move || c.t(Msg::Autostart)}
            </label>
            <Show when=move || error.get().is_some()>
                <p class="notice warn small">{move || error.get().map(|e| c.t(e.message())).unwrap_or_default()}</p>
            </Show>
        </div>
    }
}

fn answer_msg(o: &GrabOutcome) -> Msg {
    match o {
        GrabOutcome::Granted { .. } => Msg::GrabGranted,
        GrabOutcome::SoldOut => Msg::GrabSoldOut,
        GrabOutcome::LimitReached => Msg::GrabLimit,
        GrabOutcome::NotStarted { .. } => Msg::GrabNotStarted,
        GrabOutcome::Ended => Msg::GrabEnded,
        GrabOutcome::NotEligible => Msg::GrabNotEligible,
    }
}

/// `01:02:03` (or `2:03` under an hour).
fn clock_left(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn load(cal: RwSignal<Option<Calendar>>) {
    spawn_local(async move {
        if let Ok(c) = ipc::call0::<Calendar>("calendar").await {
            cal.set(Some(c));
        }
    });
}

#[component]
fn CampaignCard(
    entry: CalendarEntry,
    cal: RwSignal<Option<Calendar>>,
    tick: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    let c: Ctx = ctx();
    let camp = entry.campaign.clone();
    let id = camp.id;
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ErrorCode>);
    let answer = RwSignal::new(entry.answer.clone());
    let stock_left = entry.stock_left;
    let offset = move || cal.with(|c| c.as_ref().and_then(|c| c.offset));
    let open = move || grab_open(camp.release_at, camp.end_at, tick.get(), offset());
    let left = move || (camp.release_at - server_now(tick.get(), offset())).num_milliseconds();
    let title = {
        let camp = camp.clone();
        move || match c.lang.get() {
            Lang::ZhCn => camp.title_zh.clone(),
            Lang::En => camp.title_en.clone(),
        }
    };
    let press = move |_| {
        if busy.get_untracked() {
            return; // a double tap sends one request
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match ipc::call::<_, GrabOutcome>("grab", &GrabArgs { campaign_id: id }).await {
                Ok(o) => answer.set(Some(o)),
                Err(code) => error.set(Some(code)),
            }
            busy.set(false);
        });
    };
    let granted = move || matches!(answer.get(), Some(GrabOutcome::Granted { .. }));
    let focused = move || c.focus.get() == Some(id);
    // a clicked reminder opens this campaign: bring it into view
    Effect::new(move |_| {
        if focused() {
            if let Some(el) = document().get_element_by_id(&format!("campaign-{id}")) {
                el.scroll_into_view();
            }
        }
    });
    let upcoming = move || server_now(tick.get(), offset()) < camp.release_at;
    let reminder = entry.reminder.clone();
    view! {
        <li class="campaign" id=format!("campaign-{id}") class:focus=focused>
            <div class="campaign-head">
                <span class="badge campaign-cat">{move || c.t(crate::wallet::category_msg(camp.category))}</span>
                <div class="campaign-main">
                    <span class="coupon-title">{title}</span>
                    <span class="muted small">
                        {move || fill(c.t(Msg::ReleaseAt), &[("time", &when(camp.release_at))])}
                        " · "
                        <span id=format!("stock-{id}")>
                            {move || match stock_left {
                                Some(left) => fill(c.t(Msg::StockLeft), &[("left", &left.to_string()), ("n", &camp.stock.to_string())]),
                                None => fill(c.t(Msg::TotalStock), &[("n", &camp.stock.to_string())]),
                            }}
                        </span>
                    </span>
                </div>
                <span class="coupon-value">{move || fill(c.t(Msg::FaceValue), &[("v", &(camp.face_value_cents / 100).to_string())])}</span>
            </div>
            <div class="campaign-action">
                <span class="countdown-text" id=format!("countdown-{id}")>
                    {move || if open() { c.t(Msg::LiveNow).to_string() } else { fill(c.t(Msg::StartsIn), &[("left", &clock_left(left()))]) }}
                </span>
                <button type="button" class="primary grab" id=format!("grab-{id}")
                    prop:disabled=move || !open() || busy.get() || granted()
                    on:click=press>
                    {move || if busy.get() { c.t(Msg::Grabbing) } else { c.t(Msg::GrabButton) }}
                </button>
            </div>
            <p class="grab-answer" id=format!("grab-answer-{id}") role="status"
                class:ok=granted>
                {move || match (error.get(), answer.get()) {
                    (Some(ErrorCode::Offline), _) => c.t(Msg::GrabRetry).to_string(),
                    (Some(code), _) => c.t(code.message()).to_string(),
                    (None, Some(a)) => c.t(answer_msg(&a)).to_string(),
                    (None, None) => String::new(),
                }}
            </p>
            <Show when=upcoming>
                <ReminderRow id release_at=camp.release_at initial=reminder.clone() cal tick/>
            </Show>
        </li>
    }
}

#[component]
pub fn CalendarTab() -> impl IntoView {
    let c = ctx();
    let cal = RwSignal::new(None::<Calendar>);
    let tick = RwSignal::new(now());
    Effect::new(move |_| {
        c.snap.track();
        load(cal);
    });
    // measure the offset from the server clock each time the calendar opens
    spawn_local(async move {
        if let Ok(c) = ipc::call0::<Calendar>("measure_clock").await {
            cal.set(Some(c));
        }
    });
    let ticker = set_interval_with_handle(
        move || tick.set(now()),
        std::time::Duration::from_millis(200),
    )
    .ok();
    on_cleanup(move || {
        if let Some(h) = ticker {
            h.clear();
        }
    });
    let entries = move || cal.with(|c| c.as_ref().map(|c| c.entries.clone()).unwrap_or_default());
    let offset_text = move || match cal.with(|c| c.as_ref().and_then(|c| c.offset)) {
        Some(o) => fill(
            c.t(Msg::ClockOffset),
            &[("s", &format!("{:+.1}", o.offset_ms as f64 / 1000.0))],
        ),
        None => c.t(Msg::ClockUnknown).to_string(),
    };
    view! {
        <section class="calendar">
            <h1>{move || c.t(Msg::GrabTitle)}</h1>
            <p id="clock-offset" class="muted small">{offset_text}</p>
            <Show when=move || !entries().is_empty()
                fallback=move || view! { <p id="no-campaigns" class="notice">{move || c.t(Msg::NoCampaigns)}</p> }>
                <ul id="campaigns" class="list cards">
                    <For each=entries key=|e| (e.campaign.id, e.stock_left) let:entry>
                        <CampaignCard entry cal tick/>
                    </For>
                </ul>
            </Show>
        </section>
    }
}
