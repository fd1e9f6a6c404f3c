//! The grab calendar: upcoming and live campaigns with a countdown by the server's clock, and the
//! grab button, which opens exactly at release by that clock. One tap sends one request; the
//! shell stores its key first, so a second tap or a retry can never be granted twice.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::campaign::GrabOutcome;
use unionpass_core::i18n::{fill, Lang, Msg};
use unionpass_core::ipc::{ClearReminder, GetCalendar, Grab, MeasureClock, SetReminder};
use unionpass_core::reminder::{server_now, Reminder, ReminderState, DEFAULT_LEAD, LEADS};
use unionpass_core::view::{rest_of_double_tap, Calendar, CalendarEntry, CardState};
use unionpass_core::ErrorCode;

use crate::ctx::{ctx, Ctx, Place};
use crate::fmt::{category_msg, countdown, day_time, ticking, yuan};
use crate::ipc;
use crate::widgets::Joined;

/// "提醒我": the lead times, the reminder's state, and "cancel reminder". A lead whose time has
/// passed by the server clock is not offered.
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
    // `Some(lead)` sets (or changes) the reminder, `None` clears it
    let apply = move |lead: Option<i64>| {
        error.set(None);
        spawn_local(async move {
            let answer = match lead {
                Some(lead_minutes) => {
                    ipc::call(&SetReminder {
                        campaign_id: id,
                        lead_minutes,
                    })
                    .await
                }
                None => ipc::call(&ClearReminder { campaign_id: id }).await,
            };
            match answer {
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
    // a reminder fired (or moved, or removed) in the background shows as such once the calendar
    // is read again
    Effect::new(move |_| {
        cal.with(|cal| {
            if let Some(e) = cal
                .as_ref()
                .and_then(|cal| cal.entries.iter().find(|e| e.campaign.id == id))
            {
                if reminder.with_untracked(|r| r != &e.reminder) {
                    reminder.set(e.reminder.clone());
                }
            }
        })
    });
    let state_text = move || match reminder.get() {
        None => String::new(),
        Some(r) => match r.state {
            // its time has come by the server's clock: it fires now, whatever the last read said
            ReminderState::Pending if r.due_at <= server_now(tick.get(), offset()) => {
                c.t(Msg::ReminderFired).to_string()
            }
            ReminderState::Pending => {
                fill(c.t(Msg::ReminderSet), &[("n", &r.lead_minutes.to_string())])
            }
            ReminderState::Fired { .. } => c.t(Msg::ReminderFired).to_string(),
            ReminderState::Missed { .. } => c.t(Msg::ReminderMissedShort).to_string(),
            ReminderState::Cancelled => String::new(),
        },
    };
    let pending = move || {
        let now = server_now(tick.get(), offset());
        reminder.with(|r| {
            r.as_ref()
                .is_some_and(|r| r.state == ReminderState::Pending && r.due_at > now)
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
                            apply(Some(lead));
                        }
                    }>
                    {move || fill(c.t(Msg::RemindMe), &[("n", &quick_lead().unwrap_or(DEFAULT_LEAD).to_string())])}
                </button>
            </Show>
            <span class="small" id=format!("reminder-state-{id}") class:ok=pending>{state_text}</span>
            <div class="choices small-choices" role="group" aria-label=move || c.t(Msg::ReminderLeadsLabel)>
                // a lead whose time has passed is not offered (greyed, it read as broken)
                {LEADS.into_iter().map(|lead| view! {
                    <Show when={move || release_at - chrono::Duration::minutes(lead) > server_now(tick.get(), offset())}>
                        <button type="button" class="choice" id=format!("remind-{id}-{lead}")
                            class:active=move || pending() && reminder.with(|r| r.as_ref().is_some_and(|r| r.lead_minutes == lead))
                            aria-pressed=move || (pending() && reminder.with(|r| r.as_ref().is_some_and(|r| r.lead_minutes == lead))).to_string()
                            on:click=move |_| apply(Some(lead))>
                            {move || fill(c.t(Msg::ReminderLead), &[("n", &lead.to_string())])}
                        </button>
                    </Show>
                }).collect_view()}
                <Show when=move || reminder.with(|r| r.is_some())>
                    <button type="button" class="link" id=format!("remind-off-{id}")
                        on:click=move |_| apply(None)>{move || c.t(Msg::ReminderOff)}</button>
                </Show>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="notice warn small" role="alert">{move || error.get().map(|e| c.t(e.message())).unwrap_or_default()}</p>
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

fn load(cal: RwSignal<Option<Calendar>>) {
    spawn_local(async move {
        if let Ok(c) = ipc::call(&GetCalendar {}).await {
            cal.set(Some(c));
        }
    });
}

/// How often a grab whose answer did not come is sent again (same key) while the card is open.
const AUTO_RETRY: std::time::Duration = std::time::Duration::from_secs(3);
const AUTO_RETRIES: u32 = 5;

#[component]
fn CampaignCard(
    entry: CalendarEntry,
    cal: RwSignal<Option<Calendar>>,
    tick: RwSignal<DateTime<Utc>>,
    /// The last grab tap (campaign, the page's monotonic clock in ms), kept by the list: the
    /// answer rebuilds the card.
    last_grab: StoredValue<Option<(i64, f64)>>,
) -> impl IntoView {
    let c: Ctx = ctx();
    let camp = entry.campaign.clone();
    let id = camp.id;
    let error = RwSignal::new(None::<ErrorCode>);
    let answer = RwSignal::new(entry.answer.clone());
    let retries = RwSignal::new(0u32);
    // a tap before the release: answered at once, nothing is sent
    let early = RwSignal::new(false);
    let stock_left = entry.stock_left;
    let offset = move || cal.with(|c| c.as_ref().and_then(|c| c.offset));
    let server_time = move || server_now(tick.get(), offset());
    let stored = StoredValue::new(entry.clone());
    let state = move || stored.with_value(|e| e.state(server_time()));
    let left = move || (camp.release_at - server_time()).num_milliseconds();
    let title = {
        let camp = camp.clone();
        move || match c.lang.get() {
            Lang::ZhCn => camp.title_zh.clone(),
            Lang::En => camp.title_en.clone(),
        }
    };
    let grab = ipc::action(move |req: Grab| async move {
        error.set(None);
        match ipc::call(&req).await {
            Ok(o) => {
                retries.set(0);
                answer.set(Some(o));
                // the stock and the card's state follow the answer at once
                load(cal);
            }
            Err(code) => error.set(Some(code)),
        }
    });
    let busy = grab.pending();
    // a double tap sends one request
    let press = move |_| {
        last_grab.set_value(Some((id, crate::bench::perf_now())));
        retries.set(0);
        ipc::dispatch_once(grab, Grab { campaign_id: id })
    };
    // an answer that did not come: sent again with the same key, a few times, while still open
    Effect::new(move |_| {
        if error.get() == Some(ErrorCode::Offline) && retries.get_untracked() < AUTO_RETRIES {
            set_timeout(
                move || {
                    if error.get_untracked() == Some(ErrorCode::Offline)
                        && !grab.pending().get_untracked()
                    {
                        retries.update(|n| *n += 1);
                        ipc::dispatch_once(grab, Grab { campaign_id: id });
                    }
                },
                AUTO_RETRY,
            );
        }
    });
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
    let upcoming = move || server_time() < camp.release_at;
    let reminder = entry.reminder.clone();
    let offline = move || {
        c.snap
            .with(|s| s.as_ref().is_some_and(|s| s.sync.offline()))
    };
    Effect::new(move |_| {
        if state() != CardState::Upcoming && early.get_untracked() {
            early.set(false);
        }
    });
    let only_for = {
        let names = camp.eligible_union_names.clone();
        move || match names.as_slice() {
            [] => c.t(Msg::GrabNotEligibleButton).to_string(),
            [one] => fill(c.t(Msg::GrabOnlyFor), &[("union", one)]),
            [first, ..] => fill(
                c.t(Msg::GrabOnlyForMany),
                &[("union", first), ("n", &names.len().to_string())],
            ),
        }
    };
    let button_text = move || {
        if busy.get() {
            return c.t(Msg::Grabbing).to_string();
        }
        match state() {
            CardState::Upcoming => c.t(Msg::GrabWaitButton).to_string(),
            CardState::Open => c.t(Msg::GrabButton).to_string(),
            CardState::SoldOut => c.t(Msg::GrabSoldOutButton).to_string(),
            CardState::Held => c.t(Msg::GrabHeldButton).to_string(),
            CardState::NotEligible => only_for(),
            CardState::Ended => c.t(Msg::GrabEndedButton).to_string(),
        }
    };
    let button_enabled = move || match state() {
        CardState::Open => !busy.get() && !offline(),
        CardState::Held => true,
        _ => false,
    };
    // before the release the button looks closed but still hears a tap, to say why nothing
    // happened (a disabled button would swallow it silently)
    let waiting = move || state() == CardState::Upcoming && !offline();
    let on_button = move |ev| match state() {
        // the rest of a double tap stays on the answer
        CardState::Held => {
            if !rest_of_double_tap(last_grab.get_value(), id, crate::bench::perf_now()) {
                c.go.set(Some(Place::Wallet));
            }
        }
        CardState::Upcoming => early.set(true),
        _ => press(ev),
    };
    let stock_text = move || match stock_left {
        Some(0) => c.t(Msg::StockGone).to_string(),
        Some(left) => fill(
            c.t(Msg::StockLeft),
            &[("left", &left.to_string()), ("n", &camp.stock.to_string())],
        ),
        None => fill(c.t(Msg::TotalStock), &[("n", &camp.stock.to_string())]),
    };
    let times = move || {
        if upcoming() {
            fill(
                c.t(Msg::ReleaseAt),
                &[("time", &day_time(camp.release_at, c.lang.get()))],
            )
        } else if state() == CardState::Ended {
            // past, not a deadline still to come
            fill(
                c.t(Msg::EndedAt),
                &[("time", &day_time(camp.end_at, c.lang.get()))],
            )
        } else {
            fill(
                c.t(Msg::EndsAt),
                &[("time", &day_time(camp.end_at, c.lang.get()))],
            )
        }
    };
    let countdown_text = move || match state() {
        CardState::Upcoming => fill(
            c.t(Msg::StartsIn),
            &[("left", &countdown(left(), c.lang.get()))],
        ),
        CardState::Open => c.t(Msg::LiveNow).to_string(),
        _ => String::new(),
    };
    let answer_text = move || match (error.get(), answer.get()) {
        (Some(ErrorCode::Offline), _) => c.t(Msg::GrabRetry).to_string(),
        (Some(code), _) => c.t(code.message()).to_string(),
        (None, Some(a)) => c.t(answer_msg(&a)).to_string(),
        (None, None) if offline() && state() == CardState::Open => {
            c.t(Msg::GrabOffline).to_string()
        }
        // the countdown beside it says how long: not said twice
        (None, None) if early.get() && state() == CardState::Upcoming => {
            c.t(Msg::GrabTooEarly).to_string()
        }
        (None, None) => String::new(),
    };
    // the line beside the button: the countdown before the release; once open, "抢券进行中"
    // until there is something to say, which then takes its place (no blank kept under it)
    let has_countdown = move || match state() {
        CardState::Upcoming => true,
        CardState::Open => answer_text().is_empty(),
        _ => false,
    };
    // counting down to the release (not a card this member cannot grab)
    let counting = move || state() == CardState::Upcoming;
    let answer_line = move || {
        view! {
            <p class="grab-answer" id=format!("grab-answer-{id}") role="status"
                class:ok=granted class:room=counting>
                {answer_text}
            </p>
        }
    };
    view! {
        <li class="campaign" id=format!("campaign-{id}")
            // the campaign a reminder opened, until the member has an answer (a mark left on a
            // card that said "抢到了" read as an alarm)
            class:focus=move || focused() && answer.with(Option::is_none)
            class:inactive=move || !matches!(state(), CardState::Upcoming | CardState::Open)>
            <div class="campaign-head">
                <span class="badge campaign-cat">{move || c.t(category_msg(camp.category))}</span>
                <div class="campaign-main">
                    <span class="coupon-title">{title}</span>
                    // its parts with a "·" between them, never one left at a line's end or start
                    <Joined id=format!("campaign-times-{id}") parts=vec![
                        times.into_any(),
                        view! { <span id=format!("stock-{id}")>{stock_text}</span> }.into_any(),
                        (move || fill(c.t(Msg::PerMemberLimit), &[("n", &camp.per_member_limit.to_string())])).into_any(),
                    ]/>
                </div>
                <span class="coupon-value" id=format!("face-{id}")>{move || fill(c.t(Msg::FaceValue), &[("v", &yuan(camp.face_value_cents))])}</span>
            </div>
            <div class="campaign-action">
                <Show when=has_countdown fallback=answer_line>
                    <span class="countdown-text" id=format!("countdown-{id}")>{countdown_text}</span>
                </Show>
                <button type="button" class="primary grab" id=format!("grab-{id}")
                    class:secondary=move || state() == CardState::Held
                    class:waiting=waiting
                    aria-disabled=move || if waiting() { "true" } else { "false" }
                    prop:disabled=move || !button_enabled() && !waiting()
                    on:click=on_button>
                    {button_text}
                </button>
            </div>
            // under the countdown, before the release (a tap then is answered there, the
            // countdown kept); otherwise on the button's line
            <Show when=counting>{answer_line}</Show>
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
    let tick = ticking(std::time::Duration::from_millis(200));
    let last_grab = StoredValue::new(None::<(i64, f64)>);
    Effect::new(move |_| {
        c.snap.track();
        load(cal);
    });
    // measure the offset from the server clock each time the calendar opens
    spawn_local(async move {
        if let Ok(c) = ipc::call(&MeasureClock {}).await {
            cal.set(Some(c));
        }
    });
    let entries = move || cal.with(|c| c.as_ref().map(|c| c.entries.clone()).unwrap_or_default());
    let offset_text = move || match cal.with(|c| c.as_ref().and_then(|c| c.offset)) {
        Some(_) => c.t(Msg::ClockOffset).to_string(),
        None => c.t(Msg::ClockUnknown).to_string(),
    };
    view! {
        <section class="calendar">
            <h1 class="part-title">{move || c.t(Msg::GrabTitle)}</h1>
            <p id="clock-offset" class="muted small">{offset_text}</p>
            <Show when=move || !entries().is_empty()
                fallback=move || view! { <p id="no-campaigns" class="notice">{move || if c.snap.with(|s| s.as_ref().is_some_and(|s| s.sync.offline())) { c.t(Msg::NoCampaignsOffline) } else { c.t(Msg::NoCampaigns) }}</p> }>
                <ul id="campaigns" class="list cards">
                    <For each=entries key=|e| (e.campaign.id, e.stock_left, e.held, e.answer.as_ref().map(|a| a.code()), e.campaign.release_at) let:entry>
                        <CampaignCard entry cal tick last_grab/>
                    </For>
                </ul>
            </Show>
        </section>
    }
}
