//! The dashboard in headless Chromium, against the real binary: it loads with no console
//! error, its charts take live data, its graph shows every component, and its live tail
//! shows events. The screenshot is kept in `target/test-artifacts/dashboard.png`.
//! Needs `scripts/install-browser.sh` (the test suite runs it).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Workspace;

#[test]
fn the_dashboard_shows_the_live_pipeline_in_a_real_browser() {
    let ws = Workspace::new();
    ws.pipeline(
        r#"
[server]
bind = "127.0.0.1:0"
[plugins]
dir = "{plugins}"
[sources.gen]
type = "generator"
rate = 500
template = { seq = "{{seq}}", amount = "{{int(0,100)}}", user = "u{{int(0,9)}}" }
[stages.big]
type = "handler"
plugin = "threshold"
inputs = ["gen"]
config = { field = "amount", min = 20 }
[stages.per_user]
type = "window"
inputs = ["big"]
group_by = ["user"]
window = { tumbling = "1s" }
aggregations = { count = "count", total = { sum = "amount" } }
[sinks.out]
type = "null"
inputs = ["per_user"]
[sinks.all]
type = "null"
inputs = ["big"]
"#,
    );
    let mut running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(60));

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("browser/dashboard.mjs");
    assert!(
        root.join("browser/node_modules/playwright-core").exists(),
        "the browser test's packages are missing: run scripts/install-browser.sh"
    );
    let artifacts = weir_e2e::target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = Command::new("node")
        .arg(&script)
        .arg(format!("http://{address}/"))
        .arg(&screenshot)
        .arg("big,gen,per_user,out,all")
        .output()
        .expect("node runs (scripts/install-browser.sh installs what it needs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser check failed:\n{stderr}\n{stdout}\nweir:\n{}",
        running.log()
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    println!("dashboard: {summary}; screenshot {}", screenshot.display());
    assert!(
        screenshot.metadata().is_ok_and(|m| m.len() > 10_000),
        "a screenshot was written"
    );
}
