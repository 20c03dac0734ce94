//! An Argo CD hub on the local stack: an EKS cluster in the strict moto whose DescribeCluster
//! answers a strict local Kubernetes API ([`KubeApi`]), authorized as the deployed stack would
//! authorize it: template.yaml's own `ArgoCdHubAccessEntry` (the dispatcher's role, on the Argo CD
//! namespace), plus an administrator of the test's (`HUB_ADMIN_*`, cluster-wide) to read back
//! with `kubectl`.

use std::collections::BTreeMap;

use anyhow::Context as _;

use crate::kube_api::{AccessEntry, AccessPolicy, KubeApi, KubeApiSettings};
use crate::stack::LocalAws;

/// The test administrator's access key on every hub.
pub const HUB_ADMIN_KEY: &str = "AKIDHUBADMIN";
/// Its secret.
pub const HUB_ADMIN_SECRET: &str = "hub-admin-secret";
/// Its principal (AmazonEKSClusterAdminPolicy, cluster-wide).
pub const HUB_ADMIN_ARN: &str = "arn:aws:iam::123456789012:role/hub-admin";
/// The Argo CD namespace of every hub.
pub const HUB_NAMESPACE: &str = "argocd";

impl LocalAws {
    /// Creates the EKS cluster `name` (in `vpc`, tags `tags`), starts its Kubernetes API and
    /// points the cluster's endpoint and CA at it (`POST /_okra/eks/endpoint`).
    ///
    /// # Errors
    ///
    /// The cluster, the template's access entry or the API could not be made.
    pub fn argocd_hub(
        &self,
        name: &str,
        subnets: &[String],
        vpc: &str,
        tags: &BTreeMap<String, String>,
    ) -> anyhow::Result<KubeApi> {
        self.create_eks_cluster(name, subnets, vpc, tags)?;
        let endpoint = self.endpoint().to_string();
        // The role the strict moto gives the dispatcher, as the template's access entry names it.
        let who = ureq::get(&format!("{endpoint}/_okra/iam/principal?caller=dispatcher"))
            .call()
            .context("the dispatcher's principal")?
            .body_mut()
            .read_json::<serde_json::Value>()?;
        let role = who["roleArn"]
            .as_str()
            .context("the dispatcher's role")?
            .to_string();
        let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            &std::fs::read_to_string(self.root().join("template.yaml"))
                .context("reading template.yaml")?,
        )?;
        let refs = BTreeMap::from([
            ("ArgoCdHubCluster".to_string(), name.to_string()),
            ("ArgoCdNamespace".to_string(), HUB_NAMESPACE.to_string()),
            ("DispatcherFunctionRole.Arn".to_string(), role),
            ("AWS::Partition".to_string(), "aws".to_string()),
            ("AWS::Region".to_string(), self.region().to_string()),
            ("AWS::AccountId".to_string(), self.account_id().to_string()),
        ]);
        let mut access_entries = AccessEntry::from_template(&template, &refs)?;
        anyhow::ensure!(
            access_entries.len() == 1,
            "template.yaml has one hub access entry: {access_entries:?}"
        );
        access_entries.push(AccessEntry {
            principal_arn: HUB_ADMIN_ARN.into(),
            policies: vec![AccessPolicy {
                policy_arn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
                    .into(),
                namespaces: None,
            }],
        });
        let (key, secret) = crate::stack::function_credentials();
        let api = KubeApi::start(KubeApiSettings {
            cluster: name.to_string(),
            region: self.region().into(),
            account: self.account_id().into(),
            keys: BTreeMap::from([
                // The functions' credentials under the local Lambda service.
                (
                    key.to_string(),
                    (secret.to_string(), Some(secret.to_string())),
                ),
                (
                    HUB_ADMIN_KEY.to_string(),
                    (HUB_ADMIN_SECRET.to_string(), None),
                ),
            ]),
            principals: BTreeMap::from([(HUB_ADMIN_KEY.to_string(), HUB_ADMIN_ARN.to_string())]),
            iam: Some(endpoint.clone()),
            access_entries,
            namespaces: vec![HUB_NAMESPACE.into(), "default".into(), "kube-system".into()],
        })?;
        ureq::post(&format!("{endpoint}/_okra/eks/endpoint"))
            .send_json(serde_json::json!({
                "account": self.account_id(), "region": self.region(), "name": name,
                "endpoint": api.endpoint(), "caData": api.ca_data(),
            }))
            .context("pointing the hub's DescribeCluster at its API")?;
        Ok(api)
    }
}
