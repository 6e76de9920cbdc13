//! The sender's rate limits: messages per second overall (a token bucket) and concurrent
//! sends per recipient domain (a semaphore per domain), from `[smtp] max_per_second` and
//! `max_connections_per_domain`; 0 turns either off.
//!
//! Both are per process. With N `drip worker` processes the fleet sends up to N times
//! `max_per_second`: set it to the total divided by the number of workers. A send holds
//! one pooled SMTP connection while it runs, so bounding concurrent sends to a domain bounds
//! the connections its mail is in flight on (through a relay: the relay's own limits apply
//! after that).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A token bucket on an injected clock: `rate` tokens a second, holding at most `burst`.
/// Kept as the time at which the bucket would be full again (GCRA), in whole nanoseconds,
/// so the arithmetic is exact and tests drive it with made-up instants instead of sleeping.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Nanoseconds between two tokens.
    interval: u64,
    /// How far ahead of the clock the bucket may run: (burst - 1) intervals.
    tolerance: u64,
    base: Instant,
    /// When the next token would arrive were the bucket empty, in ns after `base`.
    next: u64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let interval = (1e9 / rate).round().max(1.0) as u64;
        let burst = burst.max(1.0).floor() as u64;
        TokenBucket {
            interval,
            tolerance: interval * (burst - 1),
            base: now,
            next: 0,
        }
    }

    /// Takes one token at `now`, or says how long until one is there. An instant earlier
    /// than one seen before (callers racing for the lock) counts as that one.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let now = now.saturating_duration_since(self.base).as_nanos() as u64;
        let next = self.next.max(now);
        if next - now > self.tolerance {
            return Err(Duration::from_nanos(next - now - self.tolerance));
        }
        self.next = next + self.interval;
        Ok(())
    }
}

/// The limits one sending process applies; cheap to share.
#[derive(Debug)]
pub struct Limiter {
    bucket: Option<Mutex<TokenBucket>>,
    per_domain: usize,
    domains: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held while one mail is being sent; dropping it frees the domain's slot.
pub(crate) struct SendPermit {
    _domain: Option<OwnedSemaphorePermit>,
}

/// tokio's clock, so a test on a paused runtime sees the limiter wait in virtual time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Above this many idle domains the map is swept, so a list with a million distinct
/// domains does not keep a semaphore for each.
const DOMAIN_SWEEP_AT: usize = 4096;

impl Limiter {
    /// `max_per_second` and `max_connections_per_domain`, 0 meaning unlimited. A second's
    /// worth of tokens may be spent at once (at least one), so a limit of 100/s sends in
    /// bursts of up to 100 and never more than 100 + 100·t over t seconds.
    pub fn new(max_per_second: u32, max_connections_per_domain: u32) -> Limiter {
        Limiter {
            bucket: (max_per_second > 0).then(|| {
                let rate = f64::from(max_per_second);
                Mutex::new(TokenBucket::new(rate, rate, now()))
            }),
            per_domain: max_connections_per_domain as usize,
            domains: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a mail to `recipient` may go: a free slot for its domain, then a token.
    pub(crate) async fn acquire(&self, recipient: &str) -> SendPermit {
        let domain = match self.per_domain {
            0 => None,
            _ => {
                let semaphore = self.domain_semaphore(recipient);
                Some(
                    semaphore
                        .acquire_owned()
                        .await
                        .expect("domain semaphores are never closed"),
                )
            }
        };
        if let Some(bucket) = &self.bucket {
            loop {
                let wait = bucket.lock().expect("bucket lock").try_take(now());
                match wait {
                    Ok(()) => break,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            }
        }
        SendPermit { _domain: domain }
    }

    fn domain_semaphore(&self, recipient: &str) -> Arc<Semaphore> {
        let domain = recipient
            .rsplit_once('@')
            .map_or(recipient, |(_, d)| d)
            .to_ascii_lowercase();
        let mut domains = self.domains.lock().expect("domain map lock");
        if domains.len() >= DOMAIN_SWEEP_AT && !domains.contains_key(&domain) {
            let max = self.per_domain;
            // Only the map holds an idle domain's semaphore, and all its permits are free.
            domains.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < max);
        }
        domains
            .entry(domain)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_domain)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Asks for a token every `step` for `total`, like a sender that always has mail.
    fn granted(rate: f64, burst: f64, step: Duration, total: Duration) -> usize {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate, burst, start);
        let mut t = Duration::ZERO;
        let mut n = 0;
        while t <= total {
            while bucket.try_take(start + t).is_ok() {
                n += 1;
            }
            t += step;
        }
        n
    }

    #[test]
    fn the_bucket_grants_its_rate_plus_one_burst_over_any_span() {
        // 10 s at 100/s, asked every millisecond: 1,000 refilled plus the 100 it started with.
        assert_eq!(
            granted(
                100.0,
                100.0,
                Duration::from_millis(1),
                Duration::from_secs(10)
            ),
            1100
        );
        // Asked rarely, it still never exceeds its burst at once: every 5 s it holds 50 at most.
        assert_eq!(
            granted(10.0, 50.0, Duration::from_secs(5), Duration::from_secs(60)),
            50 * 13
        );
        // A rate below one a second.
        assert_eq!(
            granted(
                0.5,
                1.0,
                Duration::from_millis(100),
                Duration::from_secs(60)
            ),
            31
        );
    }

    #[test]
    fn an_empty_bucket_says_how_long_to_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(4.0, 1.0, start);
        assert!(bucket.try_take(start).is_ok());
        let wait = bucket.try_take(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(250));
        assert!(bucket.try_take(start + Duration::from_millis(249)).is_err());
        assert!(bucket.try_take(start + Duration::from_millis(250)).is_ok());
    }

    #[test]
    fn a_clock_going_backwards_grants_nothing_extra() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 1.0, start + Duration::from_secs(10));
        assert!(bucket.try_take(start + Duration::from_secs(10)).is_ok());
        assert!(bucket.try_take(start).is_err());
        assert!(bucket.try_take(start + Duration::from_secs(10)).is_err());
        assert!(bucket.try_take(start + Duration::from_secs(11)).is_ok());
    }

    #[tokio::test]
    async fn the_limiter_spends_one_burst_then_makes_senders_wait() {
        let limiter = Limiter::new(50, 0);
        for _ in 0..50 {
            // Within the burst nothing waits (bounded, so a bug fails instead of hanging).
            tokio::time::timeout(Duration::from_secs(5), limiter.acquire("a@example.com"))
                .await
                .expect("the first 50 go at once");
        }
        let wait = limiter
            .bucket
            .as_ref()
            .unwrap()
            .lock()
            .unwrap()
            .try_take(now());
        assert!(wait.is_err(), "the 51st waits for a token");
        assert!(Limiter::new(0, 0).bucket.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_sends_to_a_domain_run_at_once_than_allowed() {
        let limiter = Arc::new(Limiter::new(0, 3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let other_peak = Arc::new(AtomicUsize::new(0));
        let other_running = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..60 {
            let (limiter, running, peak) = (limiter.clone(), running.clone(), peak.clone());
            let (other_running, other_peak) = (other_running.clone(), other_peak.clone());
            tasks.push(tokio::spawn(async move {
                let (to, running, peak) = if i % 2 == 0 {
                    (format!("u{i}@Example.COM"), running, peak)
                } else {
                    (format!("u{i}@other.org"), other_running, other_peak)
                };
                let _permit = limiter.acquire(&to).await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(2)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3, "example.com, any case");
        assert_eq!(
            other_peak.load(Ordering::SeqCst),
            3,
            "other.org has its own 3"
        );
    }

    #[test]
    fn idle_domains_are_swept_from_the_map() {
        let limiter = Limiter::new(0, 2);
        for i in 0..(DOMAIN_SWEEP_AT + 10) {
            let _ = limiter.domain_semaphore(&format!("a@d{i}.example"));
        }
        assert!(limiter.domains.lock().unwrap().len() <= DOMAIN_SWEEP_AT);
    }
}
