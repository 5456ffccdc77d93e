//! `skippr transform new`: a transform project that builds with one command, with the SDK
//! and the WIT of this very binary, so what it builds is what this host runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::runtime::WIT_PACKAGE;

/// The language of a new transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// A file of a new project: where it goes, its text, and whether `{{…}}` placeholders in it
/// are filled in (the SDK's own files are copied untouched).
type File = (&'static str, &'static str, bool);

const WIT: [File; 4] = [
    ("wit/world.wit", include_str!("../../wit/world.wit"), false),
    ("wit/types.wit", include_str!("../../wit/types.wit"), false),
    ("wit/shaper.wit", include_str!("../../wit/shaper.wit"), false),
    ("wit/logging.wit", include_str!("../../wit/logging.wit"), false),
];

const RUST: [File; 12] = [
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml"), true),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs"), true),
    ("README.md", include_str!("../templates/rust/README.md"), true),
    (".gitignore", include_str!("../templates/rust/gitignore"), false),
    ("skippr-sdk/Cargo.toml", include_str!("../../sdk/Cargo.toml"), false),
    ("skippr-sdk/src/lib.rs", include_str!("../../sdk/src/lib.rs"), false),
    ("skippr-sdk/src/batch.rs", include_str!("../../sdk/src/batch.rs"), false),
    ("skippr-sdk/src/frame.rs", include_str!("../../sdk/src/frame.rs"), false),
    ("skippr-sdk/src/json.rs", include_str!("../../sdk/src/json.rs"), false),
    ("skippr-sdk/src/record.rs", include_str!("../../sdk/src/record.rs"), false),
    ("skippr-sdk/src/shaper.rs", include_str!("../../sdk/src/shaper.rs"), false),
    ("skippr-sdk/src/component.rs", include_str!("../../sdk/src/component.rs"), false),
];

const PYTHON: [File; 5] = [
    ("shaper.py", include_str!("../templates/python/shaper.py"), true),
    ("test_shaper.py", include_str!("../templates/python/test_shaper.py"), true),
    ("README.md", include_str!("../templates/python/README.md"), true),
    (".gitignore", include_str!("../templates/python/gitignore"), false),
    ("skippr_sdk.py", include_str!("../../sdk/python/skippr_sdk.py"), false),
];

const JS: [File; 6] = [
    ("transform.js", include_str!("../templates/js/transform.js"), true),
    ("transform.test.mjs", include_str!("../templates/js/transform.test.mjs"), true),
    ("package.json", include_str!("../templates/js/package.json"), true),
    ("README.md", include_str!("../templates/js/README.md"), true),
    (".gitignore", include_str!("../templates/js/gitignore"), false),
    ("skippr_sdk.js", include_str!("../../sdk/js/skippr_sdk.js"), false),
];

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "`{0}` is not a usable transform name: use lowercase letters, digits and dashes, \
         starting with a letter (e.g. `trades-filter`)"
    )]
    BadName(String),
    #[error("{0} already exists: pick another name or remove it")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Writes the project `name` under `parent` and returns what to run next.
pub fn create(parent: &Path, name: &str, lang: Lang) -> Result<String, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    let root = parent.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let files: &[File] = match lang {
        Lang::Rust => &RUST,
        Lang::Python => &PYTHON,
        Lang::Js => &JS,
    };
    let placeholders = Placeholders::new(name);
    for &(path, text, templated) in files.iter().chain(&WIT) {
        let path = root.join(path);
        let text = if templated { placeholders.fill(text) } else { text.to_owned() };
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, text));
        written.map_err(|source| ScaffoldError::Write { path, source })?;
    }
    Ok(next_steps(&root, name, lang))
}

struct Placeholders {
    pairs: [(&'static str, String); 4],
}

impl Placeholders {
    fn new(name: &str) -> Self {
        let type_name = name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            })
            .collect();
        let wit_version = WIT_PACKAGE.rsplit_once('@').map_or("", |(_, version)| version).to_owned();
        Self {
            pairs: [
                ("{{name}}", name.to_owned()),
                ("{{crate_name}}", name.replace('-', "_")),
                ("{{type_name}}", type_name),
                ("{{wit_version}}", wit_version),
            ],
        }
    }

    fn fill(&self, text: &str) -> String {
        self.pairs.iter().fold(text.to_owned(), |text, (placeholder, value)| text.replace(placeholder, value))
    }
}

fn next_steps(root: &Path, name: &str, lang: Lang) -> String {
    let component = match lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
        Lang::Python | Lang::Js => format!("{name}.wasm"),
    };
    let build: &[&str] = match lang {
        Lang::Rust => &["cargo test", "cargo build --target wasm32-wasip2 --release"],
        Lang::Python => &[
            "python3 -m pip install componentize-py==0.25.1",
            "python3 -m unittest test_shaper",
            "componentize-py -d wit -w transform componentize --stub-wasi -p . skippr_sdk -o {name}.wasm",
        ],
        Lang::Js => &["npm install", "npm test", "npm run build"],
    };
    let mut steps = format!("Created {} for {WIT_PACKAGE}. Next:\n\n  cd {}\n", root.display(), root.display());
    for step in build {
        let _ = writeln!(steps, "  {}", step.replace("{name}", name));
    }
    let _ = writeln!(steps, "  skippr transform check {component}\n  skippr demo --transform {component}");
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_kebab_case() {
        let dir = std::env::temp_dir();
        for bad in ["", "Trades", "1st", "a_b", "a-", "../x", "a b"] {
            assert!(matches!(create(&dir, bad, Lang::Rust), Err(ScaffoldError::BadName(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_rust_project_gets_every_file_of_the_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/src");
        for entry in std::fs::read_dir(&sdk).expect("the SDK's sources") {
            let name = format!("skippr-sdk/src/{}", entry.expect("a directory entry").file_name().to_string_lossy());
            assert!(RUST.iter().any(|(path, ..)| *path == name), "{name} is missing from RUST");
        }
    }

    #[test]
    fn placeholders_become_the_name_in_each_form() {
        let filled = Placeholders::new("trades-filter").fill("{{name}} {{crate_name}} {{type_name}} {{wit_version}}");
        assert_eq!(filled, "trades-filter trades_filter TradesFilter 0.1.0");
    }
}
