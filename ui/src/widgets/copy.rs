//! A button that copies a text (a coupon's code) to the clipboard. Where the webview refuses the
//! clipboard, it selects the text on screen and says how to copy it by hand.

use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::Msg;
use wasm_bindgen::{JsCast, JsValue};

use crate::ctx::ctx;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Copied {
    Not,
    Yes,
    ByHand,
}

/// `navigator.clipboard.writeText(text)`, answered true when the promise resolved.
async fn write_clipboard(text: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
    let Some(clipboard) = get(&window.navigator().into(), "clipboard").filter(|c| c.is_object())
    else {
        return false;
    };
    let Some(write) =
        get(&clipboard, "writeText").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    match write.call1(&clipboard, &JsValue::from_str(text)) {
        Ok(p) => match p.dyn_into::<js_sys::Promise>() {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await.is_ok(),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// Select the element's text, so that Ctrl+C (or the system's copy) takes it.
fn select(target: &str) {
    let Some(el) = document().get_element_by_id(target) else {
        return;
    };
    if let Ok(Some(sel)) = window().get_selection() {
        let _ = sel.select_all_children(&el);
    }
}

#[component]
pub fn CopyButton(id: &'static str, text: String, target: &'static str) -> impl IntoView {
    let c = ctx();
    let state = RwSignal::new(Copied::Not);
    let copy = move |_| {
        let text = text.clone();
        spawn_local(async move {
            if write_clipboard(&text).await {
                state.set(Copied::Yes);
            } else {
                select(target);
                state.set(Copied::ByHand);
            }
        });
    };
    view! {
        <button type="button" class="secondary small-button" id=id on:click=copy>
            {move || match state.get() {
                Copied::Not => c.t(Msg::Copy),
                Copied::Yes => c.t(Msg::Copied),
                Copied::ByHand => c.t(Msg::CopyByHand),
            }}
        </button>
    }
}
