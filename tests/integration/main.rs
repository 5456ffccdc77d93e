//! Integration tests: the real runtime with real components, and the real `skippr` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod hostile;
mod runtime;
mod transform_check;
