//! The built-in judge on synthetic per-minute series.

use okra_core::analysis::{JudgeReport, JudgeVerdict, Phase, Series, judge, mann_whitney};
use okra_core::spec::JudgeSpec;
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::json;

/// A deterministic jitter in [-1, 1] (no two minutes alike, so ties are rare).
fn jitter(seed: u64, i: usize) -> f64 {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(i as u64 * 1442695040888963407 + 1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    (x % 2001) as f64 / 1000.0 - 1.0
}

/// `minutes` minutes of about `rpm` requests, an error rate of about `rate` (±10 %), a latency
/// of about `latency` seconds (±5 %).
fn traffic(minutes: usize, rpm: f64, rate: f64, latency: f64, seed: u64) -> Series {
    let requests: Vec<f64> = (0..minutes)
        .map(|i| (rpm * (1.0 + 0.05 * jitter(seed, i))).round())
        .collect();
    let errors = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r * rate * (1.0 + 0.1 * jitter(seed + 1, i))).round())
        .collect();
    let latency_seconds = (0..minutes)
        .map(|i| latency * (1.0 + 0.05 * jitter(seed + 2, i)))
        .collect();
    Series {
        requests,
        errors_5xx: errors,
        latency_seconds,
    }
}

fn verdicts(r: &JudgeReport) -> Vec<(String, JudgeVerdict)> {
    r.metrics
        .iter()
        .map(|m| (m.name.clone(), m.verdict))
        .collect()
}

fn both(error_rate: JudgeVerdict, latency: JudgeVerdict) -> Vec<(String, JudgeVerdict)> {
    vec![
        ("errorRate".into(), error_rate),
        ("latency".into(), latency),
    ]
}

/// The p-value a reason shows: `p=0.003` → 0.003, `p<0.001` → 0.001.
fn p_in(reason: &str) -> f64 {
    let at = reason
        .find("p=")
        .or_else(|| reason.find("p<"))
        .unwrap_or_else(|| panic!("no p in {reason:?}"));
    let digits: String = reason[at + 2..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().expect("a p-value")
}

use JudgeVerdict::{High, Low, NoData, Pass};

#[test]
fn identical_series_pass() {
    let s = traffic(10, 1000.0, 0.02, 0.120, 7);
    let r = judge(&JudgeSpec::default(), &s, &s);
    assert_eq!(r.phase, Phase::Successful, "{}", r.reason);
    assert_eq!(verdicts(&r), both(Pass, Pass));
    assert!(
        r.reason
            .starts_with("no regression: error rate 2 % on canary vs 2 % stable"),
        "{}",
        r.reason
    );
    for m in &r.metrics {
        assert!(m.p_value.unwrap() > 0.4, "{m:?}");
        assert_eq!(m.canary, m.stable);
    }
    assert_eq!(r.metrics[1].effect, Some(1.0));
    assert_eq!(r.metrics[0].effect, Some(0.0));
}

#[test]
fn independent_draws_of_the_same_traffic_pass() {
    for seed in 0..20 {
        let r = judge(
            &JudgeSpec::default(),
            &traffic(10, 1000.0, 0.02, 0.12, seed * 10),
            &traffic(10, 1000.0, 0.02, 0.12, seed * 10 + 5),
        );
        assert_eq!(r.phase, Phase::Successful, "seed {seed}: {}", r.reason);
    }
}

#[test]
fn doubled_5xx_fails() {
    let stable = traffic(10, 1000.0, 0.02, 0.120, 1);
    let canary = traffic(10, 1000.0, 0.04, 0.120, 2);
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    assert_eq!(r.phase, Phase::Failed, "{}", r.reason);
    assert_eq!(verdicts(&r), both(High, Pass));
    let e = &r.metrics[0];
    assert!(e.p_value.unwrap() < 0.05, "{e:?}");
    assert!(p_in(&r.reason) < 0.05, "{}", r.reason);
    assert!(
        r.reason
            .starts_with("error rate 4 % on canary vs 2 % stable, p"),
        "{}",
        r.reason
    );
    // Every canary minute is worse: U is n1 × n2.
    assert_eq!(e.u, Some(100.0));
    let effect = e.effect.unwrap();
    assert!((1.7..2.3).contains(&effect), "{effect}");
    assert_eq!(e.unit, "percent");
}

#[test]
fn slower_canary_fails() {
    let stable = traffic(10, 1000.0, 0.01, 0.100, 3);
    let canary = traffic(10, 1000.0, 0.01, 0.150, 4);
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    assert_eq!(r.phase, Phase::Failed, "{}", r.reason);
    assert_eq!(verdicts(&r), both(Pass, High));
    let l = &r.metrics[1];
    assert!((1.4..1.6).contains(&l.effect.unwrap()), "{l:?}");
    assert!(l.p_value.unwrap() < 0.05);
    assert!(r.reason.starts_with("latency 1"), "{}", r.reason);
    assert!(r.reason.contains(" ms on canary vs "), "{}", r.reason);
    assert!(p_in(&r.reason) < 0.05, "{}", r.reason);
}

#[test]
fn slightly_better_canary_passes() {
    let stable = traffic(10, 1000.0, 0.020, 0.100, 5);
    let canary = traffic(10, 1000.0, 0.018, 0.095, 6);
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    assert_eq!(r.phase, Phase::Successful, "{}", r.reason);
    assert_eq!(verdicts(&r), both(Pass, Pass));
}

#[test]
fn much_better_canary_is_low_and_passes() {
    let stable = traffic(10, 1000.0, 0.05, 0.200, 5);
    let canary = traffic(10, 1000.0, 0.001, 0.100, 6);
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    assert_eq!(r.phase, Phase::Successful, "{}", r.reason);
    assert_eq!(verdicts(&r), both(Low, Low));
    assert!(r.metrics.iter().all(|m| m.p_value.unwrap() < 0.05));
}

#[test]
fn significant_but_small_increase_passes() {
    // 2.5 % against 2 %: clearly higher, but by less than the allowed 1 point.
    let stable = traffic(10, 5000.0, 0.020, 0.100, 8);
    let canary = traffic(10, 5000.0, 0.025, 0.100, 9);
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    assert_eq!(r.phase, Phase::Successful, "{}", r.reason);
    let e = &r.metrics[0];
    assert_eq!(e.verdict, Pass);
    assert!(e.p_value.unwrap() < 0.05);
    assert!(
        e.reason.ends_with(", within the allowed +1 points"),
        "{}",
        e.reason
    );
    // A tighter bound makes the same numbers fail.
    let strict = JudgeSpec {
        max_error_rate_increase: 0.2,
        ..JudgeSpec::default()
    };
    assert_eq!(judge(&strict, &canary, &stable).phase, Phase::Failed);
}

#[test]
fn large_but_not_significant_increase_passes() {
    // One bad minute in five: the window's rate is 4 % against 0.5 %, but the minutes do not
    // show a canary that is worse beyond chance.
    let stable = Series {
        requests: vec![1000.0; 5],
        errors_5xx: vec![5.0; 5],
        latency_seconds: vec![0.1; 5],
    };
    let canary = Series {
        requests: vec![1000.0; 5],
        errors_5xx: vec![0.0, 0.0, 0.0, 0.0, 200.0],
        latency_seconds: vec![0.1; 5],
    };
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    let e = &r.metrics[0];
    assert_eq!(e.verdict, Pass, "{e:?}");
    assert!(e.effect.unwrap() > 1.0);
    assert!(e.p_value.unwrap() >= 0.05);
    assert!(e.reason.ends_with(", not significant"), "{}", e.reason);
    assert_eq!(r.phase, Phase::Successful);
}

#[test]
fn too_few_requests_is_inconclusive() {
    let stable = traffic(5, 1000.0, 0.01, 0.1, 1);
    let canary = Series {
        requests: vec![2.0, 3.0, 2.0, 4.0, 1.0],
        errors_5xx: vec![0.0; 5],
        latency_seconds: vec![0.1; 5],
    };
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    assert_eq!(r.phase, Phase::Inconclusive);
    assert_eq!(
        r.reason,
        "only 12 requests reached the canary (at least 50 needed)"
    );
    assert_eq!(r.canary_requests, 12.0);
    // Even a terrible canary is not failed on 12 requests.
    let bad = Series {
        errors_5xx: vec![2.0, 3.0, 2.0, 4.0, 1.0],
        ..canary.clone()
    };
    let r = judge(&JudgeSpec::default(), &bad, &stable);
    assert_eq!(r.phase, Phase::Inconclusive);
    assert_eq!(
        r.metrics[0].verdict, High,
        "the metric still shows what was measured"
    );
    // With a lower bar, the same numbers are judged.
    let low = JudgeSpec {
        min_requests: 10,
        ..JudgeSpec::default()
    };
    assert_eq!(judge(&low, &bad, &stable).phase, Phase::Failed);
}

#[test]
fn empty_or_nan_is_no_data() {
    let stable = traffic(5, 1000.0, 0.01, 0.1, 1);
    let nan = Series {
        requests: vec![f64::NAN; 5],
        errors_5xx: vec![f64::NAN; 5],
        latency_seconds: vec![f64::NAN; 5],
    };
    for canary in [Series::default(), nan] {
        let r = judge(&JudgeSpec::default(), &canary, &stable);
        assert_eq!(r.phase, Phase::Inconclusive);
        assert_eq!(
            r.reason,
            "no request reached the canary (at least 50 needed)"
        );
        assert_eq!(verdicts(&r), both(NoData, NoData));
        let any = JudgeSpec {
            min_requests: 0,
            ..JudgeSpec::default()
        };
        let r = judge(&any, &canary, &stable);
        assert_eq!(r.phase, Phase::Inconclusive);
        assert_eq!(
            r.reason,
            "no error rate data on the canary (no minute with requests); no latency data on the canary (no latency datapoint)"
        );
        assert!(
            r.metrics
                .iter()
                .all(|m| m.canary.is_none() && m.u.is_none() && m.p_value.is_none())
        );
    }
    let r = judge(
        &JudgeSpec::default(),
        &Series::default(),
        &Series::default(),
    );
    assert_eq!(verdicts(&r), both(NoData, NoData));
    assert!(
        r.metrics[0].reason.contains("on either side"),
        "{}",
        r.metrics[0].reason
    );
    let r = judge(&JudgeSpec::default(), &stable, &Series::default());
    assert_eq!(r.phase, Phase::Inconclusive);
    assert!(
        r.reason.contains("no error rate data on stable"),
        "{}",
        r.reason
    );
}

#[test]
fn fewer_than_three_minutes_decide_by_effect_alone() {
    let stable = Series {
        requests: vec![1000.0; 2],
        errors_5xx: vec![10.0; 2],
        latency_seconds: vec![0.1; 2],
    };
    let canary = Series {
        requests: vec![1000.0; 2],
        errors_5xx: vec![100.0; 2],
        latency_seconds: vec![0.11; 2],
    };
    let r = judge(&JudgeSpec::default(), &canary, &stable);
    assert_eq!(r.phase, Phase::Failed);
    assert_eq!(verdicts(&r), both(High, Pass));
    let e = &r.metrics[0];
    assert_eq!((e.u, e.p_value), (None, None));
    assert_eq!(
        e.reason,
        "error rate 10 % on canary vs 1 % stable (only 2 minutes of data on a side: judged by effect size alone against +1 points)"
    );
    assert!(
        r.metrics[1]
            .reason
            .contains("judged by effect size alone against ×1.2"),
        "{}",
        r.metrics[1].reason
    );
}

#[test]
fn missing_minutes_and_missing_5xx_datapoints() {
    // CloudWatch sends no 5xx datapoint for a minute without 5xx: a short or NaN 5xx vector
    // means 0 errors in minutes with requests. Minutes without requests do not count.
    let stable = Series {
        requests: vec![1000.0, f64::NAN, 1000.0, 1000.0, 1000.0],
        errors_5xx: vec![f64::NAN, 3.0],
        latency_seconds: vec![0.1, f64::NAN, 0.1, 0.1],
    };
    let r = judge(&JudgeSpec::default(), &stable, &stable);
    assert_eq!(r.metrics[0].canary_points, 4);
    assert_eq!(r.metrics[0].canary, Some(0.0));
    assert_eq!(r.metrics[1].canary_points, 3);
    assert_eq!(r.canary_requests, 4000.0);
    assert_eq!(r.phase, Phase::Successful);
}

#[test]
fn combine_target_groups() {
    let a = Series {
        requests: vec![100.0, 300.0],
        errors_5xx: vec![1.0],
        latency_seconds: vec![0.1, 0.2],
    };
    let b = Series {
        requests: vec![300.0, f64::NAN, 50.0],
        errors_5xx: vec![3.0, 6.0],
        latency_seconds: vec![0.2, 0.4, 0.3],
    };
    let c = Series::combine(&[a, b]);
    assert_eq!(c.requests, vec![400.0, 300.0, 50.0]);
    assert_eq!(c.errors_5xx, vec![4.0, 6.0]);
    // Minute 0 weighted 100:300; minute 1 only `a` has requests; minute 2 only `b`.
    let want = [0.175, 0.2, 0.3];
    for (got, want) in c.latency_seconds.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    assert_eq!(Series::combine(&[]), Series::default());
}

#[test]
fn mann_whitney_matches_the_textbook() {
    // No ties: scipy.stats.mannwhitneyu([1..5], [6..10], method="asymptotic") gives 0.006093 one-sided.
    let t = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
    assert_eq!(t.u, 0.0);
    assert!((t.p_less - 0.006093).abs() < 1e-5, "{t:?}");
    assert!(t.p_greater > 0.99);
    // With ties (average ranks 1, 3, 3, 3, 6, 6, 6, 8): U = 3, tie-corrected sd = 3.295017.
    let t = mann_whitney(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 3.0, 4.0]).unwrap();
    assert_eq!(t.u, 3.0);
    assert!((t.p_less - 0.086017).abs() < 1e-5, "{t:?}");
    // Everything tied: no evidence either way.
    let t = mann_whitney(&[1.0; 4], &[1.0; 3]).unwrap();
    assert_eq!((t.u, t.p_greater, t.p_less), (6.0, 1.0, 1.0));
    assert!(mann_whitney(&[], &[1.0]).is_none());
    assert!(mann_whitney(&[f64::NAN], &[1.0]).is_none());
}

#[test]
fn report_json() {
    let s = traffic(10, 1000.0, 0.02, 0.12, 7);
    let r = judge(
        &JudgeSpec::default(),
        &traffic(10, 1000.0, 0.04, 0.12, 2),
        &s,
    );
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["phase"], "failed");
    assert_eq!(j["metrics"][0]["verdict"], "high");
    assert_eq!(j["metrics"][0]["name"], "errorRate");
    assert!(j["metrics"][0]["pValue"].is_number());
    assert!(j["metrics"][0]["canaryPoints"].is_number());
    assert_eq!(serde_json::from_value::<JudgeReport>(j).unwrap(), r);
    let nd = judge(&JudgeSpec::default(), &Series::default(), &s);
    assert_eq!(
        serde_json::to_value(&nd).unwrap()["metrics"][0]["verdict"],
        "noData"
    );
    // Series: NaN is written as null, and null is read as NaN.
    let series: Series = serde_json::from_value(
        json!({"requests": [1.0, null], "errors5xx": [0.0], "latencySeconds": []}),
    )
    .unwrap();
    assert!(series.requests[1].is_nan());
    let m = r.measurement("2025-01-01T00:00:00Z");
    assert_eq!(
        (m.phase, m.message.as_str()),
        (Phase::Failed, r.reason.as_str())
    );
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..2000.0f64,
        1 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => -100.0..0.0f64,
        1 => Just(0.0),
        1 => Just(f64::MAX),
    ]
}

fn arbitrary_series() -> impl Strategy<Value = Series> {
    let v = || prop::collection::vec(number(), 0..12);
    (v(), v(), v()).prop_map(|(requests, errors_5xx, latency_seconds)| Series {
        requests,
        errors_5xx,
        latency_seconds,
    })
}

fn arbitrary_spec() -> impl Strategy<Value = JudgeSpec> {
    (0u64..200, 0.5..0.999f64, 0.0..5.0f64, 1.0..2.0f64).prop_map(
        |(min_requests, confidence, inc, ratio)| JudgeSpec {
            min_requests,
            confidence,
            max_error_rate_increase: inc,
            max_latency_ratio: ratio,
            ..JudgeSpec::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn judge_never_panics(spec in arbitrary_spec(), canary in arbitrary_series(), stable in arbitrary_series()) {
        let r = judge(&spec, &canary, &stable);
        prop_assert!(!r.reason.is_empty());
        prop_assert!(matches!(r.phase, Phase::Successful | Phase::Failed | Phase::Inconclusive));
        prop_assert_eq!(r.metrics.len(), 2);
        for m in &r.metrics {
            prop_assert!(!m.reason.is_empty());
            if let Some(p) = m.p_value { prop_assert!((0.0..=1.0).contains(&p), "{:?}", m); }
        }
        let text = serde_json::to_string(&r).unwrap();
        prop_assert!(serde_json::from_str::<JudgeReport>(&text).is_ok(), "{}", text);
    }

    #[test]
    fn identical_series_always_pass(spec in arbitrary_spec(), s in arbitrary_series()) {
        let r = judge(&spec, &s, &s.clone());
        for m in &r.metrics {
            prop_assert!(matches!(m.verdict, Pass | NoData), "{:?}", m);
        }
        prop_assert_ne!(r.phase, Phase::Failed);
    }

    #[test]
    fn swapping_sides_swaps_high_and_low(spec in arbitrary_spec(), a in arbitrary_series(), b in arbitrary_series()) {
        let ab = judge(&spec, &a, &b);
        let ba = judge(&spec, &b, &a);
        for (x, y) in ab.metrics.iter().zip(&ba.metrics) {
            let mirrored = match x.verdict { High => Low, Low => High, v => v };
            prop_assert_eq!(mirrored, y.verdict, "{:?} vs {:?}", x, y);
        }
    }
}
