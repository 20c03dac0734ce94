//! The forward action for "the new version gets W %".
//!
//! Laws (property-tested below):
//! - the weights sum to exactly 100;
//! - each side's share is split evenly: two groups of one side differ by at most 1;
//! - the canary side gets exactly `W` and the stable side `100 - W`;
//! - while `W < 100` some stable group has a positive weight, and while `W > 0` some canary group;
//! - a side whose share is 0 is pruned (its groups leave the action), so that at 0 % and 100 %
//!   only one version's groups stand in the action;
//! - the result is sorted, so the same inputs give the same action.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{CurrentAction, ForwardAction, ForwardStickiness, WeightedTarget};

/// At most this many target groups in one forward action (an AWS limit).
pub const MAX_TARGET_GROUPS_PER_ACTION: usize = 5;
/// The largest weight AWS accepts for one target group.
pub const MAX_WEIGHT: u32 = 999;

/// Why a forward action cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WeightError {
    /// More than 100 %.
    #[error("a canary weight of {weight} is not in 0..=100")]
    OutOfRange {
        /// The weight asked for.
        weight: u32,
    },
    /// Traffic must go somewhere, and the stable side is empty.
    #[error("{weight} % to the new version leaves {rest} % with no stable target group to take it")]
    NoStable {
        /// The weight asked for.
        weight: u32,
        /// What the stable side should have taken.
        rest: u32,
    },
    /// The canary side is empty but asked to take traffic.
    #[error("{weight} % to the new version, but it has no target group")]
    NoCanary {
        /// The weight asked for.
        weight: u32,
    },
    /// More target groups than a forward action holds.
    #[error(
        "the action would forward to {count} target groups, but a forward action holds at most {MAX_TARGET_GROUPS_PER_ACTION}"
    )]
    TooMany {
        /// How many it would need.
        count: usize,
    },
    /// The same target group on both sides.
    #[error("target group {arn} is on both the stable and the canary side")]
    Overlap {
        /// The group.
        arn: String,
    },
}

/// Splits `total` over `n` parts as evenly as integers allow: the first `total % n` parts get one
/// more. Empty when `n` is 0.
pub fn split_even(total: u32, n: usize) -> Vec<u32> {
    if n == 0 {
        return Vec::new();
    }
    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
    let base = total / n32;
    let extra = (total % n32) as usize;
    (0..n).map(|i| base + u32::from(i < extra)).collect()
}

/// The forward action that gives the canary side `canary_percent` % and the stable side the rest.
/// Target groups are taken in sorted order, so the result does not depend on input order.
pub fn forward_action(
    stable: &[String],
    canary: &[String],
    canary_percent: u32,
    stickiness: Option<ForwardStickiness>,
) -> Result<ForwardAction, WeightError> {
    if canary_percent > 100 {
        return Err(WeightError::OutOfRange {
            weight: canary_percent,
        });
    }
    let stable: BTreeSet<&String> = stable.iter().collect();
    let canary: BTreeSet<&String> = canary.iter().collect();
    if let Some(arn) = stable.intersection(&canary).next() {
        return Err(WeightError::Overlap {
            arn: (*arn).clone(),
        });
    }
    let rest = 100 - canary_percent;
    if rest > 0 && stable.is_empty() {
        return Err(WeightError::NoStable {
            weight: canary_percent,
            rest,
        });
    }
    if canary_percent > 0 && canary.is_empty() {
        return Err(WeightError::NoCanary {
            weight: canary_percent,
        });
    }
    let mut targets = Vec::new();
    let mut side = |arns: &BTreeSet<&String>, share: u32| {
        if share == 0 {
            return;
        }
        for (arn, weight) in arns.iter().zip(split_even(share, arns.len())) {
            targets.push(WeightedTarget {
                target_group_arn: (*arn).clone(),
                weight,
            });
        }
    };
    side(&stable, rest);
    side(&canary, canary_percent);
    if targets.len() > MAX_TARGET_GROUPS_PER_ACTION {
        return Err(WeightError::TooMany {
            count: targets.len(),
        });
    }
    targets.sort();
    Ok(ForwardAction {
        targets,
        stickiness,
    })
}

/// The action that sends everything to `arns`, evenly (a switch, a rollback or a scale-out).
pub fn all_to(
    arns: &[String],
    stickiness: Option<ForwardStickiness>,
) -> Result<ForwardAction, WeightError> {
    forward_action(&[], arns, 100, stickiness)
}

/// The action with `groups` standing by at weight 0: every weight the current action holds stays
/// as it is, and each of `groups` that is not in it yet joins at 0.
///
/// This is how new target groups get health-checked before they take traffic: AWS checks the
/// targets of a group only while a listener rule forwards to it (a group no rule names has
/// `unused` targets, reason `Target.NotInUse`), and a weight of 0 sends it nothing. A current
/// action that is not a forward action (a fixed response before the first version) becomes a
/// forward action whose groups all stand at 0.
pub fn with_standby(
    current: &CurrentAction,
    groups: &[String],
    stickiness: Option<ForwardStickiness>,
) -> Result<ForwardAction, WeightError> {
    let mut action = match current {
        CurrentAction::Forward(fa) => fa.clone(),
        CurrentAction::Other { .. } => ForwardAction::default(),
    };
    for arn in groups.iter().collect::<BTreeSet<_>>() {
        if !action.targets.iter().any(|t| &t.target_group_arn == arn) {
            action.targets.push(WeightedTarget {
                target_group_arn: arn.clone(),
                weight: 0,
            });
        }
    }
    if action.targets.len() > MAX_TARGET_GROUPS_PER_ACTION {
        return Err(WeightError::TooMany {
            count: action.targets.len(),
        });
    }
    action.stickiness = stickiness.or(action.stickiness);
    action.targets.sort();
    Ok(action)
}

/// The action without those of `groups` that stand at weight 0 (the undo of [`with_standby`]):
/// a group that takes traffic stays, so no weight changes. `None` when the current action is not
/// a forward action (nothing to take out).
pub fn without_standby(current: &CurrentAction, groups: &[String]) -> Option<ForwardAction> {
    let CurrentAction::Forward(fa) = current else {
        return None;
    };
    let mut action = fa.clone();
    action
        .targets
        .retain(|t| t.weight > 0 || !groups.contains(&t.target_group_arn));
    Some(action)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arns(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("arn:tg/{prefix}{i}")).collect()
    }

    fn weight_of(a: &ForwardAction, arn: &str) -> u32 {
        a.targets
            .iter()
            .find(|t| t.target_group_arn == arn)
            .map_or(0, |t| t.weight)
    }

    #[test]
    fn two_and_two_at_30() {
        let a = forward_action(&arns("s", 2), &arns("c", 2), 30, None).unwrap();
        assert_eq!(weight_of(&a, "arn:tg/c0"), 15);
        assert_eq!(weight_of(&a, "arn:tg/c1"), 15);
        assert_eq!(weight_of(&a, "arn:tg/s0"), 35);
        assert_eq!(weight_of(&a, "arn:tg/s1"), 35);
    }

    #[test]
    fn odd_split_gives_the_extra_to_the_first_sorted() {
        assert_eq!(split_even(10, 3), vec![4, 3, 3]);
        assert_eq!(split_even(1, 2), vec![1, 0]);
        assert_eq!(split_even(0, 2), vec![0, 0]);
        assert!(split_even(5, 0).is_empty());
    }

    #[test]
    fn zero_and_hundred_prune_the_other_side() {
        let a = forward_action(&arns("s", 2), &arns("c", 2), 0, None).unwrap();
        assert_eq!(a.targets.len(), 2);
        assert!(a.targets.iter().all(|t| t.target_group_arn.contains("/s")));
        let a = forward_action(&arns("s", 2), &arns("c", 2), 100, None).unwrap();
        assert_eq!(a.targets.len(), 2);
        assert!(a.targets.iter().all(|t| t.target_group_arn.contains("/c")));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            forward_action(&arns("s", 1), &arns("c", 1), 101, None),
            Err(WeightError::OutOfRange { weight: 101 })
        );
        assert_eq!(
            forward_action(&[], &arns("c", 1), 40, None),
            Err(WeightError::NoStable {
                weight: 40,
                rest: 60
            })
        );
        assert_eq!(
            forward_action(&arns("s", 1), &[], 40, None),
            Err(WeightError::NoCanary { weight: 40 })
        );
        assert_eq!(
            forward_action(&arns("s", 3), &arns("c", 3), 40, None),
            Err(WeightError::TooMany { count: 6 })
        );
        assert_eq!(
            forward_action(&arns("x", 1), &arns("x", 1), 40, None),
            Err(WeightError::Overlap {
                arn: "arn:tg/x0".into()
            })
        );
        // At 100 % three stable groups leave the action, so three canary groups fit with them.
        assert!(forward_action(&arns("s", 3), &arns("c", 3), 100, None).is_ok());
    }

    #[test]
    fn stickiness_is_carried() {
        let s = ForwardStickiness {
            enabled: true,
            duration_seconds: 3600,
        };
        let a = forward_action(&arns("s", 1), &arns("c", 1), 50, Some(s)).unwrap();
        assert_eq!(a.stickiness, Some(s));
    }

    #[test]
    fn percent_to_reads_back_the_share() {
        let a = forward_action(&arns("s", 2), &arns("c", 2), 30, None).unwrap();
        let canary: Vec<String> = arns("c", 2);
        let set = canary.iter().map(String::as_str).collect();
        assert_eq!(a.percent_to(&set), 30);
    }

    #[test]
    fn standby_keeps_every_weight_and_adds_zeros() {
        let cur = CurrentAction::Forward(forward_action(&arns("s", 2), &[], 0, None).unwrap());
        let a = with_standby(&cur, &arns("c", 2), None).unwrap();
        assert_eq!(a.targets.len(), 4);
        assert_eq!(weight_of(&a, "arn:tg/s0"), 50);
        assert_eq!(weight_of(&a, "arn:tg/c0"), 0);
        assert!(a.targets.iter().any(|t| t.target_group_arn == "arn:tg/c1"));
        let CurrentAction::Forward(before) = &cur else {
            unreachable!()
        };
        assert!(a.same_weights(before));
        // Twice is once.
        assert_eq!(
            with_standby(&CurrentAction::Forward(a.clone()), &arns("c", 2), None),
            Ok(a.clone())
        );
        // And it is undone without touching a weight.
        let back = without_standby(&CurrentAction::Forward(a), &arns("c", 2)).unwrap();
        assert_eq!(back.targets.len(), 2);
        assert!(back.same_weights(before));
    }

    #[test]
    fn standby_before_the_first_version_and_its_limit() {
        let fixed = CurrentAction::Other {
            action_type: "fixed-response".into(),
        };
        let a = with_standby(&fixed, &arns("c", 2), None).unwrap();
        assert_eq!(a.total_weight(), 0);
        assert_eq!(a.targets.len(), 2);
        assert_eq!(without_standby(&fixed, &arns("c", 2)), None);
        let cur = CurrentAction::Forward(forward_action(&arns("s", 3), &[], 0, None).unwrap());
        assert_eq!(
            with_standby(&cur, &arns("c", 3), None),
            Err(WeightError::TooMany { count: 6 })
        );
    }

    #[test]
    fn taking_standby_groups_out_leaves_serving_ones() {
        let cur =
            CurrentAction::Forward(forward_action(&arns("s", 1), &arns("c", 1), 30, None).unwrap());
        let a = without_standby(&cur, &arns("c", 1)).unwrap();
        assert_eq!(weight_of(&a, "arn:tg/c0"), 30);
    }

    proptest! {
        #[test]
        fn laws_hold(ns in 0usize..4, nc in 0usize..4, w in 0u32..=100, shuffle in any::<bool>()) {
            let mut s = arns("s", ns);
            let c = arns("c", nc);
            if shuffle { s.reverse(); }
            match forward_action(&s, &c, w, None) {
                Ok(a) => {
                    prop_assert_eq!(a.total_weight(), 100);
                    prop_assert!(a.targets.len() <= MAX_TARGET_GROUPS_PER_ACTION);
                    prop_assert!(a.targets.iter().all(|t| t.weight <= MAX_WEIGHT));
                    let side = |p: &str| a.targets.iter().filter(|t| t.target_group_arn.contains(p)).map(|t| t.weight).collect::<Vec<_>>();
                    let (sw, cw) = (side("/s"), side("/c"));
                    prop_assert_eq!(cw.iter().sum::<u32>(), w);
                    prop_assert_eq!(sw.iter().sum::<u32>(), 100 - w);
                    for v in [&sw, &cw] {
                        if let (Some(max), Some(min)) = (v.iter().max(), v.iter().min()) {
                            prop_assert!(max - min <= 1);
                        }
                    }
                    if w < 100 { prop_assert!(sw.iter().any(|&x| x > 0)); }
                    if w > 0 { prop_assert!(cw.iter().any(|&x| x > 0)); }
                    if w == 0 { prop_assert!(cw.is_empty()); }
                    if w == 100 { prop_assert!(sw.is_empty()); }
                    // Deterministic whatever the input order.
                    let mut s2 = s.clone();
                    s2.reverse();
                    prop_assert_eq!(forward_action(&s2, &c, w, None).unwrap(), a);
                }
                Err(WeightError::NoStable { .. }) => prop_assert!(ns == 0 && w < 100),
                Err(WeightError::NoCanary { .. }) => prop_assert!(nc == 0 && w > 0),
                Err(WeightError::TooMany { count }) => prop_assert!(count > MAX_TARGET_GROUPS_PER_ACTION),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn split_even_sums_and_is_even(total in 0u32..2000, n in 1usize..8) {
            let v = split_even(total, n);
            prop_assert_eq!(v.len(), n);
            prop_assert_eq!(v.iter().sum::<u32>(), total);
            prop_assert!(v.iter().max().unwrap() - v.iter().min().unwrap() <= 1);
        }
    }
}
