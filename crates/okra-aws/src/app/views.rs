//! What people read of a cell besides its records: the listener's weights by version, a
//! rollout's analysis samples, the cell's clusters and target groups. Read only; the API serves
//! them to viewers (`GET` routes), so nobody needs ELB, EKS or Step Functions rights to see them.

use std::collections::{BTreeMap, BTreeSet};

use okra_core::model::CurrentAction;
use okra_core::vocab::Phase;
use serde_json::Value;

use super::*;

/// One version's share of the listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionWeight {
    /// The version (`?` for target groups okra did not make).
    pub version: String,
    /// Its percentage of the listener's traffic.
    pub percent: u32,
    /// Its target groups.
    pub target_groups: usize,
}

/// One analysis sample (a check-metrics result in the execution's history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Epoch milliseconds.
    pub at_ms: i64,
    /// The step index.
    #[serde(default)]
    pub step: Option<u64>,
    /// The verdict (`error` when the sample's phase does not read).
    pub phase: Phase,
    /// Why, in one line.
    pub reason: String,
    /// Each metric's newest value.
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
}

/// A cluster of the cell (`GET /cells/{cell}/clusters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRow {
    /// The EKS cluster.
    pub name: String,
    /// `ACTIVE`, `CREATING`, ...
    pub status: String,
    /// Its version tag's value.
    #[serde(default)]
    pub version: Option<String>,
    /// Its VPC.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// Its Argo CD registration, for a cell with `argocd`: the secret okra keeps for it in the
    /// hub, or why it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCdRow>,
    /// When okra tagged it retired (`okra.io/retired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

/// A cluster's Argo CD registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgoCdRow {
    /// The hub.
    pub hub: String,
    /// The secret's name (`namespace/name`) when okra keeps one for the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Why it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The cell's clusters, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterList {
    /// The cell.
    pub cell: String,
    /// By name.
    pub clusters: Vec<ClusterRow>,
}

/// A target group of the cell (`GET /cells/{cell}/target-groups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupRow {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The version it serves.
    pub version: String,
    /// Its cluster.
    pub cluster: String,
    /// Its percentage of the listener's traffic.
    pub weight: u32,
    /// Healthy targets.
    pub healthy: u32,
    /// Registered targets.
    pub total: u32,
    /// Its retirement ([`okra_core::retire`]): `serving`, `kept`, `pending`, `baking` (with
    /// `retiresAt`), `retire` (at the next reconcile), `foreign` (okra did not make it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement: Option<String>,
    /// When a baking group retires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<String>,
}

/// The cell's target groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupList {
    /// The cell.
    pub cell: String,
    /// As found.
    pub target_groups: Vec<TargetGroupRow>,
}

impl<S, X, C, L, D> Okra<'_, S, X, C, L, D>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    /// The listener's weights by version, oldest version first.
    pub async fn weights(&self, spec: &CellSpec) -> AppResult<Vec<VersionWeight>> {
        let Some((_, listener)) = spec.ingress.listener() else {
            return Ok(Vec::new());
        };
        let owned = self
            .elb
            .read_action(listener, spec.ingress.rule_arn())
            .await?;
        let CurrentAction::Forward(fa) = owned.action else {
            return Ok(Vec::new());
        };
        let arns: Vec<String> = fa
            .targets
            .iter()
            .map(|t| t.target_group_arn.clone())
            .collect();
        let groups = self.elb.find_target_groups(&spec.name, &arns).await?;
        let total: u32 = fa.targets.iter().map(|t| t.weight).sum();
        let mut by_version: BTreeMap<String, (u32, usize)> = BTreeMap::new();
        for t in &fa.targets {
            let version = groups
                .iter()
                .find(|g| g.arn == t.target_group_arn)
                .map_or_else(|| "?".to_owned(), |g| g.version.clone());
            let e = by_version.entry(version).or_default();
            e.0 += t.weight;
            e.1 += 1;
        }
        let mut out: Vec<VersionWeight> = by_version
            .into_iter()
            .map(|(version, (w, n))| VersionWeight {
                version,
                percent: (w * 100 + total / 2).checked_div(total).unwrap_or(0),
                target_groups: n,
            })
            .collect();
        out.sort_by_key(|a| version_key(&a.version));
        Ok(out)
    }

    /// The analysis samples of rollout `id`, oldest first: the outputs of its
    /// [`okra_core::vocab::states::CHECK_METRICS`] state.
    pub async fn samples(&self, id: &str) -> AppResult<Vec<Sample>> {
        let outputs = self
            .executions
            .state_outputs(id, okra_core::vocab::states::CHECK_METRICS)
            .await?;
        Ok(outputs
            .into_iter()
            .map(|o| sample(o.at_ms, &o.output))
            .collect())
    }

    /// The clusters the cell's selector finds, by name.
    pub async fn clusters(&self, cell: &str) -> AppResult<ClusterList> {
        let spec = self.stored(cell).await?.spec;
        let mut found = Vec::new();
        for name in self
            .eks
            .find_clusters(&spec.cluster_selector.match_tags)
            .await?
        {
            if let Some(c) = self.eks.describe_cluster(&name).await?
                && spec.cluster_selector.matches(&c.tags)
            {
                found.push(c);
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        // What okra keeps in the hub for each cluster (the dispatcher writes it at every
        // reconcile): the core's registration rule, over the clusters as they are now.
        let registration = spec.argocd.as_ref().map(|argo| {
            let serving = BTreeSet::new();
            let (want, not) =
                okra_core::argocd::desired(&spec.name, argo, &spec.version_tag, &found, &serving);
            (argo, want, not)
        });
        let argocd_of = |name: &str| {
            let (argo, want, not) = registration.as_ref()?;
            Some(ArgoCdRow {
                hub: argo.hub.clone(),
                secret: want
                    .iter()
                    .find(|w| w.cluster() == Some(name))
                    .map(|w| format!("{}/{}", w.namespace, w.name)),
                reason: not
                    .iter()
                    .find(|n| n.cluster == name)
                    .map(|n| n.reason.clone()),
            })
        };
        Ok(ClusterList {
            cell: cell.to_owned(),
            clusters: found
                .iter()
                .map(|c| ClusterRow {
                    status: format!("{:?}", c.status).to_uppercase(),
                    version: c.tags.get(&spec.version_tag).cloned(),
                    name: c.name.clone(),
                    vpc_id: c.vpc_id.clone(),
                    argocd: argocd_of(&c.name),
                    retired: c.tags.get(okra_core::model::TAG_RETIRED).cloned(),
                })
                .collect(),
        })
    }

    /// The cell's target groups: version, cluster, weight in the listener, target health.
    pub async fn target_groups(&self, cell: &str) -> AppResult<TargetGroupList> {
        let spec = self.stored(cell).await?.spec;
        let mut weights = BTreeMap::new();
        if let Some((_, listener)) = spec.ingress.listener() {
            let owned = self
                .elb
                .read_action(listener, spec.ingress.rule_arn())
                .await?;
            if let CurrentAction::Forward(fa) = owned.action {
                let total: u32 = fa.targets.iter().map(|t| t.weight).sum::<u32>().max(1);
                for t in fa.targets {
                    weights.insert(t.target_group_arn, t.weight * 100 / total);
                }
            }
        }
        let arns: Vec<String> = weights.keys().cloned().collect();
        let groups = self.elb.find_target_groups(cell, &arns).await?;
        let plan = self.retirement(&spec, &groups).await?;
        let mut rows = Vec::new();
        for g in groups {
            let health = self.elb.target_health(&g.arn).await?;
            let fate = plan
                .as_ref()
                .and_then(|p| p.groups.iter().find(|x| x.group.arn == g.arn))
                .map(|x| x.fate);
            rows.push(TargetGroupRow {
                weight: weights.get(&g.arn).copied().unwrap_or(0),
                healthy: health.healthy,
                total: health.total,
                retirement: fate.map(|f| f.name().to_owned()),
                retires_at: match fate {
                    Some(okra_core::retire::Fate::Baking { until }) => Some(
                        humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(until),
                        )
                        .to_string(),
                    ),
                    _ => None,
                },
                name: g.name,
                arn: g.arn,
                version: g.version,
                cluster: g.cluster,
            });
        }
        Ok(TargetGroupList {
            cell: cell.to_owned(),
            target_groups: rows,
        })
    }
}

impl<S, X, C, L, D> Okra<'_, S, X, C, L, D>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    /// The cell's retirement plan as of now (what the dispatcher's next reconcile would do with
    /// each group); `None` for a spec that does not validate.
    pub(crate) async fn retirement(
        &self,
        spec: &CellSpec,
        groups: &[okra_core::model::TargetGroup],
    ) -> AppResult<Option<okra_core::retire::Plan>> {
        let Ok(cell) = spec.clone().validate() else {
            return Ok(None);
        };
        let Some((_, listener)) = spec.ingress.listener() else {
            return Ok(None);
        };
        let action = self
            .elb
            .read_action(listener, spec.ingress.rule_arn())
            .await?
            .action;
        let (blocks, _) = self.state.blocks_and_failures(&spec.name).await?;
        let blocked: BTreeSet<String> = blocks.into_iter().map(|b| b.version).collect();
        let clusters = crate::handlers::lifecycle::group_clusters(
            self.eks,
            &spec.cluster_selector,
            groups,
            &[],
        )
        .await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Some(okra_core::retire::plan(
            &cell.retire_policy(),
            &okra_core::retire::Observed {
                groups,
                action: &action,
                clusters: &clusters,
                blocked: &blocked,
                now,
            },
        )))
    }
}

/// A check-metrics output as a sample.
fn sample(at_ms: i64, output: &Value) -> Sample {
    let a = &output["analysis"];
    let mut values = BTreeMap::new();
    for m in a["metrics"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or("metric").to_owned();
        if let Some(v) = last_value(m) {
            values.insert(name, v);
        }
    }
    Sample {
        at_ms,
        step: output["step"]["index"].as_u64(),
        phase: serde_json::from_value(a["phase"].clone()).unwrap_or(Phase::Error),
        reason: a["reason"].as_str().unwrap_or_default().to_owned(),
        values,
    }
}

/// A metric result's newest measured value, wherever its shape keeps it.
fn last_value(m: &Value) -> Option<f64> {
    let measurements = m["measurements"].as_array()?;
    let last = measurements.last()?;
    match &last["value"] {
        Value::Number(n) => n.as_f64(),
        Value::Object(o) => o
            .get("value")
            .or_else(|| o.get("scalar"))
            .and_then(Value::as_f64)
            .or_else(|| o.values().find_map(Value::as_f64)),
        Value::Array(a) => a.iter().find_map(Value::as_f64),
        _ => None,
    }
}

/// Sorts versions as semver where they are (`1.2.3`, `v1.2.3`; pre-release ignored), else by
/// text.
fn version_key(v: &str) -> (Option<(u64, u64, u64)>, String) {
    let core = v.strip_prefix('v').unwrap_or(v).split(['-', '+']).next();
    let parsed = core.and_then(|core| {
        let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((it.next()??, it.next()??, it.next()??))
    });
    (parsed, v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sample_reads_its_verdict_and_each_metrics_newest_value() {
        let s = sample(
            7,
            &json!({"step": {"index": 2}, "analysis": {"phase": "failed", "reason": "error-rate",
                "metrics": [{"name": "error-rate", "measurements": [{"value": 1.0}, {"value": 12.0}]},
                            {"name": "p99", "measurements": [{"value": {"scalar": 0.3}}]}]}}),
        );
        assert_eq!(s.step, Some(2));
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(s.values["error-rate"], 12.0);
        assert_eq!(s.values["p99"], 0.3);
        assert_eq!(sample(0, &json!({})).phase, Phase::Error);
    }

    #[test]
    fn reads_the_newest_value_of_a_metric() {
        assert_eq!(
            last_value(&json!({"measurements": [{"value": 1.0}, {"value": 3.5}]})),
            Some(3.5)
        );
        assert_eq!(
            last_value(&json!({"measurements": [{"value": {"value": 2.0}}]})),
            Some(2.0)
        );
        assert_eq!(last_value(&json!({"measurements": []})), None);
    }

    #[test]
    fn versions_sort_as_semver_then_text() {
        let mut v = vec!["1.10.0", "?", "1.9.0", "v1.2.0"];
        v.sort_by_key(|s| version_key(s));
        assert_eq!(v, ["?", "v1.2.0", "1.9.0", "1.10.0"]);
    }
}
