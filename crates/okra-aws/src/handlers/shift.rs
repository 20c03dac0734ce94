//! `shift-weights`: set the owned forward action to the weights of one step, and verify.
//!
//! Normal path: one read, one write, one verification read. A re-run of a step that already
//! happened finds the weights in place and writes nothing. A listener that holds neither what
//! the previous step left nor what this step asks is someone else's edit: `DriftDetected`, and
//! nothing is written, unless `takeOver` says to overwrite it.
//!
//! With `minHealthyPercent` (the cell's readiness gate), every member is checked before the write
//! (DescribeTargetHealth per group, [`okra_core::health::check_members`]): a canary group below
//! the gate fails the step (`CanaryUnhealthy`), a stable group below it leaves the action and the
//! other stable groups share its weight (`excluded` says which and why).
//!
//! `attach` (instead of `weight`): the given target groups join the action at weight 0 and no
//! weight changes, so that AWS starts health-checking their targets (it checks only groups that a
//! listener rule forwards to). `detach`: those of the given groups that stand at weight 0 leave
//! the action again (a readiness gate that timed out); no weight changes either.

use futures::{StreamExt as _, TryStreamExt as _};
use okra_core::decision::Side;
use std::collections::{BTreeMap, BTreeSet};

use okra_core::health::{ClusterNow, Excluded, Health, MemberCheck, check_clusters, check_members};
use okra_core::model::{CurrentAction, ForwardAction, ForwardStickiness};
use okra_core::shift::{StepWrite, plan_step, unhealthy_message, verified, verified_standby};
use okra_core::weights::{forward_action, with_standby, without_standby};
use serde::{Deserialize, Serialize};

use crate::error::{OkraError, Result};
use crate::ports::{ClusterPort, LoadBalancerPort};

/// The function's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShiftInput {
    /// The listener.
    pub listener_arn: String,
    /// The rule, if okra owns a rule's action rather than the listener's default one.
    #[serde(default)]
    pub rule_arn: Option<String>,
    /// The stable side's target groups.
    #[serde(default)]
    pub stable: Targets,
    /// The canary side's target groups.
    #[serde(default)]
    pub canary: Targets,
    /// The canary's share, 0-100. Exactly one of `weight`, `attach` and `detach`.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Target groups to stand by at weight 0 (added where missing; no weight changes).
    #[serde(default)]
    pub attach: Option<Targets>,
    /// Target groups to take out where they stand at weight 0 (no weight changes).
    #[serde(default)]
    pub detach: Option<Targets>,
    /// What the previous step left (`None`: the listener is not expected to forward yet).
    #[serde(default)]
    pub expected: Option<ForwardAction>,
    /// Overwrite whatever the listener holds (a person's explicit choice).
    #[serde(default)]
    pub take_over: bool,
    /// Stickiness to write; `None` keeps the listener's.
    #[serde(default)]
    pub stickiness: Option<ForwardStickiness>,
    /// Check every member against this gate before the write (`None` or 0: no check).
    #[serde(default)]
    pub min_healthy_percent: Option<u8>,
    /// The cell's version tag: with it, every member's cluster is read before the write
    /// (whatever the gate), and one gone, not ACTIVE or tagged with another version is taken
    /// as below the gate ([`okra_core::health::check_clusters`]). Needs both sides as sides.
    #[serde(default)]
    pub version_tag: Option<String>,
}

/// Target groups, as a list of ARNs or as a decision's side (whose members must all have one).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Targets {
    /// ARNs.
    Arns(Vec<String>),
    /// A side from discovery or ensure-target-groups.
    Side(Side),
}

impl Default for Targets {
    fn default() -> Self {
        Self::Arns(Vec::new())
    }
}

impl Targets {
    /// As the state machine passed it (a Lambda metric's function gets it).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Arns(a) => serde_json::json!(a),
            Self::Side(s) => serde_json::to_value(s).unwrap_or_default(),
        }
    }

    /// The side's version (a list of ARNs has none).
    pub fn version(&self) -> Option<&str> {
        match self {
            Self::Arns(_) => None,
            Self::Side(s) => s.version.as_deref(),
        }
    }

    /// The ARNs; `field` names the input field in the error.
    pub fn arns(&self, field: &str) -> Result<Vec<String>> {
        match self {
            Self::Arns(a) => Ok(a.clone()),
            Self::Side(s) => s.required_target_group_arns().map_err(|i| {
                OkraError::InvalidInput(format!(
                    "{field}.members[{i}].targetGroupArn: missing (cluster {})",
                    s.members[i].cluster.as_deref().unwrap_or("?")
                ))
            }),
        }
    }
}

/// The function's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftOutput {
    /// The canary's share now.
    pub weight: u32,
    /// The action as AWS shows it after the step.
    pub action: ForwardAction,
    /// Whether this run wrote (false when a previous run of the same step already had).
    pub changed: bool,
    /// Stable groups left out of this step for their health.
    #[serde(default)]
    pub excluded: Vec<Excluded>,
}

/// The members of a side to check, as (target group, cluster), and its version: none for a
/// list of ARNs or target groups okra did not make (no version to hold them to).
fn members(t: &Targets) -> (Vec<(String, Option<String>)>, String) {
    match t {
        Targets::Side(s) if s.version.is_some() => (
            s.members
                .iter()
                .filter_map(|m| Some((m.target_group_arn.clone()?, m.cluster.clone())))
                .collect(),
            s.version.clone().unwrap_or_default(),
        ),
        _ => (Vec::new(), String::new()),
    }
}

/// Reads every member's cluster (DescribeCluster, a few at once).
async fn clusters_now<C: ClusterPort>(
    eks: &C,
    clusters: BTreeSet<String>,
    version_tag: &str,
) -> Result<BTreeMap<String, ClusterNow>> {
    let read: Vec<(String, Option<okra_core::model::Cluster>)> = futures::stream::iter(clusters)
        .map(|c| async move { eks.describe_cluster(&c).await.map(|d| (c, d)) })
        .buffered(crate::handlers::ensure::MEMBER_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(read
        .into_iter()
        .filter_map(|(name, c)| {
            let c = c?;
            Some((
                name,
                ClusterNow {
                    active: c.status == okra_core::model::ClusterStatus::Active,
                    version: c.tags.get(version_tag).cloned(),
                },
            ))
        })
        .collect())
}

/// Runs one step: read the listener, decide with [`okra_core::shift`], write, read again, verify.
pub async fn handle<L: LoadBalancerPort, C: ClusterPort>(
    elb: &L,
    eks: &C,
    input: ShiftInput,
) -> Result<ShiftOutput> {
    if input.listener_arn.is_empty() {
        return Err(OkraError::InvalidInput(
            "listenerArn: must not be empty".into(),
        ));
    }
    let weight = match (input.weight, &input.attach, &input.detach) {
        (Some(w), None, None) => w,
        (None, Some(groups), None) => {
            let groups = groups.arns("attach")?;
            return standby(elb, &input, Standby::Attach(groups)).await;
        }
        (None, None, Some(groups)) => {
            let groups = groups.arns("detach")?;
            return standby(elb, &input, Standby::Detach(groups)).await;
        }
        _ => {
            return Err(OkraError::InvalidInput(
                "weight: give exactly one of weight, attach and detach".into(),
            ));
        }
    };
    if weight > 100 {
        return Err(OkraError::InvalidInput(format!(
            "weight: {weight} is not in 0..=100"
        )));
    }
    let rule = input.rule_arn.as_deref();
    // Everything that can be refused from the input alone is refused before any AWS call.
    let stable = input.stable.arns("stable")?;
    let canary = input.canary.arns("canary")?;
    forward_action(&stable, &canary, weight, input.stickiness)?;
    // Every member's cluster first, whatever the gate: gone, not ACTIVE or re-tagged.
    let mut excluded = Vec::new();
    let mut stable = stable;
    if let Some(tag) = input.version_tag.as_deref() {
        let (s, c) = (members(&input.stable), members(&input.canary));
        let names: BTreeSet<String> =
            s.0.iter()
                .chain(&c.0)
                .filter_map(|(_, c)| c.clone())
                .collect();
        let now = clusters_now(eks, names, tag).await?;
        match check_clusters((&s.0, &s.1), (&c.0, &c.1), weight, &now) {
            MemberCheck::Go { excluded: out, .. } => {
                stable.retain(|a| !out.iter().any(|e| &e.target_group_arn == a));
                excluded = out;
            }
            MemberCheck::CanaryUnhealthy(bad) => {
                return Err(OkraError::CanaryUnhealthy(unhealthy_message(&bad)));
            }
        }
    }
    let (stable, excluded) = match input.min_healthy_percent.filter(|m| *m > 0) {
        None => (stable, excluded),
        Some(min) => {
            let groups: Vec<&String> = stable.iter().chain(&canary).collect();
            let healths: Vec<_> = futures::stream::iter(groups.iter())
                .map(|arn| elb.target_health(arn))
                .buffered(crate::handlers::ensure::MEMBER_CONCURRENCY)
                .try_collect()
                .await?;
            let health = groups
                .iter()
                .zip(healths)
                .map(|(a, h)| {
                    (
                        (*a).clone(),
                        Health {
                            healthy: h.healthy,
                            total: h.total,
                        },
                    )
                })
                .collect();
            match check_members(&stable, &canary, weight, &health, min) {
                MemberCheck::Go {
                    stable,
                    excluded: unhealthy,
                } => (stable, excluded.into_iter().chain(unhealthy).collect()),
                MemberCheck::CanaryUnhealthy(bad) => {
                    return Err(OkraError::CanaryUnhealthy(unhealthy_message(&bad)));
                }
            }
        }
    };
    for e in &excluded {
        tracing::warn!(group = %e.target_group_arn, reason = %e.reason, "stable group left out");
    }
    let owned = elb.read_action(&input.listener_arn, rule).await?;
    let current_stickiness = match &owned.action {
        CurrentAction::Forward(fa) => fa.stickiness,
        CurrentAction::Other { .. } => None,
    };
    let desired = forward_action(
        &stable,
        &canary,
        weight,
        input.stickiness.or(current_stickiness),
    )?;

    match plan_step(
        &owned.action,
        &desired,
        input.expected.as_ref(),
        input.take_over,
    ) {
        StepWrite::InPlace(action) => {
            remove_standby_rule(elb, &input).await?;
            return Ok(ShiftOutput {
                weight,
                action,
                changed: false,
                excluded,
            });
        }
        StepWrite::Drift(why) => return Err(OkraError::DriftDetected(why)),
        StepWrite::Write => {}
    }
    elb.write_forward(&input.listener_arn, rule, &owned.raw, &desired)
        .await?;
    let after = elb.read_action(&input.listener_arn, rule).await?;
    let action = verified(after.action, &desired).map_err(OkraError::VerificationFailed)?;
    tracing::info!(weight, "shifted and verified");
    remove_standby_rule(elb, &input).await?;
    Ok(ShiftOutput {
        weight,
        action,
        changed: true,
        excluded,
    })
}

/// After the first switch (the previous step left nothing forwarded), the standby rule that
/// kept the user's own action has done its work: deleted (a re-run finds none).
async fn remove_standby_rule<L: LoadBalancerPort>(elb: &L, input: &ShiftInput) -> Result<()> {
    if input
        .expected
        .as_ref()
        .is_some_and(|e| !e.effective().is_empty())
    {
        return Ok(());
    }
    let owner = okra_core::standby::owner(input.rule_arn.as_deref());
    if let Some((arn, _)) = elb.standby_rule(&input.listener_arn, &owner).await? {
        elb.delete_rule(&arn).await?;
        tracing::info!(rule = %arn, "standby rule removed after the first switch");
    }
    Ok(())
}

enum Standby {
    Attach(Vec<String>),
    Detach(Vec<String>),
}

/// `attach` / `detach`: one read, a write only when the action changes, one verification read.
/// The weights are never touched, so there is nothing to drift-check.
async fn standby<L: LoadBalancerPort>(
    elb: &L,
    input: &ShiftInput,
    what: Standby,
) -> Result<ShiftOutput> {
    let rule = input.rule_arn.as_deref();
    let owned = elb.read_action(&input.listener_arn, rule).await?;
    // The user's own action (a fixed response, a redirect) is kept: the groups stand by in a
    // rule of their own that never matches (okra_core::standby).
    if let CurrentAction::Other { .. } = owned.action {
        let owner = okra_core::standby::owner(rule);
        let existing = elb.standby_rule(&input.listener_arn, &owner).await?;
        let changed = match (&what, existing) {
            (Standby::Attach(groups), Some((_, now))) if &now == groups => false,
            (Standby::Attach(groups), found) => {
                let arn = found.as_ref().map(|(arn, _)| arn.as_str());
                elb.put_standby_rule(&input.listener_arn, &owner, arn, groups)
                    .await?;
                tracing::info!(groups = ?groups, "standby rule set; the listener's own action kept");
                true
            }
            (Standby::Detach(_), Some((arn, _))) => {
                elb.delete_rule(&arn).await?;
                true
            }
            (Standby::Detach(_), None) => false,
        };
        return Ok(ShiftOutput {
            weight: 0,
            action: ForwardAction::default(),
            changed,
            excluded: Vec::new(),
        });
    }
    let before = match &owned.action {
        CurrentAction::Forward(fa) => Some(fa.clone()),
        CurrentAction::Other { .. } => None,
    };
    let (desired, groups) = match &what {
        Standby::Attach(groups) => (
            Some(with_standby(&owned.action, groups, input.stickiness)?),
            groups,
        ),
        Standby::Detach(groups) => (without_standby(&owned.action, groups), groups),
    };
    let weight_of = |fa: &ForwardAction| {
        let set = groups.iter().map(String::as_str).collect();
        fa.percent_to(&set)
    };
    let Some(desired) = desired else {
        // Detach from a listener that forwards nowhere: nothing stands by.
        return Ok(ShiftOutput {
            weight: 0,
            action: ForwardAction::default(),
            changed: false,
            excluded: Vec::new(),
        });
    };
    if before.as_ref() == Some(&desired) {
        return Ok(ShiftOutput {
            weight: weight_of(&desired),
            action: desired,
            changed: false,
            excluded: Vec::new(),
        });
    }
    elb.write_forward(&input.listener_arn, rule, &owned.raw, &desired)
        .await?;
    let after = elb.read_action(&input.listener_arn, rule).await?;
    let action = verified_standby(after.action, &desired).map_err(OkraError::VerificationFailed)?;
    tracing::info!(groups = ?groups, "standby groups changed and verified");
    Ok(ShiftOutput {
        weight: weight_of(&action),
        action,
        changed: true,
        excluded: Vec::new(),
    })
}
