//! Least privilege that holds on AWS: every AWS call each function makes in a rollout is allowed
//! by that function's own statements in template.yaml. The functions put their name in the
//! SDK's user agent (`app/NAME`, `okra_aws::aws_config`) and the strict moto counts calls per
//! caller (`GET /_okra/calls`), so a call a policy forgets fails here, not as AccessDenied in a
//! real account. It checks actions, not resources and conditions (template.rs checks those), and
//! only calls that reach moto: Step Functions' own API is the local Step Functions service's.

// Test code: a panic with the failing line is the right report.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use common::cell_name;
use common::policy::{action_matches, allowed_actions, function_of_package, template};
use common::service::{api, finished, paused_rollout_with, setup};
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

#[tokio::test(flavor = "multi_thread")]
async fn every_call_a_function_makes_is_allowed_by_its_own_policy() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
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
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(finished(&sfn, &exec).await?.0, "SUCCEEDED");

    // registration: instances: the dispatcher syncs the serving groups, ensure registers.
    let stored = aws.state().get_cell(&name).await?.unwrap();
    let mut spec = serde_json::to_value(&stored.spec)?;
    spec["targetGroup"]["registration"] = json!("instances");
    aws.state()
        .put_cell(
            &serde_json::from_value(spec.clone())?,
            Some(stored.revision),
        )
        .await?;
    let sg = aws.node_security_group(&w).await?;
    for c in ["b1", "b2"] {
        let cluster = format!("{}-{c}", w.prefix);
        aws.launch_instances(&w, 1, &[("eks:cluster-name", &cluster)], Some(&sg))
            .await?;
    }
    match aws
        .local
        .invoke("dispatcher", &json!({"cells": [name], "trigger": "api"}))?
    {
        Invocation::Ok(out) => {
            let reason = out["results"][0]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("2 registered"), "{out}");
        }
        other => panic!("dispatcher: {other:?}"),
    }
    let c3 = aws.cluster(&w, "b3", "1.1.0").await?;
    aws.launch_instances(&w, 1, &[("eks:cluster-name", &c3)], None)
        .await?;
    let side = json!({"version": "1.1.0", "members": [{"cluster": c3, "vpcId": w.vpc_id}]});
    let out = aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?;
    assert!(matches!(out, Invocation::Ok(_)), "{out:?}");
    // The doctor, with nodes to check.
    let (status, body) = api(&aws, "GET", &format!("/cells/{name}/doctor"))?;
    assert_eq!(status, 200, "{body}");

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
