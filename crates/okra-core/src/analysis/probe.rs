//! The providers okra reaches over HTTP (Prometheus, Amazon Managed Service for Prometheus, any
//! web endpoint) and Lambda, planned and read back: the request one sample makes, and the value
//! its answer holds. Pure: check-metrics sends the requests (secret headers read from Secrets
//! Manager, SigV4 signed with the function's credentials) and hands each answer back here.
//!
//! What each answer means:
//! - **Prometheus** (HTTP API, "Instant queries"): `{"status": "success", "data": {"resultType",
//!   "result"}}`. A `scalar`, or a `vector` of one sample, is a number; a longer vector is a list
//!   (one value per series); an empty vector is no data; a `matrix` of one series is its values,
//!   of several an error (aggregate them in the query). `{"status": "error", "errorType",
//!   "error"}` is an error named by Prometheus' `errorType`.
//! - **web**: the value at `jsonPath` in the JSON answer of a 2xx: a number, a numeric string, a
//!   boolean (1 or 0), or a list of numbers; nothing there is no data.
//! - **Lambda**: the function's answer `{"result": …, "message": "…"}`, `result` read as for web;
//!   a function error (`X-Amz-Function-Error`) is an error named by the function's `errorType`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::MeasuredValue;
use crate::spec::{Header, LambdaProvider, PrometheusProvider, WebMethod, WebProvider};

/// How long a request may take when the metric does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The SigV4 service name of Amazon Managed Service for Prometheus.
pub const AMP_SERVICE: &str = "aps";
/// At most this much of an answer's text goes into an error message.
const MAX_QUOTED: usize = 300;

/// A header's value: plain, or read from a Secrets Manager secret (a key of a JSON secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Sent as it is.
    Plain(String),
    /// The secret's text, or the value of `key` in its JSON object; never logged.
    Secret {
        /// The secret's ARN.
        arn: String,
        /// The key, for a JSON secret.
        key: Option<String>,
    },
}

/// SigV4 signing: the region and service of the credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Scope {
    /// Such as `us-east-1`.
    pub region: String,
    /// Such as `aps`.
    pub service: String,
    /// Sign with this role's credentials (assumed), not the function's.
    pub role_arn: Option<String>,
}

/// One HTTP request of a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// GET or POST.
    pub method: WebMethod,
    /// The whole URL, query string included (percent-encoded).
    pub url: String,
    /// The headers.
    pub headers: Vec<(String, HeaderValue)>,
    /// The body (JSON), for a POST.
    pub body: Option<String>,
    /// How long the request may take.
    pub timeout: Duration,
    /// Sign it, with this scope.
    pub sigv4: Option<SigV4Scope>,
}

/// How an answer is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// Prometheus' query API.
    Prometheus,
    /// A JSON answer, the value at this JSONPath.
    Json(String),
}

/// Why a provider's answer holds no value: a stable `kind` (Prometheus' `errorType`, `http503`,
/// `functionError`, …) and a message for people. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ProviderError {
    /// A stable name.
    pub kind: String,
    /// One line for people.
    pub message: String,
}

impl ProviderError {
    fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// RFC 3986 percent-encoding of a query value (unreserved characters kept), as SigV4's
/// canonical query string wants it.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn headers_of(headers: &[Header]) -> Vec<(String, HeaderValue)> {
    headers
        .iter()
        .map(|h| {
            let value = match (&h.value, &h.secret_arn) {
                (_, Some(arn)) => HeaderValue::Secret {
                    arn: arn.clone(),
                    key: h.secret_key.clone(),
                },
                (Some(v), None) => HeaderValue::Plain(v.clone()),
                (None, None) => HeaderValue::Plain(String::new()),
            };
            (h.name.clone(), value)
        })
        .collect()
}

fn timeout_of(text: Option<&str>) -> Result<Duration, String> {
    match text {
        None => Ok(DEFAULT_TIMEOUT),
        Some(t) => humantime::parse_duration(t.trim())
            .map_err(|e| format!("timeout: {t:?} is not a duration: {e}")),
    }
}

/// The instant query `query` (placeholders substituted) at `at` (epoch seconds).
pub fn prometheus_request(p: &PrometheusProvider, query: &str, at: i64) -> Result<Request, String> {
    let timeout = timeout_of(p.timeout.as_deref())?;
    let url = format!(
        "{}/api/v1/query?query={}&time={at}&timeout={}s",
        p.address.trim_end_matches('/'),
        encode(query),
        timeout.as_secs().max(1)
    );
    Ok(Request {
        method: WebMethod::Get,
        url,
        headers: headers_of(&p.headers),
        body: None,
        timeout,
        sigv4: p.sigv4.as_ref().map(|s| SigV4Scope {
            region: s.region.clone(),
            service: AMP_SERVICE.to_string(),
            role_arn: s.role_arn.clone(),
        }),
    })
}

/// A range query `query` from `start` to `end` (epoch seconds), one point per `step` seconds.
pub fn prometheus_range_request(
    p: &PrometheusProvider,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Request, String> {
    let mut r = prometheus_request(p, query, end)?;
    r.url = format!(
        "{}/api/v1/query_range?query={}&start={start}&end={end}&step={step}&timeout={}s",
        p.address.trim_end_matches('/'),
        encode(query),
        r.timeout.as_secs().max(1)
    );
    Ok(r)
}

/// Reads a range query's answer as `points` slots from `start`, one per `step` seconds (NaN
/// where the series has no point): one series, or none (all NaN); several are an error.
pub fn read_prometheus_range(
    status: u16,
    body: &[u8],
    start: i64,
    step: i64,
    points: usize,
) -> Result<Vec<f64>, ProviderError> {
    let doc = prometheus_answer(status, body)?;
    if doc["status"] != "success" {
        return read_prometheus(status, body).map(|_| Vec::new());
    }
    let mut slots = vec![f64::NAN; points];
    let series = doc["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match series.as_slice() {
        [] => {}
        [one] => {
            for p in one["values"].as_array().into_iter().flatten() {
                let (Some(t), Some(v)) =
                    (p.get(0).and_then(Value::as_f64), p.get(1).and_then(number))
                else {
                    continue;
                };
                let i = ((t as i64) - start).div_euclid(step.max(1));
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| slots.get_mut(i)) {
                    *slot = v;
                }
            }
        }
        many => {
            return Err(ProviderError::new(
                "many_series",
                format!(
                    "the judge's query answers {} series; aggregate them to one per side (sum(...))",
                    many.len()
                ),
            ));
        }
    }
    Ok(slots)
}

/// The web metric's request, its URL and body substituted.
pub fn web_request(w: &WebProvider, url: &str, body: Option<String>) -> Result<Request, String> {
    let mut headers = headers_of(&w.headers);
    if body.is_some()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            "content-type".to_string(),
            HeaderValue::Plain("application/json".to_string()),
        ));
    }
    Ok(Request {
        method: w.method,
        url: url.to_string(),
        headers,
        body,
        timeout: timeout_of(w.timeout.as_deref())?,
        sigv4: None,
    })
}

fn quoted(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(MAX_QUOTED)
        .collect()
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Prometheus writes sample values as strings ("1.5", "NaN", "+Inf").
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// A JSON value as a measured value: a number, a numeric string, a boolean (1 or 0) or a list
/// of those; `null` (or an empty list) is no data.
pub fn value_of_json(v: &Value) -> Result<Option<MeasuredValue>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Array(items) if items.is_empty() => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|i| number(i).ok_or_else(|| format!("{i} in the list is not a number")))
            .collect::<Result<Vec<f64>, String>>()
            .map(|v| Some(MeasuredValue::Series(v))),
        other => number(other)
            .map(|n| Some(MeasuredValue::Number(n)))
            .ok_or_else(|| format!("{other} is not a number, a boolean or a list of numbers")),
    }
}

/// A Prometheus API answer's JSON (an answer that is none is an error named by its status).
fn prometheus_answer(status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    serde_json::from_slice(body).map_err(|_| {
        ProviderError::new(
            format!("http{status}"),
            format!("not a Prometheus answer (HTTP {status}): {}", quoted(body)),
        )
    })
}

/// Reads a Prometheus query answer.
pub fn read_prometheus(status: u16, body: &[u8]) -> Result<Option<MeasuredValue>, ProviderError> {
    let doc = prometheus_answer(status, body)?;
    if doc["status"] != "success" {
        let kind = doc["errorType"].as_str().unwrap_or("error");
        let message = doc["error"]
            .as_str()
            .map(str::to_string)
            .or_else(|| doc["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| quoted(body));
        return Err(ProviderError::new(
            kind,
            format!("Prometheus answered {status}: {message}"),
        ));
    }
    let data = &doc["data"];
    let result = &data["result"];
    let bad = |what: &str| ProviderError::new("bad_response", what.to_string());
    match data["resultType"].as_str() {
        Some("scalar") => Ok(result.get(1).and_then(number).map(MeasuredValue::Number)),
        Some("vector") => {
            let samples = result
                .as_array()
                .ok_or_else(|| bad("a vector without a result list"))?;
            let values: Vec<f64> = samples
                .iter()
                .map(|s| s["value"].get(1).and_then(number))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a vector sample without a [time, value]"))?;
            Ok(match values.as_slice() {
                [] => None,
                [one] => Some(MeasuredValue::Number(*one)),
                _ => Some(MeasuredValue::Series(values)),
            })
        }
        Some("matrix") => {
            let series = result
                .as_array()
                .ok_or_else(|| bad("a matrix without a result list"))?;
            match series.as_slice() {
                [] => Ok(None),
                [one] => one["values"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|p| p.get(1).and_then(number))
                            .collect()
                    })
                    .map(|v: Vec<f64>| (!v.is_empty()).then_some(MeasuredValue::Series(v)))
                    .ok_or_else(|| bad("a matrix series without values")),
                many => Err(ProviderError::new(
                    "many_series",
                    format!(
                        "the query answers {} series over a range; aggregate them to one \
                         (for example with sum(...)) or make it an instant vector",
                        many.len()
                    ),
                )),
            }
        }
        other => Err(bad(&format!(
            "resultType {} is not scalar, vector or matrix",
            other.unwrap_or("(none)")
        ))),
    }
}

/// Reads a web metric's answer: a 2xx whose JSON holds the value at `json_path`.
pub fn read_web(
    status: u16,
    body: &[u8],
    json_path: &str,
) -> Result<Option<MeasuredValue>, ProviderError> {
    if !(200..300).contains(&status) {
        return Err(ProviderError::new(
            format!("http{status}"),
            format!("the endpoint answered {status}: {}", quoted(body)),
        ));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|_| {
        ProviderError::new(
            "not_json",
            format!("the answer is not JSON: {}", quoted(body)),
        )
    })?;
    pick(&doc, json_path)
}

/// The value at `json_path` in `doc`: one node is its value, several a list, none no data.
pub fn pick(doc: &Value, json_path: &str) -> Result<Option<MeasuredValue>, ProviderError> {
    let path = serde_json_path::JsonPath::parse(json_path)
        .map_err(|e| ProviderError::new("bad_json_path", format!("{json_path}: {e}")))?;
    let nodes = path.query(doc).all();
    let value = match nodes.as_slice() {
        [] => return Ok(None),
        [one] => (*one).clone(),
        many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
    };
    value_of_json(&value)
        .map_err(|e| ProviderError::new("not_a_number", format!("{json_path}: {e}")))
}

/// Checks a JSONPath (for validation).
pub fn check_json_path(json_path: &str) -> Result<(), String> {
    serde_json_path::JsonPath::parse(json_path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What a Lambda metric's function is invoked with.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaContext<'a> {
    /// The cell.
    pub cell: &'a str,
    /// The template and metric.
    pub template: Option<&'a str>,
    /// The metric.
    pub metric: &'a str,
    /// The metric's args (the step's over the template's defaults).
    pub args: &'a BTreeMap<String, String>,
    /// The canary side (version, clusters, target groups), as the state machine passed it.
    pub canary: Value,
    /// The stable side.
    pub stable: Value,
    /// The sample's time (RFC 3339).
    pub at: &'a str,
}

/// The payload a Lambda metric's function gets.
pub fn lambda_payload(p: &LambdaProvider, ctx: &LambdaContext<'_>) -> Value {
    json!({
        "okra": "analysis-sample",
        "function": p.function_name,
        "cell": ctx.cell,
        "template": ctx.template,
        "metric": ctx.metric,
        "args": ctx.args,
        "canary": ctx.canary,
        "stable": ctx.stable,
        "at": ctx.at,
    })
}

/// Reads a Lambda metric's answer: the value and the function's message.
pub fn read_lambda(
    function_error: Option<&str>,
    body: &[u8],
) -> Result<(Option<MeasuredValue>, Option<String>), ProviderError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| {
        ProviderError::new(
            "not_json",
            format!("the function answered: {}", quoted(body)),
        )
    })?;
    if let Some(kind) = function_error {
        let message = doc["errorMessage"].as_str().unwrap_or(kind).to_string();
        let kind = doc["errorType"].as_str().unwrap_or(kind);
        return Err(ProviderError::new(
            "functionError",
            format!("the function failed ({kind}): {message}"),
        ));
    }
    let Some(result) = doc.get("result") else {
        return Err(ProviderError::new(
            "no_result",
            format!(
                "the function's answer has no `result` (expected {{\"result\": …, \"message\": \"…\"}}): {}",
                quoted(body)
            ),
        ));
    };
    let value = value_of_json(result).map_err(|e| ProviderError::new("not_a_number", e))?;
    Ok((value, doc["message"].as_str().map(str::to_string)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prom(body: Value) -> Result<Option<MeasuredValue>, ProviderError> {
        read_prometheus(200, body.to_string().as_bytes())
    }

    #[test]
    fn prometheus_answers_are_numbers_lists_or_no_data() {
        let vector = |values: &[&str]| {
            json!({"status": "success", "data": {"resultType": "vector", "result":
                values.iter().map(|v| json!({"metric": {}, "value": [1_700_000_000.0, v]})).collect::<Vec<_>>()}})
        };
        assert_eq!(
            prom(vector(&["0.25"])),
            Ok(Some(MeasuredValue::Number(0.25)))
        );
        assert_eq!(
            prom(vector(&["1", "2"])),
            Ok(Some(MeasuredValue::Series(vec![1.0, 2.0])))
        );
        assert_eq!(prom(vector(&[])), Ok(None), "an empty vector is no data");
        let nan = prom(vector(&["NaN"])).unwrap();
        assert!(matches!(nan, Some(MeasuredValue::Number(n)) if n.is_nan()));
        assert_eq!(
            prom(
                json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}})
            ),
            Ok(Some(MeasuredValue::Number(3.0)))
        );
        let matrix = |n: usize| {
            json!({"status": "success", "data": {"resultType": "matrix", "result":
                (0..n).map(|_| json!({"metric": {}, "values": [[1.0, "1"], [2.0, "4"]]})).collect::<Vec<_>>()}})
        };
        assert_eq!(
            prom(matrix(1)),
            Ok(Some(MeasuredValue::Series(vec![1.0, 4.0])))
        );
        assert_eq!(prom(matrix(2)).unwrap_err().kind, "many_series");
    }

    #[test]
    fn prometheus_errors_carry_its_error_type() {
        let e = read_prometheus(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, "bad_data");
        assert!(
            e.message.contains("400") && e.message.contains("parse error"),
            "{e}"
        );
        let e = read_prometheus(
            403,
            br#"{"message":"Authorization header requires 'Credential'"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("Credential"), "AMP's body: {e}");
        let e = read_prometheus(502, b"<html>bad gateway</html>").unwrap_err();
        assert_eq!(e.kind, "http502");
    }

    #[test]
    fn the_query_is_encoded_at_the_sample_time() {
        let p = PrometheusProvider {
            address: "http://127.0.0.1:9090/".into(),
            query: "unused".into(),
            timeout: Some("5s".into()),
            headers: vec![],
            sigv4: Some(crate::spec::SigV4Spec {
                region: "eu-west-1".into(),
                role_arn: Some("arn:aws:iam::111122223333:role/reader".into()),
            }),
        };
        let r = prometheus_request(&p, r#"sum(rate(x{code=~"5.."}[1m]))"#, 1_700_000_000).unwrap();
        assert_eq!(
            r.url,
            "http://127.0.0.1:9090/api/v1/query?query=sum%28rate%28x%7Bcode%3D~%225..%22%7D%5B1m%5D%29%29&time=1700000000&timeout=5s"
        );
        let scope = r.sigv4.unwrap();
        assert_eq!(scope.service, "aps");
        assert_eq!(
            scope.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/reader")
        );
        assert_eq!(r.timeout, Duration::from_secs(5));
    }

    #[test]
    fn range_answers_fill_one_slot_per_step() {
        let body = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1000.0, "5"], [1020.0, "7"], [1040.0, "NaN"]]}]}});
        let v = read_prometheus_range(200, body.to_string().as_bytes(), 1000, 10, 5).unwrap();
        assert_eq!(v[0], 5.0);
        assert!(v[1].is_nan(), "no point at 1010");
        assert_eq!(v[2], 7.0);
        assert!(v[4].is_nan() && v[3].is_nan());
        let empty = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(
            read_prometheus_range(200, empty.to_string().as_bytes(), 0, 1, 3)
                .unwrap()
                .iter()
                .all(|x| x.is_nan())
        );
        let e = read_prometheus_range(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"x"}"#,
            0,
            1,
            3,
        )
        .unwrap_err();
        assert_eq!(e.kind, "bad_data");
    }

    #[test]
    fn web_answers_are_picked_by_json_path() {
        let body =
            br#"{"data": {"errorRate": 0.02, "ok": true, "latencies": [10, "20"], "name": "x"}}"#;
        assert_eq!(
            read_web(200, body, "$.data.errorRate"),
            Ok(Some(MeasuredValue::Number(0.02)))
        );
        assert_eq!(
            read_web(200, body, "$.data.ok"),
            Ok(Some(MeasuredValue::Number(1.0)))
        );
        assert_eq!(
            read_web(200, body, "$.data.latencies"),
            Ok(Some(MeasuredValue::Series(vec![10.0, 20.0])))
        );
        assert_eq!(read_web(200, body, "$.data.missing"), Ok(None));
        assert_eq!(
            read_web(200, body, "$.data.name").unwrap_err().kind,
            "not_a_number"
        );
        assert_eq!(read_web(503, b"down", "$.x").unwrap_err().kind, "http503");
        assert_eq!(
            read_web(200, b"<html>", "$.x").unwrap_err().kind,
            "not_json"
        );
        assert!(check_json_path("$.data[").is_err());
    }

    #[test]
    fn lambda_answers_give_a_value_and_a_message() {
        assert_eq!(
            read_lambda(
                None,
                br#"{"result": false, "message": "smoke test: 3 of 20 failed"}"#
            ),
            Ok((
                Some(MeasuredValue::Number(0.0)),
                Some("smoke test: 3 of 20 failed".into())
            ))
        );
        let e = read_lambda(
            Some("Unhandled"),
            br#"{"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 3.00 seconds"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, "functionError");
        assert!(e.message.contains("Sandbox.Timedout"), "{e}");
        assert_eq!(
            read_lambda(None, br#"{"ok": 1}"#).unwrap_err().kind,
            "no_result"
        );
    }
}
