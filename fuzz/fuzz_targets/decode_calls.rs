//! How a server reads a request: `Call::decode(method, path, body)`.
//!
//! Input: the first byte picks the method (mostly GET or POST, sometimes
//! other or arbitrary bytes), then the path up to the first newline (bytes
//! read as lossy UTF-8), then the body. Checks: decoding never panics, and a
//! decoded call sent again (`to_wire`, then `decode`) is the same call.

#![no_main]

use libfuzzer_sys::fuzz_target;
use multica_api::{Call, Endpoint, Error};

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else { return };
    let (method, rest) = match selector % 8 {
        0..=2 => ("POST".to_owned(), rest),
        3..=4 => ("GET".to_owned(), rest),
        5 => ("DELETE".to_owned(), rest),
        6 => ("post".to_owned(), rest),
        _ => {
            let len = rest.first().map_or(0, |n| usize::from(n % 8)).min(rest.len().saturating_sub(1));
            let method = rest.get(1..1 + len).unwrap_or_default();
            (String::from_utf8_lossy(method).into_owned(), rest.get(1 + len..).unwrap_or_default())
        }
    };
    let (path, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let path = String::from_utf8_lossy(path);
    let Ok(call) = Call::decode(&method, &path, body) else { return };
    let endpoint = call.endpoint();
    assert_eq!(endpoint.method().as_str(), method, "{call:?} decoded from another method");
    match call.to_wire() {
        Ok(wire) => {
            assert_eq!(wire.endpoint, endpoint);
            let again = Call::decode(wire.method().as_str(), &wire.path, wire.body.as_deref().unwrap_or_default());
            assert_eq!(again.as_ref().ok(), Some(&call), "sent as {wire:?}: {again:?}");
        }
        Err(Error::InvalidArgument(why)) => {
            let params = Endpoint::recognize(&method, &path).map(|(_, params)| params).unwrap_or_default();
            assert!(params.iter().any(String::is_empty), "{call:?} cannot be sent ({why}) without an empty ID");
        }
        Err(other) => panic!("{call:?} cannot be sent: {other:?}"),
    }
});
