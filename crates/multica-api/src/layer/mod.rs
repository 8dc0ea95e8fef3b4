//! Layers: wrappers that take any [`DaemonApi`](crate::DaemonApi) and are
//! one, so the fake, the hyper client and your own transport all get the
//! same cross-cutting behaviour (as opendal layers or object_store's wrapper
//! stores).
//!
//! - [`Timeout`]: a deadline per call, overridable per route.
//! - [`Retry`]: retries transient failures of calls that are safe to repeat,
//!   as [`RetryPolicy`] says.
//! - `Tracing` (feature `tracing`): one span per call.
//!
//! Stack them with [`DaemonApiExt`](crate::DaemonApiExt), innermost first.
//! Put the timeout inside the retry, so that each attempt gets its own
//! deadline and an attempt that hangs becomes a retryable timeout; put
//! tracing outermost for one span per logical call, or innermost for one
//! span per attempt:
//!
//! ```
//! # mod multica { pub use multica_api::*; }
//! use std::time::Duration;
//! use multica::layer::RetryPolicy;
//! use multica::{DaemonApi, DaemonApiExt};
//!
//! fn production_stack<A: DaemonApi>(backend: A) -> impl DaemonApi {
//!     backend
//!         .with_timeout(Duration::from_secs(30)) // each attempt
//!         .with_retry(RetryPolicy::default()) // around the attempts
//! }
//! ```

mod retry;
#[cfg(test)]
mod test_support;
mod timeout;
#[cfg(feature = "tracing")]
mod tracing;

#[cfg(feature = "tracing")]
pub use self::tracing::Tracing;
pub(crate) use retry::retry_around_calls;
pub use retry::{Retry, RetryPolicy, SAFE_TO_REPEAT};
pub use timeout::Timeout;

/// Makes `$layer<A>`, whose field `inner: A` is the wrapped backend, a
/// layer: `inner()` and `into_inner()` accessors, and `DaemonApi` by sending
/// every call through the layer's `around(call)` and forwarding
/// `drop_idle_connections`. A layer sees a [`Call`](crate::Call) and its
/// [`Endpoint`](crate::Endpoint), never a list of routes, so a route added
/// to the SDK passes through every layer unchanged.
macro_rules! impl_layer {
    ($layer:ident, accessors only) => {
        impl<A> $layer<A> {
            /// The wrapped backend.
            pub fn inner(&self) -> &A {
                &self.inner
            }

            /// Unwraps the backend.
            pub fn into_inner(self) -> A {
                self.inner
            }
        }
    };
    ($layer:ident) => {
        impl_layer!($layer, accessors only);

        // Written out rather than with `#[async_trait]`, whose future would
        // hold the call a second time beside `around`'s.
        #[deny(clippy::missing_trait_methods)]
        impl<A: $crate::DaemonApi> $crate::DaemonApi for $layer<A> {
            fn call<'life0, 'async_trait>(&'life0 self, call: $crate::Call) -> $crate::CallFuture<'async_trait>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(self.around(call))
            }
            fn drop_idle_connections(&self) {
                self.inner.drop_idle_connections()
            }
            // The default: the loop around this layer's `call`, so that the
            // layer acts on every attempt.
            fn call_retrying<'a>(
                &'a self,
                call: $crate::Call,
                policy: &'a $crate::layer::RetryPolicy,
            ) -> $crate::CallFuture<'a> {
                Box::pin($crate::layer::retry_around_calls(self, call, policy))
            }
        }
    };
}
pub(crate) use impl_layer;
