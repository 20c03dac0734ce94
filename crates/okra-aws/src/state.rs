//! State that must last between executions, and the control of executions: cells, the
//! one-rollout-per-cell lock, the version blocklist, rollout history, people's signals (resume,
//! promote, abort), the executions themselves, and rollout events.
//!
//! One DynamoDB table holds it all (see [`keys`]); every write that could race is conditional.

use std::collections::BTreeMap;
use std::future::Future;

use okra_core::spec::CellSpec;
use okra_core::vocab::ExecutionStatus;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The table's key layout. `pk` is the partition key, `sk` the sort key (both strings).
///
/// | item | pk | sk |
/// |---|---|---|
/// | a cell's spec | `CELLS` | `<cell>` |
/// | the cell's lock | `CELL#<cell>` | `LOCK` |
/// | a blocked version | `CELL#<cell>` | `BLOCK#<version>` |
/// | a retry counter | `CELL#<cell>` | `ATTEMPT#<version>` |
/// | a rollout's history | `CELL#<cell>` | `ROLLOUT#<execution>` |
/// | a person's signal | `CELL#<cell>` | `SIGNAL#<execution>` |
/// | the cell's execution generation | `CELL#<cell>` | `GENERATION` |
/// | an execution's wait (its task token, kind, step) | `CELL#<cell>` | `WAIT#<execution>` |
/// | a version's failed automatic attempts | `CELL#<cell>` | `BLOCK#<version>#FAILURES` |
pub mod keys {
    /// The partition of all cell specs (a Query lists them).
    pub const CELLS: &str = "CELLS";
    /// A cell's partition.
    pub fn cell(cell: &str) -> String {
        format!("CELL#{cell}")
    }
    /// The lock's sort key.
    pub const LOCK: &str = "LOCK";
    /// The sort key of the cell's execution generation (a counter in every execution's name).
    pub const GENERATION: &str = "GENERATION";
    /// A blocked version's sort key.
    pub fn block(version: &str) -> String {
        format!("BLOCK#{version}")
    }
    /// A version's retry counter.
    pub fn attempt(version: &str) -> String {
        format!("ATTEMPT#{version}")
    }
    /// A rollout's history item.
    pub fn rollout(execution: &str) -> String {
        format!("ROLLOUT#{execution}")
    }
    /// A signal to a running execution.
    pub fn signal(execution: &str) -> String {
        format!("SIGNAL#{execution}")
    }
    /// The task token of an execution that waits for a person.
    pub fn wait(execution: &str) -> String {
        format!("WAIT#{execution}")
    }
    /// A version's failed automatic attempts: next to its block, so that one Query reads both
    /// (the dispatcher's `blocks_and_failures`).
    pub fn failures(version: &str) -> String {
        format!("BLOCK#{version}{FAILURES_SUFFIX}")
    }
    /// What ends a failures item's sort key.
    pub const FAILURES_SUFFIX: &str = "#FAILURES";
}

/// A stored cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCell {
    /// The spec (validated before it was stored).
    pub spec: CellSpec,
    /// Grows by one on every write; writes are conditional on it (optimistic locking).
    pub revision: u64,
    /// RFC 3339.
    pub updated_at: String,
}

/// Who holds a cell's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    /// The execution's name.
    pub execution: String,
    /// The version it rolls out.
    pub version: String,
    /// RFC 3339.
    pub acquired_at: String,
}

impl Lock {
    /// How long it has been held (`None` when `acquired_at` does not read as RFC 3339).
    pub fn held_for(&self) -> Option<std::time::Duration> {
        let at = humantime::parse_rfc3339_weak(&self.acquired_at).ok()?;
        std::time::SystemTime::now().duration_since(at).ok()
    }
}

/// Where an execution waits, and the callback that ends the wait (`lambda:invoke.waitForTaskToken`).
/// Kept from the wait's first callback until the rollout leaves the step (`step` recorded, or
/// the rollout finished): the API reads from it which signals can act ([`okra_core::answer::acts`])
/// and answers the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wait {
    /// The latest callback's task token (a wait woken by an interval gets a new one each time).
    pub token: String,
    /// What kind of wait.
    pub kind: WaitKind,
    /// The plan step the rollout waits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// When a timed pause ends (RFC 3339), set by the wait's first callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The background samples an EventBridge Scheduler schedule takes while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<WaitSamples>,
}

/// A wait's background samples ([`okra_core::schedule`]): what each sample asks check-metrics,
/// and where the analysis stands after the latest one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitSamples {
    /// check-metrics' input for each sample (cell, templates, args, sides), without `previous`.
    pub request: serde_json::Value,
    /// The latest sample's output (`{phase, reason, metrics, …}`); before the first, the
    /// state machine's own `{metrics}`, which the first sample goes on from.
    pub latest: serde_json::Value,
    /// How many samples the schedule took.
    #[serde(default)]
    pub taken: u64,
    /// The due time of the latest (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

impl Wait {
    /// Whole seconds until `until`, rounded up; `None` when there is no end or it has passed.
    pub fn left(&self, now: std::time::SystemTime) -> Option<u64> {
        let until = humantime::parse_rfc3339_weak(self.until.as_deref()?).ok()?;
        let d = until.duration_since(now).ok()?;
        let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        (s > 0).then_some(s)
    }
}

/// A version's failed automatic attempts ([`okra_core::attempts`]): failures that did not block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    /// How many executions failed (each counted once).
    pub count: u32,
    /// When the last one failed (RFC 3339).
    pub last_at: String,
    /// Why the last one failed.
    pub last_reason: String,
}

impl Failures {
    /// How long ago the last one failed (`None` when `last_at` does not read as RFC 3339).
    pub fn since_last(&self, now: std::time::SystemTime) -> Option<std::time::Duration> {
        let at = humantime::parse_rfc3339_weak(&self.last_at).ok()?;
        now.duration_since(at).ok()
    }
}

/// A blocked version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// The version.
    pub version: String,
    /// Why (the failed step's error, in words).
    pub reason: String,
    /// The execution that failed.
    pub execution: String,
    /// RFC 3339.
    pub at: String,
}

pub use okra_core::vocab::{HistoryEvent, RolloutEventKind, RolloutStatus, Signal, WaitKind};

/// One entry of a rollout's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// RFC 3339.
    pub at: String,
    /// What happened.
    pub event: HistoryEvent,
    /// The step index, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The canary's weight after the event, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Free detail (analysis verdicts, reasons), kept small.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl HistoryEntry {
    /// The entry's identity: `<event>#<step>` (`<event>#-` without a step). [`StatePort::record`]
    /// appends an entry once per key, so a task that Step Functions runs twice records once (the
    /// second run's `at` differs, its key does not).
    ///
    /// An entry made in a wait for a person names the wait's wake count (`detail.wake`), which
    /// joins the key: one wait may be answered more than once (an ignored answer, then one).
    pub fn key(&self) -> String {
        let step = self.step.map_or_else(|| "-".to_string(), |s| s.to_string());
        match self.detail.get("wake") {
            Some(wake) => format!("{}#{step}#{wake}", self.event),
            None => format!("{}#{step}", self.event),
        }
    }
}

/// RFC 3339 in UTC with milliseconds (`2026-01-02T03:04:05.678Z`): the format of every timestamp
/// in the table, which sorts as text in time order.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A rollout's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// The execution's name.
    pub execution: String,
    /// The cell.
    pub cell: String,
    /// From which version (`None`: unmanaged target groups, or nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// To which version.
    pub to: String,
    /// Where it stands.
    pub status: RolloutStatus,
    /// The canary's weight now.
    pub weight: u32,
    /// What happened, oldest first.
    pub history: Vec<HistoryEntry>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// The newest `limit` rollouts, newest first: by start time, then by execution name (two
/// executions of one second). The order of `GET /cells/{cell}/rollouts` and `okra rollout
/// status`, whichever port read them.
pub fn newest_first(mut rollouts: Vec<Rollout>, limit: usize) -> Vec<Rollout> {
    rollouts.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.execution.cmp(&a.execution))
    });
    rollouts.truncate(limit);
    rollouts
}

/// The table.
pub trait StatePort: Send + Sync {
    /// Every stored cell (all pages).
    fn list_cells(&self) -> impl Future<Output = Result<Vec<StoredCell>>> + Send;
    /// One cell.
    fn get_cell(&self, cell: &str) -> impl Future<Output = Result<Option<StoredCell>>> + Send;
    /// Stores a cell. `expected_revision`: `None` = must not exist, `Some(n)` = must be at `n`.
    /// A mismatch is `OkraError::Conflict`. Returns the new revision.
    fn put_cell(
        &self,
        spec: &CellSpec,
        expected_revision: Option<u64>,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Deletes a cell (its spec only: history and blocks stay).
    fn delete_cell(&self, cell: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Takes the cell's lock for `lock.execution`; idempotent for the same execution. Another
    /// holder → `Ok(Err(holder))`.
    fn acquire_lock(
        &self,
        cell: &str,
        lock: &Lock,
    ) -> impl Future<Output = Result<std::result::Result<(), Lock>>> + Send;
    /// Releases the lock if `execution` holds it, and then advances the cell's generation: the
    /// next execution of the cell gets a name no earlier one had. Idempotent (a second release
    /// finds no lock of `execution` and advances nothing).
    fn release_lock(&self, cell: &str, execution: &str) -> impl Future<Output = Result<()>> + Send;
    /// The cell's execution generation (0 until an execution released the lock).
    fn generation(&self, cell: &str) -> impl Future<Output = Result<u64>> + Send;
    /// Advances the generation from `seen` to `seen + 1`, unless someone else already moved it
    /// on (a conditional write); returns the generation now.
    fn advance_generation(&self, cell: &str, seen: u64)
    -> impl Future<Output = Result<u64>> + Send;
    /// Who holds the lock.
    fn get_lock(&self, cell: &str) -> impl Future<Output = Result<Option<Lock>>> + Send;

    /// The cell's blocked versions.
    fn blocklist(&self, cell: &str) -> impl Future<Output = Result<Vec<Block>>> + Send;
    /// Blocks a version (idempotent: a second block keeps the first reason).
    fn block(&self, cell: &str, block: &Block) -> impl Future<Output = Result<()>> + Send;
    /// Unblocks a version, forgets its failed automatic attempts and bumps its retry counter;
    /// returns the new attempt number.
    fn unblock(&self, cell: &str, version: &str) -> impl Future<Output = Result<u32>> + Send;
    /// Counts a failed automatic attempt at a version, once per execution (a replay counts
    /// nothing more); the failures now.
    fn record_failure(
        &self,
        cell: &str,
        version: &str,
        execution: &str,
        reason: &str,
    ) -> impl Future<Output = Result<Failures>> + Send;
    /// The cell's blocked versions and every version's failed automatic attempts (by version):
    /// one call (a Query), for the dispatcher.
    fn blocks_and_failures(
        &self,
        cell: &str,
    ) -> impl Future<Output = Result<(Vec<Block>, BTreeMap<String, Failures>)>> + Send;
    /// A version's failed automatic attempts, if any.
    fn failures(
        &self,
        cell: &str,
        version: &str,
    ) -> impl Future<Output = Result<Option<Failures>>> + Send;
    /// A version's attempt number (0 until first retried).
    fn attempt(&self, cell: &str, version: &str) -> impl Future<Output = Result<u32>> + Send;

    /// Creates a rollout's record if absent (idempotent).
    fn start_rollout(&self, rollout: &Rollout) -> impl Future<Output = Result<()>> + Send;
    /// Appends a history entry and sets `status` (when given) and `weight` (when the entry has
    /// one); idempotent per [`HistoryEntry::key`]: a replay changes nothing. No such rollout →
    /// `OkraError::NotFound`.
    fn record(
        &self,
        cell: &str,
        execution: &str,
        entry: &HistoryEntry,
        status: Option<RolloutStatus>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// One rollout.
    fn get_rollout(
        &self,
        cell: &str,
        execution: &str,
    ) -> impl Future<Output = Result<Option<Rollout>>> + Send;
    /// The cell's rollouts, newest first, at most `limit`.
    fn list_rollouts(
        &self,
        cell: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Rollout>>> + Send;

    /// Leaves a signal for a running execution (the last one wins).
    fn put_signal(
        &self,
        cell: &str,
        execution: &str,
        signal: Signal,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Keeps the execution's wait (the last one wins), and returns the signal already left for
    /// it, if any (without taking it).
    fn put_wait(
        &self,
        cell: &str,
        execution: &str,
        wait: &Wait,
    ) -> impl Future<Output = Result<Option<Signal>>> + Send;
    /// The execution's wait, if it waits (or is between two callbacks of one wait).
    fn get_wait(
        &self,
        cell: &str,
        execution: &str,
    ) -> impl Future<Output = Result<Option<Wait>>> + Send;
    /// Stores a background sample with the execution's wait, if the wait is still the one whose
    /// callback is `token` and `samples.last` is later than the stored one (a sample is stored
    /// once however often it is delivered). `false`: nothing stored.
    fn record_sample(
        &self,
        cell: &str,
        execution: &str,
        token: &str,
        samples: &WaitSamples,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Forgets the execution's wait: the rollout left the step it waited in.
    fn end_wait(&self, cell: &str, execution: &str) -> impl Future<Output = Result<()>> + Send;
    /// Takes (reads and deletes) the execution's signal, if any.
    fn take_signal(
        &self,
        cell: &str,
        execution: &str,
    ) -> impl Future<Output = Result<Option<Signal>>> + Send;
}

/// A Step Functions execution as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInfo {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED` ([`ExecutionStatus`], as
    /// AWS spells it; kept as text, so that a status AWS adds later reads as not running).
    pub status: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

impl ExecutionInfo {
    /// Whether the execution is still running.
    pub fn is_running(&self) -> bool {
        ExecutionStatus::is_running(&self.status)
    }
}

/// What starting an execution did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Started {
    /// A new execution.
    Started {
        /// Its ARN.
        arn: String,
    },
    /// One of that name exists already (a duplicate trigger): nothing started.
    AlreadyExists {
        /// Its name.
        name: String,
    },
}

/// Step Functions, as the dispatcher and the API need it.
pub trait ExecutionsPort: Send + Sync {
    /// Starts the rollout state machine under `name` with `input`.
    fn start(
        &self,
        name: &str,
        input: &serde_json::Value,
    ) -> impl Future<Output = Result<Started>> + Send;
    /// One execution by name.
    fn describe(&self, name: &str) -> impl Future<Output = Result<Option<ExecutionInfo>>> + Send;
    /// Ends a callback task (`.waitForTaskToken`) with `output`. `false` when the token no
    /// longer names a waiting task (answered before, timed out, or its execution ended).
    fn send_task_success(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Fails a callback task with `error` (one of the state machine's [`ExecutionError`]s, which
    /// its catchers match) and `cause`. `false` as for [`Self::send_task_success`].
    fn send_task_failure(
        &self,
        token: &str,
        error: ExecutionError,
        cause: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The running executions whose names start with `prefix`, newest first (a cell's:
    /// `<cell>--`).
    fn running(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// What state `state` of execution `name` output each time it was left, oldest first (its
    /// history's `StateExited` events): the analysis samples of `okra rollout status`. An
    /// execution Step Functions no longer knows has none.
    fn state_outputs(
        &self,
        name: &str,
        state: &str,
    ) -> impl Future<Output = Result<Vec<StateOutput>>> + Send;
}

/// One exit of a state: when, and its output.
#[derive(Debug, Clone, PartialEq)]
pub struct StateOutput {
    /// Epoch milliseconds.
    pub at_ms: i64,
    /// The state's output.
    pub output: serde_json::Value,
}

pub use okra_core::vocab::ExecutionError;

/// A schedule of background samples ([`okra_core::schedule`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSchedule {
    /// Its name ([`okra_core::schedule::schedule_name`]).
    pub name: String,
    /// Its rate expression.
    pub expression: String,
    /// The first invocation's time.
    pub start: std::time::SystemTime,
    /// After this, none (and the schedule deletes itself).
    pub end: std::time::SystemTime,
    /// What each invocation carries ([`okra_core::schedule::schedule_input`]).
    pub input: serde_json::Value,
    /// How long an invocation EventBridge Scheduler could not deliver is worth retrying: one
    /// interval (a later sample replaces it).
    pub max_age: std::time::Duration,
    /// A description for the console.
    pub description: String,
}

/// EventBridge Scheduler, as the waits' background samples need it: the group, the target
/// (check-metrics) and the role Scheduler assumes are the adapter's.
pub trait SchedulesPort: Send + Sync {
    /// Makes the schedule, or replaces one of that name (idempotent).
    fn put(&self, schedule: &SampleSchedule) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a schedule; `false` when there was none.
    fn delete(&self, name: &str) -> impl Future<Output = Result<bool>> + Send;
}

/// A rollout event for notifications (EventBridge `detail-type` = `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutEvent {
    /// The event's `detail-type`.
    pub kind: RolloutEventKind,
    /// The cell.
    pub cell: String,
    /// The execution.
    pub execution: String,
    /// Event detail.
    pub detail: serde_json::Value,
}

/// EventBridge.
pub trait EventsPort: Send + Sync {
    /// Puts events on the bus (source `okra`).
    fn put(&self, events: &[RolloutEvent]) -> impl Future<Output = Result<()>> + Send;
}

/// Execution input: what the dispatcher and the API start the state machine with. The state
/// machine reads its own name from the context object (`$$.Execution.Name`) and the blocklist
/// from the table when it takes the cell's lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInput {
    /// The cell spec.
    pub cell: CellSpec,
    /// Who started it: `schedule`, `eks-event`, `api`.
    pub trigger: String,
    /// Free labels (the EKS event's cluster, the API caller). Always written: the state
    /// machine hands them to discovery (`$.labels`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
