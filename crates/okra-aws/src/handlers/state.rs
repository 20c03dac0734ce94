//! `rollout-state`: the state machine's bookkeeping task. One function, five actions (the
//! input's `action`):
//!
//! | action | input | output |
//! |---|---|---|
//! | `begin` | `cell`, `execution`, `version`? | `{blocklist: ["1.2.0"], lockedBy, tookOverFrom?}` |
//! | `started` | `cell`, `execution`, `decision` (discover's) | `{recorded}` |
//! | `step` | `cell`, `execution`, `index`, `weight`?, `detail`?, `event`? (`stepDone`) | `{recorded}` |
//! | `poll` | `cell`, `execution` | `{signal: "none" \| "resume" \| "promote" \| "promoteFull" \| "abort"}` |
//! | `finish` | `cell`, `execution`, `outcome`, `version`?, `reason`?, `block`?, `weight`? | `{outcome, blocked, recorded, released}` |
//!
//! `cell` is the cell's name, or the cell spec itself (its `name` is read). Every action is
//! idempotent: Step Functions runs a task again after a timeout or a retried error, and a second
//! run records nothing twice and sends no event twice.

use std::collections::BTreeMap;
use std::time::SystemTime;

use okra_core::decision::Decision;
use okra_core::record::{self, Holder, Versions};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::error::{OkraError, Result};
use crate::state::{
    Block, EventsPort, ExecutionsPort, HistoryEntry, Lock, Rollout, RolloutEvent, StatePort,
    rfc3339,
};
pub use okra_core::vocab::Outcome;
use okra_core::vocab::{HistoryEvent, RolloutEventKind, RolloutStatus, Signal, signal_or_none};

pub use okra_core::record::{MAX_REASON, readable_reason};

/// A cell by name, or the spec (whose `name` is taken).
fn cell_name<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum CellRef {
        Name(String),
        Spec { name: String },
    }
    Ok(match CellRef::deserialize(d)? {
        CellRef::Name(n) | CellRef::Spec { name: n } => n,
    })
}

/// The function's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum StateInput {
    /// Take the cell's lock; read the blocklist.
    Begin {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution's name (`$$.Execution.Name`).
        execution: String,
        /// The version rolled out, when known.
        #[serde(default)]
        version: Option<String>,
    },
    /// The decision is taken: create the rollout's record.
    Started {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// Discovery's decision.
        decision: Decision,
    },
    /// A step is done.
    Step {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// The plan step's index.
        index: usize,
        /// The canary's weight after the step.
        #[serde(default)]
        weight: Option<u32>,
        /// Free detail (an analysis verdict).
        #[serde(default)]
        detail: Option<Value>,
        /// The history event (default `stepDone`; `paused` sends `Rollout Paused`).
        #[serde(default)]
        event: Option<HistoryEvent>,
        /// Stable groups the step left out for their health (shift-weights' `excluded`).
        #[serde(default)]
        excluded: Vec<okra_core::health::Excluded>,
    },
    /// Wait for a person: keep the callback's task token (`$$.Task.Token` of a
    /// `.waitForTaskToken` task) where the API finds it. A signal left before the wait began
    /// answers the callback at once.
    Await {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// The task token.
        token: String,
    },
    /// Take a person's signal, if any.
    Poll {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
    },
    /// An execution ended, as its status change event says (the finalizer): when it still
    /// holds the cell's lock — it ended outside every `Finish*` state (stopped, timed out, or
    /// failed where no Catch reaches) — its rollout is recorded as failed with the reason, and
    /// the lock is released (which moves the cell's generation on). Traffic stays where the
    /// last step left it (weights a step asked for, verified); the next reconcile resumes the
    /// rollout from there in a new execution, or a person aborts or retries it. An execution
    /// that released its lock, or never held it, changes nothing.
    Ended {
        /// The cell.
        cell: String,
        /// The execution's name.
        execution: String,
        /// `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
        status: String,
        /// The execution's error, if it failed.
        #[serde(default)]
        error: Option<String>,
        /// The execution's cause, if it failed.
        #[serde(default)]
        cause: Option<String>,
    },
    /// The rollout ended.
    Finish {
        /// The cell.
        #[serde(deserialize_with = "cell_name")]
        cell: String,
        /// This execution.
        execution: String,
        /// How it ended.
        outcome: Outcome,
        /// The version rolled out (the one to block).
        #[serde(default)]
        version: Option<String>,
        /// Why: text, a Lambda error Cause (JSON text), or a Catch's `{Error, Cause}`.
        #[serde(default)]
        reason: Option<Value>,
        /// Block `version` (a failed step).
        #[serde(default)]
        block: bool,
        /// The canary's final weight (default: 100 promoted, 0 rolled back).
        #[serde(default)]
        weight: Option<u32>,
    },
}

/// The EventBridge detail-type of Step Functions' status change events.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The `detail` of a "Step Functions Execution Status Change" event, as far as okra reads it
/// (Step Functions developer guide, "Automating Step Functions event delivery with EventBridge").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusChange {
    execution_arn: String,
    #[serde(default)]
    name: Option<String>,
    status: String,
    /// The execution's input as JSON text (absent or null when too large to include).
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

/// Reads the input, naming the field that is wrong: an action of the state machine, or an
/// EventBridge "Step Functions Execution Status Change" event (the finalizer's trigger).
pub fn parse(v: Value) -> Result<StateInput> {
    if v.get("detail-type").and_then(Value::as_str) != Some(EXECUTION_STATUS_CHANGE) {
        return crate::parse_input(v);
    }
    let ev: aws_lambda_events::eventbridge::EventBridgeEvent<StatusChange> = crate::parse_input(v)?;
    let d = ev.detail;
    let input: Value = d
        .input
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| OkraError::InvalidInput(format!("detail.input: not JSON: {e}")))?
        .unwrap_or(Value::Null);
    let cell = match input.get("cell") {
        Some(Value::String(n)) => n.clone(),
        Some(c) => c
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| OkraError::InvalidInput("detail.input.cell.name: missing".into()))?,
        None => {
            return Err(OkraError::InvalidInput(
                "detail.input: no cell (the execution's input must be included in the event)"
                    .into(),
            ));
        }
    };
    let execution = d.name.clone().unwrap_or_else(|| {
        d.execution_arn
            .rsplit(':')
            .next()
            .unwrap_or(&d.execution_arn)
            .to_string()
    });
    Ok(StateInput::Ended {
        cell,
        execution,
        status: d.status,
        error: d.error,
        cause: d.cause,
    })
}

/// `begin`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeginOutput {
    /// The cell's blocked versions, sorted: discovery's `blocklist`.
    pub blocklist: Vec<String>,
    /// This execution.
    pub locked_by: String,
    /// The finished (or unknown) execution whose stale lock was taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over_from: Option<String>,
}

/// `started`'s and `step`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordOutput {
    /// `false` when this was a replay (recorded before).
    pub recorded: bool,
}

/// `poll`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollOutput {
    /// `none`, `resume`, `promote`, `promoteFull`, `abort`.
    #[serde(with = "signal_or_none")]
    pub signal: Option<Signal>,
}

/// `await`'s output (the Lambda's answer; the task itself ends with the callback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitOutput {
    /// Whether a signal was already there and answered the callback.
    pub answered: bool,
}

/// The finalizer's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndedOutput {
    /// Whether the execution still held the lock (and so was finalized now).
    pub finalized: bool,
    /// What was recorded, or why nothing was.
    pub reason: String,
}

/// `finish`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishOutput {
    /// The outcome.
    pub outcome: Outcome,
    /// The version blocked (null: none).
    pub blocked: Option<String>,
    /// `false` when this was a replay, or nothing was to record.
    pub recorded: bool,
    /// The lock is free of this execution.
    pub released: bool,
    /// The reason as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The output, by action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StateOutput {
    /// `begin`.
    Begin(BeginOutput),
    /// `started`, `step`.
    Record(RecordOutput),
    /// `poll`.
    Poll(PollOutput),
    /// `finish`.
    Finish(FinishOutput),
    /// A status change event.
    Ended(EndedOutput),
    /// `await`.
    Await(AwaitOutput),
}

fn event(kind: RolloutEventKind, cell: &str, execution: &str, detail: Value) -> RolloutEvent {
    RolloutEvent {
        kind,
        cell: cell.to_string(),
        execution: execution.to_string(),
        detail,
    }
}

/// Records `entry` once: a replay (the entry's key is in the history) changes nothing and sends
/// nothing. The event goes out before the record, so that a failed put is retried with the
/// record (an event may then go out twice, never zero times).
async fn record_once<S: StatePort, E: EventsPort>(
    state: &S,
    events: &E,
    cell: &str,
    execution: &str,
    entry: &HistoryEntry,
    status: Option<RolloutStatus>,
    ev: Option<RolloutEvent>,
) -> Result<bool> {
    let rollout = state
        .get_rollout(cell, execution)
        .await?
        .ok_or_else(|| OkraError::NotFound(format!("rollout {execution} of cell {cell}")))?;
    let key = entry.key();
    if rollout.history.iter().any(|h| h.key() == key) {
        tracing::info!(cell, execution, key, "replay: recorded before");
        return Ok(false);
    }
    if let Some(ev) = ev {
        events.put(&[ev]).await?;
    }
    state.record(cell, execution, entry, status).await?;
    Ok(true)
}

async fn begin<S: StatePort, X: ExecutionsPort>(
    state: &S,
    executions: &X,
    cell: &str,
    execution: &str,
    version: Option<String>,
    now: SystemTime,
) -> Result<BeginOutput> {
    let lock = Lock {
        execution: execution.to_string(),
        version: version.unwrap_or_default(),
        acquired_at: rfc3339(now),
    };
    let mut took_over_from = None;
    for _ in 0..3 {
        match state.acquire_lock(cell, &lock).await? {
            Ok(()) => {
                let mut blocklist: Vec<String> = state
                    .blocklist(cell)
                    .await?
                    .into_iter()
                    .map(|b| b.version)
                    .collect();
                blocklist.sort();
                blocklist.dedup();
                return Ok(BeginOutput {
                    blocklist,
                    locked_by: execution.to_string(),
                    took_over_from,
                });
            }
            Err(holder) => {
                let info = executions.describe(&holder.execution).await?;
                if let Some(info) = &info
                    && record::holder(Some(&info.status)) == Holder::Live
                {
                    return Err(OkraError::Conflict(record::busy(
                        cell,
                        &holder.execution,
                        &holder.version,
                        &info.arn,
                    )));
                }
                tracing::warn!(
                    cell,
                    holder = %holder.execution,
                    status = info.as_ref().map_or("unknown", |i| i.status.as_str()),
                    "taking over a stale lock"
                );
                state.release_lock(cell, &holder.execution).await?;
                took_over_from = Some(holder.execution);
            }
        }
    }
    Err(OkraError::Conflict(format!(
        "the lock of cell {cell} keeps changing hands"
    )))
}

/// Runs one action. `now` is the time the entries and the lock carry (the function passes the
/// system clock).
pub async fn handle<S: StatePort, X: ExecutionsPort, E: EventsPort>(
    state: &S,
    executions: &X,
    events: &E,
    input: StateInput,
    now: SystemTime,
) -> Result<StateOutput> {
    let at = rfc3339(now);
    match input {
        StateInput::Begin {
            cell,
            execution,
            version,
        } => begin(state, executions, &cell, &execution, version, now)
            .await
            .map(StateOutput::Begin),
        StateInput::Started {
            cell,
            execution,
            decision,
        } => {
            let Versions { from, to, weight } = record::versions(&decision).ok_or_else(|| {
                OkraError::InvalidInput("decision: nothingToDo starts no rollout".to_string())
            })?;
            // The lock names the version from now on (same execution: idempotent).
            if let Some(l) = state
                .get_lock(&cell)
                .await?
                .filter(|l| l.execution == execution)
                && l.version != to
            {
                let relock = Lock {
                    version: to.clone(),
                    ..l
                };
                if let Err(holder) = state.acquire_lock(&cell, &relock).await? {
                    return Err(OkraError::Conflict(format!(
                        "cell {cell}: the lock went to execution {}",
                        holder.execution
                    )));
                }
            }
            state
                .start_rollout(&Rollout {
                    execution: execution.clone(),
                    cell: cell.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    status: RolloutStatus::Running,
                    weight,
                    history: Vec::new(),
                    started_at: at.clone(),
                    updated_at: at.clone(),
                })
                .await?;
            let detail = json!({ "decision": decision.kind(), "from": from, "to": to });
            let entry = HistoryEntry {
                at,
                event: HistoryEvent::Started,
                step: None,
                weight: None,
                detail: detail.clone(),
            };
            let ev = event(RolloutEventKind::Started, &cell, &execution, detail);
            let recorded = record_once(
                state,
                events,
                &cell,
                &execution,
                &entry,
                Some(RolloutStatus::Running),
                Some(ev),
            )
            .await?;
            Ok(StateOutput::Record(RecordOutput { recorded }))
        }
        StateInput::Step {
            cell,
            execution,
            index,
            weight,
            detail,
            event: name,
            excluded,
        } => {
            let name = name.unwrap_or(HistoryEvent::StepDone);
            // Which members a step left out, and why, go into its history entry.
            let detail = record::step_detail(detail, &excluded);
            let kind = name.step_event_kind();
            let entry = HistoryEntry {
                at,
                event: name,
                step: Some(index),
                weight,
                detail: detail.clone(),
            };
            let mut d = BTreeMap::new();
            d.insert("event", json!(name));
            d.insert("step", json!(index));
            if let Some(w) = weight {
                d.insert("weight", json!(w));
            }
            if !detail.is_null() {
                d.insert("detail", detail);
            }
            let ev = event(kind, &cell, &execution, json!(d));
            let recorded =
                record_once(state, events, &cell, &execution, &entry, None, Some(ev)).await?;
            Ok(StateOutput::Record(RecordOutput { recorded }))
        }
        StateInput::Await {
            cell,
            execution,
            token,
        } => {
            let pending = state.put_wait(&cell, &execution, &token).await?;
            let answered = match pending {
                Some(signal) => {
                    executions
                        .send_task_success(&token, &json!({ "signal": signal }))
                        .await?
                }
                None => false,
            };
            tracing::info!(cell, execution, answered, "waiting for a person");
            Ok(StateOutput::Await(AwaitOutput { answered }))
        }
        StateInput::Poll { cell, execution } => {
            let signal = state.take_signal(&cell, &execution).await?;
            if let Some(s) = signal {
                tracing::info!(cell, execution, signal = s.as_ref(), "signal taken");
            }
            Ok(StateOutput::Poll(PollOutput { signal }))
        }
        StateInput::Ended {
            cell,
            execution,
            status,
            error,
            cause,
        } => {
            let held = state
                .get_lock(&cell)
                .await?
                .is_some_and(|l| l.execution == execution);
            if !held {
                return Ok(StateOutput::Ended(EndedOutput {
                    finalized: false,
                    reason: format!(
                        "execution {execution} ({status}) does not hold the lock of cell {cell}: \
                         nothing to finalize"
                    ),
                }));
            }
            let reason = record::ended_outside(&status, error.as_deref(), cause.as_deref());
            let version = state.get_lock(&cell).await?.map(|l| l.version);
            let finished = Box::pin(handle(
                state,
                executions,
                events,
                StateInput::Finish {
                    cell: cell.clone(),
                    execution: execution.clone(),
                    outcome: Outcome::Failed,
                    version: version.filter(|v| !v.is_empty()),
                    reason: Some(Value::String(reason.clone())),
                    block: false,
                    weight: None,
                },
                now,
            ))
            .await?;
            tracing::warn!(
                cell,
                execution,
                status,
                "finalized an execution that ended without finishing"
            );
            Ok(StateOutput::Ended(EndedOutput {
                finalized: matches!(finished, StateOutput::Finish(_)),
                reason,
            }))
        }
        StateInput::Finish {
            cell,
            execution,
            outcome,
            version,
            reason,
            block,
            weight,
        } => {
            let reason = reason
                .as_ref()
                .map(readable_reason)
                .filter(|r| !r.is_empty());
            let mut blocked = None;
            if block && let Some(v) = &version {
                state
                    .block(
                        &cell,
                        &Block {
                            version: v.clone(),
                            reason: reason
                                .clone()
                                .unwrap_or_else(|| format!("rollout {}", outcome.status())),
                            execution: execution.clone(),
                            at: at.clone(),
                        },
                    )
                    .await?;
                blocked = Some(v.clone());
            }
            let mut recorded = false;
            if outcome != Outcome::NothingToDo {
                if state.get_rollout(&cell, &execution).await?.is_none() {
                    // Failed before `started`: a record still tells what happened.
                    state
                        .start_rollout(&Rollout {
                            execution: execution.clone(),
                            cell: cell.clone(),
                            from: None,
                            to: version.clone().unwrap_or_else(|| "unknown".to_string()),
                            status: RolloutStatus::Running,
                            weight: 0,
                            history: Vec::new(),
                            started_at: at.clone(),
                            updated_at: at.clone(),
                        })
                        .await?;
                }
                let weight = weight.or(outcome.final_weight());
                let mut d = serde_json::Map::new();
                if let Some(v) = &version {
                    d.insert("version".into(), json!(v));
                }
                if let Some(r) = &reason {
                    d.insert("reason".into(), json!(r));
                }
                if let Some(b) = &blocked {
                    d.insert("blocked".into(), json!(b));
                }
                let detail = Value::Object(d);
                let entry = HistoryEntry {
                    at,
                    event: outcome.history_event(),
                    step: None,
                    weight,
                    detail: detail.clone(),
                };
                let ev = outcome
                    .event_kind()
                    .map(|kind| event(kind, &cell, &execution, detail));
                recorded = record_once(
                    state,
                    events,
                    &cell,
                    &execution,
                    &entry,
                    Some(outcome.status()),
                    ev,
                )
                .await?;
            }
            state.release_lock(&cell, &execution).await?;
            Ok(StateOutput::Finish(FinishOutput {
                outcome,
                blocked,
                recorded,
                released: true,
                reason,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_takes_a_name_or_a_spec() {
        let by_name = parse(json!({"action": "poll", "cell": "web", "execution": "e"}));
        assert!(matches!(by_name, Ok(StateInput::Poll { ref cell, .. }) if cell == "web"));
        let by_spec = parse(
            json!({"action": "poll", "cell": {"name": "web", "replicas": 2}, "execution": "e"}),
        );
        assert!(matches!(by_spec, Ok(StateInput::Poll { ref cell, .. }) if cell == "web"));
        let Err(e) = parse(json!({"action": "finish", "cell": "web", "execution": "e"})) else {
            panic!("finish without outcome parsed");
        };
        assert!(e.to_string().contains("outcome"), "{e}");
        assert_eq!(e.error_type(), "InvalidInput");
    }
}
