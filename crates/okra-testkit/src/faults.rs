//! A fault-injecting HTTP proxy between the functions and moto.
//!
//! [`FaultProxy`] listens on 127.0.0.1 and forwards every request to moto, except that, for a
//! chosen share of the requests (`rate`, drawn from a seeded RNG, so a run is reproducible for a
//! given order of requests), it injects one of the [`FaultKind`]s instead: a throttling error in
//! the service's own error shape (so the SDK maps it to its `Throttling`/`ThrottlingException`
//! code, and okra to `Throttled`), an HTTP 500 or 503, a connection reset without an answer, a
//! slow answer, or "forward, then drop the response" (the write happened, the caller never
//! hears: the crash-after-write case). Faults can be restricted to services (the SigV4 credential
//! scope: `elasticloadbalancing`, `eks`, `dynamodb`, ...) and operations (`ModifyListener`,
//! `PutItem`, `GET /clusters`, ...). Every injected fault is counted by kind and operation.
//!
//! Use it through [`crate::LocalAwsBuilder::faults`]: the functions' `AWS_ENDPOINT_URL` then
//! points at the proxy, while the tests' own clients ([`crate::LocalAws::endpoint`]) still reach
//! moto directly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The service's throttling error (HTTP 400/429 with its own error shape).
    Throttle,
    /// HTTP 500 with an `InternalFailure` error in the service's shape.
    Http500,
    /// HTTP 503 with a `ServiceUnavailable` error in the service's shape.
    Http503,
    /// The connection is closed without an answer; moto never sees the request.
    Reset,
    /// The request is forwarded after a delay ([`FaultPlan::slow`]); the answer is moto's.
    Slow,
    /// The request is forwarded and moto answers, then the connection is closed without the
    /// answer: the write happened, the caller never hears.
    DropResponse,
}

impl FaultKind {
    /// Every kind that leaves moto untouched or is answered late: the transient faults.
    pub const TRANSIENT: [Self; 5] = [
        Self::Throttle,
        Self::Http500,
        Self::Http503,
        Self::Reset,
        Self::Slow,
    ];

    /// A short stable name (`throttle`, `http500`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Http500 => "http500",
            Self::Http503 => "http503",
            Self::Reset => "reset",
            Self::Slow => "slow",
            Self::DropResponse => "dropResponse",
        }
    }
}

/// What the proxy injects.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The share of eligible requests that get a fault, 0.0..=1.0.
    pub rate: f64,
    /// The RNG's seed.
    pub seed: u64,
    /// The kinds to choose from (uniformly); empty means none is injected.
    pub kinds: Vec<FaultKind>,
    /// Only requests to these services (SigV4 scope names) are eligible; empty: all.
    pub services: Vec<String>,
    /// Only these operations are eligible; empty: all.
    pub operations: Vec<String>,
    /// The delay of [`FaultKind::Slow`].
    pub slow: Duration,
    /// Stop injecting after this many faults (`None`: no limit).
    pub max_faults: Option<u64>,
}

impl FaultPlan {
    /// `rate` of every request gets one of the transient kinds, seeded with `seed`.
    pub fn transient(rate: f64, seed: u64) -> Self {
        Self {
            rate,
            seed,
            kinds: FaultKind::TRANSIENT.to_vec(),
            services: Vec::new(),
            operations: Vec::new(),
            slow: Duration::from_millis(1500),
            max_faults: None,
        }
    }

    /// Injects nothing (the proxy only forwards).
    pub fn none() -> Self {
        Self {
            rate: 0.0,
            kinds: Vec::new(),
            ..Self::transient(0.0, 0)
        }
    }

    /// Only these kinds.
    #[must_use]
    pub fn kinds(mut self, kinds: &[FaultKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Only these services.
    #[must_use]
    pub fn services(mut self, services: &[&str]) -> Self {
        self.services = services.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Only these operations.
    #[must_use]
    pub fn operations(mut self, operations: &[&str]) -> Self {
        self.operations = operations.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// At most `n` faults.
    #[must_use]
    pub fn max_faults(mut self, n: u64) -> Self {
        self.max_faults = Some(n);
        self
    }

    /// The delay of a slow answer.
    #[must_use]
    pub fn slow(mut self, d: Duration) -> Self {
        self.slow = d;
        self
    }
}

/// What the proxy saw: requests forwarded, faults injected by kind and operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Every request the proxy received.
    pub requests: u64,
    /// Injected faults by (kind, `service:operation`).
    pub injected: BTreeMap<(FaultKind, String), u64>,
}

impl FaultCounts {
    /// Faults of one kind, over all operations.
    pub fn of_kind(&self, kind: FaultKind) -> u64 {
        self.injected
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every injected fault.
    pub fn total(&self) -> u64 {
        self.injected.values().sum()
    }

    /// Faults by kind name, for reports.
    pub fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for ((k, _), n) in &self.injected {
            *out.entry(k.name()).or_insert(0) += n;
        }
        out
    }

    /// Faults by operation, for reports.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((_, op), n) in &self.injected {
            *out.entry(op.clone()).or_insert(0) += n;
        }
        out
    }
}

#[derive(Debug)]
struct Shared {
    plan: FaultPlan,
    rng: u64,
    injected_total: u64,
    counts: FaultCounts,
}

impl Shared {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Draws the fault for one request, counting it.
    fn draw(&mut self, service: &str, operation: &str) -> Option<(FaultKind, Duration)> {
        self.counts.requests += 1;
        let plan = &self.plan;
        if plan.kinds.is_empty()
            || plan.rate <= 0.0
            || (!plan.services.is_empty() && !plan.services.iter().any(|s| s == service))
            || (!plan.operations.is_empty() && !plan.operations.iter().any(|o| o == operation))
            || plan.max_faults.is_some_and(|m| self.injected_total >= m)
        {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let roll = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        if roll >= self.plan.rate {
            return None;
        }
        let n = self.plan.kinds.len() as u64;
        let pick = usize::try_from(self.next() % n).unwrap_or(0);
        let kind = self.plan.kinds[pick];
        self.injected_total += 1;
        *self
            .counts
            .injected
            .entry((kind, format!("{service}:{operation}")))
            .or_insert(0) += 1;
        Some((kind, self.plan.slow))
    }
}

/// A running proxy; stopped on drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    /// Stopped (and joined) when the proxy is dropped.
    _server: crate::server::ServerThread,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, plan: FaultPlan) -> anyhow::Result<Self> {
        let upstream: hyper::Uri = upstream.parse().context("the upstream URL")?;
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the fault proxy")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            rng: plan.seed,
            plan,
            injected_total: 0,
            counts: FaultCounts::default(),
        }));
        let state = Arc::clone(&shared);
        let server = crate::server::ServerThread::spawn("okra-fault-proxy", move |stopped| {
            serve(listener, upstream, state, stopped)
        })?;
        Ok(Self {
            addr,
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the plan (the RNG is re-seeded with the new plan's seed; counts are kept).
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        s.rng = plan.seed;
        s.injected_total = 0;
        s.plan = plan;
    }

    /// What was injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts
            .clone()
    }

    /// Forgets the counts.
    pub fn reset_counts(&self) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts = FaultCounts::default();
    }
}

type Upstream = Client<HttpConnector, Full<Bytes>>;

async fn serve(
    listener: std::net::TcpListener,
    upstream: hyper::Uri,
    shared: Arc<Mutex<Shared>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let client: Upstream = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (client, upstream, shared) = (client.clone(), upstream.clone(), Arc::clone(&shared));
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                handle(req, client.clone(), upstream.clone(), Arc::clone(&shared))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Why the proxy closed a connection without answering.
#[derive(Debug)]
struct Dropped(&'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    req: Request<Incoming>,
    client: Upstream,
    upstream: hyper::Uri,
    shared: Arc<Mutex<Shared>>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| Dropped("request body"))?
        .to_bytes();
    let service = service_of(&parts.headers);
    let operation = operation_of(&parts, &body);
    let rpc_v2 = is_rpc_v2(&parts.headers);
    let fault = shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .draw(&service, &operation);
    match fault {
        Some((FaultKind::Throttle, _)) => {
            return Ok(error_answer(&service, rpc_v2, Answer::Throttle));
        }
        Some((FaultKind::Http500, _)) => {
            return Ok(error_answer(&service, rpc_v2, Answer::Internal));
        }
        Some((FaultKind::Http503, _)) => {
            return Ok(error_answer(&service, rpc_v2, Answer::Unavailable));
        }
        Some((FaultKind::Reset, _)) => return Err(Dropped("injected reset")),
        Some((FaultKind::Slow, delay)) => tokio::time::sleep(delay).await,
        Some((FaultKind::DropResponse, _)) | None => {}
    }
    let forwarded = forward(&client, &upstream, parts, body).await;
    if matches!(fault, Some((FaultKind::DropResponse, _))) {
        return Err(Dropped("injected: response dropped after the write"));
    }
    Ok(forwarded.unwrap_or_else(|e| {
        let mut r = Response::new(Full::new(Bytes::from(format!("fault proxy: {e}"))));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r
    }))
}

async fn forward(
    client: &Upstream,
    upstream: &hyper::Uri,
    parts: http::request::Parts,
    body: Bytes,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: hyper::Uri = format!(
        "{}://{}{}",
        upstream.scheme_str().unwrap_or("http"),
        upstream.authority().map_or("127.0.0.1", |a| a.as_str()),
        path
    )
    .parse()?;
    let mut out = Request::builder().method(parts.method).uri(uri);
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    let answer = client.request(out.body(Full::new(body))?).await?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// The SigV4 credential scope's service: `Credential=KEY/DATE/REGION/SERVICE/aws4_request`.
fn service_of(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned()
}

/// `X-Amz-Target`'s operation (JSON protocols), the path's operation (Smithy RPC v2:
/// `/service/<Service>/operation/<Operation>`), the form's `Action` (query protocols), or
/// `METHOD /first-segment` (REST protocols).
fn operation_of(parts: &http::request::Parts, body: &[u8]) -> String {
    if is_rpc_v2(&parts.headers)
        && let Some((_, op)) = parts.uri.path().rsplit_once("/operation/")
    {
        return op.to_owned();
    }
    if let Some(t) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return t.rsplit('.').next().unwrap_or(t).to_owned();
    }
    let form = std::str::from_utf8(body).unwrap_or_default();
    let query = parts.uri.query().unwrap_or_default();
    for pair in form.split('&').chain(query.split('&')) {
        if let Some(action) = pair.strip_prefix("Action=") {
            return action.to_owned();
        }
    }
    let first = parts
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    format!("{} /{first}", parts.method)
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Throttle,
    Internal,
    Unavailable,
}

/// A request in Smithy's RPC v2 CBOR protocol (CloudWatch's current one): `smithy-protocol:
/// rpc-v2-cbor`.
fn is_rpc_v2(headers: &http::HeaderMap) -> bool {
    headers
        .get("smithy-protocol")
        .is_some_and(|v| v.as_bytes() == b"rpc-v2-cbor")
}

/// An RPC v2 CBOR error (Smithy's "RPC v2 CBOR protocol", operation error serialization): a
/// CBOR map with `__type` (the error's shape id) and `message`; for an awsQueryCompatible service
/// (CloudWatch) the awsQuery code and fault also travel in `x-amzn-query-error`, which the SDK
/// reads the code from (so `Throttling` is retried as throttling).
fn rpc_v2_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut cbor = minicbor::Encoder::new(Vec::new());
    let shape_id = format!("com.amazonaws.cloudwatch#{code}");
    // Writing into a Vec cannot fail.
    let _ = cbor
        .map(2)
        .and_then(|e| e.str("__type"))
        .and_then(|e| e.str(&shape_id))
        .and_then(|e| e.str("message"))
        .and_then(|e| e.str(message));
    let fault = if status < 500 { "Sender" } else { "Receiver" };
    let mut r = Response::new(Full::new(Bytes::from(cbor.into_writer())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = r.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/cbor"),
    );
    headers.insert(
        "smithy-protocol",
        http::HeaderValue::from_static("rpc-v2-cbor"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&format!("{code};{fault}")) {
        headers.insert("x-amzn-query-error", v);
    }
    r
}

/// The service's own error shape for `answer` (`rpc_v2`: the request spoke RPC v2 CBOR).
fn error_answer(service: &str, rpc_v2: bool, answer: Answer) -> Response<Full<Bytes>> {
    let (status, code) = match answer {
        Answer::Throttle => (400, "Throttling"),
        Answer::Internal => (500, "InternalFailure"),
        Answer::Unavailable => (503, "ServiceUnavailable"),
    };
    let message = "injected by okra-testkit's fault proxy";
    if rpc_v2 {
        return rpc_v2_error(status, code, message);
    }
    let (status, content_type, body, error_type): (u16, &str, String, Option<&str>) = match service
    {
        // JSON 1.0 / 1.1 protocols.
        "dynamodb" | "states" | "events" | "secretsmanager" | "logs" | "kms" => {
            let code = match answer {
                Answer::Throttle => "ThrottlingException",
                Answer::Internal => "InternalServerError",
                Answer::Unavailable => "ServiceUnavailableException",
            };
            (
                status,
                "application/x-amz-json-1.0",
                format!("{{\"__type\":\"com.amazonaws.okra#{code}\",\"message\":\"{message}\"}}"),
                None,
            )
        }
        // The Resource Groups Tagging API (JSON 1.1), with its own error names
        // (ThrottledException, InternalServiceException).
        "tagging" => {
            let code = match answer {
                Answer::Throttle => "ThrottledException",
                Answer::Internal => "InternalServiceException",
                Answer::Unavailable => "ServiceUnavailable",
            };
            (
                status,
                "application/x-amz-json-1.1",
                format!("{{\"__type\":\"com.amazonaws.okra#{code}\",\"message\":\"{message}\"}}"),
                None,
            )
        }
        // EC2's own query error shape.
        "ec2" => {
            let (status, code) = match answer {
                Answer::Throttle => (503, "RequestLimitExceeded"),
                _ => (status, code),
            };
            (
                status,
                "text/xml",
                format!(
                    "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>\
                     </Error></Errors><RequestID>okra-fault</RequestID></Response>"
                ),
                None,
            )
        }
        // REST-JSON (EKS, Lambda, ...).
        "eks" | "lambda" => {
            let (status, code) = match answer {
                Answer::Throttle => (429, "ThrottlingException"),
                Answer::Internal => (500, "ServerException"),
                Answer::Unavailable => (503, "ServiceUnavailableException"),
            };
            (
                status,
                "application/json",
                format!("{{\"message\":\"{message}\"}}"),
                Some(code),
            )
        }
        // Query protocols (ELBv2, Auto Scaling, ...).
        _ => (
            status,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}\
                 </Message></Error><RequestId>okra-fault</RequestId></ErrorResponse>",
                if status < 500 { "Sender" } else { "Receiver" }
            ),
            None,
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Some(t) = error_type {
        r.headers_mut()
            .insert("x-amzn-errortype", http::HeaderValue::from_static(t));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let draw = |seed| {
            let mut s = Shared {
                plan: FaultPlan::transient(0.3, seed),
                rng: seed,
                injected_total: 0,
                counts: FaultCounts::default(),
            };
            (0..200)
                .map(|_| {
                    s.draw("elasticloadbalancing", "ModifyListener")
                        .map(|f| f.0)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let n = draw(7).iter().filter(|f| f.is_some()).count();
        assert!((30..=90).contains(&n), "about 30 % of 200: {n}");
    }

    #[test]
    fn restrictions_and_limits_hold() {
        let mut s = Shared {
            plan: FaultPlan::transient(1.0, 1)
                .operations(&["ModifyListener"])
                .max_faults(2),
            rng: 1,
            injected_total: 0,
            counts: FaultCounts::default(),
        };
        assert!(
            s.draw("elasticloadbalancing", "DescribeListeners")
                .is_none()
        );
        assert!(s.draw("elasticloadbalancing", "ModifyListener").is_some());
        assert!(s.draw("elasticloadbalancing", "ModifyListener").is_some());
        assert!(s.draw("elasticloadbalancing", "ModifyListener").is_none());
        assert_eq!(s.counts.total(), 2);
        assert_eq!(s.counts.requests, 4);
    }
}
