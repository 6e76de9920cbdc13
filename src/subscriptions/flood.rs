//! Holding back sign-up floods ("subscription bombing": one client making drip mail a
//! confirmation to thousands of addresses, which mailbox providers hold against the sender).
//!
//! Three checks, in this order, for a sign-up whose fields are valid:
//! - per client (`[public] signups_per_ip_per_hour`): [`SignupGuard::admit`], counted in this
//!   process's memory, by client address (an IPv6 client by its /64);
//! - the honeypot: a form field people never see; a sign-up that fills it is answered as a
//!   success and does nothing ([`SignupGuard::honeypot_hit`] counts it);
//! - for the whole instance (`[public] confirmations_per_hour`): the confirmation mails
//!   queued in the last hour, counted in the database inside the sign-up's own transaction
//!   (see `subscribe`), so it holds across every process.
//!
//! A refused sign-up writes nothing and sends nothing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::net::limit_key;

/// The window the limits count over.
pub const WINDOW_SECONDS: i64 = 3600;
/// Sign-ups are counted per minute: a client's memory is at most 60 counters, whatever the
/// limit. A minute counts until a whole hour has passed since its end, so the window is
/// never shorter than an hour.
const SLOT_SECONDS: i64 = 60;
/// Clients remembered at once. Past this, with every one of them still inside its hour, a
/// new client is refused (the safe side): that many different clients in an hour is a flood
/// spread over many addresses, which the instance-wide cap is there for.
const MAX_CLIENTS: usize = 65_536;
/// How long a refusal for a full table asks the client to wait.
const FULL_RETRY_SECONDS: i64 = 60;

/// The per-client limiter and the figures `/metrics` shows, one per process (in `App`).
#[derive(Debug)]
pub struct SignupGuard {
    per_hour: u32,
    clients: Mutex<Clients>,
    refused_per_client: AtomicU64,
    refused_instance: AtomicU64,
    honeypot: AtomicU64,
}

#[derive(Debug, Default)]
struct Clients {
    /// Per client key: (minute, sign-ups in it), oldest first.
    slots: HashMap<IpAddr, VecDeque<(i64, u32)>>,
    /// When the table was last swept of clients whose hour is over.
    swept_at: i64,
}

/// What the figures say, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignupFigures {
    pub refused_per_client: u64,
    pub refused_instance: u64,
    pub honeypot: u64,
}

/// Until when a minute slot counts.
fn slot_end(minute: i64) -> i64 {
    (minute + 1) * SLOT_SECONDS + WINDOW_SECONDS
}

impl SignupGuard {
    /// `per_hour`: `[public] signups_per_ip_per_hour`, 0 for no limit.
    pub fn new(per_hour: u32) -> SignupGuard {
        SignupGuard {
            per_hour,
            clients: Mutex::default(),
            refused_per_client: AtomicU64::new(0),
            refused_instance: AtomicU64::new(0),
            honeypot: AtomicU64::new(0),
        }
    }

    /// Counts a sign-up from `client` at `now` (Unix seconds), or refuses it with the seconds
    /// to wait. Checking and counting are one step, so concurrent requests cannot both take
    /// the last place.
    pub fn admit(&self, client: IpAddr, now: i64) -> Result<(), i64> {
        if self.per_hour == 0 {
            return Ok(());
        }
        let key = limit_key(client);
        let minute = now.div_euclid(SLOT_SECONDS);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if !clients.slots.contains_key(&key) && clients.slots.len() >= MAX_CLIENTS {
            if now - clients.swept_at >= SLOT_SECONDS {
                clients
                    .slots
                    .retain(|_, s| s.back().is_some_and(|(m, _)| slot_end(*m) > now));
                clients.swept_at = now;
            }
            if clients.slots.len() >= MAX_CLIENTS {
                drop(clients);
                tracing::warn!(
                    clients = MAX_CLIENTS,
                    "sign-ups from a new client refused: too many clients signed up within the hour"
                );
                return Err(self.refused(FULL_RETRY_SECONDS));
            }
        }
        let slots = clients.slots.entry(key).or_default();
        while slots.front().is_some_and(|(m, _)| slot_end(*m) <= now) {
            slots.pop_front();
        }
        let counted: u64 = slots.iter().map(|(_, n)| u64::from(*n)).sum();
        if counted >= u64::from(self.per_hour) {
            // Wait until enough of the oldest minutes have run out for one more.
            let mut left = counted;
            let mut until = now + 1;
            for (m, n) in slots.iter() {
                left -= u64::from(*n);
                until = slot_end(*m);
                if left < u64::from(self.per_hour) {
                    break;
                }
            }
            drop(clients);
            return Err(self.refused((until - now).max(1)));
        }
        match slots.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => slots.push_back((minute, 1)),
        }
        Ok(())
    }

    fn refused(&self, wait: i64) -> i64 {
        self.refused_per_client.fetch_add(1, Ordering::Relaxed);
        wait
    }

    /// A sign-up refused because the instance reached `confirmations_per_hour`.
    pub fn instance_refusal(&self) {
        self.refused_instance.fetch_add(1, Ordering::Relaxed);
    }

    /// A sign-up that filled the honeypot field.
    pub fn honeypot_hit(&self) {
        self.honeypot.fetch_add(1, Ordering::Relaxed);
    }

    pub fn figures(&self) -> SignupFigures {
        SignupFigures {
            refused_per_client: self.refused_per_client.load(Ordering::Relaxed),
            refused_instance: self.refused_instance.load(Ordering::Relaxed),
            honeypot: self.honeypot.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_hourly_sign_ups_then_waits_for_the_oldest_to_run_out() {
        let g = SignupGuard::new(3);
        let a = ip("192.0.2.1");
        let t0 = 1_000_040; // 20 s into a minute
        assert_eq!(g.admit(a, t0), Ok(()));
        assert_eq!(g.admit(a, t0 + 120), Ok(()));
        assert_eq!(g.admit(a, t0 + 130), Ok(()));
        // The first sign-up's minute runs out an hour after that minute ended.
        let first_out = (t0 / 60 + 1) * 60 + 3600;
        assert_eq!(g.admit(a, t0 + 200), Err(first_out - (t0 + 200)));
        assert!(first_out - t0 >= 3600, "never less than an hour");
        assert_eq!(g.admit(ip("192.0.2.2"), t0 + 200), Ok(()), "another client");
        assert_eq!(g.admit(a, first_out - 1), Err(1));
        assert_eq!(g.admit(a, first_out), Ok(()));
        assert!(g.admit(a, first_out + 1).is_err());
        assert_eq!(g.figures().refused_per_client, 3);
    }

    #[test]
    fn several_in_one_minute_wait_for_that_minute() {
        let g = SignupGuard::new(2);
        let a = ip("2001:db8:1:2::1");
        assert!(g.admit(a, 6000).is_ok());
        assert!(g.admit(ip("2001:db8:1:2:ffff::9"), 6001).is_ok());
        let wait = g.admit(ip("2001:db8:1:2::77"), 6002).unwrap_err();
        assert_eq!(6002 + wait, slot_end(100), "the /64 shares one count");
        assert!(
            g.admit(ip("2001:db8:1:3::1"), 6002).is_ok(),
            "the next /64 does not"
        );
    }

    #[test]
    fn zero_is_no_limit() {
        let g = SignupGuard::new(0);
        for i in 0..1000 {
            assert!(g.admit(ip("192.0.2.1"), i).is_ok());
        }
    }

    #[test]
    fn a_table_full_of_live_clients_refuses_new_ones_and_frees_up_after_the_hour() {
        let g = SignupGuard::new(5);
        for i in 0..MAX_CLIENTS as u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(g.admit(a, 0).is_ok());
        }
        assert_eq!(g.admit(ip("192.0.2.1"), 10), Err(FULL_RETRY_SECONDS));
        assert!(
            g.admit(ip("10.0.0.1"), 10).is_ok(),
            "a known client still counts"
        );
        assert!(g.admit(ip("192.0.2.1"), slot_end(0)).is_ok(), "swept");
    }
}
