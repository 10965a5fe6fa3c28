//! Limits per client address: which addresses count as one ([`address_key`]), keyed token
//! buckets ([`AddressRate`], on `governor`'s keyed limiter) and the connection gate both
//! transports put in front of their listeners ([`ConnectionGate`]: a connection rate and a
//! cap on open connections per address).
//!
//! Used by the engine (`Limits::login_rate_per_address`, checked in `Engine::connect_from`
//! before any actor is asked) and by the transports (their `connect_rate_per_address` and
//! `max_connections_per_address`), so one script on one address is held to the same rules
//! on every listener. It only counts and decides: it does no I/O, knows no socket and
//! makes no chat decision.
//!
//! Memory stays bounded however many addresses come and go: a bucket that has refilled is
//! indistinguishable from a fresh one and is dropped (`governor`'s `retain_recent`) at most
//! [`PRUNE_INTERVAL`] after it refilled, by whichever check comes next; an address's
//! connection count is removed when its last connection ends.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::limits::Rate;
use crate::telemetry;

/// How often a keyed limiter drops the buckets that have refilled (and so hold nothing a
/// fresh one would not). A check does it when this long has passed since the last time.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// The key an address is counted under: an IPv4 address as it is (an IPv4-mapped IPv6
/// address is its IPv4 address), an IPv6 address by its /64 network. One IPv6 host
/// usually has a whole /64 to pick addresses from, so counting single IPv6 addresses
/// would give one machine 2^64 buckets.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
    }
}

/// Token buckets per address ([`address_key`]), all of one [`Rate`]: `burst` at once,
/// then `per_second`. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct AddressRate {
    limiter: RateLimiter<IpAddr, HashMapStateStore<IpAddr>, MonotonicClock>,
    clock: MonotonicClock,
    /// When the buckets were last pruned, in milliseconds since `started`.
    pruned_at_ms: AtomicU64,
    started: Instant,
}

impl fmt::Debug for AddressRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressRate")
            .field("addresses", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl AddressRate {
    /// Buckets of `rate` (checked by the config that holds it: a burst of at least 1 and
    /// a positive refill; anything else is clamped to the nearest working value here).
    pub fn new(rate: Rate) -> AddressRate {
        let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
        let per_second = if rate.per_second.is_finite() && rate.per_second > 0.0 {
            rate.per_second
        } else {
            f64::MIN_POSITIVE
        };
        // One token every 1/per_second, at least a nanosecond, at most a year.
        let period = Duration::try_from_secs_f64(1.0 / per_second)
            .unwrap_or(Duration::from_secs(365 * 86_400))
            .clamp(Duration::from_nanos(1), Duration::from_secs(365 * 86_400));
        let quota = Quota::with_period(period)
            .unwrap_or(Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let clock = MonotonicClock;
        AddressRate {
            limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()),
            clock,
            pruned_at_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Takes a token from the bucket of `ip`'s address, or says how long until one is
    /// there.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.prune_if_due();
        self.limiter
            .check_key(&address_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// How many addresses have a bucket now (the ones that have not refilled, and the
    /// refilled ones not pruned yet).
    pub fn addresses(&self) -> usize {
        self.limiter.len()
    }

    /// Drops every bucket that has refilled, and gives back the memory. [`check`] does it
    /// every [`PRUNE_INTERVAL`]; an embedder may call it on a timer of its own.
    ///
    /// [`check`]: AddressRate::check
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn prune_if_due(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.pruned_at_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= PRUNE_INTERVAL.as_millis() as u64;
        // One caller wins the exchange and prunes; the others go on.
        if due
            && self
                .pruned_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.prune();
        }
    }
}

/// Why the [`ConnectionGate`] refused a connection. `Display` is the sentence the client
/// is shown; [`GateRefusal::code`] the stable code next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GateRefusal {
    /// The address opened connections faster than `connect_rate_per_address` allows.
    TooFast {
        /// How long until the next attempt can succeed.
        retry_after: Duration,
    },
    /// The address has `max_connections_per_address` connections open already.
    TooMany {
        /// The cap.
        max: usize,
    },
}

impl GateRefusal {
    /// The stable code: `rate_limited` or `too_many_connections`.
    pub fn code(&self) -> &'static str {
        match self {
            GateRefusal::TooFast { .. } => "rate_limited",
            GateRefusal::TooMany { .. } => "too_many_connections",
        }
    }
}

impl fmt::Display for GateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateRefusal::TooFast { retry_after } => write!(
                f,
                "too many new connections from your address \
                 (connect_rate_per_address); try again in {} ms",
                retry_after.as_millis().max(1)
            ),
            GateRefusal::TooMany { max } => write!(
                f,
                "your address has {max} connections open, the most allowed \
                 (max_connections_per_address); close one first"
            ),
        }
    }
}

impl std::error::Error for GateRefusal {}

/// The per-address checks a transport makes on every new connection, before it costs a
/// task: at most `max_per_address` connections open at once per address, and new ones
/// at most at `rate`. One per listener.
#[derive(Debug)]
pub struct ConnectionGate {
    rate: AddressRate,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

impl ConnectionGate {
    /// A gate letting each address open connections at `rate`, at most `max_per_address`
    /// at once (both checked by the transport's config).
    pub fn new(rate: Rate, max_per_address: usize) -> ConnectionGate {
        ConnectionGate {
            rate: AddressRate::new(rate),
            open: Arc::default(),
            max_per_address: max_per_address.max(1),
        }
    }

    /// Admits a connection from `ip`: its place among its address's open connections,
    /// held until the returned slot is dropped. The cap is checked first, so a refused
    /// connection does not spend a token of the rate.
    pub fn admit(&self, ip: IpAddr) -> Result<AddressSlot, GateRefusal> {
        let key = address_key(ip);
        {
            let mut open = lock(&self.open);
            let count = open.entry(key).or_insert(0);
            if *count >= self.max_per_address {
                telemetry::rate_limited("max_connections_per_address");
                return Err(GateRefusal::TooMany {
                    max: self.max_per_address,
                });
            }
            *count += 1;
        }
        // From here the slot gives the place back, whatever happens.
        let slot = AddressSlot {
            open: self.open.clone(),
            key,
        };
        self.rate.check(key).map_err(|retry_after| {
            telemetry::rate_limited("connect_rate_per_address");
            GateRefusal::TooFast { retry_after }
        })?;
        Ok(slot)
    }

    /// Addresses with a connection open now.
    pub fn addresses_open(&self) -> usize {
        lock(&self.open).len()
    }

    /// The gate's token buckets (to prune them on a timer, or count them).
    pub fn rate(&self) -> &AddressRate {
        &self.rate
    }
}

/// One open connection of an address, counted by its [`ConnectionGate`] until dropped.
#[derive(Debug)]
#[must_use = "the connection is counted only while its slot is held"]
pub struct AddressSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
                // A burst of many addresses leaves a large table behind; give it back
                // once it is mostly empty.
                if open.capacity() > 64 && open.len() < open.capacity() / 4 {
                    open.shrink_to_fit();
                }
            }
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every update is
/// one counter).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_eq!(address_key(ip("2001:db8:1:2::1")), ip("2001:db8:1:2::"));
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn a_bucket_per_address_allows_its_burst_then_says_when() {
        let rate = AddressRate::new(Rate::new(3, 0.5));
        for _ in 0..3 {
            assert_eq!(rate.check(ip("192.0.2.1")), Ok(()));
        }
        let wait = rate.check(ip("192.0.2.1")).expect_err("past the burst");
        assert!(
            wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        // Another address has a bucket of its own; another host of the same /64 does not.
        assert_eq!(rate.check(ip("192.0.2.2")), Ok(()));
        for _ in 0..3 {
            assert_eq!(rate.check(ip("2001:db8::1")), Ok(()));
        }
        assert!(rate.check(ip("2001:db8::2")).is_err());
        assert_eq!(rate.addresses(), 3);
    }

    #[test]
    fn refilled_buckets_are_pruned_so_memory_follows_the_active_addresses() {
        let rate = AddressRate::new(Rate::new(2, 1000.0));
        for i in 0..200u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(rate.check(addr), Ok(()));
        }
        assert_eq!(rate.addresses(), 200);
        std::thread::sleep(Duration::from_millis(20));
        rate.prune();
        assert_eq!(rate.addresses(), 0);
    }

    #[test]
    fn the_gate_caps_open_connections_and_gives_places_back() {
        let gate = ConnectionGate::new(Rate::new(100, 100.0), 2);
        let a = gate.admit(ip("192.0.2.1")).expect("first");
        let _b = gate.admit(ip("192.0.2.1")).expect("second");
        let refused = gate.admit(ip("192.0.2.1")).expect_err("third");
        assert_eq!(refused, GateRefusal::TooMany { max: 2 });
        assert_eq!(refused.code(), "too_many_connections");
        assert!(
            refused.to_string().contains("2 connections open"),
            "{refused}"
        );
        // Others are not affected.
        let _c = gate.admit(ip("192.0.2.9")).expect("another address");
        drop(a);
        let _d = gate.admit(ip("192.0.2.1")).expect("a place was given back");
        assert_eq!(gate.addresses_open(), 2);
    }

    #[test]
    fn the_gate_limits_the_rate_and_a_refusal_keeps_no_place() {
        let gate = ConnectionGate::new(Rate::new(1, 0.001), 5);
        let first = gate.admit(ip("192.0.2.1")).expect("first");
        let refused = gate.admit(ip("192.0.2.1")).expect_err("too fast");
        assert!(
            matches!(refused, GateRefusal::TooFast { .. }),
            "{refused:?}"
        );
        assert_eq!(refused.code(), "rate_limited");
        assert!(refused.to_string().contains("try again in"), "{refused}");
        drop(first);
        assert_eq!(gate.addresses_open(), 0, "the refused one holds no place");
    }
}
