//! `discover-clusters`: read the cell's clusters, target groups and listener, and decide.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use okra_core::Cell;
use okra_core::decision::{Outcome, decide};
use okra_core::model::{CurrentAction, ForwardStickiness, Observed};
use okra_core::spec::CellSpec;
use serde::{Deserialize, Serialize};

use crate::error::{OkraError, Result};
use crate::ports::{ClusterPort, LoadBalancerPort};

/// How many DescribeCluster calls run at once.
pub const DESCRIBE_CONCURRENCY: usize = 8;

/// The function's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscoverInput {
    /// The cell spec (validated here into a `Cell`: nothing is read for a bad spec).
    pub cell: CellSpec,
    /// Versions that failed a rollout of this cell.
    #[serde(default)]
    pub blocklist: BTreeSet<String>,
    /// The execution's labels. The `cluster` label (the EKS event's cluster) is described
    /// directly as well: the tagging API is eventually consistent, and the cluster that
    /// triggered the rollout may not be in its answer yet.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The label naming the cluster of the EKS event that triggered an execution.
pub const CLUSTER_LABEL: &str = "cluster";

/// The function's output: the decision and what discovery saw on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverOutput {
    /// The cell's name.
    pub cell: String,
    /// The decision, pending and ignored clusters, versions.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The owned action as read: what the first shift expects to find.
    pub action: CurrentAction,
    /// How many clusters were described: those the tagging API found for the selector, and the
    /// triggering event's cluster.
    pub clusters_seen: usize,
    /// The listener okra writes to.
    pub listener_arn: String,
    /// The rule okra writes to (null: the listener's default action).
    pub rule_arn: Option<String>,
    /// How the state machine waits for the readiness gate.
    pub readiness: ReadinessPlan,
    /// The cell's stickiness for every write (null: keep the listener's).
    pub stickiness: Option<ForwardStickiness>,
    /// The cell's version tag: shift-weights reads each member's cluster by it before a step.
    pub version_tag: String,
    /// `okra plan`: whether the cell's deployment windows let traffic move now, and if not,
    /// when the next weight step may run (none: the cell has no windows, or the state machine
    /// asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowView>,
    /// `okra plan`: the cell's target groups that are not serving and what retirement does with
    /// each (none: the state machine asked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retirement: Vec<RetirementView>,
}

/// One idle group's retirement, as `okra plan` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetirementView {
    /// The group's name.
    pub target_group: String,
    /// Its version.
    pub version: String,
    /// Its cluster.
    pub cluster: String,
    /// `kept`, `pending`, `baking`, `retire`, `foreign`.
    pub fate: String,
    /// When a baking group retires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl RetirementView {
    /// The views of a plan's groups that do not serve.
    pub fn of(plan: &okra_core::retire::Plan) -> Vec<Self> {
        use okra_core::retire::Fate;
        plan.groups
            .iter()
            .filter(|g| g.fate != Fate::Serving)
            .map(|g| Self {
                target_group: g.group.name.clone(),
                version: g.group.version.clone(),
                cluster: g.group.cluster.clone(),
                fate: g.fate.name().to_owned(),
                at: match g.fate {
                    Fate::Baking { until } => Some(crate::state::rfc3339(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(until),
                    )),
                    _ => None,
                },
            })
            .collect()
    }
}

/// The deployment windows as of now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowView {
    /// Traffic may move now.
    pub open: bool,
    /// Closed: when it opens (RFC 3339); absent when it does not within 400 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens: Option<String>,
}

impl WindowView {
    /// The view of a gate.
    pub fn of(gate: &okra_core::windows::Gate) -> Self {
        match gate {
            okra_core::windows::Gate::Open => Self {
                open: true,
                opens: None,
            },
            okra_core::windows::Gate::Closed { opens } => Self {
                open: false,
                opens: opens.map(crate::state::rfc3339),
            },
        }
    }
}

pub use okra_core::history::{READINESS_POLL_SECONDS, ReadinessPlan};

/// Runs discovery for one cell.
pub async fn handle<C: ClusterPort, L: LoadBalancerPort>(
    eks: &C,
    elb: &L,
    input: DiscoverInput,
) -> Result<DiscoverOutput> {
    let cell = input.cell.validate()?;
    discover(eks, elb, &cell, input.blocklist, &input.labels, None).await
}

/// Discovery, with the cell's target groups already found when the caller looked for many
/// cells' at once (the dispatcher: one tag query per 20 cells). The listener's groups that are
/// not among them are still looked up.
pub async fn discover<C: ClusterPort, L: LoadBalancerPort>(
    eks: &C,
    elb: &L,
    cell: &Cell,
    blocklist: BTreeSet<String>,
    labels: &BTreeMap<String, String>,
    prefetched: Option<Vec<okra_core::model::TargetGroup>>,
) -> Result<DiscoverOutput> {
    Ok(discover_seen(eks, elb, cell, blocklist, labels, prefetched)
        .await?
        .output)
}

/// Discovery's output, and what it saw: the cell's clusters (described, the selector applied)
/// and target groups, for the dispatcher's registration and retirement.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The output.
    pub output: DiscoverOutput,
    /// The cell's clusters.
    pub clusters: Vec<okra_core::model::Cluster>,
    /// The cell's target groups.
    pub target_groups: Vec<okra_core::model::TargetGroup>,
}

/// [`discover`], keeping what it saw.
pub async fn discover_seen<C: ClusterPort, L: LoadBalancerPort>(
    eks: &C,
    elb: &L,
    cell: &Cell,
    blocklist: BTreeSet<String>,
    labels: &BTreeMap<String, String>,
    prefetched: Option<Vec<okra_core::model::TargetGroup>>,
) -> Result<Discovered> {
    let listener = cell.ingress().listener().as_str();
    let rule = cell.ingress().rule().map(|r| r.as_str());

    // The listener and the clusters do not depend on each other: read them at the same time (in
    // AWS one round trip less before the decision; against moto, which gains nothing from
    // concurrent requests, not measurable: BENCHMARKS.md, cold start).
    let clusters = async {
        let mut names = eks.find_clusters(&cell.cluster_selector.match_tags).await?;
        if let Some(named) = labels.get(CLUSTER_LABEL)
            && !names.contains(named)
        {
            names.push(named.clone());
        }
        let described = futures::stream::iter(names.iter())
            .map(|n| eks.describe_cluster(n))
            .buffer_unordered(DESCRIBE_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        Ok::<_, OkraError>((names.len(), described))
    };
    let (owned, (clusters_seen, described)) =
        futures::try_join!(elb.read_action(listener, rule), clusters)?;
    let mut clusters: Vec<_> = described
        .into_iter()
        .flatten()
        .filter(|c| cell.cluster_selector.matches(&c.tags))
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));

    let serving_arns = owned.action.target_group_arns();
    let target_groups = match prefetched {
        None => elb.find_target_groups(&cell.name, &serving_arns).await?,
        Some(mut groups) => {
            let unknown: Vec<String> = serving_arns
                .iter()
                .filter(|a| !groups.iter().any(|g| &g.arn == *a))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                for g in elb.find_target_groups(&cell.name, &unknown).await? {
                    if !groups.iter().any(|x| x.arn == g.arn) {
                        groups.push(g);
                    }
                }
            }
            groups.sort_by(|a, b| a.arn.cmp(&b.arn));
            groups
        }
    };

    let observed = Observed {
        clusters,
        target_groups,
        action: owned.action.clone(),
        blocklist,
    };
    let outcome = decide(cell, &observed);
    tracing::info!(cell = %cell.name, decision = outcome.decision.kind().as_ref(), "decided");
    let output = DiscoverOutput {
        stickiness: cell.stickiness(),
        cell: cell.name.clone(),
        outcome,
        action: owned.action,
        clusters_seen,
        listener_arn: listener.to_string(),
        rule_arn: rule.map(str::to_string),
        readiness: cell.readiness_plan(),
        version_tag: cell.spec().version_tag.clone(),
        window: None,
        retirement: Vec::new(),
    };
    Ok(Discovered {
        output,
        clusters: observed.clusters,
        target_groups: observed.target_groups,
    })
}
