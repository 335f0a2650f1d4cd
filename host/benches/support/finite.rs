//! Timing a finite pipeline (a generator with a `count`) from its start to its end.

use std::time::Instant;

use tokio_util::sync::CancellationToken;
use weir::metrics::Metrics;

/// Seconds `pipeline` takes to run to its end; `{state}` in it is a fresh directory and
/// `{plugins}` the plugin directory.
pub fn pipeline_seconds(pipeline: &str) -> f64 {
    let state = tempfile::tempdir().expect("state dir");
    let pipeline = pipeline.replace("{state}", &state.path().display().to_string());
    let (runtime, loaded, registry) = crate::support::prepare(&pipeline);
    runtime.block_on(async {
        let metrics = Metrics::new();
        let started = Instant::now();
        let running = weir::pipeline::start(&loaded, &registry, &metrics, CancellationToken::new())
            .await
            .expect("pipeline starts");
        running.wait().await;
        started.elapsed().as_secs_f64()
    })
}
