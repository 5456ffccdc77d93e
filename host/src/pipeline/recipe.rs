//! How to make a pipeline's transform instance, and make it again: after a failure
//! (`on_transform_error: restart`) or for a component swapped in while running.

use crate::config::PipelineConfig;
use crate::runtime::{CallError, InstanceLimits, ShaperInstance, SourceInfo, Transform};

#[derive(Debug, Clone)]
pub struct Recipe {
    name: String,
    source: SourceInfo,
    options: String,
    limits: InstanceLimits,
}

impl Recipe {
    pub fn new(config: &PipelineConfig) -> Self {
        let source = &config.source;
        let info = SourceInfo {
            url: source.redacted_url.clone(),
            host: source.host.clone(),
            namespace: source.namespace.clone(),
            mode: source.mode,
            connection_id: 0,
            format: source.format,
            limits: config.batch,
        };
        Self {
            name: config.name.clone(),
            source: info,
            options: config.transform.options_json.clone(),
            limits: config.limits,
        }
    }

    /// The memory cap of every instance.
    pub fn memory_bytes(&self) -> usize {
        self.limits.memory_bytes
    }

    /// A fresh, initialised instance whose frames come from `connection_id`.
    pub fn instantiate(&self, transform: &Transform, connection_id: u64) -> Result<ShaperInstance, CallError> {
        let source = SourceInfo { connection_id, ..self.source.clone() };
        transform.instantiate(&self.name, &source, &self.options, self.limits)
    }
}
