//! The strict moto throttles as AWS does (a token bucket per account, service and operation
//! group: ELB user guide, "Request throttling for the Elastic Load Balancing API"), and okra's
//! discovery gets through a burst with the SDK's adaptive retry. Its own stack: throttling is
//! the whole account's.

use crate::common;

use anyhow::Result;
use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata as _;
use aws_smithy_types::retry::RetryConfig;
use okra_aws::ports::ClusterPort as _;

#[tokio::test]
async fn a_burst_is_throttled_and_the_adaptive_retry_gets_through() -> Result<()> {
    static STACK: std::sync::OnceLock<std::result::Result<okra_testkit::LocalAws, String>> =
        std::sync::OnceLock::new();
    let aws = common::aws_with(common::stack_in(&STACK, common::builder)?).await?;
    let w = aws.world("throttle").await?;
    aws.cluster(&w, "a1", "1.0.0").await?;
    aws.local.set_throttling(true)?;
    aws.local.calls(true)?;

    // 60 DescribeTargetGroups at once, no retries: the 40-token Describe bucket runs dry.
    let conf = aws.local.sdk_config().await;
    let no_retry = elb::Client::from_conf(
        elb::config::Builder::from(&conf)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let calls = (0..60).map(|_| no_retry.describe_target_groups().send());
    let answers = futures::future::join_all(calls).await;
    let throttled = answers
        .iter()
        .filter(|a| {
            a.as_ref()
                .err()
                .and_then(|e| e.as_service_error().and_then(|s| s.code()))
                == Some("Throttling")
        })
        .count();
    assert!(
        (10..=25).contains(&throttled),
        "60 calls at once on a bucket of 40 (10/s): {throttled} throttled"
    );
    let counted = aws.local.calls(false)?;
    assert_eq!(
        counted["elasticloadbalancing:DescribeTargetGroups"]["throttled"],
        serde_json::json!(throttled)
    );

    // okra's adapters with the SDK's adaptive mode (as template.yaml deploys them) get through
    // a burst of their own: 30 concurrent cluster lookups on the 20-token tagging bucket.
    let adaptive = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(aws.local.endpoint())
        .region(aws_config::Region::new(aws.local.region()))
        .credentials_provider(conf.credentials_provider().unwrap())
        .retry_config(RetryConfig::adaptive().with_max_attempts(5))
        .load()
        .await;
    let eks = okra_aws::eks::Eks::from_config(&adaptive);
    let selector = [("okra-test".to_string(), w.prefix.clone())].into();
    let lookups = (0..30).map(|_| eks.find_clusters(&selector));
    let found = futures::future::join_all(lookups).await;
    for f in &found {
        assert_eq!(f.as_ref().map(Vec::len).ok(), Some(1), "{f:?}");
    }
    let counted = aws.local.calls(false)?;
    assert!(
        counted["tagging:GetResources"]["throttled"].as_u64() > Some(0),
        "the burst was throttled, and retried: {counted}"
    );
    aws.local.set_throttling(false)?;
    Ok(())
}
