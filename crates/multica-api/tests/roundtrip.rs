//! Property tests: every DTO and every call survive encode → decode
//! unchanged, and any ID stays one path segment.

#![allow(clippy::unwrap_used)]

use multica_api::*;
use proptest::collection::vec;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9 _./-]{1,12}", any::<String>()]
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof!["[a-f0-9-]{1,36}", "\\PC{1,16}"]
}

fn status() -> impl Strategy<Value = TaskStatus> {
    prop_oneof![
        Just("queued"),
        Just("dispatched"),
        Just("running"),
        Just("completed"),
        Just("failed"),
        Just("cancelled"),
        Just("paused"),
        Just("")
    ]
    .prop_map(TaskStatus::from)
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![any::<i64>().prop_map(Value::from), text().prop_map(Value::from)],
        0..4,
    )
    .prop_map(|map| map.into_iter().collect())
}

fn message() -> impl Strategy<Value = TaskMessage> {
    let kind = prop_oneof![Just("text"), Just("tool_use"), Just("tool_result"), Just("error"), Just("thinking")];
    (any::<i64>(), kind, text(), text(), json_object(), text()).prop_map(|(seq, kind, tool, content, input, output)| {
        TaskMessage { seq, kind: kind.into(), tool, content, input, output }
    })
}

fn record() -> impl Strategy<Value = TaskRecord> {
    let ids = (id(), id(), id(), id(), id());
    let times = (proptest::option::of(text()), proptest::option::of(text()), proptest::option::of(text()), text());
    let outcome = (proptest::option::of(json_object().prop_map(Value::Object)), proptest::option::of(text()));
    (ids, status(), any::<i64>(), times, outcome).prop_map(
        |(
            (id, agent, runtime, issue, workspace),
            status,
            priority,
            (dispatched, started, completed, created),
            (result, error),
        )| {
            let mut built = TaskRecord::default();
            built.id = id.into();
            built.agent_id = agent.into();
            built.runtime_id = runtime.into();
            built.issue_id = issue.into();
            built.workspace_id = workspace.into();
            built.status = status;
            built.priority = priority;
            built.dispatched_at = dispatched;
            built.started_at = started;
            built.completed_at = completed;
            built.result = result;
            built.error = error;
            built.created_at = created;
            built
        },
    )
}

fn task() -> impl Strategy<Value = Task> {
    let skill = (text(), text(), vec((text(), text()), 0..2)).prop_map(|(name, content, files)| {
        let mut built = Skill::default();
        built.name = name;
        built.content = content;
        built.files = files
            .into_iter()
            .map(|(path, content)| {
                let mut built = SkillFile::default();
                built.path = path;
                built.content = content;
                built
            })
            .collect();
        built
    });
    let agent = (id(), text(), text(), vec(skill, 0..2)).prop_map(|(id, name, instructions, skills)| {
        let mut built = TaskAgent::default();
        built.id = id.into();
        built.name = name;
        built.instructions = instructions;
        built.skills = skills;
        built
    });
    let repo = (text(), text()).prop_map(|(url, description)| {
        let mut built = Repo::default();
        built.url = url;
        built.description = description;
        built
    });
    (record(), proptest::option::of(agent), vec(repo, 0..2), text(), text()).prop_map(
        |(record, agent, repos, prior_session_id, prior_work_dir)| {
            let mut built = Task::default();
            built.record = record;
            built.agent = agent;
            built.repos = repos;
            built.prior_session_id = prior_session_id;
            built.prior_work_dir = prior_work_dir;
            built
        },
    )
}

fn usage() -> impl Strategy<Value = UsageEntry> {
    (text(), text(), text(), any::<[i64; 4]>()).prop_map(|(date, provider, model, [i, o, r, w])| UsageEntry {
        date,
        provider,
        model,
        input_tokens: i,
        output_tokens: o,
        cache_read_tokens: r,
        cache_write_tokens: w,
    })
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = serde_json::to_vec(value).unwrap();
    let back: T = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(&back, value, "{}", String::from_utf8_lossy(&bytes));
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (id(), id(), text(), vec((text(), text(), text(), text()), 0..3)).prop_map(|(w, d, device_name, runtimes)| {
            Call::Register(RegisterRequest {
                workspace_id: w.into(),
                daemon_id: d.into(),
                device_name,
                runtimes: runtimes
                    .into_iter()
                    .map(|(name, provider, version, status)| RuntimeSpec {
                        name,
                        provider,
                        version,
                        status: status.into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }),
        vec(id(), 0..3).prop_map(|ids| Call::Deregister { runtime_ids: ids.into_iter().map(Into::into).collect() }),
        text().prop_map(|id| Call::SendHeartbeat { runtime_id: id.into() }),
        id().prop_map(|id| Call::ClaimTask { runtime_id: id.into() }),
        id().prop_map(|id| Call::ListPendingTasks { runtime_id: id.into() }),
        (id(), vec(usage(), 0..3))
            .prop_map(|(id, entries)| Call::ReportUsage { runtime_id: id.into(), entries: entries.into() }),
        (id(), id(), text(), text(), any::<i64>(), prop_oneof![Just("completed"), Just("failed")]).prop_map(
            |(r, p, output, error, duration_ms, status)| Call::ReportPingResult {
                runtime_id: r.into(),
                ping_id: p.into(),
                result: PingResult { status: status.into(), output, error, duration_ms },
            }
        ),
        id().prop_map(|id| Call::GetTaskStatus { task_id: id.into() }),
        id().prop_map(|id| Call::StartTask { task_id: id.into() }),
        (id(), text(), any::<i64>(), any::<i64>()).prop_map(|(id, summary, step, total)| Call::ReportProgress {
            task_id: id.into(),
            progress: TaskProgress { summary, step, total },
        }),
        (id(), text(), text(), text(), text()).prop_map(|(id, output, branch_name, session_id, work_dir)| {
            Call::CompleteTask {
                task_id: id.into(),
                completion: TaskCompletion { output, branch_name, session_id, work_dir, ..Default::default() },
            }
        }),
        (id(), text()).prop_map(|(id, error)| Call::FailTask { task_id: id.into(), error }),
        (id(), vec(message(), 0..4))
            .prop_map(|(id, messages)| Call::ReportTaskMessages { task_id: id.into(), messages: messages.into() }),
        id().prop_map(|id| Call::ListTaskMessages { task_id: id.into() }),
        Just(Call::ListWorkspaces),
        (id(), text(), text(), text(), text()).prop_map(
            |(d, device_name, runtime_name, runtime_type, runtime_version)| {
                Call::CreatePairingSession(PairingRequest {
                    daemon_id: d.into(),
                    device_name,
                    runtime_name,
                    runtime_type,
                    runtime_version,
                })
            }
        ),
        id().prop_map(|token| Call::GetPairingSession { token }),
        id().prop_map(|token| Call::ClaimPairingSession { token }),
    ]
}

/// A non-empty value of a HEAD field: what makes a HEAD body differ from the
/// 3c93ebaf1c one.
fn set_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9 _./:-]{1,12}", "\\PC{1,8}"]
}

/// The calls of server HEAD 1cc46b2697: its bodies of 3c93ebaf1c routes
/// (with at least one HEAD field set, else they are the 3c93ebaf1c call)
/// and its new routes.
fn head_call() -> impl Strategy<Value = Call> {
    let failure = (text(), set_text(), text(), text(), any::<bool>()).prop_map(
        |(error, reason, session_id, work_dir, session_rollout_missing)| TaskFailure {
            failure_reason: reason.into(),
            session_id,
            work_dir,
            session_rollout_missing,
            ..TaskFailure::new(error)
        },
    );
    let task_usage =
        (text(), text(), any::<[i64; 4]>(), any::<i64>()).prop_map(|(provider, model, [i, o, r, w], cost)| TaskUsage {
            provider,
            model,
            input_tokens: i,
            output_tokens: o,
            cache_read_tokens: r,
            cache_write_tokens: w,
            cost_usd_ticks: cost,
        });
    let reasons = proptest::collection::btree_map(set_text(), json_object().prop_map(Value::Object), 1..3);
    prop_oneof![
        (vec(id(), 0..3), reasons).prop_map(|(ids, reasons)| Call::DeregisterWith(DeregisterRequest {
            runtime_ids: ids.into_iter().map(Into::into).collect(),
            offline_reasons: reasons.into_iter().collect(),
        })),
        text().prop_map(|id| Call::SendHeartbeatWith(HeartbeatRequest {
            supports_batch_import: true,
            ..HeartbeatRequest::new(id.into())
        })),
        (id(), failure).prop_map(|(id, failure)| Call::FailTaskWith { task_id: id.into(), failure }),
        (id(), any::<i64>()).prop_map(|(id, since)| Call::ListTaskMessagesSince { task_id: id.into(), since }),
        (id(), vec(id(), 0..3), any::<i64>()).prop_map(|(daemon, runtimes, max_tasks)| {
            Call::ClaimTasks(BatchClaimRequest {
                daemon_id: daemon.into(),
                runtime_ids: runtimes.into_iter().map(Into::into).collect(),
                max_tasks,
            })
        }),
        (id(), id()).prop_map(|(r, t)| Call::ExtendPrepareLease { runtime_id: r.into(), task_id: t.into() }),
        (id(), id(), vec((text(), text(), text()), 0..3)).prop_map(|(r, t, skills)| Call::ResolveSkillBundles {
            runtime_id: r.into(),
            task_id: t.into(),
            request: SkillBundleRequest {
                skills: skills
                    .into_iter()
                    .map(|(id, source, hash)| SkillBundleRef { id, source: source.into(), hash })
                    .collect(),
            },
        }),
        id().prop_map(|r| Call::RecoverOrphans { runtime_id: r.into() }),
        (id(), id(), text(), vec((text(), text()), 0..2), text()).prop_map(|(r, q, status, models, error)| {
            Call::ReportModelList {
                runtime_id: r.into(),
                request_id: q.into(),
                result: ModelListResult {
                    status,
                    models: models
                        .into_iter()
                        .map(|(id, label)| RuntimeModel { id, label, ..Default::default() })
                        .collect(),
                    supported: Some(false),
                    error,
                    ..Default::default()
                },
            }
        }),
        (id(), id(), text(), vec((text(), text()), 0..2)).prop_map(|(r, q, status, skills)| {
            Call::ReportLocalSkills {
                runtime_id: r.into(),
                request_id: q.into(),
                result: LocalSkillsResult {
                    status,
                    skills: skills
                        .into_iter()
                        .map(|(key, name)| LocalSkill { key, name, ..Default::default() })
                        .collect(),
                    ..Default::default()
                },
            }
        }),
        (id(), id(), text(), proptest::option::of(json_object()), text()).prop_map(|(r, q, status, skill, error)| {
            Call::ReportSkillImport {
                runtime_id: r.into(),
                request_id: q.into(),
                result: SkillImportResult { status, skill, error },
            }
        }),
        (id(), id(), text(), text(), text()).prop_map(|(r, u, status, output, error)| Call::ReportUpdateResult {
            runtime_id: r.into(),
            update_id: u.into(),
            result: UpdateResult { status, output, error },
        }),
        (id(), text()).prop_map(|(t, reason)| Call::WaitLocalDirectory {
            task_id: t.into(),
            wait: LocalDirectoryWait { reason }
        }),
        (id(), vec(task_usage, 0..3))
            .prop_map(|(t, usage)| Call::ReportTaskUsage { task_id: t.into(), usage: usage.into() }),
        (id(), text(), text(), text(), text()).prop_map(|(t, branch_name, durable_work_dir, error_message, reason)| {
            Call::AckCancel {
                task_id: t.into(),
                ack: CancelAck { branch_name, durable_work_dir, error_message, failure_reason: reason.into() },
            }
        }),
        (id(), text(), text()).prop_map(|(t, session_id, work_dir)| Call::PinSession {
            task_id: t.into(),
            pin: SessionPin { session_id, work_dir }
        }),
        id().prop_map(|t| Call::GetTaskGcCheck { task_id: t.into() }),
        id().prop_map(|i| Call::GetIssueGcCheck { issue_id: i.into() }),
        id().prop_map(|session_id| Call::GetChatSessionGcCheck { session_id }),
        id().prop_map(|run_id| Call::GetAutopilotRunGcCheck { run_id }),
        (id(), vec(id(), 0..3)).prop_map(|(w, issues)| Call::CheckIssuesGc {
            workspace_id: w.into(),
            issue_ids: issues.into_iter().map(Into::into).collect(),
        }),
        Just(Call::ListDaemonWorkspaces),
        id().prop_map(|w| Call::GetWorkspaceRepos { workspace_id: w.into() }),
        id().prop_map(|w| Call::ListRuntimeProfiles { workspace_id: w.into() }),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(message in message()) {
        round_trip(&message);
    }

    #[test]
    fn tasks_round_trip(task in task()) {
        round_trip(&task);
        round_trip(&{ let mut built = ClaimResponse::default(); built.task = Some(task); built });
    }

    #[test]
    fn usage_round_trips(entry in usage()) {
        round_trip(&entry);
    }

    /// What a client encodes, a server decodes to the same call: the route
    /// table, the path encoding and the body shapes agree.
    #[test]
    fn calls_survive_the_wire(call in call()) {
        let wire = call.to_wire().unwrap();
        let decoded = Call::decode(wire.method().as_str(), &wire.path, wire.body.as_deref().unwrap_or_default()).unwrap();
        prop_assert_eq!(decoded, call);
    }

    /// The same for every HEAD 1cc46b2697 call, the query of the messages
    /// listing included; the call's own path agrees with the wire's.
    #[test]
    fn head_calls_survive_the_wire(call in head_call()) {
        let wire = call.to_wire().unwrap();
        prop_assert_eq!(&call.path().unwrap(), &wire.path);
        let decoded = Call::decode(wire.method().as_str(), &wire.path, wire.body.as_deref().unwrap_or_default()).unwrap();
        prop_assert_eq!(decoded.endpoint(), call.endpoint());
        prop_assert_eq!(decoded, call);
    }

    /// Any non-empty ID is exactly one segment: the path keeps the
    /// template's segment count, holds no `?` or `#`, and decodes back.
    #[test]
    fn any_id_is_one_path_segment(id in "\\PC{1,40}|[./?#% ]{1,6}") {
        let path = Endpoint::ReportPingResult.path(&[&id, &id]).unwrap();
        prop_assert_eq!(path.split('/').count(), Endpoint::ReportPingResult.template().split('/').count());
        prop_assert!(!path.contains(['?', '#', ' ']));
        prop_assert!(!path.split('/').any(|segment| segment == "." || segment == ".."));
        prop_assert_eq!(Endpoint::ReportPingResult.match_path(&path), Some(vec![id.clone(), id]));
    }
}
