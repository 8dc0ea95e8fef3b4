//! Property tests for the fields of server HEAD 1cc46b2697: any value of the
//! new types and fields survives encode → decode unchanged, and clearing the
//! HEAD fields gives back the 3c93ebaf1c encoding.

#![allow(clippy::unwrap_used)]

use multica_api::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9 _./:-]{1,12}", any::<String>()]
}

fn reason() -> impl Strategy<Value = FailureReason> {
    prop_oneof![Just("timeout"), Just("runtime_offline"), Just("agent_error.context_overflow"), Just("weird"), Just("")]
        .prop_map(FailureReason::from)
}

fn attribution() -> impl Strategy<Value = TaskAttribution> {
    (text(), any::<bool>(), of(text()), of(text()), of(text())).prop_map(|(source, precise, initiator, kind, retry)| {
        let mut built = TaskAttribution::default();
        built.source = source;
        built.precise = precise;
        built.initiator = initiator.map(|id| {
            let mut built = AttributionActor::default();
            built.id = id;
            built
        });
        built.evidence = kind.map(|kind| {
            let mut built = AttributionEvidence::default();
            built.kind = kind;
            built.ref_id = "i".into();
            built
        });
        built.retry_of_task_id = retry.map(TaskId::from);
        built
    })
}

/// A task row with every HEAD field drawn.
fn record() -> impl Strategy<Value = TaskRecord> {
    let counts = (of(any::<i64>()), of(any::<i64>()), of(text()));
    let dirs = (text(), text(), text(), text(), text());
    let kinds =
        prop_oneof![Just("direct"), Just("chat"), Just("quick_create"), Just("new-kind")].prop_map(TaskKind::from);
    let status = prop_oneof![Just("waiting_local_directory"), Just("deferred"), Just("queued"), Just("")];
    (status, reason(), counts, dirs, of(vec(text(), 0..3)), of(kinds), of(attribution())).prop_map(
        |(
            status,
            failure_reason,
            (attempt, max_attempts, parent),
            (work, rel, durable, rel_durable, branch),
            delivered,
            kind,
            attribution,
        )| {
            let mut built = TaskRecord::default();
            built.id = "t".into();
            built.status = status.into();
            built.failure_reason = failure_reason;
            built.attempt = attempt;
            built.max_attempts = max_attempts;
            built.parent_task_id = parent.map(TaskId::from);
            built.work_dir = work;
            built.relative_work_dir = rel;
            built.durable_work_dir = durable;
            built.relative_durable_work_dir = rel_durable;
            built.branch_name = branch;
            built.delivered_comment_ids = delivered.map(|ids| ids.into_iter().map(CommentId::from).collect());
            built.kind = kind;
            built.attribution = attribution;
            built
        },
    )
}

/// A claim object with every HEAD field drawn.
fn task() -> impl Strategy<Value = Task> {
    let skill_ref = (text(), text(), any::<i64>()).prop_map(|(id, hash, size_bytes)| {
        let mut built = SkillRef::default();
        built.id = id;
        built.source = SkillSource::Builtin;
        built.hash = hash;
        built.size_bytes = size_bytes;
        built.files = vec![{
            let mut built = SkillRefFile::default();
            built.path = "a".into();
            built.sha256 = "sha256:0".into();
            built.size_bytes = 1;
            built
        }];
        built
    });
    let agent =
        (vec(skill_ref, 0..2), vec(text(), 0..2), text(), of(text())).prop_map(|(skill_refs, args, model, id)| {
            let mut built = TaskAgent::default();
            built.skill_refs = skill_refs;
            built.custom_args = args;
            built.custom_env = [("K".to_owned(), "V".to_owned())].into_iter().collect();
            built.model = model;
            built.skills = vec![{
                let mut built = Skill::default();
                built.id = id;
                built.name = "s".into();
                built
            }];
            built
        });
    let sibling = (text(), of(text())).prop_map(|(issue_title, started_at)| {
        let mut built = SiblingRun::default();
        built.task_id = "s".into();
        built.issue_title = issue_title;
        built.status = TaskStatus::Running;
        built.started_at = started_at;
        built
    });
    let strings = (text(), text(), text(), text());
    let flags = (any::<bool>(), any::<bool>());
    (record(), of(agent), vec(sibling, 0..2), strings, flags, of(text()), of(text())).prop_map(
        |(record, agent, active_sibling_runs, (context, thread, user, profile), (leader, unavailable), token, mdt)| {
            let mut built = Task::default();
            built.record = record;
            built.agent = agent;
            built.active_sibling_runs = active_sibling_runs;
            built.workspace_context = context;
            built.thread_name = thread;
            built.requesting_user_name = user;
            built.requesting_user_profile_description = profile;
            built.leader_role_resolved = leader;
            built.prior_session_resume_unavailable = unavailable;
            built.auth_token = token.map(SecretToken::from);
            built.remote_mcp_daemon_token = mdt.map(SecretToken::from);
            built
        },
    )
}

fn failure() -> impl Strategy<Value = TaskFailure> {
    (text(), reason(), text(), text(), any::<bool>()).prop_map(|(error, reason, session, dir, missing)| TaskFailure {
        session_rollout_missing: missing,
        durable_work_dir: dir.clone(),
        ..TaskFailure::new(error).with_reason(reason).with_session(session, dir)
    })
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = serde_json::to_vec(value).unwrap();
    let back: T = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(&back, value, "{}", String::from_utf8_lossy(&bytes));
}

proptest! {
    #[test]
    fn head_task_rows_round_trip(record in record()) {
        round_trip(&record);
    }

    #[test]
    fn head_claims_round_trip(task in task()) {
        round_trip(&task);
        round_trip(&{ let mut built = BatchClaimResponse::default(); built.tasks = vec![task.clone(), task]; built });
    }

    /// Without its HEAD fields a row encodes as 3c93ebaf1c sends it.
    #[test]
    fn clearing_head_fields_gives_the_3c93ebaf1c_row(record in record()) {
        let bare = { let mut built = TaskRecord::default(); built.id = record.id.clone(); built.status = record.status.clone(); built };
        let cleared = { let mut built = record; built.failure_reason = FailureReason::default(); built.attempt = None; built.max_attempts = None; built.parent_task_id = None; built.work_dir = String::new(); built.relative_work_dir = String::new(); built.durable_work_dir = String::new(); built.relative_durable_work_dir = String::new(); built.branch_name = String::new(); built.delivered_comment_ids = None; built.kind = None; built.attribution = None; built };
        prop_assert_eq!(serde_json::to_string(&cleared).unwrap(), serde_json::to_string(&bare).unwrap());
    }

    #[test]
    fn failures_round_trip_and_start_with_the_error(failure in failure()) {
        round_trip(&failure);
        let text = serde_json::to_string(&failure).unwrap();
        prop_assert!(text.starts_with(r#"{"error":"#), "{}", text);
        if failure.failure_reason.is_empty() && failure.session_id.is_empty() && failure.work_dir.is_empty()
            && !failure.session_rollout_missing
        {
            prop_assert_eq!(text, serde_json::to_string(&TaskFailure::new(failure.error.clone())).unwrap());
        }
    }

    #[test]
    fn usage_reports_round_trip(entries in vec((text(), text(), any::<[i64; 5]>()), 0..3)) {
        let usage = entries
            .into_iter()
            .map(|(provider, model, [i, o, r, w, c])| TaskUsage {
                provider,
                model,
                input_tokens: i,
                output_tokens: o,
                cache_read_tokens: r,
                cache_write_tokens: w,
                cost_usd_ticks: c,
            })
            .collect();
        round_trip(&TaskUsageReport { usage });
    }

    #[test]
    fn cancel_acks_round_trip(branch in text(), dir in text(), message in text(), reason in reason()) {
        round_trip(&CancelAck { branch_name: branch, durable_work_dir: dir, error_message: message, failure_reason: reason });
    }
}
