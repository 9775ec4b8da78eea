//! Retry policy: which failures are worth another attempt, and how long to wait.
//!
//! Retried: 5xx (except 501/505; 522 and the other proxy codes included), 408, 429
//! (honouring `Retry-After` seconds), 499 (nginx's "client closed request", which proxies
//! answer when a connection broke) and transport failures other than TLS verification. Everything else fails at once, and so does an
//! answer whose `Retry-After` asks for a longer wait than [`RetryPolicy::max_delay`]: waiting
//! a fraction of it would only be refused again, so the registry's own message is shown at
//! once (RELIABILITY.md R05).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::RegistryError;

/// How many times to try a request and how long to wait between tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further failure.
    pub base_delay: Duration,
    /// The longest wait; a registry's `Retry-After` beyond it fails the request at once.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Returns the wait before attempt `failed + 1`, given that `failed` attempts failed.
    pub(crate) fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let factor = 1u32
            .checked_shl(failed.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts are used up.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        action: &str,
        mut attempt: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let mut failed = 0;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if e.retry_after().is_some_and(|after| after > self.max_delay) => {
                    return Err(e);
                }
                Err(e) if e.is_retryable() && failed + 1 < self.max_attempts.max(1) => {
                    failed += 1;
                    let wait = self.delay(failed, e.retry_after());
                    tracing::debug!(%action, attempt = failed, ?wait, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Returns whether an answer with `status` may succeed if asked again.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 499)
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// Returns the `Retry-After` delay if given in seconds (HTTP dates fall back to backoff).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 9,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
        };
        assert_eq!(p.delay(1, None), Duration::from_millis(100));
        assert_eq!(p.delay(2, None), Duration::from_millis(200));
        assert_eq!(p.delay(3, None), Duration::from_millis(400));
        assert_eq!(p.delay(4, None), Duration::from_millis(700));
        assert_eq!(p.delay(60, None), Duration::from_millis(700));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(9))),
            Duration::from_millis(700)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(5))),
            Duration::from_millis(5)
        );
    }

    /// R05: however a registry answers, the default policy makes a bounded number of
    /// attempts and waits a bounded time (no storm, no endless wait).
    #[test]
    fn r05_the_default_policy_bounds_attempts_and_waiting() {
        let p = RetryPolicy::default();
        assert!(p.max_attempts <= 5);
        let waits = |after: Option<Duration>| -> Duration {
            (1..p.max_attempts).map(|f| p.delay(f, after)).sum()
        };
        assert!(waits(None) <= Duration::from_secs(10));
        assert!(waits(Some(Duration::from_secs(86_400))) <= Duration::from_secs(120));
    }

    #[test]
    fn classifies_statuses() {
        for s in [500, 502, 503, 504, 408, 429, 499, 522] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 501, 505] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn reads_retry_after_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
