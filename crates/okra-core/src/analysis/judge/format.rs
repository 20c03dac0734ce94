//! Numbers as the judge's reasons show them.

use super::*;

/// `x` rounded to `digits` significant digits (non-finite values are `None`).
pub(super) fn round_sig(x: f64, digits: i32) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    if x == 0.0 {
        return Some(0.0);
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    let r = (x * scale).round() / scale;
    Some(if r.is_finite() { r } else { x })
}

/// `3.2`, `0.4`, `0.04`, `12`: two significant digits, at most 3 decimals.
pub(super) fn fmt_percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 {
        return "0".to_string();
    }
    let decimals = (1 - p.abs().log10().floor() as i32).clamp(0, 3) as usize;
    let s = format!("{p:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `180 ms`, `4.5 ms`, `1.25 s`.
pub(super) fn fmt_latency(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms >= 1000.0 {
        format!("{seconds:.2} s")
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// `1.53`, `inf`.
pub(super) fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}")
    } else {
        short(r)
    }
}

/// `p=0.003`, `p<0.001`, `p=0.42`.
pub(super) fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".to_string()
    } else if p < 0.01 {
        format!("p={p:.3}")
    } else {
        format!("p={p:.2}")
    }
}

pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}
