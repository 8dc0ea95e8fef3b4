//! The Go daemon's reconnect schedule (WS contract §7.1): 1, 2, 4, 8, 16,
//! 30, 30… s, each ±20 %, back to 1 s after a connection that lasted 10 s.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first wait.
pub(crate) const FIRST: Duration = Duration::from_secs(1);
/// The longest wait.
pub(crate) const CAP: Duration = Duration::from_secs(30);
/// A connection up this long resets the schedule.
pub(crate) const RESET_AFTER: Duration = Duration::from_secs(10);

/// Where the schedule stands.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { next: FIRST }
    }

    /// Back to the first wait.
    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }

    /// The wait before the next attempt, jittered; doubles the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(CAP);
        jitter(base, random_unit())
    }
}

/// `base` scaled by a factor in [0.8, 1.2) chosen by `unit` in [0, 1).
pub(crate) fn jitter(base: Duration, unit: f64) -> Duration {
    base.mul_f64(0.8 + 0.4 * unit)
}

/// A number in [0, 1) from the standard library's per-process random keys.
fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 random bits (the hasher is keyed afresh by each `RandomState`).
pub(crate) fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x006d_756c_7469_6361);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_doubles_to_the_cap_within_twenty_percent() {
        let mut backoff = Backoff::new();
        for expected in [1, 2, 4, 8, 16, 30, 30, 30] {
            let delay = backoff.next_delay().as_secs_f64();
            let expected = expected as f64;
            assert!(delay >= expected * 0.8 && delay < expected * 1.2, "{delay} vs {expected}");
        }
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(1200));
    }

    #[test]
    fn jitter_spans_plus_minus_twenty_percent() {
        assert_eq!(jitter(Duration::from_secs(10), 0.0), Duration::from_secs(8));
        assert_eq!(jitter(Duration::from_secs(10), 0.5), Duration::from_secs(10));
        assert!(jitter(Duration::from_secs(10), 0.999_999) < Duration::from_secs(12));
    }
}
