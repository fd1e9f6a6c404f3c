//! The screens: login, and the signed-in shell with the passport and "me" tabs.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;
use unionpass_core::api::Role;
use unionpass_core::i18n::{fill, Lang, Msg};
use unionpass_core::time::{format_clock, format_date, format_minute, Zone};
use unionpass_core::view::{LivePassport, Snapshot};
use unionpass_core::ErrorCode;

use crate::ipc;

/// Members see times in their zone; Asia/Shanghai until a zone setting exists.
pub(crate) const ZONE: Zone = Zone::AsiaShanghai;

/// The page's clock (the UI is an edge: it reads the time only to choose how to show one).
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

/// `16:05` for today, `2026-11-28 16:05` otherwise, in the member's zone.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    if format_date(t, ZONE) == format_date(now(), ZONE) {
        format_clock(t, ZONE)
    } else {
        format_minute(t, ZONE)
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub snap: RwSignal<Option<Snapshot>>,
    pub lang: Memo<Lang>,
    /// The campaign a clicked reminder asked to show.
    pub focus: RwSignal<Option<i64>>,
}

impl Ctx {
    pub fn t(&self, m: Msg) -> &'static str {
        m.text(self.lang.get())
    }
}

pub(crate) fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Screen {
    Loading,
    Failed(ErrorCode),
    Login,
    Main,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Passport,
    Grab,
    Wallet,
    Points,
    Scanner,
    Me,
}

fn refresh(snap: RwSignal<Option<Snapshot>>, failed: RwSignal<Option<ErrorCode>>) {
    spawn_local(async move {
        match ipc::call0::<Snapshot>("snapshot").await {
            Ok(s) => {
                snap.set(Some(s));
                failed.set(None);
            }
            Err(code) => failed.set(Some(code)),
        }
    });
}

#[component]
pub fn App() -> impl IntoView {
    let snap = RwSignal::new(None::<Snapshot>);
    let failed = RwSignal::new(None::<ErrorCode>);
    let lang =
        Memo::new(move |_| snap.with(|s| s.as_ref().map(|s| s.language).unwrap_or_default()));
    let focus = RwSignal::new(None::<i64>);
    provide_context(Ctx { snap, lang, focus });

    refresh(snap, failed);
    spawn_local(async move { ipc::on_event("state-changed", move || refresh(snap, failed)).await });
    // a click on a reminder's notification: show that campaign
    spawn_local(async move {
        ipc::on_event_payload::<i64>("open-campaign", move |id| focus.set(Some(id))).await
    });

    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.get().tag());
        }
        document().set_title(Msg::AppName.text(lang.get()));
    });

    let screen =
        Memo::new(
            move |_| match (failed.get(), snap.with(|s| s.as_ref().map(|s| s.logged_in))) {
                (_, Some(true)) => Screen::Main,
                (_, Some(false)) => Screen::Login,
                (Some(code), None) => Screen::Failed(code),
                (None, None) => Screen::Loading,
            },
        );

    move || match screen.get() {
        Screen::Loading => {
            view! { <p class="loading" role="status">{move || ctx().t(Msg::Loading)}</p> }
                .into_any()
        }
        Screen::Failed(code) => view! { <FailedView code/> }.into_any(),
        Screen::Login => view! { <LoginView/> }.into_any(),
        Screen::Main => view! { <MainView/> }.into_any(),
    }
}

#[component]
fn FailedView(code: ErrorCode) -> impl IntoView {
    let c = ctx();
    view! {
        <main class="failed" role="alert">
            <h1>{move || c.t(Msg::AppName)}</h1>
            <p id="fatal-error">{move || c.t(code.message())}</p>
        </main>
    }
}

#[derive(Serialize)]
struct LanguageArgs {
    language: Lang,
}

fn choose_language(lang: Lang) {
    let c = ctx();
    spawn_local(async move {
        if let Ok(s) =
            ipc::call::<_, Snapshot>("set_language", &LanguageArgs { language: lang }).await
        {
            c.snap.set(Some(s));
        }
    });
}

/// A one-tap switch to the other language, shown on every screen.
#[component]
fn LangToggle() -> impl IntoView {
    let c = ctx();
    let other = move || match c.lang.get() {
        Lang::ZhCn => Lang::En,
        Lang::En => Lang::ZhCn,
    };
    view! {
        <button
            id="lang-toggle"
            class="lang-toggle"
            type="button"
            aria-label=move || format!("{}: {}", c.t(Msg::Language), other().native_name())
            on:click=move |_| choose_language(other())
        >
            {move || other().native_name()}
        </button>
    }
}

#[derive(Serialize)]
struct LoginArgs {
    server_url: String,
    member_no: String,
    password: String,
}

#[component]
fn LoginView() -> impl IntoView {
    let c = ctx();
    let server = RwSignal::new(c.snap.with_untracked(|s| {
        s.as_ref()
            .and_then(|s| s.server_url.clone())
            .unwrap_or_default()
    }));
    let member_no = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return; // a double tap sends one login
        }
        let lang = c.lang.get_untracked();
        let missing = if member_no.get_untracked().trim().is_empty() {
            Some(Msg::MemberNo)
        } else if password.get_untracked().is_empty() {
            Some(Msg::Password)
        } else {
            None
        };
        if let Some(field) = missing {
            error.set(Some(fill(
                Msg::ErrFieldRequired.text(lang),
                &[("field", field.text(lang))],
            )));
            return;
        }
        busy.set(true);
        error.set(None);
        let args = LoginArgs {
            server_url: server.get_untracked(),
            member_no: member_no.get_untracked(),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match ipc::call::<_, Snapshot>("login", &args).await {
                Ok(s) => c.snap.set(Some(s)),
                Err(code) => {
                    error.set(Some(
                        code.message().text(c.lang.get_untracked()).to_string(),
                    ));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <main class="login">
            <div class="login-top"><LangToggle/></div>
            <div class="login-card">
                <div class="logo" aria-hidden="true">"工"</div>
                <h1>{move || c.t(Msg::AppName)}</h1>
                <p class="tagline">{move || c.t(Msg::Tagline)}</p>
                <form on:submit=submit novalidate=true>
                    <h2>{move || c.t(Msg::LoginTitle)}</h2>
                    <label for="member-no">{move || c.t(Msg::MemberNo)}</label>
                    <input id="member-no" name="member-no" autocomplete="username" inputmode="text"
                        prop:value=move || member_no.get()
                        on:input=move |ev| member_no.set(event_target_value(&ev))/>
                    <label for="password">{move || c.t(Msg::Password)}</label>
                    <input id="password" name="password" type="password" autocomplete="current-password"
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev))/>
                    <details class="advanced">
                        <summary>{move || c.t(Msg::ServerSection)}</summary>
                        <label for="server-url">{move || c.t(Msg::ServerUrl)}</label>
                        <input id="server-url" name="server-url" type="url" inputmode="url"
                            prop:value=move || server.get()
                            on:input=move |ev| server.set(event_target_value(&ev))/>
                    </details>
                    <p id="login-error" class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
                    <button id="login-submit" class="primary" type="submit" prop:disabled=move || busy.get()>
                        {move || if busy.get() { c.t(Msg::LoggingIn) } else { c.t(Msg::LoginButton) }}
                    </button>
                </form>
            </div>
        </main>
    }
}

#[component]
fn MainView() -> impl IntoView {
    let c = ctx();
    let tab = RwSignal::new(if c.focus.get_untracked().is_some() {
        Tab::Grab
    } else {
        Tab::Passport
    });
    Effect::new(move |_| {
        if c.focus.get().is_some() {
            tab.set(Tab::Grab);
        }
    });
    let is_staff = move || {
        c.snap.with(|s| {
            s.as_ref()
                .and_then(|s| s.profile.as_ref())
                .is_some_and(|p| p.role == Role::Staff)
        })
    };
    let tab_button = move |which: Tab, id: &'static str, icon: &'static str, label: Msg| {
        view! {
            <button id=id type="button" class="tab" class:active=move || tab.get() == which
                aria-current=move || if tab.get() == which { "page" } else { "false" }
                on:click=move |_| tab.set(which)>
                <span class="tab-icon" aria-hidden="true">{icon}</span>
                <span class="tab-label">{move || c.t(label)}</span>
            </button>
        }
    };
    view! {
        <div class="shell">
            <header class="topbar">
                <span class="brand">{move || c.t(Msg::AppName)}</span>
                <SyncStatus/>
                <LangToggle/>
            </header>
            <nav class="tabs" aria-label=move || c.t(Msg::AppName)>
                {tab_button(Tab::Passport, "tab-passport", "▣", Msg::TabPassport)}
                {tab_button(Tab::Grab, "tab-grab", "◷", Msg::TabGrab)}
                {tab_button(Tab::Wallet, "tab-wallet", "▤", Msg::TabWallet)}
                {tab_button(Tab::Points, "tab-points", "◆", Msg::TabPoints)}
                <Show when=is_staff>
                    {tab_button(Tab::Scanner, "tab-scanner", "◎", Msg::TabScanner)}
                </Show>
                {tab_button(Tab::Me, "tab-me", "◉", Msg::TabMe)}
            </nav>
            <main class="content">
                <crate::calendar::Notices/>
                {move || match tab.get() {
                    Tab::Passport => view! { <PassportView/> }.into_any(),
                    Tab::Grab => view! { <crate::calendar::CalendarTab/> }.into_any(),
                    Tab::Wallet => view! { <crate::wallet::WalletTab/> }.into_any(),
                    Tab::Points => view! { <crate::points::PointsTab/> }.into_any(),
                    Tab::Scanner => view! { <crate::scanner::ScannerTab/> }.into_any(),
                    Tab::Me => view! { <MeView/> }.into_any(),
                }}
            </main>
        </div>
    }
}

/// Always visible: synced at hh:mm, syncing, offline, or n changes waiting; and "sync now".
#[component]
fn SyncStatus() -> impl IntoView {
    let c = ctx();
    let sync = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.sync.clone()).unwrap_or_default())
    };
    let text = move || {
        let s = sync();
        let lang = c.lang.get();
        if s.syncing {
            return Msg::Syncing.text(lang).to_string();
        }
        if s.pending > 0 {
            return fill(
                Msg::ChangesWaiting.text(lang),
                &[("n", &s.pending.to_string())],
            );
        }
        match s.last_ok_at {
            Some(t) => fill(Msg::SyncedAt.text(lang), &[("time", &when(t))]),
            None => Msg::NeverSynced.text(lang).to_string(),
        }
    };
    let busy = RwSignal::new(false);
    let sync_now = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            if let Ok(s) = ipc::call0::<Snapshot>("sync_now").await {
                c.snap.set(Some(s));
            }
            busy.set(false);
        });
    };
    view! {
        <div class="sync" role="status" aria-live="polite">
            <Show when=move || sync().offline()>
                <span id="offline-badge" class="badge offline" title=move || c.t(Msg::OfflineHint)>
                    {move || c.t(Msg::Offline)}
                </span>
            </Show>
            <span id="sync-status" class="sync-text">{text}</span>
            <button id="sync-now" type="button" class="link"
                prop:disabled=move || busy.get() || sync().syncing
                on:click=sync_now>{move || c.t(Msg::SyncNow)}</button>
        </div>
    }
}

static QR_REPORTED: AtomicBool = AtomicBool::new(false);

#[derive(Serialize)]
struct ReadyArgs {
    what: &'static str,
}

/// The circumference of the countdown ring (r = 16).
const RING: f64 = 100.53;

#[component]
fn PassportView() -> impl IntoView {
    let c = ctx();
    let profile = move || c.snap.with(|s| s.as_ref().and_then(|s| s.profile.clone()));
    let passport = move || c.snap.with(|s| s.as_ref().and_then(|s| s.passport.clone()));
    let synced_once = move || {
        c.snap
            .with(|s| s.as_ref().is_some_and(|s| s.sync.last_ok_at.is_some()))
    };
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
            match ipc::call0::<LivePassport>("live_passport").await {
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
        if !qr_svg.get().is_empty() && !QR_REPORTED.swap(true, Ordering::SeqCst) {
            // after the frame that shows it
            request_animation_frame(|| {
                spawn_local(async {
                    let _ = ipc::call::<_, ()>("ui_ready", &ReadyArgs { what: "qr_visible" }).await;
                })
            });
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

#[derive(Serialize)]
struct RevokeArgs {
    device_id: i64,
}

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
            if let Ok(s) =
                ipc::call::<_, Snapshot>("revoke_device", &RevokeArgs { device_id: id }).await
            {
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
                                    {let at = d.created_at; move || fill(c.t(Msg::EnrolledAt), &[("time", &when(at))])}
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
                                            <button type="button" class="danger" id=format!("revoke-confirm-{id}")
                                                on:click=move |_| revoke(id)>{move || c.t(Msg::Revoke)}</button>
                                            <button type="button" on:click=move |_| confirming.set(None)>{move || c.t(Msg::Cancel)}</button>
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
fn MeView() -> impl IntoView {
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
            .map(when)
    };
    let last_error = move || c.snap.with(|s| s.as_ref().and_then(|s| s.sync.last_error));
    let confirming = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let logout = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            if let Ok(s) = ipc::call0::<Snapshot>("logout").await {
                c.snap.set(Some(s));
            }
            busy.set(false);
        });
    };
    view! {
        <section class="me">
            <h1>{move || c.t(Msg::TabMe)}</h1>
            <div class="card">
                <h2>{move || c.t(Msg::Account)}</h2>
                <p class="name">{move || profile().map(|p| p.name).unwrap_or_default()}</p>
                <p class="muted">{move || profile().map(|p| format!("{} · {}", p.member_no, p.union.name)).unwrap_or_default()}</p>
            </div>
            <DevicesCard/>
            <crate::calendar::AutostartCard/>
            <div class="card">
                <h2 id="language-heading">{move || c.t(Msg::Language)}</h2>
                <div class="choices" role="radiogroup" aria-labelledby="language-heading">
                    {Lang::ALL.into_iter().map(|l| view! {
                        <button type="button" role="radio" class="choice"
                            id=format!("lang-{}", l.tag())
                            class:active=move || c.lang.get() == l
                            aria-checked=move || (c.lang.get() == l).to_string()
                            on:click=move |_| choose_language(l)>{l.native_name()}</button>
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
                    <div class="row">
                        <button id="logout-confirm" type="button" class="danger" prop:disabled=move || busy.get() on:click=logout>
                            {move || c.t(Msg::Logout)}
                        </button>
                        <button id="logout-cancel" type="button" on:click=move |_| confirming.set(false)>
                            {move || c.t(Msg::Cancel)}
                        </button>
                    </div>
                </Show>
            </div>
        </section>
    }
}
