//! `rollout-state`'s contract: its input by action (or a status change event, the finalizer's), and its outputs.

use super::*;

/// A cell by name, or the spec (whose `name` is taken).
pub(super) fn cell_name<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum CellRef {
        Name(String),
        Spec { name: String },
    }
    Ok(match CellRef::deserialize(d)? {
        CellRef::Name(n) | CellRef::Spec { name: n } => n,
    })
}

/// The cell a `finish` is for: its name, or its spec (whose `maxAttempts` the failure count
/// reads; absent: the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellArg {
    /// The cell's name.
    pub name: String,
    /// The spec's `maxAttempts`, when the spec was given.
    pub max_attempts: Option<u32>,
}

impl CellArg {
    /// A cell given by name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            max_attempts: None,
        }
    }
}

impl<'de> Deserialize<'de> for CellArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Spec {
                name: String,
                #[serde(default, rename = "maxAttempts")]
                max_attempts: Option<u32>,
            },
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Name(name) => Self {
                name,
                max_attempts: None,
            },
            Raw::Spec { name, max_attempts } => Self { name, max_attempts },
        })
    }
}

/// A wait's background analysis, sampled by an EventBridge Scheduler schedule
/// ([`okra_core::schedule`]) instead of the state machine.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwaitSamples {
    /// The rate expression (the plan's `background.schedule`).
    pub schedule: String,
    /// The analysis's interval, in seconds.
    pub interval_seconds: u64,
    /// check-metrics' input for each sample (cell, templates, args, sides), without `previous`.
    pub request: Value,
    /// The state machine's background metrics so far, which the first sample goes on from.
    #[serde(default)]
    pub previous: Value,
}

/// The function's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum StateInput {
    /// Take the cell's lock; read the blocklist.
    Begin {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution's name (`$$.Execution.Name`).
        execution: String,
        /// The version rolled out, when known.
        #[serde(default)]
        version: Option<String>,
    },
    /// The decision is taken: create the rollout's record.
    Started {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// Discovery's decision.
        decision: Decision,
    },
    /// A step is done.
    Step {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// The plan step's index.
        index: usize,
        /// The canary's weight after the step.
        #[serde(default)]
        weight: Option<u32>,
        /// Free detail (an analysis verdict).
        #[serde(default)]
        detail: Option<Value>,
        /// The history event (default `stepDone`; `paused` sends `Rollout Paused`).
        #[serde(default)]
        event: Option<HistoryEvent>,
        /// Stable groups the step left out for their health (shift-weights' `excluded`).
        #[serde(default)]
        excluded: Vec<okra_core::health::Excluded>,
    },
    /// Before a weight step: may traffic move now? Closed: the hold is recorded (`held`, once a
    /// step) and the output says until when.
    Window {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// The weight step's index.
        index: usize,
        /// The cell's windows (none: always open).
        #[serde(default)]
        windows: Option<okra_core::spec::Windows>,
    },
    /// Wait: keep the callback's task token (`$$.Task.Token` of a `.waitForTaskToken` task),
    /// with where the rollout waits, where the API finds it. A signal left before the wait
    /// began answers the callback at once.
    Await {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// The task token.
        token: String,
        /// What kind of wait (default: a wait for a person).
        #[serde(default)]
        wait: Option<WaitKind>,
        /// The plan step it waits in.
        #[serde(default)]
        step: Option<usize>,
        /// A timed pause's length: its end is kept from its first callback on.
        #[serde(default)]
        seconds: Option<u64>,
        /// The background analysis, sampled by a schedule while it waits.
        #[serde(default)]
        samples: Option<AwaitSamples>,
    },
    /// A wait sampled by a schedule ended: read the samples' latest verdict back (`current`,
    /// the state machine's own, when the schedule took none) and delete the schedule.
    EndSamples {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// The plan step it waited in.
        #[serde(default)]
        step: Option<usize>,
        /// The state machine's background analysis output before the wait.
        #[serde(default)]
        current: Value,
    },
    /// Take a person's signal, if any: the one the API stored, else the answer to the wait that
    /// just ended (`okra_core::answer`).
    Poll {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// The wait's callback output (or its time-out's error object), after a wait.
        #[serde(default)]
        answer: Option<serde_json::Value>,
        /// The plan step the rollout waits in, after a wait.
        #[serde(default)]
        step: Option<usize>,
        /// How often the wait was woken before (the execution's wake count), after a wait.
        #[serde(default)]
        wake: Option<u64>,
    },
    /// An execution ended, as its status change event says (the finalizer): when it still
    /// holds the cell's lock — it ended outside every `Finish*` state (stopped, timed out, or
    /// failed where no Catch reaches) — its rollout is recorded as failed with the reason, and
    /// the lock is released (which moves the cell's generation on). Traffic stays where the
    /// last step left it (weights a step asked for, verified); the next reconcile resumes the
    /// rollout from there in a new execution, or a person aborts or retries it. An execution
    /// that released its lock, or never held it, changes nothing.
    Ended {
        /// The cell.
        cell: String,
        /// The execution's name.
        execution: String,
        /// `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
        status: String,
        /// The execution's error, if it failed.
        #[serde(default)]
        error: Option<String>,
        /// The execution's cause, if it failed.
        #[serde(default)]
        cause: Option<String>,
        /// The execution's input (its cell spec): a stopped execution's rollback starts with it.
        #[serde(default)]
        input: Option<Value>,
    },
    /// The rollout ended.
    Finish {
        /// The cell (its spec, for `maxAttempts`).
        cell: CellArg,
        /// This execution.
        execution: String,
        /// How it ended.
        outcome: Outcome,
        /// The version rolled out (the one to block).
        #[serde(default)]
        version: Option<String>,
        /// Why: text, a Lambda error Cause (JSON text), or a Catch's `{Error, Cause}`.
        #[serde(default)]
        reason: Option<Value>,
        /// Block `version` (a failed step).
        #[serde(default)]
        block: bool,
        /// The canary's final weight (default: 100 promoted, 0 rolled back).
        #[serde(default)]
        weight: Option<u32>,
    },
}

/// The EventBridge detail-type of Step Functions' status change events.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The `detail` of a "Step Functions Execution Status Change" event, as far as okra reads it
/// (Step Functions developer guide, "Automating Step Functions event delivery with EventBridge").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatusChange {
    pub(super) execution_arn: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    pub(super) status: String,
    /// The execution's input as JSON text (absent or null when too large to include).
    #[serde(default)]
    pub(super) input: Option<String>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) cause: Option<String>,
}

/// Reads the input, naming the field that is wrong: an action of the state machine, or an
/// EventBridge "Step Functions Execution Status Change" event (the finalizer's trigger).
pub fn parse(v: Value) -> Result<StateInput> {
    if v.get("detail-type").and_then(Value::as_str) != Some(EXECUTION_STATUS_CHANGE) {
        return crate::parse_input(v);
    }
    let ev: aws_lambda_events::eventbridge::EventBridgeEvent<StatusChange> = crate::parse_input(v)?;
    let d = ev.detail;
    let input: Value = d
        .input
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| OkraError::InvalidInput(format!("detail.input: not JSON: {e}")))?
        .unwrap_or(Value::Null);
    let cell = match input.get("cell") {
        Some(Value::String(n)) => n.clone(),
        Some(c) => c
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| OkraError::InvalidInput("detail.input.cell.name: missing".into()))?,
        None => {
            return Err(OkraError::InvalidInput(
                "detail.input: no cell (the execution's input must be included in the event)"
                    .into(),
            ));
        }
    };
    let execution = d.name.clone().unwrap_or_else(|| {
        okra_core::arn::execution_name(&d.execution_arn)
            .unwrap_or(&d.execution_arn)
            .to_string()
    });
    Ok(StateInput::Ended {
        input: (!input.is_null()).then(|| input.clone()),
        cell,
        execution,
        status: d.status,
        error: d.error,
        cause: d.cause,
    })
}

/// `begin`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeginOutput {
    /// The cell's blocked versions, sorted: discovery's `blocklist`.
    pub blocklist: Vec<String>,
    /// This execution.
    pub locked_by: String,
    /// The finished (or unknown) execution whose stale lock was taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over_from: Option<String>,
}

/// `started`'s and `step`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordOutput {
    /// `false` when this was a replay (recorded before).
    pub recorded: bool,
}

/// `window`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowOutput {
    /// Traffic may move now.
    pub open: bool,
    /// Closed: the seconds until it opens (at least 1; a year when it opens no more), the
    /// hold's callback time-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// Closed: when it opens (RFC 3339), if it does within 400 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `poll`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollOutput {
    /// `none`, `resume`, `promote`, `promoteFull`, `abort`.
    #[serde(with = "signal_or_none")]
    pub signal: Option<Signal>,
    /// In a timed pause answered early without a signal that acts: the seconds it has left
    /// (the wait goes on for those); in a wait for a person, the seconds its time-out has left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<u64>,
    /// A wait for a person answered without a signal after its time-out's end: it times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
}

/// `await`'s output (the Lambda's answer; the task itself ends with the callback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitOutput {
    /// Whether a signal was already there and answered the callback.
    pub answered: bool,
}

/// The finalizer's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndedOutput {
    /// Whether the execution still held the lock (and so was finalized now).
    pub finalized: bool,
    /// What was recorded, or why nothing was.
    pub reason: String,
}

/// `finish`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishOutput {
    /// The outcome.
    pub outcome: Outcome,
    /// The version blocked (null: none).
    pub blocked: Option<String>,
    /// `false` when this was a replay, or nothing was to record.
    pub recorded: bool,
    /// The lock is free of this execution.
    pub released: bool,
    /// The reason as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The output, by action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StateOutput {
    /// `begin`.
    Begin(BeginOutput),
    /// `started`, `step`.
    Record(RecordOutput),
    /// `poll`.
    Poll(PollOutput),
    /// `finish`.
    Finish(FinishOutput),
    /// A status change event.
    Ended(EndedOutput),
    /// `await`.
    Await(AwaitOutput),
    /// `endSamples`: the background analysis's output (check-metrics').
    Samples(Value),
    /// `window`.
    Window(WindowOutput),
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn input_takes_a_name_or_a_spec() {
        let by_name = parse(json!({"action": "poll", "cell": "web", "execution": "e"}));
        assert!(matches!(by_name, Ok(StateInput::Poll { ref cell, .. }) if cell == "web"));
        let by_spec = parse(
            json!({"action": "poll", "cell": {"name": "web", "replicas": 2}, "execution": "e"}),
        );
        assert!(matches!(by_spec, Ok(StateInput::Poll { ref cell, .. }) if cell == "web"));
        let Err(e) = parse(json!({"action": "finish", "cell": "web", "execution": "e"})) else {
            panic!("finish without outcome parsed");
        };
        assert!(e.to_string().contains("outcome"), "{e}");
        assert_eq!(e.error_type(), "InvalidInput");
    }

    /// Every action the state machine sends (the vocabulary's `StateAction`, which the ASL
    /// generator writes) is one this function reads.
    #[test]
    fn every_state_action_is_read() {
        use strum::IntoEnumIterator as _;
        for action in okra_core::vocab::StateAction::iter() {
            let input = json!({"action": action, "cell": "web", "execution": "e", "index": 0,
                "token": "t", "outcome": "failed", "decision": {"kind": "nothingToDo", "reason": "r"}});
            let Err(e) = parse(input) else { continue };
            panic!("{action}: {e}");
        }
    }
}
