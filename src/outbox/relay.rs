//! Whether the SMTP server can be reached, as this process last saw it.
//!
//! When no connection can be opened, trying each mail of the queue in turn would hammer a
//! server that is down (a connection attempt per mail per tick) and spend every mail's
//! retry budget on an outage that is nobody's fault. Instead the first failure closes the
//! gate: the sender hands its mails back untouched and sends nothing until the gate opens
//! again, after a delay that doubles from `FIRST_WAIT` up to `LONGEST_WAIT`. When it opens,
//! one mail goes first as a probe; the rest follow only if it got through.
//!
//! Times are the sending pass's clock (real time in `drip serve`, the `--now` of
//! `drip tick`), so a simulated schedule sees the same waits as a real one.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

const FIRST_WAIT: Duration = Duration::seconds(5);
const LONGEST_WAIT: Duration = Duration::seconds(300);

#[derive(Debug, Clone, Copy)]
struct Outage {
    since: DateTime<Utc>,
    /// No connection is tried before this.
    retry_at: DateTime<Utc>,
    wait: Duration,
    failures: u32,
}

/// The state of the relay: reachable, or down since some moment with a next try planned.
#[derive(Debug, Default)]
pub struct RelayGate {
    outage: Mutex<Option<Outage>>,
}

/// What the sender may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The server answered last time: send at full speed.
    Open,
    /// The server was down and the wait is over: send one mail to find out.
    Probe,
    /// The server is down: send nothing for this long.
    Closed(Duration),
}

impl RelayGate {
    pub fn check(&self, now: DateTime<Utc>) -> Gate {
        match *self.outage.lock().expect("relay gate lock") {
            None => Gate::Open,
            Some(o) if now >= o.retry_at => Gate::Probe,
            Some(o) => Gate::Closed(o.retry_at - now),
        }
    }

    /// No connection could be opened: close the gate (or keep it closed, waiting longer).
    pub fn failed(&self, now: DateTime<Utc>, reason: &str) {
        let mut outage = self.outage.lock().expect("relay gate lock");
        let next = match *outage {
            // Several connections of one batch can fail together: one outage step.
            Some(o) if now < o.retry_at => return,
            Some(o) => Outage {
                wait: (o.wait * 2).min(LONGEST_WAIT),
                failures: o.failures + 1,
                ..o
            },
            None => Outage {
                since: now,
                retry_at: now,
                wait: FIRST_WAIT,
                failures: 1,
            },
        };
        let next = Outage {
            retry_at: now + next.wait,
            ..next
        };
        if next.failures == 1 {
            tracing::error!(%reason, retry_in_s = next.wait.num_seconds(), "SMTP server unreachable; holding the queue");
        } else {
            tracing::warn!(%reason, failures = next.failures, down_for_s = (now - next.since).num_seconds(), retry_in_s = next.wait.num_seconds(), "SMTP server still unreachable");
        }
        crate::metrics::set_relay_down(true);
        *outage = Some(next);
    }

    /// A mail got through: the server is back.
    pub(crate) fn succeeded(&self, now: DateTime<Utc>) {
        let mut outage = self.outage.lock().expect("relay gate lock");
        if let Some(o) = outage.take() {
            tracing::info!(
                down_for_s = (now - o.since).num_seconds(),
                failures = o.failures,
                "SMTP server reachable again"
            );
            crate::metrics::set_relay_down(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_longest_and_a_success_opens_the_gate() {
        let gate = RelayGate::default();
        let t0 = Utc::now();
        assert_eq!(gate.check(t0), Gate::Open);
        gate.failed(t0, "refused");
        assert_eq!(gate.check(t0), Gate::Closed(FIRST_WAIT));
        // A second connection of the same batch failing is the same outage step.
        gate.failed(t0 + Duration::seconds(1), "refused");
        assert_eq!(
            gate.check(t0 + Duration::seconds(1)),
            Gate::Closed(Duration::seconds(4))
        );
        let mut at = t0 + FIRST_WAIT;
        assert_eq!(gate.check(at), Gate::Probe);
        let mut waits = Vec::new();
        for _ in 0..8 {
            gate.failed(at, "refused");
            let Gate::Closed(wait) = gate.check(at) else {
                panic!("closed after a failed probe")
            };
            waits.push(wait.num_seconds());
            at += wait;
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
        gate.succeeded(at);
        assert_eq!(gate.check(at), Gate::Open);
    }
}
