//! The files `weir plugin new` writes: templates per language and kind, the WIT contract and
//! the language's SDK, all embedded in the binary so a project can be made anywhere.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Deserialize;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// A language plugins can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Lang {
    /// Rust, with the `weir-plugin-sdk` crate, for `wasm32-wasip2`.
    Rust,
    /// Python, with componentize-py and the `weir_plugin` package.
    Python,
    /// JavaScript or TypeScript, with componentize-js (jco) and `weir-plugin.js`.
    Js,
    /// C, with clang and wasi-libc, wit-bindgen, wasm-tools and `weir_plugin.h`.
    C,
}

impl Lang {
    fn folder(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
            Self::C => "c",
        }
    }

    /// Where the SDK sits inside the binary, and where it goes in a project.
    fn sdk(self) -> (&'static str, &'static str) {
        match self {
            Self::Rust => ("sdk/rust/", "sdk/"),
            Self::Python => ("sdk/python/", "sdk/"),
            Self::Js => ("sdk/js/", "sdk/"),
            Self::C => ("sdk/c/", "sdk/"),
        }
    }
}

/// What a plugin does: the WIT world it implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Kind {
    /// Filter, map, flat-map: the `handler` world.
    Handler,
    /// A custom windowed aggregate: the `aggregator` world.
    Aggregator,
    /// A complex-event-processing matcher: the `pattern` world.
    Pattern,
}

impl Kind {
    /// The WIT world's name.
    pub(super) fn world(self) -> &'static str {
        match self {
            Self::Handler => "handler",
            Self::Aggregator => "aggregator",
            Self::Pattern => "pattern",
        }
    }
}

/// The manifest of a plugin project, `weir-plugin.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Manifest {
    /// The plugin's name; its build writes `NAME.wasm`.
    pub name: String,
    /// The language it is written in.
    pub lang: Lang,
    /// Its world.
    pub kind: Kind,
}

/// The manifest's file name.
pub(super) const MANIFEST: &str = "weir-plugin.toml";

impl Manifest {
    /// Reads `DIR/weir-plugin.toml`.
    pub(super) fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
    }
}

/// Names a project cannot take: the crates a Rust project depends on, and names whose class
/// form would clash with what the templates import or define (or is a keyword).
const RESERVED_NAMES: [&str; 12] = [
    "weir-plugin-sdk",
    "serde",
    "serde-json",
    "rmp-serde",
    "wit-bindgen",
    "self",
    "super",
    "crate",
    "none",
    "true",
    "false",
    "std",
];
const RESERVED_CLASSES: [&str; 20] = [
    "Handler",
    "Aggregator",
    "Pattern",
    "Config",
    "Event",
    "Error",
    "Emit",
    "Acc",
    "Summary",
    "State",
    "Found",
    "Matches",
    "Export",
    "Output",
    "InvalidConfig",
    "InvalidInput",
    "UnsupportedState",
    "PluginError",
    "ConfigError",
    "Value",
];

/// Names that work as a crate, a Python module, a C identifier (with `_`) and a file name,
/// and that clash with nothing the templates use.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(first_ok && rest_ok && !name.ends_with('-') && !name.contains("--") && name.len() <= 64) {
        return Err(format!(
            "plugin name \"{name}\": use lowercase letters, digits and '-', starting with a letter"
        ));
    }
    let class = Names::new(name, Lang::Rust, Kind::Handler).class;
    if RESERVED_NAMES.contains(&name) || RESERVED_CLASSES.contains(&class.as_str()) {
        return Err(format!(
            "plugin name \"{name}\" would clash with a name the SDK or the project uses; \
             pick another (e.g. \"my-{name}\")"
        ));
    }
    Ok(())
}

/// The placeholders of the templates and their values for one project.
struct Names {
    name: String,
    ident: String,
    class: String,
    world: &'static str,
    lang: &'static str,
}

impl Names {
    fn new(name: &str, lang: Lang, kind: Kind) -> Self {
        let class = name
            .split('-')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        Self {
            name: name.to_owned(),
            ident: name.replace('-', "_"),
            class,
            world: kind.world(),
            lang: lang.folder(),
        }
    }

    fn render(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{ident}}", &self.ident)
            .replace("{{class}}", &self.class)
            .replace("{{world}}", self.world)
            .replace("{{lang}}", self.lang)
    }
}

/// A file of the new project.
pub(super) struct ProjectFile {
    /// Path inside the project.
    pub path: PathBuf,
    /// Contents.
    pub contents: Vec<u8>,
    /// Whether it is a script to run.
    pub executable: bool,
}

const KINDS: [&str; 3] = ["handler", "aggregator", "pattern"];

/// Every file of a new `lang` project of `kind` named `name`.
pub(super) fn project(name: &str, lang: Lang, kind: Kind) -> Result<Vec<ProjectFile>, String> {
    let names = Names::new(name, lang, kind);
    let root = format!("scaffold/{}/", lang.folder());
    let own = format!("{root}{}/", kind.world());
    let mut files = Vec::new();
    let mut has_cases = false;
    for &(key, contents) in embedded::FILES {
        let Some(relative) = key.strip_prefix(&root) else {
            continue;
        };
        let relative = if let Some(inner) = key.strip_prefix(&own) {
            inner
        } else if KINDS.iter().any(|k| relative.starts_with(&format!("{k}/")))
            || relative == "sdk.Cargo.toml"
        {
            continue;
        } else {
            relative
        };
        has_cases |= relative == "cases.jsonl";
        let text =
            std::str::from_utf8(contents).map_err(|_| format!("template {key} is not UTF-8"))?;
        files.push(ProjectFile {
            path: PathBuf::from(relative),
            contents: names.render(text).into_bytes(),
            executable: relative.ends_with(".sh"),
        });
    }
    if files.is_empty() {
        return Err(format!(
            "no {} templates in this build of weir",
            lang.folder()
        ));
    }
    if !has_cases {
        files.push(ProjectFile {
            path: PathBuf::from("cases.jsonl"),
            contents: embedded_file(&format!("scaffold/cases/{}.jsonl", kind.world()))?.to_vec(),
            executable: false,
        });
    }
    files.push(ProjectFile {
        path: PathBuf::from(MANIFEST),
        contents: format!(
            "# Read by `weir plugin build`.\nname = \"{name}\"\nlang = \"{}\"\nkind = \"{}\"\n",
            lang.folder(),
            kind.world()
        )
        .into_bytes(),
        executable: false,
    });
    let contract = tree("wit/", "wit/");
    let (from, to) = lang.sdk();
    let sdk = tree(from, to);
    if contract.is_empty() || sdk.is_empty() {
        return Err(format!(
            "the contract or the {} SDK is missing from this build of weir",
            lang.folder()
        ));
    }
    files.extend(contract);
    files.extend(sdk);
    if lang == Lang::Rust {
        files.push(ProjectFile {
            path: PathBuf::from("sdk/Cargo.toml"),
            contents: embedded_file("scaffold/rust/sdk.Cargo.toml")?.to_vec(),
            executable: false,
        });
    }
    Ok(files)
}

fn embedded_file(key: &str) -> Result<&'static [u8], String> {
    embedded::FILES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, contents)| *contents)
        .ok_or_else(|| format!("{key} is missing from this build of weir"))
}

/// The embedded files under `from`, placed under `to`, unchanged.
fn tree(from: &str, to: &str) -> Vec<ProjectFile> {
    embedded::FILES
        .iter()
        .filter_map(|&(key, contents)| {
            key.strip_prefix(from).map(|relative| ProjectFile {
                path: PathBuf::from(format!("{to}{relative}")),
                contents: contents.to_vec(),
                executable: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_identifiers_and_classes() {
        let names = Names::new("my-big-filter", Lang::Rust, Kind::Handler);
        assert_eq!(names.ident, "my_big_filter");
        assert_eq!(names.class, "MyBigFilter");
        assert_eq!(
            names.render("{{name}} {{ident}} {{class}} {{world}} {{lang}}"),
            "my-big-filter my_big_filter MyBigFilter handler rust"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "Upper",
            "1st",
            "has space",
            "trailing-",
            "a_b",
            "a--b",
            "handler",
            "state",
            "none",
            "serde",
            "invalid-config",
            "self",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("ok-2").expect("a good name");
        check_name("my-handler").expect("a good name");
    }

    #[test]
    fn every_language_and_kind_has_templates_with_every_placeholder_filled() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            for kind in [Kind::Handler, Kind::Aggregator, Kind::Pattern] {
                let files = project("my-plugin", lang, kind).expect("project");
                assert!(
                    files
                        .iter()
                        .any(|f| f.path == Path::new("build.sh") && f.executable)
                );
                assert!(files.iter().any(|f| f.path == Path::new("cases.jsonl")));
                for file in &files {
                    let text = String::from_utf8_lossy(&file.contents);
                    assert!(
                        !text.contains("{{name}}") && !text.contains("{{class}}"),
                        "{lang:?} {kind:?} {}",
                        file.path.display()
                    );
                }
            }
        }
    }

    #[test]
    fn a_rust_project_has_its_sources_the_contract_and_the_sdk() {
        let files = project("demo", Lang::Rust, Kind::Pattern).expect("project");
        let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        for want in [
            "build.sh",
            "Cargo.toml",
            "src/lib.rs",
            "cases.jsonl",
            "weir-plugin.toml",
            "wit/worlds.wit",
            "sdk/Cargo.toml",
            "sdk/src/lib.rs",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} missing: {paths:?}");
        }
        assert!(
            !paths
                .iter()
                .any(|p| p.contains("handler/") || p.contains("aggregator/"))
        );
        let lib = files
            .iter()
            .find(|f| f.path == Path::new("src/lib.rs"))
            .expect("lib.rs");
        let text = String::from_utf8_lossy(&lib.contents);
        assert!(text.contains("export_pattern!(Demo)"), "{text}");
        assert!(!text.contains("{{"), "{text}");
    }
}
