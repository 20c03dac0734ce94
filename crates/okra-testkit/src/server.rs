//! A server of the testkit's own (the fault proxy, the local Lambda service): a tokio runtime on
//! a thread of its own, serving until stopped; stopped and joined on drop.

use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;

/// A running server thread.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve` (given the receiver that says when to stop) on a new runtime in thread `name`.
    pub(crate) fn spawn<F, Fut>(name: &str, serve: F) -> anyhow::Result<Self>
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name(name)
            .build()
            .with_context(|| format!("the runtime of {name}"))?;
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                rt.block_on(serve(stopped));
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
