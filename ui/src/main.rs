//! UnionPass UI: Leptos, client-side rendered, compiled to wasm32 and shown by the Tauri shell.
//! It reads and writes only through the shell's commands (see `ipc`); every word comes from the
//! i18n table in `unionpass-core`.

mod app;
mod calendar;
mod ipc;
mod points;
mod scanner;
mod wallet;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
