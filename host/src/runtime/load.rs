//! Checks that bytes are a component implementing this host's `transform` world, and says
//! precisely why not when they are not.

use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package and version this host speaks.
pub const WIT_PACKAGE: &str = "skippr:connector@0.1.0";
/// The interface a transform must export.
pub(super) const SHAPER_EXPORT: &str = "skippr:connector/shaper@0.1.0";
const SHAPER_EXPORT_PREFIX: &str = "skippr:connector/shaper@";
/// The imports a transform may have, by interface name before its version. The WASI ctx
/// behind them is empty: no environment variables, no stdin, output captured into the log.
/// Files and sockets are not granted at all: a component that imports them is refused at
/// load rather than left to find out at run time. Randomness is granted: hash maps in most
/// guest languages seed from it.
const GRANTED_IMPORTS: [&str; 5] = ["skippr:connector/", "wasi:io/", "wasi:cli/", "wasi:clocks/", "wasi:random/"];

/// Why a transform was refused at load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{name} is empty (0 bytes): expected a WebAssembly component built for {WIT_PACKAGE}")]
    Empty { name: String },
    #[error("{name} is not WebAssembly: it does not start with the `\\0asm` magic bytes")]
    NotWasm { name: String },
    #[error(
        "{name} is a core WebAssembly module, not a component: build it with \
         `cargo build --target wasm32-wasip2` or wrap it with `wasm-tools component new`"
    )]
    CoreModule { name: String },
    #[error("{name} is not a valid WebAssembly component: {reason}")]
    Invalid { name: String, reason: String },
    #[error(
        "{name} was built for skippr:connector@{found}, but this host runs {WIT_PACKAGE}: \
         rebuild it against the wit/ folder of this version"
    )]
    WrongVersion { name: String, found: String },
    #[error("{name} does not export `{SHAPER_EXPORT}` (it exports: {exports})")]
    MissingExport { name: String, exports: String },
    #[error(
        "{name} imports capabilities this host does not grant: {imports}. A transform gets \
         logging, clocks, randomness and empty stdio/environment only: build it without them \
         (componentize-py: --stub-wasi; jco componentize: --disable all)"
    )]
    Ungranted { name: String, imports: String },
    #[error("{name} cannot be linked: {reason}")]
    Link { name: String, reason: String },
}

/// Refuses what is plainly not a component before asking wasmtime to compile it.
pub(super) fn check_header(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    // After the magic: a 16-bit version and a 16-bit layer; layer 1 is a component.
    const CORE_MODULE: &[u8] = &[1, 0, 0, 0];
    let name = name.to_owned();
    if bytes.is_empty() {
        return Err(LoadError::Empty { name });
    }
    if !bytes.starts_with(MAGIC) {
        return Err(LoadError::NotWasm { name });
    }
    if bytes.get(4..8) == Some(CORE_MODULE) {
        return Err(LoadError::CoreModule { name });
    }
    Ok(())
}

pub(super) fn compile(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Component, LoadError> {
    let component = Component::new(engine, bytes)
        .map_err(|err| LoadError::Invalid { name: name.to_owned(), reason: format!("{err:#}") })?;
    check_world(engine, name, &component)?;
    Ok(component)
}

/// What the component exports and imports, against this host's world and grants.
pub(super) fn check_world(engine: &Engine, name: &str, component: &Component) -> Result<(), LoadError> {
    check_exports(engine, name, component)?;
    check_imports(engine, name, component)
}

fn check_exports(engine: &Engine, name: &str, component: &Component) -> Result<(), LoadError> {
    let exports: Vec<String> =
        component.component_type().exports(engine).map(|(export, _)| export.to_owned()).collect();
    if exports.iter().any(|export| export == SHAPER_EXPORT) {
        return Ok(());
    }
    let name = name.to_owned();
    if let Some(other) = exports.iter().find_map(|export| export.strip_prefix(SHAPER_EXPORT_PREFIX)) {
        return Err(LoadError::WrongVersion { name, found: other.to_owned() });
    }
    let exports = if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") };
    Err(LoadError::MissingExport { name, exports })
}

fn check_imports(engine: &Engine, name: &str, component: &Component) -> Result<(), LoadError> {
    let ungranted: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(import, _)| import)
        .filter(|import| !is_granted(import))
        .map(str::to_owned)
        .collect();
    if ungranted.is_empty() {
        return Ok(());
    }
    Err(LoadError::Ungranted { name: name.to_owned(), imports: ungranted.join(", ") })
}

fn is_granted(import: &str) -> bool {
    GRANTED_IMPORTS.iter().any(|prefix| import.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_junk_and_core_modules_are_told_apart() {
        assert!(matches!(check_header("x", b""), Err(LoadError::Empty { .. })));
        assert!(matches!(check_header("x", b"hello world"), Err(LoadError::NotWasm { .. })));
        assert!(matches!(check_header("x", b"\0asm\x01\0\0\0"), Err(LoadError::CoreModule { .. })));
        assert!(check_header("x", b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn files_sockets_and_http_are_not_granted() {
        for granted in ["skippr:connector/logging@0.1.0", "wasi:io/streams@0.2.6", "wasi:random/random@0.2.9"] {
            assert!(is_granted(granted), "{granted}");
        }
        for refused in ["wasi:filesystem/preopens@0.2.6", "wasi:sockets/tcp@0.2.6", "wasi:http/outgoing-handler@0.2.0"]
        {
            assert!(!is_granted(refused), "{refused}");
        }
    }
}
