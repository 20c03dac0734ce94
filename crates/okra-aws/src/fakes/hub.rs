//! A hub's Kubernetes API in memory: secrets by namespace, as okra writes and reads them.

use super::*;
use crate::ports::{Hub, HubPort};
use okra_core::argocd::{ClusterSecret, StoredSecret};

/// The hub's secrets in memory (any hub: one store).
#[derive(Debug, Default)]
pub struct FakeHub {
    secrets: Mutex<BTreeMap<(String, String), StoredSecret>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeHub {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// The secrets of a namespace, by name.
    pub fn secrets(&self, namespace: &str) -> BTreeMap<String, StoredSecret> {
        lock(&self.secrets)
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((_, n), s)| (n.clone(), s.clone()))
            .collect()
    }

    /// Puts a secret as someone else wrote it.
    pub fn put(&self, namespace: &str, secret: StoredSecret) {
        lock(&self.secrets).insert((namespace.to_string(), secret.name.clone()), secret);
    }
}

/// Whether `labels` match a selector of `k=v` pairs joined by commas.
fn matches(labels: &BTreeMap<String, String>, selector: &str) -> bool {
    selector
        .split(',')
        .filter(|p| !p.is_empty())
        .all(|p| match p.split_once('=') {
            Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
            None => labels.contains_key(p),
        })
}

impl HubPort for FakeHub {
    async fn list_secrets(
        &self,
        _hub: &Hub,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<StoredSecret>> {
        self.meter.enter("list_secrets")?;
        Ok(self
            .secrets(namespace)
            .into_values()
            .filter(|s| matches(&s.labels, selector))
            .collect())
    }

    async fn apply_secret(&self, _hub: &Hub, secret: &ClusterSecret) -> Result<()> {
        self.meter.enter("apply_secret")?;
        let mut m = lock(&self.secrets);
        let key = (secret.namespace.clone(), secret.name.clone());
        let s = m.entry(key).or_insert_with(|| StoredSecret {
            name: secret.name.clone(),
            ..StoredSecret::default()
        });
        s.labels.extend(secret.labels.clone());
        s.annotations.extend(secret.annotations.clone());
        s.data = secret.string_data.clone();
        Ok(())
    }

    async fn delete_secret(&self, _hub: &Hub, namespace: &str, name: &str) -> Result<bool> {
        self.meter.enter("delete_secret")?;
        Ok(lock(&self.secrets)
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some())
    }

    async fn read_namespace(&self, _hub: &Hub, _namespace: &str) -> Result<()> {
        self.meter.enter("read_namespace")?;
        Ok(())
    }
}
