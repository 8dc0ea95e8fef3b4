//! Serves the fake over HTTP (work in progress).
fn main() {}
