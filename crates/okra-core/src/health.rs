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
    let excluded: Vec<Excluded> = stable.iter().filter_map(below).collect();
    if excluded.len() == stable.len() {
        // None meets the gate: keep them all (AWS fails open within a group, too).
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

#[cfg(test)]
mod tests {
    use super::*;

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
