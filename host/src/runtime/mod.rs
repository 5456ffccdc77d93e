//! The sandbox: one shared wasmtime engine, compiled transforms, and instances that each
//! live in their own store with a memory cap and a CPU budget per call.

mod bindings;
mod disk_cache;
mod engine;
mod instance;
mod limits;
mod load;
mod stderr;
mod store;
mod types;

pub use disk_cache::{CACHE_DIR_ENV, DiskCache};
pub use engine::{Runtime, Transform};
pub use instance::{CallError, Failure, ShaperInstance};
pub use limits::InstanceLimits;
pub use load::{LoadError, WIT_PACKAGE};
pub use types::{Batch, BatchLimits, Format, FrameKind, FrameList, Mode, Outbound, Output, Rejection, SourceInfo};
