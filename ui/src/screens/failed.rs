use leptos::prelude::*;
use unionpass_core::i18n::Msg;
use unionpass_core::ErrorCode;

use crate::ctx::ctx;

/// The local store cannot be opened (e.g. written by a newer app): say so, and what to do.
#[component]
pub fn FailedView(code: ErrorCode) -> impl IntoView {
    let c = ctx();
    view! {
        <main class="failed" role="alert">
            <h1>{move || c.t(Msg::AppName)}</h1>
            <p id="fatal-error">{move || c.t(code.message())}</p>
        </main>
    }
}
