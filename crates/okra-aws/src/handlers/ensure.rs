//! `ensure-target-groups`: one target group per cluster of a side, registered, and how healthy.
//!
//! `mode: ensure` (the default) makes what is missing: a target group per cluster under its
//! deterministic name (a second run finds it and makes nothing), tags (cell, version, cluster),
//! and the registration: for `nodegroups` the attachment to the cluster's node-group Auto Scaling
//! groups, for `instances` the cluster's EC2 instances (found by tag) registered and the ones gone
//! deregistered. `mode: health` only reads target health: the state machine's readiness loop calls it
//! until the cell's readiness gate holds or its timeout passes.

use futures::{StreamExt as _, TryStreamExt as _};
use okra_core::Cell;
use okra_core::decision::{Member, Side};
use okra_core::model::{TAG_CELL, TAG_CLUSTER, TAG_MANAGED_BY, TAG_VERSION};
use okra_core::naming::target_group_name;
use okra_core::nodes::{TAG_EKS_CLUSTER_NAME, TargetSync, kubernetes_cluster_tag, plan_sync};
use okra_core::spec::{CellSpec, Registration};
use serde::{Deserialize, Serialize};

use crate::error::{OkraError, Result};
use crate::ports::{AutoScalingPort, ClusterPort, LoadBalancerPort, NewTargetGroup};

/// What to do: make what is missing, then read health (`ensure`), or only read health.
pub use okra_core::vocab::EnsureMode as Mode;

/// The function's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnsureInput {
    /// The cell spec (validated here into a `Cell`: nothing is written for a bad spec).
    pub cell: CellSpec,
    /// The side whose clusters need target groups.
    pub side: Side,
    /// Ensure (default) or health only.
    #[serde(default)]
    pub mode: Mode,
}

/// One target group's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReport {
    /// The cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The target group.
    pub target_group_arn: String,
    /// Whether this run created it.
    pub created: bool,
    /// Healthy targets.
    pub healthy: u32,
    /// All registered targets.
    pub total: u32,
    /// Whether this group meets the readiness gate.
    pub ready: bool,
}

/// The function's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnsureOutput {
    /// The side with every member's target group ARN filled in.
    pub side: Side,
    /// Per group.
    pub groups: Vec<GroupReport>,
    /// Whether every group meets the readiness gate.
    pub ready: bool,
    /// One line for people.
    pub reason: String,
}

pub use okra_core::health::meets_gate;
use okra_core::health::{Health, readiness};

/// Runs the function.
pub async fn handle<C: ClusterPort, L: LoadBalancerPort, A: AutoScalingPort>(
    eks: &C,
    elb: &L,
    asg: &A,
    input: EnsureInput,
) -> Result<EnsureOutput> {
    let EnsureInput {
        cell,
        mut side,
        mode,
    } = input;
    let cell = cell.validate()?;
    let version = side.version.clone().unwrap_or_default();
    let mut created = Vec::new();
    if mode == Mode::Ensure {
        // Looked up once, and only when a group is to be made.
        let lb_vpc = tokio::sync::OnceCell::new();
        // The members are independent of each other: up to MEMBER_CONCURRENCY at a time, in order.
        let arns: Vec<Option<(String, bool)>> = futures::stream::iter(side.members.iter())
            .map(|m| ensure_member(eks, elb, asg, &cell, &version, &lb_vpc, m))
            .buffered(MEMBER_CONCURRENCY)
            .try_collect()
            .await?;
        for (m, got) in side.members.iter_mut().zip(arns) {
            if let Some((arn, made)) = got {
                if made {
                    created.push(arn.clone());
                }
                m.target_group_arn = Some(arn);
            }
        }
    }
    let min = cell.readiness.min_healthy_percent;
    let arns = side.required_target_group_arns().map_err(|i| {
        OkraError::InvalidInput(format!(
            "side.members[{i}].targetGroupArn: missing in health mode (run mode ensure first)"
        ))
    })?;
    let healths: Vec<_> = futures::stream::iter(arns.iter())
        .map(|arn| elb.target_health(arn))
        .buffered(MEMBER_CONCURRENCY)
        .try_collect()
        .await?;
    let groups: Vec<GroupReport> = side
        .members
        .iter()
        .zip(arns)
        .zip(healths)
        .map(|((m, arn), h)| GroupReport {
            cluster: m.cluster.clone(),
            created: created.contains(&arn),
            healthy: h.healthy,
            total: h.total,
            ready: meets_gate(h.healthy, h.total, min),
            target_group_arn: arn,
        })
        .collect();
    let labelled: Vec<(&str, Health)> = groups
        .iter()
        .map(|g| {
            let label = g.cluster.as_deref().unwrap_or(&g.target_group_arn);
            let health = Health {
                healthy: g.healthy,
                total: g.total,
            };
            (label, health)
        })
        .collect();
    let (ready, reason) = readiness(&labelled, min);
    Ok(EnsureOutput {
        side,
        groups,
        ready,
        reason,
    })
}

/// How many members' target groups are made or read at the same time.
pub const MEMBER_CONCURRENCY: usize = 4;

/// One member's target group: found (and retagged) or made, and attached to the node groups when
/// the cell registers them. `None` for a member without a cluster (a group okra did not make).
async fn ensure_member<C: ClusterPort, L: LoadBalancerPort, A: AutoScalingPort>(
    eks: &C,
    elb: &L,
    asg: &A,
    cell: &Cell,
    version: &str,
    lb_vpc: &tokio::sync::OnceCell<String>,
    m: &Member,
) -> Result<Option<(String, bool)>> {
    let Some(cluster) = m.cluster.clone() else {
        return Ok(None);
    };
    let tags = vec![
        (TAG_CELL.to_string(), cell.name.clone()),
        (TAG_VERSION.to_string(), version.to_string()),
        (TAG_CLUSTER.to_string(), cluster.clone()),
        (TAG_MANAGED_BY.to_string(), "okra".to_string()),
    ];
    let name = target_group_name(&cell.name, &cluster);
    // A cluster retagged with another version keeps its group: its tags follow. A group deleted
    // behind okra's back is looked up by name, or made again.
    let known = match &m.target_group_arn {
        Some(arn) => match elb.tag_target_group(arn, &tags).await {
            Ok(()) => Some(arn.clone()),
            Err(OkraError::TargetGroupNotFound(..)) => {
                tracing::warn!(%cluster, %arn, "target group gone; looking it up by name");
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let (arn, made) = match known {
        Some(arn) => (arn, false),
        None => match elb.target_group_by_name(&name).await? {
            Some(arn) => {
                elb.tag_target_group(&arn, &tags).await?;
                (arn, false)
            }
            None => {
                // A forward action's target groups must be in the load balancer's VPC (ELB API
                // reference, ModifyListener); the cluster's nodes must be reachable from it.
                let listener = cell.ingress().listener().as_str();
                let vpc_id = lb_vpc
                    .get_or_try_init(|| elb.load_balancer_vpc(listener))
                    .await?
                    .clone();
                if m.vpc_id.as_deref().is_some_and(|v| v != vpc_id) {
                    tracing::warn!(
                        %cluster, cluster_vpc = ?m.vpc_id, %vpc_id,
                        "the cluster is in another VPC than the load balancer: its targets must be routable from it (peering, Transit Gateway)"
                    );
                }
                let kind = cell.ingress().kind();
                let arn = elb
                    .create_target_group(&NewTargetGroup {
                        name: name.clone(),
                        vpc_id,
                        template: cell.target_group.clone(),
                        protocol: cell.target_group.protocol_for(kind).to_string(),
                        tags: tags.clone(),
                    })
                    .await?;
                tracing::info!(%cluster, %name, "created target group");
                (arn, true)
            }
        },
    };
    match cell.target_group.registration {
        Registration::Nodegroups => {
            let groups = eks.node_group_asgs(&cluster).await?;
            if groups.is_empty() {
                // Karpenter, self-managed and Fargate nodes are in no managed node group: say so
                // now rather than time out at the readiness gate.
                return Err(OkraError::NothingToRegister(format!(
                    "cluster {cluster} has no EKS managed node group with an Auto Scaling group, \
                     so `registration: nodegroups` registers nothing in target group {name}; use \
                     `registration: instances` (its nodes found by their tags: Karpenter, \
                     self-managed), or aws-load-balancer-controller (`registration: external`, \
                     see `okra cell binding`)"
                )));
            }
            for group in groups {
                asg.attach_target_group(&group, &arn).await?;
            }
        }
        Registration::Instances => {
            sync_instances(eks, elb, &cluster, &arn).await?;
        }
        Registration::External => {}
    }
    Ok(Some((arn, made)))
}

/// `registration: instances`: registers the cluster's running instances (found by
/// their tags) in its target group and deregisters targets that are no instance of it any more.
/// A cluster without instances is an error and changes nothing: an empty answer is never a
/// reason to empty a group (EC2's reads are eventually consistent).
pub async fn sync_instances<C: ClusterPort, L: LoadBalancerPort>(
    eks: &C,
    elb: &L,
    cluster: &str,
    target_group_arn: &str,
) -> Result<TargetSync> {
    let (instances, registered) = futures::try_join!(
        eks.cluster_instances(cluster),
        elb.registered_targets(target_group_arn)
    )?;
    if instances.is_empty() {
        return Err(OkraError::NothingToRegister(format!(
            "cluster {cluster} has no running EC2 instance tagged \
             {TAG_EKS_CLUSTER_NAME}={cluster} or {}=owned|shared, so `registration: instances` \
             registers nothing in target group {target_group_arn}; for Fargate pods use \
             aws-load-balancer-controller (`registration: external`, `targetType: ip`)",
            kubernetes_cluster_tag(cluster)
        )));
    }
    let plan = plan_sync(&registered, &instances);
    if !plan.register.is_empty() {
        elb.register_targets(target_group_arn, &plan.register)
            .await?;
    }
    if !plan.deregister.is_empty() {
        elb.deregister_targets(target_group_arn, &plan.deregister)
            .await?;
    }
    if !plan.is_empty() {
        tracing::info!(
            %cluster, target_group = %target_group_arn,
            registered = ?plan.register, deregistered = ?plan.deregister,
            "synced the cluster's instances"
        );
    }
    Ok(plan)
}
