//! A test server on a thread and runtime of its own, as a separate process
//! would be: the test's runtime then counts only the client's tasks, and a
//! counting allocator can tell the client's allocations from the server's.
//! Dropping it stops the server and joins its thread.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;

pub struct OnThread<S> {
    server: Option<S>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<S: Send + 'static> OnThread<S> {
    /// Runs `start` on a new current-thread runtime on a new thread and
    /// keeps that runtime running until dropped.
    pub fn start<F, Fut>(start: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = S>,
    {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                started_tx.send(start().await).unwrap_or_else(|_| panic!("the test went away"));
                let _ = stopped.await;
            });
        });
        let server = started_rx.recv().unwrap();
        Self { server: Some(server), stop: Some(stop), thread: Some(thread) }
    }

    pub fn server(&self) -> &S {
        self.server.as_ref().unwrap()
    }
}

impl<S> Drop for OnThread<S> {
    fn drop(&mut self) {
        drop(self.server.take());
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
