//! Background samples during a wait, taken by an EventBridge Scheduler schedule (okra_core::
//! schedule): the wait is one callback whose history stays as it is however many samples are
//! taken, each sample is one invocation of check-metrics, and a failing one rolls back at once.
//! Everything as users run it: the default readiness gate, IAM enforced from template.yaml for
//! the functions and for the role the strict moto's scheduler invokes check-metrics with
//! (tools/local-aws/strict_moto.py, "EventBridge Scheduler"; a minute passes in 0.6 s).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::cell_name;
use crate::common::service::{finished, history, paused_rollout_with, setup, setup_on};
use anyhow::{Context as _, Result};
use okra_aws::state::StatePort;
use okra_testkit::SAMPLE_SCHEDULE_GROUP;
use serde_json::{Value, json};

/// A background analysis of the `errors` template from the pause on, sampled every minute
/// (a rate EventBridge Scheduler keeps), for as long as the rollout lasts.
fn sampled_every_minute(spec: &mut Value) {
    spec["canary"]["analysis"] =
        json!({"templates": [{"templateName": "errors"}], "startingStep": 1});
    spec["analysisTemplates"][0]["metrics"][0]["interval"] = json!("1m");
    spec["analysisTemplates"][0]["metrics"][0]["count"] = json!(1000);
}

/// How many samples the schedule took for the execution's wait (0 without a wait).
async fn taken(aws: &crate::common::Aws, cell: &str, exec: &str) -> Result<u64> {
    Ok(aws
        .state()
        .get_wait(cell, exec)
        .await?
        .and_then(|w| w.samples)
        .map_or(0, |s| s.taken))
}

async fn until_taken(aws: &crate::common::Aws, cell: &str, exec: &str, n: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while taken(aws, cell, exec).await? < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the schedule took {} of {n} samples; the scheduler's invocations: {:?}",
            taken(aws, cell, exec).await?,
            aws.local.scheduler_invocations()?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_sampled_by_a_schedule_stays_flat_and_a_failing_sample_rolls_back() -> Result<()> {
    // A stack of its own: the strict moto counts calls by caller, and other suites' samples
    // (check-metrics on the shared stack) would count as this wait's.
    static OWN: std::sync::OnceLock<std::result::Result<okra_testkit::LocalAws, String>> =
        std::sync::OnceLock::new();
    let (aws, sfn) = setup_on(crate::common::stack_in(&OWN, || {
        crate::common::service::builder(None)
    })?)
    .await?;
    let (w, exec) = paused_rollout_with(&aws, &sfn, "sched", sampled_every_minute).await?;
    let name = cell_name(&w);

    // The wait made its schedule; samples come while the execution does nothing.
    let wait = aws
        .state()
        .get_wait(&name, &exec)
        .await?
        .context("a wait")?;
    wait.samples
        .as_ref()
        .context("the wait keeps its samples")?;
    let schedule = okra_core::schedule::schedule_name(&name, &exec, wait.step);
    assert!(
        aws.local
            .schedule_names(SAMPLE_SCHEDULE_GROUP)?
            .contains(&schedule),
        "schedule {schedule} in the group"
    );
    until_taken(&aws, &name, &exec, 2).await?;
    let calls = |by: &BTreeMap<String, BTreeMap<String, u64>>| {
        by.get("check-metrics").cloned().unwrap_or_default()
    };
    let (from, calls_before) = (
        taken(&aws, &name, &exec).await?,
        calls(&aws.local.calls_by_caller()?),
    );
    let before = history(&sfn, &exec).await?.len();
    until_taken(&aws, &name, &exec, 6).await?;
    let after = history(&sfn, &exec).await?.len();
    let (to, calls_after) = (
        taken(&aws, &name, &exec).await?,
        calls(&aws.local.calls_by_caller()?),
    );
    assert_eq!(
        before, after,
        "samples taken by the schedule add nothing to the execution's history"
    );
    // What one sample costs in AWS calls (BENCHMARKS.md, "Background samples during a wait"):
    // the wait's record read and written, one GetMetricData.
    let per_sample: BTreeMap<&String, f64> = calls_after
        .iter()
        .map(|(op, n)| {
            (
                op,
                (n - calls_before.get(op).copied().unwrap_or(0)) as f64 / (to - from) as f64,
            )
        })
        .collect();
    eprintln!(
        "SCHEDULED: {after} history events while waiting, unchanged over samples {from}..{to}; \
         check-metrics' calls per sample: {per_sample:?}"
    );
    for op in [
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "monitoring:GetMetricData",
    ] {
        assert!(
            per_sample
                .iter()
                .any(|(k, n)| k.as_str() == op && (*n - 1.0).abs() < 0.5),
            "{op} once a sample: {per_sample:?}"
        );
    }
    let stored = aws
        .state()
        .get_wait(&name, &exec)
        .await?
        .and_then(|w| w.samples)
        .context("samples")?;
    assert_eq!(
        stored.latest["phase"], "running",
        "healthy samples: the analysis goes on ({})",
        stored.latest
    );
    let invoked: Vec<Value> = aws
        .local
        .scheduler_invocations()?
        .into_iter()
        .filter(|i| {
            i["schedule"]
                .as_str()
                .is_some_and(|s| s.ends_with(&schedule))
        })
        .collect();
    assert!(
        invoked.iter().all(|i| i["status"] == "invoked"),
        "EventBridge Scheduler invoked check-metrics as its role: {invoked:?}"
    );

    // The errors reach the failure condition: the next sample fails the wait's callback.
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 9.0)
        .await?;
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(status, "FAILED", "{error:?}");
    assert_eq!(error.as_deref(), Some("RolledBack"));
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)]),
        "traffic back on the stable version"
    );
    let record = aws.rollout(&name, &exec).await?.context("its record")?;
    assert_eq!(record.status, "rolledBack");
    let reason = serde_json::to_string(&record.history)?;
    assert!(
        reason.contains("error-count"),
        "the failing metric is named: {reason}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while aws
        .local
        .schedule_names(SAMPLE_SCHEDULE_GROUP)?
        .contains(&schedule)
    {
        anyhow::ensure!(Instant::now() < deadline, "the schedule is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let denied = aws.local.iam_denials()?;
    assert!(
        denied.is_empty(),
        "every call allowed by template.yaml: {denied:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_resumes_a_sampled_wait_and_its_schedule_goes() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, exec) = paused_rollout_with(&aws, &sfn, "schedr", sampled_every_minute).await?;
    let name = cell_name(&w);
    until_taken(&aws, &name, &exec, 1).await?;
    let wait = aws
        .state()
        .get_wait(&name, &exec)
        .await?
        .context("a wait")?;
    wait.samples.as_ref().context("samples")?;
    let schedule = okra_core::schedule::schedule_name(&name, &exec, wait.step);
    crate::common::service::resume_to_the_end(&aws, &sfn, &name, &exec).await?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    assert!(
        !aws.local
            .schedule_names(SAMPLE_SCHEDULE_GROUP)?
            .contains(&schedule),
        "the wait's end deleted its schedule"
    );
    // The samples' verdict came back to the state machine: the states after the wait read it.
    let events = history(&sfn, &exec).await?;
    assert!(
        events
            .iter()
            .any(|(_, s)| s.as_deref() == Some("Samples taken while paused")),
        "{events:?}"
    );
    Ok(())
}
