//! How HEAD 1cc46b2697 reads a failure's text (its `taskfailure` package):
//! the `failure_reason` a fail without one gets, the legacy daemon labels it
//! upgrades, and the errors after which a session must not be resumed.

/// The `failure_reason` of an error text that came without one: the first
/// family whose witnesses the (lower-cased, trimmed) text contains.
pub(super) fn classify(raw_error: &str) -> &'static str {
    let trimmed = raw_error.trim();
    if trimmed.is_empty() {
        return "agent_error.unknown";
    }
    let lower = trimmed.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["context length", "context_length_exceeded", "maximum context", "prompt is too long"])
        || has(&["context size has been exceeded"])
        || has(CONTEXT_WINDOW_EXCEEDED)
        || (lower.contains("token") && lower.contains("limit"))
    {
        "agent_error.context_overflow"
    } else if lower.contains("missing environment variable")
        || (lower.contains("missing") && lower.contains("api_key"))
        || (lower.contains("api key") && lower.contains("required"))
        || has(&["no llm provider configured", "no provider configured"])
    {
        "agent_error.missing_config"
    } else if has_status_code(&lower, |code| code == 401 || code == 403)
        || has(&[
            "unauthorized",
            "login required",
            "not logged in",
            "please login again",
            "refresh token",
            "invalid api key",
            "access token",
            "subscription access",
            "does not have access",
            "you may not have access",
        ])
    {
        "agent_error.provider_auth_or_access"
    } else if has_status_code(&lower, |code| code == 402)
        || has(&[
            "insufficient_balance",
            "balance is too low",
            "monthly usage limit",
            "usage limit",
            "you've hit your limit",
            "you\u{2019}ve hit your limit",
            "credits",
            "quota",
        ])
    {
        "agent_error.provider_quota_limit"
    } else if has_status_code(&lower, |code| code == 429 || code == 529)
        || has(&["rate limit", "overloaded", "no capacity available"])
    {
        "agent_error.provider_capacity_or_rate_limit"
    } else if has(&[
        "server had an error",
        "provider returned error",
        "internal error",
        "service unavailable",
        "bad gateway",
    ]) || has_status_code(&lower, |code| (500..600).contains(&code))
    {
        "agent_error.provider_server_error"
    } else if has(&[
        "stream disconnected",
        OPENCODE_STREAM_ENDED,
        "connection closed",
        "mid-response",
        "error sending request",
        "unable to connect",
        "dial tcp",
        "connection refused",
        "connectionrefused",
        "dns",
        "i/o timeout",
        "deadline exceeded",
        "timeout exceeded while awaiting",
    ]) {
        "agent_error.provider_network"
    } else if (lower.contains("model") && lower.contains("not found"))
        || has(&["unknown model", "selected model", "http 404", "404 page not found"])
    {
        "agent_error.model_not_found_or_unavailable"
    } else if has(&["returned empty output", "returned no parseable output"]) {
        "agent_error.empty_or_unparseable_output"
    } else if lower.contains("timed out after") {
        "agent_error.agent_timeout"
    } else if has(&["executable not found", "exec format error"]) {
        "agent_error.runtime_missing_executable"
    } else if has(&["below the minimum supported version", "requires a newer version"]) {
        "agent_error.runtime_version_unsupported"
    } else if has(&[
        "exit status",
        "signal",
        "panic",
        "sigsegv",
        "process exited",
        "start codex:",
        "pipe has been ended",
        "file already closed",
        "initialize failed",
    ]) {
        "agent_error.process_failure"
    } else {
        "agent_error.unknown"
    }
}

/// Texts that say the context window was exceeded.
const CONTEXT_WINDOW_EXCEEDED: &[&str] = &["context window limit", "model_context_window_exceeded", "prompt_too_long"];
const OPENCODE_STREAM_ENDED: &str = "opencode stream ended";

/// Whether the text holds a 3-digit number, not part of a longer one,
/// that `wanted` accepts (an HTTP status in an error message).
fn has_status_code(text: &str, wanted: impl Fn(u32) -> bool) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 3)
        .filter_map(|run| run.parse::<u32>().ok())
        .any(wanted)
}

/// The reason a daemon sent, with the labels older daemons gave some
/// failures upgraded to today's (`resolve skill bundles:` →
/// `skill_bundle_unavailable`, a context-window text →
/// `agent_error.context_overflow`, an ended opencode stream →
/// `agent_error.provider_network`, an openclaw config deadline →
/// `runtime_cli_timeout`).
pub(super) fn normalize_daemon_reason(reason: &str, raw_error: &str) -> String {
    let lower = raw_error.to_lowercase();
    let catchall = matches!(reason, "agent_error.unknown" | "agent_error");
    if (catchall || reason == "agent_error.provider_network") && raw_error.trim().starts_with("resolve skill bundles:")
    {
        return "skill_bundle_unavailable".to_owned();
    }
    if catchall && CONTEXT_WINDOW_EXCEEDED.iter().any(|w| lower.contains(w)) {
        return "agent_error.context_overflow".to_owned();
    }
    if (catchall || reason == "agent_error.process_failure") && lower.trim().starts_with(OPENCODE_STREAM_ENDED) {
        return "agent_error.provider_network".to_owned();
    }
    if (catchall || reason == "agent_error.provider_network")
        && lower.contains("prepare openclaw config")
        && lower.contains("deadline exceeded")
    {
        return "runtime_cli_timeout".to_owned();
    }
    reason.to_owned()
}

/// A provider that could not resolve its credentials: replaying the session
/// reproduces the error.
pub(super) fn auth_method_unresolved(error: &str) -> bool {
    error.to_lowercase().contains("could not resolve authentication method")
}

/// A provider that refused the history itself (an empty message at some
/// position): replaying the session reproduces the error.
pub(super) fn unresumable_history(error: &str) -> bool {
    let lower = error.to_lowercase();
    let empty = [
        "must not be empty",
        "must be non-empty",
        "must be nonempty",
        "must have non-empty",
        "must have nonempty",
        "non-empty content",
        "nonempty content",
        "cannot be empty",
        "should not be empty",
    ]
    .iter()
    .any(|w| lower.contains(w));
    empty && locates_history_message(&lower)
}

/// `role…assistant` (up to two separators), `assistant message`, `message at
/// position`, `messages.N`, `messages[N`.
fn locates_history_message(lower: &str) -> bool {
    if ["assistant message", "message at position"].iter().any(|w| lower.contains(w)) {
        return true;
    }
    let followed_by_digit = |marker: &str| {
        lower
            .match_indices(marker)
            .any(|(at, _)| lower[at + marker.len()..].chars().next().is_some_and(|c| c.is_ascii_digit()))
    };
    if followed_by_digit("messages.") || followed_by_digit("messages[") {
        return true;
    }
    lower.match_indices("role").any(|(at, _)| {
        let next: Vec<char> = lower[at + 4..].chars().take(11).collect();
        (0..=2).any(|n| {
            next.len() >= n
                && next[..n].iter().all(|c| !c.is_ascii_alphanumeric())
                && next[n..].iter().collect::<String>().starts_with("assistant")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_failure_text_as_head_does() {
        assert_eq!(classify(""), "agent_error.unknown");
        assert_eq!(classify("agent crashed"), "agent_error.unknown");
        assert_eq!(classify("API Error: 401 Unauthorized"), "agent_error.provider_auth_or_access");
        assert_eq!(classify("HTTP 529 overloaded"), "agent_error.provider_capacity_or_rate_limit");
        assert_eq!(classify("upstream said 502"), "agent_error.provider_server_error");
        assert_eq!(classify("error 5020 happened"), "agent_error.unknown");
        assert_eq!(classify("dial tcp 10.0.0.1:443: connection refused"), "agent_error.provider_network");
        assert_eq!(classify("Prompt is too long"), "agent_error.context_overflow");
        assert_eq!(classify("claude exited: exit status 1"), "agent_error.process_failure");
        assert_eq!(classify("model claude-9 not found"), "agent_error.model_not_found_or_unavailable");
    }

    #[test]
    fn upgrades_legacy_daemon_labels() {
        assert_eq!(normalize_daemon_reason("agent_error", "resolve skill bundles: 404"), "skill_bundle_unavailable");
        assert_eq!(
            normalize_daemon_reason("agent_error.unknown", "hit prompt_too_long"),
            "agent_error.context_overflow"
        );
        assert_eq!(normalize_daemon_reason("timeout", "resolve skill bundles: x"), "timeout");
        assert_eq!(normalize_daemon_reason("weird_reason", "x"), "weird_reason");
    }

    #[test]
    fn finds_unresumable_histories() {
        assert!(unresumable_history("messages.3.content: text content blocks must be non-empty"));
        assert!(unresumable_history("Message at position 4 must not be empty"));
        assert!(!unresumable_history("content must not be empty"));
        assert!(auth_method_unresolved("Could not resolve authentication method. Expected api_key"));
    }
}
