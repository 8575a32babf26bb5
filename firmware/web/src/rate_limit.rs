//! Attempt limits for everything that checks a secret (login, claim with
//! the pairing code, giving the seed words back): token buckets per client
//! IP and one for the whole box, so that one guesser is slowed at once and
//! many guessers together are slowed too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One bucket's shape: `burst` attempts at once, then one more every `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Attempts allowed back to back.
    pub burst: u32,
    /// Time for one attempt to come back.
    pub refill: Duration,
}

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client IP address.
    pub per_ip: Bucket,
    /// For all clients together.
    pub global: Bucket,
}

impl Default for RateLimits {
    /// 5 tries at once then one every 12 s per address (5 a minute); 30 at
    /// once then one every 2 s for the box. Against a 40-bit pairing code or
    /// a password that is hopeless for a guesser, and a person who mistypes
    /// twice never notices.
    fn default() -> Self {
        RateLimits {
            per_ip: Bucket { burst: 5, refill: Duration::from_secs(12) },
            global: Bucket { burst: 30, refill: Duration::from_secs(2) },
        }
    }
}

/// Most addresses tracked; past it the fullest buckets are forgotten first.
const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct State {
    tokens: f64,
    at: Instant,
}

impl State {
    fn full(bucket: Bucket, now: Instant) -> State {
        State { tokens: f64::from(bucket.burst), at: now }
    }

    fn refill(&mut self, bucket: Bucket, now: Instant) {
        let secs = bucket.refill.as_secs_f64();
        let gained = if secs > 0.0 { now.saturating_duration_since(self.at).as_secs_f64() / secs } else { f64::MAX };
        self.tokens = (self.tokens + gained).min(f64::from(bucket.burst));
        self.at = now;
    }

    /// Time until one token is back.
    fn wait(&self, bucket: Bucket) -> Duration {
        bucket.refill.mul_f64((1.0 - self.tokens).clamp(0.0, 1.0))
    }
}

/// Attempt limiter.
#[derive(Debug)]
pub struct Limiter {
    limits: RateLimits,
    global: State,
    per_ip: HashMap<IpAddr, State>,
}

impl Limiter {
    /// All buckets full.
    pub fn new(limits: RateLimits, now: Instant) -> Limiter {
        Limiter { limits, global: State::full(limits.global, now), per_ip: HashMap::new() }
    }

    /// Takes one attempt for `ip` (unknown for clients whose address the
    /// server does not see); `Err(retry_after)` when it must wait.
    pub fn attempt(&mut self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let limits = self.limits;
        self.global.refill(limits.global, now);
        if let Some(ip) = ip {
            if !self.per_ip.contains_key(&ip) && self.per_ip.len() >= MAX_TRACKED {
                self.forget_fullest(now);
            }
            let st = self.per_ip.entry(ip).or_insert_with(|| State::full(limits.per_ip, now));
            st.refill(limits.per_ip, now);
            if st.tokens < 1.0 {
                return Err(st.wait(limits.per_ip).max(Duration::from_secs(1)));
            }
        }
        if self.global.tokens < 1.0 {
            return Err(self.global.wait(limits.global).max(Duration::from_secs(1)));
        }
        self.global.tokens -= 1.0;
        if let Some(st) = ip.and_then(|ip| self.per_ip.get_mut(&ip)) {
            st.tokens -= 1.0;
        }
        Ok(())
    }

    /// Gives back the attempt `ip` took, after it succeeded: only failures
    /// should count against a person, but every attempt must take a token
    /// first, or many guesses sent at once would all pass before any failed.
    pub fn refund(&mut self, ip: Option<IpAddr>, now: Instant) {
        let limits = self.limits;
        self.global.refill(limits.global, now);
        self.global.tokens = (self.global.tokens + 1.0).min(f64::from(limits.global.burst));
        if let Some(st) = ip.and_then(|ip| self.per_ip.get_mut(&ip)) {
            st.refill(limits.per_ip, now);
            st.tokens = (st.tokens + 1.0).min(f64::from(limits.per_ip.burst));
        }
    }

    fn forget_fullest(&mut self, now: Instant) {
        let limits = self.limits;
        for st in self.per_ip.values_mut() {
            st.refill(limits.per_ip, now);
        }
        let full = f64::from(limits.per_ip.burst);
        self.per_ip.retain(|_, st| st.tokens < full);
        if self.per_ip.len() >= MAX_TRACKED {
            // Everyone is mid-burst: forget the one closest to full.
            let best = self.per_ip.iter().max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens)).map(|(ip, _)| *ip);
            if let Some(ip) = best {
                self.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn limits(ip_burst: u32, global_burst: u32) -> RateLimits {
        RateLimits {
            per_ip: Bucket { burst: ip_burst, refill: Duration::from_secs(10) },
            global: Bucket { burst: global_burst, refill: Duration::from_secs(4) },
        }
    }

    #[test]
    fn one_address_gets_its_burst_then_waits_for_the_refill() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(3, 100), t0);
        for _ in 0..3 {
            l.attempt(Some(A), t0).unwrap();
        }
        assert_eq!(l.attempt(Some(A), t0), Err(Duration::from_secs(10)));
        // Another address is not punished for A's guesses.
        l.attempt(Some(B), t0).unwrap();
        assert_eq!(l.attempt(Some(A), t0 + Duration::from_secs(4)), Err(Duration::from_secs(6)));
        l.attempt(Some(A), t0 + Duration::from_secs(10)).unwrap();
        assert!(l.attempt(Some(A), t0 + Duration::from_secs(10)).is_err());
    }

    #[test]
    fn many_addresses_together_hit_the_global_limit() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(100, 5), t0);
        for i in 0..5u8 {
            l.attempt(Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i))), t0).unwrap();
        }
        assert_eq!(l.attempt(Some(B), t0), Err(Duration::from_secs(4)));
        assert!(l.attempt(None, t0).is_err());
        l.attempt(Some(B), t0 + Duration::from_secs(4)).unwrap();
    }

    #[test]
    fn a_successful_attempt_is_given_back_but_never_beyond_the_burst() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(2, 3), t0);
        for _ in 0..10 {
            l.attempt(Some(A), t0).unwrap();
            l.refund(Some(A), t0);
        }
        l.refund(Some(A), t0);
        l.refund(Some(B), t0);
        l.attempt(Some(A), t0).unwrap();
        l.attempt(Some(A), t0).unwrap();
        assert!(l.attempt(Some(A), t0).is_err(), "refunds must not raise the burst");
        l.attempt(Some(B), t0).unwrap();
        assert!(l.attempt(Some(B), t0).is_err(), "global bucket: 3");
    }

    #[test]
    fn a_refused_attempt_costs_nothing_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(1, 1_000_000), t0);
        l.attempt(Some(A), t0).unwrap();
        for _ in 0..10 {
            assert!(l.attempt(Some(A), t0).is_err());
        }
        l.attempt(Some(A), t0 + Duration::from_secs(10)).unwrap();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            l.attempt(Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))), t0).unwrap();
        }
        assert!(l.per_ip.len() <= MAX_TRACKED);
    }
}
