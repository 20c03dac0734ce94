//! The shipped examples run as users run them: `examples/cells/web.yaml` through the shipped
//! state machine on the local AWS, with only what names a user's account changed (the cell's
//! name, its listener and rule, the clusters' tags, the load balancer an analysis reads) and the
//! one thing the local AWS cannot do (below). Everything else is the example's own: the
//! readiness gate at 100 %, stickiness, the 1-minute pause, the CloudWatch error-rate and Datadog
//! latency analyses, the background analysis, the wait for a person, the built-in judge.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::common::datadog::{DD_HEADS, DD_SECRET, create_dd_secret, datadog_site};
use crate::common::service::start;
use crate::common::{self, Aws, cell_name, input};

static STACK: std::sync::OnceLock<std::result::Result<okra_testkit::LocalAws, String>> =
    std::sync::OnceLock::new();

/// The local Step Functions service (the example waits for a person), and Datadog.
async fn setup() -> Result<(Aws, aws_sdk_sfn::Client)> {
    let local = common::stack_in(&STACK, || {
        common::service::builder(None)
            .function_env("DATADOG_SECRET_ARN", DD_SECRET)
            .function_env("DATADOG_SITE", datadog_site())
            .iam_ref("DatadogSecretArn", &common::datadog::secret_arn_pattern())
    })?;
    common::service::setup_on(local).await
}

/// `app/NAME/ID`: the load balancer's CloudWatch dimension, from its listener's ARN.
fn load_balancer_dimension(listener_arn: &str) -> String {
    let (_, rest) = listener_arn.split_once(":listener/").unwrap();
    rest.rsplit_once('/').unwrap().0.to_string()
}

/// Six minutes of ALB metrics as a healthy service publishes them: the load balancer's (the
/// error-rate analysis) and each target group's (the judge), 100 requests a minute, no 5xx.
async fn healthy_alb_metrics(aws: &Aws, lb: &str, groups: &[String]) -> Result<()> {
    for minute in 1..=6 {
        let ago = Duration::from_secs(60 * minute + 20);
        let ns = "AWS/ApplicationELB";
        let at_lb = [("LoadBalancer", lb)];
        aws.put_metric_ago(ns, "RequestCount", &at_lb, 100.0, ago)
            .await?;
        aws.put_metric_ago(ns, "HTTPCode_Target_5XX_Count", &at_lb, 0.0, ago)
            .await?;
        for tg in groups {
            let dims = [("LoadBalancer", lb), ("TargetGroup", tg.as_str())];
            aws.put_metric_ago(ns, "RequestCount", &dims, 100.0, ago)
                .await?;
            aws.put_metric_ago(ns, "HTTPCode_Target_5XX_Count", &dims, 0.0, ago)
                .await?;
            aws.put_metric_ago(ns, "TargetResponseTime", &dims, 0.05, ago)
                .await?;
        }
    }
    Ok(())
}

/// The rule's forward weight per version (the groups' `okra.io/version` tags).
async fn rule_weights(aws: &Aws, rule_arn: &str) -> Result<BTreeMap<String, i32>> {
    let out = aws.elb.describe_rules().rule_arns(rule_arn).send().await?;
    let mut by_version = BTreeMap::new();
    for action in out.rules()[0].actions() {
        for t in action
            .forward_config()
            .map(|c| c.target_groups())
            .unwrap_or_default()
        {
            let arn = t.target_group_arn().context("a target group ARN")?;
            let version = aws
                .tags(arn)
                .await?
                .remove("okra.io/version")
                .unwrap_or_default();
            *by_version.entry(version).or_insert(0) += t.weight().unwrap_or(1);
        }
    }
    by_version.retain(|_, w| *w > 0);
    Ok(by_version)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_example_rolls_out_as_written() -> Result<()> {
    let (aws, sfn) = setup().await?;
    create_dd_secret(aws.local).await?;
    let w = aws.world("ex-web").await?;
    let name = cell_name(&w);
    let rule_arn = aws.rule(&w, "/web/*").await?;
    let lb = load_balancer_dimension(&w.listener_arn);
    let text = std::fs::read_to_string(common::policy::root().join("examples/cells/web.yaml"))?;
    let mut spec: Value = serde_yaml_ng::from_str(&text)?;
    // What names the user's account.
    spec["name"] = json!(name);
    spec["ingress"]["alb"] = json!({"listenerArn": w.listener_arn, "ruleArn": rule_arn});
    spec["clusterSelector"]["matchTags"] = json!({"okra-test": w.prefix});
    spec["analysisTemplates"][0]["args"][0]["value"] = json!(lb);
    // The local AWS's EKS names an Auto Scaling group for each node group that its Auto Scaling
    // does not have (moto), so `registration: nodegroups` cannot attach: the clusters' services
    // are registered as aws-load-balancer-controller registers pods (`external`, ip targets).
    assert_eq!(spec["targetGroup"]["registration"], "nodegroups");
    spec["targetGroup"]["registration"] = json!("external");
    spec["targetGroup"]["targetType"] = json!("ip");
    okra_core::validate::validate_value(&spec).map_err(|e| anyhow::anyhow!("{e}"))?;
    common::service::serving_then_a_new_version(&aws, &sfn, &w, &spec).await?;
    let groups: Vec<String> = aws
        .target_groups_named(&name)
        .await?
        .into_iter()
        .map(|(_, arn)| {
            let (_, tg) = arn.split_once(":targetgroup/").unwrap();
            format!("targetgroup/{tg}")
        })
        .collect();
    assert_eq!(groups.len(), 4, "{groups:?}");
    healthy_alb_metrics(&aws, &lb, &groups).await?;
    let heads_before = DD_HEADS.lock().unwrap().len();

    // 10 %, a minute's pause, both analyses with the judge, 50 %, then a wait for a person.
    let exec = format!("{name}-roll");
    start(&sfn, &exec, &input(spec)).await?;
    common::service::waiting_for_a_person(&aws, &sfn, &name, &exec, None).await?;
    assert_eq!(
        rule_weights(&aws, &rule_arn).await?,
        BTreeMap::from([("1.0.0".to_string(), 50), ("1.1.0".to_string(), 50)]),
    );
    let asked = DD_HEADS.lock().unwrap()[heads_before..].to_vec();
    assert!(
        asked
            .iter()
            .any(|h| h.contains("trace.http.request.duration.by.service.95p")),
        "the latency analysis asked Datadog: {asked:?}"
    );
    common::service::resume_to_the_end(&aws, &sfn, &name, &exec).await?;
    assert_eq!(
        rule_weights(&aws, &rule_arn).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)]),
    );
    let record = aws
        .rollout(&name, &exec)
        .await?
        .context("the rollout's record")?;
    let events: Vec<&str> = record.history.iter().map(|h| h.event.as_str()).collect();
    assert!(events.contains(&"promoted"), "{events:?}");
    // Both analyses and the judge decided on the numbers, not for want of them: the analysis
    // tasks' results in the execution's history.
    let history = sfn
        .get_execution_history()
        .execution_arn(common::service::execution_arn(&exec))
        .include_execution_data(true)
        .max_results(1000)
        .send()
        .await?;
    let results: String = history
        .events()
        .iter()
        .filter_map(|e| {
            e.lambda_function_succeeded_event_details()
                .and_then(|d| d.output())
                .or_else(|| e.task_succeeded_event_details().and_then(|d| d.output()))
        })
        .filter(|o| o.contains("\"metrics\""))
        .collect::<Vec<_>>()
        .join("\n");
    for said in [
        "elb-5xx-ratio",
        "p95-latency",
        "no regression",
        "\"successful\"",
    ] {
        assert!(
            results.contains(said),
            "{said} not in the analyses' results: {results}"
        );
    }
    assert!(!results.contains("\"phase\":\"failed\""), "{results}");
    assert!(aws.local.iam_denials()?.is_empty());
    Ok(())
}
