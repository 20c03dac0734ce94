//! EKS in memory: clusters, their tags, node groups and instances.

use super::*;

#[derive(Debug, Default)]
pub(super) struct EksState {
    pub(super) clusters: BTreeMap<String, Cluster>,
    pub(super) node_groups: BTreeMap<String, Vec<String>>,
    /// Cluster → its EC2 instances (found by tag).
    pub(super) instances: BTreeMap<String, Vec<String>>,
    /// Listed, but gone by the time they are described.
    pub(super) vanishing: BTreeSet<String>,
    /// Not yet in the tagging API's answers (it is eventually consistent).
    pub(super) lagging: BTreeSet<String>,
    /// Access entries made: (cluster, principal) → (policy ARN, namespaces).
    pub(super) access_entries: BTreeMap<(String, String), (String, Vec<String>)>,
}

/// EKS in memory.
#[derive(Debug, Default)]
pub struct FakeEks {
    state: Mutex<EksState>,
    /// Counts and faults.
    pub meter: Meter,
}

/// A cluster with a status and tags (no VPC).
pub fn cluster(name: &str, status: ClusterStatus, tags: &[(&str, &str)]) -> Cluster {
    Cluster {
        name: name.to_string(),
        status,
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        vpc_id: None,
        access: Some(okra_core::model::ClusterAccess {
            arn: format!("arn:aws:eks:us-east-1:123456789012:cluster/{name}"),
            endpoint: Some(format!("https://{name}.eks.local")),
            ca_data: Some("Q0E=".to_string()),
        }),
    }
}

impl FakeEks {
    /// No clusters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a cluster.
    pub fn add_cluster(&self, c: Cluster) -> &Self {
        lock(&self.state).clusters.insert(c.name.clone(), c);
        self
    }

    /// Adds an ACTIVE cluster in `vpc-1` with these tags.
    pub fn add_active(&self, name: &str, tags: &[(&str, &str)]) -> &Self {
        let mut c = cluster(name, ClusterStatus::Active, tags);
        c.vpc_id = Some("vpc-1".to_string());
        self.add_cluster(c)
    }

    /// Sets a cluster's status.
    pub fn set_status(&self, name: &str, status: ClusterStatus) {
        if let Some(c) = lock(&self.state).clusters.get_mut(name) {
            c.status = status;
        }
    }

    /// Deletes a cluster.
    pub fn remove_cluster(&self, name: &str) {
        let mut s = lock(&self.state);
        s.clusters.remove(name);
        s.node_groups.remove(name);
    }

    /// The cluster stays in the tagging API's answer but DescribeCluster no longer finds it (deleted between
    /// the two calls).
    pub fn vanish_on_describe(&self, name: &str) {
        lock(&self.state).vanishing.insert(name.to_string());
    }

    /// The tagging API does not know the cluster yet (eventually consistent); DescribeCluster does.
    pub fn lag_in_tag_search(&self, name: &str) {
        lock(&self.state).lagging.insert(name.to_string());
    }

    /// The Auto Scaling groups of the cluster's managed node groups.
    pub fn set_node_group_asgs(&self, cluster: &str, asgs: &[&str]) {
        lock(&self.state).node_groups.insert(
            cluster.to_string(),
            asgs.iter().map(|a| (*a).to_string()).collect(),
        );
    }

    /// The cluster's EC2 instances (as DescribeInstances finds them by the cluster's tags).
    pub fn set_instances(&self, cluster: &str, ids: &[&str]) {
        lock(&self.state).instances.insert(
            cluster.to_string(),
            ids.iter().map(|i| (*i).to_string()).collect(),
        );
    }

    /// The access entries made: (cluster, principal) → (policy ARN, namespaces).
    pub fn access_entries(&self) -> BTreeMap<(String, String), (String, Vec<String>)> {
        lock(&self.state).access_entries.clone()
    }

    /// A cluster as stored.
    pub fn get(&self, name: &str) -> Option<Cluster> {
        lock(&self.state).clusters.get(name).cloned()
    }

    /// The cluster names, sorted.
    pub fn cluster_names(&self) -> Vec<String> {
        lock(&self.state).clusters.keys().cloned().collect()
    }
}

impl ClusterPort for FakeEks {
    async fn find_clusters(&self, tags: &BTreeMap<String, String>) -> Result<Vec<String>> {
        self.meter.enter("find_clusters")?;
        let s = lock(&self.state);
        let names: Vec<String> = s
            .clusters
            .values()
            .filter(|c| !s.lagging.contains(&c.name))
            .filter(|c| tags.iter().all(|(k, v)| c.tags.get(k) == Some(v)))
            .map(|c| c.name.clone())
            .collect();
        Ok(names)
    }

    async fn find_clusters_any(
        &self,
        key: &str,
        values: &[String],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>> {
        self.meter.enter("find_clusters_any")?;
        let s = lock(&self.state);
        let found: Vec<(String, BTreeMap<String, String>)> = s
            .clusters
            .values()
            .filter(|c| !s.lagging.contains(&c.name))
            .filter(|c| c.tags.get(key).is_some_and(|v| values.contains(v)))
            .map(|c| (c.name.clone(), c.tags.clone()))
            .collect();
        Ok(found)
    }

    async fn describe_cluster(&self, name: &str) -> Result<Option<Cluster>> {
        self.meter.enter("describe_cluster")?;
        let s = lock(&self.state);
        if s.vanishing.contains(name) {
            return Ok(None);
        }
        Ok(s.clusters.get(name).cloned())
    }

    async fn tag_cluster(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.meter.enter("tag_cluster")?;
        let mut s = lock(&self.state);
        let name = okra_core::arn::eks_cluster_name(arn).unwrap_or_default();
        let c = s.clusters.get_mut(name).ok_or_else(|| {
            OkraError::from_code(
                "ResourceNotFoundException".into(),
                format!("No cluster found for arn: {arn}."),
            )
        })?;
        c.tags.extend(tags.clone());
        Ok(())
    }

    async fn untag_cluster(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.meter.enter("untag_cluster")?;
        let mut s = lock(&self.state);
        let name = okra_core::arn::eks_cluster_name(arn).unwrap_or_default();
        if let Some(c) = s.clusters.get_mut(name) {
            for k in keys {
                c.tags.remove(k);
            }
        }
        Ok(())
    }

    async fn ensure_access_entry(
        &self,
        cluster: &str,
        principal: &str,
        policy_arn: &str,
        namespaces: &[String],
    ) -> Result<()> {
        self.meter.enter("ensure_access_entry")?;
        let mut s = lock(&self.state);
        if !s.clusters.contains_key(cluster) {
            return Err(OkraError::from_code(
                "ResourceNotFoundException".into(),
                format!("No cluster found for name: {cluster}."),
            ));
        }
        s.access_entries.insert(
            (cluster.to_string(), principal.to_string()),
            (policy_arn.to_string(), namespaces.to_vec()),
        );
        Ok(())
    }

    async fn node_group_asgs(&self, cluster: &str) -> Result<Vec<String>> {
        self.meter.enter("node_group_asgs")?;
        let s = lock(&self.state);
        if !s.clusters.contains_key(cluster) {
            return Err(OkraError::from_code(
                "ResourceNotFoundException".into(),
                format!("No cluster found for name: {cluster}."),
            ));
        }
        let mut asgs = s.node_groups.get(cluster).cloned().unwrap_or_default();
        asgs.sort();
        asgs.dedup();
        Ok(asgs)
    }

    async fn cluster_instances(
        &self,
        cluster: &str,
    ) -> Result<Vec<okra_core::nodes::NodeInstance>> {
        self.meter.enter("cluster_instances")?;
        // One query per tag convention.
        let s = lock(&self.state);
        let ids: BTreeSet<&String> = s.instances.get(cluster).into_iter().flatten().collect();
        Ok(ids
            .into_iter()
            .map(|id| okra_core::nodes::NodeInstance {
                id: id.clone(),
                security_groups: vec![],
                zone: None,
            })
            .collect())
    }
}

impl crate::ports::AccessEntryPort for FakeEks {
    async fn access_entry(
        &self,
        cluster: &str,
        principal: &str,
    ) -> Result<Option<okra_core::doctor::AccessEntryFacts>> {
        use okra_core::doctor::{AccessEntryFacts, AccessPolicyFacts, AccessScope};
        self.meter.enter("access_entry")?;
        let s = lock(&self.state);
        if !s.clusters.contains_key(cluster) {
            return Err(OkraError::from_code(
                "ResourceNotFoundException".into(),
                format!("No cluster found for name: {cluster}."),
            ));
        }
        // The stored map holds one policy per entry, on `namespaces` (none: the cluster).
        Ok(s.access_entries
            .get(&(cluster.to_string(), principal.to_string()))
            .map(|(policy, namespaces)| AccessEntryFacts {
                kubernetes_groups: vec![],
                policies: vec![AccessPolicyFacts {
                    policy_arn: policy.clone(),
                    scope: if namespaces.is_empty() {
                        AccessScope::Cluster
                    } else {
                        AccessScope::Namespaces(namespaces.clone())
                    },
                }],
            }))
    }
}
