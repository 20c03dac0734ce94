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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cell::Cell;
use crate::model::{Cluster, ClusterStatus};
use crate::spec::{CellSpec, LoadBalancerKind};

/// Target groups an Application Load Balancer may have ("Quotas for your Application Load
/// Balancers": target groups per Application Load Balancer).
pub const ALB_TARGET_GROUPS: usize = 100;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    /// Fine.
    Ok,
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

    // The nodes' security groups against the load balancer.
    out.extend(crate::nodes::access_checks(cell, clusters, &facts.nodes));

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
