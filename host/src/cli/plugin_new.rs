//! `weir plugin new`: a ready plugin project with a build script and sample test cases.

use std::path::PathBuf;

use clap::Args;

use super::scaffold::{self, Kind, Lang};
use super::{EXIT_OK, fail};

/// Arguments of `weir plugin new`.
#[derive(Debug, Args)]
pub(super) struct NewArgs {
    /// The plugin's name: lowercase letters, digits and '-'.
    name: String,

    /// The language to write it in.
    #[arg(long, value_enum)]
    lang: Lang,

    /// What it does: the WIT world it implements.
    #[arg(long, value_enum, default_value_t = Kind::Handler)]
    kind: Kind,

    /// The directory to create [default: ./NAME]. It must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub(super) fn run(args: &NewArgs) -> u8 {
    if let Err(e) = scaffold::check_name(&args.name) {
        return fail(e);
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && !dir.is_dir() {
        return fail(format!("{}: exists and is not a directory", dir.display()));
    }
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return fail(format!("{}: exists and is not empty", dir.display()));
    }
    let files = match scaffold::project(&args.name, args.lang, args.kind) {
        Ok(files) => files,
        Err(e) => return fail(e),
    };
    for file in &files {
        let path = dir.join(&file.path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &file.contents))
            .and_then(|()| {
                if file.executable {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            return fail(format!("{}: cannot write: {e}", path.display()));
        }
    }
    println!(
        "created {} ({} {:?} plugin, {} files)",
        dir.display(),
        args.kind.world(),
        args.lang,
        files.len()
    );
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  weir plugin build");
    println!("  weir plugin test {}.wasm --cases cases.jsonl", args.name);
    EXIT_OK
}
