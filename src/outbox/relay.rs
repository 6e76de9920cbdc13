//! Whether the SMTP server can be reached and takes drip's mail, as this process last saw it.
//!
//! When no connection can be opened, trying each mail of the queue in turn would hammer a
//! server that is down (a connection attempt per mail per tick) and spend every mail's
//! retry budget on an outage that is nobody's fault. The same goes for a relay that refuses
//! drip itself (a wrong password, a certificate that does not verify, no STARTTLS, no
//! relaying without sign-in): no mail would get through, and none of it is the mail's or the
//! subscriber's fault. Either way the first failure closes the gate: the sender hands its mails back untouched and sends nothing until the gate opens
//! again, after a delay that doubles from `FIRST_WAIT` up to `LONGEST_WAIT`. When it opens,
//! one mail goes first as a probe; the rest follow only if it got through.
//!
//! Times are the sending pass's clock (real time in `drip serve`, the `--now` of
//! `drip tick`), so a simulated schedule sees the same waits as a real one.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::mailer::RelayProblem;

const FIRST_WAIT: Duration = Duration::seconds(5);
const LONGEST_WAIT: Duration = Duration::seconds(300);

#[derive(Debug, Clone)]
struct Outage {
    since: DateTime<Utc>,
    /// No connection is tried before this.
    retry_at: DateTime<Utc>,
    wait: Duration,
    failures: u32,
    /// What the last failure said, to log again only when it changes.
    last: RelayProblem,
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
        match self.outage.lock().expect("relay gate lock").as_ref() {
            None => Gate::Open,
            Some(o) if now >= o.retry_at => Gate::Probe,
            Some(o) => Gate::Closed(o.retry_at - now),
        }
    }

    /// The relay cannot be used (no connection, or it refuses drip's TLS, sign-in or
    /// settings): close the gate (or keep it closed, waiting longer).
    ///
    /// The log line is the problem's own sentence, which ends with what to change; it is
    /// logged as an error when the problem starts or changes, as a warning while it lasts.
    pub fn failed(&self, now: DateTime<Utc>, problem: &RelayProblem) {
        let mut outage = self.outage.lock().expect("relay gate lock");
        let next = match outage.as_ref() {
            // Several connections of one batch can fail together: one outage step.
            Some(o) if now < o.retry_at => return,
            Some(o) => Outage {
                wait: (o.wait * 2).min(LONGEST_WAIT),
                failures: o.failures + 1,
                last: problem.clone(),
                ..o.clone()
            },
            None => Outage {
                since: now,
                retry_at: now,
                wait: FIRST_WAIT,
                failures: 1,
                last: problem.clone(),
            },
        };
        let next = Outage {
            retry_at: now + next.wait,
            ..next
        };
        let changed = outage.as_ref().is_none_or(|o| o.last != *problem);
        let kind = problem.kind.label();
        let what = if problem.kind.is_connection() {
            "SMTP server unreachable"
        } else {
            "the SMTP relay refuses drip"
        };
        if changed {
            tracing::error!(
                problem = kind,
                retry_in_s = next.wait.num_seconds(),
                "{what}: {problem}; holding the queue (no retry spent, no bounce counted)"
            );
        } else {
            tracing::warn!(
                problem = kind,
                failures = next.failures,
                down_for_s = (now - next.since).num_seconds(),
                retry_in_s = next.wait.num_seconds(),
                "{what}, still: {problem}"
            );
        }
        crate::metrics::set_relay_problem(Some(problem));
        *outage = Some(next);
    }

    /// What holds the queue now, if anything.
    pub fn problem(&self) -> Option<RelayProblem> {
        self.outage
            .lock()
            .expect("relay gate lock")
            .as_ref()
            .map(|o| o.last.clone())
    }

    /// A mail got through: the server is back.
    pub(crate) fn succeeded(&self, now: DateTime<Utc>) {
        let mut outage = self.outage.lock().expect("relay gate lock");
        if let Some(o) = outage.take() {
            tracing::info!(
                down_for_s = (now - o.since).num_seconds(),
                failures = o.failures,
                was = %o.last,
                "SMTP relay takes mail again; sending resumes"
            );
            crate::metrics::set_relay_problem(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailer::Problem;

    #[test]
    fn the_wait_doubles_up_to_the_longest_and_a_success_opens_the_gate() {
        let gate = RelayGate::default();
        let refused = RelayProblem::new(Problem::Unreachable, "cannot connect");
        let t0 = Utc::now();
        assert_eq!(gate.check(t0), Gate::Open);
        gate.failed(t0, &refused);
        assert_eq!(gate.check(t0), Gate::Closed(FIRST_WAIT));
        // A second connection of the same batch failing is the same outage step.
        gate.failed(t0 + Duration::seconds(1), &refused);
        assert_eq!(
            gate.check(t0 + Duration::seconds(1)),
            Gate::Closed(Duration::seconds(4))
        );
        let mut at = t0 + FIRST_WAIT;
        assert_eq!(gate.check(at), Gate::Probe);
        let mut waits = Vec::new();
        for _ in 0..8 {
            gate.failed(at, &refused);
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
