//! The catalog's fault-injecting decorator: every batch is a write point of a shared
//! [`FaultPlan`] (see `coldkeep_store::faults`), so one plan numbers the catalog's writes and
//! the store's together, in the order an operation makes them.

use std::sync::Arc;

use coldkeep_store::faults::FaultPlan;

use crate::{Batch, KvError, KvPair, KvStore, Table};

/// A [`KvStore`] whose writes fail as its plan says. Reads pass through.
///
/// A batch is atomic and durable when `write` returns, so a crash before a batch loses it
/// whole and a crash after it keeps it whole ([`FaultMode`](coldkeep_store::faults::FaultMode)).
#[derive(Debug)]
pub struct FaultyKv {
    inner: Arc<dyn KvStore>,
    plan: Arc<FaultPlan>,
}

impl FaultyKv {
    pub fn new(inner: Arc<dyn KvStore>, plan: Arc<FaultPlan>) -> Self {
        Self { inner, plan }
    }
}

impl KvStore for FaultyKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.inner.get(table, key)
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
        self.inner.scan(table, prefix)
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        let tables: std::collections::BTreeSet<&str> =
            batch.ops().iter().map(|op| op.table().name()).collect();
        let what =
            || format!("catalog batch ({})", tables.into_iter().collect::<Vec<_>>().join(", "));
        let fail =
            |e: std::io::Error| KvError::Backend { op: "write a batch", message: e.to_string() };
        self.plan.guard(what, fail, || self.inner.write(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemKv;
    use coldkeep_store::faults::FaultMode;

    #[test]
    fn passes_the_conformance_suite_when_no_fault_is_planned() {
        crate::conformance::run_all(&|| {
            Box::new(FaultyKv::new(Arc::new(MemKv::new()), FaultPlan::count()))
        });
    }

    #[test]
    fn a_crash_keeps_or_loses_the_batch_whole() {
        for (mode, kept) in [
            (FaultMode::CrashBefore, false),
            (FaultMode::CrashAfter, true),
            (FaultMode::Fail, false),
        ] {
            let mem = Arc::new(MemKv::new());
            let kv = FaultyKv::new(mem.clone(), FaultPlan::at(1, mode));
            let mut batch = Batch::new();
            batch.put(Table::Meta, b"a".to_vec(), b"1".to_vec());
            batch.put(Table::Snapshots, b"b".to_vec(), b"2".to_vec());
            assert!(kv.write(batch).is_err(), "{mode:?}");
            assert_eq!(mem.get(Table::Meta, b"a").expect("get").is_some(), kept, "{mode:?}");
            assert_eq!(mem.get(Table::Snapshots, b"b").expect("get").is_some(), kept, "{mode:?}");
            let mut later = Batch::new();
            later.put(Table::Meta, b"c".to_vec(), b"3".to_vec());
            assert_eq!(kv.write(later).is_ok(), mode == FaultMode::Fail, "{mode:?}");
        }
    }
}
