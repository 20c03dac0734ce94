//! The rollout events okra sends to EventBridge (source `okra`, `detail-type` a
//! [`RolloutEventKind`]): each kind's `detail`, typed, and the JSON Schema of each kind's whole
//! event, as checked in under `schema/events/` and registered in the stack's schema registry
//! (template.yaml, `AWS::EventSchemas::Schema`; `make schema` writes both).
//!
//! Every detail names the cell, the rollout (its execution), and the versions it moves between;
//! a step's detail has its weight; an analysis verdict has each metric's value and conditions;
//! an end has its reason and the version blocked. The region is the event's own (`region`).
//!
//! The schemas are JSON Schema draft 4, the dialect EventBridge's schema registry takes
//! (`JSONSchemaDraft4`; EventBridge user guide, "Creating a schema from JSON").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analysis::Phase;
use crate::vocab::{HistoryEvent, OnTimeout, RolloutEventKind};

/// The source of every okra event.
pub const SOURCE: &str = "okra";

/// Who and what every event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// The cell.
    pub cell: String,
    /// The rollout: its Step Functions execution's name.
    pub execution: String,
    /// The version traffic moves from (null: none, or target groups okra did not make).
    pub from: Option<String>,
    /// The version traffic moves to.
    pub to: String,
}

/// `Rollout Started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedDetail {
    /// Who and what.
    #[serde(flatten)]
    pub subject: Subject,
    /// The decision that started it (`startRollout`, `resumeRollout`, `initialize`, ...).
    pub decision: String,
}

/// `Rollout Step Done`: a step of the canary is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepDoneDetail {
    /// Who and what.
    #[serde(flatten)]
    pub subject: Subject,
    /// `stepDone`.
    pub event: HistoryEvent,
    /// The step (0-based).
    pub step: usize,
    /// The new version's weight after it, in percent.
    pub weight: Option<u32>,
    /// What else the step recorded (`excluded`: clusters left out, and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Map<String, Value>>,
}

/// `Version Retired`: a version's target groups are gone from the listener and from ELB, its
/// clusters' Argo CD secrets removed, its clusters tagged `okra.io/retired` (between rollouts:
/// no execution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetiredDetail {
    /// The cell.
    pub cell: String,
    /// The version retired.
    pub version: String,
    /// `baked` (out of traffic for the cell's `retire.after`) or `clusterGone`.
    pub reason: String,
    /// The target groups deleted (names).
    pub target_groups: Vec<String>,
    /// The clusters tagged `okra.io/retired` (none when they are gone).
    pub clusters: Vec<String>,
}

/// Where a paused rollout waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseNote {
    /// `resumed`: until a person resumes, promotes or aborts it.
    #[serde(default = "resumed")]
    pub until: String,
    /// Why an inconclusive analysis waits (its reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
}

fn resumed() -> String {
    "resumed".to_owned()
}

/// `Rollout Paused`: the rollout waits for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PausedDetail {
    /// Who and what.
    #[serde(flatten)]
    pub subject: Subject,
    /// `paused`.
    pub event: HistoryEvent,
    /// The step (0-based).
    pub step: usize,
    /// The new version's weight while it waits, in percent.
    pub weight: Option<u32>,
    /// Until what.
    pub detail: PauseNote,
}

/// Until when a weight step is held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldNote {
    /// When the deployment window opens (RFC 3339); absent: not within 400 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `Rollout Held`: a weight step waits for the cell's deployment window to open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldDetail {
    /// Who and what.
    #[serde(flatten)]
    pub subject: Subject,
    /// `held`.
    pub event: HistoryEvent,
    /// The weight step held (0-based).
    pub step: usize,
    /// The new version's weight while it is held, in percent.
    pub weight: Option<u32>,
    /// Until when.
    pub detail: HoldNote,
}

/// What a wait that timed out did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutNote {
    /// The wait's time-out, in seconds.
    pub timeout_seconds: u64,
    /// What okra does now: roll back (`abort`) or go on (`promote`).
    pub on_timeout: OnTimeout,
}

/// `Rollout Wait Timed Out`: nobody answered a wait for a person in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitTimedOutDetail {
    /// Who and what.
    #[serde(flatten)]
    pub subject: Subject,
    /// `timedOut`.
    pub event: HistoryEvent,
    /// The step (0-based).
    pub step: usize,
    /// The new version's weight, in percent.
    pub weight: Option<u32>,
    /// The time-out and what it does.
    pub detail: TimeoutNote,
}

/// One metric of an analysis verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricVerdict {
    /// The metric.
    pub name: String,
    /// Its analysis template (absent for the judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Its phase.
    pub phase: Phase,
    /// Its newest value: a number, or the provider's vector or object (absent: no datapoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The condition a sample passes on (CEL), if the metric has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// The condition a sample fails on (CEL), if the metric has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Why, in one line.
    pub reason: String,
}

/// An analysis's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// `successful`, `failed`, `inconclusive` or `error`.
    pub phase: Phase,
    /// Why, in one line.
    pub reason: String,
    /// Each metric, in template order, then the judge.
    pub metrics: Vec<MetricVerdict>,
}

/// `Rollout Analysis Verdict`: an analysis step has decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerdictDetail {
    /// Who and what.
    #[serde(flatten)]
    pub subject: Subject,
    /// `verdict`.
    pub event: HistoryEvent,
    /// The analysis step (0-based).
    pub step: usize,
    /// The new version's weight while it was analysed, in percent.
    pub weight: Option<u32>,
    /// The verdict.
    pub detail: Verdict,
}

/// `Rollout Promoted`, `Rollout Rolled Back`, `Rollout Failed`: how the rollout ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndedDetail {
    /// Who and what.
    #[serde(flatten)]
    pub subject: Subject,
    /// The version now serving (promoted) or refused (rolled back, failed), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why (a rollback's or a failure's cause: the failed metric, the error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version blocked from rolling out again until a person retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// The new version's weight at the end, in percent (100 promoted, 0 rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

impl Subject {
    /// The cell and the rollout; the versions are the rollout record's, which the recorder sets
    /// when the event goes out (its `from` and `to`).
    pub fn new(cell: &str, execution: &str) -> Self {
        Self {
            cell: cell.to_owned(),
            execution: execution.to_owned(),
            from: None,
            to: String::new(),
        }
    }
}

impl Verdict {
    /// The verdict of an analysis (check-metrics' output: `phase`, `reason`, `metrics` with
    /// each one's `name`, `template`, `phase`, `value`, conditions and `status.reason`).
    pub fn from_analysis(analysis: &Value) -> Self {
        let phase = |v: &Value| serde_json::from_value(v.clone()).unwrap_or(Phase::Error);
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Self {
            phase: phase(&analysis["phase"]),
            reason: text(&analysis["reason"]).unwrap_or_default(),
            metrics: analysis["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| MetricVerdict {
                    name: text(&m["name"]).unwrap_or_default(),
                    template: text(&m["template"]),
                    phase: phase(&m["phase"]),
                    value: Some(m["value"].clone()).filter(|v| !v.is_null()),
                    success_condition: text(&m["successCondition"]),
                    failure_condition: text(&m["failureCondition"]),
                    reason: text(&m["status"]["reason"])
                        .or_else(|| text(&m["reason"]))
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// The detail of a step's event (`stepDone`, `paused`, `timedOut`, `verdict`): typed by its
/// history event, from what the state machine recorded (`detail`; a verdict's is the
/// analysis's output).
///
/// # Errors
///
/// A `detail` that does not fit its event (a pause without `until`, a time-out without
/// `timeoutSeconds`), in words.
pub fn step_detail(
    subject: Subject,
    event: HistoryEvent,
    step: usize,
    weight: Option<u32>,
    detail: &Value,
) -> Result<Value, String> {
    let typed = |e: serde_json::Error| format!("the {event} step's detail: {e}");
    let v = match event {
        HistoryEvent::Paused => serde_json::to_value(PausedDetail {
            subject,
            event,
            step,
            weight,
            // A pause recorded without a note waits until resumed.
            detail: match detail {
                Value::Null => serde_json::from_value(serde_json::json!({})).map_err(typed)?,
                d => serde_json::from_value(d.clone()).map_err(typed)?,
            },
        }),
        HistoryEvent::TimedOut => serde_json::to_value(WaitTimedOutDetail {
            subject,
            event,
            step,
            weight,
            detail: serde_json::from_value(detail.clone()).map_err(typed)?,
        }),
        HistoryEvent::Held => serde_json::to_value(HeldDetail {
            subject,
            event,
            step,
            weight,
            detail: serde_json::from_value(detail.clone()).map_err(typed)?,
        }),
        HistoryEvent::Verdict => serde_json::to_value(VerdictDetail {
            subject,
            event,
            step,
            weight,
            detail: Verdict::from_analysis(detail),
        }),
        _ => serde_json::to_value(StepDoneDetail {
            subject,
            event,
            step,
            weight,
            detail: detail.as_object().cloned(),
        }),
    };
    v.map_err(|e| e.to_string())
}

/// The event around a detail, as EventBridge delivers it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Envelope<D> {
    /// `0`.
    version: String,
    /// The event's id.
    id: String,
    /// The event's kind.
    #[serde(rename = "detail-type")]
    detail_type: String,
    /// `okra`.
    source: String,
    /// The account.
    account: String,
    /// When it was put (RFC 3339).
    time: String,
    /// The region of okra's stack.
    region: String,
    /// Resources (none).
    resources: Vec<String>,
    /// What happened.
    detail: D,
}

/// The detail type of each kind.
fn detail_schema(kind: RolloutEventKind, generator: schemars::SchemaGenerator) -> schemars::Schema {
    match kind {
        RolloutEventKind::Started => generator.into_root_schema_for::<Envelope<StartedDetail>>(),
        RolloutEventKind::StepDone => generator.into_root_schema_for::<Envelope<StepDoneDetail>>(),
        RolloutEventKind::Paused => generator.into_root_schema_for::<Envelope<PausedDetail>>(),
        RolloutEventKind::Held => generator.into_root_schema_for::<Envelope<HeldDetail>>(),
        RolloutEventKind::WaitTimedOut => {
            generator.into_root_schema_for::<Envelope<WaitTimedOutDetail>>()
        }
        RolloutEventKind::AnalysisVerdict => {
            generator.into_root_schema_for::<Envelope<VerdictDetail>>()
        }
        RolloutEventKind::Promoted | RolloutEventKind::RolledBack | RolloutEventKind::Failed => {
            generator.into_root_schema_for::<Envelope<EndedDetail>>()
        }
        RolloutEventKind::VersionRetired => {
            generator.into_root_schema_for::<Envelope<RetiredDetail>>()
        }
    }
}

/// The JSON Schema (draft 4) of a whole event of `kind`: the envelope, `source` `okra`,
/// `detail-type` the kind, and its detail.
pub fn schema(kind: RolloutEventKind) -> Value {
    let generator = schemars::SchemaGenerator::new(schemars::generate::SchemaSettings::draft07());
    let mut v = detail_schema(kind, generator).to_value();
    draft4(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "$schema".into(),
            "http://json-schema.org/draft-04/schema#".into(),
        );
        o.insert("title".into(), kind.as_ref().into());
        o.insert(
            "description".into(),
            format!("okra's \"{kind}\" event, as EventBridge delivers it (source okra).").into(),
        );
        o.insert(
            "required".into(),
            serde_json::json!(["detail-type", "source", "detail"]),
        );
        if let Some(p) = o.get_mut("properties").and_then(Value::as_object_mut) {
            p.insert(
                "detail-type".into(),
                serde_json::json!({"enum": [kind.as_ref()]}),
            );
            p.insert("source".into(), serde_json::json!({"enum": [SOURCE]}));
        }
    }
    v
}

/// What draft 4 lacks from draft 7: boolean schemas (`true` is `{}`), `const` (a one-value
/// `enum`), `examples`.
fn draft4(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("examples");
            if let Some(c) = o.remove("const") {
                o.insert("enum".into(), Value::Array(vec![c]));
            }
            for (k, child) in o.iter_mut() {
                // Property names are not schemas; every other object value here is one.
                if k == "properties" || k == "definitions" {
                    if let Value::Object(props) = child {
                        for s in props.values_mut() {
                            if *s == Value::Bool(true) {
                                *s = Value::Object(Default::default());
                            }
                            draft4(s);
                        }
                    }
                } else {
                    if *child == Value::Bool(true) && k != "additionalProperties" {
                        *child = Value::Object(Default::default());
                    }
                    draft4(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(draft4),
        _ => {}
    }
}

/// The file of `kind`'s schema under `schema/events/` (`rollout-started.json`).
pub fn schema_file(kind: RolloutEventKind) -> String {
    format!("{}.json", kind.as_ref().to_lowercase().replace(' ', "-"))
}

/// The schema's name in the registry (`okra.RolloutStarted`).
pub fn schema_name(kind: RolloutEventKind) -> String {
    format!("okra.{}", kind.as_ref().replace(' ', ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use strum::IntoEnumIterator as _;

    #[test]
    fn a_verdict_keeps_each_metrics_value_and_conditions_and_drops_the_measurements() {
        let v = Verdict::from_analysis(&json!({"phase": "failed", "reason": "error-rate failed",
            "metrics": [{"template": "errors", "name": "error-rate", "phase": "failed", "value": 12.0,
                "successCondition": "result < 1.0", "failureCondition": "result >= 5.0",
                "measurements": [{"value": 12.0}], "status": {"reason": "1 of 1 failed"}}]}));
        assert_eq!(v.phase, Phase::Failed);
        let m = &v.metrics[0];
        assert_eq!(m.value, Some(json!(12.0)));
        assert_eq!(m.failure_condition.as_deref(), Some("result >= 5.0"));
        assert_eq!(m.reason, "1 of 1 failed");
        let d = step_detail(
            Subject::new("web", "web--1"),
            HistoryEvent::Verdict,
            1,
            Some(10),
            &json!({"phase": "failed", "reason": "x", "metrics": []}),
        )
        .unwrap();
        assert_eq!(d["detail"]["phase"], "failed");
        assert!(d.get("measurements").is_none());
        let e = step_detail(
            Subject::new("web", "x"),
            HistoryEvent::TimedOut,
            1,
            None,
            &json!({}),
        )
        .unwrap_err();
        assert!(e.contains("timeoutSeconds"), "{e}");
        let p = step_detail(
            Subject::new("web", "x"),
            HistoryEvent::Paused,
            1,
            None,
            &Value::Null,
        )
        .unwrap();
        assert_eq!(p["detail"]["until"], "resumed");
    }

    #[test]
    fn every_kind_has_a_draft_4_schema_of_its_own() {
        let mut files = std::collections::BTreeSet::new();
        for kind in RolloutEventKind::iter() {
            let s = schema(kind);
            assert_eq!(s["properties"]["detail-type"]["enum"][0], kind.as_ref());
            assert!(s["definitions"].is_object() || s["properties"]["detail"].is_object());
            let text = s.to_string();
            for draft6 in ["\"const\"", "\"$defs\"", "\"examples\""] {
                assert!(!text.contains(draft6), "{kind}: {draft6} in {text}");
            }
            assert!(files.insert(schema_file(kind)));
        }
        assert_eq!(
            schema_file(RolloutEventKind::WaitTimedOut),
            "rollout-wait-timed-out.json"
        );
        assert_eq!(
            schema_name(RolloutEventKind::AnalysisVerdict),
            "okra.RolloutAnalysisVerdict"
        );
    }
}
