//! The shipped policies and standard scenarios, built into the library (and
//! so into the binary): `freezefuzz` works from any directory, and a policy
//! anywhere can `extends` a shipped one by name.
//!
//! The list is checked against `policies/` by a test (`every_shipped_file_is_embedded`):
//! adding a file there without adding it here fails the suite.

/// The prefix of an embedded file's path in diagnostics and `show`
/// (`<shipped>/mainline.ff:6`): every location still names a file.
pub const PREFIX: &str = "<shipped>/";

/// File name and text of each shipped file, sorted by file name (the order
/// the CLI loads them in, so the order of the matrix rows).
pub const FILES: &[(&str, &str)] = &[
    (
        "block-on-mapped.ff",
        include_str!("../policies/block-on-mapped.ff"),
    ),
    ("mainline.ff", include_str!("../policies/mainline.ff")),
    ("no-block.ff", include_str!("../policies/no-block.ff")),
    ("sigbus.ff", include_str!("../policies/sigbus.ff")),
    ("skip-frozen.ff", include_str!("../policies/skip-frozen.ff")),
    ("standard.ff", include_str!("../policies/standard.ff")),
    (
        "sync-before-block.ff",
        include_str!("../policies/sync-before-block.ff"),
    ),
    (
        "wait-in-mkwrite.ff",
        include_str!("../policies/wait-in-mkwrite.ff"),
    ),
];

/// The shipped files as a [`crate::dsl::Library`] source list: display path and text.
pub fn sources() -> Vec<(String, &'static str)> {
    FILES
        .iter()
        .map(|(name, text)| (format!("{PREFIX}{name}"), *text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("policies/ exists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".ff"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            embedded, on_disk,
            "src/shipped.rs FILES must list every policies/*.ff, sorted"
        );
    }

    #[test]
    fn shipped_files_load_clean() {
        let ws = crate::dsl::load_library(
            &[],
            &mut |_| Err(std::io::ErrorKind::NotFound.into()),
            &crate::dsl::Library::shipped(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(ws.policy("mainline").is_some());
        assert!(ws.files.iter().any(|f| f.path == "<shipped>/standard.ff"));
    }
}
