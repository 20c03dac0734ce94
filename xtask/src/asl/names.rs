//! The names the console shows. The generator writes states under short identifiers
//! (`TakeLock`, `CanaryReady?`); the shipped ASL names each state with a short sentence, as the
//! Step Functions console lists them in an execution's graph and its events ("Take the cell
//! lock", "Canary groups ready?"). State names are at most 80 characters (Amazon States
//! Language, "States"); every one is checked to be unique and within that, and to use only
//! letters, digits, spaces and a final `?`, as AWS's own examples do ("Buy or Sell?" in the SAM
//! step-functions template): none of the punctuation (`,` `'` `:` ...) the Step Functions API
//! reference lists for its `Name` shape. That list (white space and `?` among the excluded) is
//! printed under `StateExitedEventDetails.name` but not under `StateEnteredEventDetails.name`,
//! which gives the same field only its length (1–80): the shape is shared with state machine and
//! execution names, whose rule it is, so spaces and a final `?` stay.

use serde_json::{Map, Value};

/// Identifiers whose sentence is not just their words.
const SENTENCES: [(&str, &str); 32] = [
    ("Init", "Start the counters"),
    ("InitBackground", "Start the background samples"),
    ("InitWakes", "Start the wake count"),
    ("TakeLock", "Take the cell lock"),
    ("Discover", "Discover clusters and decide"),
    ("Decide", "What to do?"),
    ("StandInitialGroupsBy", "Put the initial groups on standby"),
    (
        "StandRollbackGroupsBy",
        "Put the rollback groups on standby",
    ),
    ("StandCanaryGroupsBy", "Put the canary groups on standby"),
    ("InitialReady?", "Initial groups ready?"),
    ("RollbackReady?", "Rollback groups ready?"),
    ("CanaryReady?", "Canary groups ready?"),
    ("WaitForPerson", "Wait for a person"),
    (
        "WaitForPersonUntilNextSample",
        "Wait for a person until the next sample",
    ),
    ("PromoteFull", "Promote fully"),
    ("CheckMetrics", okra_core::vocab::states::CHECK_METRICS),
    ("RollBack", "Roll back"),
    ("RollBackAtOnce", "Roll back at once"),
    (
        "BackgroundPhaseTakeSignal",
        "Background verdict before the signal",
    ),
    (
        "BackgroundPhasePollAfterStep",
        "Background verdict before the poll",
    ),
    (
        "BackgroundPhaseCountPauseSlice",
        "Background verdict before the next slice",
    ),
    ("NothingToDo", "Nothing to do"),
    (
        "WaitForPersonWhileScheduleSamples",
        "Wait for a person while a schedule samples",
    ),
    (
        "TimedPauseSampledBySchedule",
        "Timed pause sampled by a schedule",
    ),
    ("EndSamplesInPause", "Samples taken in the pause"),
    ("EndSamplesAfterPause", "Samples taken in the whole pause"),
    ("EndSamplesWhilePaused", "Samples taken while paused"),
    (
        "BackgroundPhaseTakeSignalInScheduledPause",
        "Background verdict in the pause",
    ),
    (
        "BackgroundPhaseRecordStep",
        "Background verdict after the pause",
    ),
    ("EndSamplesAtTimeOut", "Samples taken until the time out"),
    (
        "BackgroundPhaseWaitForPersonTimedOut",
        "Background verdict at the time out",
    ),
    ("OnTimeout?", "On time out?"),
];

/// The console's name of the state the generator calls `id`: its sentence, else its words
/// (`CheckCanaryReadiness` → `Check canary readiness`, `MoreSteps?` → `More steps?`).
pub fn console(id: &str) -> String {
    if let Some((_, s)) = SENTENCES.iter().find(|(k, _)| *k == id) {
        return (*s).to_string();
    }
    let (stem, question) = match id.strip_suffix('?') {
        Some(s) => (s, "?"),
        None => (id, ""),
    };
    let mut out = String::new();
    for (i, c) in stem.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.push_str(question);
    out
}

/// Renames every state of a definition (its `States` keys, `StartAt`, and every `Next` and
/// `Default` of its states, their Choice rules and Catchers) to its console name.
pub(super) fn rename(definition: &mut Value) {
    let Some(obj) = definition.as_object_mut() else {
        return;
    };
    rename_field(obj, "StartAt");
    let Some(Value::Object(states)) = obj.remove("States") else {
        return;
    };
    let mut renamed = Map::new();
    for (id, mut state) in states {
        if let Some(s) = state.as_object_mut() {
            rename_field(s, "Next");
            rename_field(s, "Default");
            for list in ["Choices", "Catch"] {
                if let Some(Value::Array(rules)) = s.get_mut(list) {
                    for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                        rename_field(rule, "Next");
                    }
                }
            }
        }
        let name = console(&id);
        assert!(
            renamed.insert(name.clone(), state).is_none(),
            "two states would be named {name:?}"
        );
    }
    obj.insert("States".into(), Value::Object(renamed));
}

fn rename_field(obj: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(id)) = obj.get_mut(key) {
        *id = console(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_read_as_sentences() {
        assert_eq!(console("CheckCanaryReadiness"), "Check canary readiness");
        assert_eq!(console("MoreSteps?"), "More steps?");
        assert_eq!(console("TakeLock"), "Take the cell lock");
        assert_eq!(console("Pause"), "Pause");
    }

    #[test]
    fn a_definition_is_renamed_throughout() {
        let mut d = serde_json::json!({"StartAt": "TakeLock", "States": {
            "TakeLock": {"Type": "Task", "Next": "MoreSteps?",
                         "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "RollBack"}]},
            "MoreSteps?": {"Type": "Choice", "Choices": [{"Variable": "$.x",
                           "BooleanEquals": true, "Next": "TakeLock"}], "Default": "RollBack"},
            "RollBack": {"Type": "Succeed"}}});
        rename(&mut d);
        assert_eq!(d["StartAt"], "Take the cell lock");
        let s = &d["States"];
        assert_eq!(s["Take the cell lock"]["Next"], "More steps?");
        assert_eq!(s["Take the cell lock"]["Catch"][0]["Next"], "Roll back");
        assert_eq!(s["More steps?"]["Choices"][0]["Next"], "Take the cell lock");
        assert_eq!(s["More steps?"]["Default"], "Roll back");
        assert!(s.get("Roll back").is_some());
    }
}
