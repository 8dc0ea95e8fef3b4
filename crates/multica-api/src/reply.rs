//! A call's answer as a value: what [`DaemonApi::call`](crate::DaemonApi::call) returns.

use crate::dto::{
    AutopilotRunGcCheck, DaemonWorkspace, GcCheck, HeartbeatResponse, IssueGcStatus, OrphanRecovery, PairingSession,
    RegisterResponse, RuntimeProfiles, SkillBundle, StoredTaskMessage, Task, TaskGcCheck, TaskRecord, TaskStatus,
    Workspace, WorkspaceRepos,
};

/// The answer to one [`Call`](crate::Call): one variant per answer shape,
/// not per route (every route whose result the Go client drops answers
/// [`Reply::Done`]). A route added later either reuses a shape or adds a
/// variant, which is why the enum is `#[non_exhaustive]`.
///
/// The typed methods of [`DaemonApiExt`](crate::DaemonApiExt) unwrap it; a
/// backend answering with the wrong shape makes them fail with
/// [`Error::UnexpectedReply`](crate::Error::UnexpectedReply).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
// The three large answers are boxed: a reply is moved through every layer
// and future on its way to the typed method, and unboxed the claimed task
// alone made every reply (a heartbeat's too) 1,360 bytes long.
pub enum Reply {
    /// The call succeeded and its answer carries nothing the client reads
    /// (deregister, usage, ping result, start, progress, complete, fail,
    /// task messages; at HEAD 1cc46b2697 also task usage, cancel-ack,
    /// session pin and the runtime request results).
    Done,
    /// [`DaemonApiExt::register`](crate::DaemonApiExt::register).
    Registered(RegisterResponse),
    /// [`DaemonApiExt::send_heartbeat`](crate::DaemonApiExt::send_heartbeat).
    Heartbeat(HeartbeatResponse),
    /// [`DaemonApiExt::claim_task`](crate::DaemonApiExt::claim_task): `None` when nothing is queued.
    Claimed(Option<Box<Task>>),
    /// [`DaemonApiExt::list_pending_tasks`](crate::DaemonApiExt::list_pending_tasks).
    PendingTasks(Vec<TaskRecord>),
    /// [`DaemonApiExt::get_task_status`](crate::DaemonApiExt::get_task_status).
    TaskStatus(TaskStatus),
    /// [`DaemonApiExt::list_task_messages`](crate::DaemonApiExt::list_task_messages).
    Messages(Vec<StoredTaskMessage>),
    /// [`DaemonApiExt::list_workspaces`](crate::DaemonApiExt::list_workspaces).
    Workspaces(Vec<Workspace>),
    /// The pairing routes: create, get and claim.
    PairingSession(Box<PairingSession>),
    /// The task row a task route answers with: start, complete and fail
    /// (a backend may answer those [`Reply::Done`] instead), and at HEAD
    /// 1cc46b2697
    /// [`DaemonApiExt::extend_prepare_lease`](crate::DaemonApiExt::extend_prepare_lease)
    /// and [`DaemonApiExt::wait_local_directory`](crate::DaemonApiExt::wait_local_directory).
    TaskRecord(Box<TaskRecord>),
    /// [`DaemonApiExt::claim_tasks`](crate::DaemonApiExt::claim_tasks): the claimed tasks, maybe none.
    ClaimedTasks(Vec<Task>),
    /// [`DaemonApiExt::recover_orphans`](crate::DaemonApiExt::recover_orphans).
    OrphansRecovered(OrphanRecovery),
    /// [`DaemonApiExt::resolve_skill_bundles`](crate::DaemonApiExt::resolve_skill_bundles).
    SkillBundles(Vec<SkillBundle>),
    /// [`DaemonApiExt::get_task_gc_check`](crate::DaemonApiExt::get_task_gc_check).
    TaskGcCheck(TaskGcCheck),
    /// [`DaemonApiExt::get_issue_gc_check`](crate::DaemonApiExt::get_issue_gc_check) and
    /// [`DaemonApiExt::get_chat_session_gc_check`](crate::DaemonApiExt::get_chat_session_gc_check).
    GcCheck(GcCheck),
    /// [`DaemonApiExt::get_autopilot_run_gc_check`](crate::DaemonApiExt::get_autopilot_run_gc_check).
    AutopilotRunGcCheck(AutopilotRunGcCheck),
    /// [`DaemonApiExt::check_issues_gc`](crate::DaemonApiExt::check_issues_gc): one entry per issue.
    IssueGcChecks(Vec<IssueGcStatus>),
    /// [`DaemonApiExt::list_daemon_workspaces`](crate::DaemonApiExt::list_daemon_workspaces).
    DaemonWorkspaces(Vec<DaemonWorkspace>),
    /// [`DaemonApiExt::get_workspace_repos`](crate::DaemonApiExt::get_workspace_repos).
    WorkspaceRepos(WorkspaceRepos),
    /// [`DaemonApiExt::list_runtime_profiles`](crate::DaemonApiExt::list_runtime_profiles).
    RuntimeProfiles(RuntimeProfiles),
}
