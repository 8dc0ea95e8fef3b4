//! Newtype identifiers.
//!
//! Every call of the daemon API takes IDs of several kinds (a runtime, a task,
//! a ping…), all of them strings on the wire. Distinct types turn "passed a
//! task ID where a runtime ID belongs" into a compile error, at the price of a
//! `.into()` when an ID comes from a plain string. They serialize as plain
//! JSON strings and never validate their content: the server owns the format.

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this kind of ID.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The ID as it travels on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the ID into its string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A workspace on the server (a UUID string).
    WorkspaceId
);
id_type!(
    /// A runtime: one agent provider registered by one daemon.
    RuntimeId
);
id_type!(
    /// A task queued for a runtime.
    TaskId
);
id_type!(
    /// An agent of a workspace.
    AgentId
);
id_type!(
    /// An issue a task works on.
    IssueId
);
id_type!(
    /// A ping the server asks a runtime to answer.
    PingId
);
id_type!(
    /// The stable identity a daemon registers under (chosen by the daemon).
    DaemonId
);
id_type!(
    /// A user of the server (a UUID string): the owner of a runtime, the
    /// person a task is attributed to. Server HEAD 1cc46b2697 sends it;
    /// 3c93ebaf1c does not.
    UserId
);
id_type!(
    /// A comment on an issue (a UUID string), as listed in a task's
    /// `delivered_comment_ids` at server HEAD 1cc46b2697.
    CommentId
);
id_type!(
    /// A custom runtime profile of a workspace (a UUID string), named in a
    /// registration at server HEAD 1cc46b2697 (3c93ebaf1c has no profiles).
    ProfileId
);
id_type!(
    /// A request a user made of a runtime at server HEAD 1cc46b2697 (model
    /// list, local skills, a skill import, an update), handed to the daemon
    /// by a heartbeat: 32 lower-case hex digits, not a UUID.
    RuntimeRequestId
);
