//! `okra-bench`: a minimal Lambda Runtime API emulator on 127.0.0.1 that times a function process.
//!
//! ```text
//! okra-bench --event EVENT.json [--event EVENT2.json ...] [--runs N] [--warm M] [--timeout-ms T] -- COMMAND [ARGS...]
//! ```
//!
//! For each of N runs it binds a fresh port, spawns COMMAND with `AWS_LAMBDA_RUNTIME_API` (and the
//! other variables Lambda sets) pointing at it, and serves the runtime API's three endpoints:
//! `GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`, `POST .../{id}/error`
//! (plus `.../init/error`). It hands out 1 + M events, one at a time, cycling through the
//! `--event` files in order (so a write can differ from the one before it), and records:
//! - `coldMs`: process spawn → the first invocation's answer received (response or error);
//! - `initMs`: process spawn → its first `GET .../next` (the init phase alone);
//! - `warmMs`: each later invocation, event handed out → answer received;
//! - `hwmKb`: the process's `VmHWM` (peak RSS) after the first answer, and `hwmKbAfterWarm`;
//! - `cpuMs` (`userMs` + `sysMs`): CPU time the process used over its whole life (init, the first
//!   and the M warm invocations), all threads, from `getrusage(RUSAGE_CHILDREN)` before the spawn
//!   and after the process is reaped (runs are one at a time, so the difference is this process's);
//!   unlike wall times it does not count waiting on the emulated AWS;
//! - the first answer: `ok` or the error's `errorType`.
//!
//! Then it kills the process. Output: one JSON object on stdout. Everything is bounded by
//! `--timeout-ms` per run (default 30 s): a run that gets no answer is reported, not waited on.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

#[derive(Debug, Default)]
struct Queue {
    /// Events still to hand out.
    pending: VecDeque<Vec<u8>>,
    /// (request id, handed out at) of the invocation in flight.
    in_flight: Option<(String, Instant)>,
    /// (handed out at, answered at, kind, body) per answered invocation.
    answers: Vec<(Instant, Instant, String, String)>,
    /// An init error, if the function reported one.
    init_error: Option<String>,
    /// When the first `GET .../next` arrived: the end of the function's init.
    first_next: Option<Instant>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
    stop: AtomicBool,
    seq: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, body })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> bool {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    stream
        .write_all(&bytes)
        .and_then(|()| stream.flush())
        .is_ok()
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if req.method == "GET" && req.path.ends_with("/runtime/invocation/next") {
            let mut q = shared.lock();
            q.first_next.get_or_insert_with(Instant::now);
            let event = loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                if q.in_flight.is_none()
                    && let Some(e) = q.pending.pop_front()
                {
                    break e;
                }
                q = shared
                    .changed
                    .wait_timeout(q, Duration::from_millis(200))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            };
            let id = format!("bench-{}", shared.seq.fetch_add(1, Ordering::SeqCst));
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() + 900_000);
            q.in_flight = Some((id.clone(), Instant::now()));
            drop(q);
            let headers = [
                ("content-type", "application/json".to_owned()),
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".to_owned(),
                ),
            ];
            if !respond(&mut writer, "200 OK", &headers, &event) {
                return;
            }
        } else if req.method == "POST" && req.path.contains("/runtime/invocation/") {
            let now = Instant::now();
            let body = String::from_utf8_lossy(&req.body).into_owned();
            let kind = if req.path.ends_with("/response") {
                "ok".to_owned()
            } else {
                serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| {
                        v.get("errorType")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "error".to_owned())
            };
            {
                let mut q = shared.lock();
                if let Some((_, at)) = q.in_flight.take() {
                    q.answers.push((at, now, kind, body));
                }
            }
            shared.changed.notify_all();
            if !respond(&mut writer, "202 Accepted", &[], b"{\"status\":\"OK\"}") {
                return;
            }
        } else if req.method == "POST" && req.path.ends_with("/runtime/init/error") {
            shared.lock().init_error = Some(String::from_utf8_lossy(&req.body).into_owned());
            shared.changed.notify_all();
            if !respond(&mut writer, "202 Accepted", &[], b"{\"status\":\"OK\"}") {
                return;
            }
        } else if !respond(&mut writer, "404 Not Found", &[], b"{}") {
            return;
        }
    }
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Options {
    events: Vec<Vec<u8>>,
    runs: usize,
    warm: usize,
    timeout: Duration,
    command: Vec<String>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let (mut events, mut runs, mut warm, mut timeout_ms) = (Vec::new(), 5usize, 0usize, 30_000u64);
    let mut command = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--event" => {
                let path = args.next().context("--event FILE")?;
                events.push(std::fs::read(&path).with_context(|| format!("reading {path}"))?);
            }
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            "--warm" => warm = args.next().context("--warm M")?.parse()?,
            "--timeout-ms" => timeout_ms = args.next().context("--timeout-ms T")?.parse()?,
            "--" => {
                command = args.by_ref().collect();
                break;
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if events.is_empty() {
        bail!("--event FILE is required");
    }
    if command.is_empty() {
        bail!("usage: okra-bench --event FILE [--runs N] [--warm M] -- COMMAND [ARGS...]");
    }
    Ok(Options {
        events,
        runs: runs.max(1),
        warm,
        timeout: Duration::from_millis(timeout_ms),
        command,
    })
}

/// User and system CPU time, in ms, of all children reaped so far.
fn children_cpu_ms() -> anyhow::Result<(f64, f64)> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .context("getrusage(RUSAGE_CHILDREN)")?;
    let tv_ms = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3;
    Ok((tv_ms(usage.user_time()), tv_ms(usage.system_time())))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn one_run(opts: &Options) -> anyhow::Result<Value> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::default());
    {
        let mut q = shared.lock();
        for i in 0..=opts.warm {
            q.pending
                .push_back(opts.events[i % opts.events.len()].clone());
        }
    }
    let acceptor = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        })
    };

    let cpu_before = children_cpu_ms()?;
    let started = Instant::now();
    let mut child = Command::new(&opts.command[0])
        .args(&opts.command[1..])
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", opts.command[0]))?;
    let pid = child.id();
    let stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });

    let deadline = started + opts.timeout;
    let (mut hwm_first, mut timed_out, mut exited) = (None, false, None);
    {
        let mut q = shared.lock();
        loop {
            if hwm_first.is_none() && !q.answers.is_empty() {
                hwm_first = vm_hwm_kb(pid);
            }
            if q.answers.len() > opts.warm || q.init_error.is_some() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status.to_string());
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            q = shared
                .changed
                .wait_timeout(q, (deadline - now).min(Duration::from_millis(20)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
    let hwm_last = vm_hwm_kb(pid);
    let _ = child.kill();
    let _ = child.wait();
    let cpu_after = children_cpu_ms()?;
    let (user_ms, sys_ms) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let round = |x: f64| (x * 1e3).round() / 1e3;
    shared.stop.store(true, Ordering::SeqCst);
    shared.changed.notify_all();
    let _ = TcpStream::connect(addr); // wakes the acceptor
    let _ = acceptor.join();
    let stderr = stderr_reader.join().unwrap_or_default();

    let q = shared.lock();
    let first = q.answers.first();
    let tail: String = {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    Ok(json!({
        "coldMs": first.map(|(_, at, _, _)| ms(*at - started)),
        "initMs": q.first_next.map(|at| ms(at - started)),
        "warmMs": q.answers.iter().skip(1).map(|(from, to, _, _)| ms(*to - *from)).collect::<Vec<_>>(),
        "hwmKb": hwm_first,
        "hwmKbAfterWarm": hwm_last,
        "cpuMs": round(user_ms + sys_ms),
        "userMs": round(user_ms),
        "sysMs": round(sys_ms),
        "answer": first.map(|(_, _, kind, _)| kind.clone()),
        "answerBody": first.map(|(_, _, _, body)| body.chars().take(400).collect::<String>()),
        "initError": q.init_error,
        "timedOut": timed_out,
        "exited": exited,
        "stderrTail": if first.is_none() { Some(tail) } else { None },
    }))
}

fn main() -> anyhow::Result<()> {
    let opts = parse_args()?;
    let mut runs = Vec::with_capacity(opts.runs);
    for _ in 0..opts.runs {
        runs.push(one_run(&opts)?);
    }
    println!("{}", json!({ "command": opts.command, "runs": runs }));
    Ok(())
}
