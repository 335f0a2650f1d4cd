//! `weir plugin build`: runs a project's build script, then checks that what it built is a
//! plugin of the world its manifest names.

use std::path::PathBuf;
use std::process::Command;

use clap::Args;

use super::scaffold::Manifest;
use super::{CacheArgs, EXIT_OK, fail};

/// Arguments of `weir plugin build`.
#[derive(Debug, Args)]
pub(super) struct BuildArgs {
    /// The project directory, holding `weir-plugin.toml` and `build.sh`.
    #[arg(default_value = ".")]
    dir: PathBuf,

    #[command(flatten)]
    cache: CacheArgs,
}

pub(super) fn run(args: &BuildArgs) -> u8 {
    let manifest = match Manifest::read(&args.dir) {
        Ok(manifest) => manifest,
        Err(e) => return fail(e),
    };
    let script = args.dir.join("build.sh");
    if !script.is_file() {
        return fail(format!("{}: missing", script.display()));
    }
    match Command::new("bash")
        .arg("build.sh")
        .current_dir(&args.dir)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => {
            return fail(format!(
                "{} failed ({status}); its output is above",
                script.display()
            ));
        }
        Err(e) => return fail(format!("{}: cannot run bash: {e}", script.display())),
    }
    let file = args.dir.join(format!("{}.wasm", manifest.name));
    let loader = match args.cache.loader() {
        Ok(loader) => loader,
        Err(e) => return fail(e),
    };
    let plugin = match loader.load(&file) {
        Ok(plugin) => plugin,
        Err(e) => return fail(e),
    };
    let world = plugin.kind().world();
    if world != manifest.kind.world() {
        return fail(format!(
            "{}: implements the {world} world, but {} says kind = \"{}\"",
            file.display(),
            super::scaffold::MANIFEST,
            manifest.kind.world()
        ));
    }
    println!(
        "built {}: {world} plugin in {:?}, {} KiB, version {}",
        file.display(),
        manifest.lang,
        plugin.size().div_ceil(1024),
        plugin.version()
    );
    EXIT_OK
}
