//! Fixture data: what a test (or `multica-mock-server --seed FILE`) puts in
//! the fake before any daemon talks to it.
//!
//! The JSON form is documented in the crate docs; every type here reads it
//! with unknown fields refused, so a typo in a fixture is an error instead of
//! silently missing data. IDs are optional: absent ones are generated.

use serde::{Deserialize, Serialize};

use multica_api::{AgentId, DaemonId, IssueId, Repo, RuntimeId, RuntimeStatus, Skill, TaskId, WorkspaceId};

/// A whole fixture: workspaces, then agents, runtimes, issues and tasks,
/// applied in that order so later items can refer to earlier ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    /// Workspaces with their repositories.
    pub workspaces: Vec<WorkspaceSeed>,
    /// Agents with their skills.
    pub agents: Vec<AgentSeed>,
    /// Runtimes, as if a daemon had registered them.
    pub runtimes: Vec<RuntimeSeed>,
    /// Queued tasks; within one runtime, listed order is creation order.
    pub tasks: Vec<TaskSeed>,
    /// Issues: statuses (an issue not listed is open), titles and numbers.
    pub issues: Vec<IssueSeed>,
    /// HEAD: custom runtime profiles of the workspaces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_profiles: Vec<RuntimeProfileSeed>,
    /// The user the configured token (`--token`) belongs to: the one who
    /// assigned the seeded tasks and owns the runtimes it registers (HEAD's
    /// `attribution`, `owner_id` and `requesting_user_name`). Set it before
    /// any task; default: ID `00000000-0000-4000-a000-000000000001`, no name.
    pub user: Option<UserSeed>,
}

/// The user behind the fake's configured token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserSeed {
    /// The user's ID (a UUID).
    pub id: String,
    /// Display name (`requesting_user_name` on claims); may be empty.
    pub name: String,
}

impl Seed {
    /// Reads a fixture from its JSON text.
    pub fn from_json(text: &str) -> Result<Seed, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The built-in demo fixture (`multica-mock-server --seed-demo`): one
    /// workspace `Demo` with a repository, an agent with a skill, a runtime
    /// for daemon `demo-daemon` (provider `claude`) and three queued tasks.
    /// All IDs are fixed; see [`Seed::DEMO_JSON`].
    pub fn demo() -> Seed {
        // The constant is checked by a unit test; an empty seed is the safe
        // fallback should it ever not parse.
        Seed::from_json(Self::DEMO_JSON).unwrap_or_default()
    }

    /// The JSON text of [`Seed::demo`].
    pub const DEMO_JSON: &'static str = include_str!("../examples/seed.json");
}

/// A workspace to create.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceSeed {
    /// Fixed ID; generated when absent.
    pub id: Option<WorkspaceId>,
    /// Display name.
    pub name: String,
    /// URL slug; derived from the name when absent.
    pub slug: Option<String>,
    /// Description (`null` when absent).
    pub description: Option<String>,
    /// Context given to agents (`null` when absent).
    pub context: Option<String>,
    /// Issue key prefix; derived from the name when absent.
    pub issue_prefix: Option<String>,
    /// Repositories, handed to daemons at registration and with each claim.
    pub repos: Vec<Repo>,
}

/// An agent to create.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSeed {
    /// Fixed ID; generated when absent.
    pub id: Option<AgentId>,
    /// The workspace it belongs to (must exist).
    pub workspace_id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// Standing instructions.
    pub instructions: String,
    /// Skills, with their files.
    pub skills: Vec<Skill>,
    /// HEAD: the bundle `hash` (`sha256:<64 hex>`) a real server reports
    /// for a workspace skill in `skill_refs`, by skill name. The server's
    /// formula is not reproduced (it is not a digest of the content and
    /// files alone), so a fixture mirroring a real database can pin it; a
    /// skill not listed gets the fake's own digest of its content and files.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub skill_hashes: std::collections::BTreeMap<String, String>,
    /// How many of its tasks may be dispatched or running at once; default
    /// [`crate::DEFAULT_MAX_CONCURRENT_TASKS`].
    pub max_concurrent_tasks: Option<u32>,
}

/// A runtime to create, as a registration would.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSeed {
    /// Fixed ID; generated when absent.
    pub id: Option<RuntimeId>,
    /// The workspace it belongs to (must exist).
    pub workspace_id: WorkspaceId,
    /// The daemon that owns it. With one, a later registration by that
    /// daemon with the same provider updates this runtime (keeping its ID).
    pub daemon_id: Option<DaemonId>,
    /// Display name; derived as a registration does when empty.
    pub name: String,
    /// Provider; `unknown` when empty.
    pub provider: String,
    /// Version, kept in the runtime's metadata.
    pub version: String,
    /// `online` unless `offline`.
    pub status: RuntimeStatus,
    /// The machine's name (the runtime's `device_info`).
    pub device_name: String,
}

/// A custom runtime profile of a workspace (HEAD): a command a daemon may
/// register as a runtime of `protocol_family`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeProfileSeed {
    /// Fixed ID (a UUID); generated when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The workspace it belongs to (must exist).
    pub workspace_id: WorkspaceId,
    /// Its name, unique in the workspace.
    pub display_name: String,
    /// The provider its runtimes speak (`claude`, `codex`…).
    pub protocol_family: String,
    /// The command the daemon looks for.
    pub command_name: String,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Arguments always passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixed_args: Vec<String>,
    /// `false`: registering it is 409 and it is not listed. Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A task to queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskSeed {
    /// Fixed ID; generated when absent.
    pub id: Option<TaskId>,
    /// The runtime whose queue it joins (must exist); the task's workspace
    /// is the runtime's.
    pub runtime_id: RuntimeId,
    /// The agent that runs it (a claim includes it when it exists).
    pub agent_id: AgentId,
    /// The issue it works on.
    pub issue_id: IssueId,
    /// Higher is claimed first; equal priorities go in creation order.
    pub priority: i64,
}

/// An issue: its status, title and number. Tasks work on issues; a claim
/// that meets a task of a `done` or `cancelled` issue cancels all of that
/// issue's tasks. HEAD claims name the issue by its title (`thread_name`)
/// and list the agent's other runs with their issues' titles and
/// identifiers (`<workspace issue_prefix>-<number>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssueSeed {
    /// The issue (the `issue_id` of its tasks).
    pub id: IssueId,
    /// `todo`, `in_progress`, `done`, `cancelled`… (free text, as the
    /// server's column); empty: left as it is (open when never set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The issue's title; may be empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// The issue's number within its workspace; when absent, an issue gets
    /// the next free number of its workspace when its first task is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_json_parses() {
        let seed = Seed::from_json(Seed::DEMO_JSON).expect("demo seed parses");
        assert_eq!(seed.workspaces.len(), 1);
        assert!(!seed.tasks.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(Seed::from_json(r#"{"workspace":[]}"#).is_err());
        assert!(Seed::from_json(r#"{"tasks":[{"runtime":"r"}]}"#).is_err());
    }
}
