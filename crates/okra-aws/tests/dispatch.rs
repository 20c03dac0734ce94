//! `dispatcher` over the fakes, fed the EventBridge events of `events/dispatcher-*.json`.

mod common;

use common::{CELL, LISTENER, cell, cell_with, fwd, tags};
use okra_aws::fakes::{FakeEks, FakeElb, FakeExecutions, FakeState, RawAction};
use okra_aws::handlers::dispatch::{CellResult, DispatchOutcome, DispatchOutput, handle};
use okra_aws::ports::LoadBalancerPort as _;
use okra_aws::state::{ExecutionInput, Lock, StatePort};
use okra_aws::{OkraError, Result};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const API_LISTENER: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/api-prod/60dc6c495c0c9188/a2f7dc8efc522ab2";

fn event(name: &str) -> Value {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("the event file is JSON")
}

struct World {
    state: FakeState,
    execs: FakeExecutions,
    eks: FakeEks,
    elb: FakeElb,
    events: okra_aws::fakes::FakeEvents,
    asg: okra_aws::fakes::FakeAutoScaling,
    hub: okra_aws::fakes::FakeHub,
}

/// Cell `web` (replicas 1): `web-a1` serves 1.0.0 at 100 %, `web-b1` is ACTIVE with 1.1.0 → a
/// rollout to 1.1.0 is due. Cell `api` selects `okra.io/cell: api`, whose one cluster serves.
fn world() -> World {
    let w = World {
        state: FakeState::new(),
        execs: FakeExecutions::new(),
        eks: FakeEks::new(),
        elb: FakeElb::new(),
        events: okra_aws::fakes::FakeEvents::new(),
        asg: okra_aws::fakes::FakeAutoScaling::default(),
        hub: okra_aws::fakes::FakeHub::new(),
    };
    w.eks.add_active("web-a1", &tags("1.0.0"));
    w.eks.add_active("web-b1", &tags("1.1.0"));
    let a1 = w.elb.add_okra_group(CELL, "web-a1", "1.0.0");
    w.elb
        .add_listener(LISTENER, vec![RawAction::forward(1, fwd(&[(&a1, 1)]))]);

    w.eks.add_active(
        "api-a1",
        &[("okra.io/cell", "api"), ("okra.io/version", "2.0.0")],
    );
    let api_tg = w.elb.add_okra_group("api", "api-a1", "2.0.0");
    w.elb.add_listener(
        API_LISTENER,
        vec![RawAction::forward(1, fwd(&[(&api_tg, 1)]))],
    );

    w.state.insert_cell(cell(1));
    w.state.insert_cell(api_cell());
    w
}

fn api_cell() -> okra_core::spec::CellSpec {
    cell_with(1, |v| {
        v["name"] = json!("api");
        v["ingress"]["alb"]["listenerArn"] = json!(API_LISTENER);
        v["clusterSelector"]["matchTags"] = json!({"okra.io/cell": "api"});
    })
}

impl World {
    async fn dispatch(&self, ev: Value) -> Result<DispatchOutput> {
        handle(
            &self.state,
            &self.execs,
            &self.eks,
            &self.elb,
            &self.events,
            okra_aws::handlers::dispatch::LifecyclePorts {
                autoscaling: &self.asg,
                hub: &self.hub,
            },
            ev,
        )
        .await
    }
}

fn by_cell<'a>(out: &'a DispatchOutput, cell: &str) -> &'a CellResult {
    out.results
        .iter()
        .find(|r| r.cell == cell)
        .unwrap_or_else(|| panic!("no result for {cell}: {out:?}"))
}

fn cells(out: &DispatchOutput) -> Vec<&str> {
    out.results.iter().map(|r| r.cell.as_str()).collect()
}

#[tokio::test]
async fn a_schedule_starts_the_due_rollout_and_nothing_else() {
    let w = world();
    let out = w
        .dispatch(event("dispatcher-schedule"))
        .await
        .expect("dispatches");
    assert_eq!(out.trigger, "schedule");
    assert_eq!(cells(&out), ["api", "web"]);

    let web = by_cell(&out, "web");
    assert_eq!(web.outcome, DispatchOutcome::Started, "{web:?}");
    assert_eq!(web.execution.as_deref(), Some("web--1-1-0--0"));
    assert_eq!(web.decision.as_deref(), Some("startRollout"));

    let api = by_cell(&out, "api");
    assert_eq!(api.outcome, DispatchOutcome::NothingToDo, "{api:?}");
    assert!(api.reason.contains("2.0.0"), "{}", api.reason);

    let execs = w.execs.executions();
    assert_eq!(execs.len(), 1);
    let input: ExecutionInput =
        serde_json::from_value(execs[0].input.clone()).expect("an ExecutionInput");
    assert_eq!(input.cell, cell(1));
    assert_eq!(input.trigger, "schedule");
    assert_eq!(
        input.labels["rule"],
        "arn:aws:events:eu-west-1:123456789012:rule/okra-dispatch-schedule"
    );
    // Two cells: one tag query for both cells' clusters (their selectors share the key
    // okra.io/cell), one for both cells' target groups; each cluster described once; nothing
    // listed.
    assert_eq!(w.eks.meter.calls("find_clusters_any"), 1);
    assert_eq!(w.eks.meter.calls("find_clusters"), 0);
    assert_eq!(w.eks.meter.calls("describe_cluster"), 3);
    assert_eq!(w.elb.meter.calls("find_cells_target_groups"), 1);
    assert_eq!(
        w.elb.meter.calls("find_target_groups"),
        0,
        "no cell searched its groups again"
    );
}

#[tokio::test]
async fn nothing_to_do_starts_nothing() {
    let w = world();
    w.eks.remove_cluster("web-b1");
    let out = w
        .dispatch(json!({"cells": ["web"]}))
        .await
        .expect("dispatches");
    assert_eq!(out.trigger, "api");
    assert_eq!(by_cell(&out, "web").outcome, DispatchOutcome::NothingToDo);
    assert_eq!(w.execs.meter.calls("start"), 0);
    assert!(w.execs.executions().is_empty());
}

/// `registration: instances`: between rollouts, every reconcile makes the serving groups hold
/// their clusters' instances as they are now (Karpenter replaces nodes without asking).
#[tokio::test]
async fn a_reconcile_syncs_the_serving_groups_with_their_clusters_instances() {
    let w = world();
    let mut api = api_cell();
    api.target_group.registration = okra_core::spec::Registration::Instances;
    w.state.insert_cell(api);
    let arn = w
        .elb
        .find_cells_target_groups(&["api".to_string()])
        .await
        .expect("found")[0]
        .1
        .arn
        .clone();
    let targets = || -> Vec<String> {
        w.elb
            .target_group(&arn)
            .expect("the group")
            .targets
            .into_iter()
            .collect()
    };
    let reason = |out: &DispatchOutput| by_cell(out, "api").reason.clone();

    w.eks.set_instances("api-a1", &["i-1", "i-2"]);
    let out = w
        .dispatch(event("dispatcher-schedule"))
        .await
        .expect("dispatches");
    assert_eq!(by_cell(&out, "api").outcome, DispatchOutcome::NothingToDo);
    assert!(
        reason(&out).ends_with("instances synced in 1 group(s): 2 registered, 0 deregistered"),
        "{}",
        reason(&out)
    );
    assert_eq!(targets(), ["i-1", "i-2"]);

    // A node replaced: the new one in, the old one out.
    w.eks.set_instances("api-a1", &["i-2", "i-3"]);
    let out = w
        .dispatch(event("dispatcher-schedule"))
        .await
        .expect("dispatches");
    assert!(
        reason(&out).ends_with("1 registered, 1 deregistered"),
        "{}",
        reason(&out)
    );
    assert_eq!(targets(), ["i-2", "i-3"]);

    // Nothing changed: nothing written.
    let writes = w.elb.meter.calls("register_targets") + w.elb.meter.calls("deregister_targets");
    w.dispatch(event("dispatcher-schedule"))
        .await
        .expect("dispatches");
    assert_eq!(
        w.elb.meter.calls("register_targets") + w.elb.meter.calls("deregister_targets"),
        writes
    );

    // No instance found: said, and the group is left as it is (never emptied on an empty read).
    w.eks.set_instances("api-a1", &[]);
    let out = w
        .dispatch(event("dispatcher-schedule"))
        .await
        .expect("dispatches");
    assert!(
        reason(&out).contains("not synced: api-a1: "),
        "{}",
        reason(&out)
    );
    assert_eq!(targets(), ["i-2", "i-3"]);

    // Cells that register otherwise are not touched.
    assert_eq!(w.eks.meter.calls("cluster_instances"), 4);
}

#[tokio::test]
async fn fifty_concurrent_dispatches_start_one_execution() {
    let w = world();
    let ev = event("dispatcher-api");
    let outs = futures::future::join_all((0..50).map(|_| w.dispatch(ev.clone()))).await;
    for out in &outs {
        let out = out.as_ref().expect("dispatches");
        let web = by_cell(out, "web");
        assert!(
            matches!(
                web.outcome,
                DispatchOutcome::Started | DispatchOutcome::AlreadyRunning
            ),
            "{web:?}"
        );
        assert_eq!(web.execution.as_deref(), Some("web--1-1-0--0"));
    }
    assert_eq!(w.execs.executions().len(), 1, "{:?}", w.execs.executions());
    let input: ExecutionInput =
        serde_json::from_value(w.execs.executions()[0].input.clone()).expect("an ExecutionInput");
    assert_eq!(input.labels["caller"], "alice");
}

#[tokio::test]
async fn a_create_cluster_event_reconciles_only_the_cells_it_matches() {
    let w = world();
    let out = w
        .dispatch(event("dispatcher-create-cluster"))
        .await
        .expect("dispatches");
    assert_eq!(out.trigger, "eks-event");
    assert_eq!(cells(&out), ["web"]);
    assert_eq!(by_cell(&out, "web").outcome, DispatchOutcome::Started);
    let input: ExecutionInput =
        serde_json::from_value(w.execs.executions()[0].input.clone()).expect("an ExecutionInput");
    assert_eq!(input.labels["cluster"], "web-b1");
    assert_eq!(input.labels["eventName"], "CreateCluster");
}

#[tokio::test]
async fn tag_and_untag_events_reconcile_cells_of_the_cluster_and_of_the_keys() {
    let w = world();
    // TagResource of web-b1's version: the cluster's tags now match web only.
    let out = w
        .dispatch(event("dispatcher-tag-resource"))
        .await
        .expect("dispatches");
    assert_eq!(cells(&out), ["web"]);
    assert!(w.eks.meter.calls("describe_cluster") >= 1);

    // UntagResource of `okra.io/cell`: the cluster may have left any cell selecting that key.
    let out = w
        .dispatch(event("dispatcher-untag-resource"))
        .await
        .expect("dispatches");
    assert_eq!(cells(&out), ["api", "web"]);

    // DeleteCluster: every cell.
    let out = w
        .dispatch(event("dispatcher-delete-cluster"))
        .await
        .expect("dispatches");
    assert_eq!(cells(&out), ["api", "web"]);
}

#[tokio::test]
async fn a_running_execution_holding_the_lock_skips_the_cell() {
    let w = world();
    w.execs.add("web--0-9-0--0", "RUNNING");
    w.state.set_lock(
        CELL,
        Some(Lock {
            execution: "web--0-9-0--0".into(),
            version: "0.9.0".into(),
            acquired_at: "x".into(),
        }),
    );
    let out = w
        .dispatch(json!({"cells": ["web"], "trigger": "api"}))
        .await
        .expect("dispatches");
    let web = by_cell(&out, "web");
    assert_eq!(web.outcome, DispatchOutcome::Skipped);
    assert!(web.reason.starts_with("running"), "{}", web.reason);
    assert_eq!(w.execs.meter.calls("start"), 0);
    assert_eq!(
        w.elb.meter.calls("read_action"),
        0,
        "no discovery while it runs"
    );

    // Finished: the stale lock does not stop the next rollout.
    w.execs.set_status("web--0-9-0--0", "SUCCEEDED");
    let out = w
        .dispatch(json!({"cells": ["web"]}))
        .await
        .expect("dispatches");
    assert_eq!(by_cell(&out, "web").outcome, DispatchOutcome::Started);
}

/// An execution that ended without releasing the cell (stopped in the console, or failed outside
/// every Catch) keeps its name for 90 days (Step Functions API reference, StartExecution:
/// `ExecutionAlreadyExists` for a closed execution's name). The cell is not stuck behind it: the
/// dispatcher moves the cell's generation on and starts under a new name.
#[tokio::test]
async fn a_name_taken_by_a_closed_execution_moves_the_generation_on() {
    let w = world();
    w.execs.add("web--1-1-0--0", "FAILED");
    let out = w
        .dispatch(json!({"cells": ["web"]}))
        .await
        .expect("dispatches");
    let web = by_cell(&out, "web");
    assert_eq!(web.outcome, DispatchOutcome::Started, "{web:?}");
    assert_eq!(web.execution.as_deref(), Some("web--1-1-0--1"));
    assert_eq!(w.state.generation(CELL).await.expect("reads"), 1);

    // A duplicate trigger while it runs is absorbed by the running execution's name (the same
    // name and input while RUNNING answers with the same execution, as StartExecution does).
    let out = w
        .dispatch(json!({"cells": ["web"]}))
        .await
        .expect("dispatches");
    let web = by_cell(&out, "web");
    assert_eq!(web.execution.as_deref(), Some("web--1-1-0--1"), "{web:?}");
    assert_eq!(w.execs.executions().len(), 2, "no third execution");
}

#[tokio::test]
async fn a_blocked_version_is_not_rolled_out() {
    let w = world();
    w.state
        .block(
            CELL,
            &okra_aws::state::Block {
                version: "1.1.0".into(),
                reason: "analysis failed".into(),
                execution: "web--1-1-0--0".into(),
                at: "x".into(),
            },
        )
        .await
        .expect("blocks");
    let out = w
        .dispatch(json!({"cells": ["web"]}))
        .await
        .expect("dispatches");
    assert_eq!(by_cell(&out, "web").outcome, DispatchOutcome::NothingToDo);
    assert!(w.execs.executions().is_empty());
}

#[tokio::test]
async fn a_bad_cell_is_an_error_and_the_others_go_on() {
    let w = world();
    w.state.insert_cell(cell_with(1, |v| {
        v["name"] = json!("old");
        v["replicas"] = json!(0);
    }));
    let out = w
        .dispatch(event("dispatcher-schedule"))
        .await
        .expect("dispatches");
    assert_eq!(cells(&out), ["api", "old", "web"]);
    let old = by_cell(&out, "old");
    assert_eq!(old.outcome, DispatchOutcome::Error);
    assert_eq!(old.error_type.as_deref(), Some("InvalidSpec"));
    assert!(
        old.reason.contains("replicas"),
        "names the field: {}",
        old.reason
    );
    assert_eq!(by_cell(&out, "web").outcome, DispatchOutcome::Started);

    // A named cell that does not exist; a throttled discovery.
    w.elb.meter.throttle_next("read_action", 1);
    let out = w
        .dispatch(json!({"cells": ["nope", "api"]}))
        .await
        .expect("dispatches");
    assert_eq!(
        by_cell(&out, "nope").error_type.as_deref(),
        Some("NotFound")
    );
    assert_eq!(
        by_cell(&out, "api").error_type.as_deref(),
        Some("Throttled")
    );
}

#[tokio::test]
async fn malformed_events_are_invalid_input_naming_the_field() {
    let w = world();
    let mut no_name = event("dispatcher-create-cluster");
    no_name["detail"]["requestParameters"]
        .as_object_mut()
        .expect("object")
        .remove("name");
    let mut wrong_source = event("dispatcher-tag-resource");
    wrong_source["detail"]["eventSource"] = json!("ec2.amazonaws.com");
    let mut bad_tags = event("dispatcher-untag-resource");
    bad_tags["detail"]["requestParameters"]["tagKeys"] = json!("okra.io/cell");
    let mut other_call = event("dispatcher-delete-cluster");
    other_call["detail"]["eventName"] = json!("UpdateClusterConfig");
    let mut other_type = event("dispatcher-schedule");
    other_type["detail-type"] = json!("EKS Cluster State Change");
    let mut no_detail_type = event("dispatcher-schedule");
    no_detail_type
        .as_object_mut()
        .expect("object")
        .remove("detail-type");
    for (ev, field) in [
        (no_name, "detail.requestParameters.name"),
        (wrong_source, "detail.eventSource"),
        (bad_tags, "detail.requestParameters.tagKeys"),
        (other_call, "detail.eventName"),
        (other_type, "detail-type"),
        (no_detail_type, "detail-type"),
        (json!({"cell": "web"}), "cell"),
        (json!({"cells": "web"}), "cells: not a list"),
        (json!({"cells": ["web", 3]}), "cells[1]"),
        (json!({"labels": {"a": 1}}), "labels.a"),
        (json!([1]), "object"),
    ] {
        let err = w.dispatch(ev).await.expect_err("refused");
        assert!(matches!(err, OkraError::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    assert!(w.execs.executions().is_empty());
}

#[tokio::test]
async fn failed_api_calls_and_node_group_tags_concern_no_cell() {
    let w = world();
    let mut failed = event("dispatcher-create-cluster");
    failed["detail"]["errorCode"] = json!("ResourceInUseException");
    let out = w.dispatch(failed).await.expect("dispatches");
    assert!(out.results.is_empty());
    assert!(out.note.is_some());
    let mut ng = event("dispatcher-tag-resource");
    ng["detail"]["requestParameters"]["resourceArn"] =
        json!("arn:aws:eks:eu-west-1:123456789012:nodegroup/web-b1/ng-1/0ec5a1b2");
    let out = w.dispatch(ng).await.expect("dispatches");
    assert!(out.results.is_empty());
    assert_eq!(w.state.meter.calls("list_cells"), 0);
}

/// After a failure that did not block, the next automatic attempt waits for its backoff (5 min
/// after the first failure), and the dispatcher says why.
#[tokio::test]
async fn the_next_attempt_after_a_failure_waits_for_its_backoff() {
    let w = world();
    let failed = |ago: u64| okra_aws::state::Failures {
        count: 1,
        last_at: okra_aws::state::rfc3339(
            std::time::SystemTime::now() - std::time::Duration::from_secs(ago),
        ),
        last_reason: "the new target groups did not meet the readiness gate in time".into(),
    };
    w.state.set_failures(CELL, "1.1.0", failed(60));
    let out = w
        .dispatch(json!({"cells": ["web"]}))
        .await
        .expect("dispatches");
    let web = by_cell(&out, "web");
    assert_eq!(web.outcome, DispatchOutcome::Skipped, "{web:?}");
    assert!(
        web.reason.contains("failed 1 automatic attempt(s)")
            && web.reason.contains("readiness gate")
            && web.reason.contains("the next attempt in 4m"),
        "{}",
        web.reason
    );
    assert!(w.execs.executions().is_empty());

    w.state.set_failures(CELL, "1.1.0", failed(301));
    let out = w
        .dispatch(json!({"cells": ["web"]}))
        .await
        .expect("dispatches");
    assert_eq!(by_cell(&out, "web").outcome, DispatchOutcome::Started);
}

/// The tick's sweep: a lock whose execution ended without its status change event (EventBridge
/// delivers best effort) is finalized as the event would — its rollout recorded, the lock
/// released — even when nothing is to be started (issue 25, item 6).
#[tokio::test]
async fn the_tick_finalizes_a_lock_whose_status_change_event_never_came() {
    let w = world();
    // `api` serves its one version: nothing to do there, but a stopped execution holds its lock.
    w.state.set_lock(
        "api",
        Some(okra_aws::state::Lock {
            execution: "api--2-0-0--0".into(),
            version: "2.0.0".into(),
            acquired_at: okra_aws::state::rfc3339(std::time::SystemTime::now()),
        }),
    );
    w.state
        .start_rollout(&okra_aws::state::Rollout {
            execution: "api--2-0-0--0".into(),
            cell: "api".into(),
            from: None,
            to: "2.0.0".into(),
            status: okra_core::vocab::RolloutStatus::Running,
            weight: 100,
            history: Vec::new(),
            started_at: "2026-12-06T00:00:00.000Z".into(),
            updated_at: "2026-12-06T00:00:00.000Z".into(),
        })
        .await
        .expect("stores");
    w.execs.add("api--2-0-0--0", "FAILED");
    let out = w
        .dispatch(event("dispatcher-schedule"))
        .await
        .expect("dispatches");
    assert_eq!(by_cell(&out, "api").outcome, DispatchOutcome::NothingToDo);
    assert_eq!(w.state.lock_of("api"), None, "released");
    let r = w
        .state
        .get_rollout("api", "api--2-0-0--0")
        .await
        .expect("reads")
        .expect("a record");
    assert_eq!(r.status, okra_core::vocab::RolloutStatus::Failed);
    assert!(w.events.kinds().contains(&"Rollout Failed".to_string()));
}
