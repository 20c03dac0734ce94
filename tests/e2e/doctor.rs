//! `okra doctor` against the local AWS: each check that can fail, failing, then passing once
//! the account is put right. Reads only: the tests create what a user would, then ask again.

use crate::common;

use std::process::Command;

use crate::common::{Aws, World, aws};
use anyhow::{Context as _, Result};
use okra_aws::cloudtrail::CloudTrail;
use okra_aws::cloudwatch::CloudWatch;
use okra_aws::ec2::Ec2;
use okra_aws::eks::Eks;
use okra_aws::elb::Elb;
use okra_aws::handlers::doctor::{Account, DoctorReport, ElbLimits, handle};
use okra_aws::secrets::Secrets;
use okra_core::doctor::Level;
use okra_core::spec::CellSpec;
use serde_json::{Value, json};

/// Runs the doctor on `spec` with the stack's clients.
async fn doctor(aws: &Aws, spec: &Value, datadog_secret: Option<&str>) -> Result<DoctorReport> {
    let conf = aws.local.sdk_config().await;
    let (eks, elb) = (Eks::from_config(&conf), Elb::from_config(&conf));
    let network = Ec2::from_config(&conf);
    let trails = CloudTrail::new(aws_sdk_cloudtrail::Client::new(&conf));
    let metrics = CloudWatch::new(aws_sdk_cloudwatch::Client::new(&conf));
    let secrets = Secrets::new(aws_sdk_secretsmanager::Client::new(&conf));
    let http = okra_aws::probe::Probe::from_config(secrets.clone(), &conf);
    let spec = serde_json::from_value::<CellSpec>(spec.clone())?.validate()?;
    Ok(handle(
        &Account {
            eks: &eks,
            elb: &elb,
            limits: &ElbLimits::from_config(&conf),
            network: &network,
            trails: &trails,
            metrics: &metrics,
            secrets: (&secrets, datadog_secret),
            http: &http,
            dispatcher_role: None,
            region: aws.local.region(),
        },
        &spec,
    )
    .await?)
}

/// The level of check `id`.
fn level(r: &DoctorReport, id: &str) -> Level {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {r:#?}"))
        .level
}

async fn two_clusters(aws: &Aws, w: &World) -> Result<()> {
    aws.cluster(w, "a1", "1.0.0").await?;
    aws.cluster(w, "a2", "1.0.0").await?;
    Ok(())
}

// ELB API reference, DescribeListeners: ListenerNotFound.
#[tokio::test]
async fn a_missing_listener_is_an_error() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-listener").await?;
    two_clusters(&aws, &w).await?;
    let mut spec = common::cell(&w, json!([{"setWeight": 50}]));
    spec["ingress"]["alb"]["listenerArn"] = json!(w.listener_arn.replace(
        w.listener_arn.rsplit('/').next().unwrap(),
        "0000000000000000"
    ));
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "listener"), Level::Error, "{r:#?}");
    assert_eq!(r.level, Level::Error);
    let fix = r.checks[0].fix.as_deref().unwrap_or_default();
    assert!(fix.contains("ingress.alb.listenerArn"), "{fix}");
    // Nothing to check the nodes against: no node-access check adds to the listener's error.
    assert!(
        !r.checks.iter().any(|c| c.id.starts_with("node-access:")),
        "{r:#?}"
    );

    let good = common::cell(&w, json!([{"setWeight": 50}]));
    let r = doctor(&aws, &good, None).await?;
    assert_eq!(level(&r, "listener"), Level::Ok, "{r:#?}");
    assert_eq!(level(&r, "clusters"), Level::Ok, "{r:#?}");
    assert_eq!(level(&r, "vpc"), Level::Ok, "{r:#?}");
    assert_eq!(level(&r, "target-group-room"), Level::Ok, "{r:#?}");
    Ok(())
}

#[tokio::test]
async fn no_cluster_for_the_selector_is_a_warning() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-clusters").await?;
    let spec = common::cell(&w, json!([{"setWeight": 50}]));
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "clusters"), Level::Warning, "{r:#?}");
    two_clusters(&aws, &w).await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "clusters"), Level::Ok, "{r:#?}");
    Ok(())
}

// ELB API reference, ModifyListener: a forward action's target groups are in the load
// balancer's VPC; a cluster elsewhere needs routing to its nodes.
#[tokio::test]
async fn a_cluster_outside_the_load_balancers_vpc_is_a_warning() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-vpc").await?;
    two_clusters(&aws, &w).await?;
    // Another VPC's cluster, tagged into the cell.
    let other = aws.world("doc-vpc-other").await?;
    let elsewhere = World {
        prefix: w.prefix.clone(),
        vpc_id: other.vpc_id.clone(),
        subnets: other.subnets.clone(),
        listener_arn: other.listener_arn.clone(),
    };
    let name = aws.cluster(&elsewhere, "b1", "1.1.0").await?;
    let spec = common::cell(&w, json!([{"setWeight": 50}]));
    let r = doctor(&aws, &spec, None).await?;
    let vpc = r.checks.iter().find(|c| c.id == "vpc").unwrap();
    assert_eq!(vpc.level, Level::Warning, "{r:#?}");
    assert!(vpc.summary.contains(&name), "{}", vpc.summary);
    assert!(vpc.summary.contains(&other.vpc_id), "{}", vpc.summary);
    Ok(())
}

// CloudWatch API reference, ListMetrics: metrics with data in the last two weeks.
#[tokio::test]
async fn an_analysis_metric_without_data_is_a_warning() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-metric").await?;
    two_clusters(&aws, &w).await?;
    let spec = common::cell(&w, json!([{"setWeight": 50}]));
    let id = "metric:errors/error-count/errors";
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, id), Level::Warning, "{r:#?}");
    // A metric of the same name with another dimension value is not the one the query reads.
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", "someone-else")], 0.0)
        .await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, id), Level::Warning, "{r:#?}");
    let cell = common::cell_name(&w);
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", cell.as_str())], 0.0)
        .await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, id), Level::Ok, "{r:#?}");
    Ok(())
}

#[tokio::test]
async fn an_unreadable_datadog_secret_is_an_error() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-datadog").await?;
    two_clusters(&aws, &w).await?;
    let mut spec = common::cell(&w, json!([{"setWeight": 50}]));
    spec["analysisTemplates"][0]["metrics"][0]["provider"] =
        json!({"datadog": {"query": "sum:trace.http.request.errors{service:web}.as_count()"}});
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "datadog-secret"), Level::Error, "{r:#?}");
    let conf = aws.local.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let name = format!("{}-datadog", w.prefix);
    let missing = format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-AbCdEf",
        aws.local.region(),
        aws.local.account_id()
    );
    let r = doctor(&aws, &spec, Some(&missing)).await?;
    assert_eq!(level(&r, "datadog-secret"), Level::Error, "{r:#?}");
    let arn = sm
        .create_secret()
        .name(&name)
        .secret_string(r#"{"apiKey": "k", "appKey": "a"}"#)
        .send()
        .await?
        .arn()
        .context("an ARN")?
        .to_string();
    let r = doctor(&aws, &spec, Some(&arn)).await?;
    assert_eq!(level(&r, "datadog-secret"), Level::Ok, "{r:#?}");
    // The keys are never in the report.
    assert!(!serde_json::to_string(&r)?.contains("appKey"));
    Ok(())
}

// EventBridge user guide: "AWS API Call via CloudTrail" events come from a trail that logs
// management events. The only test of this binary that makes trails (they are the account's).
#[tokio::test]
async fn no_trail_logging_management_events_is_a_warning() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-trail").await?;
    two_clusters(&aws, &w).await?;
    let spec = common::cell(&w, json!([{"setWeight": 50}]));
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "cloudtrail"), Level::Warning, "{r:#?}");

    // A trail needs its bucket (CloudTrail API reference, CreateTrail: S3BucketDoesNotExist).
    let bucket = format!("{}-trail", w.prefix).to_lowercase();
    let cli = aws.local.aws_cli()?.to_owned();
    let home = tempfile::tempdir()?;
    let out = Command::new(&cli)
        .args(["s3api", "create-bucket", "--bucket", &bucket])
        .args(["--endpoint-url", aws.local.endpoint()])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .envs(aws.local.env())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = aws.local.sdk_config().await;
    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    ct.create_trail()
        .name("okra-doctor")
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .send()
        .await?;
    // Made, not logging yet.
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "cloudtrail"), Level::Warning, "{r:#?}");
    ct.start_logging().name("okra-doctor").send().await?;
    // Logging read-only management events only: still no CreateCluster or TagResource.
    ct.put_event_selectors()
        .trail_name("okra-doctor")
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::ReadOnly)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "cloudtrail"), Level::Warning, "{r:#?}");
    ct.put_event_selectors()
        .trail_name("okra-doctor")
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::All)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "cloudtrail"), Level::Ok, "{r:#?}");
    Ok(())
}

// ALB guide, "Security groups for your Application Load Balancer" and "Health checks for
// Application Load Balancer target groups": the targets' security groups must admit the load
// balancer on the target port (and the health-check port), or no health check passes.
#[tokio::test]
async fn nodes_that_do_not_admit_the_load_balancer_are_an_error() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-sg").await?;
    let cluster = aws.cluster(&w, "a1", "1.0.0").await?;
    let spec = common::cell(&w, json!([{"setWeight": 50}]));
    let id = format!("node-access:{cluster}");

    // No node yet: nothing to check, said.
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, &id), Level::Warning, "{r:#?}");

    // Nodes whose security group admits nothing.
    let sg = aws.node_security_group(&w).await?;
    aws.launch_instances(&w, 2, &[("eks:cluster-name", &cluster)], Some(&sg))
        .await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, &id), Level::Error, "{r:#?}");
    let check = r.checks.iter().find(|c| c.id == id).unwrap();
    assert!(
        check.summary.contains(&sg) && check.summary.contains("tcp 30080"),
        "{check:#?}"
    );
    assert!(
        check.fix.as_deref().unwrap_or_default().contains(&format!(
            "authorize-security-group-ingress --group-id {sg} --protocol tcp --port 30080"
        )),
        "{check:#?}"
    );

    // Put right: the VPC's block (which holds both of the load balancer's subnets) on 30080.
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(&sg)
        .ip_protocol("tcp")
        .from_port(30080)
        .to_port(30080)
        .cidr_ip("10.0.0.0/16")
        .send()
        .await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, &id), Level::Ok, "{r:#?}");
    let check = r.checks.iter().find(|c| c.id == id).unwrap();
    assert!(check.summary.contains("from 10.0.0.0/16"), "{check:#?}");
    Ok(())
}

/// A load balancer aws-load-balancer-controller manages (its tag `elbv2.k8s.aws/cluster`) would
/// have okra's weights set back at the controller's next reconcile: `PUT /cells` refuses the cell
/// naming the tag and stores nothing, and the doctor's `listener-owner` check says so (before
/// the tag, the check passes).
#[tokio::test(flavor = "multi_thread")]
async fn a_load_balancer_the_controller_manages_is_refused_naming_its_tag() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-owner").await?;
    let spec = common::cell(&w, json!([{"setWeight": 100}]));
    let name = common::cell_name(&w);
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "listener-owner"), Level::Ok, "{r:#?}");

    let lb = okra_core::arn::ListenerArn::try_from(w.listener_arn.clone())
        .map_err(anyhow::Error::msg)?
        .parts()
        .load_balancer_arn();
    aws.elb
        .add_tags()
        .resource_arns(&lb)
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("elbv2.k8s.aws/cluster")
                .value("prod-1")
                .build(),
        )
        .send()
        .await?;
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, "listener-owner"), Level::Error, "{r:#?}");
    let check = r.checks.iter().find(|c| c.id == "listener-owner").unwrap();
    assert!(
        check.summary.contains("elbv2.k8s.aws/cluster=prod-1"),
        "{check:#?}"
    );

    let (status, body) =
        common::service::api_with(&aws, "PUT", &format!("/cells/{name}"), Some(&spec))?;
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("ingress.alb.listenerArn") && text.contains("elbv2.k8s.aws/cluster=prod-1"),
        "{text}"
    );
    let (status, _) = common::service::api(&aws, "GET", &format!("/cells/{name}"))?;
    assert_eq!(status, 404, "nothing was stored");
    Ok(())
}

/// A Prometheus metric whose server does not answer is an error naming it; once a real
/// Prometheus answers at that address (the metric's own query), it is ok.
#[tokio::test]
async fn a_prometheus_that_does_not_answer_is_an_error() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("doc-prom").await?;
    two_clusters(&aws, &w).await?;
    let prometheus = okra_testkit::Prometheus::start(&[])?;
    let mut spec = common::cell(&w, json!([{"setWeight": 50}]));
    let metric = &mut spec["analysisTemplates"][0]["metrics"][0];
    metric["provider"] = json!({"prometheus": {"address": "http://127.0.0.1:9", "query": "vector(0)", "timeout": "2s"}});
    let id = "prometheus:errors/error-count";
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, id), Level::Error, "{r:#?}");
    spec["analysisTemplates"][0]["metrics"][0]["provider"]["prometheus"]["address"] =
        json!(prometheus.url());
    let r = doctor(&aws, &spec, None).await?;
    assert_eq!(level(&r, id), Level::Ok, "{r:#?}");
    // A query Prometheus refuses: an error with its errorType.
    spec["analysisTemplates"][0]["metrics"][0]["provider"]["prometheus"]["query"] =
        json!("sum(rate(");
    let r = doctor(&aws, &spec, None).await?;
    let check = r.checks.iter().find(|c| c.id == id).context("the check")?;
    assert_eq!(check.level, Level::Error);
    assert!(check.summary.contains("bad_data"), "{}", check.summary);
    Ok(())
}
