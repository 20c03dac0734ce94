//! [`ExecutionsPort`] over aws-sdk-sfn: the rollout state machine's executions.

use aws_sdk_sfn as sfn;

use crate::error::{OkraError, Result};
use crate::state::{ExecutionInfo, ExecutionsPort, Started, StateOutput};

/// The Step Functions adapter, bound to one state machine.
#[derive(Debug, Clone)]
pub struct Sfn {
    client: sfn::Client,
    state_machine_arn: String,
}

impl Sfn {
    /// Wraps a client and names the state machine (the functions read it from
    /// `STATE_MACHINE_ARN`).
    pub fn new(client: sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// The rollout state machine: `STATE_MACHINE_ARN` from the environment.
    pub fn from_env(
        config: &aws_config::SdkConfig,
    ) -> std::result::Result<Self, lambda_runtime::Error> {
        Ok(Self::new(
            sfn::Client::new(config),
            crate::required_env("STATE_MACHINE_ARN")?,
        ))
    }

    /// The ARN of the state machine's execution `name`.
    pub fn execution_arn(&self, name: &str) -> Result<String> {
        execution_arn(&self.state_machine_arn, name)
    }
}

/// `arn:PARTITION:states:REGION:ACCOUNT:stateMachine:SM` + `NAME` →
/// `arn:PARTITION:states:REGION:ACCOUNT:execution:SM:NAME` ([`okra_core::arn::execution_arn`]).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Result<String> {
    okra_core::arn::execution_arn(state_machine_arn, name).ok_or_else(|| {
        OkraError::InvalidInput(format!(
            "STATE_MACHINE_ARN: not a state machine ARN: {state_machine_arn}"
        ))
    })
}

fn code_is(e: &OkraError, code: &str) -> bool {
    matches!(e, OkraError::Aws { code: c, .. } if c == code)
}

/// The callback's task was answered before, timed out, or its execution ended (Step Functions
/// API reference, SendTaskSuccess and SendTaskFailure errors).
fn no_longer_waits(e: &OkraError) -> bool {
    ["TaskDoesNotExist", "TaskTimedOut", "InvalidToken"]
        .iter()
        .any(|c| code_is(e, c))
}

impl ExecutionsPort for Sfn {
    async fn start(&self, name: &str, input: &serde_json::Value) -> Result<Started> {
        let res = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            // Step Functions answers a start with the name and input of a running execution
            // with that execution's ARN, without an error.
            Ok(out) => Ok(Started::Started {
                arn: out.execution_arn().to_string(),
            }),
            Err(e) if code_is(&e, "ExecutionAlreadyExists") => Ok(Started::AlreadyExists {
                name: name.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    async fn send_task_success(&self, token: &str, output: &serde_json::Value) -> Result<bool> {
        let res = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            // The task was answered before, timed out, or its execution ended (Step Functions API
            // reference, SendTaskSuccess errors).
            Err(e) if no_longer_waits(&e) => {
                tracing::info!(error = %e, "the callback's task no longer waits");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: crate::state::ExecutionError,
        cause: &str,
    ) -> Result<bool> {
        let res = self
            .client
            .send_task_failure()
            .task_token(token)
            .error(error.as_str())
            // SendTaskFailure takes a cause of at most 32,768 characters.
            .cause(cause.chars().take(32_768).collect::<String>())
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            Err(e) if no_longer_waits(&e) => {
                tracing::info!(error = %e, "the callback's task no longer waits");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn describe(&self, name: &str) -> Result<Option<ExecutionInfo>> {
        let arn = self.execution_arn(name)?;
        let res = self
            .client
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(OkraError::from_sdk);
        let out = match res {
            Ok(o) => o,
            Err(e) if code_is(&e, "ExecutionDoesNotExist") => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(ExecutionInfo {
            arn: out.execution_arn().to_string(),
            name: out.name().unwrap_or(name).to_string(),
            status: out.status().as_str().to_string(),
            started_at: out
                .start_date()
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .ok(),
        }))
    }

    async fn running(&self, prefix: &str) -> Result<Vec<String>> {
        let mut pages = self
            .client
            .list_executions()
            .state_machine_arn(&self.state_machine_arn)
            .status_filter(sfn::types::ExecutionStatus::Running)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(OkraError::from_sdk)?;
            found.extend(
                page.executions()
                    .iter()
                    .filter(|e| e.name().starts_with(prefix))
                    .map(|e| (e.start_date().as_nanos(), e.name().to_string())),
            );
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(found.into_iter().map(|(_, n)| n).collect())
    }

    async fn state_outputs(&self, name: &str, state: &str) -> Result<Vec<StateOutput>> {
        let arn = self.execution_arn(name)?;
        let mut pages = self
            .client
            .get_execution_history()
            .execution_arn(&arn)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page.map_err(OkraError::from_sdk) {
                Ok(p) => p,
                Err(e) if code_is(&e, "ExecutionDoesNotExist") => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            for e in page.events() {
                let Some(d) = e.state_exited_event_details() else {
                    continue;
                };
                if d.name() != state {
                    continue;
                }
                let Some(output) = d.output().and_then(|o| serde_json::from_str(o).ok()) else {
                    continue;
                };
                out.push(StateOutput {
                    at_ms: e.timestamp().to_millis().unwrap_or(0),
                    output,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-west-1:123456789012:stateMachine:okra-rollout",
                "web--1-2-0--0"
            )
            .ok()
            .as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:okra-rollout:web--1-2-0--0")
        );
        assert!(execution_arn("arn:aws:lambda:eu-west-1:1:function:x", "n").is_err());
    }
}
