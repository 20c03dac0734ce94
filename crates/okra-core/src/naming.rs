//! Deterministic names: the same cell and cluster always give the same target group name, so a
//! task that runs twice finds what its first run made instead of making another.

/// ELB target group names: at most 32 characters of `a-zA-Z0-9-`, no hyphen at either end.
pub const MAX_TARGET_GROUP_NAME: usize = 32;
/// Step Functions execution names: at most 80 characters.
pub const MAX_EXECUTION_NAME: usize = 80;

/// FNV-1a, 32 bits: a stable hash (unlike std's, which may change between Rust releases).
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn sanitize(s: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        let ch = if keep(ch) { ch } else { '-' };
        if !(ch == '-' && out.ends_with('-')) {
            out.push(ch);
        }
    }
    out.trim_matches('-').to_string()
}

/// The target group name of a cluster in a cell: a readable prefix from both names, cut to fit,
/// and 8 hex digits of a hash of both, so that no two (cell, cluster) pairs share a name.
///
/// ```
/// let n = okra_core::naming::target_group_name("web", "web-1-v2");
/// assert!(n.starts_with("web-web-1-v2-") && n.len() <= 32);
/// ```
pub fn target_group_name(cell: &str, cluster: &str) -> String {
    let hash = fnv1a(format!("{cell}/{cluster}").as_bytes());
    let prefix = sanitize(&format!("{cell}-{cluster}"), |c| c.is_ascii_alphanumeric());
    let room = MAX_TARGET_GROUP_NAME - 9;
    let mut prefix: String = prefix.chars().take(room).collect();
    while prefix.ends_with('-') {
        prefix.pop();
    }
    // "internal-" is reserved at the start of ELB names.
    if prefix.is_empty() || prefix.starts_with("internal-") {
        prefix = format!("okra{}", prefix.strip_prefix("internal").unwrap_or(&prefix));
        prefix.truncate(room);
    }
    format!("{prefix}-{hash:08x}")
}

/// The execution name of a cell's rollout to a version in the cell's execution `generation`: the
/// same for every trigger of that rollout, so Step Functions refuses a second one while it runs.
/// The generation moves on whenever an execution of the cell ends, so a later execution (a retry,
/// a resume after a crash, the same version again after a pin back) gets a name of its own
/// (names are unique per state machine for 90 days, closed executions included).
pub fn execution_name(cell: &str, version: &str, generation: u64) -> String {
    let v = sanitize(version, |c| c.is_ascii_alphanumeric() || c == '_');
    let c = sanitize(cell, |c| c.is_ascii_alphanumeric());
    let mut name = format!("{c}--{v}--{generation}");
    if name.len() > MAX_EXECUTION_NAME {
        let hash = fnv1a(format!("{cell}/{version}/{generation}").as_bytes());
        name = format!("{}--{hash:08x}", &name[..MAX_EXECUTION_NAME - 10]);
    }
    name
}

/// The execution name of what a decision does in a cell, or `None` when it does nothing: the same
/// for every trigger that reaches the same decision, so that Step Functions refuses a second
/// execution of it (names are unique per state machine for 90 days).
///
/// - `startRollout` / `resumeRollout`: [`execution_name`] of the canary version (a resume has
///   the name of the rollout it resumes: while that execution runs, no second one starts);
/// - `initialize`: the target version prefixed `init-`;
/// - `scaleOut`: the serving version, `-x` and its member count (another scale-out of the same
///   version has more members, so another name); `scaleIn`: the same with `-in`;
/// - `rollback`: `back-<to>-from-<from>`;
/// - `nothingToDo`: `None`.
///
/// `generation` is the cell's execution generation (see [`execution_name`]).
///
/// ```
/// use okra_core::decision::{Decision, Side};
/// let d = Decision::NothingToDo { reason: "idle".into() };
/// assert_eq!(okra_core::naming::decision_execution_name("web", &d, 0), None);
/// ```
pub fn decision_execution_name(
    cell: &str,
    decision: &crate::decision::Decision,
    generation: u64,
) -> Option<String> {
    use crate::decision::Decision;
    let label = |s: &crate::decision::Side| s.version.clone().unwrap_or_else(|| "unmanaged".into());
    let what = match decision {
        Decision::NothingToDo { .. } => return None,
        Decision::StartRollout { canary, .. } | Decision::ResumeRollout { canary, .. } => {
            label(canary)
        }
        Decision::Initialize { target } => format!("init-{}", label(target)),
        Decision::ScaleOut { serving, .. } => {
            format!("{}-x{}", label(serving), serving.members.len())
        }
        Decision::ScaleIn { serving, .. } => {
            format!("{}-in{}", label(serving), serving.members.len())
        }
        Decision::Rollback { from, to, .. } => {
            format!("back-{}-from-{}", label(to), label(from))
        }
    };
    Some(execution_name(cell, &what, generation))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn short_names_stay_readable() {
        let n = target_group_name("web", "c1");
        assert!(n.starts_with("web-c1-"), "{n}");
        assert_eq!(n.len(), "web-c1-".len() + 8);
    }

    #[test]
    fn pairs_that_join_alike_differ() {
        assert_ne!(
            target_group_name("web", "a-b"),
            target_group_name("web-a", "b")
        );
    }

    #[test]
    fn long_names_are_cut_and_stay_unique() {
        let a = target_group_name("payments-frontend", "payments-frontend-eu-west-1-blue-0001");
        let b = target_group_name("payments-frontend", "payments-frontend-eu-west-1-blue-0002");
        assert!(a.len() <= 32 && b.len() <= 32);
        assert_ne!(a, b);
    }

    #[test]
    fn reserved_prefix_is_avoided() {
        assert!(!target_group_name("internal", "x").starts_with("internal-"));
    }

    #[test]
    fn execution_names() {
        assert_eq!(execution_name("web", "1.2.0", 0), "web--1-2-0--0");
        assert_eq!(
            execution_name("web", "1.2.0+build.7", 1),
            "web--1-2-0-build-7--1"
        );
        let long = execution_name(&"c".repeat(32), &"9".repeat(100), 3);
        assert!(long.len() <= MAX_EXECUTION_NAME);
    }

    fn side(version: Option<&str>, n: usize) -> crate::decision::Side {
        crate::decision::Side {
            version: version.map(str::to_string),
            members: (0..n)
                .map(|i| crate::decision::Member {
                    cluster: Some(format!("c{i}")),
                    target_group_arn: None,
                    vpc_id: None,
                })
                .collect(),
        }
    }

    #[test]
    fn decision_execution_names() {
        use crate::decision::{Decision, Plan};
        let plan = Plan {
            steps: vec![],
            background: None,
            max_wakes: 0,
        };
        let start = Decision::StartRollout {
            stable: side(Some("1.1.0"), 2),
            canary: side(Some("1.2.0"), 2),
            plan: plan.clone(),
        };
        let resume = Decision::ResumeRollout {
            stable: side(Some("1.1.0"), 2),
            canary: side(Some("1.2.0"), 2),
            canary_weight: 10,
            from_step: 1,
            plan,
        };
        let n = |d: &Decision, a| decision_execution_name("web", d, a);
        assert_eq!(n(&start, 0).as_deref(), Some("web--1-2-0--0"));
        assert_eq!(n(&resume, 0), n(&start, 0));
        assert_eq!(n(&start, 2).as_deref(), Some("web--1-2-0--2"));
        let init = Decision::Initialize {
            target: side(Some("1.0.0"), 1),
        };
        assert_eq!(n(&init, 0).as_deref(), Some("web--init-1-0-0--0"));
        let scale = Decision::ScaleOut {
            serving: side(Some("1.2.0"), 3),
            added: vec!["c2".into()],
            left: vec![],
        };
        assert_eq!(n(&scale, 0).as_deref(), Some("web--1-2-0-x3--0"));
        let scale_in = Decision::ScaleIn {
            serving: side(Some("1.2.0"), 2),
            left: vec![],
        };
        assert_eq!(n(&scale_in, 0).as_deref(), Some("web--1-2-0-in2--0"));
        let back = Decision::Rollback {
            from: side(Some("1.2.0"), 2),
            to: side(None, 1),
            reason: "pinned".into(),
        };
        assert_eq!(
            n(&back, 1).as_deref(),
            Some("web--back-unmanaged-from-1-2-0--1")
        );
        assert_eq!(n(&Decision::NothingToDo { reason: "x".into() }, 0), None);
        // Every kind gives a different name for the same version.
        let names: std::collections::BTreeSet<_> = [&start, &init, &scale, &scale_in, &back]
            .iter()
            .map(|d| n(d, 0))
            .collect();
        assert_eq!(names.len(), 5);
    }

    proptest! {
        #[test]
        fn tg_names_are_valid(cell in "[a-z][a-z0-9-]{0,31}", cluster in "[a-zA-Z0-9_.-]{1,100}") {
            let n = target_group_name(&cell, &cluster);
            prop_assert!(n.len() <= MAX_TARGET_GROUP_NAME);
            prop_assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            prop_assert!(!n.starts_with('-') && !n.ends_with('-'));
            prop_assert!(!n.starts_with("internal-"));
            prop_assert_eq!(n.clone(), target_group_name(&cell, &cluster));
        }

        #[test]
        fn execution_names_are_valid(cell in "[a-z][a-z0-9-]{0,31}", v in "[0-9a-z.+-]{1,120}", a in 0u64..1000) {
            let n = execution_name(&cell, &v, a);
            prop_assert!(n.len() <= MAX_EXECUTION_NAME);
            prop_assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }
}
