//! Calls into the Tauri shell. Errors arrive as `{code, detail}` and are reduced to the code.

use serde::de::DeserializeOwned;
use serde::Serialize;
use unionpass_core::view::CommandError;
use unionpass_core::ErrorCode;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // window.__TAURI__ is injected by the shell (app.withGlobalTauri)
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], catch)]
    async fn invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], catch)]
    async fn listen(event: &str, handler: &Closure<dyn FnMut(JsValue)>)
        -> Result<JsValue, JsValue>;
}

fn code_of(err: JsValue) -> ErrorCode {
    // anything but our `{code, detail}` means the UI and the shell disagree about a command
    serde_wasm_bindgen::from_value::<CommandError>(err)
        .map(|e| e.code)
        .unwrap_or(ErrorCode::BadResponse)
}

/// Invoke a shell command with named arguments.
pub async fn call<A: Serialize, T: DeserializeOwned>(cmd: &str, args: &A) -> Result<T, ErrorCode> {
    let args = serde_wasm_bindgen::to_value(args).map_err(|_| ErrorCode::Internal)?;
    let value = invoke(cmd, args).await.map_err(code_of)?;
    serde_wasm_bindgen::from_value(value).map_err(|_| ErrorCode::BadResponse)
}

/// Invoke a shell command that takes no arguments.
pub async fn call0<T: DeserializeOwned>(cmd: &str) -> Result<T, ErrorCode> {
    call(cmd, &serde_json_empty()).await
}

#[derive(Serialize)]
struct Empty {}

fn serde_json_empty() -> Empty {
    Empty {}
}

/// Run `f` every time the shell emits `event`, for the life of the page.
pub async fn on_event(event: &str, f: impl FnMut() + 'static) {
    let mut f = f;
    let closure = Closure::<dyn FnMut(JsValue)>::new(move |_| f());
    if listen(event, &closure).await.is_ok() {
        closure.forget(); // the listener lives as long as the page
    }
}

/// Run `f` with the payload every time the shell emits `event`, for the life of the page.
/// Payloads that do not parse are ignored.
pub async fn on_event_payload<T: DeserializeOwned + 'static>(
    event: &str,
    f: impl FnMut(T) + 'static,
) {
    let mut f = f;
    let closure = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let payload =
            js_sys::Reflect::get(&e, &JsValue::from_str("payload")).unwrap_or(JsValue::NULL);
        if let Ok(v) = serde_wasm_bindgen::from_value::<T>(payload) {
            f(v);
        }
    });
    if listen(event, &closure).await.is_ok() {
        closure.forget();
    }
}
