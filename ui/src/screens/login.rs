use leptos::prelude::*;
use unionpass_core::i18n::{fill, pending_what, Msg};
use unionpass_core::ipc::Login;

use crate::ctx::ctx;
use crate::ipc;
use crate::widgets::{LangToggle, UpdateBanner};

#[component]
pub fn LoginView() -> impl IntoView {
    let c = ctx();
    let server = RwSignal::new(c.snap.with_untracked(|s| {
        s.as_ref()
            .and_then(|s| s.server_url.clone())
            .unwrap_or_default()
    }));
    // changes held for a member whose session the server ended: their number is filled in
    let member_no = RwSignal::new(c.snap.with_untracked(|s| {
        s.as_ref()
            .and_then(|s| s.held_for.clone())
            .unwrap_or_default()
    }));
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let login = ipc::action(move |req: Login| async move {
        match ipc::call_told(&req).await {
            Ok(s) => c.snap.set(Some(s)),
            // too many attempts says how long to wait, when the server said
            Err(e) => error.set(Some(e.text(c.lang.get_untracked()))),
        }
    });
    let busy = login.pending();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
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
        error.set(None);
        // a double tap sends one login
        ipc::dispatch_once(
            login,
            Login {
                server_url: server.get_untracked(),
                member_no: member_no.get_untracked(),
                password: password.get_untracked(),
            },
        );
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
                    // why the member was signed out; with changes kept for them, one note says
                    // that too, and whose they are
                    {move || {
                        let (code, held, who, kinds) = c.snap.with(|s| {
                            s.as_ref().map_or((None, 0, None, Vec::new()), |s| {
                                (s.signed_out, s.held, s.held_for.clone(), s.sync.pending_kinds.clone())
                            })
                        });
                        if held > 0 {
                            let text = move || {
                                let who = who.clone().unwrap_or_else(|| c.t(Msg::HeldSameAccount).to_string());
                                let what = pending_what(&kinds, c.lang.get());
                                fill(c.t(Msg::HeldChanges), &[("n", &held.to_string()), ("member", &who), ("what", &what)])
                            };
                            Some(view! { <p id="held-changes" class="notice warn" role="alert">{text}</p> }.into_any())
                        } else {
                            code.map(|code| view! {
                                <p id="signed-out" class="notice warn" role="alert">{move || c.t(code.message())}</p>
                            }.into_any())
                        }
                    }}
                    <UpdateBanner/>
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
