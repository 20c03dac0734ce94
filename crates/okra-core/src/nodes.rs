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

/// A cluster's nodes, as the doctor reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNodes {
    /// How many running instances its tags find.
    pub instances: usize,
    /// Their security groups, with inbound rules.
    pub groups: Vec<SecurityGroupRules>,
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
mod tests {
    use super::*;

    fn inst(id: &str) -> NodeInstance {
        NodeInstance {
            id: id.to_string(),
            security_groups: vec![],
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sync_registers_the_new_and_deregisters_the_gone() {
        let plan = plan_sync(
            &s(&["i-b", "i-a", "i-old"]),
            &[inst("i-c"), inst("i-a"), inst("i-b")],
        );
        assert_eq!(plan.register, s(&["i-c"]));
        assert_eq!(plan.deregister, s(&["i-old"]));
        assert!(plan_sync(&s(&["i-a"]), &[inst("i-a")]).is_empty());
        assert_eq!(plan_sync(&[], &[]), TargetSync::default());
    }

    fn rule(
        protocol: &str,
        ports: Option<(i32, i32)>,
        cidrs: &[&str],
        groups: &[&str],
    ) -> IngressRule {
        IngressRule {
            protocol: protocol.to_string(),
            from_port: ports.map(|p| p.0),
            to_port: ports.map(|p| p.1),
            cidrs: s(cidrs),
            source_groups: s(groups),
        }
    }

    fn sg(id: &str, rules: Vec<IngressRule>) -> SecurityGroupRules {
        SecurityGroupRules {
            id: id.to_string(),
            ingress: rules,
        }
    }

    fn lb() -> LoadBalancerSource {
        LoadBalancerSource {
            security_groups: s(&["sg-lb"]),
            subnet_cidrs: s(&["10.0.1.0/24", "10.0.2.0/24"]),
        }
    }

    #[test]
    fn a_rule_from_the_load_balancer_s_group_on_the_port_admits() {
        let groups = [sg(
            "sg-node",
            vec![rule("tcp", Some((30000, 32767)), &[], &["sg-lb"])],
        )];
        assert_eq!(
            admitting_rule(&groups, 30080, &lb()).as_deref(),
            Some("sg-node: tcp 30000-32767 from sg-lb")
        );
        assert_eq!(
            admitting_rule(&groups, 8080, &lb()),
            None,
            "port outside the range"
        );
        let other = [sg(
            "sg-node",
            vec![rule("tcp", Some((30080, 30080)), &[], &["sg-other"])],
        )];
        assert_eq!(
            admitting_rule(&other, 30080, &lb()),
            None,
            "another group's traffic"
        );
        let udp = [sg(
            "sg-node",
            vec![rule("udp", Some((30080, 30080)), &[], &["sg-lb"])],
        )];
        assert_eq!(admitting_rule(&udp, 30080, &lb()), None, "udp is not tcp");
        let all = [sg("sg-node", vec![rule("-1", None, &[], &["sg-lb"])])];
        assert_eq!(
            admitting_rule(&all, 30080, &lb()).as_deref(),
            Some("sg-node: all traffic from sg-lb")
        );
    }

    #[test]
    fn a_cidr_rule_admits_only_when_it_holds_every_subnet_of_the_load_balancer() {
        let vpc = [sg(
            "sg-node",
            vec![rule("tcp", Some((80, 80)), &["10.0.0.0/16"], &[])],
        )];
        assert_eq!(
            admitting_rule(&vpc, 80, &lb()).as_deref(),
            Some("sg-node: tcp 80 from 10.0.0.0/16")
        );
        let one = [sg(
            "sg-node",
            vec![rule("tcp", Some((80, 80)), &["10.0.1.0/24"], &[])],
        )];
        assert_eq!(
            admitting_rule(&one, 80, &lb()),
            None,
            "only one of the two subnets"
        );
        let anywhere = [sg(
            "sg-node",
            vec![rule("tcp", Some((80, 80)), &["0.0.0.0/0"], &[])],
        )];
        assert!(admitting_rule(&anywhere, 80, &lb()).is_some());
        let unknown = LoadBalancerSource::default();
        assert_eq!(
            admitting_rule(&vpc, 80, &unknown),
            None,
            "no subnet known: only anywhere"
        );
        assert!(admitting_rule(&anywhere, 80, &unknown).is_some());
        let junk = [sg(
            "sg-node",
            vec![rule("tcp", Some((80, 80)), &["not-a-cidr"], &[])],
        )];
        assert_eq!(admitting_rule(&junk, 80, &lb()), None);
    }

    #[test]
    fn only_the_groups_the_action_names_are_synced() {
        use crate::model::{ForwardAction, WeightedTarget};
        let tg = |arn: &str| TargetGroup {
            arn: arn.to_string(),
            name: arn.to_string(),
            cluster: format!("c-{arn}"),
            version: "1.0.0".to_string(),
        };
        let groups = [tg("a"), tg("b"), tg("c")];
        let action = CurrentAction::Forward(ForwardAction {
            targets: vec![
                WeightedTarget {
                    target_group_arn: "c".into(),
                    weight: 0,
                },
                WeightedTarget {
                    target_group_arn: "a".into(),
                    weight: 100,
                },
                WeightedTarget {
                    target_group_arn: "other".into(),
                    weight: 5,
                },
            ],
            stickiness: None,
        });
        let names: Vec<&str> = groups_in_action(&action, &groups)
            .iter()
            .map(|g| g.arn.as_str())
            .collect();
        assert_eq!(names, ["a", "c"]);
        let other = CurrentAction::Other {
            action_type: "fixed-response".into(),
        };
        assert!(groups_in_action(&other, &groups).is_empty());
    }

    fn web() -> CellSpec {
        CellSpec::from_yaml(include_str!("../../../examples/cells/web.yaml")).expect("web.yaml")
    }

    fn active(name: &str) -> Cluster {
        Cluster {
            name: name.into(),
            status: ClusterStatus::Active,
            tags: BTreeMap::new(),
            vpc_id: None,
        }
    }

    fn facts(nodes: Vec<(&str, Result<ClusterNodes, String>)>) -> NodeFacts {
        NodeFacts {
            source: Ok(lb()),
            clusters: nodes.into_iter().map(|(c, n)| (c.to_string(), n)).collect(),
        }
    }

    #[test]
    fn node_access_is_checked_per_cluster_on_the_target_and_health_check_ports() {
        let mut cell = web();
        cell.target_group.port = 30080;
        cell.target_group.health_check.port = Some("30081".into());
        assert_eq!(target_ports(&cell), [30080, 30081]);
        let open = ClusterNodes {
            instances: 2,
            groups: vec![sg(
                "sg-node",
                vec![rule("tcp", Some((30000, 32767)), &[], &["sg-lb"])],
            )],
        };
        let half = ClusterNodes {
            instances: 1,
            groups: vec![sg(
                "sg-half",
                vec![rule("tcp", Some((30080, 30080)), &[], &["sg-lb"])],
            )],
        };
        let checks = access_checks(
            &cell,
            &[active("a"), active("b"), active("c"), active("d")],
            &facts(vec![
                ("a", Ok(open)),
                ("b", Ok(half)),
                ("c", Ok(ClusterNodes::default())),
                ("d", Err("AccessDenied".into())),
            ]),
        );
        let got: Vec<(&str, Level)> = checks.iter().map(|c| (c.id.as_str(), c.level)).collect();
        assert_eq!(
            got,
            [
                ("node-access:a", Level::Ok),
                ("node-access:b", Level::Error),
                ("node-access:c", Level::Warning),
                ("node-access:d", Level::Warning),
            ]
        );
        assert!(
            checks[0]
                .summary
                .contains("tcp 30080 by sg-node: tcp 30000-32767 from sg-lb"),
            "{}",
            checks[0].summary
        );
        assert!(
            checks[1].summary.contains("(sg-half)") && checks[1].summary.contains("tcp 30081"),
            "{}",
            checks[1].summary
        );
        assert_eq!(
            checks[1].fix.as_deref(),
            Some(
                "aws ec2 authorize-security-group-ingress --group-id sg-half --protocol tcp --port 30081 --source-group sg-lb"
            )
        );

        // With `registration: instances`, no instance is a rollout that would fail.
        cell.target_group.registration = Registration::Instances;
        let checks = access_checks(
            &cell,
            &[active("c")],
            &facts(vec![("c", Ok(ClusterNodes::default()))]),
        );
        assert_eq!(checks[0].level, Level::Error);
    }

    #[test]
    fn the_tags_of_a_node() {
        assert_eq!(kubernetes_cluster_tag("blue"), "kubernetes.io/cluster/blue");
    }
}
