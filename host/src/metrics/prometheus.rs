//! Every tenant's counters, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use super::Counters;

/// A metric: name, type, help, and which counter it reads.
type Metric = (&'static str, &'static str, &'static str, fn(&Counters) -> &AtomicU64);

const METRICS: [Metric; 17] = [
    ("skippr_frames_received_total", "counter", "Frames received from the WebSocket server.", |c| &c.frames_received),
    ("skippr_bytes_received_total", "counter", "Payload bytes received.", |c| &c.bytes_received),
    ("skippr_frames_accepted_total", "counter", "Frames made durable in the buffer (or taken, in memory).", |c| {
        &c.frames_accepted
    }),
    ("skippr_frames_recovered_total", "counter", "Accepted frames a restart found undelivered.", |c| {
        &c.frames_recovered
    }),
    ("skippr_buffer_bytes", "gauge", "Bytes in the disk buffer's log.", |c| &c.buffer_bytes),
    ("skippr_records_delivered_total", "counter", "Records written to the destination.", |c| &c.records_delivered),
    ("skippr_dead_letters_total", "counter", "Frames written to the dead-letter output.", |c| &c.frames_dead_lettered),
    ("skippr_connections_total", "counter", "Connections opened.", |c| &c.connections),
    ("skippr_reconnects_total", "counter", "Connections opened after a drop.", |c| &c.reconnects),
    ("skippr_connect_failures_total", "counter", "Connection attempts that failed.", |c| &c.connect_failures),
    ("skippr_connected", "gauge", "1 while the WebSocket connection is open.", |c| &c.connected),
    ("skippr_transform_swaps_total", "counter", "Transforms swapped in while running.", |c| &c.transform_swaps),
    ("skippr_transform_restarts_total", "counter", "Transform instances restarted after a failure.", |c| {
        &c.transform_restarts
    }),
    ("skippr_transform_recycles_total", "counter", "Transform instances replaced near their memory cap.", |c| {
        &c.transform_recycles
    }),
    ("skippr_frames_dropped_total", "counter", "Frames the transform shaped into no record on purpose.", |c| {
        &c.frames_dropped
    }),
    ("skippr_guest_busy_microseconds_total", "counter", "Time spent inside the transform.", |c| &c.guest_busy_micros),
    ("skippr_guest_memory_bytes", "gauge", "Linear memory of the transform instance.", |c| &c.guest_memory_bytes),
];

/// The counters of every tenant this process runs or has run.
#[derive(Debug, Default)]
pub struct Registry {
    tenants: Mutex<BTreeMap<String, Arc<Counters>>>,
}

impl Registry {
    /// A tenant's counters, kept across its restarts.
    pub fn counters_for(&self, tenant: &str) -> Arc<Counters> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(tenants.entry(tenant.to_owned()).or_default())
    }

    pub fn forget(&self, tenant: &str) {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner).remove(tenant);
    }

    pub fn snapshot(&self) -> Vec<(String, Arc<Counters>)> {
        let tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        tenants.iter().map(|(name, counters)| (name.clone(), Arc::clone(counters))).collect()
    }

    /// The Prometheus text exposition of every metric for every tenant.
    pub fn render(&self) -> String {
        let tenants = self.snapshot();
        let mut out = String::new();
        for (name, kind, help, counter) in METRICS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (tenant, counters) in &tenants {
                let _ = writeln!(out, "{name}{{tenant=\"{}\"}} {}", escape(tenant), Counters::get(counter(counters)));
            }
        }
        out
    }
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenant_gets_every_metric() {
        let registry = Registry::default();
        Counters::add(&registry.counters_for("a").frames_received, 3);
        registry.counters_for("b\"x");
        let text = registry.render();
        assert!(text.contains("# TYPE skippr_frames_received_total counter\n"), "{text}");
        assert!(text.contains("skippr_frames_received_total{tenant=\"a\"} 3\n"), "{text}");
        assert!(text.contains("skippr_frames_received_total{tenant=\"b\\\"x\"} 0\n"), "{text}");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), METRICS.len() * 2);
    }
}
