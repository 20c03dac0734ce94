//! Least privilege that holds on AWS: every AWS call each function makes in a rollout is allowed
//! by that function's own statements in template.yaml. The strict moto enforces those statements
//! on every request of every e2e test (tools/local-aws/iam_enforce.py: actions, resources and
//! conditions, as the IAM User Guide's "Policy evaluation logic" describes), so a forgotten
//! statement fails the test that needs it; this binary also reports the calls per function, and
//! shows that a statement taken away fails an ordinary rollout. The functions put their name in the
//! SDK's user agent (`app/NAME`, `okra_aws::aws_config`) and the strict moto counts calls per
//! caller (`GET /_okra/calls`), so a call a policy forgets fails here, not as AccessDenied in a
//! real account. It checks actions, not resources and conditions (template.rs checks those), and
//! only calls that reach moto: Step Functions' own API is the local Step Functions service's.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use crate::common::policy::{action_matches, allowed_actions, function_of_package, template};
use crate::common::service::{api, finished, paused_rollout_with};
use crate::common::{cell_name, weights_of_steps};
use anyhow::Result;
use okra_aws::state::StatePort;
use okra_testkit::Invocation;
use serde_json::json;

/// The IAM action of a call as the strict moto names it (`SIGNING_NAME:Operation`).
fn iam_action(call: &str) -> String {
    let (service, operation) = call.split_once(':').unwrap();
    let prefix = match service {
        "tagging" => "tag",
        "monitoring" => "cloudwatch",
        other => other,
    };
    format!("{prefix}:{operation}")
}

/// The tests of this suite change what their strict moto enforces (and reset its call counts):
/// a stack of their own, one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static STACK: std::sync::OnceLock<std::result::Result<okra_testkit::LocalAws, String>> =
    std::sync::OnceLock::new();

async fn setup() -> Result<(common::Aws, aws_sdk_sfn::Client)> {
    common::service::setup_on(common::stack_in(&STACK, || common::service::builder(None))?).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_a_function_makes_is_allowed_by_its_own_policy() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let (aws, sfn) = setup().await?;
    aws.local.calls(true)?;

    // A rollout with an analysis and a wait for a person, resumed through the API.
    let (w, exec) = paused_rollout_with(&aws, &sfn, "iam", |spec| {
        spec["canary"]["steps"] = json!([
            {"setWeight": 30},
            {"analysis": {"templates": [{"templateName": "errors"}]}},
            {"pause": {}},
            {"setWeight": 100}
        ]);
    })
    .await?;
    let name = cell_name(&w);
    common::service::resume_to_the_end(&aws, &sfn, &name, &exec).await?;

    // registration: instances, on a cell of its own (an instance can only join an `instance`
    // group; the served clusters above have `ip` groups, as aws-load-balancer-controller's):
    // ensure registers the clusters' nodes, the dispatcher syncs the serving groups.
    let wi = aws.world("iam-inst").await?;
    let inst = cell_name(&wi);
    let mut spec = common::cell(&wi, json!([{"setWeight": 100}]));
    spec["targetGroup"]["registration"] = json!("instances");
    // These nodes are moto's EC2 instances, with no service behind them: no health check can
    // pass, so this cell's gate is off.
    spec["readiness"]["minHealthyPercent"] = json!(0);
    aws.state()
        .put_cell(&serde_json::from_value(spec.clone())?, None)
        .await?;
    let sg = aws.node_security_group(&wi).await?;
    let mut clusters = Vec::new();
    for c in ["i1", "i2"] {
        let cluster = aws.cluster(&wi, c, "1.0.0").await?;
        aws.launch_instances(&wi, 1, &[("eks:cluster-name", &cluster)], Some(&sg))
            .await?;
        clusters.push(cluster);
    }
    let init = format!("{inst}-init");
    common::service::start(&sfn, &init, &common::input(spec.clone())).await?;
    assert_eq!(finished(&sfn, &init).await?.0, "SUCCEEDED");
    for cluster in &clusters {
        aws.launch_instances(&wi, 1, &[("eks:cluster-name", cluster)], Some(&sg))
            .await?;
    }
    match aws
        .local
        .invoke("dispatcher", &json!({"cells": [inst], "trigger": "api"}))?
    {
        Invocation::Ok(out) => {
            let reason = out["results"][0]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("2 registered"), "{out}");
        }
        other => panic!("dispatcher: {other:?}"),
    }
    let c3 = aws.cluster(&wi, "i3", "1.1.0").await?;
    aws.launch_instances(&wi, 1, &[("eks:cluster-name", &c3)], None)
        .await?;
    let side = json!({"version": "1.1.0", "members": [{"cluster": c3, "vpcId": wi.vpc_id}]});
    let out = aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?;
    assert!(matches!(out, Invocation::Ok(_)), "{out:?}");
    // The doctor, with nodes to check.
    let (status, body) = api(&aws, "GET", &format!("/cells/{inst}/doctor"))?;
    assert_eq!(status, 200, "{body}");
    let _ = name;

    // Every call, by caller, against the caller's policy.
    let t = template();
    let by_caller = aws.local.calls_by_caller()?;
    let mut seen = BTreeSet::new();
    let mut refused = BTreeMap::new();
    for (caller, calls) in &by_caller {
        let Some(function) = function_of_package(caller) else {
            continue; // not one of okra's functions (a test's own client)
        };
        let allowed = allowed_actions(&t, &function);
        for call in calls.keys() {
            let action = iam_action(call);
            seen.insert(format!("{function} {action}"));
            if !allowed.iter().any(|p| action_matches(p, &action)) {
                refused
                    .entry(function.clone())
                    .or_insert_with(Vec::new)
                    .push(action);
            }
        }
    }
    assert!(
        refused.is_empty(),
        "calls no statement of the function allows (AccessDenied on AWS): {refused:#?}"
    );
    let denied = aws.local.iam_denials()?;
    assert!(denied.is_empty(), "the strict moto refused: {denied:#?}");
    // The run reached every function and the calls that matter most, so that the check above
    // cannot pass by seeing nothing.
    for expected in [
        "DiscoverClustersFunction tag:GetResources",
        "DiscoverClustersFunction eks:DescribeCluster",
        "EnsureTargetGroupsFunction elasticloadbalancing:CreateTargetGroup",
        "EnsureTargetGroupsFunction elasticloadbalancing:DescribeLoadBalancers",
        "EnsureTargetGroupsFunction ec2:DescribeInstances",
        "EnsureTargetGroupsFunction elasticloadbalancing:RegisterTargets",
        "ShiftWeightsFunction elasticloadbalancing:ModifyListener",
        "ShiftWeightsFunction elasticloadbalancing:DescribeTargetHealth",
        "CheckMetricsFunction cloudwatch:GetMetricData",
        "RolloutStateFunction dynamodb:UpdateItem",
        "DispatcherFunction elasticloadbalancing:RegisterTargets",
        "ApiFunction ec2:DescribeSecurityGroups",
        "ApiFunction ec2:DescribeSubnets",
        "ApiFunction cloudtrail:DescribeTrails",
    ] {
        assert!(
            seen.contains(expected),
            "not seen: {expected}; seen: {seen:#?}"
        );
    }
    Ok(())
}

/// The defect a review found: ShiftWeightsFunction's statements lacked
/// `elasticloadbalancing:DescribeTargetHealth`, which shift-weights calls before a weight change
/// under the documented readiness gate (100 %). With the template so edited, the strict moto
/// refuses it as AWS would and an ordinary rollout fails at its first weight with AccessDenied,
/// the stable version keeping its traffic.
#[tokio::test(flavor = "multi_thread")]
async fn without_describe_target_health_shift_weights_is_denied_and_the_rollout_fails() -> Result<()>
{
    let _serial = SERIAL.lock().await;
    let (aws, _sfn) = setup().await?;
    let shipped = common::policy::root().join("template.yaml");
    let text = std::fs::read_to_string(&shipped)?;
    let (head, shift) = text.split_at(text.find("  ShiftWeightsFunction:").unwrap());
    let line = "                - elasticloadbalancing:DescribeTargetHealth\n";
    assert!(
        shift.contains(line),
        "ShiftWeightsFunction grants DescribeTargetHealth"
    );
    let edited = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    std::fs::write(
        edited.path(),
        format!("{head}{}", shift.replacen(line, "", 1)),
    )?;

    let w = aws.world("iam-deny").await?;
    let name = cell_name(&w);
    let spec = common::cell(&w, json!([{"setWeight": 50}, {"setWeight": 100}]));
    aws.serving_cluster(&w, "a1", "1.0.0").await?;
    aws.serving_cluster(&w, "a2", "1.0.0").await?;
    common::run_rollout(&aws, &format!("{name}-init"), common::input(spec.clone()))?
        .ensure_succeeded()?;
    aws.serving_cluster(&w, "b1", "1.1.0").await?;
    aws.serving_cluster(&w, "b2", "1.1.0").await?;
    aws.local.set_iam_template(Some(edited.path()))?;
    let denied_run =
        common::run_rollout(&aws, &format!("{name}-deny"), common::input(spec.clone()));
    let denials = aws.local.iam_denials();
    aws.local.set_iam_template(Some(&shipped))?;
    let e = denied_run?;
    assert_ne!(e.status, "SUCCEEDED", "{:?}", e.states_entered());
    let log = serde_json::to_string(&e.events)?;
    assert!(
        log.contains("AccessDenied"),
        "the rollout failed with AccessDenied"
    );
    assert!(
        !weights_of_steps(&e).contains(&50),
        "no step's weight was set"
    );
    let denials = denials?;
    assert!(
        denials.iter().any(|d| d["caller"] == "shift-weights"
            && d["action"] == "elasticloadbalancing:DescribeTargetHealth"),
        "{denials:#?}"
    );
    assert_eq!(
        aws.weights_by_version(&w).await?.get("1.0.0"),
        Some(&100),
        "the stable version keeps its traffic"
    );
    // With the shipped template the same default rollout succeeds:
    // every_call_a_function_makes_is_allowed_by_its_own_policy runs one (gate 100, served
    // clusters) and asserts no request was refused.
    Ok(())
}
