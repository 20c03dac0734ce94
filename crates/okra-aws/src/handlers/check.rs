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

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use okra_core::analysis::{
    Compiled, JudgeReport, MeasuredValue, Measurement, MetricStatus, Phase, Series,
    evaluate_sample, judge, metric_status_after, overall, overall_reason,
};
use okra_core::spec::{AnalysisTemplate, CellSpec, Metric};
use serde::{Deserialize, Serialize};

use super::shift::Targets;
use crate::error::{OkraError, Result};
use crate::ports::{DatadogPort, MetricsPort};
use okra_core::analysis::query::{
    self, MAX_METRIC_QUERIES, MetricQuery, MetricSeries, SubstituteError, judge_metric,
    judge_queries, last_in_window, tg_series,
};
pub use okra_core::analysis::query::{
    JUDGE, load_balancer_dimension, prefix_ids, target_group_dimension,
};

/// How many of a metric's latest measurements an output carries (the counts carry the rest).
pub const KEEP_MEASUREMENTS: usize = 3;

/// How far back a Datadog sample looks when the metric does not say.
pub const DEFAULT_DATADOG_INTERVAL: &str = "5m";

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

/// A metric's measurements so far (an output's [`MetricResult`] reads as one).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousMetric {
    /// The template (absent for the judge).
    #[serde(default)]
    pub template: Option<String>,
    /// The metric.
    pub name: String,
    /// Its latest measurements, oldest first (all of them when `status` is absent).
    #[serde(default)]
    pub measurements: Vec<Measurement>,
    /// The counts of every measurement so far (an output's `status`).
    #[serde(default)]
    pub status: Option<MetricStatus>,
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
    query::substitute(text, args).map_err(substitute_error)
}

fn substitute_error(e: SubstituteError) -> OkraError {
    match e {
        SubstituteError::Spec(m) => OkraError::InvalidSpec(m),
        SubstituteError::MissingArg(m) => OkraError::InvalidInput(m),
    }
}

/// A look-back in seconds; at least a minute (CloudWatch's and the judge's resolution).
fn seconds(text: &str, what: &str) -> Result<i64> {
    query::seconds(text, what).map_err(OkraError::InvalidSpec)
}

/// How one metric is sampled this time.
enum Plan {
    /// Decided already: no sample.
    Done,
    /// CloudWatch: the id of the result query in the shared call, and the look-back.
    CloudWatch { result_id: String, window: i64 },
    /// Datadog: the query and its look-back.
    Datadog { query: String, window: i64 },
}

struct Entry {
    template: Option<String>,
    metric: Metric,
    compiled: Option<Compiled>,
    /// The counts before this call, if the previous output carried them.
    prior: Option<MetricStatus>,
    /// Measurements to count after `prior` (all of them without one), then this sample.
    measurements: Vec<Measurement>,
    /// The latest measurements before this call, for the output.
    recent: Vec<Measurement>,
    plan: Plan,
}

struct JudgePlan {
    /// Per side, per target group: (requests id, errors id, latency id).
    canary: Vec<[String; 3]>,
    stable: Vec<[String; 3]>,
    window: i64,
}

/// A metric's prior counts, the measurements still to count after them, and the latest ones.
fn previous_of(
    previous: &[PreviousMetric],
    template: Option<&str>,
    name: &str,
) -> (Option<MetricStatus>, Vec<Measurement>, Vec<Measurement>) {
    match previous
        .iter()
        .find(|p| p.name == name && p.template.as_deref() == template)
    {
        Some(p) if p.status.is_some() => (p.status.clone(), Vec::new(), p.measurements.clone()),
        Some(p) => (None, p.measurements.clone(), Vec::new()),
        None => (None, Vec::new(), Vec::new()),
    }
}

fn template<'a>(cell: &'a CellSpec, i: usize, name: &str) -> Result<&'a AnalysisTemplate> {
    cell.analysis_templates
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            let have: Vec<&str> = cell
                .analysis_templates
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            OkraError::InvalidInput(format!(
                "templates[{i}]: no analysis template named `{name}` in cell {} (it has: {})",
                cell.name,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ))
        })
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
    okra_core::validate::validate(&input.cell)
        .map_err(|e| OkraError::InvalidSpec(e.to_string()))?;
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

    let mut entries: Vec<Entry> = Vec::new();
    let mut queries: Vec<MetricQuery> = Vec::new();
    let mut longest_window = 0_i64;
    for (ti, name) in input.templates.iter().enumerate() {
        let t = template(&input.cell, ti, name)?;
        let mut args: BTreeMap<String, String> = t
            .args
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
            .collect();
        args.extend(input.args.iter().map(|(k, v)| (k.clone(), v.clone())));
        for metric in &t.metrics {
            let compiled = Compiled::new(metric)
                .map_err(|e| OkraError::InvalidSpec(format!("template {}: {e}", t.name)))?;
            let (prior, measurements, recent) =
                previous_of(&input.previous, Some(&t.name), &metric.name);
            let decided = metric_status_after(metric, prior.as_ref(), &measurements)
                .phase
                .is_completed();
            let what = format!("template {} metric {}", t.name, metric.name);
            let plan = match (&metric.provider.cloudwatch, &metric.provider.datadog) {
                _ if decided => Plan::Done,
                (Some(cw), None) => {
                    let window = seconds(cw.window.as_deref().unwrap_or(&metric.interval), &what)?;
                    longest_window = longest_window.max(window);
                    let prefix = format!("m{}_", entries.len());
                    let ids: BTreeSet<String> = cw
                        .metric_data_queries
                        .iter()
                        .map(|q| q.id.clone())
                        .collect();
                    let result = cw
                        .metric_data_queries
                        .iter()
                        .position(|q| q.return_data == Some(true))
                        .or(cw.metric_data_queries.len().checked_sub(1))
                        .ok_or_else(|| {
                            OkraError::InvalidSpec(format!("{what}: no metricDataQueries"))
                        })?;
                    for (qi, q) in cw.metric_data_queries.iter().enumerate() {
                        queries.push(MetricQuery {
                            id: format!("{prefix}{}", q.id),
                            expression: q
                                .expression
                                .as_deref()
                                .map(|e| {
                                    substitute(e, &args).map(|e| prefix_ids(&e, &ids, &prefix))
                                })
                                .transpose()?,
                            metric_stat: q
                                .metric_stat
                                .as_ref()
                                .map(|m| query::substitute_stat(m, &args).map_err(substitute_error))
                                .transpose()?,
                            return_data: qi == result,
                            label: q
                                .label
                                .as_deref()
                                .map(|l| substitute(l, &args))
                                .transpose()?,
                        });
                    }
                    Plan::CloudWatch {
                        result_id: format!("{prefix}{}", cw.metric_data_queries[result].id),
                        window,
                    }
                }
                (None, Some(dd)) => Plan::Datadog {
                    query: substitute(&dd.query, &args)?,
                    window: seconds(
                        dd.interval.as_deref().unwrap_or(DEFAULT_DATADOG_INTERVAL),
                        &what,
                    )?,
                },
                _ => {
                    return Err(OkraError::InvalidSpec(format!(
                        "{what}: the provider must be exactly one of cloudwatch and datadog"
                    )));
                }
            };
            entries.push(Entry {
                template: Some(t.name.clone()),
                metric: metric.clone(),
                compiled: Some(compiled),
                prior,
                measurements,
                recent,
                plan,
            });
        }
    }

    // The judge, on the same call.
    let spec = &input.cell.judge;
    let canary = input.canary.arns("canary")?;
    let stable = input.stable.arns("stable")?;
    let lb = input
        .load_balancer
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            input
                .cell
                .ingress
                .alb
                .as_ref()
                .and_then(|a| load_balancer_dimension(&a.listener_arn))
        });
    let mut judge_entry: Option<(Entry, Option<JudgePlan>)> = None;
    if spec.enabled && !canary.is_empty() && !stable.is_empty() && lb.is_none() {
        tracing::info!(
            cell = %input.cell.name,
            "judge skipped: no ALB (give loadBalancer, or an ALB listener in the cell)"
        );
    }
    if spec.enabled
        && !canary.is_empty()
        && !stable.is_empty()
        && let Some(lb) = lb
    {
        let count = entries
            .iter()
            .map(|e| e.metric.count)
            .max()
            .unwrap_or(1)
            .max(1);
        let metric = judge_metric(count);
        let (prior, measurements, recent) = previous_of(&input.previous, None, JUDGE);
        let plan = if metric_status_after(&metric, prior.as_ref(), &measurements)
            .phase
            .is_completed()
        {
            None
        } else {
            let window = seconds(&spec.window, "judge.window")?;
            longest_window = longest_window.max(window);
            let mut side = |arns: &[String], field: &str, tag: &str| {
                judge_queries(arns, &lb, field, tag)
                    .map(|(ids, qs)| {
                        queries.extend(qs);
                        ids
                    })
                    .map_err(OkraError::InvalidInput)
            };
            let c = side(&canary, "canary", "c")?;
            let s = side(&stable, "stable", "s")?;
            Some(JudgePlan {
                canary: c,
                stable: s,
                window,
            })
        };
        judge_entry = Some((
            Entry {
                template: None,
                metric,
                compiled: None,
                prior,
                measurements,
                recent,
                plan: Plan::Done,
            },
            plan,
        ));
    }
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
        match &e.plan {
            Plan::Datadog { query, window } => {
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
        let sample = match (&e.plan, &e.compiled) {
            (Plan::Done, _) | (_, None) => None,
            (Plan::CloudWatch { result_id, window }, Some(c)) => Some(match &fetched {
                Ok(_) => evaluate_sample(
                    &e.metric,
                    c,
                    last_in_window(by_id.get(result_id.as_str()).copied(), end, *window),
                    &at,
                ),
                Err(err) => Measurement::provider_error(&e.metric.name, err, &at),
            }),
            (Plan::Datadog { .. }, Some(c)) => Some(match dd {
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

fn result_of(e: Entry, phases: &mut Vec<(Metric, Phase)>) -> MetricResult {
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
