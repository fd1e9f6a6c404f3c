//! The points screen: the balance (available, posted, pending, queued), what expires when, the
//! 12-month history as an SVG chart, the redemption form (phone bill, electricity, catalog) and
//! the redemptions with their states. Everything reads the local store; a redemption made offline
//! is queued and shown as such.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::{fill, month_short, Msg};
use unionpass_core::ipc::{GetPoints, QuoteRedemption, Redeem};
use unionpass_core::redeem::{
    normalize_mobile, normalize_power_account, Quote, Redemption, RedemptionStatus, RefundReason,
    Target,
};
use unionpass_core::view::{CommandError, HistoryMonth, PointsView};
use unionpass_core::ErrorCode;

use crate::ctx::{ctx, Ctx};
use crate::fmt::{thousands, unbroken, when, yuan, ZONE};
use crate::ipc;
use unionpass_core::time::format_date;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Phone,
    Power,
    Catalog,
}

fn load(view: RwSignal<Option<PointsView>>) {
    spawn_local(async move {
        if let Ok(v) = ipc::call(&GetPoints {}).await {
            view.set(Some(v));
        }
    });
}

/// What a redemption was for, in words.
fn describe(c: Ctx, target: &Target, v: &PointsView) -> String {
    match target {
        Target::PhoneBill {
            mobile,
            amount_cents,
        } => format!(
            "{} {} · {}",
            c.t(Msg::KindPhone),
            fill(c.t(Msg::AmountYuan), &[("v", &yuan(*amount_cents))]),
            mobile
        ),
        Target::PowerBill {
            account,
            amount_cents,
        } => format!(
            "{} {} · {}",
            c.t(Msg::KindPower),
            fill(c.t(Msg::AmountYuan), &[("v", &yuan(*amount_cents))]),
            account
        ),
        Target::Catalog { item_id } => v
            .offer
            .catalog
            .iter()
            .find(|i| i.id == *item_id)
            .map(|i| i.title(c.lang.get()).to_string())
            .unwrap_or_else(|| c.t(Msg::KindCatalog).to_string()),
    }
}

/// Why the points came back, in the member's words: the provider's own text (a carrier's,
/// often bilingual) is kept for staff and never shown.
fn refund_reason(c: Ctx, r: &Redemption, reason: &RefundReason) -> String {
    match reason {
        RefundReason::ProviderFailed { .. } => c
            .t(match r.target {
                Target::PhoneBill { .. } => Msg::RefundPhone,
                Target::PowerBill { .. } => Msg::RefundPower,
                Target::Catalog { .. } => Msg::RefundCatalog,
            })
            .to_string(),
        RefundReason::ProviderTimeout => c.t(Msg::RefundTimeout).to_string(),
    }
}

/// The note under the form after a redemption: what its state is now (it follows syncs).
fn note_text(c: Ctx, r: &Redemption, v: &PointsView) -> String {
    match &r.status {
        RedemptionStatus::Queued => c.t(Msg::RedeemNoteQueued).to_string(),
        RedemptionStatus::Held => c.t(Msg::RedeemNoteHeld).to_string(),
        RedemptionStatus::Settled { .. } => fill(
            c.t(Msg::RedeemNoteSettled),
            &[("what", &describe(c, &r.target, v))],
        ),
        RedemptionStatus::Refunded { reason } => fill(
            c.t(Msg::RedeemNoteRefunded),
            &[
                ("n", &thousands(r.points)),
                ("reason", &refund_reason(c, r, reason)),
            ],
        ),
        RedemptionStatus::Rejected { code } => fill(
            c.t(Msg::RedeemNoteRejected),
            &[("reason", c.t(code.message()))],
        ),
    }
}

fn status_text(c: Ctx, r: &Redemption) -> String {
    match &r.status {
        RedemptionStatus::Queued => c.t(Msg::RStatusQueued).to_string(),
        RedemptionStatus::Held => c.t(Msg::RStatusHeld).to_string(),
        RedemptionStatus::Settled { .. } => c.t(Msg::RStatusSettled).to_string(),
        RedemptionStatus::Refunded { reason } => fill(
            c.t(Msg::RStatusRefunded),
            &[
                ("n", &thousands(r.points)),
                ("reason", &refund_reason(c, r, reason)),
            ],
        ),
        RedemptionStatus::Rejected { code } => fill(
            c.t(Msg::RStatusRejected),
            &[("reason", c.t(code.message()))],
        ),
    }
}

/// Earned (up) and spent (down) per month, drawn as bars around a middle line.
#[component]
fn HistoryChart(history: Vec<HistoryMonth>) -> impl IntoView {
    let c = ctx();
    const W: f64 = 360.0;
    // room under the lowest bar for its figure, above the months
    const H: f64 = 172.0;
    const MID: f64 = 80.0;
    let top = history
        .iter()
        .map(|m| m.earned.max(m.spent + m.expired))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = W / history.len().max(1) as f64;
    // the values in words, newest month first, for those who cannot hover (touch, screen readers)
    let rows = history
        .iter()
        .rev()
        .filter(|m| m.earned + m.spent + m.expired > 0)
        .map(|m| {
            let m = m.clone();
            view! {
                <li>{move || fill(c.t(Msg::ChartRow), &[
                    ("month", &m.month),
                    ("earned", &thousands(m.earned)),
                    ("spent", &thousands(m.spent)),
                    ("expired", &thousands(m.expired)),
                ])}</li>
            }
        })
        .collect_view();
    let bar = slot * 0.6;
    let scale = (MID - 14.0) / top;
    let bars = history
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let x = i as f64 * slot + (slot - bar) / 2.0;
            let up = m.earned as f64 * scale;
            let down = (m.spent + m.expired) as f64 * scale;
            let month = m.month.clone();
            let label = move || month_short(&month, c.lang.get());
            let tip = format!(
                "{}: +{} / -{}",
                m.month,
                thousands(m.earned),
                thousands(m.spent + m.expired)
            );
            view! {
                <g>
                    <title>{tip}</title>
                    <rect class="bar-earned" x=format!("{x:.1}") y=format!("{:.1}", MID - up)
                        width=format!("{bar:.1}") height=format!("{up:.1}")/>
                    <rect class="bar-spent" x=format!("{x:.1}") y=format!("{MID:.1}")
                        width=format!("{bar:.1}") height=format!("{down:.1}")/>
                    <text class="chart-label" x=format!("{:.1}", x + bar / 2.0) y=format!("{:.1}", H - 2.0)
                        text-anchor="middle">{label}</text>
                    {(m.earned > 0).then(|| view! {
                        <text class="chart-value" x=format!("{:.1}", x + bar / 2.0)
                            y=format!("{:.1}", MID - up - 2.0) text-anchor="middle">{thousands(m.earned)}</text>
                    })}
                    // what went, under its bar, as what came is over its own
                    {(m.spent + m.expired > 0).then(|| view! {
                        <text class="chart-value chart-value-spent" x=format!("{:.1}", x + bar / 2.0)
                            y=format!("{:.1}", MID + down + 10.0) text-anchor="middle">{format!("-{}", thousands(m.spent + m.expired))}</text>
                    })}
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <svg id="points-chart" viewBox=format!("0 0 {W} {H}") role="img"
                aria-label=move || c.t(Msg::HistoryTitle)>
                <line class="chart-axis" x1="0" x2=format!("{W}") y1=format!("{MID}") y2=format!("{MID}")/>
                {bars}
            </svg>
            <figcaption class="legend small">
                <span class="key key-earned"></span>{move || c.t(Msg::HistoryEarned)}
                <span class="key key-spent"></span>{move || c.t(Msg::HistorySpent)}" / "{move || c.t(Msg::HistoryExpired)}
            </figcaption>
            <details class="chart-values small" id="points-chart-values">
                <summary>{move || c.t(Msg::ChartValues)}</summary>
                <ul class="list">
                    {rows}
                </ul>
            </details>
        </figure>
    }
}

#[component]
fn RedeemForm(view: RwSignal<Option<PointsView>>) -> impl IntoView {
    let c = ctx();
    let kind = RwSignal::new(Kind::Phone);
    let mobile = RwSignal::new(String::new());
    // the number is judged once it is complete or the field is left, not at every digit
    let mobile_left = RwSignal::new(false);
    let account = RwSignal::new(String::new());
    let account_left = RwSignal::new(false);
    let amount = RwSignal::new(None::<i64>);
    let item = RwSignal::new(None::<i64>);
    let password = RwSignal::new(String::new());
    let quote = RwSignal::new(None::<Quote>);
    let error = RwSignal::new(None::<CommandError>);
    // the confirmation step, between the form and the request
    let confirming = RwSignal::new(false);
    // the redemption made last: the note under the form follows its state
    let made = RwSignal::new(None);
    let offer = move || view.with(|v| v.as_ref().map(|v| v.offer.clone()));
    let cap = move || {
        view.with(|v| {
            v.as_ref().and_then(|v| match kind.get() {
                Kind::Phone => Some(v.phone_cap),
                Kind::Power => Some(v.power_cap),
                Kind::Catalog => None,
            })
        })
    };
    let amounts = move || {
        offer()
            .map(|o| match kind.get() {
                Kind::Phone => o.phone.amounts_cents,
                Kind::Power => o.power.amounts_cents,
                Kind::Catalog => Vec::new(),
            })
            .unwrap_or_default()
    };
    let points_of = move |cents: i64| offer().map(|o| cents * o.points_per_yuan / 100);
    let available = move || {
        view.with(|v| {
            v.as_ref()
                .map(|v| v.balance.available - v.queued)
                .unwrap_or(0)
        })
    };
    let some_out_of_reach = move || {
        amounts().into_iter().any(|a| {
            cap().is_some_and(|cl| a > cl.left_cents)
                || points_of(a).is_some_and(|p| p > available())
        })
    };
    let edited = move || {
        made.set(None);
        confirming.set(false);
    };
    // the target as typed so far, or the first thing wrong with it
    let target = move || -> Result<Target, ErrorCode> {
        match kind.get() {
            Kind::Phone => Ok(Target::PhoneBill {
                mobile: normalize_mobile(&mobile.get())?,
                amount_cents: amount.get().ok_or(ErrorCode::AmountNotOffered)?,
            }),
            Kind::Power => Ok(Target::PowerBill {
                account: normalize_power_account(&account.get())?,
                amount_cents: amount.get().ok_or(ErrorCode::AmountNotOffered)?,
            }),
            Kind::Catalog => Ok(Target::Catalog {
                item_id: item.get().ok_or(ErrorCode::OutOfStock)?,
            }),
        }
    };
    // price it whenever the form is complete (by the synced offer and balance, offline)
    Effect::new(move |_| {
        let t = target();
        view.track();
        quote.set(None);
        match t {
            Ok(t) => spawn_local(async move {
                match ipc::call(&QuoteRedemption { target: t }).await {
                    Ok(q) => {
                        quote.set(Some(q));
                        error.set(None);
                    }
                    Err(code) => error.set(Some(code.into())),
                }
            }),
            Err(_) => error.set(None),
        }
    });
    let digits = |s: &str| s.chars().filter(|c| c.is_ascii_digit()).count();
    // shown under the field once the number is complete or the field was left
    let field_error = move || match (kind.get(), target()) {
        (Kind::Phone, Err(ErrorCode::InvalidMobile))
            if !mobile.get().trim().is_empty()
                && (mobile_left.get() || digits(&mobile.get()) >= 11) =>
        {
            Some(ErrorCode::InvalidMobile)
        }
        (Kind::Power, Err(ErrorCode::InvalidAccount))
            if !account.get().trim().is_empty()
                && (account_left.get() || digits(&account.get()) >= 10) =>
        {
            Some(ErrorCode::InvalidAccount)
        }
        _ => None,
    };
    // a refusal said in the words this form can be most precise in
    let error_text = move |e: CommandError| -> String {
        match e.code {
            ErrorCode::CapReached => match cap() {
                Some(cl) => fill(c.t(Msg::CapNotEnough), &[("left", &yuan(cl.left_cents))]),
                None => c.t(e.code.message()).to_string(),
            },
            // the only password asked here is the member's own: no member number was typed
            ErrorCode::InvalidCredentials => c.t(Msg::ReauthWrongPassword).to_string(),
            // too many wrong passwords says how long to wait, when the server said
            _ => e.text(c.lang.get()),
        }
    };
    let needs_password = move || quote.with(|q| q.as_ref().is_some_and(|q| q.needs_reauth));
    let redeem = ipc::action(move |req: Redeem| async move {
        match ipc::call_told(&req).await {
            Ok(done) => {
                view.set(Some(done.view));
                made.set(Some(done.id));
                confirming.set(false);
                password.set(String::new());
                amount.set(None);
                item.set(None);
            }
            Err(e) => {
                let wrong_password = e.code == ErrorCode::InvalidCredentials;
                error.set(Some(e));
                if wrong_password {
                    password.set(String::new());
                } else {
                    confirming.set(false);
                }
            }
        }
    });
    let busy = redeem.pending();
    let submit = move || {
        let (Ok(t), Some(q)) = (target(), quote.get_untracked()) else {
            return;
        };
        if needs_password() && password.get_untracked().is_empty() {
            return;
        }
        let pw = needs_password().then(|| password.get_untracked());
        ipc::dispatch_once(
            redeem,
            Redeem {
                target: t,
                points: q.points,
                password: pw,
            },
        );
    };
    let kind_chip = move |k: Kind, id: &'static str, label: Msg| {
        view! {
            <button type="button" class="choice" id=id class:active=move || kind.get() == k
                role="radio" aria-checked=move || (kind.get() == k).to_string()
                on:click=move |_| if !busy.get_untracked() { kind.set(k); amount.set(None); edited(); }>
                {move || c.t(label)}
            </button>
        }
    };
    // what the member is about to get, in words, for the confirmation
    let summary = move || {
        let (Ok(t), Some(v)) = (target(), view.get()) else {
            return String::new();
        };
        describe(c, &t, &v)
    };
    // the confirmation comes into view with its buttons
    Effect::new(move |_| {
        if confirming.get() {
            request_animation_frame(|| {
                if let Some(el) = document().get_element_by_id("redeem-confirm") {
                    let opts = web_sys::ScrollIntoViewOptions::new();
                    opts.set_block(web_sys::ScrollLogicalPosition::Center);
                    el.scroll_into_view_with_scroll_into_view_options(&opts);
                }
            });
        }
    });
    let made_note = move || {
        let id = made.get()?;
        view.with(|v| {
            let v = v.as_ref()?;
            let r = v.redemptions.iter().find(|r| r.id == id)?;
            let tone = match r.status {
                RedemptionStatus::Settled { .. } => "ok",
                RedemptionStatus::Refunded { .. } | RedemptionStatus::Rejected { .. } => "warn",
                _ => "info",
            };
            Some((tone, note_text(c, r, v)))
        })
    };
    view! {
        <form class="card" id="redeem" on:submit=move |ev| { ev.prevent_default(); if confirming.get_untracked() { submit() } else if quote.get_untracked().is_some() { confirming.set(true) } }>
            <h2>{move || c.t(Msg::RedeemTitle)}</h2>
            <div class="choices kinds" role="radiogroup" aria-label=move || c.t(Msg::RedeemKindLabel)>
                {kind_chip(Kind::Phone, "redeem-kind-phone", Msg::KindPhone)}
                {kind_chip(Kind::Power, "redeem-kind-power", Msg::KindPower)}
                {kind_chip(Kind::Catalog, "redeem-kind-catalog", Msg::KindCatalog)}
            </div>
            <Show when=move || kind.get() == Kind::Phone>
                <label for="redeem-mobile">{move || c.t(Msg::MobileLabel)}</label>
                <input id="redeem-mobile" type="tel" inputmode="numeric" autocomplete="tel"
                    prop:value=move || mobile.get() prop:disabled=move || confirming.get()
                    on:blur=move |_| mobile_left.set(true)
                    on:input=move |ev| { mobile.set(event_target_value(&ev)); mobile_left.set(false); edited(); }/>
            </Show>
            <Show when=move || kind.get() == Kind::Power>
                <label for="redeem-account">{move || c.t(Msg::AccountLabel)}</label>
                <input id="redeem-account" type="text" inputmode="numeric"
                    prop:value=move || account.get() prop:disabled=move || confirming.get()
                    on:blur=move |_| account_left.set(true)
                    on:input=move |ev| { account.set(event_target_value(&ev)); account_left.set(false); edited(); }/>
            </Show>
            <p class="field-error" id="redeem-field-error" role="alert">
                {move || field_error().map(|e| c.t(e.message())).unwrap_or_default()}
            </p>
            <Show when=move || kind.get() != Kind::Catalog>
                <p class="muted small" id="redeem-cap">
                    {move || cap().map(|cl| fill(c.t(Msg::CapLeftLine), &[
                        ("left", &yuan(cl.left_cents)),
                        ("cap", &yuan(cl.cap_cents)),
                    ]))}
                </p>
                <div class="choices amounts" role="radiogroup" aria-label=move || c.t(Msg::RedeemAmountLabel)>
                    {move || amounts().into_iter().map(|a| {
                        // over the month's cap, or more points than are available
                        let over = move || {
                            cap().is_some_and(|cl| a > cl.left_cents)
                                || points_of(a).is_some_and(|p| p > available())
                        };
                        view! {
                            <button type="button" class="choice" id=format!("amount-{a}")
                                class:active=move || amount.get() == Some(a)
                                role="radio" aria-checked=move || (amount.get() == Some(a)).to_string()
                                // open while the choice is confirmed (another one goes back to
                                // the form): greyed means out of reach, nothing else
                                prop:disabled=over
                                title=move || if over() { c.t(Msg::OverCap).to_string() } else { String::new() }
                                on:click=move |_| if !busy.get_untracked() { amount.set(Some(a)); edited(); }>
                                {move || fill(c.t(Msg::AmountChip), &[
                                    ("v", &yuan(a)),
                                    ("points", &points_of(a).map(thousands).unwrap_or_default()),
                                ])}
                            </button>
                        }
                    }).collect_view()}
                </div>
                <Show when=some_out_of_reach>
                    <p class="muted small" id="redeem-out-of-reach">{move || c.t(Msg::AmountsOutOfReach)}</p>
                </Show>
            </Show>
            <Show when=move || kind.get() == Kind::Catalog>
                <ul class="list catalog" id="catalog">
                    {move || offer().map(|o| o.catalog).unwrap_or_default().into_iter().map(|i| {
                        let id = i.id;
                        let stock = i.stock;
                        view! {
                            <li>
                                <button type="button" class="choice item" id=format!("item-{id}")
                                    class:active=move || item.get() == Some(id)
                                    prop:disabled=move || stock <= 0
                                    on:click=move |_| if !busy.get_untracked() { item.set(Some(id)); edited(); }>
                                    <span>{i.title(c.lang.get()).to_string()}</span>
                                    <span class="muted small">{fill(c.t(Msg::ItemStock), &[("points", &thousands(i.points)), ("n", &stock.to_string())])}</span>
                                </button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
            <p class="price" id="redeem-price">
                {move || quote.with(|q| q.as_ref().map(|q| fill(c.t(Msg::PricePoints), &[("n", &thousands(q.points))]))).unwrap_or_default()}
            </p>
            <Show when=move || error.get().is_some()>
                <p class="notice warn" id="redeem-error" role="alert">
                    {move || error.get().map(error_text).unwrap_or_default()}
                </p>
            </Show>
            <Show when=move || !confirming.get()>
                <button type="submit" class="primary" id="redeem-submit"
                    prop:disabled=move || quote.with(|q| q.is_none())>
                    {move || if quote.with(|q| q.is_some()) { c.t(Msg::RedeemButton) } else { c.t(Msg::RedeemFillFirst) }}
                </button>
            </Show>
            <Show when=move || confirming.get()>
                <div class="confirm" id="redeem-confirm" role="group" aria-labelledby="redeem-confirm-title">
                    <h3 id="redeem-confirm-title">{move || c.t(Msg::ConfirmTitle)}</h3>
                    <p class="confirm-what" id="redeem-confirm-what">{summary}</p>
                    <p id="redeem-confirm-cost">{move || {
                        let n = quote.with(|q| q.as_ref().map(|q| q.points)).unwrap_or(0);
                        let available = view.with(|v| v.as_ref().map(|v| v.balance.available - v.queued)).unwrap_or(0);
                        fill(c.t(Msg::ConfirmCost), &[("n", &thousands(n)), ("after", &thousands(available - n))])
                    }}</p>
                    <p class="muted small">{move || c.t(Msg::ConfirmFinal)}</p>
                    <Show when=needs_password>
                        <label for="redeem-password">
                            {move || fill(c.t(Msg::PasswordAgain), &[("n", &offer().map(|o| thousands(o.reauth_above_points)).unwrap_or_default())])}
                        </label>
                        <input id="redeem-password" type="password" autocomplete="current-password"
                            prop:value=move || password.get()
                            on:input=move |ev| password.set(event_target_value(&ev))/>
                    </Show>
                    <div class="actions">
                        // back first, the final step last: as every confirmation in the app
                        <button type="button" class="secondary" id="redeem-back"
                            prop:disabled=move || busy.get()
                            on:click=move |_| { confirming.set(false); error.set(None); }>
                            {move || c.t(Msg::BackToEdit)}
                        </button>
                        <button type="submit" class="primary" id="redeem-go"
                            prop:disabled=move || busy.get() || (needs_password() && password.get().is_empty())>
                            {move || if busy.get() {
                                c.t(Msg::Redeeming).to_string()
                            } else {
                                fill(c.t(Msg::ConfirmGo), &[("n", &quote.with(|q| q.as_ref().map(|q| thousands(q.points))).unwrap_or_default())])
                            }}
                        </button>
                    </div>
                </div>
            </Show>
            {move || made_note().map(|(tone, text)| view! {
                <p class=format!("notice {tone}") id="redeem-done" role="status">{text}</p>
            })}
        </form>
    }
}

#[component]
pub fn PointsTab() -> impl IntoView {
    let c = ctx();
    let view = RwSignal::new(None::<PointsView>);
    Effect::new(move |_| {
        c.snap.track();
        load(view);
    });
    let v = move || view.get();
    let expiring = move || {
        v().map(|v| {
            v.expiry
                .into_iter()
                .filter(|m| m.points > 0)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    };
    view! {
        <section class="points">
            <h1>{move || c.t(Msg::PointsTitle)}</h1>
            <div class="card balance">
                <p class="muted small">{move || c.t(Msg::PointsAvailable)}</p>
                <p class="big" id="points-available">
                    {move || v().map(|v| thousands(v.balance.available - v.queued)).unwrap_or_default()}
                </p>
                <p class="muted small" id="points-detail">
                    {move || v().map(|v| {
                        // the total only when it differs from the big number above
                        let mut parts = Vec::new();
                        if v.balance.posted != v.balance.available - v.queued {
                            parts.push(fill(c.t(Msg::PointsPosted), &[("n", &thousands(v.balance.posted))]));
                        }
                        // only what is there: "in process 0" says nothing
                        if v.balance.pending > 0 {
                            parts.push(fill(c.t(Msg::PointsPending), &[("n", &thousands(v.balance.pending))]));
                        }
                        if v.queued > 0 {
                            parts.push(fill(c.t(Msg::PointsQueued), &[("n", &thousands(v.queued))]));
                        }
                        parts.join(" · ")
                    }).unwrap_or_default()}
                </p>
                {move || v().and_then(|v| v.expiring_soon).map(|(at, n)| view! {
                    <p class="notice warn small" id="points-expiring-soon" role="status">
                        {move || unbroken(fill(c.t(Msg::PointsExpiringSoon), &[
                            ("n", &thousands(n)),
                            ("time", &format_date(at - chrono::Duration::seconds(1), ZONE)),
                        ]))}
                    </p>
                })}
            </div>
            <RedeemForm view/>
            <div class="card">
                <h2>{move || c.t(Msg::RedemptionsTitle)}</h2>
                <Show when=move || v().is_some_and(|v| !v.redemptions.is_empty())
                    fallback=move || view! { <p class="muted">{move || c.t(Msg::NoRedemptions)}</p> }>
                    <ul class="list" id="redemptions">
                        {move || v().map(|pv| pv.redemptions.iter().map(|r| {
                            let bad = matches!(r.status, RedemptionStatus::Refunded { .. } | RedemptionStatus::Rejected { .. });
                            let ok = matches!(r.status, RedemptionStatus::Settled { .. });
                            view! {
                                <li class="redemption" id=format!("redemption-{}", r.id)>
                                    <div class="redemption-main">
                                        <span>{describe(c, &r.target, &pv)}</span>
                                        <span class="muted small"><span class="nowrap">{when(r.created_at, c.lang.get())}</span>" · "{fill(c.t(Msg::PointsN), &[("n", &thousands(r.points))])}</span>
                                    </div>
                                    <span class="redemption-status small" class:warn=bad class:ok=ok>{status_text(c, r)}</span>
                                </li>
                            }
                        }).collect_view())}
                    </ul>
                </Show>
            </div>
            <div class="card">
                <h2>{move || c.t(Msg::ExpiryTitle)}</h2>
                <Show when=move || !expiring().is_empty()
                    fallback=move || view! { <p class="muted">{move || c.t(Msg::NothingExpiring)}</p> }>
                    <ul class="list expiry" id="points-expiry">
                        {move || expiring().into_iter().map(|d| view! {
                            <li>{fill(c.t(Msg::ExpiryDay), &[("date", &d.date), ("n", &thousands(d.points))])}</li>
                        }).collect_view()}
                    </ul>
                </Show>
            </div>
            <div class="card">
                <h2>{move || c.t(Msg::HistoryTitle)}</h2>
                {move || v().map(|v| view! { <HistoryChart history=v.history/> })}
            </div>
        </section>
    }
}
