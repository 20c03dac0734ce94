//! `check-metrics`: take one sample of a step's analysis.
//!
//! The state machine calls this every `interval`, up to `count` times, feeding back the
//! previous output's `metrics` as `previous`. Each call:
//!
//! - samples every metric of the named templates that is not decided yet: all CloudWatch
//!   queries of all metrics (and of the judge) go in **one** GetMetricData call; Datadog
//!   metrics are one query each;
//! - judges each sample by the metric's conditions and goes on with the metric's status
//!   (`count`, `failureLimit`, …) from the previous output's counts; only the last
//!   [`KEEP_MEASUREMENTS`] measurements travel in the execution's state, so that it stays far
//!   below Step Functions' 256 KiB per state whatever `count` is;
//! - runs the built-in judge, when enabled and both sides and the load balancer are known, on
//!   the target groups' own ALB metrics (`RequestCount`, `HTTPCode_Target_5XX_Count`,
//!   `TargetResponseTime`), ratios computed here rather than by metric math. Its windows count
//!   as the samples of a metric named `judge`, with as many samples as the longest metric (1
//!   without templates) and no failed or inconclusive window tolerated.
//!
//! A provider that is throttled or unavailable fails the call (`Throttled`,
//! `AwsUnavailable`) for the state machine to retry: nothing was recorded. Any other provider
//! failure (access denied, a bad query, no Datadog keys) is an Error sample of the metrics
//! concerned, which `consecutiveErrorLimit` tolerates.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use okra_core::analysis::sample::{self, PlanError, PlannedMetric, SamplePlan, Source};
use okra_core::analysis::{
    JudgeReport, MeasuredValue, Measurement, MetricStatus, Phase, Series, evaluate_sample, judge,
    metric_status_after, overall, overall_reason,
};
use okra_core::cell::Ingress;
use okra_core::spec::{CellSpec, Metric};
use serde::{Deserialize, Serialize};

use super::shift::Targets;
use crate::error::{OkraError, Result};
use crate::ports::{DatadogPort, MetricsPort};
use okra_core::analysis::query::{
    self, MAX_METRIC_QUERIES, MetricSeries, last_in_window, tg_series,
};
pub use okra_core::analysis::query::{JUDGE, prefix_ids, target_group_dimension};
pub use okra_core::analysis::sample::{DEFAULT_DATADOG_INTERVAL, PreviousMetric};

/// How many of a metric's latest measurements an output carries (the counts carry the rest).
pub const KEEP_MEASUREMENTS: usize = 3;

/// The function's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckInput {
    /// The cell: its analysis templates and judge settings.
    pub cell: CellSpec,
    /// The templates to sample, by name.
    #[serde(default)]
    pub templates: Vec<String>,
    /// Values of the templates' args (over the templates' defaults).
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// The canary's target groups (for the judge).
    #[serde(default)]
    pub canary: Targets,
    /// Stable's target groups (for the judge).
    #[serde(default)]
    pub stable: Targets,
    /// The ALB's `LoadBalancer` dimension, such as `app/web/0123456789abcdef`; by default
    /// taken from the cell's ALB listener ARN.
    #[serde(default)]
    pub load_balancer: Option<String>,
    /// The measurements so far: the previous output's `metrics`.
    #[serde(default)]
    pub previous: Vec<PreviousMetric>,
    /// The sample's time (RFC 3339, UTC), for tests; by default the clock's.
    #[serde(default)]
    pub now: Option<String>,
}

/// One metric after this sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// The template (absent for the judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The metric.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Its latest value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<MeasuredValue>,
    /// Its latest measurements (at most [`KEEP_MEASUREMENTS`]), oldest first.
    pub measurements: Vec<Measurement>,
    /// The counts behind the phase.
    pub status: MetricStatus,
}

/// The function's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutput {
    /// The analysis's phase (worst metric, the judge included).
    pub phase: Phase,
    /// Why, in one line.
    pub reason: String,
    /// The metrics, in template order, then the judge.
    pub metrics: Vec<MetricResult>,
    /// This sample's judge report (absent when the judge did not run).
    pub judge: Option<JudgeReport>,
    /// Whether every metric is decided (no more samples are due).
    pub done: bool,
}

/// Replaces every `{{args.NAME}}` (spaces inside the braces allowed) by its value: a wrong
/// template is `InvalidSpec`, an argument without a value `InvalidInput`.
pub fn substitute(text: &str, args: &BTreeMap<String, String>) -> Result<String> {
    query::substitute(text, args).map_err(|e| PlanError::from(e).into())
}

impl From<PlanError> for OkraError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::InvalidSpec(m) => Self::InvalidSpec(m),
            PlanError::InvalidInput(m) => Self::InvalidInput(m),
        }
    }
}

fn now_of(input: &Option<String>) -> Result<SystemTime> {
    match input.as_deref() {
        None => Ok(SystemTime::now()),
        Some(t) => humantime::parse_rfc3339_weak(t).map_err(|e| {
            OkraError::InvalidInput(format!("now: {t:?} is not an RFC 3339 UTC time: {e}"))
        }),
    }
}

/// Takes one sample of the analysis.
pub async fn handle<M: MetricsPort, D: DatadogPort>(
    metrics: &M,
    datadog: &D,
    input: CheckInput,
) -> Result<CheckOutput> {
    // The same gate as discover-clusters: an invalid spec is refused before any query.
    let cell = input.cell.validate()?;
    let now = now_of(&input.now)?;
    let now_secs = i64::try_from(
        now.duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs(),
    )
    .unwrap_or(i64::MAX);
    let at = humantime::format_rfc3339_seconds(now).to_string();
    // CloudWatch: whole minutes only, the current (partial) one left out.
    let end = now_secs - now_secs.rem_euclid(60);

    let mut plan = sample::plan_templates(&cell, &input.templates, &input.args, &input.previous)?;
    // The judge, on the same call.
    let spec = &cell.judge;
    let canary = input.canary.arns("canary")?;
    let stable = input.stable.arns("stable")?;
    let lb = input
        .load_balancer
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| match cell.ingress() {
            Ingress::Alb { listener, .. } => Some(listener.parts().load_balancer_dimension()),
            Ingress::Nlb { .. } => None,
        });
    if spec.enabled && !canary.is_empty() && !stable.is_empty() && lb.is_none() {
        tracing::info!(
            cell = %cell.name,
            "judge skipped: no ALB (give loadBalancer, or an ALB listener in the cell)"
        );
    }
    if spec.enabled
        && !canary.is_empty()
        && !stable.is_empty()
        && let Some(lb) = lb
    {
        plan.add_judge(spec, &input.previous, &canary, &stable, &lb)?;
    }
    let SamplePlan {
        metrics: entries,
        judge: judge_entry,
        queries,
        longest_window,
    } = plan;
    if queries.len() > MAX_METRIC_QUERIES {
        return Err(OkraError::InvalidInput(format!(
            "this sample needs {} CloudWatch queries; one GetMetricData call takes at most {MAX_METRIC_QUERIES}",
            queries.len()
        )));
    }

    // One GetMetricData call for everything CloudWatch.
    let fetched: std::result::Result<Vec<MetricSeries>, OkraError> = if queries.is_empty() {
        Ok(Vec::new())
    } else {
        match metrics
            .get_metric_data(&queries, end - longest_window, end)
            .await
        {
            Err(e) if e.is_transient() => return Err(e),
            r => r,
        }
    };
    let by_id: BTreeMap<&str, &MetricSeries> = match &fetched {
        Ok(series) => series.iter().map(|s| (s.id.as_str(), s)).collect(),
        Err(_) => BTreeMap::new(),
    };

    // Datadog: one query per metric.
    let dd_futures = entries.iter().map(|e| async move {
        match &e.source {
            Source::Datadog { query, window } => {
                Some(datadog.query(query, now_secs - window, now_secs).await)
            }
            _ => None,
        }
    });
    let mut dd_results = futures::future::join_all(dd_futures).await;
    if let Some(i) = dd_results
        .iter()
        .position(|r| matches!(r, Some(Err(e)) if e.is_transient()))
        && let Some(Err(e)) = dd_results.swap_remove(i)
    {
        return Err(e);
    }

    let mut results = Vec::new();
    let mut phases: Vec<(Metric, Phase)> = Vec::new();
    for (mut e, dd) in entries.into_iter().zip(dd_results) {
        let sample = match (&e.source, &e.compiled) {
            (Source::Done, _) | (_, None) => None,
            (Source::CloudWatch { result_id, window }, Some(c)) => Some(match &fetched {
                Ok(_) => evaluate_sample(
                    &e.metric,
                    c,
                    last_in_window(by_id.get(result_id.as_str()).copied(), end, *window),
                    &at,
                ),
                Err(err) => Measurement::provider_error(&e.metric.name, err, &at),
            }),
            (Source::Datadog { .. }, Some(c)) => Some(match dd {
                Some(Ok(points)) => evaluate_sample(
                    &e.metric,
                    c,
                    points.last().map(|(_, v)| MeasuredValue::Number(*v)),
                    &at,
                ),
                Some(Err(err)) => Measurement::provider_error(&e.metric.name, err, &at),
                None => Measurement::provider_error(&e.metric.name, "no query was made", &at),
            }),
        };
        e.recent.extend(sample.clone());
        e.measurements.extend(sample);
        results.push(result_of(e, &mut phases));
    }
    let mut report = None;
    if let Some((mut e, plan)) = judge_entry {
        if let Some(plan) = plan {
            let sample = match &fetched {
                Ok(_) => {
                    let start = end - plan.window;
                    let minutes = usize::try_from(plan.window / 60).unwrap_or(0);
                    let side = |tgs: &[[String; 3]]| {
                        Series::combine(
                            &tgs.iter()
                                .map(|ids| tg_series(ids, &by_id, start, minutes))
                                .collect::<Vec<_>>(),
                        )
                    };
                    let r = judge(spec, &side(&plan.canary), &side(&plan.stable));
                    let m = r.measurement(&at);
                    report = Some(r);
                    m
                }
                Err(err) => Measurement::provider_error(JUDGE, err, &at),
            };
            e.recent.push(sample.clone());
            e.measurements.push(sample);
        }
        results.push(result_of(e, &mut phases));
    }

    let phase = overall(&phases);
    let mut reason = overall_reason(&phases);
    if let Some(r) = &report
        && r.phase != Phase::Successful
    {
        reason.push_str(&format!("; judge: {}", r.reason));
    }
    let done = phases.iter().all(|(_, p)| p.is_completed());
    Ok(CheckOutput {
        phase,
        reason,
        metrics: results,
        judge: report,
        done,
    })
}

fn result_of(e: PlannedMetric, phases: &mut Vec<(Metric, Phase)>) -> MetricResult {
    let status = metric_status_after(&e.metric, e.prior.as_ref(), &e.measurements);
    phases.push((e.metric.clone(), status.phase));
    let mut recent = e.recent;
    let cut = recent.len().saturating_sub(KEEP_MEASUREMENTS);
    recent.drain(..cut);
    MetricResult {
        template: e.template,
        name: e.metric.name.clone(),
        phase: status.phase,
        value: recent.last().and_then(|m| m.value.clone()),
        measurements: recent,
        status,
    }
}
