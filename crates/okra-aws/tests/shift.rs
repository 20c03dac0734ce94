//! `shift-weights` over the fakes.

mod common;

use common::{CELL, LISTENER, RULE, fwd, fwd_sticky};
use okra_aws::fakes::{FakeEks, FakeElb, RawAction};
use okra_aws::handlers::shift::{ShiftInput, ShiftOutput, Targets, handle};
use okra_aws::{OkraError, Result};
use okra_core::decision::{Member, Side};
use okra_core::model::{ForwardAction, ForwardStickiness};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// Stable s1 serves at 100 %; canary c1 exists.
struct World {
    elb: FakeElb,
    s1: String,
    c1: String,
}

fn world() -> World {
    let elb = FakeElb::new();
    let s1 = elb.add_okra_group(CELL, "a1", "1.0.0");
    let c1 = elb.add_okra_group(CELL, "b1", "1.1.0");
    elb.add_listener(LISTENER, vec![RawAction::forward(1, fwd(&[(&s1, 100)]))]);
    World { elb, s1, c1 }
}

fn input(v: Value) -> ShiftInput {
    serde_json::from_value(v).expect("a valid shift input")
}

/// One step from `expected` to `weight` % for c1.
fn step(w: &World, weight: u32, expected: &ForwardAction) -> ShiftInput {
    input(json!({
        "listenerArn": LISTENER,
        "stable": [w.s1],
        "canary": [w.c1],
        "weight": weight,
        "expected": expected,
    }))
}

async fn run(w: &World, i: ShiftInput) -> Result<ShiftOutput> {
    handle(&w.elb, &FakeEks::new(), i).await
}

fn json_of(fa: &ForwardAction) -> Value {
    serde_json::to_value(fa).expect("serializes")
}

#[tokio::test]
async fn a_step_is_one_read_one_write_one_verification_read() {
    let w = world();
    let out = run(&w, step(&w, 10, &fwd(&[(&w.s1, 100)])))
        .await
        .expect("shifts");
    assert_eq!(
        out,
        ShiftOutput {
            weight: 10,
            action: fwd(&[(&w.s1, 90), (&w.c1, 10)]),
            changed: true,
            excluded: vec![],
        }
    );
    assert_eq!(
        w.elb.forward(LISTENER, None),
        Some(fwd(&[(&w.s1, 90), (&w.c1, 10)]))
    );
    assert_eq!(
        w.elb.meter.call_counts(),
        [("read_action", 2), ("write_forward", 1)].into()
    );
    // As AWS requests (DescribeListeners twice, ModifyListener once): tests/e2e/api_calls.rs.
    assert_eq!(w.elb.writes().len(), 1);
}

#[tokio::test]
async fn a_rerun_of_the_same_step_writes_nothing() {
    let w = world();
    let first = step(&w, 10, &fwd(&[(&w.s1, 100)]));
    run(&w, first.clone()).await.expect("shifts");
    w.elb.meter.reset_counts();

    let again = run(&w, first).await.expect("re-runs");
    assert!(!again.changed);
    assert_eq!(again.action, fwd(&[(&w.s1, 90), (&w.c1, 10)]));
    assert_eq!(w.elb.meter.call_counts(), [("read_action", 1)].into());
    assert_eq!(w.elb.writes().len(), 1);
}

#[tokio::test]
async fn a_listener_edited_by_someone_else_is_drift_and_is_not_written() {
    let w = world();
    w.elb
        .set_forward(LISTENER, None, fwd(&[(&w.s1, 50), (&w.c1, 50)]));
    let err = run(&w, step(&w, 10, &fwd(&[(&w.s1, 100)])))
        .await
        .expect_err("drift");
    assert!(matches!(err, OkraError::DriftDetected(_)), "{err:?}");
    assert_eq!(err.error_type(), "DriftDetected");
    assert!(!err.is_transient());
    let msg = err.to_string();
    assert!(
        msg.contains("=50") && msg.contains("=100"),
        "names both actions: {msg}"
    );
    assert_eq!(w.elb.meter.calls("write_forward"), 0);
    assert_eq!(
        w.elb.forward(LISTENER, None),
        Some(fwd(&[(&w.s1, 50), (&w.c1, 50)]))
    );
}

#[tokio::test]
async fn a_forward_where_none_was_expected_is_drift() {
    let w = world();
    let i =
        input(json!({ "listenerArn": LISTENER, "stable": [w.s1], "canary": [w.c1], "weight": 10 }));
    let err = run(&w, i).await.expect_err("drift");
    assert_eq!(err.error_type(), "DriftDetected");
    assert!(err.to_string().contains("left nothing"), "{err}");
}

#[tokio::test]
async fn take_over_overwrites_someone_elses_edit() {
    let w = world();
    w.elb
        .set_forward(LISTENER, None, fwd(&[(&w.s1, 50), (&w.c1, 50)]));
    let mut i = step(&w, 10, &fwd(&[(&w.s1, 100)]));
    i.take_over = true;
    let out = run(&w, i).await.expect("takes over");
    assert!(out.changed);
    assert_eq!(
        w.elb.forward(LISTENER, None),
        Some(fwd(&[(&w.s1, 90), (&w.c1, 10)]))
    );
}

#[tokio::test]
async fn a_write_that_does_not_show_is_verification_failed_and_a_retry_succeeds() {
    let w = world();
    w.elb.drop_next_writes(1);
    let i = step(&w, 10, &fwd(&[(&w.s1, 100)]));
    let err = run(&w, i.clone()).await.expect_err("not applied");
    assert!(matches!(err, OkraError::VerificationFailed(_)), "{err:?}");
    assert_eq!(err.error_type(), "VerificationFailed");
    assert!(err.is_transient(), "the state machine retries it");
    assert_eq!(
        w.elb.meter.call_counts(),
        [("read_action", 2), ("write_forward", 1)].into()
    );
    assert_eq!(w.elb.forward(LISTENER, None), Some(fwd(&[(&w.s1, 100)])));

    let out = run(&w, i).await.expect("the retry writes again");
    assert!(out.changed);
    assert_eq!(
        w.elb.forward(LISTENER, None),
        Some(fwd(&[(&w.s1, 90), (&w.c1, 10)]))
    );
}

#[tokio::test]
async fn stickiness_is_kept_from_the_listener_when_not_given() {
    let w = world();
    w.elb
        .set_forward(LISTENER, None, fwd_sticky(&[(&w.s1, 100)], 3600));
    let out = run(&w, step(&w, 10, &fwd(&[(&w.s1, 100)])))
        .await
        .expect("shifts");
    let sticky = Some(ForwardStickiness {
        enabled: true,
        duration_seconds: 3600,
    });
    assert_eq!(out.action.stickiness, sticky);
    assert_eq!(w.elb.writes()[0].stickiness, sticky);
    assert_eq!(
        w.elb.forward(LISTENER, None).and_then(|f| f.stickiness),
        sticky
    );

    // Given, it is written, even at the same weights.
    let mut i = step(&w, 10, &fwd(&[(&w.s1, 90), (&w.c1, 10)]));
    i.stickiness = Some(ForwardStickiness {
        enabled: true,
        duration_seconds: 60,
    });
    let out = run(&w, i).await.expect("shifts");
    assert!(out.changed);
    assert_eq!(
        w.elb.writes()[1].stickiness,
        Some(ForwardStickiness {
            enabled: true,
            duration_seconds: 60
        })
    );
}

#[tokio::test]
async fn weight_above_100_is_invalid_input_before_any_call() {
    let w = world();
    let err = run(&w, step(&w, 101, &fwd(&[(&w.s1, 100)])))
        .await
        .expect_err("refused");
    assert!(matches!(err, OkraError::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("weight: 101"), "{err}");
    assert_eq!(w.elb.meter.total_calls(), 0);

    let empty = input(json!({ "listenerArn": "", "weight": 0 }));
    let err = run(&w, empty).await.expect_err("refused");
    assert!(err.to_string().contains("listenerArn"), "{err}");
    assert_eq!(w.elb.meter.total_calls(), 0);
}

#[tokio::test]
async fn a_side_member_without_an_arn_is_invalid_input_naming_the_field() {
    let w = world();
    let i = input(json!({
        "listenerArn": LISTENER,
        "stable": { "version": "1.0.0", "members": [{ "cluster": "a1", "targetGroupArn": w.s1 }] },
        "canary": { "version": "1.1.0", "members": [
            { "cluster": "b1", "targetGroupArn": w.c1 },
            { "cluster": "b2", "vpcId": "vpc-1" }
        ] },
        "weight": 10,
        "expected": fwd(&[(&w.s1, 100)]),
    }));
    assert!(
        matches!(i.canary, Targets::Side(_)),
        "a side is read as a side: {:?}",
        i.canary
    );
    let err = run(&w, i).await.expect_err("refused");
    assert_eq!(err.error_type(), "InvalidInput");
    let msg = err.to_string();
    assert!(
        msg.contains("canary.members[1].targetGroupArn") && msg.contains("b2"),
        "{msg}"
    );
    assert_eq!(
        w.elb.meter.total_calls(),
        0,
        "refused from the input alone, before any read"
    );
    assert_eq!(w.elb.forward(LISTENER, None), Some(fwd(&[(&w.s1, 100)])));
}

#[tokio::test]
async fn sides_with_arns_are_accepted() {
    let w = world();
    let side = |cluster: &str, arn: &str| Side {
        version: None,
        members: vec![Member {
            cluster: Some(cluster.into()),
            target_group_arn: Some(arn.into()),
            vpc_id: None,
        }],
    };
    let mut i = step(&w, 10, &fwd(&[(&w.s1, 100)]));
    i.stable = Targets::Side(side("a1", &w.s1));
    i.canary = Targets::Side(side("b1", &w.c1));
    assert!(run(&w, i).await.expect("shifts").changed);
}

#[tokio::test]
async fn rollback_to_zero_leaves_only_the_stable_groups() {
    let w = world();
    let at10 = fwd(&[(&w.s1, 90), (&w.c1, 10)]);
    w.elb.set_forward(LISTENER, None, at10.clone());
    let out = run(&w, step(&w, 0, &at10)).await.expect("rolls back");
    assert_eq!(out.action, fwd(&[(&w.s1, 100)]));
    let now = w.elb.forward(LISTENER, None).expect("forwards");
    assert_eq!(
        now.targets
            .iter()
            .map(|t| t.target_group_arn.as_str())
            .collect::<Vec<_>>(),
        vec![w.s1.as_str()]
    );
}

#[tokio::test]
async fn the_first_switch_replaces_the_fixed_response_and_keeps_other_actions() {
    let elb = FakeElb::new();
    let c1 = elb.add_okra_group(CELL, "b1", "1.1.0");
    let c2 = elb.add_okra_group(CELL, "b2", "1.1.0");
    elb.add_listener(LISTENER, vec![RawAction::fixed_response()]);
    elb.add_rule(
        LISTENER,
        RULE,
        vec![
            RawAction::other(1, "authenticate-oidc"),
            RawAction::other(2, "fixed-response"),
        ],
    );
    let i = input(json!({
        "listenerArn": LISTENER,
        "ruleArn": RULE,
        "canary": [c1, c2],
        "weight": 100,
    }));
    let out = handle(&elb, &FakeEks::new(), i).await.expect("initializes");
    assert!(out.changed);
    assert_eq!(
        elb.actions(LISTENER, Some(RULE)),
        Some(vec![
            RawAction::other(1, "authenticate-oidc"),
            RawAction::forward(2, fwd(&[(&c1, 50), (&c2, 50)]))
        ])
    );
    assert_eq!(
        elb.actions(LISTENER, None),
        Some(vec![RawAction::fixed_response()]),
        "the default action is not okra's"
    );
    assert_eq!(
        elb.meter.call_counts(),
        [
            ("read_action", 2),
            ("write_forward", 1),
            ("standby_rule", 1)
        ]
        .into()
    );
}

/// Before the first switch the listener answers with its own fixed response (a maintenance
/// page): the new groups stand by in a rule that never matches instead of replacing it with a
/// forward at weight 0 (503s while the gate waits); the first switch removes the rule.
#[tokio::test]
async fn new_groups_stand_by_without_replacing_the_listener_s_own_response() {
    let elb = FakeElb::new();
    let c1 = elb.add_okra_group(CELL, "b1", "1.1.0");
    let c2 = elb.add_okra_group(CELL, "b2", "1.1.0");
    elb.add_listener(LISTENER, vec![RawAction::fixed_response()]);
    let attach = input(json!({"listenerArn": LISTENER, "attach": [c1, c2], "expected": null}));
    let out = handle(&elb, &FakeEks::new(), attach.clone())
        .await
        .expect("stands by");
    assert!(out.changed);
    assert_eq!(
        elb.actions(LISTENER, None),
        Some(vec![RawAction::fixed_response()]),
        "the listener still answers with its own page"
    );
    assert_eq!(
        elb.standby(LISTENER, "default"),
        Some(vec![c1.clone(), c2.clone()])
    );
    // Step Functions may run it twice: nothing more.
    let again = handle(&elb, &FakeEks::new(), attach)
        .await
        .expect("stands by");
    assert!(!again.changed);
    assert_eq!(elb.meter.calls("put_standby_rule"), 1);

    // The first switch: the forward replaces the page, and the standby rule goes.
    let switch = input(
        json!({"listenerArn": LISTENER, "canary": [c1, c2], "weight": 100,
        "expected": out.action}),
    );
    handle(&elb, &FakeEks::new(), switch)
        .await
        .expect("switches");
    assert_eq!(
        elb.forward(LISTENER, None),
        Some(fwd(&[(&c1, 50), (&c2, 50)]))
    );
    assert_eq!(elb.standby(LISTENER, "default"), None);

    // A gate that timed out before any switch: detach removes the rule, the page stays.
    elb.add_listener(LISTENER, vec![RawAction::fixed_response()]);
    let attach = input(json!({"listenerArn": LISTENER, "attach": [c1], "expected": null}));
    handle(&elb, &FakeEks::new(), attach)
        .await
        .expect("stands by");
    let detach = input(json!({"listenerArn": LISTENER, "detach": [c1], "expected": null}));
    let out = handle(&elb, &FakeEks::new(), detach)
        .await
        .expect("detaches");
    assert!(out.changed);
    assert_eq!(elb.standby(LISTENER, "default"), None);
    assert_eq!(
        elb.actions(LISTENER, None),
        Some(vec![RawAction::fixed_response()])
    );
}

#[tokio::test]
async fn throttled_reads_and_writes_fail_transiently_without_half_writes() {
    let w = world();
    let i = step(&w, 10, &fwd(&[(&w.s1, 100)]));
    w.elb.meter.throttle_next("read_action", 1);
    let err = run(&w, i.clone()).await.expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
    assert_eq!(w.elb.meter.calls("write_forward"), 0);

    w.elb.meter.throttle_next("write_forward", 1);
    let err = run(&w, i.clone()).await.expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
    assert_eq!(w.elb.forward(LISTENER, None), Some(fwd(&[(&w.s1, 100)])));

    assert!(run(&w, i).await.expect("the retry succeeds").changed);
}

#[tokio::test]
async fn impossible_weights_are_weights_not_possible() {
    let w = world();
    // 10 % to a canary side with no group.
    let i = input(json!({
        "listenerArn": LISTENER,
        "stable": [w.s1],
        "canary": [],
        "weight": 10,
        "expected": json_of(&fwd(&[(&w.s1, 100)])),
    }));
    let err = run(&w, i).await.expect_err("refused");
    assert_eq!(err.error_type(), "WeightsNotPossible");
    assert_eq!(
        w.elb.meter.total_calls(),
        0,
        "refused from the input alone, before any read"
    );
}

#[tokio::test]
async fn a_missing_listener_or_rule_is_named() {
    let w = world();
    let mut i = step(&w, 10, &fwd(&[(&w.s1, 100)]));
    i.listener_arn = LISTENER.replace("f2f7dc8efc522ab2", "0000000000000000");
    assert_eq!(
        run(&w, i).await.expect_err("no listener").error_type(),
        "ListenerNotFound"
    );
    let mut i = step(&w, 10, &fwd(&[(&w.s1, 100)]));
    i.rule_arn = Some(RULE.into());
    assert_eq!(
        run(&w, i).await.expect_err("no rule").error_type(),
        "RuleNotFound"
    );
}

#[tokio::test]
async fn unknown_fields_are_refused() {
    let r = serde_json::from_value::<ShiftInput>(
        json!({ "listenerArn": LISTENER, "weight": 1, "wieght": 2 }),
    );
    assert!(r.is_err());
}

/// AWS health-checks the targets of a group only while a listener rule forwards to it (ALB
/// guide, "Health checks for Application Load Balancer target groups"; ELB API reference,
/// TargetHealth: `unused` / `Target.NotInUse`): the new groups stand by at weight 0 first.
#[tokio::test]
async fn attach_stands_new_groups_by_at_zero_and_detach_takes_them_out_without_a_weight_change() {
    let w = world();
    let c2 = w.elb.add_okra_group(CELL, "b2", "1.1.0");
    let attach = input(json!({"listenerArn": LISTENER, "attach": [w.c1, c2]}));
    let out = run(&w, attach.clone()).await.expect("attaches");
    assert!(out.changed);
    assert_eq!(out.weight, 0, "the new groups take no traffic");
    assert_eq!(
        w.elb.forward(LISTENER, None),
        Some(fwd(&[(&w.s1, 100), (&w.c1, 0), (&c2, 0)]))
    );
    // A replay writes nothing.
    w.elb.meter.reset_counts();
    assert!(!run(&w, attach).await.expect("re-runs").changed);
    assert_eq!(w.elb.meter.call_counts(), [("read_action", 1)].into());

    // The first step goes from there, and its drift check is not troubled by the zeros.
    let out = run(&w, step(&w, 10, &fwd(&[(&w.s1, 100)])))
        .await
        .expect("shifts");
    assert_eq!(out.weight, 10);

    // Detach takes out only what stands at 0.
    w.elb
        .set_forward(LISTENER, None, fwd(&[(&w.s1, 100), (&w.c1, 0), (&c2, 0)]));
    let out = run(
        &w,
        input(json!({"listenerArn": LISTENER, "detach": [w.c1, c2]})),
    )
    .await
    .expect("detaches");
    assert!(out.changed);
    assert_eq!(w.elb.forward(LISTENER, None), Some(fwd(&[(&w.s1, 100)])));
}

#[tokio::test]
async fn weight_attach_and_detach_are_exclusive() {
    let w = world();
    let err = run(
        &w,
        input(json!({"listenerArn": LISTENER, "weight": 10, "attach": [w.c1]})),
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(&err, OkraError::InvalidInput(m) if m.starts_with("weight:")),
        "{err:?}"
    );
    assert!(w.elb.meter.call_counts().is_empty(), "no AWS call");
}

#[tokio::test]
async fn attaching_past_five_groups_is_refused_before_any_write() {
    let w = world();
    let more: Vec<String> = (2..=6)
        .map(|i| w.elb.add_okra_group(CELL, &format!("b{i}"), "1.1.0"))
        .collect();
    let err = run(&w, input(json!({"listenerArn": LISTENER, "attach": more})))
        .await
        .expect_err("refused");
    assert!(format!("{err}").contains("at most 5"), "{err}");
    assert!(w.elb.writes().is_empty());
}

/// Before each weight change every member is checked against the cell's gate: a canary group
/// whose cluster is gone (no healthy target left) fails the step before anything is written; a
/// stable one leaves the action and the other stable group takes its weight.
#[tokio::test]
async fn members_are_checked_before_each_weight_change() {
    let w = world();
    let s2 = w.elb.add_okra_group(CELL, "a2", "1.0.0");
    let before = fwd(&[(&w.s1, 50), (&s2, 50)]);
    w.elb.set_forward(LISTENER, None, before.clone());
    for arn in [&w.s1, &s2, &w.c1] {
        w.elb.set_health(arn, 2, 2);
    }
    let checked = |weight: u32, expected: &ForwardAction| {
        input(json!({
            "listenerArn": LISTENER, "stable": [w.s1, s2], "canary": [w.c1],
            "weight": weight, "expected": expected, "minHealthyPercent": 100,
        }))
    };

    // The canary's cluster is gone: its targets are too.
    w.elb.set_health(&w.c1, 0, 0);
    let err = run(&w, checked(30, &before)).await.expect_err("fails");
    assert_eq!(err.error_type(), "CanaryUnhealthy");
    assert!(err.to_string().contains("0 of 0"), "{err}");
    assert!(w.elb.writes().is_empty(), "nothing written");

    // A stable cluster is gone instead: the other stable group takes its share.
    w.elb.set_health(&w.c1, 2, 2);
    w.elb.set_health(&s2, 0, 2);
    let out = run(&w, checked(30, &before)).await.expect("shifts");
    assert_eq!(out.action, fwd(&[(&w.s1, 70), (&w.c1, 30)]));
    assert_eq!(out.excluded.len(), 1);
    assert_eq!(out.excluded[0].target_group_arn, s2);
    assert!(out.excluded[0].reason.contains("0 of 2"));
}

/// Every member's cluster is read before a weight change, whatever the gate (here 0): a canary
/// cluster re-tagged to a newer version fails the step (it must not be promoted as the old
/// one), one deleted too; a stable cluster that is gone leaves the action. A rollback to 0 % is
/// never refused.
#[tokio::test]
async fn member_clusters_are_read_before_each_weight_change_whatever_the_gate() {
    let w = world();
    let s2 = w.elb.add_okra_group(CELL, "a2", "1.0.0");
    let before = fwd(&[(&w.s1, 50), (&s2, 50)]);
    w.elb.set_forward(LISTENER, None, before.clone());
    let eks = FakeEks::new();
    eks.add_active("a1", &[("okra.io/version", "1.0.0")]);
    eks.add_active("a2", &[("okra.io/version", "1.0.0")]);
    eks.add_active("b1", &[("okra.io/version", "1.2.0")]);
    let step = |weight: u32| {
        input(json!({
            "listenerArn": LISTENER,
            "stable": {"version": "1.0.0", "members": [
                {"cluster": "a1", "targetGroupArn": w.s1}, {"cluster": "a2", "targetGroupArn": s2}]},
            "canary": {"version": "1.1.0", "members": [{"cluster": "b1", "targetGroupArn": w.c1}]},
            "weight": weight, "expected": before, "minHealthyPercent": 0,
            "versionTag": "okra.io/version",
        }))
    };
    let err = handle(&w.elb, &eks, step(30)).await.expect_err("re-tagged");
    assert_eq!(err.error_type(), "CanaryUnhealthy");
    assert!(
        err.to_string()
            .contains("cluster b1 now carries version 1.2.0, not 1.1.0"),
        "{err}"
    );
    assert!(w.elb.writes().is_empty(), "nothing written");

    // Back to 1.1.0, but a stable cluster is deleted: the other takes its share.
    eks.add_active("b1", &[("okra.io/version", "1.1.0")]);
    eks.remove_cluster("a2");
    let out = handle(&w.elb, &eks, step(30)).await.expect("shifts");
    assert_eq!(out.action, fwd(&[(&w.s1, 70), (&w.c1, 30)]));
    assert_eq!(out.excluded.len(), 1);
    assert_eq!(out.excluded[0].reason, "cluster a2 is gone");

    // The canary's cluster deleted too: no weight for it; a rollback still goes through.
    eks.remove_cluster("b1");
    let err = handle(&w.elb, &eks, step(50)).await.expect_err("gone");
    assert!(err.to_string().contains("cluster b1 is gone"), "{err}");
    let mut back = step(0);
    back.expected = Some(out.action.clone());
    let out = handle(&w.elb, &eks, back).await.expect("rolls back");
    assert_eq!(out.weight, 0);
}
