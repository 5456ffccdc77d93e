//! The process-wide engine, the linker that grants a transform its few imports, and
//! compiled transforms ready to instantiate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine};

use super::bindings::{Bindings, BindingsPre};
use super::instance::{CallError, ShaperInstance};
use super::limits::InstanceLimits;
use super::load::{self, LoadError};
use super::store::StoreData;
use super::types::SourceInfo;

/// How often the epoch advances: the granularity of every CPU budget.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The default shaper, built from `guest/` by the build script.
static DEFAULT_TRANSFORM: &[u8] = include_bytes!(env!("SKIPPR_DEFAULT_TRANSFORM"));

/// One engine and linker for the whole process; transforms compiled with it share both.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<StoreData>,
}

impl Runtime {
    pub fn new() -> anyhow::Result<Self> {
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
        Ok(Self { inner: Arc::new(RuntimeInner { engine, linker }) })
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
        let component = load::compile(&self.inner.engine, name, bytes)?;
        let link_error = |err: wasmtime::Error| LoadError::Link { name: name.to_owned(), reason: format!("{err:#}") };
        let pre = self.inner.linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = BindingsPre::new(pre).map_err(link_error)?;
        let engine = &self.inner.engine;
        let imports = component.component_type().imports(engine).map(|(import, _)| import.to_owned()).collect();
        Ok(Transform { name: name.to_owned(), size_bytes: bytes.len(), imports, pre })
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
    size_bytes: usize,
    imports: Vec<String>,
    pre: BindingsPre<StoreData>,
}

impl Transform {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// The interfaces the component imports, all granted by this host since it linked.
    pub fn imports(&self) -> &[String] {
        &self.imports
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
        ShaperInstance::new(&self.pre, instance, source, options, limits)
    }
}
