//! The decision: given a cell and what discovery read, what should happen now.
//!
//! One of: nothing to do (with the reason), initialize (no cluster serves yet), start a rollout,
//! resume one that a listener shows half done, roll back at once (a pinned lower version, or a
//! blocked version still holding traffic), or scale out (a new cluster of the serving version).
//! [`decide`] is a pure function of its inputs: a re-run gives the same answer.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::cell::Cell;
use crate::duration::parse_duration;
use crate::health::{ClusterNow, Excluded, member_changed};
use crate::model::{Cluster, CurrentAction, Observed, TargetGroup};
use crate::spec::{Arg, CellSpec, TemplateRef};
use crate::validate::FieldError;
use crate::versions::{self, Grouping, Ignored, Pending};
use crate::weights::MAX_TARGET_GROUPS_PER_ACTION;

/// One cluster (or a target group okra did not make) on one side of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The cluster, if the target group is okra's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The cluster's target group, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    /// The VPC a new target group must be made in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
}

/// One version's members: the stable side or the canary side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// The version; `None` for target groups okra did not make (a listener okra takes over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its members, sorted.
    pub members: Vec<Member>,
}

impl Side {
    /// The members' target group ARNs (those that exist).
    pub fn target_group_arns(&self) -> Vec<String> {
        self.members
            .iter()
            .filter_map(|m| m.target_group_arn.clone())
            .collect()
    }

    /// Every member's target group ARN, in member order; `Err(i)` names the first member
    /// without one (its index in `members`).
    pub fn required_target_group_arns(&self) -> Result<Vec<String>, usize> {
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| m.target_group_arn.clone().ok_or(i))
            .collect()
    }

    /// A short label for messages: the version, or "unmanaged target groups".
    pub fn label(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| "unmanaged target groups".to_string())
    }
}

mod plan;

pub use plan::*;

/// What should happen now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::EnumDiscriminants)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
#[strum_discriminants(
    name(DecisionKind),
    doc = "A decision's `kind`, as the state machine's Choice reads it.",
    derive(
        Hash,
        Serialize,
        Deserialize,
        strum::AsRefStr,
        strum::Display,
        strum::EnumIter,
        strum::EnumString,
        strum::IntoStaticStr
    ),
    serde(rename_all = "camelCase"),
    strum(serialize_all = "camelCase")
)]
pub enum Decision {
    /// Leave the listener as it is.
    NothingToDo {
        /// Why, in words a person reads in the console.
        reason: String,
    },
    /// No cluster serves yet: send everything to this version in one write, after readiness.
    Initialize {
        /// The version and its clusters.
        target: Side,
    },
    /// Move traffic from `stable` to `canary` step by step.
    StartRollout {
        /// What serves now.
        stable: Side,
        /// The new version.
        canary: Side,
        /// The steps.
        plan: Plan,
    },
    /// The listener shows a rollout half done: go on from `from_step`.
    ResumeRollout {
        /// The old version.
        stable: Side,
        /// The new version.
        canary: Side,
        /// The share the new version has now.
        canary_weight: u32,
        /// The plan step to go on from.
        from_step: usize,
        /// The steps.
        plan: Plan,
    },
    /// Send everything back to `to` in one write.
    Rollback {
        /// What holds traffic now and must not.
        from: Side,
        /// Where traffic goes.
        to: Side,
        /// Why.
        reason: String,
    },
    /// New clusters of the serving version join at once, in one write (and target groups whose
    /// cluster left the version leave in the same write).
    ScaleOut {
        /// The serving version with all its clusters, old and new.
        serving: Side,
        /// The clusters that join.
        added: Vec<String>,
        /// Serving target groups that leave, and why.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        left: Vec<Excluded>,
    },
    /// Serving target groups whose cluster is gone, left the cell, is not ACTIVE or now carries
    /// another version leave the action in one write; the serving version's other groups share
    /// the traffic. A re-tagged cluster then rolls out with its new version, as a canary.
    ScaleIn {
        /// The serving version with the members that stay.
        serving: Side,
        /// The target groups that leave, and why.
        left: Vec<Excluded>,
    },
}

impl Decision {
    /// The decision's kind, as the state machine's Choice state reads it.
    pub fn kind(&self) -> DecisionKind {
        self.into()
    }
}

/// The decision with what discovery noticed on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// What to do.
    pub decision: Decision,
    /// Clusters of the cell still being created.
    pub pending: Vec<Pending>,
    /// Clusters of the cell that take no part, with the reason.
    pub ignored: Vec<Ignored>,
    /// Serving clusters per version.
    pub versions: BTreeMap<String, usize>,
}

struct Ctx<'a> {
    spec: &'a CellSpec,
    clusters: &'a [Cluster],
    cell: &'a Cell,
    grouping: Grouping<'a>,
    tg_by_cluster: BTreeMap<&'a str, &'a TargetGroup>,
    tg_by_arn: BTreeMap<&'a str, &'a TargetGroup>,
}

impl Ctx<'_> {
    fn member_of_cluster(&self, c: &Cluster) -> Member {
        Member {
            cluster: Some(c.name.clone()),
            target_group_arn: self
                .tg_by_cluster
                .get(c.name.as_str())
                .map(|t| t.arn.clone()),
            vpc_id: c.vpc_id.clone(),
        }
    }

    fn version_side(&self, v: &Version) -> Side {
        let mut members: Vec<Member> = self
            .grouping
            .by_version
            .get(v)
            .map(|cs| cs.iter().map(|c| self.member_of_cluster(c)).collect())
            .unwrap_or_default();
        members.sort();
        Side {
            version: Some(v.to_string()),
            members,
        }
    }

    /// The side made of the target groups that serve now.
    fn serving_side(&self, version: Option<String>, arns: &[&str]) -> Side {
        let mut members: Vec<Member> = arns
            .iter()
            .map(|arn| Member {
                cluster: self.tg_by_arn.get(arn).map(|t| t.cluster.clone()),
                target_group_arn: Some((*arn).to_string()),
                vpc_id: None,
            })
            .collect();
        members.sort();
        Side { version, members }
    }

    fn version_of_arn(&self, arn: &str) -> Option<String> {
        self.tg_by_arn
            .get(arn)
            .map(|t| versions::canonical(&t.version))
    }

    fn weighted(&self) -> bool {
        self.cell.ingress().weighted()
    }

    /// Why the serving target group `arn` no longer belongs to `version` (`None`: it does, or it
    /// is no group okra made): its cluster is gone, left the cell, is not ACTIVE or now carries
    /// another version — the rules shift-weights applies to a running rollout's members.
    fn left_version(&self, arn: &str, version: &str) -> Option<Excluded> {
        let cluster = &self.tg_by_arn.get(arn)?.cluster;
        let found = self.clusters.iter().find(|c| &c.name == cluster);
        let reason = match found {
            Some(c) if !self.spec.cluster_selector.matches(&c.tags) => {
                format!("cluster {cluster} left cell {}", self.cell.name)
            }
            Some(c) if c.status == crate::model::ClusterStatus::Creating => return None,
            found => {
                let now = found.map(|c| ClusterNow {
                    active: c.status.serves(),
                    version: c.tags.get(&self.spec.version_tag).cloned(),
                });
                member_changed(cluster, now.as_ref(), version)?
            }
        };
        Some(Excluded {
            target_group_arn: arn.to_string(),
            reason,
        })
    }

    /// The version every serving group's cluster now carries, when all were re-tagged in place
    /// to one version the cell knows (its groups then serve as that version).
    fn retagged_to(&self, arns: &[&str]) -> Option<Version> {
        let mut found: Option<&Version> = None;
        for arn in arns {
            let cluster = &self.tg_by_arn.get(arn)?.cluster;
            let (v, _) = self
                .grouping
                .by_version
                .iter()
                .find(|(_, cs)| cs.iter().any(|c| &c.name == cluster))?;
            if found.is_some_and(|f| f != v) {
                return None;
            }
            found = Some(v);
        }
        found.cloned()
    }
}

fn nothing(reason: impl Into<String>) -> Decision {
    Decision::NothingToDo {
        reason: reason.into(),
    }
}

fn semver_of(v: &Option<String>) -> Option<Version> {
    v.as_deref().and_then(|s| versions::parse_version(s).ok())
}

/// Decides what to do for a cell given what discovery read.
pub fn decide(cell: &Cell, observed: &Observed) -> Outcome {
    let spec = cell.spec();
    let grouping = versions::group(spec, &observed.clusters, &observed.blocklist);
    let ctx = Ctx {
        spec,
        clusters: &observed.clusters,
        cell,
        tg_by_cluster: observed
            .target_groups
            .iter()
            .map(|t| (t.cluster.as_str(), t))
            .collect(),
        tg_by_arn: observed
            .target_groups
            .iter()
            .map(|t| (t.arn.as_str(), t))
            .collect(),
        grouping,
    };
    let decision = decide_with(&ctx, observed);
    Outcome {
        decision,
        pending: ctx.grouping.pending.clone(),
        ignored: ctx.grouping.ignored.clone(),
        versions: ctx
            .grouping
            .by_version
            .iter()
            .map(|(v, c)| (v.to_string(), c.len()))
            .collect(),
    }
}

fn decide_with(ctx: &Ctx<'_>, observed: &Observed) -> Decision {
    let spec = ctx.spec;
    let target = ctx.grouping.target(spec).cloned();
    let serving: BTreeSet<&str> = match &observed.action {
        CurrentAction::Forward(fa) => fa.serving(),
        CurrentAction::Other { .. } => BTreeSet::new(),
    };
    if serving.is_empty() {
        return match target {
            Some(t) => Decision::Initialize {
                target: ctx.version_side(&t),
            },
            None => nothing(format!(
                "no cluster serves yet, and {}",
                ctx.grouping.shortfall(spec)
            )),
        };
    }
    // Serving target groups by version (None: not okra's).
    let mut classes: BTreeMap<Option<String>, Vec<&str>> = BTreeMap::new();
    for arn in &serving {
        classes
            .entry(ctx.version_of_arn(arn))
            .or_default()
            .push(arn);
    }
    match classes.len() {
        1 => {
            let (version, arns) = classes.into_iter().next().unwrap_or_default();
            decide_single(ctx, target, version, &arns)
        }
        2 => {
            let mut it = classes.into_iter();
            let (a, b) = match (it.next(), it.next()) {
                (Some(a), Some(b)) => (a, b),
                _ => return nothing("internal: two classes expected"),
            };
            decide_split(ctx, observed, a, b)
        }
        n => nothing(format!(
            "the listener forwards to {n} versions ({}); okra will not guess which is stable — \
             set the forward action by hand to one version, or pin `version`",
            serving
                .iter()
                .map(|a| ctx.version_of_arn(a).unwrap_or_else(|| "unmanaged".into()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn decide_single(
    ctx: &Ctx<'_>,
    target: Option<Version>,
    version: Option<String>,
    arns: &[&str],
) -> Decision {
    let spec = ctx.spec;
    let mut version = version;
    let mut left: Vec<Excluded> = match &version {
        Some(v) => arns.iter().filter_map(|a| ctx.left_version(a, v)).collect(),
        None => Vec::new(),
    };
    if !left.is_empty() && left.len() == arns.len() {
        // No group of the serving version is left to take the traffic. If every one's cluster
        // was re-tagged in place to one version, that version serves; otherwise the groups keep
        // serving (okra never leaves a listener with nothing to forward to).
        if let Some(now) = ctx.retagged_to(arns) {
            version = Some(now.to_string());
            left.clear();
        }
    }
    let current = ctx.serving_side(version.clone(), arns);
    let serving_version = semver_of(&version);
    if !left.is_empty() {
        match (&serving_version, &target) {
            (Some(s), Some(t)) if s == t => return scale_out(ctx, t, arns, left),
            _ if left.len() < arns.len() => return scale_in(&current, left),
            _ => {}
        }
    }
    let Some(target) = target else {
        return nothing(format!(
            "{} serves at 100 %; {}",
            current.label(),
            ctx.grouping.shortfall(spec)
        ));
    };
    match serving_version {
        Some(s) if s == target => scale_out(ctx, &target, arns, Vec::new()),
        Some(s) if target < s => {
            if spec.version.is_some() {
                let to = ctx.version_side(&target);
                Decision::Rollback {
                    reason: format!("the cell is pinned to {target}, below the serving {s}"),
                    from: current,
                    to,
                }
            } else {
                nothing(format!(
                    "{s} serves at 100 % and is newer than the newest complete version {target}"
                ))
            }
        }
        _ => {
            let canary = ctx.version_side(&target);
            if let Some(shared) = canary.members.iter().find(|m| {
                m.target_group_arn
                    .as_deref()
                    .is_some_and(|a| arns.contains(&a))
            }) {
                return nothing(format!(
                    "cluster {} now carries {target}, but its target group is one of those serving \
                     {} and no other group of that version is left to take the traffic: add a \
                     cluster of {target} (or of {}) so that traffic can move between clusters",
                    shared.cluster.as_deref().unwrap_or("?"),
                    current.label(),
                    current.label()
                ));
            }
            let count = current.members.len() + canary.members.len();
            if ctx.weighted() && count > MAX_TARGET_GROUPS_PER_ACTION {
                return nothing(format!(
                    "a canary of {target} would forward to {} stable and {} canary target groups at \
                     once, but a forward action holds at most {MAX_TARGET_GROUPS_PER_ACTION}",
                    current.members.len(),
                    canary.members.len()
                ));
            }
            Decision::StartRollout {
                stable: current,
                canary,
                plan: ctx.cell.plan().clone(),
            }
        }
    }
}

/// The serving version's groups but those that left it, in one write.
fn scale_in(current: &Side, left: Vec<Excluded>) -> Decision {
    let mut serving = current.clone();
    serving.members.retain(|m| {
        !left
            .iter()
            .any(|l| m.target_group_arn.as_deref() == Some(l.target_group_arn.as_str()))
    });
    if serving.members.is_empty() {
        return nothing(format!(
            "every target group serving {} left it ({}), and okra never leaves a listener with \
             nothing to forward to",
            current.label(),
            left.iter()
                .map(|l| l.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Decision::ScaleIn { serving, left }
}

fn scale_out(ctx: &Ctx<'_>, version: &Version, serving: &[&str], left: Vec<Excluded>) -> Decision {
    let side = ctx.version_side(version);
    let serving: BTreeSet<&str> = serving.iter().copied().collect();
    let added: Vec<String> = side
        .members
        .iter()
        .filter(|m| {
            m.target_group_arn
                .as_deref()
                .is_none_or(|a| !serving.contains(a))
        })
        .filter_map(|m| m.cluster.clone())
        .collect();
    if added.is_empty() && !left.is_empty() {
        let arns: Vec<&str> = serving.into_iter().collect();
        return scale_in(&ctx.serving_side(Some(version.to_string()), &arns), left);
    }
    if added.is_empty() {
        let newer = match ctx.grouping.by_version.keys().next_back() {
            Some(newest) if newest > version => ctx.grouping.shortfall(ctx.spec),
            _ if !ctx.grouping.pending.is_empty() => {
                format!(
                    "{} matching cluster(s) are still being created",
                    ctx.grouping.pending.len()
                )
            }
            _ => "no newer version".to_string(),
        };
        return nothing(format!(
            "{version} serves at 100 % on all its {} cluster(s); {newer}",
            side.members.len()
        ));
    }
    // Serving groups that are no cluster's of the version (okra's groups whose cluster left it
    // are in `left`) stay in the action: a group okra did not make is never dropped.
    let mut members = side.members.clone();
    for arn in &serving {
        let leaves = left.iter().any(|l| l.target_group_arn == *arn);
        if !leaves
            && !members
                .iter()
                .any(|m| m.target_group_arn.as_deref() == Some(*arn))
        {
            members.push(Member {
                cluster: ctx.tg_by_arn.get(arn).map(|t| t.cluster.clone()),
                target_group_arn: Some((*arn).to_string()),
                vpc_id: None,
            });
        }
    }
    members.sort();
    let limit = if ctx.weighted() {
        MAX_TARGET_GROUPS_PER_ACTION
    } else {
        1
    };
    if members.len() > limit {
        return nothing(format!(
            "{} new cluster(s) of the serving {version} cannot join: the action would hold {} \
             target groups, at most {limit} fit",
            added.len(),
            members.len()
        ));
    }
    Decision::ScaleOut {
        serving: Side {
            version: Some(version.to_string()),
            members,
        },
        added,
        left,
    }
}

fn decide_split(
    ctx: &Ctx<'_>,
    observed: &Observed,
    a: (Option<String>, Vec<&str>),
    b: (Option<String>, Vec<&str>),
) -> Decision {
    let spec = ctx.spec;
    // The stable side is the unmanaged one, or else the lower version.
    let (stable, canary) = match (semver_of(&a.0), semver_of(&b.0)) {
        (Some(x), Some(y)) if y < x => (b, a),
        (Some(_), None) => (b, a),
        _ => (a, b),
    };
    let stable_side = ctx.serving_side(stable.0.clone(), &stable.1);
    let canary_serving = ctx.serving_side(canary.0.clone(), &canary.1);
    let canary_version = semver_of(&canary.0);
    let Some(cv) = canary_version else {
        return nothing("internal: the canary side has no version");
    };
    if observed.blocklist.contains(&cv.to_string()) {
        return Decision::Rollback {
            reason: format!("{cv} is blocked, yet still holds traffic: finishing its rollback"),
            from: canary_serving,
            to: stable_side,
        };
    }
    if let Some(pin) = spec
        .version
        .as_deref()
        .and_then(|p| versions::parse_version(p).ok())
        && cv > pin
    {
        return Decision::Rollback {
            reason: format!("the cell is pinned to {pin}, below {cv} which holds traffic"),
            from: canary_serving,
            to: stable_side,
        };
    }
    let canary_arns: BTreeSet<&str> = canary.1.iter().copied().collect();
    let canary_weight = match &observed.action {
        CurrentAction::Forward(fa) => fa.percent_to(&canary_arns),
        CurrentAction::Other { .. } => 0,
    };
    // The canary side is the version's clusters as discovered now (some may have no group yet),
    // plus serving groups of it okra did not make; a group whose cluster left the version does
    // not go on (shift-weights would fail the next step on it).
    let mut canary_side = ctx.version_side(&cv);
    let cv_name = cv.to_string();
    for m in canary_serving.members.iter() {
        let arn = m.target_group_arn.as_deref().unwrap_or_default();
        if ctx.left_version(arn, &cv_name).is_none()
            && !canary_side
                .members
                .iter()
                .any(|x| x.target_group_arn == m.target_group_arn)
        {
            canary_side.members.push(m.clone());
        }
    }
    canary_side.members.sort();
    if canary_side.members.is_empty() {
        return Decision::Rollback {
            reason: format!("no cluster carries {cv} any more, yet it holds traffic"),
            from: canary_serving,
            to: stable_side,
        };
    }
    let plan = ctx.cell.plan().clone();
    let from_step = resume_step(&plan, canary_weight);
    Decision::ResumeRollout {
        stable: stable_side,
        canary: canary_side,
        canary_weight,
        from_step,
        plan,
    }
}
