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
        TaskAttribution {
            source,
            precise,
            initiator: initiator.map(|id| AttributionActor { id }),
            evidence: kind.map(|kind| AttributionEvidence { kind, ref_id: "i".into() }),
            retry_of_task_id: retry.map(TaskId::from),
            ..TaskAttribution::default()
        }
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
            TaskRecord {
                id: "t".into(),
                status: status.into(),
                failure_reason,
                attempt,
                max_attempts,
                parent_task_id: parent.map(TaskId::from),
                work_dir: work,
                relative_work_dir: rel,
                durable_work_dir: durable,
                relative_durable_work_dir: rel_durable,
                branch_name: branch,
                delivered_comment_ids: delivered.map(|ids| ids.into_iter().map(CommentId::from).collect()),
                kind,
                attribution,
                ..TaskRecord::default()
            }
        },
    )
}

/// A claim object with every HEAD field drawn.
fn task() -> impl Strategy<Value = Task> {
    let skill_ref = (text(), text(), any::<i64>()).prop_map(|(id, hash, size_bytes)| SkillRef {
        id,
        source: SkillSource::Builtin,
        hash,
        size_bytes,
        files: vec![SkillRefFile { path: "a".into(), sha256: "sha256:0".into(), size_bytes: 1 }],
        ..SkillRef::default()
    });
    let agent =
        (vec(skill_ref, 0..2), vec(text(), 0..2), text(), of(text())).prop_map(|(skill_refs, args, model, id)| {
            TaskAgent {
                skill_refs,
                custom_args: args,
                custom_env: [("K".to_owned(), "V".to_owned())].into_iter().collect(),
                model,
                skills: vec![Skill { id, name: "s".into(), ..Skill::default() }],
                ..TaskAgent::default()
            }
        });
    let sibling = (text(), of(text())).prop_map(|(issue_title, started_at)| SiblingRun {
        task_id: "s".into(),
        issue_title,
        status: TaskStatus::Running,
        started_at,
        ..SiblingRun::default()
    });
    let strings = (text(), text(), text(), text());
    let flags = (any::<bool>(), any::<bool>());
    (record(), of(agent), vec(sibling, 0..2), strings, flags, of(text()), of(text())).prop_map(
        |(record, agent, active_sibling_runs, (context, thread, user, profile), (leader, unavailable), token, mdt)| {
            Task {
                record,
                agent,
                active_sibling_runs,
                workspace_context: context,
                thread_name: thread,
                requesting_user_name: user,
                requesting_user_profile_description: profile,
                leader_role_resolved: leader,
                prior_session_resume_unavailable: unavailable,
                auth_token: token.map(SecretToken::from),
                remote_mcp_daemon_token: mdt.map(SecretToken::from),
                ..Task::default()
            }
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
        round_trip(&BatchClaimResponse { tasks: vec![task.clone(), task] });
    }

    /// Without its HEAD fields a row encodes as 3c93ebaf1c sends it.
    #[test]
    fn clearing_head_fields_gives_the_3c93ebaf1c_row(record in record()) {
        let bare = TaskRecord { id: record.id.clone(), status: record.status.clone(), ..TaskRecord::default() };
        let cleared = TaskRecord {
            failure_reason: FailureReason::default(),
            attempt: None,
            max_attempts: None,
            parent_task_id: None,
            work_dir: String::new(),
            relative_work_dir: String::new(),
            durable_work_dir: String::new(),
            relative_durable_work_dir: String::new(),
            branch_name: String::new(),
            delivered_comment_ids: None,
            kind: None,
            attribution: None,
            ..record
        };
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
