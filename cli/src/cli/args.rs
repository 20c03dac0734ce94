//! The command line: commands, options and global settings (clap).

use super::*;

/// okra: canary rollouts of whole EKS clusters behind an ALB or NLB listener.
///
/// Stores cells, shows what a rollout would do, starts and steers rollouts, and shows them as
/// they go. With --api-url (OKRA_API_URL), through okra's IAM-authenticated API; without, okra's
/// own handlers run in this process against your AWS account (or the local emulator).
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
    /// okra's API (the stack's ApiUrl output): every command the API serves goes through it,
    /// signed with your AWS credentials, which need only the stack's okra-operator or
    /// okra-viewer policy. Without it, okra runs in this process with your own AWS rights.
    #[arg(long, global = true, env = "OKRA_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// AWS region (default: the standard chain, e.g. AWS_REGION or your profile's).
    #[arg(long, global = true, env = "AWS_REGION", hide_env_values = true)]
    pub region: Option<String>,
    /// Send every AWS call to this URL (the local emulator, e.g. http://127.0.0.1:5000).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Send Step Functions calls here instead (a local Step Functions service).
    #[arg(long, global = true, value_name = "URL", env = "AWS_ENDPOINT_URL_SFN")]
    pub sfn_endpoint_url: Option<String>,
    /// okra's DynamoDB table (the stack's StateTableName output).
    #[arg(long, global = true, env = "OKRA_TABLE", value_name = "NAME")]
    pub table: Option<String>,
    /// The rollout state machine (the stack's RolloutStateMachineArn output).
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
    /// The cell's rollout events (as EventBridge and the notification topic got them), from its
    /// newest rollouts' history, oldest first; --follow prints new ones as they come.
    Events {
        /// The cell.
        cell: String,
        /// How many of the newest rollouts.
        #[arg(long, default_value_t = 5)]
        rollouts: usize,
        /// Go on printing new events until interrupted.
        #[arg(long)]
        follow: bool,
        /// Seconds between reads with --follow.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
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
