//! Capped exponential backoff with full jitter, reset after a healthy connection.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::ReconnectConfig;

#[derive(Debug)]
pub struct Backoff {
    config: ReconnectConfig,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(config: ReconnectConfig) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        Self { config, attempt: 0, seed: nanos | 1 }
    }

    /// The delay before the next attempt: uniform in [0, min(max, initial × 2^attempt)].
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = ceiling.as_millis() as u64;
        Duration::from_millis(self.random() % (ceiling_ms + 1))
    }

    /// The upper bound of the next delay.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        self.config.initial.saturating_mul(factor).min(self.config.max)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// xorshift64: jitter needs spread, not cryptographic randomness.
    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(ReconnectConfig { initial: Duration::from_millis(100), max: Duration::from_millis(1000) })
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_max() {
        let mut backoff = backoff();
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(backoff.ceiling().as_millis());
            let delay = backoff.next_delay();
            assert!(delay.as_millis() <= *ceilings.last().unwrap());
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = backoff();
        backoff.next_delay();
        backoff.next_delay();
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_spread() {
        let mut backoff = backoff();
        backoff.attempt = 10;
        let delays: std::collections::BTreeSet<_> = (0..50).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 10, "full jitter spreads delays: {delays:?}");
    }
}
