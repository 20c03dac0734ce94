//! AWS calls counted where AWS would count them: at the HTTP layer. Each handler runs in this
//! process over okra's real adapters, with an SDK configuration whose user agent names a caller
//! of its own (`app/NAME`); the strict moto counts every request per caller and
//! `service:Operation` (`GET /_okra/calls`, tools/local-aws/strict_moto.py). What a handler costs
//! is then what its requests were, paginated and batched as the SDK sent them — not what an
//! in-memory fake supposes the adapter would have sent.
//!
//! The AWS service names are the signing names of the requests: `eks`, `tagging` (the Resource
//! Groups Tagging API), `elasticloadbalancing`, `ec2`, `dynamodb`, `states`.

use crate::common;

use std::collections::BTreeMap;

use crate::common::{Aws, World, aws, cell, cell_name};
use anyhow::Result;
use okra_aws::autoscaling::AutoScaling;
use okra_aws::dynamo::Dynamo;
use okra_aws::eks::Eks;
use okra_aws::elb::Elb;
use okra_aws::handlers::{discover, dispatch, ensure, shift};
use okra_aws::sfn::Sfn;
use okra_aws::state::StatePort;
use okra_core::vocab::{DispatchOutcome, Trigger};
use okra_testkit::{Invocation, LocalAws};
use serde_json::{Value, json};

/// A caller of its own: an SDK configuration on the local AWS whose user agent carries
/// `app/<caller>`, and the caller's name.
async fn caller(aws: &Aws, name: &str) -> (aws_config::SdkConfig, String) {
    let caller = LocalAws::unique(name);
    let conf = aws
        .local
        .sdk_config()
        .await
        .into_builder()
        .app_name(aws_config::AppName::new(caller.clone()).unwrap())
        .build();
    (conf, caller)
}

/// The calls the strict moto counted for `caller`, by `service:Operation`.
fn calls_of(aws: &Aws, caller: &str) -> Result<BTreeMap<String, u64>> {
    Ok(aws
        .local
        .calls_by_caller()?
        .remove(caller)
        .unwrap_or_default())
}

/// `calls` as a map, for comparisons.
fn counted(calls: &[(&str, u64)]) -> BTreeMap<String, u64> {
    calls.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The calls of the given AWS services only.
fn of_services(calls: &BTreeMap<String, u64>, services: &[&str]) -> BTreeMap<String, u64> {
    calls
        .iter()
        .filter(|(k, _)| services.iter().any(|s| k.starts_with(&format!("{s}:"))))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn ok(inv: Invocation) -> Value {
    match inv {
        Invocation::Ok(v) => v,
        other => panic!("expected success, got {other:?}"),
    }
}

/// Target groups for `clusters` at `version` (the ensure-target-groups function), their ARNs.
fn groups(aws: &Aws, spec: &Value, version: &str, clusters: &[&str], w: &World) -> Vec<String> {
    let members: Vec<Value> = clusters
        .iter()
        .map(|c| json!({"cluster": c, "vpcId": w.vpc_id}))
        .collect();
    let side = json!({"version": version, "members": members});
    let out = ok(aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))
        .unwrap());
    out["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["targetGroupArn"].as_str().unwrap().to_string())
        .collect()
}

/// Another cell's world on the same VPC and listener: clusters under a selector of its own.
fn beside(w: &World, prefix: &str) -> World {
    World {
        prefix: LocalAws::unique(prefix),
        vpc_id: w.vpc_id.clone(),
        subnets: w.subnets.clone(),
        listener_arn: w.listener_arn.clone(),
    }
}

/// Issue "Discovery at account scale": a reconcile's calls grow with the cell's clusters, not
/// the account's. The cell's clusters come from one tag query, each is described once, its
/// groups come from one tag query (no DescribeTargetGroups listing, no DescribeTags), and the
/// listener is read once.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_costs_the_cells_clusters_not_the_accounts() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("calls-disc").await?;
    let spec = cell(&w, json!([{"setWeight": 50}]));
    let a1 = aws.cluster(&w, "a1", "1.0.0").await?;
    let a2 = aws.cluster(&w, "a2", "1.0.0").await?;
    aws.cluster(&w, "b1", "1.1.0").await?;
    aws.cluster(&w, "b2", "1.1.0").await?;
    // Twelve clusters of other cells in the account, with groups of their own.
    let others = beside(&w, "calls-other");
    let other_spec = cell(&others, json!([]));
    let mut other_clusters = Vec::new();
    for i in 0..12 {
        other_clusters.push(aws.cluster(&others, &format!("o{i}"), "1.0.0").await?);
    }
    let refs: Vec<&str> = other_clusters.iter().map(String::as_str).collect();
    groups(&aws, &other_spec, "1.0.0", &refs[..4], &others);
    let stable = groups(&aws, &spec, "1.0.0", &[&a1, &a2], &w);
    let equal: Vec<(&str, i32)> = stable.iter().map(|a| (a.as_str(), 1)).collect();
    aws.forward_by_hand(&w, &equal).await?;

    let (conf, me) = caller(&aws, "disc").await;
    let input = serde_json::from_value(json!({"cell": spec}))?;
    let out = discover::handle(&Eks::from_config(&conf), &Elb::from_config(&conf), input).await?;
    assert_eq!(out.clusters_seen, 4);
    assert_eq!(out.outcome.decision.kind(), "startRollout");
    assert_eq!(
        calls_of(&aws, &me)?,
        counted(&[
            ("eks:DescribeCluster", 4),
            ("tagging:GetResources", 2),
            ("elasticloadbalancing:DescribeListeners", 1),
        ]),
        "one tag query for the clusters, one for the groups, the listener once"
    );
    Ok(())
}

/// A cell on a listener rule reads the rule (DescribeRules), not the listener.
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_cell_reads_its_rule_not_the_listener() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("calls-rule").await?;
    aws.cluster(&w, "a1", "1.0.0").await?;
    let rule_arn = aws.rule(&w, "/api/*").await?;
    let mut spec = cell(&w, json!([{"setWeight": 50}]));
    spec["ingress"]["alb"]["ruleArn"] = json!(rule_arn);

    let (conf, me) = caller(&aws, "rule").await;
    let input = serde_json::from_value(json!({"cell": spec}))?;
    let out = discover::handle(&Eks::from_config(&conf), &Elb::from_config(&conf), input).await?;
    assert_eq!(out.rule_arn.as_deref(), Some(rule_arn.as_str()));
    assert_eq!(
        of_services(&calls_of(&aws, &me)?, &["elasticloadbalancing"]),
        counted(&[("elasticloadbalancing:DescribeRules", 1)])
    );
    Ok(())
}

/// A weight step under the documented readiness gate (100 %) is one health read per member, one
/// listener read, one write and one verification read; the same step again is the health reads
/// and one listener read.
#[tokio::test(flavor = "multi_thread")]
async fn a_step_is_one_read_one_write_one_verification_read() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("calls-shift").await?;
    let spec = cell(&w, json!([]));
    let a1 = aws.serving_cluster(&w, "a1", "1.0.0").await?;
    let b1 = aws.serving_cluster(&w, "b1", "1.1.0").await?;
    let stable = groups(&aws, &spec, "1.0.0", &[&a1], &w);
    let canary = groups(&aws, &spec, "1.1.0", &[&b1], &w);
    let gate = &spec["readiness"]["minHealthyPercent"];
    assert_eq!(gate, 100);
    let step = |weight: u32, expected: Value| {
        json!({"listenerArn": w.listener_arn, "stable": stable, "canary": canary,
               "weight": weight, "expected": expected, "minHealthyPercent": gate})
    };
    // The stable version serving, the canary's group standing by at weight 0, as the state
    // machine leaves them before a step: AWS health-checks both from now on.
    let first = json!({"listenerArn": w.listener_arn, "stable": stable, "canary": canary,
                       "weight": 0, "expected": null});
    let first = ok(aws.local.invoke("shift-weights", &first)?);
    let attach = json!({"listenerArn": w.listener_arn, "stable": stable, "canary": canary,
                        "attach": canary, "expected": first["action"]});
    let s0 = ok(aws.local.invoke("shift-weights", &attach)?);
    for arn in stable.iter().chain(&canary) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while okra_aws::ports::LoadBalancerPort::target_health(
            &Elb::from_config(&aws.local.sdk_config().await),
            arn,
        )
        .await?
        .healthy
            == 0
        {
            assert!(std::time::Instant::now() < deadline, "{arn} never healthy");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    let (conf, me) = caller(&aws, "shift").await;
    let elb = Elb::from_config(&conf);
    let out = shift::handle(
        &elb,
        &okra_aws::eks::Eks::from_config(&conf),
        serde_json::from_value(step(10, s0["action"].clone()))?,
    )
    .await?;
    assert!(out.changed);
    assert_eq!(
        calls_of(&aws, &me)?,
        counted(&[
            ("elasticloadbalancing:DescribeTargetHealth", 2),
            ("elasticloadbalancing:DescribeListeners", 2),
            ("elasticloadbalancing:ModifyListener", 1),
        ])
    );

    let (conf, again) = caller(&aws, "shift-again").await;
    let out = shift::handle(
        &Elb::from_config(&conf),
        &okra_aws::eks::Eks::from_config(&conf),
        serde_json::from_value(step(10, s0["action"].clone()))?,
    )
    .await?;
    assert!(!out.changed);
    assert_eq!(
        calls_of(&aws, &again)?,
        counted(&[
            ("elasticloadbalancing:DescribeTargetHealth", 2),
            ("elasticloadbalancing:DescribeListeners", 1),
        ]),
        "a step already taken is read, not written"
    );
    Ok(())
}

/// The dispatcher over two cells: one tag query finds both cells' clusters (their selectors
/// share a key), one finds both cells' target groups, each cluster is described once.
#[tokio::test(flavor = "multi_thread")]
async fn the_dispatcher_shares_its_tag_queries_among_cells() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("calls-disp").await?;
    // Each cell on its own listener (one listener per cell, as `okra cell put` requires).
    let second = aws.world("calls-disp2").await?;
    let spec = cell(&w, json!([{"setWeight": 50}]));
    let spec2 = cell(&second, json!([{"setWeight": 50}]));
    let a1 = aws.cluster(&w, "a1", "1.0.0").await?;
    aws.cluster(&w, "b1", "1.1.0").await?;
    aws.cluster(&w, "b2", "1.1.0").await?;
    aws.cluster(&second, "a1", "2.0.0").await?;
    aws.cluster(&second, "a2", "2.0.0").await?;
    let stable = groups(&aws, &spec, "1.0.0", &[&a1], &w);
    let equal: Vec<(&str, i32)> = stable.iter().map(|a| (a.as_str(), 1)).collect();
    aws.forward_by_hand(&w, &equal).await?;
    for s in [&spec, &spec2] {
        aws.state()
            .put_cell(&serde_json::from_value(s.clone())?, None)
            .await?;
    }

    let (conf, me) = caller(&aws, "disp").await;
    let state = Dynamo::new(aws_sdk_dynamodb::Client::new(&conf), common::TABLE);
    let executions = Sfn::new(
        aws_sdk_sfn::Client::new(&conf),
        common::STATE_MACHINE_ARN.to_string(),
    );
    let request = dispatch::Request {
        trigger: Trigger::Api.to_string(),
        filter: dispatch::Filter::Named(vec![cell_name(&w), cell_name(&second)]),
        labels: BTreeMap::new(),
    };
    let out = dispatch::dispatch(
        &state,
        &executions,
        &Eks::from_config(&conf),
        &Elb::from_config(&conf),
        request,
    )
    .await?;
    for r in &out.results {
        assert_eq!(r.outcome, DispatchOutcome::Started, "{r:?}");
    }
    assert_eq!(out.results.len(), 2);
    assert_eq!(
        of_services(
            &calls_of(&aws, &me)?,
            &["eks", "tagging", "elasticloadbalancing", "states"]
        ),
        counted(&[
            ("eks:DescribeCluster", 5),
            ("tagging:GetResources", 2),
            ("elasticloadbalancing:DescribeListeners", 2),
            ("states:StartExecution", 2),
        ]),
        "one tag query for both cells' clusters, one for their groups; each listener read"
    );
    Ok(())
}

/// `registration: instances`: ensuring a side whose nodes did not change registers,
/// deregisters and creates nothing. Its one write is the group's tags (AddTags, idempotent: the
/// call that both finds the group still there and makes its version tag follow a retagged
/// cluster). The nodes are read once per tag convention (`eks:cluster-name`,
/// `kubernetes.io/cluster/<name>`), the group's targets once to sync them and once for the gate.
#[tokio::test(flavor = "multi_thread")]
async fn ensuring_an_unchanged_side_writes_only_its_tags() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("calls-ens").await?;
    let c1 = aws.cluster(&w, "b1", "1.1.0").await?;
    let mut spec = cell(&w, json!([]));
    spec["targetGroup"]["registration"] = json!("instances");
    aws.launch_instances(&w, 2, &[("eks:cluster-name", &c1)], None)
        .await?;
    let side = json!({"version": "1.1.0", "members": [{"cluster": c1, "vpcId": w.vpc_id}]});
    let first = ok(aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?);

    let (conf, me) = caller(&aws, "ens").await;
    let input = serde_json::from_value(json!({"cell": spec, "side": first["side"]}))?;
    let out = ensure::handle(
        &Eks::from_config(&conf),
        &Elb::from_config(&conf),
        &AutoScaling::new(aws_sdk_autoscaling::Client::new(&conf)),
        input,
    )
    .await?;
    assert!(out.groups.iter().all(|g| !g.created), "{out:?}");
    assert_eq!(
        calls_of(&aws, &me)?,
        counted(&[
            ("ec2:DescribeInstances", 2),
            ("elasticloadbalancing:AddTags", 1),
            ("elasticloadbalancing:DescribeTargetHealth", 2),
        ]),
        "no RegisterTargets, DeregisterTargets or CreateTargetGroup for an unchanged side"
    );
    Ok(())
}
