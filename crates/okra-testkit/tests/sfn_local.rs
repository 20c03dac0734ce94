//! `LocalAwsBuilder::step_functions`: the local Step Functions service (tools/sfn-local), spoken
//! to over the Step Functions JSON protocol, its executions running the real echo binary.

use std::time::{Duration, Instant};

use okra_testkit::{LocalAws, lambda_arn};
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
    let text = res.body_mut().read_to_string().expect("a body");
    (status, serde_json::from_str(&text).expect("JSON"))
}

fn wait_done(endpoint: &str, arn: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, d) = call(endpoint, "DescribeExecution", &json!({"executionArn": arn}));
        if d["status"] != "RUNNING" || Instant::now() > deadline {
            return d;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn step_functions_service_runs_executions_with_fast_waits_and_aws_semantics() {
    let aws = LocalAws::builder()
        .step_functions(Some(5))
        .start()
        .expect("stack");
    aws.ensure_built(&[ECHO]).expect("echo built");
    let sfn = aws.sfn_endpoint().expect("an sfn endpoint").to_owned();
    assert!(
        aws.env()
            .iter()
            .any(|(k, v)| k == "AWS_ENDPOINT_URL_SFN" && *v == sfn)
    );

    // An hour-long Wait: --fast-waits makes it 5 ms. The name comes from the context object.
    let definition = json!({
        "StartAt": "Hour",
        "States": {
            "Hour": {"Type": "Wait", "Seconds": 3600, "Next": "Echo"},
            "Echo": {"Type": "Task", "Resource": lambda_arn(ECHO),
                     "Parameters": {"name.$": "$$.Execution.Name", "x.$": "$.x", "sleepMs.$": "$.sleepMs"}, "End": true}
        }
    });
    let (status, created) = call(
        &sfn,
        "CreateStateMachine",
        &json!({"name": "t", "definition": definition.to_string(), "roleArn": "arn:aws:iam::123456789012:role/r"}),
    );
    assert_eq!(status, 200, "{created}");
    let machine = created["stateMachineArn"].as_str().unwrap().to_owned();

    let start =
        json!({"stateMachineArn": machine, "name": "run-1", "input": "{\"x\":1,\"sleepMs\":0}"});
    let (_, first) = call(&sfn, "StartExecution", &start);
    let arn = first["executionArn"].as_str().unwrap().to_owned();
    assert!(arn.ends_with(":execution:t:run-1"), "{arn}");
    // Same name and input while running: the same execution.
    let (status, again) = call(&sfn, "StartExecution", &start);
    assert_eq!(
        (status, &again["executionArn"]),
        (200, &first["executionArn"])
    );
    // Another input under the same name: ExecutionAlreadyExists.
    let (status, err) = call(
        &sfn,
        "StartExecution",
        &json!({"stateMachineArn": machine, "name": "run-1", "input": "{\"x\":2,\"sleepMs\":0}"}),
    );
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("ExecutionAlreadyExists"))
    );

    let done = wait_done(&sfn, &arn);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let output: Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        output["echo"],
        json!({"name": "run-1", "x": 1, "sleepMs": 0})
    );
    // Finished: the name is taken, whatever the input.
    let (status, err) = call(&sfn, "StartExecution", &start);
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("ExecutionAlreadyExists"))
    );

    let (_, history) = call(&sfn, "GetExecutionHistory", &json!({"executionArn": arn}));
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types.first(), Some(&"ExecutionStarted"), "{types:?}");
    assert!(types.contains(&"WaitStateEntered"), "{types:?}");
    assert!(types.contains(&"TaskStateExited"), "{types:?}");
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"), "{types:?}");

    let (_, list) = call(&sfn, "ListExecutions", &json!({"stateMachineArn": machine}));
    assert_eq!(list["executions"][0]["name"], "run-1");

    // A slow task, stopped.
    let (_, slow) = call(
        &sfn,
        "StartExecution",
        &json!({"stateMachineArn": machine, "name": "run-2", "input": "{\"x\":2,\"sleepMs\":20000}"}),
    );
    let slow = slow["executionArn"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &sfn,
        "StopExecution",
        &json!({"executionArn": slow, "error": "Stopped", "cause": "test"}),
    );
    assert_eq!(status, 200);
    assert_eq!(wait_done(&sfn, &slow)["status"], "ABORTED");

    let (status, err) = call(
        &sfn,
        "DescribeExecution",
        &json!({"executionArn": format!("{machine}:nope")}),
    );
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("ExecutionDoesNotExist"))
    );
}
