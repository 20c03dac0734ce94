//! The shipped state machine, run by aws-local-stepfunctions, its Task states invoking the real
//! function binaries under `cargo lambda watch`, against moto. Assertions read AWS state back
//! from moto.

use crate::common;

use std::collections::BTreeMap;

use crate::common::{aws, cell, cell_name, input, run_rollout, weights_of_steps};
use anyhow::Result;
use okra_aws::state::StatePort;
use serde_json::{Value, json};

/// Seeds two clusters of 1.0.0 and runs the state machine once: initialize.
async fn serving_v1(aws: &common::Aws, w: &common::World, spec: &serde_json::Value) -> Result<()> {
    aws.serving_cluster(w, "a1", "1.0.0").await?;
    aws.serving_cluster(w, "a2", "1.0.0").await?;
    let e = run_rollout(aws, &format!("{}-init", cell_name(w)), input(spec.clone()))?;
    e.ensure_succeeded()?;
    assert_eq!(e.output["discovery"]["decision"]["kind"], "initialize");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn initialize_then_roll_out_two_by_two_with_analysis_then_nothing_to_do() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("roll").await?;
    let name = cell_name(&w);
    let steps = json!([
        {"setWeight": 10},
        {"analysis": {"templates": [{"templateName": "errors"}]}},
        {"setWeight": 50},
        {"pause": {"duration": "30s"}},
        {"setWeight": 100}
    ]);
    let spec = cell(&w, steps);

    // 1. Two clusters of 1.0.0, a listener that forwards nowhere: initialize, one write.
    serving_v1(&aws, &w, &spec).await?;
    let v1 = aws.weights(&w).await?;
    assert_eq!(v1.len(), 2, "{v1:?}");
    assert!(v1.iter().all(|(_, wt)| *wt == 50), "{v1:?}");
    let groups = aws.target_groups_named(&name).await?;
    assert_eq!(groups.len(), 2);
    for (_, arn) in &groups {
        let tags = aws.tags(arn).await?;
        assert_eq!(tags["okra.io/cell"], name);
        assert_eq!(tags["okra.io/version"], "1.0.0");
    }

    // 2. Two clusters of 1.1.0 and a healthy metric: 10 -> analysis -> 50 -> pause -> 100.
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 0.0)
        .await?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    let exec = format!("{name}-1-1-0");
    let e = run_rollout(&aws, &exec, input(spec.clone()))?;
    e.ensure_succeeded()?;
    assert_eq!(e.output["discovery"]["decision"]["kind"], "startRollout");
    assert_eq!(weights_of_steps(&e), vec![10, 50, 100]);
    assert_eq!(
        e.output["analysis"]["phase"], "successful",
        "{}",
        e.output["analysis"]
    );
    let states = e.states_entered();
    assert!(states.iter().any(|s| s == "Pause"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("Promoted"));
    let v2 = aws.weights(&w).await?;
    assert_eq!(v2.len(), 2, "only the new version's groups remain: {v2:?}");
    assert!(v2.iter().all(|(_, wt)| *wt == 50), "{v2:?}");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    assert_eq!(aws.target_groups_named(&name).await?.len(), 4);
    // The history tells the story; the lock is released.
    let r = aws.rollout(&name, &exec).await?.expect("a rollout record");
    assert_eq!(r.status, "promoted");
    assert_eq!(r.to, "1.1.0");
    assert_eq!(r.weight, 100);
    assert!(r.history.len() >= 5, "{:?}", r.history);
    assert_eq!(aws.state().get_lock(&name).await?, None);

    // 3. Again: nothing to do, nothing written.
    let e = run_rollout(&aws, &format!("{name}-again"), input(spec))?;
    e.ensure_succeeded()?;
    assert_eq!(e.output["discovery"]["decision"]["kind"], "nothingToDo");
    assert_eq!(aws.weights(&w).await?, v2);
    assert_eq!(aws.target_groups_named(&name).await?.len(), 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_analysis_rolls_back_blocks_the_version_and_is_not_retried() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("fail").await?;
    let name = cell_name(&w);
    let steps = json!([{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "errors"}]}}, {"setWeight": 100}]);
    let spec = cell(&w, steps);
    serving_v1(&aws, &w, &spec).await?;
    let before = aws.weights(&w).await?;

    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 12.0)
        .await?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    let exec = format!("{name}-bad");
    let e = run_rollout(&aws, &exec, input(spec.clone()))?;
    assert_eq!(e.status, "FAILED", "{e:?}");
    assert_eq!(e.error.as_deref(), Some("RolledBack"));
    assert!(
        e.cause
            .as_deref()
            .unwrap_or_default()
            .contains("error-count"),
        "{:?}",
        e.cause
    );
    assert_eq!(weights_of_steps(&e), vec![20]);
    assert_eq!(
        aws.weights(&w).await?,
        before,
        "traffic is back on 1.0.0 as it was"
    );
    assert_eq!(aws.blocked(&name).await?, vec!["1.1.0".to_string()]);
    let r = aws.rollout(&name, &exec).await?.expect("a rollout record");
    assert_eq!(r.status, "rolledBack");
    assert_eq!(aws.state().get_lock(&name).await?, None);
    // Its events (each checked against schema/events/ as it was put): the verdict with the
    // metric's value and conditions, then the rollback naming the metric, the weight and the
    // version blocked.
    let events: Vec<Value> = aws
        .local
        .okra_events()?
        .into_iter()
        .filter(|e| e["detail"]["execution"] == exec.as_str())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["detail-type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "Rollout Started",
            "Rollout Step Done",
            "Rollout Analysis Verdict",
            "Rollout Rolled Back"
        ],
        "{events:#?}"
    );
    let verdict = &events[2]["detail"];
    assert_eq!(verdict["detail"]["phase"], "failed", "{verdict}");
    assert_eq!(verdict["weight"], 20);
    assert_eq!(
        (verdict["from"].as_str(), verdict["to"].as_str()),
        (Some("1.0.0"), Some("1.1.0"))
    );
    let metric = &verdict["detail"]["metrics"][0];
    assert_eq!(metric["value"], 12.0, "{verdict}");
    assert!(metric["failureCondition"].is_string(), "{verdict}");
    let rolled_back = &events[3]["detail"];
    assert!(
        rolled_back["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("error-count")
    );
    assert_eq!(rolled_back["blocked"], "1.1.0");
    assert_eq!(rolled_back["weight"], 0);
    assert_eq!(events[3]["region"], aws.local.region());

    // The next trigger does not retry it.
    let e = run_rollout(&aws, &format!("{name}-next"), input(spec))?;
    e.ensure_succeeded()?;
    assert_eq!(e.output["discovery"]["decision"]["kind"], "nothingToDo");
    assert_eq!(aws.weights(&w).await?, before);
    Ok(())
}

// Pauses until resumed, abort and promote-full are callbacks a person answers: they run in the
// local Step Functions service, where executions run on their own (tests/e2e/callbacks.rs).

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_lower_version_swaps_at_once() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("pin").await?;
    let mut spec = cell(&w, json!([{"setWeight": 50}]));
    serving_v1(&aws, &w, &spec).await?;
    let v1 = aws.weights(&w).await?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &cell_name(&w))], 0.0)
        .await?;
    run_rollout(&aws, &format!("{}-up", cell_name(&w)), input(spec.clone()))?.ensure_succeeded()?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );

    spec["version"] = json!("1.0.0");
    let e = run_rollout(&aws, &format!("{}-pin", cell_name(&w)), input(spec))?;
    e.ensure_succeeded()?;
    assert_eq!(e.output["discovery"]["decision"]["kind"], "rollback");
    assert!(weights_of_steps(&e).is_empty(), "no canary steps");
    let shifts = e
        .states_entered()
        .iter()
        .filter(|s| *s == "Roll back at once")
        .count();
    assert_eq!(shifts, 1, "one write");
    assert_eq!(aws.weights(&w).await?, v1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extra_cluster_of_the_serving_version_joins_at_once() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("scale").await?;
    let spec = cell(&w, json!([{"setWeight": 50}]));
    serving_v1(&aws, &w, &spec).await?;
    aws.serving_cluster(&w, "a3", "1.0.0").await?;
    let e = run_rollout(&aws, &format!("{}-x3", cell_name(&w)), input(spec))?;
    e.ensure_succeeded()?;
    assert_eq!(e.output["discovery"]["decision"]["kind"], "scaleOut");
    let v = aws.weights(&w).await?;
    assert_eq!(v.len(), 3, "{v:?}");
    assert_eq!(v.iter().map(|(_, w)| *w).sum::<i32>(), 100);
    assert!(v.iter().all(|(_, w)| *w == 33 || *w == 34), "{v:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_timeout_moves_no_traffic_and_releases_the_lock() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("rdy").await?;
    aws.cluster(&w, "a1", "1.0.0").await?;
    aws.cluster(&w, "a2", "1.0.0").await?;
    let mut spec = cell(&w, json!([]));
    // No targets will ever register: a gate of 100 % healthy cannot hold.
    spec["readiness"] = json!({"minHealthyPercent": 100, "timeout": "20s"});
    let e = run_rollout(&aws, &format!("{}-rdy", cell_name(&w)), input(spec))?;
    assert_eq!(e.status, "FAILED", "{e:?}");
    assert_eq!(e.error.as_deref(), Some("ReadinessTimedOut"));
    // 20 s at one poll per 10 s: two more checks after the first, then the timeout.
    let checks = e
        .states_entered()
        .iter()
        .filter(|s| *s == "Check initial readiness")
        .count();
    assert_eq!(checks, 2);
    assert!(
        aws.weights(&w).await?.is_empty(),
        "the listener still forwards nowhere"
    );
    assert_eq!(aws.state().get_lock(&cell_name(&w)).await?, None);
    Ok(())
}

// A cell locked by a running execution: tests/e2e/callbacks.rs, where the holder really runs
// (moto's Step Functions never runs an execution, so a test against it proved nothing AWS does).

/// Step Functions fails an execution whose state input or output passes 262,144 bytes
/// (`States.DataLimitExceeded`, which no Catch sees; developer guide, "Step Functions service
/// quotas"); the local service enforces it. A spec at the validation cap (65,536 bytes), with an
/// analysis step and a background analysis, rolls out, and its largest state is measured.
#[tokio::test(flavor = "multi_thread")]
async fn the_largest_valid_spec_keeps_every_state_under_the_payload_quota() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("big").await?;
    let name = cell_name(&w);
    let mut spec = cell(
        &w,
        json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "errors"}]}},
               {"setWeight": 50}, {"setWeight": 100}]),
    );
    spec["canary"]["analysis"] =
        json!({"templates": [{"templateName": "errors"}], "startingStep": 0});
    // Padded with templates up to the cap, measured as it travels: the parsed spec, defaults in.
    let padding = spec["analysisTemplates"][0].clone();
    let size = |v: &Value| -> Result<usize> {
        let parsed: okra_core::spec::CellSpec = serde_json::from_value(v.clone())?;
        Ok(serde_json::to_vec(&parsed)?.len())
    };
    let mut i = 0;
    loop {
        let mut next = spec.clone();
        let mut t = padding.clone();
        t["name"] = json!(format!("padding-{i}"));
        next["analysisTemplates"].as_array_mut().unwrap().push(t);
        if size(&next)? > okra_core::validate::MAX_SPEC_BYTES {
            break;
        }
        spec = next;
        i += 1;
    }
    let parsed: okra_core::spec::CellSpec = serde_json::from_value(spec.clone())?;
    okra_core::validate::validate(&parsed)?;
    let spec = serde_json::to_value(&parsed)?;
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 0.0)
        .await?;
    serving_v1(&aws, &w, &spec).await?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    let e = run_rollout(&aws, &format!("{name}-big"), input(spec.clone()))?;
    e.ensure_succeeded()?;
    let largest = e
        .history
        .iter()
        .filter_map(|ev| {
            ev.get("stateEnteredEventDetails")
                .and_then(|d| d.get("input"))
                .or_else(|| {
                    ev.get("stateExitedEventDetails")
                        .and_then(|d| d.get("output"))
                })
                .and_then(Value::as_str)
                .map(str::len)
        })
        .max()
        .unwrap_or(0);
    eprintln!(
        "PAYLOAD spec {} bytes, largest state {largest} bytes of 262,144",
        size(&spec)?
    );
    assert!(largest > 65_536, "the spec travels in the state: {largest}");
    assert!(
        largest < 262_144 * 3 / 4,
        "the largest state is {largest} bytes"
    );
    Ok(())
}

/// The readiness gate on AWS's terms (ALB guide, "Health checks for Application Load Balancer
/// target groups": only groups a rule forwards to are checked): with `minHealthyPercent: 100`
/// the new groups stand by at weight 0, their real backends pass their checks, and initialize
/// and a rollout go through; a backend that never turns healthy ends the rollout in
/// ReadinessTimedOut with its groups out of the action and no traffic moved.
#[tokio::test(flavor = "multi_thread")]
async fn the_readiness_gate_passes_on_real_health_checks_and_times_out_cleanly() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("gate").await?;
    let name = cell_name(&w);
    let mut spec = cell(&w, json!([{"setWeight": 50}]));
    spec["readiness"] = json!({"minHealthyPercent": 100, "timeout": "10m"});
    spec["targetGroup"]["targetType"] = json!("ip");
    let _a1 = aws.served_cluster(&w, "a1", "1.0.0", "10.0.1.11").await?;
    let _a2 = aws.served_cluster(&w, "a2", "1.0.0", "10.0.1.12").await?;
    let e = run_rollout(&aws, &format!("{name}-init"), input(spec.clone()))?;
    e.ensure_succeeded()?;
    assert!(
        e.states_entered()
            .iter()
            .any(|s| s == "Put the initial groups on standby")
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );

    let _b1 = aws.served_cluster(&w, "b1", "1.1.0", "10.0.2.11").await?;
    let _b2 = aws.served_cluster(&w, "b2", "1.1.0", "10.0.2.12").await?;
    let e = run_rollout(&aws, &format!("{name}-roll"), input(spec.clone()))?;
    e.ensure_succeeded()?;
    assert_eq!(weights_of_steps(&e), vec![50, 100]);
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );

    // 1.2.0: one of its backends never answers its checks well.
    let _c1 = aws.served_cluster(&w, "c1", "1.2.0", "10.0.3.11").await?;
    let c2 = aws.served_cluster(&w, "c2", "1.2.0", "10.0.3.12").await?;
    c2.set(okra_testkit::BackendMode::Unhealthy);
    spec["readiness"] = json!({"minHealthyPercent": 100, "timeout": "20s"});
    let before = aws.weights(&w).await?;
    let e = run_rollout(&aws, &format!("{name}-bad"), input(spec))?;
    assert_eq!(e.error.as_deref(), Some("ReadinessTimedOut"), "{e:?}");
    assert!(
        e.states_entered()
            .iter()
            .any(|s| s == "Take new groups out after timeout")
    );
    assert_eq!(
        aws.weights(&w).await?,
        before,
        "the new groups left the action again"
    );
    assert_eq!(aws.state().get_lock(&name).await?, None);
    Ok(())
}
