//! The grab calendar: upcoming and live campaigns with a countdown by the server's clock, and the
//! grab button, which opens exactly at release by that clock. One tap sends one request; the
//! shell stores its key first, so a second tap or a retry can never be granted twice.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;
use unionpass_core::campaign::GrabOutcome;
use unionpass_core::i18n::{fill, Lang, Msg};
use unionpass_core::reminder::{grab_open, server_now};
use unionpass_core::view::{Calendar, CalendarEntry};
use unionpass_core::ErrorCode;

use crate::app::{ctx, now, when, Ctx};
use crate::ipc;

#[derive(Serialize)]
struct GrabArgs {
    campaign_id: i64,
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
    view! {
        <li class="campaign" id=format!("campaign-{id}")>
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
