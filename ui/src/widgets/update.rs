//! What the member should know about the app's version: a newer one can be installed (我的), or
//! this one is no longer served (a banner on every screen, the sign-in screen too), each with
//! this platform's download address to copy, and, where this copy was installed from a package,
//! a button that installs the new version in place (the shell's updater checks its signature).

use leptos::prelude::*;
use unionpass_core::api::UpdateState;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::ipc::{AppInfo, GetAppInfo, InstallUpdate};
use unionpass_core::ErrorCode;

use crate::ctx::ctx;
use crate::ipc;
use crate::widgets::CopyButton;

fn update() -> UpdateState {
    ctx()
        .snap
        .with(|s| s.as_ref().map(|s| s.update.clone()).unwrap_or_default())
}

/// An install and what came of it, made once per card: the card's view is rebuilt with each new
/// snapshot (a sync), and an install in progress must stay in progress (and its answer shown).
#[derive(Clone, Copy)]
struct Installer {
    result: RwSignal<Option<Result<Option<String>, ErrorCode>>>,
    action: Action<InstallUpdate, ()>,
}

impl Installer {
    fn new() -> Installer {
        let result = RwSignal::new(None);
        let action = ipc::action(move |req: InstallUpdate| async move {
            result.set(Some(ipc::call(&req).await));
        });
        Installer { result, action }
    }
}

/// Whether this copy can replace itself (installed from a package the updater handles).
fn installable() -> bool {
    ctx()
        .snap
        .with(|s| s.as_ref().is_some_and(|s| s.update_installable))
}

/// What came of an install leaves the member to install by hand: it failed, or the union has
/// no package for this copy.
fn by_hand(result: &Option<Result<Option<String>, ErrorCode>>) -> bool {
    matches!(result, Some(Err(_) | Ok(None)))
}

/// Whether the install button is still worth pressing: not once it installed, nor when trying
/// again cannot help (nothing for this copy; a package without the union's signature, which a
/// second download would fetch again).
fn worth_trying(result: &Option<Result<Option<String>, ErrorCode>>) -> bool {
    match result {
        None => true,
        Some(Err(code)) => *code != ErrorCode::UpdateSignatureInvalid,
        Some(Ok(_)) => false,
    }
}

/// The download address with a copy button, or whom to ask: the one instruction for installing
/// by hand, so not while the install button can still do it (a copy that can replace itself),
/// but again once an install came to nothing.
fn download(url: Option<String>, installer: Installer, installable: Signal<bool>) -> impl IntoView {
    let c = ctx();
    let failed = move || installer.result.with(by_hand);
    match url {
        Some(url) => view! {
            <p class="row">
                <span class="muted">{move || c.t(Msg::UpdateDownload)}</span>
                " "
                <code id="update-download">{url.clone()}</code>
                " "
                <CopyButton id="update-copy" text=url target="update-download"/>
            </p>
        }
        .into_any(),
        None => (move || {
            (!installable.get() || failed()).then(|| {
                view! { <p class="muted" id="update-ask">{move || c.t(Msg::UpdateNoDownload)}</p> }
            })
        })
        .into_any(),
    }
}

/// "Install the new version", shown only where this copy can replace itself and while pressing
/// it can still help ("Try installing again" after a failure); then what came of it (installed
/// and restarting, nothing for this copy, or why not, by code).
#[component]
fn InstallButton(installer: Installer, #[prop(into)] installable: Signal<bool>) -> impl IntoView {
    let c = ctx();
    let Installer {
        result,
        action: install,
    } = installer;
    let busy = install.pending();
    // what came of it: installed (restarting), nothing newer, or why not
    let said = move || {
        result.get().map(|r| {
            let text = match &r {
                Ok(Some(version)) => fill(c.t(Msg::UpdateInstalled), &[("version", version)]),
                Ok(None) => c.t(Msg::UpdateNoPackage).to_string(),
                Err(code) => c.t(code.message()).to_string(),
            };
            let code = r.err().map(ErrorCode::as_str);
            view! {
                <p id="update-result" class:notice=code.is_some() class:warn=code.is_some()
                    role="status" data-code=code>{text}</p>
            }
        })
    };
    let label = move || {
        if busy.get() {
            c.t(Msg::UpdateInstalling)
        } else if result.with(|r| matches!(r, Some(Err(_)))) {
            c.t(Msg::UpdateRetry)
        } else {
            c.t(Msg::UpdateInstall)
        }
    };
    let button = move || {
        result.with(worth_trying).then(|| {
            view! {
                <p class="row">
                    // after a failure the warning above speaks; trying again is the quieter button
                    <button id="update-install" class="primary" prop:disabled=move || busy.get()
                        class:secondary=move || result.with(|r| matches!(r, Some(Err(_))))
                        on:click=move |_| {
                            result.set(None);
                            ipc::dispatch_once(install, InstallUpdate {});
                        }>
                        {label}
                    </button>
                </p>
            }
        })
    };
    // what came of the last try, then the button to try again: the reason is read first
    move || installable.get().then(|| view! { {said} {button} })
}

/// On every screen while this version is no longer served.
#[component]
pub fn UpdateBanner() -> impl IntoView {
    let c = ctx();
    let installer = Installer::new();
    move || match update() {
        UpdateState::Required {
            min_supported,
            download: url,
            ..
        } => Some(view! {
            <div class="notices" id="update-required" role="alert">
                <p>{move || fill(c.t(Msg::UpdateRequired), &[("version", &min_supported)])}</p>
                <InstallButton installer installable=Signal::derive(installable)/>
                {download(url, installer, Signal::derive(installable))}
            </div>
        }),
        _ => None,
    }
}

/// 我的: this version, and a newer one when there is.
#[component]
pub fn VersionCard() -> impl IntoView {
    let c = ctx();
    let own = move || {
        c.snap.with(|s| {
            s.as_ref()
                .map(|s| s.app_version.clone())
                .unwrap_or_default()
        })
    };
    let installer = Installer::new();
    view! {
        <div class="card" id="version">
            <h2>{move || c.t(Msg::AboutApp)}</h2>
            <p class="muted" id="app-version">{move || fill(c.t(Msg::AppVersion), &[("version", &own())])}</p>
            {move || match update() {
                UpdateState::Available { latest, download: url } => Some(view! {
                    <div id="update-available">
                        <p><strong>{move || fill(c.t(Msg::UpdateAvailable), &[("version", &latest)])}</strong></p>
                        <InstallButton installer installable=Signal::derive(installable)/>
                        {download(url, installer, Signal::derive(installable))}
                    </div>
                }.into_any()),
                _ => None,
            }}
        </div>
    }
}

/// The way out when the local store was written by a newer version of the app (there is no
/// snapshot then, so this copy is asked directly): its version, and the install button where it
/// can replace itself (from the default server), else whom to ask for the installer.
#[component]
pub fn UpdateWayOut() -> impl IntoView {
    let c = ctx();
    let info = RwSignal::new(None::<AppInfo>);
    leptos::task::spawn_local(async move {
        if let Ok(found) = ipc::call(&GetAppInfo {}).await {
            info.set(Some(found));
        }
    });
    let can = Signal::derive(move || info.with(|i| i.as_ref().is_some_and(|i| i.installable)));
    let installer = Installer::new();
    // whom to ask, as on 我的, once this copy has said whether it can install
    let ask = move || {
        info.with(Option::is_some)
            .then(|| download(None, installer, can))
    };
    view! {
        <div id="update-way-out">
            <p class="muted" id="app-version">
                {move || info.with(|i| i.as_ref().map(|i| fill(c.t(Msg::AppVersion), &[("version", &i.version)])))}
            </p>
            <InstallButton installer installable=can/>
            {ask}
        </div>
    }
}
