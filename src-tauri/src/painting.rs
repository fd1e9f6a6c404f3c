//! How WebKitGTK paints this app on Linux: on the CPU, with no GPU stack loaded where none is
//! needed. Set through the environment in `run()`, before any thread starts and before GTK or
//! WebKit reads it (both read these once; WebKit's own processes inherit them).
//!
//! The screens are cards, lists and an SVG QR code, which software painting draws at full speed.
//! Each switch is measured by `cargo xtask bench startup` (bench/RESULTS.md):
//! - `WEBKIT_DISABLE_COMPOSITING_MODE`: no accelerated compositor (about 70 MB).
//! - The other three keep the app's own process from opening an EGL or GLX display it would
//!   never draw with, which loads Mesa's driver and its LLVM (the app's process was about 24 MB
//!   larger with them): GTK probes GLX when it opens the display unless `GDK_GL=disable`; WebKit
//!   asks EGL whether the GPU can share buffers unless the DMA-BUF renderer is off (it is only
//!   used for accelerated compositing, which is off); and it asks EGL for the GPU's render node
//!   unless `WEBKIT_WEB_RENDER_DEVICE_FILE` names one. Any two of the three still load it. We
//!   name the lowest-numbered render node (WebKit would ask EGL which device it renders with; on
//!   a machine with two GPUs the two answers can differ, and with compositing off nothing here
//!   renders with either), or, on a machine without one, `/dev/null`: a path that matches no DRM
//!   device, so WebKit uses none (measured on such a machine; the render-node case is not). The
//!   web process still opens EGL: it cannot start without a display.
//!
//! A member who turned compositing back on (`WEBKIT_DISABLE_COMPOSITING_MODE=0`; WebKit reads
//! any other value as "off") gets WebKit's defaults for the rest, and any variable the member
//! set is left as it is. (A restart after an update inherits these, and keeps them as set.)

use std::path::Path;

const COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
const DMABUF: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";
const GDK_GL: &str = "GDK_GL";
const RENDER_DEVICE: &str = "WEBKIT_WEB_RENDER_DEVICE_FILE";

/// The variables to set, given which are already set (`get`) and the machine's first DRM
/// render node (`render_node`, looked for only when the variable naming it is to be set).
fn environment(
    get: impl Fn(&str) -> Option<String>,
    render_node: impl FnOnce() -> Option<String>,
) -> Vec<(&'static str, String)> {
    if get(COMPOSITING).is_some_and(|v| v == "0") {
        return Vec::new();
    }
    let mut vars: Vec<(&'static str, String)> =
        [(COMPOSITING, "1"), (DMABUF, "1"), (GDK_GL, "disable")]
            .into_iter()
            .filter(|(name, _)| get(name).is_none())
            .map(|(name, value)| (name, value.to_string()))
            .collect();
    if get(RENDER_DEVICE).is_none() {
        let node = render_node().unwrap_or_else(|| "/dev/null".to_string());
        vars.push((RENDER_DEVICE, node));
    }
    vars
}

/// `/dev/dri/renderD128` or the lowest-numbered render node there is.
fn first_render_node(dri: &Path) -> Option<String> {
    std::fs::read_dir(dri)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        .map(|e| e.path().to_string_lossy().into_owned())
        // by number: renderD128 before renderD1000
        .min_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
}

/// Call first thing in `run()`: `set_var` is only sound while the process has one thread.
pub fn paint_on_the_cpu() {
    let vars = environment(
        |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        || first_render_node(Path::new("/dev/dri")),
    );
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(set: &[(&str, &str)], node: Option<&str>) -> HashMap<&'static str, String> {
        let env: HashMap<String, String> = set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        environment(|n| env.get(n).cloned(), || node.map(str::to_string))
            .into_iter()
            .collect()
    }

    #[test]
    fn by_default_all_four_are_set_and_the_render_node_is_the_machines() {
        let vars = with(&[], Some("/dev/dri/renderD128"));
        assert_eq!(vars.len(), 4);
        assert_eq!(vars[COMPOSITING], "1");
        assert_eq!(vars[DMABUF], "1");
        assert_eq!(vars[GDK_GL], "disable");
        assert_eq!(vars[RENDER_DEVICE], "/dev/dri/renderD128");
        assert_eq!(with(&[], None)[RENDER_DEVICE], "/dev/null");
    }

    #[test]
    fn the_members_own_settings_win() {
        // compositing back on: WebKit's defaults for everything else
        assert!(with(&[(COMPOSITING, "0")], None).is_empty());
        // any other value keeps it off, as WebKit reads it: the rest are still set
        let vars = with(&[(COMPOSITING, "true")], None);
        assert_eq!(vars.len(), 3);
        assert!(!vars.contains_key(COMPOSITING));
        // a variable the member set stays theirs; the others are still set
        let vars = with(&[(GDK_GL, "always"), (COMPOSITING, "1")], None);
        assert_eq!(vars.len(), 2);
        assert!(!vars.contains_key(GDK_GL) && !vars.contains_key(COMPOSITING));
        assert_eq!(vars[DMABUF], "1");
        // a device the member named: the machine's nodes are not even looked for
        let env = |n: &str| (n == RENDER_DEVICE).then(|| "/dev/dri/renderD129".to_string());
        let vars = environment(env, || panic!("looked for a render node"));
        assert!(vars.iter().all(|(name, _)| *name != RENDER_DEVICE));
    }

    #[test]
    fn the_lowest_render_node_is_chosen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dri");
        assert_eq!(first_render_node(&dir), None); // no such directory
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(first_render_node(&dir), None);
        for name in ["card0", "renderD129", "renderD128", "renderD1000"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let expected = dir.join("renderD128").to_string_lossy().into_owned();
        assert_eq!(first_render_node(&dir), Some(expected));
    }
}
