//! A real local HTTP backend standing in for a cluster's service: it answers the health-check
//! path and serves traffic, and a test switches it healthy, unhealthy or down. The strict moto
//! probes it once a target mapped to it is in use ([`crate::LocalAws::map_target`]).
//!
//! It also exposes `/metrics` in Prometheus' text format, as a service instrumented with a
//! Prometheus client would: `http_requests_total{code}` (a counter) and
//! `http_request_duration_seconds` (a histogram). Each scrape adds 100 requests to the counters,
//! of which the share the test set ([`Backend::set_error_ratio`]) answered 500, all at the
//! latency the test set ([`Backend::set_latency`]), so that `rate()` over any window shows
//! exactly what the test drives.

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
    /// Per mille of the requests a scrape adds that answered 500.
    error_permille: AtomicU64,
    /// The latency of the requests a scrape adds, in milliseconds.
    latency_ms: AtomicU64,
    /// The counters so far: requests that answered 200, and 500.
    ok_total: AtomicU64,
    err_total: AtomicU64,
    scrapes: AtomicU64,
    /// The histogram's cumulative bucket counts, and its sum in milliseconds.
    buckets: [AtomicU64; BUCKETS.len()],
    sum_ms: AtomicU64,
}

/// The histogram's buckets (seconds), as Prometheus clients' defaults.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Requests each scrape adds.
const PER_SCRAPE: u64 = 100;

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
            error_permille: AtomicU64::new(0),
            latency_ms: AtomicU64::new(20),
            ok_total: AtomicU64::new(0),
            err_total: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            buckets: Default::default(),
            sum_ms: AtomicU64::new(0),
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

    /// The share (0.0–1.0) of the requests each later scrape adds that answered 500.
    pub fn set_error_ratio(&self, ratio: f64) {
        let permille = (ratio.clamp(0.0, 1.0) * 1000.0).round() as u64;
        self.shared.error_permille.store(permille, Ordering::SeqCst);
    }

    /// The latency of the requests each later scrape adds.
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.shared.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// How many times `/metrics` was read.
    pub fn scrapes(&self) -> u64 {
        self.shared.scrapes.load(Ordering::SeqCst)
    }
}

/// `/metrics`: the counters after this scrape's 100 requests.
fn metrics_text(shared: &Shared) -> String {
    let err = PER_SCRAPE * shared.error_permille.load(Ordering::SeqCst) / 1000;
    let ok_total = shared
        .ok_total
        .fetch_add(PER_SCRAPE - err, Ordering::SeqCst)
        + PER_SCRAPE
        - err;
    let err_total = shared.err_total.fetch_add(err, Ordering::SeqCst) + err;
    let scrapes = shared.scrapes.fetch_add(1, Ordering::SeqCst) + 1;
    let latency = shared.latency_ms.load(Ordering::SeqCst) as f64 / 1000.0;
    let count = ok_total + err_total;
    let mut out = String::new();
    out.push_str("# HELP http_requests_total Requests served, by status code.\n");
    out.push_str("# TYPE http_requests_total counter\n");
    out.push_str(&format!("http_requests_total{{code=\"200\"}} {ok_total}\n"));
    out.push_str(&format!(
        "http_requests_total{{code=\"500\"}} {err_total}\n"
    ));
    out.push_str("# HELP http_request_duration_seconds Request latency.\n");
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    let latency_ms = shared.latency_ms.load(Ordering::SeqCst);
    let sum_ms = shared
        .sum_ms
        .fetch_add(PER_SCRAPE * latency_ms, Ordering::SeqCst)
        + PER_SCRAPE * latency_ms;
    for (le, bucket) in BUCKETS.iter().zip(&shared.buckets) {
        let add = if latency <= *le { PER_SCRAPE } else { 0 };
        let n = bucket.fetch_add(add, Ordering::SeqCst) + add;
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n"
    ));
    out.push_str(&format!(
        "http_request_duration_seconds_sum {}\n",
        sum_ms as f64 / 1000.0
    ));
    out.push_str(&format!("http_request_duration_seconds_count {count}\n"));
    out.push_str(&format!("okra_backend_scrapes_total {scrapes}\n"));
    out
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
    let n = stream.read(&mut buf).unwrap_or(0);
    let metrics = buf[..n].starts_with(b"GET /metrics ");
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let (status, body) = match mode {
        _ if metrics => ("200 OK", metrics_text(shared)),
        BackendMode::Healthy => ("200 OK", name.to_string()),
        _ => ("500 Internal Server Error", format!("{name}: unhealthy")),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}
