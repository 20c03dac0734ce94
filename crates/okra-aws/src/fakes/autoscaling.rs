//! EC2 Auto Scaling in memory.

use super::*;

/// EC2 Auto Scaling in memory: which target groups each group is attached to.
#[derive(Debug, Default)]
pub struct FakeAutoScaling {
    attachments: Mutex<BTreeSet<(String, String)>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeAutoScaling {
    /// No attachments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every (Auto Scaling group, target group ARN) attachment, sorted.
    pub fn attachments(&self) -> Vec<(String, String)> {
        lock(&self.attachments).iter().cloned().collect()
    }

    /// The target groups attached to one Auto Scaling group.
    pub fn attached_to(&self, asg: &str) -> Vec<String> {
        lock(&self.attachments)
            .iter()
            .filter(|(a, _)| a == asg)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

impl AutoScalingPort for FakeAutoScaling {
    async fn attach_target_group(&self, asg: &str, target_group_arn: &str) -> Result<()> {
        self.meter.enter("attach_target_group")?;
        lock(&self.attachments).insert((asg.to_string(), target_group_arn.to_string()));
        Ok(())
    }

    async fn detach_target_group(&self, asg: &str, target_group_arn: &str) -> Result<()> {
        self.meter.enter("detach_target_group")?;
        lock(&self.attachments).remove(&(asg.to_string(), target_group_arn.to_string()));
        Ok(())
    }
}
