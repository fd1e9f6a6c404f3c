//! What the member should know about the app's version: a newer one can be installed (我的), or
//! this one is no longer served (a banner on every screen, the sign-in screen too), each with
//! this platform's download address to copy.

use leptos::prelude::*;
use unionpass_core::api::UpdateState;
use unionpass_core::i18n::{fill, Msg};

use crate::ctx::ctx;
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
                        {download(url)}
                    </div>
                }.into_any()),
                _ => None,
            }}
        </div>
    }
}
