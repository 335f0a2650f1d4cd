//! `weir plugin check`: what a file is, or in one line why it is no plugin.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{CacheArgs, EXIT_OK, fail};

/// Arguments of `weir plugin check`.
#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The component to check.
    file: PathBuf,

    /// Print one JSON object instead of lines of text.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    cache: CacheArgs,
}

pub(super) fn run(args: &CheckArgs) -> u8 {
    let loader = match args.cache.loader() {
        Ok(loader) => loader,
        Err(e) => return fail(e),
    };
    let plugin = match loader.load(&args.file) {
        Ok(plugin) => plugin,
        Err(e) => return fail(e),
    };
    let compile_ms = plugin.compile_time().as_secs_f64() * 1e3;
    if args.json {
        let report = json!({
            "file": plugin.path().display().to_string(),
            "name": plugin.name(),
            "world": plugin.kind().world(),
            "version": plugin.version(),
            "sha256": plugin.digest(),
            "exports": plugin.exports(),
            "imports": plugin.imports(),
            "size_bytes": plugin.size(),
            "compile_ms": compile_ms,
            "cache": plugin.cache_outcome().as_str(),
        });
        println!("{report}");
    } else {
        println!("file:    {}", plugin.path().display());
        println!(
            "world:   {} ({})",
            plugin.kind(),
            plugin.kind().export_name()
        );
        println!("version: {}", plugin.version());
        println!("exports: {}", plugin.exports().join(", "));
        println!("imports: {}", plugin.imports().join(", "));
        println!("size:    {} bytes", plugin.size());
        println!(
            "compile: {compile_ms:.1} ms (cache {})",
            plugin.cache_outcome().as_str()
        );
    }
    EXIT_OK
}
