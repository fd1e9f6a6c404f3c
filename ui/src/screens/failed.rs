use leptos::prelude::*;
use unionpass_core::i18n::Msg;
use unionpass_core::ErrorCode;

use crate::ctx::ctx;
use crate::widgets::{LangToggle, UpdateWayOut};

/// The local store cannot be opened: say so, and what to do. When a newer version wrote it, the
/// member's data is still there and the way out is that version: offered here, as on 我的. The
/// language can be switched here too (for this session: the store that keeps it is unreadable).
#[component]
pub fn FailedView(code: ErrorCode) -> impl IntoView {
    let c = ctx();
    let newer = code == ErrorCode::DatabaseTooNew;
    view! {
        <main class="failed" role="alert">
            <div class="failed-top"><LangToggle/></div>
            <h1>{move || c.t(Msg::AppName)}</h1>
            <p id="fatal-error">{move || c.t(code.message())}</p>
            {newer.then(|| view! {
                <p id="fatal-kept">{move || c.t(Msg::DataKept)}</p>
                <UpdateWayOut/>
            })}
        </main>
    }
}
