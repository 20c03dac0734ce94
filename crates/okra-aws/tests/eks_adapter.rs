//! The EKS adapter (with EC2 for its nodes, and the Auto Scaling one, which `registration:
//! nodegroups` pairs with it)
//! against `aws-smithy-mocks`.

use std::collections::BTreeMap;

use aws_sdk_autoscaling as asg;
use aws_sdk_ec2 as ec2;
use aws_sdk_eks as eks;
use aws_sdk_resourcegroupstagging as tag;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use eks::Client;
use eks::operation::describe_cluster::{DescribeClusterError, DescribeClusterOutput};
use eks::operation::describe_nodegroup::DescribeNodegroupOutput;
use eks::operation::list_nodegroups::ListNodegroupsOutput;
use eks::types::error::ResourceNotFoundException;
use eks::types::{
    AutoScalingGroup, Cluster as SdkCluster, ClusterStatus as SdkStatus, Nodegroup,
    NodegroupResources, VpcConfigResponse,
};
use okra_aws::OkraError;
use okra_aws::autoscaling::AutoScaling;
use okra_aws::ec2::Ec2;
use okra_aws::eks::Eks;
use okra_aws::ports::{AutoScalingPort, ClusterPort};
use okra_aws::tagging::Tagging;
use okra_core::model::{Cluster, ClusterStatus};
use pretty_assertions::assert_eq;
use tag::operation::get_resources::{GetResourcesError, GetResourcesOutput};
use tag::types::ResourceTagMapping;
use tag::types::error::ThrottledException;

fn adapter(mode: RuleMode, rules: &[&Rule]) -> Eks {
    adapter_with(mode, rules, &[])
}

/// An adapter whose tagging API answers with `tagging`.
fn adapter_with(mode: RuleMode, rules: &[&Rule], tagging: &[&Rule]) -> Eks {
    adapter_full(mode, rules, tagging, &[])
}

/// An adapter whose tagging API answers with `tagging` and EC2 with `ec2_rules`.
fn adapter_full(mode: RuleMode, rules: &[&Rule], tagging: &[&Rule], ec2_rules: &[&Rule]) -> Eks {
    Eks::new(
        mock_client!(eks, mode, rules, |b| b
            .retry_config(RetryConfig::disabled())),
        Tagging::new(mock_client!(tag, mode, tagging, |b| b
            .retry_config(RetryConfig::disabled()))),
        Ec2::new(mock_client!(ec2, mode, ec2_rules, |b| b
            .retry_config(RetryConfig::disabled()))),
    )
}

fn cluster_arn(name: &str) -> String {
    format!("arn:aws:eks:eu-west-1:123456789012:cluster/{name}")
}

/// One GetResources page of EKS clusters: answers only the request with `token`, and checks
/// what is asked (EKS clusters, the selector's tags, 100 a page).
fn page(token: Option<&'static str>, arns: Vec<String>, next: &'static str) -> Rule {
    mock!(tag::Client::get_resources)
        .match_requests(move |r| {
            let filters: Vec<(&str, Vec<String>)> = r
                .tag_filters()
                .iter()
                .map(|f| (f.key().unwrap_or_default(), f.values().to_vec()))
                .collect();
            r.pagination_token() == token
                && r.resources_per_page() == Some(100)
                && r.resource_type_filters() == ["eks:cluster"]
                && filters
                    == vec![
                        ("okra.io/cell", vec!["web".to_string()]),
                        ("team", vec!["edge".to_string()]),
                    ]
        })
        .then_output(move || {
            GetResourcesOutput::builder()
                .set_resource_tag_mapping_list(Some(
                    arns.iter()
                        .map(|a| ResourceTagMapping::builder().resource_arn(a).build())
                        .collect(),
                ))
                .pagination_token(next)
                .build()
        })
}

fn selector() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("okra.io/cell".to_string(), "web".to_string()),
        ("team".to_string(), "edge".to_string()),
    ])
}

// AWS: Resource Groups Tagging API reference, GetResources: ResourceTypeFilters
// `service:resourceType`, TagFilters ANDed, ResourcesPerPage at most 100, PaginationToken empty
// on the last page.
#[tokio::test]
async fn find_clusters_asks_the_tagging_api_for_the_selector_and_follows_its_pages() {
    let arns = |prefix: &str, n: usize| -> Vec<String> {
        (0..n)
            .map(|i| cluster_arn(&format!("{prefix}{i:03}")))
            .collect()
    };
    let (p1, p2) = (
        page(None, arns("a", 100), "t1"),
        page(
            Some("t1"),
            [
                arns("b", 7),
                // Not clusters: node groups and add-ons carry the cluster's tags too.
                vec![
                    "arn:aws:eks:eu-west-1:123456789012:nodegroup/a000/ng/0ec5".to_string(),
                    "arn:aws:eks:eu-west-1:123456789012:addon/a000/vpc-cni/1a2b".to_string(),
                ],
            ]
            .concat(),
            "",
        ),
    );
    // Sequential: the pages must be asked for in this order, each once.
    let got = adapter_with(RuleMode::Sequential, &[], &[&p1, &p2])
        .find_clusters(&selector())
        .await
        .expect("finds");
    assert_eq!(got.len(), 107);
    assert_eq!(got[0], "a000");
    assert_eq!(got[106], "b006");
    assert_eq!((p1.num_calls(), p2.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_throttled_tagging_api_is_throttled() {
    let throttled = mock!(tag::Client::get_resources).then_error(|| {
        GetResourcesError::ThrottledException(
            ThrottledException::builder()
                .meta(ErrorMetadata::builder().code("ThrottledException").build())
                .build(),
        )
    });
    let e = adapter_with(RuleMode::MatchAny, &[], &[&throttled])
        .find_clusters(&selector())
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Throttled");
    assert!(e.is_transient());
}

#[tokio::test]
async fn describe_cluster_maps_status_tags_vpc_and_access() {
    let rule = mock!(Client::describe_cluster)
        .match_requests(|r| r.name() == Some("web-1"))
        .then_output(|| {
            DescribeClusterOutput::builder()
                .cluster(
                    SdkCluster::builder()
                        .name("web-1")
                        .status(SdkStatus::Creating)
                        .tags("okra.io/cell", "web")
                        .tags("okra.io/version", "1.2.0")
                        .resources_vpc_config(
                            VpcConfigResponse::builder().vpc_id("vpc-0abc").build(),
                        )
                        .arn("arn:aws:eks:us-east-1:111122223333:cluster/web-1")
                        .endpoint("https://ABC.gr7.us-east-1.eks.amazonaws.com")
                        .certificate_authority(
                            aws_sdk_eks::types::Certificate::builder()
                                .data("Q0E=")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let got = adapter(RuleMode::MatchAny, &[&rule])
        .describe_cluster("web-1")
        .await
        .expect("describes");
    assert_eq!(
        got,
        Some(Cluster {
            name: "web-1".into(),
            status: ClusterStatus::Creating,
            tags: BTreeMap::from([
                ("okra.io/cell".into(), "web".into()),
                ("okra.io/version".into(), "1.2.0".into())
            ]),
            vpc_id: Some("vpc-0abc".into()),
            access: Some(okra_core::model::ClusterAccess {
                arn: "arn:aws:eks:us-east-1:111122223333:cluster/web-1".into(),
                endpoint: Some("https://ABC.gr7.us-east-1.eks.amazonaws.com".into()),
                ca_data: Some("Q0E=".into()),
            }),
        })
    );
}

#[tokio::test]
async fn describe_cluster_maps_resource_not_found_to_none() {
    let modeled = mock!(Client::describe_cluster).then_error(|| {
        DescribeClusterError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("No cluster found for name: gone.")
                .meta(
                    ErrorMetadata::builder()
                        .code("ResourceNotFoundException")
                        .build(),
                )
                .build(),
        )
    });
    assert_eq!(
        adapter(RuleMode::MatchAny, &[&modeled])
            .describe_cluster("gone")
            .await
            .expect("no error"),
        None
    );

    // From the wire: EKS's REST-JSON error, parsed by the SDK.
    let wire = mock!(Client::describe_cluster).then_http_response(|| {
        let mut resp = HttpResponse::new(
            StatusCode::try_from(404).expect("a status"),
            SdkBody::from(r#"{"message":"No cluster found for name: gone."}"#),
        );
        resp.headers_mut()
            .insert("x-amzn-errortype", "ResourceNotFoundException");
        resp.headers_mut()
            .insert("content-type", "application/json");
        resp
    });
    assert_eq!(
        adapter(RuleMode::MatchAny, &[&wire])
            .describe_cluster("gone")
            .await
            .expect("no error"),
        None
    );
}

#[tokio::test]
async fn describe_cluster_passes_other_errors_on() {
    let denied = mock!(Client::describe_cluster).then_error(|| {
        DescribeClusterError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("no")
                .build(),
        )
    });
    let err = adapter(RuleMode::MatchAny, &[&denied])
        .describe_cluster("web-1")
        .await
        .expect_err("denied");
    assert!(matches!(err, OkraError::AccessDenied(..)), "{err:?}");

    let throttled = mock!(Client::describe_cluster).then_error(|| {
        DescribeClusterError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("slow down")
                .build(),
        )
    });
    let err = adapter(RuleMode::MatchAny, &[&throttled])
        .describe_cluster("web-1")
        .await
        .expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
}

#[tokio::test]
async fn node_group_asgs_lists_every_page_and_dedups() {
    let list = mock!(Client::list_nodegroups)
        .match_requests(|r| r.cluster_name() == Some("web-1"))
        .then_compute_output(|r| match r.next_token() {
            None => ListNodegroupsOutput::builder()
                .nodegroups("ng-a")
                .next_token("n1")
                .build(),
            Some(_) => ListNodegroupsOutput::builder().nodegroups("ng-b").build(),
        });
    let describe = mock!(Client::describe_nodegroup).then_compute_output(|r| {
        let asgs: &[&str] = match r.nodegroup_name() {
            Some("ng-a") => &["eks-ng-a-1", "eks-shared"],
            _ => &["eks-shared", "eks-ng-b-1"],
        };
        DescribeNodegroupOutput::builder()
            .nodegroup(
                Nodegroup::builder()
                    .resources(
                        NodegroupResources::builder()
                            .set_auto_scaling_groups(Some(
                                asgs.iter()
                                    .map(|n| AutoScalingGroup::builder().name(*n).build())
                                    .collect(),
                            ))
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let got = adapter(RuleMode::MatchAny, &[&list, &describe])
        .node_group_asgs("web-1")
        .await
        .expect("lists");
    assert_eq!(got, vec!["eks-ng-a-1", "eks-ng-b-1", "eks-shared"]);
    assert_eq!((list.num_calls(), describe.num_calls()), (2, 2));
}

/// A DescribeInstances answer of instances (id, security groups), one reservation each.
fn instances(
    found: &[(&str, &[&str])],
) -> ec2::operation::describe_instances::DescribeInstancesOutput {
    use ec2::types::{GroupIdentifier, Instance, Reservation};
    let mut out = ec2::operation::describe_instances::DescribeInstancesOutput::builder();
    for (id, groups) in found {
        let mut i = Instance::builder().instance_id(*id);
        for g in *groups {
            i = i.security_groups(GroupIdentifier::builder().group_id(*g).build());
        }
        out = out.reservations(Reservation::builder().instances(i.build()).build());
    }
    out.build()
}

#[tokio::test]
async fn cluster_instances_asks_ec2_by_both_tag_conventions_for_live_instances() {
    // EC2 ANDs filters: one query per tag convention, each for running instances.
    let filters = |r: &ec2::operation::describe_instances::DescribeInstancesInput| {
        r.filters()
            .iter()
            .map(|f| {
                (
                    f.name().unwrap_or_default().to_string(),
                    f.values().to_vec(),
                )
            })
            .collect::<Vec<_>>()
    };
    let state = (
        "instance-state-name".to_string(),
        vec!["running".to_string()],
    );
    let by_eks = mock!(ec2::Client::describe_instances)
        .match_requests(move |r| {
            filters(r)
                == vec![
                    (
                        "tag:eks:cluster-name".to_string(),
                        vec!["web-1".to_string()],
                    ),
                    state.clone(),
                ]
        })
        .then_compute_output(|r| match r.next_token() {
            None => {
                let mut out = instances(&[("i-karpenter", &["sg-node", "sg-extra"])]);
                out.next_token = Some("p2".into());
                out
            }
            Some(_) => instances(&[("i-managed", &["sg-node"])]),
        });
    let by_kubernetes = mock!(ec2::Client::describe_instances)
        .match_requests(|r| {
            r.filters().first().and_then(|f| f.name()) == Some("tag:kubernetes.io/cluster/web-1")
                && r.filters().first().map(|f| f.values().to_vec())
                    == Some(vec!["owned".to_string(), "shared".to_string()])
        })
        .then_output(|| {
            instances(&[
                ("i-self-managed", &["sg-self"]),
                ("i-managed", &["sg-node"]),
            ])
        });
    let got = adapter_full(RuleMode::MatchAny, &[], &[], &[&by_eks, &by_kubernetes])
        .cluster_instances("web-1")
        .await
        .expect("found");
    let ids: Vec<(&str, Vec<&str>)> = got
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.security_groups.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("i-karpenter", vec!["sg-extra", "sg-node"]),
            ("i-managed", vec!["sg-node"]),
            ("i-self-managed", vec!["sg-self"]),
        ]
    );
    assert_eq!((by_eks.num_calls(), by_kubernetes.num_calls()), (2, 1));
}

#[tokio::test]
async fn attach_target_group_sends_the_asg_and_the_arn() {
    use asg::operation::attach_load_balancer_target_groups::AttachLoadBalancerTargetGroupsOutput;
    let attach = mock!(asg::Client::attach_load_balancer_target_groups)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some("eks-ng-a-1") && r.target_group_arns() == ["arn:tg"]
        })
        .then_output(|| AttachLoadBalancerTargetGroupsOutput::builder().build());
    let client = mock_client!(asg, RuleMode::MatchAny, &[&attach], |b| b
        .retry_config(RetryConfig::disabled()));
    AutoScaling::new(client)
        .attach_target_group("eks-ng-a-1", "arn:tg")
        .await
        .expect("attaches");
    assert_eq!(attach.num_calls(), 1);
}

#[tokio::test]
async fn security_groups_and_subnets_are_read_in_the_core_s_terms() {
    use ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
    use ec2::operation::describe_subnets::DescribeSubnetsOutput;
    use ec2::types::{IpPermission, IpRange, SecurityGroup, Subnet, UserIdGroupPair};
    use okra_aws::ports::NetworkPort;
    use okra_core::nodes::{IngressRule, SecurityGroupRules};
    let groups = mock!(ec2::Client::describe_security_groups)
        .match_requests(|r| r.group_ids() == ["sg-node"])
        .then_output(|| {
            DescribeSecurityGroupsOutput::builder()
                .security_groups(
                    SecurityGroup::builder()
                        .group_id("sg-node")
                        .ip_permissions(
                            IpPermission::builder()
                                .ip_protocol("tcp")
                                .from_port(30000)
                                .to_port(32767)
                                .user_id_group_pairs(
                                    UserIdGroupPair::builder().group_id("sg-lb").build(),
                                )
                                .build(),
                        )
                        .ip_permissions(
                            IpPermission::builder()
                                .ip_protocol("-1")
                                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/16").build())
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let subnets = mock!(ec2::Client::describe_subnets)
        .match_requests(|r| r.subnet_ids() == ["subnet-1", "subnet-2"])
        .then_output(|| {
            DescribeSubnetsOutput::builder()
                .subnets(Subnet::builder().cidr_block("10.0.1.0/24").build())
                .subnets(Subnet::builder().cidr_block("10.0.2.0/24").build())
                .build()
        });
    let net = Ec2::new(mock_client!(
        ec2,
        RuleMode::MatchAny,
        &[&groups, &subnets],
        |b| b.retry_config(RetryConfig::disabled())
    ));
    assert_eq!(
        net.security_groups(&["sg-node".into()])
            .await
            .expect("reads"),
        [SecurityGroupRules {
            id: "sg-node".into(),
            ingress: vec![
                IngressRule {
                    protocol: "tcp".into(),
                    from_port: Some(30000),
                    to_port: Some(32767),
                    cidrs: vec![],
                    source_groups: vec!["sg-lb".into()],
                },
                IngressRule {
                    protocol: "-1".into(),
                    from_port: None,
                    to_port: None,
                    cidrs: vec!["10.0.0.0/16".into()],
                    source_groups: vec![],
                },
            ],
        }]
    );
    assert_eq!(
        net.subnet_cidrs(&["subnet-1".into(), "subnet-2".into()])
            .await
            .expect("reads"),
        ["10.0.1.0/24", "10.0.2.0/24"]
    );
    // Nothing to ask: no call.
    assert!(net.security_groups(&[]).await.expect("empty").is_empty());
    assert_eq!((groups.num_calls(), subnets.num_calls()), (1, 1));
}
