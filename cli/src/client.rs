//! What the commands ask of okra, one way or the other: in process over okra-aws's application
//! layer with the caller's own AWS rights (administrators, the local stack), or through okra's
//! API with `execute-api:Invoke` only (`--api-url`, a team's everyday use). Both answer with the
//! same types and report refusals the same way, so every command reads and prints alike.

use okra_aws::app::{
    CellList, CellView, ClusterList, PutOutput, RolloutList, RolloutView, SignalOutput,
    StartOutput, TargetGroupList,
};
use okra_aws::handlers::discover::DiscoverOutput;
use okra_aws::handlers::doctor::DoctorReport;
use okra_aws::state::StatePort as _;
use okra_core::Cell;
use okra_core::vocab::Signal;

use crate::api::ApiClient;
use crate::ctx::{Ctx, Target};
use crate::error::CliError;

/// okra, as a command reaches it.
#[derive(Debug)]
pub enum Client {
    /// okra-aws's handlers in this process, over the caller's AWS rights.
    InProcess(Box<Ctx>),
    /// okra's API (SigV4, `execute-api:Invoke`).
    Api(ApiClient),
}

/// The labels of an execution a person starts from the CLI in process (through the API, the API
/// labels it with the caller).
fn cli_labels() -> okra_aws::app::Labels {
    [("caller".to_owned(), "okra-cli".to_owned())].into()
}

impl Client {
    /// okra's API at `url`, signed with the standard chain's credentials (`target`'s region and
    /// endpoint settings apply to the credential chain only).
    pub async fn api(url: &str, target: &Target) -> Result<Self, CliError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = &target.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        Ok(Self::Api(ApiClient::new(url, &loader.load().await)?))
    }

    /// The client `global` asks for: the API when it names one (`--api-url`, `OKRA_API_URL`),
    /// else okra in this process.
    pub async fn new(api_url: Option<&str>, target: &Target) -> Result<Self, CliError> {
        match api_url {
            Some(url) => Self::api(url, target).await,
            None => Ok(Self::InProcess(Box::new(Ctx::new(target).await?))),
        }
    }

    /// The in-process context, for what only it can do (nothing through the API needs it).
    pub fn in_process(&self) -> Option<&Ctx> {
        match self {
            Self::InProcess(ctx) => Some(ctx),
            Self::Api(_) => None,
        }
    }

    /// Every cell, by name.
    pub async fn list_cells(&self) -> Result<CellList, CliError> {
        match self {
            Self::InProcess(ctx) => ctx.answer(ctx.okra().list_cells().await),
            Self::Api(api) => api.get("/cells").await,
        }
    }

    /// One cell.
    pub async fn get_cell(&self, cell: &str) -> Result<CellView, CliError> {
        match self {
            Self::InProcess(ctx) => ctx.answer(ctx.okra().get_cell(cell).await),
            Self::Api(api) => api.get(&format!("/cells/{cell}")).await,
        }
    }

    /// Stores a validated spec (the current revision, whatever it is).
    pub async fn put_cell(&self, cell: &Cell) -> Result<PutOutput, CliError> {
        match self {
            Self::InProcess(ctx) => Ok(ctx.answer(ctx.okra().put_cell(cell, None).await)?.output),
            Self::Api(api) => {
                let body = serde_json::to_value(cell.spec())
                    .map_err(|e| CliError::internal(format!("the spec does not serialize: {e}")))?;
                api.put(&format!("/cells/{}", cell.spec().name), body).await
            }
        }
    }

    /// Deletes a cell's spec.
    pub async fn delete_cell(&self, cell: &str) -> Result<(), CliError> {
        match self {
            Self::InProcess(ctx) => {
                ctx.require_state_machine()?;
                ctx.answer(ctx.okra().delete_cell(cell).await)
            }
            Self::Api(api) => api.delete(&format!("/cells/{cell}")).await,
        }
    }

    /// What a rollout would do now.
    pub async fn plan(&self, cell: &str) -> Result<DiscoverOutput, CliError> {
        match self {
            Self::InProcess(ctx) => ctx.answer(ctx.okra().plan(cell).await),
            Self::Api(api) => api.get(&format!("/cells/{cell}/plan")).await,
        }
    }

    /// The account checks of a stored cell.
    pub async fn doctor(&self, cell: &str) -> Result<DoctorReport, CliError> {
        match self {
            Self::InProcess(ctx) => ctx.answer(ctx.okra().doctor(cell).await),
            Self::Api(api) => api.get(&format!("/cells/{cell}/doctor")).await,
        }
    }

    /// The cell's clusters.
    pub async fn clusters(&self, cell: &str) -> Result<ClusterList, CliError> {
        match self {
            Self::InProcess(ctx) => ctx.answer(ctx.okra().clusters(cell).await),
            Self::Api(api) => api.get(&format!("/cells/{cell}/clusters")).await,
        }
    }

    /// The cell's target groups.
    pub async fn target_groups(&self, cell: &str) -> Result<TargetGroupList, CliError> {
        match self {
            Self::InProcess(ctx) => ctx.answer(ctx.okra().target_groups(cell).await),
            Self::Api(api) => api.get(&format!("/cells/{cell}/target-groups")).await,
        }
    }

    /// The cell's rollouts, newest first.
    pub async fn list_rollouts(&self, cell: &str, limit: usize) -> Result<RolloutList, CliError> {
        match self {
            Self::InProcess(ctx) => ctx.answer(ctx.okra().list_rollouts(cell, limit).await),
            Self::Api(api) => {
                api.get(&format!(
                    "/cells/{cell}/rollouts?limit={}",
                    limit.clamp(1, 100)
                ))
                .await
            }
        }
    }

    /// One rollout: record, execution, wait, weights, samples.
    pub async fn get_rollout(&self, cell: &str, id: &str) -> Result<RolloutView, CliError> {
        match self {
            Self::InProcess(ctx) => {
                ctx.require_state_machine()?;
                ctx.answer(ctx.okra().get_rollout(cell, id).await)
            }
            Self::Api(api) => api.get(&format!("/cells/{cell}/rollouts/{id}")).await,
        }
    }

    /// Whether rollout `id` of `cell` has a record yet (a rollout just started has none until
    /// its first state ran).
    pub async fn has_rollout(&self, cell: &str, id: &str) -> Result<bool, CliError> {
        match self {
            Self::InProcess(ctx) => Ok(ctx.state.get_rollout(cell, id).await?.is_some()),
            Self::Api(api) => {
                match api
                    .get::<serde_json::Value>(&format!("/cells/{cell}/rollouts/{id}"))
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e) if e.message.starts_with("NotFound:") => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Starts what is due for the cell now.
    pub async fn start(&self, cell: &str) -> Result<StartOutput, CliError> {
        match self {
            Self::InProcess(ctx) => {
                ctx.require_state_machine()?;
                ctx.answer(ctx.okra().start(cell, cli_labels()).await)
            }
            Self::Api(api) => api.post(&format!("/cells/{cell}/rollouts")).await,
        }
    }

    /// Leaves a signal for a running rollout.
    pub async fn signal(
        &self,
        cell: &str,
        id: &str,
        signal: Signal,
    ) -> Result<SignalOutput, CliError> {
        match self {
            Self::InProcess(ctx) => {
                ctx.require_state_machine()?;
                ctx.answer(ctx.okra().signal(cell, id, signal).await)
            }
            Self::Api(api) => {
                api.post(&format!(
                    "/cells/{cell}/rollouts/{id}/{}",
                    signal.path_segment()
                ))
                .await
            }
        }
    }

    /// Unblocks a rolled-back or failed rollout's version and starts again.
    pub async fn retry(&self, cell: &str, id: &str) -> Result<StartOutput, CliError> {
        match self {
            Self::InProcess(ctx) => {
                ctx.require_state_machine()?;
                ctx.answer(ctx.okra().retry(cell, id, cli_labels()).await)
            }
            Self::Api(api) => {
                api.post(&format!("/cells/{cell}/rollouts/{id}/retry"))
                    .await
            }
        }
    }

    /// The rollout a command means when it names none: the cell's running one (a rollout just
    /// started is found before it has a record), else its newest recorded rollout (history
    /// outlives a deleted cell).
    pub async fn newest(&self, cell: &str) -> Result<String, CliError> {
        if let Ok(CellView {
            running: Some(running),
            ..
        }) = self.get_cell(cell).await
        {
            return Ok(running);
        }
        let list = self.list_rollouts(cell, 1).await?;
        list.rollouts
            .into_iter()
            .next()
            .map(|r| r.execution)
            .ok_or_else(|| {
                CliError::new(format!("cell {cell} has no rollout yet")).hint(
                    "`okra plan <cell>` shows what a rollout would do; `okra rollout start \
                     <cell>` starts one",
                )
            })
    }
}
