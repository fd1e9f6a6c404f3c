use leptos::prelude::*;
use unionpass_core::i18n::{Lang, Msg};

use crate::ctx::ctx;

/// A one-tap switch to the other language, shown on every screen.
#[component]
pub fn LangToggle() -> impl IntoView {
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
            on:click=move |_| c.choose_language(other())
        >
            {move || other().native_name()}
        </button>
    }
}
