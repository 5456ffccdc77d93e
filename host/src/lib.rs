//! Skippr's WebSocket source connector.
//!
//! # Layout
//! - [`runtime`]: the wasmtime sandbox that runs transform components.
//! - [`transform_check`]: `skippr transform check`, loading and exercising a component.
//! - [`cli`]: the command line.

pub mod cli;
pub mod runtime;
pub mod transform_check;
