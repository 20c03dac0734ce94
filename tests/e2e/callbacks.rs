//! Waits for a person, and executions that end outside the state machine's own ends, run the way
//! AWS runs them: the shipped state machine in the local Step Functions service
//! (tools/sfn-local), whose executions run on their own, answer `.waitForTaskToken` callbacks,
//! honour StopExecution and send "Step Functions Execution Status Change" events to the
//! finalizer as the template's EventBridge rule does. Signals go through the real `api` binary,
//! a reconcile through the real `dispatcher` binary.
//!
//! AWS sources: Step Functions developer guide, "Wait for a Callback with Task Token" (the task
//! waits until SendTaskSuccess, no polling) and "Automating Step Functions event delivery with
//! EventBridge" (the status change event); API reference, StartExecution (a name is unique for
//! 90 days, closed executions included) and StopExecution.

// Test code: a panic with the failing line is the right report.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use common::{Aws, FUNCTIONS, STATE_MACHINE_ARN, TABLE, aws_with, cell, cell_name, input};
use okra_aws::state::StatePort;
use okra_testkit::{Invocation, LocalAws};
use serde_json::{Value, json};

static STACK: OnceLock<std::result::Result<LocalAws, String>> = OnceLock::new();

/// This binary's stack: the local Step Functions service with 50 ms Wait states, and the
/// template's finalizer rule delivering status change events to `rollout-state`.
fn stack() -> Result<&'static LocalAws> {
    STACK
        .get_or_init(|| {
            LocalAws::builder()
                .function_env("TABLE_NAME", TABLE)
                .function_env("STATE_MACHINE_ARN", STATE_MACHINE_ARN)
                .function_env("EVENT_BUS_NAME", "default")
                .step_functions(Some(50))
                .event_rule(
                    json!({
                        "source": ["aws.states"],
                        "detail-type": ["Step Functions Execution Status Change"],
                        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"],
                                   "stateMachineArn": [STATE_MACHINE_ARN]},
                    }),
                    "rollout-state",
                )
                .start()
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("the local AWS did not start: {e}"))
}

static MACHINE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// The stack's clients, and an aws-sdk-sfn client on the local Step Functions service with the
/// shipped state machine created in it (its substitutions pointing at the local binaries).
async fn setup() -> Result<(Aws, aws_sdk_sfn::Client)> {
    let local = stack()?;
    let aws = aws_with(local).await?;
    let conf = local.sdk_config().await;
    let endpoint = local.sfn_endpoint().context("an sfn endpoint")?;
    let sfn = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&conf)
            .endpoint_url(endpoint)
            .build(),
    );
    MACHINE
        .get_or_try_init(|| async {
            let mut definition = std::fs::read_to_string(
                okra_testkit::workspace_root().join("statemachine/rollout.asl.json"),
            )?;
            for (sub, bin) in FUNCTIONS {
                definition =
                    definition.replace(&format!("${{{sub}}}"), &okra_testkit::lambda_arn(bin));
            }
            let mut bins: Vec<&str> = FUNCTIONS.iter().map(|(_, b)| *b).collect();
            bins.extend(["api", "dispatcher"]);
            local.ensure_built(&bins)?;
            sfn.create_state_machine()
                .name("okra-rollout")
                .definition(definition)
                .role_arn("arn:aws:iam::123456789012:role/okra-rollout")
                .send()
                .await
                .context("CreateStateMachine")?;
            anyhow::Ok(())
        })
        .await?;
    Ok((aws, sfn))
}

fn execution_arn(name: &str) -> String {
    STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + ":" + name
}

async fn start(sfn: &aws_sdk_sfn::Client, name: &str, input: &Value) -> Result<()> {
    sfn.start_execution()
        .state_machine_arn(STATE_MACHINE_ARN)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .with_context(|| format!("StartExecution {name}"))?;
    Ok(())
}

/// Waits (60 s at most) for the execution to end; its status, error and cause.
async fn finished(sfn: &aws_sdk_sfn::Client, name: &str) -> Result<(String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(execution_arn(name))
            .send()
            .await?;
        if d.status().as_str() != "RUNNING" {
            return Ok((
                d.status().as_str().to_string(),
                d.error().map(str::to_string),
            ));
        }
        anyhow::ensure!(Instant::now() < deadline, "{name} still runs after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The execution's history: (event type, state name where the event names one).
async fn history(sfn: &aws_sdk_sfn::Client, name: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution_arn(name))
            .set_next_token(token)
            .send()
            .await?;
        for e in page.events() {
            let state = e
                .state_entered_event_details()
                .map(|d| d.name().to_string());
            out.push((e.r#type().as_str().to_string(), state));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Invokes the real `api` binary with an API Gateway proxy request; (status, body).
fn api(aws: &Aws, method: &str, path: &str) -> Result<(u64, Value)> {
    let event = json!({
        "resource": "/cells/{proxy+}", "path": path, "httpMethod": method,
        "headers": {"Accept": "application/json"}, "multiValueHeaders": {},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches("/cells/")}, "stageVariables": null,
        "requestContext": {"resourcePath": "/cells/{proxy+}", "httpMethod": method, "stage": "v1",
                           "requestId": "e2e", "accountId": "123456789012", "apiId": "local",
                           "identity": {"sourceIp": "127.0.0.1"}},
        "body": null, "isBase64Encoded": false,
    });
    match aws.local.invoke("api", &event)? {
        Invocation::Ok(reply) => {
            let status = reply["statusCode"].as_u64().context("a statusCode")?;
            let body = reply["body"]
                .as_str()
                .map(serde_json::from_str)
                .transpose()?
                .unwrap_or(Value::Null);
            Ok((status, body))
        }
        Invocation::FunctionError { error_message, .. } => Err(anyhow!(error_message)),
    }
}

/// Two clusters of 1.0.0 serving (an `initialize` execution), then two of 1.1.0 and a rollout
/// execution `<cell>-roll` with `steps` started; returns when it waits for a person (the
/// callback's token is kept).
async fn paused_rollout(
    aws: &Aws,
    sfn: &aws_sdk_sfn::Client,
    prefix: &str,
) -> Result<(common::World, String)> {
    let w = aws.world(prefix).await?;
    let name = cell_name(&w);
    let spec = cell(
        &w,
        json!([{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}]),
    );
    aws.state()
        .put_cell(&serde_json::from_value(spec.clone())?, None)
        .await?;
    aws.cluster(&w, "a1", "1.0.0").await?;
    aws.cluster(&w, "a2", "1.0.0").await?;
    let init = format!("{name}-init");
    start(sfn, &init, &input(spec.clone())).await?;
    assert_eq!(finished(sfn, &init).await?.0, "SUCCEEDED");
    aws.cluster(&w, "b1", "1.1.0").await?;
    aws.cluster(&w, "b2", "1.1.0").await?;
    let exec = format!("{name}-roll");
    start(sfn, &exec, &input(spec)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while aws.state().get_wait(&name, &exec).await?.is_none() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{exec} never waited for a person"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 70), ("1.1.0".to_string(), 30)]),
        "the canary holds its 30 % while paused"
    );
    Ok((w, exec))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_until_resumed_is_a_callback_the_api_answers() -> Result<()> {
    let (aws, sfn) = setup().await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbres").await?;
    let name = cell_name(&w);

    // A wait adds no history event while it lasts: a week-long pause costs what a second does.
    // (The old 10 s poll added ~11 events per poll: 25,000 after ~6 h.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = history(&sfn, &exec).await?.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = history(&sfn, &exec).await?;
    assert_eq!(after.len(), before, "waiting wrote history events");
    assert!(before < 300, "{before} events up to the pause");
    assert!(
        after
            .iter()
            .any(|(t, s)| t == "TaskStateEntered" && s.as_deref() == Some("WaitForPerson")),
        "the pause is the callback task"
    );

    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(finished(&sfn, &exec).await?.0, "SUCCEEDED");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_answers_the_callback_and_rolls_back() -> Result<()> {
    let (aws, sfn) = setup().await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbabrt").await?;
    let name = cell_name(&w);
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/abort"),
    )?;
    assert_eq!(status, 202, "{body}");
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("RolledBack"))
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 100)])
    );
    assert_eq!(aws.blocked(&name).await?, vec!["1.1.0".to_string()]);
    Ok(())
}

/// StopExecution (a person in the console) at 30 %: no Finish* state runs, so the status change
/// event's finalizer records the rollout as failed and releases the lock; traffic stays at the
/// weights the last step asked for; a signal to the dead execution is refused; the next
/// reconcile starts a new execution (a new generation's name) that finishes the job.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_execution_is_finalized_and_the_next_reconcile_finishes_the_job() -> Result<()> {
    let (aws, sfn) = setup().await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbstop").await?;
    let name = cell_name(&w);
    sfn.stop_execution()
        .execution_arn(execution_arn(&exec))
        .send()
        .await?;
    assert_eq!(finished(&sfn, &exec).await?.0, "ABORTED");

    let deadline = Instant::now() + Duration::from_secs(30);
    while aws.state().get_lock(&name).await?.is_some() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the finalizer never released the lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = aws
        .rollout(&name, &exec)
        .await?
        .context("the rollout's record")?;
    assert_eq!(record.status, "failed", "{record:?}");
    assert!(
        record
            .history
            .last()
            .is_some_and(|h| h.detail.to_string().contains("ABORTED")),
        "{:?}",
        record.history.last()
    );
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 70), ("1.1.0".to_string(), 30)]),
        "traffic stays where the last step put it"
    );
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(
        status, 409,
        "a signal to a dead execution is refused: {body}"
    );

    let Invocation::Ok(out) = aws
        .local
        .invoke("dispatcher", &json!({"cells": [name], "trigger": "api"}))?
    else {
        anyhow::bail!("the dispatcher failed");
    };
    let result = &out["results"][0];
    assert_eq!(result["outcome"], "started", "{out}");
    let next = result["execution"]
        .as_str()
        .context("an execution")?
        .to_string();
    assert_ne!(next, exec);
    // It resumes at the pause (or past it): answer the pause if it waits for a person.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if aws.state().get_wait(&name, &next).await?.is_some() {
            let (status, body) = api(
                &aws,
                "POST",
                &format!("/cells/{name}/rollouts/{next}/resume"),
            )?;
            assert_eq!(status, 202, "{body}");
            break;
        }
        let d = sfn
            .describe_execution()
            .execution_arn(execution_arn(&next))
            .send()
            .await?;
        if d.status().as_str() != "RUNNING" {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{next} neither paused nor ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(finished(&sfn, &next).await?.0, "SUCCEEDED");
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.1.0".to_string(), 100)])
    );
    Ok(())
}

/// A person edits the listener by hand during the pause; the resume then finds weights no step
/// left: the rollout stops, rolls nothing back over the edit (DriftDetected), and frees the cell.
#[tokio::test(flavor = "multi_thread")]
async fn a_listener_edited_by_hand_during_a_pause_stops_the_rollout_and_keeps_the_edit()
-> Result<()> {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    };
    let (aws, sfn) = setup().await?;
    let (w, exec) = paused_rollout(&aws, &sfn, "cbdrift").await?;
    let name = cell_name(&w);
    let mut by_version = BTreeMap::new();
    for (_, arn) in aws.target_groups_named(&name).await? {
        let v = aws
            .tags(&arn)
            .await?
            .remove("okra.io/version")
            .unwrap_or_default();
        by_version.entry(v).or_insert(arn);
    }
    let tuple = |v: &str, weight| {
        TargetGroupTuple::builder()
            .target_group_arn(&by_version[v])
            .weight(weight)
            .build()
    };
    aws.elb
        .modify_listener()
        .listener_arn(&w.listener_arn)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .target_groups(tuple("1.0.0", 90))
                        .target_groups(tuple("1.1.0", 10))
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    let edited = aws.weights(&w).await?;
    let (status, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/resume"),
    )?;
    assert_eq!(status, 202, "{body}");
    let (status, error) = finished(&sfn, &exec).await?;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("RollbackFailed"))
    );
    assert_eq!(
        aws.weights(&w).await?,
        edited,
        "the hand edit is left as it is"
    );
    assert_eq!(aws.state().get_lock(&name).await?, None);
    Ok(())
}
