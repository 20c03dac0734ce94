//! The shipped state machine in the local Step Functions service (tools/sfn-local), where
//! executions run on their own, answer `.waitForTaskToken` callbacks, honour StopExecution and
//! send status change events to the finalizer as the template's EventBridge rule does; signals
//! go through the real `api` binary.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use okra_aws::state::{StatePort, WaitKind};
use okra_testkit::{Invocation, LocalAws};
use serde_json::{Value, json};

use super::{Aws, FUNCTIONS, STATE_MACHINE_ARN, aws_with, cell, cell_name, input};

static STACK: OnceLock<std::result::Result<LocalAws, String>> = OnceLock::new();

/// A stack with the local Step Functions service (50 ms Wait states, Task time-outs scaled by
/// `fast_timeouts`) and the template's finalizer rule delivering status change events to
/// `rollout-state`.
pub fn builder(fast_timeouts: Option<f64>) -> okra_testkit::LocalAwsBuilder {
    let builder = super::builder();
    let builder = match fast_timeouts {
        Some(f) => builder.sfn_arg(format!("--fast-timeouts={f}")),
        None => builder,
    };
    builder.step_functions(Some(50)).event_rule(
        json!({
            "source": ["aws.states"],
            "detail-type": ["Step Functions Execution Status Change"],
            "detail": {"status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"],
                       "stateMachineArn": [STATE_MACHINE_ARN]},
        }),
        "rollout-state",
    )
}

/// The suites' shared stack with the local Step Functions service (the first call's
/// `fast_timeouts` starts it).
fn stack(fast_timeouts: Option<f64>) -> Result<&'static LocalAws> {
    super::stack_in(&STACK, || builder(fast_timeouts))
}

/// The local Step Functions services (by endpoint) the state machine is made in.
static MACHINE: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());

/// The stack's clients, and an aws-sdk-sfn client on the local Step Functions service with the
/// shipped state machine created in it (its substitutions pointing at the local binaries).
pub async fn setup(fast_timeouts: Option<f64>) -> Result<(Aws, aws_sdk_sfn::Client)> {
    setup_on(stack(fast_timeouts)?).await
}

/// [`setup`] on a suite's own stack (made with [`builder`]).
pub async fn setup_on(local: &'static LocalAws) -> Result<(Aws, aws_sdk_sfn::Client)> {
    let aws = aws_with(local).await?;
    let conf = local.sdk_config().await;
    let endpoint = local.sfn_endpoint().context("an sfn endpoint")?;
    let sfn = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&conf)
            .endpoint_url(endpoint)
            .build(),
    );
    let mut made = MACHINE.lock().await;
    if !made.iter().any(|e| e == endpoint) {
        let mut bins: Vec<&str> = FUNCTIONS.iter().map(|(_, b)| *b).collect();
        bins.extend(["api", "dispatcher"]);
        local.ensure_built(&bins)?;
        super::create_state_machine(&sfn, &FUNCTIONS).await?;
        made.push(endpoint.to_string());
    }
    drop(made);
    Ok((aws, sfn))
}

pub fn execution_arn(name: &str) -> String {
    STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + ":" + name
}

pub async fn start(sfn: &aws_sdk_sfn::Client, name: &str, input: &Value) -> Result<()> {
    sfn.start_execution()
        .state_machine_arn(STATE_MACHINE_ARN)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .with_context(|| format!("StartExecution {name}"))?;
    Ok(())
}

/// The execution's status and error now.
pub async fn status(sfn: &aws_sdk_sfn::Client, name: &str) -> Result<(String, Option<String>)> {
    let d = sfn
        .describe_execution()
        .execution_arn(execution_arn(name))
        .send()
        .await?;
    Ok((
        d.status().as_str().to_string(),
        d.error().map(str::to_string),
    ))
}

/// Waits (60 s at most) for the execution to end; its status, error and cause.
pub async fn finished(sfn: &aws_sdk_sfn::Client, name: &str) -> Result<(String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(execution_arn(name))
            .send()
            .await?;
        if d.status().as_str() != "RUNNING" {
            super::events_valid(name)?;
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
pub async fn history(
    sfn: &aws_sdk_sfn::Client,
    name: &str,
) -> Result<Vec<(String, Option<String>)>> {
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
pub fn api(aws: &Aws, method: &str, path: &str) -> Result<(u64, Value)> {
    api_with(aws, method, path, None)
}

/// [`api`] with a JSON body.
pub fn api_with(aws: &Aws, method: &str, path: &str, body: Option<&Value>) -> Result<(u64, Value)> {
    let event = json!({
        "resource": "/cells/{proxy+}", "path": path, "httpMethod": method,
        "headers": {"Accept": "application/json"}, "multiValueHeaders": {},
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches("/cells/")}, "stageVariables": null,
        "requestContext": {"resourcePath": "/cells/{proxy+}", "httpMethod": method, "stage": "v1",
                           "requestId": "e2e", "accountId": "123456789012", "apiId": "local",
                           "identity": {"sourceIp": "127.0.0.1"}},
        "body": body.map(Value::to_string), "isBase64Encoded": false,
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

/// A person resumes the waiting rollout `exec` of `cell` through the API (202), and the
/// execution then ends SUCCEEDED.
pub async fn resume_to_the_end(
    aws: &Aws,
    sfn: &aws_sdk_sfn::Client,
    cell: &str,
    exec: &str,
) -> Result<()> {
    let (status, body) = api(
        aws,
        "POST",
        &format!("/cells/{cell}/rollouts/{exec}/resume"),
    )?;
    anyhow::ensure!(status == 202, "resume answered {status}: {body}");
    let (status, error) = finished(sfn, exec).await?;
    anyhow::ensure!(status == "SUCCEEDED", "{exec} ended {status} ({error:?})");
    Ok(())
}

/// Stores the cell `spec` of `w`, serves 1.0.0 on two clusters (an `initialize` execution that
/// must succeed), then two clusters of 1.1.0 appear.
pub async fn serving_then_a_new_version(
    aws: &Aws,
    sfn: &aws_sdk_sfn::Client,
    w: &super::World,
    spec: &Value,
) -> Result<()> {
    aws.state()
        .put_cell(&serde_json::from_value(spec.clone())?, None)
        .await?;
    aws.serving_cluster(w, "a1", "1.0.0").await?;
    aws.serving_cluster(w, "a2", "1.0.0").await?;
    let init = format!("{}-init", cell_name(w));
    start(sfn, &init, &input(spec.clone())).await?;
    let (status, error) = finished(sfn, &init).await?;
    anyhow::ensure!(status == "SUCCEEDED", "{init} ended {status} ({error:?})");
    aws.serving_cluster(w, "b1", "1.1.0").await?;
    aws.serving_cluster(w, "b2", "1.1.0").await?;
    Ok(())
}

/// Waits (60 s at most) until execution `exec` of `cell` waits for a person (not a timed pause
/// or an analysis) under a task token other than `other_than`; the token.
pub async fn waiting_for_a_person(
    aws: &Aws,
    sfn: &aws_sdk_sfn::Client,
    cell: &str,
    exec: &str,
    other_than: Option<&str>,
) -> Result<String> {
    waiting(aws, sfn, cell, exec, Some(WaitKind::Person), other_than).await
}

/// Waits (60 s at most) until execution `exec` of `cell` waits (a wait of `kind`, or any) under
/// a task token other than `other_than`; the token. Fails at once, with the history, if the
/// execution ends.
pub async fn waiting(
    aws: &Aws,
    sfn: &aws_sdk_sfn::Client,
    cell: &str,
    exec: &str,
    kind: Option<WaitKind>,
    other_than: Option<&str>,
) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(w) = aws.state().get_wait(cell, exec).await?
            && kind.is_none_or(|k| k == w.kind)
            && Some(w.token.as_str()) != other_than
        {
            return Ok(w.token);
        }
        let (status, error) = self::status(sfn, exec).await?;
        anyhow::ensure!(
            status == "RUNNING",
            "{exec} ended {status} ({error:?}) before waiting: {:?}",
            history(sfn, exec).await?
        );
        anyhow::ensure!(
            Instant::now() < deadline,
            "{exec} never waited for a person"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two clusters of 1.0.0 serving (an `initialize` execution), then two of 1.1.0 and a rollout
/// execution `<cell>-roll` with `steps` started; returns when it waits for a person (the
/// callback's token is kept).
pub async fn paused_rollout(
    aws: &Aws,
    sfn: &aws_sdk_sfn::Client,
    prefix: &str,
) -> Result<(super::World, String)> {
    paused_rollout_with(aws, sfn, prefix, |_| {}).await
}

/// [`paused_rollout`] with the cell spec changed by `edit` first.
pub async fn paused_rollout_with(
    aws: &Aws,
    sfn: &aws_sdk_sfn::Client,
    prefix: &str,
    edit: impl FnOnce(&mut Value),
) -> Result<(super::World, String)> {
    let w = aws.world(prefix).await?;
    let name = cell_name(&w);
    let mut spec = cell(
        &w,
        json!([{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}]),
    );
    edit(&mut spec);
    // The `errors` analysis (and a background one, where `edit` adds it) reads a healthy 0.
    aws.put_metric("Okra/E2E", "Errors", &[("Cell", &name)], 0.0)
        .await?;
    serving_then_a_new_version(aws, sfn, &w, &spec).await?;
    let exec = format!("{name}-roll");
    start(sfn, &exec, &input(spec)).await?;
    waiting(aws, sfn, &name, &exec, None, None).await?;
    assert_eq!(
        aws.weights_by_version(&w).await?,
        BTreeMap::from([("1.0.0".to_string(), 70), ("1.1.0".to_string(), 30)]),
        "the canary holds its 30 % while paused"
    );
    Ok((w, exec))
}
