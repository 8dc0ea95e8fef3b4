//! The semantics of every daemon route, as server 3c93ebaf1c has them.

use super::*;

impl State {
    // ----- dispatch (HTTP) -------------------------------------------------

    /// Runs a decoded call; `authorization` is the request's header value.
    pub(crate) fn apply(&mut self, call: &Call, caller: Caller<'_>) -> Result<Reply, Rejection> {
        if self.version.is_head() {
            return self.apply_head(call, caller);
        }
        let authorization = caller.authorization;
        Ok(match call {
            Call::Register(request) => Reply::Register(self.register(request)?),
            Call::Deregister { runtime_ids } => {
                self.deregister(runtime_ids)?;
                Reply::Ok
            }
            Call::SendHeartbeat { runtime_id } => Reply::Heartbeat(self.heartbeat(runtime_id)?),
            Call::ClaimTask { runtime_id } => Reply::Claim(self.claim(runtime_id)),
            Call::ListPendingTasks { runtime_id } => Reply::Records(self.pending(runtime_id)),
            Call::ReportUsage { runtime_id, entries } => {
                self.report_usage(runtime_id, entries);
                Reply::Ok
            }
            Call::ReportPingResult { runtime_id, ping_id, result } => {
                self.report_ping_result(runtime_id, ping_id, result);
                Reply::Ok
            }
            Call::GetTaskStatus { task_id } => Reply::Status(self.task_status(task_id)?),
            Call::StartTask { task_id } => Reply::Record(self.start(task_id)?),
            Call::ReportProgress { task_id, progress } => {
                self.report_progress(task_id, progress);
                Reply::Ok
            }
            Call::CompleteTask { task_id, completion } => Reply::Record(self.complete(task_id, completion)?),
            Call::FailTask { task_id, error } => Reply::Record(self.fail(task_id, error)?),
            Call::ReportTaskMessages { task_id, messages } => {
                self.report_messages(task_id, messages)?;
                Reply::Ok
            }
            Call::ListTaskMessages { task_id } => Reply::Messages(self.list_messages(task_id)),
            Call::ListWorkspaces => Reply::Workspaces(self.list_workspaces(authorization)?),
            Call::CreatePairingSession(request) => Reply::Pairing(self.create_pairing(request)?),
            Call::GetPairingSession { token } => Reply::Pairing(self.get_pairing(token)?),
            Call::ClaimPairingSession { token } => Reply::Pairing(self.claim_pairing(token)?),
            // HEAD 1cc46b2697 bodies of these routes: 3c93ebaf1c ignores the
            // fields (and the query) it does not know.
            Call::DeregisterWith(request) => {
                self.deregister(&request.runtime_ids)?;
                Reply::Ok
            }
            Call::SendHeartbeatWith(request) => Reply::Heartbeat(self.heartbeat(&request.runtime_id)?),
            Call::FailTaskWith { task_id, failure } => Reply::Record(self.fail(task_id, &failure.error)?),
            Call::ListTaskMessagesSince { task_id, .. } => Reply::Messages(self.list_messages(task_id)),
            // `Call` is non-exhaustive: a route added upstream and not yet
            // implemented here answers as an unknown route would.
            _ => return Err(ROUTE_NOT_FOUND),
        })
    }

    // ----- daemon routes ---------------------------------------------------

    pub(crate) fn register(&mut self, request: &RegisterRequest) -> Result<RegisterResponse, Rejection> {
        // The server trims every input string before it validates.
        let daemon_id = DaemonId::new(request.daemon_id.as_str().trim());
        let workspace_id = WorkspaceId::new(request.workspace_id.as_str().trim());
        let device_name = request.device_name.trim();
        if daemon_id.as_str().is_empty() {
            return Err(reject(400, "daemon_id is required"));
        }
        if workspace_id.as_str().is_empty() {
            return Err(reject(400, "workspace_id is required"));
        }
        if request.runtimes.is_empty() {
            return Err(reject(400, "at least one runtime is required"));
        }
        let workspace_id = canonical(&workspace_id);
        let repos = match self.workspace(&workspace_id) {
            Some(row) => row.workspace.repos.clone(),
            None => return Err(reject(404, "workspace not found")),
        };
        let runtimes = request
            .runtimes
            .iter()
            .map(|spec| {
                let spec = RuntimeSpec {
                    name: spec.name.trim().to_owned(),
                    provider: spec.provider.trim().to_owned(),
                    version: spec.version.trim().to_owned(),
                    status: spec.status.clone(),
                    ..Default::default()
                };
                let id = self.upsert_runtime(None, &workspace_id, Some(&daemon_id), &spec, device_name);
                self.runtimes.get(&id).map(RuntimeRow::to_runtime).unwrap_or_default()
            })
            .collect();
        let mut response = RegisterResponse::default();
        response.runtimes = runtimes;
        response.repos = repos;
        Ok(response)
    }

    /// Creates or updates the runtime of (workspace, daemon, provider), with
    /// the server's naming and status rules. Returns its ID.
    pub(super) fn upsert_runtime(
        &mut self,
        fixed_id: Option<RuntimeId>,
        workspace_id: &WorkspaceId,
        daemon_id: Option<&DaemonId>,
        spec: &RuntimeSpec,
        device_name: &str,
    ) -> RuntimeId {
        self.upsert_runtime_row(fixed_id, workspace_id, daemon_id, spec, device_name, None)
    }

    /// A runtime upserted by (workspace, daemon, provider), or (HEAD) by
    /// (workspace, daemon, profile) for an instance of a custom profile.
    pub(super) fn upsert_runtime_row(
        &mut self,
        fixed_id: Option<RuntimeId>,
        workspace_id: &WorkspaceId,
        daemon_id: Option<&DaemonId>,
        spec: &RuntimeSpec,
        device_name: &str,
        profile_id: Option<String>,
    ) -> RuntimeId {
        let provider = if spec.provider.is_empty() { "unknown".to_owned() } else { spec.provider.clone() };
        let name = match (spec.name.is_empty(), device_name.is_empty()) {
            (false, _) => spec.name.clone(),
            (true, true) => provider.clone(),
            (true, false) => format!("{provider} ({device_name})"),
        };
        let status = if spec.status == RuntimeStatus::Offline { RuntimeStatus::Offline } else { RuntimeStatus::Online };
        let mut metadata = Map::new();
        metadata.insert("version".to_owned(), Value::String(spec.version.clone()));
        let device_info = device_info(device_name, &spec.version);
        let now = self.now;
        let owner = daemon_id.map(|daemon| {
            (workspace_id.clone(), daemon.clone(), profile_id.clone().unwrap_or_else(|| provider.clone()))
        });
        let index = if profile_id.is_some() { &self.runtime_by_profile } else { &self.runtime_by_owner };
        let existing = owner.as_ref().and_then(|key| index.get(key)).cloned();
        if let Some(row) = existing.as_ref().and_then(|id| self.runtimes.get_mut(id)) {
            row.name = name;
            row.provider = provider;
            row.status = status;
            row.device_info = device_info;
            row.metadata = metadata;
            row.last_seen = Some(now);
            row.updated = now;
            return row.id.clone();
        }
        let id = fixed_id.unwrap_or_else(|| self.new_id().into());
        let row = RuntimeRow {
            id: id.clone(),
            workspace_id: workspace_id.clone(),
            daemon_id: daemon_id.cloned(),
            name,
            provider,
            status,
            device_info,
            metadata,
            last_seen: Some(now),
            created: now,
            updated: now,
            heartbeats: 0,
            pending_pings: VecDeque::new(),
            owner: None,
            profile_id: profile_id.clone(),
        };
        if let Some(key) = owner {
            let index = if profile_id.is_some() { &mut self.runtime_by_profile } else { &mut self.runtime_by_owner };
            index.insert(key, id.clone());
        }
        self.runtimes.insert(id.clone(), row);
        self.runtime_order.push(id.clone());
        id
    }

    pub(crate) fn deregister(&mut self, runtime_ids: &[RuntimeId]) -> Result<(), Rejection> {
        if runtime_ids.is_empty() {
            return Err(reject(400, "runtime_ids is required"));
        }
        let now = self.now;
        for id in runtime_ids {
            if let Some(row) = self.runtimes.get_mut(&canonical(id)) {
                row.status = RuntimeStatus::Offline;
                row.updated = now;
            }
        }
        Ok(())
    }

    pub(crate) fn heartbeat(&mut self, runtime_id: &RuntimeId) -> Result<HeartbeatResponse, Rejection> {
        let runtime_id = RuntimeId::new(runtime_id.as_str().trim());
        if runtime_id.as_str().is_empty() {
            return Err(reject(400, "runtime_id is required"));
        }
        let now = self.now;
        let Some(row) = self.runtimes.get_mut(&canonical(&runtime_id)) else {
            return Err(reject(500, "heartbeat failed"));
        };
        if row.status != RuntimeStatus::Online {
            row.status = RuntimeStatus::Online;
        }
        row.last_seen = Some(now);
        row.updated = now;
        row.heartbeats += 1;
        let pending_ping = row.pending_pings.pop_front();
        if let Some(ping) = pending_ping.as_ref().and_then(|id| self.pings.get_mut(id)) {
            ping.sent = true;
        }
        let mut response = HeartbeatResponse::default();
        response.status = "ok".to_owned();
        response.pending_ping = pending_ping.map(PendingPing::new);
        Ok(response)
    }

    /// The runtime's queued and dispatched tasks in claim order.
    pub(crate) fn pending(&self, runtime_id: &RuntimeId) -> Vec<TaskRecord> {
        self.queues
            .get(&canonical(runtime_id))
            .map(|queue| queue.values().filter_map(|id| self.tasks.get(id)).map(TaskRow::record_unjoined).collect())
            .unwrap_or_default()
    }

    pub(crate) fn report_usage(&mut self, runtime_id: &RuntimeId, entries: &[UsageEntry]) {
        // Rows of an unknown runtime break the foreign key and are dropped;
        // the server answers ok either way.
        let runtime_id = &canonical(runtime_id);
        if !self.runtimes.contains_key(runtime_id) {
            return;
        }
        for entry in entries.iter().filter(|e| is_valid_date(&e.date)) {
            let key = (runtime_id.clone(), entry.date.clone(), entry.provider.clone(), entry.model.clone());
            self.usage.insert(key, entry.clone());
        }
    }

    pub(crate) fn report_ping_result(&mut self, runtime_id: &RuntimeId, ping_id: &PingId, result: &PingResult) {
        let runtime_id = canonical(runtime_id);
        if let Some(ping) = self.pings.get_mut(ping_id).filter(|p| p.runtime_id == runtime_id) {
            ping.result = Some(result.clone());
        }
    }

    pub(crate) fn task_status(&self, task_id: &multica_api::TaskId) -> Result<TaskStatus, Rejection> {
        self.tasks.get(&canonical(task_id)).map(|t| t.status.clone()).ok_or(TASK_NOT_FOUND)
    }

    /// The server's `UPDATE … WHERE id = $1 AND status IN (…) RETURNING *`:
    /// a wrong state and an unknown ID both match no row.
    /// The answer is the updated row as that query returns it (no `workspace_id`).
    fn transition(
        &mut self,
        task_id: &multica_api::TaskId,
        from: &[TaskStatus],
        to: TaskStatus,
        no_rows: &'static str,
        apply: impl FnOnce(&mut TaskRow),
    ) -> Result<TaskRecord, Rejection> {
        let task_id = canonical(task_id);
        if !self.tasks.get(&task_id).is_some_and(|row| from.contains(&row.status)) {
            return Err(reject(400, no_rows));
        }
        self.set_task_status(&task_id, to);
        let row = self.tasks.get_mut(&task_id).ok_or(reject(400, no_rows))?;
        apply(row);
        Ok(row.record_unjoined())
    }

    pub(crate) fn start(&mut self, task_id: &multica_api::TaskId) -> Result<TaskRecord, Rejection> {
        self.transition(
            task_id,
            &[TaskStatus::Dispatched],
            TaskStatus::Running,
            "start task: no rows in result set",
            |_| {},
        )
    }

    pub(crate) fn complete(
        &mut self,
        task_id: &multica_api::TaskId,
        completion: &TaskCompletion,
    ) -> Result<TaskRecord, Rejection> {
        let record = self.transition(
            task_id,
            &[TaskStatus::Running],
            TaskStatus::Completed,
            "complete task: no rows in result set",
            |row| {
                // Every key present, as the server marshals its result struct.
                row.result = Some(json!({
                    "output": completion.output,
                    "pr_url": completion.pr_url,
                    "session_id": completion.session_id,
                    "work_dir": completion.work_dir,
                }));
                row.session_id = completion.session_id.clone();
                row.work_dir = completion.work_dir.clone();
            },
        )?;
        // The server resumes from the newest completed task that has a session.
        if !completion.session_id.is_empty() {
            self.last_sessions.insert(
                (record.agent_id.clone(), record.issue_id.clone()),
                (completion.session_id.clone(), completion.work_dir.clone()),
            );
        }
        Ok(record)
    }

    pub(crate) fn fail(&mut self, task_id: &multica_api::TaskId, error: &str) -> Result<TaskRecord, Rejection> {
        self.transition(
            task_id,
            &[TaskStatus::Dispatched, TaskStatus::Running],
            TaskStatus::Failed,
            "fail task: no rows in result set",
            |row| row.error = Some(error.to_owned()),
        )
    }

    pub(crate) fn report_progress(&mut self, task_id: &multica_api::TaskId, progress: &TaskProgress) {
        if let Some(row) = self.tasks.get_mut(&canonical(task_id)) {
            row.progress = Some(progress.clone());
        }
    }

    pub(crate) fn report_messages(
        &mut self,
        task_id: &multica_api::TaskId,
        messages: &[TaskMessage],
    ) -> Result<(), Rejection> {
        if messages.is_empty() {
            return Ok(());
        }
        let row = self.tasks.get_mut(&canonical(task_id)).ok_or(TASK_NOT_FOUND)?;
        // `seq` is a 32-bit column: a larger value is stored as its low 32 bits.
        row.messages.extend(messages.iter().map(|m| TaskMessage { seq: i64::from(m.seq as i32), ..m.clone() }));
        Ok(())
    }

    pub(crate) fn list_messages(&self, task_id: &multica_api::TaskId) -> Vec<StoredTaskMessage> {
        self.tasks
            .get(&canonical(task_id))
            .map(|row| {
                row.sorted_messages()
                    .into_iter()
                    .map(|message| StoredTaskMessage::new(row.id.clone(), message))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn list_workspaces(&self, authorization: Option<&str>) -> Result<Vec<Workspace>, Rejection> {
        let identity = self.authorize(authorization)?;
        Ok(self
            .workspaces
            .iter()
            .filter(|w| identity.may_access(&w.workspace.id))
            .map(|w| w.workspace.clone())
            .collect())
    }

    pub(crate) fn create_pairing(&mut self, request: &PairingRequest) -> Result<PairingSession, Rejection> {
        let daemon_id = request.daemon_id.as_str().trim();
        let device_name = request.device_name.trim();
        let runtime_name = request.runtime_name.trim();
        let runtime_type = request.runtime_type.trim();
        for (value, missing) in [
            (daemon_id, "daemon_id is required"),
            (device_name, "device_name is required"),
            (runtime_name, "runtime_name is required"),
            (runtime_type, "runtime_type is required"),
        ] {
            if value.is_empty() {
                return Err(reject(400, missing));
            }
        }
        let token = self.new_hex_id();
        let now = self.now;
        let expires = now.after(PAIRING_TTL);
        let mut session = PairingSession::default();
        session.token = token.clone();
        session.daemon_id = daemon_id.into();
        session.device_name = device_name.to_owned();
        session.runtime_name = runtime_name.to_owned();
        session.runtime_type = runtime_type.to_owned();
        session.runtime_version = request.runtime_version.trim().to_owned();
        session.status = PairingStatus::Pending;
        session.expires_at = expires.rfc3339();
        session.created_at = now.rfc3339();
        session.updated_at = now.rfc3339();
        session.link_url = Some(format!("{}/pair/local?token={token}", self.frontend_url.trim_end_matches('/')));
        self.pairings.insert(token.clone(), PairingRow { session: session.clone(), expires });
        self.pairing_order.push(token);
        Ok(session)
    }

    /// The session; a pending one past its expiry reads `expired` (an
    /// approved one stays approved, and claimable).
    pub(super) fn pairing_mut(&mut self, token: &str) -> Result<&mut PairingSession, Rejection> {
        let now = self.now;
        let row = self.pairings.get_mut(token).ok_or(reject(404, "pairing session not found"))?;
        if now > row.expires && row.session.status == PairingStatus::Pending {
            row.session.status = PairingStatus::Expired;
        }
        Ok(&mut row.session)
    }

    pub(crate) fn get_pairing(&mut self, token: &str) -> Result<PairingSession, Rejection> {
        self.pairing_mut(token).map(|s| s.clone())
    }

    /// Claims an approved session; claiming a claimed one answers it again.
    pub(crate) fn claim_pairing(&mut self, token: &str) -> Result<PairingSession, Rejection> {
        let now = self.now;
        let session = self.pairing_mut(token)?;
        match session.status {
            PairingStatus::Approved => {
                session.status = PairingStatus::Claimed;
                session.claimed_at = Some(now.rfc3339());
                session.updated_at = now.rfc3339();
                Ok(session.clone())
            }
            PairingStatus::Claimed => Ok(session.clone()),
            _ => Err(reject(400, "pairing session is not approved")),
        }
    }

    /// The user route `POST /api/daemon/pairing-sessions/{token}/approve`
    /// (after [`State::authorize`]): binds a pending session to a workspace.
    pub(crate) fn approve_pairing_route(
        &mut self,
        token: &str,
        workspace_id: &WorkspaceId,
    ) -> Result<PairingSession, Rejection> {
        let workspace_id = WorkspaceId::new(workspace_id.as_str().trim());
        if workspace_id.as_str().is_empty() {
            return Err(reject(400, "workspace_id is required"));
        }
        let workspace_id = canonical(&workspace_id);
        if self.workspace(&workspace_id).is_none() {
            return Err(reject(404, "workspace not found"));
        }
        let now = self.now;
        let session = self.pairing_mut(token)?;
        match session.status {
            PairingStatus::Pending => {
                session.status = PairingStatus::Approved;
                session.workspace_id = Some(workspace_id);
                session.approved_at = Some(now.rfc3339());
                session.updated_at = now.rfc3339();
                Ok(session.clone())
            }
            PairingStatus::Expired => Err(reject(400, "pairing session expired")),
            _ => Err(reject(400, "pairing session is not pending")),
        }
    }
}

/// A runtime's `device_info`: `"<device name> · <version>"`, or whichever
/// of the two is not empty.
fn device_info(device_name: &str, version: &str) -> String {
    match (device_name.is_empty(), version.is_empty()) {
        (false, false) => format!("{device_name} · {version}"),
        (false, true) => device_name.to_owned(),
        (true, _) => version.to_owned(),
    }
}
