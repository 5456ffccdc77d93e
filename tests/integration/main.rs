//! Integration tests: the real runtime with real components, and the real `skippr` binary.

// tungstenite fixes the handshake callback's error type, large as it is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod support;

mod cli;
mod delivery;
mod durability;
mod examples;
mod faults;
mod hostile;
mod nats;
mod postgres;
mod runtime;
mod source;
mod tenants;
mod transform_check;
mod transform_new;
