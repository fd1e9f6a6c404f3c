use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::{fill, Lang, Msg};
use unionpass_core::ipc::RejectionsSeen;
use unionpass_core::view::{RejectedChange, RejectionView};

use crate::ctx::{ctx, Place};
use crate::fmt::when_in_sentence;
use crate::ipc;

/// A title as this device knows it, or the thing's number when it never did.
fn title<'a>(zh: &'a str, en: &'a str, id: i64, lang: Lang) -> String {
    let t = match lang {
        Lang::ZhCn => zh,
        Lang::En => en,
    };
    if t.is_empty() {
        format!("#{id}")
    } else {
        t.to_string()
    }
}

/// What was refused and why, in the member's words; the reason says what to do next.
fn rejection_text(r: &RejectionView, lang: Lang) -> String {
    let reason = r.code.message().text(lang);
    match &r.what {
        RejectedChange::UseCoupon {
            coupon_id,
            title_zh,
            title_en,
        } => fill(
            Msg::RejUseCoupon.text(lang),
            &[
                ("title", &title(title_zh, title_en, *coupon_id, lang)),
                ("reason", reason),
            ],
        ),
        RejectedChange::CheckIn {
            member_no,
            event_title,
        } => fill(
            Msg::RejCheckIn.text(lang),
            &[
                ("member", member_no),
                ("event", event_title),
                ("reason", reason),
            ],
        ),
        RejectedChange::SetLanguage { .. } => {
            fill(Msg::RejLanguage.text(lang), &[("reason", reason)])
        }
        RejectedChange::RevokeDevice { device_id, name } => fill(
            Msg::RejRevokeDevice.text(lang),
            &[
                ("name", &title(name, name, *device_id, lang)),
                ("reason", reason),
            ],
        ),
        RejectedChange::Redeem { points } => fill(
            Msg::RejRedeem.text(lang),
            &[("n", &points.to_string()), ("reason", reason)],
        ),
        RejectedChange::Feedback {
            activity_id,
            title_zh,
            title_en,
        } => fill(
            Msg::RejFeedback.text(lang),
            &[
                ("title", &title(title_zh, title_en, *activity_id, lang)),
                ("reason", reason),
            ],
        ),
        RejectedChange::Vote {
            poll_id,
            question_zh,
            question_en,
        } => fill(
            Msg::RejVote.text(lang),
            &[
                ("title", &title(question_zh, question_en, *poll_id, lang)),
                ("reason", reason),
            ],
        ),
    }
}

/// Changes the server refused, on every screen until the member has read them ("知道了").
#[component]
pub fn Rejections(
    /// The wallet is the screen shown: no button to go there.
    #[prop(into)]
    on_wallet: Signal<bool>,
) -> impl IntoView {
    let c = ctx();
    let rejections = move || {
        c.snap
            .with(|s| s.as_ref().map(|s| s.rejections.clone()).unwrap_or_default())
    };
    let seen = move |_| {
        let ids = rejections().iter().map(|r| r.id).collect();
        spawn_local(async move {
            if let Ok(s) = ipc::call(&RejectionsSeen { ids }).await {
                c.snap.set(Some(s));
            }
        });
    };
    let about_coupons = move || {
        rejections()
            .iter()
            .any(|r| matches!(r.what, RejectedChange::UseCoupon { .. }))
    };
    view! {
        <Show when=move || !rejections().is_empty()>
            <section id="rejections" class="notices rejections" role="alert" tabindex="-1">
                <h2 class="small">{move || c.t(Msg::RejectionsTitle)}</h2>
                <ul>
                    {move || rejections().into_iter().map(|r| {
                        let lang = c.lang.get();
                        view! {
                            <li class="notice-item" id=format!("rejection-{}", r.id)>
                                <span class="rej-text">{rejection_text(&r, lang)}</span>
                                " "
                                <span class="muted small">
                                    {fill(Msg::RejMadeAt.text(lang), &[("time", &when_in_sentence(r.made_at, lang))])}
                                </span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                <div class="row">
                    <Show when=move || about_coupons() && !on_wallet.get()>
                        <button type="button" class="secondary" id="rejections-go-wallet"
                            on:click=move |_| c.go.set(Some(Place::Wallet))>{move || c.t(Msg::GoWallet)}</button>
                    </Show>
                    <button type="button" id="rejections-seen" on:click=seen>{move || c.t(Msg::Dismiss)}</button>
                </div>
            </section>
        </Show>
    }
}
