//! The `DaemonApi` trait: one dispatch method for every route.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::call::Call;
use crate::error::Result;
use crate::layer::RetryPolicy;
use crate::reply::Reply;

/// What [`DaemonApi::call`] returns once `#[async_trait]` has expanded it:
/// for an implementation that writes `call` out to build its future before
/// boxing it (the hyper client and the layers do, so the boxed future does
/// not hold the call as well).
pub type CallFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply>> + Send + 'a>>;

/// The Multica daemon API, whatever carries it: the hyper client, the
/// in-memory fake, a layer wrapping either, or your own transport.
///
/// One method carries every route: a [`Call`] in, a [`Reply`] out. Callers
/// use the typed methods of [`DaemonApiExt`](crate::DaemonApiExt)
/// (`api.claim_task(&runtime).await`), implemented on top of this for every
/// backend. Because the trait names no route, a route added to the SDK
/// breaks no backend and no layer: a backend that does not know a call
/// answers [`Error::route_not_found`](crate::Error::route_not_found), as a
/// server without the route does.
///
/// Object-safe (use `Arc<dyn DaemonApi>`) and implemented for `&T`, `Box<T>`
/// and `Arc<T>`. Errors are the server's answers as [`crate::Error`] values,
/// whichever backend you use.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use multica::{async_trait, Call, DaemonApi, DaemonApiExt, Error, Reply, Result, RuntimeId};
///
/// /// A backend that knows one route.
/// #[derive(Debug)]
/// struct NeverBusy;
///
/// #[async_trait]
/// impl DaemonApi for NeverBusy {
///     async fn call(&self, call: Call) -> Result<Reply> {
///         match call {
///             Call::ClaimTask { .. } => Ok(Reply::Claimed(None)),
///             other => Err(Error::route_not_found(other.endpoint(), other.endpoint().template())),
///         }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let api = NeverBusy;
/// assert_eq!(api.claim_task(&RuntimeId::new("rt-1")).await?, None);
/// assert!(api.start_task(&"t-1".into()).await.unwrap_err().is_route_not_found());
/// # Ok::<(), Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait DaemonApi: Send + Sync + Debug {
    /// Sends one call of the daemon API and returns its reply.
    async fn call(&self, call: Call) -> Result<Reply>;

    /// Drops idle pooled connections where the backend has any, so the next
    /// call connects afresh. Only transports with a pool act; layers, `&T`,
    /// `Box<T>` and `Arc<T>` forward it, so it reaches the transport through
    /// any stack.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use multica::layer::RetryPolicy;
    /// use multica::{async_trait, Call, DaemonApi, DaemonApiExt, Error, Reply, Result};
    ///
    /// /// A transport with a pool, counting how often it was asked to drop it.
    /// #[derive(Debug, Default)]
    /// struct Pooled { drops: AtomicUsize }
    ///
    /// #[async_trait]
    /// impl DaemonApi for Pooled {
    ///     async fn call(&self, call: Call) -> Result<Reply> {
    ///         Err(Error::route_not_found(call.endpoint(), call.endpoint().template()))
    ///     }
    ///     fn drop_idle_connections(&self) {
    ///         self.drops.fetch_add(1, Ordering::SeqCst);
    ///     }
    /// }
    ///
    /// let transport = Arc::new(Pooled::default());
    /// let api: Arc<dyn DaemonApi> = Arc::new(
    ///     transport.clone().with_timeout(Duration::from_secs(10)).with_retry(RetryPolicy::default()),
    /// );
    /// api.drop_idle_connections();
    /// assert_eq!(transport.drops.load(Ordering::SeqCst), 1);
    /// ```
    fn drop_idle_connections(&self) {}

    /// Sends `call` under `policy`: what the [`Retry`](crate::layer::Retry)
    /// layer asks of the backend it wraps, once per call. The default runs
    /// the SDK's one retry loop ([`RetryPolicy::run`]) around
    /// [`DaemonApi::call`], copying the call for each attempt that another
    /// may follow. A transport that builds its request from a borrowed call
    /// may run the same loop in its own future instead (the hyper client
    /// does): one boxed future per call instead of two, and no copy of the
    /// call. Layers keep the default, so that what they do happens on every
    /// attempt; `&T`, `Box<T>` and `Arc<T>` forward it.
    fn call_retrying<'a>(&'a self, call: Call, policy: &'a RetryPolicy) -> CallFuture<'a> {
        Box::pin(crate::layer::retry_around_calls(self, call, policy))
    }
}

/// Implements `DaemonApi` for a pointer type by forwarding every method.
// Written out rather than with `#[async_trait]`, which would box a second
// future around the pointee's: the pointee's future is handed back as it is.
macro_rules! forward_pointer {
    ($($pointer:ty),+) => {$(
        #[deny(clippy::missing_trait_methods)]
        impl<T: DaemonApi + ?Sized> DaemonApi for $pointer {
            fn call<'life0, 'async_trait>(&'life0 self, call: Call) -> CallFuture<'async_trait>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                (**self).call(call)
            }
            fn drop_idle_connections(&self) {
                (**self).drop_idle_connections()
            }
            fn call_retrying<'a>(&'a self, call: Call, policy: &'a RetryPolicy) -> CallFuture<'a> {
                (**self).call_retrying(call, policy)
            }
        }
    )+};
}

forward_pointer!(&T, Box<T>, Arc<T>);
