//! The default shaper component: thin wit-bindgen glue over plain, natively tested modules.
//!
//! - [`shape`]: one frame into one JSON Lines record (json, text or raw).
//! - [`batch`]: records into batches closed by count, size or age.
//! - [`shaper`]: one source's state, tying the two together.
//! - [`options`]: the shaper's own options.
//! - `component`: the WIT glue, compiled for wasm only, so the rest also links natively
//!   for tests and benchmarks.

pub mod batch;
pub mod options;
pub mod shape;
pub mod shaper;

#[cfg(target_arch = "wasm32")]
mod component;
