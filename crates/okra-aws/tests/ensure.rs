//! `ensure-target-groups` over the fakes.

mod common;

use std::collections::BTreeMap;

use common::{CELL, LISTENER, cell, cell_with, tags};
use okra_aws::Result;
use okra_aws::fakes::{FakeAutoScaling, FakeEks, FakeElb};
use okra_aws::handlers::ensure::{EnsureInput, EnsureOutput, GroupReport, Mode, handle};
use okra_core::decision::{Member, Side};
use okra_core::naming::target_group_name;
use okra_core::spec::CellSpec;
use pretty_assertions::assert_eq;
use serde_json::json;

struct World {
    eks: FakeEks,
    elb: FakeElb,
    asg: FakeAutoScaling,
}

/// Clusters b1 and b2 of 1.1.0, each with two node-group Auto Scaling groups.
fn world() -> World {
    let eks = FakeEks::new();
    for c in ["b1", "b2"] {
        eks.add_active(c, &tags("1.1.0"));
        eks.set_node_group_asgs(c, &[&format!("eks-{c}-ng-a"), &format!("eks-{c}-ng-b")]);
    }
    World {
        eks,
        elb: FakeElb::new(),
        asg: FakeAutoScaling::new(),
    }
}

fn side() -> Side {
    Side {
        version: Some("1.1.0".into()),
        members: ["b1", "b2"]
            .iter()
            .map(|c| Member {
                cluster: Some((*c).into()),
                target_group_arn: None,
                vpc_id: Some("vpc-1".into()),
            })
            .collect(),
    }
}

async fn run(w: &World, cell: CellSpec, side: Side, mode: Mode) -> Result<EnsureOutput> {
    handle(&w.eks, &w.elb, &w.asg, EnsureInput { cell, side, mode }).await
}

fn external() -> CellSpec {
    cell_with(2, |v| v["targetGroup"]["registration"] = json!("external"))
}

#[tokio::test]
async fn creates_one_group_per_cluster_with_the_deterministic_name_and_tags() {
    let w = world();
    let out = run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect("ensures");

    assert_eq!(w.elb.meter.calls("create_target_group"), 2);
    for (i, c) in ["b1", "b2"].iter().enumerate() {
        let name = target_group_name(CELL, c);
        let tg = w
            .elb
            .target_group_named(&name)
            .unwrap_or_else(|| panic!("no group {name}"));
        assert_eq!(
            tg.tags,
            BTreeMap::from([
                ("okra.io/cell".to_string(), CELL.to_string()),
                ("okra.io/cluster".to_string(), (*c).to_string()),
                ("okra.io/managed-by".to_string(), "okra".to_string()),
                ("okra.io/version".to_string(), "1.1.0".to_string()),
            ])
        );
        assert_eq!(tg.vpc_id, "vpc-1");
        let template = tg.template.expect("made from the cell's template");
        assert_eq!(template.port, 30080);
        assert_eq!(tg.protocol.as_deref(), Some("HTTP"));
        assert_eq!(template.health_check.path.as_deref(), Some("/healthz"));
        // The output side carries the ARN for the next task.
        assert_eq!(
            out.side.members[i].target_group_arn.as_deref(),
            Some(tg.arn.as_str())
        );
        assert_eq!(
            out.groups[i],
            GroupReport {
                cluster: Some((*c).to_string()),
                target_group_arn: tg.arn.clone(),
                created: true,
                healthy: 0,
                total: 0,
                ready: false,
            }
        );
    }
    assert!(!out.ready, "no targets registered yet");
    assert_eq!(w.elb.target_groups().len(), 2);
}

#[tokio::test]
async fn a_second_run_creates_nothing() {
    let w = world();
    let first = run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect("ensures");
    w.elb.meter.reset_counts();

    // The same input again (a Step Functions retry): the groups are found by name.
    let again = run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect("ensures again");
    assert_eq!(w.elb.meter.calls("create_target_group"), 0);
    assert_eq!(w.elb.target_groups().len(), 2);
    assert_eq!(again.side, first.side);
    assert!(again.groups.iter().all(|g| !g.created));

    // The output of the first run as input: the ARNs are used as they are.
    w.elb.meter.reset_counts();
    let third = run(&w, cell(2), first.side.clone(), Mode::Ensure)
        .await
        .expect("ensures");
    assert_eq!(w.elb.meter.calls("create_target_group"), 0);
    assert_eq!(w.elb.meter.calls("target_group_by_name"), 0);
    assert_eq!(third.side, first.side);
}

#[tokio::test]
async fn a_group_deleted_behind_okras_back_is_made_again() {
    let w = world();
    let first = run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect("ensures");
    let gone = first.groups[0].target_group_arn.clone();
    w.elb.remove_target_group(&gone);
    let again = run(&w, cell(2), first.side.clone(), Mode::Ensure)
        .await
        .expect("makes it again");
    assert_eq!(w.elb.target_groups().len(), 2);
    assert_ne!(again.groups[0].target_group_arn, gone);
    assert!(again.groups[0].created);
    assert_eq!(
        again.groups[1].target_group_arn,
        first.groups[1].target_group_arn
    );
    assert!(!again.groups[1].created);
}

#[tokio::test]
async fn a_retagged_cluster_keeps_its_group_and_the_tags_follow() {
    let w = world();
    let first = run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect("ensures");
    let mut side = side();
    side.version = Some("1.2.0".into());
    run(&w, cell(2), side, Mode::Ensure).await.expect("ensures");
    let arn = first.side.members[0]
        .target_group_arn
        .clone()
        .expect("has an ARN");
    let tg = w.elb.target_group(&arn).expect("still there");
    assert_eq!(
        tg.tags.get("okra.io/version").map(String::as_str),
        Some("1.2.0")
    );
    assert_eq!(w.elb.target_groups().len(), 2);
}

#[tokio::test]
async fn nodegroups_registration_attaches_each_auto_scaling_group() {
    let w = world();
    let out = run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect("ensures");
    let arn = |i: usize| {
        out.side.members[i]
            .target_group_arn
            .clone()
            .expect("has an ARN")
    };
    assert_eq!(
        w.asg.attachments(),
        vec![
            ("eks-b1-ng-a".to_string(), arn(0)),
            ("eks-b1-ng-b".to_string(), arn(0)),
            ("eks-b2-ng-a".to_string(), arn(1)),
            ("eks-b2-ng-b".to_string(), arn(1)),
        ]
    );
    assert_eq!(w.eks.meter.calls("node_group_asgs"), 2);
    assert_eq!(w.asg.meter.calls("attach_target_group"), 4);

    // Attaching again on a re-run is harmless.
    run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect("ensures again");
    assert_eq!(w.asg.attachments().len(), 4);
}

#[tokio::test]
async fn external_registration_attaches_nothing() {
    let w = world();
    let out = run(&w, external(), side(), Mode::Ensure)
        .await
        .expect("ensures");
    assert_eq!(out.groups.len(), 2);
    assert!(w.asg.attachments().is_empty());
    assert_eq!(w.asg.meter.total_calls(), 0);
    assert_eq!(w.eks.meter.total_calls(), 0);
}

#[tokio::test]
async fn health_mode_reports_healthy_of_total_and_the_gate() {
    let w = world();
    let made = run(&w, external(), side(), Mode::Ensure)
        .await
        .expect("ensures");
    let arns: Vec<String> = made.side.target_group_arns();
    w.elb.meter.reset_counts();

    w.elb.set_health(&arns[0], 3, 3);
    w.elb.set_health(&arns[1], 2, 3);
    let out = run(&w, external(), made.side.clone(), Mode::Health)
        .await
        .expect("reads health");
    assert_eq!(
        out.groups
            .iter()
            .map(|g| (g.healthy, g.total, g.ready, g.created))
            .collect::<Vec<_>>(),
        vec![(3, 3, true, false), (2, 3, false, false)]
    );
    assert!(!out.ready);
    assert_eq!(out.reason, "b2: 2 of 3 targets healthy (needs 100 %)");
    // Health mode only reads.
    assert_eq!(w.elb.meter.call_counts(), [("target_health", 2)].into());
    assert_eq!(w.asg.meter.total_calls(), 0);

    w.elb.set_health(&arns[1], 3, 3);
    let out = run(&w, external(), made.side.clone(), Mode::Health)
        .await
        .expect("reads health");
    assert!(out.ready);
    assert_eq!(
        out.reason,
        "2 of 2 target group(s) ready (at least 100 % healthy)"
    );

    // A lower gate lets 2 of 3 pass.
    w.elb.set_health(&arns[1], 2, 3);
    let lenient = cell_with(2, |v| {
        v["targetGroup"]["registration"] = json!("external");
        v["readiness"]["minHealthyPercent"] = json!(60);
    });
    assert!(
        run(&w, lenient, made.side, Mode::Health)
            .await
            .expect("reads health")
            .ready
    );
}

#[tokio::test]
async fn a_group_without_targets_is_not_ready_unless_the_gate_is_zero() {
    let w = world();
    let made = run(&w, external(), side(), Mode::Ensure)
        .await
        .expect("ensures");
    let out = run(&w, external(), made.side.clone(), Mode::Health)
        .await
        .expect("reads health");
    assert!(!out.ready);
    assert!(out.groups.iter().all(|g| g.total == 0 && !g.ready));

    let zero = cell_with(2, |v| {
        v["targetGroup"]["registration"] = json!("external");
        v["readiness"]["minHealthyPercent"] = json!(0);
    });
    let out = run(&w, zero, made.side, Mode::Health)
        .await
        .expect("reads health");
    assert!(out.ready);
}

/// A forward action's target groups must be in the load balancer's VPC (ELB API reference,
/// ModifyListener / CreateRule: a target group of another VPC is refused): okra makes them
/// there, whatever VPC the cluster reports, and looks the VPC up once.
#[tokio::test]
async fn target_groups_are_made_in_the_load_balancers_vpc() {
    let w = world();
    w.elb.set_load_balancer_vpc(LISTENER, "vpc-lb");
    let mut side = side();
    side.members[0].vpc_id = None;
    let out = run(&w, cell(2), side, Mode::Ensure)
        .await
        .expect("makes the groups");
    assert_eq!(out.groups.len(), 2);
    let vpcs: Vec<String> = w
        .elb
        .target_groups()
        .into_iter()
        .map(|g| g.vpc_id)
        .collect();
    assert_eq!(vpcs, ["vpc-lb", "vpc-lb"]);
    assert_eq!(w.elb.meter.calls("load_balancer_vpc"), 1);
}

#[tokio::test]
async fn health_mode_without_arns_names_the_member() {
    let w = world();
    let err = run(&w, cell(2), side(), Mode::Health)
        .await
        .expect_err("no ARN");
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(
        err.to_string().contains("side.members[0].targetGroupArn"),
        "{err}"
    );
    assert_eq!(w.elb.meter.total_calls(), 0);
}

#[tokio::test]
async fn throttled_creation_fails_and_a_retry_finishes_the_job() {
    let w = world();
    // b1's group is made by an earlier run; creating b2's is throttled.
    run(
        &w,
        external(),
        Side {
            members: side().members[..1].to_vec(),
            ..side()
        },
        Mode::Ensure,
    )
    .await
    .expect("b1 made");
    w.elb.meter.throttle_next("create_target_group", 1);
    let err = run(&w, external(), side(), Mode::Ensure)
        .await
        .expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
    assert_eq!(w.elb.target_groups().len(), 1);

    let out = run(&w, external(), side(), Mode::Ensure)
        .await
        .expect("the retry succeeds");
    assert_eq!(w.elb.target_groups().len(), 2);
    assert_eq!(
        out.groups.iter().map(|g| g.created).collect::<Vec<_>>(),
        vec![false, true]
    );
}

#[tokio::test]
async fn the_input_is_read_from_the_state_machine_json() {
    let input: EnsureInput = serde_json::from_value(json!({
        "cell": common::cell_json(2),
        "side": { "version": "1.1.0", "members": [{ "cluster": "b1", "vpcId": "vpc-1" }] },
        "mode": "health",
    }))
    .expect("parses");
    assert_eq!(input.mode, Mode::Health);
    assert_eq!(input.side.members[0].vpc_id.as_deref(), Some("vpc-1"));
    let default: EnsureInput = serde_json::from_value(json!({
        "cell": common::cell_json(2),
        "side": { "members": [] },
    }))
    .expect("parses");
    assert_eq!(default.mode, Mode::Ensure);
}

/// `registration: nodegroups` with a cluster whose nodes are in no managed node group
/// (Karpenter, self-managed, Fargate): an error naming the cluster and what to do, not a silent
/// wait until the readiness gate times out.
#[tokio::test]
async fn a_cluster_without_managed_node_groups_is_nothing_to_register() {
    let w = world();
    w.eks.set_node_group_asgs("b2", &[]);
    let err = run(&w, cell(2), side(), Mode::Ensure)
        .await
        .expect_err("nothing to register");
    assert_eq!(err.error_type(), "NothingToRegister");
    assert!(
        err.to_string().contains("cluster b2") && err.to_string().contains("external"),
        "{err}"
    );
}

fn instances() -> CellSpec {
    cell_with(2, |v| v["targetGroup"]["registration"] = json!("instances"))
}

/// `registration: instances`: each cluster's instances (found by its tags) are registered in its
/// group, nothing is attached to an Auto Scaling group, a second run writes nothing, and a
/// replaced node is followed.
#[tokio::test]
async fn instance_registration_registers_each_cluster_s_instances_and_follows_them() {
    let w = world();
    w.eks.set_instances("b1", &["i-b1-1", "i-b1-2"]);
    w.eks.set_instances("b2", &["i-b2-1"]);
    let out = run(&w, instances(), side(), Mode::Ensure)
        .await
        .expect("ensures");
    let targets = |c: &str| -> Vec<String> {
        let arn = out
            .side
            .members
            .iter()
            .find(|m| m.cluster.as_deref() == Some(c))
            .and_then(|m| m.target_group_arn.clone())
            .expect("an ARN");
        w.elb
            .target_group(&arn)
            .expect("the group")
            .targets
            .into_iter()
            .collect()
    };
    assert_eq!(targets("b1"), ["i-b1-1", "i-b1-2"]);
    assert_eq!(targets("b2"), ["i-b2-1"]);
    assert_eq!(w.asg.meter.calls("attach_target_group"), 0);
    assert_eq!(w.eks.meter.calls("node_group_asgs"), 0);

    let writes = w.elb.meter.calls("register_targets");
    run(&w, instances(), out.side.clone(), Mode::Ensure)
        .await
        .expect("ensures");
    assert_eq!(
        w.elb.meter.calls("register_targets"),
        writes,
        "the second run registers nothing"
    );
    assert_eq!(w.elb.meter.calls("deregister_targets"), 0);

    w.eks.set_instances("b1", &["i-b1-2", "i-b1-3"]);
    run(&w, instances(), out.side.clone(), Mode::Ensure)
        .await
        .expect("ensures");
    assert_eq!(targets("b1"), ["i-b1-2", "i-b1-3"]);
}

/// A cluster whose tags find no instance (Fargate only, or no node yet): an error naming the
/// cluster, the tags looked for and what to do; its group is not emptied.
#[tokio::test]
async fn instance_registration_without_instances_is_nothing_to_register() {
    let w = world();
    w.eks.set_instances("b1", &["i-b1-1"]);
    let err = run(&w, instances(), side(), Mode::Ensure)
        .await
        .expect_err("nothing to register");
    assert_eq!(err.error_type(), "NothingToRegister");
    let text = err.to_string();
    assert!(
        text.contains("cluster b2")
            && text.contains("eks:cluster-name=b2")
            && text.contains("kubernetes.io/cluster/b2")
            && text.contains("registration: external"),
        "{text}"
    );
    assert_eq!(w.elb.meter.calls("deregister_targets"), 0);
}
