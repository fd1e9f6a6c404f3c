//! "Me": the account, the enrolled devices (any other can be revoked), start at login, the
//! language, the sync state, and signing out.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::{fill, pending_what, Lang, Msg};
use unionpass_core::ipc::{
    ChangePassword, GetAutostart, Logout, RevokeDevice, SetAutostart, SignOutEverywhere, SyncNow,
};
use unionpass_core::ErrorCode;

use crate::ctx::ctx;
use crate::fmt::{full, unbroken, when};
use crate::ipc;
use crate::widgets::{Joined, NewPasswordFields, VersionCard};

/// The member's enrolled devices; any but this one can be revoked here.
#[component]
fn DevicesCard() -> impl IntoView {
    let c = ctx();
    let devices = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.devices.clone()).unwrap_or_default())
    };
    let confirming = RwSignal::new(None::<i64>);
    let notice = RwSignal::new(false);
    let revoke = move |id: i64| {
        spawn_local(async move {
            if let Ok(s) = ipc::call(&RevokeDevice { device_id: id }).await {
                c.snap.set(Some(s));
                notice.set(true);
            }
            confirming.set(None);
        });
    };
    view! {
        <div class="card">
            <h2>{move || c.t(Msg::DevicesSection)}</h2>
            <Show when=move || !devices().is_empty()
                fallback=move || view! { <p class="muted">{move || c.t(Msg::NoDevices)}</p> }>
                <ul id="devices" class="list">
                    <For each=devices key=|d| d.id let:d>
                        <li class="device">
                            <div>
                                <span class="device-name">{d.name.clone()}</span>
                                {d.current.then(|| view! { <span class="badge">{move || c.t(Msg::ThisDevice)}</span> })}
                                <div class="muted small">
                                    {let at = d.created_at; move || unbroken(fill(c.t(Msg::EnrolledAt), &[("time", &full(at))]))}
                                    " · " <span class="mono">{d.device_kid.clone()}</span>
                                </div>
                            </div>
                            {(!d.current).then(|| {
                                let id = d.id;
                                view! {
                                    <Show when=move || confirming.get() == Some(id)
                                        fallback=move || view! {
                                            <button type="button" class="danger" id=format!("revoke-{id}")
                                                on:click=move |_| confirming.set(Some(id))>{move || c.t(Msg::Revoke)}</button>
                                        }>
                                        <p role="alert" class="small">{move || c.t(Msg::RevokeConfirm)}</p>
                                        <div class="row">
                                            <button type="button" on:click=move |_| confirming.set(None)>{move || c.t(Msg::Cancel)}</button>
                                            <button type="button" class="danger" id=format!("revoke-confirm-{id}")
                                                on:click=move |_| revoke(id)>{move || c.t(Msg::Revoke)}</button>
                                        </div>
                                    </Show>
                                }
                            })}
                        </li>
                    </For>
                </ul>
            </Show>
            <Show when=move || notice.get()>
                <p class="notice" role="status">{move || c.t(Msg::RevokeQueued)}</p>
            </Show>
        </div>
    }
}

#[component]
pub fn MeView() -> impl IntoView {
    let c = ctx();
    let profile = move || c.snap.with(|s| s.as_ref().and_then(|s| s.profile.clone()));
    let server = move || {
        c.snap.with(|s| {
            s.as_ref()
                .and_then(|s| s.server_url.clone())
                .unwrap_or_default()
        })
    };
    let last_ok = move || {
        c.snap
            .with(|s| s.as_ref().and_then(|s| s.sync.last_ok_at))
            .map(|t| when(t, c.lang.get()))
    };
    // a problem the member must act on is already the notice on top of every screen
    let last_error = move || {
        c.snap.with(|s| {
            s.as_ref()
                .filter(|s| s.sync.problem().is_none())
                .and_then(|s| s.sync.last_error)
        })
    };
    let confirming = RwSignal::new(false);
    let logout = ipc::action(move |req: Logout| async move {
        if let Ok(s) = ipc::call(&req).await {
            c.snap.set(Some(s));
        }
    });
    let busy = logout.pending();
    // signing out clears the device, the changes not yet uploaded too (a door's check-ins, a
    // coupon used offline): said, with the way to upload them first
    let waiting = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.sync.pending).unwrap_or(0))
    };
    let sync_now = c.sync_action();
    let syncing = sync_now.pending();
    view! {
        <section class="me">
            <h1>{move || c.t(Msg::TabMe)}</h1>
            <div class="card">
                <h2>{move || c.t(Msg::Account)}</h2>
                <p class="name">{move || profile().map(|p| p.name).unwrap_or_default()}</p>
                // the number with its label, as the passport says it, then the union: a phone breaks
                // the line between the two, never leaving a "·" at a line's end
                <p class="muted" id="me-member-no">{move || profile().map(|p| view! {
                    <Joined parts=vec![
                        format!("{} {}", c.t(Msg::MemberNo), p.member_no).into_any(),
                        p.union.name.into_any(),
                    ]/>
                })}</p>
            </div>
            <VersionCard/>
            <div class="card">
                <h2 id="language-heading">{move || c.t(Msg::Language)}</h2>
                <div class="choices" role="radiogroup" aria-labelledby="language-heading">
                    {Lang::ALL.into_iter().map(|l| view! {
                        <button type="button" role="radio" class="choice"
                            id=format!("lang-{}", l.tag())
                            class:active=move || c.lang.get() == l
                            aria-checked=move || (c.lang.get() == l).to_string()
                            on:click=move |_| c.choose_language(l)>{l.native_name()}</button>
                    }).collect_view()}
                </div>
            </div>
            <div class="card">
                <h2>{move || c.t(Msg::SyncSection)}</h2>
                <p>{move || last_ok().map(|t| fill(c.t(Msg::SyncedAt), &[("time", &t)])).unwrap_or_else(|| c.t(Msg::NeverSynced).to_string())}</p>
                <Show when=move || last_error().is_some()>
                    <p class="notice warn">{move || last_error().map(|e| c.t(e.message())).unwrap_or_default()}</p>
                </Show>
                <h2>{move || c.t(Msg::ServerSection)}</h2>
                <p class="muted mono">{server}</p>
            </div>
            <DevicesCard/>
            <AutostartCard/>
            <SecurityCard/>
            <div class="card">
                <Show
                    when=move || confirming.get()
                    fallback=move || view! {
                        <button id="logout" type="button" class="danger" on:click=move |_| confirming.set(true)>
                            {move || c.t(Msg::Logout)}
                        </button>
                    }
                >
                    <p role="alert">{move || c.t(Msg::LogoutConfirm)}</p>
                    <Show when=move || { waiting() > 0 }>
                        <p id="logout-waiting" class="notice warn" role="alert">
                            {move || {
                                let what = c.snap.with(|s| {
                                    s.as_ref().map(|s| pending_what(&s.sync.pending_kinds, c.lang.get())).unwrap_or_default()
                                });
                                fill(c.t(Msg::LogoutLoses), &[("n", &waiting().to_string()), ("what", &what)])
                            }}
                        </p>
                    </Show>
                    <div class="row">
                        // the safe way first
                        <Show when=move || { waiting() > 0 }>
                            <button id="logout-sync" type="button" prop:disabled=move || syncing.get()
                                on:click=move |_| ipc::dispatch_once(sync_now, SyncNow {})>
                                {move || if syncing.get() { c.t(Msg::Syncing) } else { c.t(Msg::SyncNow) }}
                            </button>
                        </Show>
                        <button id="logout-cancel" type="button" on:click=move |_| confirming.set(false)>
                            {move || c.t(Msg::Cancel)}
                        </button>
                        <button id="logout-confirm" type="button" class="danger" prop:disabled=move || busy.get() on:click=move |_| ipc::dispatch_once(logout, Logout {})>
                            {move || if waiting() > 0 { c.t(Msg::LogoutAnyway) } else { c.t(Msg::Logout) }}
                        </button>
                    </div>
                </Show>
            </div>
        </section>
    }
}

/// "Start at login", with why it matters for reminders.
#[component]
fn AutostartCard() -> impl IntoView {
    let c = ctx();
    let on = RwSignal::new(None::<bool>);
    let error = RwSignal::new(None::<ErrorCode>);
    spawn_local(async move {
        match ipc::call(&GetAutostart {}).await {
            Ok(v) => on.set(Some(v)),
            Err(code) => error.set(Some(code)),
        }
    });
    let toggle = move |_| {
        let enabled = !on.get_untracked().unwrap_or(false);
        spawn_local(async move {
            match ipc::call(&SetAutostart { enabled }).await {
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

/// Change the password (other devices are signed out) and sign out everywhere (a lost phone).
/// Both need the network.
#[component]
fn SecurityCard() -> impl IntoView {
    let c = ctx();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let again = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<usize>);
    let change = ipc::action(move |req: ChangePassword| async move {
        match ipc::call_told(&req).await {
            Ok(ended) => {
                done.set(Some(ended.ended));
                current.set(String::new());
                new.set(String::new());
                again.set(String::new());
            }
            // no member number was typed here: the wrong one is the current password
            Err(e) if e.code == ErrorCode::InvalidCredentials => {
                error.set(Some(c.t(Msg::ReauthWrongPassword).to_string()))
            }
            // too many attempts says how long to wait, when the server said
            Err(e) => error.set(Some(e.text(c.lang.get_untracked()))),
        }
    });
    let changing = change.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(None);
        if new.get_untracked() != again.get_untracked() {
            error.set(Some(c.t(Msg::PasswordsDiffer).to_string()));
            return;
        }
        error.set(None);
        ipc::dispatch_once(
            change,
            ChangePassword {
                current_password: current.get_untracked(),
                new_password: new.get_untracked(),
            },
        );
    };
    let confirming = RwSignal::new(false);
    let everywhere_error = RwSignal::new(None::<ErrorCode>);
    let everywhere = ipc::action(move |req: SignOutEverywhere| async move {
        match ipc::call(&req).await {
            Ok(s) => c.snap.set(Some(s)),
            Err(code) => everywhere_error.set(Some(code)),
        }
        confirming.set(false);
    });
    let ending = everywhere.pending();
    view! {
        <div class="card" id="security">
            <h2>{move || c.t(Msg::SecuritySection)}</h2>
            // folded: members come to 我的 for the language or the devices far more often
            <details class="advanced" id="change-password-section">
            <summary>{move || c.t(Msg::ChangePassword)}</summary>
            <form on:submit=submit novalidate=true>
                <label for="current-password">{move || c.t(Msg::CurrentPassword)}</label>
                <input id="current-password" type="password" autocomplete="current-password"
                    prop:value=move || current.get()
                    on:input=move |ev| current.set(event_target_value(&ev))/>
                <NewPasswordFields id="new-password" new=new again=again/>
                <p id="password-error" class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
                <Show when=move || done.get().is_some()>
                    <p id="password-changed" class="notice ok" role="status">
                        {move || fill(c.t(Msg::PasswordChanged), &[("n", &done.get().unwrap_or(0).to_string())])}
                    </p>
                </Show>
                <button id="change-password" type="submit"
                    prop:disabled=move || changing.get() || current.get().is_empty() || new.get().is_empty()>
                    {move || c.t(Msg::ChangePassword)}
                </button>
                <p class="muted small">{move || c.t(Msg::OnlineOnly)}</p>
            </form>
            </details>
            <h3 class="small">{move || c.t(Msg::SignOutEverywhere)}</h3>
            <p class="muted small">{move || c.t(Msg::SignOutEverywhereHint)}</p>
            <Show when=move || confirming.get()
                fallback=move || view! {
                    <button id="sign-out-everywhere" type="button" class="danger"
                        on:click=move |_| confirming.set(true)>{move || c.t(Msg::SignOutEverywhere)}</button>
                }>
                <p role="alert">{move || c.t(Msg::SignOutEverywhereConfirm)}</p>
                <div class="row">
                    <button type="button" on:click=move |_| confirming.set(false)>{move || c.t(Msg::Cancel)}</button>
                    <button id="sign-out-everywhere-confirm" type="button" class="danger"
                        prop:disabled=move || ending.get()
                        on:click=move |_| ipc::dispatch_once(everywhere, SignOutEverywhere {})>
                        {move || c.t(Msg::SignOutEverywhere)}
                    </button>
                </div>
            </Show>
            <Show when=move || everywhere_error.get().is_some()>
                <p class="notice warn" role="alert">{move || everywhere_error.get().map(|e| c.t(e.message())).unwrap_or_default()}</p>
            </Show>
        </div>
    }
}
