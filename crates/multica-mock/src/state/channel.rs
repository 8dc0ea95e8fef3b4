//! What the daemon WebSocket channel asks of the data (WS contract §1.5,
//! §3.2): the handshake's runtime checks, a heartbeat by frame, and the
//! rows the control routes remove to cause pushes (runtimes, workspaces,
//! custom runtime profiles).

use multica_api::HeartbeatRequest;

use super::*;

/// What a `daemon:heartbeat` frame gets.
#[derive(Debug)]
pub(crate) enum ChannelHeartbeat {
    /// The runtime row is gone: `status:"runtime_gone"`.
    Gone,
    /// No ack at all (workspace out of scope, any other refusal).
    Silent,
    /// The HTTP heartbeat's answer, for the runtime's canonical ID.
    Ack(RuntimeId, Box<HeartbeatResponse>),
}

impl State {
    /// Checks 6-10 of the handshake, per ID in query order, all or nothing:
    /// the distinct workspaces of the runtimes, first = primary.
    pub(crate) fn channel_scope(&self, ids: &[String], identity: &Identity) -> Result<Vec<WorkspaceId>, Rejection> {
        let mut workspaces: Vec<WorkspaceId> = Vec::new();
        for id in ids {
            let canonical = self.head_runtime(id, identity)?;
            let Some(row) = self.runtimes.get(&canonical) else { return Err(reject(404, "runtime not found")) };
            if let Identity::Daemon { daemon_id, .. } = identity {
                if row.daemon_id.as_ref().is_some_and(|own| own != daemon_id) {
                    return Err(reject(404, "runtime not found"));
                }
            }
            if !workspaces.contains(&row.workspace_id) {
                workspaces.push(row.workspace_id.clone());
            }
        }
        Ok(workspaces)
    }

    /// A heartbeat frame for `request.runtime_id` (already one of the
    /// connection's strings): the row is loaded, the workspace re-checked,
    /// then the HTTP heartbeat runs (liveness, pending requests).
    pub(crate) fn channel_heartbeat(
        &mut self,
        request: &HeartbeatRequest,
        identity: &Identity,
        caller: Caller<'_>,
    ) -> ChannelHeartbeat {
        let Some(id) = ids::parse_uuid(request.runtime_id.as_str().trim()).map(RuntimeId::new) else {
            return ChannelHeartbeat::Silent;
        };
        let Some(row) = self.runtimes.get(&id) else { return ChannelHeartbeat::Gone };
        if !identity.may_access(&row.workspace_id) {
            return ChannelHeartbeat::Silent;
        }
        let request = HeartbeatRequest { runtime_id: id.clone(), supports_batch_import: request.supports_batch_import };
        match self.apply_head_as(&Call::SendHeartbeatWith(request), identity, caller) {
            Ok(Reply::Heartbeat(answer)) => ChannelHeartbeat::Ack(id, Box::new(answer)),
            _ => ChannelHeartbeat::Silent,
        }
    }

    /// Deletes a runtime (as a user does in the UI): its tasks go with it, the
    /// next WebSocket heartbeat for it is answered `runtime_gone` and an
    /// HTTP one 404.
    pub(crate) fn remove_runtime(&mut self, runtime_id: &RuntimeId) -> Result<(), Error> {
        let id = canonical(runtime_id);
        if !self.runtimes.contains_key(&id) {
            return Err(control_error(format!("unknown runtime \"{id}\"")));
        }
        self.delete_runtime(&id);
        Ok(())
    }

    /// Deletes a workspace with its agents, runtimes and profiles; tells
    /// every member's channel connection (`workspaces_changed`).
    pub(crate) fn remove_workspace(&mut self, workspace_id: &WorkspaceId) -> Result<(), Error> {
        let id = canonical(workspace_id);
        if self.workspace(&id).is_none() {
            return Err(control_error(format!("unknown workspace \"{id}\"")));
        }
        // Its members hear of it (computed while it still exists).
        self.hub.workspaces_changed_for_members(&id);
        let runtimes: Vec<RuntimeId> =
            self.runtimes.values().filter(|r| r.workspace_id == id).map(|r| r.id.clone()).collect();
        for runtime in runtimes {
            self.remove_runtime(&runtime)?;
        }
        self.agents.retain(|a| a.workspace_id != id);
        self.profiles.retain(|p| p.workspace_id != id);
        self.workspaces.retain(|w| w.workspace.id != id);
        Ok(())
    }

    /// Deletes a custom runtime profile; pushes `runtime_profiles_changed`.
    pub(crate) fn remove_profile(&mut self, profile_id: &str) -> Result<(), Error> {
        let id = ids::parse_uuid(profile_id.trim()).unwrap_or_else(|| profile_id.to_owned());
        let Some(at) = self.profiles.iter().position(|p| p.id == id) else {
            return Err(control_error(format!("unknown runtime profile \"{profile_id}\"")));
        };
        let row = self.profiles.remove(at);
        self.hub.runtime_profiles_changed(&row.workspace_id, &row.id);
        Ok(())
    }
}
