//! The local AWS is as strict as AWS where okra depends on it (tools/local-aws/strict_moto.py):
//! target health with real health checks, the constraints of forward actions and targets, and
//! CloudWatch: metric identity, metric math and its current wire protocol.
//! Plain moto answers `healthy` for any registered target and accepts every action below
//! (measured on moto 5.2.5: an unattached group with registered targets, 6 groups in one action,
//! weight 1000, a group of another VPC, 127.0.0.1 as an ip target).

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{aws, forward};
use anyhow::{Context as _, Result};
use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata as _;
use elb::types::{Action, ActionTypeEnum, Matcher, TargetDescription, TargetTypeEnum};
use okra_testkit::{Backend, BackendMode, LocalAws};

async fn ip_group(aws: &common::Aws, name: &str, vpc: &str) -> Result<String> {
    let out = aws
        .elb
        .create_target_group()
        .name(name)
        .protocol(elb::types::ProtocolEnum::Http)
        .port(30080)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Ip)
        .health_check_path("/healthz")
        .matcher(Matcher::builder().http_code("200-399").build())
        .send()
        .await?;
    Ok(out.target_groups()[0]
        .target_group_arn()
        .context("an ARN")?
        .to_string())
}

/// `(state, reason)` of the group's one target.
async fn health(aws: &common::Aws, tg: &str) -> Result<(String, Option<String>)> {
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await?;
    let h = out.target_health_descriptions()[0]
        .target_health()
        .context("a health")?;
    Ok((
        h.state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        h.reason().map(|r| r.as_str().to_string()),
    ))
}

async fn wait_for(aws: &common::Aws, tg: &str, state: &str) -> Result<(String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(aws, tg).await?;
        if h.0 == state {
            return Ok(h);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "still {h:?}, waiting for {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ELB API reference, TargetHealth (`unused` / `Target.NotInUse`, `initial` /
/// `Elb.InitialHealthChecking`, `draining` / `Target.DeregistrationInProgress`); ALB guide,
/// "Health checks for Application Load Balancer target groups" (only groups a rule forwards to
/// are checked; a new target needs one passing check).
#[tokio::test(flavor = "multi_thread")]
async fn targets_are_unused_until_a_rule_forwards_then_checked_for_real() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("health").await?;
    let tg = ip_group(&aws, &LocalAws::unique("hc"), &w.vpc_id).await?;
    let backend = Backend::start("v1")?;
    aws.local.map_target("10.0.1.5", 30080, &backend)?;
    aws.elb
        .register_targets()
        .target_group_arn(&tg)
        .targets(
            TargetDescription::builder()
                .id("10.0.1.5")
                .port(30080)
                .build(),
        )
        .send()
        .await?;
    assert_eq!(
        health(&aws, &tg).await?,
        ("unused".into(), Some("Target.NotInUse".into()))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(backend.requests(), 0, "a group no rule uses is not checked");

    // In the listener's forward action at weight 0: checked, and healthy after one pass.
    aws.elb
        .modify_listener()
        .listener_arn(&w.listener_arn)
        .default_actions(forward(&[(&tg, 0)]))
        .send()
        .await?;
    wait_for(&aws, &tg, "healthy").await?;
    assert!(backend.requests() > 0);

    backend.set(BackendMode::Unhealthy);
    let (_, reason) = wait_for(&aws, &tg, "unhealthy").await?;
    assert_eq!(reason.as_deref(), Some("Target.ResponseCodeMismatch"));
    backend.set(BackendMode::Down);
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(&aws, &tg).await?.1.as_deref() != Some("Target.Timeout") {
        anyhow::ensure!(Instant::now() < deadline, "never Target.Timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    aws.elb
        .deregister_targets()
        .target_group_arn(&tg)
        .targets(
            TargetDescription::builder()
                .id("10.0.1.5")
                .port(30080)
                .build(),
        )
        .send()
        .await?;
    let out = aws
        .elb
        .describe_target_health()
        .target_group_arn(&tg)
        .targets(
            TargetDescription::builder()
                .id("10.0.1.5")
                .port(30080)
                .build(),
        )
        .send()
        .await?;
    let h = out.target_health_descriptions()[0].target_health().unwrap();
    assert_eq!(h.state().map(|s| s.as_str()), Some("draining"));
    Ok(())
}

/// ELB API reference, ModifyListener and RegisterTargets; ALB guide, "Listener rules" (at most
/// 5 target groups per forward action, weights 0-999, groups in the load balancer's VPC),
/// "Quotas for your Application Load Balancers" (one load balancer per target group) and
/// "Target groups" (ip targets: the VPC's CIDR, RFC 1918 or RFC 6598 ranges).
#[tokio::test(flavor = "multi_thread")]
async fn forward_actions_and_targets_meet_the_elb_constraints() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("cons").await?;
    let mut groups = Vec::new();
    for i in 0..6 {
        groups.push(ip_group(&aws, &format!("{}-{i}", LocalAws::unique("c")), &w.vpc_id).await?);
    }
    let code = |e: &elb::error::SdkError<_, _>| {
        let e: &elb::operation::modify_listener::ModifyListenerError =
            e.as_service_error().unwrap();
        e.code().unwrap_or_default().to_string()
    };
    let modify = |action: Action| {
        aws.elb
            .modify_listener()
            .listener_arn(&w.listener_arn)
            .default_actions(action)
            .send()
    };
    let six: Vec<(&str, i32)> = groups.iter().map(|g| (g.as_str(), 1)).collect();
    let err = modify(forward(&six)).await.expect_err("6 groups");
    assert_eq!(code(&err), "ValidationError");
    let err = modify(forward(&[(&groups[0], 1000)]))
        .await
        .expect_err("weight 1000");
    assert_eq!(code(&err), "ValidationError");
    let missing = groups[0].replace(&groups[0][groups[0].len() - 16..], "0000000000000000");
    let err = modify(forward(&[(&missing, 1)]))
        .await
        .expect_err("missing group");
    assert_eq!(code(&err), "TargetGroupNotFound");
    let (other_vpc, _) = aws.local.create_vpc_with_subnets()?;
    let elsewhere = ip_group(&aws, &LocalAws::unique("vpc"), &other_vpc).await?;
    let err = modify(forward(&[(&elsewhere, 1)]))
        .await
        .expect_err("another VPC");
    assert_eq!(code(&err), "InvalidConfigurationRequest");
    // Five, weights in range: accepted.
    modify(forward(&six[..5])).await?;
    // A group another load balancer uses: refused (ALB quotas, "Load balancers per target
    // group": 1).
    let (_, other_listener) = aws
        .local
        .create_alb_with_listener(&LocalAws::unique("lb-other"), &w.subnets)?;
    let err = aws
        .elb
        .modify_listener()
        .listener_arn(&other_listener)
        .default_actions(forward(&[(&groups[0], 1)]))
        .send()
        .await
        .expect_err("a group of another load balancer");
    assert_eq!(code(&err), "TargetGroupAssociationLimit");

    let err = aws
        .elb
        .register_targets()
        .target_group_arn(&groups[0])
        .targets(
            TargetDescription::builder()
                .id("127.0.0.1")
                .port(30080)
                .build(),
        )
        .send()
        .await
        .expect_err("loopback is no VPC address");
    assert_eq!(
        err.as_service_error().and_then(|e| e.code()),
        Some("InvalidTarget")
    );
    Ok(())
}

/// A metric is its namespace, name and every dimension (CloudWatch concepts, "Metrics",
/// "Dimensions"; API reference, GetMetricData). moto 5.2.5 answered a query of namespace A with
/// the sum of A's and B's datapoints when the query had dimensions (measured), so a wrong
/// namespace in a cell's `metricDataQueries` passed here and read nothing on AWS.
#[tokio::test(flavor = "multi_thread")]
async fn a_metric_query_reads_exactly_its_namespace_name_and_dimensions() -> Result<()> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    let aws = aws().await?;
    let cell = LocalAws::unique("cw");
    aws.put_metric("Okra/A", "Errors", &[("Cell", &cell)], 1.0)
        .await?;
    aws.put_metric("Okra/B", "Errors", &[("Cell", &cell)], 5.0)
        .await?;
    let query = |ns: &str, dims: bool| {
        let mut metric = Metric::builder().namespace(ns).metric_name("Errors");
        if dims {
            metric = metric.dimensions(Dimension::builder().name("Cell").value(&cell).build());
        }
        MetricDataQuery::builder()
            .id("m")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric.build())
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .return_data(true)
            .build()
    };
    let now = std::time::SystemTime::now();
    let read = |q: MetricDataQuery| {
        aws.cw
            .get_metric_data()
            .metric_data_queries(q)
            .start_time(aws_smithy_types::DateTime::from(
                now - Duration::from_secs(600),
            ))
            .end_time(aws_smithy_types::DateTime::from(now))
            .send()
    };
    let sum = |out: aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput| {
        out.metric_data_results()
            .iter()
            .flat_map(|r| r.values().to_vec())
            .sum::<f64>()
    };
    assert_eq!(sum(read(query("Okra/A", true)).await?), 1.0);
    assert_eq!(sum(read(query("Okra/B", true)).await?), 5.0);
    assert_eq!(
        sum(read(query("Okra/A", false)).await?),
        0.0,
        "a metric without dimensions is another metric"
    );
    Ok(())
}

/// Metric math ("Use metric math", CloudWatch user guide): an expression over the call's other
/// queries is computed, element-wise; the inputs with `ReturnData: false` are not returned; an
/// expression the local AWS cannot compute is refused, never answered with nothing (moto 5.2.5
/// answered every expression but a bare id with no datapoints).
#[tokio::test(flavor = "multi_thread")]
async fn metric_math_is_computed_or_refused() -> Result<()> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    let aws = aws().await?;
    let cell = LocalAws::unique("math");
    aws.put_metric("Okra/Math", "Errors", &[("Cell", &cell)], 2.0)
        .await?;
    aws.put_metric("Okra/Math", "Requests", &[("Cell", &cell)], 100.0)
        .await?;
    let stat = |id: &str, name: &str| {
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("Okra/Math")
                            .metric_name(name)
                            .dimensions(Dimension::builder().name("Cell").value(&cell).build())
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .return_data(false)
            .build()
    };
    let expr = |e: &str| {
        MetricDataQuery::builder()
            .id("ratio")
            .expression(e)
            .return_data(true)
            .build()
    };
    let now = std::time::SystemTime::now();
    let read = |e: &str| {
        aws.cw
            .get_metric_data()
            .metric_data_queries(stat("errors", "Errors"))
            .metric_data_queries(stat("requests", "Requests"))
            .metric_data_queries(expr(e))
            .start_time(aws_smithy_types::DateTime::from(
                now - Duration::from_secs(600),
            ))
            .end_time(aws_smithy_types::DateTime::from(now))
            .send()
    };
    let out = read("errors / requests").await?;
    let results = out.metric_data_results();
    assert_eq!(results.len(), 1, "only the expression returns: {results:?}");
    assert_eq!(results[0].id(), Some("ratio"));
    assert_eq!(results[0].values(), [0.02]);
    let err = read("FILL(errors, 0)")
        .await
        .expect_err("not computed here");
    assert_eq!(
        err.as_service_error()
            .and_then(aws_sdk_cloudwatch::error::ProvideErrorMetadata::code),
        Some("ValidationError")
    );
    Ok(())
}

/// CloudWatch's current wire protocol is Smithy RPC v2 CBOR (Smithy's "RPC v2 CBOR protocol"
/// specification; the service model's `protocols` list puts `smithy-rpc-v2-cbor` first, and
/// aws-sdk-cloudwatch speaks it from 1.100): `POST /service/GraniteServiceVersion20100801/
/// operation/<Operation>` with `smithy-protocol: rpc-v2-cbor`, a CBOR body, a CBOR answer with the
/// same header, and errors naming their code in `__type` and, as the service is
/// awsQueryCompatible, in `x-amzn-query-error`. moto 5.2.5 reads only awsQuery for CloudWatch
/// (okra pinned aws-sdk-cloudwatch to 1.99 for it); the strict stack translates. The SDK's own
/// calls (the two tests above, okra's check-metrics) go this way; this test pins the wire.
#[test]
fn cloudwatch_answers_its_current_protocol_rpc_v2_cbor() -> Result<()> {
    let local = common::stack()?;
    // (status, lower-cased headers, body)
    type Answer = (u16, Vec<(String, String)>, Vec<u8>);
    let call = |operation: &str, body: &[u8]| -> Result<Answer> {
        let r = ureq::post(format!(
            "{}/service/GraniteServiceVersion20100801/operation/{operation}",
            local.endpoint()
        ))
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("Content-Type", "application/cbor")
        .header("Accept", "application/cbor")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/monitoring/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .config()
        .http_status_as_error(false)
        .build()
        .send(body)?;
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let body = r.into_body().read_to_vec()?;
        Ok((status, headers, body))
    };
    let header = |hs: &[(String, String)], name: &str| {
        hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    // ListMetrics with an empty input: the CBOR empty map.
    let (status, headers, body) = call("ListMetrics", &[0xa0])?;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "smithy-protocol").as_deref(),
        Some("rpc-v2-cbor")
    );
    assert_eq!(
        header(&headers, "content-type").as_deref(),
        Some("application/cbor")
    );
    assert_eq!(
        body.first().map(|b| b >> 5),
        Some(5),
        "a CBOR map: {body:?}"
    );
    // A call without its required members (no MetricDataQueries): AWS's MissingParameter
    // (CloudWatch API reference, "Common Errors") in the protocol's error shape.
    let (status, headers, body) = call("GetMetricData", &[0xa0])?;
    assert_eq!(status, 400);
    let code = header(&headers, "x-amzn-query-error").unwrap_or_default();
    assert_eq!(code, "MissingParameter;Sender", "{headers:?}");
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("__type") && text.contains("com.amazonaws.cloudwatch#MissingParameter"),
        "{text}"
    );
    Ok(())
}

/// ELB API reference, AuthenticateOidcActionConfig: DescribeListeners never returns the client
/// secret, so a modify that copies an `authenticate-oidc` action needs `ClientSecret` or
/// `UseExistingClientSecret: true` (moto accepted it without either).
#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_action_without_its_secret_is_refused() -> Result<()> {
    use elb::types::AuthenticateOidcActionConfig;
    let aws = aws().await?;
    let w = aws.world("oidc").await?;
    let tg = ip_group(&aws, &LocalAws::unique("oidc"), &w.vpc_id).await?;
    let oidc = |existing: Option<bool>| {
        Action::builder()
            .r#type(ActionTypeEnum::AuthenticateOidc)
            .order(1)
            .authenticate_oidc_config(
                AuthenticateOidcActionConfig::builder()
                    .issuer("https://idp.example.com")
                    .authorization_endpoint("https://idp.example.com/authorize")
                    .token_endpoint("https://idp.example.com/token")
                    .user_info_endpoint("https://idp.example.com/userinfo")
                    .client_id("okra")
                    .set_use_existing_client_secret(existing)
                    .build(),
            )
            .build()
    };
    let fwd = || {
        let mut a = forward(&[(&tg, 1)]);
        a.order = Some(2);
        a
    };
    let err = aws
        .elb
        .modify_listener()
        .listener_arn(&w.listener_arn)
        .default_actions(oidc(None))
        .default_actions(fwd())
        .send()
        .await
        .expect_err("no secret");
    assert_eq!(
        err.as_service_error().and_then(|e| e.code()),
        Some("ValidationError")
    );
    aws.elb
        .modify_listener()
        .listener_arn(&w.listener_arn)
        .default_actions(oidc(Some(true)))
        .default_actions(fwd())
        .send()
        .await?;
    Ok(())
}

/// IAM as AWS evaluates it, for every okra function's request (tools/local-aws/iam_enforce.py;
/// IAM User Guide, "Policy evaluation logic"): the evaluator's own checks, boto3 clients calling
/// as each function against a strict moto of their own (tools/local-aws/iam_selftest.py): actions,
/// resource ARNs, tag conditions (`aws:ResourceTag`, `aws:RequestTag`, `aws:TagKeys`,
/// `elasticloadbalancing:CreateAction`), each service's AccessDenied shape, the admin routes.
#[test]
fn the_iam_evaluator_passes_its_self_test() {
    python_self_test("tools/local-aws/iam_selftest.py");
}

/// Runs a self-test script of the local AWS with the venv's python3; it must pass.
fn python_self_test(script: &str) {
    let root = okra_testkit::workspace_root();
    let out = std::process::Command::new(root.join(".tools/venv/bin/python3"))
        .arg(root.join(script))
        .current_dir(&root)
        .output()
        .expect("the venv's python3 (make setup)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" passed"), "{text}");
}

/// EKS access entries in the strict moto (tools/local-aws/strict_moto.py, "EKS access entries";
/// EKS API reference, CreateAccessEntry, AssociateAccessPolicy and the rest): every operation,
/// its errors, the policy association's upsert, and IAM on access-entry ARNs, through boto3
/// (tools/local-aws/eks_access_selftest.py, against a strict moto of its own).
#[test]
fn eks_access_entries_pass_their_self_test() {
    python_self_test("tools/local-aws/eks_access_selftest.py");
}
