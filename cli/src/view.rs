//! The rollout view `okra rollout status`, `watch` and the demo show: the cell, its versions, the
//! current step, a weight bar per version (read from the listener), the last analysis verdict,
//! and the history.

use std::collections::BTreeMap;

use okra_aws::app::{RolloutView, WaitView};
use okra_aws::ports::LoadBalancerPort;
use okra_aws::state::{ExecutionInfo, Rollout};
use okra_core::model::CurrentAction;
use okra_core::spec::{CanaryStep, CellSpec};
use okra_core::vocab::{ExecutionStatus, HistoryEvent, Phase, RolloutStatus};
use serde::Serialize;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::error::CliError;

/// One version's share of the listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionWeight {
    /// The version (`?` for target groups okra did not make).
    pub version: String,
    /// Its percentage of the listener's traffic.
    pub percent: u32,
    /// Its target groups.
    pub target_groups: usize,
}

/// One analysis sample (a check-metrics result in the execution's history).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Epoch milliseconds.
    pub at_ms: i64,
    /// The step index.
    pub step: Option<u64>,
    /// The verdict (`error` when the sample's phase does not read).
    pub phase: Phase,
    /// Why, in one line.
    pub reason: String,
    /// Each metric's newest value.
    pub values: BTreeMap<String, f64>,
}

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

/// The rollout a command means when it names none: the cell's running execution (its name
/// starts with `<cell>--`), else its newest recorded rollout.
pub async fn newest(ctx: &Ctx, cell: &str) -> Result<String, CliError> {
    if let Some(arn) = &ctx.state_machine_arn {
        let prefix = format!("{cell}--");
        let running = ctx
            .sfn
            .list_executions()
            .state_machine_arn(arn)
            .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
            .send()
            .await;
        if let Ok(list) = running {
            let mut mine: Vec<_> = list
                .executions()
                .iter()
                .filter(|e| e.name().starts_with(&prefix))
                .collect();
            mine.sort_by_key(|e| std::cmp::Reverse(e.start_date().secs()));
            if let Some(e) = mine.first() {
                return Ok(e.name().to_owned());
            }
        }
    }
    let list = ctx.answer(ctx.okra().list_rollouts(cell, 1).await)?;
    list.rollouts
        .into_iter()
        .next()
        .map(|r| r.execution)
        .ok_or_else(|| {
            CliError::new(format!("cell {cell} has no rollout yet"))
                .hint("`okra plan <cell>` shows what a rollout would do; `okra rollout start <cell>` starts one")
        })
}

/// The listener's weights by version.
pub async fn weights(ctx: &Ctx, spec: &CellSpec) -> Result<Vec<VersionWeight>, CliError> {
    let Some((_, listener)) = spec.ingress.listener() else {
        return Ok(Vec::new());
    };
    let owned = ctx
        .elb
        .read_action(listener, spec.ingress.rule_arn())
        .await?;
    let CurrentAction::Forward(fa) = owned.action else {
        return Ok(Vec::new());
    };
    let arns: Vec<String> = fa
        .targets
        .iter()
        .map(|t| t.target_group_arn.clone())
        .collect();
    let groups = ctx.elb.find_target_groups(&spec.name, &arns).await?;
    let total: u32 = fa.targets.iter().map(|t| t.weight).sum();
    let mut by_version: BTreeMap<String, (u32, usize)> = BTreeMap::new();
    for t in &fa.targets {
        let version = groups
            .iter()
            .find(|g| g.arn == t.target_group_arn)
            .map_or_else(|| "?".to_owned(), |g| g.version.clone());
        let e = by_version.entry(version).or_default();
        e.0 += t.weight;
        e.1 += 1;
    }
    let mut out: Vec<VersionWeight> = by_version
        .into_iter()
        .map(|(version, (w, n))| VersionWeight {
            version,
            percent: (w * 100 + total / 2).checked_div(total).unwrap_or(0),
            target_groups: n,
        })
        .collect();
    out.sort_by_key(|a| version_key(&a.version));
    Ok(out)
}

fn version_key(v: &str) -> (Option<semver_lite::V>, String) {
    (semver_lite::parse(v), v.to_owned())
}

/// Just enough semver to sort versions.
mod semver_lite {
    /// major, minor, patch.
    pub type V = (u64, u64, u64);
    /// `1.2.3` or `v1.2.3` (pre-release ignored).
    pub fn parse(v: &str) -> Option<V> {
        let v = v.strip_prefix('v').unwrap_or(v);
        let core = v.split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((it.next()??, it.next()??, it.next()??))
    }
}

/// The analysis samples of an execution, from its history (the results of its
/// [`okra_core::vocab::states::CHECK_METRICS`] state).
pub async fn samples(ctx: &Ctx, execution: &str) -> Vec<Sample> {
    let Ok(arn) = ctx.executions.execution_arn(execution) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let Ok(page) = ctx
            .sfn
            .get_execution_history()
            .execution_arn(&arn)
            .set_next_token(token)
            .max_results(1000)
            .send()
            .await
        else {
            return out;
        };
        for e in page.events() {
            let Some(d) = e.state_exited_event_details() else {
                continue;
            };
            if d.name() != okra_core::vocab::states::CHECK_METRICS {
                continue;
            }
            let Some(output) = d
                .output()
                .and_then(|o| serde_json::from_str::<Value>(o).ok())
            else {
                continue;
            };
            let a = &output["analysis"];
            let mut values = BTreeMap::new();
            for m in a["metrics"].as_array().into_iter().flatten() {
                let name = m["name"].as_str().unwrap_or("metric").to_owned();
                if let Some(v) = last_value(m) {
                    values.insert(name, v);
                }
            }
            out.push(Sample {
                at_ms: e.timestamp().to_millis().unwrap_or(0),
                step: output["step"]["index"].as_u64(),
                phase: serde_json::from_value(a["phase"].clone()).unwrap_or(Phase::Error),
                reason: a["reason"].as_str().unwrap_or_default().to_owned(),
                values,
            });
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

/// A metric result's newest measured value, wherever its shape keeps it.
fn last_value(m: &Value) -> Option<f64> {
    let measurements = m["measurements"].as_array()?;
    let last = measurements.last()?;
    match &last["value"] {
        Value::Number(n) => n.as_f64(),
        Value::Object(o) => o
            .get("value")
            .or_else(|| o.get("scalar"))
            .and_then(Value::as_f64)
            .or_else(|| o.values().find_map(Value::as_f64)),
        Value::Array(a) => a.iter().find_map(Value::as_f64),
        _ => None,
    }
}

/// Gathers the view of rollout `id` of `cell`.
pub async fn gather(ctx: &Ctx, cell: &str, id: &str) -> Result<View, CliError> {
    let okra = ctx.okra();
    let spec = ctx.answer(okra.get_cell(cell).await)?.spec;
    let RolloutView {
        rollout,
        execution,
        wait,
    } = ctx.answer(okra.get_rollout(cell, id).await)?;
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
        weights: weights(ctx, &spec).await?,
        samples: samples(ctx, id).await,
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
    use serde_json::json;

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

    #[test]
    fn reads_the_newest_value_of_a_metric() {
        assert_eq!(
            last_value(&json!({"measurements": [{"value": 1.0}, {"value": 3.5}]})),
            Some(3.5)
        );
        assert_eq!(
            last_value(&json!({"measurements": [{"value": {"value": 2.0}}]})),
            Some(2.0)
        );
        assert_eq!(last_value(&json!({"measurements": []})), None);
    }
}
