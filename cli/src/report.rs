//! `okra rollout report --html`: one self-contained page (inline SVG and CSS, no external
//! assets, no script) with the weights of each version over time and the analysis values per
//! sample.

use std::fmt::Write as _;

use okra_core::vocab::{HistoryEvent, Phase};

use crate::view::View;

const COLORS: [&str; 6] = [
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ms_of(rfc3339: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z')).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// The weight of each side over time: `(epoch ms, canary weight)`, starting at 0.
pub fn timeline(v: &View) -> Vec<(i64, u32)> {
    let mut points = Vec::new();
    let mut weight = 0;
    for h in &v.rollout.history {
        let Some(t) = ms_of(&h.at) else { continue };
        if let Some(w) = h.weight {
            weight = w;
        } else if h.event == HistoryEvent::Promoted {
            weight = 100;
        } else if h.event == HistoryEvent::RolledBack {
            weight = 0;
        }
        points.push((t, weight));
    }
    points
}

/// The page.
pub fn html(v: &View) -> String {
    let r = &v.rollout;
    let from = r.from.clone().unwrap_or_else(|| "(none)".into());
    let points = timeline(v);
    let (w, h, pad) = (760.0_f64, 240.0_f64, 40.0_f64);
    let t0 = points
        .first()
        .map(|p| p.0)
        .into_iter()
        .chain(v.samples.first().map(|s| s.at_ms))
        .min()
        .unwrap_or(0);
    let t1 = points
        .last()
        .map(|p| p.0)
        .into_iter()
        .chain(v.samples.last().map(|s| s.at_ms))
        .max()
        .unwrap_or(1)
        .max(t0 + 1);
    #[allow(clippy::cast_precision_loss)]
    let x = |t: i64| pad + (t - t0) as f64 / (t1 - t0) as f64 * (w - 2.0 * pad);
    let y = |pct: f64| h - pad - pct / 100.0 * (h - 2.0 * pad);
    let step_path = |f: &dyn Fn(u32) -> u32| {
        let mut d = String::new();
        let mut last: Option<f64> = None;
        for (t, wt) in &points {
            let yy = y(f64::from(f(*wt)));
            let xx = x(*t);
            match last {
                None => {
                    let _ = write!(d, "M{xx:.1},{yy:.1}");
                }
                Some(prev) => {
                    let _ = write!(d, " L{xx:.1},{prev:.1} L{xx:.1},{yy:.1}");
                }
            }
            last = Some(yy);
        }
        d
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="weights over time">"##
    );
    for pct in [0.0, 50.0, 100.0] {
        let _ = write!(
            svg,
            r##"<line x1="{pad}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="4" y="{:.1}" font-size="11" fill="#666">{pct} %</text>"##,
            w - pad,
            y(pct) + 4.0,
            y = y(pct)
        );
    }
    for (i, (label, f)) in [
        (from.as_str(), &(|wt: u32| 100 - wt) as &dyn Fn(u32) -> u32),
        (r.to.as_str(), &(|wt: u32| wt) as &dyn Fn(u32) -> u32),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="{}" stroke-width="3"/><rect x="{}" y="8" width="12" height="12" fill="{}"/><text x="{}" y="18" font-size="12">{}</text>"##,
            step_path(f),
            COLORS[i],
            pad + 140.0 * i as f64,
            COLORS[i],
            pad + 16.0 + 140.0 * i as f64,
            esc(label)
        );
    }
    for s in &v.samples {
        let color = if s.phase == Phase::Failed {
            "#e45756"
        } else {
            "#54a24b"
        };
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="{color}" stroke-dasharray="4 3"/><circle cx="{x:.1}" cy="{}" r="5" fill="{color}"><title>{}</title></circle>"##,
            pad,
            h - pad,
            h - pad + 12.0,
            esc(&format!("{}: {}", s.phase, s.reason)),
            x = x(s.at_ms)
        );
    }
    svg.push_str("</svg>");

    // The analysis values, one bar chart per metric.
    let mut metrics: Vec<String> = v
        .samples
        .iter()
        .flat_map(|s| s.values.keys().cloned())
        .collect();
    metrics.sort();
    metrics.dedup();
    let mut charts = String::new();
    for (mi, m) in metrics.iter().enumerate() {
        let vals: Vec<(usize, f64, Phase)> = v
            .samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.values.get(m).map(|val| (i, *val, s.phase)))
            .collect();
        let max = vals.iter().map(|v| v.1).fold(1.0_f64, f64::max);
        let bw = 48.0;
        let cw = pad * 2.0 + bw * 1.5 * vals.len() as f64;
        let _ = write!(
            charts,
            r##"<h3>{}</h3><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {cw} 180" width="{cw}" height="180" role="img" aria-label="{}">"##,
            esc(m),
            esc(m)
        );
        for (k, (i, val, phase)) in vals.iter().enumerate() {
            let bh = (val / max * 120.0).max(2.0);
            let color = if *phase == Phase::Failed {
                "#e45756"
            } else {
                COLORS[(mi + 2) % COLORS.len()]
            };
            let bx = pad + bw * 1.5 * k as f64;
            let _ = write!(
                charts,
                r##"<rect x="{bx:.1}" y="{:.1}" width="{bw}" height="{bh:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{val}</text><text x="{:.1}" y="170" font-size="11" text-anchor="middle" fill="#666">#{}</text>"##,
                150.0 - bh,
                bx + bw / 2.0,
                145.0 - bh,
                bx + bw / 2.0,
                i + 1
            );
        }
        charts.push_str(r##"<line x1="30" x2="100%" y1="150" y2="150" stroke="#999"/></svg>"##);
    }

    let mut rows = String::new();
    for (i, s) in v.samples.iter().enumerate() {
        let values: Vec<String> = s.values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let _ = write!(
            rows,
            "<tr><td>#{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            s.step.map_or_else(String::new, |s| (s + 1).to_string()),
            esc(s.phase.as_str()),
            esc(s.phase.as_str()),
            esc(&values.join(", ")),
            esc(&s.reason)
        );
    }
    let mut history = String::new();
    for h in &r.history {
        let _ = write!(history, "<li>{}</li>", esc(&crate::view::history_line(h)));
    }
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>okra rollout {exec}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }} h3 {{ font-size: 14px; }}
.status {{ display: inline-block; padding: 2px 8px; border-radius: 4px; background: #eee; }}
.promoted {{ background: #d6f5d6; }} .rolledBack, .failed {{ background: #fadada; color: #a00; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: 4px 8px; font-size: 13px; text-align: left; }}
td.failed {{ color: #a00; font-weight: bold; }} td.successful {{ color: #070; }}
ul {{ font-family: ui-monospace, monospace; font-size: 12px; }}
</style></head>
<body>
<h1>okra · cell {cell} · rollout {exec}</h1>
<p>{from} → {to} · <span class="status {status}">{status}</span></p>
<h2>Traffic per version</h2>
{svg}
<h2>Analysis samples</h2>
{charts}
<table><tr><th>sample</th><th>step</th><th>verdict</th><th>values</th><th>reason</th></tr>{rows}</table>
<h2>History</h2>
<ul>{history}</ul>
</body></html>
"##,
        cell = esc(&v.cell),
        exec = esc(&r.execution),
        from = esc(&from),
        to = esc(&r.to),
        status = esc(r.status.as_ref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Sample;
    use okra_aws::state::{HistoryEntry, Rollout};
    use okra_core::vocab::RolloutStatus;
    use std::collections::BTreeMap;

    fn entry(at: &str, event: &str, weight: Option<u32>) -> HistoryEntry {
        HistoryEntry {
            at: at.into(),
            event: event.parse().expect("a history event"),
            step: None,
            weight,
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_self_contained_page_with_the_timeline_and_samples() {
        let v = View {
            cell: "web".into(),
            rollout: Rollout {
                execution: "web--1-1-0--0".into(),
                cell: "web".into(),
                from: Some("1.0.0".into()),
                to: "1.1.0".into(),
                status: RolloutStatus::Promoted,
                weight: 100,
                history: vec![
                    entry("2026-03-02T10:00:00.000Z", "started", None),
                    entry("2026-03-02T10:00:01.000Z", "stepDone", Some(10)),
                    entry("2026-03-02T10:00:03.000Z", "stepDone", Some(50)),
                    entry("2026-03-02T10:00:05.000Z", "promoted", Some(100)),
                ],
                started_at: "2026-03-02T10:00:00.000Z".into(),
                updated_at: "2026-03-02T10:00:05.000Z".into(),
            },
            execution: None,
            wait: None,
            step_count: 3,
            step: None,
            weights: Vec::new(),
            samples: vec![Sample {
                at_ms: 1_772_445_602_000,
                step: Some(1),
                phase: Phase::Successful,
                reason: "metric <e> ok".into(),
                values: BTreeMap::from([("error-rate".to_owned(), 0.5)]),
            }],
        };
        assert_eq!(
            timeline(&v).iter().map(|p| p.1).collect::<Vec<_>>(),
            vec![0, 10, 50, 100]
        );
        let page = html(&v);
        assert!(page.starts_with("<!doctype html>"));
        assert_eq!(
            page.matches("<svg").count(),
            2,
            "the timeline and one metric"
        );
        assert!(page.contains("metric &lt;e&gt; ok"), "escaped");
        assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("src="));
    }
}
