//! Where the engine gets the time. Injected, so that schedules, retention and locks are tested
//! through weeks of simulated time in milliseconds.
//!
//! A clock gives two readings: the wall clock, which anyone with the right (or a bad RTC, an
//! NTP step, `faketime`) can set to anything, and real elapsed time since the machine booted,
//! which nobody sets. The engine stamps records with the first and judges retention and locks
//! by what the second says has passed (`coldkeep_retention::TrustedClock`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use coldkeep_model::{RealTime, Usecs};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The wall clock.
    fn now(&self) -> Usecs;
    /// Real elapsed time since an origin, if this clock can tell (see [`RealTime`]).
    fn real_time(&self) -> Option<RealTime>;
}

/// The system clock: `CLOCK_REALTIME` for the wall, and the kernel's boot id with
/// `/proc/uptime` for real time. Those two are read as files, not through `clock_gettime`,
/// so a process run under `faketime` (which intercepts the library calls for every clock) still
/// reads the real ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Usecs {
        Usecs(coldkeep_repo::repo::now_us())
    }

    fn real_time(&self) -> Option<RealTime> {
        static BOOT: OnceLock<Option<u128>> = OnceLock::new();
        let origin = (*BOOT.get_or_init(|| {
            let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            u128::from_str_radix(&id.trim().replace('-', ""), 16).ok()
        }))?;
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        Some(RealTime { origin, elapsed: Usecs(parse_uptime(&uptime)?) })
    }
}

/// `/proc/uptime`'s first field ("12345.67") as µs.
fn parse_uptime(text: &str) -> Option<i64> {
    let (secs, frac) = text.split_whitespace().next()?.split_once('.')?;
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    secs.parse::<i64>().ok()?.checked_mul(1_000_000)?.checked_add(frac.parse().ok()?)
}

/// A clock that moves only when told to (tests, simulations). [`ManualClock::advance`] is real
/// time passing (the wall clock and real time move together); [`ManualClock::set`] sets the
/// wall clock alone, backwards or forwards, as a bad RTC or an attacker would, and the
/// engine's retention time does not follow it.
#[derive(Debug, Default)]
pub struct ManualClock {
    wall: AtomicI64,
    real: AtomicI64,
}

/// The origin of a [`ManualClock`]'s real time (never a real boot id's).
const MANUAL_ORIGIN: u128 = 0x6d61_6e75_616c;

impl ManualClock {
    pub fn new(t: Usecs) -> Self {
        Self { wall: AtomicI64::new(t.0), real: AtomicI64::new(0) }
    }

    /// Sets the wall clock; no real time passes.
    pub fn set(&self, t: Usecs) {
        self.wall.store(t.0, Ordering::SeqCst);
    }

    /// Real time passes: the wall clock and real time both move on by `by_usecs`.
    pub fn advance(&self, by_usecs: i64) {
        self.real.fetch_add(by_usecs, Ordering::SeqCst);
        self.wall.fetch_add(by_usecs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Usecs {
        Usecs(self.wall.load(Ordering::SeqCst))
    }

    fn real_time(&self) -> Option<RealTime> {
        Some(RealTime { origin: MANUAL_ORIGIN, elapsed: Usecs(self.real.load(Ordering::SeqCst)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_parses_and_the_system_has_real_time() {
        assert_eq!(parse_uptime("12345.67 999.00\n"), Some(12_345_670_000));
        assert_eq!(parse_uptime("garbage"), None);
        let a = SystemClock.real_time().expect("Linux has /proc/uptime and a boot id");
        let b = SystemClock.real_time().expect("again");
        assert_eq!(a.origin, b.origin);
        assert!(b.elapsed >= a.elapsed);
    }
}
