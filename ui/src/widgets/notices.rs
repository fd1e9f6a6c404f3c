use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::{fill, Lang, Msg};
use unionpass_core::ipc::DismissNotices;
use unionpass_core::view::{NoticeKind, ReminderNotice};

use crate::ctx::{ctx, Place};
use crate::fmt::when;
use crate::ipc;

fn notice_text(n: &ReminderNotice, lang: Lang) -> String {
    let title = match lang {
        Lang::ZhCn => &n.title_zh,
        Lang::En => &n.title_en,
    };
    match n.kind {
        NoticeKind::Missed { due_at, release_at } => fill(
            Msg::NoticeMissed.text(lang),
            &[
                ("title", title),
                ("time", &when(due_at, lang)),
                ("release", &when(release_at, lang)),
            ],
        ),
        NoticeKind::Moved { release_at, due_at } => fill(
            Msg::NoticeMoved.text(lang),
            &[
                ("title", title),
                ("time", &when(due_at, lang)),
                ("release", &when(release_at, lang)),
            ],
        ),
        NoticeKind::Cancelled => fill(Msg::NoticeCancelled.text(lang), &[("title", title)]),
    }
}

/// Reminder notices (missed, moved, cancelled), on every screen until the member dismisses them.
#[component]
pub fn Notices() -> impl IntoView {
    let c = ctx();
    let notices = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.notices.clone()).unwrap_or_default())
    };
    let dismiss = move |_| {
        let ids = notices().iter().map(|n| n.id).collect();
        spawn_local(async move {
            if let Ok(s) = ipc::call(&DismissNotices { ids }).await {
                c.snap.set(Some(s));
            }
        });
    };
    view! {
        <Show when=move || !notices().is_empty()>
            <section id="notices" class="notices" role="alert">
                <h2 class="small">{move || c.t(Msg::NoticesTitle)}</h2>
                <ul>
                    {move || notices().into_iter().map(|n| {
                        let missed = matches!(n.kind, NoticeKind::Missed { .. });
                        view! {
                            <li class="notice-item" class:warn=missed id=format!("notice-{}", n.id)>
                                {notice_text(&n, c.lang.get())}
                            </li>
                        }
                    }).collect_view()}
                </ul>
                <div class="row">
                    // a missed or moved reminder is about a campaign: the way to it
                    <Show when=move || notices().iter().any(|n| !matches!(n.kind, NoticeKind::Cancelled))>
                        <button type="button" class="secondary" id="notices-go-grab"
                            on:click=move |_| c.go.set(Some(Place::Grab))>{move || c.t(Msg::GoGrab)}</button>
                    </Show>
                    <button type="button" id="notices-dismiss" on:click=dismiss>{move || c.t(Msg::Dismiss)}</button>
                </div>
            </section>
        </Show>
    }
}
