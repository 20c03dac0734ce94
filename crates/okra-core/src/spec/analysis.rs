//! The analysis part of a cell spec: templates, metrics and their providers, the judge.

use super::*;

/// A named analysis: metrics sampled `count` times every `interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisTemplate {
    /// The name steps refer to.
    pub name: String,
    /// Arguments the metrics' queries use; a value here is the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    /// The metrics; each gets its own verdict.
    pub metrics: Vec<Metric>,
}

/// One metric of an analysis (Argo Rollouts' shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metric {
    /// The metric's name, unique in its template.
    pub name: String,
    /// Time between samples, such as `1m`.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Wait this long before the first sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// How many samples (default 1).
    #[serde(default = "default_count")]
    pub count: u32,
    /// A CEL expression over `result` that means success, such as `result < 0.01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// A CEL expression over `result` that means failure, such as `result >= 0.05`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Failed samples tolerated before the metric fails (default 0).
    #[serde(default)]
    pub failure_limit: u32,
    /// Inconclusive samples tolerated before the analysis stops as inconclusive (default 0).
    #[serde(default)]
    pub inconclusive_limit: u32,
    /// Consecutive errors (the provider could not answer) tolerated (default 4).
    #[serde(default = "default_consecutive_error_limit")]
    pub consecutive_error_limit: u32,
    /// Measure and report, but never fail the rollout.
    #[serde(default)]
    pub dry_run: bool,
    /// Where the numbers come from.
    pub provider: MetricProvider,
}

pub(super) fn default_interval() -> String {
    "1m".to_string()
}

pub(super) fn default_count() -> u32 {
    1
}

pub(super) fn default_consecutive_error_limit() -> u32 {
    4
}

/// Where a metric's numbers come from: exactly one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricProvider {
    /// Amazon CloudWatch GetMetricData.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch: Option<CloudWatchProvider>,
    /// Datadog's metrics query API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogProvider>,
}

/// CloudWatch GetMetricData queries; the one with `returnData: true` (or the last) is `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudWatchProvider {
    /// How far back each sample looks (default: the metric's interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The queries, in GetMetricData's shape.
    pub metric_data_queries: Vec<CloudWatchQuery>,
}

/// One GetMetricData query: `metricStat` or `expression`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudWatchQuery {
    /// The query's id: starts with a lower-case letter, then letters, digits and `_`.
    pub id: String,
    /// A metric math expression over other queries' ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// One metric, statistic and period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStat>,
    /// Whether this query is the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
    /// A label for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A CloudWatch metric, statistic and period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricStat {
    /// Such as `AWS/ApplicationELB`.
    pub namespace: String,
    /// Such as `HTTPCode_Target_5XX_Count`.
    pub metric_name: String,
    /// Dimension name → value; values may use `{{args.NAME}}`.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Seconds, a multiple of 60 (or 1, 5, 10, 30 for high resolution).
    #[serde(default = "default_period")]
    pub period: u32,
    /// `Sum`, `Average`, `Maximum`, `Minimum`, `SampleCount` or `pNN`.
    pub stat: String,
    /// An optional unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

pub(super) fn default_period() -> u32 {
    60
}

/// A Datadog metrics query; its last point's value is `result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatadogProvider {
    /// A Datadog query, such as `sum:trace.http.request.errors{service:web}.as_count()`.
    pub query: String,
    /// How far back each sample looks (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// The built-in judge: canary target groups against stable ones behind the same ALB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgeSpec {
    /// Run the judge at each analysis step (on by default).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Below this many requests to the canary in a sample, the sample is Inconclusive.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// Confidence of the Mann-Whitney U test, 0.5-0.999 (default 0.95).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// The largest tolerated increase of the canary's 5xx rate over the stable one, in
    /// percentage points (default 1.0).
    #[serde(default = "default_max_error_rate_increase")]
    pub max_error_rate_increase: f64,
    /// The largest tolerated ratio of canary to stable latency (default 1.2 = 20 % slower).
    #[serde(default = "default_max_latency_ratio")]
    pub max_latency_ratio: f64,
    /// How far back the judge looks, such as `5m`.
    #[serde(default = "default_judge_window")]
    pub window: String,
}

pub(super) fn default_min_requests() -> u64 {
    50
}

pub(super) fn default_confidence() -> f64 {
    0.95
}

pub(super) fn default_max_error_rate_increase() -> f64 {
    1.0
}

pub(super) fn default_max_latency_ratio() -> f64 {
    1.2
}

pub(super) fn default_judge_window() -> String {
    "5m".to_string()
}

impl Default for JudgeSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            min_requests: default_min_requests(),
            confidence: default_confidence(),
            max_error_rate_increase: default_max_error_rate_increase(),
            max_latency_ratio: default_max_latency_ratio(),
            window: default_judge_window(),
        }
    }
}
