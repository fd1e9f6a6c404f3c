//! The root: which screen shows (loading, failed, login, or the signed-in tabs) and the tab bar.
//! Nothing imports this module; the screens and widgets below it share `ctx`, `fmt`, `ipc` and
//! `bench`.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::api::Role;
use unionpass_core::i18n::Msg;
use unionpass_core::ipc::{OpenActivity, OpenCampaign, StateChanged};
use unionpass_core::ErrorCode;

use crate::ctx::{ctx, Ctx, Place};
use crate::ipc;
use crate::screens::activities::ActivitiesList;
use crate::screens::calendar::CalendarTab;
use crate::screens::failed::FailedView;
use crate::screens::login::LoginView;
use crate::screens::me::MeView;
use crate::screens::passport::PassportView;
use crate::screens::points::PointsTab;
use crate::screens::scanner::ScannerTab;
use crate::screens::wallet::WalletTab;
use crate::widgets::{LangToggle, Notices, Rejections, SyncProblem, SyncStatus, UpdateBanner};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Screen {
    Loading,
    Failed(ErrorCode),
    Login,
    Main,
}

/// Five tabs at most, so the bottom bar fits a phone. Activities, coupon grabs and (for staff)
/// the scanner share one tab, as on the union's platform where grabs live on the 心悦活动 page:
/// they are all about showing up at the right moment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Passport,
    Activities,
    Wallet,
    Points,
    Me,
}

/// The parts of the activities tab.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    SignUps,
    Grab,
    Scanner,
}

#[component]
pub fn App() -> impl IntoView {
    let c = Ctx::provide();
    let failed = RwSignal::new(None::<ErrorCode>);

    c.refresh(failed);
    spawn_local(async move { ipc::on_event::<StateChanged>(move |()| c.refresh(failed)).await });
    // a click on a reminder's notification: show that campaign
    spawn_local(
        async move { ipc::on_event::<OpenCampaign>(move |id| c.focus.set(Some(id))).await },
    );
    // a click on a promotion's notification: show the activities
    spawn_local(async move {
        ipc::on_event::<OpenActivity>(move |_| c.go.set(Some(Place::Activities))).await
    });

    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", c.lang.get().tag());
        }
        document().set_title(Msg::AppName.text(c.lang.get()));
    });

    let screen = Memo::new(move |_| {
        match (
            failed.get(),
            c.snap.with(|s| s.as_ref().map(|s| s.logged_in)),
        ) {
            (_, Some(true)) => Screen::Main,
            (_, Some(false)) => Screen::Login,
            (Some(code), None) => Screen::Failed(code),
            (None, None) => Screen::Loading,
        }
    });

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
fn MainView() -> impl IntoView {
    let c = ctx();
    let tab = RwSignal::new(if c.focus.get_untracked().is_some() {
        Tab::Activities
    } else {
        Tab::Passport
    });
    let part = RwSignal::new(if c.focus.get_untracked().is_some() {
        Part::Grab
    } else {
        Part::SignUps
    });
    Effect::new(move |_| {
        if c.focus.get().is_some() {
            tab.set(Tab::Activities);
            part.set(Part::Grab);
        }
    });
    Effect::new(move |_| {
        if let Some(place) = c.go.get() {
            match place {
                Place::Wallet => tab.set(Tab::Wallet),
                Place::Activities => {
                    tab.set(Tab::Activities);
                    part.set(Part::SignUps);
                }
                Place::Grab => {
                    tab.set(Tab::Activities);
                    part.set(Part::Grab);
                }
            }
            c.go.set(None);
        }
    });
    // the content scrolls under a fixed top bar and tab bar; each tab opens at its top
    let main_ref = NodeRef::<leptos::html::Main>::new();
    Effect::new(move |_| {
        tab.track();
        if let Some(el) = main_ref.get_untracked() {
            el.set_scroll_top(0);
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
                on:click=move |_| {
                    tab.set(which);
                    if let Some(el) = main_ref.get_untracked() {
                        el.set_scroll_top(0);
                    }
                }>
                <span class="tab-icon" aria-hidden="true">{icon}</span>
                <span class="tab-label">{move || c.t(label)}</span>
            </button>
        }
    };
    let part_button = move |which: Part, id: &'static str, label: Msg| {
        view! {
            <button id=id type="button" role="tab" class="part" class:active=move || part.get() == which
                aria-selected=move || (part.get() == which).to_string()
                on:click=move |_| {
                    part.set(which);
                    if let Some(el) = main_ref.get_untracked() {
                        el.set_scroll_top(0);
                    }
                }>
                {move || c.t(label)}
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
                {tab_button(Tab::Activities, "tab-activities", "◷", Msg::TabActivities)}
                {tab_button(Tab::Wallet, "tab-wallet", "▤", Msg::TabWallet)}
                {tab_button(Tab::Points, "tab-points", "◆", Msg::TabPoints)}
                {tab_button(Tab::Me, "tab-me", "◉", Msg::TabMe)}
            </nav>
            // focusable: a screen with nothing to press (the passport on a phone) still scrolls
            // with the keyboard
            <main class="content" id="content" tabindex="0" node_ref=main_ref>
                <div class="page">
                    <UpdateBanner/>
                    <SyncProblem/>
                    <Notices/>
                    <Rejections on_wallet=Signal::derive(move || tab.get() == Tab::Wallet)/>
                    {move || match tab.get() {
                        Tab::Passport => view! { <PassportView/> }.into_any(),
                        Tab::Activities => view! {
                            <div class="parts" role="tablist">
                                {part_button(Part::SignUps, "part-signups", Msg::SegActivities)}
                                {part_button(Part::Grab, "part-grab", Msg::SegGrab)}
                                <Show when=is_staff>
                                    {part_button(Part::Scanner, "part-scanner", Msg::SegScanner)}
                                </Show>
                            </div>
                            {move || match part.get() {
                                Part::SignUps => view! { <ActivitiesList/> }.into_any(),
                                Part::Grab => view! { <CalendarTab/> }.into_any(),
                                Part::Scanner => view! { <ScannerTab/> }.into_any(),
                            }}
                        }.into_any(),
                        Tab::Wallet => view! { <WalletTab/> }.into_any(),
                        Tab::Points => view! { <PointsTab/> }.into_any(),
                        Tab::Me => view! { <MeView/> }.into_any(),
                    }}
                </div>
            </main>
        </div>
    }
}
