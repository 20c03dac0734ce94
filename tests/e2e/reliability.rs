//! Issue 8: whatever AWS does, a rollout ends promoted or rolled back, with the listener at
//! weights some step asked for, and nothing lost.
//!
//! This binary's stack puts okra-testkit's fault proxy between the functions and moto (the
//! tests' own clients reach moto directly), and a tiny Datadog-shaped server on 127.0.0.1. Tests
//! that change the proxy's plan run one at a time (`SERIAL`). Figures are printed as
//! `RELIABILITY ...` lines (`cargo test -p okra-e2e --test e2e -- reliability:: --nocapture`).
//! `OKRA_SOAK_ROLLOUTS` (default 5) rollouts run under faults; `OKRA_FAULT_SEED` seeds them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::{Aws, World, cell, cell_name, input, run_rollout, weights_of_steps};
use anyhow::{Context as _, Result, anyhow};
use okra_aws::state::StatePort;
use okra_testkit::{FaultKind, FaultPlan, LocalAws};
use serde_json::{Value, json};

use crate::common::datadog::{
    DD_API_KEY, DD_APP_KEY, DD_HEADS, DD_SECRET, create_dd_secret, datadog_site,
};

/// shift-weights' Lambda time-out in this binary's stack.
const SHIFT_TIMEOUT: Duration = Duration::from_secs(6);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static STACK: OnceLock<std::result::Result<LocalAws, String>> = OnceLock::new();

fn stack() -> Result<&'static LocalAws> {
    STACK
        .get_or_init(|| {
            common::builder()
                .function_env("DATADOG_SECRET_ARN", DD_SECRET)
                .iam_ref(
                    "DatadogSecretArn",
                    &crate::common::datadog::secret_arn_pattern(),
                )
                .function_env("DATADOG_SITE", datadog_site())
                .faults(FaultPlan::none())
                // Below the template's 60 s, so that a test holds Set weight past it in seconds
                // (a_set_weight_held_past_the_function_s_time_out_...); still far above the
                // function's normal run time, also under the soak's faults.
                .function_timeout("shift-weights", SHIFT_TIMEOUT)
                .start()
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("the local AWS did not start: {e}"))
}

async fn aws() -> Result<Aws> {
    common::aws_with(stack()?).await
}

fn proxy(aws: &Aws) -> &okra_testkit::FaultProxy {
    aws.local.faults().expect("this stack has a fault proxy")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Target group name → its `okra.io/version` tag, for the cell's groups.
async fn versions_of_groups(aws: &Aws, cell: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, arn) in aws.target_groups_named(cell).await? {
        let tags = aws.tags(&arn).await?;
        out.insert(
            name,
            tags.get("okra.io/version").cloned().unwrap_or_default(),
        );
    }
    Ok(out)
}

/// The listener's share per version.
async fn shares(aws: &Aws, w: &World) -> Result<BTreeMap<String, i32>> {
    let versions = versions_of_groups(aws, &cell_name(w)).await?;
    let mut out = BTreeMap::new();
    for (tg, weight) in aws.weights(w).await? {
        let v = versions
            .get(&tg)
            .cloned()
            .with_context(|| format!("the listener forwards to {tg}, not the cell's"))?;
        *out.entry(v).or_insert(0) += weight;
    }
    Ok(out)
}

/// The weights a plan allows: the canary at one of the steps' weights (or 0/100), split over
/// two sides, every group of a side at an even share.
fn allowed(
    shares: &BTreeMap<String, i32>,
    stable: &str,
    canary: &str,
    steps: &BTreeSet<i32>,
) -> bool {
    let total: i32 = shares.values().sum();
    let canary_share = shares.get(canary).copied().unwrap_or(0);
    total == 100
        && shares.keys().all(|v| v == stable || v == canary)
        && (canary_share == 0 || canary_share == 100 || steps.contains(&canary_share))
}

fn outcome(e: &okra_testkit::Execution) -> &'static str {
    let last = e.states_entered().last().cloned().unwrap_or_default();
    match (e.status.to_string().as_str(), e.error.as_deref()) {
        ("SUCCEEDED", _) if last == "Promoted" => "promoted",
        ("FAILED", Some("RolledBack")) => "rolledBack",
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollouts_under_30_percent_transient_faults_end_promoted_or_rolled_back() -> Result<()> {
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    let n = env_u64("OKRA_SOAK_ROLLOUTS", 5);
    let seed = env_u64("OKRA_FAULT_SEED", 8);
    let w = aws.world("soak").await?;
    let name = cell_name(&w);
    let steps = json!([
        {"setWeight": 10},
        {"analysis": {"templates": [{"templateName": "errors"}]}},
        {"setWeight": 50},
        {"setWeight": 100}
    ]);
    let weights: BTreeSet<i32> = [10, 50, 100].into();
    let spec = cell(&w, steps);
    aws.serving_cluster(&w, "v0a", "1.0.0").await?;
    aws.serving_cluster(&w, "v0b", "1.0.0").await?;

    let p = proxy(&aws);
    p.reset_counts();
    p.set_plan(FaultPlan::transient(0.3, seed).slow(Duration::from_millis(400)));
    let started = std::time::Instant::now();
    let e = run_rollout(&aws, &format!("{name}-init"), input(spec.clone()))?;
    let init = e.ensure_succeeded().map(|_| ());
    p.set_plan(FaultPlan::none());
    init?;
    let mut stable = "1.0.0".to_string();
    let mut tally: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 1..=n {
        let version = format!("1.{i}.0");
        aws.serving_cluster(&w, &format!("v{i}a"), &version).await?;
        aws.serving_cluster(&w, &format!("v{i}b"), &version).await?;
        aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 0.0)
            .await?;
        p.set_plan(
            FaultPlan::transient(0.3, seed.wrapping_add(i)).slow(Duration::from_millis(400)),
        );
        let e = run_rollout(&aws, &format!("{name}-r{i}"), input(spec.clone()));
        p.set_plan(FaultPlan::none());
        let e = e?;
        let how = outcome(&e);
        *tally.entry(how).or_insert(0) += 1;
        let now = shares(&aws, &w).await?;
        assert!(
            how != "other",
            "rollout {i} ({version}) ended {:?} {:?} {:?}: {now:?}",
            e.status,
            e.error,
            e.cause
        );
        assert!(
            allowed(&now, &stable, &version, &weights),
            "rollout {i}: {now:?} is not a weight the plan allows"
        );
        match how {
            "promoted" => {
                assert_eq!(now.get(&version), Some(&100), "{now:?}");
                stable = version;
            }
            _ => assert_eq!(now.get(&stable), Some(&100), "{now:?}"),
        }
        assert_eq!(
            aws.state().get_lock(&name).await?,
            None,
            "the lock is released"
        );
    }
    let counts = p.counts();
    eprintln!(
        "RELIABILITY faults seed={seed} rate=0.3 rollouts={n} outcomes={tally:?} requests={} injected={} by_kind={:?} by_operation={:?} seconds={}",
        counts.requests,
        counts.total(),
        counts.by_kind(),
        counts.by_operation(),
        started.elapsed().as_secs()
    );
    assert!(counts.total() > 0, "faults were injected");
    Ok(())
}

/// The proxy's injected errors are in each service's own shape, so the SDK classifies them as
/// AWS's would be: CloudWatch's current protocol (RPC v2 CBOR) names the error in a CBOR
/// `__type` and in `x-amzn-query-error` (awsQueryCompatible); `Throttling` there is a throttling
/// error the SDK retries (3 attempts), and the third throttle reaches the caller by its code.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_cloudwatch_read_is_retried_by_the_sdk() -> Result<()> {
    use aws_sdk_cloudwatch::error::ProvideErrorMetadata as _;
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    let p = proxy(&aws);
    let conf = aws.local.sdk_config().await;
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&conf)
            .endpoint_url(p.endpoint())
            .build(),
    );
    let throttle = |n| {
        FaultPlan::transient(1.0, 1)
            .kinds(&[FaultKind::Throttle])
            .operations(&["ListMetrics"])
            .max_faults(n)
    };
    p.reset_counts();
    p.set_plan(throttle(2));
    let read = cw.list_metrics().namespace("Okra/E2E").send().await;
    p.set_plan(FaultPlan::none());
    read.context("two throttles, then an answer")?;
    assert_eq!(p.counts().of_kind(FaultKind::Throttle), 2);

    p.reset_counts();
    p.set_plan(throttle(3));
    let read = cw.list_metrics().namespace("Okra/E2E").send().await;
    p.set_plan(FaultPlan::none());
    let err = read.expect_err("three throttles exhaust the SDK's attempts");
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");
    assert_eq!(p.counts().of_kind(FaultKind::Throttle), 3);
    Ok(())
}

/// A cell (steps 20 %, 100 %) whose 1.0.0 serves (initialized) and whose two 1.1.0 clusters
/// have just appeared: the world, the cell's name and its spec.
async fn serving_with_a_new_version(aws: &Aws, prefix: &str) -> Result<(World, String, Value)> {
    let w = aws.world(prefix).await?;
    let name = cell_name(&w);
    let spec = cell(&w, json!([{"setWeight": 20}, {"setWeight": 100}]));
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    run_rollout(aws, &format!("{name}-init"), input(spec.clone()))?.ensure_succeeded()?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    Ok((w, name, spec))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_modify_listener_whose_answer_is_lost_is_retried_and_verified() -> Result<()> {
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    let (w, name, spec) = serving_with_a_new_version(&aws, "crash").await?;

    // Three lost answers in a row: the SDK's own retries (3 attempts) all lose theirs, so the
    // function fails (AwsUnavailable) after its write took effect, and the state machine retries.
    let p = proxy(&aws);
    p.reset_counts();
    p.set_plan(
        FaultPlan::transient(1.0, 1)
            .kinds(&[FaultKind::DropResponse])
            .operations(&["ModifyListener"])
            .max_faults(3),
    );
    let e = run_rollout(&aws, &format!("{name}-up"), input(spec));
    p.set_plan(FaultPlan::none());
    let e = e?;
    e.ensure_succeeded()?;
    assert_eq!(p.counts().of_kind(FaultKind::DropResponse), 3);
    assert_eq!(weights_of_steps(&e), vec![20, 100]);
    let log = serde_json::to_string(&e.events)?;
    assert!(
        log.contains("AwsUnavailable"),
        "the lost answer failed a task, which was retried"
    );
    let now = shares(&aws, &w).await?;
    assert_eq!(now, BTreeMap::from([("1.1.0".to_string(), 100)]));
    eprintln!(
        "RELIABILITY crash-after-write dropped={} outcome={}",
        p.counts().of_kind(FaultKind::DropResponse),
        outcome(&e)
    );
    Ok(())
}

/// A function held past its Lambda time-out (Lambda developer guide, "Configure Lambda function
/// timeout"; the execution environment lifecycle page: the environment is reset and the next
/// invocation starts a fresh one): the fault proxy holds Set weight's ModifyListener longer than
/// shift-weights' time-out, the local Lambda service stops the invocation with `Sandbox.Timedout`
/// and kills its process, the state machine retries (a transient Lambda error), and the retry, in
/// a new process, finds the listener as it is and verifies the step's weights.
#[tokio::test(flavor = "multi_thread")]
async fn a_set_weight_held_past_the_function_s_time_out_is_retried_in_a_fresh_environment_and_verified()
-> Result<()> {
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    let (w, name, spec) = serving_with_a_new_version(&aws, "tmo").await?;
    assert_eq!(
        aws.local.lambda_timeout("shift-weights"),
        Some(SHIFT_TIMEOUT)
    );
    let before = aws.local.lambda_stats().context("an owned stack")?;

    let p = proxy(&aws);
    p.reset_counts();
    p.set_plan(
        FaultPlan::transient(1.0, 7)
            .kinds(&[FaultKind::Slow])
            .slow(SHIFT_TIMEOUT + Duration::from_secs(4))
            .operations(&["ModifyListener"])
            .max_faults(1),
    );
    let e = run_rollout(&aws, &format!("{name}-up"), input(spec));
    p.set_plan(FaultPlan::none());
    let e = e?;
    e.ensure_succeeded()?;
    assert_eq!(p.counts().of_kind(FaultKind::Slow), 1);
    assert_eq!(weights_of_steps(&e), vec![20, 100], "every step verified");
    let failed: Vec<String> = e
        .events_of_type("StateFailed")
        .filter_map(|ev| {
            ev.pointer("/state/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let log = serde_json::to_string(&e.events)?;
    assert!(
        log.contains("Sandbox.Timedout") && log.contains("Task timed out after 6.00 seconds"),
        "Set weight failed with Lambda's time-out, then was retried: {failed:?}"
    );
    let after = aws.local.lambda_stats().context("an owned stack")?;
    let of = |m: &BTreeMap<String, u64>| m.get("shift-weights").copied().unwrap_or(0);
    assert_eq!(of(&after.timeouts) - of(&before.timeouts), 1);
    assert!(
        of(&after.environments_started) > of(&before.environments_started),
        "the retry ran in a new environment (the timed-out one was reset)"
    );
    assert_eq!(
        shares(&aws, &w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    assert_eq!(
        aws.state().get_lock(&name).await?,
        None,
        "the cell is not stuck"
    );
    eprintln!(
        "RELIABILITY lambda-timeout shift-weights={}s held={}s timeouts={} outcome={}",
        SHIFT_TIMEOUT.as_secs(),
        (SHIFT_TIMEOUT + Duration::from_secs(4)).as_secs(),
        of(&after.timeouts) - of(&before.timeouts),
        outcome(&e)
    );
    Ok(())
}

/// Every `okra.io/*`-tagged group of the cell with its tags, the listener's weights, and the
/// cell's table items: what a function may have changed.
async fn snapshot(aws: &Aws, w: &World) -> Result<Value> {
    let mut groups = BTreeMap::new();
    for (n, arn) in aws.target_groups_named(&cell_name(w)).await? {
        groups.insert(n, aws.tags(&arn).await?);
    }
    let items = aws
        .ddb
        .query()
        .table_name(common::TABLE)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CELL#{}", cell_name(w))),
        )
        .send()
        .await?
        .count();
    Ok(json!({"groups": groups, "weights": aws.weights(w).await?, "items": items}))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_function_run_twice_on_the_same_input_leaves_the_same_state() -> Result<()> {
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    let w = aws.world("idem").await?;
    let name = cell_name(&w);
    let spec = cell(&w, json!([{"setWeight": 30}, {"setWeight": 100}]));
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    run_rollout(&aws, &format!("{name}-init"), input(spec.clone()))?.ensure_succeeded()?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;

    let twice = |f: &'static str, event: Value| {
        let aws = &aws;
        let w = &w;
        async move {
            let first = aws.local.invoke(f, &event)?.into_value()?;
            let after_first = snapshot(aws, w).await?;
            let second = aws.local.invoke(f, &event)?.into_value()?;
            let after_second = snapshot(aws, w).await?;
            assert_eq!(after_first, after_second, "{f}: a second run changed AWS");
            anyhow::Ok((first, second))
        }
    };
    let exec = format!("{name}-idem");
    twice(
        "rollout-state",
        json!({"action": "begin", "cell": name, "execution": exec}),
    )
    .await?;
    let (d, _) = twice("discover-clusters", json!({"cell": spec, "blocklist": []})).await?;
    assert_eq!(d["decision"]["kind"], "startRollout", "{d}");
    let (ens, ens2) = twice(
        "ensure-target-groups",
        json!({"cell": spec, "side": d["decision"]["canary"]}),
    )
    .await?;
    assert_eq!(ens["side"], ens2["side"]);
    let shift = json!({
        "listenerArn": d["listenerArn"], "ruleArn": d["ruleArn"], "stickiness": d["stickiness"],
        "stable": d["decision"]["stable"], "canary": ens["side"], "weight": 30,
        "expected": d["action"],
    });
    let (s1, s2) = twice("shift-weights", shift).await?;
    assert_eq!(s1["changed"], true);
    assert_eq!(
        s2["changed"], false,
        "the second run found the weights in place"
    );
    assert_eq!(s1["action"], s2["action"]);
    twice(
        "rollout-state",
        json!({"action": "finish", "cell": name, "execution": exec, "outcome": "promoted", "block": false}),
    )
    .await?;
    eprintln!("RELIABILITY idempotency functions=5 runs=10");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_dispatches_for_one_cell_start_one_execution() -> Result<()> {
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    let w = aws.world("race").await?;
    let name = cell_name(&w);
    let spec = cell(&w, json!([{"setWeight": 50}]));
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    let parsed: okra_core::spec::CellSpec = serde_json::from_value(spec)?;
    aws.state().put_cell(&parsed, None).await?;
    let local = aws.local;
    let results: Vec<Result<Value>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let name = name.clone();
                s.spawn(move || {
                    local
                        .invoke(
                            "dispatcher",
                            &json!({"cells": [name], "trigger": "api", "labels": {}}),
                        )
                        .and_then(okra_testkit::Invocation::into_value)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}")))
        .collect();
    let mut started = BTreeSet::new();
    let mut token = None;
    loop {
        let out = aws
            .sfn
            .list_executions()
            .state_machine_arn(common::STATE_MACHINE_ARN)
            .set_next_token(token)
            .send()
            .await?;
        for e in out.executions() {
            if e.name().starts_with(&name) {
                started.insert(e.name().to_string());
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    eprintln!(
        "RELIABILITY race dispatches=50 answered={ok} errors={} executions={}",
        errors.len(),
        started.len()
    );
    assert_eq!(started.len(), 1, "{started:?} {errors:?}");
    assert!(errors.is_empty(), "{errors:?}");
    Ok(())
}

// A listener edited by hand during a pause: tests/e2e/callbacks.rs (a pause until resumed is a
// callback, answered in the local Step Functions service).

#[tokio::test(flavor = "multi_thread")]
async fn the_datadog_key_never_reaches_the_logs() -> Result<()> {
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    create_dd_secret(aws.local).await?;
    let w = aws.world("dd").await?;
    let mut spec = cell(&w, json!([{"setWeight": 50}]));
    spec["analysisTemplates"] = json!([{
        "name": "latency",
        "metrics": [{
            "name": "p99",
            "interval": "1m",
            "count": 1,
            "successCondition": "result < 1.0",
            "provider": {"datadog": {"query": "avg:trace.http.request.duration{service:web}"}}
        }]
    }]);
    let out = aws
        .local
        .invoke(
            "check-metrics",
            &json!({"cell": spec, "templates": ["latency"]}),
        )?
        .into_value()?;
    let heads = DD_HEADS.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.contains(DD_API_KEY)),
        "the function used the key: {heads:?} {out}"
    );
    // And once more with the secret gone wrong: errors must not carry it either.
    let logs = std::fs::read_dir(aws.local.logs_dir())?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!logs.is_empty());
    for key in [DD_API_KEY, DD_APP_KEY] {
        assert!(!logs.contains(key), "{key} is in the captured logs");
    }
    assert!(!out.to_string().contains(DD_API_KEY), "{out}");
    eprintln!(
        "RELIABILITY secrets log_bytes={} key_found=false",
        logs.len()
    );
    Ok(())
}

/// Malformed events for every function: each a typed error naming the field, nothing written.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_function_events_are_typed_errors_and_change_nothing() -> Result<()> {
    let aws = aws().await?;
    let _serial = SERIAL.lock().await;
    let w = aws.world("bad").await?;
    let spec = cell(&w, json!([{"setWeight": 50}]));
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    let before = snapshot(&aws, &w).await?;
    let good_shift =
        json!({"listenerArn": w.listener_arn, "stable": [], "canary": [], "weight": 0});
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let junk = [
        json!(null),
        json!(42),
        json!("text"),
        json!([]),
        json!({}),
        json!({"unexpected": true}),
        json!((0..100).fold(json!(1), |a, _| json!([a]))),
        json!({"cell": "ü🦀\u{202e}"}),
        json!({"cell": "x".repeat(100_000)}),
    ];
    for f in [
        "discover-clusters",
        "ensure-target-groups",
        "shift-weights",
        "check-metrics",
        "rollout-state",
        "dispatcher",
    ] {
        for j in &junk {
            // `{}` is the dispatcher's "no cell named": a valid request that starts nothing.
            if !(f == "dispatcher" && j == &json!({})) {
                cases.push((f, j.clone()));
            }
        }
    }
    for (k, v) in [
        ("weight", json!(101)),
        ("weight", json!(-1)),
        ("weight", json!("50")),
        ("weight", json!(1e300)),
        ("listenerArn", json!("")),
        ("listenerArn", json!(7)),
        ("stable", json!("arn")),
        ("canary", json!([1, 2])),
        ("expected", json!("x")),
        ("takeOver", json!("yes")),
    ] {
        let mut e = good_shift.clone();
        e[k] = v;
        cases.push(("shift-weights", e));
    }
    for (k, v) in [
        ("replicas", json!(-1)),
        ("replicas", json!("2")),
        ("name", json!("")),
        ("ingress", json!({"alb": {"listenerArn": "arn:aws:nope"}})),
        ("canary", json!({"steps": [{"setWeight": 500}]})),
        ("canary", json!({"steps": [{"nope": 1}]})),
    ] {
        let mut s = spec.clone();
        s[k] = v;
        cases.push(("discover-clusters", json!({"cell": s, "blocklist": []})));
        cases.push(("ensure-target-groups", json!({"cell": s, "side": {}})));
        cases.push(("check-metrics", json!({"cell": s, "templates": []})));
    }
    for a in ["", "nope", "BEGIN"] {
        cases.push((
            "rollout-state",
            json!({"action": a, "cell": cell_name(&w), "execution": "x"}),
        ));
    }
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut longest = 0;
    for (f, event) in &cases {
        match aws.local.invoke(f, event)? {
            okra_testkit::Invocation::Ok(v) => panic!("{f} took a malformed event: {v}"),
            okra_testkit::Invocation::FunctionError {
                error_type,
                error_message,
            } => {
                assert!(!error_message.is_empty(), "{f}: an empty error");
                longest = longest.max(error_message.len());
                *by_type.entry(error_type).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(snapshot(&aws, &w).await?, before, "nothing changed");
    eprintln!(
        "RELIABILITY function-event corpus cases={} error_types={by_type:?} longest_message={longest}",
        cases.len()
    );
    Ok(())
}
