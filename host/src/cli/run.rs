//! `weir run FILE`: the pipeline service.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{EXIT_EVENTS_FAILED, EXIT_OK, EXIT_UNUSABLE, fail};
use crate::api::{ApiState, router};
use crate::config::{LoadedConfig, load_pipeline};
use crate::feed::{KillableListener, Peer};
use crate::metrics::Metrics;
use crate::pipeline;
use crate::plugins::{
    CompileCache, PluginDirectory, PluginEngine, PluginLoader, PluginRegistry, Reloader, watch,
};

/// Arguments of `weir run`.
#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The pipeline file (TOML).
    file: PathBuf,
}

/// Arguments of `weir validate`.
#[derive(Debug, Args)]
pub(super) struct ValidateArgs {
    /// The pipeline file (TOML).
    file: PathBuf,
}

/// Loads and validates a pipeline file, loading the plugins its stages name and their
/// `NAME.toml` defaults.
fn prepare(file: &std::path::Path) -> Result<(LoadedConfig, PluginDirectory, PluginRegistry), u8> {
    let loaded = load_pipeline(file).map_err(|e| {
        eprintln!("{e}");
        EXIT_UNUSABLE
    })?;
    let plugins = &loaded.config.plugins;
    let engine = PluginEngine::new().map_err(fail)?;
    let cache = plugins
        .cache_dir
        .clone()
        .or_else(CompileCache::default_dir)
        .map(CompileCache::new);
    let mut directory = PluginDirectory::new(&plugins.dir, PluginLoader::new(engine, cache));
    loaded.validate(&mut directory).map_err(|e| {
        eprintln!("{e}");
        EXIT_UNUSABLE
    })?;
    let registry = directory.registry().map_err(|errors| {
        errors.iter().for_each(|e| eprintln!("{e}"));
        EXIT_UNUSABLE
    })?;
    Ok((loaded, directory, registry))
}

pub(super) fn validate(args: &ValidateArgs) -> u8 {
    match prepare(&args.file) {
        Ok((loaded, _, _)) => {
            let c = &loaded.config;
            println!(
                "{}: ok ({} sources, {} stages, {} sinks)",
                args.file.display(),
                c.sources.len(),
                c.stages.len(),
                c.sinks.len()
            );
            EXIT_OK
        }
        Err(code) => code,
    }
}

pub(super) fn run(args: &RunArgs) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async {
        // Watched before the plugins compile, so a stop asked for during start-up is a
        // clean drain and exit 0, not death by the signal.
        let signals = match Signals::watch() {
            Ok(signals) => signals,
            Err(e) => return fail(format!("cannot watch SIGTERM and SIGINT: {e}")),
        };
        tracing::info!(file = %args.file.display(), "loading the pipeline and its plugins");
        let (loaded, directory, registry) = match prepare(&args.file) {
            Ok(prepared) => prepared,
            Err(code) => return code,
        };
        serve(loaded, directory, registry, signals).await
    })
}

async fn serve(
    loaded: LoadedConfig,
    directory: PluginDirectory,
    registry: PluginRegistry,
    signals: Signals,
) -> u8 {
    let config = &loaded.config;
    let metrics = Arc::new(Metrics::new());
    let reloader = Arc::new(Reloader::new(
        config.plugins.dir.clone(),
        Arc::clone(directory.loader()),
        registry.clone(),
        pipeline::plugin_users(config),
        Arc::clone(&metrics),
    ));
    let state = Arc::new(ApiState::new(
        Arc::clone(&metrics),
        Arc::clone(&reloader),
        config.server.admin_token.clone(),
        config.server.feed.clone(),
    ));
    let shutdown = CancellationToken::new();
    let http_stop = CancellationToken::new();

    if config.server.enabled {
        let bind = config.server.bind;
        let listener = match tokio::net::TcpListener::bind(bind).await {
            Ok(listener) => listener,
            Err(e) => {
                return fail(format!(
                    "{}: server.bind: cannot listen on {bind}: {e} (pick a free address)",
                    loaded.file.display()
                ));
            }
        };
        let address = listener.local_addr().unwrap_or(bind);
        tracing::info!(metrics = %format!("http://{address}/metrics"), pipeline = %format!("http://{address}/api/v1/pipeline"), "http server listening");
        let app = router(Arc::clone(&state)).into_make_service_with_connect_info::<Peer>();
        let stop = http_stop.clone();
        tokio::spawn(sweep_feed(Arc::clone(&state), http_stop.clone()));
        tokio::spawn(async move {
            let served = axum::serve(KillableListener(listener), app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "http server failed");
            }
        });
    }

    tokio::spawn(signals.stop(shutdown.clone()));

    if config.plugins.watch
        && !registry.is_empty()
        && let Err(e) = watch(Arc::clone(&reloader), shutdown.clone())
    {
        return fail(format!("{}: plugins.dir: {e}", loaded.file.display()));
    }
    let running = match pipeline::start(&loaded, &registry, &metrics, shutdown.clone()).await {
        Ok(running) => running,
        Err(e) => return fail(format!("{}: {e}", loaded.file.display())),
    };
    match state.components.write() {
        Ok(mut components) => *components = running.components.clone(),
        Err(poisoned) => *poisoned.into_inner() = running.components.clone(),
    }
    match state.ingest.write() {
        Ok(mut ingest) => *ingest = running.ingest.clone(),
        Err(poisoned) => *poisoned.into_inner() = running.ingest.clone(),
    }
    state.ready.store(true, Ordering::Release);
    tracing::info!(
        sources = config.sources.len(),
        stages = config.stages.len(),
        sinks = config.sinks.len(),
        finite = running.finite,
        "pipeline running"
    );

    let code = tokio::select! {
        () = running.wait() => EXIT_OK,
        () = shutdown.cancelled() => {
            let grace = config.flow.shutdown_grace.0;
            tracing::info!(grace = %config.flow.shutdown_grace, "draining in-flight events");
            match tokio::time::timeout(grace, running.wait()).await {
                Ok(()) => EXIT_OK,
                Err(_) => {
                    tracing::error!(grace = %config.flow.shutdown_grace, "shutdown grace period over; exiting with events unacknowledged (they will be read again)");
                    EXIT_EVENTS_FAILED
                }
            }
        }
    };
    state.ready.store(false, Ordering::Release);
    http_stop.cancel();
    let summary: serde_json::Map<String, serde_json::Value> = running
        .components
        .iter()
        .map(|(name, info)| (name.clone(), info.counters()))
        .collect();
    eprintln!("{}", serde_json::json!({ "summary": summary }));
    code
}

/// Once a second: stops taps nobody watches any more and drops feed clients that stopped
/// reading, as configured.
async fn sweep_feed(state: Arc<ApiState>, stop: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        state.feeds.sweep();
        state.clients.sweep();
    }
}

/// SIGTERM and SIGINT, watched from [`Signals::watch`] on by a task of their own, so they
/// are answered even while the pipeline is still starting.
struct Signals {
    /// Cancelled by the first signal.
    requested: CancellationToken,
}

impl Signals {
    /// First SIGINT or SIGTERM: stop the sources and drain (once the pipeline runs, or as
    /// soon as it does). Second: exit at once, even during start-up.
    fn watch() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let requested = CancellationToken::new();
        let first = requested.clone();
        tokio::spawn(async move {
            for round in 0..2 {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = term.recv() => {}
                }
                if round == 0 {
                    tracing::info!(
                        "signal received; stopping sources and draining (again to exit at once)"
                    );
                    first.cancel();
                } else {
                    tracing::warn!("second signal; exiting without draining");
                    std::process::exit(i32::from(EXIT_UNUSABLE) + 128);
                }
            }
        });
        Ok(Self { requested })
    }

    /// Stops the pipeline through `shutdown` once a stop is asked for.
    async fn stop(self, shutdown: CancellationToken) {
        self.requested.cancelled().await;
        shutdown.cancel();
    }
}
