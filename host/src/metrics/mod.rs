//! What each pipeline counts, the registry of all tenants' counters, and the
//! Prometheus endpoint that serves them.

mod counters;
mod progress;
mod prometheus;
mod server;

pub use counters::{Counters, Summary};
pub use progress::print_progress;
pub use prometheus::Registry;
pub use server::serve;
