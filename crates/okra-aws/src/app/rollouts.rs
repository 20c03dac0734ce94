//! Rollouts: list, show, start, signal, retry.

use serde_json::json;

use okra_core::vocab::{RolloutStatus, Trigger};

use super::*;
use crate::handlers::dispatch;

impl<S, X, C, L, D> Okra<'_, S, X, C, L, D>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    /// A cell's rollouts, newest first, at most `limit`. History outlives a deleted cell; an
    /// unknown cell without history is `NotFound`.
    pub async fn list_rollouts(&self, cell: &str, limit: usize) -> AppResult<RolloutList> {
        let rollouts = self.state.list_rollouts(cell, limit).await?;
        if rollouts.is_empty() && self.state.get_cell(cell).await?.is_none() {
            return Err(AppError::NotFound(format!("cell {cell}")));
        }
        Ok(RolloutList { rollouts })
    }

    async fn rollout(&self, cell: &str, id: &str) -> AppResult<Rollout> {
        self.state
            .get_rollout(cell, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("rollout {id} of cell {cell}")))
    }

    /// One rollout, its execution, the cell's weights now and the rollout's samples.
    pub async fn get_rollout(&self, cell: &str, id: &str) -> AppResult<RolloutView> {
        let rollout = self.rollout(cell, id).await?;
        let execution = self.executions.describe(id).await?;
        let wait = self.state.get_wait(cell, id).await?.map(|w| WaitView {
            left_seconds: w.left(std::time::SystemTime::now()),
            kind: w.kind,
            step: w.step,
            until: w.until,
        });
        let weights = match self.state.get_cell(cell).await? {
            Some(stored) => self.weights(&stored.spec).await?,
            None => Vec::new(),
        };
        Ok(RolloutView {
            rollout,
            execution,
            wait,
            weights,
            samples: self.samples(id).await?,
        })
    }

    /// Leaves a signal for a running rollout, and answers its wait for a person if it waits.
    pub async fn signal(&self, cell: &str, id: &str, signal: Signal) -> AppResult<SignalOutput> {
        let rollout = self.rollout(cell, id).await?;
        if rollout.status != RolloutStatus::Running {
            return Err(AppError::Conflict(format!(
                "rollout {id} is {}: only a running rollout takes signals",
                rollout.status
            )));
        }
        // Only a live execution can act on a signal: one that ended outside its own ends (the
        // finalizer records it soon) would take it and do nothing.
        match self.executions.describe(id).await? {
            Some(i) if i.is_running() => {}
            other => {
                return Err(AppError::Conflict(format!(
                    "rollout {id} has no running execution ({}): nothing would act on the \
                     signal; `okra rollout retry` starts a new execution once the rollout is \
                     recorded as failed",
                    other.map_or_else(|| "not found".to_string(), |i| i.status)
                )));
            }
        }
        // Where the rollout waits decides whether the signal can act: one that cannot is
        // refused and not stored (it would act later, where nobody meant it to).
        let wait = self.state.get_wait(cell, id).await?;
        okra_core::answer::acts(signal, wait.as_ref().map(|w| w.kind))
            .map_err(|why| AppError::Conflict(format!("rollout {id}: {why}")))?;
        self.state.put_signal(cell, id, signal).await?;
        // Every wait is a callback task: answer it (the state machine then takes the signal).
        // Between two callbacks of one wait, the next callback finds the signal and answers
        // itself at once; with no wait, the signal is taken after the step under way.
        if let Some(w) = wait {
            self.executions
                .send_task_success(&w.token, &json!({ "signal": signal }))
                .await?;
        }
        Ok(SignalOutput {
            cell: cell.to_string(),
            rollout: id.to_string(),
            signal,
        })
    }

    /// Unblocks a rolled-back or failed rollout's version and starts the cell again (labelled
    /// `retryOf`).
    pub async fn retry(&self, cell: &str, id: &str, mut labels: Labels) -> AppResult<StartOutput> {
        let rollout = self.rollout(cell, id).await?;
        // A record still `running` whose execution ended (the finalizer has not recorded it yet)
        // is as good as failed.
        let dead = rollout.status == RolloutStatus::Running
            && self
                .executions
                .describe(id)
                .await?
                .is_none_or(|i| !i.is_running());
        if !dead && !rollout.status.is_failure() {
            return Err(AppError::Conflict(format!(
                "rollout {id} is {}: only a rolled-back or failed rollout can be retried",
                rollout.status
            )));
        }
        self.stored(cell).await?;
        if let Some(holder) = self.running_holder(cell).await? {
            return Err(AppError::Conflict(format!(
                "cell {cell}: rollout {holder} is running; retry when it has ended"
            )));
        }
        let attempt = self.state.unblock(cell, &rollout.to).await?;
        labels.insert("retryOf".into(), id.to_string());
        self.start_attempt(cell, labels, Some(attempt)).await
    }

    /// Starts what is due for the cell now: the dispatcher for this one cell, trigger `api`.
    /// Started, already running, or nothing to do is an answer; skipped or failed is
    /// [`AppError::NotStarted`].
    pub async fn start(&self, cell: &str, labels: Labels) -> AppResult<StartOutput> {
        self.start_attempt(cell, labels, None).await
    }

    async fn start_attempt(
        &self,
        cell: &str,
        labels: Labels,
        attempt: Option<u32>,
    ) -> AppResult<StartOutput> {
        let request = dispatch::Request {
            trigger: Trigger::Api.to_string(),
            filter: dispatch::Filter::Named(vec![cell.to_string()]),
            labels,
        };
        let out =
            dispatch::dispatch(self.state, self.executions, self.eks, self.elb, request).await?;
        // The dispatcher answers for every cell it is given (an unknown one: `NotFound`).
        let Some(result) = out.results.into_iter().find(|r| r.cell == cell) else {
            return Err(AppError::NotFound(format!("cell {cell}")));
        };
        match result.outcome {
            DispatchOutcome::Started
            | DispatchOutcome::AlreadyRunning
            | DispatchOutcome::NothingToDo => Ok(StartOutput { result, attempt }),
            DispatchOutcome::Skipped | DispatchOutcome::Error => {
                Err(AppError::NotStarted(Box::new(result)))
            }
        }
    }
}
