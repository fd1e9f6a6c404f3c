//! The coupon wallet: "expiring soon" on top, filters by category and status, search, and a
//! coupon's detail with the usage QR to show a merchant. Everything comes from the local store,
//! so it works offline; marking a coupon used goes through the outbox.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::campaign::Category;
use unionpass_core::i18n::{fill, whole_parts, Lang, Msg};
use unionpass_core::ipc::{GetCoupon, GetWallet, UseCoupon};
use unionpass_core::time::format_date;
use unionpass_core::view::{CouponDetail, CouponView, WalletView};
use unionpass_core::wallet::{days_left, CouponStatus, WalletFilter};
use unionpass_core::ErrorCode;

use crate::bench;
use crate::ctx::{ctx, Ctx, Place};
use crate::fmt::{category_msg, day_time, now, unbroken, yuan, ZONE};
use crate::ipc;
use crate::widgets::{CopyButton, Joined};

/// Rows per page: more than a screenful; "show more" adds the next page.
const PAGE: i64 = 40;

fn status_msg(s: CouponStatus) -> Msg {
    match s {
        CouponStatus::Usable => Msg::StatusUsable,
        CouponStatus::NotYetValid => Msg::StatusNotYetValid,
        CouponStatus::Used => Msg::StatusUsed,
        CouponStatus::Expired => Msg::StatusExpired,
        CouponStatus::Voided => Msg::StatusVoided,
    }
}

fn title(v: &CouponView, lang: Lang) -> String {
    match lang {
        Lang::ZhCn => v.coupon.title_zh.clone(),
        Lang::En => v.coupon.title_en.clone(),
    }
}

fn validity(c: Ctx, v: &CouponView) -> String {
    fill(
        c.t(Msg::ValidPeriod),
        &[
            ("from", &format_date(v.coupon.valid_from, ZONE)),
            ("until", &format_date(v.last_day(), ZONE)),
        ],
    )
}

/// How long a usable coupon valid until `until` has left: "今天到期" or "还剩 N 天".
fn left_text(lang: Lang, until: DateTime<Utc>) -> String {
    match days_left(until, now(), ZONE) {
        ..=0 => Msg::ExpiresToday.text(lang).to_string(),
        n => fill(Msg::DaysLeft.text(lang), &[("n", &n.to_string())]),
    }
}

/// The line a member acts on: "今天到期", "还剩 3 天", "12-05 起可用", "已于 … 过期", "使用于 …",
/// in its parts ("还剩 3 天", "有效期至 12-05"): a list row shows them [`Joined`], so a phone
/// breaks the line between two, never leaving a "·" at a line's end.
fn when_parts(lang: Lang, v: &CouponView) -> Vec<String> {
    let until = format_date(v.last_day(), ZONE);
    match v.status {
        CouponStatus::Usable => {
            let left = days_left(v.coupon.valid_until, now(), ZONE);
            if left <= 0 {
                vec![left_text(lang, v.coupon.valid_until)]
            } else if left <= 30 {
                vec![
                    left_text(lang, v.coupon.valid_until),
                    fill(Msg::ValidUntilDate.text(lang), &[("date", &until)]),
                ]
            } else {
                vec![fill(Msg::ValidUntilDate.text(lang), &[("date", &until)])]
            }
        }
        CouponStatus::NotYetValid => vec![fill(
            Msg::UsableFrom.text(lang),
            &[("date", &format_date(v.coupon.valid_from, ZONE))],
        )],
        CouponStatus::Expired => vec![fill(Msg::ExpiredOn.text(lang), &[("date", &until)])],
        CouponStatus::Voided => vec![match v.coupon.voided_at {
            Some(t) => fill(Msg::VoidedAt.text(lang), &[("time", &day_time(t, lang))]),
            None => Msg::StatusVoided.text(lang).to_string(),
        }],
        CouponStatus::Used => vec![match v.used_at {
            Some(t) => fill(Msg::UsedAt.text(lang), &[("time", &day_time(t, lang))]),
            None => Msg::StatusUsed.text(lang).to_string(),
        }],
    }
}

/// Load the wallet; once its rows are on screen, report how long it took since `started`
/// (`what` names the measurement, for the wallet bench).
fn load(
    view: RwSignal<Option<WalletView>>,
    filter: WalletFilter,
    limit: i64,
    started: f64,
    what: &'static str,
) {
    spawn_local(async move {
        if let Ok(v) = ipc::call(&GetWallet { filter, limit }).await {
            let answered = bench::perf_now() - started;
            // the rows this answer shows, by identity: the list before may have as many
            let ids: Vec<String> = v
                .items
                .iter()
                .map(|i| format!("coupon-{}", i.coupon.id))
                .collect();
            view.set(Some(v));
            bench::wallet_rows_shown(what, started, answered, ids).await;
        }
    });
}

/// One coupon of "expiring soon": its title and how long it has left, a tap to open it. The
/// list below shows the same coupon whole; this card only says which ones to use first.
#[component]
fn ExpiringItem(v: CouponView, open: WriteSignal<Option<i64>>) -> impl IntoView {
    let c = ctx();
    let id = v.coupon.id;
    let until = v.coupon.valid_until;
    let left = move || left_text(c.lang.get(), until);
    view! {
        <li>
            <button type="button" class="expiring-item" id=format!("expiring-{id}") on:click=move |_| open.set(Some(id))>
                <span class="expiring-title">{move || title(&v, c.lang.get())}</span>
                <span class="expiring-left">{left}</span>
            </button>
        </li>
    }
}

/// One row. Its words are computed once (a language switch reloads the list, and the row key
/// includes the language), so a page of rows renders without a reactive closure per field.
#[component]
fn CouponRow(v: CouponView, open: WriteSignal<Option<i64>>) -> impl IntoView {
    let c = ctx();
    let lang = c.lang.get_untracked();
    let id = v.coupon.id;
    let dim = v.status != CouponStatus::Usable;
    let warn = v.status == CouponStatus::Usable && v.expiring_soon;
    let usable = v.status == CouponStatus::Usable && !v.use_pending;
    let value = fill(
        Msg::FaceValue.text(lang),
        &[("v", &yuan(v.coupon.face_value_cents))],
    );
    let badge = if v.use_pending {
        Msg::UsePending.text(lang)
    } else {
        status_msg(v.status).text(lang)
    };
    view! {
        <li class="coupon-row" class:dim=dim>
            <button type="button" class="coupon" id=format!("coupon-{id}") on:click=move |_| open.set(Some(id))>
                <span class="coupon-value">{value}</span>
                <span class="coupon-main">
                    <span class="coupon-title">{title(&v, lang)}</span>
                    <span class="coupon-when" class:soon=warn>
                        <Joined parts=when_parts(lang, &v).into_iter().map(|p| unbroken(p).into_any()).collect()/>
                    </span>
                </span>
                <span class="badge" class:usable=usable>{badge}</span>
            </button>
        </li>
    }
}

#[component]
pub fn WalletTab() -> impl IntoView {
    let c = ctx();
    let view = RwSignal::new(None::<WalletView>);
    let category = RwSignal::new(None::<Category>);
    let status = RwSignal::new(None::<CouponStatus>);
    let query = RwSignal::new(String::new());
    let limit = RwSignal::new(PAGE);
    let open = RwSignal::new(None::<i64>);
    // when a filter chip was pressed (for the timing report)
    let pressed = StoredValue::new(None::<f64>);
    let filter = move || WalletFilter {
        category: category.get(),
        status: status.get(),
        query: query.get(),
    };
    // a sync may bring coupons; a filter change reloads
    Effect::new(move |first: Option<()>| {
        c.snap.track();
        let (started, what) = match (first, pressed.get_value()) {
            (None, _) => (bench::perf_now(), "wallet_first_rows"),
            (Some(_), Some(t)) => (t, "wallet_filter"),
            (Some(_), None) => (bench::perf_now(), "wallet_reload"),
        };
        pressed.set_value(None);
        load(view, filter(), limit.get(), started, what);
    });
    let filtered = move || {
        category.get().is_some() || status.get().is_some() || !query.get().trim().is_empty()
    };

    let list = move || view.with(|v| v.as_ref().map(|v| v.items.clone()).unwrap_or_default());
    let expiring =
        move || view.with(|v| v.as_ref().map(|v| v.expiring.clone()).unwrap_or_default());
    let matching = move || view.with(|v| v.as_ref().map(|v| v.matching).unwrap_or(0));
    let count_in = move |cat: Category| {
        view.with(|v| {
            v.as_ref()
                .and_then(|v| {
                    v.by_category
                        .iter()
                        .find(|(c, _)| *c == cat)
                        .map(|(_, n)| *n)
                })
                .unwrap_or(0)
        })
    };

    view! {
        <Show when=move || open.get().is_none()
            fallback=move || view! { <CouponDetailView id=open.get().unwrap_or_default() close=open.write_only()/> }>
            <section class="wallet">
                <h1>{move || c.t(Msg::WalletTitle)}</h1>
                // shown whatever the filters, so the filters below never move under the cursor
                <Show when=move || !expiring().is_empty()>
                    <div class="card warn-card">
                        <h2>{move || c.t(Msg::ExpiringSoon)}</h2>
                        <ul id="wallet-expiring" class="expiring-list">
                            {move || expiring().into_iter().map(|v| view! { <ExpiringItem v open=open.write_only()/> }).collect_view()}
                        </ul>
                    </div>
                </Show>
                <div class="card">
                    // an empty wallet has nothing to filter: the way out comes first
                    <Show when=move || { filtered() || matching() > 0 }>
                    <input id="wallet-search" type="search" placeholder=move || c.t(Msg::WalletSearch)
                            aria-label=move || c.t(Msg::WalletSearch)
                            prop:value=move || query.get()
                            on:input=move |ev| { limit.set(PAGE); query.set(event_target_value(&ev)) }/>
                        <p class="chips-label small muted phone-hidden" id="cat-label">{move || c.t(Msg::FilterCategory)}</p>
                        <div class="chips scroll" role="radiogroup" aria-labelledby="cat-label">
                            <button type="button" class="chip" id="cat-all" class:active=move || category.get().is_none()
                                role="radio" aria-checked=move || (category.get().is_none()).to_string()
                                on:click=move |_| { pressed.set_value(Some(bench::perf_now())); limit.set(PAGE); category.set(None) }>{move || c.t(Msg::AllCategories)}</button>
                            {Category::ALL.into_iter().map(|cat| view! {
                                <button type="button" class="chip" id=format!("cat-{}", cat.as_str())
                                    class:active=move || category.get() == Some(cat)
                                    role="radio" aria-checked=move || (category.get() == Some(cat)).to_string()
                                    on:click=move |_| { pressed.set_value(Some(bench::perf_now())); limit.set(PAGE); category.set(Some(cat)) }>
                                    {move || c.t(category_msg(cat))}
                                    <span class="chip-count">{move || count_in(cat)}</span>
                                </button>
                            }).collect_view()}
                        </div>
                        <p class="chips-label small muted phone-hidden" id="status-label">{move || c.t(Msg::FilterStatus)}</p>
                        <div class="chips scroll" role="radiogroup" aria-labelledby="status-label">
                            <button type="button" class="chip" id="status-all" class:active=move || status.get().is_none()
                                role="radio" aria-checked=move || (status.get().is_none()).to_string()
                                on:click=move |_| { limit.set(PAGE); status.set(None) }>{move || c.t(Msg::AllStatuses)}</button>
                            {CouponStatus::ALL.into_iter().map(|st| view! {
                                <button type="button" class="chip" id=format!("status-{}", st.as_str())
                                    class:active=move || status.get() == Some(st)
                                    role="radio" aria-checked=move || (status.get() == Some(st)).to_string()
                                    on:click=move |_| { limit.set(PAGE); status.set(Some(st)) }>{move || c.t(status_msg(st))}</button>
                            }).collect_view()}
                        </div>
                    </Show>
                    <p id="wallet-count" class="muted small">{move || fill(c.t(Msg::WalletCount), &[("n", &matching().to_string())])}</p>
                    <Show when=move || !list().is_empty()
                        fallback=move || view! {
                            <div id="wallet-empty" class="notice">
                                <p>{move || if filtered() { c.t(Msg::WalletEmpty) } else { c.t(Msg::WalletNone) }}</p>
                                // a way out: clear the filters, or go and grab some
                                <Show when=filtered
                                    fallback=move || view! {
                                        <button type="button" id="wallet-go-grab" on:click=move |_| c.go.set(Some(Place::Grab))>{move || c.t(Msg::GoGrab)}</button>
                                    }>
                                    <button type="button" id="wallet-clear" on:click=move |_| {
                                        limit.set(PAGE);
                                        category.set(None);
                                        status.set(None);
                                        query.set(String::new());
                                    }>{move || c.t(Msg::ClearFilters)}</button>
                                </Show>
                            </div>
                        }>
                        <ul id="wallet-list" class="list">
                            <For each=list key=move |v| (v.coupon.id, v.status, v.use_pending, c.lang.get_untracked()) let:v>
                                <CouponRow v open=open.write_only()/>
                            </For>
                        </ul>
                    </Show>
                    <Show when=move || { (list().len() as i64) < matching() }>
                        <button type="button" id="wallet-more" on:click=move |_| limit.update(|l| *l += PAGE)>{move || c.t(Msg::LoadMore)}</button>
                    </Show>
                </div>
            </section>
        </Show>
    }
}

#[component]
fn CouponDetailView(id: i64, close: WriteSignal<Option<i64>>) -> impl IntoView {
    let c = ctx();
    let detail = RwSignal::new(None::<CouponDetail>);
    let error = RwSignal::new(None::<ErrorCode>);
    let confirming = RwSignal::new(false);
    // loaded again after every sync: "待同步" goes once the server has it
    Effect::new(move |_| {
        c.snap.track();
        spawn_local(async move {
            match ipc::call(&GetCoupon { id }).await {
                Ok(d) => detail.set(Some(d)),
                Err(code) => error.set(Some(code)),
            }
        });
    });
    // the confirmation comes into view with both its buttons
    Effect::new(move |_| {
        if confirming.get() {
            // after the confirmation is drawn
            request_animation_frame(|| {
                if let Some(el) = document().get_element_by_id("coupon-confirm") {
                    let opts = web_sys::ScrollIntoViewOptions::new();
                    opts.set_block(web_sys::ScrollLogicalPosition::Center);
                    el.scroll_into_view_with_scroll_into_view_options(&opts);
                }
            });
        }
    });
    let use_coupon = ipc::action(move |req: UseCoupon| async move {
        match ipc::call(&req).await {
            Ok(v) => detail.update(|d| {
                if let Some(d) = d {
                    d.view = v;
                }
            }),
            Err(code) => error.set(Some(code)),
        }
        confirming.set(false);
    });
    let busy = use_coupon.pending();
    // a double tap marks it once
    let use_it = move |_| ipc::dispatch_once(use_coupon, UseCoupon { id });
    let v = move || detail.with(|d| d.as_ref().map(|d| d.view.clone()));
    view! {
        <section id="coupon-detail" class="coupon-detail">
            <button type="button" id="coupon-back" class="link" on:click=move |_| close.set(None)>{move || format!("‹ {}", c.t(Msg::Back))}</button>
            {move || v().map(|v| {
                let status = v.status;
                let code = v.coupon.code.clone();
                let terms = match c.lang.get() { Lang::ZhCn => v.coupon.terms_zh.clone(), Lang::En => v.coupon.terms_en.clone() };
                view! {
                    <div class="card">
                        <h1 id="coupon-title">{title(&v, c.lang.get())}</h1>
                        // a coupon no longer usable (used, expired, withdrawn) does not look usable:
                        // its value greyed, its code kept to quote but not offered to copy
                        <p class="coupon-value big" class:dim={status != CouponStatus::Usable}>{fill(c.t(Msg::FaceValue), &[("v", &yuan(v.coupon.face_value_cents))])}</p>
                        // a usable coupon's line below already says its last day, and its first
                        // is past: the whole period is shown for the others (not yet valid, and
                        // the history of a used, expired or withdrawn one), and on a phone the
                        // code stays above the tabs
                        {(status != CouponStatus::Usable).then(|| view! { <p class="muted">{unbroken(validity(c, &v))}</p> })}
                        <p class="coupon-when" class:soon=v.expiring_soon>{unbroken(whole_parts(&when_parts(c.lang.get(), &v)))}</p>
                        <p><span id="coupon-status" class="badge" class:usable={status == CouponStatus::Usable && !v.use_pending}>{if v.use_pending { c.t(Msg::UsePending) } else { c.t(status_msg(status)) }}</span></p>
                        <Show when=move || status == CouponStatus::Usable>
                            <div id="coupon-qr" class="qr" role="img" aria-label=move || c.t(Msg::UsageCode)
                                inner_html=move || detail.with(|d| d.as_ref().map(|d| d.qr_svg.clone()).unwrap_or_default())></div>
                            <p class="hint">{move || c.t(Msg::UsageHint)}</p>
                        </Show>
                        <p class="code-line">
                            <span class="muted">{c.t(Msg::UsageCode)}</span>" "
                            <span id="coupon-code" class="mono big selectable" class:dim={status != CouponStatus::Usable}>{code.clone()}</span>
                            {(status == CouponStatus::Usable).then(|| view! { <CopyButton id="coupon-copy" text=code.clone() target="coupon-code"/> })}
                        </p>
                        // a used coupon says when in its status line above; not twice
                        {v.used_at.filter(|_| status != CouponStatus::Used).map(|t| view! { <p class="muted">{fill(c.t(Msg::UsedAt), &[("time", &day_time(t, c.lang.get()))])}</p> })}
                        <Show when={let terms = terms.clone(); move || !terms.is_empty()}>
                            <h2>{move || c.t(Msg::Terms)}</h2>
                            <p>{terms.clone()}</p>
                        </Show>
                        // marking is irreversible, so it is a quiet button that asks first
                        <Show when=move || status == CouponStatus::Usable && !v.use_pending>
                            <Show when=move || confirming.get()
                                fallback=move || view! {
                                    <button type="button" id="coupon-use" class="secondary" on:click=move |_| confirming.set(true)>{move || c.t(Msg::MarkUsed)}</button>
                                }>
                                <div class="confirm" id="coupon-confirm">
                                    <p role="alert">{move || c.t(Msg::MarkUsedConfirm)}</p>
                                    <div class="actions">
                                        <button type="button" id="coupon-use-cancel" class="secondary" on:click=move |_| confirming.set(false)>{move || c.t(Msg::Cancel)}</button>
                                        <button type="button" id="coupon-use-confirm" class="danger" prop:disabled=move || busy.get() on:click=use_it>{move || c.t(Msg::MarkUsedYes)}</button>
                                    </div>
                                </div>
                            </Show>
                        </Show>
                    </div>
                }
            })}
            <Show when=move || error.get().is_some()>
                <p class="notice warn" role="alert">{move || error.get().map(|e| c.t(e.message())).unwrap_or_default()}</p>
            </Show>
        </section>
    }
}
