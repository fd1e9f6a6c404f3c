//! What the member should know about the app's version: a newer one can be installed (我的), or
//! this one is no longer served (a banner on every screen, the sign-in screen too), each with
//! this platform's download address to copy, and, where this copy was installed from a package,
//! a button that installs the new version in place (the shell's updater checks its signature).

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::api::UpdateState;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::ipc::{GetUpdateSupport, InstallUpdate, UpdateInstalled};
use unionpass_core::ErrorCode;

use crate::ctx::ctx;
use crate::ipc;
use crate::widgets::CopyButton;

fn update() -> UpdateState {
    ctx()
        .snap
        .with(|s| s.as_ref().map(|s| s.update.clone()).unwrap_or_default())
}

/// The download address with a copy button, or whom to ask.
fn download(url: Option<String>) -> impl IntoView {
    let c = ctx();
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
        None => view! { <p class="muted">{move || c.t(Msg::UpdateNoDownload)}</p> }.into_any(),
    }
}

/// "Install the new version", shown only where this copy can replace itself; then what came of
/// it (installed and restarting, nothing newer, or why not, by code).
#[component]
fn InstallButton() -> impl IntoView {
    let c = ctx();
    let supported = RwSignal::new(false);
    spawn_local(async move {
        if let Ok(yes) = ipc::call(&GetUpdateSupport {}).await {
            supported.set(yes);
        }
    });
    let result = RwSignal::new(None::<Result<UpdateInstalled, ErrorCode>>);
    let install = ipc::action(move |req: InstallUpdate| async move {
        result.set(Some(ipc::call(&req).await));
    });
    let busy = install.pending();
    let outcome = move || {
        result.get().map(|r| match r {
            Ok(UpdateInstalled::Installed { version }) => view! {
                <p id="update-result" role="status">{move || fill(c.t(Msg::UpdateInstalled), &[("version", &version)])}</p>
            }
            .into_any(),
            Ok(UpdateInstalled::UpToDate) => view! {
                <p id="update-result" role="status">{move || c.t(Msg::UpdateUpToDate)}</p>
            }
            .into_any(),
            Err(code) => view! {
                <p id="update-error" class="notice warn small" role="alert" data-code=code.as_str()>
                    {move || c.t(code.message())}
                </p>
            }
            .into_any(),
        })
    };
    view! {
        <Show when=move || supported.get()>
            <p class="row">
                <button id="update-install" class="primary" prop:disabled=move || busy.get()
                    on:click=move |_| {
                        result.set(None);
                        ipc::dispatch_once(install, InstallUpdate {});
                    }>
                    {move || if busy.get() { c.t(Msg::UpdateInstalling) } else { c.t(Msg::UpdateInstall) }}
                </button>
            </p>
            {outcome}
        </Show>
    }
}

/// On every screen while this version is no longer served.
#[component]
pub fn UpdateBanner() -> impl IntoView {
    let c = ctx();
    move || match update() {
        UpdateState::Required {
            min_supported,
            download: url,
            ..
        } => Some(view! {
            <div class="notices" id="update-required" role="alert">
                <p>{move || fill(c.t(Msg::UpdateRequired), &[("version", &min_supported)])}</p>
                <InstallButton/>
                {download(url)}
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
        c.snap
            .with(|s| s.as_ref().map(|s| s.app_version.clone()).unwrap_or_default())
    };
    view! {
        <div class="card" id="version">
            <h2>{move || c.t(Msg::AboutApp)}</h2>
            <p class="muted" id="app-version">{move || fill(c.t(Msg::AppVersion), &[("version", &own())])}</p>
            {move || match update() {
                UpdateState::Available { latest, download: url } => Some(view! {
                    <div id="update-available">
                        <p><strong>{move || fill(c.t(Msg::UpdateAvailable), &[("version", &latest)])}</strong></p>
                        <InstallButton/>
                        {download(url)}
                    </div>
                }.into_any()),
                _ => None,
            }}
        </div>
    }
}
