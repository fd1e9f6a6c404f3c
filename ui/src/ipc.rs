//! Calls into the Tauri shell through the typed contract of `unionpass_core::ipc`: a request
//! struct names its command and its answer, so no command name is spelled here. Errors arrive as
//! `{code, detail}` and are reduced to the code.

use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use unionpass_core::ipc::{Answer, Command, Event};
use unionpass_core::view::CommandError;
use unionpass_core::ErrorCode;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // window.__TAURI__ is injected by the shell (app.withGlobalTauri)
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], catch)]
    async fn invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    /// `invoke` with options (headers), for a raw byte payload.
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn invoke_with(cmd: &str, args: JsValue, options: JsValue) -> Result<JsValue, JsValue>;

    /// The same `invoke`, not awaited: a panic hook cannot wait (the wasm instance stops).
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    fn invoke_now(cmd: &str, args: JsValue) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], catch)]
    async fn listen(event: &str, handler: &Closure<dyn FnMut(JsValue)>)
        -> Result<JsValue, JsValue>;
}

fn code_of(err: JsValue) -> ErrorCode {
    error_of(err).code
}

fn error_of(err: JsValue) -> CommandError {
    // anything but our `{code, detail}` means the UI and the shell disagree about a command
    serde_wasm_bindgen::from_value::<CommandError>(err)
        .unwrap_or_else(|_| ErrorCode::BadResponse.into())
}

/// The one argument every command takes (`unionpass_core::ipc::ARG`).
#[derive(Serialize)]
struct Args<'a, C> {
    req: &'a C,
}

/// Invoke command `C` with `req`.
pub async fn call<C: Command>(req: &C) -> Result<Answer<C>, ErrorCode> {
    call_told(req).await.map_err(|e| e.code)
}

/// Invoke command `C` with `req`; an error with all the UI may show of it (the wait the server
/// asked for, besides the code).
pub async fn call_told<C: Command>(req: &C) -> Result<Answer<C>, CommandError> {
    debug_assert_eq!(unionpass_core::ipc::ARG, "req");
    let args = serde_wasm_bindgen::to_value(&Args { req }).map_err(|_| ErrorCode::Internal)?;
    let value = invoke(C::NAME, args).await.map_err(error_of)?;
    Ok(serde_wasm_bindgen::from_value(value).map_err(|_| ErrorCode::BadResponse)?)
}

/// Invoke command `C` with `bytes` as the raw IPC body (no JSON, no base64) and `req` in the
/// [`unionpass_core::ipc::RAW_REQ_HEADER`] header.
pub async fn call_raw<C: Command>(req: &C, bytes: &[u8]) -> Result<Answer<C>, ErrorCode> {
    let header = serde_wasm_bindgen::to_value(req)
        .ok()
        .and_then(|v| js_sys::JSON::stringify(&v).ok())
        .ok_or(ErrorCode::Internal)?;
    let headers = js_sys::Object::new();
    let _ = js_sys::Reflect::set(
        &headers,
        &JsValue::from_str(unionpass_core::ipc::RAW_REQ_HEADER),
        &header,
    );
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &JsValue::from_str("headers"), &headers);
    let body = js_sys::Uint8Array::from(bytes);
    let value = invoke_with(C::NAME, body.into(), options.into())
        .await
        .map_err(code_of)?;
    serde_wasm_bindgen::from_value(value).map_err(|_| ErrorCode::BadResponse)
}

/// Send a command without waiting for its answer (from a panic hook: the request leaves before
/// the wasm instance stops).
pub fn send_now<C: Command>(req: &C) {
    if let Ok(args) = serde_wasm_bindgen::to_value(&Args { req }) {
        let _ = invoke_now(C::NAME, args);
    }
}

/// An action running `run` with each request dispatched to it; its `pending()` is the busy flag.
/// Dispatch with [`dispatch_once`] so that a double tap sends one request.
pub fn action<I, F, Fut>(run: F) -> Action<I, ()>
where
    I: Clone + 'static,
    F: Fn(I) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    Action::new_local(move |req: &I| run(req.clone()))
}

/// Dispatch `req` unless the action is still running (a double tap sends one request).
pub fn dispatch_once<I: 'static>(action: Action<I, ()>, req: I) {
    if !action.pending().get_untracked() {
        action.dispatch_local(req);
    }
}

/// Run `f` with the payload every time the shell emits `E`, for the life of the page. Payloads
/// that do not parse are ignored.
pub async fn on_event<E: Event>(f: impl FnMut(E::Payload) + 'static)
where
    E::Payload: DeserializeOwned + 'static,
{
    let mut f = f;
    let closure = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let payload =
            js_sys::Reflect::get(&e, &JsValue::from_str("payload")).unwrap_or(JsValue::NULL);
        if let Ok(v) = serde_wasm_bindgen::from_value::<E::Payload>(payload) {
            f(v);
        }
    });
    if listen(E::NAME, &closure).await.is_ok() {
        closure.forget(); // the listener lives as long as the page
    }
}
