//! A real local HTTP backend standing in for a cluster's service: it answers the health-check
//! path and serves traffic, and a test switches it healthy, unhealthy or down. The strict moto
//! probes it once a target mapped to it is in use ([`crate::LocalAws::map_target`]).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;

/// How a [`Backend`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendMode {
    /// 200 on every path.
    Healthy,
    /// 500 on every path.
    Unhealthy,
    /// Connections are closed without an answer.
    Down,
}

#[derive(Debug)]
struct Shared {
    mode: AtomicU8,
    requests: AtomicU64,
    stop: AtomicBool,
}

/// One local backend on 127.0.0.1, on its own thread; stopped when dropped.
#[derive(Debug)]
pub struct Backend {
    addr: SocketAddr,
    name: String,
    shared: Arc<Shared>,
}

fn mode_of(v: u8) -> BackendMode {
    match v {
        0 => BackendMode::Healthy,
        1 => BackendMode::Unhealthy,
        _ => BackendMode::Down,
    }
}

fn code_of(m: BackendMode) -> u8 {
    match m {
        BackendMode::Healthy => 0,
        BackendMode::Unhealthy => 1,
        BackendMode::Down => 2,
    }
}

impl Backend {
    /// Starts a healthy backend whose answers name it (`name`, e.g. the cluster's version).
    pub fn start(name: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a backend")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            mode: AtomicU8::new(0),
            requests: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let (s, body) = (shared.clone(), name.to_string());
        std::thread::Builder::new()
            .name(format!("backend-{name}"))
            .spawn(move || serve(&listener, &s, &body))?;
        Ok(Self {
            addr,
            name: name.to_string(),
            shared,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The name its answers carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Switches how it answers.
    pub fn set(&self, mode: BackendMode) {
        self.shared.mode.store(code_of(mode), Ordering::SeqCst);
    }

    /// How it answers now.
    pub fn mode(&self) -> BackendMode {
        mode_of(self.shared.mode.load(Ordering::SeqCst))
    }

    /// Requests answered so far (health checks included).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(listener: &TcpListener, shared: &Shared, name: &str) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, shared, name),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn answer(mut stream: TcpStream, shared: &Shared, name: &str) {
    let mode = mode_of(shared.mode.load(Ordering::SeqCst));
    if mode == BackendMode::Down {
        return; // dropped: closed without an answer
    }
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0_u8; 4096];
    let _ = stream.read(&mut buf);
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let (status, body) = match mode {
        BackendMode::Healthy => ("200 OK", name.to_string()),
        _ => ("500 Internal Server Error", format!("{name}: unhealthy")),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}
