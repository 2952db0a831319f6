//! Pause, resume, cancel and a time limit for a running backup, honoured at chunk boundaries.
//!
//! Workers call [`Control::checkpoint`] before storing each chunk and before each file. While the
//! control is paused the call blocks — the pipeline stops reading where it is and continues from
//! there on resume, nothing re-read. Once canceled (or past its deadline) the call fails, the
//! backup unwinds, the packs written so far are sealed and indexed (reusable by later backups,
//! reclaimable by garbage collection) and no snapshot is committed: nothing is half-committed.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

const RUNNING: u8 = 0;
const PAUSED: u8 = 1;
const CANCELED: u8 = 2;

/// Why a checkpoint stopped the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Canceled,
    /// The time limit passed.
    TimedOut,
}

/// The control handle of one running operation; share it with `Arc`.
#[derive(Debug)]
pub struct Control {
    state: AtomicU8,
    deadline: Option<Instant>,
    lock: Mutex<()>,
    changed: Condvar,
    /// Callers blocked in a paused checkpoint right now.
    held: AtomicUsize,
}

impl Default for Control {
    fn default() -> Self {
        Self::new(false, None)
    }
}

impl Control {
    /// A control, paused from the start if `paused`, stopping at `deadline` if given.
    pub fn new(paused: bool, deadline: Option<Instant>) -> Self {
        Self {
            state: AtomicU8::new(if paused { PAUSED } else { RUNNING }),
            deadline,
            lock: Mutex::new(()),
            changed: Condvar::new(),
            held: AtomicUsize::new(0),
        }
    }

    fn set(&self, from: &[u8], to: u8) -> bool {
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.state.load(Ordering::SeqCst);
        let ok = from.contains(&now);
        if ok {
            self.state.store(to, Ordering::SeqCst);
            self.changed.notify_all();
        }
        ok
    }

    /// Pauses at the next chunk boundary. False if already paused or canceled.
    pub fn pause(&self) -> bool {
        self.set(&[RUNNING], PAUSED)
    }

    /// Resumes a paused operation. False if it was not paused.
    pub fn resume(&self) -> bool {
        self.set(&[PAUSED], RUNNING)
    }

    /// Cancels, paused or not. False if already canceled.
    pub fn cancel(&self) -> bool {
        self.set(&[RUNNING, PAUSED], CANCELED)
    }

    pub fn is_paused(&self) -> bool {
        self.state.load(Ordering::SeqCst) == PAUSED
    }

    pub fn is_canceled(&self) -> bool {
        self.state.load(Ordering::SeqCst) == CANCELED
    }

    /// Why the operation must stop now, if it must (canceled, or past the deadline); never
    /// blocks.
    pub fn stopped(&self) -> Option<Stop> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(Stop::TimedOut);
        }
        self.is_canceled().then_some(Stop::Canceled)
    }

    /// Returns at once while running; blocks while paused; fails once canceled or past the
    /// deadline.
    pub fn checkpoint(&self) -> Result<(), Stop> {
        loop {
            if let Some(stop) = self.stopped() {
                return Err(stop);
            }
            if self.state.load(Ordering::Relaxed) == RUNNING {
                return Ok(());
            }
            let guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.state.load(Ordering::SeqCst) == PAUSED {
                // Wakes on resume or cancel; the timeout re-checks the deadline.
                let wait = std::time::Duration::from_millis(200);
                self.held.fetch_add(1, Ordering::SeqCst);
                drop(self.changed.wait_timeout(guard, wait));
                self.held.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// How many workers are held at a checkpoint of this paused operation right now: a
    /// progress display can say "paused" once all of them are, and a test knows the work has
    /// reached a chunk boundary instead of guessing with a sleep.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` workers are held, or `until` passes (false then).
    pub fn wait_held(&self, n: usize, until: Instant) -> bool {
        while self.held() < n {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_paused_checkpoint_waits_for_resume_or_cancel() {
        let control = Arc::new(Control::new(true, None));
        let worker = {
            let control = Arc::clone(&control);
            std::thread::spawn(move || control.checkpoint())
        };
        assert!(control.wait_held(1, Instant::now() + Duration::from_mins(1)));
        assert!(!worker.is_finished(), "blocked while paused");
        assert!(control.resume());
        assert_eq!(worker.join().expect("join"), Ok(()));
        assert!(control.pause());
        assert!(!control.pause(), "already paused");
        let worker = {
            let control = Arc::clone(&control);
            std::thread::spawn(move || control.checkpoint())
        };
        assert!(control.cancel());
        assert_eq!(worker.join().expect("join"), Err(Stop::Canceled));
        assert!(!control.resume() && !control.cancel());
    }

    #[test]
    fn the_deadline_stops_even_a_paused_operation() {
        let control = Control::new(true, Some(Instant::now() + Duration::from_millis(30)));
        assert_eq!(control.checkpoint(), Err(Stop::TimedOut));
    }
}
