use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::Msg;
use unionpass_core::ipc::GetKeptPassport;
use unionpass_core::time::format_date;
use unionpass_core::view::KeptPassport;
use unionpass_core::ErrorCode;

use crate::ctx::ctx;
use crate::fmt::{ticking, ZONE};
use crate::ipc;
use crate::widgets::{LangToggle, LiveQr, UpdateWayOut};

/// The local store cannot be opened: say so, and what to do. When a newer version wrote it, the
/// member's data is still there and the way out is that version: offered here, as on 我的; until
/// then the passport it keeps still gets the member in at a door (read from it read-only by the
/// shell). The language can be switched here too (for this session: the store that keeps it is
/// unreadable).
#[component]
pub fn FailedView(code: ErrorCode) -> impl IntoView {
    let c = ctx();
    let newer = code == ErrorCode::DatabaseTooNew;
    view! {
        <main class="failed">
            <div class="failed-top"><LangToggle/></div>
            <h1>{move || c.t(Msg::AppName)}</h1>
            <p id="fatal-error" role="alert">{move || c.t(code.message())}</p>
            {newer.then(|| view! {
                <KeptPassportCard/>
                <p id="fatal-kept">{move || c.t(Msg::DataKept)}</p>
                <UpdateWayOut/>
            })}
        </main>
    }
}

/// The passport kept in the newer store, when the shell could read it: whose it is and its live
/// code, as on the passport screen.
#[component]
fn KeptPassportCard() -> impl IntoView {
    let c = ctx();
    let kept = RwSignal::new(None::<KeptPassport>);
    spawn_local(async move {
        if let Ok(found) = ipc::call(&GetKeptPassport {}).await {
            kept.set(found);
        }
    });
    move || {
        kept.get().map(|k| {
            // expired when read, or since: a screen left open past the end of its validity drops
            // the hint that it can still be shown (the code's place says it has expired: no code
            // is made past then)
            let tick = ticking(std::time::Duration::from_secs(30));
            let valid_until = k.passport.valid_until;
            let read_expired = k.passport.expired;
            let expired = move || read_expired || tick.get() >= valid_until;
            let (name, member_no) = k
                .profile
                .map(|p| (p.name, p.member_no))
                .unwrap_or_default();
            view! {
                <section class="passport kept-passport" id="kept-passport" aria-labelledby="kept-passport-title">
                    <h2 id="kept-passport-title">{move || c.t(Msg::PassportTitle)}</h2>
                    <Show when=move || !expired()>
                        <p class="hint">{move || c.t(Msg::KeptPassportHint)}</p>
                    </Show>
                    <div class="card">
                        <div class="who">
                            <div class="name-row">
                                <span id="passport-name" class="name">{name}</span>
                            </div>
                            <dl>
                                <dt>{move || c.t(Msg::MemberNo)}</dt>
                                <dd id="passport-member-no">{member_no}</dd>
                                <dt>{move || c.t(Msg::ValidUntil)}</dt>
                                <dd id="passport-valid-until">{format_date(k.passport.valid_until, ZONE)}</dd>
                            </dl>
                        </div>
                        <LiveQr
                            wanted=Signal::derive(|| true)
                            missing={move |error: Option<ErrorCode>| match error {
                                Some(ErrorCode::PassportExpired) => c.t(Msg::KeptPassportExpired),
                                Some(code) => c.t(code.message()),
                                None => c.t(Msg::Loading),
                            }}
                        />
                    </div>
                </section>
            }
        })
    }
}
