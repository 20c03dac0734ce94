//! The built-in judge: the new version's target groups (the canary) against the serving ones
//! (stable), behind the same load balancer, over the same minutes. Kayenta's approach, for two
//! metrics that may not increase: the 5xx error rate and the latency.
//!
//! For each metric the judge takes one value per minute on each side and asks two questions:
//!
//! 1. **Is the canary worse, beyond chance?** A one-sided Mann-Whitney U test of the canary's
//!    per-minute values against stable's, at [`JudgeSpec::confidence`] (p < 1 − confidence).
//! 2. **Is it worse by enough to matter?** The error rate may grow by at most
//!    [`JudgeSpec::max_error_rate_increase`] percentage points (window totals: errors ÷
//!    requests); the latency may grow by at most the factor [`JudgeSpec::max_latency_ratio`]
//!    (median of the per-minute values).
//!
//! Only both together make a metric **High** (and the report Failed). With fewer than 3 minutes
//! of data on a side the test cannot say anything, so the effect alone decides, and the reason
//! says so. **Low** is the mirror (canary better, beyond chance and by more than the bound);
//! **Pass** is anything else; **NoData** is a metric without any usable minute on a side.
//!
//! The report is Inconclusive, whatever the metrics say, when fewer than
//! [`JudgeSpec::min_requests`] requests reached the canary in the window: a quiet canary has not
//! proven anything. Otherwise: any High → Failed; else any NoData → Inconclusive; else
//! Successful.
//!
//! Input cleaning: a minute counts for the error rate when its request count is a finite
//! number above 0; a missing or NaN 5xx count in such a minute is 0 (CloudWatch publishes no
//! 5xx datapoint for a minute without 5xx), and more errors than requests count as all
//! requests failing. A latency counts when it is a finite number ≥ 0. NaN, ±infinity and
//! negative numbers are dropped, as are minutes past the end of a shorter vector. Outliers are
//! not removed (with 5 to 15 points per side, there is too little to tell one).

use serde::{Deserialize, Deserializer, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::verdict::{Measurement, Phase};
use crate::spec::JudgeSpec;

/// One side's per-minute numbers, aligned by minute: index `i` of every vector is minute `i` of
/// the window. A missing minute is NaN (JSON `null`) or past the end of a shorter vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// Requests per minute (`RequestCount`, Sum).
    #[serde(default, deserialize_with = "nullable_floats")]
    pub requests: Vec<f64>,
    /// 5xx responses per minute (`HTTPCode_Target_5XX_Count`, Sum).
    #[serde(default, rename = "errors5xx", deserialize_with = "nullable_floats")]
    pub errors_5xx: Vec<f64>,
    /// Mean response time per minute, in seconds (`TargetResponseTime`, Average).
    #[serde(default, deserialize_with = "nullable_floats")]
    pub latency_seconds: Vec<f64>,
}

/// `[1.0, null, 2.0]` → `[1.0, NaN, 2.0]`: serde_json writes NaN as `null`.
fn nullable_floats<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v: Vec<Option<f64>> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

fn usable(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

impl Series {
    /// Adds several target groups' series minute by minute: requests and 5xx are summed, the
    /// latency is the request-weighted mean (the plain mean where no minute has requests). A
    /// minute none of the parts has is NaN.
    pub fn combine(parts: &[Series]) -> Series {
        let len = |f: fn(&Series) -> &Vec<f64>| parts.iter().map(|p| f(p).len()).max().unwrap_or(0);
        let sum = |f: fn(&Series) -> &Vec<f64>| -> Vec<f64> {
            (0..len(f))
                .map(|i| {
                    let values: Vec<f64> = parts
                        .iter()
                        .filter_map(|p| f(p).get(i).copied())
                        .filter(|x| usable(*x))
                        .collect();
                    if values.is_empty() {
                        f64::NAN
                    } else {
                        values.iter().sum()
                    }
                })
                .collect()
        };
        let latency = (0..len(|s| &s.latency_seconds))
            .map(|i| {
                let points: Vec<(f64, Option<f64>)> = parts
                    .iter()
                    .filter_map(|p| {
                        let l = p.latency_seconds.get(i).copied().filter(|x| usable(*x))?;
                        Some((
                            l,
                            p.requests
                                .get(i)
                                .copied()
                                .filter(|r| r.is_finite() && *r > 0.0),
                        ))
                    })
                    .collect();
                let weighted: Vec<(f64, f64)> = points
                    .iter()
                    .filter_map(|(l, r)| r.map(|r| (*l, r)))
                    .collect();
                let weight: f64 = weighted.iter().map(|(_, r)| r).sum();
                if !weighted.is_empty() && weight.is_finite() {
                    weighted.iter().map(|(l, r)| l * r).sum::<f64>() / weight
                } else if !points.is_empty() {
                    points.iter().map(|(l, _)| l).sum::<f64>() / points.len() as f64
                } else {
                    f64::NAN
                }
            })
            .collect();
        Series {
            requests: sum(|s| &s.requests),
            errors_5xx: sum(|s| &s.errors_5xx),
            latency_seconds: latency,
        }
    }

    /// The requests of the window: the sum of the usable minutes.
    pub fn total_requests(&self) -> f64 {
        self.requests.iter().copied().filter(|r| usable(*r)).sum()
    }
}

/// One side, cleaned.
struct Side {
    requests: f64,
    errors: f64,
    /// Per-minute error rates, 0-1.
    rates: Vec<f64>,
    /// Per-minute latencies, seconds.
    latencies: Vec<f64>,
}

impl Side {
    fn of(s: &Series) -> Side {
        let mut side = Side {
            requests: 0.0,
            errors: 0.0,
            rates: Vec::new(),
            latencies: Vec::new(),
        };
        for (i, r) in s.requests.iter().copied().enumerate() {
            if !(r.is_finite() && r > 0.0) {
                continue;
            }
            let e = s
                .errors_5xx
                .get(i)
                .copied()
                .filter(|e| usable(*e))
                .unwrap_or(0.0)
                .min(r);
            side.requests += r;
            side.errors += e;
            side.rates.push(e / r);
        }
        side.latencies = s
            .latency_seconds
            .iter()
            .copied()
            .filter(|l| usable(*l))
            .collect();
        side
    }

    /// The window's error rate, 0-1: total errors ÷ total requests (the mean of the minutes if
    /// the totals overflow).
    fn error_rate(&self) -> Option<f64> {
        if self.rates.is_empty() {
            return None;
        }
        let pooled = self.errors / self.requests;
        Some(if pooled.is_finite() {
            pooled
        } else {
            self.rates.iter().sum::<f64>() / self.rates.len() as f64
        })
    }
}

mod format;
mod stats;

use format::*;
pub use stats::*;

/// A metric's verdict, as Kayenta names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JudgeVerdict {
    /// No difference that matters.
    Pass,
    /// The canary is worse: beyond chance and beyond the allowed bound.
    High,
    /// The canary is better: beyond chance and beyond the bound, the other way.
    Low,
    /// No usable minute on a side.
    NoData,
}

/// One metric of the judge's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeMetric {
    /// `errorRate` or `latency`.
    pub name: String,
    /// The unit of `canary` and `stable`: `percent` or `seconds`.
    pub unit: String,
    /// The canary's value: the window's 5xx rate in %, or the median per-minute latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<f64>,
    /// Stable's value, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<f64>,
    /// Minutes with data on the canary side.
    pub canary_points: usize,
    /// Minutes with data on the stable side.
    pub stable_points: usize,
    /// Mann-Whitney U of the canary's minutes (absent below 3 points a side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<f64>,
    /// One-sided p-value of "the canary is higher" (of "lower" when the verdict is Low).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Canary minus stable in percentage points (error rate), or canary ÷ stable (latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<f64>,
    /// Pass, High, Low or NoData.
    pub verdict: JudgeVerdict,
    /// One line, such as `error rate 3.2 % on canary vs 0.4 % stable, p=0.003`.
    pub reason: String,
}

/// The judge's answer for one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeReport {
    /// Successful, Failed or Inconclusive.
    pub phase: Phase,
    /// Requests that reached the canary in the window.
    pub canary_requests: f64,
    /// Requests that reached stable in the window.
    pub stable_requests: f64,
    /// One entry per metric: the error rate, then the latency.
    pub metrics: Vec<JudgeMetric>,
    /// One line that says why.
    pub reason: String,
}

impl JudgeReport {
    /// The report as one sample of an analysis.
    pub fn measurement(&self, at: &str) -> Measurement {
        Measurement {
            value: None,
            phase: self.phase,
            message: self.reason.clone(),
            at: at.to_string(),
        }
    }
}

/// Below this many points on a side, the test is not run and the effect alone decides.
pub const MIN_POINTS_FOR_TEST: usize = 3;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    ErrorRate,
    Latency,
}

fn assess(kind: Kind, canary: &Side, stable: &Side, spec: &JudgeSpec, alpha: f64) -> JudgeMetric {
    let (name, unit, what, c_points, s_points) = match kind {
        Kind::ErrorRate => (
            "errorRate",
            "percent",
            "error rate",
            &canary.rates,
            &stable.rates,
        ),
        Kind::Latency => (
            "latency",
            "seconds",
            "latency",
            &canary.latencies,
            &stable.latencies,
        ),
    };
    let (c_value, s_value) = match kind {
        Kind::ErrorRate => (canary.error_rate(), stable.error_rate()),
        Kind::Latency => (median(&canary.latencies), median(&stable.latencies)),
    };
    let shown = |v: Option<f64>| match kind {
        Kind::ErrorRate => v.and_then(|v| round_sig(v * 100.0, 4)),
        Kind::Latency => v.and_then(|v| round_sig(v, 4)),
    };
    let mut metric = JudgeMetric {
        name: name.to_string(),
        unit: unit.to_string(),
        canary: shown(c_value),
        stable: shown(s_value),
        canary_points: c_points.len(),
        stable_points: s_points.len(),
        u: None,
        p_value: None,
        effect: None,
        verdict: JudgeVerdict::NoData,
        reason: String::new(),
    };
    let (c, s) = match (c_value, s_value) {
        (Some(c), Some(s)) => (c, s),
        _ => {
            let sides = match (c_value, s_value) {
                (None, None) => "either side",
                (None, _) => "the canary",
                _ => "stable",
            };
            let why = if kind == Kind::ErrorRate {
                "no minute with requests"
            } else {
                "no latency datapoint"
            };
            metric.reason = format!("no {what} data on {sides} ({why})");
            return metric;
        }
    };

    // The effect, and whether it passes the bound either way.
    let (effect, high_effect, low_effect, bound) = match kind {
        Kind::ErrorRate => {
            let up = (c - s) * 100.0;
            let down = (s - c) * 100.0;
            let bound = spec.max_error_rate_increase;
            (
                up,
                up > bound,
                down > bound,
                format!("+{} points", short(bound)),
            )
        }
        Kind::Latency => {
            let up = ratio(c, s);
            let down = ratio(s, c);
            let bound = spec.max_latency_ratio;
            (up, up > bound, down > bound, format!("×{}", short(bound)))
        }
    };
    metric.effect = round_sig(effect, 4);
    let mut reason = match kind {
        Kind::ErrorRate => format!(
            "error rate {} % on canary vs {} % stable",
            fmt_percent(c),
            fmt_percent(s)
        ),
        Kind::Latency => format!(
            "latency {} on canary vs {} stable (×{})",
            fmt_latency(c),
            fmt_latency(s),
            fmt_ratio(effect)
        ),
    };

    if c_points.len() < MIN_POINTS_FOR_TEST || s_points.len() < MIN_POINTS_FOR_TEST {
        metric.verdict = if high_effect {
            JudgeVerdict::High
        } else if low_effect {
            JudgeVerdict::Low
        } else {
            JudgeVerdict::Pass
        };
        let fewest = c_points.len().min(s_points.len());
        let minutes = if fewest == 1 { "minute" } else { "minutes" };
        reason.push_str(&format!(
            " (only {fewest} {minutes} of data on a side: judged by effect size alone against {bound})"
        ));
        metric.reason = reason;
        return metric;
    }

    let Some(test) = mann_whitney(c_points, s_points) else {
        // Unreachable: both sides hold finite points. Stay on the safe side anyway.
        metric.verdict = JudgeVerdict::NoData;
        metric.reason = format!("{reason}: the test could not run");
        return metric;
    };
    metric.u = Some(test.u);
    let (verdict, p) = if test.p_greater < alpha && high_effect {
        (JudgeVerdict::High, test.p_greater)
    } else if test.p_less < alpha && low_effect {
        (JudgeVerdict::Low, test.p_less)
    } else {
        (JudgeVerdict::Pass, test.p_greater)
    };
    metric.verdict = verdict;
    metric.p_value = round_sig(p, 3);
    reason.push_str(&format!(", {}", fmt_p(p)));
    if verdict == JudgeVerdict::Pass {
        if test.p_greater < alpha {
            reason.push_str(&format!(", within the allowed {bound}"));
        } else if high_effect {
            reason.push_str(", not significant");
        }
    }
    metric.reason = reason;
    metric
}

fn short(x: f64) -> String {
    super::condition::short_number(x)
}

/// Judges the canary against stable over one window (see the module's rules). Never panics,
/// whatever the numbers; a `confidence` outside 0.5-0.999 (or NaN) is taken as the nearest
/// bound (0.95 for NaN).
pub fn judge(spec: &JudgeSpec, canary: &Series, stable: &Series) -> JudgeReport {
    let confidence = if spec.confidence.is_nan() {
        0.95
    } else {
        spec.confidence.clamp(0.5, 0.999)
    };
    let alpha = 1.0 - confidence;
    let (c, s) = (Side::of(canary), Side::of(stable));
    let metrics = vec![
        assess(Kind::ErrorRate, &c, &s, spec, alpha),
        assess(Kind::Latency, &c, &s, spec, alpha),
    ];
    let canary_requests = canary.total_requests();
    let reasons = |v: JudgeVerdict| -> Vec<&str> {
        metrics
            .iter()
            .filter(|m| m.verdict == v)
            .map(|m| m.reason.as_str())
            .collect()
    };

    let (phase, reason) = if canary_requests < spec.min_requests as f64 {
        let reached = if canary_requests == 0.0 {
            "no request reached the canary".to_string()
        } else if canary_requests == 1.0 {
            "only 1 request reached the canary".to_string()
        } else {
            format!("only {canary_requests:.0} requests reached the canary")
        };
        (
            Phase::Inconclusive,
            format!("{reached} (at least {} needed)", spec.min_requests),
        )
    } else if !reasons(JudgeVerdict::High).is_empty() {
        (Phase::Failed, reasons(JudgeVerdict::High).join("; "))
    } else if !reasons(JudgeVerdict::NoData).is_empty() {
        (
            Phase::Inconclusive,
            reasons(JudgeVerdict::NoData).join("; "),
        )
    } else {
        let all: Vec<&str> = metrics.iter().map(|m| m.reason.as_str()).collect();
        (
            Phase::Successful,
            format!("no regression: {}", all.join("; ")),
        )
    };
    JudgeReport {
        phase,
        // Finite, so that JSON holds a number (a sum can overflow to infinity).
        canary_requests: canary_requests.min(f64::MAX),
        stable_requests: stable.total_requests().min(f64::MAX),
        metrics,
        reason,
    }
}
