//! Rust SDK for the Multica daemon API.
//!
//! Re-exports the four crates: [`api`] (trait, DTOs, errors), [`hyper`] (the
//! production client), [`mock`] (the stateful fake) and [`worker`] (the
//! daemon loop as a library).

pub use multica_api as api;
pub use multica_api::*;
pub use multica_hyper as hyper;
pub use multica_mock as mock;
pub use multica_worker as worker;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
