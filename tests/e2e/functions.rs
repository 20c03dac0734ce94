//! Each real function binary, invoked through `cargo lambda watch`'s Invoke API, against moto.

use crate::common::{aws, cell, cell_name};
use anyhow::Result;

use okra_testkit::Invocation;
use serde_json::json;

fn ok(inv: Invocation) -> serde_json::Value {
    match inv {
        Invocation::Ok(v) => v,
        other => panic!("expected success, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ensure_target_groups_twice_creates_nothing_new() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("ens").await?;
    let c1 = aws.cluster(&w, "b1", "1.1.0").await?;
    let c2 = aws.cluster(&w, "b2", "1.1.0").await?;
    let spec = cell(&w, json!([]));
    let side = json!({"version": "1.1.0", "members": [
        {"cluster": c1, "vpcId": w.vpc_id}, {"cluster": c2, "vpcId": w.vpc_id}]});
    let first = ok(aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?);
    let second = ok(aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?);
    assert_eq!(first["side"], second["side"], "same groups both times");
    assert!(
        first["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["created"] == true)
    );
    assert!(
        second["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["created"] == false)
    );
    assert_eq!(aws.target_groups_named(&cell_name(&w)).await?.len(), 2);
    for g in first["groups"].as_array().unwrap() {
        let tags = aws.tags(g["targetGroupArn"].as_str().unwrap()).await?;
        assert_eq!(tags["okra.io/version"], "1.1.0");
        assert_eq!(&tags["okra.io/cluster"], g["cluster"].as_str().unwrap());
    }
    // Retagged to 1.1.1: the group stays, its version tag follows.
    let side = json!({"version": "1.1.1", "members": second["side"]["members"]});
    let third = ok(aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?);
    let arn = third["groups"][0]["targetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(aws.tags(&arn).await?["okra.io/version"], "1.1.1");
    assert_eq!(aws.target_groups_named(&cell_name(&w)).await?.len(), 2);
    Ok(())
}

/// `registration: instances`: the cluster's nodes, found by either tag convention
/// (`eks:cluster-name`, `kubernetes.io/cluster/<name>`), are registered through the real binary
/// against moto's EC2 and ELB; nodes that leave and join are followed (the one gone drains),
/// other clusters' nodes stay out.
#[tokio::test(flavor = "multi_thread")]
async fn ensure_target_groups_registers_the_cluster_s_instances() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("ens-inst").await?;
    let c1 = aws.cluster(&w, "b1", "1.1.0").await?;
    let mut spec = cell(&w, json!([]));
    spec["targetGroup"]["registration"] = json!("instances");
    let managed = aws
        .launch_instances(&w, 2, &[("eks:cluster-name", &c1)], None)
        .await?;
    let k8s_tag = format!("kubernetes.io/cluster/{c1}");
    let self_managed = aws
        .launch_instances(&w, 1, &[(&k8s_tag, "owned")], None)
        .await?;
    aws.launch_instances(&w, 1, &[("eks:cluster-name", "someone-else")], None)
        .await?;
    let side = json!({"version": "1.1.0", "members": [{"cluster": c1, "vpcId": w.vpc_id}]});
    let out = ok(aws
        .local
        .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?);
    let arn = out["groups"][0]["targetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    let registered = |states: &[&str]| {
        let (elb, arn) = (aws.elb.clone(), arn.clone());
        let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
        async move {
            let h = elb
                .describe_target_health()
                .target_group_arn(&arn)
                .send()
                .await?;
            let mut ids: Vec<String> = h
                .target_health_descriptions()
                .iter()
                .filter(|d| {
                    let s = d
                        .target_health()
                        .and_then(|t| t.state())
                        .map(|s| s.as_str().to_string());
                    s.is_some_and(|s| states.contains(&s))
                })
                .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
                .collect();
            ids.sort();
            anyhow::Ok(ids)
        }
    };
    let mut want: Vec<String> = managed.iter().chain(&self_managed).cloned().collect();
    want.sort();
    // The group is in no forward action yet: its targets are `unused` (strict moto, as AWS).
    assert_eq!(registered(&["unused"]).await?, want);

    // One node leaves the cluster (its tag removed: okra must deregister it), one joins.
    aws.ec2
        .delete_tags()
        .resources(&managed[0])
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("eks:cluster-name")
                .build(),
        )
        .send()
        .await?;
    let new = aws
        .launch_instances(&w, 1, &[("eks:cluster-name", &c1)], None)
        .await?;
    let again = ok(aws.local.invoke(
        "ensure-target-groups",
        &json!({"cell": spec, "side": out["side"]}),
    )?);
    assert_eq!(
        again["groups"][0]["targetGroupArn"],
        out["groups"][0]["targetGroupArn"]
    );
    let mut want: Vec<String> = vec![managed[1].clone(), self_managed[0].clone(), new[0].clone()];
    want.sort();
    assert_eq!(registered(&["unused"]).await?, want);
    assert_eq!(registered(&["draining"]).await?, [managed[0].clone()]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn shift_weights_refuses_a_listener_edited_behind_its_back() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("drift").await?;
    let spec = cell(&w, json!([]));
    let mut arns = Vec::new();
    for (name, v) in [("a1", "1.0.0"), ("b1", "1.1.0")] {
        let c = aws.cluster(&w, name, v).await?;
        let side = json!({"version": v, "members": [{"cluster": c, "vpcId": w.vpc_id}]});
        let out = ok(aws
            .local
            .invoke("ensure-target-groups", &json!({"cell": spec, "side": side}))?);
        arns.push(
            out["groups"][0]["targetGroupArn"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (stable, canary) = (&arns[0], &arns[1]);
    let base = json!({"listenerArn": w.listener_arn, "stable": [stable], "canary": [canary]});
    let step = |weight: u32, expected: serde_json::Value| {
        let mut i = base.clone();
        i["weight"] = json!(weight);
        i["expected"] = expected;
        i
    };
    // Initialize: nothing expected (the listener answers with a fixed response).
    let s0 = ok(aws
        .local
        .invoke("shift-weights", &step(0, serde_json::Value::Null))?);
    assert_eq!(s0["changed"], true);
    let s1 = ok(aws
        .local
        .invoke("shift-weights", &step(30, s0["action"].clone()))?);
    assert_eq!(
        aws.weights(&w)
            .await?
            .iter()
            .map(|(_, w)| *w)
            .collect::<Vec<_>>()
            .iter()
            .sum::<i32>(),
        100
    );
    // The same step again: nothing written.
    let again = ok(aws
        .local
        .invoke("shift-weights", &step(30, s0["action"].clone()))?);
    assert_eq!(again["changed"], false);

    // Someone sends everything to the canary by hand.
    aws.elb
        .modify_listener()
        .listener_arn(&w.listener_arn)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(canary)
                .build(),
        )
        .send()
        .await?;
    let edited = aws.weights(&w).await?;
    match aws
        .local
        .invoke("shift-weights", &step(60, s1["action"].clone()))?
    {
        Invocation::FunctionError {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "DriftDetected", "{error_message}");
        }
        other => panic!("expected DriftDetected, got {other:?}"),
    }
    assert_eq!(aws.weights(&w).await?, edited, "the edit is left as it is");
    // Told to take over, okra writes.
    let mut take = step(60, s1["action"].clone());
    take["takeOver"] = json!(true);
    let t = ok(aws.local.invoke("shift-weights", &take)?);
    assert_eq!(t["weight"], 60);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_refuses_a_cell_that_cannot_fit_and_reads_nothing() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("fit").await?;
    let mut spec = cell(&w, json!([{"setWeight": 50}]));
    spec["replicas"] = json!(3);
    match aws
        .local
        .invoke("discover-clusters", &json!({"cell": spec, "blocklist": []}))?
    {
        Invocation::FunctionError {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "InvalidSpec");
            assert!(error_message.contains("replicas"), "{error_message}");
            assert!(error_message.contains("at most 5"), "{error_message}");
        }
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_reports_a_missing_listener_by_name() -> Result<()> {
    let aws = aws().await?;
    let w = aws.world("nolis").await?;
    let mut spec = cell(&w, json!([]));
    let (lb, _) = w.listener_arn.rsplit_once('/').unwrap();
    spec["ingress"]["alb"]["listenerArn"] = json!(format!("{lb}/ffffffffffffffff"));
    match aws
        .local
        .invoke("discover-clusters", &json!({"cell": spec, "blocklist": []}))?
    {
        Invocation::FunctionError {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "ListenerNotFound");
            // AWS's request id, for AWS Support, travels with the error into the history.
            assert!(error_message.contains("(request id "), "{error_message}");
        }
        other => panic!("expected ListenerNotFound, got {other:?}"),
    }
    Ok(())
}

/// Every sample event in `events/` is accepted by its real function binary: whatever the outcome
/// against an emulator that does not hold the sample's resources (`ListenerNotFound`, say), it is
/// never `InvalidInput` or `InvalidSpec` — the samples are in the shape the functions take.
#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_is_accepted_by_its_function() -> Result<()> {
    let aws = aws().await?;
    let dir = okra_testkit::workspace_root().join("events");
    let functions = [
        "api",
        "check-metrics",
        "discover-clusters",
        "dispatcher",
        "ensure-target-groups",
        "rollout-state",
        "shift-weights",
    ];
    let mut tried = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        if name.starts_with("statemachine-") {
            // The state machine's input, as the dispatcher and the API start it.
            let text = std::fs::read_to_string(dir.join(&name))?;
            let input: okra_aws::state::ExecutionInput =
                okra_aws::parse_input(serde_json::from_str(&text)?)?;
            okra_core::validate::validate(&input.cell)?;
            continue;
        }
        let function = functions
            .iter()
            .filter(|f| name.starts_with(*f))
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("events/{name} names no function"));
        let payload: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&name))?)?;
        match aws.local.invoke(function, &payload)? {
            Invocation::Ok(_) => {}
            Invocation::FunctionError {
                error_type,
                error_message,
            } => assert!(
                !matches!(error_type.as_str(), "InvalidInput" | "InvalidSpec"),
                "events/{name}: {error_type}: {error_message}"
            ),
        }
        tried += 1;
    }
    assert!(tried >= 30, "{tried} sample events");
    Ok(())
}
