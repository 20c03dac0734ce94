//! The hot-swap lifecycle around a rollout, run by the dispatcher for each cell it reconciles:
//! [`register`] writes the cell's Argo CD cluster secrets in the hub ([`okra_core::argocd`]), and
//! [`retire`] deletes the target groups of versions that no longer serve
//! ([`okra_core::retire`]). Both decide in the core and only carry out here; both are idempotent
//! (a tick that stops half-way is finished by the next).

use std::collections::{BTreeMap, BTreeSet};

use okra_core::argocd::{self, Change, Unregistered};
use okra_core::model::{Cluster, CurrentAction, TAG_IDLE_SINCE, TAG_RETIRED, TargetGroup};
use okra_core::retire::{self, Fate, Reason};
use okra_core::spec::ArgoCd;
use okra_core::vocab::RolloutEventKind;
use serde::{Deserialize, Serialize};

use crate::error::{OkraError, Result};
use crate::ports::{AutoScalingPort, ClusterPort, Hub, HubPort, LoadBalancerPort};
use crate::state::{EventsPort, RolloutEvent};

/// What registration did for a cell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    /// Clusters whose secret was written (created or updated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<String>,
    /// Clusters whose secret was removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Clusters registered and unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<String>,
    /// Clusters of the cell without a secret, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unregistered: Vec<Unregistered>,
}

/// The hub of a cell's `argocd` block: its endpoint and CA, from DescribeCluster.
///
/// # Errors
///
/// The hub cluster is not found, or has no endpoint yet.
pub async fn hub_of<C: ClusterPort>(eks: &C, argo: &ArgoCd) -> Result<(Hub, String)> {
    let c = eks
        .describe_cluster(&argo.hub)
        .await?
        .ok_or_else(|| OkraError::NotFound(format!("argocd.hub: EKS cluster {}", argo.hub)))?;
    let access = c.access.as_ref();
    match (
        access.and_then(|a| a.endpoint.clone()),
        access.and_then(|a| a.ca_data.clone()),
    ) {
        (Some(endpoint), Some(ca_data)) => Ok((
            Hub {
                cluster: c.name.clone(),
                endpoint,
                ca_data,
            },
            access
                .and_then(|a| a.arn.split(':').nth(1))
                .unwrap_or("aws")
                .to_string(),
        )),
        _ => Err(OkraError::InvalidInput(format!(
            "argocd.hub: EKS cluster {} has no API endpoint or certificate authority yet (status {:?})",
            argo.hub, c.status
        ))),
    }
}

/// Brings the hub's secrets of `cell` to what its `clusters` (discovered, the selector applied)
/// call for. A secret whose cluster was not discovered is removed only once DescribeCluster
/// confirms it should be (gone, left the cell, retired): the tagging API may lag, and a cluster
/// secret removed makes an ApplicationSet delete that cluster's applications. A new secret's
/// cluster gets the spec's access entry first.
///
/// # Errors
///
/// The hub cannot be read or written.
pub async fn register<C: ClusterPort, H: HubPort>(
    eks: &C,
    hub_port: &H,
    spec: &okra_core::spec::CellSpec,
    argo: &ArgoCd,
    clusters: &[Cluster],
    serving: &BTreeSet<&str>,
) -> Result<Registered> {
    let (cell, version_tag, selector) = (
        spec.name.as_str(),
        spec.version_tag.as_str(),
        &spec.cluster_selector,
    );
    let (hub, partition) = hub_of(eks, argo).await?;
    let stored = hub_port
        .list_secrets(&hub, &argo.namespace, &argocd::selector(cell))
        .await?;
    let (want, unregistered) = argocd::desired(cell, argo, version_tag, clusters, serving);
    let known: BTreeSet<&str> = stored.iter().map(|s| s.name.as_str()).collect();
    let mut out = Registered {
        unregistered,
        ..Registered::default()
    };
    let changes = argocd::changes(&want, &stored);
    let changed: BTreeSet<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Apply(s) => Some(s.name.clone()),
            Change::Delete { .. } => None,
        })
        .collect();
    for c in changes {
        match c {
            Change::Apply(secret) => {
                let cluster = secret.cluster().unwrap_or_default().to_string();
                if !known.contains(secret.name.as_str())
                    && let Some(entry) = &argo.access_entry
                    && let Some(principal) = entry.principal_arn.as_ref().or(argo.role_arn.as_ref())
                {
                    eks.ensure_access_entry(
                        &cluster,
                        principal,
                        &argocd::access_policy_arn(&partition, &entry.policy),
                        &entry.namespaces,
                    )
                    .await?;
                }
                hub_port.apply_secret(&hub, &secret).await?;
                tracing::info!(cell, cluster, secret = %secret.name, "registered in Argo CD");
                out.applied.push(cluster);
            }
            Change::Delete { name, cluster } => {
                // A cluster discovered (and maybe retired just now) is as given; one the tag
                // search did not return is described.
                let now = match clusters.iter().find(|c| c.name == cluster) {
                    Some(c) => Some(c.clone()),
                    None => eks.describe_cluster(&cluster).await?,
                };
                let still: Vec<Cluster> = now
                    .into_iter()
                    .filter(|c| selector.matches(&c.tags))
                    .collect();
                if !argocd::desired(cell, argo, version_tag, &still, serving)
                    .0
                    .is_empty()
                {
                    tracing::info!(cell, cluster, "kept: the tag search missed it");
                    out.unchanged.push(cluster);
                    continue;
                }
                hub_port.delete_secret(&hub, &argo.namespace, &name).await?;
                tracing::info!(cell, cluster, secret = %name, "removed from Argo CD");
                out.removed.push(cluster);
            }
        }
    }
    out.unchanged.extend(
        want.iter()
            .filter(|w| !changed.contains(&w.name))
            .filter_map(|w| w.cluster().map(str::to_string)),
    );
    out.unchanged.sort();
    Ok(out)
}

/// One group retired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiredGroup {
    /// The group's name.
    pub name: String,
    /// Its cluster.
    pub cluster: String,
    /// Its version.
    pub version: String,
    /// Why.
    pub reason: Reason,
}

/// What retirement did for a cell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retired {
    /// Groups deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredGroup>,
    /// Groups marked idle now (their bake starts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marked: Vec<String>,
    /// Groups baking: name → when they retire (RFC 3339).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baking: BTreeMap<String, String>,
    /// Groups that could not be retired, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Clusters tagged retired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

/// Each group's cluster, as [`retire::Observed::clusters`] takes them: those discovered (in the
/// cell), and the others described (gone: `None`; in the cell when the selector matches).
///
/// # Errors
///
/// A DescribeCluster that fails.
pub async fn group_clusters<C: ClusterPort>(
    eks: &C,
    selector: &okra_core::spec::ClusterSelector,
    groups: &[TargetGroup],
    discovered: &[Cluster],
) -> Result<BTreeMap<String, (Option<Cluster>, bool)>> {
    let mut seen: BTreeMap<String, (Option<Cluster>, bool)> = discovered
        .iter()
        .map(|c| (c.name.clone(), (Some(c.clone()), true)))
        .collect();
    for g in groups {
        if !seen.contains_key(&g.cluster) && !g.cluster.is_empty() {
            let c = eks.describe_cluster(&g.cluster).await?;
            let in_cell = c.as_ref().is_some_and(|c| selector.matches(&c.tags));
            seen.insert(g.cluster.clone(), (c, in_cell));
        }
    }
    Ok(seen)
}

/// What [`retire`] reads.
#[derive(Debug, Clone, Copy)]
pub struct RetireInput<'a> {
    /// The cell.
    pub cell: &'a okra_core::cell::Cell,
    /// The owned action as read.
    pub action: &'a CurrentAction,
    /// The cell's target groups.
    pub groups: &'a [TargetGroup],
    /// The cell's clusters as discovered (the selector applied).
    pub clusters: &'a [Cluster],
    /// The cell's blocked versions.
    pub blocked: &'a BTreeSet<String>,
    /// Now, seconds since the epoch.
    pub now: u64,
}

/// Ports [`retire`] writes through.
#[derive(Debug, Clone, Copy)]
pub struct RetirePorts<'a, C, L, A, E> {
    /// EKS: clusters described and tagged.
    pub eks: &'a C,
    /// ELB: groups marked, taken out of actions, drained, deleted.
    pub elb: &'a L,
    /// Auto Scaling: groups detached from node groups (`registration: nodegroups`).
    pub autoscaling: &'a A,
    /// EventBridge: `Version Retired`.
    pub events: &'a E,
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// Carries out the cell's retirement plan: groups seen idle for the first time are marked, a
/// group serving again is unmarked (and its cluster's retired tag removed), and each group due
/// is taken out of every forward action that names it at weight 0 (never one that sends it
/// traffic), detached from its node groups, drained and deleted, its cluster tagged
/// `okra.io/retired` first. A `Version Retired` event per version follows. The clusters
/// retired are tagged in `clusters` too, so the registration that follows removes their
/// secrets.
///
/// # Errors
///
/// A read fails; a group that cannot be retired is reported in [`Retired::refused`] instead.
pub async fn retire<C, L, A, E>(
    ports: RetirePorts<'_, C, L, A, E>,
    input: RetireInput<'_>,
    clusters: &mut [Cluster],
) -> Result<Retired>
where
    C: ClusterPort,
    L: LoadBalancerPort,
    A: AutoScalingPort,
    E: EventsPort,
{
    let RetirePorts {
        eks,
        elb,
        autoscaling,
        events,
    } = ports;
    let cell = input.cell;
    let policy = cell.retire_policy();
    // Each group's cluster: as discovered, else described (it may have left the cell, or be
    // gone).
    let seen = group_clusters(eks, &cell.cluster_selector, input.groups, input.clusters).await?;
    let plan = retire::plan(
        &policy,
        &retire::Observed {
            groups: input.groups,
            action: input.action,
            clusters: &seen,
            blocked: input.blocked,
            now: input.now,
        },
    );
    let mut out = Retired::default();
    let arn_of = |name: &str| {
        seen.get(name)
            .and_then(|(c, _)| c.as_ref())
            .and_then(|c| c.access.as_ref())
            .map(|a| a.arn.clone())
    };
    for name in &plan.unretire_clusters {
        if let Some(arn) = arn_of(name) {
            eks.untag_cluster(&arn, &[TAG_RETIRED.to_string()]).await?;
        }
    }
    let stamp = rfc3339(input.now);
    for g in &plan.groups {
        if g.unmark {
            elb.untag_target_group(&g.group.arn, &[TAG_IDLE_SINCE.to_string()])
                .await?;
        }
        if g.mark {
            elb.tag_target_group(&g.group.arn, &[(TAG_IDLE_SINCE.to_string(), stamp.clone())])
                .await?;
            out.marked.push(g.group.name.clone());
        }
        if let Fate::Baking { until } = g.fate {
            out.baking.insert(g.group.name.clone(), rfc3339(until));
        }
    }
    // Clusters first: a tick that stops after the delete would never see the group again.
    let retiring: BTreeSet<&str> = plan.retire_clusters.iter().map(String::as_str).collect();
    for name in &retiring {
        let Some(arn) = arn_of(name) else { continue };
        let already = seen
            .get(*name)
            .and_then(|(c, _)| c.as_ref())
            .is_some_and(|c| c.tags.contains_key(TAG_RETIRED));
        if !already {
            eks.tag_cluster(
                &arn,
                &BTreeMap::from([(TAG_RETIRED.to_string(), stamp.clone())]),
            )
            .await?;
        }
        out.clusters.push((*name).to_string());
    }
    for c in clusters.iter_mut() {
        if retiring.contains(c.name.as_str()) {
            c.tags
                .entry(TAG_RETIRED.to_string())
                .or_insert_with(|| stamp.clone());
        }
    }
    let registration = cell.target_group.registration;
    let mut by_version: BTreeMap<String, (Reason, Vec<String>, Vec<String>)> = BTreeMap::new();
    // The listener must still be as discovery read it: a rollout that started since (an event,
    // the API) owns it now, and a group leaving the action would undo its step. ELB has no
    // conditional write, so this narrows the window to one read before each group's writes;
    // the rollout's own read-back catches the rest (DriftDetected).
    let listener = cell.ingress().listener().as_str();
    let rule = cell.ingress().rule().map(|r| r.as_str().to_string());
    for g in plan.retiring() {
        let now = elb.read_action(listener, rule.as_deref()).await?.action;
        if serving_weights(&now) != serving_weights(input.action) {
            out.refused.push(format!(
                "{}: the listener changed since discovery (a rollout may have started); the next \
                 tick retires it",
                g.group.name
            ));
            continue;
        }
        let Fate::Retire { reason } = g.fate else {
            continue;
        };
        let tg = &g.group;
        match retire_group(eks, elb, autoscaling, registration, tg, reason).await {
            Ok(()) => {
                tracing::info!(cell = %cell.name, group = %tg.name, cluster = %tg.cluster,
                    version = %tg.version, ?reason, "target group retired");
                let version = okra_core::versions::canonical(&tg.version);
                let e =
                    by_version
                        .entry(version.clone())
                        .or_insert((reason, Vec::new(), Vec::new()));
                e.1.push(tg.name.clone());
                if retiring.contains(tg.cluster.as_str()) {
                    e.2.push(tg.cluster.clone());
                }
                out.retired.push(RetiredGroup {
                    name: tg.name.clone(),
                    cluster: tg.cluster.clone(),
                    version,
                    reason,
                });
            }
            Err(e) => {
                tracing::warn!(cell = %cell.name, group = %tg.name, error = %e, "not retired");
                out.refused.push(format!("{}: {e}", tg.name));
            }
        }
    }
    let evs: Vec<RolloutEvent> = by_version
        .into_iter()
        .map(|(version, (reason, groups, clusters))| RolloutEvent {
            kind: RolloutEventKind::VersionRetired,
            cell: cell.name.clone(),
            execution: String::new(),
            detail: serde_json::to_value(okra_core::events::RetiredDetail {
                cell: cell.name.clone(),
                version,
                reason: reason.name().to_string(),
                target_groups: groups,
                clusters,
            })
            .unwrap_or_default(),
        })
        .collect();
    if !evs.is_empty()
        && let Err(e) = events.put(&evs).await
    {
        tracing::warn!(cell = %cell.name, error = %e, "Version Retired events not sent");
    }
    Ok(out)
}

/// The groups an action sends traffic to, and their weights (the groups at weight 0 left out:
/// retirement itself takes those away).
fn serving_weights(action: &CurrentAction) -> BTreeMap<String, u32> {
    match action {
        CurrentAction::Forward(f) => f
            .effective()
            .into_iter()
            .map(|(arn, w)| (arn.to_string(), w))
            .collect(),
        CurrentAction::Other { .. } => BTreeMap::new(),
    }
}

/// One group out: out of every forward action (none may send it traffic), detached from its
/// cluster's node groups, its targets deregistered, deleted.
async fn retire_group<C, L, A>(
    eks: &C,
    elb: &L,
    autoscaling: &A,
    registration: okra_core::spec::Registration,
    tg: &TargetGroup,
    reason: Reason,
) -> Result<()>
where
    C: ClusterPort,
    L: LoadBalancerPort,
    A: AutoScalingPort,
{
    let uses = elb.forward_uses(&tg.arn).await?;
    retire::may_delete(&uses).map_err(|why| {
        OkraError::Conflict(
            format!("target group {} is still in use: {why}", tg.name),
            None,
        )
    })?;
    for u in &uses {
        elb.remove_forward(u, &tg.arn).await?;
    }
    if registration == okra_core::spec::Registration::Nodegroups && reason != Reason::ClusterGone {
        for asg in eks.node_group_asgs(&tg.cluster).await? {
            autoscaling.detach_target_group(&asg, &tg.arn).await?;
        }
    }
    let targets = match elb.registered_targets(&tg.arn).await {
        Ok(t) => t,
        Err(OkraError::TargetGroupNotFound(..)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !targets.is_empty() {
        elb.deregister_targets(&tg.arn, &targets).await?;
    }
    elb.delete_target_group(&tg.arn).await
}
