//! The commands.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use okra_aws::ports::{ClusterPort, LoadBalancerPort};
use okra_aws::state::StatePort as _;
use okra_core::spec::CellSpec;
use okra_core::vocab::{Signal, StepKind};
use serde_json::{Value, json};

use crate::ctx::{Ctx, Target};
use crate::error::{CliError, exit};
use crate::view::{self, View};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  an error (the message says what happened and what to do)
  2  bad usage: unknown command or option, missing argument or setting
  3  `okra rollout watch`: the rollout ended rolled back or failed

Against AWS: the standard credential chain and region (AWS_PROFILE, AWS_REGION, SSO, instance
roles); --table and --state-machine-arn are the stack's StateTable and RolloutStateMachine
outputs. Against the local emulator: --endpoint-url http://127.0.0.1:PORT.";

/// okra: canary rollouts of whole EKS clusters behind an ALB or NLB listener.
///
/// Stores cells, shows what a rollout would do, starts and steers rollouts, and shows them as
/// they go. Runs okra's own handlers in-process against your AWS account (or the local
/// emulator): no okra server in between.
#[derive(Debug, Parser)]
#[command(name = "okra", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Where okra's AWS is.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// AWS region (default: the standard chain, e.g. AWS_REGION or your profile's).
    #[arg(long, global = true, env = "AWS_REGION", hide_env_values = true)]
    pub region: Option<String>,
    /// Send every AWS call to this URL (the local emulator, e.g. http://127.0.0.1:5000).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Send Step Functions calls here instead (a local Step Functions service).
    #[arg(long, global = true, value_name = "URL", env = "AWS_ENDPOINT_URL_SFN")]
    pub sfn_endpoint_url: Option<String>,
    /// okra's DynamoDB table (the stack's StateTable output).
    #[arg(long, global = true, env = "OKRA_TABLE", value_name = "NAME")]
    pub table: Option<String>,
    /// The rollout state machine (the stack's RolloutStateMachine output).
    #[arg(
        long,
        global = true,
        env = "OKRA_STATE_MACHINE_ARN",
        value_name = "ARN"
    )]
    pub state_machine_arn: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

impl Global {
    /// The AWS target.
    pub fn target(&self) -> Target {
        Target {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            sfn_endpoint_url: self.sfn_endpoint_url.clone(),
            table: self.table.clone(),
            state_machine_arn: self.state_machine_arn.clone(),
        }
    }
}

/// Text for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable text.
    Text,
    /// One JSON document.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store, show and delete cells (a listener, its clusters and the canary steps).
    #[command(subcommand)]
    Cell(CellCommand),
    /// What a rollout of the cell would do now (discovery and decision; nothing is changed).
    Plan {
        /// The cell.
        cell: String,
    },
    /// Start, follow and steer rollouts.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// The cell's EKS clusters: status and version.
    Clusters {
        /// The cell.
        cell: String,
    },
    /// The cell's target groups: version, cluster, weight in the listener, target health.
    TargetGroups {
        /// The cell.
        cell: String,
    },
    /// Write a starter cell spec from what the account has: the listener, and the clusters a tag
    /// selector finds with their versions (read only). The spec validates; edit it, then
    /// `okra doctor -f` and `okra cell apply -f`.
    Init {
        /// The cell's name.
        #[arg(long)]
        name: String,
        /// The ALB or NLB listener okra will own.
        #[arg(long, value_name = "ARN")]
        listener: String,
        /// A rule of the listener to own instead of its default action (ALB).
        #[arg(long, value_name = "ARN")]
        rule: Option<String>,
        /// A tag the cell's clusters carry (repeat for more; all must match).
        #[arg(long = "selector", value_name = "KEY=VALUE", required = true)]
        selector: Vec<String>,
        /// The tag that carries a cluster's version.
        #[arg(long, default_value = okra_core::spec::DEFAULT_VERSION_TAG)]
        version_tag: String,
        /// The port targets receive traffic on (the ingress's node port).
        #[arg(long)]
        port: u16,
        /// Where editors find the JSON Schema (`okra cell schema > cell.schema.json`).
        #[arg(long, default_value = "./cell.schema.json")]
        schema: String,
        /// Write here instead of standard output (never over an existing file).
        #[arg(short = 'o', long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
    /// Check a cell against the account before its first rollout, read only: the listener and
    /// its VPC, the clusters, room for target groups, a CloudTrail trail for EKS events, the
    /// analyses' metrics and the Datadog secret. Each check: ok, warning or error, with what to
    /// do; exit 1 on any error.
    Doctor {
        /// A stored cell (needs --table).
        #[arg(required_unless_present = "file")]
        cell: Option<String>,
        /// A cell spec file instead (no table needed).
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "cell"
        )]
        file: Option<PathBuf>,
        /// The Datadog keys' secret (the stack's DatadogSecretArn parameter).
        #[arg(long, env = "OKRA_DATADOG_SECRET_ARN", value_name = "ARN")]
        datadog_secret_arn: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CellCommand {
    /// Validate a cell spec (YAML or JSON) and store it; a bad spec is refused with every error.
    Apply {
        /// The spec file (`-` for standard input).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Check cell specs offline (no AWS, no region, no table): every error of each file at once,
    /// with its field path; exit 1 on any. `--output json` for CI and pre-commit hooks.
    Validate {
        /// Spec files (YAML or JSON; `-` for standard input).
        #[arg(short = 'f', long = "file", value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// `validate` over folders: every `*.yaml`, `*.yml` and `*.json` in them (and their
    /// subfolders), and any files named; exit 1 on any error.
    Lint {
        /// Folders and files (default: the current folder).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the cell spec's JSON Schema (for editors: `okra cell schema > cell.schema.json`).
    Schema,
    /// Show a cell: spec, revision, lock and blocked versions.
    Get {
        /// The cell.
        cell: String,
    },
    /// List the cells.
    List,
    /// Delete a cell's spec (not while a rollout runs; history and blocks stay).
    Delete {
        /// The cell.
        cell: String,
    },
    /// Print the aws-load-balancer-controller TargetGroupBinding that registers a cluster's
    /// Service in its okra target group (`registration: external`), for the cluster's GitOps
    /// repository. Offline: okra's target group names are deterministic.
    Binding {
        /// The cell spec (YAML or JSON).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// The EKS cluster the manifest is for.
        #[arg(long)]
        cluster: String,
        /// The Kubernetes Service that serves the cell's traffic in the cluster.
        #[arg(long)]
        service: String,
        /// The Service's port.
        #[arg(long)]
        service_port: u16,
        /// The Service's namespace.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
}

/// A cell and, optionally, one of its rollouts.
#[derive(Debug, Clone, Args)]
pub struct RolloutRef {
    /// The cell.
    pub cell: String,
    /// The rollout (its execution name; default: the cell's running rollout, else its newest).
    pub id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a rollout now if the cell has something to do (as a cluster event would).
    Start {
        /// The cell.
        cell: String,
    },
    /// Show a rollout: step, weights per version, last analysis verdict, history.
    Status(RolloutRef),
    /// Follow a rollout until it ends (exit 3 if it rolls back or fails).
    Watch {
        #[command(flatten)]
        r: RolloutRef,
        /// Seconds between reads.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Go on from a pause that waits for a person (or an inconclusive analysis).
    Resume(RolloutRef),
    /// End the current pause or analysis and go to the next step; with --full, to 100 % now.
    Promote {
        #[command(flatten)]
        r: RolloutRef,
        /// Skip every remaining step: the new version to 100 % now.
        #[arg(long)]
        full: bool,
    },
    /// Roll back now: traffic back to the stable version, the new version blocked.
    Abort(RolloutRef),
    /// Unblock a rolled-back or failed rollout's version and start again.
    Retry(RolloutRef),
    /// Write a rollout's report: weights over time and the analysis values per sample.
    Report {
        /// The cell.
        cell: String,
        /// The rollout (default: the newest).
        id: Option<String>,
        /// Write a self-contained HTML page here.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
    },
}

/// Runs the CLI; returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            e.report();
            e.code
        }
    }
}

fn print(output: Output, value: &Value, text: impl FnOnce() -> Vec<String>) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => {
            for l in text() {
                println!("{l}");
            }
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let out = cli.global.output;
    // Offline commands need no AWS configuration.
    if let Command::Cell(CellCommand::Binding {
        file,
        cluster,
        service,
        service_port,
        namespace,
    }) = &cli.command
    {
        let (text, _) = read_spec(file)?;
        let spec = okra_core::validate::parse_and_validate(&text).map_err(|e| {
            CliError::new(format!("{}: {e}", file.display()))
                .hint("fix the spec first (every error is listed above)")
        })?;
        let manifest = binding_manifest(&spec, cluster, service, *service_port, namespace);
        match out {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&manifest).unwrap_or_default()
            ),
            Output::Text => print!(
                "# okra cell {}, cluster {cluster}: register the Service in okra's target group.\n{}",
                spec.name,
                serde_yaml_ng::to_string(&manifest).unwrap_or_default()
            ),
        }
        return Ok(exit::OK);
    }
    match &cli.command {
        Command::Cell(CellCommand::Validate { files }) => return check_files(out, files.clone()),
        Command::Cell(CellCommand::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&okra_core::spec::json_schema()).unwrap_or_default()
            );
            return Ok(exit::OK);
        }
        Command::Init {
            name,
            listener,
            rule,
            selector,
            version_tag,
            port,
            schema,
            output_file,
        } => {
            let selector = selector
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| CliError::usage(format!("--selector {kv}: not KEY=VALUE")))
                })
                .collect::<Result<_, _>>()?;
            let opts = okra_core::init::InitOptions {
                name: name.clone(),
                listener_arn: listener.clone(),
                rule_arn: rule.clone(),
                selector,
                version_tag: version_tag.clone(),
                port: *port,
                schema: schema.clone(),
            };
            return init(&cli.global, &opts, output_file.as_ref()).await;
        }
        Command::Cell(CellCommand::Lint { paths }) => {
            let roots = if paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                paths.clone()
            };
            return check_files(out, spec_files(&roots)?);
        }
        // A spec with mistakes is refused before anything asks for a region or a table.
        Command::Cell(CellCommand::Apply { file }) => {
            let report = check_file(file);
            if !report.errors.is_empty() {
                report_lines(&report).iter().for_each(|l| eprintln!("{l}"));
                return Err(CliError::new(format!(
                    "{}: not applied ({} {})",
                    file.display(),
                    report.errors.len(),
                    plural(report.errors.len(), "error", "errors")
                ))
                .hint("fix every error listed above, then apply again (`okra cell validate -f` checks offline)"));
            }
        }
        Command::Doctor {
            cell,
            file,
            datadog_secret_arn,
        } => {
            return doctor(
                &cli.global,
                out,
                cell.as_deref(),
                file.as_ref(),
                datadog_secret_arn.as_deref(),
            )
            .await;
        }
        _ => {}
    }
    let ctx = Ctx::new(&cli.global.target()).await?;
    match cli.command {
        Command::Cell(c) => cell(&ctx, out, c).await,
        Command::Plan { cell } => {
            let v = ctx.api("GET", &format!("/cells/{cell}/plan"), None).await?;
            print(out, &v, || plan_lines(&v));
            Ok(exit::OK)
        }
        Command::Rollout(r) => rollout(&ctx, out, r).await,
        Command::Clusters { cell } => clusters(&ctx, out, &cell).await,
        Command::TargetGroups { cell } => target_groups(&ctx, out, &cell).await,
        Command::Doctor { .. } | Command::Init { .. } => {
            unreachable!("doctor and init build their own clients")
        }
    }
}

/// The TargetGroupBinding of aws-load-balancer-controller (`elbv2.k8s.aws/v1beta1`) that registers
/// `service`'s endpoints in the target group okra makes for `cluster`, named by `targetGroupName`
/// (deterministic: [`okra_core::naming::target_group_name`]).
pub fn binding_manifest(
    spec: &okra_core::spec::CellSpec,
    cluster: &str,
    service: &str,
    port: u16,
    namespace: &str,
) -> Value {
    let target_type = match spec.target_group.target_type {
        okra_core::spec::TargetType::Instance => "instance",
        okra_core::spec::TargetType::Ip => "ip",
    };
    serde_json::json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {
            "name": format!("okra-{}", spec.name),
            "namespace": namespace,
            "labels": {"okra.io/cell": spec.name, "okra.io/cluster": cluster},
        },
        "spec": {
            "serviceRef": {"name": service, "port": port},
            "targetGroupName": okra_core::naming::target_group_name(&spec.name, cluster),
            "targetType": target_type,
        },
    })
}

fn plan_lines(v: &Value) -> Vec<String> {
    let d = &v["decision"];
    let mut lines = vec![format!(
        "cell {}: {}",
        v["cell"].as_str().unwrap_or_default(),
        d["kind"].as_str().unwrap_or("?")
    )];
    if let Some(reason) = d["reason"].as_str() {
        lines.push(format!("  {reason}"));
    }
    for (side, label) in [
        ("stable", "stable"),
        ("canary", "canary"),
        ("target", "target"),
    ] {
        if let Some(s) = d.get(side).filter(|s| !s.is_null()) {
            lines.push(format!(
                "  {label}: {} ({} clusters)",
                s["version"].as_str().unwrap_or("?"),
                s["members"].as_array().map_or(0, Vec::len)
            ));
        }
    }
    if let Some(steps) = d["plan"]["steps"].as_array() {
        let s: Vec<String> = steps
            .iter()
            .map(|s| match s["type"].as_str() {
                Some(t) if t == StepKind::SetWeight.as_ref() => format!("{} %", s["weight"]),
                Some(t) => t.to_owned(),
                None => "?".into(),
            })
            .collect();
        lines.push(format!("  steps: {}", s.join(" → ")));
    }
    if let Some(versions) = v["versions"].as_object() {
        let s: Vec<String> = versions.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        lines.push(format!("  serving clusters: {}", s.join(", ")));
    }
    for p in v["pending"].as_array().into_iter().flatten() {
        lines.push(format!("  pending: {p}"));
    }
    for i in v["ignored"].as_array().into_iter().flatten() {
        lines.push(format!("  ignored: {i}"));
    }
    lines
}

/// `okra init`.
async fn init(
    global: &Global,
    opts: &okra_core::init::InitOptions,
    output_file: Option<&PathBuf>,
) -> Result<i32, CliError> {
    if let Some(f) = output_file
        && f.exists()
    {
        return Err(CliError::new(format!("{} exists", f.display()))
            .hint("choose another file; okra init never overwrites one"));
    }
    let conf = crate::ctx::load_config(&global.target()).await?;
    let eks = okra_aws::eks::Eks::from_config(&conf);
    let elb = okra_aws::elb::Elb::from_config(&conf);
    // The listener must exist (one read, nothing written).
    elb.read_action(&opts.listener_arn, opts.rule_arn.as_deref())
        .await?;
    let mut clusters = Vec::new();
    for n in eks.find_clusters(&opts.selector).await? {
        clusters.extend(eks.describe_cluster(&n).await?);
    }
    let starter = okra_core::init::starter(opts, &clusters);
    // What init writes must validate (a bug of okra otherwise).
    okra_core::validate::read_document(&starter.yaml)
        .map_err(|e| e.to_string())
        .and_then(|d| okra_core::validate::check_document(&d).map_err(|e| e.to_string()))
        .map_err(|e| CliError::internal(format!("the starter spec does not validate: {e}")))?;
    match output_file {
        Some(f) => {
            std::fs::write(f, &starter.yaml)
                .map_err(|e| CliError::new(format!("cannot write {}: {e}", f.display())))?;
            eprintln!("wrote {}", f.display());
            for n in &starter.notes {
                eprintln!("note: {n}");
            }
        }
        None => print!("{}", starter.yaml),
    }
    Ok(exit::OK)
}

/// `okra doctor`.
async fn doctor(
    global: &Global,
    out: Output,
    cell: Option<&str>,
    file: Option<&PathBuf>,
    datadog_secret_arn: Option<&str>,
) -> Result<i32, CliError> {
    use okra_aws::handlers::api::Doctor as _;
    use okra_aws::handlers::doctor::{Checker, DoctorReport};
    use okra_core::doctor::Level;
    let target = global.target();
    let datadog = datadog_secret_arn.map(str::to_owned);
    let report: DoctorReport = match (file, cell) {
        (Some(file), _) => {
            let report = check_file(file);
            if !report.errors.is_empty() {
                report_lines(&report).iter().for_each(|l| eprintln!("{l}"));
                return Err(
                    CliError::new(format!("{}: not a valid cell spec", file.display()))
                        .hint("fix every error listed above first"),
                );
            }
            let (text, _) = read_spec(file)?;
            let spec = okra_core::validate::parse_and_validate(&text)
                .map_err(|e| CliError::internal(format!("the spec checked fine once: {e}")))?;
            let conf = crate::ctx::load_config(&target).await?;
            Checker::from_config(&conf, datadog).check(&spec).await?
        }
        // A stored cell: the API's route, as every other command.
        (None, Some(cell)) => {
            let mut ctx = Ctx::new(&target).await?;
            ctx.doctor = ctx.doctor.clone().with_datadog_secret(datadog);
            let v = ctx
                .api("GET", &format!("/cells/{cell}/doctor"), None)
                .await?;
            serde_json::from_value(v).map_err(|e| {
                CliError::internal(format!("the doctor's answer does not read: {e}"))
            })?
        }
        (None, None) => return Err(CliError::usage("give a cell, or a spec with -f")),
    };
    let v = serde_json::to_value(&report)
        .map_err(|e| CliError::internal(format!("the report does not serialize: {e}")))?;
    print(out, &v, || {
        let mut lines = vec![format!(
            "okra doctor: cell {} in {}",
            report.cell, report.region
        )];
        for c in &report.checks {
            let level = match c.level {
                Level::Ok => "ok",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            lines.push(format!("{level:<8} {:<28} {}", c.id, c.summary));
            if let Some(fix) = &c.fix {
                lines.push(format!("{:<8} {:<28} -> {fix}", "", ""));
            }
        }
        lines
    });
    Ok(if report.level == Level::Error {
        exit::ERROR
    } else {
        exit::OK
    })
}

/// What `validate` found in one file.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct FileReport {
    /// The file.
    file: String,
    /// The cell's name, when the file names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    cell: Option<String>,
    /// Whether the file is a valid cell spec.
    valid: bool,
    /// Every error, with its field path (`path` is empty for the file as a whole).
    errors: Vec<okra_core::validate::FieldError>,
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Every error of one spec file, offline.
fn check_file(file: &PathBuf) -> FileReport {
    use okra_core::validate::{FieldError, check_document, read_document};
    let whole = |message: String| FieldError {
        path: String::new(),
        message,
    };
    let (cell, errors) = match read_spec(file) {
        Err(e) => (None, vec![whole(e.to_string())]),
        Ok((text, _)) => match read_document(&text) {
            Err(e) => (None, vec![whole(format!("not YAML or JSON: {e}"))]),
            Ok(doc) => (
                doc.get("name").and_then(Value::as_str).map(str::to_owned),
                check_document(&doc)
                    .err()
                    .map(|e| e.errors)
                    .unwrap_or_default(),
            ),
        },
    };
    FileReport {
        file: file.display().to_string(),
        cell,
        valid: errors.is_empty(),
        errors,
    }
}

fn report_lines(r: &FileReport) -> Vec<String> {
    if r.valid {
        return vec![format!(
            "{}: ok (cell {})",
            r.file,
            r.cell.as_deref().unwrap_or("?")
        )];
    }
    let mut lines = vec![format!(
        "{}: {} {}",
        r.file,
        r.errors.len(),
        plural(r.errors.len(), "error", "errors")
    )];
    lines.extend(r.errors.iter().map(|e| {
        if e.path.is_empty() {
            format!("  {}", e.message)
        } else {
            format!("  {}: {}", e.path, e.message)
        }
    }));
    lines
}

/// `okra cell validate` / `lint`: every file's errors; exit 1 when any file has one.
fn check_files(out: Output, files: Vec<PathBuf>) -> Result<i32, CliError> {
    if files.is_empty() {
        return Err(CliError::new("no cell spec found (*.yaml, *.yml, *.json)")
            .hint("name spec files or folders that hold them"));
    }
    let reports: Vec<FileReport> = files.iter().map(check_file).collect();
    let valid = reports.iter().all(|r| r.valid);
    let v = json!({"valid": valid, "files": reports});
    print(out, &v, || {
        let mut lines: Vec<String> = reports.iter().flat_map(report_lines).collect();
        let bad = reports.iter().filter(|r| !r.valid).count();
        if reports.len() > 1 {
            lines.push(format!(
                "{} {} checked, {bad} with errors",
                reports.len(),
                plural(reports.len(), "spec", "specs")
            ));
        }
        lines
    });
    Ok(if valid { exit::OK } else { exit::ERROR })
}

/// The spec files under `roots` (folders walked, sorted; files as given).
fn spec_files(roots: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for p in entries {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else if p
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for r in roots {
        if r.is_dir() {
            walk(r, &mut out)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", r.display())))?;
        } else {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Reads a spec file's text and its media type.
fn read_spec(file: &PathBuf) -> Result<(String, &'static str), CliError> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::new(format!("reading standard input: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            CliError::new(format!("cannot read {}: {e}", file.display()))
                .hint("give the path of a cell spec (YAML or JSON) with -f")
        })?
    };
    let json = file.extension().is_some_and(|e| e == "json");
    Ok((
        text,
        if json {
            "application/json"
        } else {
            "application/yaml"
        },
    ))
}

async fn cell(ctx: &Ctx, out: Output, c: CellCommand) -> Result<i32, CliError> {
    match c {
        CellCommand::Apply { file } => {
            let (text, media) = read_spec(&file)?;
            let doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
                CliError::new(format!("{}: not YAML or JSON: {e}", file.display()))
                    .hint("fix the file's syntax and apply again")
            })?;
            let name = doc["name"].as_str().ok_or_else(|| {
                CliError::new(format!("{}: name: missing", file.display()))
                    .hint("a cell spec starts with `name: <cell>`")
            })?;
            let v = ctx
                .api(
                    "PUT",
                    &format!("/cells/{name}"),
                    Some((text.clone(), media)),
                )
                .await?;
            print(out, &v, || {
                vec![format!(
                    "cell {name}: stored (revision {})",
                    v["revision"].as_u64().unwrap_or(0)
                )]
            });
        }
        CellCommand::Get { cell } => {
            let v = ctx.api("GET", &format!("/cells/{cell}"), None).await?;
            print(out, &v, || {
                let mut lines = vec![format!(
                    "# cell {cell}, revision {}, updated {}",
                    v["revision"],
                    v["updatedAt"].as_str().unwrap_or_default()
                )];
                if let Some(lock) = v.get("lock").filter(|l| !l.is_null()) {
                    lines.push(format!(
                        "# locked by rollout {} ({})",
                        lock["execution"].as_str().unwrap_or_default(),
                        lock["version"].as_str().unwrap_or_default()
                    ));
                }
                for b in v["blocklist"].as_array().into_iter().flatten() {
                    lines.push(format!(
                        "# blocked: {} ({})",
                        b["version"].as_str().unwrap_or_default(),
                        view::one_line(b["reason"].as_str().unwrap_or_default())
                    ));
                }
                lines.push(serde_yaml_ng::to_string(&v["spec"]).unwrap_or_default());
                lines
            });
        }
        CellCommand::List => {
            let v = ctx.api("GET", "/cells", None).await?;
            print(out, &v, || {
                let cells = v["cells"].as_array().cloned().unwrap_or_default();
                if cells.is_empty() {
                    return vec!["no cells: add one with `okra cell apply -f cell.yaml`".into()];
                }
                let mut lines = vec![format!("{:<24} {:>8}  {}", "CELL", "REVISION", "UPDATED")];
                for c in cells {
                    lines.push(format!(
                        "{:<24} {:>8}  {}",
                        c["name"].as_str().unwrap_or_default(),
                        c["revision"],
                        c["updatedAt"].as_str().unwrap_or_default()
                    ));
                }
                lines
            });
        }
        CellCommand::Delete { cell } => {
            ctx.require_state_machine()?;
            ctx.api("DELETE", &format!("/cells/{cell}"), None).await?;
            print(out, &json!({"cell": cell, "deleted": true}), || {
                vec![format!("cell {cell}: deleted")]
            });
        }
        // Answered offline in `dispatch`.
        CellCommand::Binding { .. }
        | CellCommand::Validate { .. }
        | CellCommand::Lint { .. }
        | CellCommand::Schema => {
            unreachable!("offline commands need no AWS")
        }
    }
    Ok(exit::OK)
}

async fn id_of(ctx: &Ctx, r: &RolloutRef) -> Result<String, CliError> {
    match &r.id {
        Some(id) => Ok(id.clone()),
        None => view::newest(ctx, &r.cell).await,
    }
}

async fn signal(ctx: &Ctx, out: Output, r: &RolloutRef, signal: Signal) -> Result<i32, CliError> {
    ctx.require_state_machine()?;
    let action = signal.path_segment();
    let id = id_of(ctx, r).await?;
    let v = ctx
        .api(
            "POST",
            &format!("/cells/{}/rollouts/{id}/{action}", r.cell),
            None,
        )
        .await?;
    print(out, &v, || {
        vec![format!(
            "rollout {id}: {action} sent; the state machine takes it at its next poll"
        )]
    });
    Ok(exit::OK)
}

fn start_lines(v: &Value) -> Vec<String> {
    vec![format!(
        "cell {}: {}{} — {}",
        v["cell"].as_str().unwrap_or_default(),
        v["outcome"].as_str().unwrap_or_default(),
        v["execution"]
            .as_str()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default(),
        v["reason"].as_str().unwrap_or_default()
    )]
}

async fn rollout(ctx: &Ctx, out: Output, r: RolloutCommand) -> Result<i32, CliError> {
    match r {
        RolloutCommand::Start { cell } => {
            ctx.require_state_machine()?;
            let v = ctx
                .api("POST", &format!("/cells/{cell}/rollouts"), None)
                .await?;
            print(out, &v, || start_lines(&v));
            Ok(exit::OK)
        }
        RolloutCommand::Status(r) => {
            ctx.require_state_machine()?;
            let id = id_of(ctx, &r).await?;
            let v = view::gather(ctx, &r.cell, &id).await?;
            print(out, &serde_json::to_value(&v).unwrap_or_default(), || {
                view::render(&v)
            });
            Ok(exit::OK)
        }
        RolloutCommand::Watch { r, interval } => {
            ctx.require_state_machine()?;
            let id = id_of(ctx, &r).await?;
            let v = watch(
                ctx,
                &r.cell,
                &id,
                out,
                Duration::from_secs_f64(interval.max(0.1)),
            )
            .await?;
            Ok(if v.failed() {
                exit::ROLLOUT_FAILED
            } else {
                exit::OK
            })
        }
        RolloutCommand::Resume(r) => signal(ctx, out, &r, Signal::Resume).await,
        RolloutCommand::Promote { r, full } => {
            let s = if full {
                Signal::PromoteFull
            } else {
                Signal::Promote
            };
            signal(ctx, out, &r, s).await
        }
        RolloutCommand::Abort(r) => signal(ctx, out, &r, Signal::Abort).await,
        RolloutCommand::Retry(r) => {
            ctx.require_state_machine()?;
            let id = id_of(ctx, &r).await?;
            let v = ctx
                .api(
                    "POST",
                    &format!("/cells/{}/rollouts/{id}/retry", r.cell),
                    None,
                )
                .await?;
            print(out, &v, || start_lines(&v));
            Ok(exit::OK)
        }
        RolloutCommand::Report { cell, id, html } => {
            ctx.require_state_machine()?;
            let id = match id {
                Some(id) => id,
                None => view::newest(ctx, &cell).await?,
            };
            let v = view::gather(ctx, &cell, &id).await?;
            std::fs::write(&html, crate::report::html(&v))
                .map_err(|e| CliError::new(format!("cannot write {}: {e}", html.display())))?;
            print(
                out,
                &json!({"cell": cell, "rollout": id, "html": html}),
                || vec![format!("wrote {}", html.display())],
            );
            Ok(exit::OK)
        }
    }
}

/// Follows a rollout until it ends; returns its last view. A terminal gets live bars; anything
/// else gets a line per change.
pub async fn watch(
    ctx: &Ctx,
    cell: &str,
    id: &str,
    out: Output,
    interval: Duration,
) -> Result<View, CliError> {
    let live = out == Output::Text && std::io::stdout().is_terminal();
    let mut shown_history = 0;
    let mut last_line = String::new();
    let mut shown_samples = 0;
    // A rollout just started has no record until its first state ran.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ctx.state.get_rollout(cell, id).await?.is_none() {
        if std::time::Instant::now() > deadline {
            return Err(CliError::new(format!(
                "rollout {id} of cell {cell}: no record after 60 s"
            ))
            .hint("`okra rollout status <cell>` lists what there is; check the execution in Step Functions"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let multi = MultiProgress::new();
    let mut bars: Vec<(String, ProgressBar)> = Vec::new();
    let header = live.then(|| {
        let pb = multi.add(ProgressBar::new_spinner());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    loop {
        let v = view::gather(ctx, cell, id).await?;
        let say = |line: String| {
            if live {
                multi.println(line).ok();
            } else if out == Output::Text {
                println!("{line}");
            }
        };
        for h in v.rollout.history.iter().skip(shown_history) {
            say(format!("  {}", view::history_line(h)));
        }
        shown_history = v.rollout.history.len();
        for s in v.samples.iter().skip(shown_samples) {
            say(format!("  analysis: {}", view::verdict_line(s)));
        }
        shown_samples = v.samples.len();
        let step = v
            .step
            .as_ref()
            .map(|(i, w)| format!("step {}/{} {w}", i + 1, v.step_count))
            .unwrap_or_else(|| "starting".into());
        let weights: Vec<String> = v
            .weights
            .iter()
            .map(|w| {
                format!(
                    "{} {} {:>3} %",
                    w.version,
                    view::bar(w.percent, 20),
                    w.percent
                )
            })
            .collect();
        if let Some(h) = &header {
            h.set_message(format!(
                "{cell} {} → {}  {step}  [{}]",
                v.rollout.from.as_deref().unwrap_or("(none)"),
                v.rollout.to,
                v.rollout.status
            ));
            for w in &v.weights {
                let pb = match bars.iter().find(|(ver, _)| *ver == w.version) {
                    Some((_, pb)) => pb.clone(),
                    None => {
                        let pb = multi.add(ProgressBar::new(100));
                        pb.set_style(
                            ProgressStyle::with_template(
                                "  {prefix:>8} {bar:30.cyan/blue} {pos:>3} %",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("█▉░"),
                        );
                        pb.set_prefix(w.version.clone());
                        bars.push((w.version.clone(), pb.clone()));
                        pb
                    }
                };
                pb.set_position(u64::from(w.percent));
            }
            for (ver, pb) in &bars {
                if !v.weights.iter().any(|w| &w.version == ver) {
                    pb.set_position(0);
                }
            }
        } else if out == Output::Text {
            let line = format!("  {step} | {}", weights.join(" | "));
            if line != last_line {
                println!("{line}");
                last_line = line;
            }
        }
        if v.done() {
            if let Some(h) = &header {
                h.finish_and_clear();
            }
            for (_, pb) in &bars {
                pb.abandon();
            }
            match out {
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                }
                Output::Text => {
                    println!(
                        "rollout {id}: {}{}",
                        v.rollout.status,
                        v.verdict()
                            .map(|s| format!(" — last analysis {}", view::verdict_line(s)))
                            .unwrap_or_default()
                    );
                }
            }
            return Ok(v);
        }
        tokio::time::sleep(interval).await;
    }
}

async fn stored_spec(ctx: &Ctx, cell: &str) -> Result<CellSpec, CliError> {
    let v = ctx.api("GET", &format!("/cells/{cell}"), None).await?;
    serde_json::from_value(v["spec"].clone())
        .map_err(|e| CliError::internal(format!("the stored spec does not read: {e}")))
}

async fn cell_clusters(
    ctx: &Ctx,
    spec: &CellSpec,
) -> Result<Vec<okra_core::model::Cluster>, CliError> {
    let mut out = Vec::new();
    for name in ctx
        .eks
        .find_clusters(&spec.cluster_selector.match_tags)
        .await?
    {
        if let Some(c) = ctx.eks.describe_cluster(&name).await?
            && spec.cluster_selector.matches(&c.tags)
        {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn clusters(ctx: &Ctx, out: Output, cell: &str) -> Result<i32, CliError> {
    let spec = stored_spec(ctx, cell).await?;
    let list = cell_clusters(ctx, &spec).await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({"name": c.name, "status": format!("{:?}", c.status).to_uppercase(),
                   "version": c.tags.get(&spec.version_tag), "vpcId": c.vpc_id})
        })
        .collect();
    let v = json!({"cell": cell, "clusters": rows});
    print(out, &v, || {
        let mut lines = vec![format!(
            "{:<32} {:<10} {:<10} {}",
            "CLUSTER", "STATUS", "VERSION", "VPC"
        )];
        for r in &rows {
            lines.push(format!(
                "{:<32} {:<10} {:<10} {}",
                r["name"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
                r["version"].as_str().unwrap_or("-"),
                r["vpcId"].as_str().unwrap_or("-")
            ));
        }
        if rows.is_empty() {
            lines.push("(no cluster matches the cell's clusterSelector)".into());
        }
        lines
    });
    Ok(exit::OK)
}

async fn target_groups(ctx: &Ctx, out: Output, cell: &str) -> Result<i32, CliError> {
    let spec = stored_spec(ctx, cell).await?;
    let mut weights = std::collections::BTreeMap::new();
    if let Some((_, listener)) = spec.ingress.listener() {
        let owned = ctx
            .elb
            .read_action(listener, spec.ingress.rule_arn())
            .await?;
        if let okra_core::model::CurrentAction::Forward(fa) = owned.action {
            let total: u32 = fa.targets.iter().map(|t| t.weight).sum::<u32>().max(1);
            for t in fa.targets {
                weights.insert(t.target_group_arn, t.weight * 100 / total);
            }
        }
    }
    let arns: Vec<String> = weights.keys().cloned().collect();
    let groups = ctx.elb.find_target_groups(cell, &arns).await?;
    let mut rows = Vec::new();
    for g in &groups {
        let health = ctx.elb.target_health(&g.arn).await?;
        rows.push(
            json!({"name": g.name, "arn": g.arn, "version": g.version, "cluster": g.cluster,
                         "weight": weights.get(&g.arn).copied().unwrap_or(0),
                         "healthy": health.healthy, "total": health.total}),
        );
    }
    let v = json!({"cell": cell, "targetGroups": rows});
    print(out, &v, || {
        let mut lines = vec![format!(
            "{:<32} {:<10} {:<28} {:>6}  {}",
            "TARGET GROUP", "VERSION", "CLUSTER", "WEIGHT", "HEALTHY"
        )];
        for r in &rows {
            lines.push(format!(
                "{:<32} {:<10} {:<28} {:>4} %  {}/{}",
                r["name"].as_str().unwrap_or_default(),
                r["version"].as_str().unwrap_or_default(),
                r["cluster"].as_str().unwrap_or_default(),
                r["weight"],
                r["healthy"],
                r["total"]
            ));
        }
        if rows.is_empty() {
            lines.push("(no target group of this cell yet)".into());
        }
        lines
    });
    Ok(exit::OK)
}
