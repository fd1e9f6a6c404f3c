//! ARCHITECTURE.md stays true: every public module of core, client and server is named in its
//! crate's section of the code map (checked by a test that `cargo xtask test` runs).

use std::path::Path;

/// The crates whose public modules the code map must name: (section heading, lib.rs).
pub const CRATES: &[(&str, &str)] = &[
    ("crates/unionpass-core", "crates/unionpass-core/src/lib.rs"),
    (
        "crates/unionpass-client",
        "crates/unionpass-client/src/lib.rs",
    ),
    ("server", "server/src/lib.rs"),
];

/// The names of the `pub mod` items declared in a crate root (or module file).
pub fn public_modules(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').trim().to_string())
        .collect()
}

/// The text of the `### <heading>` section (up to the next `##` heading).
pub fn section<'a>(doc: &'a str, heading: &str) -> Option<&'a str> {
    let start = doc.find(&format!("### `{heading}`"))?;
    let rest = &doc[start + 4..];
    let end = rest.find("\n##").map(|i| i + 1).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// What the code map leaves out: `crate: module` for each public module not named (in
/// backticks) in its crate's section.
pub fn missing(root: &Path) -> Vec<String> {
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    let mut out = Vec::new();
    for (heading, lib) in CRATES {
        let source = std::fs::read_to_string(root.join(lib)).unwrap_or_default();
        let modules = public_modules(&source);
        if modules.is_empty() {
            out.push(format!("{heading}: no public module found in {lib}"));
        }
        let Some(text) = section(&doc, heading) else {
            out.push(format!("{heading}: no section"));
            continue;
        };
        for m in modules {
            if !text.contains(&format!("`{m}`")) {
                out.push(format!("{heading}: {m}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_public_modules_and_sections() {
        let src = "pub mod api;\nmod private;\npub mod time;\n#[cfg(feature = \"x\")]\npub mod testing;\n";
        assert_eq!(public_modules(src), ["api", "time", "testing"]);
        let doc = "# A\n### `crates/x`\nhas `api`\n### `server`\nhas `time`\n## Later\n";
        assert_eq!(section(doc, "crates/x"), Some("`crates/x`\nhas `api`\n"));
        assert_eq!(section(doc, "server"), Some("`server`\nhas `time`\n"));
    }

    #[test]
    fn a_module_left_out_of_the_code_map_is_named() {
        let root = tempfile_dir();
        for (_, lib) in CRATES {
            let path = root.join(lib);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "pub mod named;\npub mod forgotten;\n").unwrap();
        }
        let doc: String = CRATES
            .iter()
            .map(|(h, _)| format!("### `{h}`\nholds `named`\n"))
            .collect();
        std::fs::write(root.join("ARCHITECTURE.md"), doc).unwrap();
        let left_out = missing(&root);
        assert_eq!(left_out.len(), CRATES.len(), "{left_out:?}");
        assert!(
            left_out.iter().all(|m| m.ends_with(": forgotten")),
            "{left_out:?}"
        );
        // a crate root that moved away is a problem, not an empty pass
        std::fs::remove_file(root.join(CRATES[0].1)).unwrap();
        assert!(missing(&root)
            .iter()
            .any(|m| m.contains("no public module")));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A fresh folder under the system's temp dir.
    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "xtask-arch-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn architecture_names_every_public_module() {
        let missing = missing(&crate::util::root());
        assert!(
            missing.is_empty(),
            "ARCHITECTURE.md's code map does not name: {missing:?}"
        );
    }
}
