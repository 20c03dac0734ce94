//! In-memory ports for tests: [`FakeEks`], [`FakeElb`], [`FakeAutoScaling`], and for the state
//! table, executions, events and schedules [`FakeState`], [`FakeExecutions`], [`FakeEvents`] and
//! [`FakeSchedules`].
//!
//! Each keeps state the way its AWS service would (clusters and node groups; listeners, rules,
//! target groups with tags and health; Auto Scaling attachments) and counts **port calls**, by
//! trait method name (`"read_action"`, `"find_clusters"`, ...): what a handler asked of the port.
//! What those calls cost in AWS requests (pages, batches, per-operation counts) is the adapters'
//! and is measured at the HTTP layer, where the strict moto counts each request
//! (`tests/e2e/api_calls.rs`), not supposed here.
//!
//! Faults: [`Meter::fail_next`] makes the next N calls of a port method fail with an error of the
//! test's choosing (throttling, say); [`FakeElb::drop_next_writes`] makes writes report success
//! without applying (so that read-back verification fails); [`FakeElb::set_forward`] is someone
//! else editing the listener.
//!
//! Compiled for the crate's own tests and with the `fakes` feature.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use okra_core::model::{
    Cluster, ClusterStatus, CurrentAction, ForwardAction, TAG_CELL, TAG_CLUSTER, TAG_VERSION,
    TargetGroup,
};
use okra_core::vocab::{ExecutionStatus, RolloutStatus};

use crate::error::{OkraError, Result};
use crate::ports::{
    AutoScalingPort, ClusterPort, LoadBalancerPort, NewTargetGroup, Owned, TargetHealth,
};
use crate::state::StateOutput;

/// The account of every ARN the fakes make.
pub const ACCOUNT: &str = "123456789012";
/// The region of every ARN the fakes make.
pub const REGION: &str = "eu-west-1";

mod autoscaling;
mod eks;
mod elb;
mod events;
mod executions;
mod hub;
mod schedules;
mod state;

pub use autoscaling::*;
pub use eks::*;
pub use elb::*;
pub use events::*;
pub use executions::*;
pub use hub::*;
pub use schedules::*;
pub use state::*;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes the error of an injected fault (`OkraError` is not `Clone`).
pub type MakeError = Arc<dyn Fn() -> OkraError + Send + Sync>;

/// Call counts and injected faults of one fake.
#[derive(Default)]
pub struct Meter {
    calls: Mutex<BTreeMap<&'static str, usize>>,
    faults: Mutex<BTreeMap<String, VecDeque<MakeError>>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("calls", &*lock(&self.calls))
            .field(
                "faults",
                &lock(&self.faults)
                    .iter()
                    .map(|(k, v)| (k.clone(), v.len()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish()
    }
}

impl Meter {
    /// Counts a call of port method `method` and returns the injected fault, if one is due.
    fn enter(&self, method: &'static str) -> Result<()> {
        *lock(&self.calls).entry(method).or_default() += 1;
        let fault = lock(&self.faults)
            .get_mut(method)
            .and_then(VecDeque::pop_front);
        match fault {
            Some(make) => Err(make()),
            None => Ok(()),
        }
    }

    /// How many times the port method was called (failed calls included).
    pub fn calls(&self, method: &str) -> usize {
        lock(&self.calls).get(method).copied().unwrap_or(0)
    }

    /// All port calls.
    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    /// Port calls by method, for messages.
    pub fn call_counts(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.calls).clone()
    }

    /// Forgets all counts (not the faults).
    pub fn reset_counts(&self) {
        lock(&self.calls).clear();
    }

    /// The next `n` calls of port method `method` fail with `make()`; the call is counted and
    /// nothing else happens.
    pub fn fail_next(
        &self,
        method: &str,
        n: usize,
        make: impl Fn() -> OkraError + Send + Sync + 'static,
    ) {
        let make: MakeError = Arc::new(make);
        let mut faults = lock(&self.faults);
        let q = faults.entry(method.to_string()).or_default();
        for _ in 0..n {
            q.push_back(make.clone());
        }
    }

    /// The next `n` calls of `method` fail as AWS throttling does ([`OkraError::Throttled`]).
    pub fn throttle_next(&self, method: &str, n: usize) {
        self.fail_next(method, n, || {
            OkraError::from_code("Throttling".into(), "Rate exceeded".into())
        });
    }
}

use crate::state::{
    Block, EventsPort, ExecutionInfo, ExecutionsPort, Failures, HistoryEntry, Lock, Rollout,
    RolloutEvent, SampleSchedule, SchedulesPort, Signal, Started, StatePort, StoredCell, Wait,
    WaitSamples,
};
