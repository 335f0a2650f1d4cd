//! The `weir` command line: argument parsing, logging set-up and dispatch.

mod plugin_build;
mod plugin_check;
mod plugin_new;
mod plugin_run;
mod plugin_test;
mod plugins;
mod run;
mod scaffold;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plugins::{CompileCache, PluginEngine, PluginLoader};

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code when some events failed (each one reported on stderr).
pub const EXIT_EVENTS_FAILED: u8 = 1;
/// Exit code when nothing could be done: bad arguments, a plugin that does not load or init.
pub const EXIT_UNUSABLE: u8 = 2;

/// Weir: a stream-processor host whose stage logic runs in sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about = None)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline file until its sources end or SIGTERM/SIGINT.
    ///
    /// Sources, stages and sinks come from the file; health, readiness, Prometheus metrics
    /// and the pipeline's state are served over HTTP ([server] bind). Exits 0 once every
    /// event read was handled and acknowledged, 2 for a bad pipeline file.
    Run(run::RunArgs),
    /// Check a pipeline file (keys, inputs, cycles, plugins, conditions) without running it.
    Validate(run::ValidateArgs),
    /// List the plugins of a running service: version, state, reloads, last error.
    Plugins(plugins::PluginsArgs),
    /// Inspect and try plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Check that a file is a plugin: its world, exports, imports, size and compile time.
    ///
    /// Exits 0 for a valid plugin, 2 with one line naming the file and the cause otherwise.
    Check(plugin_check::CheckArgs),
    /// Run a plugin over JSON lines and print what it emits.
    ///
    /// Reads one event payload per line (or an envelope with --envelope), feeds them to the
    /// plugin in batches, prints outputs as JSON lines on stdout, and reports each failed
    /// event on stderr as one JSON line, then a summary line. Exit code: 0 when every event
    /// was handled, 1 when some failed, 2 when the plugin could not be used at all.
    Run(plugin_run::RunArgs),
    /// Create a plugin project: sources, build script, sample test cases, contract and SDK.
    ///
    /// `weir plugin new my-filter --lang python --kind handler` writes ./my-filter; build it
    /// with `weir plugin build` and test it with `weir plugin test`.
    New(plugin_new::NewArgs),
    /// Build the plugin project in DIR (its build.sh) and check the component it made.
    Build(plugin_build::BuildArgs),
    /// Run a plugin over test cases (JSON lines) and show a diff for each case that fails.
    ///
    /// Exit code: 0 when every case passes, 1 when some fail, 2 when the plugin or the cases
    /// cannot be read.
    Test(plugin_test::TestArgs),
}

/// Where compiled plugins are cached.
#[derive(Debug, Args)]
struct CacheArgs {
    /// Directory of the compile cache [default: $WEIR_CACHE_DIR, else ~/.cache/weir/components].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile every time; read and write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl CacheArgs {
    fn loader(&self) -> Result<PluginLoader, String> {
        let engine = PluginEngine::new().map_err(|e| e.to_string())?;
        let cache = if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(CompileCache::default_dir)
                .map(CompileCache::new)
        };
        Ok(PluginLoader::new(engine, cache))
    }
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let code = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Validate(args) => run::validate(&args),
        Command::Plugins(args) => plugins::run(&args),
        Command::Plugin(PluginCommand::Check(args)) => plugin_check::run(&args),
        Command::Plugin(PluginCommand::Run(args)) => plugin_run::run(&args),
        Command::Plugin(PluginCommand::New(args)) => plugin_new::run(&args),
        Command::Plugin(PluginCommand::Build(args)) => plugin_build::run(&args),
        Command::Plugin(PluginCommand::Test(args)) => plugin_test::run(&args),
    };
    ExitCode::from(code)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Prints one error line for the user and returns the "unusable" exit code.
fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    EXIT_UNUSABLE
}
