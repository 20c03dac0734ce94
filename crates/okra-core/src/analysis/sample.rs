//! Planning one sample of an analysis (what check-metrics asks the providers this time): for each
//! metric of the named templates that is not decided yet, its CloudWatch queries (ids prefixed so
//! that every metric and the judge share one GetMetricData call) or its Datadog query, each with
//! its look-back; the judge's per-target-group queries on the same call. Pure: the handler reads
//! the providers with the plan, then judges the samples ([`super::evaluate_sample`], [`super::judge`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::query::{self, JUDGE, MetricQuery, SubstituteError, judge_metric, judge_queries};
use super::{Compiled, Measurement, MetricStatus, metric_status_after};
use crate::spec::{AnalysisTemplate, CellSpec, JudgeSpec, Metric};

/// How far back a Datadog sample looks when the metric does not say.
pub const DEFAULT_DATADOG_INTERVAL: &str = "5m";

/// Why a sample cannot be planned: the spec's fault, or the input's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The cell's templates are wrong (a bad duration, a query without ids, ...).
    #[error("{0}")]
    InvalidSpec(String),
    /// The input is wrong (an unknown template, an argument without a value, ...).
    #[error("{0}")]
    InvalidInput(String),
}

impl From<SubstituteError> for PlanError {
    fn from(e: SubstituteError) -> Self {
        match e {
            SubstituteError::Spec(m) => Self::InvalidSpec(m),
            SubstituteError::MissingArg(m) => Self::InvalidInput(m),
        }
    }
}

/// A metric's measurements so far (a previous check's result reads as one).
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
    /// The counts of every measurement so far (a result's `status`).
    #[serde(default)]
    pub status: Option<MetricStatus>,
}

/// Where one metric's sample comes from this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Decided already: no sample.
    Done,
    /// CloudWatch: the id of the result query in the shared call, and the look-back (seconds).
    CloudWatch { result_id: String, window: i64 },
    /// Datadog: the query and its look-back (seconds).
    Datadog { query: String, window: i64 },
    /// Prometheus (AMP) or a web endpoint: the request, and how its answer is read.
    Http {
        request: super::probe::Request,
        reader: super::probe::Reader,
    },
    /// A Lambda function, invoked with the rollout's context and the metric's args (the
    /// step's over the template's defaults).
    Lambda {
        provider: crate::spec::LambdaProvider,
        args: BTreeMap<String, String>,
    },
}

/// One metric of the sample: what it knew before, and where its sample comes from.
#[derive(Debug)]
pub struct PlannedMetric {
    /// The template (absent for the judge).
    pub template: Option<String>,
    /// The metric.
    pub metric: Metric,
    /// Its conditions, compiled (absent for the judge, which judges by itself).
    pub compiled: Option<Compiled>,
    /// The counts before this call, if the previous output carried them.
    pub prior: Option<MetricStatus>,
    /// Measurements to count after `prior` (all of them without one), then this sample.
    pub measurements: Vec<Measurement>,
    /// The latest measurements before this call, for the output.
    pub recent: Vec<Measurement>,
    /// Where this sample comes from.
    pub source: Source,
}

/// The judge's queries: per side, per target group, the ids of (requests, errors, latency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgePlan {
    /// The canary's target groups.
    pub canary: Vec<[String; 3]>,
    /// Stable's target groups.
    pub stable: Vec<[String; 3]>,
    /// The look-back (seconds).
    pub window: i64,
}

/// The judge's series from Prometheus: per side, the (requests, errors, latency) range queries,
/// and the slots they fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromJudgePlan {
    /// The canary's queries.
    pub canary: [super::probe::Request; 3],
    /// Stable's queries.
    pub stable: [super::probe::Request; 3],
    /// The first point's time (epoch seconds).
    pub start: i64,
    /// Seconds between points.
    pub step: i64,
    /// Points per series.
    pub points: usize,
}

/// Where the judge's series come from this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JudgeSource {
    /// The ALB's CloudWatch metrics per target group, on the shared call.
    CloudWatch(JudgePlan),
    /// Prometheus, by each side's version.
    Prometheus(PromJudgePlan),
}

/// A sample's plan: the metrics in template order, every CloudWatch query of the one call, and
/// the call's look-back (the longest window).
#[derive(Debug, Default)]
pub struct SamplePlan {
    /// The templates' metrics, in order.
    pub metrics: Vec<PlannedMetric>,
    /// The judge, when it runs: its metric, and its queries unless it is decided already.
    pub judge: Option<(PlannedMetric, Option<JudgeSource>)>,
    /// Every CloudWatch query of this sample.
    pub queries: Vec<MetricQuery>,
    /// The longest look-back of the CloudWatch queries (seconds).
    pub longest_window: i64,
}

/// A metric's prior counts, the measurements still to count after them, and the latest ones.
pub fn previous_of(
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

/// The cell's template named `name` (the `i`-th asked for).
pub fn find_template<'a>(
    cell: &'a CellSpec,
    i: usize,
    name: &str,
) -> Result<&'a AnalysisTemplate, PlanError> {
    cell.analysis_templates
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            let have: Vec<&str> = cell
                .analysis_templates
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            PlanError::InvalidInput(format!(
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

fn seconds(text: &str, what: &str) -> Result<i64, PlanError> {
    query::seconds(text, what).map_err(PlanError::InvalidSpec)
}

/// Plans the sample of the templates named `templates` (their args over the templates'
/// defaults), from what `previous` measured.
pub fn plan_templates(
    cell: &CellSpec,
    templates: &[String],
    args: &BTreeMap<String, String>,
    previous: &[PreviousMetric],
    now: i64,
) -> Result<SamplePlan, PlanError> {
    let mut plan = SamplePlan::default();
    for (ti, name) in templates.iter().enumerate() {
        let t = find_template(cell, ti, name)?;
        let mut values: BTreeMap<String, String> = t
            .args
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
            .collect();
        values.extend(args.iter().map(|(k, v)| (k.clone(), v.clone())));
        for metric in &t.metrics {
            let compiled = Compiled::new(metric)
                .map_err(|e| PlanError::InvalidSpec(format!("template {}: {e}", t.name)))?;
            let (prior, measurements, recent) = previous_of(previous, Some(&t.name), &metric.name);
            let decided = metric_status_after(metric, prior.as_ref(), &measurements)
                .phase
                .is_completed();
            let what = format!("template {} metric {}", t.name, metric.name);
            let p = &metric.provider;
            let set = p.set();
            if set.len() != 1 {
                return Err(PlanError::InvalidSpec(format!(
                    "{what}: the provider must be exactly one of cloudwatch, datadog, prometheus, \
                     web and lambda (set: {})",
                    if set.is_empty() {
                        "none".to_string()
                    } else {
                        set.join(", ")
                    }
                )));
            }
            let spec_err = |e: String| PlanError::InvalidSpec(format!("{what}: {e}"));
            let source = match (&p.cloudwatch, &p.datadog, &p.prometheus, &p.web, &p.lambda) {
                _ if decided => Source::Done,
                (_, _, Some(prom), _, _) => {
                    let q = query::substitute(&prom.query, &values)?;
                    Source::Http {
                        request: super::probe::prometheus_request(prom, &q, now)
                            .map_err(spec_err)?,
                        reader: super::probe::Reader::Prometheus,
                    }
                }
                (_, _, _, Some(web), _) => {
                    let url = query::substitute(&web.url, &values)?;
                    let body = web
                        .body
                        .as_deref()
                        .map(|b| query::substitute(b, &values))
                        .transpose()?;
                    Source::Http {
                        request: super::probe::web_request(web, &url, body).map_err(spec_err)?,
                        reader: super::probe::Reader::Json(web.json_path.clone()),
                    }
                }
                (_, _, _, _, Some(lambda)) => Source::Lambda {
                    provider: lambda.clone(),
                    args: values.clone(),
                },
                (Some(cw), None, ..) => {
                    let window = seconds(cw.window.as_deref().unwrap_or(&metric.interval), &what)?;
                    plan.longest_window = plan.longest_window.max(window);
                    let prefix = format!("m{}_", plan.metrics.len());
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
                            PlanError::InvalidSpec(format!("{what}: no metricDataQueries"))
                        })?;
                    for (qi, q) in cw.metric_data_queries.iter().enumerate() {
                        plan.queries.push(MetricQuery {
                            id: format!("{prefix}{}", q.id),
                            expression: q
                                .expression
                                .as_deref()
                                .map(|e| {
                                    query::substitute(e, &values)
                                        .map(|e| query::prefix_ids(&e, &ids, &prefix))
                                })
                                .transpose()?,
                            metric_stat: q
                                .metric_stat
                                .as_ref()
                                .map(|m| query::substitute_stat(m, &values))
                                .transpose()?,
                            return_data: qi == result,
                            label: q
                                .label
                                .as_deref()
                                .map(|l| query::substitute(l, &values))
                                .transpose()?,
                        });
                    }
                    Source::CloudWatch {
                        result_id: format!("{prefix}{}", cw.metric_data_queries[result].id),
                        window,
                    }
                }
                (None, Some(dd), ..) => Source::Datadog {
                    query: query::substitute(&dd.query, &values)?,
                    window: seconds(
                        dd.interval.as_deref().unwrap_or(DEFAULT_DATADOG_INTERVAL),
                        &what,
                    )?,
                },
                _ => {
                    return Err(PlanError::InvalidSpec(format!(
                        "{what}: the provider must be exactly one of cloudwatch, datadog, \
                         prometheus, web and lambda"
                    )));
                }
            };
            plan.metrics.push(PlannedMetric {
                template: Some(t.name.clone()),
                metric: metric.clone(),
                compiled: Some(compiled),
                prior,
                measurements,
                recent,
                source,
            });
        }
    }
    Ok(plan)
}

impl SamplePlan {
    /// Adds the built-in judge on the load balancer `lb` (its `LoadBalancer` dimension) over the
    /// canary's and stable's target groups: a metric named `judge` with as many samples as the
    /// longest metric (1 without templates), and, unless it is decided already, its queries on
    /// the shared call.
    pub fn add_judge(
        &mut self,
        spec: &JudgeSpec,
        previous: &[PreviousMetric],
        canary: &[String],
        stable: &[String],
        lb: &str,
    ) -> Result<(), PlanError> {
        let (metric, prior, measurements, recent, decided) = self.judge_metric(previous);
        let queries = if decided {
            None
        } else {
            let window = seconds(&spec.window, "judge.window")?;
            self.longest_window = self.longest_window.max(window);
            let mut side = |arns: &[String], field: &str, tag: &str| {
                judge_queries(arns, lb, field, tag)
                    .map(|(ids, qs)| {
                        self.queries.extend(qs);
                        ids
                    })
                    .map_err(PlanError::InvalidInput)
            };
            let c = side(canary, "canary", "c")?;
            let s = side(stable, "stable", "s")?;
            Some(JudgeSource::CloudWatch(JudgePlan {
                canary: c,
                stable: s,
                window,
            }))
        };
        self.judge = Some((judge_entry(metric, prior, measurements, recent), queries));
        Ok(())
    }
}

/// The judge's entry in a plan: its pseudo-metric, sampled by the judge itself.
fn judge_entry(
    metric: Metric,
    prior: Option<MetricStatus>,
    measurements: Vec<Measurement>,
    recent: Vec<Measurement>,
) -> PlannedMetric {
    PlannedMetric {
        template: None,
        metric,
        compiled: None,
        prior,
        measurements,
        recent,
        source: Source::Done,
    }
}

impl SamplePlan {
    /// Adds the built-in judge over Prometheus series: the canary's and stable's versions'
    /// queries over `judge.window` ending at `now`, one point per step.
    pub fn add_judge_prometheus(
        &mut self,
        spec: &JudgeSpec,
        prom: &crate::spec::JudgePrometheus,
        previous: &[PreviousMetric],
        versions: (&str, &str),
        now: i64,
    ) -> Result<(), PlanError> {
        let (metric, prior, measurements, recent, decided) = self.judge_metric(previous);
        let source = if decided {
            None
        } else {
            let bad = |e: String| PlanError::InvalidSpec(format!("judge.prometheus: {e}"));
            let window = humantime::parse_duration(spec.window.trim())
                .map_err(|e| bad(format!("window {:?}: {e}", spec.window)))?
                .as_secs();
            let step = match &prom.step {
                Some(s) => humantime::parse_duration(s.trim())
                    .map_err(|e| bad(format!("step {s:?}: {e}")))?
                    .as_secs(),
                None => 60,
            }
            .max(1);
            let points = usize::try_from(window / step).unwrap_or(0).max(1);
            let (step, points_i) = (
                i64::try_from(step).unwrap_or(60),
                i64::try_from(points).unwrap_or(1),
            );
            let end = now - now.rem_euclid(step);
            let start = end - (points_i - 1) * step;
            let side = |version: &str| -> Result<[super::probe::Request; 3], PlanError> {
                let args = BTreeMap::from([("version".to_string(), version.to_string())]);
                let one = |q: &str| -> Result<super::probe::Request, PlanError> {
                    let q = query::substitute(q, &args)?;
                    super::probe::prometheus_range_request(&prom.provider(&q), &q, start, end, step)
                        .map_err(bad)
                };
                Ok([
                    one(&prom.requests)?,
                    one(&prom.errors)?,
                    one(&prom.latency)?,
                ])
            };
            Some(JudgeSource::Prometheus(PromJudgePlan {
                canary: side(versions.0)?,
                stable: side(versions.1)?,
                start,
                step,
                points,
            }))
        };
        self.judge = Some((judge_entry(metric, prior, measurements, recent), source));
        Ok(())
    }

    /// The judge's pseudo-metric with what it knew before, and whether it is decided.
    fn judge_metric(
        &self,
        previous: &[PreviousMetric],
    ) -> (
        Metric,
        Option<MetricStatus>,
        Vec<Measurement>,
        Vec<Measurement>,
        bool,
    ) {
        let count = self
            .metrics
            .iter()
            .map(|e| e.metric.count)
            .max()
            .unwrap_or(1)
            .max(1);
        let metric = judge_metric(count);
        let (prior, measurements, recent) = previous_of(previous, None, JUDGE);
        let decided = metric_status_after(&metric, prior.as_ref(), &measurements)
            .phase
            .is_completed();
        (metric, prior, measurements, recent, decided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Phase;
    use serde_json::json;

    fn cell() -> CellSpec {
        serde_json::from_value(json!({
            "name": "web",
            "ingress": {"alb": {"listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"}},
            "clusterSelector": {"matchTags": {"okra.io/cell": "web"}},
            "targetGroup": {"port": 30080, "protocol": "HTTP", "registration": "external"},
            "analysisTemplates": [
                {"name": "errors", "args": [{"name": "lb", "value": "app/web/1"}, {"name": "cell"}],
                 "metrics": [{
                    "name": "ratio", "interval": "1m", "count": 2, "successCondition": "result < 0.01",
                    "provider": {"cloudwatch": {"window": "5m", "metricDataQueries": [
                        {"id": "e", "metricStat": {"namespace": "AWS/ApplicationELB", "metricName": "HTTPCode_Target_5XX_Count",
                            "dimensions": {"LoadBalancer": "{{args.lb}}"}, "period": 60, "stat": "Sum"}},
                        {"id": "r", "metricStat": {"namespace": "AWS/ApplicationELB", "metricName": "RequestCount",
                            "dimensions": {"LoadBalancer": "{{args.lb}}"}, "period": 60, "stat": "Sum"}},
                        {"id": "q", "expression": "e / r", "returnData": true}
                    ]}}
                 }, {
                    "name": "dd", "count": 3, "successCondition": "result < 1",
                    "provider": {"datadog": {"query": "sum:errors{cell:{{args.cell}}}"}}
                 }]}
            ]
        }))
        .expect("a cell")
    }

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn every_cloudwatch_query_goes_on_one_call_with_prefixed_ids() {
        let plan = plan_templates(
            &cell(),
            &["errors".into()],
            &args(&[("cell", "web")]),
            &[],
            0,
        )
        .expect("plans");
        assert_eq!(plan.metrics.len(), 2);
        assert_eq!(
            plan.metrics[0].source,
            Source::CloudWatch {
                result_id: "m0_q".into(),
                window: 300
            }
        );
        let ids: Vec<(&str, bool)> = plan
            .queries
            .iter()
            .map(|q| (q.id.as_str(), q.return_data))
            .collect();
        assert_eq!(ids, [("m0_e", false), ("m0_r", false), ("m0_q", true)]);
        assert_eq!(plan.queries[2].expression.as_deref(), Some("m0_e / m0_r"));
        let stat = plan.queries[0].metric_stat.as_ref().expect("a stat");
        assert_eq!(
            stat.dimensions.get("LoadBalancer").map(String::as_str),
            Some("app/web/1")
        );
        assert_eq!(
            plan.metrics[1].source,
            Source::Datadog {
                query: "sum:errors{cell:web}".into(),
                window: 300
            },
            "Datadog's default look-back is {DEFAULT_DATADOG_INTERVAL}"
        );
        assert_eq!(plan.longest_window, 300);
    }

    #[test]
    fn a_decided_metric_is_not_sampled_again() {
        let failed = |n: u32| Measurement {
            value: None,
            phase: Phase::Failed,
            message: format!("sample {n}"),
            at: "t".into(),
        };
        let previous = [PreviousMetric {
            template: Some("errors".into()),
            name: "ratio".into(),
            measurements: vec![failed(1), failed(2)],
            status: None,
        }];
        let plan = plan_templates(
            &cell(),
            &["errors".into()],
            &args(&[("cell", "web")]),
            &previous,
            0,
        )
        .expect("plans");
        assert_eq!(plan.metrics[0].source, Source::Done);
        assert_eq!(plan.metrics[0].measurements.len(), 2, "kept to count");
        assert!(plan.queries.is_empty(), "nothing asked of CloudWatch");
    }

    #[test]
    fn an_unknown_template_or_a_missing_arg_is_the_inputs_fault() {
        let err = plan_templates(
            &cell(),
            &["errors".into(), "nope".into()],
            &args(&[("cell", "web")]),
            &[],
            0,
        )
        .expect_err("unknown");
        assert!(
            matches!(&err, PlanError::InvalidInput(m) if m.contains("templates[1]") && m.contains("it has: errors")),
            "{err}"
        );
        let err = plan_templates(&cell(), &["errors".into()], &BTreeMap::new(), &[], 0)
            .expect_err("`cell` has no value");
        assert!(matches!(err, PlanError::InvalidInput(_)), "{err}");
    }

    #[test]
    fn the_judge_counts_like_the_longest_metric_and_shares_the_call() {
        let mut plan = plan_templates(
            &cell(),
            &["errors".into()],
            &args(&[("cell", "web")]),
            &[],
            0,
        )
        .expect("plans");
        let before = plan.queries.len();
        let tg = |n: &str| {
            format!(
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{n}/0123456789abcdef"
            )
        };
        plan.add_judge(
            &JudgeSpec::default(),
            &[],
            &[tg("c1")],
            &[tg("s1"), tg("s2")],
            "app/web/1",
        )
        .expect("plans the judge");
        let (judge, queries) = plan.judge.as_ref().expect("a judge");
        assert_eq!(judge.metric.name, JUDGE);
        assert_eq!(judge.metric.count, 3, "the longest metric's count");
        let Some(JudgeSource::CloudWatch(q)) = queries.as_ref() else {
            panic!("not decided: CloudWatch queries, got {queries:?}");
        };
        assert_eq!((q.canary.len(), q.stable.len()), (1, 2));
        assert_eq!(
            plan.queries.len(),
            before + 3 * 3,
            "three queries per target group"
        );
    }
}
