//! Ping liveness: a ping every interval; no pong or frame within the pong timeout after a
//! ping means the link is dead.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, PartialEq, Eq)]
pub enum KeepaliveAction {
    SendPing,
    Dead { silent_for: Duration },
}

#[derive(Debug)]
pub struct Keepalive {
    interval: Duration,
    pong_timeout: Duration,
    next_ping: Instant,
    /// When the unanswered ping went out.
    awaiting_since: Option<Instant>,
}

impl Keepalive {
    pub fn new(interval: Duration, pong_timeout: Duration, now: Instant) -> Self {
        Self { interval, pong_timeout, next_ping: now + interval, awaiting_since: None }
    }

    /// When `on_deadline` must next run.
    pub fn deadline(&self) -> Instant {
        match self.awaiting_since {
            Some(sent) => (sent + self.pong_timeout).min(self.next_ping),
            None => self.next_ping,
        }
    }

    /// Any frame from the server proves the link is alive.
    pub fn record_activity(&mut self) {
        self.awaiting_since = None;
    }

    pub fn on_deadline(&mut self, now: Instant) -> Option<KeepaliveAction> {
        if let Some(sent) = self.awaiting_since
            && now >= sent + self.pong_timeout
        {
            return Some(KeepaliveAction::Dead { silent_for: now - sent });
        }
        if now >= self.next_ping {
            self.next_ping = now + self.interval;
            self.awaiting_since.get_or_insert(now);
            return Some(KeepaliveAction::SendPing);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn pings_on_interval_and_stays_alive_on_activity() {
        let start = Instant::now();
        let mut keepalive = Keepalive::new(10 * SECOND, 3 * SECOND, start);
        assert_eq!(keepalive.deadline(), start + 10 * SECOND);
        assert_eq!(keepalive.on_deadline(start + 10 * SECOND), Some(KeepaliveAction::SendPing));
        assert_eq!(keepalive.deadline(), start + 13 * SECOND);
        keepalive.record_activity();
        assert_eq!(keepalive.deadline(), start + 20 * SECOND);
        assert_eq!(keepalive.on_deadline(start + 13 * SECOND), None);
    }

    #[test]
    fn no_answer_within_the_pong_timeout_is_dead() {
        let start = Instant::now();
        let mut keepalive = Keepalive::new(10 * SECOND, 3 * SECOND, start);
        keepalive.on_deadline(start + 10 * SECOND);
        assert_eq!(keepalive.on_deadline(start + 13 * SECOND), Some(KeepaliveAction::Dead { silent_for: 3 * SECOND }));
    }

    #[test]
    fn a_pong_timeout_longer_than_the_interval_keeps_the_first_ping_time() {
        let start = Instant::now();
        let mut keepalive = Keepalive::new(SECOND, 5 * SECOND, start);
        for second in 1..5 {
            assert_eq!(keepalive.on_deadline(start + second * SECOND), Some(KeepaliveAction::SendPing));
        }
        assert!(matches!(keepalive.on_deadline(start + 6 * SECOND), Some(KeepaliveAction::Dead { .. })));
    }
}
