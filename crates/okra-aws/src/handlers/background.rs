//! check-metrics' other input: a background sample that an EventBridge Scheduler schedule takes
//! while the rollout waits ([`okra_core::schedule`]), instead of the state machine.
//!
//! The invocation names the cell, the execution, the step and its due time. The execution's
//! wait (the state table) holds the analysis's request and where it stands; the sample goes on
//! from there, is stored with the wait once per due time, and a verdict that ends the wait
//! (failed, error) fails the wait's callback with `BackgroundAnalysisFailed`, which rolls back.
//! A schedule whose wait is over, or whose analysis is decided (every metric took its
//! `count`), deletes itself. An error (a throttled provider) fails the
//! invocation: EventBridge Scheduler retries it within the interval, nothing was stored.

use serde::{Deserialize, Serialize};

use super::check::{self, CheckInput, CheckOutput, Providers};
use crate::error::{OkraError, Result};
use crate::ports::{DatadogPort, HttpPort, InvokePort, MetricsPort};
use crate::state::{ExecutionError, ExecutionsPort, SchedulesPort, StatePort, WaitSamples};
use okra_core::schedule::{self, FoundWait, ScheduledSample, Todo};

/// check-metrics' input: a sample of the state machine's, or one of a schedule's.
#[derive(Debug, Clone)]
pub enum CheckRequest {
    /// The state machine's sample (an analysis step, a background sample after a step).
    Sample(Box<CheckInput>),
    /// A schedule's sample during a wait (`{"scheduledSample": {…}}`).
    Scheduled(ScheduledSample),
}

/// Reads check-metrics' input, naming the field that is wrong.
pub fn parse(v: serde_json::Value) -> Result<CheckRequest> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Scheduled {
        scheduled_sample: ScheduledSample,
    }
    if v.get("scheduledSample").is_some() {
        let s: Scheduled = crate::parse_input(v)?;
        return Ok(CheckRequest::Scheduled(s.scheduled_sample));
    }
    Ok(CheckRequest::Sample(Box::new(crate::parse_input(v)?)))
}

/// What a scheduled invocation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum ScheduledOutput {
    /// A sample was taken and stored with the wait.
    Sampled {
        /// Its verdict.
        phase: okra_core::analysis::Phase,
        /// Why.
        reason: String,
        /// How many samples the schedule took for this wait.
        taken: u64,
        /// The verdict ended the wait (its callback failed: the rollout rolls back).
        ended_wait: bool,
    },
    /// This due time was sampled before (EventBridge Scheduler delivers at least once).
    Duplicate,
    /// The wait is over: the schedule was deleted.
    Retired {
        /// Why.
        reason: String,
    },
}

/// check-metrics' answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CheckAnswer {
    /// To the state machine.
    Sample(Box<CheckOutput>),
    /// To EventBridge Scheduler (read only in the logs).
    Scheduled(ScheduledOutput),
}

/// Takes one scheduled sample.
pub async fn sample<M, D, H, L, S, X, C>(
    providers: &Providers<'_, M, D, H, L>,
    state: &S,
    executions: &X,
    schedules: &C,
    sample: ScheduledSample,
) -> Result<ScheduledOutput>
where
    M: MetricsPort,
    D: DatadogPort,
    H: HttpPort,
    L: InvokePort,
    S: StatePort,
    X: ExecutionsPort,
    C: SchedulesPort,
{
    let (cell, execution) = (sample.cell.as_str(), sample.execution.as_str());
    let wait = state.get_wait(cell, execution).await?;
    let found = wait.as_ref().map(|w| FoundWait {
        step: w.step,
        sampled: w.samples.is_some(),
        last: w.samples.as_ref().and_then(|s| s.last.as_deref()),
    });
    match schedule::what_to_do(&sample, found) {
        Todo::Sample => {}
        Todo::Duplicate => return Ok(ScheduledOutput::Duplicate),
        Todo::Retire { reason } => {
            let name = schedule::schedule_name(cell, execution, sample.step);
            schedules.delete(&name).await?;
            tracing::info!(cell, execution, schedule = name, %reason, "schedule retired");
            return Ok(ScheduledOutput::Retired { reason });
        }
    }
    // Todo::Sample: the wait is there and keeps samples.
    let Some((token, samples)) = wait.and_then(|w| Some((w.token, w.samples?))) else {
        return Ok(ScheduledOutput::Duplicate);
    };
    let mut request = samples.request.clone();
    let previous = samples
        .latest
        .get("metrics")
        .cloned()
        .unwrap_or_else(|| serde_json::json!([]));
    match request.as_object_mut() {
        Some(o) => {
            o.insert("previous".into(), previous);
        }
        None => {
            return Err(OkraError::InvalidInput(format!(
                "the wait of execution {execution} keeps no sample request"
            )));
        }
    }
    let input: CheckInput = crate::parse_input(request)?;
    let out = check::handle(providers, input).await?;
    let taken = samples.taken + 1;
    let stored = WaitSamples {
        latest: serde_json::to_value(&out).unwrap_or_default(),
        taken,
        last: Some(sample.at.clone()),
        ..samples
    };
    if !state
        .record_sample(cell, execution, &token, &stored)
        .await?
    {
        // Another delivery of this due time stored first, or the wait changed meanwhile.
        return Ok(ScheduledOutput::Duplicate);
    }
    let ended_wait = schedule::ends_wait(out.phase);
    tracing::info!(cell, execution, phase = %out.phase, taken, ended_wait, "background sample");
    if ended_wait {
        // The cause is the verdict's reason, as the state machine's own background samples
        // give it.
        executions
            .send_task_failure(
                &token,
                ExecutionError::BackgroundAnalysisFailed,
                &out.reason,
            )
            .await?;
    }
    // No sample is due after a verdict that ended the wait, or once every metric is decided
    // (each took its `count`).
    if ended_wait || out.done {
        schedules
            .delete(&schedule::schedule_name(cell, execution, sample.step))
            .await?;
    }
    Ok(ScheduledOutput::Sampled {
        phase: out.phase,
        reason: out.reason,
        taken,
        ended_wait,
    })
}
