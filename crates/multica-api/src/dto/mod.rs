//! Typed request and response bodies of every route, with the server's JSON
//! field names.
//!
//! Decoding is as tolerant as the Go client: unknown fields are ignored, and
//! an absent or `null` field reads as its empty value (`""`, `0`, `[]`, `{}`)
//! or as `None` where the server documents `null` as meaningful. Encoding is
//! byte-compatible with the Go client: optional fields that are empty are
//! omitted exactly where Go's `omitempty` omits them.
//!
//! Timestamps stay RFC 3339 strings: the SDK passes them through and does not
//! pull in a date library for values it never computes with.

mod enums;
mod message;
mod pairing;
mod register;
mod task;
mod usage;

pub use enums::{MessageKind, PairingStatus, PingStatus, RuntimeStatus, TaskStatus};
pub use message::{StoredTaskMessage, TaskMessage};
pub use pairing::{PairingRequest, PairingSession};
pub use register::{RegisterRequest, RegisterResponse, Repo, Runtime, RuntimeSpec, Workspace};
pub use task::{
    ClaimResponse, HeartbeatResponse, OkResponse, PendingPing, PingResult, Skill, SkillFile, Task, TaskAgent,
    TaskCompletion, TaskProgress, TaskRecord, TaskStatusResponse,
};
pub use usage::UsageEntry;
