//! `okra events`: a cell's rollout events, as EventBridge (and the notification topic) got them,
//! read back from the rollouts' history: an entry of a kind that sends an event is that event
//! (`HistoryEvent::event_kind`); signals taken and continuations send none.

use std::collections::BTreeSet;
use std::time::Duration;

use okra_aws::state::{HistoryEntry, Rollout};
use serde::Serialize;

use super::*;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLine {
    /// RFC 3339.
    pub at: String,
    /// The event's `detail-type`.
    pub detail_type: String,
    /// The rollout (its execution).
    pub execution: String,
    /// The plan step, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The new version's weight after it, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// What happened.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// The events of `rollouts` (newest first, as listed), oldest first, skipping `seen` keys and
/// adding the new ones to it.
pub fn events_of(rollouts: &[Rollout], seen: &mut BTreeSet<String>) -> Vec<EventLine> {
    let mut out: Vec<EventLine> = rollouts
        .iter()
        .rev()
        .flat_map(|r| r.history.iter().map(move |h| (r, h)))
        .filter_map(|(r, h): (&Rollout, &HistoryEntry)| {
            let kind = h.event.event_kind()?;
            seen.insert(format!("{}/{}", r.execution, h.key()))
                .then(|| EventLine {
                    at: h.at.clone(),
                    detail_type: kind.to_string(),
                    execution: r.execution.clone(),
                    step: h.step,
                    weight: h.weight,
                    detail: h.detail.clone(),
                })
        })
        .collect();
    out.sort_by(|a, b| a.at.cmp(&b.at));
    out
}

/// One event in a line: `13:36:20  Rollout Rolled Back  web--1-2-0--2  step 2  weight 0 %  …`.
pub fn event_line(e: &EventLine) -> String {
    let time = e.at.get(..19).unwrap_or(&e.at).replace('T', " ");
    let mut s = format!("{time}  {:<22}  {}", e.detail_type, e.execution);
    if let Some(step) = e.step {
        s.push_str(&format!("  step {}", step + 1));
    }
    if let Some(w) = e.weight {
        s.push_str(&format!("  weight {w} %"));
    }
    if !e.detail.is_null() {
        s.push_str(&format!("  {}", compact(&e.detail)));
    }
    s
}

pub(super) async fn events(
    client: &Client,
    out: Output,
    cell: &str,
    rollouts: usize,
    follow: bool,
    interval: f64,
) -> Result<i32, CliError> {
    let mut seen = BTreeSet::new();
    loop {
        let list = client.list_rollouts(cell, rollouts.max(1)).await?;
        let new = events_of(&list.rollouts, &mut seen);
        match out {
            Output::Json if !follow => {
                println!("{}", serde_json::to_string_pretty(&new).unwrap_or_default())
            }
            // Followed: one JSON object a line.
            Output::Json => new.iter().for_each(|e| println!("{}", compact(e))),
            Output::Text => new.iter().for_each(|e| println!("{}", event_line(e))),
        }
        if !follow {
            return Ok(exit::OK);
        }
        tokio::time::sleep(Duration::from_secs_f64(interval.max(0.2))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use okra_core::vocab::{HistoryEvent, RolloutStatus};
    use serde_json::json;

    fn entry(at: &str, event: HistoryEvent, step: Option<usize>) -> HistoryEntry {
        HistoryEntry {
            at: at.into(),
            event,
            step,
            weight: step.map(|_| 10),
            detail: serde_json::Value::Null,
        }
    }

    fn rollout(execution: &str, history: Vec<HistoryEntry>) -> Rollout {
        Rollout {
            execution: execution.into(),
            cell: "web".into(),
            from: Some("1.0.0".into()),
            to: "1.1.0".into(),
            status: RolloutStatus::Running,
            weight: 10,
            history,
            started_at: "2026-12-06T10:00:00.000Z".into(),
            updated_at: "2026-12-06T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn history_reads_as_the_events_it_sent_oldest_first_and_once() {
        let mut signalled = entry("2026-12-06T11:00:02.000Z", HistoryEvent::Signalled, Some(1));
        signalled.detail = json!({"signal": "resume", "wake": 0});
        let newer = rollout(
            "web--1-1-0--1",
            vec![
                entry("2026-12-06T11:00:00.000Z", HistoryEvent::Started, None),
                entry("2026-12-06T11:00:01.000Z", HistoryEvent::Paused, Some(1)),
                signalled,
                entry("2026-12-06T11:00:03.000Z", HistoryEvent::TimedOut, Some(1)),
            ],
        );
        let older = rollout(
            "web--1-0-0--0",
            vec![entry(
                "2026-12-06T10:00:00.000Z",
                HistoryEvent::Promoted,
                None,
            )],
        );
        let mut seen = BTreeSet::new();
        let all = events_of(&[newer.clone(), older], &mut seen);
        let kinds: Vec<&str> = all.iter().map(|e| e.detail_type.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Rollout Promoted",
                "Rollout Started",
                "Rollout Paused",
                "Rollout Wait Timed Out"
            ],
            "a signal taken sends no event"
        );
        assert_eq!(
            event_line(&all[2]),
            "2026-12-06 11:00:01  Rollout Paused          web--1-1-0--1  step 2  weight 10 %"
        );
        // Read again (--follow): nothing new.
        assert!(events_of(&[newer], &mut seen).is_empty());
    }
}
