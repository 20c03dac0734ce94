//! Conditions (CEL over `result`) and the per-metric state machine of Argo Rollouts.

use okra_core::analysis::{
    Compiled, Condition, ConditionError, ConditionKind, MeasuredValue, Measurement, NO_DATA, Phase,
    compile_template, evaluate_sample, metric_phase, metric_status, overall, overall_reason,
};
use okra_core::spec::{AnalysisTemplate, Metric};
use pretty_assertions::assert_eq;
use serde_json::json;

const AT: &str = "2025-01-01T00:00:00Z";

/// A metric with these extra fields (JSON object), and a CloudWatch provider.
fn metric(name: &str, extra: serde_json::Value) -> Metric {
    let mut v = json!({
        "name": name,
        "provider": {"cloudwatch": {"metricDataQueries": [{"id": "q", "expression": "1"}]}},
    });
    for (k, val) in extra.as_object().expect("an object") {
        v[k] = val.clone();
    }
    serde_json::from_value(v).expect("a metric")
}

fn cond(kind: ConditionKind, expr: &str) -> Condition {
    Condition::compile("error-rate", kind, expr).expect("compiles")
}

fn eval(expr: &str, value: impl Into<MeasuredValue>) -> Result<bool, ConditionError> {
    cond(ConditionKind::Success, expr).evaluate(&value.into())
}

// ---------------------------------------------------------------- conditions

#[test]
fn number_conditions() {
    assert_eq!(eval("result < 0.01", 0.004), Ok(true));
    assert_eq!(eval("result < 0.01", 0.02), Ok(false));
    assert_eq!(eval("result >= 0.95", 0.95), Ok(true));
    // An integer literal compares with the double `result`.
    assert_eq!(eval("result < 1", 0.5), Ok(true));
    assert_eq!(eval("result < 1", 1.5), Ok(false));
    assert_eq!(eval("result * 100.0 < 5.0", 0.04), Ok(true));
    assert_eq!(eval("result * 100.0 < 5.0", 0.06), Ok(false));
}

#[test]
fn list_conditions() {
    let series = vec![0.01, 0.02, 0.2];
    assert_eq!(eval("result[0] < 0.05", series.clone()), Ok(true));
    assert_eq!(eval("result[2] < 0.05", series.clone()), Ok(false));
    assert_eq!(eval("size(result) == 3", series.clone()), Ok(true));
    assert_eq!(eval("result.all(x, x < 0.05)", series.clone()), Ok(false));
    assert_eq!(eval("result.all(x, x < 0.5)", series.clone()), Ok(true));
    assert_eq!(eval("result.exists(x, x > 0.1)", series.clone()), Ok(true));
    assert_eq!(
        eval("result.filter(x, x > 0.015).size() == 2", series.clone()),
        Ok(true)
    );
    assert_eq!(eval("result.all(x, x < 0.05)", vec![0.01, 0.04]), Ok(true));
}

#[test]
fn compile_error_names_metric_and_quotes_expression() {
    let err = Condition::compile("error-rate", ConditionKind::Success, "result < ").unwrap_err();
    assert!(matches!(err, ConditionError::Compile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            r#"metric error-rate: successCondition "result < " does not compile: at 1:"#
        ),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");

    let err = Condition::compile("latency", ConditionKind::Failure, "result >>> 2").unwrap_err();
    assert!(
        err.to_string()
            .starts_with(r#"metric latency: failureCondition "result >>> 2" does not compile"#),
        "{err}"
    );
}

#[test]
fn unknown_name_is_a_compile_time_error() {
    let err =
        Condition::compile("error-rate", ConditionKind::Success, "resutl < 0.01").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"metric error-rate: successCondition "resutl < 0.01" refers to `resutl`, but only `result` is defined"#
    );
    // Comprehension variables are not unknown names.
    assert!(Condition::compile("m", ConditionKind::Success, "result.all(x, x < 0.05)").is_ok());
}

#[test]
fn non_bool_result_is_an_error() {
    let err = eval("result * 2.0", 0.5).unwrap_err();
    assert!(matches!(err, ConditionError::NotBool { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"metric error-rate: successCondition "result * 2.0" gave double 1, not a bool (true or false)"#
    );
    let err = eval("result", vec![1.0, 2.0]).unwrap_err();
    assert!(
        err.to_string()
            .contains("gave a list of 2 values, not a bool"),
        "{err}"
    );
}

#[test]
fn evaluation_errors_name_metric_and_expression() {
    // Indexing a number, and an index past the end of the series.
    let err = eval("result[0] < 1.0", 0.5).unwrap_err();
    assert!(matches!(err, ConditionError::Evaluate { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            r#"metric error-rate: successCondition "result[0] < 1.0" failed on result 0.5: "#
        ),
        "{err}"
    );
    let err = eval("result[3] < 1.0", vec![0.1]).unwrap_err();
    assert!(err.to_string().contains("failed on result [0.1]"), "{err}");
    // CEL does not mix double and int in arithmetic.
    assert!(matches!(
        eval("result + 1 > 1.0", 0.5),
        Err(ConditionError::Evaluate { .. })
    ));
}

#[test]
fn nan_and_infinity_are_errors_not_passes() {
    // `result < 0.05` would be false for NaN with IEEE comparisons, `!(result >= 0.05)` true:
    // neither may decide anything.
    for expr in ["result < 0.05", "!(result >= 0.05)", "true"] {
        let err = eval(expr, f64::NAN).unwrap_err();
        assert!(
            matches!(err, ConditionError::NotFinite { .. }),
            "{expr}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "metric error-rate: the measured value NaN is not a finite number (NaN); a sample that cannot be \
             judged is an error, never a pass"
        );
    }
    let err = eval("result.all(x, x < 0.05)", vec![0.01, f64::INFINITY]).unwrap_err();
    assert!(
        err.to_string()
            .contains("the measured value [0.01, inf] is not a finite number (inf)"),
        "{err}"
    );
    assert!(matches!(
        eval("result < 0.05", f64::NEG_INFINITY),
        Err(ConditionError::NotFinite { .. })
    ));
}

#[test]
fn compiled_is_reused_across_samples() {
    let m = metric(
        "error-rate",
        json!({"successCondition": "result < 0.01", "failureCondition": "result >= 0.05"}),
    );
    let c = Compiled::new(&m).unwrap();
    assert_eq!(c.metric(), "error-rate");
    assert_eq!(c.success().unwrap().expression(), "result < 0.01");
    assert_eq!(c.failure().unwrap().kind(), ConditionKind::Failure);
    let phases: Vec<Phase> = [0.001, 0.02, 0.07, 0.005]
        .iter()
        .map(|v| evaluate_sample(&m, &c, Some((*v).into()), AT).phase)
        .collect();
    assert_eq!(
        phases,
        vec![
            Phase::Successful,
            Phase::Inconclusive,
            Phase::Failed,
            Phase::Successful
        ]
    );
}

#[test]
fn compile_template_reports_every_error() {
    let t = AnalysisTemplate {
        name: "t".into(),
        args: vec![],
        metrics: vec![
            metric("ok", json!({"successCondition": "result < 1"})),
            metric(
                "bad-both",
                json!({"successCondition": "result <", "failureCondition": "(result"}),
            ),
            metric("bad-name", json!({"failureCondition": "value > 1"})),
        ],
    };
    let errors = compile_template(&t).unwrap_err();
    let summary: Vec<(String, ConditionKind)> = errors
        .iter()
        .map(|e| match e {
            ConditionError::Compile { metric, kind, .. }
            | ConditionError::UnknownName { metric, kind, .. } => (metric.clone(), *kind),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("bad-both".to_string(), ConditionKind::Success),
            ("bad-both".to_string(), ConditionKind::Failure),
            ("bad-name".to_string(), ConditionKind::Failure),
        ]
    );
    let good = AnalysisTemplate {
        metrics: vec![t.metrics[0].clone()],
        ..t
    };
    assert_eq!(compile_template(&good).unwrap().len(), 1);
}

#[test]
fn blank_condition_counts_as_absent() {
    let m = metric(
        "m",
        json!({"successCondition": "  ", "failureCondition": "result > 1"}),
    );
    let c = Compiled::new(&m).unwrap();
    assert!(c.success().is_none());
    assert_eq!(
        evaluate_sample(&m, &c, Some(0.5.into()), AT).phase,
        Phase::Successful
    );
}

// ---------------------------------------------------------------- one sample

fn sample(
    success: Option<&str>,
    failure: Option<&str>,
    value: Option<MeasuredValue>,
) -> Measurement {
    let mut extra = json!({});
    if let Some(s) = success {
        extra["successCondition"] = json!(s);
    }
    if let Some(f) = failure {
        extra["failureCondition"] = json!(f);
    }
    let m = metric("error-rate", extra);
    let c = Compiled::new(&m).expect("compiles");
    evaluate_sample(&m, &c, value, AT)
}

#[test]
fn sample_rules_follow_argo() {
    let s = Some("result < 0.01");
    let f = Some("result >= 0.05");
    let v = |x: f64| Some(MeasuredValue::Number(x));
    let cases = [
        // (success, failure, value, phase)
        (None, None, 0.5, Phase::Successful),
        (s, None, 0.001, Phase::Successful),
        (s, None, 0.02, Phase::Failed), // only a success condition: not success = failed
        (None, f, 0.02, Phase::Successful), // only a failure condition: not failed = successful
        (None, f, 0.07, Phase::Failed),
        (s, f, 0.001, Phase::Successful),
        (s, f, 0.07, Phase::Failed),
        (s, f, 0.02, Phase::Inconclusive), // between the two
        // Both true: failure wins.
        (
            Some("result > 0.0"),
            Some("result > 0.0"),
            0.5,
            Phase::Failed,
        ),
    ];
    for (success, failure, x, want) in cases {
        let m = sample(success, failure, v(x));
        assert_eq!(m.phase, want, "{success:?} {failure:?} {x}: {}", m.message);
        assert_eq!(m.at, AT);
        assert_eq!(m.value, v(x));
    }
    assert_eq!(
        sample(s, None, v(0.02)).message,
        r#"result 0.02 did not meet successCondition "result < 0.01""#
    );
    assert_eq!(
        sample(s, f, v(0.02)).message,
        r#"result 0.02 met neither successCondition "result < 0.01" nor failureCondition "result >= 0.05""#
    );
}

#[test]
fn no_datapoint_is_inconclusive() {
    for value in [None, Some(MeasuredValue::Series(vec![]))] {
        let m = sample(Some("result < 0.01"), None, value);
        assert_eq!(m.phase, Phase::Inconclusive);
        assert_eq!(m.message, NO_DATA);
        assert_eq!(m.message, "no data: no traffic is not healthy");
        assert_eq!(m.value, None);
    }
}

#[test]
fn nan_sample_is_an_error_even_without_conditions() {
    for (success, failure) in [
        (Some("result < 0.01"), None),
        (None, Some("result > 0.05")),
        (None, None),
    ] {
        let m = sample(success, failure, Some(f64::NAN.into()));
        assert_eq!(m.phase, Phase::Error, "{success:?} {failure:?}");
        assert!(
            m.message.contains("not a finite number (NaN)"),
            "{}",
            m.message
        );
        assert!(
            m.message.starts_with("metric error-rate: "),
            "{}",
            m.message
        );
        assert_eq!(m.value, None, "NaN has no JSON form");
    }
}

#[test]
fn condition_errors_make_error_samples() {
    let m = sample(Some("result[0] < 0.01"), None, Some(0.5.into()));
    assert_eq!(m.phase, Phase::Error);
    assert!(
        m.message
            .starts_with(r#"metric error-rate: successCondition "result[0] < 0.01" failed"#),
        "{}",
        m.message
    );
    assert_eq!(m.value, Some(MeasuredValue::Number(0.5)));
    let m = sample(None, Some("result"), Some(0.5.into()));
    assert_eq!(m.phase, Phase::Error);
    assert!(m.message.contains("not a bool"), "{}", m.message);
}

#[test]
fn measurement_json() {
    let m = sample(
        Some("result.all(x, x < 0.05)"),
        None,
        Some(vec![0.01, 0.02].into()),
    );
    let j = serde_json::to_value(&m).unwrap();
    assert_eq!(
        j,
        json!({"value": [0.01, 0.02], "phase": "successful", "message": "result [0.01, 0.02] met successCondition \"result.all(x, x < 0.05)\"", "at": AT})
    );
    assert_eq!(serde_json::from_value::<Measurement>(j).unwrap(), m);
    let none = sample(Some("result < 1"), None, None);
    let j = serde_json::to_value(&none).unwrap();
    assert_eq!(j["phase"], "inconclusive");
    assert!(j.get("value").is_none());
    assert_eq!(serde_json::to_value(Phase::Error).unwrap(), json!("error"));
    assert_eq!(
        serde_json::from_value::<MeasuredValue>(json!(0.5)).unwrap(),
        MeasuredValue::Number(0.5)
    );
}

// ---------------------------------------------------------------- metric phase

fn m(phase: Phase) -> Measurement {
    Measurement {
        value: None,
        phase,
        message: format!("sample {phase}"),
        at: AT.into(),
    }
}

use Phase::{Error as E, Failed as F, Inconclusive as I, Running as R, Successful as S};

fn limits(count: u32, failure: u32, inconclusive: u32, errors: u32) -> Metric {
    metric(
        "error-rate",
        json!({"count": count, "failureLimit": failure, "inconclusiveLimit": inconclusive, "consecutiveErrorLimit": errors}),
    )
}

fn phase_of(metric: &Metric, phases: &[Phase]) -> Phase {
    let ms: Vec<Measurement> = phases.iter().map(|p| m(*p)).collect();
    metric_phase(metric, &ms)
}

#[test]
fn failure_limit_zero_fails_on_the_first_failure() {
    let mt = limits(5, 0, 0, 4);
    assert_eq!(phase_of(&mt, &[S, S]), R);
    assert_eq!(phase_of(&mt, &[S, F]), F);
    let st = metric_status(&mt, &[m(S), m(F)]);
    assert_eq!(
        st.reason,
        "failed (1) > failureLimit (0) (last: sample failed)"
    );
}

#[test]
fn failure_limit_two_tolerates_two_failures() {
    let mt = limits(5, 2, 0, 4);
    assert_eq!(phase_of(&mt, &[F, F]), R);
    assert_eq!(phase_of(&mt, &[F, S, F, S, S]), S);
    assert_eq!(phase_of(&mt, &[F, F, F]), F);
    let st = metric_status(&mt, &[m(F), m(S), m(F), m(S), m(S)]);
    assert_eq!((st.successful, st.failed, st.count), (3, 2, 5));
    assert_eq!(st.reason, "5 of 5 samples taken: 3 successful, 2 failed");
}

#[test]
fn inconclusive_limit() {
    assert_eq!(phase_of(&limits(5, 0, 0, 4), &[S, I]), I);
    let mt = limits(5, 0, 1, 4);
    assert_eq!(phase_of(&mt, &[S, I]), R);
    assert_eq!(phase_of(&mt, &[S, I, S, S, S]), S);
    assert_eq!(phase_of(&mt, &[I, S, I]), I);
    // Failures are checked first.
    assert_eq!(phase_of(&limits(5, 0, 0, 4), &[I]), I);
    let both = metric_status(&limits(5, 0, 0, 4), &[m(F)]);
    assert_eq!(both.phase, F);
}

#[test]
fn consecutive_error_limit_is_reset_by_a_success() {
    let mt = limits(3, 0, 0, 2);
    assert_eq!(phase_of(&mt, &[E, E]), R);
    assert_eq!(phase_of(&mt, &[E, E, E]), E);
    // Two errors, a success, two errors: never three in a row.
    assert_eq!(phase_of(&mt, &[E, E, S, E, E]), R);
    assert_eq!(phase_of(&mt, &[E, E, S, E, E, E]), E);
    let st = metric_status(&mt, &[m(E), m(E), m(S), m(E), m(E), m(E)]);
    assert_eq!((st.errors, st.consecutive_errors), (5, 3));
    assert_eq!(
        st.reason,
        "consecutiveErrors (3) > consecutiveErrorLimit (2) (last: sample error)"
    );
    // The default limit is 4: five in a row.
    let default = metric("m", json!({"count": 3}));
    assert_eq!(default.consecutive_error_limit, 4);
    assert_eq!(phase_of(&default, &[E, E, E, E]), R);
    assert_eq!(phase_of(&default, &[E, E, E, E, E]), E);
}

#[test]
fn count_and_running() {
    let mt = limits(3, 0, 0, 4);
    assert_eq!(phase_of(&mt, &[]), R);
    assert_eq!(metric_status(&mt, &[]).reason, "no sample yet");
    assert_eq!(phase_of(&mt, &[S, S]), R);
    assert_eq!(
        metric_status(&mt, &[m(S), m(S)]).reason,
        "2 of 3 samples taken: 2 successful (last: sample successful)"
    );
    assert_eq!(phase_of(&mt, &[S, S, S]), S);
    // Errors do not count toward `count`.
    assert_eq!(phase_of(&mt, &[S, E, S]), R);
    assert_eq!(phase_of(&mt, &[S, E, S, S]), S);
    // A sample in flight holds the metric Running and counts for nothing.
    assert_eq!(phase_of(&mt, &[S, S, R]), R);
    assert_eq!(phase_of(&mt, &[S, R, S, S]), S);
    // count 0: runs until the step ends.
    assert_eq!(phase_of(&limits(0, 0, 0, 4), &[S; 20]), R);
    assert_eq!(phase_of(&limits(0, 0, 0, 4), &[S, S, F]), F);
}

#[test]
fn the_first_decision_is_final() {
    let mt = limits(3, 0, 0, 4);
    let st = metric_status(&mt, &[m(F), m(S), m(S), m(S)]);
    assert_eq!(st.phase, F);
    assert_eq!(st.ignored, 3);
    // Reached count: later failures do not count.
    assert_eq!(phase_of(&mt, &[S, S, S, F]), S);
}

// ---------------------------------------------------------------- overall

#[test]
fn overall_takes_the_worst() {
    let a = metric("a", json!({}));
    let b = metric("b", json!({}));
    let c = metric("c", json!({}));
    let ov = |pa, pb, pc| overall(&[(a.clone(), pa), (b.clone(), pb), (c.clone(), pc)]);
    assert_eq!(ov(S, S, S), S);
    assert_eq!(ov(S, R, S), R);
    assert_eq!(ov(R, I, S), I);
    assert_eq!(ov(I, E, R), E);
    assert_eq!(ov(E, F, I), F);
    assert_eq!(overall(&[]), S);
    assert_eq!(
        overall_reason(&[(a.clone(), S), (b.clone(), S)]),
        "all 2 metrics successful"
    );
    assert_eq!(
        overall_reason(&[(a.clone(), F), (b.clone(), S), (c.clone(), F)]),
        "metrics a and c failed"
    );
    assert_eq!(
        overall_reason(&[(a.clone(), R), (b.clone(), S)]),
        "waiting for metric a"
    );
    assert_eq!(
        overall_reason(&[(a.clone(), I)]),
        "metric a inconclusive: a person must decide"
    );
}

#[test]
fn dry_run_never_fails_the_analysis() {
    let real = metric("error-rate", json!({}));
    let dry = metric("p99", json!({"dryRun": true}));
    for p in [F, E, I] {
        let metrics = [(real.clone(), S), (dry.clone(), p)];
        assert_eq!(overall(&metrics), S, "dry run {p}");
        assert_eq!(
            overall_reason(&metrics),
            format!("metric error-rate successful; dry run, not counted: p99 {p}")
        );
    }
    // A dry-run metric still has to finish.
    assert_eq!(overall(&[(real.clone(), S), (dry.clone(), R)]), R);
    // And a real failure still fails.
    assert_eq!(overall(&[(real.clone(), F), (dry.clone(), S)]), F);
    // Its own phase is still computed as usual.
    let dry_limits = metric("p99", json!({"dryRun": true, "count": 2}));
    assert_eq!(phase_of(&dry_limits, &[F]), F);
    assert!(metric_status(&dry_limits, &[m(F)]).dry_run);
}

#[test]
fn compiled_conditions_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let m = metric("m", json!({"successCondition": "result < 1"}));
    let c = Compiled::new(&m).expect("compiles");
    send_sync(&c);
    let phases: Vec<Phase> = std::thread::scope(|s| {
        let handles: Vec<_> = [0.5, 2.0]
            .iter()
            .map(|v| s.spawn(|| evaluate_sample(&m, &c, Some((*v).into()), AT).phase))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("joins"))
            .collect()
    });
    assert_eq!(phases, vec![Phase::Successful, Phase::Failed]);
}
