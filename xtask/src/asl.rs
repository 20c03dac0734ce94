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
    DecisionKind, EnsureMode, ErrorType, ExecutionError, HistoryEvent, Outcome, Phase, Signal,
    StateAction, StepKind, Trigger,
};
use serde_json::{Map, Value, json};
use strum::IntoEnumIterator;

/// Where the ASL is checked in, from the workspace root.
pub const PATH: &str = "statemachine/rollout.asl.json";

/// AWS's own errors a Lambda task may retry (Step Functions developer guide, "Handling errors
/// in Step Functions workflows": the Lambda service exceptions, and `Sandbox.Timedout` for a
/// function that ran past its Lambda time-out); `States.Timeout` is a task's own time-out.
const AWS_TRANSIENT: [&str; 7] = [
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

/// A Lambda Task: the function's ARN as Resource, its payload as output.
fn task(
    f: Fn,
    params: Map<String, Value>,
    result_path: &str,
    next: &str,
    catch: Option<Value>,
    comment: Option<&str>,
) -> Value {
    let mut t = Map::new();
    if let Some(c) = comment {
        t.insert("Comment".into(), json!(c));
    }
    t.insert("Type".into(), json!("Task"));
    t.insert("Resource".into(), json!(f.arn()));
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
    let mut params = obj([
        ("action", json!(action)),
        ("cell.$", json!("$.cell.name")),
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
        // Every member against the readiness gate first: a canary group gone or unhealthy
        // fails the step; a stable one leaves the action and the others share its weight.
        params.insert(
            "minHealthyPercent.$".into(),
            json!("$.discovery.readiness.minHealthyPercent"),
        );
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
    let mut t = Map::new();
    if let Some(c) = comment {
        t.insert("Comment".into(), json!(c));
    }
    t.insert("Type".into(), json!("Task"));
    t.insert("Resource".into(), json!(WAIT_FOR_TASK_TOKEN));
    t.insert(
        "Parameters".into(),
        json!({"FunctionName": Fn::RolloutState.arn(), "Payload": {
            "action": StateAction::Await, "cell.$": "$.cell.name", "execution.$": EXECUTION,
            "token.$": "$$.Task.Token"}}),
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
    json!({"Type": "Choice", "Choices": [
        {"Or": [signal_is(Signal::Resume), signal_is(Signal::Promote)], "Next": "RecordStep"},
        {"Variable": "$.signal.signal", "StringEquals": Signal::PromoteFull, "Next": "PromoteFull"},
        {"Variable": "$.signal.signal", "StringEquals": Signal::Abort, "Next": "Aborted"}],
        "Default": default})
}

/// The conditions of "a background analysis samples at this step".
fn background_here() -> Value {
    json!([{"Variable": "$.discovery.decision.plan.background", "IsPresent": true},
           {"Variable": "$.step.index",
            "NumericGreaterThanEqualsPath": "$.discovery.decision.plan.background.startingStep"}])
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

fn decide() -> Value {
    let to = |k: DecisionKind, next: &str| json!({"Variable": "$.discovery.decision.kind", "StringEquals": k, "Next": next});
    json!({"Type": "Choice", "Choices": [
        to(DecisionKind::NothingToDo, "FinishNothingToDo"),
        to(DecisionKind::Initialize, "EnsureInitialTargetGroups"),
        to(DecisionKind::ScaleOut, "EnsureScaleOutTargetGroups"),
        to(DecisionKind::Rollback, "EnsureRollbackTargetGroups"),
        to(DecisionKind::StartRollout, "RecordStarted"),
        to(DecisionKind::ResumeRollout, "RecordStarted")],
        "Default": "UnknownDecision"})
}

/// The start: counters, the lock, discovery and its decision.
fn begin(s: &mut Map<String, Value>) {
    s.insert(
        "Init".into(),
        json!({"Type": "Pass", "Comment": "Counters and accumulators the loops use.",
               "Parameters": {"count": 0}, "ResultPath": "$.polls", "Next": "InitBackground"}),
    );
    s.insert(
        "InitBackground".into(),
        json!({"Type": "Pass", "Parameters": {"metrics": []}, "ResultPath": "$.background",
               "Next": "InitWakes"}),
    );
    s.insert(
        "InitWakes".into(),
        json!({"Type": "Pass",
               "Comment": "Wakes of waits for a person in this execution (the history quota).",
               "Parameters": {"count": 0}, "ResultPath": "$.wakes", "Next": "TakeLock"}),
    );
    s.insert(
        "TakeLock".into(),
        state_task(
            StateAction::Begin,
            Map::new(),
            "$.lock",
            "Discover",
            json!([{"ErrorEquals": [ErrorType::Conflict], "ResultPath": "$.error", "Next": "CellBusy"},
                   {"ErrorEquals": [STATES_ALL], "ResultPath": "$.error", "Next": "LockFailed"}]),
            Some(
                "One rollout per cell: take the cell's lock (or fail at once if another execution \
                 holds it) and read the cell's blocked versions.",
            ),
        ),
    );
    s.insert(
        "CellBusy".into(),
        fail(
            ExecutionError::CellBusy,
            "$.error.Cause",
            Some("Another execution holds the cell's lock; this one touched nothing."),
        ),
    );
    s.insert(
        "LockFailed".into(),
        fail(ExecutionError::LockFailed, "$.error.Cause", None),
    );
    s.insert(
        "Discover".into(),
        task(
            Fn::DiscoverClusters,
            obj([
                ("cell.$", json!("$.cell")),
                ("blocklist.$", json!("$.lock.blocklist")),
                ("labels.$", json!("$.labels")),
            ]),
            "$.discovery",
            "Decide",
            Some(catch_all("FinishDiscoveryFailed")),
            Some("Read the cell's clusters, target groups and listener; decide what to do."),
        ),
    );
    s.insert("Decide".into(), decide());
    s.insert(
        "UnknownDecision".into(),
        raise(
            ExecutionError::UnknownDecision,
            (
                "Cause.$",
                "States.Format('discover-clusters decided {}, which this state machine does not know', $.discovery.decision.kind)",
            ),
            "FinishDiscoveryFailed",
        ),
    );
    s.insert(
        "FinishNothingToDo".into(),
        finish(
            Outcome::NothingToDo,
            "NothingToDo",
            false,
            None,
            Some("$.discovery.decision.reason"),
        ),
    );
    s.insert(
        "NothingToDo".into(),
        json!({"Type": "Succeed",
               "Comment": "The listener stays as it is; $.discovery.decision.reason says why."}),
    );
    s.insert(
        "FinishDiscoveryFailed".into(),
        finish(
            Outcome::Failed,
            "DiscoveryFailed",
            false,
            None,
            Some("$.error.Cause"),
        ),
    );
    s.insert(
        "DiscoveryFailed".into(),
        fail(
            ExecutionError::DiscoveryFailed,
            "$.error.Cause",
            Some("Discovery failed before any traffic moved."),
        ),
    );
}

/// One-write paths: initialize, scale out, roll back to a pinned lower version.
fn one_write(s: &mut Map<String, Value>) {
    s.insert(
        "EnsureInitialTargetGroups".into(),
        ensure("$.discovery.decision.target", "StandInitialGroupsBy", None),
    );
    s.insert(
        "EnsureScaleOutTargetGroups".into(),
        ensure("$.discovery.decision.serving", "StandInitialGroupsBy", None),
    );
    s.insert(
        "StandInitialGroupsBy".into(),
        standby(
            "$.canary.side",
            "InitialReady?",
            catch_all("TakeNewGroupsOutAfterFailure"),
            false,
            Some(
                "The version's target groups join the forward action at weight 0, so that the load balancer health-checks them.",
            ),
        ),
    );
    readiness_loop(s, "Initial", "$.canary.side", "SwitchAtOnce");
    s.insert(
        "SwitchAtOnce".into(),
        shift(Shift {
            stable: Arg::Lit(json!([])),
            canary: "$.canary.side",
            weight: Arg::Lit(json!(100)),
            expected: "$.discovery.action",
            next: "FinishSwitched",
            catch: catch_all("FinishSwitchFailed"),
            result_path: "$.last",
            comment: Some(
                "Initialize or scale out: everything to the version's target groups, evenly, in one write.",
            ),
            check_members: false,
        }),
    );
    s.insert(
        "FinishSwitched".into(),
        finish(
            Outcome::Promoted,
            "Switched",
            false,
            Some("$.canary.side.version"),
            None,
        ),
    );
    s.insert("Switched".into(), json!({"Type": "Succeed"}));
    s.insert(
        "FinishSwitchFailed".into(),
        finish(
            Outcome::Failed,
            "SwitchFailed",
            false,
            None,
            Some("$.error.Cause"),
        ),
    );
    s.insert(
        "SwitchFailed".into(),
        fail(ExecutionError::SwitchFailed, "$.error.Cause", None),
    );
    s.insert(
        "EnsureRollbackTargetGroups".into(),
        ensure(
            "$.discovery.decision.to",
            "StandRollbackGroupsBy",
            Some(
                "The version to go back to may never have served: its target groups first, healthy.",
            ),
        ),
    );
    s.insert(
        "StandRollbackGroupsBy".into(),
        standby(
            "$.canary.side",
            "RollbackReady?",
            catch_all("TakeNewGroupsOutAfterFailure"),
            false,
            None,
        ),
    );
    readiness_loop(s, "Rollback", "$.canary.side", "RollBackAtOnce");
    s.insert(
        "RollBackAtOnce".into(),
        shift(Shift {
            stable: Arg::Path("$.canary.side"),
            canary: "$.discovery.decision.from",
            weight: Arg::Lit(json!(0)),
            expected: "$.discovery.action",
            next: "FinishRolledBackAtOnce",
            catch: catch_all_at("FinishRollbackAtOnceFailed", "$.rollbackError"),
            result_path: "$.last",
            comment: Some(
                "A pinned lower version, or a blocked version still holding traffic: everything back in one write.",
            ),
            check_members: false,
        }),
    );
    s.insert(
        "FinishRolledBackAtOnce".into(),
        finish(
            Outcome::RolledBack,
            "RolledBackAtOnce",
            false,
            None,
            Some("$.discovery.decision.reason"),
        ),
    );
    s.insert("RolledBackAtOnce".into(), json!({"Type": "Succeed"}));
    s.insert(
        "FinishRollbackAtOnceFailed".into(),
        finish(
            Outcome::Failed,
            "RollbackFailed",
            false,
            None,
            Some("$.rollbackError.Cause"),
        ),
    );
    s.insert(
        "TakeNewGroupsOutAfterTimeout".into(),
        standby(
            "$.canary.side",
            "FinishReadinessTimedOut",
            catch_all_at("FinishReadinessTimedOut", "$.standbyError"),
            true,
            Some(
                "The gate timed out: the new groups leave the forward action again (they took no traffic).",
            ),
        ),
    );
    s.insert(
        "TakeNewGroupsOutAfterFailure".into(),
        standby(
            "$.canary.side",
            "FinishTargetGroupsFailed",
            catch_all_at("FinishTargetGroupsFailed", "$.standbyError"),
            true,
            None,
        ),
    );
    s.insert(
        "FinishReadinessTimedOut".into(),
        state_task(
            StateAction::Finish,
            obj([
                ("outcome", json!(Outcome::Failed)),
                ("block", json!(false)),
                (
                    "reason",
                    json!(
                        "the new target groups did not meet the readiness gate in time; no traffic moved"
                    ),
                ),
            ]),
            "$.finished",
            "ReadinessTimedOut",
            catch_all_at("ReadinessTimedOut", "$.finishError"),
            None,
        ),
    );
    s.insert(
        "ReadinessTimedOut".into(),
        json!({"Type": "Fail", "Error": ExecutionError::ReadinessTimedOut,
               "Cause": "The new target groups did not meet the readiness gate in time; no traffic moved."}),
    );
    s.insert(
        "FinishTargetGroupsFailed".into(),
        finish(
            Outcome::Failed,
            "TargetGroupsFailed",
            false,
            None,
            Some("$.error.Cause"),
        ),
    );
    s.insert(
        "TargetGroupsFailed".into(),
        fail(
            ExecutionError::TargetGroupsFailed,
            "$.error.Cause",
            Some("Making or reading the new target groups failed; no traffic moved."),
        ),
    );
}

/// The canary rollout: readiness, then the plan's steps.
fn canary(s: &mut Map<String, Value>) {
    s.insert(
        "RecordStarted".into(),
        state_task(
            StateAction::Started,
            obj([("decision.$", json!("$.discovery.decision"))]),
            "$.recorded",
            "EnsureCanaryTargetGroups",
            catch_all("FinishTargetGroupsFailed"),
            None,
        ),
    );
    s.insert(
        "EnsureCanaryTargetGroups".into(),
        ensure(
            "$.discovery.decision.canary",
            "StandCanaryGroupsBy",
            Some(
                "One target group per new cluster, registered; then wait for the readiness gate before any traffic moves.",
            ),
        ),
    );
    s.insert(
        "StandCanaryGroupsBy".into(),
        standby(
            "$.canary.side",
            "CanaryReady?",
            catch_all("TakeNewGroupsOutAfterFailure"),
            false,
            Some(
                "The new target groups join the forward action at weight 0: the load balancer health-checks only groups a rule forwards to.",
            ),
        ),
    );
    readiness_loop(s, "Canary", "$.canary.side", "BeginSteps");
    s.insert(
        "BeginSteps".into(),
        json!({"Type": "Pass",
               "Parameters": {"index.$": "States.ArrayLength($.discovery.decision.plan.steps)"},
               "ResultPath": "$.stepCount", "Next": "StartOrResume?"}),
    );
    s.insert(
        "StartOrResume?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.discovery.decision.fromStep", "IsPresent": true, "Next": "ResumeAtStep"}],
            "Default": "StartAtFirstStep"}),
    );
    s.insert(
        "StartAtFirstStep".into(),
        json!({"Type": "Pass", "Parameters": {"index": 0}, "ResultPath": "$.step",
               "Next": "RememberAction"}),
    );
    s.insert(
        "ResumeAtStep".into(),
        json!({"Type": "Pass", "Parameters": {"index.$": "$.discovery.decision.fromStep"},
               "ResultPath": "$.step", "Next": "RememberResumedAction"}),
    );
    s.insert(
        "RememberResumedAction".into(),
        json!({"Type": "Pass", "Parameters": {
            "action.$": "$.discovery.action", "weight.$": "$.discovery.decision.canaryWeight",
            "excluded": []}, "ResultPath": "$.last", "Next": "MoreSteps?"}),
    );
    s.insert(
        "RememberAction".into(),
        json!({"Type": "Pass",
               "Parameters": {"action.$": "$.discovery.action", "weight": 0, "excluded": []},
               "ResultPath": "$.last", "Next": "MoreSteps?"}),
    );
    s.insert(
        "MoreSteps?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.step.index", "NumericGreaterThanEqualsPath": "$.stepCount.index",
             "Next": "FinishPromoted"}], "Default": "LoadStep"}),
    );
    s.insert(
        "LoadStep".into(),
        json!({"Type": "Pass", "Parameters": {
            "index.$": "$.step.index",
            "item.$": "States.ArrayGetItem($.discovery.decision.plan.steps, $.step.index)"},
            "ResultPath": "$.step", "Next": "StepType?"}),
    );
    let is = |k: StepKind| json!({"Variable": "$.step.item.type", "StringEquals": k});
    s.insert(
        "StepType?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.step.item.type", "StringEquals": StepKind::SetWeight, "Next": "SetWeight"},
            {"And": [is(StepKind::Pause), {"Variable": "$.step.item.sampled", "IsPresent": true}],
             "Next": "BeginSampledPause"},
            {"And": [is(StepKind::Pause), {"Variable": "$.step.item.seconds", "IsPresent": true}],
             "Next": "Pause"},
            {"Variable": "$.step.item.type", "StringEquals": StepKind::Pause, "Next": "RecordPaused"},
            {"Variable": "$.step.item.type", "StringEquals": StepKind::Analysis,
             "Next": "AnalysisInitialDelay"}],
            "Default": "UnknownStep"}),
    );
    s.insert(
        "UnknownStep".into(),
        raise(
            ExecutionError::UnknownStep,
            (
                "Cause.$",
                "States.Format('step {} has a type this state machine does not know', $.step.index)",
            ),
            "RollBack",
        ),
    );
    set_weight_and_pauses(s);
    analysis(s);
    after_step(s);
}

fn set_weight_and_pauses(s: &mut Map<String, Value>) {
    s.insert(
        "SetWeight".into(),
        shift(Shift {
            stable: Arg::Path("$.discovery.decision.stable"),
            canary: "$.canary.side",
            weight: Arg::Path("$.step.item.weight"),
            expected: "$.last.action",
            next: "RecordStep",
            catch: catch_all("RollBack"),
            result_path: "$.last",
            comment: Some(
                "Shift to the step's weight and verify; the output's weight is what the console shows.",
            ),
            check_members: true,
        }),
    );
    // pause {duration}
    s.insert(
        "Pause".into(),
        json!({"Type": "Wait", "SecondsPath": "$.step.item.seconds", "Next": "RecordStep"}),
    );
    // pause {duration} while a background analysis runs: an interval, a sample, again; the rest.
    s.insert(
        "BeginSampledPause".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "$.step.item.sampled.slices"},
               "ResultPath": "$.pauseSlices", "Next": "MorePauseSlices?",
               "Comment": "A timed pause during which the background analysis samples at its own interval."}),
    );
    s.insert(
        "MorePauseSlices?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.pauseSlices.left", "NumericGreaterThan": 0, "Next": "PauseSlice"}],
            "Default": "PauseRest"}),
    );
    s.insert(
        "PauseSlice".into(),
        json!({"Type": "Wait",
               "SecondsPath": "$.discovery.decision.plan.background.intervalSeconds",
               "Next": "BackgroundSampleDuringPause"}),
    );
    s.insert(
        "BackgroundSampleDuringPause".into(),
        background_sample("CountPauseSlice"),
    );
    s.insert(
        "CountPauseSlice".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "States.MathAdd($.pauseSlices.left, -1)"},
               "ResultPath": "$.pauseSlices", "Next": "MorePauseSlices?"}),
    );
    s.insert(
        "PauseRest".into(),
        json!({"Type": "Wait", "SecondsPath": "$.step.item.sampled.restSeconds",
               "Next": "RecordStep"}),
    );
    // pause {} until resumed
    s.insert(
        "RecordPaused".into(),
        state_task(
            StateAction::Step,
            obj([
                ("index.$", json!("$.step.index")),
                ("weight.$", json!("$.last.weight")),
                ("event", json!(HistoryEvent::Paused)),
                ("detail", json!({"until": "resumed"})),
            ]),
            "$.recorded",
            "WaitForSignal",
            catch_all("RollBack"),
            None,
        ),
    );
    wait_for_signal(s);
}

fn wait_for_signal(s: &mut Map<String, Value>) {
    s.insert(
        "WaitForSignal".into(),
        json!({"Type": "Choice",
               "Comment": "Until a person resumes, promotes or aborts through the API or `okra rollout`; with a background analysis, it samples at its own interval meanwhile.",
               "Choices": [
            {"Variable": "$.wakes.count",
             "NumericGreaterThanEqualsPath": "$.discovery.decision.plan.maxWakes",
             "Next": "TakeSignalBeforeGoingOn"},
            {"And": background_here(), "Next": "WaitForPersonUntilNextSample"}],
            "Default": "WaitForPerson"}),
    );
    s.insert(
        "WaitForPerson".into(),
        wait_for_person(
            "TakeSignal",
            json!([{"ErrorEquals": [STATES_ALL], "ResultPath": "$.error", "Next": "RollBack"}]),
            None,
            Some(
                "A callback: the API's resume, promote, promote-full or abort answers it (SendTaskSuccess). No polling, so a wait of any length adds a handful of history events.",
            ),
        ),
    );
    s.insert(
        "WaitForPersonUntilNextSample".into(),
        wait_for_person(
            "TakeSignal",
            json!([{"ErrorEquals": [STATES_TIMEOUT], "ResultPath": "$.waited",
                    "Next": "BackgroundSampleWhilePaused"},
                   {"ErrorEquals": [STATES_ALL], "ResultPath": "$.error", "Next": "RollBack"}]),
            Some("$.discovery.decision.plan.background.intervalSeconds"),
            Some(
                "The same callback, given up after the background analysis's interval to take a sample.",
            ),
        ),
    );
    s.insert(
        "TakeSignal".into(),
        state_task(
            StateAction::Poll,
            Map::new(),
            "$.signal",
            "Signalled?",
            catch_all("RollBack"),
            None,
        ),
    );
    s.insert("Signalled?".into(), signalled("CountWake"));
    s.insert(
        "CountWake".into(),
        json!({"Type": "Pass", "Parameters": {"count.$": "States.MathAdd($.wakes.count, 1)"},
               "ResultPath": "$.wakes", "Next": "WaitForSignal"}),
    );
    // Woken by the interval: a sample, then any signal left meanwhile (its callback may have
    // been answered while no wait was open).
    s.insert(
        "BackgroundSampleWhilePaused".into(),
        background_sample("TakeSignal"),
    );
    // The history quota: a wait woken many times goes on in a new execution, unless a
    // person's signal is there to act on (signals are this execution's own).
    s.insert(
        "TakeSignalBeforeGoingOn".into(),
        state_task(
            StateAction::Poll,
            Map::new(),
            "$.signal",
            "SignalledBeforeGoingOn?",
            catch_all("RollBack"),
            None,
        ),
    );
    s.insert(
        "SignalledBeforeGoingOn?".into(),
        signalled("GoOnInNewExecution"),
    );
    s.insert(
        "GoOnInNewExecution".into(),
        state_task(
            StateAction::Finish,
            obj([
                ("outcome", json!(Outcome::Continued)),
                ("block", json!(false)),
                (
                    "reason",
                    json!(
                        "the wait for a person goes on in a new execution (the history quota of this one)"
                    ),
                ),
            ]),
            "$.finished",
            "StartNextExecution",
            catch_all("ContinuationFailed"),
            Some(
                "Step Functions ends an execution at 25,000 history events: record this one as continued and free the cell.",
            ),
        ),
    );
    s.insert(
        "StartNextExecution".into(),
        task(
            Fn::Dispatcher,
            obj([
                ("cells.$", json!("States.Array($.cell.name)")),
                ("trigger", json!(Trigger::Continue)),
                ("labels", json!({"continues.$": EXECUTION})),
            ]),
            "$.continued",
            "ContinuedInNewExecution",
            Some(catch_all("ContinuationFailed")),
            Some(
                "The dispatcher starts the next execution, which picks the rollout up where the listener shows it.",
            ),
        ),
    );
    s.insert(
        "ContinuedInNewExecution".into(),
        json!({"Type": "Succeed", "Comment": "A new execution holds the cell now."}),
    );
    s.insert(
        "ContinuationFailed".into(),
        fail(
            ExecutionError::ContinuationFailed,
            "$.error.Cause",
            Some(
                "Traffic stays at the last step's weights; the next reconcile resumes the rollout.",
            ),
        ),
    );
}

fn analysis(s: &mut Map<String, Value>) {
    s.insert(
        "AnalysisInitialDelay".into(),
        json!({"Type": "Wait", "SecondsPath": "$.step.item.initialDelaySeconds",
               "Next": "BeginAnalysis"}),
    );
    s.insert(
        "BeginAnalysis".into(),
        json!({"Type": "Pass", "Parameters": {"metrics": []}, "ResultPath": "$.analysis",
               "Next": "CheckMetrics"}),
    );
    s.insert(
        "CheckMetrics".into(),
        task(
            Fn::CheckMetrics,
            obj([
                ("cell.$", json!("$.cell")),
                ("templates.$", json!("$.step.item.templates")),
                ("args.$", json!("$.step.item.args")),
                ("canary.$", json!("$.canary.side")),
                ("stable.$", json!("$.discovery.decision.stable")),
                ("previous.$", json!("$.analysis.metrics")),
            ]),
            "$.analysis",
            "AnalysisPhase?",
            Some(catch_all("RollBack")),
            Some(
                "One sample of every metric of the step's analyses (one GetMetricData call), and the judge.",
            ),
        ),
    );
    let phase = |p: Phase, next: &str| json!({"Variable": "$.analysis.phase", "StringEquals": p, "Next": next});
    s.insert(
        "AnalysisPhase?".into(),
        json!({"Type": "Choice", "Choices": [
            phase(Phase::Successful, "RecordStep"),
            phase(Phase::Running, "AnalysisInterval"),
            phase(Phase::Inconclusive, "RecordInconclusive")],
            "Default": "AnalysisFailed"}),
    );
    s.insert(
        "AnalysisInterval".into(),
        json!({"Type": "Wait", "SecondsPath": "$.step.item.intervalSeconds",
               "Next": "CheckMetrics"}),
    );
    s.insert(
        "RecordInconclusive".into(),
        state_task(
            StateAction::Step,
            obj([
                ("index.$", json!("$.step.index")),
                ("weight.$", json!("$.last.weight")),
                ("event", json!(HistoryEvent::Paused)),
                (
                    "detail",
                    json!({"until": "resumed", "inconclusive.$": "$.analysis.reason"}),
                ),
            ]),
            "$.recorded",
            "WaitForSignal",
            catch_all("RollBack"),
            Some(
                "Neither pass nor fail: wait for a person (resume or promote goes on, abort rolls back).",
            ),
        ),
    );
    s.insert(
        "AnalysisFailed".into(),
        raise(
            ExecutionError::AnalysisFailed,
            ("Cause.$", "$.analysis.reason"),
            "RollBack",
        ),
    );
}

/// After every step: record it, sample the background analysis, read a person's signal; the
/// ends: promoted, rolled back.
fn after_step(s: &mut Map<String, Value>) {
    s.insert(
        "RecordStep".into(),
        state_task(
            StateAction::Step,
            obj([
                ("index.$", json!("$.step.index")),
                ("weight.$", json!("$.last.weight")),
                ("excluded.$", json!("$.last.excluded")),
            ]),
            "$.recorded",
            "BackgroundAfterStep?",
            catch_all("RollBack"),
            None,
        ),
    );
    s.insert(
        "BackgroundAfterStep?".into(),
        json!({"Type": "Choice", "Choices": [
            {"And": background_here(), "Next": "BackgroundSample"}],
            "Default": "PollAfterStep"}),
    );
    s.insert(
        "BackgroundSample".into(),
        background_sample("PollAfterStep"),
    );
    s.insert(
        "PollAfterStep".into(),
        state_task(
            StateAction::Poll,
            Map::new(),
            "$.signal",
            "SignalAfterStep?",
            catch_all("RollBack"),
            None,
        ),
    );
    s.insert(
        "SignalAfterStep?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.signal.signal", "StringEquals": Signal::PromoteFull, "Next": "PromoteFull"},
            {"Variable": "$.signal.signal", "StringEquals": Signal::Abort, "Next": "Aborted"}],
            "Default": "NextStep"}),
    );
    s.insert(
        "NextStep".into(),
        json!({"Type": "Pass", "Parameters": {"index.$": "States.MathAdd($.step.index, 1)"},
               "ResultPath": "$.step", "Next": "MoreSteps?"}),
    );
    s.insert(
        "PromoteFull".into(),
        shift(Shift {
            stable: Arg::Path("$.discovery.decision.stable"),
            canary: "$.canary.side",
            weight: Arg::Lit(json!(100)),
            expected: "$.last.action",
            next: "FinishPromoted",
            catch: catch_all("RollBack"),
            result_path: "$.last",
            comment: Some("A person skipped the remaining steps: the new version to 100 %."),
            check_members: true,
        }),
    );
    s.insert(
        "FinishPromoted".into(),
        finish(
            Outcome::Promoted,
            "Promoted",
            false,
            Some("$.canary.side.version"),
            None,
        ),
    );
    s.insert(
        "Promoted".into(),
        json!({"Type": "Succeed", "Comment": "The new version serves at 100 %."}),
    );
    s.insert(
        "Aborted".into(),
        raise(
            ExecutionError::Aborted,
            ("Cause", "a person aborted the rollout"),
            "RollBack",
        ),
    );
    // Rollback: everything back to the stable version, verified; the version is blocked.
    s.insert(
        "RollBack".into(),
        shift(Shift {
            stable: Arg::Path("$.discovery.decision.stable"),
            canary: "$.canary.side",
            weight: Arg::Lit(json!(0)),
            expected: "$.last.action",
            next: "FinishRolledBack",
            catch: catch_all_at("FinishRollbackFailed", "$.rollbackError"),
            result_path: "$.rollback",
            comment: Some(
                "Everything back to the stable version, verified. A listener someone edited is left as it is (DriftDetected).",
            ),
            check_members: false,
        }),
    );
    s.insert(
        "FinishRolledBack".into(),
        finish(
            Outcome::RolledBack,
            "RolledBack",
            true,
            Some("$.canary.side.version"),
            Some("$.error.Cause"),
        ),
    );
    s.insert(
        "RolledBack".into(),
        fail(
            ExecutionError::RolledBack,
            "$.error.Cause",
            Some(
                "A step failed or a person aborted; traffic is back on the stable version and the new version is blocked.",
            ),
        ),
    );
    s.insert(
        "FinishRollbackFailed".into(),
        finish(
            Outcome::Failed,
            "RollbackFailed",
            true,
            Some("$.discovery.decision.canary.version"),
            Some("$.rollbackError.Cause"),
        ),
    );
    s.insert(
        "RollbackFailed".into(),
        fail(
            ExecutionError::RollbackFailed,
            "$.rollbackError.Cause",
            Some(
                "Rolling back failed, or found the listener edited by someone else and left it as it is.",
            ),
        ),
    );
}

/// A background sample's phase: failed or error rolls back, anything else goes on.
fn background_choices(s: &mut Map<String, Value>) {
    for next in ["TakeSignal", "PollAfterStep", "CountPauseSlice"] {
        s.insert(
            format!("BackgroundPhase{next}"),
            json!({"Type": "Choice", "Choices": [
                {"Or": [{"Variable": "$.background.phase", "StringEquals": Phase::Failed},
                        {"Variable": "$.background.phase", "StringEquals": Phase::Error}],
                 "Next": "BackgroundFailed"}],
                "Default": next}),
        );
    }
    s.insert(
        "BackgroundFailed".into(),
        raise(
            ExecutionError::BackgroundAnalysisFailed,
            ("Cause.$", "$.background.reason"),
            "RollBack",
        ),
    );
}

/// The state machine.
pub fn definition() -> Value {
    let mut s = Map::new();
    begin(&mut s);
    one_write(&mut s);
    canary(&mut s);
    background_choices(&mut s);
    json!({
        "Comment": "okra: roll a cell's traffic from its serving clusters to a newer version, step by step, with analyses; roll back and block the version on failure. Generated by `cargo xtask asl` (xtask/src/asl.rs).",
        "StartAt": "Init",
        "States": s,
    })
}

/// The file's text: the definition, pretty-printed, with a final newline.
pub fn text() -> String {
    let mut t = serde_json::to_string_pretty(&definition()).expect("the ASL serializes");
    t.push('\n');
    t
}
