#![doc = include_str!("../README.md")]
// Each crate is inlined, so its items have pages here, under the facade's
// paths (`multica::hyper::HyperClient`), not bare links to another crate.

#[doc(inline)]
pub use multica_api as api;
#[doc(inline)]
pub use multica_api::*;
#[doc(inline)]
pub use multica_hyper as hyper;
#[cfg(feature = "mock")]
#[doc(inline)]
pub use multica_mock as mock;
#[doc(inline)]
pub use multica_worker as worker;
