//! Runtime requests (HEAD 1cc46b2697, contract §6.3-§6.4): what a user asks
//! a runtime for in the web UI — its model list, its local skills, the
//! import of one local skill, a CLI update. The server keeps them in
//! in-memory stores (one per kind); the next heartbeat of the runtime hands
//! each pending one out once, and the daemon answers on the result routes.
//!
//! Each store has the server's timers: a request still pending, or handed
//! out and never answered, turns `timeout` (terminal) after its kind's
//! limits; creating a request forgets the store's requests older than its
//! retention. A result for a terminal request is acknowledged without
//! reading its body.

use std::time::Duration;

use multica_api::{
    LocalSkillsResult, ModelListResult, PendingRuntimeRequest, PendingSkillImport, PendingUpdate, RuntimeRequestId,
    SkillImportResult, UpdateResult,
};

use super::*;
use crate::requests::{RuntimeRequest, RuntimeRequestKind, RuntimeRequestState};

/// The most imports one heartbeat hands out (`supports_batch_import`).
const MAX_IMPORT_BATCH: usize = 10;

/// The server's timers of one kind of request.
struct Timers {
    /// A request nobody picked up turns `timeout` after this long.
    pending: Duration,
    /// A request handed out and not answered turns `timeout` after this long.
    running: Duration,
    /// Creating a request of the kind forgets those older than this.
    retention: Duration,
    /// The `error` of a request that timed out pending / running.
    pending_error: &'static str,
    running_error: &'static str,
}

fn timers(kind: RuntimeRequestKind) -> Timers {
    match kind {
        RuntimeRequestKind::ModelList => Timers {
            pending: Duration::from_secs(30),
            running: Duration::from_secs(60),
            retention: Duration::from_secs(120),
            pending_error: "daemon did not respond within 30 seconds",
            running_error: "daemon did not finish within 60 seconds",
        },
        RuntimeRequestKind::LocalSkills | RuntimeRequestKind::LocalSkillImport => Timers {
            pending: Duration::from_secs(180),
            running: Duration::from_secs(60),
            retention: Duration::from_secs(300),
            pending_error: "daemon did not respond within 3 minutes",
            running_error: "daemon did not finish within 60 seconds",
        },
        RuntimeRequestKind::Update => Timers {
            pending: Duration::from_secs(120),
            running: Duration::from_secs(150),
            retention: Duration::from_secs(300),
            pending_error: "daemon did not respond within 120 seconds",
            running_error: "update did not complete within 150 seconds",
        },
    }
}

/// Where a request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Pending,
    /// Handed out by a heartbeat at this time.
    Running(Millis),
    Completed,
    Failed,
    Timeout,
}

impl Stage {
    fn is_terminal(self) -> bool {
        matches!(self, Stage::Completed | Stage::Failed | Stage::Timeout)
    }

    fn name(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::Running(_) => "running",
            Stage::Completed => "completed",
            Stage::Failed => "failed",
            Stage::Timeout => "timeout",
        }
    }
}

/// One stored request.
#[derive(Clone, Debug)]
pub(super) struct RequestRow {
    request: RuntimeRequest,
    created: Millis,
    stage: Stage,
    error: String,
    /// What the daemon answered (the result body, as JSON).
    result: Option<Value>,
}

impl RequestRow {
    /// Applies the kind's timeouts at `now`, as the server does on every read.
    fn settle(&mut self, now: Millis) {
        let timers = timers(self.request.kind);
        match self.stage {
            Stage::Pending if self.created.after(timers.pending) < now => {
                self.stage = Stage::Timeout;
                timers.pending_error.clone_into(&mut self.error);
            }
            Stage::Running(at) if at.after(timers.running) < now => {
                self.stage = Stage::Timeout;
                timers.running_error.clone_into(&mut self.error);
            }
            _ => {}
        }
    }

    fn state(&self) -> RuntimeRequestState {
        RuntimeRequestState {
            request: self.request.clone(),
            status: self.stage.name().to_owned(),
            error: self.error.clone(),
            result: self.result.clone(),
        }
    }
}

/// What a result route carries, by kind.
pub(super) enum Report<'a> {
    ModelList(&'a ModelListResult),
    LocalSkills(&'a LocalSkillsResult),
    SkillImport(&'a SkillImportResult),
    Update(&'a UpdateResult),
}

impl Report<'_> {
    fn kind(&self) -> RuntimeRequestKind {
        match self {
            Report::ModelList(_) => RuntimeRequestKind::ModelList,
            Report::LocalSkills(_) => RuntimeRequestKind::LocalSkills,
            Report::SkillImport(_) => RuntimeRequestKind::LocalSkillImport,
            Report::Update(_) => RuntimeRequestKind::Update,
        }
    }
}

/// The kind of request a result route answers.
pub(super) fn requests_kind(endpoint: multica_api::Endpoint) -> RuntimeRequestKind {
    match endpoint {
        multica_api::Endpoint::ReportLocalSkills => RuntimeRequestKind::LocalSkills,
        multica_api::Endpoint::ReportSkillImport => RuntimeRequestKind::LocalSkillImport,
        multica_api::Endpoint::ReportUpdateResult => RuntimeRequestKind::Update,
        _ => RuntimeRequestKind::ModelList,
    }
}

/// The 404 of a request a result route cannot find.
pub(super) fn request_not_found(kind: RuntimeRequestKind) -> Rejection {
    match kind {
        RuntimeRequestKind::Update => reject(404, "update not found"),
        _ => reject(404, "request not found"),
    }
}

impl State {
    /// The one place a runtime request is created (the user API's
    /// `POST /api/runtimes/{id}/models|local-skills|local-skills/import|update`,
    /// staged by a test): checks it as the user API does and stores it
    /// pending. Returns the request as stored, its ID generated when absent.
    pub(crate) fn enqueue_runtime_request(&mut self, request: &RuntimeRequest) -> Result<RuntimeRequest, Rejection> {
        if !self.version.is_head() {
            return Err(reject(400, "runtime requests are HEAD's (server 3c93ebaf1c has none)"));
        }
        let runtime_id = canonical(&request.runtime_id);
        let Some(runtime) = self.runtimes.get(&runtime_id) else {
            return Err(reject(404, "runtime not found"));
        };
        let kind = request.kind;
        let skill_key = request.skill_key.trim().to_owned();
        match kind {
            RuntimeRequestKind::LocalSkillImport if skill_key.is_empty() => {
                return Err(reject(400, "skill_key is required"))
            }
            RuntimeRequestKind::Update if request.target_version.is_empty() => {
                return Err(reject(400, "target_version is required"))
            }
            _ => {}
        }
        // Only an update may be asked of an offline runtime.
        if kind != RuntimeRequestKind::Update && runtime.status != RuntimeStatus::Online {
            return Err(reject(503, "runtime is offline"));
        }
        let now = self.now;
        let retention = timers(kind).retention;
        self.runtime_requests.retain(|r| r.request.kind != kind || r.created.after(retention) >= now);
        self.settle_runtime_requests();
        if kind == RuntimeRequestKind::Update
            && self.runtime_requests.iter().any(|r| {
                r.request.kind == kind
                    && r.request.runtime_id == runtime_id
                    && matches!(r.stage, Stage::Pending | Stage::Running(_))
            })
        {
            return Err(reject(409, "an update is already in progress for this runtime"));
        }
        let id = match request.id.as_str() {
            "" => RuntimeRequestId::new(self.new_hex_id()),
            _ if self.runtime_requests.iter().any(|r| r.request.id == request.id) => {
                return Err(reject_with(400, format!("runtime request \"{}\" already exists", request.id)))
            }
            _ => request.id.clone(),
        };
        let stored = RuntimeRequest {
            id,
            runtime_id,
            kind,
            skill_key: if kind == RuntimeRequestKind::LocalSkillImport { skill_key } else { String::new() },
            target_version: if kind == RuntimeRequestKind::Update {
                request.target_version.clone()
            } else {
                String::new()
            },
        };
        self.runtime_requests.push(RequestRow {
            request: stored.clone(),
            created: now,
            stage: Stage::Pending,
            error: String::new(),
            result: None,
        });
        // Only a model-list request asks the daemon for a heartbeat now
        // (WS contract §5.1); the others wait for the next scheduled one.
        if kind == RuntimeRequestKind::ModelList {
            self.hub.pending_work(&stored.runtime_id, "model_list");
        }
        Ok(stored)
    }

    /// Every request, oldest first, with its timeouts applied.
    pub(crate) fn runtime_requests(&mut self) -> Vec<RuntimeRequestState> {
        self.settle_runtime_requests();
        self.runtime_requests.iter().map(RequestRow::state).collect()
    }

    fn settle_runtime_requests(&mut self) {
        let now = self.now;
        self.runtime_requests.iter_mut().for_each(|r| r.settle(now));
    }

    /// Hands out the pending requests of a runtime on its heartbeat, each
    /// once (the oldest of each kind; up to 10 imports with
    /// `supports_batch_import`, the first repeated in the singular field).
    pub(super) fn hand_out_runtime_requests(
        &mut self,
        runtime_id: &RuntimeId,
        batch_import: bool,
        response: &mut HeartbeatResponse,
    ) {
        self.settle_runtime_requests();
        let now = self.now;
        let mut take = |kind: RuntimeRequestKind, limit: usize| -> Vec<RuntimeRequest> {
            self.runtime_requests
                .iter_mut()
                .filter(|r| r.request.kind == kind && &r.request.runtime_id == runtime_id && r.stage == Stage::Pending)
                .take(limit)
                .map(|r| {
                    r.stage = Stage::Running(now);
                    r.request.clone()
                })
                .collect()
        };
        if let Some(update) = take(RuntimeRequestKind::Update, 1).pop() {
            let mut pending = PendingUpdate::default();
            pending.id = update.id;
            pending.target_version = update.target_version;
            response.pending_update = Some(pending);
        }
        if let Some(models) = take(RuntimeRequestKind::ModelList, 1).pop() {
            let mut pending = PendingRuntimeRequest::default();
            pending.id = models.id;
            response.pending_model_list = Some(pending);
        }
        if let Some(skills) = take(RuntimeRequestKind::LocalSkills, 1).pop() {
            let mut pending = PendingRuntimeRequest::default();
            pending.id = skills.id;
            response.pending_local_skills = Some(pending);
        }
        let imports: Vec<PendingSkillImport> =
            take(RuntimeRequestKind::LocalSkillImport, if batch_import { MAX_IMPORT_BATCH } else { 1 })
                .into_iter()
                .map(|import| {
                    let mut pending = PendingSkillImport::default();
                    pending.id = import.id;
                    pending.skill_key = import.skill_key;
                    pending
                })
                .collect();
        response.pending_local_skill_import = imports.first().cloned();
        if batch_import {
            response.pending_local_skill_imports = imports;
        }
    }

    /// The checks a result route makes before it reads its body: the
    /// runtime (as the heartbeat's), then the request of that kind with the
    /// path's runtime ID exactly as sent. `Ok(true)` when the request is
    /// already terminal (acknowledged without reading the body).
    pub(super) fn runtime_request_lookup(
        &mut self,
        kind: RuntimeRequestKind,
        runtime_id: &RuntimeId,
        request_id: &RuntimeRequestId,
        identity: &Identity,
    ) -> Result<bool, Rejection> {
        self.head_runtime(runtime_id.as_str(), identity)?;
        self.settle_runtime_requests();
        // The store compares the ID it keeps with the path's text as sent.
        let row = self
            .runtime_requests
            .iter()
            .find(|r| r.request.kind == kind && &r.request.id == request_id)
            .filter(|r| r.request.runtime_id.as_str() == runtime_id.as_str())
            .ok_or_else(|| request_not_found(kind))?;
        Ok(row.stage.is_terminal())
    }

    /// A result route: the daemon's answer to a request it was handed.
    pub(super) fn report_runtime_request(
        &mut self,
        runtime_id: &RuntimeId,
        request_id: &RuntimeRequestId,
        report: Report<'_>,
        identity: &Identity,
    ) -> Result<(), Rejection> {
        let kind = report.kind();
        if self.runtime_request_lookup(kind, runtime_id, request_id, identity)? {
            return Ok(());
        }
        let (stage, error, result) = match report {
            Report::ModelList(result) if result.status == "completed" => {
                (Stage::Completed, String::new(), serde_json::to_value(result).ok())
            }
            Report::LocalSkills(result) if result.status == "completed" => {
                (Stage::Completed, String::new(), serde_json::to_value(result).ok())
            }
            Report::ModelList(ModelListResult { error, .. }) | Report::LocalSkills(LocalSkillsResult { error, .. }) => {
                (Stage::Failed, error.clone(), None)
            }
            Report::SkillImport(result) if result.status != "completed" => (Stage::Failed, result.error.clone(), None),
            Report::SkillImport(SkillImportResult { skill: None, .. }) => {
                (Stage::Failed, "daemon returned an empty skill bundle".to_owned(), None)
            }
            Report::SkillImport(result) => (Stage::Completed, String::new(), serde_json::to_value(result).ok()),
            Report::Update(result) => match result.status.as_str() {
                "completed" => (Stage::Completed, String::new(), serde_json::to_value(result).ok()),
                "failed" => (Stage::Failed, result.error.clone(), None),
                // The update is under way: nothing changes.
                "running" => return Ok(()),
                other => return Err(reject_with(400, format!("invalid status: {other}"))),
            },
        };
        if let Some(row) =
            self.runtime_requests.iter_mut().find(|r| r.request.kind == kind && &r.request.id == request_id)
        {
            row.stage = stage;
            row.error = error;
            row.result = result;
        }
        Ok(())
    }
}
