//! The audit log: who changed what protection of which snapshots, when, from what, to what.
//! Entries are written in the same catalog batch as the change they describe, so the log can
//! neither miss a change nor record one that did not happen.

use coldkeep_catalog::{Batch, Catalog, CatalogError, Counter};
use coldkeep_model::{AuditEntry, Principal};
use serde::Serialize;

use crate::{ProtectError, Protection};

impl Protection {
    /// Adds an audit entry to `batch`, timed by the trusted clock.
    pub fn stage_audit(
        &self,
        batch: &mut Batch,
        principal: &Principal,
        action: &str,
        target: &str,
        before: &impl Serialize,
        after: &impl Serialize,
    ) -> Result<(), CatalogError> {
        let entry = AuditEntry {
            seq: self.catalog.allocate(Counter::Audit)?,
            time_usecs: self.now()?,
            principal: principal.name.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            before: to_json(before),
            after: to_json(after),
        };
        Catalog::stage(batch, &entry);
        Ok(())
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>, ProtectError> {
        Ok(self.catalog.scan(&[])?)
    }
}

/// JSON text of a record (plain records always serialize; were one not to, the entry is still
/// written, saying so, rather than lost).
fn to_json(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("<unserializable: {e}>"))
}
