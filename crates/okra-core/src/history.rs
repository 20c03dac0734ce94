//! What an execution of the rollout state machine costs in Step Functions history events.
//!
//! A Standard execution fails when its history reaches 25,000 events, and no Catch sees it
//! (Step Functions developer guide, "Step Functions service quotas": 25,000 events in a single
//! execution history). So the rollout's loops are bounded here, from the plan:
//! - the readiness loop polls at most [`MAX_READINESS_POLLS`] times, its interval growing with
//!   the gate's timeout ([`ReadinessPlan::for_timeout`]);
//! - the steps, analyses and timed pauses of a plan cost [`Budget::steps`] events at most,
//!   which validation keeps under [`STEPS_BUDGET`];
//! - a wait for a person (a pause until resumed, an inconclusive analysis) costs a few events
//!   however long it lasts, but a background analysis wakes it at every interval: after
//!   [`Budget::max_wakes`] wakes the rollout goes on in a new execution (AWS's documented way
//!   out of the quota), which picks the rollout up where the listener shows it.
//!
//! The event counts follow AWS's history model (developer guide, "Execution history events"): a
//! Task state that calls a Lambda function writes `TaskStateEntered`, `LambdaFunctionScheduled`,
//! `LambdaFunctionStarted`, `LambdaFunctionSucceeded`, `TaskStateExited`; a callback task
//! (`lambda:invoke.waitForTaskToken`) `TaskStateEntered`, `TaskScheduled`, `TaskStarted`,
//! `TaskSubmitted`, `TaskSucceeded` (or `TaskTimedOut`), `TaskStateExited`; a Pass, Choice or Wait
//! state its `Entered` and `Exited`. Retries add their attempt's events; the budgets leave a
//! fifth of the quota for them.

use serde::{Deserialize, Serialize};

use crate::decision::{Plan, PlanStep};

/// Step Functions' quota of history events in one Standard execution.
pub const HISTORY_LIMIT: u64 = 25_000;
/// What the plan-dependent part of an execution may cost: four fifths of the quota, the rest
/// left for retries and the fixed states.
pub const STEPS_BUDGET: u64 = 20_000;
/// A Task state calling a Lambda function.
pub const TASK: u64 = 5;
/// A callback task.
pub const CALLBACK: u64 = 6;
/// A Pass, Choice or Wait state.
pub const FLOW: u64 = 2;
/// The most readiness polls in one execution.
pub const MAX_READINESS_POLLS: u64 = 500;
/// The shortest time between readiness polls.
pub const READINESS_POLL_SECONDS: u64 = 10;

/// The readiness loop: poll every `poll_seconds`, at most `max_polls` times (the gate's timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessPlan {
    /// Seconds between polls.
    pub poll_seconds: u64,
    /// Polls before giving up.
    pub max_polls: u64,
    /// The gate: the share of healthy targets every group needs, before the first weight and
    /// before each weight change ([`crate::health`]).
    #[serde(default)]
    pub min_healthy_percent: u8,
}

impl ReadinessPlan {
    /// The loop for a timeout: every [`READINESS_POLL_SECONDS`], or less often for a long
    /// timeout, so that it never polls more than [`MAX_READINESS_POLLS`] times.
    pub fn for_timeout(timeout: std::time::Duration) -> Self {
        Self::for_gate(timeout, 0)
    }

    /// [`ReadinessPlan::for_timeout`] with the gate's share.
    pub fn for_gate(timeout: std::time::Duration, min_healthy_percent: u8) -> Self {
        let secs = timeout.as_secs();
        let poll_seconds = secs
            .div_ceil(MAX_READINESS_POLLS)
            .max(READINESS_POLL_SECONDS);
        Self {
            poll_seconds,
            max_polls: secs.div_ceil(poll_seconds).max(1),
            min_healthy_percent,
        }
    }

    /// Events of the whole loop at worst: per poll a Choice, a Pass, a Choice, a Wait and a Task.
    pub fn events(&self) -> u64 {
        self.max_polls * (3 * FLOW + FLOW + TASK)
    }
}

/// An answer to a timed wait (a pause, an analysis's interval): taking it and the Choice on it.
const ANSWER: u64 = TASK + FLOW;
/// A background analysis sample and the Choice on its phase.
const BACKGROUND_SAMPLE: u64 = TASK + FLOW;
/// The states around every step: MoreSteps?, LoadStep, StepType?, RecordStep,
/// BackgroundAfterStep?, PollAfterStep, SignalAfterStep?, NextStep.
const PER_STEP: u64 = 6 * FLOW + 2 * TASK;
/// One wake of a wait for a person: the Choice before it, the callback, (woken by the
/// interval) a background sample, taking the signal, the Choice on it, the count and the
/// Choice on the time-out left.
pub const WAKE: u64 = FLOW + CALLBACK + BACKGROUND_SAMPLE + TASK + FLOW + FLOW + FLOW;
/// A wait for a person from its start to its time-out: the Pass that starts its time-out, and
/// at the end the record, the Choice on `onTimeout` and the Pass that aborts.
const PERSON_WAIT: u64 = FLOW + TASK + 2 * FLOW;
/// The states of an execution outside the steps: Init, TakeLock, Discover, Decide, record,
/// target groups, standby, the readiness loop's own ends, the finish and the rollback path (or
/// the hand-over to a new execution: a last signal check, the record, the dispatcher).
const FIXED: u64 = 1 + 3 * FLOW + 3 * TASK + FLOW + 2 * TASK + 4 * FLOW + 3 * TASK + 3 * FLOW + 1;

/// What a plan costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Events of the steps at worst (no retries, no waits for a person beyond one wake each).
    pub steps: u64,
    /// Wakes of waits for a person one execution may take before it goes on in a new one.
    pub max_wakes: u64,
}

/// The events one step costs at worst, and its own share: `samples` is the analysis's most
/// samples (the largest `count` of its metrics).
pub fn step_events(step: &PlanStep, samples: u64, background_interval: Option<u64>) -> u64 {
    let background = background_interval.map_or(0, |_| BACKGROUND_SAMPLE);
    PER_STEP
        + background
        + match step {
            PlanStep::SetWeight { .. } => TASK,
            // Sampled by a schedule: the wait is one callback (a Choice, a Pass, the callback, the
            // answer), then the samples' verdict is read back (a Task).
            PlanStep::Pause {
                seconds: Some(_),
                scheduled: true,
                ..
            } => ANSWER + 2 * FLOW + CALLBACK + TASK,
            PlanStep::Pause {
                seconds: None,
                scheduled: true,
                ..
            } => TASK + PERSON_WAIT + WAKE + TASK + FLOW,
            PlanStep::Pause {
                seconds: Some(s), ..
            } => {
                ANSWER
                    + match background_interval {
                        // A timed pause with a background analysis samples at its interval meanwhile:
                        // a Pass to begin, per slice a Choice, a callback, a sample and a Pass, then the
                        // last Choice and the rest's callback.
                        Some(i) => {
                            3 * FLOW
                                + CALLBACK
                                + (s / i.max(1)) * (2 * FLOW + CALLBACK + BACKGROUND_SAMPLE)
                        }
                        // A Choice, a Pass and the callback.
                        None => 2 * FLOW + CALLBACK,
                    }
            }
            // Recorded, then one wake (more wakes count against `max_wakes`), or the time-out.
            PlanStep::Pause { seconds: None, .. } => TASK + PERSON_WAIT + WAKE,
            // The initial delay's Choice and callback, the analysis's first state, its samples
            // (Task, Choice, the interval's callback), an answer, and an inconclusive end:
            // recorded and one wake.
            PlanStep::Analysis { .. } => {
                2 * FLOW
                    + CALLBACK
                    + samples.max(1) * (TASK + FLOW + CALLBACK)
                    + ANSWER
                    + TASK
                    + PERSON_WAIT
                    + WAKE
            }
        }
}

/// What each step of `plan` costs at worst: `samples(i)` is the most samples of step `i`'s
/// analysis.
pub fn step_costs(plan: &Plan, samples: impl Fn(usize) -> u64) -> Vec<u64> {
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let bg = plan
                .background
                .as_ref()
                .filter(|b| i >= b.starting_step)
                .map(|b| b.interval_seconds);
            step_events(s, samples(i), bg)
        })
        .collect()
}

/// The budget of `plan`: `samples(i)` is the most samples of step `i`'s analysis.
pub fn budget(plan: &Plan, readiness: &ReadinessPlan, samples: impl Fn(usize) -> u64) -> Budget {
    let steps: u64 = step_costs(plan, samples).iter().sum::<u64>() + readiness.events() + FIXED;
    Budget {
        steps,
        max_wakes: STEPS_BUDGET.saturating_sub(steps) / WAKE,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn readiness_polls_are_bounded_whatever_the_timeout() {
        let r = ReadinessPlan::for_timeout(Duration::from_secs(600));
        assert_eq!((r.poll_seconds, r.max_polls), (10, 60));
        let year = ReadinessPlan::for_timeout(Duration::from_secs(365 * 86_400));
        assert!(year.max_polls <= MAX_READINESS_POLLS, "{year:?}");
        assert!(year.poll_seconds * year.max_polls >= 365 * 86_400);
        assert!(year.events() < HISTORY_LIMIT / 2);
        assert_eq!(ReadinessPlan::for_timeout(Duration::ZERO).max_polls, 1);
    }

    #[test]
    fn a_short_plan_leaves_room_for_many_wakes() {
        let plan = Plan {
            steps: vec![
                PlanStep::SetWeight { weight: 30 },
                PlanStep::Pause {
                    seconds: None,
                    sampled: None,
                    scheduled: false,
                    wait: None,
                },
                PlanStep::SetWeight { weight: 100 },
            ],
            background: None,
            max_wakes: 0,
        };
        let b = budget(
            &plan,
            &ReadinessPlan::for_timeout(Duration::from_secs(600)),
            |_| 1,
        );
        assert!(b.steps < 1_500, "{b:?}");
        assert!(b.max_wakes > 500, "{b:?}");
        assert!(b.steps + b.max_wakes * WAKE <= STEPS_BUDGET);
    }
}
