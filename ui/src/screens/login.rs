use leptos::prelude::*;
use unionpass_core::i18n::{fill, pending_what, Msg};
use unionpass_core::ipc::{Login, ResetPassword};
use unionpass_core::ErrorCode;

use crate::ctx::ctx;
use crate::ipc;
use crate::widgets::{LangToggle, NewPasswordFields, UpdateBanner};

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
    // a forgotten password: the form for the code union staff give, in place of the sign-in
    let resetting = RwSignal::new(false);

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
                <Show when=move || resetting.get()>
                    <ResetForm server=server member_no=member_no back=resetting/>
                </Show>
                <form on:submit=submit novalidate=true class:hidden=move || resetting.get()>
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
                            Some(view! {
                                <div id="held-changes" class="notice warn session-ended">
                                    <p role="alert">{text}</p>
                                    <SessionEndedWhy/>
                                </div>
                            }.into_any())
                        } else {
                            code.map(|code| view! {
                                <div id="signed-out" class="notice warn session-ended">
                                    <p role="alert">{move || c.t(code.message())}</p>
                                    {(code == ErrorCode::SessionEnded).then(|| view! { <SessionEndedWhy/> })}
                                </div>
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
                    <ServerField server=server id="server-url"/>
                    <p id="login-error" class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
                    <button id="login-submit" class="primary" type="submit" prop:disabled=move || busy.get()>
                        {move || if busy.get() { c.t(Msg::LoggingIn) } else { c.t(Msg::LoginButton) }}
                    </button>
                    <button id="forgot-password" type="button" class="link login-aside"
                        on:click=move |_| { error.set(None); resetting.set(true); }>
                        {move || c.t(Msg::ForgotPassword)}
                    </button>
                </form>
            </div>
        </main>
    }
}

/// The server address, folded away: members rarely need it.
#[component]
fn ServerField(server: RwSignal<String>, id: &'static str) -> impl IntoView {
    let c = ctx();
    view! {
        <details class="advanced">
            <summary>{move || c.t(Msg::ServerSection)}</summary>
            <label for=id>{move || c.t(Msg::ServerUrl)}</label>
            <input id=id name="server-url" type="url" inputmode="url"
                prop:value=move || server.get()
                on:input=move |ev| server.set(event_target_value(&ev))/>
        </details>
    }
}

/// A forgotten password: the member number, the one-time code union staff gave, a new password
/// twice; then signed in with it (online).
#[component]
fn ResetForm(
    server: RwSignal<String>,
    member_no: RwSignal<String>,
    back: RwSignal<bool>,
) -> impl IntoView {
    let c = ctx();
    let code = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let again = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let reset = ipc::action(move |req: ResetPassword| async move {
        match ipc::call_told(&req).await {
            Ok(s) => c.snap.set(Some(s)),
            // the code is what was checked: no password was typed that could be wrong
            Err(e) if e.code == ErrorCode::InvalidCredentials => {
                error.set(Some(c.t(Msg::ResetCodeWrong).to_string()))
            }
            Err(e) => error.set(Some(e.text(c.lang.get_untracked()))),
        }
    });
    let busy = reset.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let lang = c.lang.get_untracked();
        let problem = if member_no.get_untracked().trim().is_empty() {
            Some(fill(
                Msg::ErrFieldRequired.text(lang),
                &[("field", Msg::MemberNo.text(lang))],
            ))
        } else if unionpass_core::api::reset_code_digits(&code.get_untracked()).is_none() {
            Some(Msg::ResetCodeFormat.text(lang).to_string())
        } else if new.get_untracked().chars().count() < 8 {
            Some(ErrorCode::WeakPassword.message().text(lang).to_string())
        } else if new.get_untracked() != again.get_untracked() {
            Some(Msg::PasswordsDiffer.text(lang).to_string())
        } else {
            None
        };
        error.set(problem.clone());
        if problem.is_some() {
            return;
        }
        // a double tap sends one reset
        ipc::dispatch_once(
            reset,
            ResetPassword {
                server_url: server.get_untracked(),
                member_no: member_no.get_untracked(),
                code: code.get_untracked(),
                new_password: new.get_untracked(),
            },
        );
    };
    view! {
        <form id="reset-form" on:submit=submit novalidate=true>
            <h2>{move || c.t(Msg::ResetTitle)}</h2>
            <p class="muted small">{move || c.t(Msg::ResetHint)}</p>
            <label for="reset-member-no">{move || c.t(Msg::MemberNo)}</label>
            <input id="reset-member-no" autocomplete="username" inputmode="text"
                prop:value=move || member_no.get()
                on:input=move |ev| member_no.set(event_target_value(&ev))/>
            <label for="reset-code">{move || c.t(Msg::ResetCode)}</label>
            <input id="reset-code" autocomplete="one-time-code" inputmode="numeric"
                prop:value=move || code.get()
                on:input=move |ev| code.set(event_target_value(&ev))/>
            <NewPasswordFields id="reset-new-password" new=new again=again/>
            // the answer right under what was typed, the button under it in view on a phone; the
            // server address (rarely needed: it is the one sign-in used) last
            <p id="reset-error" class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            <button id="reset-submit" class="primary" type="submit" prop:disabled=move || busy.get()>
                {move || if busy.get() { c.t(Msg::Resetting) } else { c.t(Msg::ResetButton) }}
            </button>
            <button id="back-to-sign-in" type="button" class="link login-aside"
                on:click=move |_| back.set(false)>
                {move || format!("‹ {}", c.t(Msg::BackToSignIn))}
            </button>
            <ServerField server=server id="reset-server-url"/>
        </form>
    }
}

/// What may have ended a session, kept folded: the server does not say which, and the note above
/// it stays short (a phone shows it above the sign-in fields).
#[component]
fn SessionEndedWhy() -> impl IntoView {
    let c = ctx();
    view! {
        <details class="why" id="session-ended-why">
            <summary>{move || c.t(Msg::SessionEndedWhy)}</summary>
            <p>{move || c.t(Msg::SessionEndedCauses)}</p>
        </details>
    }
}
