//! The EKS adapter (and the Auto Scaling one, which `registration: nodegroups` pairs with it)
//! against `aws-smithy-mocks`.

use std::collections::BTreeMap;

use aws_sdk_autoscaling as asg;
use aws_sdk_eks as eks;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use eks::Client;
use eks::operation::describe_cluster::{DescribeClusterError, DescribeClusterOutput};
use eks::operation::describe_nodegroup::DescribeNodegroupOutput;
use eks::operation::list_clusters::ListClustersOutput;
use eks::operation::list_nodegroups::ListNodegroupsOutput;
use eks::types::error::ResourceNotFoundException;
use eks::types::{
    AutoScalingGroup, Cluster as SdkCluster, ClusterStatus as SdkStatus, Nodegroup,
    NodegroupResources, VpcConfigResponse,
};
use okra_aws::OkraError;
use okra_aws::autoscaling::AutoScaling;
use okra_aws::eks::Eks;
use okra_aws::ports::{AutoScalingPort, ClusterPort};
use okra_core::model::{Cluster, ClusterStatus};
use pretty_assertions::assert_eq;

fn adapter(mode: RuleMode, rules: &[&Rule]) -> Eks {
    Eks::new(mock_client!(eks, mode, rules, |b| b
        .retry_config(RetryConfig::disabled())))
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

/// One ListClusters page: answers only the request with `token`, and checks the page size.
fn page(token: Option<&'static str>, clusters: Vec<String>, next: Option<&'static str>) -> Rule {
    mock!(Client::list_clusters)
        .match_requests(move |r| r.next_token() == token && r.max_results() == Some(100))
        .then_output(move || {
            ListClustersOutput::builder()
                .set_clusters(Some(clusters.clone()))
                .set_next_token(next.map(str::to_string))
                .build()
        })
}

#[tokio::test]
async fn list_clusters_follows_next_token_across_pages() {
    let (p1, p2, p3) = (
        page(None, names("a", 100), Some("t1")),
        page(Some("t1"), names("b", 100), Some("t2")),
        page(Some("t2"), names("c", 7), None),
    );
    // Sequential: the pages must be asked for in this order, each once.
    let got = adapter(RuleMode::Sequential, &[&p1, &p2, &p3])
        .list_clusters()
        .await
        .expect("lists");
    assert_eq!(got.len(), 207);
    assert_eq!(
        got,
        [names("a", 100), names("b", 100), names("c", 7)].concat()
    );
    assert_eq!((p1.num_calls(), p2.num_calls(), p3.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn an_empty_next_token_ends_the_listing() {
    let only = mock!(Client::list_clusters).then_output(|| {
        ListClustersOutput::builder()
            .clusters("one")
            .next_token("")
            .build()
    });
    let got = adapter(RuleMode::MatchAny, &[&only])
        .list_clusters()
        .await
        .expect("lists");
    assert_eq!(got, vec!["one".to_string()]);
    assert_eq!(only.num_calls(), 1);
}

#[tokio::test]
async fn describe_cluster_maps_status_tags_and_vpc() {
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
    assert!(matches!(err, OkraError::AccessDenied(_)), "{err:?}");

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
