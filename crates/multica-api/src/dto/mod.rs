//! Typed request and response bodies of every route, with the server's JSON
//! field names.
//!
//! Decoding is as tolerant as the Go client: unknown fields are ignored, and
//! an absent or `null` field reads as its empty value (`""`, `0`, `[]`, `{}`)
//! or as `None` where the server documents `null` as meaningful. Encoding is
//! byte-compatible with the Go client: optional fields that are empty are
//! omitted exactly where Go's `omitempty` omits them.
//!
//! Two server versions share these types: 3c93ebaf1c and HEAD 1cc46b2697.
//! Each field HEAD added says so in its docs. A field HEAD always sends and
//! 3c93ebaf1c never does is an `Option` (`None`: the server did not send it);
//! a field HEAD sends only when set is empty when absent. Both are omitted
//! when encoded empty, so a value without them encodes exactly as for
//! 3c93ebaf1c: request bodies stay byte-identical to the Go client's, and
//! answers keep their 3c93ebaf1c shape.
//!
//! Timestamps stay RFC 3339 strings: the SDK passes them through and does not
//! pull in a date library for values it never computes with.

mod capability;
mod claim;
mod enums;
mod gc;
mod lifecycle;
mod message;
mod pairing;
mod register;
mod runtime_request;
mod secret;
mod skill_bundle;
mod task;
mod usage;
mod workspace;

pub use capability::{
    ClientCapability, CAPABILITIES_HEADER, CLIENT_OS_HEADER, CLIENT_PLATFORM_HEADER, CLIENT_VERSION_HEADER,
};
pub use claim::{AttributionActor, AttributionEvidence, SiblingRun, SkillRef, SkillRefFile, TaskAttribution};
pub use enums::{
    FailureReason, MessageKind, PairingStatus, PingStatus, RuntimeStatus, SkillSource, TaskKind, TaskStatus,
};
pub use gc::{AutopilotRunGcCheck, GcCheck, IssueGcCheckRequest, IssueGcCheckResponse, IssueGcStatus, TaskGcCheck};
pub use lifecycle::{
    BatchClaimRequest, BatchClaimResponse, CancelAck, DeregisterRequest, LocalDirectoryWait, OrphanRecovery,
    SessionPin, TaskFailure,
};
pub use message::{StoredTaskMessage, TaskMessage};
pub use pairing::{PairingRequest, PairingSession};
pub use register::{FailedProfile, RegisterRequest, RegisterResponse, Repo, Runtime, RuntimeSpec, Workspace};
pub use runtime_request::{
    HeartbeatRequest, LocalSkill, LocalSkillsResult, ModelListResult, PendingRuntimeRequest, PendingSkillImport,
    PendingUpdate, RuntimeModel, SkillImportResult, UpdateResult,
};
pub use secret::SecretToken;
pub use skill_bundle::{SkillBundle, SkillBundleFile, SkillBundleRef, SkillBundleRequest, SkillBundleResponse};
pub use task::{
    ClaimResponse, HeartbeatResponse, OkResponse, PendingPing, PingResult, Skill, SkillFile, Task, TaskAgent,
    TaskCompletion, TaskProgress, TaskRecord, TaskStatusResponse,
};
pub use usage::{TaskUsage, TaskUsageReport, UsageEntry};
pub use workspace::{DaemonWorkspace, RuntimeProfiles, WorkspaceRepos};
