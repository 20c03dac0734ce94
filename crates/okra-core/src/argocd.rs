//! Argo CD registration: okra's ClusterSet, without a controller. For each cluster of a cell that
//! is ACTIVE and carries a version, okra writes an Argo CD cluster secret in the hub (the cell's
//! `argocd.hub`), labelled with the cell and the version, so that an ApplicationSet's cluster
//! generator can deploy onto "the clusters of cell web at version 1.2.0" before any traffic moves
//! to them. A cluster that is deleted, leaves the cell or is retired has its secret removed; a
//! secret okra did not write (no `app.kubernetes.io/managed-by: okra`) is never touched.
//!
//! The secret follows Argo CD's declarative set-up ("Clusters": `argocd.argoproj.io/secret-type:
//! cluster`, `name`, `server`, `project`, `config` with `awsAuthConfig {clusterName, roleARN}` and
//! `tlsClientConfig.caData`) for a self-managed Argo CD, and the EKS user guide's "Register target
//! clusters" for the EKS capability for Argo CD (`server` is the cluster's ARN, no `config`).
//!
//! Everything here is pure: [`desired`] says which secrets should exist, [`changes`] compares them
//! with what the hub holds.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Cluster, TAG_RETIRED};
use crate::spec::{ArgoCd, ArgoCdMode};

/// The label that makes a secret an Argo CD cluster.
pub const LABEL_SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";
/// [`LABEL_SECRET_TYPE`]'s value.
pub const SECRET_TYPE_CLUSTER: &str = "cluster";
/// The label that says who manages a secret (Kubernetes' recommended labels).
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// [`LABEL_MANAGED_BY`]'s value on okra's secrets.
pub const MANAGED_BY: &str = "okra";
/// The label with the cell's name.
pub const LABEL_CELL: &str = "okra.io/cell";
/// The label with the cluster's version (as a label value: [`label_value`]).
pub const LABEL_VERSION: &str = "okra.io/version";
/// The annotation with the cluster's name (names may be longer than a label value).
pub const ANNOTATION_CLUSTER: &str = "okra.io/cluster";
/// The annotation with the cluster's version as tagged.
pub const ANNOTATION_VERSION: &str = "okra.io/version";
/// The field manager of okra's server-side applies.
pub const FIELD_MANAGER: &str = "okra";
/// Kubernetes' limit on a label value.
pub const MAX_LABEL_VALUE: usize = 63;
/// Kubernetes' limit on an object name (a DNS subdomain).
pub const MAX_OBJECT_NAME: usize = 253;

/// A cluster secret as okra writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecret {
    /// The secret's name ([`secret_name`]).
    pub name: String,
    /// The hub's Argo CD namespace.
    pub namespace: String,
    /// Its labels (okra's and the spec's).
    pub labels: BTreeMap<String, String>,
    /// Its annotations (okra's and the spec's).
    pub annotations: BTreeMap<String, String>,
    /// `name`, `server`, `project` and, self-managed, `config`.
    pub string_data: BTreeMap<String, String>,
}

impl ClusterSecret {
    /// The cluster it registers.
    pub fn cluster(&self) -> Option<&str> {
        self.annotations.get(ANNOTATION_CLUSTER).map(String::as_str)
    }

    /// The Secret object (`apiVersion: v1`, `kind: Secret`, `type: Opaque`, `stringData`), as a
    /// server-side apply sends it.
    pub fn manifest(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "annotations": self.annotations,
            },
            "type": "Opaque",
            "stringData": self.string_data,
        })
    }
}

/// A secret as read back from the hub, its data decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSecret {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its data, decoded (values that are not UTF-8 are left out).
    pub data: BTreeMap<String, String>,
}

impl StoredSecret {
    /// Whether okra wrote it.
    pub fn okras(&self) -> bool {
        self.labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
    }

    /// The cluster it registers, by okra's annotation (else its `name` field).
    pub fn cluster(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_CLUSTER)
            .or_else(|| self.data.get("name"))
            .map(String::as_str)
    }

    /// Whether it already holds everything `want` sets (extra labels someone else added are
    /// left alone).
    pub fn holds(&self, want: &ClusterSecret) -> bool {
        let sub = |have: &BTreeMap<String, String>, want: &BTreeMap<String, String>| {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        };
        sub(&self.labels, &want.labels)
            && sub(&self.annotations, &want.annotations)
            && self.data == want.string_data
    }
}

/// The label selector of a cell's secrets okra wrote.
pub fn selector(cell: &str) -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_CELL}={cell}")
}

/// The secret's name for a cluster of a cell: `okra-CELL-CLUSTER` as a DNS subdomain (lower
/// case; characters EKS allows in a cluster name but Kubernetes does not in a name become `-`),
/// with 8 hex digits of a hash of both when anything had to change, so two clusters never share
/// a name.
///
/// ```
/// assert_eq!(okra_core::argocd::secret_name("web", "web-1"), "okra-web-web-1");
/// assert!(okra_core::argocd::secret_name("web", "Web_1").starts_with("okra-web-web-1-"));
/// ```
pub fn secret_name(cell: &str, cluster: &str) -> String {
    let raw = format!("okra-{cell}-{cluster}");
    let clean: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean == raw && raw.len() <= MAX_OBJECT_NAME && !raw.ends_with(['-', '.']) {
        return raw;
    }
    let hash = crate::naming::fnv1a(format!("{cell}/{cluster}").as_bytes());
    let mut prefix: String = clean.chars().take(MAX_OBJECT_NAME - 9).collect();
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    format!("{prefix}-{hash:08x}")
}

/// A version as a label value: at most 63 characters of `A-Za-z0-9-_.`, starting and ending
/// with an alphanumeric (a semver's `+build` becomes `_build`).
///
/// ```
/// assert_eq!(okra_core::argocd::label_value("1.2.0+build.5"), "1.2.0_build.5");
/// ```
pub fn label_value(v: &str) -> String {
    let mut out: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LABEL_VALUE)
        .collect();
    while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.pop();
    }
    while out.starts_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.remove(0);
    }
    out
}

fn dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A namespace name: a DNS label (RFC 1123), at most 63 characters of `a-z`, `0-9` and `-`,
/// starting and ending with an alphanumeric (Kubernetes, "Object Names and IDs").
///
/// # Errors
///
/// Why not, in words.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if dns_label(ns, 63) {
        Ok(())
    } else {
        Err(format!(
            "`{ns}` is not a namespace name: 1-63 characters of a-z, 0-9 and -, starting and \
             ending with a letter or digit"
        ))
    }
}

/// A label (or annotation) key: an optional DNS subdomain prefix and `/`, then a name of at most
/// 63 characters of alphanumerics, `-`, `_` and `.`, starting and ending with an alphanumeric
/// (Kubernetes, "Labels and Selectors").
///
/// # Errors
///
/// Why not, in words.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.len() > MAX_OBJECT_NAME || !p.split('.').all(|l| dns_label(l, 63)))
    {
        return Err(format!(
            "the prefix of `{key}` is not a DNS subdomain (lower-case labels joined by dots, \
             at most 253 characters)"
        ));
    }
    if name.is_empty() || check_label_value(name).is_err() {
        return Err(format!(
            "`{key}` is not a label key: a name of 1-63 characters of a-z, A-Z, 0-9, -, _ and ., \
             starting and ending with a letter or digit, after an optional DNS prefix and /"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of alphanumerics, `-`, `_` and `.`, starting
/// and ending with an alphanumeric.
///
/// # Errors
///
/// Why not, in words.
pub fn check_label_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= MAX_LABEL_VALUE
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{v}` is not a label value: at most 63 characters of a-z, A-Z, 0-9, -, _ and ., \
             starting and ending with a letter or digit"
        ))
    }
}

/// Why a cluster of the cell has no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unregistered {
    /// The cluster.
    pub cluster: String,
    /// Why, in words.
    pub reason: String,
}

/// The secrets that should exist for `clusters` (the cell's, as discovered), and why the others
/// have none. A cluster is registered when it serves (ACTIVE or UPDATING), has an endpoint (or,
/// for the EKS capability, an ARN), carries a version in `version_tag`, and is not retired
/// (tagged [`TAG_RETIRED`]) unless one of its target groups serves again (`serving` names such
/// clusters).
pub fn desired(
    cell: &str,
    spec: &ArgoCd,
    version_tag: &str,
    clusters: &[Cluster],
    serving: &BTreeSet<&str>,
) -> (Vec<ClusterSecret>, Vec<Unregistered>) {
    let mut want = Vec::new();
    let mut not = Vec::new();
    for c in clusters {
        let skip = |why: String| Unregistered {
            cluster: c.name.clone(),
            reason: why,
        };
        if !c.status.serves() {
            not.push(skip(format!("{:?}", c.status).to_uppercase()));
            continue;
        }
        let Some(raw) = c.tags.get(version_tag) else {
            not.push(skip(format!("no {version_tag} tag")));
            continue;
        };
        if crate::versions::parse_version(raw).is_err() {
            not.push(skip(format!("{version_tag} = {raw} is not semver")));
            continue;
        }
        if c.tags.contains_key(TAG_RETIRED) && !serving.contains(c.name.as_str()) {
            not.push(skip("retired".to_string()));
            continue;
        }
        let Some(access) = &c.access else {
            not.push(skip("DescribeCluster gave no ARN".to_string()));
            continue;
        };
        let version = crate::versions::canonical(raw);
        let mut data = BTreeMap::from([
            ("name".to_string(), c.name.clone()),
            ("project".to_string(), spec.project.clone()),
        ]);
        match spec.mode {
            ArgoCdMode::EksCapability => {
                data.insert("server".into(), access.arn.clone());
            }
            ArgoCdMode::SelfManaged => {
                let (Some(endpoint), Some(ca)) = (&access.endpoint, &access.ca_data) else {
                    not.push(skip("no API endpoint or CA yet".to_string()));
                    continue;
                };
                data.insert("server".into(), endpoint.clone());
                let mut aws = serde_json::json!({"clusterName": c.name});
                if let Some(role) = &spec.role_arn {
                    aws["roleARN"] = serde_json::json!(role);
                }
                let config = serde_json::json!({
                    "awsAuthConfig": aws,
                    "tlsClientConfig": {"insecure": false, "caData": ca},
                });
                data.insert("config".into(), config.to_string());
            }
        }
        let mut labels = spec.labels.clone();
        labels.extend([
            (
                LABEL_SECRET_TYPE.to_string(),
                SECRET_TYPE_CLUSTER.to_string(),
            ),
            (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
            (LABEL_CELL.to_string(), cell.to_string()),
            (LABEL_VERSION.to_string(), label_value(&version)),
        ]);
        let mut annotations = spec.annotations.clone();
        annotations.extend([
            (ANNOTATION_CLUSTER.to_string(), c.name.clone()),
            (ANNOTATION_VERSION.to_string(), version),
        ]);
        want.push(ClusterSecret {
            name: secret_name(cell, &c.name),
            namespace: spec.namespace.clone(),
            labels,
            annotations,
            string_data: data,
        });
    }
    want.sort_by(|a, b| a.name.cmp(&b.name));
    (want, not)
}

/// One write to the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create or update this secret (server-side apply).
    Apply(ClusterSecret),
    /// Delete okra's secret `name` (its cluster is gone, left the cell, or was retired).
    Delete {
        /// The secret's name.
        name: String,
        /// The cluster it registered.
        cluster: String,
    },
}

/// The writes that bring `stored` (the hub's secrets of the cell, [`selector`]) to `desired`:
/// an apply for each secret missing or different, a delete for each of okra's secrets no longer
/// desired. A secret okra did not write is never in the result.
pub fn changes(desired: &[ClusterSecret], stored: &[StoredSecret]) -> Vec<Change> {
    let by_name: BTreeMap<&str, &StoredSecret> =
        stored.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut out = Vec::new();
    for want in desired {
        match by_name.get(want.name.as_str()) {
            Some(have) if have.holds(want) => {}
            Some(have) if !have.okras() => {}
            _ => out.push(Change::Apply(want.clone())),
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|w| w.name.as_str()).collect();
    for have in stored {
        if have.okras() && !wanted.contains(have.name.as_str()) {
            out.push(Change::Delete {
                name: have.name.clone(),
                cluster: have.cluster().unwrap_or(&have.name).to_string(),
            });
        }
    }
    out
}

/// The full ARN of an EKS access policy named by its name or ARN.
pub fn access_policy_arn(partition: &str, policy: &str) -> String {
    if policy.starts_with("arn:") {
        policy.to_string()
    } else {
        format!("arn:{partition}:eks::aws:cluster-access-policy/{policy}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterAccess, ClusterStatus};

    fn cluster(name: &str, version: Option<&str>, status: ClusterStatus) -> Cluster {
        let mut tags = BTreeMap::from([("app".to_string(), "web".to_string())]);
        if let Some(v) = version {
            tags.insert("okra.io/version".into(), v.into());
        }
        Cluster {
            name: name.into(),
            status,
            tags,
            vpc_id: None,
            access: Some(ClusterAccess {
                arn: format!("arn:aws:eks:us-east-1:123456789012:cluster/{name}"),
                endpoint: Some(format!("https://{name}.eks.example")),
                ca_data: Some("Q0E=".into()),
            }),
        }
    }

    fn spec(mode: ArgoCdMode) -> ArgoCd {
        ArgoCd {
            hub: "hub".into(),
            mode,
            namespace: "argocd".into(),
            project: "apps".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/argocd".into()),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            annotations: BTreeMap::new(),
            access_entry: None,
        }
    }

    #[test]
    fn a_self_managed_secret_has_the_endpoint_aws_auth_and_ca() {
        let cs = [cluster("web-1", Some("v1.2.0"), ClusterStatus::Active)];
        let (want, not) = desired(
            "web",
            &spec(ArgoCdMode::SelfManaged),
            "okra.io/version",
            &cs,
            &BTreeSet::new(),
        );
        assert!(not.is_empty());
        let s = &want[0];
        assert_eq!(s.name, "okra-web-web-1");
        assert_eq!(s.labels[LABEL_SECRET_TYPE], "cluster");
        assert_eq!(s.labels[LABEL_VERSION], "1.2.0");
        assert_eq!(s.labels["env"], "prod");
        assert_eq!(s.string_data["server"], "https://web-1.eks.example");
        assert_eq!(s.string_data["project"], "apps");
        let config: serde_json::Value = serde_json::from_str(&s.string_data["config"]).unwrap();
        assert_eq!(config["awsAuthConfig"]["clusterName"], "web-1");
        assert_eq!(
            config["awsAuthConfig"]["roleARN"],
            "arn:aws:iam::123456789012:role/argocd"
        );
        assert_eq!(config["tlsClientConfig"]["caData"], "Q0E=");
        assert_eq!(s.manifest()["kind"], "Secret");
    }

    #[test]
    fn the_eks_capability_gets_the_cluster_arn() {
        let cs = [cluster("web-1", Some("1.2.0"), ClusterStatus::Active)];
        let (want, _) = desired(
            "web",
            &spec(ArgoCdMode::EksCapability),
            "okra.io/version",
            &cs,
            &BTreeSet::new(),
        );
        assert_eq!(
            want[0].string_data["server"],
            "arn:aws:eks:us-east-1:123456789012:cluster/web-1"
        );
        assert!(!want[0].string_data.contains_key("config"));
    }

    #[test]
    fn creating_unversioned_and_retired_clusters_are_not_registered() {
        let mut retired = cluster("old", Some("1.0.0"), ClusterStatus::Active);
        retired
            .tags
            .insert(TAG_RETIRED.into(), "2026-01-01T00:00:00Z".into());
        let cs = [
            cluster("new", Some("1.2.0"), ClusterStatus::Creating),
            cluster("bare", None, ClusterStatus::Active),
            cluster("odd", Some("latest"), ClusterStatus::Active),
            retired.clone(),
        ];
        let s = spec(ArgoCdMode::SelfManaged);
        let (want, not) = desired("web", &s, "okra.io/version", &cs, &BTreeSet::new());
        assert!(want.is_empty());
        assert_eq!(not.len(), 4);
        // A retired cluster that serves again (a pin-back) is registered again.
        let (want, _) = desired(
            "web",
            &s,
            "okra.io/version",
            &[retired],
            &BTreeSet::from(["old"]),
        );
        assert_eq!(want.len(), 1);
    }

    #[test]
    fn changes_apply_what_differs_and_delete_only_okras_leftovers() {
        let cs = [
            cluster("a", Some("1.0.0"), ClusterStatus::Active),
            cluster("b", Some("1.1.0"), ClusterStatus::Active),
        ];
        let (want, _) = desired(
            "web",
            &spec(ArgoCdMode::SelfManaged),
            "okra.io/version",
            &cs,
            &BTreeSet::new(),
        );
        let stored_of = |s: &ClusterSecret| StoredSecret {
            name: s.name.clone(),
            labels: s.labels.clone(),
            annotations: s.annotations.clone(),
            data: s.string_data.clone(),
        };
        let mut a = stored_of(&want[0]);
        a.labels.insert("added-by-someone".into(), "x".into());
        let mut b = stored_of(&want[1]);
        b.labels.insert(LABEL_VERSION.into(), "1.0.0".into());
        let gone = StoredSecret {
            name: "okra-web-gone".into(),
            labels: BTreeMap::from([(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string())]),
            annotations: BTreeMap::from([(ANNOTATION_CLUSTER.to_string(), "gone".to_string())]),
            data: BTreeMap::new(),
        };
        let foreign = StoredSecret {
            name: "someone-elses".into(),
            ..StoredSecret::default()
        };
        let out = changes(&want, &[a, b, gone, foreign]);
        assert_eq!(
            out,
            vec![
                Change::Apply(want[1].clone()),
                Change::Delete {
                    name: "okra-web-gone".into(),
                    cluster: "gone".into()
                }
            ]
        );
    }

    #[test]
    fn names_and_label_values_follow_kubernetes_rules() {
        let n = secret_name("web", "My_Cluster");
        assert!(n.starts_with("okra-web-my-cluster-"), "{n}");
        assert_ne!(secret_name("web", "a_b"), secret_name("web", "a-b"));
        let long = "x".repeat(300);
        assert!(secret_name("web", &long).len() <= MAX_OBJECT_NAME);
        assert_eq!(label_value(&"9".repeat(80)).len(), MAX_LABEL_VALUE);
        assert_eq!(label_value("2.0.0-rc.1"), "2.0.0-rc.1");
        assert_eq!(
            access_policy_arn("aws", "AmazonEKSClusterAdminPolicy"),
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        );
    }
}
