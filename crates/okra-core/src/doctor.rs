//! `okra doctor`: what a cell needs from the account, checked before the first rollout.
//!
//! The checks are read-only and decided here from facts an adapter read ([`Facts`]); each ends
//! `ok`, `warning` (okra works, worse) or `error` (a rollout would fail), with what to do. The
//! checks and the AWS pages they follow:
//!
//! - `listener`: the cell's listener exists (ELB API reference, DescribeListeners).
//! - `listener-owner`: no tag of aws-load-balancer-controller on the load balancer, listener or
//!   rule (it would set back okra's weights; [`crate::owner`]).
//! - `clusters`: clusters carry the selector's tags (a cell with none has nothing to roll out).
//! - `vpc`: the clusters are in the load balancer's VPC. A forward action's target groups must be
//!   in the load balancer's VPC (ModifyListener), so okra makes them there; a cluster elsewhere
//!   needs routing (peering, Transit Gateway) for its nodes to be reachable.
//! - `target-group-room`: the load balancer has room for the cell's groups ("Quotas for your
//!   Application Load Balancers": 100 target groups per ALB; NLBs: no per-load-balancer quota
//!   is documented for target groups, the forward action holds one to five).
//! - `node-access:CLUSTER`: the cluster's nodes (EC2 instances found by the cluster's tags) have
//!   a security group that admits the load balancer on the target port and the health-check port
//!   ([`crate::nodes::access_checks`]; the ALB guide's "Security groups for your Application Load
//!   Balancer": the targets' security groups must allow the load balancer on both ports).
//! - `node-zones:CLUSTER`: the cluster's nodes are in Availability Zones the load balancer has
//!   enabled ([`crate::nodes::zone_check`]; a target elsewhere stays `unused`,
//!   `Target.NotInUse`, in the ELB API reference's TargetHealth: never checked, no traffic).
//! - `cloudtrail`: a trail logs write management events in the region. EventBridge receives
//!   "AWS API Call via CloudTrail" events only from a trail that logs them (EventBridge user
//!   guide, "Events from AWS services"); without one, only the schedule notices new clusters.
//! - `metric:TEMPLATE/METRIC/QUERY`: each CloudWatch metric of the analyses exists: ListMetrics
//!   finds metrics that had data in the last two weeks (CloudWatch API reference, ListMetrics).
//!   Queries whose dimensions use `{{args...}}` are skipped (their values come per rollout).
//! - `datadog-secret`: the Datadog keys' secret is readable, when an analysis uses Datadog.
//! - `prometheus:TEMPLATE/METRIC` (and `prometheus:judge`): the metric's Prometheus or AMP
//!   workspace answers a query with okra's credentials (the metric's own query when it has no
//!   `{{args...}}`, else `vector(1)`), its headers and SigV4 signing included: an AMP workspace
//!   missing from `PrometheusWorkspaceArns` answers 403 here, not at the first rollout.
//! - `target-group-quota`: the region's target groups against the account's quota
//!   (DescribeAccountLimits `target-groups`; "Quotas for your Application Load Balancers": target
//!   groups per Region, 3,000 by default): a warning from 80 %, an error from 95 % (CreateTargetGroup
//!   fails at the quota, TooManyTargetGroups), with how many are okra's groups of the cell.
//! - `argocd-hub` (a cell with `argocd`): the hub cluster exists, is ACTIVE and has an API
//!   endpoint (DescribeCluster), and okra's dispatcher role has an access entry there whose
//!   access policies let it write secrets in `argocd.namespace` (DescribeAccessEntry,
//!   ListAssociatedAccessPolicies; EKS user guide, "Review access policy permissions":
//!   AmazonEKSClusterAdminPolicy, AmazonEKSAdminPolicy and AmazonEKSEditPolicy cover secrets,
//!   AmazonEKSViewPolicy does not). Where the role is not known (the CLI in process), `info`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cell::Cell;
use crate::model::{Cluster, ClusterStatus};
use crate::spec::{CellSpec, LoadBalancerKind};

/// Target groups an Application Load Balancer may have ("Quotas for your Application Load
/// Balancers": target groups per Application Load Balancer).
pub const ALB_TARGET_GROUPS: usize = 100;

/// Target groups per Region, ELB's default quota ("Quotas for your Application Load Balancers";
/// DescribeAccountLimits' `target-groups`), for an account whose limits do not list it.
pub const TARGET_GROUPS_PER_REGION: usize = 3_000;

/// The EKS access policies that let a principal write secrets (EKS user guide, "Review access
/// policy permissions": cluster-admin, admin and edit; not view).
pub const SECRET_WRITING_POLICIES: [&str; 3] = [
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
];

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    /// Fine.
    Ok,
    /// Not checked here; the summary says what to check.
    Info,
    /// okra works, but worse (slower to notice clusters, an analysis without data).
    Warning,
    /// A rollout would fail.
    Error,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// A stable name (`listener`, `vpc`, `cloudtrail`, `metric:TEMPLATE/METRIC/QUERY`, ...).
    pub id: String,
    /// How it ended.
    pub level: Level,
    /// What was found.
    pub summary: String,
    /// What to do, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn ok(id: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            level: Level::Ok,
            summary: summary.into(),
            fix: None,
        }
    }

    pub(crate) fn not_ok(
        id: impl Into<String>,
        level: Level,
        summary: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            level,
            summary: summary.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The listener's load balancer, as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerFacts {
    /// Its VPC.
    pub vpc_id: String,
    /// How many target groups it has (DescribeTargetGroups by load balancer).
    pub target_groups: usize,
    /// Its security groups (an NLB may have none).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Its subnets.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// The Availability Zones it has enabled (one per subnet).
    #[serde(default)]
    pub zones: Vec<String>,
}

/// A CloudTrail trail, as the `cloudtrail` check needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailFacts {
    /// Its name.
    pub name: String,
    /// Its home region.
    pub home_region: String,
    /// Whether it logs every region.
    pub multi_region: bool,
    /// Whether it is logging now (GetTrailStatus).
    pub logging: bool,
    /// Whether its event selectors take write management events (GetEventSelectors).
    pub write_management_events: bool,
}

/// The scope of an access policy on an access entry (EKS API reference, AccessScope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessScope {
    /// The whole cluster.
    Cluster,
    /// These namespaces.
    Namespaces(Vec<String>),
}

/// An access policy associated with an access entry (ListAssociatedAccessPolicies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicyFacts {
    /// `arn:aws:eks::aws:cluster-access-policy/NAME`.
    pub policy_arn: String,
    /// Where it applies.
    pub scope: AccessScope,
}

impl AccessPolicyFacts {
    /// The policy's name: its ARN's last part.
    pub fn name(&self) -> &str {
        self.policy_arn
            .rsplit('/')
            .next()
            .unwrap_or(&self.policy_arn)
    }

    /// Whether it lets its principal write secrets in `namespace`.
    pub fn writes_secrets_in(&self, namespace: &str) -> bool {
        SECRET_WRITING_POLICIES.contains(&self.name())
            && match &self.scope {
                AccessScope::Cluster => true,
                AccessScope::Namespaces(n) => n.iter().any(|n| n == namespace),
            }
    }

    fn describe(&self) -> String {
        match &self.scope {
            AccessScope::Cluster => format!("{} (cluster)", self.name()),
            AccessScope::Namespaces(n) => {
                format!("{} (namespaces {})", self.name(), n.join(", "))
            }
        }
    }
}

/// A principal's access entry on a cluster (DescribeAccessEntry, ListAssociatedAccessPolicies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessEntryFacts {
    /// The entry's Kubernetes groups (RBAC may grant them more than the access policies).
    pub kubernetes_groups: Vec<String>,
    /// Its access policies.
    pub policies: Vec<AccessPolicyFacts>,
}

/// The Argo CD hub of a cell with `argocd`, as the `argocd-hub` check needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct HubFacts {
    /// DescribeCluster of the hub (`None`: no such cluster).
    pub cluster: Result<Option<Cluster>, String>,
    /// okra's dispatcher role (`None`: not known here, as in the CLI).
    pub dispatcher_role: Option<String>,
    /// The role's access entry on the hub (`Ok(None)`: none), read only when the hub is ACTIVE
    /// with an endpoint and the role is known (`None`: not read).
    pub access: Option<Result<Option<AccessEntryFacts>, String>>,
}

/// The region's target groups against the account's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupQuota {
    /// DescribeAccountLimits' `target-groups` (`None`: not listed; [`TARGET_GROUPS_PER_REGION`]).
    pub limit: Option<usize>,
    /// The region's target groups (DescribeTargetGroups).
    pub count: usize,
    /// okra's groups of the cell among them, or why they could not be counted.
    pub cell: Result<usize, String>,
}

/// What the adapters read for the checks. A fact that could not be read is `Err(why)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The region okra runs in.
    pub region: String,
    /// The listener's load balancer.
    pub load_balancer: Result<LoadBalancerFacts, String>,
    /// The tags of the load balancer, the listener and the rule (in that order), by ARN.
    pub ingress_tags: Result<crate::owner::Tagged, String>,
    /// The clusters the selector finds, described.
    pub clusters: Result<Vec<Cluster>, String>,
    /// The account's trails that apply to the region (shadow trails of other regions included).
    pub trails: Result<Vec<TrailFacts>, String>,
    /// Per CloudWatch query checked (by [`metric_checks`]'s id): whether ListMetrics found it.
    pub metrics: BTreeMap<String, Result<bool, String>>,
    /// Whether the Datadog secret was read (None: no analysis uses Datadog).
    pub datadog_secret: Option<Result<(), String>>,
    /// Per Prometheus check (by [`prometheus_checks`]' id): whether the query answered.
    pub prometheus: BTreeMap<String, Result<(), String>>,
    /// The clusters' nodes and the load balancer's way to them (the `node-access` checks).
    pub nodes: crate::nodes::NodeFacts,
    /// The region's target groups against the account's quota.
    pub target_group_quota: Result<TargetGroupQuota, String>,
    /// The Argo CD hub (`None`: the cell has no `argocd`).
    pub argocd_hub: Option<HubFacts>,
}

/// A CloudWatch query whose metric can be looked up as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricLookup {
    /// The check's id: `metric:TEMPLATE/METRIC/QUERY`.
    pub id: String,
    /// The namespace.
    pub namespace: String,
    /// The metric's name.
    pub metric_name: String,
    /// Its dimensions.
    pub dimensions: BTreeMap<String, String>,
}

/// The CloudWatch metrics of the cell's analyses that can be looked up without a rollout's
/// arguments (no `{{` in namespace, name or dimensions), in spec order.
pub fn metric_checks(cell: &CellSpec) -> Vec<MetricLookup> {
    let mut out = Vec::new();
    for t in &cell.analysis_templates {
        for m in &t.metrics {
            let Some(cw) = m.provider.cloudwatch.as_ref() else {
                continue;
            };
            for q in &cw.metric_data_queries {
                let Some(ms) = q.metric_stat.as_ref() else {
                    continue;
                };
                let templated = ms.namespace.contains("{{")
                    || ms.metric_name.contains("{{")
                    || ms.dimensions.values().any(|v| v.contains("{{"));
                if templated {
                    continue;
                }
                out.push(MetricLookup {
                    id: format!("metric:{}/{}/{}", t.name, m.name, q.id),
                    namespace: ms.namespace.clone(),
                    metric_name: ms.metric_name.clone(),
                    dimensions: ms.dimensions.clone(),
                });
            }
        }
    }
    out
}

/// The Prometheus (AMP) queries that show each metric's server answers okra, by check id, at
/// `now` (epoch seconds).
pub fn prometheus_checks(
    cell: &CellSpec,
    now: i64,
) -> Vec<(String, crate::analysis::probe::Request)> {
    let query_of = |q: &str| {
        if q.contains("{{") {
            "vector(1)".to_string()
        } else {
            q.to_string()
        }
    };
    let mut out = Vec::new();
    for t in &cell.analysis_templates {
        for m in &t.metrics {
            if let Some(p) = &m.provider.prometheus
                && let Ok(r) =
                    crate::analysis::probe::prometheus_request(p, &query_of(&p.query), now)
            {
                out.push((format!("prometheus:{}/{}", t.name, m.name), r));
            }
        }
    }
    if let Some(j) = cell
        .judge
        .prometheus
        .as_ref()
        .filter(|_| cell.judge.enabled)
        && let Ok(r) =
            crate::analysis::probe::prometheus_request(&j.provider("vector(1)"), "vector(1)", now)
    {
        out.push(("prometheus:judge".to_string(), r));
    }
    out
}

/// Whether any analysis of the cell uses Datadog.
pub fn uses_datadog(cell: &CellSpec) -> bool {
    cell.analysis_templates
        .iter()
        .flat_map(|t| &t.metrics)
        .any(|m| m.provider.datadog.is_some())
}

/// Every check of `cell` over `facts`, in a fixed order.
pub fn diagnose(cell: &Cell, facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    let kind = cell.ingress().kind();
    let listener = cell.ingress().listener().as_str();
    let field = match kind {
        LoadBalancerKind::Alb => "ingress.alb.listenerArn",
        LoadBalancerKind::Nlb => "ingress.nlb.listenerArn",
    };

    // The listener and its load balancer.
    let lb = match &facts.load_balancer {
        Ok(lb) => {
            out.push(Check::ok(
                "listener",
                format!("{listener}: found, load balancer in {}", lb.vpc_id),
            ));
            Some(lb)
        }
        Err(why) => {
            out.push(Check::not_ok(
                "listener",
                Level::Error,
                format!("{listener}: {why}"),
                format!("create the listener, or set {field} to an existing one"),
            ));
            None
        }
    };

    // Another controller's load balancer, listener or rule.
    match &facts.ingress_tags {
        Ok(tagged) => match crate::owner::controller_owned(tagged) {
            None => out.push(Check::ok(
                "listener-owner",
                "no aws-load-balancer-controller tag on the load balancer, listener or rule",
            )),
            Some(owned) => out.push(Check::not_ok(
                "listener-owner",
                Level::Error,
                format!(
                    "{} (the controller would set back okra's weights)",
                    owned.summary()
                ),
                owned.fix(),
            )),
        },
        Err(why) => out.push(Check::not_ok(
            "listener-owner",
            Level::Warning,
            format!("the ingress's tags could not be read: {why}"),
            "allow elasticloadbalancing:DescribeTags".to_string(),
        )),
    }

    // The clusters.
    let clusters: &[Cluster] = match &facts.clusters {
        Ok(c) if c.is_empty() => {
            let tags: Vec<String> = cell
                .cluster_selector
                .match_tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push(Check::not_ok(
                "clusters",
                Level::Warning,
                format!("no EKS cluster is tagged {}", tags.join(", ")),
                format!(
                    "tag the cell's clusters with {} and a version tag ({})",
                    tags.join(", "),
                    cell.version_tag
                ),
            ));
            &[]
        }
        Ok(c) => {
            let untagged: Vec<&str> = c
                .iter()
                .filter(|c| !c.tags.contains_key(&cell.version_tag))
                .map(|c| c.name.as_str())
                .collect();
            out.push(if untagged.is_empty() {
                Check::ok("clusters", format!("{} cluster(s): {}", c.len(), names(c)))
            } else {
                Check::not_ok(
                    "clusters",
                    Level::Warning,
                    format!(
                        "{} cluster(s), without the version tag {}: {}",
                        c.len(),
                        cell.version_tag,
                        untagged.join(", ")
                    ),
                    format!(
                        "tag them with {}=<version>; okra ignores them until then",
                        cell.version_tag
                    ),
                )
            });
            c
        }
        Err(why) => {
            out.push(Check::not_ok(
                "clusters",
                Level::Error,
                format!("the clusters could not be read: {why}"),
                "give okra tag:GetResources and eks:DescribeCluster (template.yaml does)",
            ));
            &[]
        }
    };

    // The clusters' VPCs against the load balancer's.
    if let Some(lb) = lb {
        let elsewhere: Vec<String> = clusters
            .iter()
            .filter(|c| c.status != ClusterStatus::Deleting)
            .filter_map(|c| {
                c.vpc_id
                    .as_deref()
                    .filter(|v| *v != lb.vpc_id)
                    .map(|v| format!("{} ({v})", c.name))
            })
            .collect();
        out.push(if elsewhere.is_empty() {
            Check::ok(
                "vpc",
                format!("every cluster is in the load balancer's VPC {}", lb.vpc_id),
            )
        } else {
            Check::not_ok(
                "vpc",
                Level::Warning,
                format!(
                    "not in the load balancer's VPC {}: {}",
                    lb.vpc_id,
                    elsewhere.join(", ")
                ),
                "okra makes their target groups in the load balancer's VPC (AWS requires it): \
                 route it to their nodes (VPC peering, Transit Gateway) and use targetType: ip, \
                 or put the load balancer in their VPC",
            )
        });

        // Room for the cell's groups.
        if kind == LoadBalancerKind::Alb {
            let have = lb.target_groups;
            let adds = clusters.len();
            let level = if have + adds > ALB_TARGET_GROUPS {
                Level::Error
            } else if have + adds > ALB_TARGET_GROUPS * 9 / 10 {
                Level::Warning
            } else {
                Level::Ok
            };
            let summary = match adds {
                0 => format!("the load balancer has {have} of {ALB_TARGET_GROUPS} target groups"),
                n => format!(
                    "the load balancer has {have} of {ALB_TARGET_GROUPS} target groups; the cell's {n} cluster(s) need up to {n} more"
                ),
            };
            out.push(match level {
                Level::Ok => Check::ok("target-group-room", summary),
                _ => Check::not_ok(
                    "target-group-room",
                    level,
                    summary,
                    "delete unused target groups of the load balancer, or ask for a higher \
                     quota (Service Quotas: Target groups per Application Load Balancer)",
                ),
            });
        }
    }

    // The region's target groups against the account's quota.
    out.push(target_group_quota(cell, facts));

    // The nodes' security groups against the load balancer.
    out.extend(crate::nodes::access_checks(cell, clusters, &facts.nodes));

    // The Argo CD hub.
    if let (Some(argocd), Some(hub)) = (&cell.argocd, &facts.argocd_hub) {
        out.push(argocd_hub(argocd, hub));
    }

    // CloudTrail.
    out.push(match &facts.trails {
        Ok(trails) => {
            let covers = |t: &&TrailFacts| {
                (t.multi_region || t.home_region == facts.region)
                    && t.logging
                    && t.write_management_events
            };
            match trails.iter().find(covers) {
                Some(t) => Check::ok(
                    "cloudtrail",
                    format!(
                        "trail {} logs write management events in {}",
                        t.name, facts.region
                    ),
                ),
                None => Check::not_ok(
                    "cloudtrail",
                    Level::Warning,
                    if trails.is_empty() {
                        "no CloudTrail trail: EventBridge gets no EKS API calls, only the 5-minute schedule notices new clusters".to_string()
                    } else {
                        format!(
                            "no trail logs write management events in {} now ({}): only the 5-minute schedule notices new clusters",
                            facts.region,
                            trails
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    "create a trail that logs management events (aws cloudtrail create-trail \
                     --name okra --s3-bucket-name BUCKET --is-multi-region-trail; aws \
                     cloudtrail start-logging --name okra)",
                ),
            }
        }
        Err(why) => Check::not_ok(
            "cloudtrail",
            Level::Warning,
            format!("the trails could not be read: {why}"),
            "allow cloudtrail:DescribeTrails, GetTrailStatus and GetEventSelectors to whoever \
             runs the doctor",
        ),
    });

    // The analyses' metrics.
    for lookup in metric_checks(cell) {
        let what = format!(
            "{} {} {}",
            lookup.namespace,
            lookup.metric_name,
            lookup
                .dimensions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        out.push(match facts.metrics.get(&lookup.id) {
            Some(Ok(true)) => Check::ok(lookup.id.clone(), format!("{what}: found")),
            Some(Ok(false)) => Check::not_ok(
                lookup.id.clone(),
                Level::Warning,
                format!("{what}: no such metric with data in the last two weeks"),
                "check the namespace, name and dimensions; an analysis without data ends \
                 inconclusive",
            ),
            Some(Err(why)) => Check::not_ok(
                lookup.id.clone(),
                Level::Warning,
                format!("{what}: could not be looked up: {why}"),
                "allow cloudwatch:ListMetrics to whoever runs the doctor",
            ),
            None => Check::not_ok(
                lookup.id.clone(),
                Level::Warning,
                format!("{what}: not looked up"),
                "run the doctor again",
            ),
        });
    }

    // Prometheus and AMP.
    for (id, answered) in &facts.prometheus {
        out.push(match answered {
            Ok(()) => Check::ok(id.clone(), "the Prometheus query answers"),
            Err(why) => Check::not_ok(
                id.clone(),
                Level::Error,
                format!("the Prometheus query did not answer: {why}"),
                "check the address and headers; for an AMP workspace, `sigv4.region` and the \
                 stack parameter PrometheusWorkspaceArns (check-metrics' aps:QueryMetrics)",
            ),
        });
    }

    // Datadog's keys.
    match &facts.datadog_secret {
        None => {}
        Some(Ok(())) => out.push(Check::ok("datadog-secret", "the Datadog keys are readable")),
        Some(Err(why)) => out.push(Check::not_ok(
            "datadog-secret",
            Level::Error,
            format!("the Datadog keys' secret could not be read: {why}"),
            "deploy with DatadogSecretArn set to a secret holding {\"apiKey\", \"appKey\"} \
             (and DatadogSecretKmsKeyArn when a customer managed key encrypts it)",
        )),
    }
    out
}

/// `target-group-quota`: warning from 80 %, error from 95 % of the quota.
fn target_group_quota(cell: &Cell, facts: &Facts) -> Check {
    const ID: &str = "target-group-quota";
    let q = match &facts.target_group_quota {
        Ok(q) => q,
        Err(why) => {
            return Check::not_ok(
                ID,
                Level::Warning,
                format!("the region's target groups could not be counted: {why}"),
                "allow elasticloadbalancing:DescribeAccountLimits and DescribeTargetGroups to \
                 whoever runs the doctor",
            );
        }
    };
    let limit = q.limit.unwrap_or(TARGET_GROUPS_PER_REGION);
    let share = (q.count * 100).checked_div(limit).unwrap_or(100);
    let level = if q.count * 100 >= limit * 95 {
        Level::Error
    } else if q.count * 100 >= limit * 80 {
        Level::Warning
    } else {
        Level::Ok
    };
    let cell_groups = match &q.cell {
        Ok(n) => format!("{n} of them okra's groups of cell {}", cell.name),
        Err(why) => format!(
            "okra's groups of cell {} could not be counted: {why}",
            cell.name
        ),
    };
    let summary = format!(
        "{} of {limit} target groups in {} ({share} %); {cell_groups}",
        q.count, facts.region
    );
    if level == Level::Ok {
        return Check::ok(ID, summary);
    }
    let retire = if cell.retire.enabled {
        format!(
            "lower retire.keep (now {}) or retire.after (now {}) so that okra deletes the groups \
             of earlier versions sooner",
            cell.retire.keep, cell.retire.after
        )
    } else {
        "set retire.enabled: true so that okra deletes the groups of earlier versions".to_string()
    };
    Check::not_ok(
        ID,
        level,
        summary,
        format!(
            "{retire}; delete the target groups nothing uses (aws elbv2 describe-target-groups: \
             those with no LoadBalancerArns); or request a higher quota in Service Quotas \
             (Elastic Load Balancing, Target Groups per Region)"
        ),
    )
}

/// `argocd-hub`: the hub answers, and okra's dispatcher role may write secrets in the namespace.
fn argocd_hub(argocd: &crate::spec::ArgoCd, hub: &HubFacts) -> Check {
    const ID: &str = "argocd-hub";
    let (name, ns) = (argocd.hub.as_str(), argocd.namespace.as_str());
    let cluster = match &hub.cluster {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Check::not_ok(
                ID,
                Level::Error,
                format!("the hub cluster {name} does not exist in this account and region"),
                "set argocd.hub to the EKS cluster where Argo CD runs (same account and region)",
            );
        }
        Err(why) => {
            return Check::not_ok(
                ID,
                Level::Error,
                format!("the hub cluster {name} could not be described: {why}"),
                "allow eks:DescribeCluster on the hub to whoever runs the doctor (template.yaml \
                 does for okra)",
            );
        }
    };
    if cluster.status != ClusterStatus::Active {
        return Check::not_ok(
            ID,
            Level::Error,
            format!(
                "the hub cluster {name} is {}, not ACTIVE: okra cannot write its cluster secrets",
                format!("{:?}", cluster.status).to_uppercase()
            ),
            "wait for the hub to be ACTIVE, or set argocd.hub to an ACTIVE cluster",
        );
    }
    let Some(endpoint) = cluster.access.as_ref().and_then(|a| a.endpoint.as_deref()) else {
        return Check::not_ok(
            ID,
            Level::Error,
            format!("the hub cluster {name} has no API endpoint"),
            "check the hub with aws eks describe-cluster --name HUB",
        );
    };
    let policy_arn = |role: &str| {
        let partition = role.split(':').nth(1).unwrap_or("aws");
        format!("arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy")
    };
    let commands = |role: &str| {
        format!(
            "aws eks create-access-entry --cluster-name {name} --principal-arn {role}; aws eks \
             associate-access-policy --cluster-name {name} --principal-arn {role} --policy-arn \
             {} --access-scope type=namespace,namespaces={ns}",
            policy_arn(role)
        )
    };
    let Some(role) = hub.dispatcher_role.as_deref() else {
        return Check::not_ok(
            ID,
            Level::Info,
            format!(
                "the hub cluster {name} is ACTIVE at {endpoint}; okra's dispatcher role is not \
                 known here, so its access entry was not checked"
            ),
            format!(
                "check that okra's dispatcher role (the stack's DispatcherFunctionRole) may write \
                 secrets in {ns}: aws eks list-associated-access-policies --cluster-name {name} \
                 --principal-arn ROLE_ARN should list AmazonEKSEditPolicy on {ns}; or run the \
                 doctor through okra's API (okra --api-url URL doctor CELL), which knows the role"
            ),
        );
    };
    let no_entry_fix = format!(
        "deploy okra with the stack parameter ArgoCdHubCluster={name} (and ArgoCdNamespace={ns}), \
         or: {}",
        commands(role)
    );
    let entry = match &hub.access {
        None => {
            return Check::not_ok(
                ID,
                Level::Warning,
                format!("the dispatcher role's access entry on {name} was not read"),
                "run the doctor again",
            );
        }
        Some(Err(why)) => {
            return Check::not_ok(
                ID,
                Level::Warning,
                format!("the dispatcher role's access entry on {name} could not be read: {why}"),
                "allow eks:DescribeAccessEntry and eks:ListAssociatedAccessPolicies to whoever \
                 runs the doctor (template.yaml does for okra's API)",
            );
        }
        Some(Ok(None)) => {
            return Check::not_ok(
                ID,
                Level::Error,
                format!(
                    "okra's dispatcher role {role} has no access entry on the hub {name}: it \
                     cannot write Argo CD's cluster secrets"
                ),
                no_entry_fix,
            );
        }
        Some(Ok(Some(entry))) => entry,
    };
    if let Some(p) = entry.policies.iter().find(|p| p.writes_secrets_in(ns)) {
        return Check::ok(
            ID,
            format!(
                "the hub cluster {name} is ACTIVE; okra's dispatcher role may write secrets in \
                 {ns} ({})",
                p.describe()
            ),
        );
    }
    let associate = format!(
        "aws eks associate-access-policy --cluster-name {name} --principal-arn {role} \
         --policy-arn {} --access-scope type=namespace,namespaces={ns}",
        policy_arn(role)
    );
    if entry.policies.is_empty() {
        if !entry.kubernetes_groups.is_empty() {
            return Check::not_ok(
                ID,
                Level::Warning,
                format!(
                    "okra's dispatcher role has an access entry on {name} with no access policy, \
                     only the Kubernetes groups {}: what RBAC lets them do is not checked here",
                    entry.kubernetes_groups.join(", ")
                ),
                format!(
                    "make sure RBAC lets those groups get, list, create, patch and delete secrets \
                     in {ns}, or: {associate}"
                ),
            );
        }
        return Check::not_ok(
            ID,
            Level::Error,
            format!(
                "okra's dispatcher role has an access entry on {name} but no access policy: it \
                 cannot write secrets in {ns}"
            ),
            associate,
        );
    }
    let listed: Vec<String> = entry
        .policies
        .iter()
        .map(AccessPolicyFacts::describe)
        .collect();
    let why = if entry
        .policies
        .iter()
        .any(|p| SECRET_WRITING_POLICIES.contains(&p.name()))
    {
        format!("none of them covers the namespace {ns}")
    } else {
        "none of them writes secrets (AmazonEKSEditPolicy, AmazonEKSAdminPolicy or \
         AmazonEKSClusterAdminPolicy does)"
            .to_string()
    };
    Check::not_ok(
        ID,
        Level::Error,
        format!(
            "okra's dispatcher role's access policies on {name}: {}; {why}",
            listed.join(", ")
        ),
        associate,
    )
}

fn names(c: &[Cluster]) -> String {
    c.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The worst level of `checks` (`Ok` for none).
pub fn worst(checks: &[Check]) -> Level {
    checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CellSpec {
        CellSpec::from_yaml(include_str!("../../../examples/cells/web.yaml")).expect("web.yaml")
    }

    fn cell() -> Cell {
        spec().validate().expect("web.yaml is valid")
    }

    fn cluster(name: &str, vpc: &str) -> Cluster {
        Cluster {
            access: None,
            name: name.into(),
            status: ClusterStatus::Active,
            tags: [("okra.io/version".to_string(), "1.0.0".to_string())].into(),
            vpc_id: Some(vpc.into()),
        }
    }

    fn trail(home: &str, multi: bool, logging: bool, write: bool) -> TrailFacts {
        TrailFacts {
            name: "t".into(),
            home_region: home.into(),
            multi_region: multi,
            logging,
            write_management_events: write,
        }
    }

    fn facts(target_groups: usize, clusters: usize, trails: Vec<TrailFacts>) -> Facts {
        Facts {
            ingress_tags: Ok(Vec::new()),
            region: "eu-west-1".into(),
            load_balancer: Ok(LoadBalancerFacts {
                vpc_id: "vpc-1".into(),
                target_groups,
                security_groups: vec![],
                subnets: vec![],
                zones: vec![],
            }),
            clusters: Ok((0..clusters)
                .map(|i| cluster(&format!("c{i}"), "vpc-1"))
                .collect()),
            trails: Ok(trails),
            metrics: BTreeMap::new(),
            datadog_secret: None,
            prometheus: BTreeMap::new(),
            nodes: crate::nodes::NodeFacts::default(),
            target_group_quota: Ok(TargetGroupQuota {
                limit: None,
                count: 10,
                cell: Ok(2),
            }),
            argocd_hub: None,
        }
    }

    fn level(checks: &[Check], id: &str) -> Level {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no {id}: {checks:#?}"))
            .level
    }

    // "Quotas for your Application Load Balancers": 100 target groups per ALB.
    #[test]
    fn target_group_room_against_the_alb_quota() {
        let s = cell();
        let at = |have, adds| {
            level(
                &diagnose(&s, &facts(have, adds, vec![])),
                "target-group-room",
            )
        };
        assert_eq!(at(10, 4), Level::Ok);
        assert_eq!(at(86, 4), Level::Ok);
        assert_eq!(at(87, 4), Level::Warning);
        assert_eq!(at(96, 4), Level::Warning);
        assert_eq!(at(97, 4), Level::Error);
    }

    #[test]
    fn a_trail_counts_in_its_home_region_or_everywhere_when_multi_region() {
        let s = cell();
        let with = |t: TrailFacts| level(&diagnose(&s, &facts(2, 2, vec![t])), "cloudtrail");
        assert_eq!(with(trail("eu-west-1", false, true, true)), Level::Ok);
        assert_eq!(with(trail("us-east-1", true, true, true)), Level::Ok);
        assert_eq!(with(trail("us-east-1", false, true, true)), Level::Warning);
        assert_eq!(with(trail("eu-west-1", false, false, true)), Level::Warning);
        assert_eq!(with(trail("eu-west-1", false, true, false)), Level::Warning);
        assert_eq!(
            level(&diagnose(&s, &facts(2, 2, vec![])), "cloudtrail"),
            Level::Warning
        );
    }

    #[test]
    fn metrics_whose_dimensions_come_from_args_are_not_looked_up() {
        let mut s = spec();
        // web.yaml's two queries read `{{args.load-balancer}}`: nothing to look up.
        assert!(metric_checks(&s).is_empty());
        let q = s.analysis_templates[0].metrics[0]
            .provider
            .cloudwatch
            .as_mut()
            .and_then(|c| {
                c.metric_data_queries
                    .iter_mut()
                    .find(|q| q.metric_stat.is_some())
            })
            .expect("web.yaml has a CloudWatch metricStat");
        let id = q.id.clone();
        q.metric_stat
            .as_mut()
            .expect("a metricStat")
            .dimensions
            .insert(
                "LoadBalancer".into(),
                "app/web-prod/50dc6c495c0c9188".into(),
            );
        let checks = metric_checks(&s);
        assert_eq!(checks.len(), 1);
        assert_eq!(
            checks[0].id,
            format!(
                "metric:{}/{}/{id}",
                s.analysis_templates[0].name, s.analysis_templates[0].metrics[0].name
            )
        );
    }

    fn check<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no {id}: {checks:#?}"))
    }

    fn quota(limit: Option<usize>, count: usize) -> Facts {
        let mut f = facts(2, 2, vec![]);
        f.target_group_quota = Ok(TargetGroupQuota {
            limit,
            count,
            cell: Ok(3),
        });
        f
    }

    // "Quotas for your Application Load Balancers": 3,000 target groups per Region by default.
    #[test]
    fn target_groups_against_the_regions_quota() {
        let s = cell();
        let at = |limit, count| level(&diagnose(&s, &quota(limit, count)), "target-group-quota");
        assert_eq!(at(None, 2_399), Level::Ok);
        assert_eq!(at(None, 2_400), Level::Warning);
        assert_eq!(at(None, 2_849), Level::Warning);
        assert_eq!(at(None, 2_850), Level::Error);
        assert_eq!(at(None, 3_000), Level::Error);
        assert_eq!(at(Some(100), 79), Level::Ok);
        assert_eq!(at(Some(100), 80), Level::Warning);
        assert_eq!(at(Some(100), 95), Level::Error);
        assert_eq!(at(Some(10_000), 2_900), Level::Ok);

        let checks = diagnose(&s, &quota(None, 2_500));
        let c = check(&checks, "target-group-quota");
        assert!(
            c.summary
                .contains("2500 of 3000 target groups in eu-west-1 (83 %)"),
            "{c:?}"
        );
        assert!(
            c.summary.contains("3 of them okra's groups of cell"),
            "{c:?}"
        );
        let fix = c.fix.as_deref().expect("a fix");
        assert!(fix.contains("retire.keep (now 1)") && fix.contains("retire.after (now 1h)"));
        assert!(fix.contains("Service Quotas"), "{fix}");

        let mut off = spec();
        off.retire.enabled = false;
        let off = off.validate().expect("valid");
        let checks = diagnose(&off, &quota(None, 2_900));
        let fix = check(&checks, "target-group-quota")
            .fix
            .clone()
            .expect("a fix");
        assert!(fix.contains("retire.enabled: true"), "{fix}");
    }

    #[test]
    fn target_groups_that_cannot_be_counted_are_a_warning() {
        let s = cell();
        let mut f = facts(2, 2, vec![]);
        f.target_group_quota = Err("AccessDenied".into());
        let checks = diagnose(&s, &f);
        let c = check(&checks, "target-group-quota");
        assert_eq!(c.level, Level::Warning);
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("DescribeAccountLimits")
        );

        // The cell's own groups unreadable: the quota is still checked.
        let mut f = quota(None, 10);
        if let Ok(q) = &mut f.target_group_quota {
            q.cell = Err("throttled".into());
        }
        let checks = diagnose(&s, &f);
        let c = check(&checks, "target-group-quota");
        assert_eq!(c.level, Level::Ok);
        assert!(
            c.summary.contains("could not be counted: throttled"),
            "{c:?}"
        );
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/okra-DispatcherFunctionRole-X";
    const EDIT: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";
    const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
    const ADMIN: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

    fn argo_cell() -> Cell {
        let mut s = spec();
        s.argocd = Some(
            serde_json::from_value(serde_json::json!({"hub": "hub"})).expect("an argocd block"),
        );
        s.validate().expect("valid with argocd")
    }

    fn policy(arn: &str, namespaces: Option<&[&str]>) -> AccessPolicyFacts {
        AccessPolicyFacts {
            policy_arn: arn.into(),
            scope: match namespaces {
                None => AccessScope::Cluster,
                Some(n) => AccessScope::Namespaces(n.iter().map(|n| (*n).to_string()).collect()),
            },
        }
    }

    fn hub(
        cluster: Result<Option<Cluster>, String>,
        role: Option<&str>,
        access: Option<Result<Option<AccessEntryFacts>, String>>,
    ) -> Facts {
        let mut f = facts(2, 2, vec![]);
        f.argocd_hub = Some(HubFacts {
            cluster,
            dispatcher_role: role.map(str::to_string),
            access,
        });
        f
    }

    fn active_hub() -> Cluster {
        let mut c = cluster("hub", "vpc-9");
        c.access = Some(crate::model::ClusterAccess {
            arn: "arn:aws:eks:eu-west-1:123456789012:cluster/hub".into(),
            endpoint: Some("https://hub.eks.example".into()),
            ca_data: Some("Q0E=".into()),
        });
        c
    }

    fn with_policies(policies: Vec<AccessPolicyFacts>) -> Facts {
        hub(
            Ok(Some(active_hub())),
            Some(ROLE),
            Some(Ok(Some(AccessEntryFacts {
                kubernetes_groups: vec![],
                policies,
            }))),
        )
    }

    #[test]
    fn no_argocd_no_hub_check() {
        let s = cell();
        let checks = diagnose(&s, &with_policies(vec![]));
        assert!(checks.iter().all(|c| c.id != "argocd-hub"), "{checks:#?}");
    }

    // EKS user guide, "Review access policy permissions": edit, admin and cluster-admin cover
    // secrets; the scope must hold the namespace.
    #[test]
    fn the_dispatcher_may_write_secrets_in_the_namespace() {
        let s = argo_cell();
        let at = |policies| {
            let checks = diagnose(&s, &with_policies(policies));
            check(&checks, "argocd-hub").clone()
        };
        let ok = at(vec![policy(EDIT, Some(&["argocd"]))]);
        assert_eq!(ok.level, Level::Ok, "{ok:?}");
        assert!(
            ok.summary
                .contains("AmazonEKSEditPolicy (namespaces argocd)"),
            "{ok:?}"
        );
        assert_eq!(at(vec![policy(ADMIN, None)]).level, Level::Ok);
        assert_eq!(
            at(vec![policy(
                "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy",
                Some(&["kube-system", "argocd"])
            )])
            .level,
            Level::Ok
        );
        // One good policy among others is enough.
        assert_eq!(
            at(vec![policy(VIEW, None), policy(EDIT, None)]).level,
            Level::Ok
        );

        let view = at(vec![policy(VIEW, None)]);
        assert_eq!(view.level, Level::Error);
        assert!(
            view.summary.contains("AmazonEKSViewPolicy (cluster)"),
            "{view:?}"
        );
        assert!(
            view.summary.contains("none of them writes secrets"),
            "{view:?}"
        );
        assert!(
            view.fix
                .as_deref()
                .unwrap_or_default()
                .contains("associate-access-policy")
        );

        let elsewhere = at(vec![policy(EDIT, Some(&["apps"]))]);
        assert_eq!(elsewhere.level, Level::Error);
        assert!(
            elsewhere
                .summary
                .contains("AmazonEKSEditPolicy (namespaces apps)")
                && elsewhere.summary.contains("covers the namespace argocd"),
            "{elsewhere:?}"
        );

        let none = at(vec![]);
        assert_eq!(none.level, Level::Error);
        assert!(none.summary.contains("no access policy"), "{none:?}");
    }

    #[test]
    fn an_entry_with_kubernetes_groups_only_is_a_warning() {
        let s = argo_cell();
        let f = hub(
            Ok(Some(active_hub())),
            Some(ROLE),
            Some(Ok(Some(AccessEntryFacts {
                kubernetes_groups: vec!["okra-writers".into()],
                policies: vec![],
            }))),
        );
        let checks = diagnose(&s, &f);
        let c = check(&checks, "argocd-hub");
        assert_eq!(c.level, Level::Warning, "{c:?}");
        assert!(c.summary.contains("okra-writers"), "{c:?}");
    }

    #[test]
    fn no_access_entry_is_an_error_with_the_commands() {
        let s = argo_cell();
        let checks = diagnose(&s, &hub(Ok(Some(active_hub())), Some(ROLE), Some(Ok(None))));
        let c = check(&checks, "argocd-hub");
        assert_eq!(c.level, Level::Error);
        assert!(c.summary.contains(ROLE), "{c:?}");
        let fix = c.fix.as_deref().expect("a fix");
        assert!(fix.contains("ArgoCdHubCluster=hub"), "{fix}");
        assert!(
            fix.contains(&format!(
                "aws eks create-access-entry --cluster-name hub --principal-arn {ROLE}"
            )),
            "{fix}"
        );
        assert!(
            fix.contains(&format!("--policy-arn {EDIT}"))
                && fix.contains("--access-scope type=namespace,namespaces=argocd"),
            "{fix}"
        );

        // The policy's partition follows the role's.
        let cn = "arn:aws-cn:iam::123456789012:role/okra-dispatcher";
        let checks = diagnose(&s, &hub(Ok(Some(active_hub())), Some(cn), Some(Ok(None))));
        let fix = check(&checks, "argocd-hub").fix.clone().expect("a fix");
        assert!(
            fix.contains("arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"),
            "{fix}"
        );
    }

    #[test]
    fn the_hub_must_exist_be_active_and_have_an_endpoint() {
        let s = argo_cell();
        let at = |cluster| {
            let checks = diagnose(&s, &hub(cluster, Some(ROLE), None));
            check(&checks, "argocd-hub").clone()
        };
        let gone = at(Ok(None));
        assert_eq!(gone.level, Level::Error);
        assert!(gone.summary.contains("does not exist"), "{gone:?}");
        assert_eq!(at(Err("AccessDenied".into())).level, Level::Error);
        let mut creating = active_hub();
        creating.status = ClusterStatus::Creating;
        let c = at(Ok(Some(creating)));
        assert_eq!(c.level, Level::Error);
        assert!(c.summary.contains("CREATING"), "{c:?}");
        let mut no_endpoint = active_hub();
        no_endpoint.access = None;
        assert_eq!(at(Ok(Some(no_endpoint))).level, Level::Error);
    }

    #[test]
    fn an_unknown_dispatcher_role_is_info() {
        let s = argo_cell();
        let checks = diagnose(&s, &hub(Ok(Some(active_hub())), None, None));
        let c = check(&checks, "argocd-hub");
        assert_eq!(c.level, Level::Info, "{c:?}");
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("DispatcherFunctionRole"),
            "{c:?}"
        );
        // Info is worse than ok, better than a warning.
        assert!(Level::Ok < Level::Info && Level::Info < Level::Warning);
    }

    #[test]
    fn an_unreadable_access_entry_is_a_warning() {
        let s = argo_cell();
        let f = hub(
            Ok(Some(active_hub())),
            Some(ROLE),
            Some(Err("AccessDeniedException".into())),
        );
        let checks = diagnose(&s, &f);
        let c = check(&checks, "argocd-hub");
        assert_eq!(c.level, Level::Warning);
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("eks:DescribeAccessEntry"),
            "{c:?}"
        );
    }

    #[test]
    fn the_worst_level_wins() {
        let s = cell();
        let mut f = facts(2, 2, vec![trail("eu-west-1", true, true, true)]);
        assert_eq!(worst(&diagnose(&s, &f)), Level::Ok);
        f.load_balancer = Err("listener not found".into());
        let checks = diagnose(&s, &f);
        assert_eq!(worst(&checks), Level::Error);
        assert!(
            checks.iter().all(|c| c.id != "vpc"),
            "no VPC to compare with"
        );
    }
}
