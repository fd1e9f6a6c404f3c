//! The live passport QR: a fresh code every 30-second step, made on this device with its key
//! (`GetLivePassport`), with the countdown ring. Shown on the passport screen and, when a newer
//! version wrote the local store, on the screen that says so.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::{fill, Msg};
use unionpass_core::ipc::GetLivePassport;
use unionpass_core::view::LivePassport;
use unionpass_core::ErrorCode;

use crate::bench;
use crate::ctx::ctx;
use crate::fmt::now;
use crate::ipc;

/// The circumference of the countdown ring (r = 16).
const RING: f64 = 100.53;

/// How long after a failed try the code is asked for again (the keyring was locked, say).
const RETRY_MS: i64 = 5_000;

/// `wanted`: there is a credential to make codes from; a code is asked for each time it notifies
/// true (a derived signal notifies whenever what it reads changes: on the passport screen, every
/// snapshot, so a new credential from sync gets a new code). `missing`: what to say while there
/// is no code, given the error the last try got; a failed try is repeated every few seconds.
#[component]
pub fn LiveQr<F>(#[prop(into)] wanted: Signal<bool>, missing: F) -> impl IntoView
where
    F: Fn(Option<ErrorCode>) -> &'static str + Send + Sync + 'static,
{
    let c = ctx();
    let missing = std::sync::Arc::new(missing);
    let live = RwSignal::new(None::<LivePassport>);
    let live_error = RwSignal::new(None::<ErrorCode>);
    let clock = RwSignal::new(now());
    let fetching = StoredValue::new(false);
    let tried_at = StoredValue::new(now());
    let fetch = move || {
        if fetching.get_value() {
            return;
        }
        fetching.set_value(true);
        tried_at.set_value(now());
        spawn_local(async move {
            match ipc::call(&GetLivePassport {}).await {
                Ok(l) => {
                    live.set(Some(l));
                    live_error.set(None);
                }
                Err(code) => {
                    live.set(None);
                    live_error.set(Some(code));
                }
            }
            fetching.set_value(false);
        });
    };
    Effect::new(move |_| {
        if wanted.get() {
            fetch();
        }
    });
    // every step: a fresh code, made on this device
    let ticker = set_interval_with_handle(
        move || {
            let t = now();
            clock.set(t);
            let due = live.with_untracked(|l| l.as_ref().is_some_and(|l| t >= l.step_ends_at));
            let retry = live_error.with_untracked(Option::is_some)
                && wanted.get_untracked()
                && (t - tried_at.get_value()).num_milliseconds() >= RETRY_MS;
            if due || retry {
                fetch();
            }
        },
        std::time::Duration::from_millis(250),
    )
    .ok();
    on_cleanup(move || {
        if let Some(h) = ticker {
            h.clear();
        }
    });
    let qr_svg = Memo::new(move |_| {
        live.with(|l| l.as_ref().map(|l| l.qr_svg.clone()))
            .unwrap_or_default()
    });
    let left_ms = move || {
        live.with(|l| {
            l.as_ref()
                .map(|l| {
                    (l.step_ends_at - clock.get())
                        .num_milliseconds()
                        .clamp(0, 30_000)
                })
                .unwrap_or(0)
        })
    };
    Effect::new(move |_| {
        if !qr_svg.get().is_empty() {
            bench::qr_visible();
        }
    });
    view! {
        <Show
            when=move || !qr_svg.get().is_empty()
            fallback=move || {
                let missing = missing.clone();
                view! {
                    // no code because of a problem (expired, the keyring locked): a warning
                    <p id="passport-missing" class="notice" class:warn=move || live_error.with(Option::is_some)
                        role="status">{move || missing(live_error.get())}</p>
                }
            }
        >
            <div id="passport-qr" class="qr" role="img"
                aria-label=move || c.t(Msg::PassportQrLabel)
                inner_html=move || qr_svg.get()></div>
            <div class="countdown" aria-live="off">
                <svg class="ring" viewBox="0 0 36 36" aria-hidden="true">
                    <circle class="ring-bg" cx="18" cy="18" r="16"/>
                    <circle class="ring-fg" cx="18" cy="18" r="16"
                        stroke-dasharray=RING.to_string()
                        stroke-dashoffset=move || format!("{:.2}", RING * (1.0 - left_ms() as f64 / 30_000.0))/>
                </svg>
                <span id="passport-countdown">
                    {move || fill(c.t(Msg::PassportRefreshIn), &[("s", &((left_ms() + 999) / 1000).to_string())])}
                </span>
            </div>
            <p class="hint">{move || c.t(Msg::PassportLiveHint)}</p>
        </Show>
    }
}
