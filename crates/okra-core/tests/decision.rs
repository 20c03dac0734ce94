//! Every branch of `decide`, and its determinism.

use std::collections::{BTreeMap, BTreeSet};

use okra_core::Cell;
use okra_core::decision::{Decision, Plan, PlanStep, decide, resume_step};
use okra_core::model::{
    Cluster, ClusterStatus, CurrentAction, ForwardAction, Observed, TargetGroup, WeightedTarget,
};
use okra_core::spec::CellSpec;
use okra_core::versions::IgnoreReason;
use pretty_assertions::assert_eq;
use proptest::prelude::*;

const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef";

fn spec_with(extra: &str) -> CellSpec {
    let yaml = format!(
        "name: web\ningress:\n  alb:\n    listenerArn: {LISTENER}\nclusterSelector:\n  matchTags:\n    role: web\ntargetGroup:\n  port: 30080\n{extra}"
    );
    CellSpec::from_yaml(&yaml).expect("test spec parses")
}

fn spec(replicas: u32) -> CellSpec {
    spec_with(&format!(
        "replicas: {replicas}\ncanary:\n  steps:\n    - setWeight: 10\n    - pause: {{duration: 1m}}\n    - setWeight: 50\n    - pause: {{}}\n"
    ))
}

/// The spec, validated: what `decide` takes.
fn valid(s: &CellSpec) -> Cell {
    s.clone().validate().expect("test spec is valid")
}

fn cell(replicas: u32) -> Cell {
    valid(&spec(replicas))
}

fn plan(s: &CellSpec) -> Plan {
    valid(s).plan().clone()
}

fn cluster(name: &str, version: &str, status: ClusterStatus) -> Cluster {
    let mut tags = BTreeMap::new();
    tags.insert("role".to_string(), "web".to_string());
    if !version.is_empty() {
        tags.insert("okra.io/version".to_string(), version.to_string());
    }
    Cluster {
        access: None,
        name: name.into(),
        status,
        tags,
        vpc_id: Some("vpc-1".into()),
    }
}

fn active(name: &str, version: &str) -> Cluster {
    cluster(name, version, ClusterStatus::Active)
}

fn tg(cluster: &str, version: &str) -> TargetGroup {
    TargetGroup {
        idle_since: None,
        managed: true,
        arn: arn(cluster),
        name: format!("web-{cluster}"),
        cluster: cluster.into(),
        version: version.into(),
    }
}

fn arn(cluster: &str) -> String {
    format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-{cluster}/0000")
}

fn forward(pairs: &[(&str, u32)]) -> CurrentAction {
    CurrentAction::Forward(ForwardAction {
        targets: pairs
            .iter()
            .map(|(a, w)| WeightedTarget {
                target_group_arn: a.to_string(),
                weight: *w,
            })
            .collect(),
        stickiness: None,
    })
}

fn observed(clusters: Vec<Cluster>, tgs: Vec<TargetGroup>, action: CurrentAction) -> Observed {
    Observed {
        clusters,
        target_groups: tgs,
        action,
        blocklist: BTreeSet::new(),
    }
}

/// Two clusters of 1.0.0 serving at 100 %, with their target groups.
fn serving_v1() -> (Vec<Cluster>, Vec<TargetGroup>, CurrentAction) {
    (
        vec![active("a1", "1.0.0"), active("a2", "1.0.0")],
        vec![tg("a1", "1.0.0"), tg("a2", "1.0.0")],
        forward(&[(&arn("a1"), 50), (&arn("a2"), 50)]),
    )
}

#[test]
fn nothing_when_no_cluster_matches() {
    let mut other = active("x", "1.0.0");
    other.tags.insert("role".into(), "api".into());
    let o = decide(&cell(1), &observed(vec![other], vec![], forward(&[])));
    match o.decision {
        Decision::NothingToDo { reason } => {
            assert!(reason.contains("no serving cluster"), "{reason}")
        }
        d => panic!("{d:?}"),
    }
    assert!(
        o.ignored.is_empty(),
        "clusters of other cells are not reported"
    );
}

#[test]
fn initialize_when_the_listener_forwards_nowhere() {
    let o = decide(
        &cell(2),
        &observed(
            vec![active("b2", "1.0.0"), active("b1", "1.0.0")],
            vec![],
            CurrentAction::Other {
                action_type: "fixed-response".into(),
            },
        ),
    );
    match o.decision {
        Decision::Initialize { target } => {
            assert_eq!(target.version.as_deref(), Some("1.0.0"));
            let names: Vec<_> = target
                .members
                .iter()
                .map(|m| m.cluster.clone().unwrap())
                .collect();
            assert_eq!(names, vec!["b1", "b2"]);
            assert!(target.members.iter().all(|m| m.target_group_arn.is_none()));
            assert!(
                target
                    .members
                    .iter()
                    .all(|m| m.vpc_id.as_deref() == Some("vpc-1"))
            );
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn start_rollout_when_a_newer_version_is_complete() {
    let (mut cs, mut tgs, action) = serving_v1();
    cs.extend([active("b1", "1.1.0"), active("b2", "v1.1.0")]);
    tgs.push(tg("b1", "1.1.0"));
    let o = decide(&cell(2), &observed(cs, tgs, action));
    match o.decision {
        Decision::StartRollout {
            stable,
            canary,
            plan,
        } => {
            assert_eq!(stable.version.as_deref(), Some("1.0.0"));
            assert_eq!(stable.target_group_arns(), vec![arn("a1"), arn("a2")]);
            assert_eq!(canary.version.as_deref(), Some("1.1.0"));
            assert_eq!(canary.members.len(), 2);
            // b1 has its group already, b2 not yet: ensure-target-groups makes it.
            assert_eq!(canary.target_group_arns(), vec![arn("b1")]);
            assert_eq!(
                plan.steps.last(),
                Some(&PlanStep::SetWeight { weight: 100 })
            );
        }
        d => panic!("{d:?}"),
    }
    assert_eq!(o.versions.get("1.1.0"), Some(&2));
}

#[test]
fn waits_for_replicas_and_reports_pending() {
    let (mut cs, tgs, action) = serving_v1();
    cs.extend([
        active("b1", "1.1.0"),
        cluster("b2", "1.1.0", ClusterStatus::Creating),
    ]);
    let o = decide(&cell(2), &observed(cs, tgs, action));
    match &o.decision {
        Decision::NothingToDo { reason } => {
            assert!(reason.contains("1.1.0 has 1 of 2"), "{reason}")
        }
        d => panic!("{d:?}"),
    }
    assert_eq!(o.pending.len(), 1);
    assert_eq!(o.pending[0].cluster, "b2");
}

#[test]
fn ignores_bad_and_missing_versions_and_unserving_clusters() {
    let (mut cs, tgs, action) = serving_v1();
    cs.extend([
        active("x1", "banana"),
        active("x2", ""),
        cluster("x3", "9.0.0", ClusterStatus::Deleting),
    ]);
    let o = decide(&cell(2), &observed(cs, tgs, action));
    assert!(matches!(o.decision, Decision::NothingToDo { .. }));
    let reasons: BTreeMap<_, _> = o
        .ignored
        .iter()
        .map(|i| (i.cluster.as_str(), &i.reason))
        .collect();
    assert!(matches!(reasons["x1"], IgnoreReason::BadVersion { value, .. } if value == "banana"));
    assert!(
        matches!(reasons["x2"], IgnoreReason::NoVersionTag { tag } if tag == "okra.io/version")
    );
    assert!(matches!(
        reasons["x3"],
        IgnoreReason::NotServing {
            status: ClusterStatus::Deleting
        }
    ));
}

#[test]
fn blocked_versions_are_not_retried() {
    let (mut cs, tgs, action) = serving_v1();
    cs.extend([active("b1", "1.1.0"), active("b2", "1.1.0")]);
    let mut obs = observed(cs, tgs, action);
    obs.blocklist.insert("1.1.0".into());
    let o = decide(&cell(2), &obs);
    assert!(
        matches!(o.decision, Decision::NothingToDo { .. }),
        "{:?}",
        o.decision
    );
    assert!(
        o.ignored
            .iter()
            .all(|i| matches!(i.reason, IgnoreReason::Blocked { .. }))
    );
    assert_eq!(o.ignored.len(), 2);
}

#[test]
fn pinned_lower_version_rolls_back_at_once() {
    let mut s = spec(2);
    s.version = Some("1.0.0".into());
    let cs = vec![
        active("a1", "1.0.0"),
        active("a2", "1.0.0"),
        active("b1", "1.1.0"),
        active("b2", "1.1.0"),
    ];
    let tgs = vec![
        tg("a1", "1.0.0"),
        tg("a2", "1.0.0"),
        tg("b1", "1.1.0"),
        tg("b2", "1.1.0"),
    ];
    let action = forward(&[(&arn("b1"), 50), (&arn("b2"), 50)]);
    match decide(&valid(&s), &observed(cs, tgs, action)).decision {
        Decision::Rollback { from, to, reason } => {
            assert_eq!(from.version.as_deref(), Some("1.1.0"));
            assert_eq!(to.version.as_deref(), Some("1.0.0"));
            assert_eq!(to.target_group_arns(), vec![arn("a1"), arn("a2")]);
            assert!(reason.contains("pinned to 1.0.0"), "{reason}");
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn pin_above_serving_rolls_to_the_pin_not_the_newest() {
    let mut s = spec(2);
    s.version = Some("v1.1.0".into());
    let (mut cs, tgs, action) = serving_v1();
    cs.extend([
        active("b1", "1.1.0"),
        active("b2", "1.1.0"),
        active("c1", "1.2.0"),
        active("c2", "1.2.0"),
    ]);
    let o = decide(&valid(&s), &observed(cs, tgs, action));
    match &o.decision {
        Decision::StartRollout { canary, .. } => {
            assert_eq!(canary.version.as_deref(), Some("1.1.0"))
        }
        d => panic!("{d:?}"),
    }
    assert_eq!(o.ignored.len(), 2);
    assert!(
        o.ignored
            .iter()
            .all(|i| matches!(i.reason, IgnoreReason::AbovePin { .. }))
    );
}

#[test]
fn scale_out_adds_a_new_cluster_of_the_serving_version() {
    let (mut cs, tgs, action) = serving_v1();
    cs.push(active("a3", "1.0.0"));
    match decide(&cell(2), &observed(cs, tgs, action)).decision {
        Decision::ScaleOut {
            serving,
            added,
            left,
        } => {
            assert_eq!(added, vec!["a3"]);
            assert_eq!(serving.members.len(), 3);
            assert!(left.is_empty(), "{left:?}");
        }
        d => panic!("{d:?}"),
    }
}

fn left_arns(left: &[okra_core::health::Excluded]) -> Vec<(String, String)> {
    left.iter()
        .map(|l| (l.target_group_arn.clone(), l.reason.clone()))
        .collect()
}

fn member_arns(side: &okra_core::decision::Side) -> Vec<String> {
    side.target_group_arns()
}

#[test]
fn a_serving_cluster_re_tagged_after_a_promotion_leaves_and_rolls_out_with_its_version() {
    // 1.0.0 serves on a1 and a2; a1 is re-tagged 1.1.0. Its group leaves the action (a2 takes
    // everything): 1.1.0 gets no traffic it was not rolled out to.
    let (mut cs, tgs, action) = serving_v1();
    cs[0] = active("a1", "1.1.0");
    let observed_now = observed(cs.clone(), tgs.clone(), action);
    match decide(&cell(2), &observed_now).decision {
        Decision::ScaleIn { serving, left } => {
            assert_eq!(serving.version.as_deref(), Some("1.0.0"));
            assert_eq!(member_arns(&serving), vec![arn("a2")]);
            assert_eq!(
                left_arns(&left),
                vec![(
                    arn("a1"),
                    "cluster a1 now carries version 1.1.0, not 1.0.0".to_string()
                )]
            );
        }
        d => panic!("{d:?}"),
    }
    // After the scale-in, with a second cluster of 1.1.0, 1.1.0 rolls out from a2 (a canary
    // of both 1.1.0 clusters, a1's group re-tagged by ensure).
    cs.push(active("b2", "1.1.0"));
    let after = observed(cs, tgs, forward(&[(&arn("a2"), 1)]));
    match decide(&cell(2), &after).decision {
        Decision::StartRollout { stable, canary, .. } => {
            assert_eq!(member_arns(&stable), vec![arn("a2")]);
            assert_eq!(canary.version.as_deref(), Some("1.1.0"));
            let clusters: Vec<_> = canary
                .members
                .iter()
                .filter_map(|m| m.cluster.clone())
                .collect();
            assert_eq!(clusters, vec!["a1", "b2"]);
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn a_serving_cluster_deleted_or_not_active_leaves_the_action() {
    for (now, why) in [
        (None, "cluster a1 is gone"),
        (
            Some(cluster("a1", "1.0.0", ClusterStatus::Deleting)),
            "cluster a1 is not ACTIVE",
        ),
        (
            Some({
                let mut c = active("a1", "1.0.0");
                c.tags.insert("role".into(), "api".into());
                c
            }),
            "cluster a1 left cell web",
        ),
    ] {
        let (mut cs, tgs, action) = serving_v1();
        cs.remove(0);
        cs.extend(now);
        match decide(&cell(1), &observed(cs, tgs, action)).decision {
            Decision::ScaleIn { serving, left } => {
                assert_eq!(member_arns(&serving), vec![arn("a2")]);
                assert_eq!(left_arns(&left), vec![(arn("a1"), why.to_string())]);
            }
            d => panic!("{why}: {d:?}"),
        }
    }
}

#[test]
fn a_gone_cluster_is_not_kept_when_a_new_one_of_the_version_joins() {
    let (mut cs, tgs, action) = serving_v1();
    cs[0] = active("a3", "1.0.0");
    match decide(&cell(2), &observed(cs, tgs, action)).decision {
        Decision::ScaleOut {
            serving,
            added,
            left,
        } => {
            assert_eq!(added, vec!["a3"]);
            let clusters: Vec<_> = serving
                .members
                .iter()
                .filter_map(|m| m.cluster.clone())
                .collect();
            assert_eq!(clusters, vec!["a2", "a3"], "a1's group does not stay");
            assert_eq!(
                left_arns(&left),
                vec![(arn("a1"), "cluster a1 is gone".to_string())]
            );
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn the_last_serving_groups_are_never_taken_out() {
    // Both clusters of 1.0.0 deleted and nothing else: the groups keep serving.
    let (_, tgs, action) = serving_v1();
    match decide(&cell(1), &observed(vec![], tgs.clone(), action.clone())).decision {
        Decision::NothingToDo { .. } => {}
        d => panic!("{d:?}"),
    }
    // Every serving cluster re-tagged in place to 1.1.0: 1.1.0 serves there (no move between
    // clusters is possible), and nothing is rolled "from" a group to itself.
    let cs = vec![active("a1", "1.1.0"), active("a2", "1.1.0")];
    match decide(&cell(2), &observed(cs, tgs.clone(), action.clone())).decision {
        Decision::NothingToDo { reason } => {
            assert!(reason.contains("1.1.0 serves at 100 %"), "{reason}")
        }
        d => panic!("{d:?}"),
    }
    // A single cluster re-tagged while another version is split over the cell: never a rollout
    // whose canary shares a group with the stable side.
    let cs = vec![active("a1", "1.1.0"), active("a2", "1.2.0")];
    match decide(&cell(1), &observed(cs, tgs, action)).decision {
        Decision::NothingToDo { reason } => assert!(
            reason.contains(
                "cluster a2 now carries 1.2.0, but its target group is one of those serving"
            ),
            "{reason}"
        ),
        d => panic!("a group on both sides: {d:?}"),
    }
}

#[test]
fn a_half_done_canary_whose_clusters_are_all_gone_is_rolled_back() {
    let cs = vec![active("a1", "1.0.0"), active("a2", "1.0.0")];
    let tgs = vec![tg("a1", "1.0.0"), tg("a2", "1.0.0"), tg("b1", "1.1.0")];
    let action = forward(&[(&arn("a1"), 35), (&arn("a2"), 35), (&arn("b1"), 30)]);
    match decide(&cell(1), &observed(cs, tgs, action)).decision {
        Decision::Rollback { from, to, reason } => {
            assert_eq!(member_arns(&from), vec![arn("b1")]);
            assert_eq!(member_arns(&to), vec![arn("a1"), arn("a2")]);
            assert!(reason.contains("no cluster carries 1.1.0"), "{reason}");
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn nothing_when_the_newest_version_serves_on_all_clusters() {
    let (cs, tgs, action) = serving_v1();
    match decide(&cell(2), &observed(cs, tgs, action)).decision {
        Decision::NothingToDo { reason } => {
            assert!(reason.contains("1.0.0 serves at 100 %"), "{reason}")
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn newer_serving_than_any_complete_version_is_left_alone_without_a_pin() {
    let cs = vec![
        active("a1", "1.0.0"),
        active("a2", "1.0.0"),
        active("b1", "1.1.0"),
    ];
    let tgs = vec![tg("a1", "1.0.0"), tg("a2", "1.0.0"), tg("b1", "1.1.0")];
    let action = forward(&[(&arn("b1"), 100)]);
    match decide(&cell(2), &observed(cs, tgs, action)).decision {
        Decision::NothingToDo { reason } => assert!(reason.contains("newer than"), "{reason}"),
        d => panic!("{d:?}"),
    }
}

#[test]
fn a_split_listener_resumes_from_the_matching_step() {
    let cs = vec![
        active("a1", "1.0.0"),
        active("a2", "1.0.0"),
        active("b1", "1.1.0"),
        active("b2", "1.1.0"),
    ];
    let tgs = vec![
        tg("a1", "1.0.0"),
        tg("a2", "1.0.0"),
        tg("b1", "1.1.0"),
        tg("b2", "1.1.0"),
    ];
    let action = forward(&[
        (&arn("a1"), 45),
        (&arn("a2"), 45),
        (&arn("b1"), 5),
        (&arn("b2"), 5),
    ]);
    match decide(&cell(2), &observed(cs, tgs, action)).decision {
        Decision::ResumeRollout {
            stable,
            canary,
            canary_weight,
            from_step,
            plan,
        } => {
            assert_eq!(stable.version.as_deref(), Some("1.0.0"));
            assert_eq!(canary.version.as_deref(), Some("1.1.0"));
            assert_eq!(canary_weight, 10);
            // steps: [setWeight 10, pause 1m, setWeight 50, pause {}, setWeight 100]
            assert_eq!(from_step, 1);
            assert_eq!(plan.steps.len(), 5);
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn a_blocked_version_still_holding_traffic_is_rolled_back() {
    let cs = vec![active("a1", "1.0.0"), active("b1", "1.1.0")];
    let tgs = vec![tg("a1", "1.0.0"), tg("b1", "1.1.0")];
    let mut obs = observed(cs, tgs, forward(&[(&arn("a1"), 70), (&arn("b1"), 30)]));
    obs.blocklist.insert("1.1.0".into());
    match decide(&cell(1), &obs).decision {
        Decision::Rollback { from, to, .. } => {
            assert_eq!(from.target_group_arns(), vec![arn("b1")]);
            assert_eq!(to.target_group_arns(), vec![arn("a1")]);
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn a_split_above_the_pin_is_rolled_back() {
    let mut s = spec(1);
    s.version = Some("1.0.0".into());
    let cs = vec![active("a1", "1.0.0"), active("b1", "1.1.0")];
    let tgs = vec![tg("a1", "1.0.0"), tg("b1", "1.1.0")];
    let obs = observed(cs, tgs, forward(&[(&arn("a1"), 70), (&arn("b1"), 30)]));
    assert!(matches!(
        decide(&valid(&s), &obs).decision,
        Decision::Rollback { .. }
    ));
}

#[test]
fn unmanaged_target_groups_are_the_stable_side() {
    let foreign = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/legacy/1111";
    let cs = vec![active("b1", "1.0.0")];
    let o = decide(&cell(1), &observed(cs, vec![], forward(&[(foreign, 1)])));
    match o.decision {
        Decision::StartRollout { stable, canary, .. } => {
            assert_eq!(stable.version, None);
            assert_eq!(stable.target_group_arns(), vec![foreign.to_string()]);
            assert_eq!(stable.label(), "unmanaged target groups");
            assert_eq!(canary.version.as_deref(), Some("1.0.0"));
        }
        d => panic!("{d:?}"),
    }
    // Half way from unmanaged groups to ours: resumed, with the unmanaged side as stable.
    let cs = vec![active("b1", "1.0.0")];
    let o = decide(
        &cell(1),
        &observed(
            cs,
            vec![tg("b1", "1.0.0")],
            forward(&[(foreign, 50), (&arn("b1"), 50)]),
        ),
    );
    match o.decision {
        Decision::ResumeRollout {
            stable,
            canary_weight,
            ..
        } => {
            assert_eq!(stable.version, None);
            assert_eq!(canary_weight, 50);
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn three_versions_in_one_action_are_not_guessed_at() {
    let cs = vec![
        active("a1", "1.0.0"),
        active("b1", "1.1.0"),
        active("c1", "1.2.0"),
    ];
    let tgs = vec![tg("a1", "1.0.0"), tg("b1", "1.1.0"), tg("c1", "1.2.0")];
    let obs = observed(
        cs,
        tgs,
        forward(&[(&arn("a1"), 1), (&arn("b1"), 1), (&arn("c1"), 1)]),
    );
    match decide(&cell(1), &obs).decision {
        Decision::NothingToDo { reason } => {
            assert!(
                reason.contains("3 versions (1.0.0, 1.1.0, 1.2.0)"),
                "{reason}"
            )
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn a_canary_that_cannot_fit_in_one_action_is_refused() {
    let foreign: Vec<String> = (0..4)
        .map(|i| {
            format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/old{i}/1")
        })
        .collect();
    let pairs: Vec<(&str, u32)> = foreign.iter().map(|a| (a.as_str(), 1)).collect();
    let cs = vec![active("b1", "1.0.0"), active("b2", "1.0.0")];
    match decide(&cell(2), &observed(cs, vec![], forward(&pairs))).decision {
        Decision::NothingToDo { reason } => assert!(reason.contains("at most 5"), "{reason}"),
        d => panic!("{d:?}"),
    }
}

#[test]
fn blue_green_nlb_scale_out_is_limited_to_one_group() {
    let mut s = spec(1);
    s.ingress.alb = None;
    s.ingress.nlb = Some(okra_core::spec::NlbIngress {
        listener_arn: LISTENER.replace("/app/", "/net/"),
        weighted: false,
    });
    // Blue/green: no step between 0 and 100.
    s.canary.steps.clear();
    let cs = vec![active("a1", "1.0.0"), active("a2", "1.0.0")];
    let obs = observed(cs, vec![tg("a1", "1.0.0")], forward(&[(&arn("a1"), 1)]));
    match decide(&valid(&s), &obs).decision {
        Decision::NothingToDo { reason } => assert!(reason.contains("at most 1 fit"), "{reason}"),
        d => panic!("{d:?}"),
    }
}

/// A wait for a person without a `timeout`: a year, then abort.
const WAIT: Option<okra_core::decision::PersonWait> = Some(okra_core::decision::PersonWait {
    timeout_seconds: okra_core::decision::LONGEST_WAIT_SECONDS,
    on_timeout: okra_core::vocab::OnTimeout::Abort,
});

#[test]
fn plan_normalizes_steps() {
    let p = plan(&spec(1));
    assert_eq!(
        p.steps,
        vec![
            PlanStep::SetWeight { weight: 10 },
            PlanStep::Pause {
                seconds: Some(60),
                sampled: None,
                scheduled: false,
                wait: None,
            },
            PlanStep::SetWeight { weight: 50 },
            PlanStep::Pause {
                seconds: None,
                sampled: None,
                scheduled: false,
                wait: WAIT,
            },
            PlanStep::SetWeight { weight: 100 },
        ]
    );
    assert_eq!(resume_step(&p, 0), 0);
    assert_eq!(resume_step(&p, 10), 1);
    assert_eq!(resume_step(&p, 30), 1);
    assert_eq!(resume_step(&p, 50), 3);
    // With a background analysis from the second step, its timed pause samples every interval.
    let mut bg = spec(1);
    bg.canary.analysis = Some(okra_core::spec::BackgroundAnalysis {
        templates: vec![okra_core::spec::TemplateRef {
            template_name: "errors".into(),
        }],
        args: vec![],
        starting_step: 1,
    });
    bg.analysis_templates = spec_with(
        "analysisTemplates:\n  - name: errors\n    metrics:\n      - name: e\n        interval: 1s\n        \
         successCondition: result < 1\n        provider:\n          datadog:\n            query: sum:errors{*}\n",
    )
    .analysis_templates;
    let p = plan(&bg);
    assert_eq!(
        p.steps[1],
        PlanStep::Pause {
            seconds: Some(60),
            sampled: Some(okra_core::decision::SampledPause {
                slices: 60,
                rest_seconds: 0
            }),
            scheduled: false,
            wait: None,
        },
        "sixty intervals of the metric's 1s, a sample after each"
    );
    // An interval of whole minutes: EventBridge Scheduler samples, the pauses are one wait each.
    let mut scheduled = bg.clone();
    scheduled.analysis_templates[0].metrics[0].interval = "2m".into();
    let p = plan(&scheduled);
    assert_eq!(
        p.background.as_ref().and_then(|b| b.schedule.as_deref()),
        Some("rate(2 minutes)")
    );
    assert_eq!(
        p.steps[1],
        PlanStep::Pause {
            seconds: Some(60),
            sampled: None,
            scheduled: true,
            wait: None,
        }
    );
    assert_eq!(
        p.steps[3],
        PlanStep::Pause {
            seconds: None,
            sampled: None,
            scheduled: true,
            wait: WAIT,
        }
    );
    assert_eq!(
        p.steps[0],
        PlanStep::SetWeight { weight: 10 },
        "before the starting step nothing samples"
    );
    // No steps at all: one switch.
    let s = spec_with("");
    assert_eq!(plan(&s).steps, vec![PlanStep::SetWeight { weight: 100 }]);
}

proptest! {
    #[test]
    fn decide_is_deterministic(seed in any::<u64>(), n in 0usize..8) {
        let versions = ["1.0.0", "1.1.0", "v1.2.0", "2.0.0-rc.1", "bad"];
        let mut cs: Vec<Cluster> = (0..n)
            .map(|i| active(&format!("c{i}"), versions[(seed as usize + i * 7) % versions.len()]))
            .collect();
        let tgs: Vec<TargetGroup> = cs.iter().take(2).map(|c| tg(&c.name, c.tags.get("okra.io/version").map_or("", |s| s.as_str()))).collect();
        let action = match tgs.first() { Some(t) => forward(&[(&t.arn, 100)]), None => forward(&[]) };
        let a = decide(&cell(1), &observed(cs.clone(), tgs.clone(), action.clone()));
        cs.reverse();
        let b = decide(&cell(1), &observed(cs, tgs, action));
        prop_assert_eq!(a, b);
    }
}

#[test]
fn analysis_steps_carry_their_timing() {
    let s = CellSpec::from_yaml(include_str!("../../../examples/cells/web.yaml")).unwrap();
    let p = plan(&s);
    let analysis = p
        .steps
        .iter()
        .find_map(|s| match s {
            PlanStep::Analysis {
                templates,
                initial_delay_seconds,
                interval_seconds,
                ..
            } => Some((templates.clone(), *initial_delay_seconds, *interval_seconds)),
            _ => None,
        })
        .expect("the web example has an analysis step");
    assert_eq!(analysis.0, vec!["error-rate", "latency"]);
    let metrics: Vec<_> = s
        .analysis_templates
        .iter()
        .flat_map(|t| t.metrics.iter())
        .collect();
    let shortest = metrics
        .iter()
        .map(|m| {
            okra_core::duration::parse_duration(&m.interval)
                .unwrap()
                .as_secs()
        })
        .min()
        .unwrap();
    assert_eq!(analysis.2, shortest);
    let longest_delay = metrics
        .iter()
        .filter_map(|m| m.initial_delay.as_deref())
        .map(|d| okra_core::duration::parse_duration(d).unwrap().as_secs())
        .max()
        .unwrap_or(0);
    assert_eq!(analysis.1, longest_delay);
    let bg = p.background.expect("background analysis");
    assert_eq!(bg.starting_step, 1);
    assert!(bg.interval_seconds >= 1);
}

#[test]
fn a_side_names_its_first_member_without_a_target_group() {
    use okra_core::decision::{Member, Side};
    let member = |c: &str, arn: Option<&str>| Member {
        cluster: Some(c.into()),
        target_group_arn: arn.map(str::to_string),
        vpc_id: None,
    };
    let mut side = Side {
        version: Some("1.1.0".into()),
        members: vec![member("b1", Some("arn:1")), member("b2", Some("arn:2"))],
    };
    assert_eq!(
        side.required_target_group_arns(),
        Ok(vec!["arn:1".to_string(), "arn:2".to_string()])
    );
    side.members.push(member("b3", None));
    side.members.push(member("b4", None));
    assert_eq!(side.required_target_group_arns(), Err(2));
    assert_eq!(side.target_group_arns().len(), 2);
}

/// The state machine reads a step's and a decision's fields in camelCase
/// (`$.step.item.initialDelaySeconds`, `$.discovery.decision.fromStep`): serde's `rename_all`
/// on an enum names only its variants, so the fields of every struct variant must be renamed
/// too, or the paths point to nothing and AWS fails the execution (States.Runtime).
#[test]
fn the_state_machine_reads_camel_case_fields() {
    let step = PlanStep::Analysis {
        templates: vec!["errors".into()],
        args: BTreeMap::new(),
        initial_delay_seconds: 5,
        interval_seconds: 60,
        wait: okra_core::decision::PersonWait {
            timeout_seconds: 3600,
            on_timeout: okra_core::vocab::OnTimeout::Promote,
        },
    };
    let v = serde_json::to_value(&step).unwrap();
    assert_eq!(
        (&v["type"], &v["initialDelaySeconds"], &v["intervalSeconds"]),
        (
            &serde_json::json!("analysis"),
            &serde_json::json!(5),
            &serde_json::json!(60)
        ),
        "{v}"
    );
    // The wait's fields sit on the step itself: `$.step.item.timeoutSeconds`, `.onTimeout`.
    assert_eq!(
        (&v["timeoutSeconds"], &v["onTimeout"]),
        (&serde_json::json!(3600), &serde_json::json!("promote")),
        "{v}"
    );
    let back: PlanStep = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(back, step, "reads back");
    let resume = Decision::ResumeRollout {
        stable: Default::default(),
        canary: Default::default(),
        canary_weight: 30,
        from_step: 2,
        plan: Plan {
            steps: vec![step],
            background: None,
            max_wakes: 0,
        },
    };
    let v = serde_json::to_value(&resume).unwrap();
    assert_eq!(
        (&v["kind"], &v["canaryWeight"], &v["fromStep"]),
        (
            &serde_json::json!("resumeRollout"),
            &serde_json::json!(30),
            &serde_json::json!(2)
        ),
        "{v}"
    );
}
