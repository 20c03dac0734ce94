//! The local Step Functions service (tools/sfn-local/server.mjs) and the runner
//! (tools/sfn-runner/run.mjs) held to AWS Step Functions' documented behaviour where okra relies
//! on it: the history event model and its quota, the payload quota, execution names, callbacks
//! with task tokens, StopExecution, status change events, and the real AWS CLI talking to it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use okra_testkit::{LocalAws, RunRequest, lambda_arn};
use serde_json::{Value, json};

const ECHO: &str = "okra-testkit-echo";

/// One Step Functions call: `(HTTP status, body)`.
fn call(endpoint: &str, op: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .post(endpoint)
        .header("X-Amz-Target", format!("AWSStepFunctions.{op}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .send(body.to_string())
        .expect("sfn-local answers");
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("a body");
    (status, serde_json::from_str(&text).expect("JSON"))
}

fn ok(endpoint: &str, op: &str, body: &Value) -> Value {
    let (status, out) = call(endpoint, op, body);
    assert_eq!(status, 200, "{op}: {out}");
    out
}

fn error_type(endpoint: &str, op: &str, body: &Value) -> String {
    let (status, out) = call(endpoint, op, body);
    assert_eq!(status, 400, "{op}: {out}");
    out["__type"].as_str().unwrap_or_default().to_owned()
}

fn create(endpoint: &str, name: &str, definition: &Value) -> String {
    let out = ok(
        endpoint,
        "CreateStateMachine",
        &json!({"name": name, "definition": definition.to_string(),
                "roleArn": "arn:aws:iam::123456789012:role/r"}),
    );
    out["stateMachineArn"]
        .as_str()
        .expect("stateMachineArn")
        .to_owned()
}

fn start(endpoint: &str, machine: &str, name: &str, input: &Value) -> String {
    let out = ok(
        endpoint,
        "StartExecution",
        &json!({"stateMachineArn": machine, "name": name, "input": input.to_string()}),
    );
    out["executionArn"]
        .as_str()
        .expect("executionArn")
        .to_owned()
}

fn wait_until(what: &str, mut f: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn wait_done(endpoint: &str, arn: &str) -> Value {
    wait_until("the execution to end", || {
        let d = ok(endpoint, "DescribeExecution", &json!({"executionArn": arn}));
        (d["status"] != "RUNNING").then_some(d)
    })
}

/// The whole history, read 7 events at a time (exercises maxResults/nextToken).
fn history(endpoint: &str, arn: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"executionArn": arn, "maxResults": 7});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let page = ok(endpoint, "GetExecutionHistory", &req);
        events.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return events,
        }
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// The task token of the callback task that is waiting, read from its TaskScheduled event.
fn waiting_token(endpoint: &str, arn: &str) -> String {
    let v = wait_until("TaskSubmitted", || {
        let h = history(endpoint, arn);
        let submitted = h.iter().any(|e| e["type"] == "TaskSubmitted");
        let scheduled = h
            .iter()
            .rev()
            .find(|e| e["type"] == "TaskScheduled")?
            .clone();
        submitted.then_some(scheduled)
    });
    let params: Value = serde_json::from_str(
        v["taskScheduledEventDetails"]["parameters"]
            .as_str()
            .expect("parameters"),
    )
    .expect("parameters are JSON");
    params["Payload"]["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

fn by_status_in(events: &[Value], status: &str) -> Value {
    events
        .iter()
        .find(|e| e["detail"]["status"] == status)
        .unwrap_or_else(|| panic!("no {status} event in {events:#?}"))
        .clone()
}

fn sfn_stack(builder: okra_testkit::LocalAwsBuilder) -> (LocalAws, String) {
    let aws = builder.start().expect("stack");
    aws.ensure_built(&[ECHO]).expect("echo built");
    let sfn = aws.sfn_endpoint().expect("an sfn endpoint").to_owned();
    (aws, sfn)
}

/// Pass, a Lambda-ARN Task retried once, an optimised `lambda:invoke` Task, Succeed.
fn accounting_machine(key: &str) -> Value {
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"fail": "Flaky", "failTimes": 1, "key": key}, "Next": "Direct"},
            "Direct": {"Type": "Task", "Resource": lambda_arn(ECHO),
                       "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                       "ResultSelector": {"key.$": "$.echo.key"}, "Next": "Optimised"},
            "Optimised": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                          "Parameters": {"FunctionName": lambda_arn(ECHO), "Payload": {"k.$": "$.key"}},
                          "ResultSelector": {"k.$": "$.Payload.echo.k", "code.$": "$.StatusCode"},
                          "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    })
}

const ACCOUNTING: [&str; 19] = [
    "ExecutionStarted",
    "PassStateEntered",
    "PassStateExited",
    "TaskStateEntered",
    "LambdaFunctionScheduled",
    "LambdaFunctionStarted",
    "LambdaFunctionFailed",
    "LambdaFunctionScheduled",
    "LambdaFunctionStarted",
    "LambdaFunctionSucceeded",
    "TaskStateExited",
    "TaskStateEntered",
    "TaskScheduled",
    "TaskStarted",
    "TaskSucceeded",
    "TaskStateExited",
    "SucceedStateEntered",
    "SucceedStateExited",
    "ExecutionSucceeded",
];

// AWS: "Step Functions history events" / API reference HistoryEvent and GetExecutionHistory
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html,
// .../API_GetExecutionHistory.html): a Lambda-ARN Task logs LambdaFunctionScheduled/Started/
// Succeeded|Failed, an optimised integration TaskScheduled/Started/Succeeded, each retry logs
// its attempt again; details are stateEnteredEventDetails {name,input}, ...; maxResults,
// nextToken and reverseOrder page through it.
#[test]
fn history_follows_the_aws_event_model_in_the_service_and_the_runner() {
    let (aws, sfn) = sfn_stack(LocalAws::builder().step_functions(Some(5)));
    let key = LocalAws::unique("acct");
    let machine = create(&sfn, "accounting", &accounting_machine(&key));
    let arn = start(&sfn, &machine, "acct-1", &json!({}));
    let done = wait_done(&sfn, &arn);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        serde_json::from_str::<Value>(done["output"].as_str().unwrap()).unwrap(),
        json!({"k": key, "code": 200})
    );
    let events = history(&sfn, &arn);
    assert_eq!(types(&events), ACCOUNTING);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["id"], json!(i + 1));
        assert_eq!(e["previousEventId"], json!(i));
        assert!(e["timestamp"].as_f64().unwrap() > 1.7e9, "{e}");
    }
    assert_eq!(
        events[1]["stateEnteredEventDetails"],
        json!({"name": "Prepare", "input": "{}", "inputDetails": {"truncated": false}})
    );
    assert_eq!(events[2]["stateExitedEventDetails"]["name"], "Prepare");
    assert_eq!(
        events[4]["lambdaFunctionScheduledEventDetails"]["resource"],
        lambda_arn(ECHO)
    );
    assert_eq!(
        events[6]["lambdaFunctionFailedEventDetails"]["error"],
        "Flaky"
    );
    let scheduled = &events[12]["taskScheduledEventDetails"];
    assert_eq!(
        (&scheduled["resourceType"], &scheduled["resource"]),
        (&json!("lambda"), &json!("invoke"))
    );
    let params: Value = serde_json::from_str(scheduled["parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["Payload"], json!({"k": key}));
    let out: Value = serde_json::from_str(
        events[14]["taskSucceededEventDetails"]["output"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for field in [
        "ExecutedVersion",
        "Payload",
        "SdkHttpMetadata",
        "SdkResponseMetadata",
        "StatusCode",
    ] {
        assert!(out.get(field).is_some(), "{field} missing from {out}");
    }
    let reversed = ok(
        &sfn,
        "GetExecutionHistory",
        &json!({"executionArn": arn, "reverseOrder": true, "maxResults": 1000}),
    );
    let mut back = types(reversed["events"].as_array().unwrap());
    back.reverse();
    assert_eq!(back, ACCOUNTING);
    assert_eq!(
        error_type(
            &sfn,
            "GetExecutionHistory",
            &json!({"executionArn": arn, "nextToken": "garbage"})
        ),
        "InvalidToken"
    );
    // DescribeExecution stays AWS-shaped: no event count in it.
    assert!(done.get("historyLength").is_none() && done.get("events").is_none());

    // The runner: the same code path, the same history.
    let key = LocalAws::unique("acct");
    let exec = aws
        .run_state_machine(
            &RunRequest::from_definition(accounting_machine(&key)).retry_override("Direct", 0),
        )
        .expect("runner");
    assert_eq!(exec.status, "SUCCEEDED", "{exec:?}");
    assert_eq!(exec.history_types(), ACCOUNTING);
    // ...and its library event log is still there for the older helpers.
    assert_eq!(exec.retries("Direct"), 1);
}

/// A loop of a caught failing Task, a Pass and a Choice: 8 events per turn, forever.
fn endless_machine() -> Value {
    json!({
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": lambda_arn(ECHO), "Parameters": {"fail": "Boom"},
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "Next": "Caught"},
            "Caught": {"Type": "Pass", "Next": "Again"},
            "Again": {"Type": "Choice", "Choices": [{"Variable": "$.never", "IsPresent": true, "Next": "Out"}],
                      "Default": "Work"},
            "Out": {"Type": "Succeed"}
        }
    })
}

// AWS: developer guide "Step Functions service quotas" ("Maximum execution history size: 25,000
// events. If the execution history reaches this quota the execution will fail."). The page names
// no error for it: States.Runtime here, which no Catch/States.ALL catches ("Handling errors").
#[test]
fn the_history_quota_fails_the_execution_and_no_catch_stops_it() {
    let (aws, sfn) = sfn_stack(
        LocalAws::builder()
            .step_functions(Some(5))
            .sfn_arg("--history-limit=40"),
    );
    let machine = create(&sfn, "endless", &endless_machine());
    let arn = start(&sfn, &machine, "endless-1", &json!({}));
    let done = wait_done(&sfn, &arn);
    assert_eq!(
        (done["status"].as_str(), done["error"].as_str()),
        (Some("FAILED"), Some("States.Runtime")),
        "{done}"
    );
    let events = history(&sfn, &arn);
    assert_eq!(events.len(), 40);
    assert_eq!(types(&events).last(), Some(&"ExecutionFailed"));
    assert_eq!(
        events[39]["executionFailedEventDetails"]["error"],
        "States.Runtime"
    );

    let exec = aws
        .run_state_machine(&RunRequest::from_definition(endless_machine()).history_limit(40))
        .expect("runner");
    assert_eq!(exec.status, "FAILED");
    assert_eq!(exec.error.as_deref(), Some("States.Runtime"));
    assert_eq!(exec.history.len(), 40);
}

// AWS: developer guide "Step Functions service quotas" (256 KiB per task, state or execution
// input/output, UTF-8) and "Handling errors" (States.DataLimitExceeded "is a terminal error that
// can't be caught by the States.ALL error type"); API reference StartExecution: `input` has
// "Maximum length of 262144" (a longer one is refused: ValidationException).
#[test]
fn payloads_over_256_kib_fail_the_execution_uncatchably() {
    let (aws, sfn) = sfn_stack(LocalAws::builder().step_functions(Some(5)));
    // The echo answers {"echo": <input>, "env": ...}: a 262,000-byte input comes back bigger
    // than 262,144 bytes.
    let big = "é".repeat(131_000); // 2 bytes each in UTF-8
    let definition = json!({
        "StartAt": "Echo",
        "States": {
            "Echo": {"Type": "Task", "Resource": lambda_arn(ECHO),
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
            "Caught": {"Type": "Pass", "End": true}
        }
    });
    let machine = create(&sfn, "big", &definition);
    let arn = start(&sfn, &machine, "big-1", &json!({"s": big}));
    let done = wait_done(&sfn, &arn);
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.DataLimitExceeded");
    let events = history(&sfn, &arn);
    assert!(
        !types(&events).contains(&"PassStateEntered"),
        "{:?}",
        types(&events)
    );

    let too_big = json!({"s": "x".repeat(262_144)});
    assert_eq!(
        error_type(
            &sfn,
            "StartExecution",
            &json!({"stateMachineArn": machine, "name": "big-2", "input": too_big.to_string()})
        ),
        "ValidationException"
    );

    let exec = aws
        .run_state_machine(&RunRequest::from_definition(definition).input(json!({"s": big})))
        .expect("runner");
    assert_eq!(exec.status, "FAILED");
    assert_eq!(exec.error.as_deref(), Some("States.DataLimitExceeded"));
}

// AWS: API reference StartExecution ("name ... must be unique for your AWS account, Region,
// and state machine for 90 days"; idempotent only for the same name and input while RUNNING).
// The runner runs through the same service: a name AWS refuses is refused there too.
#[test]
fn execution_names_follow_aws_in_the_runner_too() {
    let aws = LocalAws::shared().expect("stack");
    let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let err = aws
        .run_state_machine(
            &RunRequest::from_definition(definition.clone())
                .context(json!({"Execution": {"Name": "has a space"}})),
        )
        .expect_err("an invalid name is refused");
    assert!(format!("{err:#}").contains("InvalidName"), "{err:#}");
    let exec = aws
        .run_state_machine(
            &RunRequest::from_definition(definition)
                .context(json!({"Execution": {"Name": "fine-name"}})),
        )
        .expect("runner");
    assert!(
        exec.execution_arn.ends_with(":fine-name"),
        "{}",
        exec.execution_arn
    );
}

fn callback_machine() -> Value {
    let task = |extra: Value| {
        let mut t = json!({
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": lambda_arn(ECHO),
                           "Payload": {"token.$": "$$.Task.Token", "mode.$": "$.mode"}},
            "Catch": [{"ErrorEquals": ["Rejected", "States.HeartbeatTimeout", "States.Timeout"],
                       "ResultPath": "$.caught", "Next": "Caught"}],
            "ResultPath": "$.result",
            "Next": "After"
        });
        if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
            t.extend(extra.clone());
        }
        t
    };
    json!({
        "StartAt": "Route",
        "States": {
            "Route": {"Type": "Choice", "Choices": [
                {"Variable": "$.mode", "StringEquals": "heartbeat", "Next": "Heartbeat"},
                {"Variable": "$.mode", "StringEquals": "timeout", "Next": "Timeout"},
                {"Variable": "$.mode", "StringEquals": "timeoutPath", "Next": "TimeoutPath"}],
                "Default": "Callback"},
            "Callback": task(json!({})),
            "Heartbeat": task(json!({"HeartbeatSeconds": 100, "TimeoutSeconds": 100_000})),
            "Timeout": task(json!({"TimeoutSeconds": 200})),
            // Read from the state input, not from the Parameters (which have no `secs`).
            "TimeoutPath": task(json!({"TimeoutSecondsPath": "$.secs"})),
            "After": {"Type": "Task", "Resource": lambda_arn(ECHO), "Parameters": {"after": true}, "End": true},
            "Caught": {"Type": "Pass", "End": true}
        }
    })
}

// AWS: developer guide "Wait for a Callback with Task Token" and "Handling errors"
// (States.HeartbeatTimeout, States.Timeout); API reference SendTaskSuccess/SendTaskFailure/
// SendTaskHeartbeat (InvalidToken "The provided token is not valid", TaskDoesNotExist,
// TaskTimedOut "the task associated with the token has already been closed", InvalidOutput,
// `output` "Maximum length of 262144").
#[test]
fn callbacks_with_task_tokens() {
    // --fast-waits 5 ms: it must not shorten a callback wait. --fast-timeouts 0.01: the 100 s
    // heartbeat fires after 1 s, the 200 s timeout after 2 s.
    let (_aws, sfn) = sfn_stack(
        LocalAws::builder()
            .step_functions(Some(5))
            .sfn_arg("--fast-timeouts=0.01"),
    );
    let machine = create(&sfn, "callbacks", &callback_machine());

    // SendTaskSuccess: the output (parsed) is the task's result.
    let arn = start(&sfn, &machine, "cb-ok", &json!({"mode": "ok"}));
    let token = waiting_token(&sfn, &arn);
    std::thread::sleep(Duration::from_millis(300));
    let d = ok(&sfn, "DescribeExecution", &json!({"executionArn": arn}));
    assert_eq!(
        d["status"], "RUNNING",
        "a callback waits; --fast-waits does not apply"
    );
    let before = history(&sfn, &arn).len();
    ok(&sfn, "SendTaskHeartbeat", &json!({"taskToken": token}));
    assert_eq!(
        history(&sfn, &arn).len(),
        before,
        "heartbeats write no event"
    );
    assert_eq!(
        error_type(
            &sfn,
            "SendTaskSuccess",
            &json!({"taskToken": "not-a-token", "output": "{}"})
        ),
        "InvalidToken"
    );
    let unknown = format!("okra-task-token-v1.{}", "A".repeat(64));
    assert_eq!(
        error_type(
            &sfn,
            "SendTaskSuccess",
            &json!({"taskToken": unknown, "output": "{}"})
        ),
        "TaskDoesNotExist"
    );
    assert_eq!(
        error_type(
            &sfn,
            "SendTaskSuccess",
            &json!({"taskToken": token, "output": "{not json"})
        ),
        "InvalidOutput"
    );
    let huge = json!({"s": "x".repeat(262_144)}).to_string();
    assert_eq!(
        error_type(
            &sfn,
            "SendTaskSuccess",
            &json!({"taskToken": token, "output": huge})
        ),
        "ValidationException"
    );
    ok(
        &sfn,
        "SendTaskSuccess",
        &json!({"taskToken": token, "output": "{\"approved\":true}"}),
    );
    let done = wait_done(&sfn, &arn);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let events = history(&sfn, &arn);
    let t = types(&events);
    let entered = t.iter().position(|x| *x == "TaskStateEntered").unwrap();
    assert_eq!(
        &t[entered..entered + 6],
        [
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "TaskStateExited"
        ]
    );
    let result: Value = serde_json::from_str(
        events[entered + 4]["taskSucceededEventDetails"]["output"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(result, json!({"approved": true}));
    assert_eq!(
        events[entered + 1]["taskScheduledEventDetails"]["resource"],
        "invoke.waitForTaskToken"
    );
    // The task is closed: its token has timed out.
    assert_eq!(
        error_type(
            &sfn,
            "SendTaskSuccess",
            &json!({"taskToken": token, "output": "{}"})
        ),
        "TaskTimedOut"
    );

    // SendTaskFailure: a task failure with that error name, caught by name.
    let arn = start(&sfn, &machine, "cb-fail", &json!({"mode": "fail"}));
    let token = waiting_token(&sfn, &arn);
    ok(
        &sfn,
        "SendTaskFailure",
        &json!({"taskToken": token, "error": "Rejected", "cause": "no"}),
    );
    let done = wait_done(&sfn, &arn);
    let output: Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        output["caught"],
        json!({"Error": "Rejected", "Cause": "no"}),
        "{done}"
    );
    assert!(types(&history(&sfn, &arn)).contains(&"TaskFailed"));

    // HeartbeatSeconds without a heartbeat, and TimeoutSeconds(Path): all catchable.
    for (mode, error) in [
        ("heartbeat", "States.HeartbeatTimeout"),
        ("timeout", "States.Timeout"),
        ("timeoutPath", "States.Timeout"),
    ] {
        let arn = start(
            &sfn,
            &machine,
            &format!("cb-{mode}"),
            &json!({"mode": mode, "secs": 150}),
        );
        let done = wait_done(&sfn, &arn);
        let output: Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
        assert_eq!(output["caught"]["Error"], error, "{done}");
        let events = history(&sfn, &arn);
        let timed_out = events
            .iter()
            .find(|e| e["type"] == "TaskTimedOut")
            .expect("TaskTimedOut");
        assert_eq!(timed_out["taskTimedOutEventDetails"]["error"], error);
    }
}

// AWS: API reference StopExecution (the execution becomes ABORTED, ExecutionAborted in its
// history) and SendTaskSuccess (TaskTimedOut once "the task associated with the token has
// already been closed").
#[test]
fn stop_execution_interrupts_callbacks_and_waits() {
    let (_aws, sfn) = sfn_stack(LocalAws::builder().step_functions(None));
    let machine = create(&sfn, "callbacks", &callback_machine());
    let arn = start(&sfn, &machine, "stop-cb", &json!({"mode": "ok"}));
    let token = waiting_token(&sfn, &arn);
    ok(
        &sfn,
        "StopExecution",
        &json!({"executionArn": arn, "error": "Operator", "cause": "stop"}),
    );
    let done = wait_done(&sfn, &arn);
    assert_eq!(done["status"], "ABORTED");
    assert_eq!(
        error_type(
            &sfn,
            "SendTaskSuccess",
            &json!({"taskToken": token, "output": "{}"})
        ),
        "TaskTimedOut"
    );
    std::thread::sleep(Duration::from_millis(300));
    let events = history(&sfn, &arn);
    assert_eq!(types(&events).last(), Some(&"ExecutionAborted"));
    assert_eq!(
        events.last().unwrap()["executionAbortedEventDetails"],
        json!({"error": "Operator", "cause": "stop"})
    );
    assert_eq!(
        types(&events)
            .iter()
            .filter(|t| **t == "TaskStateEntered")
            .count(),
        1,
        "no Task after the stop"
    );

    // A Wait state (an hour, no --fast-waits) is interrupted too.
    let waits = create(
        &sfn,
        "waits",
        &json!({"StartAt": "Hour", "States": {
            "Hour": {"Type": "Wait", "Seconds": 3600, "Next": "Echo"},
            "Echo": {"Type": "Task", "Resource": lambda_arn(ECHO), "End": true}}}),
    );
    let arn = start(&sfn, &waits, "stop-wait", &json!({}));
    std::thread::sleep(Duration::from_millis(200));
    let stopped_at = Instant::now();
    ok(&sfn, "StopExecution", &json!({"executionArn": arn}));
    assert_eq!(wait_done(&sfn, &arn)["status"], "ABORTED");
    assert!(stopped_at.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let t = types(&history(&sfn, &arn)).join(",");
    assert_eq!(t, "ExecutionStarted,WaitStateEntered,ExecutionAborted");
}

// AWS: developer guide "Automating Step Functions event delivery with EventBridge" and the
// EventBridge reference "AWS Step Functions events" (detail-type "Step Functions Execution Status
// Change", source aws.states, detail {executionArn, stateMachineArn, name, status, startDate,
// stopDate, input, output, inputDetails, outputDetails, error, cause}); EventBridge user guide
// "Content filtering in Amazon EventBridge event patterns" (prefix, anything-but, exists).
#[test]
fn status_change_events_reach_matching_rules() {
    let record = tempfile::NamedTempFile::new().unwrap();
    let record_path = record.path().to_owned();
    let pattern = json!({
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"],
            "stateMachineArn": [{"prefix": "arn:aws:states:us-east-1:123456789012:stateMachine:events"}],
            "name": [{"anything-but": {"prefix": "ignored-"}}],
            "executionArn": [{"exists": true}]
        }
    });
    let (_aws, sfn) = sfn_stack(
        LocalAws::builder()
            .step_functions(Some(5))
            .sfn_arg("--fast-timeouts=0.01")
            .function_env("OKRA_ECHO_RECORD", record_path.display().to_string())
            .event_rule(pattern, ECHO)
            // The start of one execution only.
            .event_rule(
                json!({"detail": {"status": ["RUNNING"], "name": ["ev-ok"]}}),
                ECHO,
            ),
    );
    let definition = |timeout: Option<u64>| {
        let mut d = json!({
            "StartAt": "Route",
            "States": {
                "Route": {"Type": "Choice", "Choices": [
                    {"Variable": "$.mode", "StringEquals": "fail", "Next": "Fail"},
                    {"Variable": "$.mode", "StringEquals": "wait", "Next": "Callback"}],
                    "Default": "Done"},
                "Callback": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                             "Parameters": {"FunctionName": lambda_arn(ECHO), "Payload": {"token.$": "$$.Task.Token"}},
                             "End": true},
                "Fail": {"Type": "Fail", "Error": "Nope", "Cause": "asked to"},
                "Done": {"Type": "Pass", "Result": {"ok": true}, "End": true}
            }
        });
        if let Some(t) = timeout {
            d["TimeoutSeconds"] = json!(t);
        }
        d
    };
    let machine = create(&sfn, "events", &definition(None));
    let timing_out = create(&sfn, "events-timeout", &definition(Some(1)));
    let ok_arn = start(&sfn, &machine, "ev-ok", &json!({"mode": "ok"}));
    let fail_arn = start(&sfn, &machine, "ev-fail", &json!({"mode": "fail"}));
    let timeout_arn = start(&sfn, &timing_out, "ev-timeout", &json!({"mode": "wait"}));
    let abort_arn = start(&sfn, &machine, "ev-abort", &json!({"mode": "wait"}));
    let ignored_arn = start(&sfn, &machine, "ignored-1", &json!({"mode": "ok"}));
    waiting_token(&sfn, &abort_arn);
    ok(
        &sfn,
        "StopExecution",
        &json!({"executionArn": abort_arn, "error": "E", "cause": "C"}),
    );
    for arn in [&ok_arn, &fail_arn, &timeout_arn, &ignored_arn] {
        wait_done(&sfn, arn);
    }

    let read = |path: &Path| -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("detail-type").is_some())
            .collect()
    };
    // 4 ends (rule 1) and the start of ev-ok (rule 2).
    wait_until("5 deliveries", || {
        let events = read(&record_path);
        (events.len() >= 5).then_some(Value::Null)
    });
    std::thread::sleep(Duration::from_millis(500));
    let delivered = Value::Array(read(&record_path));
    let events = delivered.as_array().expect("an array");
    assert_eq!(events.len(), 5, "{delivered:#}");
    let running = by_status_in(events, "RUNNING");
    assert_eq!(running["detail"]["name"], "ev-ok");
    assert_eq!(
        (
            &running["detail"]["stopDate"],
            &running["detail"]["output"],
            &running["detail"]["outputDetails"]
        ),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    let by_status = |status: &str| by_status_in(events, status);
    let ok_event = by_status("SUCCEEDED");
    assert_eq!(ok_event["version"], "0");
    assert_eq!(ok_event["source"], "aws.states");
    assert_eq!(
        ok_event["detail-type"],
        "Step Functions Execution Status Change"
    );
    assert_eq!(ok_event["account"], "123456789012");
    assert_eq!(ok_event["region"], "us-east-1");
    assert_eq!(ok_event["resources"], json!([ok_arn]));
    assert!(ok_event["id"].as_str().unwrap().len() == 36);
    assert!(ok_event["time"].as_str().unwrap().ends_with('Z'));
    let d = &ok_event["detail"];
    assert_eq!(d["executionArn"], json!(ok_arn));
    assert_eq!(d["name"], "ev-ok");
    assert_eq!(d["input"], "{\"mode\":\"ok\"}");
    assert_eq!(d["output"], "{\"ok\":true}");
    assert_eq!(d["inputDetails"], json!({"included": true}));
    assert_eq!(d["outputDetails"], json!({"included": true}));
    assert_eq!(
        (d["error"].clone(), d["cause"].clone()),
        (Value::Null, Value::Null)
    );
    assert!(d["startDate"].as_u64().unwrap() <= d["stopDate"].as_u64().unwrap());

    let failed = by_status("FAILED");
    assert_eq!(failed["detail"]["error"], "Nope");
    assert_eq!(failed["detail"]["cause"], "asked to");
    assert_eq!(failed["detail"]["output"], Value::Null);
    assert_eq!(failed["detail"]["outputDetails"], Value::Null);
    assert_eq!(by_status("ABORTED")["detail"]["error"], "E");
    assert_eq!(
        by_status("TIMED_OUT")["detail"]["executionArn"],
        json!(timeout_arn)
    );
    assert!(
        !events
            .iter()
            .any(|e| e["detail"]["name"].as_str() == Some("ignored-1"))
    );
}

// The real AWS CLI (PyPI awscli, installed by `make setup` into .tools/venv) against the local
// service: AWS CLI Command Reference, `aws stepfunctions start-execution`, `describe-execution`,
// `get-execution-history`, `send-task-success`, `stop-execution` with `--endpoint-url`.
#[test]
fn the_aws_cli_drives_the_local_service() {
    let (aws, sfn) = sfn_stack(LocalAws::builder().step_functions(Some(5)));
    let cli = aws.aws_cli().expect("the AWS CLI (make setup)").to_owned();
    let machine = create(&sfn, "callbacks", &callback_machine());
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| -> Value {
        let mut cmd = Command::new(&cli);
        cmd.args(["stepfunctions", "--endpoint-url", &sfn, "--output", "json"])
            .args(args)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", "/usr/bin:/bin")
            .envs(aws.env());
        let out = cmd.output().expect("aws runs");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON from the CLI")
        }
    };
    let started = run(&[
        "start-execution",
        "--state-machine-arn",
        &machine,
        "--name",
        "cli-1",
        "--input",
        "{\"mode\":\"ok\"}",
    ]);
    let arn = started["executionArn"].as_str().unwrap().to_owned();
    let token = waiting_token(&sfn, &arn);
    let described = run(&["describe-execution", "--execution-arn", &arn]);
    assert_eq!(described["status"], "RUNNING");
    let history = run(&["get-execution-history", "--execution-arn", &arn]);
    assert!(
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "TaskSubmitted")
    );
    run(&[
        "send-task-success",
        "--task-token",
        &token,
        "--task-output",
        "{\"cli\":true}",
    ]);
    let done = wait_done(&sfn, &arn);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let described = run(&["describe-execution", "--execution-arn", &arn]);
    assert_eq!(described["status"], "SUCCEEDED");

    let second = run(&[
        "start-execution",
        "--state-machine-arn",
        &machine,
        "--name",
        "cli-2",
        "--input",
        "{\"mode\":\"ok\"}",
    ]);
    let arn = second["executionArn"].as_str().unwrap().to_owned();
    run(&[
        "stop-execution",
        "--execution-arn",
        &arn,
        "--error",
        "Cli",
        "--cause",
        "stopped",
    ]);
    let described = run(&["describe-execution", "--execution-arn", &arn]);
    assert_eq!(described["status"], "ABORTED");
}

// AWS: developer guide "Wait for a Callback with Task Token": whoever holds the token answers
// with SendTaskSuccess at the Step Functions endpoint. For `LocalAws::run_state_machine` that
// endpoint is the stack's sfn-local ($AWS_ENDPOINT_URL_SFN), which passes the call on to the
// runner process that owns the token.
#[test]
fn the_runner_s_callbacks_are_answered_through_the_service() {
    let record = tempfile::NamedTempFile::new().expect("temp file");
    let record_path = record.path().to_owned();
    let (aws, sfn) = sfn_stack(
        LocalAws::builder()
            .step_functions(Some(5))
            .function_env("OKRA_ECHO_RECORD", record_path.display().to_string()),
    );
    let marker = LocalAws::unique("runner-cb");
    let definition = json!({
        "StartAt": "Callback",
        "States": {
            "Callback": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                         "Parameters": {"FunctionName": lambda_arn(ECHO),
                                        "Payload": {"token.$": "$$.Task.Token", "marker": marker}},
                         "TimeoutSeconds": 60, "End": true}
        }
    });
    std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            aws.run_state_machine(&RunRequest::from_definition(definition))
                .expect("runner")
        });
        let token = wait_until("the callback's payload", || {
            let text = std::fs::read_to_string(&record_path).unwrap_or_default();
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["marker"] == json!(marker))
                .map(|v| v["token"].clone())
        });
        let token = token.as_str().expect("a token").to_owned();
        ok(&sfn, "SendTaskHeartbeat", &json!({"taskToken": token}));
        ok(
            &sfn,
            "SendTaskSuccess",
            &json!({"taskToken": token, "output": "{\"answered\":\"by the service\"}"}),
        );
        let exec = run.join().expect("runner thread");
        assert_eq!(exec.status, "SUCCEEDED", "{exec:?}");
        assert_eq!(exec.output, json!({"answered": "by the service"}));
        // AWS's order, even when the answer came before the invocation returned (the function
        // writes the token, then finishes): TaskSubmitted, then TaskSucceeded.
        let types = exec.history_types();
        let at = |t: &str| types.iter().position(|x| *x == t);
        assert!(
            matches!((at("TaskSubmitted"), at("TaskSucceeded")), (Some(s), Some(d)) if s < d),
            "{types:?}"
        );
        // The runner has exited: its task is closed.
        assert_eq!(
            error_type(
                &sfn,
                "SendTaskSuccess",
                &json!({"taskToken": token, "output": "{}"})
            ),
            "TaskTimedOut"
        );
    });
}
