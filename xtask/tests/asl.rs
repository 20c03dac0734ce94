//! The shipped state machine is what the generator writes, and it speaks okra-core's vocabulary.

use std::collections::BTreeSet;

use okra_core::vocab::{DecisionKind, ErrorType, ExecutionError, Phase, Signal, StepKind};
use serde_json::Value;
use strum::IntoEnumIterator;

fn states() -> serde_json::Map<String, Value> {
    match xtask::asl::definition()["States"].clone() {
        Value::Object(m) => m,
        other => panic!("States is not an object: {other}"),
    }
}

/// Every `(Variable, StringEquals)` of every Choice rule, nested rules included.
fn string_choices(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(var)), Some(Value::String(val))) =
                (m.get("Variable"), m.get("StringEquals"))
            {
                out.push((var.clone(), val.clone()));
            }
            m.values().for_each(|x| string_choices(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| string_choices(x, out)),
        _ => {}
    }
}

fn values_of(var: &str) -> BTreeSet<String> {
    let mut all = Vec::new();
    string_choices(&Value::Object(states()), &mut all);
    all.into_iter()
        .filter(|(v, _)| v == var)
        .map(|(_, x)| x)
        .collect()
}

fn names<T: IntoEnumIterator + AsRef<str>>() -> BTreeSet<String> {
    T::iter().map(|v| v.as_ref().to_string()).collect()
}

#[test]
fn the_checked_in_asl_is_the_generated_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = std::fs::read_to_string(root.join(xtask::asl::PATH)).expect("reads the ASL");
    assert!(
        shipped == xtask::asl::text(),
        "{} is stale: run `cargo xtask asl`",
        xtask::asl::PATH
    );
}

#[test]
fn every_decision_kind_and_step_kind_has_its_branch() {
    assert_eq!(
        values_of("$.discovery.decision.kind"),
        names::<DecisionKind>()
    );
    assert_eq!(values_of("$.step.item.type"), names::<StepKind>());
    assert_eq!(values_of("$.signal.signal"), names::<Signal>());
    let analysis: BTreeSet<String> = [Phase::Successful, Phase::Running, Phase::Inconclusive]
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(values_of("$.analysis.phase"), analysis);
    let background: BTreeSet<String> = [Phase::Failed, Phase::Error]
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(values_of("$.background.phase"), background);
}

#[test]
fn every_task_retries_exactly_the_transient_errors() {
    let ours: BTreeSet<String> = ErrorType::iter()
        .filter(|e| e.is_transient())
        .map(|e| e.to_string())
        .collect();
    let mut tasks = 0;
    for (name, s) in states() {
        if s["Type"] != "Task" {
            continue;
        }
        tasks += 1;
        let retried: BTreeSet<String> = s["Retry"][0]["ErrorEquals"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no Retry"))
            .iter()
            .filter_map(Value::as_str)
            .filter(|e| !e.contains('.'))
            .map(str::to_string)
            .collect();
        assert_eq!(retried, ours, "{name}");
        // A callback's own time-out ends the wait; it is not retried.
        let callback = s["Resource"]
            .as_str()
            .is_some_and(|r| r.ends_with(".waitForTaskToken"));
        let times_out_retried = s["Retry"][0]["ErrorEquals"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e == "States.Timeout"));
        assert_eq!(times_out_retried, !callback, "{name}");
    }
    assert!(tasks > 20, "{tasks} tasks");
}

#[test]
fn fail_states_and_raised_errors_are_the_executions_errors() {
    let known = names::<ExecutionError>();
    let mut used = BTreeSet::new();
    for (name, s) in states() {
        let error = match s["Type"].as_str() {
            Some("Fail") => s["Error"].as_str(),
            Some("Pass") => s["Parameters"]["Error"].as_str(),
            _ => None,
        };
        if let Some(e) = error {
            assert!(
                known.contains(e),
                "{name} raises {e}, not an ExecutionError"
            );
            used.insert(e.to_string());
        }
    }
    assert_eq!(used, known, "every ExecutionError is raised somewhere");
}

#[test]
fn every_next_names_a_state_and_every_state_is_reachable() {
    let states = states();
    let mut targets = Vec::new();
    fn nexts(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if (k == "Next" || k == "Default")
                        && let Value::String(s) = x
                    {
                        out.push(s.clone());
                    }
                    nexts(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| nexts(x, out)),
            _ => {}
        }
    }
    nexts(&Value::Object(states.clone()), &mut targets);
    for t in &targets {
        assert!(states.contains_key(t), "Next {t} names no state");
    }
    let reached: BTreeSet<&String> = targets.iter().collect();
    let start = xtask::asl::definition()["StartAt"].clone();
    for name in states.keys().filter(|n| Some(n.as_str()) != start.as_str()) {
        assert!(reached.contains(name), "no state goes to {name}");
    }
}

/// The console shows each state by a name that reads as a sentence, within the 80 characters
/// Amazon States Language allows a state name ("States": "State names MUST have length less
/// than or equal to 80 Unicode characters").
#[test]
fn state_names_are_sentences_of_at_most_80_characters() {
    let Value::Object(states) = xtask::asl::definition()["States"].clone() else {
        panic!("States is an object");
    };
    for name in states.keys() {
        assert!(name.chars().count() <= 80, "{name}");
        assert!(
            name.starts_with(|c: char| c.is_ascii_uppercase()),
            "a sentence starts with a capital: {name}"
        );
        assert!(
            !name.chars().skip(1).any(|c| c.is_ascii_uppercase()),
            "words, not an identifier: {name}"
        );
        // Letters, digits and spaces, a final `?` (as AWS's examples: "Buy or Sell?"); none of
        // the punctuation the Step Functions API reference lists for its `Name` shape.
        let stem = name.strip_suffix('?').unwrap_or(name);
        assert!(
            stem.chars().all(|c| c.is_ascii_alphanumeric() || c == ' '),
            "only letters, digits and spaces: {name}"
        );
    }
    assert_eq!(
        states
            .get(okra_core::vocab::states::CHECK_METRICS)
            .map(|s| s["Type"].clone()),
        Some(Value::String("Task".into())),
        "the analysis sample's Task has the name the CLI reads"
    );
}
