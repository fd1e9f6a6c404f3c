use leptos::prelude::*;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::ipc::SyncNow;

use crate::ctx::ctx;
use crate::fmt::when;
use crate::ipc;

/// Always visible: synced at hh:mm, syncing, offline, or n changes waiting; and "sync now".
#[component]
pub fn SyncStatus() -> impl IntoView {
    let c = ctx();
    let sync = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.sync.clone()).unwrap_or_default())
    };
    let text = move || {
        let s = sync();
        let lang = c.lang.get();
        if s.syncing {
            return Msg::Syncing.text(lang).to_string();
        }
        if s.pending > 0 {
            return fill(
                Msg::ChangesWaiting.text(lang),
                &[("n", &s.pending.to_string())],
            );
        }
        match s.last_ok_at {
            Some(t) => fill(Msg::SyncedAt.text(lang), &[("time", &when(t))]),
            None => Msg::NeverSynced.text(lang).to_string(),
        }
    };
    let sync_now = ipc::action(move |req: SyncNow| async move {
        if let Ok(s) = ipc::call(&req).await {
            c.snap.set(Some(s));
        }
    });
    let busy = sync_now.pending();
    view! {
        <div class="sync" role="status" aria-live="polite">
            <Show when=move || sync().offline()>
                <span id="offline-badge" class="badge offline" title=move || c.t(Msg::OfflineHint)>
                    {move || c.t(Msg::Offline)}
                </span>
            </Show>
            <span id="sync-status" class="sync-text">{text}</span>
            <button id="sync-now" type="button" class="link"
                prop:disabled=move || busy.get() || sync().syncing
                on:click=move |_| ipc::dispatch_once(sync_now, SyncNow {})>{move || c.t(Msg::SyncNow)}</button>
        </div>
    }
}
