//! EventBridge Scheduler in memory.

use super::*;

/// Schedules in memory, by name (the adapter's one group).
#[derive(Debug, Default)]
pub struct FakeSchedules {
    schedules: Mutex<BTreeMap<String, SampleSchedule>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeSchedules {
    /// No schedules.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schedules, by name.
    pub fn schedules(&self) -> BTreeMap<String, SampleSchedule> {
        lock(&self.schedules).clone()
    }
}

impl SchedulesPort for FakeSchedules {
    async fn put(&self, schedule: &SampleSchedule) -> Result<()> {
        self.meter.enter("put")?;
        lock(&self.schedules).insert(schedule.name.clone(), schedule.clone());
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        self.meter.enter("delete")?;
        Ok(lock(&self.schedules).remove(name).is_some())
    }
}
