//! `weir plugin new` for every language and kind, then `weir plugin build` and
//! `weir plugin test` on the fresh project: a scaffold must build and pass its own cases.
//! The toolchains come from `scripts/build-plugins.sh` (under `.tools/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weir_e2e::{target_dir, weir_binary};

const KINDS: [&str; 3] = ["handler", "aggregator", "pattern"];

/// The toolchains' folder: `$WEIR_TOOLS_DIR`, else `.tools` of the workspace.
fn tools_dir() -> PathBuf {
    std::env::var_os("WEIR_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools"))
}

fn weir(dir: &Path, args: &[&str]) -> Output {
    let tools = tools_dir();
    let path = format!(
        "{}:{}",
        tools.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(weir_binary())
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env(
            "WEIR_WASI_ADAPTER",
            tools.join("wasi_snapshot_preview1.reactor.wasm"),
        )
        // One build directory for every Rust scaffold, so their dependencies build once.
        .env("CARGO_TARGET_DIR", target_dir().join("scaffolds"))
        .output()
        .expect("weir runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Creates, builds and tests one project per kind; returns the folder they are in.
fn scaffold_build_and_test(lang: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    for kind in KINDS {
        let name = format!("my-{lang}-{kind}");
        let made = weir(
            root.path(),
            &["plugin", "new", &name, "--lang", lang, "--kind", kind],
        );
        assert!(made.status.success(), "new {lang} {kind}: {}", text(&made));
        let project = root.path().join(&name);
        for file in [
            "build.sh",
            "cases.jsonl",
            "weir-plugin.toml",
            "wit/worlds.wit",
        ] {
            assert!(
                project.join(file).is_file(),
                "{lang} {kind}: {file} missing"
            );
        }
        let built = weir(&project, &["plugin", "build"]);
        assert!(
            built.status.success(),
            "build {lang} {kind}: {}",
            text(&built)
        );
        assert!(
            text(&built).contains(&format!("{kind} plugin")),
            "{lang} {kind}: {}",
            text(&built)
        );
        let wasm = format!("{name}.wasm");
        for batch in ["256", "1"] {
            let tested = weir(
                &project,
                &[
                    "plugin",
                    "test",
                    &wasm,
                    "--cases",
                    "cases.jsonl",
                    "--batch-size",
                    batch,
                ],
            );
            let out = text(&tested);
            assert!(tested.status.success(), "test {lang} {kind}: {out}");
            assert!(out.contains(" passed, 0 failed"), "{lang} {kind}: {out}");
            assert!(!out.contains("FAIL"), "{lang} {kind}: {out}");
        }
        eprintln!("{lang} {kind}: new, build and test pass");
    }
    root
}

#[test]
fn a_fresh_rust_scaffold_builds_and_passes_and_a_wrong_case_shows_a_diff() {
    let root = scaffold_build_and_test("rust");
    // A case that expects the wrong thing fails with a readable diff and exit code 1.
    let project = root.path().join("my-rust-handler");
    let cases = std::fs::read_to_string(project.join("cases.jsonl")).expect("cases");
    let wrong = cases.replacen(
        r#""expect": [{"amount": 10}, {"amount": 12.5}]"#,
        r#""expect": [{"amount": 10}, {"amount": 13}]"#,
        1,
    );
    assert_ne!(wrong, cases, "the sample case changed shape");
    std::fs::write(project.join("wrong.jsonl"), wrong).expect("write");
    let tested = weir(
        &project,
        &[
            "plugin",
            "test",
            "my-rust-handler.wasm",
            "--cases",
            "wrong.jsonl",
        ],
    );
    let out = text(&tested);
    assert_eq!(tested.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL  keeps amounts at or over the minimum (wrong.jsonl:1)"),
        "{out}"
    );
    assert!(
        out.contains("  - {\"amount\":13}\n  + {\"amount\":12.5}"),
        "{out}"
    );
    assert!(out.contains("2 passed, 1 failed"), "{out}");
}

#[test]
fn a_fresh_python_scaffold_builds_and_passes() {
    scaffold_build_and_test("python");
}

#[test]
fn a_fresh_javascript_scaffold_builds_and_passes() {
    scaffold_build_and_test("js");
}

#[test]
fn a_fresh_c_scaffold_builds_and_passes() {
    scaffold_build_and_test("c");
}
