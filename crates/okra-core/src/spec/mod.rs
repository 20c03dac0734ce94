//! The cell spec: what a user writes (YAML or JSON) to tell okra how to roll out one cell.
//!
//! A *cell* is a set of Kubernetes clusters behind one load-balancer listener (or listener rule).
//! okra discovers the cell's EKS clusters by tag, gives each its own target group, and moves the
//! listener's traffic from the clusters of the serving version to those of a newer version, step by
//! step, while analyses decide whether to go on or roll back.
//!
//! Parsing never validates; [`crate::validate`] does, with errors that name the field path.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The default EKS tag that carries a cluster's version (a semver string such as `1.4.2` or `v1.4.2`).
pub const DEFAULT_VERSION_TAG: &str = "okra.io/version";

/// One cell: a listener, the clusters behind it, and how to roll from one version to the next.
/// At most 65,536 bytes as JSON: the spec travels in every state of a rollout's execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CellSpec {
    /// The cell's name: 1-32 characters of `a-z`, `0-9` and `-`, starting with a letter. It names
    /// the target groups, the execution and the table items of the cell.
    pub name: String,
    /// The load balancer listener (or listener rule) whose forward action okra owns.
    pub ingress: Ingress,
    /// Which EKS clusters belong to the cell.
    pub cluster_selector: ClusterSelector,
    /// The EKS tag that carries each cluster's semver version.
    #[serde(default = "default_version_tag")]
    pub version_tag: String,
    /// How many clusters serve one version. A newer version is rolled out once this many of its
    /// clusters are ACTIVE.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Pin the cell to this version. A pinned version lower than the one serving is swapped in at
    /// once (a manual rollback); a newer version than the pin is never rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How okra makes a target group for each cluster.
    pub target_group: TargetGroupTemplate,
    /// How many targets must be healthy before any traffic moves to a new version.
    #[serde(default)]
    pub readiness: Readiness,
    /// Target-group stickiness of the forward action, kept on every write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<Stickiness>,
    /// The steps from the serving version to the new one.
    #[serde(default)]
    pub canary: CanaryStrategy,
    /// Named analyses that steps refer to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis_templates: Vec<AnalysisTemplate>,
    /// The built-in judge that compares the new target groups against the old ones.
    #[serde(default)]
    pub judge: JudgeSpec,
    /// Automatic attempts at a version before it is held as failing (a failure that does not
    /// block: a readiness time-out, a failed target-group step, an execution that ended outside
    /// its own ends). Between attempts the dispatcher backs off: 5 min, 15 min, 45 min, … up to
    /// a day. 1-100; default 3.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// When a rollout may move traffic: outside them it holds at its current weights before its
    /// next weight step (abort, rollback and `promote --full` are never held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Windows>,
    /// Register the cell's clusters in Argo CD: a cluster secret each in the hub, labelled with
    /// the cell and the version, so an ApplicationSet deploys onto a new version's clusters
    /// before any traffic moves to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCd>,
    /// When the target groups of versions that no longer serve are deleted (and their clusters
    /// tagged retired).
    #[serde(default)]
    pub retire: Retire,
}

/// Argo CD registration ([`crate::argocd`]): okra's ClusterSet, without a controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgoCd {
    /// The EKS cluster (same account and region) where Argo CD runs, or that has the EKS
    /// capability for Argo CD: okra writes the cluster secrets there.
    pub hub: String,
    /// `selfManaged` (default): each secret's `server` is the cluster's API endpoint, with
    /// `config.awsAuthConfig` and the cluster's CA. `eksCapability`: the server is the cluster's
    /// ARN (EKS user guide, "Register target clusters").
    #[serde(default)]
    pub mode: ArgoCdMode,
    /// The hub's namespace of Argo CD (default `argocd`).
    #[serde(default = "default_argocd_namespace")]
    pub namespace: String,
    /// The Argo CD project the clusters belong to (default `default`).
    #[serde(default = "default_argocd_project")]
    pub project: String,
    /// The IAM role Argo CD assumes to reach the clusters (`config.awsAuthConfig.roleARN`;
    /// `selfManaged` only; absent: Argo CD's own identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Extra labels on every secret, for ApplicationSet cluster generators.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on every secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Also give Argo CD's principal an EKS access entry on each cluster okra registers
    /// (CreateAccessEntry, AssociateAccessPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_entry: Option<ArgoCdAccessEntry>,
}

/// How the hub's Argo CD reaches the clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ArgoCdMode {
    /// Argo CD installed by you: API endpoint, `awsAuthConfig`, CA data.
    #[default]
    SelfManaged,
    /// The EKS capability for Argo CD: the cluster's ARN.
    EksCapability,
}

/// The EKS access entry okra makes on each registered cluster for Argo CD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgoCdAccessEntry {
    /// The principal (default: `roleArn`), such as the capability's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
    /// The access policy (default `AmazonEKSClusterAdminPolicy`): a name or its ARN.
    #[serde(default = "default_access_policy")]
    pub policy: String,
    /// Limit the policy to these namespaces (none: the whole cluster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

fn default_argocd_namespace() -> String {
    "argocd".to_string()
}

fn default_argocd_project() -> String {
    "default".to_string()
}

fn default_access_policy() -> String {
    "AmazonEKSClusterAdminPolicy".to_string()
}

/// Retiring the target groups of versions that no longer serve ([`crate::retire`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retire {
    /// `false`: okra never deletes a target group of this cell.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long a version's groups stay out of traffic before they are deleted (the bake of the
    /// version that replaced it), such as `1h` (0s-30d; default `1h`).
    #[serde(default = "default_retire_after")]
    pub after: String,
    /// How many earlier versions keep their groups, for a quick pin-back (0-5; default 1).
    #[serde(default = "default_retire_keep")]
    pub keep: u32,
}

fn default_retire_after() -> String {
    "1h".to_string()
}

fn default_retire_keep() -> u32 {
    1
}

impl Default for Retire {
    fn default() -> Self {
        Self {
            enabled: true,
            after: default_retire_after(),
            keep: default_retire_keep(),
        }
    }
}

/// Deployment windows ([`crate::windows`]): open when no `deny` window holds the time and, if
/// there are `allow` windows, one of them does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Windows {
    /// The IANA time zone the schedules are in (default `UTC`), such as `Europe/Paris`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Traffic moves only inside one of these (none: any time not denied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<WindowSpec>,
    /// Traffic never moves inside one of these (a change freeze, nights, holidays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<WindowSpec>,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

/// One window: from each occurrence of `schedule` (cron) or `rrule` (RFC 5545), for `duration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowSpec {
    /// A cron schedule of five fields (minute hour day-of-month month day-of-week), such as
    /// `0 9 * * MON-FRI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// An RFC 5545 recurrence rule, such as `FREQ=WEEKLY;BYDAY=SA;BYHOUR=10;BYMINUTE=0;BYSECOND=0`
    /// (from 2026-01-01 in the time zone), or a `DTSTART...` line and an `RRULE:` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<String>,
    /// How long each occurrence holds, such as `8h` (1s-366d).
    pub duration: String,
}

fn default_max_attempts() -> u32 {
    crate::attempts::DEFAULT_MAX_ATTEMPTS
}

fn default_version_tag() -> String {
    DEFAULT_VERSION_TAG.to_string()
}

fn default_replicas() -> u32 {
    1
}

/// The listener okra owns. Exactly one of `alb` and `nlb`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    /// An Application Load Balancer listener; canary weights move in steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbIngress>,
    /// A Network Load Balancer listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nlb: Option<NlbIngress>,
}

/// An ALB listener, or one of its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlbIngress {
    /// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID`.
    pub listener_arn: String,
    /// Own this rule's forward action instead of the listener's default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_arn: Option<String>,
}

/// An NLB listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NlbIngress {
    /// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/net/NAME/ID/ID`.
    pub listener_arn: String,
    /// `true` (NLB weighted target groups, available since November 2025): canary steps as on an
    /// ALB. `false`: blue/green, one version at a time, so every `setWeight` must be 0 or 100.
    #[serde(default = "default_true")]
    pub weighted: bool,
}

fn default_true() -> bool {
    true
}

/// Which kind of load balancer a cell uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadBalancerKind {
    /// Application Load Balancer.
    Alb,
    /// Network Load Balancer.
    Nlb,
}

impl Ingress {
    /// The listener okra writes to, and the kind of load balancer.
    pub fn listener(&self) -> Option<(LoadBalancerKind, &str)> {
        match (&self.alb, &self.nlb) {
            (Some(a), None) => Some((LoadBalancerKind::Alb, a.listener_arn.as_str())),
            (None, Some(n)) => Some((LoadBalancerKind::Nlb, n.listener_arn.as_str())),
            _ => None,
        }
    }

    /// The listener rule okra writes to, if not the listener's default action.
    pub fn rule_arn(&self) -> Option<&str> {
        self.alb.as_ref().and_then(|a| a.rule_arn.as_deref())
    }

    /// `false` for an NLB that cannot split traffic between target groups.
    pub fn weighted(&self) -> bool {
        self.nlb.as_ref().is_none_or(|n| n.weighted)
    }
}

/// EKS clusters whose tags hold every pair of `matchTags` belong to the cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSelector {
    /// Tag key → required value.
    pub match_tags: BTreeMap<String, String>,
}

impl ClusterSelector {
    /// Whether a cluster with these tags belongs to the cell.
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        self.match_tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

/// How each cluster's target group is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetGroupTemplate {
    /// The port targets receive traffic on (the node port of the cluster's ingress).
    pub port: u16,
    /// `HTTP`, `HTTPS` (ALB) or `TCP`, `TLS`, `UDP`, `TCP_UDP` (NLB). Default: `HTTP` on an ALB,
    /// `TCP` on an NLB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `instance` (nodes, the default) or `ip` (pods).
    #[serde(default)]
    pub target_type: TargetType,
    /// The target group's health check.
    #[serde(default)]
    pub health_check: HealthCheck,
    /// Who registers targets.
    #[serde(default)]
    pub registration: Registration,
}

impl TargetGroupTemplate {
    /// The target group protocol: the one set, or the load balancer kind's default.
    pub fn protocol_for(&self, kind: LoadBalancerKind) -> &str {
        match (&self.protocol, kind) {
            (Some(p), _) => p,
            (None, LoadBalancerKind::Alb) => "HTTP",
            (None, LoadBalancerKind::Nlb) => "TCP",
        }
    }
}

/// A target group's target type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// EC2 instances (the cluster's nodes).
    #[default]
    Instance,
    /// Pod IPs (aws-load-balancer-controller with `target-type: ip`).
    Ip,
}

/// Who registers a cluster's targets in its target group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Registration {
    /// okra attaches the target group to the Auto Scaling groups of the cluster's managed node
    /// groups, so present and future nodes register.
    #[default]
    Nodegroups,
    /// okra registers the cluster's running EC2 instances, found by their tags
    /// (`eks:cluster-name`, or `kubernetes.io/cluster/<name>` = owned/shared): Karpenter and
    /// self-managed nodes. Synced again at every reconcile: new instances registered, ones gone
    /// deregistered. Needs `targetType: instance`.
    Instances,
    /// aws-load-balancer-controller registers targets through a TargetGroupBinding; okra only
    /// creates the target group and reports its ARN.
    External,
}

/// A target group health check. Unset fields take ELB's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// HTTP(S) path, such as `/healthz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `traffic-port` or a port number (`8080` and `"8080"` both work).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_number"
    )]
    #[schemars(with = "Option<StringOrNumber>")]
    pub port: Option<String>,
    /// `HTTP`, `HTTPS` or `TCP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Seconds between checks, 5-300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u32>,
    /// Seconds before a check fails, 2-120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Consecutive successes before a target is healthy, 2-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// Consecutive failures before a target is unhealthy, 2-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
    /// HTTP codes that count as healthy, such as `200-399`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<String>,
}

/// The readiness gate: no traffic moves to a new version until it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readiness {
    /// Healthy targets as a share of all registered targets of each new target group, 0-100.
    #[serde(default = "default_min_healthy")]
    pub min_healthy_percent: u8,
    /// Give up (and leave traffic where it is) after this long, such as `10m`.
    #[serde(default = "default_readiness_timeout")]
    pub timeout: String,
}

fn default_min_healthy() -> u8 {
    100
}

fn default_readiness_timeout() -> String {
    "10m".to_string()
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            min_healthy_percent: default_min_healthy(),
            timeout: default_readiness_timeout(),
        }
    }
}

/// A value written as a string or a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StringOrNumber {
    /// Text, such as `traffic-port`.
    String(String),
    /// A number, such as `8080`.
    Number(u64),
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<StringOrNumber>::deserialize(d)?.map(|v| match v {
        StringOrNumber::String(s) => s,
        StringOrNumber::Number(n) => n.to_string(),
    }))
}

/// Target-group stickiness of the forward action. Users without shared sessions need it so that
/// a user stays on one cluster while traffic shifts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stickiness {
    /// Turn stickiness on.
    pub enabled: bool,
    /// How long a user sticks to a target group, 1 s to 7 days, such as `1h`.
    #[serde(default = "default_stickiness_duration")]
    pub duration: String,
}

fn default_stickiness_duration() -> String {
    "1h".to_string()
}

/// The canary strategy: steps, and an analysis that runs alongside them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryStrategy {
    /// The steps, in order. After the last one the new version gets 100 %. No steps at all means
    /// one switch to 100 % after the readiness gate.
    #[serde(default)]
    pub steps: Vec<CanaryStep>,
    /// An analysis that samples alongside the steps, from `startingStep` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
}

/// One canary step: exactly one of its fields (Argo Rollouts' `CanaryStep` shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryStep {
    /// Give the new version this share of traffic, 0-100 (absolute, as in Argo Rollouts: `30`
    /// means 30 % to the new version, whatever the step before set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<u32>,
    /// Wait for a duration, or (with no duration) until resumed through the API or CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// Run an analysis to completion; failure rolls back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisRef>,
}

/// `pause: {duration: 5m}` waits; `pause: {}` waits until resumed, or (`pause: {timeout: 8h,
/// onTimeout: promote}`) until resumed or the time-out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pause {
    /// `30s`, `5m`, `1h`, or absent for "until resumed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A pause until resumed lasts at most this long (`8h`; default: the execution's year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// What happens then: `abort` (default: roll back and block the version) or `promote` (go
    /// on, as a resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<crate::vocab::OnTimeout>,
}

/// The analysis templates a step runs, with arguments for their queries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisRef {
    /// Templates by name, from the cell's `analysisTemplates`.
    pub templates: Vec<TemplateRef>,
    /// Values for the templates' `args`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    /// An inconclusive verdict waits for a person at most this long (`8h`; default: the
    /// execution's year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// What happens then: `abort` (default) or `promote` (go on, as a resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<crate::vocab::OnTimeout>,
}

/// A reference to an analysis template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRef {
    /// The template's `name`.
    pub template_name: String,
}

/// A named argument value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arg {
    /// The argument's name, referred to as `{{args.NAME}}` in queries.
    pub name: String,
    /// Its value; absent in a template means the step must give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An analysis that runs alongside the steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackgroundAnalysis {
    /// Templates by name.
    pub templates: Vec<TemplateRef>,
    /// Values for the templates' `args`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    /// The index of the step from which it starts (0 = at once).
    #[serde(default)]
    pub starting_step: u32,
}

mod analysis;

pub use analysis::*;

/// Why a spec could not be read at all (before validation).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not YAML, or not the spec's shape.
    #[error("{0}")]
    Yaml(String),
    /// Not JSON, or not the spec's shape.
    #[error("{0}")]
    Json(String),
}

impl CellSpec {
    /// Reads a spec from YAML (JSON is YAML too, but use [`CellSpec::from_json`] for JSON's
    /// error positions).
    pub fn from_yaml(text: &str) -> Result<Self, ParseError> {
        serde_yaml_ng::from_str(text).map_err(|e| ParseError::Yaml(e.to_string()))
    }

    /// Reads a spec from JSON.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))
    }

    /// Reads a spec from YAML or JSON, by its first non-blank character.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if text.trim_start().starts_with('{') {
            Self::from_json(text)
        } else {
            Self::from_yaml(text)
        }
    }
}

/// The JSON Schema of [`CellSpec`], as checked in at `schema/cell.schema.json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(CellSpec)).expect("a schema is JSON")
}
