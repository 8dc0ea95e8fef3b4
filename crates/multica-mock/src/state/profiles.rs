//! Custom runtime profiles (HEAD 1cc46b2697): a workspace's command a daemon
//! may find on its machine and register as a runtime of the profile's
//! protocol family, keyed by the profile instead of the provider; listed by
//! `GET /workspaces/{id}/runtime-profiles` (enabled ones only).

use serde_json::{json, Value};

use super::*;
use crate::seed::RuntimeProfileSeed;

/// One stored profile.
#[derive(Clone, Debug)]
pub(super) struct ProfileRow {
    pub(super) id: String,
    pub(super) workspace_id: WorkspaceId,
    pub(super) display_name: String,
    pub(super) protocol_family: String,
    pub(super) command_name: String,
    description: Option<String>,
    fixed_args: Vec<String>,
    pub(super) enabled: bool,
    created: Millis,
}

impl ProfileRow {
    /// The profile as the server answers it.
    pub(super) fn to_json(&self, created_by: &str) -> Value {
        json!({
            "id": self.id,
            "workspace_id": self.workspace_id,
            "display_name": self.display_name,
            "protocol_family": self.protocol_family,
            "command_name": self.command_name,
            "description": self.description,
            "fixed_args": self.fixed_args,
            "visibility": "workspace",
            "created_by": created_by,
            "enabled": self.enabled,
            "created_at": self.created.rfc3339(),
            "updated_at": self.created.rfc3339(),
        })
    }
}

impl State {
    /// Creates a profile as the user API does (`POST
    /// /api/workspaces/{id}/runtime-profiles`): display name, protocol family
    /// and command name required (trimmed), the display name unique in its
    /// workspace. Returns the profile as the server answers it.
    pub(crate) fn add_runtime_profile(&mut self, seed: &RuntimeProfileSeed) -> Result<Value, Error> {
        let workspace_id = canonical(&seed.workspace_id);
        if self.workspace(&workspace_id).is_none() {
            return Err(control_error(format!("unknown workspace \"{workspace_id}\"")));
        }
        let display_name = seed.display_name.trim().to_owned();
        let protocol_family = seed.protocol_family.trim().to_owned();
        let command_name = seed.command_name.trim().to_owned();
        for (field, value) in
            [("display_name", &display_name), ("protocol_family", &protocol_family), ("command_name", &command_name)]
        {
            if value.is_empty() {
                return Err(control_error(format!("{field} is required")));
            }
        }
        if self.profiles.iter().any(|p| p.workspace_id == workspace_id && p.display_name == display_name) {
            return Err(control_error("a runtime profile with this display_name already exists".to_owned()));
        }
        let id = match &seed.id {
            Some(id) => ids::parse_uuid(id).ok_or_else(|| control_error(format!("not a UUID: {id:?}")))?,
            None => self.new_id(),
        };
        if self.profiles.iter().any(|p| p.id == id) {
            return Err(control_error(format!("runtime profile \"{id}\" already exists")));
        }
        let row = ProfileRow {
            id,
            workspace_id,
            display_name,
            protocol_family,
            command_name,
            description: seed.description.clone().filter(|d| !d.trim().is_empty()),
            fixed_args: seed.fixed_args.clone(),
            enabled: seed.enabled.unwrap_or(true),
            created: self.now,
        };
        let answer = row.to_json(&self.user.0);
        let (workspace_id, id) = (row.workspace_id.clone(), row.id.clone());
        self.profiles.push(row);
        self.hub.runtime_profiles_changed(&workspace_id, &id);
        Ok(answer)
    }

    /// The enabled profiles of a workspace, as `GET
    /// /workspaces/{id}/runtime-profiles` lists them.
    pub(super) fn enabled_profiles(&self, workspace_id: &WorkspaceId) -> Vec<Map<String, Value>> {
        self.profiles
            .iter()
            .filter(|p| &p.workspace_id == workspace_id && p.enabled)
            .filter_map(|p| match p.to_json(&self.user.0) {
                Value::Object(map) => Some(map),
                _ => None,
            })
            .collect()
    }

    /// A profile of a workspace by (canonical) ID.
    pub(super) fn profile(&self, workspace_id: &WorkspaceId, id: &str) -> Option<&ProfileRow> {
        self.profiles.iter().find(|p| &p.workspace_id == workspace_id && p.id == id)
    }

    /// Deletes a runtime and, as the database's cascade does, its tasks.
    pub(crate) fn delete_runtime(&mut self, runtime_id: &RuntimeId) {
        let Some(row) = self.runtimes.remove(runtime_id) else { return };
        self.runtime_order.retain(|id| id != runtime_id);
        self.runtime_by_owner.retain(|_, id| id != runtime_id);
        self.runtime_by_profile.retain(|_, id| id != runtime_id);
        let doomed: Vec<TaskId> =
            self.tasks.values().filter(|t| t.runtime_id == row.id).map(|t| t.id.clone()).collect();
        for id in doomed {
            self.unindex_task(&id);
            self.tasks.remove(&id);
            self.task_order.retain(|t| t != &id);
        }
    }

    /// §6.1: merges the runtimes an older identity of this daemon
    /// (`legacy_daemon_ids`, compared ignoring case) registered for the same
    /// provider into `into`: their tasks move to it and they are deleted.
    pub(super) fn merge_legacy_runtimes(&mut self, into: &RuntimeId, provider: &str, legacy_ids: &[DaemonId]) {
        let Some(workspace_id) = self.runtimes.get(into).map(|r| r.workspace_id.clone()) else { return };
        for legacy in legacy_ids {
            let legacy = legacy.as_str().trim().to_lowercase();
            if legacy.is_empty() {
                continue;
            }
            let old: Vec<RuntimeId> = self
                .runtime_order
                .iter()
                .filter_map(|id| self.runtimes.get(id))
                .filter(|r| {
                    &r.id != into
                        && r.workspace_id == workspace_id
                        && r.provider == provider
                        && r.daemon_id.as_ref().is_some_and(|d| d.as_str().to_lowercase() == legacy)
                })
                .map(|r| r.id.clone())
                .collect();
            for old_id in old {
                let moving: Vec<TaskId> =
                    self.tasks.values().filter(|t| t.runtime_id == old_id).map(|t| t.id.clone()).collect();
                for id in moving {
                    self.unindex_task(&id);
                    if let Some(task) = self.tasks.get_mut(&id) {
                        task.runtime_id = into.clone();
                    }
                    self.index_task(&id);
                }
                self.delete_runtime(&old_id);
            }
        }
    }
}
