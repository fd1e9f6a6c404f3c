//! The electronic passport: who the member is, and the live QR that changes every 30 seconds
//! (made on this device with its key), with a countdown ring. Works offline.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::api::Role;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::ipc::{GetActivities, GetLivePassport};
use unionpass_core::time::{format_clock, format_date};
use unionpass_core::view::LivePassport;
use unionpass_core::ErrorCode;

use crate::bench;
use crate::ctx::ctx;
use crate::fmt::{end_time, now, ZONE};
use crate::ipc;

/// The circumference of the countdown ring (r = 16).
const RING: f64 = 100.53;

#[component]
pub fn PassportView() -> impl IntoView {
    let c = ctx();
    let profile = move || c.snap.with(|s| s.as_ref().and_then(|s| s.profile.clone()));
    let passport = move || c.snap.with(|s| s.as_ref().and_then(|s| s.passport.clone()));
    let synced_once = move || {
        c.snap
            .with(|s| s.as_ref().is_some_and(|s| s.sync.last_ok_at.is_some()))
    };
    // today's activity the member has a place at: the passport is what gets them in
    let today = RwSignal::new(Vec::<unionpass_core::activity::Activity>::new());
    Effect::new(move |_| {
        c.snap.track();
        spawn_local(async move {
            if let Ok(v) = ipc::call(&GetActivities {}).await {
                let t = now();
                let day = |x: chrono::DateTime<chrono::Utc>| format_date(x, ZONE);
                today.set(
                    v.cards
                        .into_iter()
                        .filter(|card| {
                            card.mine.as_ref().is_some_and(|m| m.state.has_seats())
                                && card.activity.cancelled_at.is_none()
                                && day(card.activity.starts_at) == day(t)
                                && card.activity.ends_at > t
                        })
                        .map(|card| card.activity)
                        .collect(),
                );
            }
        });
    });
    let live = RwSignal::new(None::<LivePassport>);
    let live_error = RwSignal::new(None::<ErrorCode>);
    let clock = RwSignal::new(now());
    let fetching = StoredValue::new(false);
    let fetch = move || {
        if fetching.get_value() {
            return;
        }
        fetching.set_value(true);
        spawn_local(async move {
            match ipc::call(&GetLivePassport {}).await {
                Ok(l) => {
                    live.set(Some(l));
                    live_error.set(None);
                }
                Err(code) => {
                    live.set(None);
                    live_error.set(Some(code));
                }
            }
            fetching.set_value(false);
        });
    };
    // a new credential from sync (or the first one): make a code for it
    Effect::new(move |_| {
        if passport().is_some() {
            fetch();
        }
    });
    // every step: a fresh code, made on this device
    let ticker = set_interval_with_handle(
        move || {
            let t = now();
            clock.set(t);
            let due = live.with_untracked(|l| l.as_ref().is_some_and(|l| t >= l.step_ends_at));
            if due {
                fetch();
            }
        },
        std::time::Duration::from_millis(250),
    )
    .ok();
    on_cleanup(move || {
        if let Some(h) = ticker {
            h.clear();
        }
    });
    let qr_svg = Memo::new(move |_| {
        live.with(|l| l.as_ref().map(|l| l.qr_svg.clone()))
            .unwrap_or_default()
    });
    let left_ms = move || {
        live.with(|l| {
            l.as_ref()
                .map(|l| {
                    (l.step_ends_at - clock.get())
                        .num_milliseconds()
                        .clamp(0, 30_000)
                })
                .unwrap_or(0)
        })
    };

    Effect::new(move |_| {
        if !qr_svg.get().is_empty() {
            bench::qr_visible();
        }
    });

    view! {
        <section class="passport" aria-labelledby="passport-title">
            <h1 id="passport-title">{move || c.t(Msg::PassportTitle)}</h1>
            <div class="card">
                <div class="who">
                    <div class="name-row">
                        <span id="passport-name" class="name">{move || profile().map(|p| p.name).unwrap_or_default()}</span>
                        <span id="passport-role" class="badge role">
                            {move || match profile().map(|p| p.role) {
                                Some(Role::Staff) => c.t(Msg::RoleStaff),
                                _ => c.t(Msg::RoleMember),
                            }}
                        </span>
                    </div>
                    <dl>
                        <dt>{move || c.t(Msg::MemberNo)}</dt>
                        <dd id="passport-member-no">{move || profile().map(|p| p.member_no).unwrap_or_default()}</dd>
                        <dt>{move || c.t(Msg::WorkplaceUnion)}</dt>
                        <dd id="passport-union">{move || profile().map(|p| p.union.name).unwrap_or_default()}</dd>
                        <dt>{move || c.t(Msg::ValidUntil)}</dt>
                        <dd id="passport-valid-until">{move || passport().map(|p| format_date(p.valid_until, ZONE)).unwrap_or_default()}</dd>
                    </dl>
                    {move || today.get().into_iter().map(|a| {
                        let lang = c.lang.get();
                        // the day is today: the start's hour says the rest; an end on another
                        // day says which, as the activity's card does ("明天 00:00")
                        let at = format!(
                            "{}–{}",
                            format_clock(a.starts_at, ZONE),
                            end_time(a.starts_at, a.ends_at, lang)
                        );
                        view! {
                            <p class="notice info passport-today" id="passport-today">
                                {fill(c.t(Msg::TodayActivity), &[
                                    ("time", &at),
                                    ("title", a.title(lang)),
                                    ("place", a.place_in(lang)),
                                ])}
                            </p>
                        }
                    }).collect_view()}
                </div>
                <Show
                    when=move || !qr_svg.get().is_empty()
                    fallback=move || view! {
                        <p id="passport-missing" class="notice">
                            {move || match (passport().is_some(), live_error.get()) {
                                    (true, Some(code)) => c.t(code.message()),
                                    (true, None) => c.t(Msg::Loading),
                                    // synced, yet no credential: a session from before device enrolment
                                    (false, _) if synced_once() => c.t(ErrorCode::DeviceNotEnrolled.message()),
                                    (false, _) => c.t(Msg::PassportMissing),
                                }}
                        </p>
                    }
                >
                    <div id="passport-qr" class="qr" role="img"
                        aria-label=move || c.t(Msg::PassportQrLabel)
                        inner_html=move || qr_svg.get()></div>
                    <div class="countdown" aria-live="off">
                        <svg class="ring" viewBox="0 0 36 36" aria-hidden="true">
                            <circle class="ring-bg" cx="18" cy="18" r="16"/>
                            <circle class="ring-fg" cx="18" cy="18" r="16"
                                stroke-dasharray=RING.to_string()
                                stroke-dashoffset=move || format!("{:.2}", RING * (1.0 - left_ms() as f64 / 30_000.0))/>
                        </svg>
                        <span id="passport-countdown">
                            {move || fill(c.t(Msg::PassportRefreshIn), &[("s", &((left_ms() + 999) / 1000).to_string())])}
                        </span>
                    </div>
                    <p class="hint">{move || c.t(Msg::PassportLiveHint)}</p>
                </Show>
                <Show when=move || passport().is_some_and(|p| p.expired)>
                    <p id="passport-expired" class="notice warn" role="alert">{move || c.t(Msg::PassportExpired)}</p>
                </Show>
                <p class="hint">{move || c.t(Msg::PassportHint)}</p>
            </div>
        </section>
    }
}
