//! State machine runs through `tools/sfn-runner/run.mjs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A run of a state machine, as the runner's request file (`tools/sfn-runner/run.mjs`) takes it.
///
/// Task states are mapped to function binaries by `functions` (key: a substitution name, an ARN
/// or a function name); a Task whose Lambda ARN is mapped by none of them runs the binary named
/// like the function in its ARN.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunRequest {
    /// The ASL file, relative to the workspace root or absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition_path: Option<PathBuf>,
    /// Or the definition itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<Value>,
    /// SAM/CloudFormation `DefinitionSubstitutions`: `${Name}` → value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub substitutions: BTreeMap<String, String>,
    /// Substitution name, ARN or function name → binary (`functions/<name>` package) to run.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub functions: BTreeMap<String, String>,
    /// The execution input.
    pub input: Value,
    /// Wait state name → milliseconds to wait instead.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub wait_time_overrides: BTreeMap<String, u64>,
    /// State name → milliseconds between retries (a number, or an array: one per retrier).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub retry_interval_overrides: BTreeMap<String, Value>,
    /// Merged into the Context Object (`$$`); `Execution.Id`/`Name` have defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Abort the run after this long (status ABORTED). The runner process itself is killed
    /// 30 s after that, or after 10 minutes when this is unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The execution fails (`States.Runtime`) when its history reaches this many events
    /// (AWS: 25,000, the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_limit: Option<u64>,
    /// Task `TimeoutSeconds`/`HeartbeatSeconds` count this many seconds per second (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_timeouts: Option<f64>,
    /// A timed callback (`TimeoutSecondsPath`: a timed pause, an analysis's delay and interval)
    /// times out after this many milliseconds instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_pauses: Option<u64>,
}

impl RunRequest {
    /// A run of the ASL file at `path` (relative to the workspace root, or absolute).
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self {
            definition_path: Some(path.into()),
            input: Value::Object(serde_json::Map::new()),
            ..Self::default()
        }
    }

    /// A run of an inline definition.
    pub fn from_definition(definition: Value) -> Self {
        Self {
            definition: Some(definition),
            input: Value::Object(serde_json::Map::new()),
            ..Self::default()
        }
    }

    /// Adds a DefinitionSubstitution.
    #[must_use]
    pub fn substitution(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.substitutions.insert(name.into(), value.into());
        self
    }

    /// Maps a substitution name, ARN or function name to a function binary.
    #[must_use]
    pub fn function(mut self, key: impl Into<String>, binary: impl Into<String>) -> Self {
        self.functions.insert(key.into(), binary.into());
        self
    }

    /// Substitution `name` = the Lambda ARN of `binary`, and Tasks using it run `binary`.
    #[must_use]
    pub fn lambda(self, name: &str, binary: &str) -> Self {
        self.substitution(name, crate::lambda_arn(binary))
            .function(name, binary)
    }

    /// Sets the execution input.
    #[must_use]
    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// Makes Wait state `state` wait `ms` milliseconds.
    #[must_use]
    pub fn wait_override(mut self, state: impl Into<String>, ms: u64) -> Self {
        self.wait_time_overrides.insert(state.into(), ms);
        self
    }

    /// Makes every retrier of `state` wait `ms` milliseconds between attempts.
    #[must_use]
    pub fn retry_override(mut self, state: impl Into<String>, ms: u64) -> Self {
        self.retry_interval_overrides
            .insert(state.into(), Value::from(ms));
        self
    }

    /// Sets the Context Object additions.
    #[must_use]
    pub fn context(mut self, context: Value) -> Self {
        self.context = Some(context);
        self
    }

    /// Aborts the run after `ms` milliseconds.
    #[must_use]
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Makes every timed callback (a timed pause, an analysis's delay and interval) last `ms`.
    #[must_use]
    pub fn fast_pauses(mut self, ms: u64) -> Self {
        self.fast_pauses = Some(ms);
        self
    }

    /// Fails the execution at `events` history events instead of AWS's 25,000.
    #[must_use]
    pub fn history_limit(mut self, events: u64) -> Self {
        self.history_limit = Some(events);
        self
    }

    /// Scales Task `TimeoutSeconds`/`HeartbeatSeconds` by `factor` (0.01: 300 s become 3 s).
    #[must_use]
    pub fn fast_timeouts(mut self, factor: f64) -> Self {
        self.fast_timeouts = Some(factor);
        self
    }

    /// The binaries this run is known to need before it starts: the `functions` values, and the
    /// function names of substituted Lambda ARNs that no `functions` entry maps.
    pub(crate) fn binaries(&self) -> (Vec<String>, Vec<String>) {
        let mut mapped: Vec<String> = self.functions.values().cloned().collect();
        mapped.sort();
        mapped.dedup();
        let mut guessed: Vec<String> = self
            .substitutions
            .iter()
            .filter(|(k, v)| !self.functions.contains_key(*k) && !self.functions.contains_key(*v))
            .filter_map(|(_, v)| lambda_function_name(v))
            .filter(|name| !mapped.contains(name))
            .collect();
        guessed.sort();
        guessed.dedup();
        (mapped, guessed)
    }
}

/// The function name of `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
fn lambda_function_name(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function")
        .then(|| parts[6].to_owned())
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Reached a Succeed state or an End.
    Succeeded,
    /// An error nobody caught, or a Fail state.
    Failed,
    /// The machine's `TimeoutSeconds` ran out.
    TimedOut,
    /// The request's `timeoutMs` ran out.
    Aborted,
}

impl ExecutionStatus {
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`, as Step Functions spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Aborted => "ABORTED",
        }
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `exec.status == "SUCCEEDED"` reads as in the Step Functions API.
impl PartialEq<str> for ExecutionStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ExecutionStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The result of a run: what `tools/sfn-runner/run.mjs` printed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// How it ended.
    pub status: ExecutionStatus,
    /// The output (`null` unless SUCCEEDED).
    #[serde(default)]
    pub output: Value,
    /// The error name of a FAILED run (none for a Fail state without `Error`).
    #[serde(default)]
    pub error: Option<String>,
    /// The cause of a FAILED run; for a function error, AWS's JSON string
    /// `{"errorType":..,"errorMessage":..}`.
    #[serde(default)]
    pub cause: Option<String>,
    /// aws-local-stepfunctions' event log: `{"type": "StateEntered", "timestamp": ms,
    /// "state": {"name", "type", "input", "output"?}, "index"?: map iteration, "Error"?, "Cause"?,
    /// "retry"?, "catch"?}`; types ExecutionStarted/Succeeded/Failed/Aborted/Timeout,
    /// StateEntered/Exited/Failed/Retried/Caught, MapIteration*, ParallelBranch*.
    #[serde(default)]
    pub events: Vec<Value>,
    /// The execution history in AWS's model, as `GetExecutionHistory` returns it (`id`,
    /// `previousEventId`, `timestamp`, `type`, `<type>EventDetails`).
    #[serde(default)]
    pub history: Vec<Value>,
    /// The execution's ARN.
    #[serde(default)]
    pub execution_arn: String,
    /// Wall time of the run inside the runner (not counting Node's start).
    #[serde(default)]
    pub duration_ms: u64,
}

impl Execution {
    /// True when SUCCEEDED.
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded
    }

    /// The output of a SUCCEEDED run, else an error that tells what happened.
    pub fn ensure_succeeded(&self) -> anyhow::Result<&Value> {
        if self.succeeded() {
            return Ok(&self.output);
        }
        bail!(
            "execution {:?}: error {:?}, cause {:?}; states entered: {:?}",
            self.status,
            self.error,
            self.cause,
            self.states_entered()
        )
    }

    /// The events of one type (`"StateEntered"`, `"StateRetried"`, ...), in order.
    pub fn events_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .filter(move |e| e.get("type").and_then(Value::as_str) == Some(kind))
    }

    fn state_names(&self, kind: &str) -> Vec<String> {
        self.events_of_type(kind)
            .filter_map(|e| e.pointer("/state/name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// Names of the states entered, in order (Map iterations' and Parallel branches' included,
    /// in the order the emulator logged them).
    pub fn states_entered(&self) -> Vec<String> {
        self.state_names("StateEntered")
    }

    /// Names of the states exited successfully, in order.
    pub fn states_exited(&self) -> Vec<String> {
        self.state_names("StateExited")
    }

    /// How many times `state` was retried.
    pub fn retries(&self, state: &str) -> usize {
        self.state_names("StateRetried")
            .iter()
            .filter(|n| *n == state)
            .count()
    }

    /// The history event types, in order (`ExecutionStarted`, `TaskStateEntered`, ...).
    pub fn history_types(&self) -> Vec<&str> {
        self.history
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect()
    }

    /// Whether a Catch of `state` caught an error.
    pub fn caught(&self, state: &str) -> bool {
        self.state_names("StateCaught").iter().any(|n| n == state)
    }

    /// `(Error, Cause)` of each failure of `state`, retried or not, in order.
    pub fn failures(&self, state: &str) -> Vec<(String, String)> {
        self.events_of_type("StateFailed")
            .filter(|e| e.pointer("/state/name").and_then(Value::as_str) == Some(state))
            .map(|e| {
                let text = |k: &str| match e.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                (text("Error"), text("Cause"))
            })
            .collect()
    }

    /// The input of the last time `state` was entered.
    pub fn state_input(&self, state: &str) -> Option<&Value> {
        self.events_of_type("StateEntered")
            .filter(|e| e.pointer("/state/name").and_then(Value::as_str) == Some(state))
            .last()
            .and_then(|e| e.pointer("/state/input"))
    }

    /// The output of the last time `state` exited.
    pub fn state_output(&self, state: &str) -> Option<&Value> {
        self.events_of_type("StateExited")
            .filter(|e| e.pointer("/state/name").and_then(Value::as_str) == Some(state))
            .last()
            .and_then(|e| e.pointer("/state/output"))
    }

    /// The cause parsed as JSON (a function error's `{"errorType","errorMessage"}`).
    pub fn cause_json(&self) -> Option<Value> {
        self.cause
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_serialises_like_the_runner_reads_it() {
        let req = RunRequest::from_path("statemachine/rollout.asl.json")
            .lambda("DiscoverClustersFunctionArn", "discover-clusters")
            .input(json!({"a": 1}))
            .wait_override("Bake", 0)
            .retry_override("Shift", 0);
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({
                "definitionPath": "statemachine/rollout.asl.json",
                "substitutions": {"DiscoverClustersFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:discover-clusters"},
                "functions": {"DiscoverClustersFunctionArn": "discover-clusters"},
                "input": {"a": 1},
                "waitTimeOverrides": {"Bake": 0},
                "retryIntervalOverrides": {"Shift": 0}
            })
        );
    }

    #[test]
    fn binaries_needed() {
        let req = RunRequest::from_path("x")
            .lambda("A", "fn-a")
            .substitution("B", "arn:aws:lambda:us-east-1:123456789012:function:fn-b")
            .substitution("Table", "okra-table");
        assert_eq!(
            req.binaries(),
            (vec!["fn-a".to_owned()], vec!["fn-b".to_owned()])
        );
    }

    #[test]
    fn reads_runner_output() {
        let exec: Execution = serde_json::from_value(json!({
            "status": "FAILED", "error": "E", "cause": "{\"errorType\":\"E\",\"errorMessage\":\"m\"}",
            "events": [
                {"type": "StateEntered", "timestamp": 1, "state": {"name": "A", "type": "Task", "input": {}}},
                {"type": "StateFailed", "timestamp": 2, "state": {"name": "A", "type": "Task", "input": {}}, "Error": "E", "Cause": "c"},
                {"type": "StateRetried", "timestamp": 3, "state": {"name": "A", "type": "Task", "input": {}}},
            ],
            "durationMs": 5
        }))
        .unwrap();
        assert_eq!(exec.status, ExecutionStatus::Failed);
        assert_eq!(exec.status, "FAILED");
        assert_eq!(exec.status.to_string(), "FAILED");
        assert_eq!(exec.states_entered(), vec!["A"]);
        assert_eq!(exec.retries("A"), 1);
        assert_eq!(exec.failures("A"), vec![("E".into(), "c".into())]);
        assert_eq!(exec.cause_json().unwrap()["errorMessage"], "m");
        assert!(exec.ensure_succeeded().is_err());
    }
}
