//! How remote sinks (PostgreSQL, NATS JetStream) flush: a transient failure (the server
//! down, restarting, unreachable) is retried with backoff while the writer waits, and so
//! the buffer and then the socket; a permanent one ends the run with what to fix.

use std::io;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::config::ReconnectConfig;

const RETRY: ReconnectConfig = ReconnectConfig { initial: Duration::from_millis(200), max: Duration::from_secs(10) };

/// Why a delivery failed: worth retrying, or not.
pub enum Failure {
    Transient(String),
    Permanent(String),
}

pub(super) trait Remote {
    /// Names the kind of server in logs.
    const KIND: &'static str;

    /// The server as logs show it (no password).
    fn shown(&self) -> &str;

    /// Delivers everything held for good (committed, acknowledged), connecting first if
    /// need be; delivering the same records again must store nothing twice.
    async fn deliver(&mut self) -> Result<(), Failure>;

    /// Drops the connection after a transient failure; the next attempt makes a new one.
    fn disconnect(&mut self);

    fn is_connected(&self) -> bool;

    /// Nothing is held for delivery.
    fn is_empty(&self) -> bool;

    /// Forgets what was held, once delivered.
    fn clear(&mut self);
}

/// Delivers what `remote` holds, retrying transient failures. The first flush connects
/// even with nothing to deliver, so a bad login shows at once.
pub(super) fn flush<R: Remote>(remote: &mut R) -> io::Result<()> {
    if remote.is_empty() && remote.is_connected() {
        return Ok(());
    }
    deliver_with_retries(remote)?;
    remote.clear();
    Ok(())
}

fn deliver_with_retries<R: Remote>(remote: &mut R) -> io::Result<()> {
    let handle = tokio::runtime::Handle::current();
    let mut backoff = Backoff::new(RETRY);
    loop {
        match handle.block_on(remote.deliver()) {
            Ok(()) => return Ok(()),
            Err(Failure::Permanent(message)) => return Err(io::Error::other(message)),
            Err(Failure::Transient(message)) => {
                remote.disconnect();
                let delay = backoff.next_delay();
                tracing::warn!(
                    destination = %remote.shown(),
                    error = %message,
                    retry_in_ms = delay.as_millis() as u64,
                    "{} is unavailable; holding the records and retrying.",
                    R::KIND
                );
                std::thread::sleep(delay);
            }
        }
    }
}
