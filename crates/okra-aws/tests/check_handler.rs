//! `check-metrics` over in-test fake ports.

use std::sync::Mutex;

use okra_aws::OkraError;
use okra_aws::handlers::check::{
    CheckInput, CheckOutput, JUDGE, Providers, handle, prefix_ids, substitute,
};
use okra_aws::ports::{DatadogPort, MetricQuery, MetricSeries, MetricsPort};
use okra_core::analysis::Phase;
use okra_core::spec::CellSpec;
use serde_json::{Value, json};

const NOW: &str = "2026-01-01T12:00:30Z";
/// `NOW` floored to the minute, in epoch seconds.
const END: i64 = 1_767_268_800;

const CELL: &str = r#"
name: web
ingress:
  alb:
    listenerArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2
clusterSelector:
  matchTags:
    okra.io/cell: web
versionTag: okra.io/version
targetGroup:
  port: 30080
  protocol: HTTP
  targetType: instance
  registration: nodegroups
canary:
  steps:
    - setWeight: 10
analysisTemplates:
  - name: error-rate
    args:
      - name: load-balancer
        value: app/web-prod/50dc6c495c0c9188
    metrics:
      - name: elb-5xx-ratio
        interval: 1m
        count: 1
        successCondition: result < 0.01
        failureCondition: result >= 0.05
        provider:
          cloudwatch:
            window: 5m
            metricDataQueries:
              - id: errors
                metricStat:
                  namespace: AWS/ApplicationELB
                  metricName: HTTPCode_Target_5XX_Count
                  dimensions:
                    LoadBalancer: "{{args.load-balancer}}"
                  period: 60
                  stat: Sum
              - id: requests
                metricStat:
                  namespace: AWS/ApplicationELB
                  metricName: RequestCount
                  dimensions:
                    LoadBalancer: "{{args.load-balancer}}"
                  period: 60
                  stat: Sum
              - id: ratio
                expression: errors / requests
                returnData: true
  - name: more
    metrics:
      - name: a
        count: 1
        successCondition: result < 1
        provider:
          cloudwatch:
            metricDataQueries:
              - id: errors
                metricStat: {namespace: X, metricName: A, stat: Sum}
      - name: b
        count: 1
        successCondition: result < 1
        provider:
          cloudwatch:
            metricDataQueries:
              - id: errors
                metricStat: {namespace: X, metricName: B, stat: Sum}
  - name: latency
    args:
      - name: service
    metrics:
      - name: p95-latency
        count: 1
        successCondition: result < 0.3
        provider:
          datadog:
            query: "avg:trace.http.request.duration.by.service.95p{service:{{args.service}}}"
judge:
  enabled: true
  minRequests: 50
  window: 5m
"#;

fn tg(name: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{name}/0123456789abcdef"
    )
}

type Responder = Box<dyn Fn(&MetricQuery) -> Option<Vec<f64>> + Send + Sync>;

/// Answers each query with `respond(query)`, one value per minute ending at `END - 60`.
struct FakeMetrics {
    respond: Responder,
    fail: Option<fn() -> OkraError>,
    calls: Mutex<Vec<(Vec<MetricQuery>, i64, i64)>>,
}

impl FakeMetrics {
    fn new(respond: impl Fn(&MetricQuery) -> Option<Vec<f64>> + Send + Sync + 'static) -> Self {
        Self {
            respond: Box::new(respond),
            fail: None,
            calls: Mutex::new(Vec::new()),
        }
    }
    fn calls(&self) -> Vec<(Vec<MetricQuery>, i64, i64)> {
        self.calls.lock().expect("lock").clone()
    }
}

impl MetricsPort for FakeMetrics {
    async fn metric_exists(
        &self,
        _lookup: &okra_core::doctor::MetricLookup,
    ) -> okra_aws::Result<bool> {
        unreachable!("analysis never lists metrics")
    }

    async fn get_metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> okra_aws::Result<Vec<MetricSeries>> {
        self.calls
            .lock()
            .expect("lock")
            .push((queries.to_vec(), start, end));
        if let Some(f) = self.fail {
            return Err(f());
        }
        Ok(queries
            .iter()
            .filter(|q| q.return_data)
            .filter_map(|q| {
                let values = (self.respond)(q)?;
                let n = values.len() as i64;
                Some(MetricSeries {
                    id: q.id.clone(),
                    timestamps: (0..n).map(|i| END - 60 * (n - i)).collect(),
                    values,
                })
            })
            .collect())
    }
}

struct FakeDatadog {
    answer: fn() -> okra_aws::Result<Vec<(i64, f64)>>,
    queries: Mutex<Vec<String>>,
}

impl FakeDatadog {
    fn new(answer: fn() -> okra_aws::Result<Vec<(i64, f64)>>) -> Self {
        Self {
            answer,
            queries: Mutex::new(Vec::new()),
        }
    }
}

impl DatadogPort for FakeDatadog {
    async fn query(&self, query: &str, _from: i64, _to: i64) -> okra_aws::Result<Vec<(i64, f64)>> {
        self.queries.lock().expect("lock").push(query.to_string());
        (self.answer)()
    }
}

fn healthy_dd() -> okra_aws::Result<Vec<(i64, f64)>> {
    Ok(vec![(END - 120, 0.25), (END - 60, 0.2)])
}

fn cell() -> Value {
    serde_json::to_value(CellSpec::from_yaml(CELL).expect("cell parses")).expect("to json")
}

fn input(templates: &[&str], judge: bool, previous: Value) -> CheckInput {
    let (canary, stable) = if judge {
        (
            json!([tg("web-b1"), tg("web-b2")]),
            json!([tg("web-a1"), tg("web-a2")]),
        )
    } else {
        (json!([]), json!([]))
    };
    serde_json::from_value(json!({
        "cell": cell(),
        "templates": templates,
        "args": {"service": "web"},
        "canary": canary,
        "stable": stable,
        "previous": previous,
        "now": NOW,
    }))
    .expect("input parses")
}

/// ALB numbers per target group: 1000 requests a minute, `canary_errors` or `stable_errors`
/// 5xx, 0.1 s; the template metrics at `ratio`, `a` and `b` at 0.
fn alb(ratio: Option<f64>, canary_errors: f64, stable_errors: f64) -> FakeMetrics {
    FakeMetrics::new(move |q| {
        let stat = q.metric_stat.as_ref();
        let dims = stat.map(|s| s.dimensions.clone()).unwrap_or_default();
        let canary = dims.get("TargetGroup").is_some_and(|t| t.contains("web-b"));
        match stat.map(|s| s.metric_name.as_str()) {
            _ if q.id.ends_with("_ratio") => ratio.map(|r| vec![r; 5]),
            Some("RequestCount") => Some(vec![1000.0; 5]),
            Some("HTTPCode_Target_5XX_Count") => {
                Some(vec![if canary { canary_errors } else { stable_errors }; 5])
            }
            Some("TargetResponseTime") => Some(vec![0.1; 5]),
            Some("A" | "B") => Some(vec![0.0]),
            _ => None,
        }
    })
}

fn metric<'a>(out: &'a CheckOutput, name: &str) -> &'a okra_aws::handlers::check::MetricResult {
    out.metrics
        .iter()
        .find(|m| m.name == name)
        .expect("metric in output")
}

#[tokio::test]
async fn healthy_metrics_are_successful() {
    let cw = alb(Some(0.001), 20.0, 20.0);
    let dd = FakeDatadog::new(healthy_dd);
    let out = handle(
        &Providers::new(&cw, &dd),
        input(&["error-rate", "latency"], true, json!([])),
    )
    .await
    .expect("checks");
    assert_eq!(out.phase, Phase::Successful, "{}", out.reason);
    assert!(out.done);
    assert_eq!(metric(&out, "elb-5xx-ratio").phase, Phase::Successful);
    assert_eq!(metric(&out, "p95-latency").phase, Phase::Successful);
    assert_eq!(metric(&out, JUDGE).phase, Phase::Successful);
    assert_eq!(out.judge.as_ref().map(|j| j.phase), Some(Phase::Successful));
    assert_eq!(
        *dd.queries.lock().expect("lock"),
        vec!["avg:trace.http.request.duration.by.service.95p{service:web}".to_string()]
    );

    // One call; the template's queries prefixed, ReturnData explicit, args substituted.
    let calls = cw.calls();
    assert_eq!(calls.len(), 1);
    let (queries, start, end) = &calls[0];
    assert_eq!((*start, *end), (END - 300, END));
    let by_id = |id: &str| queries.iter().find(|q| q.id == id).expect("query present");
    assert!(!by_id("m0_errors").return_data);
    assert!(!by_id("m0_requests").return_data);
    assert!(by_id("m0_ratio").return_data);
    assert_eq!(
        by_id("m0_ratio").expression.as_deref(),
        Some("m0_errors / m0_requests")
    );
    let lb = &by_id("m0_errors")
        .metric_stat
        .as_ref()
        .expect("stat")
        .dimensions["LoadBalancer"];
    assert_eq!(lb, "app/web-prod/50dc6c495c0c9188");
    // Judge: 3 raw metrics per target group, on the listener's ALB and the groups' suffixes.
    let judge: Vec<&MetricQuery> = queries
        .iter()
        .filter(|q| q.id.starts_with("judge_"))
        .collect();
    assert_eq!(judge.len(), 12);
    let j = judge[0].metric_stat.as_ref().expect("stat");
    assert_eq!(j.namespace, "AWS/ApplicationELB");
    assert_eq!(j.period, 60);
    assert_eq!(
        j.dimensions["TargetGroup"],
        "targetgroup/web-b1/0123456789abcdef"
    );
    assert_eq!(
        j.dimensions["LoadBalancer"],
        "app/web-prod/50dc6c495c0c9188"
    );
    assert!(
        judge
            .iter()
            .all(|q| q.return_data && q.expression.is_none())
    );

    // The output is compact JSON whose `metrics` feed the next call's `previous`.
    let text = serde_json::to_string(&out).expect("serializes");
    assert!(text.contains(r#""phase":"successful""#), "{text}");
}

#[tokio::test]
async fn error_rate_above_failure_condition_fails() {
    let cw = alb(Some(0.1), 20.0, 20.0);
    let out = handle(
        &Providers::new(&cw, &FakeDatadog::new(healthy_dd)),
        input(&["error-rate"], false, json!([])),
    )
    .await
    .expect("checks");
    assert_eq!(out.phase, Phase::Failed);
    assert!(out.done);
    assert!(out.reason.contains("elb-5xx-ratio"), "{}", out.reason);
    let m = metric(&out, "elb-5xx-ratio");
    assert_eq!(m.value, Some(0.1.into()));
    assert!(m.measurements[0].message.contains("failureCondition"));
    assert!(out.judge.is_none());
}

#[tokio::test]
async fn no_datapoints_is_inconclusive() {
    let cw = alb(None, 20.0, 20.0);
    let out = handle(
        &Providers::new(&cw, &FakeDatadog::new(|| Ok(vec![]))),
        input(&["error-rate", "latency"], false, json!([])),
    )
    .await
    .expect("checks");
    assert_eq!(out.phase, Phase::Inconclusive, "{}", out.reason);
    assert_eq!(metric(&out, "elb-5xx-ratio").phase, Phase::Inconclusive);
    assert_eq!(metric(&out, "p95-latency").phase, Phase::Inconclusive);
    assert!(metric(&out, "elb-5xx-ratio").value.is_none());
}

#[tokio::test]
async fn datapoints_older_than_the_window_do_not_count() {
    // The fake's 5 points are the 5 minutes before END; a 1-minute window keeps only the last.
    let cw = FakeMetrics::new(|q| (q.id == "m0_errors").then(|| vec![5.0, 5.0, 5.0, 5.0, 0.5]));
    let out = handle(
        &Providers::new(&cw, &FakeDatadog::new(healthy_dd)),
        input(&["more"], false, json!([])),
    )
    .await
    .expect("checks");
    assert_eq!(metric(&out, "a").value, Some(0.5.into()));
    assert_eq!(
        out.phase,
        Phase::Inconclusive,
        "b has no data: {}",
        out.reason
    );
}

#[tokio::test]
async fn judge_fails_a_canary_with_double_the_5xx() {
    // Stable 2 % 5xx, canary 4 %: 2 points more than allowed 1.
    let cw = alb(Some(0.001), 40.0, 20.0);
    let out = handle(
        &Providers::new(&cw, &FakeDatadog::new(healthy_dd)),
        input(&["error-rate"], true, json!([])),
    )
    .await
    .expect("checks");
    let report = out.judge.as_ref().expect("the judge ran");
    assert_eq!(report.phase, Phase::Failed, "{}", report.reason);
    assert_eq!(report.canary_requests, 10_000.0);
    assert_eq!(metric(&out, "elb-5xx-ratio").phase, Phase::Successful);
    assert_eq!(out.phase, Phase::Failed);
    assert!(out.reason.contains("judge"), "{}", out.reason);
}

#[tokio::test]
async fn one_get_metric_data_call_per_sample_whatever_the_metrics() {
    for templates in [
        vec!["error-rate"],
        vec!["error-rate", "more"],
        vec!["more", "error-rate", "latency"],
    ] {
        let cw = alb(Some(0.001), 20.0, 20.0);
        let out = handle(
            &Providers::new(&cw, &FakeDatadog::new(healthy_dd)),
            input(&templates, true, json!([])),
        )
        .await
        .expect("checks");
        let calls = cw.calls();
        assert_eq!(calls.len(), 1, "{templates:?}");
        let ids: std::collections::BTreeSet<&str> =
            calls[0].0.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids.len(), calls[0].0.len(), "ids are unique: {ids:?}");
        assert_eq!(
            out.phase,
            Phase::Successful,
            "{templates:?}: {}",
            out.reason
        );
    }
}

#[tokio::test]
async fn previous_measurements_carry_over_and_decided_metrics_are_not_queried() {
    let yaml = CELL.replacen("count: 1", "count: 2", 1);
    let cell = serde_json::to_value(CellSpec::from_yaml(&yaml).expect("parses")).expect("json");
    let mk = |previous: Value| -> CheckInput {
        serde_json::from_value(json!({"cell": cell, "templates": ["error-rate", "more"], "previous": previous, "now": NOW}))
            .expect("input")
    };
    let cw = alb(Some(0.001), 20.0, 20.0);
    let dd = FakeDatadog::new(healthy_dd);
    let first = handle(&Providers::new(&cw, &dd), mk(json!([])))
        .await
        .expect("first");
    assert_eq!(first.phase, Phase::Running, "{}", first.reason);
    assert!(!first.done);
    assert_eq!(metric(&first, "a").phase, Phase::Successful);

    let previous = serde_json::to_value(&first.metrics).expect("json");
    let second = handle(&Providers::new(&cw, &dd), mk(previous))
        .await
        .expect("second");
    assert_eq!(second.phase, Phase::Successful, "{}", second.reason);
    assert!(second.done);
    assert_eq!(metric(&second, "elb-5xx-ratio").measurements.len(), 2);
    assert_eq!(metric(&second, "a").measurements.len(), 1);
    let calls = cw.calls();
    assert_eq!(calls.len(), 2);
    assert!(
        calls[1].0.iter().all(|q| q.id.starts_with("m0_")),
        "only the undecided metric"
    );
}

#[tokio::test]
async fn unknown_template_names_its_index() {
    let cw = alb(Some(0.001), 20.0, 20.0);
    let err = handle(
        &Providers::new(&cw, &FakeDatadog::new(healthy_dd)),
        input(&["error-rate", "nope"], false, json!([])),
    )
    .await
    .expect_err("unknown template");
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("templates[1]"), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(cw.calls().is_empty());
}

#[tokio::test]
async fn throttling_fails_the_call_other_failures_are_error_samples() {
    let mut cw = alb(Some(0.001), 20.0, 20.0);
    cw.fail = Some(|| OkraError::Throttled("Throttling: rate exceeded".into(), None));
    let err = handle(
        &Providers::new(&cw, &FakeDatadog::new(healthy_dd)),
        input(&["error-rate"], true, json!([])),
    )
    .await
    .expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");

    cw.fail = Some(|| OkraError::AccessDenied("no cloudwatch:GetMetricData".into(), None));
    let out = handle(
        &Providers::new(&cw, &FakeDatadog::new(healthy_dd)),
        input(&["error-rate"], true, json!([])),
    )
    .await
    .expect("an error sample");
    let m = metric(&out, "elb-5xx-ratio");
    assert_eq!(m.measurements[0].phase, Phase::Error);
    assert!(m.measurements[0].message.contains("GetMetricData"));
    assert_eq!(m.phase, Phase::Running, "below consecutiveErrorLimit");
    assert_eq!(metric(&out, JUDGE).measurements[0].phase, Phase::Error);

    let err = handle(
        &Providers::new(
            &alb(Some(0.001), 20.0, 20.0),
            &FakeDatadog::new(|| Err(OkraError::Throttled("Datadog answered 429".into(), None))),
        ),
        input(&["latency"], false, json!([])),
    )
    .await
    .expect_err("datadog throttled");
    assert_eq!(err.error_type(), "Throttled");
}

#[test]
fn args_and_ids_are_rewritten() {
    let args = [("lb".to_string(), "app/x/1".to_string())].into();
    assert_eq!(
        substitute("LB={{args.lb}}, {{ args.lb }}", &args).expect("ok"),
        "LB=app/x/1, app/x/1"
    );
    assert_eq!(
        substitute("{{args.missing}}", &args)
            .expect_err("missing")
            .error_type(),
        "InvalidInput"
    );
    let ids = ["e".to_string(), "r".to_string()].into();
    assert_eq!(
        prefix_ids("100*e/r + SUM(METRICS('e'))", &ids, "m1_"),
        "100*m1_e/m1_r + SUM(METRICS('e'))"
    );
}

#[tokio::test]
async fn the_sample_event_parses_and_runs() {
    let event: CheckInput =
        serde_json::from_str(include_str!("../../../events/check-metrics.json"))
            .expect("event parses");
    let event = CheckInput {
        now: Some(NOW.into()),
        ..event
    };
    let cw = alb(Some(0.001), 20.0, 20.0);
    let out = handle(&Providers::new(&cw, &FakeDatadog::new(healthy_dd)), event)
        .await
        .expect("checks");
    // web.yaml's metrics take 5 and 3 samples: the first one is Running.
    assert_eq!(out.phase, Phase::Running, "{}", out.reason);
    assert!(out.judge.is_some());
    assert_eq!(cw.calls().len(), 1);
}

#[test]
fn dimensions_come_from_arns() {
    use okra_core::arn::{load_balancer_dimension, target_group_dimension};
    let listener = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2";
    assert_eq!(
        load_balancer_dimension(listener).as_deref(),
        Some("app/web-prod/50dc6c495c0c9188")
    );
    assert_eq!(
        target_group_dimension(&tg("web-a1")),
        Some("targetgroup/web-a1/0123456789abcdef")
    );
    assert_eq!(target_group_dimension("targetgroup/x"), None);
}

/// Step Functions fails an execution whose state passes 256 KiB (developer guide, "Step
/// Functions service quotas"; `States.DataLimitExceeded`, which no Catch sees). The output that
/// the state machine feeds back as `previous` carries each metric's counts and its last few
/// measurements, so 1,000 samples (the most `count` allows), with the judge, stay as small as 3.
#[tokio::test]
async fn a_thousand_samples_keep_the_state_small_and_the_verdict_exact() {
    let mut c = cell();
    c["analysisTemplates"][0]["metrics"][0]["count"] = json!(1000);
    c["analysisTemplates"][0]["metrics"][0]["failureLimit"] = json!(2);
    let metrics = alb(Some(0.0), 0.0, 0.0);
    let dd = FakeDatadog::new(healthy_dd);
    let mut previous = json!([]);
    let mut largest = 0;
    let mut out = None;
    for i in 0..1000 {
        let mut inp = input(&["error-rate"], true, previous.clone());
        inp.cell = serde_json::from_value(c.clone()).expect("cell");
        let o = handle(&Providers::new(&metrics, &dd), inp)
            .await
            .expect("samples");
        let size = serde_json::to_vec(&o).expect("serializes").len();
        largest = largest.max(size);
        previous = serde_json::to_value(&o.metrics).expect("to json");
        if i < 999 {
            assert_eq!(o.phase, Phase::Running, "sample {i}: {}", o.reason);
        }
        out = Some(o);
    }
    let out = out.expect("an output");
    let m = metric(&out, "elb-5xx-ratio");
    assert_eq!(m.phase, Phase::Successful, "{}", out.reason);
    assert_eq!(m.status.count, 1000);
    assert_eq!(m.status.successful, 1000);
    assert!(m.measurements.len() <= okra_aws::handlers::check::KEEP_MEASUREMENTS);
    assert!(largest < 8 * 1024, "the largest output is {largest} bytes");
}

/// The counts go on across calls exactly as over the whole list: a failure limit is crossed at
/// the same sample.
#[tokio::test]
async fn counts_carried_between_samples_decide_as_the_whole_list_would() {
    let mut c = cell();
    c["analysisTemplates"][0]["metrics"][0]["count"] = json!(10);
    c["analysisTemplates"][0]["metrics"][0]["failureLimit"] = json!(2);
    // Failing every time (ratio 0.5 >= 0.05): the third failure is past failureLimit 2.
    let metrics = alb(Some(0.5), 0.0, 0.0);
    let dd = FakeDatadog::new(healthy_dd);
    let mut previous = json!([]);
    let mut phases = Vec::new();
    for _ in 0..3 {
        let mut inp = input(&["error-rate"], false, previous.clone());
        inp.cell = serde_json::from_value(c.clone()).expect("cell");
        let o = handle(&Providers::new(&metrics, &dd), inp)
            .await
            .expect("samples");
        previous = serde_json::to_value(&o.metrics).expect("to json");
        phases.push(metric(&o, "elb-5xx-ratio").phase);
    }
    assert_eq!(phases, [Phase::Running, Phase::Running, Phase::Failed]);
}

/// Answers every request with one canned answer, and keeps the requests.
struct FakeHttp {
    answer: okra_aws::ports::HttpAnswer,
    urls: Mutex<Vec<String>>,
}

impl okra_aws::ports::HttpPort for FakeHttp {
    async fn send(
        &self,
        req: &okra_core::analysis::probe::Request,
    ) -> okra_aws::Result<okra_aws::ports::HttpAnswer> {
        self.urls.lock().expect("lock").push(req.url.clone());
        Ok(self.answer.clone())
    }
}

/// A check function: answers with `payload` (a function error when `failed`), and keeps what it
/// was invoked with.
struct FakeFunction {
    failed: bool,
    payload: Value,
    calls: Mutex<Vec<(String, Value)>>,
}

impl okra_aws::ports::InvokePort for FakeFunction {
    async fn invoke(
        &self,
        function: &str,
        payload: &Value,
    ) -> okra_aws::Result<okra_aws::ports::Invoked> {
        self.calls
            .lock()
            .expect("lock")
            .push((function.to_string(), payload.clone()));
        Ok(okra_aws::ports::Invoked {
            function_error: self.failed.then(|| "Unhandled".to_string()),
            payload: self.payload.to_string().into_bytes(),
        })
    }
}

fn with_provider(provider: Value, condition: &str) -> CheckInput {
    let mut cell = cell();
    cell["analysisTemplates"] = json!([{"name": "checks", "metrics": [{
        "name": "check", "count": 1, "successCondition": condition, "provider": provider}]}]);
    cell["judge"] = json!({"enabled": false});
    serde_json::from_value(json!({
        "cell": cell, "templates": ["checks"], "now": NOW,
        "canary": {"version": "1.1.0", "members": [{"cluster": "b1", "targetGroupArn": tg("web-b1")}]},
        "stable": [tg("web-a1")],
    }))
    .expect("an input")
}

#[tokio::test]
async fn prometheus_web_and_lambda_samples_are_judged_like_any_other() {
    let cw = alb(Some(0.001), 20.0, 20.0);
    let dd = FakeDatadog::new(healthy_dd);
    let prom = FakeHttp {
        answer: okra_aws::ports::HttpAnswer {
            status: 200,
            body: br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767268830,"0.002"]}]}}"#.to_vec(),
        },
        urls: Mutex::new(Vec::new()),
    };
    let function = FakeFunction {
        failed: false,
        payload: json!({"result": false, "message": "smoke test: 3 of 20 requests failed"}),
        calls: Mutex::new(Vec::new()),
    };
    let providers = Providers {
        metrics: &cw,
        datadog: &dd,
        http: &prom,
        lambda: &function,
    };
    let out = handle(
        &providers,
        with_provider(
            json!({"prometheus": {"address": "http://prom:9090", "query": "sum(rate(errors[1m]))"}}),
            "result < 0.01",
        ),
    )
    .await
    .expect("samples");
    assert_eq!(out.phase, Phase::Successful, "{}", out.reason);
    let urls = prom.urls.lock().expect("lock").clone();
    assert_eq!(
        urls,
        vec![
            "http://prom:9090/api/v1/query?query=sum%28rate%28errors%5B1m%5D%29%29&time=1767268830&timeout=10s"
        ]
    );

    // A function that says the smoke test failed: Failed, with its message.
    let out = handle(
        &providers,
        with_provider(
            json!({"lambda": {"functionName": "smoke-test"}}),
            "result == 1.0",
        ),
    )
    .await
    .expect("samples");
    assert_eq!(out.phase, Phase::Failed, "{}", out.reason);
    let m = &metric(&out, "check").measurements[0];
    assert!(
        m.message.contains("3 of 20 requests failed"),
        "{}",
        m.message
    );
    let calls = function.calls.lock().expect("lock").clone();
    assert_eq!(calls[0].0, "smoke-test");
    assert_eq!(calls[0].1["cell"], "web");
    assert_eq!(calls[0].1["canary"]["version"], "1.1.0");
    assert_eq!(calls[0].1["canary"]["members"][0]["cluster"], "b1");

    // A web endpoint that answers 503: an Error sample (consecutiveErrorLimit counts it).
    let down = FakeHttp {
        answer: okra_aws::ports::HttpAnswer {
            status: 503,
            body: b"upstream connect error".to_vec(),
        },
        urls: Mutex::new(Vec::new()),
    };
    let out = handle(
        &Providers {
            metrics: &cw,
            datadog: &dd,
            http: &down,
            lambda: &function,
        },
        with_provider(
            json!({"web": {"url": "https://status.example.com/health", "jsonPath": "$.errorRate"}}),
            "result < 0.01",
        ),
    )
    .await
    .expect("samples");
    let m = &metric(&out, "check").measurements[0];
    assert_eq!(m.phase, Phase::Error);
    assert!(m.message.contains("http503"), "{}", m.message);
}

/// A schedule's samples during a wait (`handlers::background`): each due time sampled once, from
/// where the wait's samples stand; a failing verdict fails the wait's callback; a wait that is
/// over retires its schedule.
mod scheduled {
    use super::*;
    use okra_aws::fakes::{FakeExecutions, FakeSchedules, FakeState};
    use okra_aws::handlers::background::{self, CheckRequest, ScheduledOutput};
    use okra_aws::state::{SampleSchedule, SchedulesPort, StatePort, Wait, WaitKind, WaitSamples};
    use okra_core::schedule::{ScheduledSample, schedule_input, schedule_name};

    const EXEC: &str = "web--1.1.0--0";

    struct World {
        state: FakeState,
        execs: FakeExecutions,
        schedules: FakeSchedules,
    }

    async fn waiting() -> World {
        let w = World {
            state: FakeState::new(),
            execs: FakeExecutions::new(),
            schedules: FakeSchedules::new(),
        };
        let name = schedule_name("web", EXEC, Some(2));
        let wait = Wait {
            token: "tok".into(),
            kind: WaitKind::Person,
            step: Some(2),
            until: None,
            samples: Some(WaitSamples {
                request: json!({"cell": cell(), "templates": ["error-rate"], "now": NOW}),
                latest: json!({"metrics": []}),
                taken: 0,
                last: None,
            }),
        };
        w.state.put_wait("web", EXEC, &wait).await.expect("puts");
        let now = std::time::SystemTime::now();
        w.schedules
            .put(&SampleSchedule {
                name,
                expression: "rate(1 minute)".into(),
                start: now,
                end: now,
                input: schedule_input("web", EXEC, Some(2)),
                max_age: std::time::Duration::from_secs(60),
                description: String::new(),
            })
            .await
            .expect("puts");
        w
    }

    fn due(at: &str) -> ScheduledSample {
        let v = json!({"scheduledSample": {"cell": "web", "execution": EXEC, "step": 2, "at": at}});
        match background::parse(v).expect("parses") {
            CheckRequest::Scheduled(s) => s,
            CheckRequest::Sample(_) => panic!("read as the state machine's sample"),
        }
    }

    async fn take(w: &World, cw: &FakeMetrics, at: &str) -> ScheduledOutput {
        let dd = FakeDatadog::new(healthy_dd);
        background::sample(
            &Providers::new(cw, &dd),
            &w.state,
            &w.execs,
            &w.schedules,
            due(at),
        )
        .await
        .expect("samples")
    }

    #[tokio::test]
    async fn good_samples_are_stored_once_each_and_the_wait_goes_on() {
        let w = waiting().await;
        let cw = alb(Some(0.001), 0.0, 0.0);
        let first = take(&w, &cw, "2026-01-01T12:01:00Z").await;
        assert!(
            matches!(first, ScheduledOutput::Sampled { taken: 1, ended_wait: false, phase, .. } if phase != Phase::Failed),
            "{first:?}"
        );
        // The same due time delivered again: nothing sampled, nothing stored.
        let calls = cw.calls().len();
        assert_eq!(
            take(&w, &cw, "2026-01-01T12:01:00Z").await,
            ScheduledOutput::Duplicate
        );
        assert_eq!(cw.calls().len(), calls, "no query for a duplicate");
        let second = take(&w, &cw, "2026-01-01T12:02:00Z").await;
        assert!(
            matches!(second, ScheduledOutput::Sampled { taken: 2, .. }),
            "{second:?}"
        );
        let stored = w
            .state
            .get_wait("web", EXEC)
            .await
            .expect("reads")
            .expect("a wait");
        let samples = stored.samples.expect("samples");
        assert_eq!(samples.last.as_deref(), Some("2026-01-01T12:02:00Z"));
        assert!(
            samples.latest["metrics"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(w.execs.task_results().is_empty(), "the wait goes on");
        assert!(
            w.schedules.schedules().is_empty(),
            "every metric took its count (1): no sample is due, the schedule is deleted"
        );
    }

    #[tokio::test]
    async fn a_failing_sample_fails_the_wait_and_ends_its_schedule() {
        let w = waiting().await;
        let cw = alb(Some(0.2), 0.0, 0.0);
        let out = take(&w, &cw, "2026-01-01T12:01:00Z").await;
        assert!(
            matches!(
                out,
                ScheduledOutput::Sampled {
                    ended_wait: true,
                    phase: Phase::Failed,
                    ..
                }
            ),
            "{out:?}"
        );
        let results = w.execs.task_results();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].0, "tok");
        assert_eq!(results[0].1["Error"], "BackgroundAnalysisFailed");
        assert!(
            results[0].1["Cause"]
                .as_str()
                .is_some_and(|c| c.contains("elb-5xx-ratio")),
            "{results:?}"
        );
        assert!(
            w.schedules.schedules().is_empty(),
            "the schedule is deleted"
        );
    }

    #[tokio::test]
    async fn a_schedule_whose_wait_is_over_retires() {
        let w = waiting().await;
        w.state.end_wait("web", EXEC).await.expect("ends");
        let cw = alb(Some(0.2), 0.0, 0.0);
        let out = take(&w, &cw, "2026-01-01T12:01:00Z").await;
        assert!(matches!(out, ScheduledOutput::Retired { .. }), "{out:?}");
        assert!(cw.calls().is_empty(), "nothing sampled");
        assert!(w.schedules.schedules().is_empty(), "deleted");
        assert!(w.execs.task_results().is_empty());
    }

    #[test]
    fn a_scheduled_sample_with_a_wrong_field_is_refused_by_name() {
        let e = background::parse(json!({"scheduledSample": {"cell": "web", "execution": EXEC}}))
            .expect_err("no due time");
        assert!(e.to_string().contains("scheduledSample"), "{e}");
        assert!(e.to_string().contains("at"), "{e}");
    }
}
