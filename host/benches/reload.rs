//! Reload latency: from the moment a new plugin file is renamed into the plugin directory
//! to the first event the new version wrote, in the real `weir run` with events flowing at
//! 100,000/s; p50 and p99 over 50 reloads with the compile cache hit, and 50 with it
//! emptied before each reload (cold compile).
//!
//! `cargo bench -p weir --bench reload` (needs `scripts/build-plugins.sh` first).

// A bench binary with its own main: nothing here is public API.
#![allow(missing_docs)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RELOADS: usize = 50;

struct Service {
    child: Child,
    out: std::fs::File,
    offset: u64,
}

impl Service {
    /// Reads what the sink wrote since last time; true when it holds `marker`.
    fn wrote(&mut self, marker: &str) -> bool {
        let mut fresh = String::new();
        let _ = self.out.seek(SeekFrom::Start(self.offset));
        let n = self.out.read_to_string(&mut fresh).unwrap_or(0);
        // Only whole lines count; a partial last line is read again next time.
        let whole = fresh.rfind('\n').map_or(0, |i| i + 1);
        self.offset += whole.min(n) as u64;
        fresh[..whole].contains(marker)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rename_over(from: &Path, to: &Path) {
    let tmp = to.with_file_name(".stamp.wasm.tmp");
    std::fs::copy(from, &tmp).expect("write temp");
    std::fs::rename(&tmp, to).expect("rename");
}

fn empty_dir(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Reloads `count` times, alternating the builds; with `cold_cache`, that cache directory
/// is emptied before each reload so every one compiles. Returns sorted milliseconds.
fn measure(
    service: &mut Service,
    target: &Path,
    builds: &[(PathBuf, &str); 2],
    next: &mut usize,
    count: usize,
    cold_cache: Option<&Path>,
) -> Vec<f64> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let (file, build) = &builds[*next % 2];
        *next += 1;
        if let Some(cache) = cold_cache {
            empty_dir(cache);
        }
        // Drain what is already written, so only output after the rename counts.
        service.wrote("");
        let marker = format!("\"build\":\"{build}\"");
        let started = Instant::now();
        rename_over(file, target);
        while !service.wrote(&marker) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "build {build} never served"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times
}

fn main() {
    let plugins = weir_e2e::plugin_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin_dir = dir.path().join("plugins");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
    let target = plugin_dir.join("stamp.wasm");
    std::fs::copy(plugins.join("stamp-a.wasm"), &target).expect("stamp-a");
    std::fs::write(
        dir.path().join("pipeline.toml"),
        format!(
            "[server]\nenabled = false\n[plugins]\ndir = \"plugins\"\ncache_dir = {:?}\n[sources.gen]\ntype = \"generator\"\nrate = 100000.0\ntemplate = {{ seq = \"{{{{seq}}}}\" }}\n[stages.stamp]\ntype = \"handler\"\nplugin = \"stamp\"\ninputs = [\"gen\"]\n[sinks.out]\ntype = \"file\"\npath = \"out.jsonl\"\ninputs = [\"stamp\"]\n",
            cache.display().to_string()
        ),
    )
    .expect("pipeline");
    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "pipeline.toml"])
        .current_dir(dir.path())
        .env("WEIR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weir starts");
    let out_path = dir.path().join("out.jsonl");
    let started = Instant::now();
    while !out_path.exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "no output");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = std::fs::File::open(&out_path).expect("output");
    let mut service = Service {
        child,
        out,
        offset: 0,
    };
    let builds = [
        (plugins.join("stamp-b.wasm"), "b"),
        (plugins.join("stamp-a.wasm"), "a"),
    ];
    let mut next = 0;
    // Both builds compiled once, so the cached run hits the cache every time.
    measure(&mut service, &target, &builds, &mut next, 2, None);
    let cached = measure(&mut service, &target, &builds, &mut next, RELOADS, None);
    let cold = measure(
        &mut service,
        &target,
        &builds,
        &mut next,
        RELOADS,
        Some(&cache),
    );
    for (name, times) in [("cache hit", &cached), ("cold compile", &cold)] {
        println!(
            "reload latency, rename to first output of the new version, {name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} reloads at 100,000 events/s)",
            percentile(times, 0.50),
            percentile(times, 0.99),
            times.last().copied().unwrap_or(f64::NAN),
            times.len()
        );
    }
}
