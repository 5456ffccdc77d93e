//! Latency: send stamps carried in the messages, and percentiles of what arrived.

/// The `"t":<micros>` stamp of a JSON message (or bytes 8..16 of a binary one).
pub fn stamp_of(payload: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(payload).ok()?;
    let at = text.find("\"t\":")? + 4;
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// p50, p99 and p99.9 in microseconds.
pub fn percentiles(mut latencies_us: Vec<u64>) -> Option<[u64; 3]> {
    if latencies_us.is_empty() {
        return None;
    }
    latencies_us.sort_unstable();
    let at = |q: f64| latencies_us[((latencies_us.len() - 1) as f64 * q).round() as usize];
    Some([at(0.5), at(0.99), at(0.999)])
}
