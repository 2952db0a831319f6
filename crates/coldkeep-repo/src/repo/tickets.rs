//! Backup tickets: which backups of this process are running, in start order.
//!
//! Garbage collection needs to know whether a backup that was already running when it condemned
//! a pack may still commit a snapshot referencing that pack (the backup loaded the chunk index
//! before the pack was unindexed). Every backup takes a ticket before it reads the index and
//! gives it back when it ends; a condemned pack records the last ticket issued, and is deleted
//! only once no backup with that ticket or an earlier one is running. The epoch tells a later
//! process that every backup of the condemning process is gone.

use std::collections::BTreeSet;
use std::sync::Mutex;

#[derive(Debug)]
pub(crate) struct BackupTickets {
    pub epoch: u64,
    state: Mutex<(u64, BTreeSet<u64>)>,
}

/// A running backup's ticket; given back on drop, however the backup ends.
pub(crate) struct Ticket<'t> {
    tickets: &'t BackupTickets,
    number: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.tickets.lock().1.remove(&self.number);
    }
}

impl BackupTickets {
    pub fn new() -> Self {
        let mut epoch = [0u8; 8];
        // A clock-derived fallback is unique enough should the OS refuse randomness.
        if getrandom::getrandom(&mut epoch).is_err() {
            epoch = (super::now_us() as u64).to_le_bytes();
        }
        Self { epoch: u64::from_le_bytes(epoch), state: Mutex::new((0, BTreeSet::new())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeSet<u64>)> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn take(&self) -> Ticket<'_> {
        let mut state = self.lock();
        state.0 += 1;
        let number = state.0;
        state.1.insert(number);
        Ticket { tickets: self, number }
    }

    /// The last ticket issued.
    pub fn issued(&self) -> u64 {
        self.lock().0
    }

    /// The oldest ticket still running.
    pub fn oldest_running(&self) -> Option<u64> {
        self.lock().1.first().copied()
    }
}
