//! Ports: one small trait per AWS service, in the core's terms.
//!
//! Handlers are written over these traits; each has one adapter over the aws-sdk client
//! ([`crate::eks`], [`crate::elb`]) and fakes in tests. A port method is one AWS concept, not
//! one AWS call: pagination and batching live in the adapter, where they can be counted.

use std::collections::BTreeMap;
use std::future::Future;

use okra_core::model::{Cluster, CurrentAction, ForwardAction, TargetGroup};

use crate::error::Result;

/// EKS, as discovery needs it.
pub trait ClusterPort: Send + Sync {
    /// The names of the clusters carrying every one of `tags` (a cell's selector), found by tag
    /// (the tagging API: pages of 100 matches, not the account's clusters). Eventually
    /// consistent: a cluster tagged a moment ago may be missing.
    fn find_clusters(
        &self,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// The clusters whose tag `key` has any of `values`, with their tags: one tag query per 20
    /// values, for many cells at once (the dispatcher applies each cell's whole selector).
    fn find_clusters_any(
        &self,
        key: &str,
        values: &[String],
    ) -> impl Future<Output = Result<Vec<(String, BTreeMap<String, String>)>>> + Send;
    /// One cluster; `None` when it is gone (deleted between list and describe).
    fn describe_cluster(&self, name: &str) -> impl Future<Output = Result<Option<Cluster>>> + Send;
    /// Sets tags on a cluster (by ARN: [`Cluster::access`]). One call (TagResource).
    fn tag_cluster(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Removes tags from a cluster. One call (UntagResource).
    fn untag_cluster(&self, arn: &str, keys: &[String]) -> impl Future<Output = Result<()>> + Send;
    /// Gives `principal` an access entry on the cluster (already there: fine) and associates
    /// the access policy `policy_arn` with it, on `namespaces` (none: the whole cluster). Two
    /// calls (CreateAccessEntry, AssociateAccessPolicy, which replaces a scope).
    fn ensure_access_entry(
        &self,
        cluster: &str,
        principal: &str,
        policy_arn: &str,
        namespaces: &[String],
    ) -> impl Future<Output = Result<()>> + Send;
    /// The Auto Scaling group names of the cluster's managed node groups.
    fn node_group_asgs(&self, cluster: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// The cluster's running EC2 instances, found by their tags (`eks:cluster-name`,
    /// or `kubernetes.io/cluster/<name>` = owned/shared): EC2 DescribeInstances, two queries.
    fn cluster_instances(
        &self,
        cluster: &str,
    ) -> impl Future<Output = Result<Vec<okra_core::nodes::NodeInstance>>> + Send;
}

/// A target group to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTargetGroup {
    /// Its deterministic name.
    pub name: String,
    /// The VPC.
    pub vpc_id: String,
    /// The cell's template.
    pub template: okra_core::spec::TargetGroupTemplate,
    /// The protocol (the template's, or the load balancer kind's default).
    pub protocol: String,
    /// Tags (cell, version, cluster, managed-by).
    pub tags: Vec<(String, String)>,
}

/// Health of one target group's targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealth {
    /// Targets in state `healthy`.
    pub healthy: u32,
    /// All registered targets (any state but `draining`).
    pub total: u32,
}

/// The owned action as read, with the adapter's raw copy of all the listener's (or rule's)
/// actions, which a write needs to keep the others as they are.
#[derive(Debug, Clone)]
pub struct Owned<R> {
    /// The owned action in the core's terms.
    pub action: CurrentAction,
    /// The adapter's raw actions.
    pub raw: R,
}

/// ELBv2, as okra needs it.
pub trait LoadBalancerPort: Send + Sync {
    /// The adapter's raw copy of a listener's actions.
    type Raw: Send + Sync;

    /// The owned action: the listener's default action, or the rule's action. One call.
    fn read_action(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> impl Future<Output = Result<Owned<Self::Raw>>> + Send;

    /// Replaces the forward action's target groups, weights and stickiness in `read` (as
    /// [`LoadBalancerPort::read_action`] returned it); the other actions of the listener or rule
    /// (authentication, say) stay as they are. One call.
    fn write_forward(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        read: &Self::Raw,
        action: &ForwardAction,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The standby rule of the owned action `owner` ([`okra_core::standby`]) on the listener,
    /// if there is one: its ARN and the target groups it forwards to. One call (DescribeRules).
    fn standby_rule(
        &self,
        listener_arn: &str,
        owner: &str,
    ) -> impl Future<Output = Result<Option<(String, Vec<String>)>>> + Send;

    /// Sets the target groups of the standby rule `existing` (as [`Self::standby_rule`] found
    /// it; one call), or creates the standby rule of `owner` (two calls: the listener's rules
    /// for a free priority, then the rule): a rule whose condition never matches, forwarding to
    /// `groups`, so that AWS health-checks them while the owned action stays as it is.
    fn put_standby_rule(
        &self,
        listener_arn: &str,
        owner: &str,
        existing: Option<&str>,
        groups: &[String],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a rule (gone already: fine). One call.
    fn delete_rule(&self, rule_arn: &str) -> impl Future<Output = Result<()>> + Send;

    /// The cell's target groups: those tagged with the cell (the tagging API, eventually
    /// consistent), and those of `candidate_arns` (groups seen in the listener, read directly:
    /// DescribeTags by 20) whose tags name the cell.
    fn find_target_groups(
        &self,
        cell: &str,
        candidate_arns: &[String],
    ) -> impl Future<Output = Result<Vec<TargetGroup>>> + Send;

    /// The target groups of several cells at once, by their `okra.io/cell` tag (one tag query
    /// per 20 cells): `(cell, group)`.
    fn find_cells_target_groups(
        &self,
        cells: &[String],
    ) -> impl Future<Output = Result<Vec<(String, TargetGroup)>>> + Send;

    /// Creates a target group, or returns the ARN of the one with the same name (ELB's
    /// CreateTargetGroup is idempotent for identical settings).
    fn create_target_group(
        &self,
        tg: &NewTargetGroup,
    ) -> impl Future<Output = Result<String>> + Send;

    /// The ARN of the target group with this name, if any.
    fn target_group_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Sets tags on a target group (adds or overwrites).
    fn tag_target_group(
        &self,
        arn: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes tags from a target group. One call (RemoveTags).
    fn untag_target_group(
        &self,
        arn: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Every forward action of a listener or rule, on the group's load balancers, that names the
    /// group: DescribeTargetGroups, then DescribeListeners and DescribeRules per load balancer.
    fn forward_uses(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<okra_core::retire::ForwardUse>>> + Send;

    /// Takes the group out of the forward action of `use_` (a listener's default action or a
    /// rule's); a standby rule left with no group is deleted. One or two calls.
    fn remove_forward(
        &self,
        use_: &okra_core::retire::ForwardUse,
        group_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a target group (gone already: fine). One call.
    fn delete_target_group(&self, arn: &str) -> impl Future<Output = Result<()>> + Send;

    /// Health counts of a target group's targets.
    fn target_health(&self, arn: &str) -> impl Future<Output = Result<TargetHealth>> + Send;

    /// The ids of a target group's targets, draining ones left out. One call.
    fn registered_targets(&self, arn: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Registers instances (by id, on the group's port). Registering twice is a no-op.
    fn register_targets(
        &self,
        arn: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deregisters targets; they drain for the group's deregistration delay.
    fn deregister_targets(
        &self,
        arn: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<()>> + Send;

    /// The VPC of the listener's load balancer: where its target groups must be (a forward
    /// action's target groups must be in the load balancer's VPC). Two calls.
    fn load_balancer_vpc(&self, listener_arn: &str) -> impl Future<Output = Result<String>> + Send;

    /// The tags of load balancers, listeners or rules (at most 20 ARNs), in the order given:
    /// one DescribeTags.
    fn resource_tags(
        &self,
        arns: &[String],
    ) -> impl Future<Output = Result<okra_core::owner::Tagged>> + Send;

    /// The listener's load balancer for `okra doctor`: its VPC and how many target groups it
    /// has. Two calls, and a page of DescribeTargetGroups per 400 groups.
    fn load_balancer(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<okra_core::doctor::LoadBalancerFacts>> + Send;
}

/// EC2 Auto Scaling, for `registration: nodegroups`.
pub trait AutoScalingPort: Send + Sync {
    /// Attaches a target group to an Auto Scaling group, so that its present and future
    /// instances register. Attaching twice is a no-op.
    fn attach_target_group(
        &self,
        asg: &str,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Detaches a target group from an Auto Scaling group (not attached: fine). One call.
    fn detach_target_group(
        &self,
        asg: &str,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// EC2's network, for the doctor's `node-access` check.
pub trait NetworkPort: Send + Sync {
    /// Security groups with their inbound rules (DescribeSecurityGroups by id).
    fn security_groups(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<okra_core::nodes::SecurityGroupRules>>> + Send;

    /// The IPv4 CIDR blocks of subnets (DescribeSubnets by id).
    fn subnet_cidrs(&self, ids: &[String]) -> impl Future<Output = Result<Vec<String>>> + Send;
}

pub use okra_core::analysis::query::{MAX_METRIC_QUERIES, MetricQuery, MetricSeries};

/// CloudWatch metrics, as analysis needs them.
pub trait MetricsPort: Send + Sync {
    /// The datapoints of `queries` (at most [`MAX_METRIC_QUERIES`]) between `start` and `end`
    /// (epoch seconds): one GetMetricData call, following its NextToken pages. Returns one
    /// series per query that returns data (queries without datapoints may be absent).
    fn get_metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> impl Future<Output = Result<Vec<MetricSeries>>> + Send;

    /// Whether the metric exists (had data in the last two weeks): ListMetrics with its
    /// namespace, name and every dimension. One call.
    fn metric_exists(
        &self,
        lookup: &okra_core::doctor::MetricLookup,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// CloudTrail, for `okra doctor`.
pub trait TrailPort: Send + Sync {
    /// The trails that apply to this region (shadow trails included), each with its logging
    /// status and whether it takes write management events.
    fn trails(&self) -> impl Future<Output = Result<Vec<okra_core::doctor::TrailFacts>>> + Send;
}

/// Datadog's metrics query API.
pub trait DatadogPort: Send + Sync {
    /// The points of `query` between `from` and `to` (epoch seconds), oldest first, as
    /// `(epoch seconds, value)`; points without a value are left out.
    fn query(
        &self,
        query: &str,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<(i64, f64)>>> + Send;
}

/// An HTTP provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// HTTP(S) providers: Prometheus, Amazon Managed Service for Prometheus, web endpoints.
pub trait HttpPort: Send + Sync {
    /// Sends `req`: its secret headers read from Secrets Manager (never logged), signed with
    /// SigV4 when it asks. Any status is an answer; no answer (refused, reset, timed out after
    /// `req.timeout`) is an error.
    fn send(
        &self,
        req: &okra_core::analysis::probe::Request,
    ) -> impl Future<Output = Result<HttpAnswer>> + Send;
}

/// A Lambda function's answer to a synchronous Invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// `X-Amz-Function-Error` (`Unhandled`), when the function failed.
    pub function_error: Option<String>,
    /// The payload: the function's answer, or its error document.
    pub payload: Vec<u8>,
}

/// Lambda, for users' check functions.
pub trait InvokePort: Send + Sync {
    /// Invokes `function` (name or ARN) synchronously with `payload`.
    fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> impl Future<Output = Result<Invoked>> + Send;
}

/// No provider: every request fails, saying so (for callers that read CloudWatch and Datadog
/// only).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unset;

impl HttpPort for Unset {
    async fn send(&self, req: &okra_core::analysis::probe::Request) -> Result<HttpAnswer> {
        Err(crate::error::OkraError::InvalidInput(format!(
            "no HTTP client here for {}",
            req.url.split('?').next().unwrap_or_default()
        )))
    }
}

impl InvokePort for Unset {
    async fn invoke(&self, function: &str, _payload: &serde_json::Value) -> Result<Invoked> {
        Err(crate::error::OkraError::InvalidInput(format!(
            "no Lambda client here for {function}"
        )))
    }
}

/// Secrets Manager, for third-party credentials.
pub trait SecretsPort: Send + Sync {
    /// The `SecretString` of a secret (name or ARN), current version.
    fn secret_string(&self, id: &str) -> impl Future<Output = Result<String>> + Send;
}

/// A hub cluster: where Argo CD's cluster secrets live, reached at its API endpoint with its CA
/// (both from DescribeCluster) and an EKS token of okra's own credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    /// The EKS cluster's name (the token's `x-k8s-aws-id`).
    pub cluster: String,
    /// `https://...`.
    pub endpoint: String,
    /// The base64 PEM of its certificate authority.
    pub ca_data: String,
}

/// The hub's Kubernetes API: Argo CD cluster secrets in one namespace (`okra-aws::kube`).
pub trait HubPort: Send + Sync {
    /// The secrets of `namespace` that match the label `selector`.
    fn list_secrets(
        &self,
        hub: &Hub,
        namespace: &str,
        selector: &str,
    ) -> impl Future<Output = Result<Vec<okra_core::argocd::StoredSecret>>> + Send;
    /// Creates or updates the secret (server-side apply, field manager `okra`, forced).
    fn apply_secret(
        &self,
        hub: &Hub,
        secret: &okra_core::argocd::ClusterSecret,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a secret; `false` when it was not there.
    fn delete_secret(
        &self,
        hub: &Hub,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Reads the namespace (the doctor: the hub answers okra's credentials).
    fn read_namespace(&self, hub: &Hub, namespace: &str)
    -> impl Future<Output = Result<()>> + Send;
}

impl HubPort for Unset {
    async fn list_secrets(
        &self,
        hub: &Hub,
        _namespace: &str,
        _selector: &str,
    ) -> Result<Vec<okra_core::argocd::StoredSecret>> {
        Err(unset_hub(hub))
    }
    async fn apply_secret(
        &self,
        hub: &Hub,
        _secret: &okra_core::argocd::ClusterSecret,
    ) -> Result<()> {
        Err(unset_hub(hub))
    }
    async fn delete_secret(&self, hub: &Hub, _namespace: &str, _name: &str) -> Result<bool> {
        Err(unset_hub(hub))
    }
    async fn read_namespace(&self, hub: &Hub, _namespace: &str) -> Result<()> {
        Err(unset_hub(hub))
    }
}

fn unset_hub(hub: &Hub) -> crate::error::OkraError {
    crate::error::OkraError::InvalidInput(format!(
        "no Kubernetes client here for hub {}",
        hub.cluster
    ))
}

impl AutoScalingPort for Unset {
    async fn attach_target_group(&self, asg: &str, _target_group_arn: &str) -> Result<()> {
        Err(crate::error::OkraError::InvalidInput(format!(
            "no Auto Scaling client here for {asg}"
        )))
    }
    async fn detach_target_group(&self, asg: &str, _target_group_arn: &str) -> Result<()> {
        Err(crate::error::OkraError::InvalidInput(format!(
            "no Auto Scaling client here for {asg}"
        )))
    }
}

/// EKS access entries, as `okra doctor` reads them (the `argocd-hub` check).
pub trait AccessEntryPort: Send + Sync {
    /// `principal`'s access entry on `cluster` with its access policies; `None` when it has none:
    /// DescribeAccessEntry, then ListAssociatedAccessPolicies (pages of 100).
    fn access_entry(
        &self,
        cluster: &str,
        principal: &str,
    ) -> impl Future<Output = Result<Option<okra_core::doctor::AccessEntryFacts>>> + Send;
}

/// ELB's account limits and the region's target groups, as `okra doctor` reads them (the
/// `target-group-quota` check).
pub trait AccountLimitsPort: Send + Sync {
    /// DescribeAccountLimits' `target-groups` (`None`: not listed).
    fn target_group_limit(&self) -> impl Future<Output = Result<Option<usize>>> + Send;
    /// How many target groups the region has: DescribeTargetGroups, pages of 400.
    fn count_target_groups(&self) -> impl Future<Output = Result<usize>> + Send;
}
