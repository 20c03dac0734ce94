//! The doctor's SDK reads against `aws-smithy-mocks`: the EKS adapter's access entries
//! (DescribeAccessEntry, ListAssociatedAccessPolicies) and `ElbLimits` (DescribeAccountLimits,
//! the region's DescribeTargetGroups pages).

use aws_sdk_ec2 as ec2;
use aws_sdk_eks as eks;
use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_sdk_resourcegroupstagging as tag;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use eks::operation::describe_access_entry::{DescribeAccessEntryError, DescribeAccessEntryOutput};
use eks::operation::list_associated_access_policies::ListAssociatedAccessPoliciesOutput;
use eks::types::error::ResourceNotFoundException;
use eks::types::{AccessEntry, AccessScope as SdkScope, AccessScopeType, AssociatedAccessPolicy};
use elbv2::operation::describe_account_limits::DescribeAccountLimitsOutput;
use elbv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use elbv2::types::{Limit, TargetGroup};
use okra_aws::ec2::Ec2;
use okra_aws::eks::Eks;
use okra_aws::handlers::doctor::ElbLimits;
use okra_aws::ports::{AccessEntryPort, AccountLimitsPort};
use okra_aws::tagging::Tagging;
use okra_core::doctor::{AccessEntryFacts, AccessPolicyFacts, AccessScope};
use pretty_assertions::assert_eq;

const ROLE: &str = "arn:aws:iam::123456789012:role/okra-DispatcherFunctionRole-1A2B3C";
const EDIT: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";
const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

fn eks_adapter(rules: &[&Rule]) -> Eks {
    Eks::new(
        mock_client!(eks, RuleMode::Sequential, rules, |b| b
            .retry_config(RetryConfig::disabled())),
        Tagging::new(mock_client!(tag, RuleMode::MatchAny, &[], |b| b
            .retry_config(RetryConfig::disabled()))),
        Ec2::new(mock_client!(ec2, RuleMode::MatchAny, &[], |b| b
            .retry_config(RetryConfig::disabled()))),
    )
}

fn limits(rules: &[&Rule]) -> ElbLimits {
    ElbLimits::new(mock_client!(elbv2, RuleMode::Sequential, rules, |b| b
        .retry_config(RetryConfig::disabled())))
}

// EKS API reference, DescribeAccessEntry: no entry for the principal is ResourceNotFound.
#[tokio::test]
async fn no_access_entry_is_none() {
    let describe = mock!(eks::Client::describe_access_entry)
        .match_requests(|r| r.cluster_name() == Some("hub") && r.principal_arn() == Some(ROLE))
        .then_error(|| {
            DescribeAccessEntryError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("The specified principalArn could not be found.")
                    .meta(
                        ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .build(),
                    )
                    .build(),
            )
        });
    let got = eks_adapter(&[&describe])
        .access_entry("hub", ROLE)
        .await
        .expect("no error");
    assert_eq!(got, None);
}

// ListAssociatedAccessPolicies: pages of up to 100, followed by nextToken.
#[tokio::test]
async fn an_entry_with_its_policies_over_pages() {
    let describe = mock!(eks::Client::describe_access_entry).then_output(|| {
        DescribeAccessEntryOutput::builder()
            .access_entry(
                AccessEntry::builder()
                    .cluster_name("hub")
                    .principal_arn(ROLE)
                    .kubernetes_groups("okra-writers")
                    .r#type("STANDARD")
                    .build(),
            )
            .build()
    });
    let first = mock!(eks::Client::list_associated_access_policies)
        .match_requests(|r| {
            r.cluster_name() == Some("hub")
                && r.principal_arn() == Some(ROLE)
                && r.max_results() == Some(100)
                && r.next_token().is_none()
        })
        .then_output(|| {
            ListAssociatedAccessPoliciesOutput::builder()
                .associated_access_policies(
                    AssociatedAccessPolicy::builder()
                        .policy_arn(EDIT)
                        .access_scope(
                            SdkScope::builder()
                                .r#type(AccessScopeType::Namespace)
                                .namespaces("argocd")
                                .build(),
                        )
                        .build(),
                )
                .next_token("t1")
                .build()
        });
    let second = mock!(eks::Client::list_associated_access_policies)
        .match_requests(|r| r.next_token() == Some("t1"))
        .then_output(|| {
            ListAssociatedAccessPoliciesOutput::builder()
                .associated_access_policies(
                    AssociatedAccessPolicy::builder()
                        .policy_arn(VIEW)
                        .access_scope(SdkScope::builder().r#type(AccessScopeType::Cluster).build())
                        .build(),
                )
                .build()
        });
    let got = eks_adapter(&[&describe, &first, &second])
        .access_entry("hub", ROLE)
        .await
        .expect("no error");
    assert_eq!(
        got,
        Some(AccessEntryFacts {
            kubernetes_groups: vec!["okra-writers".into()],
            policies: vec![
                AccessPolicyFacts {
                    policy_arn: EDIT.into(),
                    scope: AccessScope::Namespaces(vec!["argocd".into()]),
                },
                AccessPolicyFacts {
                    policy_arn: VIEW.into(),
                    scope: AccessScope::Cluster,
                },
            ],
        })
    );
}

// DescribeAccountLimits: `target-groups`, Max a string.
#[tokio::test]
async fn the_target_group_limit_from_the_account_limits() {
    let listed = mock!(elbv2::Client::describe_account_limits).then_output(|| {
        DescribeAccountLimitsOutput::builder()
            .limits(
                Limit::builder()
                    .name("application-load-balancers")
                    .max("50")
                    .build(),
            )
            .limits(Limit::builder().name("target-groups").max("3000").build())
            .build()
    });
    assert_eq!(
        limits(&[&listed]).target_group_limit().await.expect("read"),
        Some(3000)
    );
    let unlisted = mock!(elbv2::Client::describe_account_limits).then_output(|| {
        DescribeAccountLimitsOutput::builder()
            .limits(
                Limit::builder()
                    .name("network-load-balancers")
                    .max("50")
                    .build(),
            )
            .build()
    });
    assert_eq!(
        limits(&[&unlisted])
            .target_group_limit()
            .await
            .expect("read"),
        None
    );
}

// DescribeTargetGroups without a filter: the region's groups, 400 a page.
#[tokio::test]
async fn the_regions_target_groups_counted_over_pages() {
    let page = |n: usize, next: Option<&'static str>| {
        move || {
            let mut out = DescribeTargetGroupsOutput::builder();
            for i in 0..n {
                out = out.target_groups(
                    TargetGroup::builder()
                        .target_group_name(format!("tg-{i}"))
                        .build(),
                );
            }
            out.set_next_marker(next.map(str::to_string)).build()
        }
    };
    let first = mock!(elbv2::Client::describe_target_groups)
        .match_requests(|r| {
            r.page_size() == Some(400) && r.marker().is_none() && r.load_balancer_arn().is_none()
        })
        .then_output(page(400, Some("m1")));
    let second = mock!(elbv2::Client::describe_target_groups)
        .match_requests(|r| r.marker() == Some("m1"))
        .then_output(page(7, None));
    assert_eq!(
        limits(&[&first, &second])
            .count_target_groups()
            .await
            .expect("counted"),
        407
    );
}
