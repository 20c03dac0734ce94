//! Deployment windows (`windows: {timeZone, allow, deny}`, okra_core::windows) through the
//! shipped state machine on the local Step Functions service, with IAM enforced from
//! template.yaml: a weight step outside an open window holds at its current weights in a
//! callback whose time-out is the time until the window opens (nothing runs while it waits),
//! then goes on; an abort in a closed window rolls back at once; resume is refused there.
//! Windows here are RRULEs with a start of their own (seconds from now), so that they open and
//! close within a test.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use okra_core::vocab::WaitKind;
use serde_json::{Value, json};

use crate::common::service::{
    api, finished, history, serving_then_a_new_version, setup, start, waiting,
};
use crate::common::{cell, cell_name, input};

/// An RRULE window that occurs once, `from_now` from now (`DTSTART` in UTC, to the second).
fn once(from_now: Duration, duration: &str) -> Value {
    let at = humantime::format_rfc3339_seconds(SystemTime::now() + from_now).to_string();
    let stamp: String = at
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    json!({"rrule": format!("DTSTART:{stamp}Z\nRRULE:FREQ=DAILY;COUNT=1"), "duration": duration})
}

/// The okra events execution `exec` put, by detail-type.
fn events_of(aws: &crate::common::Aws, exec: &str) -> Result<Vec<Value>> {
    Ok(aws
        .local
        .okra_events()?
        .into_iter()
        .filter(|e| e["detail"]["execution"] == exec)
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_started_in_a_denied_window_holds_then_moves_when_it_opens() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let w = aws.world("win").await?;
    let name = cell_name(&w);
    let mut spec = cell(&w, json!([{"setWeight": 30}, {"setWeight": 100}]));
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 0.0)
        .await?;
    serving_then_a_new_version(&aws, &sfn, &w, &spec).await?;
    // A freeze from now for 8 seconds.
    spec["windows"] = json!({"deny": [once(Duration::ZERO, "8s")]});
    let exec = format!("{name}-roll");
    start(&sfn, &exec, &input(spec)).await?;
    waiting(&aws, &sfn, &name, &exec, Some(WaitKind::Window), None).await?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100), ("1.1.0".to_string(), 0)]),
        "no traffic moves in the freeze (the new groups stand by at 0 %)"
    );
    // The API says until when; an idle hold adds nothing to the execution's history.
    let (code, body) = api(&aws, "GET", &format!("/cells/{name}/rollouts/{exec}"))?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["wait"]["kind"], "window", "{body}");
    assert!(
        body["wait"]["leftSeconds"].as_u64().is_some_and(|s| s <= 9),
        "{body}"
    );
    let before = history(&sfn, &exec).await?.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        history(&sfn, &exec).await?.len(),
        before,
        "a hold is one callback"
    );

    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(status, "SUCCEEDED", "{error:?}");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    let events = events_of(&aws, &exec)?;
    let held = events
        .iter()
        .find(|e| e["detail-type"] == "Rollout Held")
        .context("a Rollout Held event")?;
    assert_eq!(held["detail"]["step"], 0, "{held}");
    assert!(held["detail"]["detail"]["until"].is_string(), "{held}");
    let record = aws.rollout(&name, &exec).await?.context("the record")?;
    assert!(
        record
            .history
            .iter()
            .any(|h| h.event == okra_core::vocab::HistoryEvent::Held)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_that_meets_a_freeze_holds_and_an_abort_rolls_back_at_once() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let w = aws.world("frz").await?;
    let name = cell_name(&w);
    let mut spec = cell(
        &w,
        json!([{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}]),
    );
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 0.0)
        .await?;
    serving_then_a_new_version(&aws, &sfn, &w, &spec).await?;
    // A freeze that begins in 10 seconds and lasts an hour.
    let freeze = Duration::from_secs(10);
    let begins = SystemTime::now() + freeze;
    spec["windows"] = json!({"timeZone": "Europe/Paris", "deny": [once(freeze, "1h")]});
    let exec = format!("{name}-roll");
    start(&sfn, &exec, &input(spec)).await?;
    waiting(&aws, &sfn, &name, &exec, Some(WaitKind::Person), None).await?;
    let held = BTreeMap::from([("1.0.0".to_string(), 70), ("1.1.0".to_string(), 30)]);
    assert_eq!(
        aws.weights_by_version(&w).await?,
        held,
        "30 % before the freeze"
    );
    // Resumed in the freeze: the next weight step holds at 30 %.
    if let Ok(left) = begins.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_secs(1)).await;
    }
    let (code, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(code, 202, "{body}");
    waiting(&aws, &sfn, &name, &exec, Some(WaitKind::Window), None).await?;
    assert_eq!(aws.weights_by_version(&w).await?, held, "held at 30 %");
    // Resume cannot open a window; abort is never held.
    let (code, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deployment window is closed"),
        "{body}"
    );
    let (code, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/abort"),
    )?;
    assert_eq!(code, 202, "{body}");
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(status, "FAILED", "{error:?}");
    assert_eq!(error.as_deref(), Some("RolledBack"));
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)]),
        "rolled back in the freeze"
    );
    Ok(())
}
