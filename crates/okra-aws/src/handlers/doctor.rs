//! `okra doctor`: reads what a cell needs from the account (read only) and hands it to
//! [`okra_core::doctor::diagnose`].

use std::collections::{BTreeMap, BTreeSet};

use okra_core::Cell;
use okra_core::doctor::{
    Check, Facts, HubFacts, Level, LoadBalancerFacts, TargetGroupQuota, diagnose, metric_checks,
    uses_datadog, worst,
};
use okra_core::model::{Cluster, ClusterStatus};
use okra_core::nodes::{ClusterNodes, LoadBalancerSource, NodeFacts};
use serde::{Deserialize, Serialize};

use crate::error::{OkraError, Result};
use crate::ports::{
    AccessEntryPort, AccountLimitsPort, ClusterPort, LoadBalancerPort, MetricsPort, NetworkPort,
    SecretsPort, TrailPort,
};

/// How many clusters are described at once.
const DESCRIBE_CONCURRENCY: usize = 8;

/// The doctor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoctorReport {
    /// The cell.
    pub cell: String,
    /// The region checked.
    pub region: String,
    /// The worst level of the checks.
    pub level: Level,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
}

/// The account's services, as the doctor reads them.
#[allow(missing_debug_implementations)]
pub struct Account<'a, C, L, N, T, M, S, H, Q> {
    /// EKS (clusters by tag, and their nodes; the Argo CD hub's access entries).
    pub eks: &'a C,
    /// ELB.
    pub elb: &'a L,
    /// ELB's account limits and the region's target groups.
    pub limits: &'a Q,
    /// EC2's security groups and subnets.
    pub network: &'a N,
    /// CloudTrail.
    pub trails: &'a T,
    /// CloudWatch.
    pub metrics: &'a M,
    /// Secrets Manager, and the Datadog secret's ARN (None: none configured).
    pub secrets: (&'a S, Option<&'a str>),
    /// Prometheus and AMP, with okra's credentials.
    pub http: &'a H,
    /// okra's dispatcher role, whose access entry on an Argo CD hub is checked (the api
    /// function's `DISPATCHER_ROLE_ARN`; None: not known, as in the CLI).
    pub dispatcher_role: Option<&'a str>,
    /// The region.
    pub region: &'a str,
}

fn why(e: &OkraError) -> String {
    e.to_string()
}

/// Checks `cell` against the account. Reads only; never fails for a check's sake (what could
/// not be read is a check's finding).
pub async fn handle<C, L, N, T, M, S, H, Q>(
    account: &Account<'_, C, L, N, T, M, S, H, Q>,
    cell: &Cell,
) -> Result<DoctorReport>
where
    C: ClusterPort + AccessEntryPort,
    L: LoadBalancerPort,
    N: NetworkPort,
    T: TrailPort,
    M: MetricsPort,
    S: SecretsPort,
    H: crate::ports::HttpPort,
    Q: AccountLimitsPort,
{
    let listener = cell.ingress().listener().as_str();
    let load_balancer = account
        .elb
        .load_balancer(listener)
        .await
        .map_err(|e| why(&e));
    let clusters = async {
        let names = account
            .eks
            .find_clusters(&cell.cluster_selector.match_tags)
            .await?;
        let mut out = Vec::new();
        for chunk in names.chunks(DESCRIBE_CONCURRENCY) {
            let described = futures::future::try_join_all(
                chunk.iter().map(|n| account.eks.describe_cluster(n)),
            )
            .await?;
            out.extend(described.into_iter().flatten());
        }
        Ok::<_, OkraError>(out)
    }
    .await
    .map_err(|e| why(&e));
    let trails = account.trails.trails().await.map_err(|e| why(&e));
    let mut metrics = BTreeMap::new();
    for lookup in metric_checks(cell) {
        let found = account
            .metrics
            .metric_exists(&lookup)
            .await
            .map_err(|e| why(&e));
        metrics.insert(lookup.id, found);
    }
    let datadog_secret = if uses_datadog(cell) {
        Some(match account.secrets {
            (_, None) => Err("no Datadog secret is configured (DatadogSecretArn)".to_string()),
            (secrets, Some(arn)) => secrets
                .secret_string(arn)
                .await
                .map(|_| ())
                .map_err(|e| why(&e)),
        })
    } else {
        None
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let mut prometheus = BTreeMap::new();
    for (id, request) in okra_core::doctor::prometheus_checks(cell, now) {
        let answered = match account.http.send(&request).await {
            Ok(a) => okra_core::analysis::probe::read_prometheus(a.status, &a.body)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(why(&e)),
        };
        prometheus.insert(id, answered);
    }
    let nodes = node_facts(
        account,
        load_balancer.as_ref().ok(),
        clusters.as_deref().ok(),
    )
    .await;
    let ingress_tags = account
        .elb
        .resource_tags(&crate::app::cells::ingress_resources(cell))
        .await
        .map_err(|e| why(&e));
    let target_group_quota = target_group_quota(account, cell).await;
    let argocd_hub = match &cell.argocd {
        Some(argocd) => Some(hub_facts(account, &argocd.hub).await),
        None => None,
    };
    let facts = Facts {
        region: account.region.to_string(),
        load_balancer,
        ingress_tags,
        clusters,
        trails,
        metrics,
        datadog_secret,
        prometheus,
        nodes,
        target_group_quota,
        argocd_hub,
    };
    let checks = diagnose(cell, &facts);
    Ok(DoctorReport {
        cell: cell.name.clone(),
        region: account.region.to_string(),
        level: worst(&checks),
        checks,
    })
}

/// The region's target groups against the account's limit: DescribeAccountLimits, the region's
/// DescribeTargetGroups pages, and okra's groups of the cell (by tag).
async fn target_group_quota<C, L, N, T, M, S, H, Q>(
    account: &Account<'_, C, L, N, T, M, S, H, Q>,
    cell: &Cell,
) -> std::result::Result<TargetGroupQuota, String>
where
    L: LoadBalancerPort,
    Q: AccountLimitsPort,
{
    let limit = account
        .limits
        .target_group_limit()
        .await
        .map_err(|e| why(&e))?;
    let count = account
        .limits
        .count_target_groups()
        .await
        .map_err(|e| why(&e))?;
    let cell = account
        .elb
        .find_target_groups(&cell.name, &[])
        .await
        .map(|g| g.len())
        .map_err(|e| why(&e));
    Ok(TargetGroupQuota { limit, count, cell })
}

/// The Argo CD hub: DescribeCluster, then (ACTIVE with an endpoint, the dispatcher's role known)
/// the role's access entry there.
async fn hub_facts<C, L, N, T, M, S, H, Q>(
    account: &Account<'_, C, L, N, T, M, S, H, Q>,
    hub: &str,
) -> HubFacts
where
    C: ClusterPort + AccessEntryPort,
{
    let cluster = account.eks.describe_cluster(hub).await.map_err(|e| why(&e));
    let ready = matches!(&cluster, Ok(Some(c)) if c.status == ClusterStatus::Active
        && c.access.as_ref().is_some_and(|a| a.endpoint.is_some()));
    let role = account.dispatcher_role.filter(|r| !r.is_empty());
    let access = match role {
        Some(role) if ready => Some(
            account
                .eks
                .access_entry(hub, role)
                .await
                .map_err(|e| why(&e)),
        ),
        _ => None,
    };
    HubFacts {
        cluster,
        dispatcher_role: role.map(str::to_string),
        access,
    }
}

/// The load balancer's way in (its security groups, its subnets' blocks) and each cluster's
/// nodes with their security groups: a DescribeSubnets, then per cluster two DescribeInstances
/// and a DescribeSecurityGroups.
async fn node_facts<C, L, N, T, M, S, H, Q>(
    account: &Account<'_, C, L, N, T, M, S, H, Q>,
    lb: Option<&LoadBalancerFacts>,
    clusters: Option<&[Cluster]>,
) -> NodeFacts
where
    C: ClusterPort,
    N: NetworkPort,
{
    let source = match lb {
        Some(lb) => account
            .network
            .subnet_cidrs(&lb.subnets)
            .await
            .map(|subnet_cidrs| LoadBalancerSource {
                security_groups: lb.security_groups.clone(),
                subnet_cidrs,
                zones: lb.zones.clone(),
            })
            .map_err(|e| why(&e)),
        // No load balancer, nothing to check the nodes against: the `listener` check says why.
        None => return NodeFacts::default(),
    };
    let names: Vec<String> = clusters
        .unwrap_or_default()
        .iter()
        .filter(|c| c.status != ClusterStatus::Deleting)
        .map(|c| c.name.clone())
        .collect();
    let mut read = BTreeMap::new();
    for chunk in names.chunks(DESCRIBE_CONCURRENCY) {
        let got = futures::future::join_all(chunk.iter().map(|n| cluster_nodes(account, n))).await;
        read.extend(chunk.iter().cloned().zip(got));
    }
    NodeFacts {
        source,
        clusters: read,
    }
}

/// One cluster's nodes and their security groups.
async fn cluster_nodes<C, L, N, T, M, S, H, Q>(
    account: &Account<'_, C, L, N, T, M, S, H, Q>,
    cluster: &str,
) -> std::result::Result<ClusterNodes, String>
where
    C: ClusterPort,
    N: NetworkPort,
{
    async {
        let instances = account.eks.cluster_instances(cluster).await?;
        let ids: BTreeSet<String> = instances
            .iter()
            .flat_map(|i| i.security_groups.iter().cloned())
            .collect();
        let groups = account
            .network
            .security_groups(&ids.into_iter().collect::<Vec<_>>())
            .await?;
        let zones: BTreeSet<String> = instances.iter().filter_map(|i| i.zone.clone()).collect();
        Ok::<_, OkraError>(ClusterNodes {
            instances: instances.len(),
            groups,
            zones: zones.into_iter().collect(),
        })
    }
    .await
    .map_err(|e| why(&e))
}

impl<C, L, N, T, M, S, H, Q> crate::app::Doctor for Account<'_, C, L, N, T, M, S, H, Q>
where
    C: ClusterPort + AccessEntryPort,
    L: LoadBalancerPort,
    N: NetworkPort,
    T: TrailPort,
    M: MetricsPort,
    S: SecretsPort,
    H: crate::ports::HttpPort,
    Q: AccountLimitsPort,
{
    async fn check(&self, cell: &Cell) -> Result<DoctorReport> {
        handle(self, cell).await
    }
}

/// The doctor over the SDK adapters, built once from a configuration (the api function, the
/// CLI).
#[derive(Debug, Clone)]
pub struct Checker {
    eks: crate::eks::Eks,
    elb: crate::elb::Elb,
    limits: ElbLimits,
    network: crate::ec2::Ec2,
    trails: crate::cloudtrail::CloudTrail,
    metrics: crate::cloudwatch::CloudWatch,
    secrets: crate::secrets::Secrets,
    http: std::sync::Arc<crate::probe::Probe<crate::secrets::Secrets>>,
    datadog_secret: Option<String>,
    dispatcher_role: Option<String>,
    region: String,
}

impl Checker {
    /// The adapters over `config`; `datadog_secret` is the Datadog keys' secret, if any.
    pub fn from_config(config: &aws_config::SdkConfig, datadog_secret: Option<String>) -> Self {
        let secrets = crate::secrets::Secrets::new(aws_sdk_secretsmanager::Client::new(config));
        Self {
            eks: crate::eks::Eks::from_config(config),
            elb: crate::elb::Elb::from_config(config),
            limits: ElbLimits::from_config(config),
            network: crate::ec2::Ec2::from_config(config),
            trails: crate::cloudtrail::CloudTrail::new(aws_sdk_cloudtrail::Client::new(config)),
            metrics: crate::cloudwatch::CloudWatch::new(aws_sdk_cloudwatch::Client::new(config)),
            secrets: secrets.clone(),
            http: std::sync::Arc::new(crate::probe::Probe::from_config(secrets, config)),
            datadog_secret: datadog_secret.filter(|s| !s.is_empty()),
            dispatcher_role: None,
            region: config.region().map(ToString::to_string).unwrap_or_default(),
        }
    }

    /// Another Datadog secret (the CLI's `--datadog-secret-arn`).
    #[must_use]
    pub fn with_datadog_secret(mut self, arn: Option<String>) -> Self {
        if arn.is_some() {
            self.datadog_secret = arn;
        }
        self
    }

    /// okra's dispatcher role, whose access entry on a cell's Argo CD hub is checked (the api
    /// function's `DISPATCHER_ROLE_ARN`); without it the `argocd-hub` check says which role to
    /// check.
    #[must_use]
    pub fn with_dispatcher_role(mut self, arn: Option<String>) -> Self {
        self.dispatcher_role = arn.filter(|a| !a.is_empty());
        self
    }
}

impl crate::app::Doctor for Checker {
    async fn check(&self, cell: &Cell) -> Result<DoctorReport> {
        let account = Account {
            eks: &self.eks,
            elb: &self.elb,
            limits: &self.limits,
            network: &self.network,
            trails: &self.trails,
            metrics: &self.metrics,
            secrets: (&self.secrets, self.datadog_secret.as_deref()),
            http: &*self.http,
            dispatcher_role: self.dispatcher_role.as_deref(),
            region: &self.region,
        };
        handle(&account, cell).await
    }
}

/// DescribeTargetGroups' largest page (ELB API reference: PageSize 1-400).
const TARGET_GROUPS_PAGE: i32 = 400;

/// [`AccountLimitsPort`] over aws-sdk-elasticloadbalancingv2: the doctor's reads of the region's
/// ELB quota (kept apart from [`crate::elb::Elb`], which okra's rollouts use).
#[derive(Debug, Clone)]
pub struct ElbLimits {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl ElbLimits {
    /// Wraps the client.
    pub fn new(client: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        Self { client }
    }

    /// The client from one configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_elasticloadbalancingv2::Client::new(config))
    }
}

impl AccountLimitsPort for ElbLimits {
    async fn target_group_limit(&self) -> Result<Option<usize>> {
        let limits: Vec<aws_sdk_elasticloadbalancingv2::types::Limit> = self
            .client
            .describe_account_limits()
            .page_size(TARGET_GROUPS_PAGE)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(limits
            .iter()
            .find(|l| l.name() == Some("target-groups"))
            .and_then(|l| l.max())
            .and_then(|m| m.trim().parse().ok()))
    }

    async fn count_target_groups(&self) -> Result<usize> {
        let mut pages = self
            .client
            .describe_target_groups()
            .page_size(TARGET_GROUPS_PAGE)
            .into_paginator()
            .send();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            count += page.map_err(OkraError::from_sdk)?.target_groups().len();
        }
        Ok(count)
    }
}
