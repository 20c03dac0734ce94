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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricProvider {
    /// Amazon CloudWatch GetMetricData.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch: Option<CloudWatchProvider>,
    /// Datadog's metrics query API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogProvider>,
    /// A Prometheus server, or an Amazon Managed Service for Prometheus workspace (`sigv4`): an
    /// instant PromQL query at the sample's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusProvider>,
    /// An HTTP(S) endpoint that answers JSON: a value picked by a JSONPath is `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebProvider>,
    /// A Lambda function of yours (smoke tests, load tests, a change-ticket check), invoked with
    /// the rollout's context; its answer's `result` is `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<LambdaProvider>,
}

impl MetricProvider {
    /// The names of the providers set, in the order the spec lists them.
    pub fn set(&self) -> Vec<&'static str> {
        [
            ("cloudwatch", self.cloudwatch.is_some()),
            ("datadog", self.datadog.is_some()),
            ("prometheus", self.prometheus.is_some()),
            ("web", self.web.is_some()),
            ("lambda", self.lambda.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
    }
}

/// One request header: a plain `value`, or a value kept in Secrets Manager (`secretArn`, and
/// `secretKey` for a key of a JSON secret), read by the function and never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// The header's name, such as `Authorization` or `X-Scope-OrgID`.
    pub name: String,
    /// Its value (not a secret: it is stored with the cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The ARN of the Secrets Manager secret that holds the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// The key whose value to send when the secret is a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

/// SigV4 signing of each query with the function's credentials, or a role's (Amazon Managed
/// Service for Prometheus: service `aps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigV4Spec {
    /// The workspace's region, such as `us-east-1`.
    pub region: String,
    /// Sign with this role's credentials instead (sts:AssumeRole; a workspace in another
    /// account): `arn:aws:iam::111122223333:role/okra-amp-reader`. The stack's
    /// `PrometheusRoleArns` parameter must name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// A Prometheus instant query; a scalar or a one-element vector is `result` as a number, a
/// longer vector a list, an empty one "no data".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusProvider {
    /// The server's base URL, such as `http://prometheus.monitoring:9090`, or an AMP
    /// workspace's `https://aps-workspaces.REGION.amazonaws.com/workspaces/WORKSPACE_ID`.
    pub address: String,
    /// PromQL; `{{args.NAME}}` is substituted.
    pub query: String,
    /// How long the query may take (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Request headers (a tenant id, a bearer token from Secrets Manager).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// Sign each query with SigV4 (Amazon Managed Service for Prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<SigV4Spec>,
}

/// An HTTP method a web metric may use.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, strum::Display,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum WebMethod {
    /// GET (the default).
    #[default]
    Get,
    /// POST, with `body`.
    Post,
}

/// An HTTP(S) request whose JSON answer holds the value: a number, a boolean (1 or 0) or a
/// list of numbers, picked by `jsonPath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebProvider {
    /// The URL; `{{args.NAME}}` is substituted.
    pub url: String,
    /// GET (default) or POST.
    #[serde(default)]
    pub method: WebMethod,
    /// The body of a POST (JSON); `{{args.NAME}}` is substituted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// An RFC 9535 JSONPath to the value in the answer, such as `$.data.errorRate`.
    pub json_path: String,
    /// How long the request may take (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Request headers (values from Secrets Manager for tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
}

/// A Lambda function invoked (synchronously) with the rollout's context: the cell, the
/// versions, the step, the canary's weight, both sides' clusters and target groups, the
/// metric's args. Its answer: `{"result": NUMBER | BOOLEAN | [NUMBER], "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LambdaProvider {
    /// The function's name or ARN (a version or alias may follow `:`); it must match the
    /// stack's `AnalysisFunctions` parameter to be allowed.
    pub function_name: String,
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
    /// Take both sides' series from Prometheus (the same queries per side, selected by the
    /// side's version label) instead of the ALB's CloudWatch metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<JudgePrometheus>,
}

/// The judge's series from Prometheus: three range queries per side over `judge.window`, one
/// point per `step`, `{{args.version}}` being the side's version. Requests and 5xx are counts
/// per step, latency is seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgePrometheus {
    /// The server's base URL, or an AMP workspace's (with `sigv4`).
    pub address: String,
    /// Requests per step (default: `http_requests_total` by `version`, increase over 1m).
    #[serde(default = "default_judge_requests")]
    pub requests: String,
    /// 5xx responses per step (default: `http_requests_total{code=~"5.."}`, increase over 1m).
    #[serde(default = "default_judge_errors")]
    pub errors: String,
    /// Mean latency per step, in seconds (default: `http_request_duration_seconds` sum / count).
    #[serde(default = "default_judge_latency")]
    pub latency: String,
    /// One point per step (default `1m`, the queries' `[1m]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// How long each query may take (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// Sign each query with SigV4 (Amazon Managed Service for Prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<SigV4Spec>,
}

pub(super) fn default_judge_requests() -> String {
    r#"sum(increase(http_requests_total{version="{{args.version}}"}[1m]))"#.to_string()
}

pub(super) fn default_judge_errors() -> String {
    r#"sum(increase(http_requests_total{version="{{args.version}}",code=~"5.."}[1m]))"#.to_string()
}

pub(super) fn default_judge_latency() -> String {
    r#"sum(increase(http_request_duration_seconds_sum{version="{{args.version}}"}[1m])) / sum(increase(http_request_duration_seconds_count{version="{{args.version}}"}[1m]))"#.to_string()
}

impl JudgePrometheus {
    /// As the provider of one query, for the request it makes.
    pub fn provider(&self, query: &str) -> PrometheusProvider {
        PrometheusProvider {
            address: self.address.clone(),
            query: query.to_string(),
            timeout: self.timeout.clone(),
            headers: self.headers.clone(),
            sigv4: self.sigv4.clone(),
        }
    }
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
            prometheus: None,
        }
    }
}
