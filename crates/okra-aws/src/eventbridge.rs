//! [`EventsPort`] over aws-sdk-eventbridge: rollout events on a bus, source `okra`.

use aws_sdk_eventbridge as eb;
use eb::types::PutEventsRequestEntry;

use crate::error::{OkraError, Result};
use crate::state::{EventsPort, RolloutEvent};

/// The source of every okra event (defined with the events' types).
pub use okra_core::events::SOURCE;
/// PutEvents takes at most this many entries.
pub const PUT_EVENTS_BATCH: usize = 10;
/// How many times failed entries of a PutEvents are sent again before giving up.
const RESENDS: usize = 2;

/// The EventBridge adapter.
#[derive(Debug, Clone)]
pub struct EventBridge {
    client: eb::Client,
    bus: String,
}

impl EventBridge {
    /// Wraps a client; `bus` is the event bus name or ARN (the functions read `EVENT_BUS_NAME`,
    /// default `default`).
    pub fn new(client: eb::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    /// The functions' adapter: the bus `EVENT_BUS_NAME` names (default `default`).
    pub fn from_env(config: &aws_config::SdkConfig) -> Self {
        let bus = std::env::var("EVENT_BUS_NAME").unwrap_or_else(|_| "default".to_string());
        Self::new(eb::Client::new(config), bus)
    }
}

/// The event's `detail`: `cell` and `execution` (none for an event of no rollout), and the event's own detail (its fields when it
/// is an object, else under `detail`).
pub fn detail_of(e: &RolloutEvent) -> serde_json::Value {
    let mut d = serde_json::Map::new();
    d.insert("cell".into(), e.cell.clone().into());
    if !e.execution.is_empty() {
        d.insert("execution".into(), e.execution.clone().into());
    }
    match &e.detail {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                d.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        serde_json::Value::Null => {}
        other => {
            d.insert("detail".into(), other.clone());
        }
    }
    serde_json::Value::Object(d)
}

impl EventsPort for EventBridge {
    async fn put(&self, events: &[RolloutEvent]) -> Result<()> {
        for batch in events.chunks(PUT_EVENTS_BATCH) {
            let mut entries: Vec<PutEventsRequestEntry> = batch
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .source(SOURCE)
                        .detail_type(e.kind.as_ref())
                        .detail(detail_of(e).to_string())
                        .event_bus_name(&self.bus)
                        .build()
                })
                .collect();
            let mut tries = 0;
            loop {
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(entries.clone()))
                    .send()
                    .await
                    .map_err(OkraError::from_sdk)?;
                if out.failed_entry_count() == 0 {
                    break;
                }
                // Results are index by index with the entries; failed ones carry an error code.
                let failed: Vec<(PutEventsRequestEntry, String)> = entries
                    .iter()
                    .zip(out.entries())
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(e, r)| {
                        (
                            e.clone(),
                            format!(
                                "{}: {}",
                                r.error_code().unwrap_or_default(),
                                r.error_message().unwrap_or_default()
                            ),
                        )
                    })
                    .collect();
                tries += 1;
                if tries > RESENDS || failed.is_empty() {
                    let why: Vec<String> = failed.into_iter().map(|(_, w)| w).collect();
                    return Err(OkraError::AwsUnavailable(
                        format!(
                            "PutEvents: {} of {} entries failed: {}",
                            out.failed_entry_count(),
                            entries.len(),
                            why.join("; ")
                        ),
                        None,
                    ));
                }
                entries = failed.into_iter().map(|(e, _)| e).collect();
            }
        }
        Ok(())
    }
}
