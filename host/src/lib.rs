//! Skippr's WebSocket source connector.
//!
//! # Layout
//! - [`cli`]: the command line.
//! - [`config`]: skippr.yaml: parsing, `${VAR}` resolution, validation, edits.
//! - [`source`]: connecting (proxy, TLS, headers), sessions, keepalive, reconnects.
//! - [`pipeline`]: source → buffer → shaper → writer over bounded channels, and the drain order.
//! - [`buffer`]: the durable log between the socket and the shaper, and crash recovery.
//! - [`tenants`]: many pipelines in one process, started, restarted and stopped alone.
//! - [`runtime`]: the wasmtime sandbox that runs transform components.
//! - [`sink`], [`deadletter`]: where records and rejected frames are written.
//! - [`metrics`]: the counters behind the summary, `/metrics`, progress lines.
//! - [`redact`]: keeping secrets out of logs and errors.
//! - [`demo`], [`transform_check`]: `skippr demo` and `skippr transform check`.

pub mod backoff;
pub mod buffer;
pub mod cli;
pub mod config;
pub mod deadletter;
pub mod demo;
pub mod metrics;
pub mod pipeline;
pub mod redact;
pub mod runtime;
pub mod scaffold;
pub mod sink;
pub mod source;
pub mod tenants;
pub mod transform_check;
