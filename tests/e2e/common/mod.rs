//! Shared set-up of the end-to-end tests: SDK clients on the local AWS, and a seeded world
//! (VPC, ALB, listener, EKS clusters) per test, under names no other test uses.

#![allow(dead_code)]

pub mod datadog;
pub mod policy;
pub mod service;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use aws_sdk_cloudwatch as cw;
use aws_sdk_dynamodb as ddb;
use aws_sdk_eks as eks;
use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_sfn as sfn;
use okra_aws::state::StatePort;
use okra_testkit::{Execution, LocalAws, RunRequest};
use serde_json::{Value, json};

/// The table the functions use (created once per test binary).
pub const TABLE: &str = "okra-e2e";
/// The state machine's ARN as the functions see it (moto holds a copy for StartExecution).
pub const STATE_MACHINE_ARN: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:okra-rollout";
/// Every function of the state machine, by the substitution that names it in the ASL.
pub const FUNCTIONS: [(&str, &str); 6] = [
    ("DiscoverClustersFunctionArn", "discover-clusters"),
    ("EnsureTargetGroupsFunctionArn", "ensure-target-groups"),
    ("ShiftWeightsFunctionArn", "shift-weights"),
    ("CheckMetricsFunctionArn", "check-metrics"),
    ("RolloutStateFunctionArn", "rollout-state"),
    ("DispatcherFunctionArn", "dispatcher"),
];

static STACK: OnceLock<std::result::Result<LocalAws, String>> = OnceLock::new();

/// A stack with the functions' environment as the template sets it.
pub fn builder() -> okra_testkit::LocalAwsBuilder {
    LocalAws::builder()
        .function_env("TABLE_NAME", TABLE)
        .function_env("STATE_MACHINE_ARN", STATE_MACHINE_ARN)
        .function_env("EVENT_BUS_NAME", "default")
        // The stack as deployed with one AMP workspace (template parameter
        // PrometheusWorkspaceArns): check-metrics may query it, and no other.
        .iam_ref("PrometheusWorkspaceArns", AMP_WORKSPACE_ARN)
        // ... and one role to sign queries with (PrometheusRoleArns: a workspace elsewhere).
        .iam_ref("PrometheusRoleArns", AMP_ROLE_ARN)
        // ... and one check function (AnalysisFunctionArns): the testkit's echo function.
        .iam_ref(
            "AnalysisFunctionArns",
            &okra_testkit::lambda_arn(CHECK_FUNCTION),
        )
}

/// The check function the stacks' check-metrics may invoke.
pub const CHECK_FUNCTION: &str = "okra-testkit-echo";

/// The role the stacks' check-metrics may assume to sign Prometheus queries (`sigv4.roleArn`).
pub const AMP_ROLE_ARN: &str = "arn:aws:iam::210987654321:role/okra-amp-reader";

/// The AMP workspace the stacks' check-metrics may query (tests/e2e/providers.rs).
pub const AMP_WORKSPACE_ARN: &str = "arn:aws:aps:us-east-1:123456789012:workspace/ws-okra-e2e";

/// Starts a stack once into `cell` (a suite's own, or the shared one).
pub fn stack_in(
    cell: &'static OnceLock<std::result::Result<LocalAws, String>>,
    builder: impl FnOnce() -> okra_testkit::LocalAwsBuilder,
) -> Result<&'static LocalAws> {
    cell.get_or_init(|| builder().start().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("the local AWS did not start: {e}"))
}

/// The suites' shared local AWS, with the functions' environment as the template sets it.
pub fn stack() -> Result<&'static LocalAws> {
    stack_in(&STACK, builder)
}

/// SDK clients pointed at this binary's local AWS.
pub struct Aws {
    pub local: &'static LocalAws,
    pub eks: eks::Client,
    pub elb: elb::Client,
    pub ddb: ddb::Client,
    pub cw: cw::Client,
    pub sfn: sfn::Client,
    pub ec2: aws_sdk_ec2::Client,
}

/// The stacks (by moto endpoint) whose table and state machine are made.
static READY: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());

/// Every stack a suite has used ([`aws_with`]).
static STACKS: std::sync::Mutex<Vec<&'static LocalAws>> = std::sync::Mutex::new(Vec::new());

/// Fails when an okra event the rollout `execution` put does not validate against its schema
/// under `schema/events/` (the strict moto checks every event put: README, "Notifications").
/// [`run_rollout`] and `service::finished` call it for every rollout they see end.
pub fn events_valid(execution: &str) -> Result<()> {
    let stacks = STACKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for stack in stacks {
        let (invalid, _) = stack.invalid_events()?;
        let mine: Vec<&Value> = invalid
            .iter()
            .filter(|e| e["execution"] == execution)
            .collect();
        anyhow::ensure!(
            mine.is_empty(),
            "events of {execution} do not match schema/events/: {mine:#?}"
        );
    }
    Ok(())
}

pub async fn aws() -> Result<Aws> {
    aws_with(stack()?).await
}

/// SDK clients on `local` (a suite's own stack, such as one with a fault proxy), the table and
/// state machine prepared once per stack.
pub async fn aws_with(local: &'static LocalAws) -> Result<Aws> {
    let conf = local.sdk_config().await;
    let aws = Aws {
        local,
        eks: eks::Client::new(&conf),
        elb: elb::Client::new(&conf),
        ddb: ddb::Client::new(&conf),
        cw: cw::Client::new(&conf),
        sfn: sfn::Client::new(&conf),
        ec2: aws_sdk_ec2::Client::new(&conf),
    };
    {
        let mut stacks = STACKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !stacks.iter().any(|s| s.endpoint() == local.endpoint()) {
            stacks.push(local);
        }
    }
    let mut ready = READY.lock().await;
    if !ready.iter().any(|e| e == local.endpoint()) {
        prepare(&aws).await?;
        ready.push(local.endpoint().to_string());
    }
    drop(ready);
    Ok(aws)
}

/// What template.yaml creates: the table (`pk`, `sk` strings, on demand) and the state machine
/// (moto keeps it for StartExecution/DescribeExecution; aws-local-stepfunctions runs it).
async fn prepare(aws: &Aws) -> Result<()> {
    aws.state().create_table().await.context("CreateTable")?;
    create_state_machine(&aws.sfn, &[]).await
}

/// Creates the shipped state machine as `okra-rollout` (SAM's name for it), its `${...}`
/// substitutions replaced by the given (name, function binary) pairs' Lambda ARNs.
pub async fn create_state_machine(sfn: &sfn::Client, functions: &[(&str, &str)]) -> Result<()> {
    let mut definition = std::fs::read_to_string(
        okra_testkit::workspace_root().join("statemachine/rollout.asl.json"),
    )?;
    for (sub, bin) in functions {
        definition = definition.replace(&format!("${{{sub}}}"), &okra_testkit::lambda_arn(bin));
    }
    sfn.create_state_machine()
        .name("okra-rollout")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/okra-rollout")
        .send()
        .await
        .context("CreateStateMachine")?;
    Ok(())
}

/// Runs `statemachine/rollout.asl.json` as shipped, SAM's substitutions pointing at the local
/// function binaries, under the execution name `name`; waits cut to 50 ms (a flag of the run,
/// not another state machine).
pub fn run_rollout(aws: &Aws, name: &str, input: Value) -> Result<Execution> {
    let mut req = RunRequest::from_path("statemachine/rollout.asl.json")
        .input(input)
        // The state machine's name as deployed (`okra-rollout`): IAM grants the functions'
        // callbacks (SendTaskSuccess) on that state machine only.
        .context(json!({"Execution": {"Name": name}, "StateMachine": {"Name": "okra-rollout"}}))
        .timeout_ms(240_000);
    for (sub, bin) in FUNCTIONS {
        req = req
            .substitution(sub, okra_testkit::lambda_arn(bin))
            .function(sub, bin);
    }
    for wait in [
        "Pause",
        "Pause slice",
        "Pause rest",
        "Wait for canary readiness",
        "Wait for initial readiness",
        "Wait for rollback readiness",
        "Analysis initial delay",
        "Analysis interval",
    ] {
        req = req.wait_override(wait, 50);
    }
    // Timed pauses and analysis intervals are callbacks whose time-out is the wait.
    let exec = aws.local.run_state_machine(&req.fast_pauses(50))?;
    events_valid(name)?;
    Ok(exec)
}

/// The canary weights the SetWeight steps verified, in order.
pub fn weights_of_steps(exec: &Execution) -> Vec<u64> {
    exec.events_of_type("StateExited")
        .filter(|e| e.pointer("/state/name").and_then(Value::as_str) == Some("Set weight"))
        .filter_map(|e| {
            e.pointer("/state/output/last/weight")
                .and_then(Value::as_u64)
        })
        .collect()
}

impl Aws {
    /// The table through okra's own adapter.
    pub fn state(&self) -> okra_aws::dynamo::Dynamo {
        okra_aws::dynamo::Dynamo::new(self.ddb.clone(), TABLE)
    }

    /// The cell's blocked versions.
    pub async fn blocked(&self, cell: &str) -> Result<Vec<String>> {
        Ok(self
            .state()
            .blocklist(cell)
            .await?
            .into_iter()
            .map(|b| b.version)
            .collect())
    }

    /// Leaves a person's signal for a running execution, as the API does.
    pub async fn signal(
        &self,
        cell: &str,
        execution: &str,
        signal: okra_aws::state::Signal,
    ) -> Result<()> {
        Ok(self.state().put_signal(cell, execution, signal).await?)
    }

    /// A rollout's record.
    pub async fn rollout(
        &self,
        cell: &str,
        execution: &str,
    ) -> Result<Option<okra_aws::state::Rollout>> {
        Ok(self.state().get_rollout(cell, execution).await?)
    }

    /// Waits (polling every 100 ms, 60 s at most) for `event` in a rollout's history; whether
    /// it came.
    pub async fn wait_for_event(&self, cell: &str, execution: &str, event: &str) -> Result<bool> {
        for _ in 0..600 {
            if let Some(r) = self.rollout(cell, execution).await?
                && r.history.iter().any(|h| h.event == event)
            {
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(false)
    }

    /// A world's cluster as users run one, and what every rollout test uses unless it says why
    /// not: its service is a real local backend (kept for the rest of the process) behind the
    /// cluster's target group ([`Aws::served_cluster`], an address of its own in 100.64.0.0/10),
    /// so the documented readiness gate (100 % healthy) passes on real health checks. The full
    /// cluster name.
    pub async fn serving_cluster(&self, w: &World, cluster: &str, version: &str) -> Result<String> {
        static BACKENDS: std::sync::Mutex<Vec<okra_testkit::Backend>> =
            std::sync::Mutex::new(Vec::new());
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ip = format!("100.64.{}.{}", n / 250, n % 250 + 1);
        let backend = self.served_cluster(w, cluster, version, &ip).await?;
        BACKENDS
            .lock()
            .map_err(|_| anyhow!("the backends' lock"))?
            .push(backend);
        Ok(format!("{}-{cluster}", w.prefix))
    }

    /// A world's cluster with a real backend behind its target group, registered the way
    /// aws-load-balancer-controller would (`registration: external`): okra's group name is
    /// deterministic, so the group is made here first, tagged as okra makes its groups
    /// (`okra.io/managed-by=okra`: okra's role may retag and register only such groups, the
    /// template's tag conditions, which the local AWS enforces), and okra finds it by name.
    pub async fn served_cluster(
        &self,
        w: &World,
        cluster: &str,
        version: &str,
        ip: &str,
    ) -> Result<okra_testkit::Backend> {
        let full = self.cluster(w, cluster, version).await?;
        self.serve_group(w, &full, version, ip).await
    }

    /// What aws-load-balancer-controller does for an existing cluster `full` of the world
    /// (`registration: external`): okra's group by its deterministic name, tagged as okra makes
    /// its groups, with a real backend at `ip` registered in it.
    pub async fn serve_group(
        &self,
        w: &World,
        full: &str,
        version: &str,
        ip: &str,
    ) -> Result<okra_testkit::Backend> {
        use aws_sdk_elasticloadbalancingv2::types::Tag;
        let full = full.to_string();
        let backend = okra_testkit::Backend::start(version)?;
        let cell = cell_name(w);
        let name = okra_core::naming::target_group_name(&cell, &full);
        let tags = [
            (okra_core::model::TAG_MANAGED_BY, "okra"),
            (okra_core::model::TAG_CELL, cell.as_str()),
            (okra_core::model::TAG_CLUSTER, full.as_str()),
            (okra_core::model::TAG_VERSION, version),
        ];
        let tg = self
            .elb
            .create_target_group()
            .name(&name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(30080)
            .vpc_id(&w.vpc_id)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
            .health_check_path("/healthz")
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .send()
            .await?;
        let arn = tg.target_groups()[0]
            .target_group_arn()
            .context("a target group ARN")?
            .to_string();
        self.elb
            .register_targets()
            .target_group_arn(&arn)
            .targets(
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(ip)
                    .port(30080)
                    .build(),
            )
            .send()
            .await?;
        self.local.map_target(ip, 30080, &backend)?;
        Ok(backend)
    }

    /// Seeds a metric datapoint a minute and a half ago.
    pub async fn put_metric(
        &self,
        namespace: &str,
        name: &str,
        dims: &[(&str, &str)],
        value: f64,
    ) -> Result<()> {
        self.put_metric_ago(
            namespace,
            name,
            dims,
            value,
            std::time::Duration::from_secs(90),
        )
        .await
    }

    /// Seeds a metric datapoint `ago` in the past.
    pub async fn put_metric_ago(
        &self,
        namespace: &str,
        name: &str,
        dims: &[(&str, &str)],
        value: f64,
        ago: std::time::Duration,
    ) -> Result<()> {
        let when = std::time::SystemTime::now() - ago;
        let mut datum = cw::types::MetricDatum::builder()
            .metric_name(name)
            .value(value)
            .timestamp(aws_smithy_types::DateTime::from(when));
        for (k, v) in dims {
            datum = datum.dimensions(cw::types::Dimension::builder().name(*k).value(*v).build());
        }
        self.cw
            .put_metric_data()
            .namespace(namespace)
            .metric_data(datum.build())
            .send()
            .await?;
        Ok(())
    }
}

/// One test's world: a VPC with two subnets, an ALB whose listener answers with a fixed
/// response.
pub struct World {
    pub prefix: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub listener_arn: String,
}

impl Aws {
    pub async fn world(&self, prefix: &str) -> Result<World> {
        let prefix = LocalAws::unique(prefix);
        let (vpc_id, subnets) = self.local.create_vpc_with_subnets()?;
        let name = format!("lb-{}", &prefix[..prefix.len().min(20)]);
        let (_, listener_arn) = self.local.create_alb_with_listener(&name, &subnets)?;
        Ok(World {
            prefix,
            vpc_id,
            subnets,
            listener_arn,
        })
    }

    /// A rule of the world's listener matching `path` (priority 10), answering 503 until okra
    /// forwards; its ARN.
    pub async fn rule(&self, w: &World, path: &str) -> Result<String> {
        use elb::types::{ActionTypeEnum, FixedResponseActionConfig, RuleCondition};
        let out = self
            .elb
            .create_rule()
            .listener_arn(&w.listener_arn)
            .priority(10)
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .values(path)
                    .build(),
            )
            .actions(
                elb::types::Action::builder()
                    .r#type(ActionTypeEnum::FixedResponse)
                    .fixed_response_config(
                        FixedResponseActionConfig::builder()
                            .status_code("503")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await?;
        Ok(out.rules()[0].rule_arn().context("a rule ARN")?.to_string())
    }

    /// A security group for a world's nodes, with no inbound rule.
    pub async fn node_security_group(&self, w: &World) -> Result<String> {
        let out = self
            .ec2
            .create_security_group()
            .group_name(format!("{}-nodes", w.prefix))
            .description("okra e2e nodes")
            .vpc_id(&w.vpc_id)
            .send()
            .await?;
        Ok(out.group_id().context("a group id")?.to_string())
    }

    /// Launches `n` EC2 instances in the world's first subnet with `tags` (a cluster's node tags)
    /// and security group `sg` (none: the VPC's default); their ids.
    pub async fn launch_instances(
        &self,
        w: &World,
        n: i32,
        tags: &[(&str, &str)],
        sg: Option<&str>,
    ) -> Result<Vec<String>> {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let image = self.ec2.describe_images().send().await?;
        let image = image
            .images()
            .first()
            .and_then(|i| i.image_id())
            .context("moto has an AMI")?
            .to_string();
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        let out = self
            .ec2
            .run_instances()
            .image_id(image)
            .min_count(n)
            .max_count(n)
            .subnet_id(&w.subnets[0])
            .set_security_group_ids(sg.map(|s| vec![s.to_string()]))
            .tag_specifications(spec.build())
            .send()
            .await
            .context("RunInstances")?;
        Ok(out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect())
    }

    /// Creates an EKS cluster of the world's cell with a version tag.
    pub async fn cluster(&self, w: &World, name: &str, version: &str) -> Result<String> {
        let full = format!("{}-{name}", w.prefix);
        let tags = BTreeMap::from([
            ("okra-test".to_string(), w.prefix.clone()),
            ("okra.io/version".to_string(), version.to_string()),
        ]);
        let (local, n, subnets, vpc) = (
            self.local,
            full.clone(),
            w.subnets.clone(),
            w.vpc_id.clone(),
        );
        tokio::task::spawn_blocking(move || local.create_eks_cluster(&n, &subnets, &vpc, &tags))
            .await??;
        // DescribeCluster answers with the VPC, as AWS's does (see create_eks_cluster).
        let seen = self.eks.describe_cluster().name(&full).send().await?;
        let vpc = seen
            .cluster()
            .and_then(|c| c.resources_vpc_config())
            .and_then(|v| v.vpc_id());
        anyhow::ensure!(
            vpc == Some(w.vpc_id.as_str()),
            "DescribeCluster shows vpcId {vpc:?}"
        );
        Ok(full)
    }

    /// The listener's forward targets as (target group ARN, weight), in the listener's order;
    /// empty when the listener does not forward.
    async fn forward_targets(&self, w: &World) -> Result<Vec<(String, i32)>> {
        let out = self
            .elb
            .describe_listeners()
            .listener_arns(&w.listener_arn)
            .send()
            .await?;
        let mut v = Vec::new();
        for a in out.listeners()[0].default_actions() {
            if a.r#type() != Some(&elb::types::ActionTypeEnum::Forward) {
                continue;
            }
            for t in a
                .forward_config()
                .map(|c| c.target_groups())
                .unwrap_or_default()
            {
                let arn = t.target_group_arn().context("a target group ARN")?;
                v.push((arn.to_string(), t.weight().unwrap_or(1)));
            }
        }
        Ok(v)
    }

    /// Someone edits the world's listener by hand: its default action forwards to `groups`
    /// (target group ARN, weight).
    pub async fn forward_by_hand(&self, w: &World, groups: &[(&str, i32)]) -> Result<()> {
        self.elb
            .modify_listener()
            .listener_arn(&w.listener_arn)
            .default_actions(forward(groups))
            .send()
            .await?;
        Ok(())
    }

    /// The listener's forward action as (target group name, weight), sorted; empty when the
    /// listener does not forward.
    pub async fn weights(&self, w: &World) -> Result<Vec<(String, i32)>> {
        let mut v: Vec<_> = self
            .forward_targets(w)
            .await?
            .into_iter()
            .map(|(arn, weight)| (tg_name(&arn).to_string(), weight))
            .collect();
        v.sort();
        Ok(v)
    }

    /// The listener's weight per version (summed over each version's target groups), read from
    /// the groups' `okra.io/version` tags: names are not a safe way to tell versions apart.
    pub async fn weights_by_version(&self, w: &World) -> Result<BTreeMap<String, i32>> {
        let mut by_version = BTreeMap::new();
        for (arn, weight) in self.forward_targets(w).await? {
            let version = self
                .tags(&arn)
                .await?
                .remove("okra.io/version")
                .unwrap_or_default();
            *by_version.entry(version).or_insert(0) += weight;
        }
        Ok(by_version)
    }

    /// Tags of a target group, by ARN.
    pub async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let out = self.elb.describe_tags().resource_arns(arn).send().await?;
        Ok(out.tag_descriptions()[0]
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// Every target group whose name starts with `prefix`.
    pub async fn target_groups_named(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let out = self.elb.describe_target_groups().send().await?;
        Ok(out
            .target_groups()
            .iter()
            .filter(|g| {
                g.target_group_name()
                    .unwrap_or_default()
                    .starts_with(prefix)
            })
            .map(|g| {
                (
                    g.target_group_name().unwrap().to_string(),
                    g.target_group_arn().unwrap().to_string(),
                )
            })
            .collect())
    }
}

pub fn tg_name(arn: &str) -> &str {
    arn.rsplit_once(":targetgroup/")
        .map_or(arn, |(_, r)| r.split('/').next().unwrap_or(r))
}

/// A forward action to `groups` (target group ARN, weight).
pub fn forward(groups: &[(&str, i32)]) -> elb::types::Action {
    use elb::types::{Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple};
    let mut config = ForwardActionConfig::builder();
    for (arn, weight) in groups {
        config = config.target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(*arn)
                .weight(*weight)
                .build(),
        );
    }
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(config.build())
        .build()
}

/// A cell spec for a world: two clusters per version, external registration, the documented
/// readiness gate (100 % of each group's targets healthy: give every cluster a backend with
/// [`Aws::serving_cluster`]), an `errors` analysis over a CloudWatch metric of the cell
/// (namespace `Okra/E2E`, metric `Errors`, dimension `Cell`), and the given steps. The built-in
/// judge is off: moto has no ALB traffic metrics to judge.
pub fn cell(w: &World, steps: Value) -> Value {
    json!({
        "name": cell_name(w),
        "ingress": {"alb": {"listenerArn": w.listener_arn}},
        "clusterSelector": {"matchTags": {"okra-test": w.prefix}},
        "replicas": 2,
        "targetGroup": {"port": 30080, "healthCheck": {"path": "/healthz"}, "registration": "external"},
        "readiness": {"minHealthyPercent": 100, "timeout": "1m"},
        "canary": {"steps": steps},
        "analysisTemplates": [{
            "name": "errors",
            "metrics": [{
                "name": "error-count",
                "interval": "1m",
                "count": 1,
                "successCondition": "result < 1.0",
                "failureCondition": "result >= 5.0",
                "provider": {"cloudwatch": {"window": "10m", "metricDataQueries": [{
                    "id": "errors",
                    "metricStat": {"namespace": "Okra/E2E", "metricName": "Errors",
                                   "dimensions": {"Cell": cell_name(w)}, "period": 60, "stat": "Sum"}
                }]}}
            }]
        }],
        "judge": {"enabled": false},
    })
}

/// The execution input the dispatcher would give.
pub fn input(spec: Value) -> Value {
    json!({"cell": spec, "trigger": "test", "labels": {}})
}

/// The cell's name: short, so target group names keep the cluster part readable.
pub fn cell_name(w: &World) -> String {
    let tail: String = w
        .prefix
        .chars()
        .rev()
        .take(6)
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    format!("c{tail}")
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
}
