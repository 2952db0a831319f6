//! Where the engine gets the time. Injected, so that schedules, retention and locks are tested
//! through weeks of simulated time in milliseconds.

use std::sync::atomic::{AtomicI64, Ordering};

use coldkeep_model::Usecs;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Usecs;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Usecs {
        Usecs(crate::repo::now_us())
    }
}

/// A clock that moves only when told to (tests, simulations). It may be set backwards, like a
/// system clock an attacker winds back; the engine's trusted time does not follow.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(t: Usecs) -> Self {
        Self(AtomicI64::new(t.0))
    }

    pub fn set(&self, t: Usecs) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    pub fn advance(&self, by_usecs: i64) {
        self.0.fetch_add(by_usecs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Usecs {
        Usecs(self.0.load(Ordering::SeqCst))
    }
}
