//! [`SchedulesPort`] over aws-sdk-scheduler: the schedules of background samples, in okra's
//! schedule group, each invoking check-metrics with the role EventBridge Scheduler assumes.

use std::time::SystemTime;

use aws_sdk_scheduler as scheduler;
use aws_smithy_types::DateTime;
use scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};

use crate::error::{OkraError, Result};
use crate::state::{SampleSchedule, SchedulesPort};

/// How often EventBridge Scheduler retries an invocation check-metrics failed (a throttled
/// provider, say) within the invocation's [`SampleSchedule::max_age`].
pub const SAMPLE_RETRIES: i32 = 2;

/// The EventBridge Scheduler adapter: one group, one target, one role.
#[derive(Debug, Clone)]
pub struct Scheduler {
    client: scheduler::Client,
    group: String,
    target_arn: String,
    role_arn: String,
}

impl Scheduler {
    /// Wraps a client: schedules in `group` invoke `target_arn` (check-metrics) as `role_arn`.
    pub fn new(
        client: scheduler::Client,
        group: impl Into<String>,
        target_arn: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> Self {
        Self {
            client,
            group: group.into(),
            target_arn: target_arn.into(),
            role_arn: role_arn.into(),
        }
    }

    /// From the function's environment: `SAMPLE_SCHEDULE_GROUP`, `CHECK_METRICS_FUNCTION_ARN`,
    /// `SAMPLE_SCHEDULE_ROLE_ARN`.
    pub fn from_env(
        config: &aws_config::SdkConfig,
    ) -> std::result::Result<Self, lambda_runtime::Error> {
        Ok(Self::new(
            scheduler::Client::new(config),
            crate::required_env("SAMPLE_SCHEDULE_GROUP")?,
            crate::required_env("CHECK_METRICS_FUNCTION_ARN")?,
            crate::required_env("SAMPLE_SCHEDULE_ROLE_ARN")?,
        ))
    }

    /// Only for deleting (check-metrics retires the schedules of waits that ended): no target.
    pub fn for_deleting(client: scheduler::Client, group: impl Into<String>) -> Self {
        Self::new(client, group, String::new(), String::new())
    }

    fn target(&self, s: &SampleSchedule) -> Result<Target> {
        let age = s.max_age.as_secs().clamp(60, 86_400) as i32;
        Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(s.input.to_string())
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_event_age_in_seconds(age)
                    .maximum_retry_attempts(SAMPLE_RETRIES)
                    .build(),
            )
            .build()
            .map_err(|e| OkraError::InvalidInput(format!("schedule {}: target: {e}", s.name)))
    }
}

fn date(t: SystemTime) -> DateTime {
    DateTime::from(t)
}

fn window() -> Result<FlexibleTimeWindow> {
    FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(|e| OkraError::InvalidInput(format!("flexible time window: {e}")))
}

/// Every field of a schedule, on CreateSchedule's or UpdateSchedule's builder (an update
/// replaces them all).
macro_rules! schedule_fields {
    ($builder:expr, $me:expr, $s:expr) => {
        $builder
            .name(&$s.name)
            .group_name(&$me.group)
            .description(&$s.description)
            .schedule_expression(&$s.expression)
            .start_date(date($s.start))
            .end_date(date($s.end))
            .flexible_time_window(window()?)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target($me.target($s)?)
    };
}

fn code_is(e: &OkraError, code: &str) -> bool {
    matches!(e, OkraError::Aws { code: c, .. } if c == code)
}

impl SchedulesPort for Scheduler {
    async fn put(&self, s: &SampleSchedule) -> Result<()> {
        let created = schedule_fields!(self.client.create_schedule(), self, s)
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match created {
            Ok(_) => Ok(()),
            // A second run of the wait's task, or the same wait's next callback: the schedule is
            // made again as this run asks (UpdateSchedule replaces every field).
            Err(e) if matches!(e, OkraError::Conflict(..)) || code_is(&e, "ConflictException") => {
                schedule_fields!(self.client.update_schedule(), self, s)
                    .send()
                    .await
                    .map_err(OkraError::from_sdk)?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let res = self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.group)
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            Err(OkraError::NotFound(_)) => Ok(false),
            Err(e) if code_is(&e, "ResourceNotFoundException") => Ok(false),
            Err(e) => Err(e),
        }
    }
}
