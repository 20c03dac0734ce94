//! [`AutoScalingPort`] over aws-sdk-autoscaling.

use aws_sdk_autoscaling as asg;

use crate::error::{OkraError, Result};
use crate::ports::AutoScalingPort;

/// The Auto Scaling adapter.
#[derive(Debug, Clone)]
pub struct AutoScaling {
    client: asg::Client,
}

impl AutoScaling {
    /// Wraps a client.
    pub fn new(client: asg::Client) -> Self {
        Self { client }
    }
}

impl AutoScalingPort for AutoScaling {
    async fn attach_target_group(&self, asg: &str, target_group_arn: &str) -> Result<()> {
        self.client
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(asg)
            .target_group_arns(target_group_arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn detach_target_group(&self, asg: &str, target_group_arn: &str) -> Result<()> {
        self.client
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(asg)
            .target_group_arns(target_group_arn)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }
}
