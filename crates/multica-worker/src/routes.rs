//! What the worker has learned about the server's routes: a route that
//! server 3c93ebaf1c lacks is tried until the server answers it with Go's
//! router 404 ([`Error::is_route_not_found`]), then never again, and that
//! answer is no error.

use std::sync::atomic::{AtomicBool, Ordering};

use multica_api::Error;

/// A route added after server 3c93ebaf1c that the worker uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LaterRoute {
    /// `POST /runtimes/{rid}/tasks/{tid}/prepare-lease`.
    PrepareLease,
    /// `POST /tasks/{id}/cancel-ack`.
    CancelAck,
    /// `POST /tasks/{id}/usage`.
    TaskUsage,
    /// `POST /tasks/{id}/session`.
    SessionPin,
    /// `POST /runtimes/{rid}/recover-orphans`.
    RecoverOrphans,
    /// `POST /runtimes/{rid}/tasks/{tid}/skill-bundles/resolve`.
    SkillBundles,
}

/// Which later routes the server turned out not to have.
#[derive(Debug, Default)]
pub(crate) struct ServerRoutes {
    missing: [AtomicBool; 6],
}

impl ServerRoutes {
    /// Whether `route` may exist (not yet answered with a router 404).
    pub(crate) fn may_have(&self, route: LaterRoute) -> bool {
        !self.missing[route as usize].load(Ordering::Relaxed)
    }

    /// Remembers that the server does not have `route`.
    pub(crate) fn lacks(&self, route: LaterRoute) {
        self.missing[route as usize].store(true, Ordering::Relaxed);
    }

    /// Sorts out the answer of a call of `route`: `None` when the server
    /// does not have the route (remembered), else the answer.
    pub(crate) fn answer<T>(&self, route: LaterRoute, answer: Result<T, Error>) -> Option<Result<T, Error>> {
        match answer {
            Err(error) if error.is_route_not_found() => {
                self.lacks(route);
                None
            }
            answer => Some(answer),
        }
    }
}
