//! What the in-process benches share: a validated pipeline with its plugins loaded, and a
//! runtime to run it on.

use std::path::Path;

use weir::config::{LoadedConfig, parse_pipeline};
use weir::plugins::{PluginDirectory, PluginEngine, PluginLoader, PluginRegistry};

/// Parses and validates `pipeline` (`{plugins}` is replaced by the plugin directory), loads
/// its plugins, and builds a multi-threaded runtime.
pub fn prepare(pipeline: &str) -> (tokio::runtime::Runtime, LoadedConfig, PluginRegistry) {
    log_if_asked();
    let text = pipeline.replace("{plugins}", &weir_e2e::plugin_dir().display().to_string());
    let loaded = parse_pipeline(Path::new("bench.toml"), &text, |_| None).expect("pipeline parses");
    let loader = PluginLoader::new(PluginEngine::new().expect("engine"), None);
    let mut directory = PluginDirectory::new(&loaded.config.plugins.dir, loader);
    loaded.validate(&mut directory).expect("pipeline is valid");
    let registry = PluginRegistry::new(directory.loaded());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (runtime, loaded, registry)
}

/// With `WEIR_LOG` set (e.g. `WEIR_LOG=info`), the pipeline's log goes to stderr, to see
/// what a slow round was doing.
fn log_if_asked() {
    if let Ok(filter) = std::env::var("WEIR_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}
