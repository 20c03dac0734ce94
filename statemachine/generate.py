#!/usr/bin/env python3
"""Writes statemachine/rollout.asl.json, okra's rollout state machine.

The ASL is generated because its loops (readiness, steps, pauses, analysis samples) repeat the
same Task shapes with small differences; the JSON is what ships and what the tests run.
`python3 statemachine/generate.py --check` fails when the checked-in JSON is stale
(`make lint-asl` runs it).

Design notes (docs/state-machine.md has the long form):
- Standard workflow, JSONPath only (the local interpreter has no JSONata), Task states with the
  function ARN as Resource (the output is the payload; no lambda:invoke wrapping).
- Every path ends through a `Finish*` task that records the outcome and releases the cell's lock.
- A person's signals (resume, promote, promoteFull, abort) are left in DynamoDB by the API. After
  each step the state machine takes any that is there. A pause until resumed (and an inconclusive
  analysis) waits in a `.waitForTaskToken` callback whose token rollout-state keeps; the API
  answers it with SendTaskSuccess. No polling: a wait of any length costs a handful of history
  events (the 25,000-event limit), and a background analysis wakes it at its own interval.
"""
import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("rollout.asl.json")

TRANSIENT = [
    "Throttled", "AwsUnavailable", "VerificationFailed",
    "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException", "Lambda.Unknown", "States.Timeout",
    # A function that ran past its Lambda timeout (AWS reports Sandbox.Timedout).
    "Sandbox.Timedout",
]
RETRY = [{"ErrorEquals": TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 6, "BackoffRate": 2,
          "MaxDelaySeconds": 30, "JitterStrategy": "FULL"}]
# A callback task's Lambda call can fail like any other; its own timeout (States.Timeout) is the
# end of a wait, not a fault, so it is not retried.
RETRY_CALLBACK = [{**RETRY[0], "ErrorEquals": [e for e in TRANSIENT if e != "States.Timeout"]}]
EXECUTION = "$$.Execution.Name"


def task(fn, params, result_path, next_state, catch=None, comment=None, selector=None):
    t = {}
    if comment:
        t["Comment"] = comment
    t.update({"Type": "Task", "Resource": "${%sFunctionArn}" % fn, "Parameters": params,
              "TimeoutSeconds": 120})
    if selector:
        t["ResultSelector"] = selector
    t["ResultPath"] = result_path
    t["Retry"] = RETRY
    if catch:
        t["Catch"] = catch
    t["Next"] = next_state
    return t


def catch_all(state, path="$.error"):
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": path, "Next": state}]


def state_task(action, extra, result_path, next_state, catch=None, comment=None):
    params = {"action": action, "cell.$": "$.cell.name", "execution.$": EXECUTION}
    params.update(extra)
    return task("RolloutState", params, result_path, next_state, catch=catch, comment=comment)


def shift(stable, canary, weight, expected, next_state, catch, result_path="$.last", comment=None,
          check_members=False):
    params = {"listenerArn.$": "$.discovery.listenerArn", "ruleArn.$": "$.discovery.ruleArn",
              "stickiness.$": "$.discovery.stickiness", "expected.$": expected}
    if check_members:
        # Every member against the readiness gate first: a canary group gone or unhealthy fails
        # the step; a stable one leaves the action and the others share its weight.
        params["minHealthyPercent.$"] = "$.discovery.readiness.minHealthyPercent"
    params.update({"stable" + (".$" if isinstance(stable, str) else ""): stable})
    params.update({"canary" + (".$" if isinstance(canary, str) else ""): canary})
    if isinstance(weight, str):
        params["weight.$"] = weight
    else:
        params["weight"] = weight
    return task("ShiftWeights", params, result_path, next_state, catch=catch, comment=comment)


def finish(outcome, next_state, block=False, version=None, reason=None):
    extra = {"outcome": outcome, "block": block}
    if version:
        extra["version.$"] = version
    if reason:
        extra["reason.$"] = reason
    # Recording must not hide the outcome: a failed record still ends in the outcome's state.
    return state_task("finish", extra, "$.finished", next_state,
                      catch=catch_all(next_state, "$.finishError"))


def standby(groups, next_state, catch, detach=False, comment=None):
    """The new target groups in (or out of) the owned forward action at weight 0: no weight
    changes. AWS health-checks only the targets of groups a listener rule forwards to."""
    params = {"listenerArn.$": "$.discovery.listenerArn", "ruleArn.$": "$.discovery.ruleArn",
              "stickiness.$": "$.discovery.stickiness", ("detach.$" if detach else "attach.$"): groups}
    return task("ShiftWeights", params, "$.standby", next_state, catch=catch, comment=comment)


def wait_for_person(next_state, catch, timeout_path=None, comment=None):
    """A `.waitForTaskToken` task: rollout-state keeps the token where the API finds it."""
    t = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken"}
    if comment:
        t = {"Comment": comment, **t}
    t["Parameters"] = {"FunctionName": "${RolloutStateFunctionArn}", "Payload": {
        "action": "await", "cell.$": "$.cell.name", "execution.$": EXECUTION, "token.$": "$$.Task.Token"}}
    if timeout_path:
        t["TimeoutSecondsPath"] = timeout_path
    t["ResultPath"] = "$.wake"
    t["Retry"] = RETRY_CALLBACK
    t["Catch"] = catch
    t["Next"] = next_state
    return t


def readiness_loop(S, prefix, side_path, ready_state):
    S[f"{prefix}Ready?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.canary.ready", "BooleanEquals": True, "Next": ready_state}],
        "Default": f"Count{prefix}Poll"}
    S[f"Count{prefix}Poll"] = {"Type": "Pass", "Parameters": {"count.$": "States.MathAdd($.polls.count, 1)"},
                                "ResultPath": "$.polls", "Next": f"{prefix}PollsLeft?"}
    S[f"{prefix}PollsLeft?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.polls.count", "NumericGreaterThanPath": "$.discovery.readiness.maxPolls",
         "Next": "TakeNewGroupsOutAfterTimeout"}], "Default": f"WaitFor{prefix}Readiness"}
    S[f"WaitFor{prefix}Readiness"] = {"Type": "Wait", "SecondsPath": "$.discovery.readiness.pollSeconds",
                                      "Next": f"Check{prefix}Readiness"}
    S[f"Check{prefix}Readiness"] = task(
        "EnsureTargetGroups", {"cell.$": "$.cell", "side.$": side_path, "mode": "health"}, "$.canary",
        f"{prefix}Ready?", catch=catch_all("TakeNewGroupsOutAfterFailure"))


def build():
    S = {}
    S["Init"] = {"Type": "Pass", "Comment": "Counters and accumulators the loops use.",
                 "Parameters": {"count": 0}, "ResultPath": "$.polls", "Next": "InitBackground"}
    S["InitBackground"] = {"Type": "Pass", "Parameters": {"metrics": []}, "ResultPath": "$.background",
                           "Next": "InitWakes"}
    S["InitWakes"] = {"Type": "Pass", "Comment": "Wakes of waits for a person in this execution (the history quota).",
                      "Parameters": {"count": 0}, "ResultPath": "$.wakes", "Next": "TakeLock"}
    S["TakeLock"] = state_task(
        "begin", {}, "$.lock", "Discover",
        catch=[{"ErrorEquals": ["Conflict"], "ResultPath": "$.error", "Next": "CellBusy"},
               {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "LockFailed"}],
        comment="One rollout per cell: take the cell's lock (or fail at once if another execution "
                "holds it) and read the cell's blocked versions.")
    S["CellBusy"] = {"Type": "Fail", "Error": "CellBusy", "CausePath": "$.error.Cause",
                     "Comment": "Another execution holds the cell's lock; this one touched nothing."}
    S["LockFailed"] = {"Type": "Fail", "Error": "LockFailed", "CausePath": "$.error.Cause"}
    S["Discover"] = task(
        "DiscoverClusters", {"cell.$": "$.cell", "blocklist.$": "$.lock.blocklist", "labels.$": "$.labels"}, "$.discovery",
        "Decide", catch=catch_all("FinishDiscoveryFailed"),
        comment="Read the cell's clusters, target groups and listener; decide what to do.")
    S["Decide"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.discovery.decision.kind", "StringEquals": "nothingToDo", "Next": "FinishNothingToDo"},
        {"Variable": "$.discovery.decision.kind", "StringEquals": "initialize", "Next": "EnsureInitialTargetGroups"},
        {"Variable": "$.discovery.decision.kind", "StringEquals": "scaleOut", "Next": "EnsureScaleOutTargetGroups"},
        {"Variable": "$.discovery.decision.kind", "StringEquals": "rollback", "Next": "EnsureRollbackTargetGroups"},
        {"Variable": "$.discovery.decision.kind", "StringEquals": "startRollout", "Next": "RecordStarted"},
        {"Variable": "$.discovery.decision.kind", "StringEquals": "resumeRollout", "Next": "RecordStarted"}],
        "Default": "UnknownDecision"}
    S["UnknownDecision"] = {"Type": "Pass", "Parameters": {
        "Error": "UnknownDecision", "Cause.$": "States.Format('discover-clusters decided {}, which this state machine does not know', $.discovery.decision.kind)"},
        "ResultPath": "$.error", "Next": "FinishDiscoveryFailed"}
    S["FinishNothingToDo"] = finish("nothingToDo", "NothingToDo", reason="$.discovery.decision.reason")
    S["NothingToDo"] = {"Type": "Succeed", "Comment": "The listener stays as it is; $.discovery.decision.reason says why."}
    S["FinishDiscoveryFailed"] = finish("failed", "DiscoveryFailed", reason="$.error.Cause")
    S["DiscoveryFailed"] = {"Type": "Fail", "Error": "DiscoveryFailed", "CausePath": "$.error.Cause",
                            "Comment": "Discovery failed before any traffic moved."}

    # One-write paths: initialize, scale out, rollback to a pinned lower version.
    S["EnsureInitialTargetGroups"] = task(
        "EnsureTargetGroups", {"cell.$": "$.cell", "side.$": "$.discovery.decision.target"}, "$.canary",
        "StandInitialGroupsBy", catch=catch_all("FinishTargetGroupsFailed"))
    S["EnsureScaleOutTargetGroups"] = task(
        "EnsureTargetGroups", {"cell.$": "$.cell", "side.$": "$.discovery.decision.serving"}, "$.canary",
        "StandInitialGroupsBy", catch=catch_all("FinishTargetGroupsFailed"))
    S["StandInitialGroupsBy"] = standby(
        "$.canary.side", "InitialReady?", catch_all("TakeNewGroupsOutAfterFailure"),
        comment="The version's target groups join the forward action at weight 0, so that the load balancer health-checks them.")
    readiness_loop(S, "Initial", "$.canary.side", "SwitchAtOnce")
    S["SwitchAtOnce"] = shift([], "$.canary.side", 100, "$.discovery.action", "FinishSwitched",
                              catch_all("FinishSwitchFailed"),
                              comment="Initialize or scale out: everything to the version's target groups, evenly, in one write.")
    S["FinishSwitched"] = finish("promoted", "Switched", version="$.canary.side.version")
    S["Switched"] = {"Type": "Succeed"}
    S["FinishSwitchFailed"] = finish("failed", "SwitchFailed", reason="$.error.Cause")
    S["SwitchFailed"] = {"Type": "Fail", "Error": "SwitchFailed", "CausePath": "$.error.Cause"}
    S["EnsureRollbackTargetGroups"] = task(
        "EnsureTargetGroups", {"cell.$": "$.cell", "side.$": "$.discovery.decision.to"}, "$.canary",
        "StandRollbackGroupsBy", catch=catch_all("FinishTargetGroupsFailed"),
        comment="The version to go back to may never have served: its target groups first, healthy.")
    S["StandRollbackGroupsBy"] = standby(
        "$.canary.side", "RollbackReady?", catch_all("TakeNewGroupsOutAfterFailure"))
    readiness_loop(S, "Rollback", "$.canary.side", "RollBackAtOnce")
    S["RollBackAtOnce"] = shift("$.canary.side", "$.discovery.decision.from", 0, "$.discovery.action",
                                "FinishRolledBackAtOnce", catch_all("FinishRollbackAtOnceFailed", "$.rollbackError"),
                                comment="A pinned lower version, or a blocked version still holding traffic: everything back in one write.")
    S["FinishRolledBackAtOnce"] = finish("rolledBack", "RolledBackAtOnce", reason="$.discovery.decision.reason")
    S["RolledBackAtOnce"] = {"Type": "Succeed"}
    S["FinishRollbackAtOnceFailed"] = finish("failed", "RollbackFailed", reason="$.rollbackError.Cause")
    S["TakeNewGroupsOutAfterTimeout"] = standby(
        "$.canary.side", "FinishReadinessTimedOut", catch_all("FinishReadinessTimedOut", "$.standbyError"), detach=True,
        comment="The gate timed out: the new groups leave the forward action again (they took no traffic).")
    S["TakeNewGroupsOutAfterFailure"] = standby(
        "$.canary.side", "FinishTargetGroupsFailed", catch_all("FinishTargetGroupsFailed", "$.standbyError"), detach=True)
    S["FinishReadinessTimedOut"] = state_task(
        "finish", {"outcome": "failed", "block": False,
                   "reason": "the new target groups did not meet the readiness gate in time; no traffic moved"},
        "$.finished", "ReadinessTimedOut", catch=catch_all("ReadinessTimedOut", "$.finishError"))
    S["ReadinessTimedOut"] = {"Type": "Fail", "Error": "ReadinessTimedOut",
                              "Cause": "The new target groups did not meet the readiness gate in time; no traffic moved."}
    S["FinishTargetGroupsFailed"] = finish("failed", "TargetGroupsFailed", reason="$.error.Cause")
    S["TargetGroupsFailed"] = {"Type": "Fail", "Error": "TargetGroupsFailed", "CausePath": "$.error.Cause",
                               "Comment": "Making or reading the new target groups failed; no traffic moved."}

    # Canary rollout.
    S["RecordStarted"] = state_task("started", {"decision.$": "$.discovery.decision"}, "$.recorded",
                                    "EnsureCanaryTargetGroups", catch=catch_all("FinishTargetGroupsFailed"))
    S["EnsureCanaryTargetGroups"] = task(
        "EnsureTargetGroups", {"cell.$": "$.cell", "side.$": "$.discovery.decision.canary"}, "$.canary",
        "StandCanaryGroupsBy", catch=catch_all("FinishTargetGroupsFailed"),
        comment="One target group per new cluster, registered; then wait for the readiness gate before any traffic moves.")
    S["StandCanaryGroupsBy"] = standby(
        "$.canary.side", "CanaryReady?", catch_all("TakeNewGroupsOutAfterFailure"),
        comment="The new target groups join the forward action at weight 0: the load balancer health-checks only groups a rule forwards to.")
    readiness_loop(S, "Canary", "$.canary.side", "BeginSteps")
    S["BeginSteps"] = {"Type": "Pass", "Parameters": {"index.$": "States.ArrayLength($.discovery.decision.plan.steps)"},
                       "ResultPath": "$.stepCount", "Next": "StartOrResume?"}
    S["StartOrResume?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.discovery.decision.fromStep", "IsPresent": True, "Next": "ResumeAtStep"}],
        "Default": "StartAtFirstStep"}
    S["StartAtFirstStep"] = {"Type": "Pass", "Parameters": {"index": 0}, "ResultPath": "$.step", "Next": "RememberAction"}
    S["ResumeAtStep"] = {"Type": "Pass", "Parameters": {"index.$": "$.discovery.decision.fromStep"},
                         "ResultPath": "$.step", "Next": "RememberResumedAction"}
    S["RememberResumedAction"] = {"Type": "Pass", "Parameters": {
        "action.$": "$.discovery.action", "weight.$": "$.discovery.decision.canaryWeight", "excluded": []},
        "ResultPath": "$.last", "Next": "MoreSteps?"}
    S["RememberAction"] = {"Type": "Pass", "Parameters": {"action.$": "$.discovery.action", "weight": 0, "excluded": []},
                           "ResultPath": "$.last", "Next": "MoreSteps?"}
    S["MoreSteps?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.step.index", "NumericGreaterThanEqualsPath": "$.stepCount.index", "Next": "FinishPromoted"}],
        "Default": "LoadStep"}
    S["LoadStep"] = {"Type": "Pass", "Parameters": {
        "index.$": "$.step.index", "item.$": "States.ArrayGetItem($.discovery.decision.plan.steps, $.step.index)"},
        "ResultPath": "$.step", "Next": "StepType?"}
    S["StepType?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.step.item.type", "StringEquals": "setWeight", "Next": "SetWeight"},
        {"And": [{"Variable": "$.step.item.type", "StringEquals": "pause"},
                 {"Variable": "$.step.item.sampled", "IsPresent": True}], "Next": "BeginSampledPause"},
        {"And": [{"Variable": "$.step.item.type", "StringEquals": "pause"},
                 {"Variable": "$.step.item.seconds", "IsPresent": True}], "Next": "Pause"},
        {"Variable": "$.step.item.type", "StringEquals": "pause", "Next": "RecordPaused"},
        {"Variable": "$.step.item.type", "StringEquals": "analysis", "Next": "AnalysisInitialDelay"}],
        "Default": "UnknownStep"}
    S["UnknownStep"] = {"Type": "Pass", "Parameters": {
        "Error": "UnknownStep", "Cause.$": "States.Format('step {} has a type this state machine does not know', $.step.index)"},
        "ResultPath": "$.error", "Next": "RollBack"}

    # setWeight
    S["SetWeight"] = shift("$.discovery.decision.stable", "$.canary.side", "$.step.item.weight", "$.last.action",
                           "RecordStep", catch_all("RollBack"), check_members=True,
                           comment="Shift to the step's weight and verify; the output's weight is what the console shows.")
    # pause {duration}
    S["Pause"] = {"Type": "Wait", "SecondsPath": "$.step.item.seconds", "Next": "RecordStep"}
    # pause {duration} while a background analysis runs: an interval, a sample, again; then the rest.
    S["BeginSampledPause"] = {"Type": "Pass", "Parameters": {"left.$": "$.step.item.sampled.slices"},
                              "ResultPath": "$.pauseSlices", "Next": "MorePauseSlices?",
                              "Comment": "A timed pause during which the background analysis samples at its own interval."}
    S["MorePauseSlices?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.pauseSlices.left", "NumericGreaterThan": 0, "Next": "PauseSlice"}],
        "Default": "PauseRest"}
    S["PauseSlice"] = {"Type": "Wait", "SecondsPath": "$.discovery.decision.plan.background.intervalSeconds",
                       "Next": "BackgroundSampleDuringPause"}
    S["BackgroundSampleDuringPause"] = background_sample("CountPauseSlice")
    S["CountPauseSlice"] = {"Type": "Pass", "Parameters": {"left.$": "States.MathAdd($.pauseSlices.left, -1)"},
                            "ResultPath": "$.pauseSlices", "Next": "MorePauseSlices?"}
    S["PauseRest"] = {"Type": "Wait", "SecondsPath": "$.step.item.sampled.restSeconds", "Next": "RecordStep"}
    # pause {} until resumed
    S["RecordPaused"] = state_task("step", {"index.$": "$.step.index", "weight.$": "$.last.weight",
                                            "event": "paused", "detail": {"until": "resumed"}},
                                   "$.recorded", "WaitForSignal", catch=catch_all("RollBack"))
    S["WaitForSignal"] = {"Type": "Choice", "Comment": "Until a person resumes, promotes or aborts through the API or `okra rollout`; "
                                                       "with a background analysis, it samples at its own interval meanwhile.",
                          "Choices": [
        {"Variable": "$.wakes.count", "NumericGreaterThanEqualsPath": "$.discovery.decision.plan.maxWakes",
         "Next": "TakeSignalBeforeGoingOn"},
        {"And": [{"Variable": "$.discovery.decision.plan.background", "IsPresent": True},
                 {"Variable": "$.step.index", "NumericGreaterThanEqualsPath": "$.discovery.decision.plan.background.startingStep"}],
         "Next": "WaitForPersonUntilNextSample"}], "Default": "WaitForPerson"}
    S["WaitForPerson"] = wait_for_person(
        "TakeSignal", [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RollBack"}],
        comment="A callback: the API's resume, promote, promote-full or abort answers it (SendTaskSuccess). No polling, "
                "so a wait of any length adds a handful of history events.")
    S["WaitForPersonUntilNextSample"] = wait_for_person(
        "TakeSignal", [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.waited", "Next": "BackgroundSampleWhilePaused"},
                       {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RollBack"}],
        timeout_path="$.discovery.decision.plan.background.intervalSeconds",
        comment="The same callback, given up after the background analysis's interval to take a sample.")
    S["TakeSignal"] = state_task("poll", {}, "$.signal", "Signalled?", catch=catch_all("RollBack"))
    S["Signalled?"] = {"Type": "Choice", "Choices": [
        {"Or": [{"Variable": "$.signal.signal", "StringEquals": "resume"},
                {"Variable": "$.signal.signal", "StringEquals": "promote"}], "Next": "RecordStep"},
        {"Variable": "$.signal.signal", "StringEquals": "promoteFull", "Next": "PromoteFull"},
        {"Variable": "$.signal.signal", "StringEquals": "abort", "Next": "Aborted"}],
        "Default": "CountWake"}
    S["CountWake"] = {"Type": "Pass", "Parameters": {"count.$": "States.MathAdd($.wakes.count, 1)"},
                      "ResultPath": "$.wakes", "Next": "WaitForSignal"}
    # Woken by the interval: a sample, then any signal left meanwhile (its callback may have
    # been answered while no wait was open).
    S["BackgroundSampleWhilePaused"] = background_sample("TakeSignal")
    # The history quota: a wait woken many times goes on in a new execution, unless a person's
    # signal is there to act on (signals are this execution's own).
    S["TakeSignalBeforeGoingOn"] = state_task("poll", {}, "$.signal", "SignalledBeforeGoingOn?",
                                              catch=catch_all("RollBack"))
    S["SignalledBeforeGoingOn?"] = {"Type": "Choice", "Choices": [
        {"Or": [{"Variable": "$.signal.signal", "StringEquals": "resume"},
                {"Variable": "$.signal.signal", "StringEquals": "promote"}], "Next": "RecordStep"},
        {"Variable": "$.signal.signal", "StringEquals": "promoteFull", "Next": "PromoteFull"},
        {"Variable": "$.signal.signal", "StringEquals": "abort", "Next": "Aborted"}],
        "Default": "GoOnInNewExecution"}
    S["GoOnInNewExecution"] = state_task(
        "finish", {"outcome": "continued", "block": False,
                   "reason": "the wait for a person goes on in a new execution (the history quota of this one)"},
        "$.finished", "StartNextExecution", catch=catch_all("ContinuationFailed"),
        comment="Step Functions ends an execution at 25,000 history events: record this one as continued and free the cell.")
    S["StartNextExecution"] = task(
        "Dispatcher", {"cells.$": "States.Array($.cell.name)", "trigger": "continue",
                       "labels": {"continues.$": EXECUTION}},
        "$.continued", "ContinuedInNewExecution", catch=catch_all("ContinuationFailed"),
        comment="The dispatcher starts the next execution, which picks the rollout up where the listener shows it.")
    S["ContinuedInNewExecution"] = {"Type": "Succeed", "Comment": "A new execution holds the cell now."}
    S["ContinuationFailed"] = {"Type": "Fail", "Error": "ContinuationFailed", "CausePath": "$.error.Cause",
                               "Comment": "Traffic stays at the last step's weights; the next reconcile resumes the rollout."}
    # analysis
    S["AnalysisInitialDelay"] = {"Type": "Wait", "SecondsPath": "$.step.item.initialDelaySeconds", "Next": "BeginAnalysis"}
    S["BeginAnalysis"] = {"Type": "Pass", "Parameters": {"metrics": []}, "ResultPath": "$.analysis", "Next": "CheckMetrics"}
    S["CheckMetrics"] = task(
        "CheckMetrics",
        {"cell.$": "$.cell", "templates.$": "$.step.item.templates", "args.$": "$.step.item.args",
         "canary.$": "$.canary.side", "stable.$": "$.discovery.decision.stable", "previous.$": "$.analysis.metrics"},
        "$.analysis", "AnalysisPhase?", catch=catch_all("RollBack"),
        comment="One sample of every metric of the step's analyses (one GetMetricData call), and the judge.")
    S["AnalysisPhase?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.analysis.phase", "StringEquals": "successful", "Next": "RecordStep"},
        {"Variable": "$.analysis.phase", "StringEquals": "running", "Next": "AnalysisInterval"},
        {"Variable": "$.analysis.phase", "StringEquals": "inconclusive", "Next": "RecordInconclusive"}],
        "Default": "AnalysisFailed"}
    S["AnalysisInterval"] = {"Type": "Wait", "SecondsPath": "$.step.item.intervalSeconds", "Next": "CheckMetrics"}
    S["RecordInconclusive"] = state_task(
        "step", {"index.$": "$.step.index", "weight.$": "$.last.weight", "event": "paused",
                 "detail": {"until": "resumed", "inconclusive.$": "$.analysis.reason"}},
        "$.recorded", "WaitForSignal", catch=catch_all("RollBack"),
        comment="Neither pass nor fail: wait for a person (resume or promote goes on, abort rolls back).")
    S["AnalysisFailed"] = {"Type": "Pass", "Parameters": {
        "Error": "AnalysisFailed", "Cause.$": "$.analysis.reason"}, "ResultPath": "$.error", "Next": "RollBack"}

    # After every step: record it, sample the background analysis, read a person's signal.
    S["RecordStep"] = state_task("step", {"index.$": "$.step.index", "weight.$": "$.last.weight",
                                          "excluded.$": "$.last.excluded"},
                                 "$.recorded", "BackgroundAfterStep?", catch=catch_all("RollBack"))
    S["BackgroundAfterStep?"] = {"Type": "Choice", "Choices": [
        {"And": [{"Variable": "$.discovery.decision.plan.background", "IsPresent": True},
                 {"Variable": "$.step.index", "NumericGreaterThanEqualsPath": "$.discovery.decision.plan.background.startingStep"}],
         "Next": "BackgroundSample"}], "Default": "PollAfterStep"}
    S["BackgroundSample"] = background_sample("PollAfterStep")
    S["PollAfterStep"] = state_task("poll", {}, "$.signal", "SignalAfterStep?", catch=catch_all("RollBack"))
    S["SignalAfterStep?"] = {"Type": "Choice", "Choices": [
        {"Variable": "$.signal.signal", "StringEquals": "promoteFull", "Next": "PromoteFull"},
        {"Variable": "$.signal.signal", "StringEquals": "abort", "Next": "Aborted"}],
        "Default": "NextStep"}
    S["NextStep"] = {"Type": "Pass", "Parameters": {"index.$": "States.MathAdd($.step.index, 1)"},
                     "ResultPath": "$.step", "Next": "MoreSteps?"}
    S["PromoteFull"] = shift("$.discovery.decision.stable", "$.canary.side", 100, "$.last.action", "FinishPromoted",
                             catch_all("RollBack"), check_members=True, comment="A person skipped the remaining steps: the new version to 100 %.")
    S["FinishPromoted"] = finish("promoted", "Promoted", version="$.canary.side.version")
    S["Promoted"] = {"Type": "Succeed", "Comment": "The new version serves at 100 %."}
    S["Aborted"] = {"Type": "Pass", "Parameters": {"Error": "Aborted", "Cause": "a person aborted the rollout"},
                    "ResultPath": "$.error", "Next": "RollBack"}

    # Rollback: everything back to the stable version, verified; the version is blocked.
    S["RollBack"] = shift("$.discovery.decision.stable", "$.canary.side", 0, "$.last.action", "FinishRolledBack",
                          catch_all("FinishRollbackFailed", "$.rollbackError"), result_path="$.rollback",
                          comment="Everything back to the stable version, verified. A listener someone edited is left as it is (DriftDetected).")
    S["FinishRolledBack"] = finish("rolledBack", "RolledBack", block=True, version="$.canary.side.version",
                                   reason="$.error.Cause")
    S["RolledBack"] = {"Type": "Fail", "Error": "RolledBack", "CausePath": "$.error.Cause",
                       "Comment": "A step failed or a person aborted; traffic is back on the stable version and the new version is blocked."}
    S["FinishRollbackFailed"] = finish("failed", "RollbackFailed", block=True, version="$.discovery.decision.canary.version",
                                       reason="$.rollbackError.Cause")
    S["RollbackFailed"] = {"Type": "Fail", "Error": "RollbackFailed", "CausePath": "$.rollbackError.Cause",
                           "Comment": "Rolling back failed, or found the listener edited by someone else and left it as it is."}

    return {"Comment": "okra: roll a cell's traffic from its serving clusters to a newer version, step by step, "
                       "with analyses; roll back and block the version on failure. Generated by statemachine/generate.py.",
            "StartAt": "Init", "States": S}


def background_sample(next_state):
    return task(
        "CheckMetrics",
        {"cell.$": "$.cell", "templates.$": "$.discovery.decision.plan.background.templates",
         "args.$": "$.discovery.decision.plan.background.args", "canary.$": "$.canary.side",
         "stable.$": "$.discovery.decision.stable", "previous.$": "$.background.metrics"},
        "$.background", "BackgroundPhase" + next_state,
        catch=catch_all("RollBack"),
        comment="One sample of the background analysis.")


def add_background_choices(S):
    for nxt in ("TakeSignal", "PollAfterStep", "CountPauseSlice"):
        S["BackgroundPhase" + nxt] = {"Type": "Choice", "Choices": [
            {"Or": [{"Variable": "$.background.phase", "StringEquals": "failed"},
                    {"Variable": "$.background.phase", "StringEquals": "error"}], "Next": "BackgroundFailed"}],
            "Default": nxt}
    S["BackgroundFailed"] = {"Type": "Pass", "Parameters": {
        "Error": "BackgroundAnalysisFailed", "Cause.$": "$.background.reason"}, "ResultPath": "$.error", "Next": "RollBack"}


def main():
    asl = build()
    add_background_choices(asl["States"])
    text = json.dumps(asl, indent=2) + "\n"
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            sys.exit(f"{OUT} is stale: run python3 statemachine/generate.py")
        return
    OUT.write_text(text)


if __name__ == "__main__":
    main()
