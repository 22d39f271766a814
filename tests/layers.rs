//! The layers import one way only (face -> linux -> image -> machine -> exit): the machine (KVM,
//! guest RAM, page tables, the vCPU run loop) imports nothing of the Linux personality, the
//! image or the face above it; the image nothing of the Linux personality or the face; the
//! Linux personality nothing of the face. This test reads the sources and fails on any
//! `crate::` path that points upward.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::{Path, PathBuf};

/// The face: what assembles a VM; no layer below may name it.
const FACE: &[&str] = &[
    "vm",
    "builder",
    "config",
    "error",
    "inspect",
    "layout_map",
    "Error",
    "Vm",
    "Builder",
    "RunReport",
];

/// Each layer (a folder under src/) and the top-level modules it may not name besides the face.
const LAYERS: &[(&str, &[&str])] = &[
    ("machine", &["linux", "image"]),
    ("image", &["linux"]),
    ("linux", &[]),
];

fn rust_files(at: &Path, out: &mut Vec<PathBuf>) {
    if at.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(at)
            .expect("read src")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if at.extension().is_some_and(|e| e == "rs") {
        out.push(at.to_path_buf());
    }
}

/// Every `crate::name` in `text` (the first path segment after `crate::`).
fn crate_refs(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            refs.push(name);
        }
    }
    refs
}

#[test]
fn layers_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for (layer, forbidden) in LAYERS {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no sources for layer {layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            for name in crate_refs(&text) {
                if forbidden.contains(&name.as_str()) || FACE.contains(&name.as_str()) {
                    bad.push(format!("{} uses crate::{name}", file.display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

#[test]
fn the_check_sees_upward_imports() {
    assert_eq!(
        crate_refs("use crate::syscall::Process; x = crate::memory::GuestMem;"),
        ["syscall", "memory"]
    );
}
