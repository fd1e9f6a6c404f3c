//! UnionPass UI: Leptos, client-side rendered, compiled to wasm32 and shown by the Tauri shell.
//! It reads and writes only through the shell's commands (`ipc`, typed by
//! `unionpass_core::ipc`); every word comes from the i18n table in `unionpass-core`.
//!
//! - `app`: the root (which screen, the tab bar); nothing imports it.
//! - `screens`: one module per screen.
//! - `widgets`: pieces shown on several screens.
//! - `ctx` (the snapshot and language every screen shares), `fmt` (times, money), `ipc` (the
//!   shell), `bench` (benchmark milestones).

mod app;
mod bench;
mod ctx;
mod fmt;
mod ipc;
mod screens;
mod widgets;

fn main() {
    // A panic is a bug. Built here it stops the wasm at once (xtask/src/build.rs,
    // `UI_RUSTFLAGS_BUILD_STD`), surfacing as a JavaScript error that `assets/boot.js` writes to
    // the app's log file through the shell; built where std is prebuilt, the hook below says
    // more (the message and its line) the same way, before boot.js logs the trap that follows.
    std::panic::set_hook(Box::new(|info| {
        ipc::send_now(&unionpass_core::ipc::LogUiPanic {
            message: info.to_string(),
        });
    }));
    leptos::mount::mount_to_body(app::App);
    // from here on the screens say what went wrong (assets/boot.js only speaks before this)
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(
            &w,
            &wasm_bindgen::JsValue::from_str("__unionpassStarted"),
            &wasm_bindgen::JsValue::TRUE,
        );
    }
}
