use leptos::prelude::*;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::ipc::SyncNow;

use crate::ctx::ctx;
use crate::fmt::{now, when};
use crate::ipc;

/// Always visible: synced at hh:mm, syncing, offline, or n changes waiting; and "sync now".
#[component]
pub fn SyncStatus() -> impl IntoView {
    let c = ctx();
    let sync = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.sync.clone()).unwrap_or_default())
    };
    let sync_now = c.sync_action();
    let busy = sync_now.pending();
    let text = move || {
        let s = sync();
        let lang = c.lang.get();
        // a sync started here shows at once, before the shell's state says so
        if s.syncing || busy.get() {
            return Msg::Syncing.text(lang).to_string();
        }
        if s.pending > 0 {
            return fill(
                Msg::ChangesWaiting.text(lang),
                &[("n", &s.pending.to_string())],
            );
        }
        match s.last_ok_at {
            // offline or failing, "synced" would not be true now: say when it last was
            Some(t) if s.offline() || s.problem().is_some() => {
                fill(Msg::LastSyncedAt.text(lang), &[("time", &when(t, lang))])
            }
            Some(t) => fill(Msg::SyncedAt.text(lang), &[("time", &when(t, lang))]),
            None => Msg::NeverSynced.text(lang).to_string(),
        }
    };
    view! {
        <div class="sync" role="status" aria-live="polite">
            <Show when=move || sync().offline()>
                <span id="offline-badge" class="badge offline" title=move || c.t(Msg::OfflineHint)>
                    {move || c.t(Msg::Offline)}
                </span>
            </Show>
            // refused changes are counted until the member has read why
            <Show when=move || { sync().rejected > 0 }>
                <button id="rejected-badge" type="button" class="badge warn"
                    title=move || c.t(Msg::RejectionsHint)
                    on:click=move |_| {
                        if let Some(el) = leptos::prelude::document().get_element_by_id("rejections") {
                            el.scroll_into_view();
                            if let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el) {
                                let _ = el.focus();
                            }
                        }
                    }>
                    {move || fill(c.t(Msg::RejectionsCount), &[("n", &sync().rejected.to_string())])}
                </button>
            </Show>
            <span id="sync-status" class="sync-text">{text}</span>
            // after a failure: when the app tries again by itself (kept whole; the text before
            // it gives way on a narrow screen)
            {move || {
                let s = sync();
                // within the minute the clock would read as the last sync's: said as such
                s.retry_at.filter(|_| !s.syncing && !busy.get()).map(|t| view! {
                    <span id="sync-retry" class="sync-retry">
                        {if t - now() < chrono::Duration::minutes(1) {
                            c.t(Msg::RetrySoon).to_string()
                        } else {
                            fill(c.t(Msg::RetryAt), &[("time", &when(t, c.lang.get()))])
                        }}
                    </span>
                })
            }}
            <button id="sync-now" type="button" class="link"
                prop:disabled=move || busy.get() || sync().syncing
                on:click=move |_| ipc::dispatch_once(sync_now, SyncNow {})>{move || c.t(Msg::SyncNow)}</button>
        </div>
    }
}

/// On every screen, while the last sync failed for a reason the member has to act on (the disk
/// is full, the keyring locked): what happened and what to do, from the error's code.
#[component]
pub fn SyncProblem() -> impl IntoView {
    let c = ctx();
    let problem = move || c.snap.with(|s| s.as_ref().and_then(|s| s.sync.problem()));
    view! {
        {move || problem().map(|code| view! {
            <p id="sync-problem" class="notice warn" role="alert">{c.t(code.message())}</p>
        })}
    }
}
