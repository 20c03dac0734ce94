//! [`ClusterPort`] over aws-sdk-eks.

use std::collections::BTreeMap;

use aws_sdk_eks as eks;
use okra_core::model::{Cluster, ClusterStatus};

use crate::ec2::Ec2;
use crate::error::{OkraError, Result};
use crate::ports::ClusterPort;
use crate::tagging::{EKS_CLUSTER, Tagging};

/// The EKS adapter: clusters found by tag through the tagging API, then described by EKS; their
/// nodes found by tag through EC2.
#[derive(Debug, Clone)]
pub struct Eks {
    client: eks::Client,
    tagging: Tagging,
    ec2: Ec2,
}

impl Eks {
    /// Wraps the clients.
    pub fn new(client: eks::Client, tagging: Tagging, ec2: Ec2) -> Self {
        Self {
            client,
            tagging,
            ec2,
        }
    }

    /// The clients from one configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(
            eks::Client::new(config),
            Tagging::new(aws_sdk_resourcegroupstagging::Client::new(config)),
            Ec2::from_config(config),
        )
    }
}

use okra_core::arn::eks_cluster_name;

fn is_not_found(e: &OkraError) -> bool {
    matches!(e, OkraError::Aws { code, .. } if code == "ResourceNotFoundException")
}

impl ClusterPort for Eks {
    async fn find_clusters(&self, tags: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .tagging
            .find(EKS_CLUSTER, tags)
            .await?
            .iter()
            .filter_map(|r| eks_cluster_name(&r.arn).map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn find_clusters_any(
        &self,
        key: &str,
        values: &[String],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>> {
        Ok(self
            .tagging
            .find_any(EKS_CLUSTER, key, values)
            .await?
            .into_iter()
            .filter_map(|r| eks_cluster_name(&r.arn).map(|n| (n.to_string(), r.tags.clone())))
            .collect())
    }

    async fn describe_cluster(&self, name: &str) -> Result<Option<Cluster>> {
        let out = match self.client.describe_cluster().name(name).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = OkraError::from_sdk(e);
                return if is_not_found(&e) { Ok(None) } else { Err(e) };
            }
        };
        let Some(c) = out.cluster() else {
            return Ok(None);
        };
        Ok(Some(Cluster {
            name: c.name().unwrap_or(name).to_string(),
            status: ClusterStatus::parse(c.status().map_or("", |s| s.as_str())),
            tags: c
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            vpc_id: c
                .resources_vpc_config()
                .and_then(|v| v.vpc_id())
                .map(str::to_string),
            access: c.arn().map(|arn| okra_core::model::ClusterAccess {
                arn: arn.to_string(),
                endpoint: c.endpoint().map(str::to_string),
                ca_data: c
                    .certificate_authority()
                    .and_then(|a| a.data())
                    .map(str::to_string),
            }),
        }))
    }

    async fn tag_cluster(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn untag_cluster(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn ensure_access_entry(
        &self,
        cluster: &str,
        principal: &str,
        policy_arn: &str,
        namespaces: &[String],
    ) -> Result<()> {
        // EKS API reference, CreateAccessEntry: an entry for the principal already on the
        // cluster is ResourceInUseException; AssociateAccessPolicy replaces the scope of a
        // policy already associated.
        match self
            .client
            .create_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
            .map_err(OkraError::from_sdk)
        {
            Ok(_) => {}
            Err(OkraError::Aws { code, .. }) if code == "ResourceInUseException" => {}
            Err(OkraError::Conflict(..)) => {}
            Err(e) => return Err(e),
        }
        let scope = if namespaces.is_empty() {
            eks::types::AccessScope::builder()
                .r#type(eks::types::AccessScopeType::Cluster)
                .build()
        } else {
            eks::types::AccessScope::builder()
                .r#type(eks::types::AccessScopeType::Namespace)
                .set_namespaces(Some(namespaces.to_vec()))
                .build()
        };
        self.client
            .associate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(policy_arn)
            .access_scope(scope)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn node_group_asgs(&self, cluster: &str) -> Result<Vec<String>> {
        let groups: Vec<String> = self
            .client
            .list_nodegroups()
            .cluster_name(cluster)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(OkraError::from_sdk)?;
        let mut asgs = Vec::new();
        for ng in groups {
            let out = self
                .client
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(&ng)
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
            if let Some(res) = out.nodegroup().and_then(|n| n.resources()) {
                asgs.extend(
                    res.auto_scaling_groups()
                        .iter()
                        .filter_map(|a| a.name().map(str::to_string)),
                );
            }
        }
        asgs.sort();
        asgs.dedup();
        Ok(asgs)
    }

    async fn cluster_instances(
        &self,
        cluster: &str,
    ) -> Result<Vec<okra_core::nodes::NodeInstance>> {
        self.ec2.cluster_instances(cluster).await
    }
}

/// ListAssociatedAccessPolicies' largest page (EKS API reference: maxResults 1-100).
const ASSOCIATED_POLICIES_PAGE: i32 = 100;

impl crate::ports::AccessEntryPort for Eks {
    async fn access_entry(
        &self,
        cluster: &str,
        principal: &str,
    ) -> Result<Option<okra_core::doctor::AccessEntryFacts>> {
        use okra_core::doctor::{AccessEntryFacts, AccessPolicyFacts, AccessScope};
        // EKS API reference, DescribeAccessEntry: no entry for the principal is
        // ResourceNotFoundException.
        let out = match self
            .client
            .describe_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                let e = OkraError::from_sdk(e);
                return if is_not_found(&e) { Ok(None) } else { Err(e) };
            }
        };
        let kubernetes_groups = out
            .access_entry()
            .map(|e| e.kubernetes_groups().to_vec())
            .unwrap_or_default();
        let associated: Vec<eks::types::AssociatedAccessPolicy> = self
            .client
            .list_associated_access_policies()
            .cluster_name(cluster)
            .principal_arn(principal)
            .into_paginator()
            .page_size(ASSOCIATED_POLICIES_PAGE)
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(OkraError::from_sdk)?;
        let policies = associated
            .iter()
            .filter_map(|p| {
                let scope = p.access_scope();
                Some(AccessPolicyFacts {
                    policy_arn: p.policy_arn()?.to_string(),
                    // A scope of no known type counts as its namespaces (if any), never as
                    // the whole cluster.
                    scope: match scope.and_then(|s| s.r#type()) {
                        Some(eks::types::AccessScopeType::Cluster) => AccessScope::Cluster,
                        _ => AccessScope::Namespaces(
                            scope.map(|s| s.namespaces().to_vec()).unwrap_or_default(),
                        ),
                    },
                })
            })
            .collect();
        Ok(Some(AccessEntryFacts {
            kubernetes_groups,
            policies,
        }))
    }
}
