//! `dispatcher`: decide, per cell, whether a rollout execution must start, and start it.
//!
//! Input: an EventBridge event (a CloudTrail "AWS API Call via CloudTrail" of EKS, or a
//! "Scheduled Event"), or `{"cells": ["web"], "trigger": "api", "labels": {..}}` (`cells`
//! absent: all cells). Each chosen cell is discovered here first, so that a schedule costs no
//! state transitions while nothing changes; an execution starts only for a decision that does
//! something, under a name that is the same for every trigger of that decision
//! ([`decision_execution_name`]): duplicates are refused by Step Functions itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use futures::StreamExt;
use okra_core::decision::Decision;
use okra_core::model::{Cluster, CurrentAction};
use okra_core::naming::decision_execution_name;
use okra_core::nodes::groups_in_action;
use okra_core::record::{self, Holder};
use okra_core::spec::Registration;
use okra_core::vocab::Trigger;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::error::{OkraError, Result};
use crate::handlers::discover;
use crate::handlers::ensure;
use crate::handlers::lifecycle;
use crate::ports::{AutoScalingPort, ClusterPort, HubPort, LoadBalancerPort};
use crate::state::{EventsPort, ExecutionInput, ExecutionsPort, Started, StatePort, StoredCell};

/// How many cells are reconciled at once.
pub const CELL_CONCURRENCY: usize = 4;

mod request;

pub use request::*;

/// What happened to one cell.
pub use okra_core::vocab::DispatchOutcome;

/// One cell's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellResult {
    /// The cell.
    pub cell: String,
    /// What happened.
    pub outcome: DispatchOutcome,
    /// The execution's name (started, running, or holding the lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The decision's kind, when discovery ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// The error's stable name (outcome `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Argo CD registration (cells with `argocd`; the dispatcher function only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<Lifecycle<lifecycle::Registered>>,
    /// Target-group retirement (between rollouts; the dispatcher function only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire: Option<Lifecycle<lifecycle::Retired>>,
}

/// What a lifecycle task did, or why it failed (it never stops the cell's decision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum Lifecycle<T> {
    /// Done.
    Done(T),
    /// Failed.
    Failed {
        /// The error's stable name.
        error_type: String,
        /// The error.
        error: String,
    },
}

impl<T> Lifecycle<T> {
    fn of(r: Result<T>) -> Self {
        match r {
            Ok(t) => Self::Done(t),
            Err(e) => Self::Failed {
                error_type: e.error_type().to_string(),
                error: e.to_string(),
            },
        }
    }
}

/// The function's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchOutput {
    /// `schedule`, `eks-event`, `api`.
    pub trigger: String,
    /// Per cell, sorted by cell.
    pub results: Vec<CellResult>,
    /// Why no cell was looked at, when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A selector's tags.
type Tags = BTreeMap<String, String>;

/// A [`ClusterPort`] that runs each tag query and describes each cluster once per invocation,
/// for all cells (cells with the same selector share one query; a cluster in several cells is
/// described once).
struct SharedClusters<'a, C> {
    inner: &'a C,
    queries: Mutex<BTreeMap<Tags, Arc<OnceCell<Vec<String>>>>>,
    clusters: Mutex<BTreeMap<String, Arc<OnceCell<Option<Cluster>>>>>,
    /// The clusters found for many selectors at once ([`SharedClusters::prefetch`]), and the
    /// (key, value) pairs that query covered.
    prefetched: Option<Prefetched>,
}

/// Clusters with their tags, and the (key, value) pairs of the query that found them.
type Prefetched = (Vec<(String, Tags)>, BTreeSet<(String, String)>);

impl<C: ClusterPort> SharedClusters<'_, C> {
    /// Finds the clusters of all `selectors` with one tag query per key and 20 values: each
    /// selector's first tag (every cluster a selector matches carries it), the whole selector
    /// applied per cell afterwards. A failed query leaves those cells to their own.
    async fn prefetch(&mut self, selectors: &[&Tags]) {
        let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for sel in selectors {
            if let Some((k, v)) = sel.iter().next() {
                by_key.entry(k.clone()).or_default().insert(v.clone());
            }
        }
        let mut found = Vec::new();
        let mut covered = BTreeSet::new();
        for (key, values) in by_key {
            let values: Vec<String> = values.into_iter().collect();
            match self.inner.find_clusters_any(&key, &values).await {
                Ok(f) => {
                    found.extend(f);
                    covered.extend(values.into_iter().map(|v| (key.clone(), v)));
                }
                Err(e) => tracing::warn!(%key, error = %e, "prefetch of clusters failed"),
            }
        }
        self.prefetched = Some((found, covered));
    }
}

impl<C: ClusterPort> ClusterPort for SharedClusters<'_, C> {
    async fn find_clusters(&self, tags: &BTreeMap<String, String>) -> Result<Vec<String>> {
        if let (Some((found, covered)), Some((k, v))) = (&self.prefetched, tags.iter().next())
            && covered.contains(&(k.clone(), v.clone()))
        {
            return Ok(found
                .iter()
                .filter(|(_, t)| tags.iter().all(|(k, v)| t.get(k) == Some(v)))
                .map(|(n, _)| n.clone())
                .collect());
        }
        let query = {
            let mut m = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
            m.entry(tags.clone()).or_default().clone()
        };
        query
            .get_or_try_init(|| self.inner.find_clusters(tags))
            .await
            .cloned()
    }

    async fn describe_cluster(&self, name: &str) -> Result<Option<Cluster>> {
        let cell = {
            let mut m = self.clusters.lock().unwrap_or_else(PoisonError::into_inner);
            m.entry(name.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| self.inner.describe_cluster(name))
            .await
            .cloned()
    }

    async fn find_clusters_any(&self, key: &str, values: &[String]) -> Result<Vec<(String, Tags)>> {
        self.inner.find_clusters_any(key, values).await
    }

    async fn node_group_asgs(&self, cluster: &str) -> Result<Vec<String>> {
        self.inner.node_group_asgs(cluster).await
    }

    async fn tag_cluster(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.inner.tag_cluster(arn, tags).await
    }

    async fn untag_cluster(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.inner.untag_cluster(arn, keys).await
    }

    async fn ensure_access_entry(
        &self,
        cluster: &str,
        principal: &str,
        policy_arn: &str,
        namespaces: &[String],
    ) -> Result<()> {
        self.inner
            .ensure_access_entry(cluster, principal, policy_arn, namespaces)
            .await
    }

    async fn cluster_instances(
        &self,
        cluster: &str,
    ) -> Result<Vec<okra_core::nodes::NodeInstance>> {
        self.inner.cluster_instances(cluster).await
    }
}

fn result(cell: &str, outcome: DispatchOutcome, reason: impl Into<String>) -> CellResult {
    CellResult {
        cell: cell.to_string(),
        outcome,
        execution: None,
        decision: None,
        reason: reason.into(),
        error_type: None,
        argocd: None,
        retire: None,
    }
}

fn error_result(cell: &str, e: &OkraError) -> CellResult {
    CellResult {
        error_type: Some(e.error_type().to_string()),
        ..result(cell, DispatchOutcome::Error, e.to_string())
    }
}

/// The ports of the lifecycle tasks (registration, retirement): the dispatcher function's.
#[derive(Debug, Clone, Copy)]
pub struct LifecyclePorts<'a, A, H> {
    /// Auto Scaling: retired groups detached from node groups.
    pub autoscaling: &'a A,
    /// The Argo CD hubs' Kubernetes API.
    pub hub: &'a H,
}

struct Ctx<'a, S, X, C, L, E, A, H> {
    /// Registration and retirement run (the function's events and ticks; not the API's
    /// reconcile).
    lifecycle: Option<LifecyclePorts<'a, A, H>>,
    state: &'a S,
    executions: &'a X,
    /// Where a swept execution's rollout event goes (the dispatcher function's tick); `None`:
    /// stale locks are left to the next execution's takeover (the API's start).
    events: Option<&'a E>,
    eks: &'a SharedClusters<'a, C>,
    elb: &'a L,
    request: &'a Request,
    /// The cells' target groups, found for all of them at once (None: each cell looks).
    groups: Option<BTreeMap<String, Vec<okra_core::model::TargetGroup>>>,
}

async fn reconcile<S, X, C, L, E, A, H>(
    ctx: &Ctx<'_, S, X, C, L, E, A, H>,
    stored: StoredCell,
) -> CellResult
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    E: EventsPort,
    A: AutoScalingPort,
    H: HubPort,
{
    let name = stored.spec.name.clone();
    match try_reconcile(ctx, stored).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(cell = %name, error = %e, "cell not reconciled");
            error_result(&name, &e)
        }
    }
}

async fn try_reconcile<S, X, C, L, E, A, H>(
    ctx: &Ctx<'_, S, X, C, L, E, A, H>,
    stored: StoredCell,
) -> Result<CellResult>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    E: EventsPort,
    A: AutoScalingPort,
    H: HubPort,
{
    let spec = stored.spec.validate()?;
    let cell = spec.name.clone();

    if let Some(lock) = ctx.state.get_lock(&cell).await? {
        let info = ctx.executions.describe(&lock.execution).await?;
        let holder = record::holder(info.as_ref().map(|i| i.status.as_str()), lock.held_for());
        // The tick's sweep: a lock whose execution ended (its status change event lost, or not
        // delivered yet) is finalized as the event would, whatever the decision below.
        if holder == Holder::Stale
            && let Some(events) = ctx.events
        {
            let done = crate::handlers::state::finalize_stale(
                ctx.state,
                ctx.executions,
                events,
                &cell,
                &lock.execution,
                info.as_ref(),
                std::time::SystemTime::now(),
            )
            .await?;
            tracing::warn!(cell, execution = %lock.execution, finalized = done.finalized,
                reason = %done.reason, "swept a stale lock");
        }
        if holder == Holder::Live {
            return Ok(CellResult {
                execution: Some(lock.execution.clone()),
                ..result(
                    &cell,
                    DispatchOutcome::Skipped,
                    format!(
                        "running: execution {} holds the cell's lock",
                        lock.execution
                    ),
                )
            });
        }
    }

    // The blocked versions and the failed attempts, in one Query.
    let (blocks, failures) = ctx.state.blocks_and_failures(&cell).await?;
    let blocklist: BTreeSet<String> = blocks.into_iter().map(|b| b.version).collect();
    let seen = discover::discover_seen(
        ctx.eks,
        ctx.elb,
        &spec,
        blocklist.clone(),
        &ctx.request.labels,
        ctx.groups
            .as_ref()
            .map(|g| g.get(&cell).cloned().unwrap_or_default()),
    )
    .await?;
    let out = seen.output;
    let mut clusters = seen.clusters;
    let decision = out.outcome.decision;
    let kind = decision.kind().to_string();
    // Between rollouts, the groups of versions that no longer serve retire (before the
    // registration, which then removes the retired clusters' secrets).
    let retired = match (&ctx.lifecycle, ctx.events, &decision) {
        (Some(ports), Some(events), Decision::NothingToDo { .. }) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let discovered = clusters.clone();
            Some(Lifecycle::of(
                lifecycle::retire(
                    lifecycle::RetirePorts {
                        eks: ctx.eks,
                        elb: ctx.elb,
                        autoscaling: ports.autoscaling,
                        events,
                    },
                    lifecycle::RetireInput {
                        cell: &spec,
                        action: &out.action,
                        groups: &seen.target_groups,
                        clusters: &discovered,
                        blocked: &blocklist,
                        now,
                    },
                    &mut clusters,
                )
                .await,
            ))
        }
        _ => None,
    };
    // The cell's clusters join Argo CD before any rollout of theirs starts.
    let registered = match (&ctx.lifecycle, &spec.argocd) {
        (Some(ports), Some(argo)) => {
            let weights = match &out.action {
                CurrentAction::Forward(f) => f.serving(),
                CurrentAction::Other { .. } => BTreeSet::new(),
            };
            let serving: BTreeSet<&str> = seen
                .target_groups
                .iter()
                .filter(|g| weights.contains(g.arn.as_str()))
                .map(|g| g.cluster.as_str())
                .collect();
            Some(Lifecycle::of(
                lifecycle::register(ctx.eks, ports.hub, &spec, argo, &clusters, &serving).await,
            ))
        }
        _ => None,
    };
    let with_lifecycle = |r: CellResult| CellResult {
        argocd: registered.clone(),
        retire: retired.clone(),
        ..r
    };
    if let Decision::NothingToDo { reason } = &decision {
        let mut reason = reason.clone();
        if spec.target_group.registration == Registration::Instances {
            reason.push_str(&sync_serving(ctx, &cell, &out.action).await?);
        }
        return Ok(with_lifecycle(CellResult {
            decision: Some(kind),
            ..result(&cell, DispatchOutcome::NothingToDo, reason)
        }));
    }
    // Automatic attempts back off after failures that did not block (a rollback never waits).
    if !matches!(decision, Decision::Rollback { .. })
        && let Some(v) = record::versions(&decision)
        && let Some(f) = failures.get(&v.to)
        && let Err(wait) =
            okra_core::attempts::may_start(f.count, f.since_last(std::time::SystemTime::now()))
    {
        return Ok(with_lifecycle(CellResult {
            decision: Some(kind),
            ..result(
                &cell,
                DispatchOutcome::Skipped,
                format!(
                    "{}: version {} failed {} automatic attempt(s) (last: {}); the next attempt \
                     in {} (backoff)",
                    decision.kind(),
                    v.to,
                    f.count,
                    f.last_reason,
                    humantime::format_duration(std::time::Duration::from_secs(
                        wait.as_secs().div_ceil(60) * 60
                    ))
                ),
            )
        }));
    }
    let input = ExecutionInput {
        cell: spec.into_spec(),
        trigger: ctx.request.trigger.clone(),
        labels: ctx.request.labels.clone(),
    };
    let input = serde_json::to_value(&input).map_err(|e| {
        OkraError::InvalidSpec(format!("the execution input does not serialize: {e}"))
    })?;
    // The name carries the cell's generation, which moves on whenever an execution of the cell
    // ends: a duplicate trigger of a running rollout gets the running execution's name (and the
    // lock), while every new execution, after any kind of end, gets a name of its own.
    let mut generation = ctx.state.generation(&cell).await?;
    for _ in 0..2 {
        let Some(execution) = decision_execution_name(&cell, &decision, generation) else {
            return Ok(result(
                &cell,
                DispatchOutcome::NothingToDo,
                "the decision does nothing",
            ));
        };
        let with = |outcome, reason: String| {
            with_lifecycle(CellResult {
                execution: Some(execution.clone()),
                decision: Some(kind.clone()),
                ..result(&cell, outcome, reason)
            })
        };
        match ctx.executions.start(&execution, &input).await? {
            Started::Started { arn } => {
                tracing::info!(cell, execution, arn, "started");
                return Ok(with(
                    DispatchOutcome::Started,
                    format!("{kind}: started {arn}"),
                ));
            }
            Started::AlreadyExists { .. } => match ctx.executions.describe(&execution).await? {
                // An execution that ended without releasing the lock (stopped, or failed outside
                // every Catch) left the generation behind: move it on, once, and start.
                Some(i) if !i.is_running() => {
                    tracing::warn!(
                        cell,
                        execution,
                        status = i.status,
                        "name taken by a closed execution"
                    );
                    generation = ctx.state.advance_generation(&cell, generation).await?;
                }
                _ => {
                    return Ok(with(
                        DispatchOutcome::AlreadyRunning,
                        format!("{kind}: execution {execution} is running"),
                    ));
                }
            },
        }
    }
    Err(OkraError::Conflict(
        format!("cell {cell}: the execution generation keeps moving ({generation}); try again"),
        None,
    ))
}

/// `registration: instances` between rollouts: each group of the owned forward action gets its
/// cluster's instances as they are now (Karpenter and Auto Scaling replace nodes all the time).
/// A cluster whose instances cannot be synced is said in the result; the others go on.
async fn sync_serving<S, X, C, L, E, A, H>(
    ctx: &Ctx<'_, S, X, C, L, E, A, H>,
    cell: &str,
    action: &CurrentAction,
) -> Result<String>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    E: EventsPort,
    A: AutoScalingPort,
    H: HubPort,
{
    let groups = match &ctx.groups {
        Some(g) => g.get(cell).cloned().unwrap_or_default(),
        None => {
            ctx.elb
                .find_target_groups(cell, &action.target_group_arns())
                .await?
        }
    };
    let (mut added, mut removed, mut problems) = (0, 0, Vec::new());
    let serving = groups_in_action(action, &groups);
    for g in &serving {
        match ensure::sync_instances(ctx.eks, ctx.elb, &g.cluster, &g.arn).await {
            Ok(plan) => {
                added += plan.register.len();
                removed += plan.deregister.len();
            }
            Err(e) => {
                tracing::warn!(cell, cluster = %g.cluster, error = %e, "instances not synced");
                problems.push(format!("{}: {e}", g.cluster));
            }
        }
    }
    let mut out = format!(
        "; instances synced in {} group(s): {added} registered, {removed} deregistered",
        serving.len()
    );
    if !problems.is_empty() {
        out.push_str(&format!("; not synced: {}", problems.join("; ")));
    }
    Ok(out)
}

/// Runs the dispatcher over an event (the function's input), read by [`parse_request`]. Every
/// cell it looks at has a stale lock swept: finalized as its execution's status change event
/// would (`events` gets the rollout's event).
pub async fn handle<S, X, C, L, E, A, H>(
    state: &S,
    executions: &X,
    eks: &C,
    elb: &L,
    events: &E,
    lifecycle: LifecyclePorts<'_, A, H>,
    event: Value,
) -> Result<DispatchOutput>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    E: EventsPort,
    A: AutoScalingPort,
    H: HubPort,
{
    let request = parse_request(&event)?;
    run(
        state,
        executions,
        eks,
        elb,
        Some(events),
        Some(lifecycle),
        request,
    )
    .await
}

/// Runs the dispatcher over a request already read (the application layer's entry: no JSON).
/// Stale locks are left to the next execution's takeover.
pub async fn dispatch<S, X, C, L>(
    state: &S,
    executions: &X,
    eks: &C,
    elb: &L,
    request: Request,
) -> Result<DispatchOutput>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
{
    run::<S, X, C, L, crate::eventbridge::EventBridge, crate::ports::Unset, crate::ports::Unset>(
        state, executions, eks, elb, None, None, request,
    )
    .await
}

async fn run<S, X, C, L, E, A, H>(
    state: &S,
    executions: &X,
    eks: &C,
    elb: &L,
    events: Option<&E>,
    lifecycle: Option<LifecyclePorts<'_, A, H>>,
    request: Request,
) -> Result<DispatchOutput>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    E: EventsPort,
    A: AutoScalingPort,
    H: HubPort,
{
    let mut results = Vec::new();
    let cells: Vec<StoredCell> = match &request.filter {
        Filter::Nothing(why) => {
            tracing::info!(why, "no cell concerned");
            return Ok(DispatchOutput {
                trigger: request.trigger,
                results,
                note: Some(why.clone()),
            });
        }
        Filter::Named(names) => {
            let mut cells = Vec::new();
            let names: BTreeSet<&String> = names.iter().collect();
            for n in names {
                match state.get_cell(n).await {
                    Ok(Some(c)) => cells.push(c),
                    Ok(None) => {
                        results.push(error_result(n, &OkraError::NotFound(format!("cell {n}"))))
                    }
                    Err(e) => results.push(error_result(n, &e)),
                }
            }
            cells
        }
        filter => {
            // A retagged cluster's tags now: the cells it joins, and those it may have left.
            let now = match filter {
                Filter::Retagged { cluster, .. } => eks
                    .describe_cluster(cluster)
                    .await?
                    .map(|c| c.tags)
                    .unwrap_or_default(),
                _ => BTreeMap::new(),
            };
            state
                .list_cells()
                .await?
                .into_iter()
                .filter(|c| filter.selects(&c.spec.name, &c.spec.cluster_selector, &now))
                .collect()
        }
    };
    let note = (cells.is_empty() && results.is_empty()).then(|| "no cell concerned".to_string());
    let mut shared = SharedClusters {
        inner: eks,
        queries: Mutex::default(),
        clusters: Mutex::default(),
        prefetched: None,
    };
    // Many cells: their clusters and target groups with a tag query per 20 cells, not per cell.
    let mut groups = None;
    if cells.len() > 1 {
        let selectors: Vec<&Tags> = cells
            .iter()
            .map(|c| &c.spec.cluster_selector.match_tags)
            .collect();
        shared.prefetch(&selectors).await;
        let names: Vec<String> = cells.iter().map(|c| c.spec.name.clone()).collect();
        match elb.find_cells_target_groups(&names).await {
            Ok(found) => {
                let mut by_cell: BTreeMap<String, Vec<_>> = BTreeMap::new();
                for (cell, g) in found {
                    by_cell.entry(cell).or_default().push(g);
                }
                groups = Some(by_cell);
            }
            Err(e) => tracing::warn!(error = %e, "prefetch of target groups failed"),
        }
    }
    let ctx = Ctx {
        lifecycle,
        state,
        executions,
        events,
        eks: &shared,
        elb,
        request: &request,
        groups,
    };
    let done: Vec<CellResult> = futures::stream::iter(cells)
        .map(|c| reconcile(&ctx, c))
        .buffer_unordered(CELL_CONCURRENCY)
        .collect()
        .await;
    results.extend(done);
    results.sort_by(|a, b| a.cell.cmp(&b.cell));
    Ok(DispatchOutput {
        trigger: request.trigger,
        results,
        note,
    })
}
