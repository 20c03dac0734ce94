//! A server of the testkit's own (the fault proxy, the local Lambda service, the local AMP and
//! API Gateway endpoints): a tokio runtime on a thread of its own, serving until stopped; stopped
//! and joined on drop; [`serve_http`] is their accept loop, [`serve_https`] the same over TLS (the
//! local Kubernetes API).

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

/// Serves HTTP/1 on `listener` (made non-blocking), each request answered by `handler`, until
/// `stopped`: the accept loop of the testkit's own HTTP servers.
pub(crate) async fn serve_http<H, Fut>(
    listener: std::net::TcpListener,
    stopped: oneshot::Receiver<()>,
    handler: H,
) where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut:
        Future<Output = hyper::Response<http_body_util::Full<hyper::body::Bytes>>> + Send + 'static,
{
    serve(listener, stopped, None, handler).await;
}

/// As [`serve_http`], each connection first going through `tls`'s handshake (a failed handshake
/// closes the connection).
pub(crate) async fn serve_https<H, Fut>(
    listener: std::net::TcpListener,
    stopped: oneshot::Receiver<()>,
    tls: tokio_rustls::TlsAcceptor,
    handler: H,
) where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut:
        Future<Output = hyper::Response<http_body_util::Full<hyper::body::Bytes>>> + Send + 'static,
{
    serve(listener, stopped, Some(tls), handler).await;
}

async fn serve<H, Fut>(
    listener: std::net::TcpListener,
    mut stopped: oneshot::Receiver<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
) where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut:
        Future<Output = hyper::Response<http_body_util::Full<hyper::body::Bytes>>> + Send + 'static,
{
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let answer = handler(req);
                async move { Ok::<_, std::convert::Infallible>(answer.await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match tls {
                None => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await
                }
                Some(tls) => {
                    let Ok(stream) = tls.accept(stream).await else {
                        return;
                    };
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await
                }
            };
        });
    }
}
