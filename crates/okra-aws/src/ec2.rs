//! EC2: a cluster's nodes by their tags (for [`crate::eks::Eks`]'s
//! [`ClusterPort::cluster_instances`](crate::ports::ClusterPort::cluster_instances)), and
//! [`NetworkPort`]: security groups and subnets.

use std::collections::BTreeMap;

use aws_sdk_ec2 as ec2;
use ec2::types::Filter;
use okra_core::nodes::{
    IngressRule, KUBERNETES_CLUSTER_TAG_VALUES, NodeInstance, SecurityGroupRules,
    TAG_EKS_CLUSTER_NAME, kubernetes_cluster_tag,
};

use crate::error::{OkraError, Result};
use crate::ports::NetworkPort;

/// DescribeInstances returns at most this many per page (5-1000).
pub const DESCRIBE_INSTANCES_PAGE: i32 = 1000;

/// The instance state a target must be in to be registered (RegisterTargets refuses instances
/// that are not running, `InvalidTarget`): a node still pending joins at the next sync.
const LIVE_STATES: [&str; 1] = ["running"];

/// The EC2 adapter.
#[derive(Debug, Clone)]
pub struct Ec2 {
    client: ec2::Client,
}

impl Ec2 {
    /// Wraps a client.
    pub fn new(client: ec2::Client) -> Self {
        Self { client }
    }

    /// The client from a configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(ec2::Client::new(config))
    }

    /// The live instances matching `tag` (a tag filter: `tag:KEY` with values), every page.
    async fn instances_tagged(
        &self,
        tag: Filter,
        out: &mut BTreeMap<String, NodeInstance>,
    ) -> Result<()> {
        let state = Filter::builder()
            .name("instance-state-name")
            .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
            .build();
        let mut pages = self
            .client
            .describe_instances()
            .filters(tag)
            .filters(state)
            .max_results(DESCRIBE_INSTANCES_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(OkraError::from_sdk)?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = i.instance_id() else { continue };
                let mut groups: Vec<String> = i
                    .security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
                    .collect();
                groups.sort();
                groups.dedup();
                out.insert(
                    id.to_string(),
                    NodeInstance {
                        id: id.to_string(),
                        security_groups: groups,
                        zone: i
                            .placement()
                            .and_then(|p| p.availability_zone())
                            .map(str::to_string),
                    },
                );
            }
        }
        Ok(())
    }
}

impl Ec2 {
    /// The cluster's running instances, by either tag convention.
    pub async fn cluster_instances(&self, cluster: &str) -> Result<Vec<NodeInstance>> {
        // EC2 ANDs filters, so the two tag conventions are two queries.
        let mut found = BTreeMap::new();
        let eks = Filter::builder()
            .name(format!("tag:{TAG_EKS_CLUSTER_NAME}"))
            .values(cluster)
            .build();
        self.instances_tagged(eks, &mut found).await?;
        let kubernetes = Filter::builder()
            .name(format!("tag:{}", kubernetes_cluster_tag(cluster)))
            .set_values(Some(
                KUBERNETES_CLUSTER_TAG_VALUES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ))
            .build();
        self.instances_tagged(kubernetes, &mut found).await?;
        Ok(found.into_values().collect())
    }
}

impl NetworkPort for Ec2 {
    async fn security_groups(&self, ids: &[String]) -> Result<Vec<SecurityGroupRules>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pages = self
            .client
            .describe_security_groups()
            .set_group_ids(Some(ids.to_vec()))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for g in page.map_err(OkraError::from_sdk)?.security_groups() {
                let ingress = g
                    .ip_permissions()
                    .iter()
                    .map(|p| IngressRule {
                        protocol: p.ip_protocol().unwrap_or("-1").to_string(),
                        from_port: p.from_port(),
                        to_port: p.to_port(),
                        cidrs: p
                            .ip_ranges()
                            .iter()
                            .filter_map(|r| r.cidr_ip().map(str::to_string))
                            .collect(),
                        source_groups: p
                            .user_id_group_pairs()
                            .iter()
                            .filter_map(|u| u.group_id().map(str::to_string))
                            .collect(),
                    })
                    .collect();
                out.push(SecurityGroupRules {
                    id: g.group_id().unwrap_or_default().to_string(),
                    ingress,
                });
            }
        }
        Ok(out)
    }

    async fn subnet_cidrs(&self, ids: &[String]) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pages = self
            .client
            .describe_subnets()
            .set_subnet_ids(Some(ids.to_vec()))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(OkraError::from_sdk)?
                    .subnets()
                    .iter()
                    .filter_map(|s| s.cidr_block().map(str::to_string)),
            );
        }
        Ok(out)
    }
}
