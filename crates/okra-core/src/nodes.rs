//! A cluster's EC2 nodes: which instances its target group should hold
//! (`registration: instances`), and whether their security groups let the load balancer in
//! (`okra doctor`'s `node-access` check).
//!
//! Nodes are found by the tags EKS and the node provisioners put on them: `eks:cluster-name`
//! (managed node groups and Karpenter) and `kubernetes.io/cluster/<name>` = `owned` / `shared`
//! (self-managed nodes, the Kubernetes cloud provider's convention; the EKS user guide's
//! "Amazon EKS security group requirements" and "Self-managed nodes").

use std::collections::BTreeSet;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::doctor::{Check, Level};
use crate::model::{Cluster, ClusterStatus, CurrentAction, TargetGroup};
use crate::spec::{CellSpec, Registration};

/// The tag EKS puts on a managed node group's and Karpenter's instances.
pub const TAG_EKS_CLUSTER_NAME: &str = "eks:cluster-name";

/// The tag key of a self-managed node of cluster `name` (value `owned` or `shared`).
pub fn kubernetes_cluster_tag(name: &str) -> String {
    format!("kubernetes.io/cluster/{name}")
}

/// The values of [`kubernetes_cluster_tag`] that make an instance a node of the cluster.
pub const KUBERNETES_CLUSTER_TAG_VALUES: [&str; 2] = ["owned", "shared"];

/// One EC2 instance of a cluster (running).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInstance {
    /// The instance id.
    pub id: String,
    /// The security groups of its network interfaces.
    pub security_groups: Vec<String>,
    /// Its Availability Zone (`Placement.AvailabilityZone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// What to change so that a target group holds exactly a cluster's instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetSync {
    /// Instances of the cluster that are not registered yet.
    pub register: Vec<String>,
    /// Registered targets that are no instance of the cluster any more (terminated, stopped,
    /// or moved to another cluster).
    pub deregister: Vec<String>,
}

impl TargetSync {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.register.is_empty() && self.deregister.is_empty()
    }
}

/// The registrations and deregistrations that turn `registered` (the group's targets, draining
/// ones left out) into `instances` (the cluster's running instances). Sorted, so
/// that a task run twice sends the same calls.
pub fn plan_sync(registered: &[String], instances: &[NodeInstance]) -> TargetSync {
    let have: BTreeSet<&str> = registered.iter().map(String::as_str).collect();
    let want: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    TargetSync {
        register: want.difference(&have).map(|s| s.to_string()).collect(),
        deregister: have.difference(&want).map(|s| s.to_string()).collect(),
    }
}

/// The groups among `groups` that the owned forward action names, at any weight (0 included:
/// a group being readied is health-checked too): the ones whose registrations must follow their
/// cluster's nodes between rollouts. In `groups`' order.
pub fn groups_in_action<'a>(
    action: &CurrentAction,
    groups: &'a [TargetGroup],
) -> Vec<&'a TargetGroup> {
    let arns = action.target_group_arns();
    groups.iter().filter(|g| arns.contains(&g.arn)).collect()
}

/// One inbound rule of a security group, in EC2's terms (DescribeSecurityGroups'
/// `IpPermissions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, a protocol number, or `-1` (every protocol and port).
    pub protocol: String,
    /// The first port (None with protocol `-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    /// The last port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    /// IPv4 sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Security-group sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_groups: Vec<String>,
}

/// A security group and its inbound rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRules {
    /// The group id.
    pub id: String,
    /// Its inbound rules.
    pub ingress: Vec<IngressRule>,
}

/// Where the load balancer's traffic to targets comes from: its security groups (ALBs, and
/// NLBs made with some) and the address ranges of its subnets (its nodes' private addresses
/// are in them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSource {
    /// Its security groups.
    pub security_groups: Vec<String>,
    /// The IPv4 CIDR blocks of its subnets.
    pub subnet_cidrs: Vec<String>,
    /// The Availability Zones it has enabled (empty: not read).
    #[serde(default)]
    pub zones: Vec<String>,
}

fn covers_port(rule: &IngressRule, port: u16) -> bool {
    match rule.protocol.as_str() {
        "-1" | "all" => true,
        "tcp" | "6" => {
            let p = i32::from(port);
            // A tcp rule without ports is "every port" in some tools' output.
            rule.from_port.is_none_or(|f| f <= p) && rule.to_port.is_none_or(|t| p <= t)
        }
        _ => false,
    }
}

/// Whether `cidr` holds every address of every subnet of the load balancer (unparseable
/// blocks hold nothing). With no subnet known, only `0.0.0.0/0` surely holds them.
fn covers_subnets(cidr: &str, subnets: &[String]) -> bool {
    let Ok(net) = cidr.parse::<Ipv4Net>() else {
        return false;
    };
    if subnets.is_empty() {
        return net.prefix_len() == 0;
    }
    subnets.iter().all(|s| {
        s.parse::<Ipv4Net>()
            .is_ok_and(|sub| net.contains(&sub.network()) && net.contains(&sub.broadcast()))
    })
}

/// The first rule among `groups` that lets the load balancer reach TCP `port`, described
/// (`sg-1: tcp 30080 from sg-lb`), or None.
pub fn admitting_rule(
    groups: &[SecurityGroupRules],
    port: u16,
    lb: &LoadBalancerSource,
) -> Option<String> {
    for g in groups {
        for r in g.ingress.iter().filter(|r| covers_port(r, port)) {
            let ports = match (r.protocol.as_str(), r.from_port, r.to_port) {
                ("-1" | "all", _, _) => "all traffic".to_string(),
                (_, Some(f), Some(t)) if f == t => format!("tcp {f}"),
                (_, Some(f), Some(t)) => format!("tcp {f}-{t}"),
                _ => "tcp".to_string(),
            };
            if let Some(src) = r
                .source_groups
                .iter()
                .find(|s| lb.security_groups.contains(s))
            {
                return Some(format!("{}: {ports} from {src}", g.id));
            }
            if let Some(c) = r.cidrs.iter().find(|c| covers_subnets(c, &lb.subnet_cidrs)) {
                return Some(format!("{}: {ports} from {c}", g.id));
            }
        }
    }
    None
}

/// `node-zones:CLUSTER`: whether the cluster's nodes sit in Availability Zones the load balancer
/// has enabled. A target in a zone it has not enabled is never health-checked and never gets
/// traffic (ELB API reference, TargetHealth: `unused`, reason `Target.NotInUse`), and okra's
/// readiness gate does not count it. `None` when either side's zones were not read.
pub fn zone_check(cluster: &str, nodes: &ClusterNodes, lb: &LoadBalancerSource) -> Option<Check> {
    if lb.zones.is_empty() || nodes.zones.is_empty() {
        return None;
    }
    let id = format!("node-zones:{cluster}");
    let outside: Vec<&str> = nodes
        .zones
        .iter()
        .filter(|z| !lb.zones.contains(z))
        .map(String::as_str)
        .collect();
    if outside.is_empty() {
        return Some(Check::ok(
            id,
            format!(
                "the nodes are in {}, all enabled on the load balancer",
                nodes.zones.join(", ")
            ),
        ));
    }
    let level = if outside.len() == nodes.zones.len() {
        Level::Error
    } else {
        Level::Warning
    };
    Some(Check::not_ok(
        id,
        level,
        format!(
            "nodes in {}, which the load balancer has not enabled (it has {}): their targets stay \
             unused (Target.NotInUse), get no traffic and do not count for the readiness gate{}",
            outside.join(", "),
            lb.zones.join(", "),
            if level == Level::Error {
                "; no node is in an enabled zone, so the gate can never pass"
            } else {
                ""
            }
        ),
        format!(
            "enable {} on the load balancer (a subnet there: aws elbv2 set-subnets), or keep the \
             cluster's nodes in {}",
            outside.join(", "),
            lb.zones.join(", ")
        ),
    ))
}

/// A cluster's nodes, as the doctor reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNodes {
    /// How many running instances its tags find.
    pub instances: usize,
    /// Their security groups, with inbound rules.
    pub groups: Vec<SecurityGroupRules>,
    /// Their Availability Zones.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// What the `node-access` checks read. A fact that could not be read is `Err(why)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// The load balancer's security groups and subnets' blocks.
    pub source: Result<LoadBalancerSource, String>,
    /// Per cluster name.
    pub clusters: BTreeMap<String, Result<ClusterNodes, String>>,
}

impl Default for NodeFacts {
    /// Nothing read: no cluster is checked.
    fn default() -> Self {
        Self {
            source: Ok(LoadBalancerSource::default()),
            clusters: BTreeMap::new(),
        }
    }
}

/// The TCP ports the load balancer opens to targets: the target group's port, and the health
/// check's when it is a number of its own.
pub fn target_ports(cell: &CellSpec) -> Vec<u16> {
    let tg = &cell.target_group;
    let mut ports = vec![tg.port];
    if let Some(p) = tg
        .health_check
        .port
        .as_deref()
        .and_then(|p| p.parse::<u16>().ok())
        && p != tg.port
    {
        ports.push(p);
    }
    ports
}

/// One `node-access:CLUSTER` check per live cluster: some security group of its nodes admits the
/// load balancer on every port of [`target_ports`].
pub fn access_checks(cell: &CellSpec, clusters: &[Cluster], facts: &NodeFacts) -> Vec<Check> {
    let ports = target_ports(cell);
    let mut out = Vec::new();
    for c in clusters
        .iter()
        .filter(|c| c.status != ClusterStatus::Deleting)
    {
        let id = format!("node-access:{}", c.name);
        // A cluster whose nodes were not read (no load balancer to check them against) has no
        // check.
        let nodes = match facts.clusters.get(&c.name) {
            Some(Ok(n)) => n,
            Some(Err(why)) => {
                out.push(Check::not_ok(
                    id,
                    Level::Warning,
                    format!("the cluster's nodes could not be read: {why}"),
                    "allow ec2:DescribeInstances and ec2:DescribeSecurityGroups to whoever runs \
                     the doctor",
                ));
                continue;
            }
            None => continue,
        };
        let source = match &facts.source {
            Ok(s) => s,
            Err(why) => {
                out.push(Check::not_ok(
                    id,
                    Level::Warning,
                    format!(
                        "the load balancer's security groups and subnets could not be read: {why}"
                    ),
                    "allow ec2:DescribeSubnets and elasticloadbalancing:DescribeLoadBalancers to \
                     whoever runs the doctor",
                ));
                continue;
            }
        };
        if nodes.instances == 0 {
            let level = if cell.target_group.registration == Registration::Instances {
                Level::Error
            } else {
                Level::Warning
            };
            out.push(Check::not_ok(
                id,
                level,
                format!(
                    "no running EC2 instance is tagged {TAG_EKS_CLUSTER_NAME}={} or \
                     {}=owned|shared: nothing to register, nothing to check",
                    c.name,
                    kubernetes_cluster_tag(&c.name)
                ),
                "start the cluster's nodes (Fargate pods need aws-load-balancer-controller: \
                 registration: external, targetType: ip)",
            ));
            continue;
        }
        out.extend(zone_check(&c.name, nodes, source));
        let mut admitted = Vec::new();
        let mut refused = Vec::new();
        for &port in &ports {
            match admitting_rule(&nodes.groups, port, source) {
                Some(rule) => admitted.push(format!("tcp {port} by {rule}")),
                None => refused.push(port),
            }
        }
        let group_ids: Vec<&str> = nodes.groups.iter().map(|g| g.id.as_str()).collect();
        if refused.is_empty() {
            out.push(Check::ok(id, admitted.join("; ")));
            continue;
        }
        // From the load balancer's first security group, or from each of its subnets.
        let froms: Vec<String> = match source.security_groups.first() {
            Some(sg) => vec![format!("--source-group {sg}")],
            None if source.subnet_cidrs.is_empty() => vec!["--cidr VPC_CIDR".to_string()],
            None => source
                .subnet_cidrs
                .iter()
                .map(|c| format!("--cidr {c}"))
                .collect(),
        };
        let node_sg = group_ids.first().copied().unwrap_or("NODE_SG");
        let fix = refused
            .iter()
            .flat_map(|p| {
                froms.iter().map(move |from| {
                    format!(
                        "aws ec2 authorize-security-group-ingress --group-id {node_sg} --protocol tcp --port {p} {from}"
                    )
                })
            })
            .collect::<Vec<_>>()
            .join("; ");
        let sources = if source.security_groups.is_empty() {
            format!("its subnets {}", source.subnet_cidrs.join(", "))
        } else {
            source.security_groups.join(", ")
        };
        out.push(Check::not_ok(
            id,
            Level::Error,
            format!(
                "the nodes' security groups ({}) admit no traffic from the load balancer ({sources}) on tcp {}: health checks fail and no target turns healthy",
                if group_ids.is_empty() { "none found".to_string() } else { group_ids.join(", ") },
                refused.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            ),
            fix,
        ));
    }
    out
}

#[cfg(test)]
mod tests;
