//! The process-wide engine, the linker that grants a transform its few imports, and
//! compiled transforms ready to instantiate.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine};

use super::bindings::{Bindings, BindingsPre};
use super::disk_cache::DiskCache;
use super::instance::{CallError, ShaperInstance};
use super::limits::InstanceLimits;
use super::load::{self, LoadError};
use super::store::StoreData;
use super::types::SourceInfo;

/// How often the epoch advances: the granularity of every CPU budget.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The default shaper, built from `guest/` by the build script.
static DEFAULT_TRANSFORM: &[u8] = include_bytes!(env!("SKIPPR_DEFAULT_TRANSFORM"));

/// One engine and linker for the whole process; transforms compiled with it share both,
/// and identical component bytes are compiled once however many tenants load them.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<StoreData>,
    /// Compiled components by a keyed hash of their bytes (the bytes are compared too, so a
    /// crafted collision cannot hand one tenant another's transform).
    cache: Mutex<HashMap<u64, CacheEntry>>,
    hasher: RandomState,
    compilations: AtomicU64,
    disk_cache: Option<DiskCache>,
}

impl Runtime {
    /// A runtime whose compiled components are also kept on disk (see [`DiskCache::from_env`]).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_disk_cache(DiskCache::from_env())
    }

    pub fn with_disk_cache(disk_cache: Option<DiskCache>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        // Epochs bound CPU per call at 0-15% cost, where fuel costs 25-40%.
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).context("cannot create the wasmtime engine")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).context("cannot link WASI")?;
        Bindings::add_to_linker::<StoreData, HasSelf<StoreData>>(&mut linker, |data| data)
            .context("cannot link the host's logging")?;
        spawn_epoch_ticker(&engine);
        let inner = RuntimeInner {
            engine,
            linker,
            cache: Mutex::default(),
            hasher: RandomState::new(),
            compilations: AtomicU64::new(0),
            disk_cache,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// How many components this runtime has compiled (hits in either cache do not count).
    pub fn compilations(&self) -> u64 {
        self.inner.compilations.load(Ordering::Relaxed)
    }

    /// The default shaper embedded in this binary.
    pub fn default_transform(&self) -> Result<Transform, LoadError> {
        self.load_bytes("the default shaper", DEFAULT_TRANSFORM)
    }

    /// A transform component from a file, checked against the world.
    pub fn load_file(&self, path: &Path) -> Result<Transform, LoadError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: name.clone(), source })?;
        self.load_bytes(&name, &bytes)
    }

    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Transform, LoadError> {
        let key = self.inner.hasher.hash_one(bytes);
        // Held while compiling: tenants starting together wait for one compilation.
        let mut cache = self.inner.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, compiled)) = cache.get(&key)
            && **seen == *bytes
        {
            return Ok(Transform { name: name.to_owned(), compiled: Arc::clone(compiled) });
        }
        let compiled = Arc::new(self.compile(name, bytes)?);
        cache.insert(key, (Arc::from(bytes), Arc::clone(&compiled)));
        Ok(Transform { name: name.to_owned(), compiled })
    }

    fn compile(&self, name: &str, bytes: &[u8]) -> Result<Compiled, LoadError> {
        load::check_header(name, bytes)?;
        let engine = &self.inner.engine;
        let cached = self.inner.disk_cache.as_ref().map(|cache| (cache, cache.path_of(engine, bytes)));
        let component = match cached.as_ref().and_then(|(cache, path)| cache.load(engine, path)) {
            Some(component) => {
                load::check_world(engine, name, &component)?;
                component
            }
            None => {
                let component = load::compile(engine, name, bytes)?;
                self.inner.compilations.fetch_add(1, Ordering::Relaxed);
                if let Some((cache, path)) = &cached {
                    cache.store(path, &component);
                }
                component
            }
        };
        let link_error = |err: wasmtime::Error| LoadError::Link { name: name.to_owned(), reason: format!("{err:#}") };
        let pre = self.inner.linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = BindingsPre::new(pre).map_err(link_error)?;
        let engine = &self.inner.engine;
        let imports = component.component_type().imports(engine).map(|(import, _)| import.to_owned()).collect();
        Ok(Compiled { size_bytes: bytes.len(), imports, pre })
    }
}

/// Advances the epoch until the engine is dropped; each tick is one budget step.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("skippr-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("the OS can start one thread at startup");
}

/// A compiled, linked transform: instantiating it again costs microseconds.
#[derive(Clone)]
pub struct Transform {
    name: String,
    compiled: Arc<Compiled>,
}

/// The component's bytes, to tell a hash collision from a hit, and what they compiled to.
type CacheEntry = (Arc<[u8]>, Arc<Compiled>);

struct Compiled {
    size_bytes: usize,
    imports: Vec<String>,
    pre: BindingsPre<StoreData>,
}

impl Transform {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size_bytes(&self) -> usize {
        self.compiled.size_bytes
    }

    /// The interfaces the component imports, all granted by this host since it linked.
    pub fn imports(&self) -> &[String] {
        &self.compiled.imports
    }

    /// A new instance in its own store, initialised for `source` with the transform's
    /// own `options` (a JSON object).
    pub fn instantiate(
        &self,
        instance: &str,
        source: &SourceInfo,
        options: &str,
        limits: InstanceLimits,
    ) -> Result<ShaperInstance, CallError> {
        ShaperInstance::new(&self.compiled.pre, instance, source, options, limits)
    }
}
