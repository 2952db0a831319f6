//! Protection groups CRUD (the seed's `/data-protect/protection-groups`).

use std::collections::HashSet;

use coldkeep_catalog::{Batch, Catalog, Counter};
use coldkeep_model::{
    GroupId, GroupSpec, ObjectId, ObjectSpec, PolicyId, Principal, ProtectedObject,
    ProtectionGroup, Run, RunUpdate, Usecs,
};
use coldkeep_retention::apply_update;

use crate::{check_fresh, ProtectError, Protection};

/// The seed's `GET /protection-groups` filters; `None` and empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    pub ids: Vec<GroupId>,
    pub names: Vec<String>,
    pub policy_ids: Vec<PolicyId>,
    pub is_paused: Option<bool>,
    pub is_active: Option<bool>,
    /// `Some(true)`: only groups deleted with snapshots kept; by default they are left out.
    pub is_deleted: Option<bool>,
    /// Fill [`GroupInfo::last_run`].
    pub include_last_run_info: bool,
}

/// A group as listed: the record, and its latest run when asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub group: ProtectionGroup,
    pub last_run: Option<Run>,
}

fn validate(spec: &GroupSpec) -> Result<(), ProtectError> {
    let invalid = |why: String| Err(ProtectError::InvalidGroup(why));
    if spec.name.trim().is_empty() {
        return invalid("the name is empty".into());
    }
    if spec.objects.is_empty() {
        return invalid("no object to protect".into());
    }
    let mut seen = HashSet::new();
    for o in &spec.objects {
        if !o.path().is_absolute() {
            return invalid(format!("object path {} is not absolute", o.path().display()));
        }
        if !seen.insert((o.kind, &o.path)) {
            return invalid(format!("object {} is listed twice", o.path().display()));
        }
    }
    Ok(())
}

impl Protection {
    /// Gives each object its id: the id it had in `previous` (same kind and path), or a new one.
    fn assign_object_ids(
        &self,
        objects: Vec<ObjectSpec>,
        previous: &[ProtectedObject],
    ) -> Result<Vec<ProtectedObject>, ProtectError> {
        objects
            .into_iter()
            .map(|spec| {
                let kept =
                    previous.iter().find(|p| p.spec.kind == spec.kind && p.spec.path == spec.path);
                let id = match kept {
                    Some(p) => p.id,
                    None => ObjectId::new(self.catalog.allocate(Counter::Object)?),
                };
                Ok(ProtectedObject { id, spec })
            })
            .collect()
    }

    fn record(
        id: GroupId,
        spec: GroupSpec,
        objects: Vec<ProtectedObject>,
        creation_time_usecs: Usecs,
        last_modification_time_usecs: Usecs,
    ) -> ProtectionGroup {
        ProtectionGroup {
            id,
            name: spec.name,
            policy: spec.policy,
            objects,
            description: spec.description,
            priority: spec.priority,
            start_time: spec.start_time,
            is_paused: spec.is_paused,
            is_active: spec.is_active,
            abort_in_blackouts: spec.abort_in_blackouts,
            creation_time_usecs,
            last_modification_time_usecs,
            is_deleted: false,
        }
    }

    pub fn create_group(&self, spec: GroupSpec) -> Result<ProtectionGroup, ProtectError> {
        validate(&spec)?;
        let _edit = self.edit();
        self.policy(spec.policy)?;
        let id = GroupId::new(self.catalog.allocate(Counter::Group)?);
        let objects = self.assign_object_ids(spec.objects.clone(), &[])?;
        let now = self.now()?;
        let group = Self::record(id, spec, objects, now, now);
        self.catalog.put(&group)?;
        Ok(group)
    }

    /// A group, deleted ones (kept for their snapshots) included.
    pub fn group(&self, id: GroupId) -> Result<ProtectionGroup, ProtectError> {
        self.catalog.get(&id.key())?.ok_or(ProtectError::GroupNotFound(id))
    }

    /// A group that is not deleted.
    pub fn live_group(&self, id: GroupId) -> Result<ProtectionGroup, ProtectError> {
        Some(self.group(id)?).filter(|g| !g.is_deleted).ok_or(ProtectError::GroupNotFound(id))
    }

    /// Replaces a group's specification; objects that stay (same kind and path) keep their ids
    /// and so their snapshot history. With `if_last_modified`, refuses a stale update.
    pub fn update_group(
        &self,
        id: GroupId,
        spec: GroupSpec,
        if_last_modified: Option<Usecs>,
    ) -> Result<ProtectionGroup, ProtectError> {
        validate(&spec)?;
        let _edit = self.edit();
        let current = self.live_group(id)?;
        check_fresh(
            "protection group",
            id.get(),
            if_last_modified,
            current.last_modification_time_usecs,
        )?;
        self.policy(spec.policy)?;
        let objects = self.assign_object_ids(spec.objects.clone(), &current.objects)?;
        let modified = self.modification_time(current.last_modification_time_usecs)?;
        let group = Self::record(id, spec, objects, current.creation_time_usecs, modified);
        self.catalog.put(&group)?;
        Ok(group)
    }

    /// Deletes a group. Its schedule stops at once. Without `delete_snapshots` the group stays
    /// listed as deleted (`is_deleted`) for the snapshots it keeps; with it, the snapshots of every
    /// run go too — unless any of them is held or locked, in which case nothing is changed.
    pub fn delete_group(
        &self,
        id: GroupId,
        delete_snapshots: bool,
        principal: &Principal,
    ) -> Result<(), ProtectError> {
        let _edit = self.edit();
        let mut group = self.live_group(id)?;
        self.ensure_no_run_in_progress(id)?;
        let mut batch = Batch::new();
        Catalog::stage_forget_schedule(&mut batch, id);
        if delete_snapshots {
            let now = self.retention_now()?;
            let runs = self.catalog.scan::<Run>(&id.key())?;
            // Every run's snapshots must be deletable before any is deleted.
            let delete = RunUpdate { delete_snapshots: true, ..RunUpdate::default() };
            for run in &runs {
                apply_update(run.retention, &delete, principal, now)?;
            }
            for run in &runs {
                let target = format!("group {id} run {}", run.id);
                self.stage_audit(&mut batch, principal, "delete_group", &target, run, &"deleted")?;
                for snapshot in run.objects.iter().filter_map(|o| o.snapshot) {
                    Catalog::stage_delete_snapshot(&mut batch, snapshot);
                }
                Catalog::stage_delete(&mut batch, run);
            }
            Catalog::stage_delete(&mut batch, &group);
        } else {
            group.is_deleted = true;
            group.last_modification_time_usecs =
                self.modification_time(group.last_modification_time_usecs)?;
            Catalog::stage(&mut batch, &group);
        }
        Ok(self.catalog.write(batch)?)
    }

    pub fn groups(&self, filter: &GroupFilter) -> Result<Vec<GroupInfo>, ProtectError> {
        let groups = self.catalog.scan::<ProtectionGroup>(&[])?.into_iter().filter(|g| {
            (filter.ids.is_empty() || filter.ids.contains(&g.id))
                && (filter.names.is_empty() || filter.names.contains(&g.name))
                && (filter.policy_ids.is_empty() || filter.policy_ids.contains(&g.policy))
                && filter.is_paused.is_none_or(|p| p == g.is_paused)
                && filter.is_active.is_none_or(|a| a == g.is_active)
                && filter.is_deleted.unwrap_or(false) == g.is_deleted
        });
        groups
            .map(|group| {
                let last_run = if filter.include_last_run_info {
                    self.catalog.scan::<Run>(&group.id.key())?.pop()
                } else {
                    None
                };
                Ok(GroupInfo { group, last_run })
            })
            .collect()
    }
}
