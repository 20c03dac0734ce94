//! The per-metric state machine of Argo Rollouts, and the verdict over all metrics.
//!
//! One sample of a metric becomes a [`Measurement`] ([`evaluate_sample`]); a metric's
//! measurements so far become its [`Phase`] ([`metric_status`], [`metric_phase`]); the phases of
//! all metrics become the analysis's phase ([`overall`], [`overall_reason`]).
//!
//! Sample rules (Argo Rollouts' `evaluateResult`):
//!
//! | conditions written | success | failure | sample |
//! |---|---|---|---|
//! | neither | – | – | Successful (measured only) |
//! | only `successCondition` | true | – | Successful |
//! | only `successCondition` | false | – | **Failed** |
//! | only `failureCondition` | – | false | Successful |
//! | only `failureCondition` | – | true | Failed |
//! | both | true | false | Successful |
//! | both | any | true | Failed (failure wins) |
//! | both | false | false | Inconclusive |
//!
//! Before any condition: no datapoint (or an empty series) is Inconclusive, because no traffic
//! is not healthy; NaN or ±infinity, a condition that does not evaluate, or one that gives no
//! bool is an Error.
//!
//! Metric rules (Argo Rollouts' `assessMetricStatus`), checked after every sample in this order:
//! more failed samples than `failureLimit` → Failed; more inconclusive samples than
//! `inconclusiveLimit` → Inconclusive; more consecutive errors than `consecutiveErrorLimit` →
//! Error (any sample that is not an error resets the run of errors); `count` samples that are not
//! errors → Successful. Otherwise Running. The first of these that holds is final: later
//! samples do not change it. `count: 0` means no count: the metric runs until the step ends.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::condition::{Compiled, ConditionError, MeasuredValue};
use crate::spec::Metric;

/// The phase of a sample, of a metric, or of a whole analysis.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::AsRefStr,
    strum::EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
    schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum Phase {
    /// Good: go on.
    Successful,
    /// Bad: roll back.
    Failed,
    /// Neither good nor bad (no data, or between the conditions): stop and wait for a person.
    Inconclusive,
    /// The numbers could not be read or judged, too often in a row.
    Error,
    /// Not decided yet: more samples to take.
    Running,
}

impl Phase {
    /// Whether the phase is final (anything but Running).
    pub fn is_completed(self) -> bool {
        self != Phase::Running
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message of a sample without a datapoint.
pub const NO_DATA: &str = "no data: no traffic is not healthy";

/// One sample of one metric, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// What was measured; absent when there was no datapoint, when the provider failed, or when
    /// the value was not a finite number (the message shows it then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<MeasuredValue>,
    /// Successful, Failed, Inconclusive or Error (Running for a sample still being taken).
    pub phase: Phase,
    /// Why, in one line.
    pub message: String,
    /// When the sample was taken (ISO 8601, given by the caller).
    pub at: String,
}

impl Measurement {
    /// A sample whose provider could not answer (a throttled or failed query): an Error.
    pub fn provider_error(metric: &str, message: impl fmt::Display, at: &str) -> Self {
        Measurement {
            value: None,
            phase: Phase::Error,
            message: format!("metric {metric}: the provider failed: {message}"),
            at: at.to_string(),
        }
    }

    fn error(value: Option<MeasuredValue>, error: &ConditionError, at: &str) -> Self {
        Measurement {
            value,
            phase: Phase::Error,
            message: error.to_string(),
            at: at.to_string(),
        }
    }
}

/// Judges one sample of `metric` against its compiled conditions (see the module's table).
///
/// `value` is `None` when the provider returned no datapoint; `at` is the sample's time (ISO
/// 8601), which this crate never reads from a clock. The metric's name in messages is the
/// compiled one.
pub fn evaluate_sample(
    metric: &Metric,
    compiled: &Compiled,
    value: Option<MeasuredValue>,
    at: &str,
) -> Measurement {
    debug_assert_eq!(
        metric.name,
        compiled.metric(),
        "conditions of another metric"
    );
    let value = match value {
        Some(v) if !v.is_empty() => v,
        _ => {
            return Measurement {
                value: None,
                phase: Phase::Inconclusive,
                message: NO_DATA.to_string(),
                at: at.to_string(),
            };
        }
    };

    let success = match compiled.success().map(|c| c.evaluate(&value)).transpose() {
        Ok(s) => s,
        Err(e) => return Measurement::error(finite_only(value), &e, at),
    };
    let failure = match compiled.failure().map(|c| c.evaluate(&value)).transpose() {
        Ok(f) => f,
        Err(e) => return Measurement::error(finite_only(value), &e, at),
    };
    if success.is_none()
        && failure.is_none()
        && let Some(bad) = value.first_non_finite()
    {
        // No condition ran, but a NaN is still not a measurement.
        let e = ConditionError::NotFinite {
            metric: compiled.metric().to_string(),
            value: value.to_string(),
            bad: super::condition::short_number(bad),
        };
        return Measurement::error(None, &e, at);
    }

    let quote = |c: Option<&super::condition::Condition>| {
        c.map(|c| format!("{:?}", c.expression()))
            .unwrap_or_default()
    };
    let s_text = quote(compiled.success());
    let f_text = quote(compiled.failure());
    let (phase, message) = match (success, failure) {
        (None, None) => (
            Phase::Successful,
            format!("result {value}: no condition, measured only"),
        ),
        (Some(true), None) => (
            Phase::Successful,
            format!("result {value} met successCondition {s_text}"),
        ),
        (Some(false), None) => (
            Phase::Failed,
            format!("result {value} did not meet successCondition {s_text}"),
        ),
        (None, Some(false)) => (
            Phase::Successful,
            format!("result {value} did not meet failureCondition {f_text}"),
        ),
        (_, Some(true)) => (
            Phase::Failed,
            format!("result {value} met failureCondition {f_text}"),
        ),
        (Some(true), Some(false)) => (
            Phase::Successful,
            format!("result {value} met successCondition {s_text}"),
        ),
        (Some(false), Some(false)) => (
            Phase::Inconclusive,
            format!(
                "result {value} met neither successCondition {s_text} nor failureCondition {f_text}"
            ),
        ),
    };
    Measurement {
        value: Some(value),
        phase,
        message,
        at: at.to_string(),
    }
}

/// JSON cannot hold NaN: keep the value only if it is all finite numbers.
fn finite_only(value: MeasuredValue) -> Option<MeasuredValue> {
    value.first_non_finite().is_none().then_some(value)
}

/// A metric's phase and the counts behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// The metric's name.
    pub name: String,
    /// The metric's phase.
    pub phase: Phase,
    /// Samples that count toward `count` (all but errors), up to the decision.
    pub count: u32,
    /// Successful samples.
    pub successful: u32,
    /// Failed samples.
    pub failed: u32,
    /// Inconclusive samples.
    pub inconclusive: u32,
    /// Error samples.
    pub errors: u32,
    /// Errors in a row at the end (at the decision).
    pub consecutive_errors: u32,
    /// Samples after the decision, which do not count.
    pub ignored: u32,
    /// The metric is a dry run: its phase never fails the analysis.
    pub dry_run: bool,
    /// Why, in one line.
    pub reason: String,
}

/// Applies `count`, `failureLimit`, `inconclusiveLimit` and `consecutiveErrorLimit` to a
/// metric's measurements, oldest first (see the module's rules).
///
/// A measurement in phase Running (still being taken) counts for nothing; if it is the last
/// one, the metric is Running.
pub fn metric_status(metric: &Metric, measurements: &[Measurement]) -> MetricStatus {
    metric_status_after(metric, None, measurements)
}

/// [`metric_status`] of the measurements that follow those `prior` summarizes: the counts go on
/// from `prior` (so a caller need not keep every measurement; the execution's state carries
/// the counts and the last few samples). A `prior` that is decided stays as it is.
pub fn metric_status_after(
    metric: &Metric,
    prior: Option<&MetricStatus>,
    measurements: &[Measurement],
) -> MetricStatus {
    if let Some(p) = prior.filter(|p| p.phase.is_completed()) {
        return p.clone();
    }
    let mut st = MetricStatus {
        name: metric.name.clone(),
        phase: Phase::Running,
        count: 0,
        successful: 0,
        failed: 0,
        inconclusive: 0,
        errors: 0,
        consecutive_errors: 0,
        ignored: 0,
        dry_run: metric.dry_run,
        reason: String::new(),
    };
    if let Some(p) = prior {
        st.count = p.count;
        st.successful = p.successful;
        st.failed = p.failed;
        st.inconclusive = p.inconclusive;
        st.errors = p.errors;
        st.consecutive_errors = p.consecutive_errors;
    }
    let mut decided: Option<(Phase, String)> = None;
    let mut last_message = "";
    for (i, m) in measurements.iter().enumerate() {
        match m.phase {
            Phase::Successful => {
                st.successful += 1;
                st.count += 1;
                st.consecutive_errors = 0;
            }
            Phase::Failed => {
                st.failed += 1;
                st.count += 1;
                st.consecutive_errors = 0;
            }
            Phase::Inconclusive => {
                st.inconclusive += 1;
                st.count += 1;
                st.consecutive_errors = 0;
            }
            Phase::Error => {
                st.errors += 1;
                st.consecutive_errors += 1;
            }
            Phase::Running => continue,
        }
        last_message = &m.message;
        if st.failed > metric.failure_limit {
            decided = Some((
                Phase::Failed,
                format!(
                    "failed ({}) > failureLimit ({}) (last: {last_message})",
                    st.failed, metric.failure_limit
                ),
            ));
        } else if st.inconclusive > metric.inconclusive_limit {
            decided = Some((
                Phase::Inconclusive,
                format!(
                    "inconclusive ({}) > inconclusiveLimit ({}) (last: {last_message})",
                    st.inconclusive, metric.inconclusive_limit
                ),
            ));
        } else if st.consecutive_errors > metric.consecutive_error_limit {
            decided = Some((
                Phase::Error,
                format!(
                    "consecutiveErrors ({}) > consecutiveErrorLimit ({}) (last: {last_message})",
                    st.consecutive_errors, metric.consecutive_error_limit
                ),
            ));
        } else if metric.count > 0 && st.count >= metric.count {
            decided = Some((
                Phase::Successful,
                format!(
                    "{} of {} samples taken: {}",
                    st.count,
                    metric.count,
                    tally(&st)
                ),
            ));
        }
        if decided.is_some() {
            st.ignored = measurements[i + 1..]
                .iter()
                .filter(|m| m.phase != Phase::Running)
                .count() as u32;
            break;
        }
    }
    match decided {
        Some((phase, reason)) => {
            st.phase = phase;
            st.reason = reason;
        }
        None => {
            st.phase = Phase::Running;
            st.reason = if measurements.is_empty() && st.count + st.errors == 0 {
                "no sample yet".to_string()
            } else if metric.count > 0 {
                format!(
                    "{} of {} samples taken: {}",
                    st.count,
                    metric.count,
                    tally(&st)
                )
            } else {
                format!(
                    "{} samples taken, until the step ends: {}",
                    st.count,
                    tally(&st)
                )
            };
            if measurements
                .last()
                .is_some_and(|m| m.phase == Phase::Running)
            {
                st.reason.push_str("; one sample in flight");
            } else if !last_message.is_empty() {
                st.reason.push_str(&format!(" (last: {last_message})"));
            }
        }
    }
    st
}

fn tally(st: &MetricStatus) -> String {
    let mut parts = vec![format!("{} successful", st.successful)];
    for (n, what) in [
        (st.failed, "failed"),
        (st.inconclusive, "inconclusive"),
        (st.errors, "errors"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join(", ")
}

/// The phase of one metric: [`metric_status`]'s phase.
pub fn metric_phase(metric: &Metric, measurements: &[Measurement]) -> Phase {
    metric_status(metric, measurements).phase
}

/// What a metric's phase means for the analysis: a dry-run metric counts as Successful once it
/// is done (it still holds the analysis Running while it samples).
fn effective(metric: &Metric, phase: Phase) -> Phase {
    if metric.dry_run && phase.is_completed() {
        Phase::Successful
    } else {
        phase
    }
}

/// The phase of an analysis from its metrics' phases: any Failed → Failed; else any Error →
/// Error; else any Inconclusive → Inconclusive; else any Running → Running; else Successful
/// (also with no metric at all). Dry-run metrics never make it Failed, Error or Inconclusive.
pub fn overall(metrics: &[(Metric, Phase)]) -> Phase {
    let phases: Vec<Phase> = metrics.iter().map(|(m, p)| effective(m, *p)).collect();
    [
        Phase::Failed,
        Phase::Error,
        Phase::Inconclusive,
        Phase::Running,
    ]
    .into_iter()
    .find(|worst| phases.contains(worst))
    .unwrap_or(Phase::Successful)
}

/// One line that says why [`overall`] gave its phase, such as `metric error-rate failed` or
/// `all 3 metrics successful; dry run, not counted: metric p99 failed`.
pub fn overall_reason(metrics: &[(Metric, Phase)]) -> String {
    let phase = overall(metrics);
    let names_in = |wanted: Phase| -> Vec<&str> {
        metrics
            .iter()
            .filter(|(m, p)| effective(m, *p) == wanted && *p == wanted)
            .map(|(m, _)| m.name.as_str())
            .collect()
    };
    let mut reason = match phase {
        Phase::Successful if metrics.is_empty() => "no metric to judge".to_string(),
        Phase::Successful => {
            let counted = metrics.iter().filter(|(m, _)| !m.dry_run).count();
            match counted {
                0 => "only dry-run metrics".to_string(),
                1 => match metrics.iter().find(|(m, _)| !m.dry_run) {
                    Some((m, _)) => format!("metric {} successful", m.name),
                    None => "only dry-run metrics".to_string(),
                },
                n => format!("all {n} metrics successful"),
            }
        }
        Phase::Failed => format!("{} failed", metric_list(&names_in(Phase::Failed))),
        Phase::Error => format!(
            "{} errored: the numbers could not be read or judged",
            metric_list(&names_in(Phase::Error))
        ),
        Phase::Inconclusive => {
            format!(
                "{} inconclusive: a person must decide",
                metric_list(&names_in(Phase::Inconclusive))
            )
        }
        Phase::Running => format!("waiting for {}", metric_list(&names_in(Phase::Running))),
    };
    let dry: Vec<String> = metrics
        .iter()
        .filter(|(m, p)| m.dry_run && p.is_completed() && *p != Phase::Successful)
        .map(|(m, p)| format!("{} {p}", m.name))
        .collect();
    if !dry.is_empty() {
        reason.push_str(&format!("; dry run, not counted: {}", dry.join(", ")));
    }
    reason
}

/// `metric a`, `metrics a and b`, `metrics a, b and c`.
fn metric_list(names: &[&str]) -> String {
    match names {
        [] => "no metric".to_string(),
        [one] => format!("metric {one}"),
        [rest @ .., last] => format!("metrics {} and {last}", rest.join(", ")),
    }
}
