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

use okra_core::analysis::sample::{
    self, JudgeSource, PlanError, PlannedMetric, PromJudgePlan, SamplePlan, Source,
};
use okra_core::analysis::{
    JudgeReport, MeasuredValue, Measurement, MetricStatus, Phase, Series, evaluate_sample, judge,
    metric_status_after, overall, overall_reason,
};
use okra_core::cell::Ingress;
use okra_core::spec::{CellSpec, Metric};
use serde::{Deserialize, Serialize};

use super::shift::Targets;
use crate::error::{OkraError, Result};
use crate::ports::{DatadogPort, HttpPort, InvokePort, Invoked, MetricsPort, Unset};
use okra_core::analysis::probe;
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
    /// The condition a sample passes on, as the spec has it (the verdict event shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// The condition a sample fails on, as the spec has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
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

/// The providers a sample reads.
#[derive(Debug)]
pub struct Providers<'a, M, D, H = Unset, L = Unset> {
    /// CloudWatch (templates and the judge).
    pub metrics: &'a M,
    /// Datadog.
    pub datadog: &'a D,
    /// Prometheus, AMP and web metrics.
    pub http: &'a H,
    /// Lambda metrics.
    pub lambda: &'a L,
}

impl<'a, M, D> Providers<'a, M, D> {
    /// CloudWatch and Datadog only: a Prometheus, web or Lambda metric is an Error sample
    /// saying that this caller reaches none.
    pub fn new(metrics: &'a M, datadog: &'a D) -> Self {
        Self {
            metrics,
            datadog,
            http: &Unset,
            lambda: &Unset,
        }
    }
}

/// Takes one sample of the analysis.
pub async fn handle<M: MetricsPort, D: DatadogPort, H: HttpPort, L: InvokePort>(
    providers: &Providers<'_, M, D, H, L>,
    input: CheckInput,
) -> Result<CheckOutput> {
    let Providers {
        metrics,
        datadog,
        http,
        lambda,
    } = *providers;
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

    let mut plan = sample::plan_templates(
        &cell,
        &input.templates,
        &input.args,
        &input.previous,
        now_secs,
    )?;
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
    if let Some(prom) = spec.prometheus.as_ref().filter(|_| spec.enabled) {
        match (input.canary.version(), input.stable.version()) {
            (Some(c), Some(s)) => {
                plan.add_judge_prometheus(spec, prom, &input.previous, (c, s), now_secs)?;
            }
            _ => tracing::info!(
                cell = %cell.name,
                "judge skipped: Prometheus series need both sides' versions"
            ),
        }
    } else {
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

    // Datadog, Prometheus, web and Lambda: one request per metric, all at once.
    let (canary_json, stable_json) = (input.canary.to_json(), input.stable.to_json());
    let other_futures = entries.iter().map(|e| {
        let (canary_json, stable_json, at) = (&canary_json, &stable_json, &at);
        let cell_name = cell.name.as_str();
        async move {
            match &e.source {
                Source::Datadog { query, window } => Some(
                    datadog
                        .query(query, now_secs - window, now_secs)
                        .await
                        .map(|points| {
                            Ok((points.last().map(|(_, v)| MeasuredValue::Number(*v)), None))
                        }),
                ),
                Source::Http { request, reader } => {
                    Some(Ok(read_http(http, request, reader).await))
                }
                Source::Lambda { provider, args } => {
                    let payload = probe::lambda_payload(
                        provider,
                        &probe::LambdaContext {
                            cell: cell_name,
                            template: e.template.as_deref(),
                            metric: &e.metric.name,
                            args,
                            canary: canary_json.clone(),
                            stable: stable_json.clone(),
                            at,
                        },
                    );
                    Some(
                        match lambda.invoke(&provider.function_name, &payload).await {
                            Ok(answer) => Ok(read_invoked(&answer)),
                            Err(err) if err.is_transient() => Err(err),
                            Err(err) => Ok(Err(err.to_string())),
                        },
                    )
                }
                _ => None,
            }
        }
    });
    let mut other_results = futures::future::join_all(other_futures).await;
    if let Some(i) = other_results
        .iter()
        .position(|r| matches!(r, Some(Err(e)) if e.is_transient()))
        && let Some(Err(e)) = other_results.swap_remove(i)
    {
        return Err(e);
    }

    let mut results = Vec::new();
    let mut phases: Vec<(Metric, Phase)> = Vec::new();
    for (mut e, other) in entries.into_iter().zip(other_results) {
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
            (Source::Datadog { .. } | Source::Http { .. } | Source::Lambda { .. }, Some(c)) => {
                Some(match other {
                    Some(Ok(Ok((value, note)))) => {
                        let mut m = evaluate_sample(&e.metric, c, value, &at);
                        if let Some(note) = note {
                            m.message = format!("{} ({note})", m.message);
                        }
                        m
                    }
                    Some(Ok(Err(err))) => Measurement::provider_error(&e.metric.name, err, &at),
                    Some(Err(err)) => Measurement::provider_error(&e.metric.name, err, &at),
                    None => Measurement::provider_error(&e.metric.name, "no query was made", &at),
                })
            }
        };
        e.recent.extend(sample.clone());
        e.measurements.extend(sample);
        results.push(result_of(e, &mut phases));
    }
    let mut report = None;
    if let Some((mut e, plan)) = judge_entry {
        if let Some(JudgeSource::Prometheus(p)) = &plan {
            let sample = match judge_prometheus_series(http, p).await {
                Ok((c, st)) => {
                    let r = judge(spec, &c, &st);
                    let m = r.measurement(&at);
                    report = Some(r);
                    m
                }
                Err(err) => Measurement::provider_error(JUDGE, err, &at),
            };
            e.recent.push(sample.clone());
            e.measurements.push(sample);
        }
        if let Some(JudgeSource::CloudWatch(plan)) = plan {
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

/// Both sides' judge series from Prometheus (six range queries at once); the first failure is
/// the judge's Error sample.
async fn judge_prometheus_series<H: HttpPort>(
    http: &H,
    p: &PromJudgePlan,
) -> std::result::Result<(Series, Series), String> {
    let all = futures::future::join_all(p.canary.iter().chain(&p.stable).map(|req| async move {
        let answer = http.send(req).await.map_err(|e| e.to_string())?;
        probe::read_prometheus_range(answer.status, &answer.body, p.start, p.step, p.points)
            .map_err(|e| e.to_string())
    }))
    .await;
    let mut columns = all
        .into_iter()
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let side = |mut cols: Vec<Vec<f64>>| {
        let latency = cols.pop().unwrap_or_default();
        let errors = cols.pop().unwrap_or_default();
        let requests = cols.pop().unwrap_or_default();
        query::side_series(requests, errors, latency)
    };
    let stable = columns.split_off(3);
    Ok((side(columns), side(stable)))
}

/// One sample of a provider reached over HTTP or Lambda: a value (with the provider's own
/// note, such as a check function's message), or why there is none.
type Sampled = std::result::Result<(Option<MeasuredValue>, Option<String>), String>;

/// Sends a Prometheus or web request and reads its answer; every failure (no answer, an HTTP
/// or PromQL error, no number where the path points) is an Error sample, which
/// `consecutiveErrorLimit` counts.
async fn read_http<H: HttpPort>(
    http: &H,
    request: &probe::Request,
    reader: &probe::Reader,
) -> Sampled {
    let answer = match http.send(request).await {
        Ok(a) => a,
        Err(e) => return Err(e.to_string()),
    };
    let read = match reader {
        probe::Reader::Prometheus => probe::read_prometheus(answer.status, &answer.body),
        probe::Reader::Json(path) => probe::read_web(answer.status, &answer.body, path),
    };
    read.map(|v| (v, None)).map_err(|e| e.to_string())
}

fn read_invoked(answer: &Invoked) -> Sampled {
    probe::read_lambda(answer.function_error.as_deref(), &answer.payload).map_err(|e| e.to_string())
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
        success_condition: e.metric.success_condition.clone(),
        failure_condition: e.metric.failure_condition.clone(),
        measurements: recent,
        status,
    }
}
