//! The wait after calls that keep failing: doubling, capped, jittered.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// The wait after `failures` failures in a row of a call normally made every
/// `base`: `base` when nothing failed, else `base · 2^(failures-1)` capped
/// at `cap` (never below `base`), drawn uniformly from its upper half so that
/// daemons failing together spread out but never hammer.
pub(crate) fn delay(base: Duration, failures: u32, cap: Duration) -> Duration {
    if failures == 0 {
        return base;
    }
    let full = base.saturating_mul(2u32.saturating_pow(failures - 1)).min(cap.max(base));
    full / 2 + (full / 2).mul_f64(random_unit())
}

/// A uniform draw from `[0, 1)` from std's per-instance random hasher keys.
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(0u8);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_its_upper_half_and_stops_at_the_cap() {
        let base = Duration::from_secs(3);
        let cap = Duration::from_secs(60);
        assert_eq!(delay(base, 0, cap), base);
        for failures in 1..12 {
            let full = (base * 2u32.pow(failures - 1)).min(cap);
            let wait = delay(base, failures, cap);
            assert!(wait >= full / 2 && wait <= full, "{failures}: {wait:?}");
        }
        assert!(delay(Duration::from_secs(90), 3, cap) >= Duration::from_secs(45));
    }
}
