//! The local Lambda service: the Invoke API and the Runtime API over the workspace's real function
//! binaries, each function stopped at its own time-out as Lambda stops it.
//!
//! What it models (Lambda developer guide):
//! - **Invoke** (API reference, Invoke): `POST /2015-03-31/functions/{name or ARN}/invocations`.
//!   A result is `200` with the payload; a function error is `200` with `X-Amz-Function-Error:
//!   Unhandled` and the runtime's error document (`errorType`, `errorMessage`); an unknown
//!   function is `404` `ResourceNotFoundException`. `X-Amz-Invocation-Type: Event` answers `202`
//!   and runs the invocation in the background.
//! - **Execution environments** ("Understanding the Lambda execution environment lifecycle"): an
//!   environment is a process of the function's binary that asks the Runtime API for its next
//!   event (`/2018-06-01/runtime/invocation/next`) and posts a `response` or an `error`; an
//!   environment serves one invocation at a time and is kept for the next; a new one starts when
//!   every environment is busy, up to the function's concurrency (then invocations queue here,
//!   where Lambda would throttle).
//! - **Time-outs** ("Configure Lambda function timeout"; the lifecycle page's "Failures during
//!   the invoke phase"): an invocation that has not answered within the function's `Timeout`
//!   (template.yaml's, read by [`crate::template`]) fails with `Sandbox.Timedout` ("Task timed
//!   out after N.00 seconds"); Lambda resets that environment, so its process is killed here and
//!   the next invocation starts a fresh one (its init runs again). A process that exits during an
//!   invocation fails it with `Runtime.ExitError`; an init that reports an error fails the waiting
//!   invocation with `Runtime.InitError`.
//!
//! Why not `cargo lambda watch` (docs/local-aws.md): it has one `--timeout` for every function,
//! applied as an HTTP time-out to every route, the Runtime API's long-polling `next` included, so
//! idle environments get 408s; a timed-out environment stays in its pool, busy, and no new one is
//! started for the function's next invocation.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::oneshot;

/// How the local Lambda service runs the functions.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// Where the function binaries are (one file per function, named like it).
    pub bin_dir: PathBuf,
    /// The environment of every function process (endpoints, region, credentials, ...).
    pub env: Vec<(String, String)>,
    /// Each function's time-out (template.yaml's `Timeout`, scaled).
    pub timeouts: BTreeMap<String, Duration>,
    /// The time-out of a function the map does not name.
    pub default_timeout: Duration,
    /// At most this many environments of one function at a time.
    pub concurrency: usize,
    /// The functions' standard output and error are appended here.
    pub log: PathBuf,
    /// The strict moto whose IAM authorizer decides `lambda:InvokeFunction` for a caller that
    /// is one of okra's functions (`app/NAME` in its user agent); `None`: not checked.
    pub iam_authorizer: Option<String>,
}

/// What became of one invocation.
#[derive(Debug)]
enum Outcome {
    Ok(Bytes),
    /// A function error: the runtime's error document.
    Error(Bytes),
}

/// An invocation no environment has taken yet.
#[derive(Debug)]
struct Pending {
    request_id: String,
    payload: Bytes,
    reply: oneshot::Sender<Outcome>,
}

/// An invocation taken by an environment: (function, environment id, reply).
type InFlight = (String, u64, oneshot::Sender<Outcome>);

#[derive(Debug, Default)]
struct Function {
    /// Invocations waiting for an environment.
    queue: VecDeque<Pending>,
    /// Environments waiting in `next`.
    waiting: VecDeque<(u64, oneshot::Sender<Pending>)>,
    /// Live environments: id -> the request it serves.
    environments: HashMap<u64, Option<String>>,
}

#[derive(Debug)]
struct Shared {
    settings: LambdaSettings,
    port: u16,
    functions: Mutex<HashMap<String, Function>>,
    /// Request id -> the invocation an environment serves.
    in_flight: Mutex<HashMap<String, InFlight>>,
    /// Environment id -> its process id (its own process group).
    pids: Mutex<HashMap<u64, u32>>,
    seq: AtomicU64,
    stats: Mutex<LambdaStats>,
}

/// What the service has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LambdaStats {
    /// Invocations per function.
    pub invocations: BTreeMap<String, u64>,
    /// Environments started per function (a cold start each).
    pub environments_started: BTreeMap<String, u64>,
    /// Invocations stopped at their function's time-out, per function.
    pub timeouts: BTreeMap<String, u64>,
}

/// The running service; stopped (and every function process killed) on drop.
#[derive(Debug)]
pub struct LocalLambda {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<crate::server::ServerThread>,
}

impl LocalLambda {
    /// Starts the service on 127.0.0.1:`port` (0: a free one).
    pub fn start(port: u16, settings: LambdaSettings) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .context("binding the local Lambda service")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            settings,
            port: addr.port(),
            functions: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            pids: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(1),
            stats: Mutex::new(LambdaStats::default()),
        });
        let state = Arc::clone(&shared);
        let server = crate::server::ServerThread::spawn("okra-local-lambda", move |stopped| {
            crate::server::serve_http(listener, stopped, move |req| {
                let shared = Arc::clone(&state);
                async move {
                    match route(req, shared).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
            })
        })?;
        Ok(Self {
            addr,
            shared,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: the Invoke API (`AWS_ENDPOINT_URL_LAMBDA`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The time-out the service applies to `function`.
    pub fn timeout_of(&self, function: &str) -> Duration {
        self.shared.timeout_of(function)
    }

    /// What the service has done since it started.
    pub fn stats(&self) -> LambdaStats {
        lock(&self.shared.stats).clone()
    }
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        drop(self.server.take());
        for pid in lock(&self.shared.pids).values() {
            crate::stack::signal_group(*pid, "KILL");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// One line of the service's own in the functions' log.
    fn log(&self, line: &str) {
        use std::io::Write as _;
        if let Ok(mut f) = File::options()
            .create(true)
            .append(true)
            .open(&self.settings.log)
        {
            let _ = writeln!(f, "okra-local-lambda: {line}");
        }
    }

    fn timeout_of(&self, function: &str) -> Duration {
        self.settings
            .timeouts
            .get(function)
            .copied()
            .unwrap_or(self.settings.default_timeout)
    }

    /// Hands `pending` to a waiting environment of `function`, or queues it (starting an
    /// environment when fewer are starting or idle than invocations wait).
    fn dispatch(self: &Arc<Self>, function: &str, mut pending: Pending) {
        let mut functions = lock(&self.functions);
        let f = functions.entry(function.to_owned()).or_default();
        while let Some((_, waiter)) = f.waiting.pop_front() {
            match waiter.send(pending) {
                Ok(()) => return,
                // That environment's `next` went away (it was killed): try the next one.
                Err(back) => pending = back,
            }
        }
        f.queue.push_back(pending);
        drop(functions);
        self.ensure_capacity(function);
    }

    /// Starts an environment of `function` when fewer are starting or idle than invocations
    /// wait, up to the concurrency.
    fn ensure_capacity(self: &Arc<Self>, function: &str) {
        let id = {
            let mut functions = lock(&self.functions);
            let Some(f) = functions.get_mut(function) else {
                return;
            };
            let not_busy = f.environments.values().filter(|r| r.is_none()).count();
            if not_busy >= f.queue.len() || f.environments.len() >= self.settings.concurrency {
                return;
            }
            let id = self.seq.fetch_add(1, Ordering::Relaxed);
            f.environments.insert(id, None);
            id
        };
        if let Err(e) = self.start_environment(function, id) {
            let mut functions = lock(&self.functions);
            if let Some(f) = functions.get_mut(function) {
                f.environments.remove(&id);
                if let Some(p) = f.queue.pop_front() {
                    let message = format!("{e:#}");
                    let _ = p
                        .reply
                        .send(error_outcome("Runtime.InvalidEntrypoint", &message));
                }
            }
        }
    }

    /// Starts environment `id` of `function`: the binary in its own process group, its Runtime
    /// API under `/env/{id}`; a thread waits for it to exit.
    fn start_environment(self: &Arc<Self>, function: &str, id: u64) -> anyhow::Result<()> {
        let exe = self.settings.bin_dir.join(function);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.settings.log)
            .with_context(|| format!("opening {}", self.settings.log.display()))?;
        let mut cmd = Command::new(&exe);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k == "PATH" || k == "HOME"))
            .envs(self.settings.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{id}"))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/env/{id}", self.port),
            );
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        self.log(&format!(
            "starting environment {id} of {function} (pid {})",
            child.id()
        ));
        lock(&self.pids).insert(id, child.id());
        *lock(&self.stats)
            .environments_started
            .entry(function.to_owned())
            .or_insert(0) += 1;
        let (shared, function) = (Arc::clone(self), function.to_owned());
        std::thread::Builder::new()
            .name(format!("okra-lambda-env-{id}"))
            .spawn(move || {
                let status = child.wait();
                shared.environment_exited(&function, id, &format!("{status:?}"));
            })
            .context("starting an environment's waiter")?;
        Ok(())
    }

    /// Environment `id` exited: the invocation it served fails with `Runtime.ExitError`; queued
    /// invocations get a new environment.
    fn environment_exited(self: &Arc<Self>, function: &str, id: u64, status: &str) {
        self.log(&format!("environment {id} of {function} exited: {status}"));
        lock(&self.pids).remove(&id);
        let serving = {
            let mut functions = lock(&self.functions);
            let Some(f) = functions.get_mut(function) else {
                return;
            };
            f.waiting.retain(|(w, _)| *w != id);
            f.environments.remove(&id).flatten()
        };
        if let Some(request_id) = serving
            && let Some((_, _, reply)) = lock(&self.in_flight).remove(&request_id)
        {
            let message =
                format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
            let _ = reply.send(error_outcome("Runtime.ExitError", &message));
        }
        // Queued invocations that counted on this environment get another.
        self.ensure_capacity(function);
    }

    /// `next` from environment `id`: the next invocation for it, waiting as long as it takes.
    async fn next(self: &Arc<Self>, id: u64) -> Option<Response<Full<Bytes>>> {
        let function = self.function_of(id)?;
        let pending = {
            let rx = {
                let mut functions = lock(&self.functions);
                let f = functions.get_mut(&function)?;
                f.environments.insert(id, None);
                match f.queue.pop_front() {
                    Some(p) => Ok(p),
                    None => {
                        let (tx, rx) = oneshot::channel();
                        f.waiting.push_back((id, tx));
                        Err(rx)
                    }
                }
            };
            match rx {
                Ok(p) => p,
                Err(rx) => rx.await.ok()?,
            }
        };
        let timeout = self.timeout_of(&function);
        let deadline = SystemTime::now() + timeout;
        let request_id = pending.request_id.clone();
        if let Some(f) = lock(&self.functions).get_mut(&function) {
            f.environments.insert(id, Some(request_id.clone()));
        }
        lock(&self.in_flight).insert(request_id.clone(), (function.clone(), id, pending.reply));
        // The function's time-out: the environment is reset (killed) and the invocation fails.
        let shared = Arc::clone(self);
        let rid = request_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some((function, env, reply)) = lock(&shared.in_flight).remove(&rid) else {
                return; // answered in time
            };
            *lock(&shared.stats)
                .timeouts
                .entry(function.clone())
                .or_insert(0) += 1;
            shared.log(&format!(
                "{function} request {rid} timed out after {:.2} s: environment {env} reset",
                timeout.as_secs_f64()
            ));
            if let Some(pid) = lock(&shared.pids).get(&env) {
                crate::stack::signal_group(*pid, "KILL");
            }
            let message = format!(
                "RequestId: {rid} Error: Task timed out after {:.2} seconds",
                timeout.as_secs_f64()
            );
            let _ = reply.send(error_outcome("Sandbox.Timedout", &message));
        });
        let deadline_ms = deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &request_id)
            .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                crate::lambda_arn(&function),
            )
            .header(
                "lambda-runtime-trace-id",
                format!("Root=1-00000000-{request_id};Sampled=0"),
            )
            .body(Full::new(pending.payload))
            .ok()
    }

    fn function_of(&self, id: u64) -> Option<String> {
        lock(&self.functions)
            .iter()
            .find(|(_, f)| f.environments.contains_key(&id))
            .map(|(name, _)| name.clone())
    }

    /// A `response` or `error` for `request_id` from environment `id`.
    fn answer(&self, id: u64, request_id: &str, outcome: Outcome) -> StatusCode {
        let mut in_flight = lock(&self.in_flight);
        match in_flight.get(request_id) {
            Some((_, env, _)) if *env == id => {}
            _ => return StatusCode::BAD_REQUEST, // unknown, or timed out already
        }
        let Some((_, _, reply)) = in_flight.remove(request_id) else {
            return StatusCode::BAD_REQUEST;
        };
        drop(in_flight);
        let _ = reply.send(outcome);
        StatusCode::ACCEPTED
    }

    /// `init/error` from environment `id`: the first queued invocation fails with it.
    fn init_error(self: &Arc<Self>, id: u64, body: Bytes) {
        let Some(function) = self.function_of(id) else {
            return;
        };
        let queued = lock(&self.functions)
            .get_mut(&function)
            .and_then(|f| f.queue.pop_front());
        if let Some(p) = queued {
            let _ = p.reply.send(Outcome::Error(body));
        }
    }
}

fn error_outcome(error_type: &str, message: &str) -> Outcome {
    let doc = serde_json::json!({"errorType": error_type, "errorMessage": message});
    Outcome::Error(Bytes::from(doc.to_string()))
}

fn reply_with(
    status: StatusCode,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

async fn route(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let response = match (&parts.method, segments.as_slice()) {
        (&Method::POST, ["2015-03-31", "functions", name, "invocations"]) => {
            let asynchronous = parts
                .headers
                .get("x-amz-invocation-type")
                .is_some_and(|v| v == "Event");
            let caller = crate::iam::caller_of(
                parts
                    .headers
                    .get("user-agent")
                    .and_then(|v| v.to_str().ok()),
            );
            let qualifier = parts
                .uri
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("Qualifier=")));
            match authorize(&shared, caller, name, qualifier).await {
                Some(denied) => denied,
                None => invoke(&shared, name, body, asynchronous).await,
            }
        }
        (&Method::GET, ["env", id, "2018-06-01", "runtime", "invocation", "next"]) => {
            match id.parse() {
                Ok(id) => match shared.next(id).await {
                    Some(r) => r,
                    None => reply_with(StatusCode::GONE, &[], "environment reset"),
                },
                Err(_) => reply_with(StatusCode::NOT_FOUND, &[], ""),
            }
        }
        (&Method::POST, ["env", id, "2018-06-01", "runtime", "invocation", rid, kind]) => {
            let outcome = match *kind {
                "response" => Some(Outcome::Ok(body)),
                "error" => Some(Outcome::Error(body)),
                _ => None,
            };
            match (id.parse(), outcome) {
                (Ok(id), Some(outcome)) => {
                    reply_with(shared.answer(id, rid, outcome), &[], r#"{"status":"OK"}"#)
                }
                _ => reply_with(StatusCode::NOT_FOUND, &[], ""),
            }
        }
        (&Method::POST, ["env", id, "2018-06-01", "runtime", "init", "error"]) => {
            if let Ok(id) = id.parse() {
                shared.init_error(id, body);
            }
            reply_with(StatusCode::ACCEPTED, &[], r#"{"status":"OK"}"#)
        }
        _ => reply_with(StatusCode::NOT_FOUND, &[], format!("no route {path}")),
    };
    Ok(response)
}

/// The ARN IAM authorizes an Invoke on: the function's, with the version or alias invoked (in
/// the path or `?Qualifier=`). A policy naming the unqualified ARN does not allow invoking a
/// version or an alias (Lambda developer guide, "Fine-tuning the Resources and Conditions
/// sections of policies": unqualified and qualified ARNs), so the qualifier stays in the
/// resource, as AWS checks it.
fn invoked_arn(segment: &str, qualifier: Option<&str>) -> String {
    let name = function_name(segment).split(':').next().unwrap_or_default();
    let in_path = match segment.split_once(":function:") {
        Some((_, rest)) => rest.split(':').nth(1),
        None => segment.split(':').nth(1),
    };
    match in_path.or(qualifier).filter(|q| !q.is_empty()) {
        Some(q) => format!("{}:{q}", crate::lambda_arn(name)),
        None => crate::lambda_arn(name),
    }
}

/// The function name of an Invoke path segment: a name, or a function ARN (`...:function:NAME`,
/// with an optional qualifier).
fn function_name(segment: &str) -> &str {
    match segment.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => segment,
    }
}

/// IAM for Invoke (Lambda API reference, Invoke; Service Authorization Reference: action
/// `lambda:InvokeFunction` on the function's ARN): a caller that is one of okra's functions is
/// authorized by the strict moto against its template statements; `Some` is the 403 AWS gives.
async fn authorize(
    shared: &Arc<Shared>,
    caller: Option<String>,
    segment: &str,
    qualifier: Option<&str>,
) -> Option<Response<Full<Bytes>>> {
    let (iam, caller) = (shared.settings.iam_authorizer.clone()?, caller?);
    let decoded = segment.replace("%3A", ":").replace("%3a", ":");
    let arn = invoked_arn(&decoded, qualifier);
    let decided = crate::iam::authorize(&iam, &caller, "lambda:InvokeFunction", &arn).await;
    match decided {
        Some(d) if d["allowed"] == true => None,
        Some(d) => Some(reply_with(
            StatusCode::FORBIDDEN,
            &[("x-amzn-errortype", "AccessDeniedException")],
            format!(
                r#"{{"Type":"User","message":"User: {} is not authorized to perform: lambda:InvokeFunction on resource: {arn} because no identity-based policy allows the lambda:InvokeFunction action"}}"#,
                d["function"].as_str().unwrap_or(&caller)
            ),
        )),
        None => Some(reply_with(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[],
            "the IAM authorizer did not answer",
        )),
    }
}

async fn invoke(
    shared: &Arc<Shared>,
    segment: &str,
    payload: Bytes,
    asynchronous: bool,
) -> Response<Full<Bytes>> {
    let decoded = segment.replace("%3A", ":").replace("%3a", ":");
    let function = function_name(&decoded).to_owned();
    if !shared.settings.bin_dir.join(&function).is_file() {
        let message = format!(
            r#"{{"Type":"User","message":"Function not found: {}"}}"#,
            crate::lambda_arn(&function)
        );
        return reply_with(
            StatusCode::NOT_FOUND,
            &[("x-amzn-errortype", "ResourceNotFoundException")],
            message,
        );
    }
    *lock(&shared.stats)
        .invocations
        .entry(function.clone())
        .or_insert(0) += 1;
    let request_id = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        shared.seq.fetch_add(1, Ordering::Relaxed)
    );
    let (reply, outcome) = oneshot::channel();
    let pending = Pending {
        request_id,
        payload,
        reply,
    };
    shared.dispatch(&function, pending);
    if asynchronous {
        tokio::spawn(async move {
            let _ = outcome.await;
        });
        return reply_with(StatusCode::ACCEPTED, &[], "");
    }
    match outcome.await {
        Ok(Outcome::Ok(body)) => reply_with(
            StatusCode::OK,
            &[("x-amz-executed-version", "$LATEST")],
            body,
        ),
        Ok(Outcome::Error(body)) => reply_with(
            StatusCode::OK,
            &[
                ("x-amz-executed-version", "$LATEST"),
                ("x-amz-function-error", "Unhandled"),
            ],
            body,
        ),
        Err(_) => reply_with(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[("x-amzn-errortype", "ServiceException")],
            r#"{"message":"the invocation was lost"}"#,
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn invoke_is_authorized_on_the_arn_invoked_with_its_qualifier() {
        let arn = crate::lambda_arn("smoke");
        assert_eq!(super::invoked_arn("smoke", None), arn);
        assert_eq!(super::invoked_arn(&arn, None), arn);
        assert_eq!(
            super::invoked_arn("smoke:live", None),
            format!("{arn}:live")
        );
        assert_eq!(
            super::invoked_arn(&format!("{arn}:3"), None),
            format!("{arn}:3")
        );
        assert_eq!(
            super::invoked_arn("smoke", Some("live")),
            format!("{arn}:live")
        );
    }

    use super::function_name;

    #[test]
    fn names_and_arns() {
        assert_eq!(function_name("shift-weights"), "shift-weights");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:shift-weights"),
            "shift-weights"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:api:$LATEST"),
            "api"
        );
    }
}
