//! The story `make demo` tells, through the shipped state machine, the real function binaries and
//! moto, nothing faked: the local AWS is started by okra-testkit (moto, cargo lambda watch over
//! the workspace's functions, and the local Step Functions service with every Wait shortened by
//! its `--fast-waits` flag), the table and the state machine are created as the SAM template does,
//! EKS clusters appear with raw CreateCluster calls, and the dispatcher function is invoked with
//! the CloudTrail event each would cause. The terminal shows each rollout as `okra rollout watch`
//! does. Every outcome is checked against the listener's weights as moto reports them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use okra_aws::state::StatePort as _;
use okra_core::vocab::{HistoryEvent, Outcome, RolloutStatus};
use okra_testkit::{LocalAws, lambda_arn};
use serde_json::{Value, json};

use okra_cli::cli::{Output, watch};
use okra_cli::ctx::{Ctx, Target};
use okra_cli::view::{self, View};

/// The table the demo's functions use.
pub const TABLE: &str = "okra-demo";
/// The state machine's name.
pub const STATE_MACHINE: &str = "okra-rollout";
/// The demo's Argo CD hub (an EKS cluster whose API is the testkit's local Kubernetes API).
pub const HUB: &str = "argocd-hub";
/// Every function of the state machine, by its DefinitionSubstitution.
pub const FUNCTIONS: [(&str, &str); 6] = [
    ("DiscoverClustersFunctionArn", "discover-clusters"),
    ("EnsureTargetGroupsFunctionArn", "ensure-target-groups"),
    ("ShiftWeightsFunctionArn", "shift-weights"),
    ("CheckMetricsFunctionArn", "check-metrics"),
    ("RolloutStateFunctionArn", "rollout-state"),
    ("DispatcherFunctionArn", "dispatcher"),
];

/// Demo options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every Wait state waits this many milliseconds (sfn-local `--fast-waits`).
    pub fast_waits_ms: u64,
    /// Write the 1.1.0 rollout's HTML report here.
    pub report: Option<PathBuf>,
    /// Seconds between reads of a running rollout.
    pub interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fast_waits_ms: 200,
            report: None,
            interval: Duration::from_millis(300),
        }
    }
}

impl Options {
    /// `okra-demo [--fast-waits MS] [--report FILE]`.
    pub fn from_args() -> Self {
        let mut o = Self::default();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--fast-waits" => {
                    if let Some(ms) = args.next().and_then(|v| v.parse().ok()) {
                        o.fast_waits_ms = ms;
                    }
                }
                "--report" => o.report = args.next().map(PathBuf::from),
                "-h" | "--help" => {
                    println!(
                        "okra-demo [--fast-waits MS] [--report FILE]: the local rollout story of \
                         `make demo` (see README)"
                    );
                    std::process::exit(0);
                }
                _ => {}
            }
        }
        o
    }
}

/// What the story ended with, for tests.
#[derive(Debug)]
pub struct Story {
    /// The three rollouts' views, in order.
    pub rollouts: Vec<View>,
    /// The listener's weights at the end: (version, percent).
    pub final_weights: Vec<(String, u32)>,
    /// Blocked versions.
    pub blocked: Vec<String>,
    /// The last dispatch's outcome.
    pub last_dispatch: Value,
}

fn title(s: &str) {
    use std::io::IsTerminal as _;
    if std::io::stdout().is_terminal() {
        println!("\n\x1b[1m== {s}\x1b[0m");
    } else {
        println!("\n== {s}");
    }
}

fn say(s: &str) {
    println!("   {s}");
}

/// The cell of the demo.
pub fn cell_spec(listener_arn: &str) -> Value {
    json!({
        "name": "web",
        "ingress": {"alb": {"listenerArn": listener_arn}},
        "clusterSelector": {"matchTags": {"okra.io/cell": "web"}},
        "replicas": 2,
        "targetGroup": {"port": 30080, "targetType": "ip", "healthCheck": {"path": "/healthz"},
                        "registration": "external"},
        "readiness": {"minHealthyPercent": 100, "timeout": "1m"},
        // The clusters join Argo CD in the hub (the local Kubernetes API); an old version's
        // groups retire 2 s after they leave traffic (1 h by default).
        "argocd": {"hub": HUB, "labels": {"team": "web"}},
        "retire": {"after": "2s", "keep": 0},
        "canary": {"steps": [
            {"setWeight": 10},
            {"analysis": {"templates": [{"templateName": "errors"}]}},
            {"setWeight": 50},
            {"pause": {"duration": "5m"}},
            {"analysis": {"templates": [{"templateName": "errors"}]}},
            {"setWeight": 100}
        ]},
        "analysisTemplates": [{
            "name": "errors",
            "metrics": [{
                "name": "error-rate",
                "interval": "1m",
                "count": 1,
                "successCondition": "result < 1.0",
                "failureCondition": "result >= 5.0",
                "provider": {"cloudwatch": {"window": "10m", "metricDataQueries": [{
                    "id": "errors",
                    "metricStat": {"namespace": "Okra/Demo", "metricName": "Errors",
                                   "dimensions": {"Cell": "web"}, "period": 60, "stat": "Maximum"}
                }]}}
            }]
        }],
        "judge": {"enabled": false}
    })
}

/// The demo's world: the local AWS, the table and state machine, and an ALB listener.
#[derive(Debug)]
pub struct Demo {
    /// The local AWS (stopped on drop).
    pub aws: LocalAws,
    /// The CLI's context over it.
    pub ctx: Ctx,
    conf: aws_config::SdkConfig,
    vpc: String,
    subnets: Vec<String>,
    /// The listener the cell owns.
    pub listener: String,
    interval: Duration,
    /// How long the set-up took.
    pub setup: Duration,
    /// Each cluster's service: a real local HTTP backend behind its target group.
    backends: std::sync::Mutex<Vec<okra_testkit::Backend>>,
    /// The Argo CD hub's Kubernetes API.
    pub hub: okra_testkit::KubeApi,
}

impl Demo {
    /// The environment for an `okra` process against this world.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let mut env = self.aws.env();
        env.push(("OKRA_TABLE".into(), TABLE.into()));
        env.push((
            "OKRA_STATE_MACHINE_ARN".into(),
            self.ctx.state_machine_arn.clone().unwrap_or_default(),
        ));
        env
    }

    /// Creates an EKS cluster of cell `web` (as AWS would answer DescribeCluster).
    pub async fn cluster(&self, name: &str, version: &str) -> Result<()> {
        self.cluster_of("web", name, version).await
    }

    /// Creates an EKS cluster of `cell` (tagged `okra.io/cell=CELL`), its service a local backend.
    pub async fn cluster_of(&self, cell: &str, name: &str, version: &str) -> Result<()> {
        // Created as AWS would answer DescribeCluster (see LocalAws::create_eks_cluster).
        let tags = std::collections::BTreeMap::from([
            ("okra.io/cell".to_string(), cell.to_string()),
            ("okra.io/version".to_string(), version.to_string()),
        ]);
        tokio::task::block_in_place(|| {
            self.aws
                .create_eks_cluster(name, &self.subnets, &self.vpc, &tags)
        })?;
        let ip = self.serve(cell, name, version).await?;
        say(&format!(
            "EKS cluster {name} created, tagged okra.io/version={version}; its service at {ip}:30080 is a local backend"
        ));
        Ok(())
    }

    /// What aws-load-balancer-controller does in the cluster (`registration: external`): the
    /// cluster's service, here a real local backend, registered in the target group okra names
    /// for the cluster (made here first, tagged `okra.io/managed-by=okra` as okra tags its own:
    /// okra's role may retag and register only such groups, which the local AWS enforces; okra
    /// finds it by its deterministic name). The strict local ELB health-checks it once okra puts
    /// the group in the listener.
    async fn serve(&self, cell: &str, cluster: &str, version: &str) -> Result<String> {
        use aws_sdk_elasticloadbalancingv2::types::{
            ProtocolEnum, TargetDescription, TargetTypeEnum,
        };
        let backend = okra_testkit::Backend::start(version)?;
        let n = {
            let b = self
                .backends
                .lock()
                .map_err(|_| anyhow::anyhow!("backends lock"))?;
            b.len() + 11
        };
        let ip = format!("10.0.200.{n}");
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&self.conf);
        let tg = elb
            .create_target_group()
            .name(okra_core::naming::target_group_name(cell, cluster))
            .protocol(ProtocolEnum::Http)
            .port(30080)
            .vpc_id(&self.vpc)
            .target_type(TargetTypeEnum::Ip)
            .health_check_path("/healthz")
            .tags(
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key(okra_core::model::TAG_MANAGED_BY)
                    .value("okra")
                    .build(),
            )
            .send()
            .await?;
        let arn = tg
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .context("CreateTargetGroup answered no ARN")?
            .to_string();
        elb.register_targets()
            .target_group_arn(&arn)
            .targets(TargetDescription::builder().id(&ip).port(30080).build())
            .send()
            .await?;
        tokio::task::block_in_place(|| self.aws.map_target(&ip, 30080, &backend))?;
        self.backends
            .lock()
            .map_err(|_| anyhow::anyhow!("backends lock"))?
            .push(backend);
        Ok(ip)
    }

    /// Another ALB with a listener (fixed response 503 until a cluster serves), for a second
    /// cell: its listener's ARN.
    pub fn new_listener(&self, name: &str) -> Result<String> {
        let (_, listener) =
            tokio::task::block_in_place(|| self.aws.create_alb_with_listener(name, &self.subnets))?;
        Ok(listener)
    }

    /// Invokes the dispatcher function.
    pub fn dispatch(&self, event: &Value) -> Result<Value> {
        let out = tokio::task::block_in_place(|| self.aws.invoke("dispatcher", event))?
            .into_value()
            .context("the dispatcher failed")?;
        Ok(out)
    }

    /// The CloudTrail event of a CreateCluster.
    pub fn created_event(name: &str, version: &str) -> Value {
        json!({
            "version": "0", "id": format!("demo-{name}"), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.eks", "account": "123456789012", "time": "2026-03-02T10:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {
                "eventSource": "eks.amazonaws.com", "eventName": "CreateCluster",
                "requestParameters": {"name": name,
                    "tags": {"okra.io/cell": "web", "okra.io/version": version}},
            }
        })
    }

    /// Clusters of `version` appear; each CreateCluster's CloudTrail event goes to the dispatcher.
    /// Returns the execution the last dispatch started.
    /// New clusters of a version, each dispatched.
    pub async fn new_version(&self, version: &str, names: [&str; 2]) -> Result<String> {
        let mut execution = None;
        for name in names {
            self.cluster(name, version).await?;
            let out = self.dispatch(&Self::created_event(name, version))?;
            let r = &out["results"][0];
            say(&format!(
                "dispatcher (CloudTrail CreateCluster {name}): {} — {}",
                r["outcome"].as_str().unwrap_or("no cell concerned"),
                view::one_line(r["reason"].as_str().unwrap_or_default())
            ));
            if let Some(applied) = r["argocd"]["applied"].as_array()
                && !applied.is_empty()
            {
                let names: Vec<&str> = applied.iter().filter_map(Value::as_str).collect();
                say(&format!(
                    "  Argo CD: {} registered in {HUB} (okra.io/version={version}), before any traffic",
                    names.join(", ")
                ));
            }
            if let Some(e) = r["execution"].as_str()
                && matches!(r["outcome"].as_str(), Some("started" | "alreadyRunning"))
            {
                execution = Some(e.to_owned());
            }
        }
        execution.context("no rollout started")
    }

    async fn follow(&self, execution: &str) -> Result<View> {
        say(&format!("rollout {execution}:"));
        let client = okra_cli::client::Client::InProcess(Box::new(self.ctx.clone()));
        watch(&client, "web", execution, Output::Text, self.interval)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The listener's weights as moto reports them: (version, percent).
    pub async fn listener_weights(&self) -> Result<Vec<(String, u32)>> {
        let spec: okra_core::spec::CellSpec =
            serde_json::from_value(cell_spec(&self.listener)).context("the demo cell")?;
        Ok(self
            .ctx
            .answer(self.ctx.okra().weights(&spec).await)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .into_iter()
            .map(|w| (w.version, w.percent))
            .collect())
    }

    /// Error metric datapoints over the last five minutes.
    pub async fn metric(&self, value: f64) -> Result<()> {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        let cw = aws_sdk_cloudwatch::Client::new(&self.conf);
        let now = std::time::SystemTime::now();
        // One datapoint per minute over the last five: the whole window says the same.
        let mut req = cw.put_metric_data().namespace("Okra/Demo");
        for m in 1..=5 {
            req = req.metric_data(
                MetricDatum::builder()
                    .metric_name("Errors")
                    .dimensions(Dimension::builder().name("Cell").value("web").build())
                    .value(value)
                    .timestamp(aws_smithy_types::DateTime::from(
                        now - Duration::from_secs(60 * m - 30),
                    ))
                    .build(),
            );
        }
        req.send().await.context("PutMetricData")?;
        Ok(())
    }
}

fn show_weights(w: &[(String, u32)]) {
    for (v, p) in w {
        say(&format!("{v:>8}  {}  {p:>3} %", view::bar(*p, 30)));
    }
}

/// Runs the story; `Err` when it did not go as told.
pub async fn run(opts: &Options) -> Result<()> {
    story(opts).await.map(|_| ())
}

/// Starts the local AWS and creates what the SAM template would, and an ALB listener.
pub async fn setup(opts: &Options) -> Result<Demo> {
    let t0 = Instant::now();
    title("Setting up the local AWS");
    say(&format!(
        "moto, cargo lambda watch (the real functions), Step Functions (sfn-local, every Wait {} ms)",
        opts.fast_waits_ms
    ));
    let sm_arn = format!("arn:aws:states:us-east-1:123456789012:stateMachine:{STATE_MACHINE}");
    let fast = opts.fast_waits_ms;
    let sm = sm_arn.clone();
    let aws = tokio::task::spawn_blocking(move || {
        LocalAws::builder()
            .function_env("TABLE_NAME", TABLE)
            .function_env("STATE_MACHINE_ARN", sm)
            .function_env("EVENT_BUS_NAME", "default")
            .step_functions(Some(fast))
            .start()
    })
    .await??;
    let mut bins: Vec<&str> = FUNCTIONS.iter().map(|(_, b)| *b).collect();
    bins.extend(["dispatcher", "api"]);
    tokio::task::block_in_place(|| aws.ensure_built(&bins))?;
    let sfn_endpoint = aws.sfn_endpoint().context("no sfn endpoint")?.to_owned();
    let conf = aws.sdk_config().await;
    let ctx = Ctx::from_config(
        &conf,
        &Target {
            endpoint_url: Some(aws.endpoint().to_owned()),
            sfn_endpoint_url: Some(sfn_endpoint.clone()),
            table: Some(TABLE.into()),
            state_machine_arn: Some(sm_arn.clone()),
            region: Some(aws.region().into()),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    say(&format!(
        "moto {}  lambda {}  sfn {}",
        aws.endpoint(),
        aws.lambda_endpoint(),
        sfn_endpoint
    ));

    // What template.yaml creates: the table and the state machine (the shipped ASL, its
    // DefinitionSubstitutions filled as SAM fills them).
    okra_aws::dynamo::Dynamo::new(aws_sdk_dynamodb::Client::new(&conf), TABLE)
        .create_table()
        .await
        .context("CreateTable")?;
    let mut definition = std::fs::read_to_string(aws.root().join("statemachine/rollout.asl.json"))?;
    for (sub, bin) in FUNCTIONS {
        definition = definition.replace(&format!("${{{sub}}}"), &lambda_arn(bin));
    }
    let created = ctx
        .sfn
        .create_state_machine()
        .name(STATE_MACHINE)
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/okra-rollout")
        .send()
        .await
        .context("CreateStateMachine")?;
    ensure!(created.state_machine_arn() == sm_arn);
    say(&format!(
        "table {TABLE}, state machine {sm_arn} (statemachine/rollout.asl.json)"
    ));

    // An ALB whose listener answers 503 until a cluster serves.
    let (vpc, subnets) = tokio::task::block_in_place(|| aws.create_vpc_with_subnets())?;
    let (_, listener) =
        tokio::task::block_in_place(|| aws.create_alb_with_listener("web", &subnets))?;
    say(&format!(
        "VPC {vpc}, ALB web, listener :80 (fixed response 503)"
    ));
    let hub = tokio::task::block_in_place(|| {
        aws.argocd_hub(
            HUB,
            &subnets,
            &vpc,
            &std::collections::BTreeMap::from([("role".to_string(), "argocd".to_string())]),
        )
    })?;
    say(&format!(
        "EKS cluster {HUB}: Argo CD's hub, its Kubernetes API at {} (the dispatcher's access entry: template.yaml's ArgoCdHubAccessEntry)",
        hub.endpoint()
    ));

    Ok(Demo {
        aws,
        ctx,
        conf,
        vpc,
        subnets,
        listener,
        interval: opts.interval,
        setup: t0.elapsed(),
        backends: std::sync::Mutex::new(Vec::new()),
        hub,
    })
}

/// Runs the story and returns what it ended with.
pub async fn story(opts: &Options) -> Result<Story> {
    let demo = setup(opts).await?;
    let listener = demo.listener.clone();
    let spec = serde_yaml_ng::to_string(&cell_spec(&listener))?;
    let cell = okra_core::validate::parse_and_validate(&spec)?;
    demo.ctx
        .answer(demo.ctx.okra().put_cell(&cell, None).await)
        .map_err(|e| anyhow::anyhow!("okra cell apply: {e}"))?;
    say(
        "okra cell apply -f web.yaml: cell web stored (2 clusters per version; 10 → analysis → 50 → pause 5m → analysis → 100)",
    );
    let setup = demo.setup;
    let story_start = Instant::now();
    let mut rollouts = Vec::new();

    // 1. Two clusters of 1.0.0: initialize at 100 %.
    title("1. Cell web: two clusters of 1.0.0");
    let exec = demo.new_version("1.0.0", ["web-a1", "web-a2"]).await?;
    let v = demo.follow(&exec).await?;
    let w = demo.listener_weights().await?;
    show_weights(&w);
    ensure!(
        v.rollout.status == RolloutStatus::Promoted && w == vec![("1.0.0".to_owned(), 100)],
        "1.0.0 should serve 100 %: {} {w:?}",
        v.rollout.status
    );
    rollouts.push(v);

    // 2. Two clusters of 1.1.0, healthy: 10 → 50 → 100.
    title("2. Two clusters of 1.1.0 appear; their error metric is 0");
    demo.metric(0.0).await?;
    let exec = demo.new_version("1.1.0", ["web-b1", "web-b2"]).await?;
    let v = demo.follow(&exec).await?;
    let w = demo.listener_weights().await?;
    show_weights(&w);
    ensure!(
        v.rollout.status == RolloutStatus::Promoted && w == vec![("1.1.0".to_owned(), 100)],
        "1.1.0 should be promoted to 100 %: {} {w:?}",
        v.rollout.status
    );
    let weights_seen: Vec<u32> = v
        .rollout
        .history
        .iter()
        .filter(|h| h.event == HistoryEvent::StepDone)
        .filter_map(|h| h.weight)
        .collect();
    ensure!(
        weights_seen.contains(&10) && weights_seen.contains(&50),
        "1.1.0 should pass 10 % and 50 %: {weights_seen:?}"
    );
    if let Some(path) = &opts.report {
        std::fs::write(path, okra_cli::report::html(&v))?;
        say(&format!("report: {}", path.display()));
    }
    rollouts.push(v);

    // 3. Two clusters of 1.2.0 with bad metrics: analysis fails, rolled back, blocked.
    title("3. Two clusters of 1.2.0 appear; their error metric is 12");
    demo.metric(12.0).await?;
    let exec = demo.new_version("1.2.0", ["web-c1", "web-c2"]).await?;
    let v = demo.follow(&exec).await?;
    let w = demo.listener_weights().await?;
    show_weights(&w);
    ensure!(
        v.rollout.status == RolloutStatus::RolledBack && w == vec![("1.1.0".to_owned(), 100)],
        "1.2.0 should be rolled back to 1.1.0 at 100 %: {} {w:?}",
        v.rollout.status
    );
    let blocked: Vec<String> = demo
        .ctx
        .state
        .blocklist("web")
        .await?
        .into_iter()
        .map(|b| b.version)
        .collect();
    ensure!(blocked == vec!["1.2.0".to_owned()], "blocked: {blocked:?}");
    say("1.2.0 is blocked");
    rollouts.push(v);

    // The next trigger (the schedule) does not retry it.
    let out = demo.dispatch(&json!({
        "version": "0", "id": "demo-schedule", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-03-02T10:05:00Z",
        "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/okra-reconcile"],
        "detail": {}
    }))?;
    let last = out["results"][0].clone();
    say(&format!(
        "dispatcher (schedule): {} — {}",
        last["outcome"].as_str().unwrap_or_default(),
        view::one_line(last["reason"].as_str().unwrap_or_default())
    ));
    if last["outcome"] != Outcome::NothingToDo.as_ref() {
        bail!("the next dispatch should do nothing: {last}");
    }
    let final_weights = demo.listener_weights().await?;
    ensure!(final_weights == vec![("1.1.0".to_owned(), 100)]);

    // 4. The schedule's ticks retire what no longer serves: 1.0.0 (replaced) and 1.2.0 (blocked).
    title("4. Old versions retire");
    let marked = &last["retire"]["marked"];
    say(&format!(
        "dispatcher (schedule): idle since now: {} (retire.after 2s)",
        marked
            .as_array()
            .map(|m| m
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    ));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let out = demo.dispatch(&json!({
        "version": "0", "id": "demo-schedule-2", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-03-02T10:10:00Z",
        "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/okra-reconcile"],
        "detail": {}
    }))?;
    let r = &out["results"][0]["retire"];
    // 1.0.0 may have retired at an earlier tick already (its bake began when 1.1.0 was promoted).
    let mut retired: Vec<String> = last["retire"]["retired"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(r["retired"].as_array().into_iter().flatten())
        .map(|g| {
            format!(
                "{} ({} on {})",
                g["name"].as_str().unwrap_or_default(),
                g["version"].as_str().unwrap_or_default(),
                g["cluster"].as_str().unwrap_or_default()
            )
        })
        .collect();
    retired.sort();
    for g in &retired {
        say(&format!("retired: target group {g}"));
    }
    let tagged: Vec<&str> = last["retire"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(r["clusters"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    say(&format!(
        "clusters tagged okra.io/retired: {}",
        tagged.join(", ")
    ));
    let mut secrets: Vec<String> = demo
        .hub
        .secrets(okra_testkit::HUB_NAMESPACE)
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    secrets.sort();
    say(&format!(
        "Argo CD secrets left in {HUB}: {}",
        secrets.join(", ")
    ));
    ensure!(
        retired.len() == 4 && secrets == vec!["okra-web-web-b1", "okra-web-web-b2"],
        "1.0.0's and 1.2.0's groups should retire, only 1.1.0's clusters stay in Argo CD: {retired:?} {secrets:?}"
    );
    ensure!(demo.listener_weights().await? == final_weights);

    title("Summary");
    for v in &rollouts {
        say(&format!(
            "{:<24} {:>7} → {:<6} {}",
            v.rollout.execution,
            v.rollout.from.as_deref().unwrap_or("(none)"),
            v.rollout.to,
            v.rollout.status
        ));
    }
    say("listener now: 1.1.0 at 100 %; 1.2.0 blocked, not retried; 1.0.0 and 1.2.0 retired");
    say(&format!(
        "set-up {:.1} s, story {:.1} s",
        setup.as_secs_f64(),
        story_start.elapsed().as_secs_f64()
    ));
    Ok(Story {
        rollouts,
        final_weights,
        blocked,
        last_dispatch: last,
    })
}
