//! EventBridge in memory.

use super::*;

/// EventBridge in memory: the events put, in order. `PutEvents` is counted per 10 events.
#[derive(Debug, Default)]
pub struct FakeEvents {
    events: Mutex<Vec<RolloutEvent>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeEvents {
    /// No events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event put.
    pub fn events(&self) -> Vec<RolloutEvent> {
        lock(&self.events).clone()
    }

    /// The kinds of the events put, in order.
    pub fn kinds(&self) -> Vec<String> {
        lock(&self.events)
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    }
}

impl EventsPort for FakeEvents {
    async fn put(&self, events: &[RolloutEvent]) -> Result<()> {
        self.meter.enter("put")?;
        lock(&self.events).extend(events.iter().cloned());
        Ok(())
    }
}
