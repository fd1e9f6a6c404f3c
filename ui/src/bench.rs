//! Benchmark hooks, in one place: the screens report milestones (the passport QR on screen, the
//! wallet's rows with their timings) through the `ui_ready` command, which the startup and wallet
//! benches read. Nothing here changes what a member sees.

use std::sync::atomic::{AtomicBool, Ordering};

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::ipc::UiReady;

use crate::ipc;

/// Milliseconds since the page started (the browser's monotonic clock).
pub fn perf_now() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or(0.0)
}

/// Tell the shell a milestone was reached.
pub fn report(what: String) {
    spawn_local(async move {
        let _ = ipc::call(&UiReady { what }).await;
    });
}

static QR_REPORTED: AtomicBool = AtomicBool::new(false);

/// The passport QR is in the page: report `qr_visible` once, after the frame that shows it was
/// painted (a frame callback runs before its paint; the next frame's runs after it).
pub fn qr_visible() {
    if !QR_REPORTED.swap(true, Ordering::SeqCst) {
        request_animation_frame(|| request_animation_frame(|| report("qr_visible".into())));
    }
}

/// The ids of the wallet's rows now in the page, in order.
fn rows_in_page() -> Vec<String> {
    let Ok(list) = document().query_selector_all("#wallet-list > li > button") else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(n).ok())
        .map(|e| e.id())
        .collect()
}

/// The wallet answered (`answered` ms after `started`) with the rows `ids`: once exactly those
/// rows are in the list, in order, report `what=<ms since started> ipc=<answered>`.
pub async fn wallet_rows_shown(what: &'static str, started: f64, answered: f64, ids: Vec<String>) {
    // The rows are rendered by effects queued as microtasks: yield until they are all in the
    // page, then take the time (layout and paint follow in the same frame).
    let mut shown = false;
    for _ in 0..1000 {
        let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(
            &wasm_bindgen::JsValue::NULL,
        ))
        .await;
        if rows_in_page() == ids {
            shown = true;
            break;
        }
    }
    if !shown {
        // not a figure: the bench fails on a missing report instead of taking a wrong one
        return;
    }
    report(format!(
        "{what}={:.1} ipc={answered:.1}",
        perf_now() - started
    ));
}
