//! okra-testkit's own proof: moto + cargo lambda watch + the sfn-runner, with a REAL
//! lambda_runtime binary (`okra-testkit-echo`, crates/okra-testkit/fixtures/echo-fn).
//! Run with `--nocapture` to see the measured times.

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use okra_testkit::{ExecutionStatus, Invocation, LocalAws, RunRequest, xml_values};
use serde_json::json;

const ECHO: &str = "okra-testkit-echo";
const FIXTURE: &str = "crates/okra-testkit/tests/fixtures/echo-retry-catch.asl.json";

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[test]
fn function_reaches_moto_and_reports_function_errors() {
    let aws = LocalAws::shared().unwrap();
    let (vpc, subnets) = aws.create_vpc_with_subnets().unwrap();
    assert!(vpc.starts_with("vpc-"), "{vpc}");
    assert_eq!(subnets.len(), 2);

    let out = aws
        .invoke(ECHO, &json!({"describeVpc": vpc}))
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(out["vpcFound"], true, "{out}");
    assert_eq!(out["env"]["AWS_ENDPOINT_URL"], aws.endpoint());
    assert_eq!(out["env"]["AWS_REGION"], "us-east-1");
    assert_eq!(out["env"]["AWS_ACCESS_KEY_ID"], "testing");

    let missing = aws
        .invoke(ECHO, &json!({"describeVpc": "vpc-0000000000000000"}))
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(missing["vpcFound"], false);

    let failed = aws.invoke(ECHO, &json!({"fail": "SomeError"})).unwrap();
    assert_eq!(
        failed,
        Invocation::FunctionError {
            error_type: "SomeError".into(),
            error_message: "asked to fail with SomeError".into(),
        }
    );

    // A panic is a function error too (lambda_runtime catches it), and the function lives on.
    let panicked = aws.invoke(ECHO, &json!({"panic": true})).unwrap();
    assert!(
        panicked
            .error_message()
            .is_some_and(|m| m.contains("asked to panic")),
        "{panicked:?}"
    );
    assert!(aws.invoke(ECHO, &json!({})).unwrap().is_ok());

    // Unknown functions are errors of the call, not function errors.
    assert!(aws.invoke("no-such-function-here", &json!({})).is_err());
}

#[test]
fn state_machine_with_retry_catch_and_map() {
    let aws = LocalAws::shared().unwrap();
    let (vpc, _) = aws.create_vpc_with_subnets().unwrap();
    let items = json!([1, "two", {"three": 3}]);
    let exec = aws
        .run_state_machine(
            &RunRequest::from_path(FIXTURE)
                .lambda("EchoFunctionArn", ECHO)
                .input(json!({
                    "vpcId": vpc,
                    "flakyKey": LocalAws::unique("flaky"),
                    "items": items,
                }))
                .retry_override("Flaky", 0),
        )
        .unwrap();
    let out = exec.ensure_succeeded().unwrap();

    assert_eq!(
        exec.states_exited()
            .into_iter()
            .filter(|s| s != "EchoItem")
            .collect::<Vec<_>>(),
        ["Echo", "Flaky", "EachItem", "Boom", "Handled"]
    );
    // The real function saw moto through its environment.
    assert_eq!(
        out["echo"],
        json!({"vpcFound": true, "endpoint": aws.endpoint()})
    );
    // Retry: two failures with the function's errorType, then success.
    assert_eq!(exec.retries("Flaky"), 2);
    let failures = exec.failures("Flaky");
    assert_eq!(failures.len(), 2);
    assert!(
        failures.iter().all(|(e, _)| e == "Flaky.Error"),
        "{failures:?}"
    );
    // Map with the lambda:invoke integration nested inside.
    assert_eq!(out["items"], items);
    assert_eq!(
        exec.events_of_type("MapIterationSucceeded").count(),
        3,
        "{:?}",
        exec.events
    );
    // Catch on the errorType, with AWS's Cause: the function's error payload as a JSON string.
    assert!(exec.caught("Boom"));
    assert_eq!(
        out["caught"],
        json!({
            "Error": "SomeError",
            "Cause": r#"{"errorType":"SomeError","errorMessage":"asked to fail with SomeError"}"#
        })
    );
}

#[test]
fn uncaught_function_error_fails_the_execution() {
    let aws = LocalAws::shared().unwrap();
    let definition = json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "${Echo}",
                "Parameters": {"fail": "Boom.Error"},
                "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 5}],
                "End": true
            }
        }
    });
    let exec = aws
        .run_state_machine(
            &RunRequest::from_definition(definition)
                .lambda("Echo", ECHO)
                .input(json!({})),
        )
        .unwrap();
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Boom.Error"));
    assert_eq!(
        exec.cause_json(),
        Some(json!({"errorType": "Boom.Error", "errorMessage": "asked to fail with Boom.Error"}))
    );
    assert_eq!(exec.retries("Call"), 0);
}

#[test]
fn fail_state_and_task_timeout() {
    let aws = LocalAws::shared().unwrap();
    let definition = json!({
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task",
                "Resource": "${Echo}",
                "Parameters": {"sleepMs": 3000},
                "TimeoutSeconds": 1,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "Give up"}],
                "End": true
            },
            "Give up": {"Type": "Fail", "Error": "Okra.GaveUp", "Cause": "too slow"}
        }
    });
    let exec = aws
        .run_state_machine(&RunRequest::from_definition(definition).lambda("Echo", ECHO))
        .unwrap();
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("Okra.GaveUp"));
    assert_eq!(exec.cause.as_deref(), Some("too slow"));
    assert_eq!(exec.states_entered(), ["Slow", "Give up"]);
}

#[test]
fn runner_rejects_bad_requests() {
    let aws = LocalAws::shared().unwrap();
    let unknown = aws
        .run_state_machine(&RunRequest::from_path(FIXTURE).input(json!({})))
        .unwrap_err();
    assert!(
        format!("{unknown:#}").contains("${EchoFunctionArn}"),
        "{unknown:#}"
    );

    let token = json!({
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "End": true}}
    });
    let unsupported = aws
        .run_state_machine(&RunRequest::from_definition(token))
        .unwrap_err();
    assert!(
        format!("{unsupported:#}").contains("waitForTaskToken"),
        "{unsupported:#}"
    );

    let invalid = json!({"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "End": true}}});
    assert!(
        aws.run_state_machine(&RunRequest::from_definition(invalid))
            .is_err()
    );
}

#[test]
fn ec2_query_speaks_to_moto() {
    let aws = LocalAws::shared().unwrap();
    let name = LocalAws::unique("okra-vpc");
    let xml = aws
        .ec2_query(
            "CreateVpc",
            &[
                ("CidrBlock", "10.9.0.0/16"),
                ("TagSpecification.1.ResourceType", "vpc"),
                ("TagSpecification.1.Tag.1.Key", "Name"),
                ("TagSpecification.1.Tag.1.Value", &name),
            ],
        )
        .unwrap();
    let vpc = xml_values(&xml, "vpcId").remove(0);
    let described = aws
        .ec2_query(
            "DescribeVpcs",
            &[("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", &name)],
        )
        .unwrap();
    assert_eq!(xml_values(&described, "vpcId"), [vpc]);
    assert!(aws.ec2_query("NoSuchAction", &[]).is_err());
}

/// An owned stack: measured start, first and warm invocations and a 3-state run, then a drop
/// that must leave no process behind.
#[test]
fn owned_stack_timings_and_cleanup() {
    let t = Instant::now();
    let aws = LocalAws::start().unwrap();
    let start = t.elapsed();

    let t = Instant::now();
    aws.ensure_built(&[ECHO]).unwrap();
    let build_check = t.elapsed();

    let t = Instant::now();
    assert!(aws.invoke(ECHO, &json!({"n": 1})).unwrap().is_ok());
    let first = t.elapsed();

    let t = Instant::now();
    let rounds = 20;
    for n in 0..rounds {
        assert!(aws.invoke(ECHO, &json!({"n": n})).unwrap().is_ok());
    }
    let warm = t.elapsed() / rounds;

    let three = json!({
        "StartAt": "One",
        "States": {
            "One": {"Type": "Task", "Resource": "${Echo}", "ResultPath": "$.one", "Next": "Two"},
            "Two": {"Type": "Task", "Resource": "${Echo}", "ResultPath": "$.two", "Next": "Three"},
            "Three": {"Type": "Task", "Resource": "${Echo}", "ResultPath": "$.three", "End": true}
        }
    });
    let req = RunRequest::from_definition(three)
        .lambda("Echo", ECHO)
        .input(json!({"x": 1}));
    let t = Instant::now();
    let exec = aws.run_state_machine(&req).unwrap();
    let run = t.elapsed();
    exec.ensure_succeeded().unwrap();
    assert_eq!(exec.states_entered(), ["One", "Two", "Three"]);

    eprintln!(
        "okra-testkit timings: stack start {}, cargo build check {}, first invoke {}, warm \
         invoke {} (mean of {rounds}), 3-Task-state ASL run {} (of which {} ms inside the runner)",
        ms(start),
        ms(build_check),
        ms(first),
        ms(warm),
        ms(run),
        exec.duration_ms
    );

    let moto_port = port_of(aws.endpoint());
    let lambda_port = port_of(aws.lambda_endpoint());
    let log = std::fs::read_to_string(aws.logs_dir().join("lambda.log")).unwrap_or_default();
    drop(aws);
    assert!(TcpStream::connect(("127.0.0.1", moto_port)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", lambda_port)).is_err());
    // The function process (the prebuilt binary, started by the local Lambda service) is gone too.
    assert!(
        log.contains("okra-local-lambda: starting environment"),
        "{log}"
    );
    assert!(!echo_running_with_port(lambda_port));
}

/// A test binary that exits without dropping its shared stack (as every test binary does) leaves
/// nothing behind: the watchdog sees its pipe close and kills the process groups.
#[test]
fn shared_stack_dies_with_its_process() {
    if std::env::var_os("OKRA_TESTKIT_EXIT_CHILD").is_some() {
        let aws = LocalAws::shared().unwrap();
        assert!(aws.invoke(ECHO, &json!({})).unwrap().is_ok());
        println!("ENDPOINTS {} {}", aws.endpoint(), aws.lambda_endpoint());
        std::process::exit(0); // no destructor runs
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "shared_stack_dies_with_its_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OKRA_TESTKIT_EXIT_CHILD", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let line = stdout
        .lines()
        .map_while(Result::ok)
        .inspect(|l| seen.push(l.clone()))
        .find(|l| l.contains("ENDPOINTS "))
        .unwrap_or_else(|| panic!("the child printed no endpoints: {seen:?}"));
    assert!(child.wait().unwrap().success());
    let (_, endpoints) = line.split_once("ENDPOINTS ").unwrap_or_default();
    let ports: Vec<u16> = endpoints.split_whitespace().map(port_of).collect();
    assert_eq!(ports.len(), 2, "{line}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while ports
        .iter()
        .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
    {
        assert!(
            Instant::now() < deadline,
            "local AWS of a dead test process still answers on {ports:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The function instance (its own session) has gone with its runtime API.
    let deadline = Instant::now() + Duration::from_secs(10);
    while echo_running_with_port(ports[1]) {
        assert!(
            Instant::now() < deadline,
            "echo function outlived its stack"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port at the end of the URL")
}

/// Whether an okra-testkit-echo process talks to the runtime API on `port`.
fn echo_running_with_port(port: u16) -> bool {
    let needle = format!("AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:{port}/");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .any(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(ECHO)
                && String::from_utf8_lossy(&env).contains(&needle)
        })
}

#[test]
fn parallel_and_nested_map_tasks_run_real_functions() {
    let aws = LocalAws::shared().unwrap();
    let definition = json!({
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "P1", "States": {"P1": {
                "Type": "Task", "Resource": "${Echo}", "Parameters": {"b": 1},
                "OutputPath": "$.echo", "End": true}}},
            {"StartAt": "M", "States": {"M": {
                "Type": "Map", "ItemsPath": "$.xs", "End": true,
                "ItemProcessor": {"StartAt": "P2", "States": {
                    "P2": {"Type": "Task", "Resource": "${Echo}", "Parameters": {"fail.$": "$"},
                           "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}],
                           "End": true},
                    "Caught": {"Type": "Pass", "End": true}}}}}}
        ]}}
    });
    // No `functions` entry: the binary is the function name in the substituted ARN.
    let exec = aws
        .run_state_machine(
            &RunRequest::from_definition(definition)
                .substitution("Echo", okra_testkit::lambda_arn(ECHO))
                .input(json!({"xs": ["E1", "E2"]})),
        )
        .unwrap();
    let out = exec.ensure_succeeded().unwrap();
    assert_eq!(out[0], json!({"b": 1}));
    assert_eq!(out[1][1]["Error"], "E2");
    assert_eq!(
        out[1][1]["Cause"],
        r#"{"errorType":"E2","errorMessage":"asked to fail with E2"}"#
    );
    assert_eq!(
        exec.states_entered()
            .iter()
            .filter(|s| *s == "Caught")
            .count(),
        2
    );
}

/// Each function's time-out as Lambda enforces it ("Configure Lambda function timeout"; the
/// execution environment lifecycle page, "Failures during the invoke phase"): an invocation past
/// it fails `Sandbox.Timedout` with Lambda's message, its environment is reset (the process is
/// killed), and the next invocation runs in a fresh one; a process that exits mid-invocation
/// fails it with `Runtime.ExitError`, and the next one gets a new process too.
#[test]
fn a_function_past_its_time_out_is_stopped_and_its_environment_reset() {
    let aws = LocalAws::builder()
        .function_timeout(ECHO, Duration::from_secs(1))
        .start()
        .unwrap();
    assert_eq!(aws.lambda_timeout(ECHO), Some(Duration::from_secs(1)));
    assert!(aws.invoke(ECHO, &json!({"n": 0})).unwrap().is_ok());
    let t = Instant::now();
    let out = aws.invoke(ECHO, &json!({"sleepMs": 5000})).unwrap();
    let took = t.elapsed();
    assert_eq!(out.error_type(), Some("Sandbox.Timedout"), "{out:?}");
    assert!(
        out.error_message()
            .unwrap()
            .ends_with("Error: Task timed out after 1.00 seconds"),
        "{out:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "stopped at the time-out, not at the sleep's end: {took:?}"
    );
    let t = Instant::now();
    assert!(aws.invoke(ECHO, &json!({"n": 1})).unwrap().is_ok());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the next invocation does not wait for the old one"
    );
    let stats = aws.lambda_stats().unwrap();
    assert_eq!(stats.timeouts.get(ECHO), Some(&1));
    assert_eq!(
        stats.environments_started.get(ECHO),
        Some(&2),
        "the timed-out environment was replaced"
    );

    let out = aws.invoke(ECHO, &json!({"exit": 3})).unwrap();
    assert_eq!(out.error_type(), Some("Runtime.ExitError"), "{out:?}");
    assert!(aws.invoke(ECHO, &json!({"n": 2})).unwrap().is_ok());
    assert_eq!(
        aws.lambda_stats().unwrap().environments_started.get(ECHO),
        Some(&3)
    );
    let log = std::fs::read_to_string(aws.logs_dir().join("lambda.log")).unwrap_or_default();
    assert!(log.contains("timed out after 1.00 s: environment"), "{log}");
}
