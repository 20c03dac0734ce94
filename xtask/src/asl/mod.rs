//! okra's rollout state machine, written as Amazon States Language.
//!
//! The ASL is generated because its loops (readiness, steps, pauses, analysis samples) repeat
//! the same Task shapes with small differences; the JSON is what ships and what the tests run.
//! Every name it shares with the functions — decision and step kinds, signals, analysis phases,
//! outcomes, rollout-state actions, the retryable errors and the Fail errors — comes from
//! [`okra_core::vocab`], so a Choice value or a Retry list cannot drift from the Rust.
//!
//! Design (docs/architecture.md tours the flow of one step):
//! - Standard workflow, JSONPath only (the local interpreter has no JSONata), Task states with
//!   the function ARN as Resource (the output is the payload; no lambda:invoke wrapping).
//! - Every path ends through a `Finish*` task that records the outcome and releases the lock.
//! - A person's signals (resume, promote, promoteFull, abort) are left in DynamoDB by the API.
//!   After each step the state machine takes any that is there. A pause until resumed (and an
//!   inconclusive analysis) waits in a `.waitForTaskToken` callback whose token rollout-state
//!   keeps; the API answers it with SendTaskSuccess. No polling: a wait of any length costs a
//!   handful of history events (the 25,000-event limit), and a background analysis wakes it at
//!   its own interval.

use okra_core::vocab::{
    DecisionKind, EnsureMode, ErrorType, ExecutionError, HistoryEvent, OnTimeout, Outcome, Phase,
    Signal, StateAction, StepKind, Trigger, WaitKind,
};
use serde_json::{Map, Value, json};
use strum::IntoEnumIterator;

mod canary;
pub mod names;
mod start;

use canary::*;
use start::*;

/// Where the ASL is checked in, from the workspace root.
pub const PATH: &str = "statemachine/rollout.asl.json";

/// AWS's own errors a Lambda task may retry (Step Functions developer guide, "Handling errors
/// in Step Functions workflows" and "Handle transient Lambda service exceptions": the Lambda
/// service exceptions, `Lambda.ClientExecutionTimeoutException`, and `Sandbox.Timedout` for a
/// function that ran past its Lambda time-out); `States.Timeout` is a task's own time-out.
const AWS_TRANSIENT: [&str; 8] = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "States.Timeout",
    "Sandbox.Timedout",
];
const STATES_TIMEOUT: &str = "States.Timeout";
const STATES_ALL: &str = "States.ALL";
const EXECUTION: &str = "$$.Execution.Name";
const WAIT_FOR_TASK_TOKEN: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

/// The template's functions (their logical IDs without `Function`).
#[derive(Debug, Clone, Copy)]
enum Fn {
    RolloutState,
    ShiftWeights,
    EnsureTargetGroups,
    DiscoverClusters,
    CheckMetrics,
    Dispatcher,
}

impl Fn {
    fn arn(self) -> String {
        format!("${{{self:?}FunctionArn}}")
    }
}

/// The errors every task retries: okra's transient ones, then AWS's.
fn transient() -> Vec<String> {
    ErrorType::iter()
        .filter(|e| e.is_transient())
        .map(|e| e.to_string())
        .chain(AWS_TRANSIENT.iter().map(|e| e.to_string()))
        .collect()
}

fn retry_of(errors: Vec<String>) -> Value {
    json!([{"ErrorEquals": errors, "IntervalSeconds": 1, "MaxAttempts": 6, "BackoffRate": 2,
            "MaxDelaySeconds": 30, "JitterStrategy": "FULL"}])
}

fn retry() -> Value {
    retry_of(transient())
}

/// A callback task's Lambda call can fail like any other; its own time-out (`States.Timeout`)
/// is the end of a wait, not a fault, so it is not retried.
fn retry_callback() -> Value {
    retry_of(
        transient()
            .into_iter()
            .filter(|e| e != STATES_TIMEOUT)
            .collect(),
    )
}

/// An object from `(key, value)` pairs, in order.
fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn catch_all(next: &str) -> Value {
    catch_all_at(next, "$.error")
}

fn catch_all_at(next: &str, path: &str) -> Value {
    json!([{"ErrorEquals": [STATES_ALL], "ResultPath": path, "Next": next}])
}

/// A Task's first fields: its comment, if any, its type and its resource.
fn task_head(comment: Option<&str>, resource: &str) -> Map<String, Value> {
    let mut t = Map::new();
    if let Some(c) = comment {
        t.insert("Comment".into(), json!(c));
    }
    t.insert("Type".into(), json!("Task"));
    t.insert("Resource".into(), json!(resource));
    t
}

/// A Lambda Task: the function's ARN as Resource, its payload as output.
fn task(
    f: Fn,
    params: Map<String, Value>,
    result_path: &str,
    next: &str,
    catch: Option<Value>,
    comment: Option<&str>,
) -> Value {
    let mut t = task_head(comment, &f.arn());
    t.insert("Parameters".into(), Value::Object(params));
    t.insert("TimeoutSeconds".into(), json!(120));
    t.insert("ResultPath".into(), json!(result_path));
    t.insert("Retry".into(), retry());
    if let Some(c) = catch {
        t.insert("Catch".into(), c);
    }
    t.insert("Next".into(), json!(next));
    Value::Object(t)
}

fn state_task(
    action: StateAction,
    extra: Map<String, Value>,
    result_path: &str,
    next: &str,
    catch: Value,
    comment: Option<&str>,
) -> Value {
    // `finish` takes the spec (its `maxAttempts` for the failure count); the others the name.
    let cell = if action == StateAction::Finish {
        "$.cell"
    } else {
        "$.cell.name"
    };
    let mut params = obj([
        ("action", json!(action)),
        ("cell.$", json!(cell)),
        ("execution.$", json!(EXECUTION)),
    ]);
    params.extend(extra);
    task(
        Fn::RolloutState,
        params,
        result_path,
        next,
        Some(catch),
        comment,
    )
}

/// A parameter that is a JSONPath (`key.$`) or a literal.
enum Arg<'a> {
    Path(&'a str),
    Lit(Value),
}

impl Arg<'_> {
    fn put(self, params: &mut Map<String, Value>, key: &str) {
        match self {
            Arg::Path(p) => params.insert(format!("{key}.$"), json!(p)),
            Arg::Lit(v) => params.insert(key.to_string(), v),
        };
    }
}

/// The listener's owned action, as discovery found it.
fn listener() -> Map<String, Value> {
    obj([
        ("listenerArn.$", json!("$.discovery.listenerArn")),
        ("ruleArn.$", json!("$.discovery.ruleArn")),
        ("stickiness.$", json!("$.discovery.stickiness")),
    ])
}

struct Shift<'a> {
    stable: Arg<'a>,
    canary: &'a str,
    weight: Arg<'a>,
    expected: &'a str,
    next: &'a str,
    catch: Value,
    result_path: &'a str,
    comment: Option<&'a str>,
    check_members: bool,
}

fn shift(s: Shift<'_>) -> Value {
    let mut params = listener();
    params.insert("expected.$".into(), json!(s.expected));
    if s.check_members {
        // Every member first: its cluster still there, ACTIVE and of its side's version
        // (whatever the gate), then against the readiness gate. A canary member that fails
        // either fails the step; a stable one leaves the action and the others share its weight.
        params.insert(
            "minHealthyPercent.$".into(),
            json!("$.discovery.readiness.minHealthyPercent"),
        );
        params.insert("versionTag.$".into(), json!("$.discovery.versionTag"));
    }
    s.stable.put(&mut params, "stable");
    Arg::Path(s.canary).put(&mut params, "canary");
    s.weight.put(&mut params, "weight");
    task(
        Fn::ShiftWeights,
        params,
        s.result_path,
        s.next,
        Some(s.catch),
        s.comment,
    )
}

/// Records the outcome and releases the lock. Recording must not hide the outcome: a failed
/// record still ends in the outcome's state.
fn finish(
    outcome: Outcome,
    next: &str,
    block: bool,
    version: Option<&str>,
    reason: Option<&str>,
) -> Value {
    let mut extra = obj([("outcome", json!(outcome)), ("block", json!(block))]);
    if let Some(v) = version {
        extra.insert("version.$".into(), json!(v));
    }
    if let Some(r) = reason {
        extra.insert("reason.$".into(), json!(r));
    }
    state_task(
        StateAction::Finish,
        extra,
        "$.finished",
        next,
        catch_all_at(next, "$.finishError"),
        None,
    )
}

/// The new target groups in (or out of) the owned forward action at weight 0: no weight
/// changes. AWS health-checks only the targets of groups a listener rule forwards to.
fn standby(groups: &str, next: &str, catch: Value, detach: bool, comment: Option<&str>) -> Value {
    let mut params = listener();
    let key = if detach { "detach.$" } else { "attach.$" };
    params.insert(key.into(), json!(groups));
    task(
        Fn::ShiftWeights,
        params,
        "$.standby",
        next,
        Some(catch),
        comment,
    )
}

/// A `.waitForTaskToken` task: rollout-state keeps the token where the API finds it.
fn wait_for_person(
    next: &str,
    catch: Value,
    timeout_path: Option<&str>,
    comment: Option<&str>,
) -> Value {
    callback_wait(WaitKind::Person, next, catch, timeout_path, None, comment)
}

/// A wait: a callback task (`rollout-state await` keeps its token with the wait's kind and step,
/// where the API answers it), ended by its answer or by its time-out (`timeout_path`).
/// `seconds_path`: a timed pause's length or a wait for a person's time-out, whose end `await`
/// keeps across the wait's callbacks.
fn callback_wait(
    kind: WaitKind,
    next: &str,
    catch: Value,
    timeout_path: Option<&str>,
    seconds_path: Option<&str>,
    comment: Option<&str>,
) -> Value {
    let mut t = task_head(comment, WAIT_FOR_TASK_TOKEN);
    let mut payload = obj([
        ("action", json!(StateAction::Await)),
        ("cell.$", json!("$.cell.name")),
        ("execution.$", json!(EXECUTION)),
        ("token.$", json!("$$.Task.Token")),
        ("wait", json!(kind)),
        ("step.$", json!("$.step.index")),
    ]);
    if let Some(p) = seconds_path {
        payload.insert("seconds.$".into(), json!(p));
    }
    t.insert(
        "Parameters".into(),
        json!({"FunctionName": Fn::RolloutState.arn(), "Payload": payload}),
    );
    if let Some(p) = timeout_path {
        t.insert("TimeoutSecondsPath".into(), json!(p));
    }
    t.insert("ResultPath".into(), json!("$.wake"));
    t.insert("Retry".into(), retry_callback());
    t.insert("Catch".into(), catch);
    t.insert("Next".into(), json!(next));
    Value::Object(t)
}

/// A wait whose background samples an EventBridge Scheduler schedule takes while it lasts
/// (`await` makes the schedule, `okra_core::schedule`): the same callback, with what each
/// sample asks check-metrics and the analysis's metrics so far. A failing sample fails the
/// callback with `BackgroundAnalysisFailed`, which its catchers roll back.
fn scheduled_wait(
    kind: WaitKind,
    next: &str,
    catch: Value,
    timeout_path: Option<&str>,
    seconds_path: Option<&str>,
    comment: Option<&str>,
) -> Value {
    let mut t = callback_wait(kind, next, catch, timeout_path, seconds_path, comment);
    t["Parameters"]["Payload"]["samples"] = json!({
        "schedule.$": "$.discovery.decision.plan.background.schedule",
        "intervalSeconds.$": "$.discovery.decision.plan.background.intervalSeconds",
        "request": {
            "cell.$": "$.cell",
            "templates.$": "$.discovery.decision.plan.background.templates",
            "args.$": "$.discovery.decision.plan.background.args",
            "canary.$": "$.canary.side",
            "stable.$": "$.discovery.decision.stable",
        },
        "previous.$": "$.background.metrics",
    });
    t
}

/// After a wait sampled by a schedule: its samples' latest verdict back into `$.background`
/// (failed or error rolls back), the schedule deleted; then `next`.
fn end_samples(next: &str) -> Value {
    state_task(
        StateAction::EndSamples,
        obj([
            ("step.$", json!("$.step.index")),
            ("current.$", json!("$.background")),
        ]),
        "$.background",
        &format!("BackgroundPhase{next}"),
        catch_all("RollBack"),
        Some("The samples the schedule took while the rollout waited, and the schedule deleted."),
    )
}

/// A timed wait's catchers: its time-out goes to `on_timeout` (the wait is over), anything
/// else rolls back.
fn timed_catch(on_timeout: &str) -> Value {
    json!([{"ErrorEquals": [STATES_TIMEOUT], "ResultPath": "$.wake", "Next": on_timeout},
           {"ErrorEquals": [STATES_ALL], "ResultPath": "$.error", "Next": "RollBack"}])
}

/// Takes the answer to a timed wait (`poll` with the callback's output).
fn take_answer(next: &str) -> Value {
    state_task(
        StateAction::Poll,
        obj([
            ("answer.$", json!("$.wake")),
            ("step.$", json!("$.step.index")),
            ("wake.$", json!("$.wakes.count")),
        ]),
        "$.signal",
        next,
        catch_all("RollBack"),
        None,
    )
}

fn fail(error: ExecutionError, cause_path: &str, comment: Option<&str>) -> Value {
    let mut f = obj([
        ("Type", json!("Fail")),
        ("Error", json!(error)),
        ("CausePath", json!(cause_path)),
    ]);
    if let Some(c) = comment {
        f.insert("Comment".into(), json!(c));
    }
    Value::Object(f)
}

/// A Pass that raises one of the state machine's own errors into `$.error`.
fn raise(error: ExecutionError, cause: (&str, &str), next: &str) -> Value {
    let params = obj([("Error", json!(error)), (cause.0, json!(cause.1))]);
    json!({"Type": "Pass", "Parameters": params, "ResultPath": "$.error", "Next": next})
}

fn signal_is(s: Signal) -> Value {
    json!({"Variable": "$.signal.signal", "StringEquals": s})
}

/// What a person's signal does after a wait: resume or promote go on, promote-full goes to
/// 100 %, abort rolls back; otherwise `default`.
fn signalled(default: &str) -> Value {
    signalled_then(&[Signal::Resume, Signal::Promote], &[], default)
}

/// [`signalled`] where `ending` are the signals that end the wait (go on to the next step),
/// with `more` choices before the default.
fn signalled_then(ending: &[Signal], more: &[Value], default: &str) -> Value {
    let ends = match ending {
        [one] => json!({"Variable": "$.signal.signal", "StringEquals": one, "Next": "RecordStep"}),
        many => json!({"Or": many.iter().map(|s| signal_is(*s)).collect::<Vec<_>>(),
                       "Next": "RecordStep"}),
    };
    let mut choices = vec![
        ends,
        json!({"Variable": "$.signal.signal", "StringEquals": Signal::PromoteFull, "Next": "PromoteFull"}),
        json!({"Variable": "$.signal.signal", "StringEquals": Signal::Abort, "Next": "Aborted"}),
    ];
    choices.extend(more.iter().cloned());
    json!({"Type": "Choice", "Choices": choices, "Default": default})
}

/// The conditions of "a background analysis samples at this step".
fn background_here() -> Value {
    json!([{"Variable": "$.discovery.decision.plan.background", "IsPresent": true},
           {"Variable": "$.step.index",
            "NumericGreaterThanEqualsPath": "$.discovery.decision.plan.background.startingStep"}])
}

/// The background analysis runs here, and a schedule takes its samples during waits.
fn scheduled_here() -> Value {
    let mut here = background_here();
    here.as_array_mut().expect("a list of conditions").push(
        json!({"Variable": "$.discovery.decision.plan.background.schedule", "IsPresent": true}),
    );
    here
}

fn readiness_loop(s: &mut Map<String, Value>, prefix: &str, side_path: &str, ready: &str) {
    s.insert(
        format!("{prefix}Ready?"),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.canary.ready", "BooleanEquals": true, "Next": ready}],
            "Default": format!("Count{prefix}Poll")}),
    );
    s.insert(
        format!("Count{prefix}Poll"),
        json!({"Type": "Pass", "Parameters": {"count.$": "States.MathAdd($.polls.count, 1)"},
               "ResultPath": "$.polls", "Next": format!("{prefix}PollsLeft?")}),
    );
    s.insert(
        format!("{prefix}PollsLeft?"),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.polls.count", "NumericGreaterThanPath": "$.discovery.readiness.maxPolls",
             "Next": "TakeNewGroupsOutAfterTimeout"}], "Default": format!("WaitFor{prefix}Readiness")}),
    );
    s.insert(
        format!("WaitFor{prefix}Readiness"),
        json!({"Type": "Wait", "SecondsPath": "$.discovery.readiness.pollSeconds",
               "Next": format!("Check{prefix}Readiness")}),
    );
    s.insert(
        format!("Check{prefix}Readiness"),
        task(
            Fn::EnsureTargetGroups,
            obj([
                ("cell.$", json!("$.cell")),
                ("side.$", json!(side_path)),
                ("mode", json!(EnsureMode::Health)),
            ]),
            "$.canary",
            &format!("{prefix}Ready?"),
            Some(catch_all("TakeNewGroupsOutAfterFailure")),
            None,
        ),
    );
}

fn ensure(side_path: &str, next: &str, comment: Option<&str>) -> Value {
    task(
        Fn::EnsureTargetGroups,
        obj([("cell.$", json!("$.cell")), ("side.$", json!(side_path))]),
        "$.canary",
        next,
        Some(catch_all("FinishTargetGroupsFailed")),
        comment,
    )
}

fn background_sample(next: &str) -> Value {
    task(
        Fn::CheckMetrics,
        obj([
            ("cell.$", json!("$.cell")),
            (
                "templates.$",
                json!("$.discovery.decision.plan.background.templates"),
            ),
            ("args.$", json!("$.discovery.decision.plan.background.args")),
            ("canary.$", json!("$.canary.side")),
            ("stable.$", json!("$.discovery.decision.stable")),
            ("previous.$", json!("$.background.metrics")),
        ]),
        "$.background",
        &format!("BackgroundPhase{next}"),
        Some(catch_all("RollBack")),
        Some("One sample of the background analysis."),
    )
}

/// The state machine.
pub fn definition() -> Value {
    let mut s = Map::new();
    begin(&mut s);
    one_write(&mut s);
    canary(&mut s);
    background_choices(&mut s);
    let mut d = json!({
        "Comment": "okra: roll a cell's traffic from its serving clusters to a newer version, step by step, with analyses; roll back and block the version on failure. Generated by `cargo xtask asl` (xtask/src/asl/).",
        "StartAt": "Init",
        "States": s,
    });
    names::rename(&mut d);
    d
}

/// The file's text: the definition, pretty-printed, with a final newline.
pub fn text() -> String {
    let mut t = serde_json::to_string_pretty(&definition()).expect("the ASL serializes");
    t.push('\n');
    t
}
