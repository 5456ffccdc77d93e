//! Compiled components on disk, so a large transform is compiled once per machine rather
//! than at every start: a Python component takes seconds to compile and milliseconds to
//! load. Anything wrong with the cache (unwritable, stale, corrupt) only costs a compile.

use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components go; `off` turns the cache off.
pub const CACHE_DIR_ENV: &str = "SKIPPR_CACHE_DIR";

#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// `$SKIPPR_CACHE_DIR`, else `$XDG_CACHE_HOME/skippr/components`, else
    /// `~/.cache/skippr/components`; none when turned off or there is no home.
    pub fn from_env() -> Option<Self> {
        let dir = match std::env::var_os(CACHE_DIR_ENV) {
            Some(dir) if dir == "off" => return None,
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?
                .join("skippr/components"),
        };
        Some(Self { dir })
    }

    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The compiled component at `path` (from [`Self::path_of`]), if this engine compiled
    /// it before.
    pub(super) fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        // Read, not mapped: a mapped file truncated by someone else would crash the process.
        let compiled = std::fs::read(path).ok()?;
        // SAFETY: the file was written by `store` below from `Component::serialize` of this
        // engine's configuration (the name holds its compatibility hash), in a folder only
        // this user can write (0700); wasmtime checks the header and version again.
        match unsafe { Component::deserialize(engine, &compiled) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "Ignoring an unusable compiled component.");
                None
            }
        }
    }

    /// Keeps `component` at `path`; a failure is logged, never fatal.
    pub(super) fn store(&self, path: &Path, component: &Component) {
        let stored = self.create_dir().and_then(|()| {
            let serialized = component.serialize().map_err(std::io::Error::other)?;
            // Written aside, then renamed: a reader never sees half a file.
            let partial = path.with_extension(format!("partial-{}", std::process::id()));
            std::fs::write(&partial, serialized)?;
            std::fs::rename(&partial, path)
        });
        if let Err(err) = stored {
            tracing::warn!(dir = %self.dir.display(), error = %err, "Cannot cache the compiled component.");
        }
    }

    fn create_dir(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)
    }

    /// Where `bytes` compiled by `engine` are kept: named by the component's SHA-256 and the
    /// engine's compatibility hash, so a different wasmtime or configuration never picks up
    /// another's code. Hashing a large component takes milliseconds: do it once per load.
    pub(super) fn path_of(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let mut compatibility = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut compatibility);
        let digest: String = Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect();
        self.dir.join(format!("{digest}-{:016x}.cwasm", compatibility.finish()))
    }
}
