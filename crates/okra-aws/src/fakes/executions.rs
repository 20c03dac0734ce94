//! Step Functions executions in memory.

use super::*;

/// One execution the fake keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeExecution {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its input.
    pub input: serde_json::Value,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: String,
}

/// The rollout state machine's executions in memory. Names are unique as on Step Functions: a
/// start under a taken name is `AlreadyExists`, except that a start with the same name and the
/// same input as a RUNNING execution answers that execution's ARN (as AWS does).
#[derive(Debug, Default)]
pub struct FakeExecutions {
    executions: Mutex<BTreeMap<String, FakeExecution>>,
    order: Mutex<Vec<String>>,
    task_results: Mutex<Vec<(String, serde_json::Value)>>,
    outputs: Mutex<Vec<(String, String, StateOutput)>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeExecutions {
    /// No executions.
    pub fn new() -> Self {
        Self::default()
    }

    /// The callback answers sent, in order: `(task token, output)`.
    pub fn task_results(&self) -> Vec<(String, serde_json::Value)> {
        lock(&self.task_results).clone()
    }

    /// The ARN of execution `name`.
    pub fn arn(name: &str) -> String {
        format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:okra-rollout:{name}")
    }

    /// Adds an execution (started elsewhere) with this status.
    pub fn add(&self, name: &str, status: &str) {
        lock(&self.order).push(name.to_string());
        lock(&self.executions).insert(
            name.to_string(),
            FakeExecution {
                name: name.to_string(),
                arn: Self::arn(name),
                input: serde_json::Value::Null,
                status: status.to_string(),
            },
        );
    }

    /// Records that state `state` of execution `name` output `output` at `at_ms`.
    pub fn add_state_output(&self, name: &str, state: &str, at_ms: i64, output: serde_json::Value) {
        lock(&self.outputs).push((
            name.to_string(),
            state.to_string(),
            StateOutput { at_ms, output },
        ));
    }

    /// Sets an execution's status (`SUCCEEDED`: it finished).
    pub fn set_status(&self, name: &str, status: &str) {
        if let Some(e) = lock(&self.executions).get_mut(name) {
            e.status = status.to_string();
        }
    }

    /// Every execution, in the order they were started.
    pub fn executions(&self) -> Vec<FakeExecution> {
        let all = lock(&self.executions);
        lock(&self.order)
            .iter()
            .filter_map(|n| all.get(n).cloned())
            .collect()
    }
}

impl ExecutionsPort for FakeExecutions {
    async fn start(&self, name: &str, input: &serde_json::Value) -> Result<Started> {
        self.meter.enter("start")?;
        let mut all = lock(&self.executions);
        if let Some(e) = all.get(name) {
            return Ok(
                if ExecutionStatus::is_running(&e.status) && &e.input == input {
                    Started::Started { arn: e.arn.clone() }
                } else {
                    Started::AlreadyExists {
                        name: name.to_string(),
                    }
                },
            );
        }
        let e = FakeExecution {
            name: name.to_string(),
            arn: Self::arn(name),
            input: input.clone(),
            status: ExecutionStatus::Running.to_string(),
        };
        let arn = e.arn.clone();
        all.insert(name.to_string(), e);
        lock(&self.order).push(name.to_string());
        Ok(Started::Started { arn })
    }

    async fn describe(&self, name: &str) -> Result<Option<ExecutionInfo>> {
        self.meter.enter("describe")?;
        Ok(lock(&self.executions).get(name).map(|e| ExecutionInfo {
            arn: e.arn.clone(),
            name: e.name.clone(),
            status: e.status.clone(),
            started_at: None,
        }))
    }

    async fn send_task_success(&self, token: &str, output: &serde_json::Value) -> Result<bool> {
        self.meter.enter("send_task_success")?;
        let mut sent = lock(&self.task_results);
        if sent.iter().any(|(t, _)| t == token) {
            return Ok(false);
        }
        sent.push((token.to_string(), output.clone()));
        Ok(true)
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: crate::state::ExecutionError,
        cause: &str,
    ) -> Result<bool> {
        self.meter.enter("send_task_failure")?;
        let mut sent = lock(&self.task_results);
        if sent.iter().any(|(t, _)| t == token) {
            return Ok(false);
        }
        sent.push((
            token.to_string(),
            serde_json::json!({"Error": error, "Cause": cause}),
        ));
        Ok(true)
    }

    async fn running(&self, prefix: &str) -> Result<Vec<String>> {
        self.meter.enter("running")?;
        let all = lock(&self.executions);
        Ok(lock(&self.order)
            .iter()
            .rev()
            .filter(|n| n.starts_with(prefix))
            .filter(|n| {
                all.get(*n)
                    .is_some_and(|e| ExecutionStatus::is_running(&e.status))
            })
            .cloned()
            .collect())
    }

    async fn state_outputs(&self, name: &str, state: &str) -> Result<Vec<StateOutput>> {
        self.meter.enter("state_outputs")?;
        Ok(lock(&self.outputs)
            .iter()
            .filter(|(n, s, _)| n == name && s == state)
            .map(|(_, _, o)| o.clone())
            .collect())
    }
}
