//! A new password, typed twice: the password change (我的) and the reset with a code from the
//! union (the sign-in screen) ask for it the same way.

use leptos::prelude::*;
use unionpass_core::i18n::Msg;

use crate::ctx::ctx;

/// The two fields, labelled; `id` names the first, `{id}-again` the second.
#[component]
pub fn NewPasswordFields(
    id: &'static str,
    new: RwSignal<String>,
    again: RwSignal<String>,
) -> impl IntoView {
    let c = ctx();
    let again_id = format!("{id}-again");
    view! {
        <label for=id>{move || c.t(Msg::NewPassword)}</label>
        <input id=id type="password" autocomplete="new-password"
            prop:value=move || new.get()
            on:input=move |ev| new.set(event_target_value(&ev))/>
        <label for=again_id.clone()>{move || c.t(Msg::NewPasswordAgain)}</label>
        <input id=again_id type="password" autocomplete="new-password"
            prop:value=move || again.get()
            on:input=move |ev| again.set(event_target_value(&ev))/>
    }
}
