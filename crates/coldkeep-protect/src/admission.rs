//! How many runs execute at once, and which goes next.
//!
//! Each backup already uses every core, so runs of different groups started together would only
//! fight over the disk and memory; instead at most `limit` runs execute at a time and the others
//! wait `OnHold` (the seed's "waiting for a resource"). A free slot goes to the waiting run of the
//! highest priority (the Commvault task's priority), then the oldest run. A paused run does not
//! wait for a slot — it could not use one — and a run canceled or timed out while waiting leaves
//! at once.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use coldkeep_model::{Priority, RunId};

use coldkeep_repo::control::{Control, Stop};

/// Runs executing at once unless [`Admission::set_limit`] says otherwise.
pub(crate) const DEFAULT_CONCURRENT_RUNS: usize = 2;

/// A waiting run's place: higher priority first, then lower run id (older).
type Place = (Reverse<Priority>, RunId);

#[derive(Debug)]
struct State {
    limit: usize,
    running: usize,
    waiting: BTreeSet<Place>,
}

/// The slots runs execute in.
#[derive(Debug)]
pub(crate) struct Admission {
    state: Mutex<State>,
    changed: Condvar,
}

/// A slot held by an executing run; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot<'a>(&'a Admission);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.lock().running -= 1;
        self.0.changed.notify_all();
    }
}

impl Admission {
    pub fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State { limit, running: 0, waiting: BTreeSet::new() }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes how many runs may execute at once (0 holds every new run until raised).
    /// Runs already executing go on.
    pub fn set_limit(&self, limit: usize) {
        self.lock().limit = limit;
        self.changed.notify_all();
    }

    /// Blocks until `run` may execute and returns its slot, or the reason its control stopped
    /// it while it waited.
    pub fn admit(
        &self,
        run: RunId,
        priority: Priority,
        control: &Control,
    ) -> Result<Slot<'_>, Stop> {
        let place = (Reverse(priority), run);
        let mut state = self.lock();
        loop {
            if let Some(stop) = control.stopped() {
                state.waiting.remove(&place);
                drop(state);
                self.changed.notify_all();
                return Err(stop);
            }
            if control.is_paused() {
                state.waiting.remove(&place);
            } else {
                state.waiting.insert(place);
                if state.running < state.limit && state.waiting.first() == Some(&place) {
                    state.waiting.remove(&place);
                    state.running += 1;
                    return Ok(Slot(self));
                }
            }
            // Woken when a slot frees or the limit changes; the timeout notices pause, resume,
            // cancel and the deadline, which are signaled on the run's own control.
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn slots_go_by_priority_then_age_and_a_paused_run_lets_others_pass() {
        let admission = Arc::new(Admission::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let paused = Arc::new(Control::new(true, None));
        let runs = [
            (1, Priority::Low, Arc::new(Control::default())),
            (2, Priority::High, Arc::clone(&paused)),
            (3, Priority::Medium, Arc::new(Control::default())),
            (4, Priority::High, Arc::new(Control::default())),
        ];
        let threads: Vec<_> = runs
            .into_iter()
            .map(|(id, priority, control)| {
                let (admission, order) = (Arc::clone(&admission), Arc::clone(&order));
                std::thread::spawn(move || {
                    let _slot = admission.admit(RunId::new(id), priority, &control).expect("admit");
                    order.lock().expect("order").push(id);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        assert!(order.lock().expect("order").is_empty(), "a limit of 0 holds everything");
        admission.set_limit(1);
        while order.lock().expect("order").len() < 3 {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(*order.lock().expect("order"), [4, 3, 1], "run 2 is paused");
        assert!(paused.resume());
        for t in threads {
            t.join().expect("join");
        }
        assert_eq!(*order.lock().expect("order"), [4, 3, 1, 2]);
        assert_eq!(admission.lock().running, 0, "every slot was given back");
    }

    #[test]
    fn a_run_canceled_while_waiting_leaves_at_once() {
        let admission = Admission::new(0);
        let control = Control::default();
        assert!(control.cancel());
        assert_eq!(
            admission.admit(RunId::new(1), Priority::Medium, &control).map(|_| ()),
            Err(Stop::Canceled)
        );
        assert!(admission.lock().waiting.is_empty());
    }
}
