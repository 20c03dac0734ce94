//! A wait for a person that nobody answers ends at its time-out (`pause: {timeout, onTimeout}`):
//! the callback's own `TimeoutSeconds`, so nothing runs while it waits. Through the shipped state
//! machine on the local Step Functions service, whose `--person-waits=0.01` makes a minute of a
//! person's time-out 0.6 s (tools/sfn-local/server.mjs), with IAM enforced from template.yaml.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::common::cell_name;
use crate::common::service::{api, builder, finished, history, paused_rollout_with, setup_on};

static STACK: std::sync::OnceLock<std::result::Result<okra_testkit::LocalAws, String>> =
    std::sync::OnceLock::new();

async fn setup() -> Result<(crate::common::Aws, aws_sdk_sfn::Client)> {
    let local = crate::common::stack_in(&STACK, || {
        builder(None).sfn_arg("--person-waits=0.01".to_string())
    })?;
    setup_on(local).await
}

/// The history's `timedOut` entries.
async fn timed_out_entries(aws: &crate::common::Aws, cell: &str, exec: &str) -> Result<usize> {
    let record = aws.rollout(cell, exec).await?.context("the record")?;
    Ok(record
        .history
        .iter()
        .filter(|h| h.event == okra_core::vocab::HistoryEvent::TimedOut)
        .count())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_nobody_answers_aborts_at_its_time_out() -> Result<()> {
    let (aws, sfn) = setup().await?;
    let (w, exec) = paused_rollout_with(&aws, &sfn, "tmo", |spec| {
        spec["canary"]["steps"][1]["pause"] = json!({"timeout": "5m"});
    })
    .await?;
    let name = cell_name(&w);
    // The API (and `okra rollout status`) shows where it waits and for how long at most.
    let (code, body) = api(&aws, "GET", &format!("/cells/{name}/rollouts/{exec}"))?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["wait"]["kind"], "person", "{body}");
    let left = body["wait"]["leftSeconds"]
        .as_u64()
        .context("leftSeconds")?;
    assert!((1..=300).contains(&left), "{body}");

    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(status, "FAILED", "{error:?}");
    assert_eq!(error.as_deref(), Some("RolledBack"));
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)]),
        "abort (the default): traffic back on the stable version"
    );
    let record = aws.rollout(&name, &exec).await?.context("the record")?;
    assert_eq!(record.status, "rolledBack");
    assert_eq!(timed_out_entries(&aws, &name, &exec).await?, 1);
    let text = serde_json::to_string(&record.history)?;
    assert!(text.contains("time-out of 300 s"), "{text}");
    let events = history(&sfn, &exec).await?;
    assert!(
        events
            .iter()
            .any(|(t, s)| t == "TaskTimedOut" || s.as_deref() == Some("Wait for person timed out")),
        "{events:?}"
    );
    let denied = aws.local.iam_denials()?;
    assert!(denied.is_empty(), "{denied:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_that_times_out_with_promote_goes_on() -> Result<()> {
    let (aws, sfn) = setup().await?;
    let (w, exec) = paused_rollout_with(&aws, &sfn, "tmp", |spec| {
        spec["canary"]["steps"][1]["pause"] = json!({"timeout": "5m", "onTimeout": "promote"});
    })
    .await?;
    let name = cell_name(&w);
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(status, "SUCCEEDED", "{error:?}");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    assert_eq!(timed_out_entries(&aws, &name, &exec).await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_who_answers_in_time_beats_the_time_out() -> Result<()> {
    let (aws, sfn) = setup().await?;
    let (w, exec) = paused_rollout_with(&aws, &sfn, "tmr", |spec| {
        // An hour: 36 s here, far longer than the resume takes.
        spec["canary"]["steps"][1]["pause"] = json!({"timeout": "1h"});
    })
    .await?;
    let name = cell_name(&w);
    crate::common::service::resume_to_the_end(&aws, &sfn, &name, &exec).await?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    assert_eq!(timed_out_entries(&aws, &name, &exec).await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inconclusive_analysis_nobody_answers_goes_on_at_its_time_out() -> Result<()> {
    let (aws, sfn) = setup().await?;
    let w = aws.world("tmi").await?;
    let name = cell_name(&w);
    let mut spec = crate::common::cell(
        &w,
        json!([{"setWeight": 30},
               {"analysis": {"templates": [{"templateName": "errors"}],
                             "timeout": "5m", "onTimeout": "promote"}},
               {"setWeight": 100}]),
    );
    // A metric nobody publishes: no data, an inconclusive verdict, a wait for a person.
    spec["analysisTemplates"][0]["metrics"][0]["provider"]["cloudwatch"]["metricDataQueries"][0]
        ["metricStat"]["metricName"] = json!("NobodyPublishesThis");
    crate::common::service::serving_then_a_new_version(&aws, &sfn, &w, &spec).await?;
    let exec = format!("{name}-roll");
    crate::common::service::start(&sfn, &exec, &crate::common::input(spec)).await?;
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(
        status,
        "SUCCEEDED",
        "{error:?}: {:?}",
        history(&sfn, &exec).await?
    );
    assert_eq!(timed_out_entries(&aws, &name, &exec).await?, 1);
    let record = aws.rollout(&name, &exec).await?.context("the record")?;
    assert!(
        record
            .history
            .iter()
            .any(|h| h.detail.get("inconclusive").is_some()),
        "it waited because the analysis was inconclusive: {:?}",
        record.history
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    Ok(())
}
