//! okra's application layer: what a person asks of okra, over the ports, with typed answers.
//!
//! - cells ([`cells`]): list, show, store, delete, plan (a dry run of discovery and the
//!   decision) and check (the doctor);
//! - rollouts ([`rollouts`]): list, show, start, signal, retry.
//!
//! The API (`handlers::api`: routes, request parsing, HTTP statuses) and the CLI (`okra`: flags,
//! text and JSON output) both call [`Okra`]; neither holds a rule of its own about when a cell may
//! be deleted, which rollout takes a signal, or what a retry unblocks. Every refusal is an
//! [`AppError`] whose [`AppError::error_type`] is one of okra's error names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::OkraError;
use crate::handlers::dispatch::{CellResult, DispatchOutcome};
use crate::ports::{ClusterPort, LoadBalancerPort};
use crate::state::{Block, ExecutionInfo, ExecutionsPort, Lock, Rollout, Signal, StatePort};
use okra_core::Cell;
use okra_core::spec::CellSpec;
use okra_core::vocab::ErrorType;

pub mod cells;
pub mod rollouts;
pub mod views;

pub use views::*;

/// The account checks of a cell (`okra doctor`, `GET /cells/{cell}/doctor`): the functions give
/// [`crate::handlers::doctor::Checker`], tests a double.
pub trait Doctor: Send + Sync {
    /// Checks `cell` against the account (read only).
    fn check(
        &self,
        cell: &Cell,
    ) -> impl std::future::Future<Output = crate::Result<crate::handlers::doctor::DoctorReport>> + Send;
}

/// okra over its ports: the table, the state machine's executions, EKS, ELB and the doctor.
#[allow(missing_debug_implementations)]
pub struct Okra<'a, S, X, C, L, D> {
    /// The table.
    pub state: &'a S,
    /// The state machine's executions.
    pub executions: &'a X,
    /// EKS.
    pub eks: &'a C,
    /// ELB.
    pub elb: &'a L,
    /// The account checks.
    pub doctor: &'a D,
}

/// Why okra refused or could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The cell or rollout does not exist (`NotFound`): `cell web`, `rollout X of cell web`.
    #[error("{0}")]
    NotFound(String),
    /// Not now (`Conflict`): a rollout runs, or the rollout is not in a state that takes this.
    #[error("{0}")]
    Conflict(String),
    /// A start the dispatcher did not make: skipped (`Conflict`) or failed (its error type).
    #[error("{}", .0.reason)]
    NotStarted(Box<CellResult>),
    /// What okra's functions report (AWS errors, an invalid stored spec, ...).
    #[error(transparent)]
    Okra(#[from] OkraError),
}

impl AppError {
    /// okra's name of the error (`NotFound`, `Conflict`, `InvalidSpec`, `Throttled`, ...).
    pub fn error_type(&self) -> &str {
        match self {
            Self::NotFound(_) => ErrorType::NotFound.as_ref(),
            Self::Conflict(_) => ErrorType::Conflict.as_ref(),
            Self::NotStarted(r) => match r.outcome {
                DispatchOutcome::Skipped => ErrorType::Conflict.as_ref(),
                _ => r
                    .error_type
                    .as_deref()
                    .unwrap_or(ErrorType::AwsError.as_ref()),
            },
            Self::Okra(e) => e.error_type(),
        }
    }
}

impl From<okra_core::validate::ValidationErrors> for AppError {
    fn from(e: okra_core::validate::ValidationErrors) -> Self {
        Self::Okra(e.into())
    }
}

/// What okra's answers return.
pub type AppResult<T> = std::result::Result<T, AppError>;

/// One cell of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellSummary {
    /// The cell.
    pub name: String,
    /// Its revision.
    pub revision: u64,
    /// RFC 3339.
    pub updated_at: String,
}

/// Every cell, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellList {
    /// By name.
    pub cells: Vec<CellSummary>,
}

/// One cell: its spec and what holds or blocks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellView {
    /// The spec.
    pub spec: CellSpec,
    /// Its revision (send it as `If-Match` to update).
    pub revision: u64,
    /// RFC 3339.
    pub updated_at: String,
    /// The rollout holding the cell, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<Lock>,
    /// The rollout running now: the lock's, or the cell's newest running execution (one just
    /// started holds no lock yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    /// The blocked versions.
    pub blocklist: Vec<Block>,
}

/// A stored spec's revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutOutput {
    /// The cell.
    pub cell: String,
    /// The new revision.
    pub revision: u64,
}

/// What storing a spec did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The cell and its new revision.
    pub output: PutOutput,
    /// Whether the cell is new.
    pub created: bool,
}

/// A start (or a retry): the dispatcher's result for the cell, and for a retry the version's
/// new attempt number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartOutput {
    /// What the dispatcher did for the cell.
    #[serde(flatten)]
    pub result: CellResult,
    /// `retry`: the version's new attempt number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// A cell's rollouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutList {
    /// Newest first.
    pub rollouts: Vec<Rollout>,
}

/// One rollout, its execution, the listener's weights now and its analysis samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutView {
    /// The record.
    pub rollout: Rollout,
    /// Its Step Functions execution (null: Step Functions no longer knows it).
    pub execution: Option<ExecutionInfo>,
    /// Where it waits, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitView>,
    /// The cell's listener by version, read now (none once the cell is deleted).
    #[serde(default)]
    pub weights: Vec<VersionWeight>,
    /// The analysis samples, oldest first.
    #[serde(default)]
    pub samples: Vec<Sample>,
}

/// Where a rollout waits, and for how long at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitView {
    /// A person, a timed pause, or an analysis between samples.
    pub kind: crate::state::WaitKind,
    /// The plan step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// When it ends (a timed pause) or times out (a wait for a person), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Whole seconds until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_seconds: Option<u64>,
}

/// A signal left for a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalOutput {
    /// The cell.
    pub cell: String,
    /// The rollout.
    pub rollout: String,
    /// The signal left for it (the state machine takes it at its next poll).
    pub signal: Signal,
}

/// Labels an execution started by a person carries (`caller`, `requestId`, `retryOf`).
pub type Labels = BTreeMap<String, String>;
