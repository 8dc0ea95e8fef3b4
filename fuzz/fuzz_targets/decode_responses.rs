//! Response decoding of every call: the first input byte picks one of the 18
//! request builders, the second the statuses, the rest is the answer's body.
//!
//! Checks, for any body: decoding never panics; a 2xx either decodes or is an
//! `Error::Decode` naming the request; a decoded value encodes back to a body
//! that decodes to the same value; a non-2xx is an `Error::Status` whose kept
//! body is at most `MAX_ERROR_BODY_BYTES`, trimmed, and exactly the trimmed
//! body when that was short valid UTF-8.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use multica_api::request::{self, Request};
use multica_api::*;

const SUCCESS: [u16; 3] = [200, 201, 204];
const FAILURE: [u16; 6] = [400, 401, 404, 429, 500, 503];

fuzz_target!(|data: &[u8]| {
    let [route, statuses, body @ ..] = data else { return };
    let ok = SUCCESS[usize::from(statuses & 0x0f) % SUCCESS.len()];
    let failed = FAILURE[usize::from(statuses >> 4) % FAILURE.len()];
    let answer = Answer { ok, failed, body };
    let task = TaskId::new("t/1");
    let runtime = RuntimeId::new("rt 1");
    match route % 18 {
        0 => answer.check(request::register(&RegisterRequest::default()), json),
        1 => answer.check(request::deregister(&[runtime]), ignored),
        2 => answer.check(request::send_heartbeat(&runtime), json),
        3 => answer.check(request::claim_task(&runtime), |task| {
            let mut response = ClaimResponse::default();
            response.task = task.clone();
            json(&response)
        }),
        4 => answer.check(request::list_pending_tasks(&runtime), json),
        5 => answer.check(request::report_usage(&runtime, &[UsageEntry::default()]), ignored),
        6 => answer.check(request::report_ping_result(&runtime, &PingId::new("p"), &PingResult::default()), ignored),
        7 => answer.check(request::get_task_status(&task), |status| json(&TaskStatusResponse::new(status.clone()))),
        8 => answer.check(request::start_task(&task), ignored),
        9 => answer.check(request::report_progress(&task, &TaskProgress::default()), ignored),
        10 => answer.check(request::complete_task(&task, &TaskCompletion::default()), ignored),
        11 => answer.check(request::fail_task(&task, "boom"), ignored),
        12 => answer.check(request::report_task_messages(&task, &[TaskMessage::text(1, "hi")]), ignored),
        13 => answer.check(request::list_task_messages(&task), json),
        14 => answer.check(request::list_workspaces(), json),
        15 => answer.check(request::create_pairing_session(&PairingRequest::default()), json),
        16 => answer.check(request::get_pairing_session("tok/1"), json),
        _ => answer.check(request::claim_pairing_session("tok/1"), json),
    }
});

/// One fuzzed answer, read as a success and as a failure.
struct Answer<'a> {
    ok: u16,
    failed: u16,
    body: &'a [u8],
}

impl Answer<'_> {
    /// `encode` writes a decoded value back as the body the server would send.
    fn check<T: PartialEq + Debug>(&self, request: Result<Request<T>>, encode: impl Fn(&T) -> Vec<u8>) {
        let request = request.expect("fixed arguments are valid");
        let wire = request.wire();
        match request.decode_response(self.ok, self.body) {
            Ok(value) => {
                let again = request.decode_response(self.ok, &encode(&value));
                assert_eq!(again.as_ref().ok(), Some(&value), "re-encoded {value:?} decodes differently: {again:?}");
            }
            Err(Error::Decode { method, path, .. }) => {
                assert_eq!((method, path.as_str()), (wire.method(), &*wire.path))
            }
            Err(other) => panic!("a {} answer failed with {other:?}", self.ok),
        }
        let error = request.decode_response(self.failed, self.body).expect_err("non-2xx is an error");
        let Error::Status { method, ref path, status, ref body, retry_after } = error else {
            panic!("a {} answer gave {error:?}", self.failed)
        };
        assert_eq!((method, path.as_str(), status, retry_after), (wire.method(), &*wire.path, self.failed, None));
        assert!(body.len() <= MAX_ERROR_BODY_BYTES, "kept {} bytes of error body", body.len());
        assert_eq!(body.as_str(), body.trim(), "kept error body is not trimmed");
        if let Ok(text) = std::str::from_utf8(self.body) {
            if self.body.len() <= MAX_ERROR_BODY_BYTES {
                assert_eq!(body.as_str(), text.trim(), "a short UTF-8 error body must be kept whole");
            }
        }
        // Display and the classifiers read the body: they must not panic either.
        let _ = (error.to_string(), error.server_message(), error.is_transient(), error.is_task_not_found());
    }
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("DTOs always encode")
}

/// Calls whose answer the Go client drops: any 2xx body is fine.
fn ignored(_: &()) -> Vec<u8> {
    Vec::new()
}
