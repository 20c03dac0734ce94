//! Automatic attempts at a version: a failure that does not block (a readiness time-out, a
//! failed target-group step, a failed discovery, an execution the finalizer closes) is counted
//! per (cell, version); the dispatcher backs off between attempts (5 min, 15 min, 45 min, …,
//! at most a day), and after `maxAttempts` failures the version is held as failing — blocked
//! until a person retries it, or a newer version appears. A failed analysis or rollback still
//! blocks at once.

use std::time::Duration;

/// Attempts at a version before it is held as failing, unless the spec says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The most attempts a spec may allow.
pub const MAX_MAX_ATTEMPTS: u32 = 100;
/// The wait after the first failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Each further failure multiplies the wait by this.
pub const BACKOFF_FACTOR: u32 = 3;
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// The wait before the next attempt after `failures` failures in a row (none: no wait).
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let mut d = FIRST_BACKOFF;
    for _ in 1..failures {
        d = d.saturating_mul(BACKOFF_FACTOR);
        if d >= MAX_BACKOFF {
            return MAX_BACKOFF;
        }
    }
    d.min(MAX_BACKOFF)
}

/// Whether the dispatcher may start the next attempt now: `since_last` is the time since the
/// last failure (`None`: unknown, taken as just now). `Err` is how long to wait still.
pub fn may_start(failures: u32, since_last: Option<Duration>) -> Result<(), Duration> {
    let wait = backoff(failures);
    let since = since_last.unwrap_or(Duration::ZERO);
    if since >= wait {
        Ok(())
    } else {
        Err(wait - since)
    }
}

/// Whether `failures` failures hold the version as failing.
pub fn exhausted(failures: u32, max_attempts: u32) -> bool {
    failures >= max_attempts.max(1)
}

/// The block's reason for a version held as failing.
pub fn failing_reason(failures: u32, last: &str) -> String {
    format!(
        "failing: {failures} automatic attempt(s) failed (last: {last}); held until `okra \
         rollout retry` or a newer version"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_threefold_up_to_a_day() {
        let m = |n: u64| Duration::from_secs(n * 60);
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), m(5));
        assert_eq!(backoff(2), m(15));
        assert_eq!(backoff(3), m(45));
        assert_eq!(backoff(5), m(405));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn the_next_attempt_waits_for_its_backoff() {
        assert_eq!(may_start(0, None), Ok(()));
        assert_eq!(
            may_start(1, Some(Duration::from_secs(60))),
            Err(Duration::from_secs(240))
        );
        assert_eq!(may_start(1, Some(Duration::from_secs(300))), Ok(()));
        assert_eq!(may_start(2, None), Err(Duration::from_secs(900)));
        assert!(exhausted(3, 3) && !exhausted(2, 3) && exhausted(1, 0));
    }
}
