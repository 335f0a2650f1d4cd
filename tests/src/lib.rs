//! Helpers shared by the tests that drive the real `weir` binary and the built plugins.

use std::path::PathBuf;

/// The directory `scripts/build-plugins.sh` writes plugins to: `$WEIR_PLUGIN_DIR`, else
/// `$CARGO_TARGET_DIR/plugins`, else `target/plugins` of the workspace.
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("plugins")
}

/// The path of plugin `name`, failing with the command that builds it when it is missing.
pub fn plugin(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh (or scripts/test.sh)",
        path.display()
    );
    path
}

/// The target directory of the workspace (where test artifacts go).
pub fn target_dir() -> PathBuf {
    let binary = weir_binary();
    binary
        .parent()
        .and_then(|profile| profile.parent())
        .expect("the binary lives in target/<profile>")
        .to_path_buf()
}

/// The `weir` binary next to the running test executable (`target/<profile>/weir`).
pub fn weir_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/weir
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let binary = profile_dir.join("weir");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p weir` first (scripts/test.sh does)",
        binary.display()
    );
    binary
}

/// What `scripts/SCRIPT ARG` prints, trimmed; fails with the script's error output when it
/// fails.
pub fn script_output(script: &str, arg: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let out = std::process::Command::new(&path)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        out.status.success(),
        "scripts/{script} {arg}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A test broker's address: `$VAR` when set (scripts/test.sh sets it), else what
/// `scripts/SCRIPT start` prints, which starts the broker or finds it running.
pub fn broker_address(var: &str, script: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| script_output(script, "start"))
}
