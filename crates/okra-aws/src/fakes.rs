//! In-memory ports for tests: [`FakeEks`], [`FakeElb`], [`FakeAutoScaling`], and for the state
//! table, executions and events [`FakeState`], [`FakeExecutions`] and [`FakeEvents`].
//!
//! Each keeps state the way its AWS service would (clusters and node groups; listeners, rules,
//! target groups with tags and health; Auto Scaling attachments) and counts two things:
//!
//! - **port calls**, by trait method name (`"read_action"`, `"find_clusters"`, ...): what a
//!   handler asked of the port;
//! - **API calls**, by AWS operation name (`"ListClusters"`, `"DescribeTags"`, ...): what the
//!   real adapter would have sent for that port call, paginating and batching as it does (100
//!   clusters per ListClusters page, 400 groups per DescribeTargetGroups page, 20 ARNs per
//!   DescribeTags).
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

use crate::elb::DESCRIBE_TAGS_BATCH;
use crate::error::{OkraError, Result};
use crate::ports::{
    AutoScalingPort, ClusterPort, LoadBalancerPort, NewTargetGroup, Owned, TargetHealth,
};
use crate::tagging::{RESOURCES_PER_PAGE, VALUES_PER_FILTER};

/// The account of every ARN the fakes make.
pub const ACCOUNT: &str = "123456789012";
/// The region of every ARN the fakes make.
pub const REGION: &str = "eu-west-1";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes the error of an injected fault (`OkraError` is not `Clone`).
pub type MakeError = Arc<dyn Fn() -> OkraError + Send + Sync>;

/// Call counts and injected faults of one fake.
#[derive(Default)]
pub struct Meter {
    calls: Mutex<BTreeMap<&'static str, usize>>,
    api: Mutex<BTreeMap<&'static str, usize>>,
    faults: Mutex<BTreeMap<String, VecDeque<MakeError>>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("calls", &*lock(&self.calls))
            .field("api", &*lock(&self.api))
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

    /// Counts `n` calls of AWS operation `op`.
    fn api(&self, op: &'static str, n: usize) {
        if n > 0 {
            *lock(&self.api).entry(op).or_default() += n;
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

    /// How many AWS `op` calls (`"ListClusters"`, `"DescribeTags"`, ...) the real adapter would
    /// have made for the port calls so far (calls failed by an injected fault are not counted).
    pub fn api_calls(&self, op: &str) -> usize {
        lock(&self.api).get(op).copied().unwrap_or(0)
    }

    /// All AWS calls.
    pub fn total_api_calls(&self) -> usize {
        lock(&self.api).values().sum()
    }

    /// Port calls by method, for messages.
    pub fn call_counts(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.calls).clone()
    }

    /// AWS calls by operation, for messages.
    pub fn api_counts(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.api).clone()
    }

    /// Forgets all counts (not the faults).
    pub fn reset_counts(&self) {
        lock(&self.calls).clear();
        lock(&self.api).clear();
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

// ---------------------------------------------------------------------------------------------
// EKS
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct EksState {
    clusters: BTreeMap<String, Cluster>,
    node_groups: BTreeMap<String, Vec<String>>,
    /// Cluster → its EC2 instances (found by tag).
    instances: BTreeMap<String, Vec<String>>,
    /// Listed, but gone by the time they are described.
    vanishing: BTreeSet<String>,
    /// Not yet in the tagging API's answers (it is eventually consistent).
    lagging: BTreeSet<String>,
}

/// EKS in memory. `find_clusters` pages like the tagging API's GetResources (100 matches a
/// page; an empty answer is one page).
#[derive(Debug, Default)]
pub struct FakeEks {
    state: Mutex<EksState>,
    /// Counts and faults.
    pub meter: Meter,
}

/// How many GetResources pages the tagging API answers `n` matches in (an empty answer is one
/// page).
fn pages(n: usize) -> usize {
    n.div_ceil(usize::try_from(RESOURCES_PER_PAGE).unwrap_or(100))
        .max(1)
}

/// A cluster with a status and tags (no VPC).
pub fn cluster(name: &str, status: ClusterStatus, tags: &[(&str, &str)]) -> Cluster {
    Cluster {
        name: name.to_string(),
        status,
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        vpc_id: None,
    }
}

impl FakeEks {
    /// No clusters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a cluster.
    pub fn add_cluster(&self, c: Cluster) -> &Self {
        lock(&self.state).clusters.insert(c.name.clone(), c);
        self
    }

    /// Adds an ACTIVE cluster in `vpc-1` with these tags.
    pub fn add_active(&self, name: &str, tags: &[(&str, &str)]) -> &Self {
        let mut c = cluster(name, ClusterStatus::Active, tags);
        c.vpc_id = Some("vpc-1".to_string());
        self.add_cluster(c)
    }

    /// Sets a cluster's status.
    pub fn set_status(&self, name: &str, status: ClusterStatus) {
        if let Some(c) = lock(&self.state).clusters.get_mut(name) {
            c.status = status;
        }
    }

    /// Deletes a cluster.
    pub fn remove_cluster(&self, name: &str) {
        let mut s = lock(&self.state);
        s.clusters.remove(name);
        s.node_groups.remove(name);
    }

    /// The cluster stays in the tagging API's answer but DescribeCluster no longer finds it (deleted between
    /// the two calls).
    pub fn vanish_on_describe(&self, name: &str) {
        lock(&self.state).vanishing.insert(name.to_string());
    }

    /// The tagging API does not know the cluster yet (eventually consistent); DescribeCluster does.
    pub fn lag_in_tag_search(&self, name: &str) {
        lock(&self.state).lagging.insert(name.to_string());
    }

    /// The Auto Scaling groups of the cluster's managed node groups.
    pub fn set_node_group_asgs(&self, cluster: &str, asgs: &[&str]) {
        lock(&self.state).node_groups.insert(
            cluster.to_string(),
            asgs.iter().map(|a| (*a).to_string()).collect(),
        );
    }

    /// The cluster's EC2 instances (as DescribeInstances finds them by the cluster's tags).
    pub fn set_instances(&self, cluster: &str, ids: &[&str]) {
        lock(&self.state).instances.insert(
            cluster.to_string(),
            ids.iter().map(|i| (*i).to_string()).collect(),
        );
    }

    /// The cluster names, sorted.
    pub fn cluster_names(&self) -> Vec<String> {
        lock(&self.state).clusters.keys().cloned().collect()
    }
}

impl ClusterPort for FakeEks {
    async fn find_clusters(&self, tags: &BTreeMap<String, String>) -> Result<Vec<String>> {
        self.meter.enter("find_clusters")?;
        let s = lock(&self.state);
        let names: Vec<String> = s
            .clusters
            .values()
            .filter(|c| !s.lagging.contains(&c.name))
            .filter(|c| tags.iter().all(|(k, v)| c.tags.get(k) == Some(v)))
            .map(|c| c.name.clone())
            .collect();
        self.meter.api("GetResources", pages(names.len()));
        Ok(names)
    }

    async fn find_clusters_any(
        &self,
        key: &str,
        values: &[String],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>> {
        self.meter.enter("find_clusters_any")?;
        let s = lock(&self.state);
        let found: Vec<(String, BTreeMap<String, String>)> = s
            .clusters
            .values()
            .filter(|c| !s.lagging.contains(&c.name))
            .filter(|c| c.tags.get(key).is_some_and(|v| values.contains(v)))
            .map(|c| (c.name.clone(), c.tags.clone()))
            .collect();
        self.meter.api(
            "GetResources",
            values.len().div_ceil(VALUES_PER_FILTER).max(1),
        );
        Ok(found)
    }

    async fn describe_cluster(&self, name: &str) -> Result<Option<Cluster>> {
        self.meter.enter("describe_cluster")?;
        self.meter.api("DescribeCluster", 1);
        let s = lock(&self.state);
        if s.vanishing.contains(name) {
            return Ok(None);
        }
        Ok(s.clusters.get(name).cloned())
    }

    async fn node_group_asgs(&self, cluster: &str) -> Result<Vec<String>> {
        self.meter.enter("node_group_asgs")?;
        self.meter.api("ListNodegroups", 1);
        let s = lock(&self.state);
        if !s.clusters.contains_key(cluster) {
            return Err(OkraError::from_code(
                "ResourceNotFoundException".into(),
                format!("No cluster found for name: {cluster}."),
            ));
        }
        let mut asgs = s.node_groups.get(cluster).cloned().unwrap_or_default();
        self.meter.api("DescribeNodegroup", asgs.len());
        asgs.sort();
        asgs.dedup();
        Ok(asgs)
    }

    async fn cluster_instances(
        &self,
        cluster: &str,
    ) -> Result<Vec<okra_core::nodes::NodeInstance>> {
        self.meter.enter("cluster_instances")?;
        // One query per tag convention.
        self.meter.api("DescribeInstances", 2);
        let s = lock(&self.state);
        let ids: BTreeSet<&String> = s.instances.get(cluster).into_iter().flatten().collect();
        Ok(ids
            .into_iter()
            .map(|id| okra_core::nodes::NodeInstance {
                id: id.clone(),
                security_groups: vec![],
            })
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// ELBv2
// ---------------------------------------------------------------------------------------------

/// What one action of a listener or rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKind {
    /// A forward action.
    Forward(ForwardAction),
    /// Any other action, by its ELB type (`fixed-response`, `redirect`, `authenticate-oidc`).
    Other(String),
}

/// One action of a listener or rule, as ELB keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAction {
    /// Its order.
    pub order: Option<i32>,
    /// What it does.
    pub kind: RawKind,
}

impl RawAction {
    /// A forward action.
    pub fn forward(order: i32, fa: ForwardAction) -> Self {
        Self {
            order: Some(order),
            kind: RawKind::Forward(fa),
        }
    }

    /// Another action type.
    pub fn other(order: i32, action_type: &str) -> Self {
        Self {
            order: Some(order),
            kind: RawKind::Other(action_type.to_string()),
        }
    }

    /// ELB's usual default action of a new listener: a fixed 404.
    pub fn fixed_response() -> Self {
        Self::other(1, "fixed-response")
    }
}

/// One target group, as the fake keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeTargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its VPC.
    pub vpc_id: String,
    /// The template it was made with (`None` for groups a test added).
    pub template: Option<okra_core::spec::TargetGroupTemplate>,
    /// Its protocol (`None` for groups a test added).
    pub protocol: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its targets' health.
    pub health: TargetHealth,
    /// Its registered targets (ids), when registered through the port.
    pub targets: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct ElbState {
    /// (listener, rule) → actions. `None`: the listener's default actions.
    actions: BTreeMap<(String, Option<String>), Vec<RawAction>>,
    target_groups: BTreeMap<String, FakeTargetGroup>,
    next_id: u64,
    /// Writes to drop (report success, change nothing).
    drop_writes: usize,
    /// Written by okra (whether applied or not), in order.
    writes: Vec<ForwardAction>,
    /// Listener → its load balancer's VPC (default `vpc-1`, the fake clusters' VPC, for any
    /// listener, added or not).
    load_balancer_vpcs: BTreeMap<String, String>,
}

/// ELBv2 in memory.
#[derive(Debug, Default)]
pub struct FakeElb {
    state: Mutex<ElbState>,
    /// Counts and faults.
    pub meter: Meter,
}

/// The forward among `actions`, with its index.
fn forward_index(actions: &[RawAction]) -> Option<usize> {
    actions
        .iter()
        .position(|a| matches!(a.kind, RawKind::Forward(_)))
}

fn current_of(actions: &[RawAction]) -> CurrentAction {
    match forward_index(actions).map(|i| &actions[i].kind) {
        Some(RawKind::Forward(fa)) => {
            let mut fa = fa.clone();
            fa.targets.sort();
            CurrentAction::Forward(fa)
        }
        _ => CurrentAction::Other {
            action_type: actions
                .iter()
                .filter_map(|a| match &a.kind {
                    RawKind::Other(t) => Some(t.clone()),
                    RawKind::Forward(_) => None,
                })
                .next_back()
                .unwrap_or_else(|| "none".to_string()),
        },
    }
}

/// `read` with the forward replaced as the ELB adapter does: the forward action, or else the
/// fixed-response or redirect that ends the chain, or else appended.
fn replace_forward(read: &[RawAction], fa: &ForwardAction) -> Vec<RawAction> {
    let mut out = read.to_vec();
    let idx = forward_index(read).or_else(|| {
        read.iter().position(
            |a| matches!(&a.kind, RawKind::Other(t) if t == "fixed-response" || t == "redirect"),
        )
    });
    match idx {
        Some(i) => {
            out[i] = RawAction {
                order: read[i].order,
                kind: RawKind::Forward(fa.clone()),
            }
        }
        None => {
            let order = read.iter().filter_map(|a| a.order).max().map(|o| o + 1);
            out.push(RawAction {
                order,
                kind: RawKind::Forward(fa.clone()),
            });
        }
    }
    out
}

fn short_name(arn: &str) -> String {
    arn.rsplit_once(":targetgroup/")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or_default()
        .to_string()
}

impl FakeElb {
    /// No listeners, no target groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a listener with these default actions.
    pub fn add_listener(&self, listener_arn: &str, actions: Vec<RawAction>) -> &Self {
        lock(&self.state)
            .actions
            .insert((listener_arn.to_string(), None), actions);
        self
    }

    /// Puts the listener's load balancer in another VPC than the default `vpc-1`.
    pub fn set_load_balancer_vpc(&self, listener_arn: &str, vpc: &str) -> &Self {
        lock(&self.state)
            .load_balancer_vpcs
            .insert(listener_arn.to_string(), vpc.to_string());
        self
    }

    /// Adds (or replaces) a rule of a listener with these actions.
    pub fn add_rule(&self, listener_arn: &str, rule_arn: &str, actions: Vec<RawAction>) -> &Self {
        lock(&self.state).actions.insert(
            (listener_arn.to_string(), Some(rule_arn.to_string())),
            actions,
        );
        self
    }

    /// The actions of a listener (rule `None`) or rule.
    pub fn actions(&self, listener_arn: &str, rule_arn: Option<&str>) -> Option<Vec<RawAction>> {
        lock(&self.state)
            .actions
            .get(&(listener_arn.to_string(), rule_arn.map(str::to_string)))
            .cloned()
    }

    /// The forward action of a listener or rule, if it has one.
    pub fn forward(&self, listener_arn: &str, rule_arn: Option<&str>) -> Option<ForwardAction> {
        let actions = self.actions(listener_arn, rule_arn)?;
        match current_of(&actions) {
            CurrentAction::Forward(fa) => Some(fa),
            CurrentAction::Other { .. } => None,
        }
    }

    /// Someone else sets the forward action (through the console, say): the forward is replaced
    /// (or the fixed-response becomes one), the other actions stay. Not counted.
    pub fn set_forward(&self, listener_arn: &str, rule_arn: Option<&str>, fa: ForwardAction) {
        let mut s = lock(&self.state);
        let key = (listener_arn.to_string(), rule_arn.map(str::to_string));
        let actions = s.actions.get(&key).cloned().unwrap_or_default();
        s.actions.insert(key, replace_forward(&actions, &fa));
    }

    /// The next `n` writes report success and change nothing.
    pub fn drop_next_writes(&self, n: usize) {
        lock(&self.state).drop_writes += n;
    }

    /// The forward actions okra wrote, in order (dropped writes included).
    pub fn writes(&self) -> Vec<ForwardAction> {
        lock(&self.state).writes.clone()
    }

    fn new_arn(s: &mut ElbState, name: &str) -> String {
        s.next_id += 1;
        format!(
            "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{name}/{:016x}",
            0x5eed_0000_0000_0000_u64 + s.next_id
        )
    }

    /// Adds a target group with these tags (in `vpc-1`, no targets) and returns its ARN.
    pub fn add_target_group(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let mut s = lock(&self.state);
        let arn = Self::new_arn(&mut s, name);
        s.target_groups.insert(
            arn.clone(),
            FakeTargetGroup {
                arn: arn.clone(),
                name: name.to_string(),
                vpc_id: "vpc-1".to_string(),
                template: None,
                protocol: None,
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect(),
                health: TargetHealth::default(),
                targets: BTreeSet::new(),
            },
        );
        arn
    }

    /// Adds okra's target group of a cluster: the deterministic name and the cell, version and
    /// cluster tags. Returns its ARN.
    pub fn add_okra_group(&self, cell: &str, cluster: &str, version: &str) -> String {
        self.add_target_group(
            &okra_core::naming::target_group_name(cell, cluster),
            &[
                (TAG_CELL, cell),
                (TAG_VERSION, version),
                (TAG_CLUSTER, cluster),
                (okra_core::model::TAG_MANAGED_BY, "okra"),
            ],
        )
    }

    /// Deletes a target group.
    pub fn remove_target_group(&self, arn: &str) {
        lock(&self.state).target_groups.remove(arn);
    }

    /// Sets a target group's health counts.
    pub fn set_health(&self, arn: &str, healthy: u32, total: u32) {
        if let Some(tg) = lock(&self.state).target_groups.get_mut(arn) {
            tg.health = TargetHealth { healthy, total };
        }
    }

    /// A target group by ARN.
    pub fn target_group(&self, arn: &str) -> Option<FakeTargetGroup> {
        lock(&self.state).target_groups.get(arn).cloned()
    }

    /// A target group by name.
    pub fn target_group_named(&self, name: &str) -> Option<FakeTargetGroup> {
        lock(&self.state)
            .target_groups
            .values()
            .find(|t| t.name == name)
            .cloned()
    }

    /// All target groups, by ARN.
    pub fn target_groups(&self) -> Vec<FakeTargetGroup> {
        lock(&self.state).target_groups.values().cloned().collect()
    }

    fn not_found(listener_arn: &str, rule_arn: Option<&str>) -> OkraError {
        match rule_arn {
            Some(r) => OkraError::RuleNotFound(format!("One or more rules not found: {r}")),
            None => OkraError::ListenerNotFound(format!(
                "One or more listeners not found: {listener_arn}"
            )),
        }
    }
}

impl LoadBalancerPort for FakeElb {
    type Raw = Vec<RawAction>;

    async fn load_balancer_vpc(&self, listener_arn: &str) -> Result<String> {
        self.meter.enter("load_balancer_vpc")?;
        self.meter.api("DescribeListeners", 1);
        self.meter.api("DescribeLoadBalancers", 1);
        // Any listener's load balancer is in `vpc-1` unless a test says otherwise (tests of
        // target groups need no listener).
        let st = lock(&self.state);
        Ok(st
            .load_balancer_vpcs
            .get(listener_arn)
            .cloned()
            .unwrap_or_else(|| "vpc-1".to_string()))
    }

    async fn load_balancer(
        &self,
        listener_arn: &str,
    ) -> Result<okra_core::doctor::LoadBalancerFacts> {
        self.meter.enter("load_balancer")?;
        self.meter.api("DescribeListeners", 1);
        let st = lock(&self.state);
        if !st.actions.keys().any(|(l, _)| l == listener_arn) {
            return Err(OkraError::ListenerNotFound(listener_arn.to_string()));
        }
        self.meter.api("DescribeLoadBalancers", 1);
        self.meter.api("DescribeTargetGroups", 1);
        // The load balancer's groups: those its listener's actions forward to.
        let groups: BTreeSet<&str> = st
            .actions
            .iter()
            .filter(|((l, _), _)| l == listener_arn)
            .flat_map(|(_, actions)| actions)
            .filter_map(|a| match &a.kind {
                RawKind::Forward(fa) => Some(fa),
                _ => None,
            })
            .flat_map(|fa| fa.targets.iter().map(|t| t.target_group_arn.as_str()))
            .collect();
        Ok(okra_core::doctor::LoadBalancerFacts {
            vpc_id: st
                .load_balancer_vpcs
                .get(listener_arn)
                .cloned()
                .unwrap_or_else(|| "vpc-1".to_string()),
            target_groups: groups.len(),
            security_groups: vec![],
            subnets: vec![],
        })
    }

    async fn read_action(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Owned<Vec<RawAction>>> {
        self.meter.enter("read_action")?;
        self.meter.api(
            if rule_arn.is_some() {
                "DescribeRules"
            } else {
                "DescribeListeners"
            },
            1,
        );
        let actions = self
            .actions(listener_arn, rule_arn)
            .ok_or_else(|| Self::not_found(listener_arn, rule_arn))?;
        Ok(Owned {
            action: current_of(&actions),
            raw: actions,
        })
    }

    async fn write_forward(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        read: &Vec<RawAction>,
        action: &ForwardAction,
    ) -> Result<()> {
        self.meter.enter("write_forward")?;
        self.meter.api(
            if rule_arn.is_some() {
                "ModifyRule"
            } else {
                "ModifyListener"
            },
            1,
        );
        let mut s = lock(&self.state);
        let key = (listener_arn.to_string(), rule_arn.map(str::to_string));
        if !s.actions.contains_key(&key) {
            return Err(Self::not_found(listener_arn, rule_arn));
        }
        // ELB's own checks of a forward action.
        if action.targets.is_empty() {
            return Err(OkraError::Aws {
                code: "ValidationError".into(),
                message: "a forward action needs at least one target group".into(),
            });
        }
        if action.targets.len() > okra_core::weights::MAX_TARGET_GROUPS_PER_ACTION {
            return Err(OkraError::Aws {
                code: "TooManyTargetGroups".into(),
                message: format!(
                    "{} target groups in one forward action",
                    action.targets.len()
                ),
            });
        }
        if let Some(t) = action
            .targets
            .iter()
            .find(|t| t.weight > okra_core::weights::MAX_WEIGHT)
        {
            return Err(OkraError::Aws {
                code: "ValidationError".into(),
                message: format!("weight {} of {} is above 999", t.weight, t.target_group_arn),
            });
        }
        if let Some(t) = action
            .targets
            .iter()
            .find(|t| !s.target_groups.contains_key(&t.target_group_arn))
        {
            return Err(OkraError::TargetGroupNotFound(format!(
                "One or more target groups not found: {}",
                t.target_group_arn
            )));
        }
        s.writes.push(action.clone());
        if s.drop_writes > 0 {
            s.drop_writes -= 1;
            return Ok(());
        }
        // Last writer wins, as on ELB: the write is based on what was read.
        s.actions.insert(key, replace_forward(read, action));
        Ok(())
    }

    async fn find_target_groups(
        &self,
        cell: &str,
        candidate_arns: &[String],
    ) -> Result<Vec<TargetGroup>> {
        self.meter.enter("find_target_groups")?;
        let s = lock(&self.state);
        let tagged: BTreeSet<String> = s
            .target_groups
            .values()
            .filter(|t| t.tags.get(TAG_CELL).map(String::as_str) == Some(cell))
            .map(|t| t.arn.clone())
            .collect();
        self.meter.api("GetResources", pages(tagged.len()));
        let direct: BTreeSet<String> = candidate_arns
            .iter()
            .filter(|a| !tagged.contains(*a))
            .cloned()
            .collect();
        self.meter
            .api("DescribeTags", direct.len().div_ceil(DESCRIBE_TAGS_BATCH));
        let arns: BTreeSet<String> = tagged.into_iter().chain(direct).collect();
        let mut found: Vec<TargetGroup> = arns
            .iter()
            .filter_map(|arn| s.target_groups.get(arn))
            .filter(|t| t.tags.get(TAG_CELL).map(String::as_str) == Some(cell))
            .map(|t| TargetGroup {
                arn: t.arn.clone(),
                name: short_name(&t.arn),
                cluster: t.tags.get(TAG_CLUSTER).cloned().unwrap_or_default(),
                version: t.tags.get(TAG_VERSION).cloned().unwrap_or_default(),
            })
            .collect();
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(found)
    }

    async fn find_cells_target_groups(
        &self,
        cells: &[String],
    ) -> Result<Vec<(String, TargetGroup)>> {
        self.meter.enter("find_cells_target_groups")?;
        self.meter.api(
            "GetResources",
            cells.len().div_ceil(VALUES_PER_FILTER).max(1),
        );
        let s = lock(&self.state);
        Ok(s.target_groups
            .values()
            .filter_map(|t| {
                let cell = t.tags.get(TAG_CELL).filter(|c| cells.contains(c))?;
                Some((
                    cell.clone(),
                    TargetGroup {
                        arn: t.arn.clone(),
                        name: short_name(&t.arn),
                        cluster: t.tags.get(TAG_CLUSTER).cloned().unwrap_or_default(),
                        version: t.tags.get(TAG_VERSION).cloned().unwrap_or_default(),
                    },
                ))
            })
            .collect())
    }

    async fn create_target_group(&self, tg: &NewTargetGroup) -> Result<String> {
        self.meter.enter("create_target_group")?;
        self.meter.api("CreateTargetGroup", 1);
        let mut s = lock(&self.state);
        if let Some(existing) = s.target_groups.values().find(|t| t.name == tg.name) {
            // ELB answers a create with identical settings with the existing group.
            if existing.vpc_id != tg.vpc_id {
                return Err(OkraError::Aws {
                    code: "DuplicateTargetGroupName".into(),
                    message: format!("A target group with the same name '{}' exists", tg.name),
                });
            }
            return Ok(existing.arn.clone());
        }
        let arn = Self::new_arn(&mut s, &tg.name);
        s.target_groups.insert(
            arn.clone(),
            FakeTargetGroup {
                arn: arn.clone(),
                name: tg.name.clone(),
                vpc_id: tg.vpc_id.clone(),
                template: Some(tg.template.clone()),
                protocol: Some(tg.protocol.clone()),
                tags: tg.tags.iter().cloned().collect(),
                health: TargetHealth::default(),
                targets: BTreeSet::new(),
            },
        );
        Ok(arn)
    }

    async fn target_group_by_name(&self, name: &str) -> Result<Option<String>> {
        self.meter.enter("target_group_by_name")?;
        self.meter.api("DescribeTargetGroups", 1);
        Ok(self.target_group_named(name).map(|t| t.arn))
    }

    async fn tag_target_group(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
        self.meter.enter("tag_target_group")?;
        self.meter.api("AddTags", 1);
        let mut s = lock(&self.state);
        let tg = s.target_groups.get_mut(arn).ok_or_else(|| {
            OkraError::TargetGroupNotFound(format!("One or more target groups not found: {arn}"))
        })?;
        tg.tags.extend(tags.iter().cloned());
        Ok(())
    }

    async fn target_health(&self, arn: &str) -> Result<TargetHealth> {
        self.meter.enter("target_health")?;
        self.meter.api("DescribeTargetHealth", 1);
        self.target_group(arn).map(|t| t.health).ok_or_else(|| {
            OkraError::TargetGroupNotFound(format!("One or more target groups not found: {arn}"))
        })
    }

    async fn registered_targets(&self, arn: &str) -> Result<Vec<String>> {
        self.meter.enter("registered_targets")?;
        self.meter.api("DescribeTargetHealth", 1);
        self.target_group(arn)
            .map(|t| t.targets.into_iter().collect())
            .ok_or_else(|| not_found(arn))
    }

    async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        self.meter.enter("register_targets")?;
        self.meter.api("RegisterTargets", 1);
        let mut st = lock(&self.state);
        let tg = st
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found(arn))?;
        tg.targets.extend(ids.iter().cloned());
        Ok(())
    }

    async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        self.meter.enter("deregister_targets")?;
        self.meter.api("DeregisterTargets", 1);
        let mut st = lock(&self.state);
        let tg = st
            .target_groups
            .get_mut(arn)
            .ok_or_else(|| not_found(arn))?;
        for id in ids {
            tg.targets.remove(id);
        }
        Ok(())
    }
}

fn not_found(arn: &str) -> OkraError {
    OkraError::TargetGroupNotFound(format!("One or more target groups not found: {arn}"))
}

// ---------------------------------------------------------------------------------------------
// Auto Scaling
// ---------------------------------------------------------------------------------------------

/// EC2 Auto Scaling in memory: which target groups each group is attached to.
#[derive(Debug, Default)]
pub struct FakeAutoScaling {
    attachments: Mutex<BTreeSet<(String, String)>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeAutoScaling {
    /// No attachments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every (Auto Scaling group, target group ARN) attachment, sorted.
    pub fn attachments(&self) -> Vec<(String, String)> {
        lock(&self.attachments).iter().cloned().collect()
    }

    /// The target groups attached to one Auto Scaling group.
    pub fn attached_to(&self, asg: &str) -> Vec<String> {
        lock(&self.attachments)
            .iter()
            .filter(|(a, _)| a == asg)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

impl AutoScalingPort for FakeAutoScaling {
    async fn attach_target_group(&self, asg: &str, target_group_arn: &str) -> Result<()> {
        self.meter.enter("attach_target_group")?;
        self.meter.api("AttachLoadBalancerTargetGroups", 1);
        lock(&self.attachments).insert((asg.to_string(), target_group_arn.to_string()));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The state table, Step Functions executions, EventBridge
// ---------------------------------------------------------------------------------------------

use crate::state::{
    Block, EventsPort, ExecutionInfo, ExecutionsPort, HistoryEntry, Lock, Rollout, RolloutEvent,
    Signal, Started, StatePort, StoredCell,
};

type CellKey = (String, String);

fn ck(cell: &str, x: &str) -> CellKey {
    (cell.to_string(), x.to_string())
}

#[derive(Debug, Default)]
struct StateData {
    cells: BTreeMap<String, StoredCell>,
    locks: BTreeMap<String, Lock>,
    blocks: BTreeMap<CellKey, Block>,
    attempts: BTreeMap<CellKey, u32>,
    generations: BTreeMap<String, u64>,
    /// The record and the keys of its entries.
    rollouts: BTreeMap<CellKey, (Rollout, BTreeSet<String>)>,
    signals: BTreeMap<CellKey, Signal>,
    waits: BTreeMap<CellKey, String>,
}

/// The okra table in memory, with the adapter's conditions (the lock, revisions, one history
/// entry per key). API counts are DynamoDB operations (`"GetItem"`, `"PutItem"`, `"Query"`, ...),
/// one per port call except where the adapter needs two (a replayed `record`, `unblock`).
#[derive(Debug, Default)]
pub struct FakeState {
    data: Mutex<StateData>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeState {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a cell as is (no validation, no revision check): a spec stored by an older okra
    /// that no longer validates, say.
    pub fn insert_cell(&self, spec: okra_core::spec::CellSpec) -> &Self {
        let mut d = lock(&self.data);
        let revision = d.cells.get(&spec.name).map_or(1, |c| c.revision + 1);
        d.cells.insert(
            spec.name.clone(),
            StoredCell {
                spec,
                revision,
                updated_at: "2026-01-01T00:00:00.000Z".to_string(),
            },
        );
        self
    }

    /// Every rollout record of a cell, by execution.
    pub fn rollouts(&self, cell: &str) -> Vec<Rollout> {
        lock(&self.data)
            .rollouts
            .iter()
            .filter(|((c, _), _)| c == cell)
            .map(|(_, (r, _))| r.clone())
            .collect()
    }

    /// The lock as stored.
    pub fn lock_of(&self, cell: &str) -> Option<Lock> {
        lock(&self.data).locks.get(cell).cloned()
    }

    /// Sets (or, with `None`, removes) the lock as someone else would.
    pub fn set_lock(&self, cell: &str, l: Option<Lock>) {
        let mut d = lock(&self.data);
        match l {
            Some(l) => d.locks.insert(cell.to_string(), l),
            None => d.locks.remove(cell),
        };
    }
}

impl StatePort for FakeState {
    async fn list_cells(&self) -> Result<Vec<StoredCell>> {
        self.meter.enter("list_cells")?;
        self.meter.api("Query", 1);
        Ok(lock(&self.data).cells.values().cloned().collect())
    }

    async fn get_cell(&self, cell: &str) -> Result<Option<StoredCell>> {
        self.meter.enter("get_cell")?;
        self.meter.api("GetItem", 1);
        Ok(lock(&self.data).cells.get(cell).cloned())
    }

    async fn put_cell(
        &self,
        spec: &okra_core::spec::CellSpec,
        expected_revision: Option<u64>,
    ) -> Result<u64> {
        self.meter.enter("put_cell")?;
        self.meter.api("PutItem", 1);
        let mut d = lock(&self.data);
        let current = d.cells.get(&spec.name).map(|c| c.revision);
        if current != expected_revision {
            return Err(OkraError::Conflict(format!(
                "cell {}: revision {current:?}, expected {expected_revision:?}",
                spec.name
            )));
        }
        let revision = expected_revision.map_or(1, |r| r + 1);
        d.cells.insert(
            spec.name.clone(),
            StoredCell {
                spec: spec.clone(),
                revision,
                updated_at: crate::state::rfc3339(std::time::SystemTime::now()),
            },
        );
        Ok(revision)
    }

    async fn delete_cell(&self, cell: &str) -> Result<bool> {
        self.meter.enter("delete_cell")?;
        self.meter.api("DeleteItem", 1);
        Ok(lock(&self.data).cells.remove(cell).is_some())
    }

    async fn acquire_lock(&self, cell: &str, l: &Lock) -> Result<std::result::Result<(), Lock>> {
        self.meter.enter("acquire_lock")?;
        self.meter.api("PutItem", 1);
        let mut d = lock(&self.data);
        match d.locks.get(cell) {
            Some(holder) if holder.execution != l.execution => {
                self.meter.api("GetItem", 1);
                Ok(Err(holder.clone()))
            }
            _ => {
                d.locks.insert(cell.to_string(), l.clone());
                Ok(Ok(()))
            }
        }
    }

    async fn release_lock(&self, cell: &str, execution: &str) -> Result<()> {
        self.meter.enter("release_lock")?;
        self.meter.api("DeleteItem", 1);
        let mut d = lock(&self.data);
        if d.locks.get(cell).is_some_and(|l| l.execution == execution) {
            d.locks.remove(cell);
            self.meter.api("GetItem", 1);
            self.meter.api("UpdateItem", 1);
            *d.generations.entry(cell.to_string()).or_default() += 1;
        }
        Ok(())
    }

    async fn generation(&self, cell: &str) -> Result<u64> {
        self.meter.enter("generation")?;
        self.meter.api("GetItem", 1);
        Ok(lock(&self.data).generations.get(cell).copied().unwrap_or(0))
    }

    async fn advance_generation(&self, cell: &str, seen: u64) -> Result<u64> {
        self.meter.enter("advance_generation")?;
        self.meter.api("UpdateItem", 1);
        let mut d = lock(&self.data);
        let g = d.generations.entry(cell.to_string()).or_default();
        if *g == seen {
            *g += 1;
        }
        Ok(*g)
    }

    async fn get_lock(&self, cell: &str) -> Result<Option<Lock>> {
        self.meter.enter("get_lock")?;
        self.meter.api("GetItem", 1);
        Ok(lock(&self.data).locks.get(cell).cloned())
    }

    async fn blocklist(&self, cell: &str) -> Result<Vec<Block>> {
        self.meter.enter("blocklist")?;
        self.meter.api("Query", 1);
        Ok(lock(&self.data)
            .blocks
            .iter()
            .filter(|((c, _), _)| c == cell)
            .map(|(_, b)| b.clone())
            .collect())
    }

    async fn block(&self, cell: &str, block: &Block) -> Result<()> {
        self.meter.enter("block")?;
        self.meter.api("PutItem", 1);
        lock(&self.data)
            .blocks
            .entry(ck(cell, &block.version))
            .or_insert_with(|| block.clone());
        Ok(())
    }

    async fn unblock(&self, cell: &str, version: &str) -> Result<u32> {
        self.meter.enter("unblock")?;
        self.meter.api("DeleteItem", 1);
        self.meter.api("UpdateItem", 1);
        let mut d = lock(&self.data);
        d.blocks.remove(&ck(cell, version));
        let a = d.attempts.entry(ck(cell, version)).or_default();
        *a += 1;
        Ok(*a)
    }

    async fn attempt(&self, cell: &str, version: &str) -> Result<u32> {
        self.meter.enter("attempt")?;
        self.meter.api("GetItem", 1);
        Ok(lock(&self.data)
            .attempts
            .get(&ck(cell, version))
            .copied()
            .unwrap_or(0))
    }

    async fn start_rollout(&self, rollout: &Rollout) -> Result<()> {
        self.meter.enter("start_rollout")?;
        self.meter.api("PutItem", 1);
        let seen = rollout.history.iter().map(HistoryEntry::key).collect();
        lock(&self.data)
            .rollouts
            .entry(ck(&rollout.cell, &rollout.execution))
            .or_insert_with(|| (rollout.clone(), seen));
        Ok(())
    }

    async fn record(
        &self,
        cell: &str,
        execution: &str,
        entry: &HistoryEntry,
        status: Option<RolloutStatus>,
    ) -> Result<()> {
        self.meter.enter("record")?;
        self.meter.api("UpdateItem", 1);
        let mut d = lock(&self.data);
        let Some((r, seen)) = d.rollouts.get_mut(&ck(cell, execution)) else {
            self.meter.api("GetItem", 1);
            return Err(OkraError::NotFound(format!(
                "rollout {execution} of cell {cell}"
            )));
        };
        if !seen.insert(entry.key()) {
            self.meter.api("GetItem", 1);
            return Ok(());
        }
        r.history.push(entry.clone());
        r.updated_at = entry.at.clone();
        if let Some(s) = status {
            r.status = s;
        }
        if let Some(w) = entry.weight {
            r.weight = w;
        }
        Ok(())
    }

    async fn get_rollout(&self, cell: &str, execution: &str) -> Result<Option<Rollout>> {
        self.meter.enter("get_rollout")?;
        self.meter.api("GetItem", 1);
        Ok(lock(&self.data)
            .rollouts
            .get(&ck(cell, execution))
            .map(|(r, _)| r.clone()))
    }

    async fn list_rollouts(&self, cell: &str, limit: usize) -> Result<Vec<Rollout>> {
        self.meter.enter("list_rollouts")?;
        self.meter.api("Query", 1);
        let mut all = self.rollouts(cell);
        all.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| b.execution.cmp(&a.execution))
        });
        all.truncate(limit);
        Ok(all)
    }

    async fn put_signal(&self, cell: &str, execution: &str, signal: Signal) -> Result<()> {
        self.meter.enter("put_signal")?;
        self.meter.api("PutItem", 1);
        lock(&self.data).signals.insert(ck(cell, execution), signal);
        Ok(())
    }

    async fn put_wait(&self, cell: &str, execution: &str, token: &str) -> Result<Option<Signal>> {
        self.meter.enter("put_wait")?;
        self.meter.api("PutItem", 1);
        self.meter.api("GetItem", 1);
        let mut d = lock(&self.data);
        d.waits.insert(ck(cell, execution), token.to_string());
        Ok(d.signals.get(&ck(cell, execution)).copied())
    }

    async fn get_wait(&self, cell: &str, execution: &str) -> Result<Option<String>> {
        self.meter.enter("get_wait")?;
        self.meter.api("GetItem", 1);
        Ok(lock(&self.data).waits.get(&ck(cell, execution)).cloned())
    }

    async fn take_signal(&self, cell: &str, execution: &str) -> Result<Option<Signal>> {
        self.meter.enter("take_signal")?;
        self.meter.api("DeleteItem", 1);
        Ok(lock(&self.data).signals.remove(&ck(cell, execution)))
    }
}

/// One execution the fake keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeExecution {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its input.
    pub input: serde_json::Value,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: String,
}

/// The rollout state machine's executions in memory. Names are unique as on Step Functions: a
/// start under a taken name is `AlreadyExists`, except that a start with the same name and the
/// same input as a RUNNING execution answers that execution's ARN (as AWS does).
#[derive(Debug, Default)]
pub struct FakeExecutions {
    executions: Mutex<BTreeMap<String, FakeExecution>>,
    order: Mutex<Vec<String>>,
    task_results: Mutex<Vec<(String, serde_json::Value)>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeExecutions {
    /// No executions.
    pub fn new() -> Self {
        Self::default()
    }

    /// The callback answers sent, in order: `(task token, output)`.
    pub fn task_results(&self) -> Vec<(String, serde_json::Value)> {
        lock(&self.task_results).clone()
    }

    /// The ARN of execution `name`.
    pub fn arn(name: &str) -> String {
        format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:okra-rollout:{name}")
    }

    /// Adds an execution (started elsewhere) with this status.
    pub fn add(&self, name: &str, status: &str) {
        lock(&self.order).push(name.to_string());
        lock(&self.executions).insert(
            name.to_string(),
            FakeExecution {
                name: name.to_string(),
                arn: Self::arn(name),
                input: serde_json::Value::Null,
                status: status.to_string(),
            },
        );
    }

    /// Sets an execution's status (`SUCCEEDED`: it finished).
    pub fn set_status(&self, name: &str, status: &str) {
        if let Some(e) = lock(&self.executions).get_mut(name) {
            e.status = status.to_string();
        }
    }

    /// Every execution, in the order they were started.
    pub fn executions(&self) -> Vec<FakeExecution> {
        let all = lock(&self.executions);
        lock(&self.order)
            .iter()
            .filter_map(|n| all.get(n).cloned())
            .collect()
    }
}

impl ExecutionsPort for FakeExecutions {
    async fn start(&self, name: &str, input: &serde_json::Value) -> Result<Started> {
        self.meter.enter("start")?;
        self.meter.api("StartExecution", 1);
        let mut all = lock(&self.executions);
        if let Some(e) = all.get(name) {
            return Ok(
                if ExecutionStatus::is_running(&e.status) && &e.input == input {
                    Started::Started { arn: e.arn.clone() }
                } else {
                    Started::AlreadyExists {
                        name: name.to_string(),
                    }
                },
            );
        }
        let e = FakeExecution {
            name: name.to_string(),
            arn: Self::arn(name),
            input: input.clone(),
            status: ExecutionStatus::Running.to_string(),
        };
        let arn = e.arn.clone();
        all.insert(name.to_string(), e);
        lock(&self.order).push(name.to_string());
        Ok(Started::Started { arn })
    }

    async fn describe(&self, name: &str) -> Result<Option<ExecutionInfo>> {
        self.meter.enter("describe")?;
        self.meter.api("DescribeExecution", 1);
        Ok(lock(&self.executions).get(name).map(|e| ExecutionInfo {
            arn: e.arn.clone(),
            name: e.name.clone(),
            status: e.status.clone(),
            started_at: None,
        }))
    }

    async fn send_task_success(&self, token: &str, output: &serde_json::Value) -> Result<bool> {
        self.meter.enter("send_task_success")?;
        self.meter.api("SendTaskSuccess", 1);
        let mut sent = lock(&self.task_results);
        if sent.iter().any(|(t, _)| t == token) {
            return Ok(false);
        }
        sent.push((token.to_string(), output.clone()));
        Ok(true)
    }
}

/// EventBridge in memory: the events put, in order. `PutEvents` is counted per 10 events.
#[derive(Debug, Default)]
pub struct FakeEvents {
    events: Mutex<Vec<RolloutEvent>>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeEvents {
    /// No events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event put.
    pub fn events(&self) -> Vec<RolloutEvent> {
        lock(&self.events).clone()
    }

    /// The kinds of the events put, in order.
    pub fn kinds(&self) -> Vec<String> {
        lock(&self.events)
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    }
}

impl EventsPort for FakeEvents {
    async fn put(&self, events: &[RolloutEvent]) -> Result<()> {
        self.meter.enter("put")?;
        self.meter.api(
            "PutEvents",
            events.len().div_ceil(crate::eventbridge::PUT_EVENTS_BATCH),
        );
        lock(&self.events).extend(events.iter().cloned());
        Ok(())
    }
}
