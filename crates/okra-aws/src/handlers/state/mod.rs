//! `rollout-state`: the state machine's bookkeeping task. One function, seven actions (the
//! input's `action`):
//!
//! | action | input | output |
//! |---|---|---|
//! | `begin` | `cell`, `execution`, `version`? | `{blocklist: ["1.2.0"], lockedBy, tookOverFrom?}` |
//! | `started` | `cell`, `execution`, `decision` (discover's) | `{recorded}` |
//! | `step` | `cell`, `execution`, `index`, `weight`?, `detail`?, `event`? (`stepDone`) | `{recorded}` |
//! | `await` | `cell`, `execution`, `token`, `wait`, `step`, `seconds`?, `samples`? | `{answered}` |
//! | `poll` | `cell`, `execution` | `{signal: "none" \| "resume" \| "promote" \| "promoteFull" \| "abort"}` |
//! | `endSamples` | `cell`, `execution`, `step`, `current` | check-metrics' output: the samples' latest, else `current` |
//! | `finish` | `cell`, `execution`, `outcome`, `version`?, `reason`?, `block`?, `weight`? | `{outcome, blocked, recorded, released}` |
//!
//! `cell` is the cell's name, or the cell spec itself (its `name` is read). Every action is
//! idempotent: Step Functions runs a task again after a timeout or a retried error, and a second
//! run records nothing twice and sends no event twice.

use std::time::SystemTime;

use okra_core::answer::Answer;
use okra_core::decision::Decision;
use okra_core::events::{EndedDetail, StartedDetail, Subject, Verdict};
use okra_core::record::{self, Holder, Versions};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::error::{OkraError, Result};
use crate::state::{
    Block, EventsPort, ExecutionsPort, HistoryEntry, Lock, Rollout, RolloutEvent, SampleSchedule,
    SchedulesPort, StatePort, Wait, WaitSamples, rfc3339,
};
pub use okra_core::vocab::Outcome;
use okra_core::vocab::{
    HistoryEvent, RolloutEventKind, RolloutStatus, Signal, WaitKind, signal_or_none,
};

pub use okra_core::record::{MAX_REASON, readable_reason};

mod io;

pub use io::*;

/// A typed event detail ([`okra_core::events`]) as JSON.
fn typed(detail: &impl Serialize) -> Result<Value> {
    serde_json::to_value(detail)
        .map_err(|e| OkraError::InvalidInput(format!("an event detail does not serialize: {e}")))
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
    if let Some(mut ev) = ev {
        // Every event names the versions, whoever reads it alone (a notification at 2 a.m.):
        // the record's ([`Subject::new`] leaves them to this).
        if let Some(d) = ev.detail.as_object_mut() {
            d.insert("from".into(), json!(rollout.from));
            d.insert("to".into(), json!(rollout.to));
        }
        events.put(&[ev]).await?;
    }
    state.record(cell, execution, entry, status).await?;
    Ok(true)
}

async fn begin<S: StatePort, X: ExecutionsPort, E: EventsPort>(
    state: &S,
    executions: &X,
    events: &E,
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
                let status = info.as_ref().map(|i| i.status.as_str());
                if record::holder(status, holder.held_for()) == Holder::Live {
                    let arn = info.as_ref().map_or("not found yet", |i| i.arn.as_str());
                    return Err(OkraError::Conflict(
                        record::busy(cell, &holder.execution, &holder.version, arn),
                        None,
                    ));
                }
                tracing::warn!(
                    cell,
                    holder = %holder.execution,
                    status = info.as_ref().map_or("unknown", |i| i.status.as_str()),
                    "taking over a stale lock"
                );
                // Recorded as its status change event would have (it may never come).
                finalize_stale(
                    state,
                    executions,
                    events,
                    cell,
                    &holder.execution,
                    info.as_ref(),
                    now,
                )
                .await?;
                took_over_from = Some(holder.execution);
            }
        }
    }
    Err(OkraError::Conflict(
        format!("the lock of cell {cell} keeps changing hands"),
        None,
    ))
}

/// The schedules port of [`finalize`]'s `finish`, which makes and deletes none.
struct NoSchedules;

impl SchedulesPort for NoSchedules {
    async fn put(&self, schedule: &SampleSchedule) -> Result<()> {
        Err(OkraError::InvalidInput(format!(
            "finalizing an execution makes no schedule ({})",
            schedule.name
        )))
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        Err(OkraError::InvalidInput(format!(
            "finalizing an execution deletes no schedule ({name})"
        )))
    }
}

/// What [`finalize`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    /// The execution held the lock, and was recorded and released now.
    pub finalized: bool,
    /// Its version was held (a stop).
    pub held: bool,
    /// What was recorded, or why nothing was.
    pub reason: String,
}

/// Finalizes an execution that ended (`status`, as Step Functions shows it) still holding the
/// cell's lock, as its status change event would: its rollout recorded as failed with the
/// reason, a stopped one's version held ([`record::ended_outside`]), the lock released. An
/// execution that does not hold the lock changes nothing. The finalizer's event and a lock's
/// takeover both come here, so a status change event EventBridge never delivers is made up for
/// by the next execution of the cell.
#[allow(clippy::too_many_arguments)]
pub async fn finalize<S: StatePort, X: ExecutionsPort, E: EventsPort>(
    state: &S,
    executions: &X,
    events: &E,
    cell: &str,
    execution: &str,
    status: &str,
    error: Option<&str>,
    cause: Option<&str>,
    now: SystemTime,
) -> Result<Finalized> {
    let lock = state
        .get_lock(cell)
        .await?
        .filter(|l| l.execution == execution);
    let Some(lock) = lock else {
        return Ok(Finalized {
            finalized: false,
            held: false,
            reason: format!(
                "execution {execution} ({status}) does not hold the lock of cell {cell}: nothing \
                 to finalize"
            ),
        });
    };
    let record::EndedOutside { reason, hold } = record::ended_outside(status, error, cause);
    let finished = Box::pin(handle(
        state,
        executions,
        events,
        &NoSchedules,
        StateInput::Finish {
            cell: CellArg::named(cell),
            execution: execution.to_string(),
            outcome: Outcome::Failed,
            version: Some(lock.version).filter(|v| !v.is_empty()),
            reason: Some(Value::String(reason.clone())),
            block: hold,
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
    let blocked = matches!(&finished, StateOutput::Finish(f) if f.blocked.is_some());
    Ok(Finalized {
        finalized: matches!(finished, StateOutput::Finish(_)),
        held: blocked,
        reason,
    })
}

/// [`finalize`] for a lock found stale (its execution ended, or is unknown past the grace),
/// with the status DescribeExecution shows (`NOT_FOUND` when it shows none): a lock's takeover
/// and the dispatcher's sweep.
pub async fn finalize_stale<S: StatePort, X: ExecutionsPort, E: EventsPort>(
    state: &S,
    executions: &X,
    events: &E,
    cell: &str,
    execution: &str,
    info: Option<&crate::state::ExecutionInfo>,
    now: SystemTime,
) -> Result<Finalized> {
    let status = info.map_or("NOT_FOUND", |i| i.status.as_str());
    finalize(
        state, executions, events, cell, execution, status, None, None, now,
    )
    .await
}

/// Runs one action. `now` is the time the entries and the lock carry (the function passes the
/// system clock).
pub async fn handle<S: StatePort, X: ExecutionsPort, E: EventsPort, C: SchedulesPort>(
    state: &S,
    executions: &X,
    events: &E,
    schedules: &C,
    input: StateInput,
    now: SystemTime,
) -> Result<StateOutput> {
    let at = rfc3339(now);
    match input {
        StateInput::Begin {
            cell,
            execution,
            version,
        } => begin(state, executions, events, &cell, &execution, version, now)
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
                    return Err(OkraError::Conflict(
                        format!(
                            "cell {cell}: the lock went to execution {}",
                            holder.execution
                        ),
                        None,
                    ));
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
                detail,
            };
            let ev = event(
                RolloutEventKind::Started,
                &cell,
                &execution,
                typed(&StartedDetail {
                    subject: Subject::new(&cell, &execution),
                    decision: decision.kind().to_string(),
                })?,
            );
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
            // Which members a step left out, and why, go into its history entry; a verdict's
            // entry keeps the verdict (each metric's value and conditions), not the samples.
            let detail = match name {
                HistoryEvent::Verdict => typed(&Verdict::from_analysis(
                    detail.as_ref().unwrap_or(&Value::Null),
                ))?,
                _ => record::step_detail(detail, &excluded),
            };
            let kind = name.step_event_kind();
            let ev_detail = okra_core::events::step_detail(
                Subject::new(&cell, &execution),
                name,
                index,
                weight,
                &detail,
            )
            .map_err(OkraError::InvalidInput)?;
            let entry = HistoryEntry {
                at,
                event: name,
                step: Some(index),
                weight,
                detail,
            };
            let ev = event(kind, &cell, &execution, ev_detail);
            let recorded =
                record_once(state, events, &cell, &execution, &entry, None, Some(ev)).await?;
            // The rollout leaves the step: no wait of it takes signals any more.
            if name == HistoryEvent::StepDone {
                state.end_wait(&cell, &execution).await?;
            }
            Ok(StateOutput::Record(RecordOutput { recorded }))
        }
        StateInput::Window {
            cell,
            execution,
            index,
            windows,
        } => {
            let gate = match &windows {
                None => okra_core::windows::Gate::Open,
                Some(w) => okra_core::windows::gate(w, now).map_err(|errors| {
                    let e: Vec<String> = errors.iter().map(|(p, m)| format!("{p}: {m}")).collect();
                    OkraError::InvalidSpec(e.join("; "))
                })?,
            };
            let okra_core::windows::Gate::Closed { opens } = gate else {
                return Ok(StateOutput::Window(WindowOutput {
                    open: true,
                    seconds: None,
                    until: None,
                }));
            };
            let until = opens.map(rfc3339);
            // At least a second; a window that opens no more holds until a person acts (a year).
            let seconds = opens
                .and_then(|t| t.duration_since(now).ok())
                .map_or(okra_core::decision::LONGEST_WAIT_SECONDS, |d| {
                    d.as_secs() + 1
                });
            let weight = state
                .get_rollout(&cell, &execution)
                .await?
                .map(|r| r.weight);
            let detail = json!({ "until": until });
            let ev = event(
                RolloutEventKind::Held,
                &cell,
                &execution,
                okra_core::events::step_detail(
                    Subject::new(&cell, &execution),
                    HistoryEvent::Held,
                    index,
                    weight,
                    &detail,
                )
                .map_err(OkraError::InvalidInput)?,
            );
            let entry = HistoryEntry {
                at,
                event: HistoryEvent::Held,
                step: Some(index),
                weight,
                detail,
            };
            record_once(state, events, &cell, &execution, &entry, None, Some(ev)).await?;
            Ok(StateOutput::Window(WindowOutput {
                open: false,
                seconds: Some(seconds),
                until,
            }))
        }
        StateInput::Await {
            cell,
            execution,
            token,
            wait,
            step,
            seconds,
            samples,
        } => {
            let kind = wait.unwrap_or(WaitKind::Person);
            // The same wait's earlier callback (a wait answered without a signal that acts
            // waits again): its end and its samples go on.
            let same = if seconds.is_some() || samples.is_some() {
                state
                    .get_wait(&cell, &execution)
                    .await?
                    .filter(|w| w.kind == kind && w.step == step)
            } else {
                None
            };
            // A timed pause ends at the same time however often its callback is renewed.
            let until = seconds.map(|secs| {
                same.as_ref()
                    .and_then(|w| w.until.clone())
                    .unwrap_or_else(|| rfc3339(now + std::time::Duration::from_secs(secs)))
            });
            let kept = same.and_then(|w| w.samples);
            let w = Wait {
                token: token.clone(),
                kind,
                step,
                until: until.clone(),
                samples: samples.as_ref().map(|a| match kept {
                    Some(k) => WaitSamples {
                        request: a.request.clone(),
                        ..k
                    },
                    None => WaitSamples {
                        request: a.request.clone(),
                        latest: json!({ "metrics": a.previous }),
                        taken: 0,
                        last: None,
                    },
                }),
            };
            let pending = state.put_wait(&cell, &execution, &w).await?;
            let answered = match pending {
                Some(signal) => {
                    executions
                        .send_task_success(&token, &json!({ "signal": signal }))
                        .await?
                }
                None => false,
            };
            // The samples are taken outside the state machine while it waits (none when the
            // pause ends before its first sample is due).
            let window = samples.as_ref().map(|a| {
                let end = until
                    .as_deref()
                    .and_then(|u| humantime::parse_rfc3339_weak(u).ok());
                okra_core::schedule::window(now, a.interval_seconds, end)
            });
            if let (Some(a), false, Some((start, end))) = (&samples, answered, window)
                && start < end
            {
                schedules
                    .put(&SampleSchedule {
                        name: okra_core::schedule::schedule_name(&cell, &execution, step),
                        expression: a.schedule.clone(),
                        start,
                        end,
                        input: okra_core::schedule::schedule_input(&cell, &execution, step),
                        max_age: std::time::Duration::from_secs(a.interval_seconds),
                        description: format!(
                            "okra: background analysis of cell {cell} while execution {execution} waits"
                        ),
                    })
                    .await?;
            }
            tracing::info!(cell, execution, answered, wait = kind.as_ref(), "waiting");
            Ok(StateOutput::Await(AwaitOutput { answered }))
        }
        StateInput::EndSamples {
            cell,
            execution,
            step,
            current,
        } => {
            let name = okra_core::schedule::schedule_name(&cell, &execution, step);
            let deleted = schedules.delete(&name).await?;
            let samples = state
                .get_wait(&cell, &execution)
                .await?
                .filter(|w| w.step == step)
                .and_then(|w| w.samples)
                .filter(|s| s.taken > 0);
            tracing::info!(
                cell,
                execution,
                deleted,
                taken = samples.as_ref().map_or(0, |s| s.taken),
                "the wait's background samples end"
            );
            Ok(StateOutput::Samples(samples.map_or(current, |s| s.latest)))
        }
        StateInput::Poll {
            cell,
            execution,
            answer,
            step,
            wake,
        } => {
            let stored = state.take_signal(&cell, &execution).await?;
            let (signal, detail) = match (stored, okra_core::answer::read(answer.as_ref())) {
                (Some(s), _) => (Some(s), json!({"signal": s, "by": "okra's API"})),
                (None, Answer::Signal { signal, by }) => {
                    (Some(signal), json!({"signal": signal, "by": by}))
                }
                (None, Answer::Invalid(why)) => {
                    tracing::warn!(cell, execution, %why, "an answer to the wait was ignored");
                    (None, json!({"ignored": why}))
                }
                (None, Answer::Nothing) => (None, Value::Null),
            };
            if let Some(s) = signal {
                tracing::info!(cell, execution, signal = s.as_ref(), "signal taken");
            }
            // A wait answered without a signal that ends it goes on for what it has left: a
            // timed pause of its duration, a wait for a person of its time-out (whose end has
            // passed: it times out now).
            let (left, timed_out) = match (&answer, signal) {
                (Some(_), None) => match state.get_wait(&cell, &execution).await? {
                    Some(w) if w.kind == WaitKind::Pause => (w.left(now), None),
                    Some(w) if w.kind == WaitKind::Person && w.until.is_some() => {
                        let left = w.left(now);
                        (left, left.is_none().then_some(true))
                    }
                    _ => (None, None),
                },
                _ => (None, None),
            };
            // Where the rollout waited (not after a step, where signals were only ever the
            // API's, recorded by it): which signal ended the wait, and who gave it.
            if answer.is_some() && !detail.is_null() {
                let mut detail = detail;
                detail["wake"] = json!(wake.unwrap_or(0));
                let entry = HistoryEntry {
                    at: rfc3339(std::time::SystemTime::now()),
                    event: HistoryEvent::Signalled,
                    step,
                    weight: None,
                    detail,
                };
                state.record(&cell, &execution, &entry, None).await?;
            }
            Ok(StateOutput::Poll(PollOutput {
                signal,
                left,
                timed_out,
            }))
        }
        StateInput::Ended {
            cell,
            execution,
            status,
            error,
            cause,
            input,
        } => {
            let out = finalize(
                state,
                executions,
                events,
                &cell,
                &execution,
                &status,
                error.as_deref(),
                cause.as_deref(),
                now,
            )
            .await?;
            // A stop is an abort: the version is held, and a rollback execution (with the
            // stopped one's input) sends the traffic back at once, verified. Its discovery sees
            // the held version holding traffic; one that holds none has nothing to roll back.
            if out.finalized
                && out.held
                && let Some(input) = input
            {
                let generation = state.generation(&cell).await?;
                let name = okra_core::naming::execution_name(&cell, "stopped", generation);
                let mut input = input;
                input["trigger"] = json!(okra_core::vocab::Trigger::Stopped);
                input["labels"] = json!({ "stopped": execution });
                match executions.start(&name, &input).await? {
                    crate::state::Started::Started { arn } => {
                        tracing::info!(cell, execution, arn, "rollback after a stop started");
                    }
                    crate::state::Started::AlreadyExists { .. } => {
                        tracing::info!(cell, execution, name, "rollback after a stop exists");
                    }
                }
            }
            Ok(StateOutput::Ended(EndedOutput {
                finalized: out.finalized,
                reason: out.reason,
            }))
        }
        StateInput::Finish {
            cell: CellArg {
                name: cell,
                max_attempts,
            },
            execution,
            outcome,
            version,
            reason,
            mut block,
            weight,
        } => {
            let mut reason = reason
                .as_ref()
                .map(readable_reason)
                .filter(|r| !r.is_empty());
            // The version this execution went for: the input's, else the lock's (the lock names
            // it from `started` on).
            let version = match version {
                Some(v) => Some(v),
                None => state
                    .get_lock(&cell)
                    .await?
                    .filter(|l| l.execution == execution && !l.version.is_empty())
                    .map(|l| l.version),
            };
            // A failure that does not block is an automatic attempt: counted, and after
            // `maxAttempts` the version is held as failing (okra_core::attempts).
            if outcome == Outcome::Failed
                && !block
                && let Some(v) = &version
            {
                let last = reason.clone().unwrap_or_else(|| "no reason given".into());
                let failures = state.record_failure(&cell, v, &execution, &last).await?;
                let max = max_attempts.unwrap_or(okra_core::attempts::DEFAULT_MAX_ATTEMPTS);
                if okra_core::attempts::exhausted(failures.count, max) {
                    block = true;
                    reason = Some(okra_core::attempts::failing_reason(failures.count, &last));
                }
            }
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
                let entry = HistoryEntry {
                    at,
                    event: outcome.history_event(),
                    step: None,
                    weight,
                    detail: Value::Object(d),
                };
                let ended = EndedDetail {
                    subject: Subject::new(&cell, &execution),
                    version: version.clone(),
                    reason: reason.clone(),
                    blocked: blocked.clone(),
                    weight,
                };
                let ev = match outcome.event_kind() {
                    Some(kind) => Some(event(kind, &cell, &execution, typed(&ended)?)),
                    None => None,
                };
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
            state.end_wait(&cell, &execution).await?;
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
