//! The rollout view `okra rollout status`, `watch` and the demo show: the cell, its versions, the
//! current step, a weight bar per version (read from the listener), the last analysis verdict,
//! and the history.

use okra_aws::app::{RolloutView, WaitView};
pub use okra_aws::app::{Sample, VersionWeight};
use okra_aws::state::{ExecutionInfo, Rollout};
use okra_core::spec::CanaryStep;
use okra_core::vocab::{ExecutionStatus, HistoryEvent, RolloutStatus};
use serde::Serialize;
use serde_json::Value;

use crate::client::Client;
use crate::error::CliError;

/// Everything the view shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// The cell.
    pub cell: String,
    /// The rollout record (history included).
    pub rollout: Rollout,
    /// Its execution, if Step Functions knows it.
    pub execution: Option<ExecutionInfo>,
    /// Where it waits, and for how long at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitView>,
    /// Steps of the cell's canary.
    pub step_count: usize,
    /// The step the rollout is at (0-based), with its description.
    pub step: Option<(usize, String)>,
    /// The listener's weights by version (read now).
    pub weights: Vec<VersionWeight>,
    /// The analysis samples, oldest first.
    pub samples: Vec<Sample>,
}

impl View {
    /// Whether the rollout has ended.
    pub fn done(&self) -> bool {
        self.rollout.status != RolloutStatus::Running
            || self.execution.as_ref().is_some_and(|e| !e.is_running())
    }

    /// Whether it ended badly (rolled back or failed).
    pub fn failed(&self) -> bool {
        self.rollout.status.is_failure()
            || self
                .execution
                .as_ref()
                .is_some_and(|e| !e.is_running() && e.status != ExecutionStatus::Succeeded.as_ref())
    }

    /// The last analysis verdict.
    pub fn verdict(&self) -> Option<&Sample> {
        self.samples.last()
    }
}

/// A step in words.
pub fn describe_step(step: &CanaryStep) -> String {
    if let Some(w) = step.set_weight {
        return format!("setWeight {w}");
    }
    if let Some(p) = &step.pause {
        return match serde_json::to_value(p)
            .ok()
            .and_then(|v| v.get("duration").and_then(Value::as_str).map(str::to_owned))
        {
            Some(d) => format!("pause {d}"),
            None => match &p.timeout {
                Some(t) => format!(
                    "pause until resumed (at most {t}, then {})",
                    p.on_timeout.unwrap_or_default()
                ),
                None => "pause until resumed".to_owned(),
            },
        };
    }
    if let Some(a) = &step.analysis {
        let names: Vec<String> = serde_json::to_value(a)
            .ok()
            .and_then(|v| v.get("templates").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.get("templateName").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        return format!("analysis {}", names.join(", "));
    }
    "step".to_owned()
}

/// Gathers the view of rollout `id` of `cell`.
pub async fn gather(client: &Client, cell: &str, id: &str) -> Result<View, CliError> {
    let spec = client.get_cell(cell).await?.spec;
    let RolloutView {
        rollout,
        execution,
        wait,
        weights,
        samples,
    } = client.get_rollout(cell, id).await?;
    let steps = &spec.canary.steps;
    let step = rollout.history.iter().rev().find_map(|h| h.step).map(|i| {
        // The step recorded last is done; a running rollout is at the next one.
        let at = if rollout.status == RolloutStatus::Running
            && rollout
                .history
                .last()
                .is_some_and(|h| h.event == HistoryEvent::StepDone)
        {
            (i + 1).min(steps.len().saturating_sub(1))
        } else {
            i
        };
        (at, steps.get(at).map(describe_step).unwrap_or_default())
    });
    Ok(View {
        cell: cell.to_owned(),
        weights,
        samples,
        step_count: steps.len(),
        step,
        rollout,
        execution,
        wait,
    })
}

/// A bar of `width` cells for `percent`.
pub fn bar(percent: u32, width: usize) -> String {
    let full = (percent.min(100) as usize * width + 50) / 100;
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

/// The view as text lines.
pub fn render(v: &View) -> Vec<String> {
    let r = &v.rollout;
    let mut lines = Vec::new();
    let status = v.execution.as_ref().map_or_else(
        || r.status.to_string(),
        |e| format!("{} ({})", r.status, e.status),
    );
    lines.push(format!(
        "cell {}  rollout {}  {} → {}  {}",
        v.cell,
        r.execution,
        r.from.as_deref().unwrap_or("(none)"),
        r.to,
        status
    ));
    if let Some((i, what)) = &v.step {
        lines.push(format!("step {}/{}  {what}", i + 1, v.step_count));
    }
    for w in &v.weights {
        lines.push(format!(
            "  {:>8}  {}  {:>3} %  ({} target group{})",
            w.version,
            bar(w.percent, 30),
            w.percent,
            w.target_groups,
            if w.target_groups == 1 { "" } else { "s" }
        ));
    }
    if v.weights.is_empty() {
        lines.push("  (the listener forwards to no target group)".to_owned());
    }
    if let Some(w) = v.wait.as_ref().filter(|_| !v.done()) {
        lines.push(wait_line(w));
    }
    if let Some(s) = v.verdict() {
        lines.push(format!("analysis: {}", verdict_line(s)));
    }
    lines.push("history:".to_owned());
    for h in &r.history {
        lines.push(format!("  {}", history_line(h)));
    }
    lines
}

/// Where the rollout waits, in one line: `waiting for a person: 7h 59m left`.
pub fn wait_line(w: &WaitView) -> String {
    let what = match w.kind {
        okra_core::vocab::WaitKind::Person => "waiting for a person",
        okra_core::vocab::WaitKind::Pause => "pausing",
        okra_core::vocab::WaitKind::Analysis => "waiting for the next sample",
        okra_core::vocab::WaitKind::Window => "held until its deployment window opens",
    };
    match w.left_seconds {
        Some(s) => format!("{what}: {} left", human_seconds(s)),
        None => what.to_owned(),
    }
}

/// `7h 59m`, `4m 10s`, `12s`; days above 48 hours.
pub fn human_seconds(s: u64) -> String {
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, s / 3600) {
        (d, _) if s >= 48 * 3600 => format!("{d}d {h}h"),
        (_, hours) if hours > 0 => format!("{hours}h {m}m"),
        _ if m > 0 => format!("{m}m {sec}s"),
        _ => format!("{sec}s"),
    }
}

/// A sample's verdict in one line: phase, reason, values.
pub fn verdict_line(s: &Sample) -> String {
    let values: Vec<String> = s.values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    let values = if values.is_empty() {
        String::new()
    } else {
        format!(" ({})", values.join(", "))
    };
    format!("{} — {}{values}", s.phase, one_line(&s.reason))
}

/// One history entry in words.
pub fn history_line(h: &okra_aws::state::HistoryEntry) -> String {
    let time = h.at.get(11..19).unwrap_or(&h.at);
    let mut s = format!("{time}  {}", h.event);
    if let Some(step) = h.step {
        s.push_str(&format!("  step {}", step + 1));
    }
    if let Some(w) = h.weight {
        s.push_str(&format!("  weight {w} %"));
    }
    let detail = match &h.detail {
        Value::Null => String::new(),
        Value::Object(o) => o.get("reason").and_then(Value::as_str).map_or_else(
            || {
                o.iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k} {s}"),
                        other => format!("{k} {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            str::to_owned,
        ),
        other => other.to_string(),
    };
    if !detail.is_empty() {
        s.push_str(&format!("  {}", one_line(&detail)));
    }
    s
}

/// A reason cut to one line of at most 140 characters.
pub fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 140 {
        format!("{}…", line.chars().take(139).collect::<String>())
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use okra_aws::state::HistoryEntry;
    use okra_core::vocab::Phase;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn bars_and_steps_in_words() {
        assert_eq!(bar(0, 10), "░░░░░░░░░░");
        assert_eq!(bar(50, 10), "█████░░░░░");
        assert_eq!(bar(100, 4), "████");
        let step: CanaryStep = serde_json::from_value(json!({"setWeight": 10})).unwrap();
        assert_eq!(describe_step(&step), "setWeight 10");
        let step: CanaryStep = serde_json::from_value(json!({"pause": {}})).unwrap();
        assert_eq!(describe_step(&step), "pause until resumed");
        let step: CanaryStep =
            serde_json::from_value(json!({"pause": {"timeout": "8h", "onTimeout": "promote"}}))
                .unwrap();
        assert_eq!(
            describe_step(&step),
            "pause until resumed (at most 8h, then promote)"
        );
        let person = WaitView {
            kind: okra_core::vocab::WaitKind::Person,
            step: Some(1),
            until: Some("2026-03-02T18:00:00.000Z".into()),
            left_seconds: Some(7 * 3600 + 59 * 60 + 5),
        };
        assert_eq!(wait_line(&person), "waiting for a person: 7h 59m left");
        assert_eq!(human_seconds(250), "4m 10s");
        assert_eq!(human_seconds(3 * 86_400 + 3600), "3d 1h");
        assert_eq!(human_seconds(9), "9s");
        let step: CanaryStep = serde_json::from_value(
            json!({"analysis": {"templates": [{"templateName": "errors"}]}}),
        )
        .unwrap();
        assert_eq!(describe_step(&step), "analysis errors");
    }

    #[test]
    fn history_lines_and_verdicts_read_as_one_line() {
        let h = HistoryEntry {
            at: "2026-03-02T10:00:05.123Z".into(),
            event: HistoryEvent::StepDone,
            step: Some(0),
            weight: Some(10),
            detail: json!({"version": "1.1.0"}),
        };
        assert_eq!(
            history_line(&h),
            "10:00:05  stepDone  step 1  weight 10 %  version 1.1.0"
        );
        let s = Sample {
            at_ms: 0,
            step: Some(1),
            phase: Phase::Failed,
            reason: "metric error-rate failed\nmore".into(),
            values: BTreeMap::from([("error-rate".to_owned(), 12.0)]),
        };
        assert_eq!(
            verdict_line(&s),
            "failed — metric error-rate failed (error-rate = 12)"
        );
        assert_eq!(one_line(&"x".repeat(200)).chars().count(), 140);
    }
}
