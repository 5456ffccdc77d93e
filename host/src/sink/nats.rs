//! NATS JetStream: each record is one message on a subject (the configured one, or one made
//! from the namespace) with a `Nats-Msg-Id` of (pipeline, sequence, record index), so the
//! stream's duplicate window drops what the buffer replays after a crash. A flush waits for
//! every ack before the buffer's progress moves; the server down or restarted is retried,
//! resending what was not acknowledged.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;

use super::retry::{self, Failure, Remote};
use super::{Role, records};
use crate::config::NatsConfig;
use crate::runtime::Batch;

/// Dead letters go here when the section names no subject.
const DEADLETTER_SUBJECT: &str = "skippr.deadletters";
/// Messages published before their acks are awaited: the client's in-flight bound.
const ACKS_IN_FLIGHT: usize = 256;

pub struct NatsSink {
    config: NatsConfig,
    role: Role,
    pipeline: String,
    jetstream: Option<jetstream::Context>,
    stream_ready: bool,
    /// The stream has taken messages from this sink: a later "no stream" is a restart.
    delivered_once: bool,
    pending: Vec<Message>,
}

struct Message {
    subject: String,
    id: String,
    payload: Bytes,
}

impl NatsSink {
    pub fn new(config: &NatsConfig, pipeline: &str, role: Role) -> Self {
        Self {
            config: config.clone(),
            role,
            pipeline: pipeline.to_owned(),
            jetstream: None,
            stream_ready: false,
            delivered_once: false,
            pending: Vec::new(),
        }
    }

    pub fn write_batch(&mut self, batch: &Batch) {
        let subject = self.config.subject.clone().unwrap_or_else(|| subject_for_namespace(&batch.namespace));
        for (sequence, index, line) in records(batch) {
            let id = format!("{}:{sequence}:{index}", self.pipeline);
            self.pending.push(Message { subject: subject.clone(), id, payload: Bytes::copy_from_slice(line) });
        }
    }

    pub fn write_dead_letter(&mut self, sequence: u64, line: &[u8]) {
        let subject = self.config.subject.clone().unwrap_or_else(|| DEADLETTER_SUBJECT.to_owned());
        let id = format!("{}:dead:{sequence}", self.pipeline);
        self.pending.push(Message { subject, id, payload: Bytes::copy_from_slice(line.trim_ascii_end()) });
    }

    /// Publishes what is held and waits for every ack, retrying transient failures.
    pub fn flush(&mut self) -> std::io::Result<()> {
        retry::flush(self)
    }

    async fn connect(&self) -> Result<jetstream::Context, Failure> {
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("skippr {}", self.pipeline))
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &self.config.credentials {
            options = options
                .credentials_file(path)
                .await
                .map_err(|err| Failure::Permanent(format!("cannot read NATS credentials {}: {err}", path.display())))?;
        }
        let client = options.connect(self.config.url.as_str()).await.map_err(|err| {
            use async_nats::ConnectErrorKind::{Authentication, AuthorizationViolation, ServerParse};
            match err.kind() {
                Authentication | AuthorizationViolation => Failure::Permanent(format!(
                    "NATS refused {}: {err}; check the credentials file or the user and password in the url",
                    self.config.shown
                )),
                ServerParse => Failure::Permanent(format!("{} is not a NATS server address: {err}", self.config.shown)),
                _ => Failure::Transient(format!("{}: {err}", self.config.shown)),
            }
        })?;
        Ok(jetstream::new(client))
    }

    /// Creates the configured stream over the subjects about to be published, if missing.
    async fn ensure_stream(&mut self, jetstream: &jetstream::Context) -> Result<(), Failure> {
        let Some(name) = self.config.stream.clone().filter(|_| !self.stream_ready) else { return Ok(()) };
        let mut subjects: Vec<String> = match &self.config.subject {
            Some(subject) => vec![subject.clone()],
            None => self.pending.iter().map(|message| message.subject.clone()).collect(),
        };
        if self.role == Role::DeadLetters && subjects.is_empty() {
            subjects.push(DEADLETTER_SUBJECT.to_owned());
        }
        subjects.sort_unstable();
        subjects.dedup();
        if subjects.is_empty() {
            return Ok(());
        }
        let config = jetstream::stream::Config { name: name.clone(), subjects, ..Default::default() };
        jetstream.get_or_create_stream(config).await.map_err(|err| {
            Failure::Transient(format!("creating the stream `{name}` on {}: {err}", self.config.shown))
        })?;
        self.stream_ready = true;
        Ok(())
    }

    fn publish_failure(&self, subject: &str, err: &async_nats::jetstream::context::PublishError) -> Failure {
        let message = format!("{}: publishing to `{subject}`: {err}", self.config.shown);
        match err.kind() {
            // A stream that took messages before is coming back after a restart.
            PublishErrorKind::StreamNotFound if !self.delivered_once => Failure::Permanent(format!(
                "{message}; no JetStream stream captures `{subject}`: create one, or name it in `stream` for skippr to create"
            )),
            PublishErrorKind::MaxPayloadExceeded => {
                Failure::Permanent(format!("{message}; raise the server's max_payload or send smaller records"))
            }
            _ => Failure::Transient(message),
        }
    }
}

impl Remote for NatsSink {
    const KIND: &'static str = "NATS";

    fn shown(&self) -> &str {
        &self.config.shown
    }

    fn disconnect(&mut self) {
        self.jetstream = None;
    }

    fn is_connected(&self) -> bool {
        self.jetstream.is_some()
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn clear(&mut self) {
        self.pending.clear();
    }

    async fn deliver(&mut self) -> Result<(), Failure> {
        let jetstream = match &self.jetstream {
            Some(jetstream) => jetstream.clone(),
            None => self.connect().await?,
        };
        self.jetstream = Some(jetstream.clone());
        self.ensure_stream(&jetstream).await?;
        for chunk in self.pending.chunks(ACKS_IN_FLIGHT) {
            let mut acks = Vec::with_capacity(chunk.len());
            for message in chunk {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", message.id.as_str());
                let published =
                    jetstream.publish_with_headers(message.subject.clone(), headers, message.payload.clone());
                acks.push((message, published.await.map_err(|err| self.publish_failure(&message.subject, &err))?));
            }
            for (message, ack) in acks {
                ack.await.map_err(|err| self.publish_failure(&message.subject, &err))?;
            }
        }
        self.delivered_once |= !self.pending.is_empty();
        Ok(())
    }
}

/// A namespace as a subject: its dots stay token separators; spaces and the wildcards `*`
/// and `>` become `_`.
pub fn subject_for_namespace(namespace: &str) -> String {
    let subject: String =
        namespace.chars().map(|c| if c.is_whitespace() || c == '*' || c == '>' { '_' } else { c }).collect();
    if subject.is_empty() { "skippr".to_owned() } else { subject }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_become_subjects() {
        assert_eq!(subject_for_namespace("websocket.stream.example.com"), "websocket.stream.example.com");
        assert_eq!(subject_for_namespace("a b*>"), "a_b__");
        assert_eq!(subject_for_namespace(""), "skippr");
    }
}
