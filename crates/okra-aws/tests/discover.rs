//! `discover-clusters` over the fakes.

mod common;

use std::collections::BTreeSet;

use common::{CELL, LISTENER, RULE, cell, cell_with, fwd, tags};
use okra_aws::fakes::{FakeEks, FakeElb, RawAction, cluster};
use okra_aws::handlers::discover::{DiscoverInput, DiscoverOutput, ReadinessPlan, handle};
use okra_aws::{OkraError, Result};
use okra_core::decision::{Decision, Member, Side};
use okra_core::model::{ClusterStatus, CurrentAction};
use okra_core::spec::CellSpec;
use okra_core::versions::{IgnoreReason, Pending};
use pretty_assertions::assert_eq;
use serde_json::json;

async fn run(
    eks: &FakeEks,
    elb: &FakeElb,
    cell: CellSpec,
    blocked: &[&str],
) -> Result<DiscoverOutput> {
    let input = DiscoverInput {
        cell,
        blocklist: blocked.iter().map(|s| (*s).to_string()).collect(),
        labels: Default::default(),
    };
    handle(eks, elb, input).await
}

/// A listener that forwards to nothing yet (ELB's fixed 404).
fn fresh_listener() -> FakeElb {
    let elb = FakeElb::new();
    elb.add_listener(LISTENER, vec![RawAction::fixed_response()]);
    elb
}

fn member(cluster: &str, arn: Option<&str>, vpc: Option<&str>) -> Member {
    Member {
        cluster: Some(cluster.to_string()),
        target_group_arn: arn.map(str::to_string),
        vpc_id: vpc.map(str::to_string),
    }
}

/// 1.0.0 serves on a1, a2 (50/50); 1.1.0 is ACTIVE on b1, b2; x1 belongs to another cell.
fn two_by_two() -> (FakeEks, FakeElb, [String; 2]) {
    let eks = FakeEks::new();
    for c in ["a1", "a2"] {
        eks.add_active(c, &tags("1.0.0"));
    }
    for c in ["b1", "b2"] {
        eks.add_active(c, &tags("1.1.0"));
    }
    eks.add_active(
        "x1",
        &[("okra.io/cell", "api"), ("okra.io/version", "9.0.0")],
    );
    let elb = FakeElb::new();
    let a1 = elb.add_okra_group(CELL, "a1", "1.0.0");
    let a2 = elb.add_okra_group(CELL, "a2", "1.0.0");
    elb.add_listener(
        LISTENER,
        vec![RawAction::forward(1, fwd(&[(&a1, 50), (&a2, 50)]))],
    );
    (eks, elb, [a1, a2])
}

#[tokio::test]
async fn replicas_two_with_two_clusters_per_version_starts_a_rollout() {
    let (eks, elb, [a1, a2]) = two_by_two();
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");

    let Decision::StartRollout {
        stable,
        canary,
        plan,
    } = &out.outcome.decision
    else {
        panic!("expected startRollout, got {:?}", out.outcome.decision);
    };
    assert_eq!(
        stable,
        &Side {
            version: Some("1.0.0".into()),
            members: vec![member("a1", Some(&a1), None), member("a2", Some(&a2), None)],
        }
    );
    assert_eq!(
        canary,
        &Side {
            version: Some("1.1.0".into()),
            members: vec![
                member("b1", None, Some("vpc-1")),
                member("b2", None, Some("vpc-1"))
            ],
        }
    );
    assert_eq!(plan.steps.len(), 4, "10 %, pause, 50 % and the final 100 %");
    assert_eq!(out.outcome.versions.get("1.0.0"), Some(&2));
    assert_eq!(out.outcome.versions.get("1.1.0"), Some(&2));
    assert!(out.outcome.pending.is_empty() && out.outcome.ignored.is_empty());
    assert_eq!(
        out.clusters_seen, 4,
        "the clusters the tagging API found for the selector (x1 is another cell's)"
    );
    assert_eq!(out.cell, CELL);
    assert_eq!(out.listener_arn, LISTENER);
    assert_eq!(out.rule_arn, None);
    assert_eq!(
        out.action,
        CurrentAction::Forward(fwd(&[(&a1, 50), (&a2, 50)]))
    );
    assert_eq!(
        out.readiness,
        ReadinessPlan {
            poll_seconds: 10,
            max_polls: 60,
            min_healthy_percent: 100
        }
    );

    // One read of the listener, one tag query, one describe per cluster of the cell, one lookup
    // of groups; nothing written.
    assert_eq!(
        elb.meter.call_counts(),
        [("find_target_groups", 1), ("read_action", 1)].into()
    );
    assert_eq!(
        eks.meter.call_counts(),
        [("describe_cluster", 4), ("find_clusters", 1)].into()
    );
    assert_eq!(elb.writes(), vec![]);

    // The state machine's Choice state reads `decision.kind`.
    let v = serde_json::to_value(&out).expect("serializes");
    assert_eq!(v["decision"]["kind"], json!("startRollout"));
    assert_eq!(v["clustersSeen"], json!(4));
}

#[tokio::test]
async fn a_version_short_of_replicas_is_not_rolled_out() {
    let (eks, elb, _) = two_by_two();
    eks.remove_cluster("b2");
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    let Decision::NothingToDo { reason } = &out.outcome.decision else {
        panic!("expected nothingToDo, got {:?}", out.outcome.decision);
    };
    assert!(reason.contains("1.1.0 has 1 of 2"), "{reason}");
}

#[tokio::test]
async fn a_fresh_listener_is_initialized_with_existing_groups_found_by_tag() {
    let eks = FakeEks::new();
    eks.add_active("a1", &tags("v1.0.0"))
        .add_active("a2", &tags("1.0.0"));
    let elb = fresh_listener();
    // A previous run made a1's group; discovery finds it by its cell tag.
    let a1 = elb.add_okra_group(CELL, "a1", "1.0.0");

    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    assert_eq!(
        out.outcome.decision,
        Decision::Initialize {
            target: Side {
                version: Some("1.0.0".into()),
                members: vec![
                    member("a1", Some(&a1), Some("vpc-1")),
                    member("a2", None, Some("vpc-1"))
                ],
            }
        }
    );
    assert_eq!(
        out.action,
        CurrentAction::Other {
            action_type: "fixed-response".into()
        }
    );
    // The listener read once, the cell's groups searched once (their AWS requests, one
    // DescribeListeners and one GetResources, are counted at the HTTP layer: tests/e2e/api_calls.rs).
    assert_eq!(
        elb.meter.call_counts(),
        [("find_target_groups", 1), ("read_action", 1)].into(),
        "one search for the cell's groups, no listing of the region's groups"
    );
}

#[tokio::test]
async fn a_creating_cluster_is_reported_pending() {
    let (eks, elb, _) = two_by_two();
    eks.set_status("b2", ClusterStatus::Creating);
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    assert_eq!(
        out.outcome.pending,
        vec![Pending {
            cluster: "b2".into(),
            version: Some("1.1.0".into())
        }]
    );
    assert!(out.outcome.ignored.is_empty());
    assert!(
        matches!(&out.outcome.decision, Decision::NothingToDo { reason } if reason.contains("1 of 2")),
        "{:?}",
        out.outcome.decision
    );
}

#[tokio::test]
async fn an_unparseable_version_tag_is_reported_ignored() {
    let (eks, elb, _) = two_by_two();
    eks.add_active("b3", &tags("latest"));
    eks.add_active("b4", &[("okra.io/cell", CELL)]);
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    assert_eq!(out.outcome.ignored.len(), 2, "{:?}", out.outcome.ignored);
    let bad = &out.outcome.ignored[0];
    assert_eq!(bad.cluster, "b3");
    assert!(
        matches!(&bad.reason, IgnoreReason::BadVersion { value, .. } if value == "latest"),
        "{bad:?}"
    );
    assert_eq!(out.outcome.ignored[1].cluster, "b4");
    assert_eq!(
        out.outcome.ignored[1].reason,
        IgnoreReason::NoVersionTag {
            tag: "okra.io/version".into()
        }
    );
    // The well-tagged clusters still make their rollout.
    assert_eq!(out.outcome.decision.kind(), "startRollout");
}

#[tokio::test]
async fn a_blocked_version_is_ignored_and_there_is_nothing_to_do() {
    let (eks, elb, _) = two_by_two();
    let out = run(&eks, &elb, cell(2), &["1.1.0"])
        .await
        .expect("discovers");
    assert_eq!(
        out.outcome
            .ignored
            .iter()
            .map(|i| (i.cluster.as_str(), &i.reason))
            .collect::<Vec<_>>(),
        vec![
            (
                "b1",
                &IgnoreReason::Blocked {
                    version: "1.1.0".into()
                }
            ),
            (
                "b2",
                &IgnoreReason::Blocked {
                    version: "1.1.0".into()
                }
            ),
        ]
    );
    let Decision::NothingToDo { reason } = &out.outcome.decision else {
        panic!("expected nothingToDo, got {:?}", out.outcome.decision);
    };
    assert!(reason.contains("1.0.0"), "{reason}");
    assert_eq!(elb.writes(), vec![]);
}

#[tokio::test]
async fn a_cell_that_needs_more_than_five_target_groups_is_refused() {
    let eks = FakeEks::new();
    let elb = FakeElb::new();
    let mut serving = Vec::new();
    for c in ["a1", "a2", "a3"] {
        eks.add_active(c, &tags("1.0.0"));
        serving.push(elb.add_okra_group(CELL, c, "1.0.0"));
    }
    for c in ["b1", "b2", "b3"] {
        eks.add_active(c, &tags("1.1.0"));
    }
    elb.add_listener(
        LISTENER,
        vec![RawAction::forward(
            1,
            fwd(&[(&serving[0], 34), (&serving[1], 33), (&serving[2], 33)]),
        )],
    );
    // Validation keeps `replicas` within the limit (2 + 2 here), but a version may have more
    // clusters than `replicas`: 3 serving and 3 new make 6 groups in one action.
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    let Decision::NothingToDo { reason } = &out.outcome.decision else {
        panic!("expected nothingToDo, got {:?}", out.outcome.decision);
    };
    assert!(
        reason.contains("3 stable and 3 canary") && reason.contains("at most 5"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_half_done_rollout_is_resumed() {
    let (eks, elb, [a1, a2]) = two_by_two();
    let b1 = elb.add_okra_group(CELL, "b1", "1.1.0");
    let b2 = elb.add_okra_group(CELL, "b2", "1.1.0");
    elb.set_forward(
        LISTENER,
        None,
        fwd(&[(&a1, 45), (&a2, 45), (&b1, 5), (&b2, 5)]),
    );
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    let Decision::ResumeRollout {
        canary_weight,
        from_step,
        canary,
        ..
    } = &out.outcome.decision
    else {
        panic!("expected resumeRollout, got {:?}", out.outcome.decision);
    };
    assert_eq!((*canary_weight, *from_step), (10, 1));
    assert_eq!(canary.target_group_arns(), vec![b1, b2]);
}

#[tokio::test]
async fn an_invalid_spec_is_refused_with_the_field_path_before_any_call() {
    let (eks, elb, _) = two_by_two();
    let bad = cell_with(0, |v| v["name"] = json!("Web_1"));
    let err = run(&eks, &elb, bad, &[]).await.expect_err("refused");
    assert_eq!(err.error_type(), "InvalidSpec");
    let msg = err.to_string();
    assert!(msg.contains("name: "), "{msg}");
    assert!(msg.contains("replicas: "), "{msg}");
    assert_eq!(eks.meter.total_calls(), 0);
    assert_eq!(elb.meter.total_calls(), 0);
}

#[tokio::test]
async fn a_missing_listener_is_listener_not_found() {
    let (eks, _, _) = two_by_two();
    let elb = FakeElb::new();
    let err = run(&eks, &elb, cell(2), &[])
        .await
        .expect_err("no listener");
    assert!(matches!(err, OkraError::ListenerNotFound(..)), "{err:?}");
    assert_eq!(err.error_type(), "ListenerNotFound");
    assert_eq!(eks.meter.total_calls(), 0, "the listener is read first");
}

#[tokio::test]
async fn a_rule_is_read_instead_of_the_default_action() {
    let (eks, elb, [a1, a2]) = two_by_two();
    // The listener's default action forwards elsewhere; the rule is okra's.
    elb.add_rule(
        LISTENER,
        RULE,
        vec![
            RawAction::other(1, "authenticate-oidc"),
            RawAction::forward(2, fwd(&[(&a1, 1), (&a2, 1)])),
        ],
    );
    let spec = cell_with(2, |v| v["ingress"]["alb"]["ruleArn"] = json!(RULE));
    let out = run(&eks, &elb, spec, &[]).await.expect("discovers");
    assert_eq!(out.rule_arn.as_deref(), Some(RULE));
    assert_eq!(
        out.action,
        CurrentAction::Forward(fwd(&[(&a1, 1), (&a2, 1)]))
    );
    // One read, of the rule (DescribeRules, not DescribeListeners: tests/e2e/api_calls.rs).
    assert_eq!(elb.meter.calls("read_action"), 1);

    let missing = cell_with(2, |v| {
        v["ingress"]["alb"]["ruleArn"] =
            json!(RULE.replace("9683b2d02a6cabee", "0000000000000000"));
    });
    let err = run(&eks, &elb, missing, &[])
        .await
        .expect_err("no such rule");
    assert_eq!(err.error_type(), "RuleNotFound");
}

// Issue "Discovery at account scale": a reconcile's calls grow with the cell's clusters, not
// the account's.
#[tokio::test]
async fn a_thousand_clusters_in_the_account_cost_what_the_cells_four_cost() {
    let eks = FakeEks::new();
    for i in 0..1000 {
        let name = format!("c{i:04}");
        match i {
            // Four clusters of the cell, two per version.
            10 | 20 => eks.add_active(&name, &tags("1.0.0")),
            30 | 40 => eks.add_active(&name, &tags("1.1.0")),
            _ => eks.add_active(
                &name,
                &[("okra.io/cell", "other"), ("okra.io/version", "1.0.0")],
            ),
        };
    }
    let elb = FakeElb::new();
    let a = elb.add_okra_group(CELL, "c0010", "1.0.0");
    let b = elb.add_okra_group(CELL, "c0020", "1.0.0");
    for i in 0..400 {
        elb.add_okra_group("other", &format!("c{i:04}"), "1.0.0");
    }
    elb.add_listener(
        LISTENER,
        vec![RawAction::forward(1, fwd(&[(&a, 1), (&b, 1)]))],
    );

    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    assert_eq!(out.clusters_seen, 4);
    assert_eq!(out.outcome.decision.kind(), "startRollout");

    assert_eq!(
        eks.meter.call_counts(),
        [("describe_cluster", 4), ("find_clusters", 1)].into(),
        "one tag query, the cell's four clusters described"
    );
    assert_eq!(elb.meter.calls("find_target_groups"), 1);
    assert_eq!(elb.meter.calls("read_action"), 1);
    assert_eq!(elb.meter.total_calls(), 2);
    // The cell's groups by tag (the serving ones among them): the AWS requests of these calls
    // (no DescribeTags, no listing) are counted at the HTTP layer, tests/e2e/api_calls.rs.
}

// AWS: the Resource Groups Tagging API is eventually consistent; the cluster of the CloudTrail
// event that triggered the rollout is described directly.
#[tokio::test]
async fn the_triggering_events_cluster_is_described_even_before_the_tagging_api_has_it() {
    let (eks, elb, _) = two_by_two();
    eks.lag_in_tag_search("b2");
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    assert_eq!(
        out.outcome.decision.kind(),
        "nothingToDo",
        "without the event, 1.1.0 has 1 of 2 clusters"
    );
    let input = DiscoverInput {
        cell: cell(2),
        blocklist: BTreeSet::new(),
        labels: [("cluster".to_string(), "b2".to_string())].into(),
    };
    let out = handle(&eks, &elb, input).await.expect("discovers");
    assert_eq!(out.clusters_seen, 4);
    assert_eq!(out.outcome.decision.kind(), "startRollout");
}

#[tokio::test]
async fn throttling_fails_the_run_and_a_retry_succeeds() {
    let (eks, elb, _) = two_by_two();
    eks.meter.throttle_next("describe_cluster", 1);
    let err = run(&eks, &elb, cell(2), &[]).await.expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
    assert!(err.is_transient());
    assert_eq!(
        elb.meter.calls("find_target_groups"),
        0,
        "nothing decided on half a read"
    );

    let out = run(&eks, &elb, cell(2), &[])
        .await
        .expect("the retry succeeds");
    assert_eq!(out.outcome.decision.kind(), "startRollout");
}

#[tokio::test]
async fn a_cluster_deleted_between_tag_query_and_describe_is_skipped() {
    let (eks, elb, _) = two_by_two();
    eks.vanish_on_describe("b2");
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    assert_eq!(out.clusters_seen, 4);
    assert_eq!(out.outcome.versions.get("1.1.0"), Some(&1));
    assert_eq!(out.outcome.decision.kind(), "nothingToDo");
}

#[tokio::test]
async fn deleting_and_failed_clusters_are_ignored() {
    let (eks, elb, _) = two_by_two();
    eks.add_cluster(cluster("b3", ClusterStatus::Deleting, &tags("1.1.0")));
    eks.add_cluster(cluster("b4", ClusterStatus::Failed, &tags("1.1.0")));
    let out = run(&eks, &elb, cell(2), &[]).await.expect("discovers");
    let ignored: BTreeSet<&str> = out
        .outcome
        .ignored
        .iter()
        .map(|i| i.cluster.as_str())
        .collect();
    assert_eq!(ignored, ["b3", "b4"].into());
    assert_eq!(out.outcome.decision.kind(), "startRollout");
}

#[tokio::test]
async fn the_input_is_read_from_the_state_machine_json() {
    let input: DiscoverInput = serde_json::from_value(json!({
        "cell": common::cell_json(2),
        "blocklist": ["1.1.0"],
    }))
    .expect("parses");
    assert_eq!(input.blocklist, ["1.1.0".to_string()].into());
    let unknown = serde_json::from_value::<DiscoverInput>(
        json!({ "cell": common::cell_json(2), "extra": 1 }),
    );
    assert!(unknown.is_err(), "unknown fields are refused");
}
