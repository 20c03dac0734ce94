//! Retiring old target groups: between rollouts, the groups of versions that no longer serve are
//! taken out of the listener's action, drained, deleted, and their clusters tagged
//! [`TAG_RETIRED`](crate::model::TAG_RETIRED) for your infrastructure code to delete.
//!
//! The rule, per okra target group of a cell ([`plan`]):
//! - a group with weight > 0 in the owned action serves, and is never touched (a group that
//!   serves again after a pin-back loses its idle mark, its cluster its retired tag);
//! - a group okra did not make ([`TargetGroup::managed`] false) is never touched;
//! - a group whose cluster is gone (not found, DELETING or FAILED) retires at once;
//! - a group of a version above the serving one that is not blocked may still be rolled out,
//!   and of the serving version it may be a scale-out: both are left;
//! - of the lower versions that are not blocked, the `keep` newest keep their groups for a quick
//!   pin-back;
//! - every other group (older versions, blocked versions, clusters that left the cell) is marked
//!   [`TAG_IDLE_SINCE`](crate::model::TAG_IDLE_SINCE) when first seen out of traffic, and
//!   retires once it has been idle for `after` (the bake of the version that replaced it).
//!
//! A pin-back to a retired version makes its groups again, as a rollback to a version that never
//! served does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Cluster, ClusterStatus, CurrentAction, TargetGroup};
use crate::spec::Retire;
use crate::versions::parse_version;

/// The longest `after`.
pub const MAX_AFTER: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The most versions `keep` may keep.
pub const MAX_KEEP: u32 = 5;

/// A cell's retirement policy, read from its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Whether okra retires anything in this cell.
    pub enabled: bool,
    /// How long a group stays idle before it retires.
    pub after: Duration,
    /// How many earlier versions keep their groups.
    pub keep: u32,
}

impl Policy {
    /// Reads the spec's `retire`; errors are (field, message).
    ///
    /// # Errors
    ///
    /// Each field out of range, with its path.
    pub fn read(spec: &Retire) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let after = match crate::duration::parse_duration(&spec.after) {
            Ok(d) if d <= MAX_AFTER => d,
            Ok(_) => {
                errors.push((
                    "retire.after".to_string(),
                    format!("`{}` is longer than 30d", spec.after),
                ));
                Duration::ZERO
            }
            Err(e) => {
                errors.push(("retire.after".to_string(), e.to_string()));
                Duration::ZERO
            }
        };
        if spec.keep > MAX_KEEP {
            errors.push((
                "retire.keep".to_string(),
                format!(
                    "{} is not in 0..={MAX_KEEP}: the earlier versions that keep their target \
                     groups (each holds one group per cluster against the ALB's 100)",
                    spec.keep
                ),
            ));
        }
        if errors.is_empty() {
            Ok(Self {
                enabled: spec.enabled,
                after,
                keep: spec.keep,
            })
        } else {
            Err(errors)
        }
    }
}

/// Why a group retires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// Idle for the policy's `after`.
    Baked,
    /// Its cluster is gone.
    ClusterGone,
}

impl Reason {
    /// Its name, as the JSON says it (`baked`, `clusterGone`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Baked => "baked",
            Self::ClusterGone => "clusterGone",
        }
    }
}

/// What happens to one group now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "fate")]
pub enum Fate {
    /// It receives traffic.
    Serving,
    /// okra did not make it: never touched.
    Foreign,
    /// A version that may still roll out (above the serving one, not blocked), or a group of the
    /// serving version not in the action yet.
    Pending,
    /// One of the `keep` versions below the serving one.
    Kept,
    /// Idle; it retires at `until` (seconds since the epoch).
    Baking {
        /// When.
        until: u64,
    },
    /// It retires now.
    Retire {
        /// Why.
        reason: Reason,
    },
}

impl Fate {
    /// Its name, as the JSON's `fate` says it (`serving`, `foreign`, `pending`, `kept`,
    /// `baking`, `retire`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Serving => "serving",
            Self::Foreign => "foreign",
            Self::Pending => "pending",
            Self::Kept => "kept",
            Self::Baking { .. } => "baking",
            Self::Retire { .. } => "retire",
        }
    }
}

/// One group's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPlan {
    /// The group.
    pub group: TargetGroup,
    /// What happens to it.
    #[serde(flatten)]
    pub fate: Fate,
    /// Tag it idle since now (first seen out of traffic).
    pub mark: bool,
    /// Remove its idle tag (it serves again).
    pub unmark: bool,
}

/// The plan for a cell's groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Each group, sorted by version then cluster.
    pub groups: Vec<GroupPlan>,
    /// Clusters to tag retired: those whose groups retire after their bake, the cluster still
    /// there.
    pub retire_clusters: Vec<String>,
    /// Clusters tagged retired that serve again: their tag goes.
    pub unretire_clusters: Vec<String>,
    /// Versions with a group retiring now.
    pub retired_versions: BTreeSet<String>,
}

impl Plan {
    /// The groups that retire now.
    pub fn retiring(&self) -> impl Iterator<Item = &GroupPlan> {
        self.groups
            .iter()
            .filter(|g| matches!(g.fate, Fate::Retire { .. }))
    }

    /// Whether it writes anything.
    pub fn is_empty(&self) -> bool {
        self.retiring().next().is_none()
            && !self.groups.iter().any(|g| g.mark || g.unmark)
            && self.unretire_clusters.is_empty()
    }
}

/// What the plan reads.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The cell's target groups okra found by its tags.
    pub groups: &'a [TargetGroup],
    /// The owned action as it is.
    pub action: &'a CurrentAction,
    /// Each group's cluster as DescribeCluster gives it (absent or `None`: not found), with
    /// whether it is still in the cell (its tags match the selector).
    pub clusters: &'a BTreeMap<String, (Option<Cluster>, bool)>,
    /// The cell's blocked versions (canonical).
    pub blocked: &'a BTreeSet<String>,
    /// Now, in seconds since the epoch.
    pub now: u64,
}

/// The plan (see the module's rule). A disabled policy, or an action that serves no okra group,
/// retires nothing.
pub fn plan(policy: &Policy, seen: &Observed<'_>) -> Plan {
    let serving_arns: BTreeSet<&str> = match seen.action {
        CurrentAction::Forward(f) => f.serving(),
        CurrentAction::Other { .. } => BTreeSet::new(),
    };
    let serving_versions: Vec<semver::Version> = seen
        .groups
        .iter()
        .filter(|g| serving_arns.contains(g.arn.as_str()))
        .filter_map(|g| parse_version(&g.version).ok())
        .collect();
    let top = serving_versions.iter().max().cloned();
    // The lower versions that are kept: the `keep` newest below the serving one, not blocked.
    let mut lower: BTreeSet<semver::Version> = BTreeSet::new();
    if let Some(top) = &top {
        for g in seen.groups {
            if let Ok(v) = parse_version(&g.version)
                && &v < top
                && !seen.blocked.contains(&v.to_string())
                && !serving_arns.contains(g.arn.as_str())
            {
                lower.insert(v);
            }
        }
    }
    let kept: BTreeSet<semver::Version> =
        lower.into_iter().rev().take(policy.keep as usize).collect();

    let mut out = Plan::default();
    for g in seen.groups {
        let (cluster, in_cell) = seen
            .clusters
            .get(&g.cluster)
            .map_or((None, false), |(c, m)| (c.as_ref(), *m));
        let gone = cluster
            .is_none_or(|c| matches!(c.status, ClusterStatus::Deleting | ClusterStatus::Failed));
        let version = parse_version(&g.version).ok();
        let blocked = version
            .as_ref()
            .is_some_and(|v| seen.blocked.contains(&v.to_string()));
        let idle = || match g.idle_since {
            None => (
                Fate::Baking {
                    until: seen.now + policy.after.as_secs(),
                },
                true,
            ),
            Some(t) if seen.now >= t + policy.after.as_secs() => (
                Fate::Retire {
                    reason: Reason::Baked,
                },
                false,
            ),
            Some(t) => (
                Fate::Baking {
                    until: t + policy.after.as_secs(),
                },
                false,
            ),
        };
        let serving = serving_arns.contains(g.arn.as_str());
        let (fate, mark) = if serving {
            (Fate::Serving, false)
        } else if !g.managed {
            (Fate::Foreign, false)
        } else if !policy.enabled || top.is_none() {
            (Fate::Pending, false)
        } else if gone {
            (
                Fate::Retire {
                    reason: Reason::ClusterGone,
                },
                false,
            )
        } else if !in_cell || blocked {
            idle()
        } else {
            match (&version, &top) {
                (Some(v), Some(top)) if v >= top => (Fate::Pending, false),
                (Some(v), _) if kept.contains(v) => (Fate::Kept, g.idle_since.is_none()),
                _ => idle(),
            }
        };
        if let Fate::Retire { reason } = fate {
            out.retired_versions
                .insert(crate::versions::canonical(&g.version));
            if reason == Reason::Baked && !gone {
                out.retire_clusters.push(g.cluster.clone());
            }
        }
        if serving && cluster.is_some_and(|c| c.tags.contains_key(crate::model::TAG_RETIRED)) {
            out.unretire_clusters.push(g.cluster.clone());
        }
        out.groups.push(GroupPlan {
            group: g.clone(),
            fate,
            mark,
            unmark: serving && g.idle_since.is_some(),
        });
    }
    out.groups.sort_by(|a, b| {
        let v = |g: &GroupPlan| parse_version(&g.group.version).ok();
        v(a).cmp(&v(b))
            .then_with(|| a.group.cluster.cmp(&b.group.cluster))
    });
    out.retire_clusters.sort();
    out.retire_clusters.dedup();
    out.unretire_clusters.sort();
    out.unretire_clusters.dedup();
    out
}

/// An action of a listener or rule that forwards to a group, as the ELB adapter finds them
/// before a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardUse {
    /// The listener or rule.
    pub arn: String,
    /// Whether `arn` is a rule (else a listener's default action).
    #[serde(default)]
    pub rule: bool,
    /// Whether the rule is okra's standby rule ([`crate::standby`]): its condition never
    /// matches, so its weights send no traffic.
    #[serde(default)]
    pub standby: bool,
    /// The group's weight there.
    pub weight: u32,
}

/// Whether a group may be deleted given every action that forwards to it: only when none sends
/// it traffic (weight > 0). The uses at weight 0 must be removed first.
///
/// # Errors
///
/// The listener or rule that still sends it traffic.
pub fn may_delete(uses: &[ForwardUse]) -> Result<Vec<&str>, String> {
    // (A standby rule's weights send no traffic: its condition never matches.)
    if let Some(u) = uses.iter().find(|u| u.weight > 0 && !u.standby) {
        return Err(format!(
            "{} still forwards to it with weight {}",
            u.arn, u.weight
        ));
    }
    Ok(uses.iter().map(|u| u.arn.as_str()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ForwardAction, WeightedTarget};

    fn group(cluster: &str, version: &str, idle: Option<u64>) -> TargetGroup {
        TargetGroup {
            arn: format!("arn:tg/{cluster}"),
            name: cluster.into(),
            cluster: cluster.into(),
            version: version.into(),
            managed: true,
            idle_since: idle,
        }
    }

    fn cluster(name: &str) -> Cluster {
        Cluster {
            name: name.into(),
            status: ClusterStatus::Active,
            tags: BTreeMap::new(),
            vpc_id: None,
            access: None,
        }
    }

    fn forward(arns: &[(&str, u32)]) -> CurrentAction {
        CurrentAction::Forward(ForwardAction {
            targets: arns
                .iter()
                .map(|(a, w)| WeightedTarget {
                    target_group_arn: format!("arn:tg/{a}"),
                    weight: *w,
                })
                .collect(),
            stickiness: None,
        })
    }

    const POLICY: Policy = Policy {
        enabled: true,
        after: Duration::from_secs(3600),
        keep: 1,
    };

    fn fates(plan: &Plan) -> Vec<(String, Fate, bool)> {
        plan.groups
            .iter()
            .map(|g| (g.group.cluster.clone(), g.fate, g.mark))
            .collect()
    }

    fn all_here(names: &[&str]) -> BTreeMap<String, (Option<Cluster>, bool)> {
        names
            .iter()
            .map(|n| (n.to_string(), (Some(cluster(n)), true)))
            .collect()
    }

    #[test]
    fn serving_kept_and_older_versions_bake_then_retire() {
        let groups = [
            group("v1", "1.0.0", Some(1_000)),
            group("v2", "1.1.0", None),
            group("v3", "1.2.0", None),
            group("v4", "2.0.0", None),
        ];
        let action = forward(&[("v3", 100), ("v2", 0)]);
        let clusters = all_here(&["v1", "v2", "v3", "v4"]);
        let blocked = BTreeSet::new();
        let seen = Observed {
            groups: &groups,
            action: &action,
            clusters: &clusters,
            blocked: &blocked,
            now: 4_000,
        };
        let p = plan(&POLICY, &seen);
        assert_eq!(
            fates(&p),
            vec![
                ("v1".into(), Fate::Baking { until: 4_600 }, false),
                ("v2".into(), Fate::Kept, true),
                ("v3".into(), Fate::Serving, false),
                ("v4".into(), Fate::Pending, false),
            ]
        );
        let later = Observed { now: 4_600, ..seen };
        let p = plan(&POLICY, &later);
        assert_eq!(
            p.groups[0].fate,
            Fate::Retire {
                reason: Reason::Baked
            }
        );
        assert_eq!(p.retire_clusters, vec!["v1".to_string()]);
        assert_eq!(p.retired_versions, BTreeSet::from(["1.0.0".to_string()]));
    }

    #[test]
    fn blocked_versions_bake_and_gone_clusters_retire_at_once() {
        let groups = [
            group("new", "2.0.0", Some(0)),
            group("cur", "1.0.0", None),
            group("dead", "0.9.0", None),
        ];
        let action = forward(&[("cur", 100), ("new", 0)]);
        let mut clusters = all_here(&["new", "cur"]);
        clusters.insert("dead".into(), (None, false));
        let blocked = BTreeSet::from(["2.0.0".to_string()]);
        let p = plan(
            &POLICY,
            &Observed {
                groups: &groups,
                action: &action,
                clusters: &clusters,
                blocked: &blocked,
                now: 4_000,
            },
        );
        assert_eq!(
            fates(&p),
            vec![
                (
                    "dead".into(),
                    Fate::Retire {
                        reason: Reason::ClusterGone
                    },
                    false
                ),
                ("cur".into(), Fate::Serving, false),
                (
                    "new".into(),
                    Fate::Retire {
                        reason: Reason::Baked
                    },
                    false
                ),
            ]
        );
        assert_eq!(p.retire_clusters, vec!["new".to_string()], "dead is gone");
    }

    #[test]
    fn foreign_groups_and_cells_without_traffic_are_left() {
        let mut foreign = group("f", "0.1.0", Some(0));
        foreign.managed = false;
        let groups = [foreign, group("a", "1.0.0", None)];
        let clusters = all_here(&["f", "a"]);
        let blocked = BTreeSet::new();
        let action = forward(&[("a", 100)]);
        let p = plan(
            &POLICY,
            &Observed {
                groups: &groups,
                action: &action,
                clusters: &clusters,
                blocked: &blocked,
                now: 1_000_000,
            },
        );
        assert_eq!(p.groups[0].fate, Fate::Foreign);
        let none = CurrentAction::Other {
            action_type: "fixed-response".into(),
        };
        let p = plan(
            &POLICY,
            &Observed {
                groups: &groups[1..],
                action: &none,
                clusters: &clusters,
                blocked: &blocked,
                now: 1_000_000,
            },
        );
        assert_eq!(p.groups[0].fate, Fate::Pending);
        assert!(p.is_empty());
    }

    #[test]
    fn a_pin_back_unmarks_and_unretires() {
        let groups = [group("old", "1.0.0", Some(10)), group("cur", "1.1.0", None)];
        let action = forward(&[("old", 100), ("cur", 0)]);
        let mut clusters = all_here(&["old", "cur"]);
        clusters
            .get_mut("old")
            .and_then(|(c, _)| c.as_mut())
            .map(|c| c.tags.insert(crate::model::TAG_RETIRED.into(), "x".into()));
        let blocked = BTreeSet::new();
        let p = plan(
            &POLICY,
            &Observed {
                groups: &groups,
                action: &action,
                clusters: &clusters,
                blocked: &blocked,
                now: 100,
            },
        );
        assert!(p.groups[0].unmark);
        assert_eq!(p.unretire_clusters, vec!["old".to_string()]);
        // 1.1.0 is above the serving 1.0.0 and not blocked: it may roll out again.
        assert_eq!(p.groups[1].fate, Fate::Pending);
    }

    #[test]
    fn names_are_the_json_names() {
        for f in [
            Fate::Serving,
            Fate::Foreign,
            Fate::Pending,
            Fate::Kept,
            Fate::Baking { until: 1 },
            Fate::Retire {
                reason: Reason::Baked,
            },
        ] {
            assert_eq!(serde_json::to_value(f).unwrap()["fate"], f.name());
        }
        for r in [Reason::Baked, Reason::ClusterGone] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.name());
        }
    }

    #[test]
    fn policy_fields_are_checked_and_deletes_wait_for_zero_weights() {
        let bad = Retire {
            enabled: true,
            after: "40d".into(),
            keep: 9,
        };
        let errors = Policy::read(&bad).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].0, "retire.after");
        assert_eq!(errors[1].0, "retire.keep");
        let ok = Policy::read(&Retire::default()).unwrap();
        assert_eq!(ok.after, Duration::from_secs(3600));
        let uses = [
            ForwardUse {
                arn: "l1".into(),
                rule: false,
                standby: false,
                weight: 0,
            },
            ForwardUse {
                arn: "standby".into(),
                rule: true,
                standby: true,
                weight: 1,
            },
            ForwardUse {
                arn: "r2".into(),
                rule: true,
                standby: false,
                weight: 3,
            },
        ];
        assert!(may_delete(&uses).unwrap_err().contains("r2"));
        assert_eq!(may_delete(&uses[..2]).unwrap(), vec!["l1", "standby"]);
    }
}
