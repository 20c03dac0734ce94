//! What discovery reads from AWS, in the core's own terms.
//!
//! The adapters in `okra-aws` turn EKS clusters, ELBv2 target groups and a listener's forward
//! action into these types; nothing here knows about the SDK.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Tag on each target group okra makes: the cell it belongs to.
pub const TAG_CELL: &str = "okra.io/cell";
/// Tag on each target group okra makes: the version of its cluster.
pub const TAG_VERSION: &str = "okra.io/version";
/// Tag on each target group okra makes: its cluster's name.
pub const TAG_CLUSTER: &str = "okra.io/cluster";
/// Tag on each target group okra makes: who manages it.
pub const TAG_MANAGED_BY: &str = "okra.io/managed-by";
/// [`TAG_MANAGED_BY`]'s value on what okra makes (IAM conditions match it).
pub const MANAGED_BY_OKRA: &str = "okra";
/// Tag okra puts on a target group when it first sees it out of traffic (RFC 3339): the start
/// of its retirement's bake ([`crate::retire`]).
pub const TAG_IDLE_SINCE: &str = "okra.io/idle-since";
/// Tag okra puts on a cluster whose version it retired (RFC 3339): your infrastructure code may
/// delete it.
pub const TAG_RETIRED: &str = "okra.io/retired";

/// An EKS cluster's lifecycle status, as DescribeCluster reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    /// Serving: its target group may receive traffic.
    Active,
    /// Still being created: reported as pending, picked up when ACTIVE.
    Creating,
    /// Being updated (version or config); still serves.
    Updating,
    /// Being deleted: never a target.
    Deleting,
    /// Creation failed: never a target.
    Failed,
    /// Anything else EKS may add.
    Other,
}

impl ClusterStatus {
    /// Parses EKS's status string (`ACTIVE`, `CREATING`, ...).
    pub fn parse(s: &str) -> Self {
        match s {
            "ACTIVE" => Self::Active,
            "CREATING" => Self::Creating,
            "UPDATING" => Self::Updating,
            "DELETING" => Self::Deleting,
            "FAILED" => Self::Failed,
            _ => Self::Other,
        }
    }

    /// Whether a cluster in this status can serve traffic.
    pub fn serves(self) -> bool {
        matches!(self, Self::Active | Self::Updating)
    }
}

/// An EKS cluster as discovery sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// The cluster's name (unique per account and region).
    pub name: String,
    /// Its lifecycle status.
    pub status: ClusterStatus,
    /// Its tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The VPC its target group must live in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// How its Kubernetes API is reached (Argo CD registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<ClusterAccess>,
}

/// A cluster's ARN, API endpoint and certificate authority, as DescribeCluster gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAccess {
    /// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`.
    pub arn: String,
    /// `https://...eks.amazonaws.com` (none while the cluster is being created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The base64 PEM of its certificate authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_data: Option<String>,
}

/// A target group okra made (tagged with [`TAG_CELL`], [`TAG_VERSION`], [`TAG_CLUSTER`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroup {
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// The cluster it serves.
    pub cluster: String,
    /// The version tag of the cluster when the group was tagged.
    pub version: String,
    /// Tagged [`TAG_MANAGED_BY`] = [`MANAGED_BY_OKRA`]: okra made it, and may delete it.
    #[serde(default)]
    pub managed: bool,
    /// [`TAG_IDLE_SINCE`], in seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<u64>,
}

/// One target group and its weight in a forward action.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedTarget {
    /// The target group's ARN.
    pub target_group_arn: String,
    /// Its weight, 0-999 (relative to the others).
    pub weight: u32,
}

/// Target-group stickiness of a forward action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardStickiness {
    /// Whether it is on.
    pub enabled: bool,
    /// Seconds, 1-604800.
    pub duration_seconds: u32,
}

/// The forward action okra owns: target groups and their weights.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardAction {
    /// The target groups, in any order.
    #[serde(default)]
    pub targets: Vec<WeightedTarget>,
    /// Stickiness, kept as it is on every write unless the cell sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<ForwardStickiness>,
}

impl ForwardAction {
    /// The sum of all weights.
    pub fn total_weight(&self) -> u32 {
        self.targets.iter().map(|t| t.weight).sum()
    }

    /// Target group ARN → weight, without zero weights: two actions that send the same share
    /// to the same groups compare equal whatever the order and however zeros were written.
    pub fn effective(&self) -> BTreeMap<&str, u32> {
        self.targets
            .iter()
            .filter(|t| t.weight > 0)
            .map(|t| (t.target_group_arn.as_str(), t.weight))
            .collect()
    }

    /// Whether both actions send the same weights to the same target groups.
    pub fn same_weights(&self, other: &ForwardAction) -> bool {
        self.effective() == other.effective()
    }

    /// The target groups that receive traffic.
    pub fn serving(&self) -> BTreeSet<&str> {
        self.effective().into_keys().collect()
    }

    /// The share of traffic, in percent rounded to the nearest integer, that goes to `arns`.
    pub fn percent_to(&self, arns: &BTreeSet<&str>) -> u32 {
        let total = self.total_weight();
        if total == 0 {
            return 0;
        }
        let part: u32 = self
            .targets
            .iter()
            .filter(|t| arns.contains(t.target_group_arn.as_str()))
            .map(|t| t.weight)
            .sum();
        (part * 100 + total / 2) / total
    }
}

/// What the listener's owned action does now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum CurrentAction {
    /// A forward action (one or more weighted target groups).
    Forward(ForwardAction),
    /// Something else (fixed-response, redirect): no cluster serves yet.
    Other {
        /// The action's type, such as `fixed-response`.
        action_type: String,
    },
}

/// One action of a listener's (or listener rule's) chain, as the ELB API lists it: its `Type`
/// (`forward`, `fixed-response`, `redirect`, `authenticate-oidc`, ...) and its `Order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainAction<'a> {
    /// The ELB API's action type.
    pub action_type: &'a str,
    /// The action's order, when it has one.
    pub order: Option<i32>,
}

/// Where okra writes its forward action into a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardSlot {
    /// Replace the action at this index, keeping its order.
    Replace(usize),
    /// Append a new action with this order.
    Append(Option<i32>),
}

/// The action okra owns in a chain: the first `forward`.
pub fn owned_forward(chain: &[ChainAction<'_>]) -> Option<usize> {
    chain.iter().position(|a| a.action_type == "forward")
}

/// Where okra's forward action goes: over the forward action it owns; else over the
/// `fixed-response` or `redirect` that ends the chain (a listener before its first version);
/// else after the last action (authentication actions come first and are kept).
pub fn forward_slot(chain: &[ChainAction<'_>]) -> ForwardSlot {
    owned_forward(chain)
        .or_else(|| {
            chain
                .iter()
                .position(|a| matches!(a.action_type, "fixed-response" | "redirect"))
        })
        .map_or_else(
            || ForwardSlot::Append(chain.iter().filter_map(|a| a.order).max().map(|o| o + 1)),
            ForwardSlot::Replace,
        )
}

/// What a chain without a forward action does: its last action's type (`none` when empty).
pub fn other_action(chain: &[ChainAction<'_>]) -> CurrentAction {
    CurrentAction::Other {
        action_type: chain
            .iter()
            .rev()
            .find(|a| !a.action_type.is_empty())
            .map_or_else(|| "none".to_string(), |a| a.action_type.to_string()),
    }
}

impl CurrentAction {
    /// The target groups the action forwards to, at any weight, in its order (none when it
    /// does not forward).
    pub fn target_group_arns(&self) -> Vec<String> {
        match self {
            Self::Forward(fa) => fa
                .targets
                .iter()
                .map(|t| t.target_group_arn.clone())
                .collect(),
            Self::Other { .. } => Vec::new(),
        }
    }
}

/// Everything the decision needs, read in one discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// All EKS clusters of the account and region (the core applies the selector).
    pub clusters: Vec<Cluster>,
    /// The cell's target groups (tagged with the cell).
    pub target_groups: Vec<TargetGroup>,
    /// The listener's (or rule's) action now.
    pub action: CurrentAction,
    /// Versions that failed a rollout in this cell and are never retried automatically.
    #[serde(default)]
    pub blocklist: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain<'a>(types: &[(&'a str, Option<i32>)]) -> Vec<ChainAction<'a>> {
        types
            .iter()
            .map(|&(action_type, order)| ChainAction { action_type, order })
            .collect()
    }

    #[test]
    fn the_forward_goes_over_the_forward_else_the_end_of_the_chain_else_after_it() {
        let auth_then_forward = chain(&[("authenticate-oidc", Some(1)), ("forward", Some(2))]);
        assert_eq!(owned_forward(&auth_then_forward), Some(1));
        assert_eq!(forward_slot(&auth_then_forward), ForwardSlot::Replace(1));
        let fixed = chain(&[("authenticate-oidc", Some(1)), ("fixed-response", Some(2))]);
        assert_eq!(owned_forward(&fixed), None);
        assert_eq!(forward_slot(&fixed), ForwardSlot::Replace(1));
        assert_eq!(
            forward_slot(&chain(&[("redirect", None)])),
            ForwardSlot::Replace(0)
        );
        assert_eq!(
            forward_slot(&chain(&[("authenticate-cognito", Some(3))])),
            ForwardSlot::Append(Some(4))
        );
        assert_eq!(forward_slot(&[]), ForwardSlot::Append(None));
    }

    #[test]
    fn a_chain_without_forward_reads_as_its_last_action() {
        let other = |t: &str| CurrentAction::Other {
            action_type: t.to_string(),
        };
        assert_eq!(
            other_action(&chain(&[
                ("authenticate-oidc", Some(1)),
                ("redirect", Some(2))
            ])),
            other("redirect")
        );
        assert_eq!(other_action(&[]), other("none"));
    }
}
