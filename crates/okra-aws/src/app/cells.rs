//! Cells: list, show, store, delete, plan, check.

use std::collections::BTreeSet;

use okra_core::Cell;
use okra_core::record::{self, Holder};

use super::*;
use crate::handlers::discover::{self, DiscoverOutput};
use crate::handlers::doctor::DoctorReport;

impl<S, X, C, L, D> Okra<'_, S, X, C, L, D>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    /// The stored spec of `cell`, or `NotFound`.
    pub(super) async fn stored(&self, cell: &str) -> AppResult<crate::state::StoredCell> {
        self.state
            .get_cell(cell)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("cell {cell}")))
    }

    /// Every cell, by name.
    pub async fn list_cells(&self) -> AppResult<CellList> {
        let mut cells: Vec<CellSummary> = self
            .state
            .list_cells()
            .await?
            .into_iter()
            .map(|c| CellSummary {
                name: c.spec.name,
                revision: c.revision,
                updated_at: c.updated_at,
            })
            .collect();
        cells.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(CellList { cells })
    }

    /// One cell, with its lock and blocked versions.
    pub async fn get_cell(&self, cell: &str) -> AppResult<CellView> {
        let stored = self.stored(cell).await?;
        let lock = self.state.get_lock(cell).await?;
        let running = match &lock {
            Some(l) => Some(l.execution.clone()),
            None => self
                .executions
                .running(&format!("{cell}--"))
                .await?
                .into_iter()
                .next(),
        };
        Ok(CellView {
            spec: stored.spec,
            revision: stored.revision,
            updated_at: stored.updated_at,
            lock,
            running,
            blocklist: self.state.blocklist(cell).await?,
        })
    }

    /// Stores a validated cell, on the stored `expected` revision when one is given (optimistic
    /// locking; none: the current one, whatever it is). Refused (`Conflict`) when another cell
    /// owns the same listener (and rule).
    pub async fn put_cell(&self, cell: &Cell, expected: Option<u64>) -> AppResult<Stored> {
        let (expected, created) = match expected {
            Some(n) => (Some(n), false),
            None => {
                let current = self.state.get_cell(&cell.name).await?.map(|c| c.revision);
                (current, current.is_none())
            }
        };
        self.listener_free(cell).await?;
        self.not_the_controllers(cell).await?;
        let revision = self.state.put_cell(cell.spec(), expected).await?;
        Ok(Stored {
            output: PutOutput {
                cell: cell.name.clone(),
                revision,
            },
            created,
        })
    }

    /// Two cells writing the same forward action would undo each other's steps (each would see
    /// the other's write as drift, or worse, overwrite it): a cell whose listener (and rule)
    /// another stored cell already owns is refused. The check is made against the table before
    /// the write; two writes racing for the same listener can both pass it (the window is one
    /// request), which the state machine's drift check then stops at the first step.
    async fn listener_free(&self, cell: &Cell) -> AppResult<()> {
        let listener = cell.ingress().listener().as_str();
        let rule = cell.ingress().rule().map(|r| r.as_str());
        let owner = self.state.list_cells().await?.into_iter().find(|c| {
            c.spec.name != cell.name
                && c.spec
                    .ingress
                    .listener()
                    .is_some_and(|(_, l)| l == listener)
                && c.spec.ingress.rule_arn() == rule
        });
        match owner {
            None => Ok(()),
            Some(c) => Err(AppError::Conflict(format!(
                "ingress: cell {} already owns {}; two cells cannot share one forward action",
                c.spec.name,
                rule.map_or_else(|| format!("listener {listener}"), |r| format!("rule {r}")),
            ))),
        }
    }

    /// A load balancer, listener or rule aws-load-balancer-controller manages would have okra's
    /// weights set back at its next reconcile: such a cell is refused (`InvalidSpec`, naming the
    /// tag; [`okra_core::owner`]). One DescribeTags.
    async fn not_the_controllers(&self, cell: &Cell) -> AppResult<()> {
        let tagged = match self.elb.resource_tags(&ingress_resources(cell)).await {
            Ok(tagged) => tagged,
            // A listener (rule, load balancer) that does not exist carries no tag; the doctor
            // and the rollouts report it where it matters.
            Err(OkraError::ListenerNotFound(..) | OkraError::RuleNotFound(..)) => return Ok(()),
            Err(OkraError::Aws { code, .. }) if code == "LoadBalancerNotFound" => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match okra_core::owner::controller_owned(&tagged) {
            None => Ok(()),
            Some(owned) => Err(OkraError::InvalidSpec(owned.message(&ingress_field(cell))).into()),
        }
    }

    /// The execution holding the cell's lock, when it runs.
    pub(super) async fn running_holder(&self, cell: &str) -> AppResult<Option<String>> {
        let Some(lock) = self.state.get_lock(cell).await? else {
            return Ok(None);
        };
        let info = self.executions.describe(&lock.execution).await?;
        let status = info.as_ref().map(|i| i.status.as_str());
        let live = record::holder(status, lock.held_for()) == Holder::Live;
        Ok(live.then_some(lock.execution))
    }

    /// Deletes a cell's spec; not while a rollout of it runs.
    pub async fn delete_cell(&self, cell: &str) -> AppResult<()> {
        if let Some(holder) = self.running_holder(cell).await? {
            return Err(AppError::Conflict(format!(
                "cell {cell}: rollout {holder} is running; abort it or wait for it to end"
            )));
        }
        if !self.state.delete_cell(cell).await? {
            return Err(AppError::NotFound(format!("cell {cell}")));
        }
        Ok(())
    }

    /// A dry run: discovery and the decision, nothing written or started.
    pub async fn plan(&self, cell: &str) -> AppResult<DiscoverOutput> {
        let stored = self.stored(cell).await?;
        let blocklist: BTreeSet<String> = self
            .state
            .blocklist(cell)
            .await?
            .into_iter()
            .map(|b| b.version)
            .collect();
        let cell = stored.spec.validate()?;
        let mut out =
            discover::discover(self.eks, self.elb, &cell, blocklist, &Labels::new(), None).await?;
        // When the next weight step may run (the cell's deployment windows).
        if let Some(w) = &cell.spec().windows
            && let Ok(gate) = okra_core::windows::gate(w, std::time::SystemTime::now())
        {
            out.window = Some(discover::WindowView::of(&gate));
        }
        // What retirement does with each group out of traffic.
        let arns = out.action.target_group_arns();
        let groups = self.elb.find_target_groups(&cell.name, &arns).await?;
        if let Some(plan) = self.retirement(cell.spec(), &groups).await? {
            out.retirement = discover::RetirementView::of(&plan);
        }
        Ok(out)
    }

    /// The account checks of the stored cell (read only).
    pub async fn doctor(&self, cell: &str) -> AppResult<DoctorReport> {
        let cell = self.stored(cell).await?.spec.validate()?;
        Ok(self.doctor.check(&cell).await?)
    }
}

/// The cell's load balancer, listener and rule (if any), in that order.
pub(crate) fn ingress_resources(cell: &Cell) -> Vec<String> {
    let listener = cell.ingress().listener();
    let mut arns = vec![
        listener.parts().load_balancer_arn(),
        listener.as_str().to_string(),
    ];
    arns.extend(cell.ingress().rule().map(|r| r.as_str().to_string()));
    arns
}

/// The spec field that names the cell's ingress: its rule, else its listener.
fn ingress_field(cell: &Cell) -> String {
    match (cell.ingress().kind(), cell.ingress().rule()) {
        (_, Some(_)) => "ingress.alb.ruleArn".to_string(),
        (okra_core::spec::LoadBalancerKind::Alb, None) => "ingress.alb.listenerArn".to_string(),
        (okra_core::spec::LoadBalancerKind::Nlb, None) => "ingress.nlb.listenerArn".to_string(),
    }
}
