//! `okra doctor`: reads what a cell needs from the account (read only) and hands it to
//! [`okra_core::doctor::diagnose`].

use std::collections::{BTreeMap, BTreeSet};

use okra_core::Cell;
use okra_core::doctor::{
    Check, Facts, Level, LoadBalancerFacts, diagnose, metric_checks, uses_datadog, worst,
};
use okra_core::model::{Cluster, ClusterStatus};
use okra_core::nodes::{ClusterNodes, LoadBalancerSource, NodeFacts};
use serde::{Deserialize, Serialize};

use crate::error::{OkraError, Result};
use crate::ports::{
    ClusterPort, LoadBalancerPort, MetricsPort, NetworkPort, SecretsPort, TrailPort,
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
pub struct Account<'a, C, L, N, T, M, S, H> {
    /// EKS (clusters by tag, and their nodes).
    pub eks: &'a C,
    /// ELB.
    pub elb: &'a L,
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
    /// The region.
    pub region: &'a str,
}

fn why(e: &OkraError) -> String {
    e.to_string()
}

/// Checks `cell` against the account. Reads only; never fails for a check's sake (what could
/// not be read is a check's finding).
pub async fn handle<C, L, N, T, M, S, H>(
    account: &Account<'_, C, L, N, T, M, S, H>,
    cell: &Cell,
) -> Result<DoctorReport>
where
    C: ClusterPort,
    L: LoadBalancerPort,
    N: NetworkPort,
    T: TrailPort,
    M: MetricsPort,
    S: SecretsPort,
    H: crate::ports::HttpPort,
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
    };
    let checks = diagnose(cell, &facts);
    Ok(DoctorReport {
        cell: cell.name.clone(),
        region: account.region.to_string(),
        level: worst(&checks),
        checks,
    })
}

/// The load balancer's way in (its security groups, its subnets' blocks) and each cluster's
/// nodes with their security groups: a DescribeSubnets, then per cluster two DescribeInstances
/// and a DescribeSecurityGroups.
async fn node_facts<C, L, N, T, M, S, H>(
    account: &Account<'_, C, L, N, T, M, S, H>,
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
async fn cluster_nodes<C, L, N, T, M, S, H>(
    account: &Account<'_, C, L, N, T, M, S, H>,
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

impl<C, L, N, T, M, S, H> crate::app::Doctor for Account<'_, C, L, N, T, M, S, H>
where
    C: ClusterPort,
    L: LoadBalancerPort,
    N: NetworkPort,
    T: TrailPort,
    M: MetricsPort,
    S: SecretsPort,
    H: crate::ports::HttpPort,
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
    network: crate::ec2::Ec2,
    trails: crate::cloudtrail::CloudTrail,
    metrics: crate::cloudwatch::CloudWatch,
    secrets: crate::secrets::Secrets,
    http: std::sync::Arc<crate::probe::Probe<crate::secrets::Secrets>>,
    datadog_secret: Option<String>,
    region: String,
}

impl Checker {
    /// The adapters over `config`; `datadog_secret` is the Datadog keys' secret, if any.
    pub fn from_config(config: &aws_config::SdkConfig, datadog_secret: Option<String>) -> Self {
        let secrets = crate::secrets::Secrets::new(aws_sdk_secretsmanager::Client::new(config));
        Self {
            eks: crate::eks::Eks::from_config(config),
            elb: crate::elb::Elb::from_config(config),
            network: crate::ec2::Ec2::from_config(config),
            trails: crate::cloudtrail::CloudTrail::new(aws_sdk_cloudtrail::Client::new(config)),
            metrics: crate::cloudwatch::CloudWatch::new(aws_sdk_cloudwatch::Client::new(config)),
            secrets: secrets.clone(),
            http: std::sync::Arc::new(crate::probe::Probe::from_config(secrets, config)),
            datadog_secret: datadog_secret.filter(|s| !s.is_empty()),
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
}

impl crate::app::Doctor for Checker {
    async fn check(&self, cell: &Cell) -> Result<DoctorReport> {
        let account = Account {
            eks: &self.eks,
            elb: &self.elb,
            network: &self.network,
            trails: &self.trails,
            metrics: &self.metrics,
            secrets: (&self.secrets, self.datadog_secret.as_deref()),
            http: &*self.http,
            region: &self.region,
        };
        handle(&account, cell).await
    }
}
