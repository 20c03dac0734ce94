use super::*;

fn inst(id: &str) -> NodeInstance {
    NodeInstance {
        id: id.to_string(),
        security_groups: vec![],
        zone: None,
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

fn rule(protocol: &str, ports: Option<(i32, i32)>, cidrs: &[&str], groups: &[&str]) -> IngressRule {
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
        zones: Vec::new(),
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
        idle_since: None,
        managed: true,
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
    CellSpec::from_yaml(include_str!("../../../../examples/cells/web.yaml")).expect("web.yaml")
}

fn active(name: &str) -> Cluster {
    Cluster {
        access: None,
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
        zones: vec![],
    };
    let half = ClusterNodes {
        instances: 1,
        groups: vec![sg(
            "sg-half",
            vec![rule("tcp", Some((30080, 30080)), &[], &["sg-lb"])],
        )],
        zones: vec![],
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

/// Nodes in an Availability Zone the load balancer has not enabled: their targets stay unused
/// (Target.NotInUse). Some: a warning; all: an error (the gate can never pass).
#[test]
fn nodes_outside_the_load_balancer_s_zones_are_said() {
    let enabled = LoadBalancerSource {
        zones: s(&["eu-west-1a", "eu-west-1b"]),
        ..lb()
    };
    let nodes = |zones: &[&str]| ClusterNodes {
        instances: zones.len(),
        groups: vec![],
        zones: s(zones),
    };
    let ok = zone_check("a", &nodes(&["eu-west-1a", "eu-west-1b"]), &enabled).expect("a check");
    assert_eq!((ok.id.as_str(), ok.level), ("node-zones:a", Level::Ok));
    let some = zone_check("a", &nodes(&["eu-west-1a", "eu-west-1c"]), &enabled).expect("a check");
    assert_eq!(some.level, Level::Warning);
    assert!(
        some.summary
            .starts_with("nodes in eu-west-1c, which the load balancer has not enabled"),
        "{}",
        some.summary
    );
    assert!(
        some.fix
            .as_deref()
            .is_some_and(|f| f.contains("enable eu-west-1c"))
    );
    let none = zone_check("a", &nodes(&["eu-west-1c"]), &enabled).expect("a check");
    assert_eq!(none.level, Level::Error);
    assert!(
        none.summary.contains("the gate can never pass"),
        "{}",
        none.summary
    );
    // Zones not read on either side: no check.
    assert_eq!(zone_check("a", &nodes(&["eu-west-1c"]), &lb()), None);
}
