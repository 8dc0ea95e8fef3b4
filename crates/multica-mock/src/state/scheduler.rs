//! The server's scheduling rules: which task a claim hands out, and the
//! sweeper that fails tasks of silent runtimes and tasks that take too long.
//!
//! Every change of a task's status goes through [`State::set_task_status`],
//! which keeps the indexes the claim walks (per runtime, per agent, and the
//! per-agent count of dispatched and running tasks) in step with the rows.

use std::ops::Bound::{Excluded, Unbounded};
use std::time::Duration;

use super::*;

/// How many tasks an agent runs at once unless its seed says otherwise
/// (the server's `max_concurrent_tasks` default).
pub const DEFAULT_MAX_CONCURRENT_TASKS: u32 = 6;

/// How often the server's sweeper runs.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// A runtime without a heartbeat for longer goes offline.
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(45);
/// A task dispatched for longer (never started) fails.
pub(crate) const DISPATCH_TIMEOUT: Duration = Duration::from_secs(300);
/// A task running for longer fails.
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(9_000);

/// Issue statuses that cancel the issue's tasks when a claim meets them.
const CLOSED_ISSUE_STATUSES: [&str; 2] = ["done", "cancelled"];

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl State {
    // ----- the indexes -----------------------------------------------------

    /// Adds a task to the indexes its current status puts it in.
    pub(super) fn index_task(&mut self, task_id: &multica_api::TaskId) {
        let Some(row) = self.tasks.get(task_id) else { return };
        let key = row.queue_key();
        match row.status {
            TaskStatus::Queued => {
                self.queues.entry(row.runtime_id.clone()).or_default().insert(key, task_id.clone());
                self.agent_queues.entry(row.agent_id.clone()).or_default().insert(key, task_id.clone());
            }
            TaskStatus::Dispatched => {
                self.queues.entry(row.runtime_id.clone()).or_default().insert(key, task_id.clone());
                *self.agent_busy.entry(row.agent_id.clone()).or_default() += 1;
            }
            TaskStatus::Running => *self.agent_busy.entry(row.agent_id.clone()).or_default() += 1,
            _ => {}
        }
    }

    /// Removes a task from the indexes its current status put it in.
    pub(super) fn unindex_task(&mut self, task_id: &multica_api::TaskId) {
        let Some(row) = self.tasks.get(task_id) else { return };
        let key = row.queue_key();
        let (runtime_id, agent_id) = (row.runtime_id.clone(), row.agent_id.clone());
        let queued = row.status == TaskStatus::Queued;
        let busy = matches!(row.status, TaskStatus::Dispatched | TaskStatus::Running);
        if queued || row.status == TaskStatus::Dispatched {
            if let Some(queue) = self.queues.get_mut(&runtime_id) {
                queue.remove(&key);
            }
        }
        if queued {
            if let Some(queue) = self.agent_queues.get_mut(&agent_id) {
                queue.remove(&key);
            }
        }
        if busy {
            if let Some(count) = self.agent_busy.get_mut(&agent_id) {
                *count = count.saturating_sub(1);
            }
        }
    }

    /// Moves a task to `status`, stamping the time the server stamps, and
    /// keeps the indexes in step. The caller has checked the transition.
    pub(super) fn set_task_status(&mut self, task_id: &multica_api::TaskId, status: TaskStatus) {
        self.unindex_task(task_id);
        let now = self.now;
        if let Some(row) = self.tasks.get(task_id) {
            // The channel's hints: a task (again) queued names itself; a
            // task ending may have freed a slot of its runtime.
            let terminal =
                |s: &TaskStatus| matches!(s, TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled);
            if status == TaskStatus::Queued && row.status != TaskStatus::Queued {
                self.hub.task_available(&row.runtime_id, Some(task_id));
            } else if terminal(&status) && !terminal(&row.status) {
                match self.finished_runtimes.as_mut() {
                    Some(held) if held.contains(&row.runtime_id) => {}
                    Some(held) => held.push(row.runtime_id.clone()),
                    None => self.hub.task_available(&row.runtime_id, None),
                }
            }
        }
        let finished = matches!(status, TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled);
        let stamp = finished.then(|| self.db_stamp());
        if let Some(row) = self.tasks.get_mut(task_id) {
            match status {
                TaskStatus::Dispatched => row.dispatched = Some(now),
                TaskStatus::Running => row.started = Some(now),
                TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled => {
                    row.completed = Some(now);
                    row.head.completed_stamp = stamp;
                }
                _ => {}
            }
            row.status = status;
        }
        self.index_task(task_id);
    }

    /// Runs a bulk transition whose ended tasks hint each runtime once,
    /// after it (the server's `notifyTasksFinished`).
    pub(super) fn coalescing_finished<T>(&mut self, bulk: impl FnOnce(&mut Self) -> T) -> T {
        let outer = self.finished_runtimes.replace(Vec::new());
        let result = bulk(self);
        let finished = std::mem::replace(&mut self.finished_runtimes, outer).unwrap_or_default();
        for runtime_id in finished {
            match self.finished_runtimes.as_mut() {
                Some(held) if held.contains(&runtime_id) => {}
                Some(held) => held.push(runtime_id),
                None => self.hub.task_available(&runtime_id, None),
            }
        }
        result
    }

    fn fail_task_with(&mut self, task_id: &multica_api::TaskId, error: &str) {
        self.set_task_status(task_id, TaskStatus::Failed);
        if let Some(row) = self.tasks.get_mut(task_id) {
            row.error = Some(error.to_owned());
        }
    }

    // ----- claims ----------------------------------------------------------

    pub(super) fn agent_limit(&self, agent_id: &AgentId) -> u32 {
        self.agents.iter().find(|a| &a.id == agent_id).map_or(DEFAULT_MAX_CONCURRENT_TASKS, |a| a.max_concurrent_tasks)
    }

    fn issue_closed(&self, issue_id: &IssueId) -> bool {
        self.issues.get(issue_id).is_some_and(|status| CLOSED_ISSUE_STATUSES.contains(&status.as_str()))
    }

    /// Cancels every queued, dispatched or running task of an issue.
    pub(super) fn cancel_issue_tasks(&mut self, issue_id: &IssueId) {
        let open: Vec<multica_api::TaskId> = self
            .task_order
            .iter()
            .filter(|id| {
                self.tasks.get(*id).is_some_and(|t| {
                    &t.issue_id == issue_id
                        && matches!(t.status, TaskStatus::Queued | TaskStatus::Dispatched | TaskStatus::Running)
                })
            })
            .cloned()
            .collect();
        for id in open {
            self.set_task_status(&id, TaskStatus::Cancelled);
        }
    }

    /// The server's claim: walk the runtime's queued and dispatched tasks by
    /// priority, then age. A task of a done or cancelled issue cancels all
    /// that issue's tasks and is skipped. For each agent met the first time,
    /// the agent's own next queued task (on any runtime) is dispatched if the
    /// agent has room, and handed out if it is on this runtime. One on
    /// another runtime is dispatched all the same and nobody receives it (a
    /// quirk of server 3c93ebaf1c, kept): the walk goes on.
    pub(crate) fn claim(&mut self, runtime_id: &RuntimeId) -> Option<Task> {
        let runtime_id = canonical(runtime_id);
        let mut agents_met: HashSet<AgentId> = HashSet::new();
        let mut cursor: Option<QueueKey> = None;
        loop {
            let queue = self.queues.get(&runtime_id)?;
            let next = match cursor {
                None => queue.iter().next(),
                Some(after) => queue.range((Excluded(after), Unbounded)).next(),
            };
            let (key, task_id) = next.map(|(key, id)| (*key, id.clone()))?;
            cursor = Some(key);
            let Some(row) = self.tasks.get(&task_id) else { continue };
            let (issue_id, agent_id) = (row.issue_id.clone(), row.agent_id.clone());
            if self.issue_closed(&issue_id) {
                self.coalescing_finished(|state| state.cancel_issue_tasks(&issue_id));
                continue;
            }
            if !agents_met.insert(agent_id.clone()) {
                continue;
            }
            let Some(candidate) = self.agent_queues.get(&agent_id).and_then(|q| q.values().next()).cloned() else {
                continue;
            };
            if self.agent_busy.get(&agent_id).copied().unwrap_or(0) >= self.agent_limit(&agent_id) {
                continue;
            }
            self.set_task_status(&candidate, TaskStatus::Dispatched);
            if self.tasks.get(&candidate).is_some_and(|t| t.runtime_id == runtime_id) {
                return self.claimed(&candidate);
            }
        }
    }

    /// A dispatched task as the claim answers it: with its agent, the
    /// workspace's repos and the session to resume.
    pub(super) fn claimed(&self, task_id: &multica_api::TaskId) -> Option<Task> {
        let row = self.tasks.get(task_id)?;
        let agent = self.agents.iter().find(|a| a.id == row.agent_id).map(|a| {
            let mut agent = TaskAgent::default();
            agent.id = a.id.clone();
            agent.name = a.name.clone();
            agent.instructions = a.instructions.clone();
            agent.skills = a.skills.clone();
            agent
        });
        let repos = self
            .workspaces
            .iter()
            .find(|w| w.workspace.id == row.workspace_id)
            .map(|w| w.workspace.repos.clone())
            .unwrap_or_default();
        let (prior_session_id, prior_work_dir) =
            self.last_sessions.get(&(row.agent_id.clone(), row.issue_id.clone())).cloned().unwrap_or_default();
        let mut task = Task::default();
        task.record = row.record();
        task.agent = agent;
        task.repos = repos;
        task.prior_session_id = prior_session_id;
        task.prior_work_dir = prior_work_dir;
        Some(task)
    }

    // ----- the sweeper -----------------------------------------------------

    /// Moves the clock, running the sweeper at every 30 s tick passed (ticks
    /// counted from the clock's start). Ticks at which nothing can change
    /// are skipped without work.
    pub(crate) fn advance_clock(&mut self, by: Duration) {
        let target = self.now.after(by);
        let interval = millis(SWEEP_INTERVAL);
        while let Some(due) = self.next_sweep_due() {
            // The first tick strictly after `due` (the rules compare strictly).
            let ticks = (due.0.saturating_sub(self.last_sweep.0) / interval).saturating_add(1);
            let tick = Millis(self.last_sweep.0.saturating_add(ticks.saturating_mul(interval)));
            if tick > target {
                break;
            }
            self.now = tick;
            self.last_sweep = tick;
            self.sweep();
        }
        // Keep ticks aligned to the start however far the clock jumps.
        let passed = target.0.saturating_sub(self.last_sweep.0) / interval;
        self.last_sweep = Millis(self.last_sweep.0.saturating_add(passed.saturating_mul(interval)));
        self.now = target;
    }

    /// The earliest moment after which a sweep would change something.
    fn next_sweep_due(&self) -> Option<Millis> {
        if self.version.is_head() {
            return self.next_sweep_due_head();
        }
        let runtimes = self
            .runtimes
            .values()
            .filter(|r| r.status == RuntimeStatus::Online)
            .filter_map(|r| r.last_seen.map(|seen| seen.after(HEARTBEAT_TIMEOUT)));
        let tasks = self.tasks.values().filter_map(|t| match t.status {
            TaskStatus::Dispatched => t.dispatched.map(|at| at.after(DISPATCH_TIMEOUT)),
            TaskStatus::Running => t.started.map(|at| at.after(RUN_TIMEOUT)),
            _ => None,
        });
        runtimes.chain(tasks).min()
    }

    /// One run of the server's sweeper at the current time: runtimes silent
    /// for more than 45 s go offline and their dispatched and running tasks
    /// fail (`runtime went offline`); tasks dispatched for more than 300 s or
    /// running for more than 9,000 s fail (`task timed out`).
    fn sweep(&mut self) {
        if self.version.is_head() {
            // A bulk terminal transition: one hint per runtime.
            self.coalescing_finished(Self::sweep_head);
            return;
        }
        let now = self.now;
        let silent: Vec<RuntimeId> = self
            .runtime_order
            .iter()
            .filter(|id| {
                self.runtimes.get(*id).is_some_and(|r| {
                    r.status == RuntimeStatus::Online
                        && r.last_seen.is_some_and(|seen| seen.after(HEARTBEAT_TIMEOUT) < now)
                })
            })
            .cloned()
            .collect();
        for runtime_id in &silent {
            if let Some(row) = self.runtimes.get_mut(runtime_id) {
                row.status = RuntimeStatus::Offline;
                row.updated = now;
            }
        }
        let mut offline = Vec::new();
        let mut timed_out = Vec::new();
        for id in &self.task_order {
            let Some(row) = self.tasks.get(id) else { continue };
            let active = matches!(row.status, TaskStatus::Dispatched | TaskStatus::Running);
            if active && silent.contains(&row.runtime_id) {
                offline.push(id.clone());
            } else if (row.status == TaskStatus::Dispatched
                && row.dispatched.is_some_and(|at| at.after(DISPATCH_TIMEOUT) < now))
                || (row.status == TaskStatus::Running && row.started.is_some_and(|at| at.after(RUN_TIMEOUT) < now))
            {
                timed_out.push(id.clone());
            }
        }
        for id in offline {
            self.fail_task_with(&id, "runtime went offline");
        }
        for id in timed_out {
            self.fail_task_with(&id, "task timed out");
        }
    }
}
