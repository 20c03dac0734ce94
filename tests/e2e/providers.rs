//! Analysis where teams keep their numbers (issue 27), through the shipped state machine and the
//! real check-metrics binary: a real Prometheus server (Debian's) scraping the clusters' own
//! backends, whose request counters the test drives.

use std::collections::BTreeMap;

use anyhow::Result;
use okra_testkit::{AmpEndpoint, AmpWorkspace, Backend, Prometheus, ScrapeTarget};
use serde_json::{Value, json};

use crate::common::{self, cell, cell_name, input, run_rollout, weights_of_steps};

/// The canary's 5xx share over the last 10 s, by version label (set by the scrape config).
const ERROR_RATIO: &str = "sum(rate(http_requests_total{code=~\"5..\",version=\"{{args.version}}\"}[10s])) / sum(rate(http_requests_total{version=\"{{args.version}}\"}[10s]))";

/// A cell of two 1.0.0 clusters serving (initialized) and two 1.1.0 clusters ready, every
/// cluster a real backend that Prometheus scrapes with its `version` and `cluster` labels; the
/// cell's one analysis is the 5xx ratio from Prometheus, `count` samples.
async fn world_with_prometheus(
    aws: &common::Aws,
    prefix: &str,
    metric: Value,
) -> Result<(common::World, Value, Vec<Backend>, Prometheus)> {
    let w = aws.world(prefix).await?;
    let steps = json!([
        {"setWeight": 30},
        {"analysis": {"templates": [{"templateName": "prom"}],
                      "args": [{"name": "version", "value": "1.1.0"}]}},
        {"setWeight": 100}
    ]);
    // common::cell turns the built-in judge off: its default source is the ALB's CloudWatch
    // metrics, which the local load balancer does not publish (the judge over Prometheus has a
    // test of its own).
    let mut spec = cell(&w, steps);
    spec["targetGroup"]["targetType"] = json!("ip");
    let mut metric = metric;
    spec["analysisTemplates"] =
        json!([{"name": "prom", "args": [{"name": "version"}], "metrics": [metric.clone()]}]);
    // Target addresses are the local ELB's keys to their backends: unique per world.
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut backends = Vec::new();
    for (c, v, i) in [("a1", "1.0.0", 1), ("a2", "1.0.0", 2)] {
        backends.push(
            aws.served_cluster(&w, c, v, &format!("10.27.{n}.{i}"))
                .await?,
        );
    }
    let init = run_rollout(aws, &format!("{}-init", cell_name(&w)), input(spec.clone()))?;
    init.ensure_succeeded()?;
    for (c, v, i) in [("b1", "1.1.0", 3), ("b2", "1.1.0", 4)] {
        backends.push(
            aws.served_cluster(&w, c, v, &format!("10.27.{n}.{i}"))
                .await?,
        );
    }
    let targets: Vec<ScrapeTarget> = backends
        .iter()
        .zip([
            ("a1", "1.0.0"),
            ("a2", "1.0.0"),
            ("b1", "1.1.0"),
            ("b2", "1.1.0"),
        ])
        .map(|(b, (c, v))| ScrapeTarget {
            address: b.addr(),
            labels: BTreeMap::from([
                ("version".to_string(), v.to_string()),
                ("cluster".to_string(), c.to_string()),
            ]),
        })
        .collect();
    let prometheus = Prometheus::start(&targets)?;
    if metric["provider"].get("prometheus").is_some() {
        metric["provider"]["prometheus"]["address"] = json!(prometheus.url());
    }
    spec["analysisTemplates"] =
        json!([{"name": "prom", "args": [{"name": "version"}], "metrics": [metric]}]);
    Ok((w, spec, backends, prometheus))
}

/// The 5xx-ratio metric. `consecutiveErrorLimit: 1` (default 4) so that a Prometheus that is
/// down decides in two samples instead of five; the verdicts themselves are as documented.
fn error_ratio_metric(count: u32) -> Value {
    json!({
        "name": "error-ratio",
        "interval": "1m",
        "count": count,
        "successCondition": "result < 0.05",
        "failureCondition": "result >= 0.05",
        "consecutiveErrorLimit": 1,
        "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": ERROR_RATIO, "timeout": "5s"}}
    })
}

/// Waits until Prometheus has two scrapes of the canary (a rate over them).
fn canary_scraped(prometheus: &Prometheus) -> Result<f64> {
    prometheus.wait_for(&ERROR_RATIO.replace("{{args.version}}", "1.1.0"))
}

/// Good numbers promote; bad numbers (a canary whose requests fail 30 % of the time, as its
/// own /metrics says) roll back naming the metric and Prometheus' value.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_numbers_promote_a_good_canary_and_roll_back_a_bad_one() -> Result<()> {
    let aws = common::aws().await?;
    let (w, spec, backends, prometheus) =
        world_with_prometheus(&aws, "prom", error_ratio_metric(2)).await?;
    let name = cell_name(&w);
    assert_eq!(canary_scraped(&prometheus)?, 0.0);
    let e = run_rollout(&aws, &format!("{name}-good"), input(spec.clone()))?;
    e.ensure_succeeded()?;
    assert_eq!(weights_of_steps(&e), vec![30, 100]);
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    let record = aws
        .rollout(&name, &format!("{name}-good"))
        .await?
        .expect("a record");
    assert_eq!(record.status, "promoted");

    // A second world whose canary fails 30 % of its requests.
    let (w, spec, backends2, prometheus2) =
        world_with_prometheus(&aws, "prombad", error_ratio_metric(2)).await?;
    let name = cell_name(&w);
    for b in &backends2[2..] {
        b.set_error_ratio(0.3);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while canary_scraped(&prometheus2)? < 0.29 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the ratio never rose");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let e = run_rollout(&aws, &format!("{name}-bad"), input(spec))?;
    rolled_back(&e);
    let cause = e.cause.clone().unwrap_or_default();
    assert!(cause.contains("error-ratio"), "{cause}");
    // The sample that failed it read Prometheus' 0.3.
    let values: Vec<f64> = e
        .events_of_type("StateExited")
        .filter_map(|ev| ev.pointer("/state/output/analysis/metrics/0/value"))
        .filter_map(Value::as_f64)
        .collect();
    assert!(
        values.iter().any(|v| (v - 0.3).abs() < 0.02),
        "the samples read {values:?}"
    );
    assert_eq!(weights_of_steps(&e), vec![30]);
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    assert_eq!(aws.blocked(&name).await?, vec!["1.1.0".to_string()]);
    drop((backends, backends2));
    Ok(())
}

/// A Prometheus that is down: each sample is an Error; past `consecutiveErrorLimit` the metric
/// is Error and the rollout rolls back (the version is blocked, as for a failed analysis).
#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_that_is_down_is_errors_then_a_rollback() -> Result<()> {
    let aws = common::aws().await?;
    let (w, spec, _backends, mut prometheus) =
        world_with_prometheus(&aws, "promdown", error_ratio_metric(3)).await?;
    let name = cell_name(&w);
    canary_scraped(&prometheus)?;
    prometheus.stop();
    let e = run_rollout(&aws, &format!("{name}-down"), input(spec))?;
    let messages = rolled_back(&e);
    let cause = e.cause.clone().unwrap_or_default();
    assert!(cause.contains("error-ratio errored"), "{cause}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("the provider failed") && m.contains("127.0.0.1")),
        "{messages:?}"
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    Ok(())
}

/// A local AMP workspace in front of `prometheus`: SigV4 and IAM checked as AMP checks them.
fn amp_workspace(aws: &common::Aws, id: &str, prometheus: &Prometheus) -> Result<AmpEndpoint> {
    AmpEndpoint::start(AmpWorkspace {
        id: id.to_string(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
        keys: BTreeMap::from([(
            "testing".to_string(),
            ("testing".to_string(), Some("testing".to_string())),
        )]),
        upstream: prometheus.url(),
        iam: Some(aws.local.endpoint().to_string()),
    })
}

fn with_address(spec: &mut Value, address: &str) {
    spec["analysisTemplates"][0]["metrics"][0]["provider"]["prometheus"]["address"] =
        json!(address);
}

/// Amazon Managed Service for Prometheus: each query SigV4-signed with check-metrics' own
/// credentials for service `aps` passes the workspace's checks and the rollout is promoted on
/// its numbers; an unsigned query, and one signed for another region, are refused with AMP's
/// 403; a workspace the stack was not given (its role has no aps:QueryMetrics there) answers
/// AccessDenied and the rollout rolls back.
#[tokio::test(flavor = "multi_thread")]
async fn amp_queries_are_signed_and_a_workspace_not_allowed_is_refused() -> Result<()> {
    assert_eq!(
        common::AMP_WORKSPACE_ARN,
        "arn:aws:aps:us-east-1:123456789012:workspace/ws-okra-e2e"
    );
    let aws = common::aws().await?;
    let mut metric = error_ratio_metric(2);
    metric["provider"]["prometheus"]["sigv4"] = json!({"region": "us-east-1"});
    let (w, mut spec, _backends, prometheus) =
        world_with_prometheus(&aws, "amp", metric.clone()).await?;
    let name = cell_name(&w);
    let amp = amp_workspace(&aws, "ws-okra-e2e", &prometheus)?;
    canary_scraped(&prometheus)?;

    // Unsigned: AMP's 403.
    let unsigned = ureq::get(&format!("{}/api/v1/query?query=up", amp.address()))
        .config()
        .http_status_as_error(false)
        .build()
        .call()?;
    assert_eq!(unsigned.status().as_u16(), 403);
    // Signed with okra's adapter, but for another region: refused too.
    let conf = aws.local.sdk_config().await;
    let probe = okra_aws::probe::Probe::from_config(
        okra_aws::secrets::Secrets::new(aws_sdk_secretsmanager::Client::new(&conf)),
        &conf,
    );
    let p: okra_core::spec::PrometheusProvider = serde_json::from_value(json!({
        "address": amp.address(), "query": "up", "sigv4": {"region": "eu-west-1"}}))?;
    let req =
        okra_core::analysis::probe::prometheus_request(&p, "up", 0).map_err(anyhow::Error::msg)?;
    let answer = okra_aws::ports::HttpPort::send(&probe, &req).await?;
    assert_eq!(answer.status, 403);
    let refused: Vec<String> = amp.log().refused.into_iter().map(|(_, m)| m).collect();
    assert!(
        refused[0].contains("Missing Authentication Token"),
        "{refused:?}"
    );
    assert!(
        refused[1].contains("scoped to a valid region"),
        "{refused:?}"
    );

    with_address(&mut spec, &amp.address());
    let e = run_rollout(&aws, &format!("{name}-amp"), input(spec))?;
    e.ensure_succeeded()?;
    assert_eq!(weights_of_steps(&e), vec![30, 100]);
    assert!(amp.log().forwarded >= 2, "{:?}", amp.log());
    assert_eq!(
        amp.log().refused.len(),
        2,
        "no query of check-metrics refused"
    );

    // A workspace the stack was not given.
    let (w, mut spec, _backends2, prometheus2) =
        world_with_prometheus(&aws, "ampdeny", metric).await?;
    let other = amp_workspace(&aws, "ws-other", &prometheus2)?;
    canary_scraped(&prometheus2)?;
    with_address(&mut spec, &other.address());
    let e = run_rollout(&aws, &format!("{}-deny", cell_name(&w)), input(spec))?;
    rolled_back(&e);
    let refused = other.log().refused;
    assert!(
        refused
            .iter()
            .any(|(s, m)| *s == 403 && m.contains("not authorized to perform: aps:QueryMetrics")),
        "{refused:?}"
    );
    assert_eq!(other.log().forwarded, 0);
    Ok(())
}

/// A workspace in another account, queried with a role (`sigv4.roleArn`): check-metrics assumes
/// the role the stack names (PrometheusRoleArns; sts:AssumeRole on it only) and signs with the
/// session's credentials, which the workspace verifies (the strict moto's STS issued them); a
/// role the stack does not name is refused by IAM (AccessDenied on sts:AssumeRole): Error
/// samples, the rollout rolls back.
#[tokio::test(flavor = "multi_thread")]
async fn amp_queries_signed_with_an_assumed_role() -> Result<()> {
    let aws = common::aws().await?;
    let mut metric = error_ratio_metric(2);
    metric["provider"]["prometheus"]["sigv4"] =
        json!({"region": "us-east-1", "roleArn": common::AMP_ROLE_ARN});
    let (w, mut spec, _backends, prometheus) =
        world_with_prometheus(&aws, "amprole", metric.clone()).await?;
    // Not the stack's workspace: only the role's credentials reach it.
    let amp = amp_workspace(&aws, "ws-elsewhere", &prometheus)?;
    canary_scraped(&prometheus)?;
    with_address(&mut spec, &amp.address());
    let e = run_rollout(&aws, &format!("{}-role", cell_name(&w)), input(spec))?;
    e.ensure_succeeded()?;
    assert_eq!(weights_of_steps(&e), vec![30, 100]);
    assert!(amp.log().forwarded >= 2, "{:?}", amp.log());
    assert!(amp.log().refused.is_empty(), "{:?}", amp.log());

    // A role the stack was not given.
    metric["provider"]["prometheus"]["sigv4"]["roleArn"] =
        json!("arn:aws:iam::210987654321:role/someone-else");
    let (w, mut spec, _backends2, prometheus2) =
        world_with_prometheus(&aws, "amprolex", metric).await?;
    let other = amp_workspace(&aws, "ws-elsewhere", &prometheus2)?;
    canary_scraped(&prometheus2)?;
    with_address(&mut spec, &other.address());
    let e = run_rollout(&aws, &format!("{}-rolex", cell_name(&w)), input(spec))?;
    let messages = rolled_back(&e);
    assert!(
        messages.iter().any(|m| m.contains("cannot assume")),
        "{messages:?}"
    );
    assert_eq!(other.log().forwarded, 0, "nothing reached the workspace");
    let denied = aws.local.iam_denials()?;
    assert!(
        denied
            .iter()
            .any(|d| d["action"] == "sts:AssumeRole" && d.to_string().contains("someone-else")),
        "{denied:?}"
    );
    Ok(())
}

/// Asserts the execution rolled back; the messages of its analysis samples.
fn rolled_back(e: &okra_testkit::Execution) -> Vec<String> {
    assert_eq!(
        (e.status.as_str(), e.error.as_deref()),
        ("FAILED", Some("RolledBack")),
        "{e:?}"
    );
    e.events_of_type("StateExited")
        .filter_map(|ev| ev.pointer("/state/output/analysis/metrics/0/measurements"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|m| m["message"].as_str().map(str::to_string))
        .collect()
}

/// A web check (here Prometheus' own JSON API, read with a JSONPath) and a Lambda check (the
/// testkit's function, answering as a smoke test that failed) roll back a canary; a check
/// function the stack was not given (AnalysisFunctionArns) is refused by IAM: Error samples,
/// then a rollback.
#[tokio::test(flavor = "multi_thread")]
async fn failing_web_and_lambda_checks_roll_back() -> Result<()> {
    let aws = common::aws().await?;
    // `count: 1` and `consecutiveErrorLimit: 0` (defaults 1 and 4): one sample decides, so an
    // unreachable or refused check rolls back at its first error instead of its fifth.
    let web = json!({
        "name": "web-check", "count": 1, "successCondition": "result < 0.05",
        "consecutiveErrorLimit": 0,
        "provider": {"web": {"url": "http://127.0.0.1:9/", "jsonPath": "$.data.result[0].value[1]", "timeout": "5s"}}
    });
    let (w, mut spec, backends, prometheus) = world_with_prometheus(&aws, "webchk", web).await?;
    for b in &backends[2..] {
        b.set_error_ratio(0.5);
    }
    let query = ERROR_RATIO.replace("{{args.version}}", "1.1.0");
    while canary_scraped(&prometheus)? < 0.45 {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    spec["analysisTemplates"][0]["metrics"][0]["provider"]["web"]["url"] = json!(format!(
        "{}/api/v1/query?query={}",
        prometheus.url(),
        okra_core::analysis::probe::encode(&query)
    ));
    let e = run_rollout(&aws, &format!("{}-web", cell_name(&w)), input(spec))?;
    rolled_back(&e);
    let values: Vec<f64> = e
        .events_of_type("StateExited")
        .filter_map(|ev| ev.pointer("/state/output/analysis/metrics/0/value"))
        .filter_map(Value::as_f64)
        .collect();
    assert!(values.iter().any(|v| *v >= 0.45), "{values:?}");

    for (prefix, function, needle) in [
        (
            "lambdachk",
            common::CHECK_FUNCTION,
            "smoke test: 3 of 20 requests failed",
        ),
        (
            "lambdadeny",
            "dispatcher",
            "not authorized to perform: lambda:InvokeFunction",
        ),
    ] {
        let check = json!({
            "name": "smoke", "count": 1, "successCondition": "result == 1.0",
            "consecutiveErrorLimit": 0,
            "provider": {"lambda": {"functionName": okra_testkit::lambda_arn(function)}}
        });
        let (w, mut spec, _backends, _prometheus) =
            world_with_prometheus(&aws, prefix, check).await?;
        spec["analysisTemplates"][0]["args"] = json!([
            {"name": "version"}, {"name": "result", "value": "false"},
            {"name": "message", "value": "smoke test: 3 of 20 requests failed"}]);
        let e = run_rollout(&aws, &format!("{}-run", cell_name(&w)), input(spec))?;
        let messages = rolled_back(&e);
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "{prefix}: {messages:?}"
        );
    }
    Ok(())
}

/// The built-in judge over Prometheus series (judge.prometheus): both sides' requests, 5xx and
/// latency by version label, one point a second over 10 s. A canary whose 5xx share is 0.3
/// against a stable at 0 is judged failed (the templates' metric is a dry run: only the judge
/// decides) and rolled back; the same canary at 0 passes.
#[tokio::test(flavor = "multi_thread")]
async fn the_judge_over_prometheus_series_fails_a_canary_with_more_5xx() -> Result<()> {
    let aws = common::aws().await?;
    for (prefix, canary_errors) in [("judgebad", 0.3), ("judgegood", 0.0)] {
        let mut metric = error_ratio_metric(1);
        metric["dryRun"] = json!(true);
        let (w, mut spec, backends, prometheus) =
            world_with_prometheus(&aws, prefix, metric).await?;
        for b in &backends[2..] {
            b.set_error_ratio(canary_errors);
        }
        let by = r#"version="{{args.version}}""#;
        spec["judge"] = json!({
            "enabled": true, "window": "10s", "minRequests": 50,
            "prometheus": {
                "address": prometheus.url(), "step": "1s",
                "requests": format!("sum(increase(http_requests_total{{{by}}}[2s]))"),
                "errors": format!("sum(increase(http_requests_total{{{by},code=~\"5..\"}}[2s]))"),
                "latency": format!("sum(increase(http_request_duration_seconds_sum{{{by}}}[2s])) / sum(increase(http_request_duration_seconds_count{{{by}}}[2s]))"),
            }
        });
        let ratio = canary_scraped(&prometheus)?;
        // Ten seconds of points on both sides.
        std::thread::sleep(std::time::Duration::from_secs(12));
        let e = run_rollout(&aws, &format!("{}-run", cell_name(&w)), input(spec))?;
        let reports: Vec<Value> = e
            .events_of_type("StateExited")
            .filter_map(|ev| ev.pointer("/state/output/analysis/judge").cloned())
            .filter(|j| !j.is_null())
            .collect();
        if canary_errors > 0.0 {
            assert_eq!(
                (e.status.as_str(), e.error.as_deref()),
                ("FAILED", Some("RolledBack")),
                "{prefix} (ratio {ratio}): {e:?}"
            );
            let reason = reports
                .last()
                .map(|r| r["reason"].to_string())
                .unwrap_or_default();
            assert!(reason.contains("error rate"), "{reports:?}");
            assert_eq!(
                reports.last().map(|r| r["phase"].clone()),
                Some(json!("failed"))
            );
        } else {
            e.ensure_succeeded()?;
            assert_eq!(
                reports.last().map(|r| r["phase"].clone()),
                Some(json!("successful")),
                "{reports:?}"
            );
        }
    }
    Ok(())
}
