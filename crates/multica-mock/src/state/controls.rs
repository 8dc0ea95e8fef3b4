//! Test controls: seeding data, cancelling, pings, and inspecting state.

use super::*;
use crate::version::ServerVersion;

impl State {
    // ----- controls --------------------------------------------------------

    pub(super) fn workspace(&self, id: &WorkspaceId) -> Option<&WorkspaceRow> {
        self.workspaces.iter().find(|w| &w.workspace.id == id)
    }

    pub(super) fn require_workspace(&self, id: &WorkspaceId) -> Result<(), Error> {
        match self.workspace(id) {
            Some(_) => Ok(()),
            None => Err(control_error(format!("unknown workspace \"{id}\""))),
        }
    }

    pub(crate) fn seed(&mut self, seed: &Seed) -> Result<(), Error> {
        if let Some(user) = &seed.user {
            self.user = (canonical(&user.id), user.name.clone());
        }
        for workspace in &seed.workspaces {
            self.add_workspace(workspace)?;
        }
        for profile in &seed.runtime_profiles {
            self.add_runtime_profile(profile)?;
        }
        for agent in &seed.agents {
            self.add_agent(agent)?;
        }
        for runtime in &seed.runtimes {
            self.add_runtime(runtime)?;
        }
        // Issues before tasks, so that queued tasks number only the issues
        // the seed leaves unnumbered.
        for issue in &seed.issues {
            self.add_issue(issue)?;
        }
        for task in &seed.tasks {
            self.add_task(task)?;
        }
        Ok(())
    }

    pub(crate) fn add_workspace(&mut self, seed: &WorkspaceSeed) -> Result<WorkspaceId, Error> {
        let id = match &seed.id {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty workspace id".into())),
            Some(id) if self.workspace(id).is_some() => {
                return Err(control_error(format!("workspace \"{id}\" already exists")))
            }
            Some(id) => canonical(id),
            None => self.new_id().into(),
        };
        let slug = seed.slug.clone().unwrap_or_else(|| slug_of(&seed.name));
        let issue_prefix = seed.issue_prefix.clone().unwrap_or_else(|| prefix_of(&seed.name));
        let now = self.now.rfc3339();
        let mut workspace = Workspace::default();
        workspace.id = id.clone();
        workspace.name = seed.name.clone();
        workspace.slug = slug;
        workspace.description = seed.description.clone();
        workspace.context = seed.context.clone();
        workspace.settings = Map::new();
        workspace.repos = seed.repos.clone();
        workspace.issue_prefix = issue_prefix;
        workspace.created_at = now.clone();
        workspace.updated_at = now;
        self.workspaces.push(WorkspaceRow { workspace });
        // Its creator, the fake's user, hears of it.
        self.hub.workspaces_changed_for_user(&self.user.0);
        Ok(id)
    }

    pub(crate) fn add_agent(&mut self, seed: &AgentSeed) -> Result<AgentId, Error> {
        let workspace_id = canonical(&seed.workspace_id);
        self.require_workspace(&workspace_id)?;
        let id = match seed.id.as_ref().map(canonical).as_ref() {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty agent id".into())),
            Some(id) if self.agents.iter().any(|a| &a.id == id) => {
                return Err(control_error(format!("agent \"{id}\" already exists")))
            }
            Some(id) => id.clone(),
            None => self.new_id().into(),
        };
        // HEAD's workspace skills are rows with a UUID (a claim's skill
        // references name them by it); 3c93ebaf1c sends no skill ID.
        let mut skills = seed.skills.clone();
        if self.version == ServerVersion::Head {
            for skill in skills.iter_mut().filter(|skill| skill.id.as_deref().is_none_or(str::is_empty)) {
                skill.id = Some(self.new_id());
            }
        }
        self.agents.push(AgentState {
            id: id.clone(),
            workspace_id,
            max_concurrent_tasks: seed.max_concurrent_tasks.unwrap_or(DEFAULT_MAX_CONCURRENT_TASKS),
            name: seed.name.clone(),
            instructions: seed.instructions.clone(),
            skills,
        });
        for (name, hash) in &seed.skill_hashes {
            self.skill_hashes.insert((id.clone(), name.clone()), hash.clone());
        }
        Ok(id)
    }

    pub(crate) fn add_runtime(&mut self, seed: &RuntimeSeed) -> Result<RuntimeId, Error> {
        let seed = &RuntimeSeed {
            id: seed.id.as_ref().map(canonical),
            workspace_id: canonical(&seed.workspace_id),
            ..seed.clone()
        };
        self.require_workspace(&seed.workspace_id)?;
        match &seed.id {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty runtime id".into())),
            Some(id) if self.runtimes.contains_key(id) => {
                return Err(control_error(format!("runtime \"{id}\" already exists")))
            }
            _ => {}
        }
        if let Some(daemon_id) = &seed.daemon_id {
            let provider = if seed.provider.is_empty() { "unknown" } else { &seed.provider };
            let key = (seed.workspace_id.clone(), daemon_id.clone(), provider.to_owned());
            if self.runtime_by_owner.contains_key(&key) {
                return Err(control_error(format!(
                    "daemon \"{daemon_id}\" already has a \"{provider}\" runtime in this workspace"
                )));
            }
        }
        let spec = RuntimeSpec {
            name: seed.name.clone(),
            provider: seed.provider.clone(),
            version: seed.version.clone(),
            status: seed.status.clone(),
            ..Default::default()
        };
        let id =
            self.upsert_runtime(seed.id.clone(), &seed.workspace_id, seed.daemon_id.as_ref(), &spec, &seed.device_name);
        // A seeded runtime has not been seen by any daemon yet; it belongs
        // to the seed's user, as a runtime row of the server has an owner.
        let owner = self.user.0.clone();
        if let Some(row) = self.runtimes.get_mut(&id) {
            row.last_seen = None;
            row.owner = Some(owner);
        }
        Ok(id)
    }

    /// The one place a task is queued (seeds, `/_mock/tasks`, reruns, retries).
    pub(crate) fn add_task(&mut self, seed: &TaskSeed) -> Result<multica_api::TaskId, Error> {
        let seed = &TaskSeed {
            id: seed.id.as_ref().map(canonical),
            runtime_id: canonical(&seed.runtime_id),
            agent_id: canonical(&seed.agent_id),
            issue_id: canonical(&seed.issue_id),
            priority: seed.priority,
        };
        let Some(runtime) = self.runtimes.get(&seed.runtime_id) else {
            return Err(control_error(format!("unknown runtime \"{}\"", seed.runtime_id)));
        };
        let workspace_id = runtime.workspace_id.clone();
        let id = match &seed.id {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty task id".into())),
            Some(id) if self.tasks.contains_key(id) => {
                return Err(control_error(format!("task \"{id}\" already exists")))
            }
            Some(id) => id.clone(),
            None => self.new_id().into(),
        };
        self.next_seq += 1;
        let row = TaskRow {
            id: id.clone(),
            agent_id: seed.agent_id.clone(),
            runtime_id: seed.runtime_id.clone(),
            issue_id: seed.issue_id.clone(),
            workspace_id,
            status: TaskStatus::Queued,
            priority: seed.priority,
            seq: self.next_seq,
            created: self.now,
            dispatched: None,
            started: None,
            completed: None,
            result: None,
            error: None,
            session_id: String::new(),
            work_dir: String::new(),
            progress: None,
            messages: Vec::new(),
            message_times: Vec::new(),
            initiator: Some(self.user.0.clone()),
            head: head::TaskHead::default(),
        };
        let (issue_id, workspace_id) = (row.issue_id.clone(), row.workspace_id.clone());
        let runtime_id = row.runtime_id.clone();
        self.tasks.insert(id.clone(), row);
        self.task_order.push(id.clone());
        self.index_task(&id);
        self.number_issue(&issue_id, &workspace_id);
        self.hub.task_available(&runtime_id, Some(&id));
        Ok(id)
    }

    /// A user's rerun of a task (HEAD, §7.4): as the server's rerun, the
    /// queued, dispatched or deferred tasks of the source's (issue, agent)
    /// are cancelled, then a new task of that agent and issue is queued by
    /// [`State::add_task`] — on the source's runtime unless `with` names
    /// another, with the source's priority unless the rerun gives one —
    /// and marked as a rerun of the source. `with` may not name another
    /// issue or agent.
    pub(crate) fn rerun_task(&mut self, rerun: &Rerun, with: Option<&TaskSeed>) -> Result<multica_api::TaskId, Error> {
        let source_id = canonical(&rerun.rerun_of_task_id);
        let Some(source) = self.tasks.get(&source_id) else {
            return Err(control_error(format!("unknown task \"{source_id}\" to rerun")));
        };
        let (agent_id, issue_id) = (source.agent_id.clone(), source.issue_id.clone());
        if let Some(with) = with {
            if !with.issue_id.as_str().is_empty() && canonical(&with.issue_id) != issue_id {
                return Err(control_error("source task does not belong to this issue".to_owned()));
            }
            if !with.agent_id.as_str().is_empty() && canonical(&with.agent_id) != agent_id {
                return Err(control_error("a rerun runs the source task's agent".to_owned()));
            }
        }
        let runtime_id = with
            .map(|w| w.runtime_id.clone())
            .filter(|r| !r.as_str().is_empty())
            .unwrap_or_else(|| source.runtime_id.clone());
        let seed = TaskSeed {
            id: rerun.id.clone(),
            runtime_id,
            agent_id: agent_id.clone(),
            issue_id: issue_id.clone(),
            priority: rerun.priority.unwrap_or(source.priority),
        };
        if let Some(id) = seed.id.as_ref().map(canonical).filter(|id| self.tasks.contains_key(id)) {
            return Err(control_error(format!("task \"{id}\" already exists")));
        }
        let pending: Vec<multica_api::TaskId> = self
            .task_order
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .filter(|t| t.agent_id == agent_id && t.issue_id == issue_id)
            .filter(|t| matches!(t.status, TaskStatus::Queued | TaskStatus::Dispatched | TaskStatus::Deferred))
            .map(|t| t.id.clone())
            .collect();
        for id in pending {
            self.set_task_status(&id, TaskStatus::Cancelled);
            if let Some(row) = self.tasks.get_mut(&id) {
                row.head.lease = None;
            }
        }
        let id = self.add_task(&seed)?;
        if let Some(row) = self.tasks.get_mut(&id) {
            row.head.rerun_of = Some(source_id);
        }
        Ok(id)
    }

    /// Cancels a queued, dispatched or running task (the server's
    /// cancellation when an issue is reassigned or closed); a finished task
    /// is left as it is.
    pub(crate) fn cancel_task(&mut self, task_id: &multica_api::TaskId) -> Result<TaskRecord, Error> {
        let task_id = &canonical(task_id);
        let Some(row) = self.tasks.get(task_id) else {
            return Err(control_error(format!("unknown task \"{task_id}\"")));
        };
        // Waiting and deferred tasks exist only at HEAD, where they can be cancelled too.
        let open = [
            TaskStatus::Queued,
            TaskStatus::Dispatched,
            TaskStatus::Running,
            TaskStatus::WaitingLocalDirectory,
            TaskStatus::Deferred,
        ];
        if open.contains(&row.status) {
            self.set_task_status(task_id, TaskStatus::Cancelled);
        }
        self.task(task_id).ok_or_else(|| control_error(format!("unknown task \"{task_id}\"")))
    }

    /// Sets an issue's status (`todo`, `in_progress`, `done`, `cancelled`…).
    /// A claim that meets a task of a `done` or `cancelled` issue cancels
    /// all of that issue's tasks.
    pub(crate) fn set_issue_status(&mut self, issue_id: &IssueId, status: &str) -> Result<(), Error> {
        let issue_id = canonical(issue_id);
        if issue_id.as_str().is_empty() {
            return Err(control_error("empty issue id".into()));
        }
        if status.trim().is_empty() {
            return Err(control_error("empty issue status".into()));
        }
        self.issues.insert(issue_id, status.trim().to_owned());
        Ok(())
    }

    /// Records a seeded issue: its status (when given), title and number.
    pub(crate) fn add_issue(&mut self, seed: &IssueSeed) -> Result<(), Error> {
        let issue_id = canonical(&seed.id);
        if issue_id.as_str().is_empty() {
            return Err(control_error("empty issue id".into()));
        }
        if !seed.status.trim().is_empty() {
            self.set_issue_status(&issue_id, &seed.status)?;
        }
        let info = self.issue_info.entry(issue_id).or_default();
        info.title.clone_from(&seed.title);
        if seed.number.is_some() {
            info.number = seed.number;
        }
        Ok(())
    }

    /// An issue gets the workspace of its first task and, unless it has
    /// one, the next free number of that workspace (the server numbers a
    /// workspace's issues in creation order).
    fn number_issue(&mut self, issue_id: &IssueId, workspace_id: &WorkspaceId) {
        let next = 1 + self
            .issue_info
            .values()
            .filter(|i| i.workspace_id.as_ref() == Some(workspace_id))
            .filter_map(|i| i.number)
            .max()
            .unwrap_or(0);
        let info = self.issue_info.entry(issue_id.clone()).or_default();
        if info.workspace_id.is_none() {
            info.workspace_id = Some(workspace_id.clone());
        }
        if info.number.is_none() {
            info.number = Some(next);
        }
    }

    /// The title and identifier (`<issue_prefix>-<number>`) of an issue,
    /// empty when unknown.
    pub(super) fn issue_title_and_identifier(&self, issue_id: &IssueId) -> (String, String) {
        let Some(info) = self.issue_info.get(issue_id) else { return Default::default() };
        let prefix = info
            .workspace_id
            .as_ref()
            .and_then(|ws| self.workspaces.iter().find(|w| &w.workspace.id == ws))
            .map(|w| w.workspace.issue_prefix.as_str());
        let identifier = match (prefix, info.number) {
            (Some(prefix), Some(number)) => format!("{prefix}-{number}"),
            _ => String::new(),
        };
        (info.title.clone(), identifier)
    }

    /// An issue's status, when one was set.
    pub(crate) fn issue_status(&self, issue_id: &IssueId) -> Option<String> {
        self.issues.get(&canonical(issue_id)).cloned()
    }

    pub(crate) fn create_ping(&mut self, runtime_id: &RuntimeId) -> Result<PingId, Error> {
        let runtime_id = &canonical(runtime_id);
        if !self.runtimes.contains_key(runtime_id) {
            return Err(control_error(format!("unknown runtime \"{runtime_id}\"")));
        }
        let id: PingId = self.new_hex_id().into();
        if let Some(row) = self.runtimes.get_mut(runtime_id) {
            row.pending_pings.push_back(id.clone());
        }
        self.pings
            .insert(id.clone(), PingRow { id: id.clone(), runtime_id: runtime_id.clone(), sent: false, result: None });
        self.ping_order.push(id.clone());
        Ok(id)
    }

    pub(crate) fn approve_pairing(&mut self, token: &str, workspace_id: &WorkspaceId) -> Result<PairingSession, Error> {
        let workspace_id = &canonical(workspace_id);
        self.require_workspace(workspace_id)?;
        let now = self.now;
        let session =
            self.pairing_mut(token).map_err(|_| control_error(format!("unknown pairing session \"{token}\"")))?;
        if session.status != PairingStatus::Pending {
            return Err(control_error(format!("pairing session is {}, not pending", session.status)));
        }
        session.status = PairingStatus::Approved;
        session.workspace_id = Some(workspace_id.clone());
        session.approved_at = Some(now.rfc3339());
        session.updated_at = now.rfc3339();
        Ok(session.clone())
    }

    // ----- inspection ------------------------------------------------------

    pub(crate) fn task(&self, task_id: &multica_api::TaskId) -> Option<TaskRecord> {
        self.tasks.get(&canonical(task_id)).map(|row| self.record_of(row))
    }

    /// A row as this version's routes answer it (HEAD fills the HEAD fields).
    fn record_of(&self, row: &TaskRow) -> TaskRecord {
        if self.version.is_head() {
            row.record_head()
        } else {
            row.record()
        }
    }

    pub(crate) fn progress(&self, task_id: &multica_api::TaskId) -> Option<TaskProgress> {
        self.tasks.get(&canonical(task_id)).and_then(|t| t.progress.clone())
    }

    pub(crate) fn runtime(&self, runtime_id: &RuntimeId) -> Option<Runtime> {
        self.runtimes.get(&canonical(runtime_id)).map(RuntimeRow::to_runtime)
    }

    pub(crate) fn heartbeats(&self, runtime_id: &RuntimeId) -> u64 {
        self.runtimes.get(&canonical(runtime_id)).map_or(0, |r| r.heartbeats)
    }

    pub(crate) fn usage_of(&self, runtime_id: &RuntimeId) -> Vec<UsageEntry> {
        let runtime_id = canonical(runtime_id);
        self.usage.iter().filter(|(key, _)| key.0 == runtime_id).map(|(_, entry)| entry.clone()).collect()
    }

    pub(crate) fn repos_of(&self, workspace_id: &WorkspaceId) -> Option<Vec<Repo>> {
        self.workspace(&canonical(workspace_id)).map(|w| w.workspace.repos.clone())
    }

    pub(crate) fn agent(&self, agent_id: &AgentId) -> Option<AgentState> {
        let agent_id = canonical(agent_id);
        self.agents.iter().find(|a| a.id == agent_id).cloned()
    }

    pub(crate) fn snapshot(&mut self) -> Snapshot {
        let runtime_requests = self.runtime_requests();
        let tokens = self.pairing_order.clone();
        let pairing_sessions = tokens.iter().filter_map(|token| self.get_pairing(token).ok()).collect();
        Snapshot {
            now: self.now.rfc3339(),
            workspaces: self.workspaces.iter().map(|w| w.workspace.clone()).collect(),
            agents: self.agents.clone(),
            runtimes: self
                .runtime_order
                .iter()
                .filter_map(|id| self.runtimes.get(id))
                .map(|row| RuntimeState {
                    runtime: row.to_runtime(),
                    heartbeats: row.heartbeats,
                    pending_pings: row.pending_pings.iter().cloned().collect(),
                })
                .collect(),
            tasks: self
                .task_order
                .iter()
                .filter_map(|id| self.tasks.get(id))
                .map(|row| TaskState {
                    record: self.record_of(row),
                    session_id: row.session_id.clone(),
                    work_dir: row.work_dir.clone(),
                    progress: row.progress.clone(),
                    messages: row.sorted_messages(),
                    usage: self.task_usage_of(&row.id),
                })
                .collect(),
            usage: self
                .usage
                .iter()
                .map(|(key, entry)| UsageRow { runtime_id: key.0.clone(), entry: entry.clone() })
                .collect(),
            pings: self
                .ping_order
                .iter()
                .filter_map(|id| self.pings.get(id))
                .map(|ping| PingState {
                    id: ping.id.clone(),
                    runtime_id: ping.runtime_id.clone(),
                    status: match (&ping.result, ping.sent) {
                        (Some(result), _) => result.status.to_string(),
                        (None, true) => "sent".to_owned(),
                        (None, false) => "pending".to_owned(),
                    },
                    result: ping.result.clone(),
                })
                .collect(),
            pairing_sessions,
            issues: {
                let ids: std::collections::BTreeSet<&IssueId> =
                    self.issues.keys().chain(self.issue_info.keys()).collect();
                let mut issues: Vec<IssueSeed> = ids
                    .into_iter()
                    .map(|id| {
                        let info = self.issue_info.get(id).cloned().unwrap_or_default();
                        IssueSeed {
                            id: id.clone(),
                            status: self.issues.get(id).cloned().unwrap_or_default(),
                            title: info.title,
                            number: info.number,
                        }
                    })
                    .collect();
                issues.sort_by(|a, b| a.id.cmp(&b.id));
                issues
            },
            call_count: self.calls.total(),
            runtime_requests,
        }
    }
}
