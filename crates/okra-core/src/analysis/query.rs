//! A sample's queries, planned: `{{args.X}}` substituted, the ids of several metrics' queries
//! kept apart in one GetMetricData call, the ALB dimensions, the judge's own queries, and the
//! datapoints read back. `check-metrics` plans with these, makes the calls, and judges.

use std::collections::{BTreeMap, BTreeSet};

use crate::analysis::{MeasuredValue, Series};
use crate::spec::{Metric, MetricProvider, MetricStat};

/// The name of the judge's pseudo-metric in a sample's `metrics` and `previous`.
pub const JUDGE: &str = "judge";
/// At most this many queries go in one GetMetricData call.
pub const MAX_METRIC_QUERIES: usize = 500;

/// One CloudWatch GetMetricData query, in a neutral shape: `metric_stat` or `expression` (over
/// other queries' ids of the same call).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// Unique in the call; starts with a lower-case letter.
    pub id: String,
    /// A metric math expression.
    pub expression: Option<String>,
    /// One metric, statistic and period (`{{args.X}}` already substituted).
    pub metric_stat: Option<MetricStat>,
    /// Whether CloudWatch returns this query's datapoints. Sent explicitly, also when false:
    /// AWS takes an omitted `ReturnData` as true.
    pub return_data: bool,
    /// A label.
    pub label: Option<String>,
}

/// The datapoints of one query, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSeries {
    /// The query's id.
    pub id: String,
    /// Epoch seconds, ascending.
    pub timestamps: Vec<i64>,
    /// The values, index by index with `timestamps`.
    pub values: Vec<f64>,
}

/// Why a text cannot be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    /// The template is wrong (the spec's fault).
    #[error("{0}")]
    Spec(String),
    /// An argument has no value (the step's fault).
    #[error("{0}")]
    MissingArg(String),
}

/// Replaces every `{{args.NAME}}` (spaces inside the braces allowed) by its value.
pub fn substitute(text: &str, args: &BTreeMap<String, String>) -> Result<String, SubstituteError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(SubstituteError::Spec(format!(
                "unclosed `{{{{` in {text:?}"
            )));
        };
        let inner = after[..close].trim();
        let name = inner.strip_prefix("args.").ok_or_else(|| {
            SubstituteError::Spec(format!(
                "`{{{{{inner}}}}}` in {text:?}: only args.NAME is defined"
            ))
        })?;
        let value = args.get(name).ok_or_else(|| {
            SubstituteError::MissingArg(format!("args.{name}: no value given (used in {text:?})"))
        })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Prefixes the identifiers of `expr` that are in `ids` (outside quoted strings), so that
/// queries of several metrics can share one GetMetricData call.
pub fn prefix_ids(expr: &str, ids: &BTreeSet<String>, prefix: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 8);
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if ids.contains(&word) {
                out.push_str(prefix);
            }
            out.push_str(&word);
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

pub use crate::arn::{load_balancer_dimension, target_group_dimension};

/// A look-back in seconds; at least a minute (CloudWatch's and the judge's resolution).
pub fn seconds(text: &str, what: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{what}: {text:?} is not a duration: {e}"))?;
    Ok(i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(60))
}

/// The judge's pseudo-metric: `count` windows, none failed or inconclusive.
pub fn judge_metric(count: u32) -> Metric {
    Metric {
        name: JUDGE.to_string(),
        interval: "1m".to_string(),
        initial_delay: None,
        count,
        success_condition: None,
        failure_condition: None,
        failure_limit: 0,
        inconclusive_limit: 0,
        consecutive_error_limit: 4,
        dry_run: false,
        provider: MetricProvider::default(),
    }
}

/// The judge's queries per target group: `(id suffix, ALB metric, statistic)`.
pub const JUDGE_STATS: [(&str, &str, &str); 3] = [
    ("req", "RequestCount", "Sum"),
    ("err", "HTTPCode_Target_5XX_Count", "Sum"),
    ("lat", "TargetResponseTime", "Average"),
];

/// The judge's queries for one side: for each target group (`field[i]`), the ids of its
/// requests, 5xx and latency queries on its ALB metrics, and the queries. `tag` keeps the
/// sides' ids apart in the shared call.
pub fn judge_queries(
    arns: &[String],
    load_balancer: &str,
    field: &str,
    tag: &str,
) -> Result<(Vec<[String; 3]>, Vec<MetricQuery>), String> {
    let mut queries = Vec::new();
    let mut ids = Vec::new();
    for (i, arn) in arns.iter().enumerate() {
        let tg = target_group_dimension(arn)
            .ok_or_else(|| format!("{field}[{i}]: {arn:?} is not a target group ARN"))?;
        ids.push(JUDGE_STATS.map(|(suffix, metric_name, stat)| {
            let id = format!("judge_{tag}{i}_{suffix}");
            queries.push(MetricQuery {
                id: id.clone(),
                expression: None,
                metric_stat: Some(MetricStat {
                    namespace: "AWS/ApplicationELB".into(),
                    metric_name: metric_name.into(),
                    dimensions: BTreeMap::from([
                        ("LoadBalancer".to_string(), load_balancer.to_string()),
                        ("TargetGroup".to_string(), tg.to_string()),
                    ]),
                    period: 60,
                    stat: stat.into(),
                    unit: None,
                }),
                return_data: true,
                label: None,
            });
            id
        }));
    }
    Ok((ids, queries))
}

/// A `MetricStat` with its `{{args.X}}` substituted.
pub fn substitute_stat(
    ms: &MetricStat,
    args: &BTreeMap<String, String>,
) -> Result<MetricStat, SubstituteError> {
    Ok(MetricStat {
        namespace: substitute(&ms.namespace, args)?,
        metric_name: substitute(&ms.metric_name, args)?,
        dimensions: ms
            .dimensions
            .iter()
            .map(|(k, v)| Ok((k.clone(), substitute(v, args)?)))
            .collect::<Result<_, SubstituteError>>()?,
        period: ms.period,
        stat: ms.stat.clone(),
        unit: ms.unit.clone(),
    })
}

/// The last datapoint of `series` within `[end - window, end]`.
pub fn last_in_window(
    series: Option<&MetricSeries>,
    end: i64,
    window: i64,
) -> Option<MeasuredValue> {
    let s = series?;
    s.timestamps
        .iter()
        .zip(&s.values)
        .filter(|(t, _)| **t >= end - window && **t <= end)
        .map(|(_, v)| *v)
        .next_back()
        .map(MeasuredValue::Number)
}

/// One target group's per-minute series over `[start, start + 60 * minutes)`.
pub fn tg_series(
    ids: &[String; 3],
    data: &BTreeMap<&str, &MetricSeries>,
    start: i64,
    minutes: usize,
) -> Series {
    let column = |id: &str| -> Vec<f64> {
        let mut v = vec![f64::NAN; minutes];
        if let Some(s) = data.get(id) {
            for (t, x) in s.timestamps.iter().zip(&s.values) {
                let i = (t - start).div_euclid(60);
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| v.get_mut(i)) {
                    *slot = *x;
                }
            }
        }
        v
    };
    // ALB publishes no HTTPCode_Target_5XX_Count for a minute without 5xx.
    side_series(column(&ids[0]), column(&ids[1]), column(&ids[2]))
}

/// A side's judge series from its three columns (requests, 5xx, latency), point by point: a
/// point without a 5xx value but with requests counts zero errors (neither ALB's metric nor a
/// Prometheus query over only 5xx series has a value for a point without 5xx).
pub fn side_series(requests: Vec<f64>, errors: Vec<f64>, latency_seconds: Vec<f64>) -> Series {
    let errors_5xx = errors
        .into_iter()
        .zip(&requests)
        .map(|(e, r)| {
            if e.is_nan() && r.is_finite() && *r > 0.0 {
                0.0
            } else {
                e
            }
        })
        .collect();
    Series {
        requests,
        errors_5xx,
        latency_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-a/0123";

    #[test]
    fn substitution_errors_say_whose_fault() {
        let args = BTreeMap::from([("lb".to_string(), "app/x/1".to_string())]);
        assert!(matches!(
            substitute("{{args.nope}}", &args),
            Err(SubstituteError::MissingArg(_))
        ));
        assert!(matches!(
            substitute("{{ env.x }}", &args),
            Err(SubstituteError::Spec(_))
        ));
        assert!(matches!(
            substitute("{{args.lb", &args),
            Err(SubstituteError::Spec(_))
        ));
    }

    #[test]
    fn the_judge_asks_three_alb_metrics_per_group() {
        let (ids, queries) =
            judge_queries(&[TG.to_string()], "app/web/9", "canary", "c").expect("plans");
        assert_eq!(
            ids,
            [["judge_c0_req", "judge_c0_err", "judge_c0_lat"].map(String::from)]
        );
        assert_eq!(queries.len(), 3);
        let stat = queries[1].metric_stat.as_ref().expect("a stat");
        assert_eq!(stat.metric_name, "HTTPCode_Target_5XX_Count");
        assert_eq!(stat.dimensions["TargetGroup"], "targetgroup/web-a/0123");
        assert_eq!(stat.dimensions["LoadBalancer"], "app/web/9");
        assert_eq!(
            judge_queries(&["nope".to_string()], "lb", "stable", "s"),
            Err("stable[0]: \"nope\" is not a target group ARN".to_string())
        );
    }

    #[test]
    fn a_minute_without_5xx_counts_zero_errors_when_there_were_requests() {
        let ids = ["r", "e", "l"].map(String::from);
        let req = MetricSeries {
            id: "r".into(),
            timestamps: vec![0, 60],
            values: vec![10.0, 0.0],
        };
        let data = BTreeMap::from([("r", &req)]);
        let s = tg_series(&ids, &data, 0, 3);
        assert_eq!(s.errors_5xx[0], 0.0);
        assert!(s.errors_5xx[1].is_nan(), "no requests: no count");
        assert!(s.requests[2].is_nan());
        assert_eq!(
            last_in_window(Some(&req), 60, 60),
            Some(MeasuredValue::Number(0.0))
        );
    }
}
