//! Embeds what `weir plugin new` writes into a new plugin project: the scaffold templates,
//! the WIT contract and each language's SDK. The list of files is generated so that a file
//! added to one of those folders is embedded without touching the code, and every file is
//! taken with `include_bytes!`, so cargo rebuilds when one changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (folder, name it has inside the binary).
const TREES: [(&str, &str); 6] = [
    ("assets/scaffold", "scaffold"),
    ("../wit", "wit"),
    ("../plugin-sdk/src", "sdk/rust/src"),
    ("../plugin-sdk/python/weir_plugin", "sdk/python/weir_plugin"),
    ("../plugin-sdk/js", "sdk/js"),
    ("../plugin-sdk/c", "sdk/c"),
];

/// Build products and caches that must not be embedded.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        "__pycache__" | "node_modules" | "target" | ".DS_Store"
    ) || name.ends_with(".pyc")
}

/// The files under `dir`, and a rebuild trigger for each folder and file kept (a trigger on
/// the root alone would also fire for the caches left out).
fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: the templates and SDKs must be there",
            dir.display()
        )
    });
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if skipped(name) {
            continue;
        }
        if path.is_dir() {
            walk(&path, into);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
            into.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let mut code = String::from("/// Embedded files: (name, contents).\n");
    code.push_str("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for (folder, name) in TREES {
        let root = manifest.join(folder);
        let mut files = Vec::new();
        walk(&root, &mut files);
        assert!(!files.is_empty(), "{}: no files to embed", root.display());
        for file in files {
            let relative = file.strip_prefix(&root).expect("inside its tree");
            let key = format!("{name}/{}", relative.to_string_lossy().replace('\\', "/"));
            let absolute = file.canonicalize().expect("file exists");
            writeln!(
                code,
                "    ({key:?}, include_bytes!({:?})),",
                absolute.display()
            )
            .expect("write to a string");
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("embedded.rs");
    std::fs::write(out, code).expect("write embedded.rs");
}
