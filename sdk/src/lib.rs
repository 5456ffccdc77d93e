//! Write a Skippr transform: implement [`Transform`], call [`export_transform!`], and build
//! with `cargo build --target wasm32-wasip2 --release`.
//!
//! A transform shapes one frame at a time into zero or more records, or rejects it with a
//! reason; the SDK does the rest: batching by the source's bounds, the record envelope
//! (namespace, optional key, metadata), typed options read from `transform.options`, and
//! the WIT glue of the `skippr:connector/transform` world.
//!
//! ```
//! use serde::Deserialize;
//! use skippr_sdk::{Frame, Json, Records, Source, Transform};
//!
//! /// Keeps frames whose JSON has `"type": "trade"`.
//! struct TradesOnly;
//!
//! impl Transform for TradesOnly {
//!     type Options = skippr_sdk::NoOptions;
//!
//!     fn new(_source: &Source, _options: Self::Options) -> Result<Self, String> {
//!         Ok(Self)
//!     }
//!
//!     fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String> {
//!         let text = frame.text()?;
//!         if text.contains(r#""type":"trade""#) {
//!             records.push(Json(text))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! skippr_sdk::export_transform!(TradesOnly);
//! ```
//!
//! The pieces are plain Rust that also runs natively, so a transform's tests can drive a
//! [`Shaper`] directly without a wasm runtime.

mod batch;
mod frame;
mod json;
mod record;
mod shaper;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod component;

pub use batch::Batch;
pub use frame::{Format, Frame, FrameKind, Limits, Mode, Outbound, Source};
pub use record::{Bytes, FrameJson, Json, Records, Serialized, Text, Value};
pub use shaper::{Output, Rejection, Shaper};

/// A transform's shaping logic. One value is made per source, at `init`.
pub trait Transform: Sized + 'static {
    /// The transform's options from `transform.options` in skippr.yaml. An option of the
    /// wrong type, or one it does not know (with `#[serde(deny_unknown_fields)]`), is an
    /// error at `init` that names it.
    type Options: serde::de::DeserializeOwned;

    /// Prepares the transform for one source; an error refuses it at `init`.
    fn new(source: &Source, options: Self::Options) -> Result<Self, String>;

    /// Shapes one frame: push its records (none drops the frame), or return a reason to
    /// send it to the dead-letter output instead.
    fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String>;

    /// Called after every (re)connect: the messages to send first, such as subscriptions.
    fn on_connect(&mut self, connection_id: u64) -> Vec<Outbound> {
        let _ = connection_id;
        Vec::new()
    }

    /// Whether records carry the `meta` object (url, connection, sequence, receive time, kind).
    fn include_meta(&self) -> bool {
        true
    }
}

#[doc(hidden)]
pub fn assert_transform<T: Transform>() {}

/// Options for a transform that takes none: any option given is refused by name.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// Exports `$transform` as the component's shaper. Call it once, in the crate built as the
/// component; built natively (for tests) it only checks that `$transform` is a transform.
#[macro_export]
macro_rules! export_transform {
    ($transform:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::assert_transform::<$transform>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Component;
            impl $crate::component::exports::skippr::connector::shaper::Guest for Component {
                type Shaper = $crate::component::Resource<$transform>;
            }
    $crate::component::export!(Component with_types_in $crate::component);
        };
    };
}
