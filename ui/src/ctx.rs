//! What every screen shares: the snapshot of the local store, the member's language, and the
//! campaign a clicked reminder asked to show.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::{Lang, Msg};
use unionpass_core::ipc::{GetSnapshot, SetLanguage, SyncNow};
use unionpass_core::view::Snapshot;
use unionpass_core::ErrorCode;

use crate::ipc;

#[derive(Clone, Copy)]
pub struct Ctx {
    pub snap: RwSignal<Option<Snapshot>>,
    pub lang: Memo<Lang>,
    /// The language chosen where the store cannot keep it (it cannot be opened): this session's.
    chosen: RwSignal<Option<Lang>>,
    /// The campaign a clicked reminder asked to show.
    pub focus: RwSignal<Option<i64>>,
    /// A screen asked to show another tab (the root switches and clears it).
    pub go: RwSignal<Option<Place>>,
}

/// Where a screen may send the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Wallet,
    Grab,
    Activities,
}

impl Ctx {
    /// Provide the context for the page; `snap` starts empty.
    pub fn provide() -> Ctx {
        let snap = RwSignal::new(None::<Snapshot>);
        let chosen = RwSignal::new(None::<Lang>);
        // the store's, once read; until then (or when it cannot be read) the one chosen here
        let lang = Memo::new(move |_| {
            snap.with(|s| s.as_ref().map(|s| s.language))
                .or(chosen.get())
                .unwrap_or_default()
        });
        let c = Ctx {
            snap,
            lang,
            chosen,
            focus: RwSignal::new(None),
            go: RwSignal::new(None),
        };
        provide_context(c);
        c
    }

    /// A message in the member's language.
    pub fn t(&self, m: Msg) -> &'static str {
        m.text(self.lang.get())
    }

    /// Read the snapshot again; `failed` gets the code when the store cannot be read.
    pub fn refresh(self, failed: RwSignal<Option<ErrorCode>>) {
        spawn_local(async move {
            match ipc::call(&GetSnapshot {}).await {
                Ok(s) => {
                    self.snap.set(Some(s));
                    failed.set(None);
                }
                Err(code) => failed.set(Some(code)),
            }
        });
    }

    /// "Sync now": the sync, then the snapshot it answers with (for a button's busy state, use the
    /// action's `pending()`; dispatch with `ipc::dispatch_once`).
    pub fn sync_action(self) -> Action<SyncNow, ()> {
        ipc::action(move |req: SyncNow| async move {
            if let Ok(s) = ipc::call(&req).await {
                self.snap.set(Some(s));
            }
        })
    }

    /// Switch the language (at once; the server learns it with the next sync). Where the store
    /// cannot be opened, the choice holds for this session only.
    pub fn choose_language(self, language: Lang) {
        self.chosen.set(Some(language));
        spawn_local(async move {
            if let Ok(s) = ipc::call(&SetLanguage { language }).await {
                self.snap.set(Some(s));
            }
        });
    }
}

pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}
