//! Rust SDK for the Multica daemon API.
//!
//! Re-exports the three crates: [`api`] (trait, DTOs, errors), [`hyper`] (the
//! production client) and [`mock`] (the stateful fake).

pub use multica_api as api;
pub use multica_api::*;
pub use multica_hyper as hyper;
pub use multica_mock as mock;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
