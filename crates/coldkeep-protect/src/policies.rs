//! Protection policies CRUD (the seed's `/data-protect/policies`).

use coldkeep_catalog::Counter;
use coldkeep_model::{Policy, PolicyId, PolicySpec, ProtectionGroup, Usecs};

use crate::{check_fresh, ProtectError, Protection};

/// The seed's `GET /policies` filters; empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFilter {
    pub ids: Vec<PolicyId>,
    pub names: Vec<String>,
}

impl Protection {
    pub fn create_policy(&self, spec: PolicySpec) -> Result<Policy, ProtectError> {
        spec.validate()?;
        let id = PolicyId::new(self.catalog.allocate(Counter::Policy)?);
        let policy = Policy { id, spec, last_modification_time_usecs: self.now()? };
        self.catalog.put(&policy)?;
        Ok(policy)
    }

    pub fn policy(&self, id: PolicyId) -> Result<Policy, ProtectError> {
        self.catalog.get(&id.key())?.ok_or(ProtectError::PolicyNotFound(id))
    }

    /// Replaces a policy's specification. With `if_last_modified`, refuses the update unless the
    /// policy is still as the caller last read it.
    pub fn update_policy(
        &self,
        id: PolicyId,
        spec: PolicySpec,
        if_last_modified: Option<Usecs>,
    ) -> Result<Policy, ProtectError> {
        let _edit = self.edit();
        let current = self.policy(id)?;
        check_fresh("policy", id.get(), if_last_modified, current.last_modification_time_usecs)?;
        spec.validate()?;
        let last_modification_time_usecs =
            self.modification_time(current.last_modification_time_usecs)?;
        let policy = Policy { id, spec, last_modification_time_usecs };
        self.catalog.put(&policy)?;
        Ok(policy)
    }

    /// Deletes a policy that no protection group uses.
    pub fn delete_policy(&self, id: PolicyId) -> Result<(), ProtectError> {
        let _edit = self.edit();
        let policy = self.policy(id)?;
        let users: Vec<_> = self
            .catalog
            .scan::<ProtectionGroup>(&[])?
            .into_iter()
            .filter(|g| g.policy == id && !g.is_deleted)
            .map(|g| g.id)
            .collect();
        if !users.is_empty() {
            return Err(ProtectError::PolicyInUse { policy: id, groups: users });
        }
        let mut batch = coldkeep_catalog::Batch::new();
        coldkeep_catalog::Catalog::stage_delete(&mut batch, &policy);
        Ok(self.catalog.write(batch)?)
    }

    pub fn policies(&self, filter: &PolicyFilter) -> Result<Vec<Policy>, ProtectError> {
        Ok(self
            .catalog
            .scan::<Policy>(&[])?
            .into_iter()
            .filter(|p| filter.ids.is_empty() || filter.ids.contains(&p.id))
            .filter(|p| filter.names.is_empty() || filter.names.contains(&p.spec.name))
            .collect())
    }
}
