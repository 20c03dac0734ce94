//! A wait for a person that a background analysis wakes again and again goes on in a new
//! execution before Step Functions' history quota ends it (developer guide, "Step Functions
//! service quotas": 25,000 events per execution history, and the documented way out: continue
//! the work in a new execution). Each execution of the chain stays small; the last one
//! finishes the rollout when a person promotes it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::cell_name;
use crate::common::service::{api, finished, history, paused_rollout_with, setup};
use anyhow::{Context as _, Result};
use okra_aws::state::StatePort;
use okra_core::history::{STEPS_BUDGET, WAKE};
use serde_json::{Value, json};

/// A plan that leaves room for about 5 wakes: a background analysis sampling every second from the
/// pause on, and after the pause a timed pause of 1,150 s during which it samples every second
/// (1,150 × 17 events in the budget; the person's promote-full skips it).
fn spend_the_budget(spec: &mut Value) {
    spec["canary"]["steps"] = json!([
        {"setWeight": 30}, {"pause": {}}, {"pause": {"duration": "1150s"}}, {"setWeight": 100}
    ]);
    spec["canary"]["analysis"] =
        json!({"templates": [{"templateName": "errors"}], "startingStep": 1});
    spec["analysisTemplates"][0]["metrics"][0]["interval"] = json!("1s");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_woken_by_a_background_analysis_goes_on_in_new_executions() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (w, first) = paused_rollout_with(&aws, &sfn, "cont", spend_the_budget).await?;
    let name = cell_name(&w);
    let stored = aws.state().get_cell(&name).await?.context("the cell")?;
    let cell = stored.spec.validate()?;
    let plan = cell.plan();
    assert!(
        (3..=8).contains(&plan.max_wakes),
        "the spec leaves room for a few wakes: {}",
        plan.max_wakes
    );

    // The first execution wakes that often, then records itself as continued and frees the cell;
    // the dispatcher starts the next, which waits at the same pause.
    let deadline = Instant::now() + Duration::from_secs(90);
    let second = loop {
        let lock = aws.state().get_lock(&name).await?;
        if let Some(l) = lock.filter(|l| l.execution != first)
            && aws.state().get_wait(&name, &l.execution).await?.is_some()
        {
            break l.execution;
        }
        anyhow::ensure!(Instant::now() < deadline, "no second execution took over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, _) = finished(&sfn, &first).await?;
    assert_eq!(status, "SUCCEEDED", "the first execution ends as continued");
    let record = aws.rollout(&name, &first).await?.context("its record")?;
    assert_eq!(record.status, "continued");

    // The emulated history (AWS's event model) stays within what okra's budget assumes.
    let events = history(&sfn, &first).await?;
    let wakes = events
        .iter()
        .filter(|(t, s)| t == "PassStateEntered" && s.as_deref() == Some("Count wake"))
        .count() as u64;
    assert_eq!(wakes, plan.max_wakes);
    assert!(
        (events.len() as u64) < STEPS_BUDGET.min(400 + wakes * WAKE),
        "{} events for {wakes} wakes",
        events.len()
    );
    eprintln!(
        "CONTINUATION first execution: {} history events with {wakes} wakes (model: {WAKE} per wake)",
        events.len()
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 70), ("1.1.0".to_string(), 30)]),
        "traffic held through the hand-over"
    );

    // A person promotes the current execution to 100 %; it finishes the rollout.
    let (code, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{second}/promote-full"),
    )?;
    assert_eq!(code, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let exec = aws.state().get_lock(&name).await?.map(|l| l.execution);
        match exec {
            // No lock between two executions of a hand-over either: done when the newest
            // rollout has ended, not gone on in another execution.
            None if aws
                .state()
                .list_rollouts(&name, 1)
                .await?
                .first()
                .is_some_and(|r| {
                    !matches!(
                        r.status,
                        okra_core::vocab::RolloutStatus::Running
                            | okra_core::vocab::RolloutStatus::Continued
                    )
                }) =>
            {
                break;
            }
            None => {}
            // It may have gone on once more before the signal reached it: answer that one.
            Some(e) if e != second && aws.state().get_wait(&name, &e).await?.is_some() => {
                api(
                    &aws,
                    "POST",
                    &format!("/cells/{name}/rollouts/{e}/promote-full"),
                )?;
            }
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "the rollout did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    Ok(())
}
