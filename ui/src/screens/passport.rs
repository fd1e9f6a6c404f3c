//! The electronic passport: who the member is, and the live QR that changes every 30 seconds
//! (made on this device with its key), with a countdown ring. Works offline.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::api::Role;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::ipc::GetActivities;
use unionpass_core::time::{format_clock, format_date};
use unionpass_core::ErrorCode;

use crate::ctx::ctx;
use crate::fmt::{end_time, now, ZONE};
use crate::ipc;
use crate::widgets::LiveQr;

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
    view! {
        <section class="passport" aria-labelledby="passport-title">
            // on a phone the tab under the thumb names the screen: its height goes to the code
            <h1 id="passport-title" class="phone-hidden">{move || c.t(Msg::PassportTitle)}</h1>
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
                    // on a phone, whose passport in one line above the code: staff at a door
                    // and the member read it there; the details with their labels come below
                    // the code (a screen reader reads those, not this)
                    <p id="passport-brief" class="passport-brief" aria-hidden="true">
                        {move || profile().map(|p| format!("{} · {}", p.member_no, p.union.name)).unwrap_or_default()}
                    </p>
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
                <LiveQr
                    wanted=Signal::derive(move || passport().is_some())
                    missing={move |error: Option<ErrorCode>| match (passport().is_some(), error) {
                        // said once, where the code was (made by the server's time, as the
                        // snapshot's `expired` is)
                        (true, Some(ErrorCode::PassportExpired)) => c.t(Msg::PassportNoCode),
                        (true, Some(code)) => c.t(code.message()),
                        (true, None) => c.t(Msg::Loading),
                        // synced, yet no credential: a session from before device enrolment
                        (false, _) if synced_once() => c.t(ErrorCode::DeviceNotEnrolled.message()),
                        (false, _) => c.t(Msg::PassportMissing),
                    }}
                />
                <p class="hint">{move || c.t(Msg::PassportHint)}</p>
            </div>
        </section>
    }
}
