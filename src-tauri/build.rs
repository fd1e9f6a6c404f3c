fn main() {
    // src-tauri/tauri.conf.json: the one Tauri config, read here and by the bundler
    tauri_build::build()
}
