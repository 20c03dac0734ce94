//! Target health as okra's gates read it: the readiness gate before traffic moves, and the check
//! of every member before each weight change.
//!
//! AWS sends traffic only to healthy targets of a group, and to all of them when none is healthy
//! (fail open: ALB guide, "Health checks for Application Load Balancer target groups"). A
//! group whose cluster is gone has no healthy target left: weighting it would send its share
//! into the void or onto broken targets. So before each weight change:
//! - a canary group below the gate fails the step (the rollout rolls back, as for a failed
//!   analysis);
//! - a stable group below the gate leaves the forward action and the other stable groups share
//!   its weight, unless no stable group meets the gate (then all stay: AWS's fail-open is better
//!   than nothing).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether `healthy` of `total` meets a gate of `min_percent` %. No targets at all meet only a
/// gate of 0 %: a group nobody registered in is not ready.
pub fn meets_gate(healthy: u32, total: u32, min_percent: u8) -> bool {
    if min_percent == 0 {
        return true;
    }
    total > 0 && u64::from(healthy) * 100 >= u64::from(min_percent) * u64::from(total)
}

/// The readiness gate over a version's target groups (each labelled by its cluster, or its
/// ARN): ready when every group meets it; the reason names the groups that do not.
pub fn readiness(groups: &[(&str, Health)], min_percent: u8) -> (bool, String) {
    let short: Vec<String> = groups
        .iter()
        .filter(|(_, h)| !meets_gate(h.healthy, h.total, min_percent))
        .map(|(label, h)| {
            format!(
                "{label}: {} of {} targets healthy (needs {min_percent} %)",
                h.healthy, h.total
            )
        })
        .collect();
    if short.is_empty() {
        let n = groups.len();
        return (
            true,
            format!("{n} of {n} target group(s) ready (at least {min_percent} % healthy)"),
        );
    }
    (false, short.join("; "))
}

/// A target group's health counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Targets in state `healthy`.
    pub healthy: u32,
    /// Registered targets (draining ones aside).
    pub total: u32,
}

/// A group left out of a step, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Excluded {
    /// The target group.
    pub target_group_arn: String,
    /// One line for people.
    pub reason: String,
}

/// What the check allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberCheck {
    /// Go on with these stable groups (the others are excluded, with reasons).
    Go {
        /// The stable groups that keep a weight.
        stable: Vec<String>,
        /// Stable groups left out.
        excluded: Vec<Excluded>,
    },
    /// A canary group is below the gate: the step fails.
    CanaryUnhealthy(Vec<Excluded>),
}

fn reason(h: Option<&Health>, min_percent: u8) -> String {
    match h {
        Some(h) => format!(
            "{} of {} targets healthy, the gate needs {min_percent} %",
            h.healthy, h.total
        ),
        None => "no health reading".to_string(),
    }
}

/// Checks every member before a step that gives the canary `canary_weight` %: `health` by
/// target group ARN.
pub fn check_members(
    stable: &[String],
    canary: &[String],
    canary_weight: u32,
    health: &BTreeMap<String, Health>,
    min_percent: u8,
) -> MemberCheck {
    if min_percent == 0 {
        return MemberCheck::Go {
            stable: stable.to_vec(),
            excluded: Vec::new(),
        };
    }
    let below = |arn: &String| {
        let h = health.get(arn);
        (!h.is_some_and(|h| meets_gate(h.healthy, h.total, min_percent))).then(|| Excluded {
            target_group_arn: arn.clone(),
            reason: reason(h, min_percent),
        })
    };
    if canary_weight > 0 {
        let bad: Vec<Excluded> = canary.iter().filter_map(below).collect();
        if !bad.is_empty() {
            return MemberCheck::CanaryUnhealthy(bad);
        }
    }
    without(stable, stable.iter().filter_map(below).collect())
}

/// The stable groups but the `excluded` ones; all of them when every one is excluded (AWS
/// fails open within a group too: better than forwarding nowhere).
fn without(stable: &[String], excluded: Vec<Excluded>) -> MemberCheck {
    if excluded.len() == stable.len() {
        return MemberCheck::Go {
            stable: stable.to_vec(),
            excluded: Vec::new(),
        };
    }
    MemberCheck::Go {
        stable: stable
            .iter()
            .filter(|a| !excluded.iter().any(|e| &e.target_group_arn == *a))
            .cloned()
            .collect(),
        excluded,
    }
}

/// A member's cluster as read before a step (DescribeCluster): whether it is ACTIVE, and its
/// version tag's value. A cluster that is gone reads as `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNow {
    /// Its status is ACTIVE.
    pub active: bool,
    /// Its version tag's value, if it has one.
    pub version: Option<String>,
}

/// Why `cluster` no longer serves `version` (`None`: it does): gone, not ACTIVE, or tagged
/// with another version.
pub fn member_changed(cluster: &str, now: Option<&ClusterNow>, version: &str) -> Option<String> {
    match now {
        None => Some(format!("cluster {cluster} is gone")),
        Some(c) if !c.active => Some(format!("cluster {cluster} is not ACTIVE")),
        Some(c) => match c.version.as_deref().map(crate::versions::canonical) {
            Some(v) if v == version => None,
            Some(v) => Some(format!(
                "cluster {cluster} now carries version {v}, not {version}"
            )),
            None => Some(format!("cluster {cluster} carries no version tag")),
        },
    }
}

/// Checks every member's cluster before a step that gives the canary `canary_weight` %,
/// whatever the readiness gate: a canary member whose cluster is gone, not ACTIVE or tagged
/// with another version fails the step (the rollout rolls back, naming it; a rollback to 0 %
/// is never refused); such a stable member leaves the action and the others share its weight,
/// unless none is left. Members are `(target group, cluster)`; those without a cluster (target
/// groups okra did not make) are not checked. `now` is keyed by cluster (absent: gone).
pub fn check_clusters(
    stable: (&[(String, Option<String>)], &str),
    canary: (&[(String, Option<String>)], &str),
    canary_weight: u32,
    now: &BTreeMap<String, ClusterNow>,
) -> MemberCheck {
    let changed = |members: &[(String, Option<String>)], version: &str| -> Vec<Excluded> {
        members
            .iter()
            .filter_map(|(arn, cluster)| {
                let cluster = cluster.as_deref()?;
                member_changed(cluster, now.get(cluster), version).map(|reason| Excluded {
                    target_group_arn: arn.clone(),
                    reason,
                })
            })
            .collect()
    };
    if canary_weight > 0 {
        let bad = changed(canary.0, canary.1);
        if !bad.is_empty() {
            return MemberCheck::CanaryUnhealthy(bad);
        }
    }
    let all: Vec<String> = stable.0.iter().map(|(a, _)| a.clone()).collect();
    without(&all, changed(stable.0, stable.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_whose_cluster_left_its_version_fails_the_canary_or_leaves_the_stable_side() {
        let now: BTreeMap<String, ClusterNow> = [
            ("a1", true, Some("1.0.0")),
            ("a2", true, Some("1.0.0")),
            ("b1", true, Some("v1.2.0")),
            ("b2", false, Some("1.1.0")),
        ]
        .into_iter()
        .map(|(c, active, v)| {
            (
                c.to_string(),
                ClusterNow {
                    active,
                    version: v.map(str::to_string),
                },
            )
        })
        .collect();
        let m = |pairs: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            pairs
                .iter()
                .map(|(a, c)| ((*a).to_string(), c.map(str::to_string)))
                .collect()
        };
        let stable = m(&[("tg-a1", Some("a1")), ("tg-a3", Some("a3"))]);
        let canary = m(&[("tg-b1", Some("b1")), ("tg-b2", Some("b2"))]);
        let MemberCheck::CanaryUnhealthy(bad) =
            check_clusters((&stable, "1.0.0"), (&canary, "1.1.0"), 30, &now)
        else {
            panic!("a re-tagged canary cluster fails the step");
        };
        let reasons: Vec<&str> = bad.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "cluster b1 now carries version 1.2.0, not 1.1.0",
                "cluster b2 is not ACTIVE"
            ]
        );
        // A rollback (canary to 0 %) is never refused; the stable member whose cluster is gone
        // leaves, the other keeps the traffic.
        assert_eq!(
            check_clusters((&stable, "1.0.0"), (&canary, "1.1.0"), 0, &now),
            MemberCheck::Go {
                stable: vec!["tg-a1".to_string()],
                excluded: vec![Excluded {
                    target_group_arn: "tg-a3".into(),
                    reason: "cluster a3 is gone".into()
                }],
            }
        );
        // Unmanaged groups (no cluster) are not checked; nobody left: everyone stays.
        let unmanaged = m(&[("tg-x", None)]);
        let gone = m(&[("tg-a3", Some("a3"))]);
        assert!(matches!(
            check_clusters((&unmanaged, "1.0.0"), (&canary[..1], "1.2.0"), 50, &now),
            MemberCheck::Go { ref excluded, .. } if excluded.is_empty()
        ));
        assert!(matches!(
            check_clusters((&gone, "1.0.0"), (&[], "1.1.0"), 0, &now),
            MemberCheck::Go { ref stable, ref excluded } if stable.len() == 1 && excluded.is_empty()
        ));
    }

    #[test]
    fn readiness_needs_every_group_and_names_the_short_ones() {
        let h = |healthy, total| Health { healthy, total };
        assert_eq!(
            readiness(&[("a", h(2, 2)), ("b", h(1, 2))], 50),
            (
                true,
                "2 of 2 target group(s) ready (at least 50 % healthy)".to_string()
            )
        );
        assert_eq!(
            readiness(&[("a", h(2, 2)), ("b", h(0, 2)), ("c", h(0, 0))], 50),
            (
                false,
                "b: 0 of 2 targets healthy (needs 50 %); c: 0 of 0 targets healthy (needs 50 %)"
                    .to_string()
            )
        );
    }

    fn h(healthy: u32, total: u32) -> Health {
        Health { healthy, total }
    }

    fn arns(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn gate() {
        assert!(meets_gate(0, 0, 0));
        assert!(!meets_gate(0, 0, 50));
        assert!(meets_gate(1, 2, 50));
        assert!(!meets_gate(1, 3, 50));
        assert!(meets_gate(3, 3, 100));
        assert!(!meets_gate(2, 3, 100));
    }

    #[test]
    fn a_lost_canary_fails_the_step_and_a_lost_stable_member_leaves() {
        let health = BTreeMap::from([
            ("s1".to_string(), h(2, 2)),
            ("s2".to_string(), h(0, 0)),
            ("c1".to_string(), h(2, 2)),
            ("c2".to_string(), h(0, 2)),
        ]);
        let stable = arns(&["s1", "s2"]);
        match check_members(&stable, &arns(&["c1", "c2"]), 30, &health, 100) {
            MemberCheck::CanaryUnhealthy(bad) => {
                assert_eq!(bad.len(), 1);
                assert_eq!(bad[0].target_group_arn, "c2");
                assert!(bad[0].reason.contains("0 of 2"), "{}", bad[0].reason);
            }
            other => panic!("{other:?}"),
        }
        match check_members(&stable, &arns(&["c1"]), 30, &health, 100) {
            MemberCheck::Go { stable, excluded } => {
                assert_eq!(stable, ["s1"]);
                assert_eq!(excluded.len(), 1);
                assert_eq!(excluded[0].target_group_arn, "s2");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_gate_checks_nothing_and_an_all_unhealthy_stable_side_stays() {
        let health = BTreeMap::new();
        assert_eq!(
            check_members(&arns(&["s1"]), &arns(&["c1"]), 30, &health, 0),
            MemberCheck::Go {
                stable: arns(&["s1"]),
                excluded: vec![]
            }
        );
        let health = BTreeMap::from([("s1".to_string(), h(0, 2)), ("c1".to_string(), h(2, 2))]);
        assert_eq!(
            check_members(&arns(&["s1"]), &arns(&["c1"]), 30, &health, 100),
            MemberCheck::Go {
                stable: arns(&["s1"]),
                excluded: vec![]
            }
        );
        // A canary at 0 % (a rollback) is not checked.
        let health = BTreeMap::from([("s1".to_string(), h(2, 2))]);
        assert!(matches!(
            check_members(&arns(&["s1"]), &arns(&["c1"]), 0, &health, 100),
            MemberCheck::Go { .. }
        ));
    }
}
