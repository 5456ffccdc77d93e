//! skippr.yaml: the raw file shape, `${VAR}` resolution, validation into a typed
//! pipeline config, and the edits `init` and `connect` make.

mod edit;
mod env;
mod raw;
mod validate;

pub use edit::{ConnectDestination, EditReport, connect_destination, connect_source, init};
pub use env::EnvFiles;
pub use raw::{DEFAULT_CONFIG_FILE, RawConfig, RawTransform, parse};
pub use validate::{
    BufferConfig, BufferKind, ConfigError, DestinationConfig, Header, LimitPolicy, NatsConfig, OnTransformError,
    PipelineConfig, PostgresConfig, ProxyConfig, ReconnectConfig, SinkKind, SourceConfig, TlsConfig, TransformConfig,
    load, validate_raw,
};
