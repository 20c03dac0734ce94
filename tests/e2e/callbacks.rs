//! Waits for a person, and executions that end outside the state machine's own ends, run the way
//! AWS runs them: the shipped state machine in the local Step Functions service
//! (tools/sfn-local, see common/service.rs). Signals go through the real `api` binary, a
//! reconcile through the real `dispatcher` binary.
//!
//! AWS sources: Step Functions developer guide, "Wait for a Callback with Task Token" (the task
//! waits until SendTaskSuccess, no polling) and "Automating Step Functions event delivery with
//! EventBridge" (the status change event); API reference, StartExecution (a name is unique for
//! 90 days, closed executions included) and StopExecution.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::cell_name;
use crate::common::service::{
    api, execution_arn, finished, history, paused_rollout, paused_rollout_with, setup,
};
use anyhow::{Context as _, Result};
use okra_aws::state::StatePort;
use okra_testkit::Invocation;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_until_resumed_is_a_callback_the_api_answers() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbres").await?;
    let name = cell_name(&w);

    // A wait adds no history event while it lasts: a week-long pause costs what a second does.
    // (The old 10 s poll added ~11 events per poll: 25,000 after ~6 h.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = history(&sfn, &exec).await?.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = history(&sfn, &exec).await?;
    assert_eq!(after.len(), before, "waiting wrote history events");
    assert!(before < 300, "{before} events up to the pause");
    assert!(
        after
            .iter()
            .any(|(t, s)| t == "TaskStateEntered" && s.as_deref() == Some("Wait for a person")),
        "the pause is the callback task"
    );

    common::service::resume_to_the_end(&aws, &sfn, &name, &exec).await?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_answers_the_callback_and_rolls_back() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbabrt").await?;
    let name = cell_name(&w);
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/abort"),
    )?;
    assert_eq!(status, 202, "{body}");
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("RolledBack"))
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    assert_eq!(aws.blocked(&name).await?, vec!["1.1.0".to_string()]);
    Ok(())
}

/// StopExecution (a person in the console) at 30 % is an abort (issue 25, item 4): no Finish*
/// state runs, so the status change event's finalizer records the rollout as failed, holds the
/// version and starts a rollback execution that sends the traffic back to 1.0.0, verified; a
/// signal to the dead execution is refused; the held version starts again only on `retry`.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_execution_is_an_abort_traffic_back_and_the_version_held() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbstop").await?;
    let name = cell_name(&w);
    sfn.stop_execution()
        .execution_arn(execution_arn(&exec))
        .send()
        .await?;
    assert_eq!(finished(&sfn, &exec).await?.0, "ABORTED");

    // The rollback execution the finalizer starts (its name: the cell's next generation).
    let deadline = Instant::now() + Duration::from_secs(60);
    let rollback = loop {
        let out = sfn
            .list_executions()
            .state_machine_arn(common::STATE_MACHINE_ARN)
            .send()
            .await?;
        if let Some(e) = out
            .executions()
            .iter()
            .find(|e| e.name().starts_with(&name) && e.name().contains("stopped"))
        {
            break e.name().to_string();
        }
        anyhow::ensure!(Instant::now() < deadline, "no rollback execution started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished(&sfn, &rollback).await?.0, "SUCCEEDED");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)]),
        "traffic back on the stable version"
    );
    assert_eq!(aws.blocked(&name).await?, vec!["1.1.0".to_string()]);
    let record = aws
        .rollout(&name, &exec)
        .await?
        .context("the rollout's record")?;
    assert_eq!(record.status, "failed", "{record:?}");
    assert!(
        record
            .history
            .last()
            .is_some_and(|h| h.detail.to_string().contains("a stop is an abort")),
        "{:?}",
        record.history.last()
    );
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(
        status, 409,
        "a signal to a dead execution is refused: {body}"
    );

    // The next reconcile leaves the held version alone; a person's retry starts it again.
    let r = reconciled(&aws, &name)?;
    assert_eq!(r["outcome"], "nothingToDo", "{r}");
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/retry"),
    )?;
    assert_eq!(status, 202, "{body}");
    let next = body["execution"]
        .as_str()
        .context("an execution")?
        .to_string();
    common::service::waiting_for_a_person(&aws, &sfn, &name, &next, None).await?;
    common::service::resume_to_the_end(&aws, &sfn, &name, &next).await?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    Ok(())
}

/// A person edits the listener by hand during the pause; the resume then finds weights no step
/// left: the rollout stops, rolls nothing back over the edit (DriftDetected), and frees the cell.
#[tokio::test(flavor = "multi_thread")]
async fn a_listener_edited_by_hand_during_a_pause_stops_the_rollout_and_keeps_the_edit()
-> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbdrift").await?;
    let name = cell_name(&w);
    let mut by_version = BTreeMap::new();
    for (_, arn) in aws.target_groups_named(&name).await? {
        let v = aws
            .tags(&arn)
            .await?
            .remove("okra.io/version")
            .unwrap_or_default();
        by_version.entry(v).or_insert(arn);
    }
    aws.forward_by_hand(
        &w,
        &[(&by_version["1.0.0"], 90), (&by_version["1.1.0"], 10)],
    )
    .await?;
    let edited = aws.weights(&w).await?;
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(status, 202, "{body}");
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("RollbackFailed"))
    );
    assert_eq!(
        aws.weights(&w).await?,
        edited,
        "the hand edit is left as it is"
    );
    assert_eq!(aws.state().get_lock(&name).await?, None);
    Ok(())
}

/// Re-tags EKS cluster `cluster` with `version` (TagResource on its ARN), as a person would.
async fn retag(aws: &common::Aws, cluster: &str, version: &str) -> Result<()> {
    let arn = aws
        .eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await?
        .cluster()
        .and_then(|c| c.arn())
        .context("an ARN")?
        .to_string();
    aws.eks
        .tag_resource()
        .resource_arn(&arn)
        .tags("okra.io/version", version)
        .send()
        .await?;
    Ok(())
}

/// Runs the real dispatcher binary for one cell; the cell's result.
fn reconciled(aws: &common::Aws, cell: &str) -> Result<serde_json::Value> {
    let Invocation::Ok(out) = aws
        .local
        .invoke("dispatcher", &json!({"cells": [cell], "trigger": "api"}))?
    else {
        anyhow::bail!("the dispatcher failed");
    };
    Ok(out["results"][0].clone())
}

/// Runs the real dispatcher binary for one cell; its outcome and the execution it started, if
/// any.
fn dispatch(aws: &common::Aws, cell: &str) -> Result<(String, Option<String>)> {
    let r = reconciled(aws, cell)?;
    Ok((
        r["outcome"].as_str().unwrap_or_default().to_string(),
        r["execution"].as_str().map(str::to_string),
    ))
}

/// Execution names are unique per state machine for 90 days, closed executions included
/// (Step Functions API reference, StartExecution). A cell goes back to a version it ran
/// before — pinned back, then unpinned — and every execution starts under a name of its own
/// (the cell's generation moves on at every end), where a name made of the versions alone was
/// refused the second time.
#[tokio::test(flavor = "multi_thread")]
async fn pin_back_then_unpin_starts_every_execution() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let w = aws.world("cbpin").await?;
    let name = cell_name(&w);
    let mut spec = common::cell(&w, json!([]));
    let store = |spec: &serde_json::Value, rev: Option<u64>| {
        let spec: okra_core::spec::CellSpec = serde_json::from_value(spec.clone()).unwrap();
        let state = aws.state();
        async move { state.put_cell(&spec, rev).await }
    };
    let mut rev = store(&spec, None).await?;
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    let mut names = Vec::new();
    let step = |what: &'static str| {
        let (aws, sfn) = (&aws, &sfn);
        let name = name.clone();
        async move {
            let (outcome, exec) = dispatch(aws, &name)?;
            assert_eq!(outcome, "started", "{what}: {exec:?}");
            let exec = exec.context("an execution")?;
            assert_eq!(finished(sfn, &exec).await?.0, "SUCCEEDED", "{what}: {exec}");
            anyhow::Ok(exec)
        }
    };
    // 1.1.0 is newest with two clusters: it serves at once (initialize).
    names.push(step("initialize").await?);
    // Pinned back to 1.0.0, then unpinned: 1.1.0 is rolled out again.
    spec["version"] = json!("1.0.0");
    rev = store(&spec, Some(rev)).await?;
    names.push(step("pin back").await?);
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    spec.as_object_mut().unwrap().remove("version");
    store(&spec, Some(rev)).await?;
    names.push(step("unpin").await?);
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    Ok(())
}

/// After a promotion, a serving cluster re-tagged to a newer version leaves the serving action
/// (the dispatcher's next reconcile: `scaleIn`), so the newer version never takes traffic it was
/// not rolled out to; once that version has its clusters it rolls out as a canary and is
/// promoted, the re-tagged cluster's group re-tagged with it (issue 25, item 1).
#[tokio::test(flavor = "multi_thread")]
async fn a_serving_cluster_re_tagged_after_a_promotion_leaves_then_rolls_out_with_its_version()
-> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let w = aws.world("cbin").await?;
    let name = cell_name(&w);
    let spec: okra_core::spec::CellSpec =
        serde_json::from_value(common::cell(&w, json!([{"setWeight": 50}])))?;
    aws.state().put_cell(&spec, None).await?;
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    let run = |what: &'static str| {
        let (aws, sfn, name) = (&aws, &sfn, name.clone());
        async move {
            let r = reconciled(aws, &name)?;
            assert_eq!(r["outcome"], "started", "{what}: {r}");
            let exec = r["execution"].as_str().context("an execution")?.to_string();
            assert_eq!(finished(sfn, &exec).await?.0, "SUCCEEDED", "{what}: {exec}");
            anyhow::Ok(r["decision"].as_str().unwrap_or_default().to_string())
        }
    };
    assert_eq!(run("initialize").await?, "initialize");
    let group = |c: &str| okra_core::naming::target_group_name(&name, &format!("{}-{c}", w.prefix));
    retag(&aws, &format!("{}-a2", w.prefix), "1.1.0").await?;
    assert_eq!(run("scale in").await?, "scaleIn");
    let weights = aws.weights(&w).await?;
    assert_eq!(
        weights.iter().map(|(g, _)| g.clone()).collect::<Vec<_>>(),
        vec![group("a1")],
        "a2's group left: {weights:?}"
    );
    let r = reconciled(&aws, &name)?;
    assert_eq!(
        r["outcome"], "nothingToDo",
        "1.1.0 has one cluster of 2: {r}"
    );
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    assert_eq!(run("roll out").await?, "startRollout");
    let weights = aws.weights(&w).await?;
    assert_eq!(
        weights.iter().map(|(g, _)| g.clone()).collect::<Vec<_>>(),
        vec![group("a2"), group("b2")],
        "{weights:?}"
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)]),
        "a2's group is 1.1.0's now"
    );
    Ok(())
}

/// A cell scaled out twice to the same size: the two executions make the same decision
/// (`1.0.0-x3`), and the second starts under a name of its own (the generation moved on when the
/// first ended), where a name made of the decision alone was refused for 90 days.
#[tokio::test(flavor = "multi_thread")]
async fn scaling_out_twice_to_the_same_size_starts_both() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let w = aws.world("cbx2").await?;
    let name = cell_name(&w);
    let spec: okra_core::spec::CellSpec = serde_json::from_value(common::cell(&w, json!([])))?;
    aws.state().put_cell(&spec, None).await?;
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    let run = |what: &'static str| {
        let (aws, sfn, name) = (&aws, &sfn, name.clone());
        async move {
            let (outcome, exec) = dispatch(aws, &name)?;
            assert_eq!(outcome, "started", "{what}: {exec:?}");
            let exec = exec.context("an execution")?;
            assert_eq!(finished(sfn, &exec).await?.0, "SUCCEEDED", "{what}: {exec}");
            anyhow::Ok(exec)
        }
    };
    run("initialize").await?;
    let a3 = aws.serving_cluster(&w, "a3", "1.0.0").await?;
    let first = run("scale out to 3").await?;
    assert_eq!(aws.weights(&w).await?.len(), 3);

    // a3 is deleted and an operator takes its group out of the listener; a4 comes.
    aws.eks.delete_cluster().name(&a3).send().await?;
    let gone = okra_core::naming::target_group_name(&name, &a3);
    let keep: Vec<String> = aws
        .target_groups_named(&name)
        .await?
        .into_iter()
        .filter(|(n, _)| *n != gone)
        .map(|(_, arn)| arn)
        .collect();
    assert_eq!(keep.len(), 2);
    let forward = aws_sdk_elasticloadbalancingv2::types::ForwardActionConfig::builder()
        .set_target_groups(Some(
            keep.iter()
                .map(|arn| {
                    aws_sdk_elasticloadbalancingv2::types::TargetGroupTuple::builder()
                        .target_group_arn(arn)
                        .weight(1)
                        .build()
                })
                .collect(),
        ))
        .build();
    aws.elb
        .modify_listener()
        .listener_arn(&w.listener_arn)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .forward_config(forward)
                .build(),
        )
        .send()
        .await?;
    aws.serving_cluster(&w, "a4", "1.0.0").await?;
    let second = run("scale out to 3 again").await?;
    assert_ne!(first, second);
    assert!(
        first.contains("x3") && second.contains("x3"),
        "{first} {second}"
    );
    assert_eq!(aws.weights(&w).await?.len(), 3);
    Ok(())
}

/// One rollout per cell: a second execution while the first really runs (here, waiting for a
/// person) fails at once with CellBusy, touches nothing, and leaves the lock to the first;
/// its own FAILED status event changes nothing either (the finalizer sees another holder).
#[tokio::test(flavor = "multi_thread")]
async fn a_cell_locked_by_a_running_execution_is_not_touched() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, holder) = paused_rollout(&aws, &sfn, "cbbusy").await?;
    let name = cell_name(&w);
    let before = aws.weights(&w).await?;
    let spec = aws.state().get_cell(&name).await?.context("the cell")?.spec;
    let second = format!("{name}-second");
    common::service::start(&sfn, &second, &common::input(serde_json::to_value(&spec)?)).await?;
    let (status, error) = finished(&sfn, &second).await?;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("CellBusy"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(aws.weights(&w).await?, before);
    assert_eq!(
        aws.state().get_lock(&name).await?.map(|l| l.execution),
        Some(holder.clone())
    );
    let d = sfn
        .describe_execution()
        .execution_arn(execution_arn(&holder))
        .send()
        .await?;
    assert_eq!(d.status().as_str(), "RUNNING", "the holder goes on");
    Ok(())
}

/// A cell whose four clusters each have a real backend, the gate at 100 %, rolled to 30 % and
/// waiting for a person.
async fn served_and_paused(
    aws: &common::Aws,
    sfn: &aws_sdk_sfn::Client,
    prefix: &str,
    steps: serde_json::Value,
) -> Result<(common::World, String, Vec<okra_testkit::Backend>)> {
    let w = aws.world(prefix).await?;
    let name = cell_name(&w);
    let mut spec = common::cell(&w, steps);
    spec["readiness"] = json!({"minHealthyPercent": 100, "timeout": "10m"});
    spec["targetGroup"]["targetType"] = json!("ip");
    aws.state()
        .put_cell(&serde_json::from_value(spec.clone())?, None)
        .await?;
    // Target addresses are the local ELB's keys to their backends: unique per world.
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(100);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut backends = Vec::new();
    for (c, v, i) in [("a1", "1.0.0", 1), ("a2", "1.0.0", 2)] {
        backends.push(
            aws.served_cluster(&w, c, v, &format!("10.{n}.1.{i}"))
                .await?,
        );
    }
    let init = format!("{name}-init");
    common::service::start(sfn, &init, &common::input(spec.clone())).await?;
    assert_eq!(finished(sfn, &init).await?.0, "SUCCEEDED");
    for (c, v, i) in [("b1", "1.1.0", 1), ("b2", "1.1.0", 2)] {
        backends.push(
            aws.served_cluster(&w, c, v, &format!("10.{n}.2.{i}"))
                .await?,
        );
    }
    let exec = format!("{name}-roll");
    common::service::start(sfn, &exec, &common::input(spec)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while aws.state().get_wait(&name, &exec).await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "{exec} never paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((w, exec, backends))
}

/// A canary cluster lost during a pause (its service down, as when the cluster is deleted):
/// the next weight change checks every member first, the canary group fails the gate
/// (CanaryUnhealthy), and the rollout rolls back — no more weight ever goes to that group.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_cluster_lost_during_a_pause_rolls_the_rollout_back() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, exec, backends) = served_and_paused(
        &aws,
        &sfn,
        "cblostc",
        json!([{"setWeight": 30}, {"pause": {}}, {"setWeight": 60}]),
    )
    .await?;
    let name = cell_name(&w);
    backends[3].set(okra_testkit::BackendMode::Down);
    // The local ELB marks it unhealthy after its unhealthy threshold (scaled checks).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(code, 202, "{body}");
    rolled_back(&aws, &sfn, &w, &exec, "CanaryUnhealthy").await
}

/// Execution `exec` of `w`'s cell ended rolled back (`FAILED`, `RolledBack`), 1.0.0 back at
/// 100 %, its record's last entry saying `why`; the record, for more checks.
async fn rolled_back(
    aws: &common::Aws,
    sfn: &aws_sdk_sfn::Client,
    w: &common::World,
    exec: &str,
    why: &str,
) -> Result<()> {
    let (status, error) = finished(sfn, exec).await?;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("RolledBack")),
        "{exec}"
    );
    assert_eq!(
        aws.weights_by_version(w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)]),
        "{exec}: 1.0.0 back at 100 %"
    );
    let record = aws
        .rollout(&cell_name(w), exec)
        .await?
        .context("the record")?;
    assert!(
        record
            .history
            .last()
            .is_some_and(|h| h.detail.to_string().contains(why)),
        "{exec}: {why}: {:?}",
        record.history.last()
    );
    assert!(
        !record.history.iter().any(|h| h.event == "promoted"),
        "{exec}: never promoted"
    );
    Ok(())
}

/// A stable cluster lost during a pause: its group leaves the forward action at the next step,
/// the other stable group takes its share, and the step's history says which and why.
#[tokio::test(flavor = "multi_thread")]
async fn a_stable_cluster_lost_during_a_pause_leaves_and_the_others_share_its_weight() -> Result<()>
{
    let (aws, sfn) = setup(None).await?;
    let (w, exec, backends) = served_and_paused(
        &aws,
        &sfn,
        "cblosts",
        json!([{"setWeight": 30}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]),
    )
    .await?;
    let name = cell_name(&w);
    backends[1].set(okra_testkit::BackendMode::Down);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(code, 202, "{body}");
    // At the second pause: 60 % to 1.1.0, the 40 % of 1.0.0 on its one healthy cluster.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = aws.rollout(&name, &exec).await?.context("the record")?;
        if r.history.iter().filter(|h| h.event == "paused").count() >= 2 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "never reached the second pause");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let weights = aws.weights(&w).await?;
    let group = |c: &str| okra_core::naming::target_group_name(&name, &format!("{}-{c}", w.prefix));
    assert!(weights.contains(&(group("a1"), 40)), "{weights:?}");
    assert!(
        !weights.iter().any(|(tg, _)| *tg == group("a2")),
        "the lost stable group left: {weights:?}"
    );
    let r = aws.rollout(&name, &exec).await?.context("the record")?;
    assert!(
        r.history
            .iter()
            .any(|h| h.detail.to_string().contains("excluded")),
        "{:?}",
        r.history
    );
    let (code, _) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/abort"),
    )?;
    assert_eq!(code, 202);
    finished(&sfn, &exec).await?;
    Ok(())
}

/// Any holder of a wait's task token may answer it, as Step Functions lets them ("Wait for a
/// Callback with Task Token"): the AWS CLI's `send-task-success` with `{"signal": "resume"}`
/// resumes a waiting rollout, and the history says which signal and who gave it. An answer that
/// names no signal is ignored with its reason, and the rollout waits again under a new token.
#[tokio::test(flavor = "multi_thread")]
async fn send_task_success_from_the_aws_cli_answers_the_wait() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbcli").await?;
    let name = cell_name(&w);
    let endpoint = aws
        .local
        .sfn_endpoint()
        .context("an sfn endpoint")?
        .to_string();
    let answer = |token: String, output: serde_json::Value| {
        let cli = aws.local.aws_cli().map(std::path::Path::to_owned);
        let (endpoint, env) = (endpoint.clone(), aws.local.env());
        async move {
            let home = tempfile::tempdir()?;
            let out = std::process::Command::new(cli?)
                .args(["stepfunctions", "send-task-success", "--task-token", &token])
                .args([
                    "--task-output",
                    &output.to_string(),
                    "--endpoint-url",
                    &endpoint,
                ])
                .env_clear()
                .env("HOME", home.path())
                .env("PATH", "/usr/bin:/bin")
                .envs(env)
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            anyhow::Ok(())
        }
    };
    let first = aws
        .state()
        .get_wait(&name, &exec)
        .await?
        .context("a wait")?
        .token;
    answer(first.clone(), json!({"signal": "go"})).await?;
    // Ignored: the rollout waits again, under a new token.
    let second =
        common::service::waiting_for_a_person(&aws, &sfn, &name, &exec, Some(&first)).await?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 70), ("1.1.0".to_string(), 30)]),
        "an ignored answer moves nothing"
    );
    answer(second, json!({"signal": "resume", "by": "cli:alice"})).await?;
    assert_eq!(finished(&sfn, &exec).await?.0, "SUCCEEDED");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    let record = aws.rollout(&name, &exec).await?.context("its record")?;
    let signalled: Vec<_> = record
        .history
        .iter()
        .filter(|h| h.event == okra_core::vocab::HistoryEvent::Signalled)
        .map(|h| h.detail.clone())
        .collect();
    assert_eq!(signalled.len(), 2, "{signalled:?}");
    assert!(signalled[0]["ignored"].as_str().unwrap().contains("\"go\""));
    assert_eq!(signalled[1]["signal"], "resume");
    assert_eq!(signalled[1]["by"], "cli:alice");
    Ok(())
}

/// A stack whose timed waits last as written (`--fast-pauses=off`): a pause of an hour is an
/// hour, so that a signal is seen to end it.
static REAL_PAUSES: std::sync::OnceLock<std::result::Result<okra_testkit::LocalAws, String>> =
    std::sync::OnceLock::new();

async fn real_pauses() -> Result<(common::Aws, aws_sdk_sfn::Client)> {
    let local = REAL_PAUSES
        .get_or_init(|| {
            common::service::builder(None)
                .sfn_arg("--fast-pauses=off")
                .start()
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the local AWS did not start: {e}"))?;
    common::service::setup_on(local).await
}

/// The wait the rollout is in (it waits already).
async fn wait_kind(aws: &common::Aws, cell: &str, exec: &str) -> Result<okra_aws::state::WaitKind> {
    Ok(aws
        .state()
        .get_wait(cell, exec)
        .await?
        .context("a wait")?
        .kind)
}

/// `abort` during `pause: {duration: 1h}` rolls back within seconds: the timed pause is a
/// callback whose time-out is the pause (issue 25, item 3). Before, the signal waited for the
/// hour's end.
#[tokio::test(flavor = "multi_thread")]
async fn abort_during_an_hour_long_pause_rolls_back_within_seconds() -> Result<()> {
    let (aws, sfn) = real_pauses().await?;
    let (w, exec) = paused_rollout_with(&aws, &sfn, "cbhour", |spec| {
        spec["canary"]["steps"] =
            json!([{"setWeight": 30}, {"pause": {"duration": "1h"}}, {"setWeight": 100}]);
    })
    .await?;
    let name = cell_name(&w);
    assert_eq!(
        wait_kind(&aws, &name, &exec).await?,
        okra_aws::state::WaitKind::Pause
    );
    let sent = Instant::now();
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/abort"),
    )?;
    assert_eq!(status, 202, "{body}");
    let (status, error) = finished(&sfn, &exec).await?;
    let took = sent.elapsed();
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("RolledBack"))
    );
    assert!(took < Duration::from_secs(20), "rolled back after {took:?}");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    eprintln!("abort during a 1 h pause: rolled back and finished {took:?} after the signal");
    Ok(())
}

/// An analysis between two samples an hour apart: `resume` cannot act there (409, nothing
/// stored: it would otherwise end the next pause nobody meant to end); `promote` skips the rest
/// of the analysis at once and the rollout goes on.
#[tokio::test(flavor = "multi_thread")]
async fn resume_in_an_analysis_is_409_and_promote_skips_it_at_once() -> Result<()> {
    let (aws, sfn) = real_pauses().await?;
    let (w, exec) = paused_rollout_with(&aws, &sfn, "cbanal", |spec| {
        spec["canary"]["steps"] = json!([{"setWeight": 30},
            {"analysis": {"templates": [{"templateName": "errors"}]}}, {"setWeight": 100}]);
        spec["analysisTemplates"][0]["metrics"][0]["interval"] = json!("1h");
        spec["analysisTemplates"][0]["metrics"][0]["count"] = json!(3);
    })
    .await?;
    let name = cell_name(&w);
    assert_eq!(
        wait_kind(&aws, &name, &exec).await?,
        okra_aws::state::WaitKind::Analysis
    );
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("it is analysing"), "{body}");
    assert_eq!(
        aws.state().take_signal(&name, &exec).await?,
        None,
        "nothing stored"
    );
    let sent = Instant::now();
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/promote"),
    )?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(finished(&sfn, &exec).await?.0, "SUCCEEDED");
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    let record = aws.rollout(&name, &exec).await?.context("a record")?;
    assert!(
        record
            .history
            .iter()
            .any(|h| h.event == "signalled" && h.detail["signal"] == "promote"),
        "{:?}",
        record.history
    );
    Ok(())
}

/// A readiness time-out (the new version's targets never get healthy) is an automatic attempt:
/// the dispatcher backs off before the next one, and after `maxAttempts` (2 here) the version is
/// held as failing, so the time-out loop stops (issue 25, item 5). The backoff's 5 minutes pass
/// by moving the failure's time back in the table.
#[tokio::test(flavor = "multi_thread")]
async fn a_readiness_time_out_loop_backs_off_and_stops_after_max_attempts() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let w = aws.world("cbtry").await?;
    let name = cell_name(&w);
    let mut spec = common::cell(&w, json!([{"setWeight": 50}, {"setWeight": 100}]));
    spec["readiness"] = json!({"minHealthyPercent": 100, "timeout": "20s"});
    spec["maxAttempts"] = json!(2);
    aws.state()
        .put_cell(&serde_json::from_value(spec.clone())?, None)
        .await?;
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    let dispatch = || reconciled(&aws, &name);
    let init = dispatch()?;
    assert_eq!(init["outcome"], "started", "{init}");
    let exec = init["execution"]
        .as_str()
        .context("an execution")?
        .to_string();
    assert_eq!(finished(&sfn, &exec).await?.0, "SUCCEEDED");
    // 1.1.0's clusters: no target ever registers, so the gate never holds.
    aws.cluster(&w, "b1", "1.1.0").await?;
    aws.cluster(&w, "b2", "1.1.0").await?;

    let mut outcomes = Vec::new();
    for attempt in 1..=2 {
        let r = dispatch()?;
        assert_eq!(r["outcome"], "started", "attempt {attempt}: {r}");
        let exec = r["execution"].as_str().context("an execution")?.to_string();
        let (status, error) = finished(&sfn, &exec).await?;
        outcomes.push(format!("{status} {}", error.unwrap_or_default()));
        let f = aws
            .state()
            .failures(&name, "1.1.0")
            .await?
            .context("failures")?;
        assert_eq!(f.count, attempt, "{f:?}");
        if attempt == 1 {
            let r = dispatch()?;
            assert_eq!(r["outcome"], "skipped", "{r}");
            let reason = r["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("the next attempt in 5m"), "{reason}");
            // Five minutes pass.
            let past =
                okra_aws::state::rfc3339(std::time::SystemTime::now() - Duration::from_secs(301));
            aws.ddb
                .update_item()
                .table_name(common::TABLE)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("CELL#{name}")),
                )
                .key(
                    "sk",
                    aws_sdk_dynamodb::types::AttributeValue::S(okra_aws::state::keys::failures(
                        "1.1.0",
                    )),
                )
                .update_expression("SET lastAt = :at")
                .expression_attribute_values(
                    ":at",
                    aws_sdk_dynamodb::types::AttributeValue::S(past),
                )
                .send()
                .await?;
        }
    }
    assert_eq!(
        outcomes,
        ["FAILED ReadinessTimedOut", "FAILED ReadinessTimedOut"]
    );
    let blocks = aws.state().blocklist(&name).await?;
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert!(
        blocks[0]
            .reason
            .starts_with("failing: 2 automatic attempt(s)"),
        "{blocks:?}"
    );
    // Held: the loop has stopped.
    let r = dispatch()?;
    assert_eq!(r["outcome"], "nothingToDo", "{r}");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    Ok(())
}

/// Members are re-read before every weight change, whatever the gate (issue 25, item 1): with
/// the readiness gate at 0 %, a canary cluster re-tagged from 1.1.0 to 1.2.0 during the pause
/// is not promoted as 1.1.0 (the next step fails, naming it, and the rollout rolls back), and
/// a canary cluster deleted during the pause gets no more weight.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_cluster_re_tagged_or_deleted_mid_rollout_gets_no_more_weight() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    for (prefix, change) in [("cbretag", "retag"), ("cbdelete", "delete")] {
        let (w, exec) = paused_rollout_with(&aws, &sfn, prefix, |spec| {
            spec["readiness"]["minHealthyPercent"] = json!(0);
        })
        .await?;
        let name = cell_name(&w);
        let b1 = format!("{}-b1", w.prefix);
        let why = match change {
            "retag" => {
                retag(&aws, &b1, "1.2.0").await?;
                "now carries version 1.2.0, not 1.1.0"
            }
            _ => {
                aws.eks.delete_cluster().name(&b1).send().await?;
                "is gone"
            }
        };
        let (code, body) = api(
            &aws,
            "POST",
            &format!("/cells/{name}/rollouts/{exec}/resume"),
        )?;
        assert_eq!(code, 202, "{body}");
        rolled_back(&aws, &sfn, &w, &exec, &format!("cluster {b1} {why}")).await?;
    }
    Ok(())
}

/// A stack whose status change events reach nobody: the finalizer's event is lost, as
/// EventBridge may lose it (best-effort delivery).
static NO_FINALIZER: std::sync::OnceLock<std::result::Result<okra_testkit::LocalAws, String>> =
    std::sync::OnceLock::new();

/// A StopExecution whose status change event never comes: the dispatcher's next tick sweeps the
/// stale lock — the rollout recorded as the event would (a stop holds its version) — and its
/// reconcile then rolls the held version's traffic back (issue 25, items 4 and 6).
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_status_change_event_is_made_up_for_by_the_next_tick() -> Result<()> {
    let local = NO_FINALIZER
        .get_or_init(|| {
            common::builder()
                .step_functions(Some(50))
                .start()
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the local AWS did not start: {e}"))?;
    let (aws, sfn) = common::service::setup_on(local).await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cblost").await?;
    let name = cell_name(&w);
    sfn.stop_execution()
        .execution_arn(execution_arn(&exec))
        .send()
        .await?;
    assert_eq!(finished(&sfn, &exec).await?.0, "ABORTED");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        aws.state().get_lock(&name).await?.is_some(),
        "no finalizer here: the lock stays"
    );

    let schedule: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        common::policy::root().join("events/dispatcher-schedule.json"),
    )?)?;
    let Invocation::Ok(out) = aws.local.invoke("dispatcher", &schedule)? else {
        anyhow::bail!("the dispatcher failed");
    };
    let result = out["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["cell"] == name.as_str()))
        .context("the cell's result")?
        .clone();
    assert_eq!(result["decision"], "rollback", "{out}");
    let record = aws.rollout(&name, &exec).await?.context("the record")?;
    assert_eq!(record.status, "failed", "{record:?}");
    assert_eq!(aws.blocked(&name).await?, vec!["1.1.0".to_string()]);
    let rollback = result["execution"].as_str().context("an execution")?;
    assert_eq!(finished(&sfn, rollback).await?.0, "SUCCEEDED");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    Ok(())
}

/// A listener answering its own page (a fixed response) keeps answering it while the first
/// version's groups wait for health (issue 25, item 10): they stand by in a rule that never
/// matches, instead of a forward at weight 0 that answers 503; the first switch replaces the
/// page and removes the rule. The listener is sampled every 20 ms while the execution runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_response_listener_keeps_its_page_until_the_first_switch() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let w = aws.world("cbpage").await?;
    let name = cell_name(&w);
    let spec = common::cell(&w, json!([{"setWeight": 100}]));
    aws.state()
        .put_cell(&serde_json::from_value(spec.clone())?, None)
        .await?;
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    let init = format!("{name}-init");
    common::service::start(&sfn, &init, &common::input(spec)).await?;
    let (mut shapes, mut standby_seen) = (BTreeSet::new(), false);
    loop {
        let l = aws
            .elb
            .describe_listeners()
            .listener_arns(&w.listener_arn)
            .send()
            .await?;
        let action = &l.listeners()[0].default_actions()[0];
        let shape = match action.forward_config() {
            Some(f) => {
                let total: i32 = f
                    .target_groups()
                    .iter()
                    .map(|t| t.weight().unwrap_or(1))
                    .sum();
                format!("forward, total weight {total}")
            }
            None => action
                .r#type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        };
        shapes.insert(shape);
        let rules = aws
            .elb
            .describe_rules()
            .listener_arn(&w.listener_arn)
            .send()
            .await?;
        standby_seen |= rules.rules().iter().any(|r| {
            r.conditions().iter().any(|c| {
                c.source_ip_config()
                    .is_some_and(|s| s.values() == [okra_core::standby::SOURCE_IP])
            })
        });
        let d = sfn
            .describe_execution()
            .execution_arn(execution_arn(&init))
            .send()
            .await?;
        if d.status().as_str() != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(finished(&sfn, &init).await?.0, "SUCCEEDED");
    assert!(standby_seen, "the groups stood by in a rule of their own");
    assert!(
        shapes
            .iter()
            .all(|s| s == "fixed-response" || s.starts_with("forward, total weight 100")),
        "never a forward at weight 0 (503s): {shapes:?}"
    );
    assert!(shapes.contains("fixed-response"), "{shapes:?}");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    let rules = aws
        .elb
        .describe_rules()
        .listener_arn(&w.listener_arn)
        .send()
        .await?;
    assert!(
        rules
            .rules()
            .iter()
            .all(|r| r.conditions().is_empty() || r.is_default() == Some(true)),
        "the standby rule is gone: {:?}",
        rules.rules()
    );
    Ok(())
}
