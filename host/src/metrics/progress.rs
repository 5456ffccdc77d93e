//! A concise progress line per tenant every few seconds, for a person at a terminal.

use std::sync::Arc;
use std::time::Duration;

use super::{Counters, Registry};

const EVERY: Duration = Duration::from_secs(5);

pub async fn print_progress(registry: Arc<Registry>) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        for (tenant, counters) in registry.snapshot() {
            let state = if Counters::get(&counters.connected) == 1 { "connected" } else { "not connected" };
            eprintln!(
                "[{tenant}] {state}: {} frames, {} records, {} dead letters",
                Counters::get(&counters.frames_received),
                Counters::get(&counters.records_delivered),
                Counters::get(&counters.frames_dead_lettered),
            );
        }
    }
}
