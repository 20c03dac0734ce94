//! The canary rollout: readiness, the plan's steps, pauses and waits for a person, analyses, and the ends (promoted, rolled back).

use super::*;

/// The canary rollout: readiness, then the plan's steps.
pub(super) fn canary(s: &mut Map<String, Value>) {
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
            {"And": [is(StepKind::SetWeight), {"Variable": "$.cell.windows", "IsPresent": true}],
             "Next": "CheckWindow"},
            {"Variable": "$.step.item.type", "StringEquals": StepKind::SetWeight, "Next": "SetWeight"},
            {"And": [is(StepKind::Pause), {"Variable": "$.step.item.scheduled", "IsPresent": true},
                     {"Variable": "$.step.item.seconds", "IsPresent": true}],
             "Next": "ScheduledPause"},
            {"And": [is(StepKind::Pause), {"Variable": "$.step.item.sampled", "IsPresent": true}],
             "Next": "BeginSampledPause"},
            {"And": [is(StepKind::Pause), {"Variable": "$.step.item.seconds", "IsPresent": true}],
             "Next": "PauseLasts?"},
            {"Variable": "$.step.item.type", "StringEquals": StepKind::Pause, "Next": "RecordPaused"},
            {"Variable": "$.step.item.type", "StringEquals": StepKind::Analysis,
             "Next": "InitialDelay?"}],
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

pub(super) fn set_weight_and_pauses(s: &mut Map<String, Value>) {
    // Deployment windows: a weight step waits, at the weights it found, until the cell's window
    // opens; a callback whose time-out is the wait, so that abort and promote-full act at once.
    s.insert(
        "CheckWindow".into(),
        state_task(
            StateAction::Window,
            obj([
                ("index.$", json!("$.step.index")),
                ("windows.$", json!("$.cell.windows")),
            ]),
            "$.window",
            "WindowOpen?",
            catch_all("RollBack"),
            Some("May traffic move now (the cell's windows)? If not, the hold is recorded and sent as an event."),
        ),
    );
    s.insert(
        "WindowOpen?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.window.open", "BooleanEquals": true, "Next": "SetWeight"}],
            "Default": "WaitForWindow"}),
    );
    s.insert(
        "WaitForWindow".into(),
        callback_wait(
            WaitKind::Window,
            "TakeSignalInWindow",
            timed_catch("CheckWindow"),
            Some("$.window.seconds"),
            Some("$.window.seconds"),
            Some(
                "Held until the deployment window opens: a callback whose time-out is the wait. Abort and promote-full answer it at once.",
            ),
        ),
    );
    s.insert("TakeSignalInWindow".into(), take_answer("SignalInWindow?"));
    s.insert(
        "SignalInWindow?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.signal.signal", "StringEquals": Signal::PromoteFull, "Next": "PromoteFull"},
            {"Variable": "$.signal.signal", "StringEquals": Signal::Abort, "Next": "Aborted"}],
            "Default": "CheckWindow"}),
    );
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
    // pause {duration}: a callback whose time-out is the pause, so that a signal ends it at once.
    s.insert(
        "PauseLasts?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.step.item.seconds", "NumericGreaterThan": 0, "Next": "Pause"}],
            "Default": "RecordStep"}),
    );
    s.insert(
        "Pause".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "$.step.item.seconds"},
               "ResultPath": "$.pause", "Next": "TimedPause"}),
    );
    s.insert(
        "TimedPause".into(),
        callback_wait(
            WaitKind::Pause,
            "TakeSignalInPause",
            timed_catch("RecordStep"),
            Some("$.pause.left"),
            Some("$.step.item.seconds"),
            Some(
                "A timed pause: a callback whose time-out is the pause. Resume, promote, promote-full or abort answer it at once.",
            ),
        ),
    );
    s.insert("TakeSignalInPause".into(), take_answer("SignalInPause?"));
    s.insert(
        "SignalInPause?".into(),
        signalled_then(
            &[Signal::Resume, Signal::Promote],
            &[json!({"Variable": "$.signal.left", "IsPresent": true, "Next": "PauseGoesOn"})],
            "RecordStep",
        ),
    );
    s.insert(
        "PauseGoesOn".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "$.signal.left"},
               "ResultPath": "$.pause", "Next": "TimedPause",
               "Comment": "Answered without a signal that acts: the pause goes on for what it has left."}),
    );
    // pause {duration} while a schedule samples the background analysis: one callback.
    s.insert(
        "ScheduledPause".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "$.step.item.seconds"},
               "ResultPath": "$.pause", "Next": "TimedPauseSampledBySchedule"}),
    );
    s.insert(
        "TimedPauseSampledBySchedule".into(),
        scheduled_wait(
            WaitKind::Pause,
            "EndSamplesInPause",
            timed_catch("EndSamplesAfterPause"),
            Some("$.pause.left"),
            Some("$.step.item.seconds"),
            Some(
                "A timed pause whose background samples an EventBridge Scheduler schedule takes, one Lambda invocation each: the history stays as it is while it lasts.",
            ),
        ),
    );
    s.insert(
        "EndSamplesInPause".into(),
        end_samples("TakeSignalInScheduledPause"),
    );
    s.insert("EndSamplesAfterPause".into(), end_samples("RecordStep"));
    s.insert(
        "TakeSignalInScheduledPause".into(),
        take_answer("SignalInScheduledPause?"),
    );
    s.insert(
        "SignalInScheduledPause?".into(),
        signalled_then(
            &[Signal::Resume, Signal::Promote],
            &[json!({"Variable": "$.signal.left", "IsPresent": true, "Next": "ScheduledPauseGoesOn"})],
            "RecordStep",
        ),
    );
    s.insert(
        "ScheduledPauseGoesOn".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "$.signal.left"},
               "ResultPath": "$.pause", "Next": "TimedPauseSampledBySchedule",
               "Comment": "Answered without a signal that acts: the pause goes on for what it has left."}),
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
            {"Variable": "$.pauseSlices.left", "NumericGreaterThan": 0, "Next": "PauseSlice"},
            {"Variable": "$.step.item.sampled.restSeconds", "NumericGreaterThan": 0,
             "Next": "PauseRest"}],
            "Default": "RecordStep"}),
    );
    s.insert(
        "PauseSlice".into(),
        callback_wait(
            WaitKind::Pause,
            "TakeSignalInPauseSlice",
            timed_catch("BackgroundSampleDuringPause"),
            Some("$.discovery.decision.plan.background.intervalSeconds"),
            None,
            None,
        ),
    );
    s.insert(
        "TakeSignalInPauseSlice".into(),
        take_answer("SignalInPauseSlice?"),
    );
    s.insert(
        "SignalInPauseSlice?".into(),
        signalled("BackgroundSampleDuringPause"),
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
        callback_wait(
            WaitKind::Pause,
            "TakeSignalInPauseRest",
            timed_catch("RecordStep"),
            Some("$.step.item.sampled.restSeconds"),
            None,
            None,
        ),
    );
    s.insert(
        "TakeSignalInPauseRest".into(),
        take_answer("SignalInPauseRest?"),
    );
    s.insert("SignalInPauseRest?".into(), signalled("RecordStep"));
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
            "StartWaitForPerson",
            catch_all("RollBack"),
            None,
        ),
    );
    wait_for_signal(s);
}

pub(super) fn wait_for_signal(s: &mut Map<String, Value>) {
    s.insert(
        "StartWaitForPerson".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "$.step.item.timeoutSeconds"},
               "ResultPath": "$.pause", "Next": "WaitForSignal",
               "Comment": "The wait's time-out (the step's timeout, else a year), which its callbacks keep."}),
    );
    let person_catch = |on_timeout: &str| {
        json!([{"ErrorEquals": [STATES_TIMEOUT], "ResultPath": "$.wake", "Next": on_timeout},
               {"ErrorEquals": [STATES_ALL], "ResultPath": "$.error", "Next": "RollBack"}])
    };
    s.insert(
        "WaitForPersonTimedOut".into(),
        state_task(
            StateAction::Step,
            obj([
                ("index.$", json!("$.step.index")),
                ("weight.$", json!("$.last.weight")),
                ("event", json!(HistoryEvent::TimedOut)),
                (
                    "detail",
                    json!({"timeoutSeconds.$": "$.step.item.timeoutSeconds",
                           "onTimeout.$": "$.step.item.onTimeout"}),
                ),
            ]),
            "$.recorded",
            "OnTimeout?",
            catch_all("RollBack"),
            Some("Nobody answered within the wait's time-out: recorded, then its onTimeout."),
        ),
    );
    s.insert(
        "OnTimeout?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.step.item.onTimeout", "StringEquals": OnTimeout::Promote,
             "Next": "RecordStep"}],
            "Default": "TimedOutAborts"}),
    );
    s.insert(
        "TimedOutAborts".into(),
        raise(
            ExecutionError::WaitTimedOut,
            (
                "Cause.$",
                "States.Format('nobody answered the wait for a person at step {} within its time-out of {} s', $.step.index, $.step.item.timeoutSeconds)",
            ),
            "RollBack",
        ),
    );
    // Answered without a signal: the wait goes on for what its time-out has left.
    s.insert(
        "DeadlineLeft?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.signal.timedOut", "IsPresent": true, "Next": "WaitForPersonTimedOut"},
            {"Variable": "$.signal.left", "IsPresent": true, "Next": "PersonWaitGoesOn"}],
            "Default": "WaitForSignal"}),
    );
    s.insert(
        "PersonWaitGoesOn".into(),
        json!({"Type": "Pass", "Parameters": {"left.$": "$.signal.left"},
               "ResultPath": "$.pause", "Next": "WaitForSignal"}),
    );
    s.insert(
        "WaitForSignal".into(),
        json!({"Type": "Choice",
               "Comment": "Until a person resumes, promotes or aborts through the API or `okra rollout`; with a background analysis, it samples at its own interval meanwhile.",
               "Choices": [
            {"Variable": "$.wakes.count",
             "NumericGreaterThanEqualsPath": "$.discovery.decision.plan.maxWakes",
             "Next": "TakeSignalBeforeGoingOn"},
            {"And": scheduled_here(), "Next": "WaitForPersonWhileScheduleSamples"},
            {"And": background_here(), "Next": "WaitForPersonUntilNextSample"}],
            "Default": "WaitForPerson"}),
    );
    s.insert(
        "WaitForPersonWhileScheduleSamples".into(),
        scheduled_wait(
            WaitKind::Person,
            "EndSamplesWhilePaused",
            person_catch("EndSamplesAtTimeOut"),
            Some("$.pause.left"),
            Some("$.step.item.timeoutSeconds"),
            Some(
                "The same callback; an EventBridge Scheduler schedule takes the background samples meanwhile (one Lambda invocation each, no state transition), and a failing one rolls back.",
            ),
        ),
    );
    s.insert("EndSamplesWhilePaused".into(), end_samples("TakeSignal"));
    s.insert(
        "EndSamplesAtTimeOut".into(),
        end_samples("WaitForPersonTimedOut"),
    );
    s.insert(
        "WaitForPerson".into(),
        callback_wait(
            WaitKind::Person,
            "TakeSignal",
            person_catch("WaitForPersonTimedOut"),
            Some("$.pause.left"),
            Some("$.step.item.timeoutSeconds"),
            Some(
                "A callback: the API's resume, promote, promote-full or abort answers it (SendTaskSuccess), or its time-out ends it. No polling, so a wait of any length adds a handful of history events.",
            ),
        ),
    );
    s.insert(
        "WaitForPersonUntilNextSample".into(),
        wait_for_person(
            "TakeSignal",
            json!([{"ErrorEquals": [STATES_TIMEOUT], "ResultPath": "$.wake",
                    "Next": "BackgroundSampleWhilePaused"},
                   {"ErrorEquals": [STATES_ALL], "ResultPath": "$.error", "Next": "RollBack"}]),
            Some("$.discovery.decision.plan.background.intervalSeconds"),
            Some(
                "The same callback, given up after the background analysis's interval to take a sample.",
            ),
        ),
    );
    // The wait's answer (`$.wake`: the callback's output, or its time-out caught) goes to poll,
    // which takes a stored signal first, else a signal the answer names (SendTaskSuccess by any
    // holder of the token).
    s.insert("TakeSignal".into(), take_answer("Signalled?"));
    s.insert("Signalled?".into(), signalled("CountWake"));
    s.insert(
        "CountWake".into(),
        json!({"Type": "Pass", "Parameters": {"count.$": "States.MathAdd($.wakes.count, 1)"},
               "ResultPath": "$.wakes", "Next": "DeadlineLeft?"}),
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

pub(super) fn analysis(s: &mut Map<String, Value>) {
    // The analysis's waits are callbacks too: promote skips the rest of the analysis at once.
    s.insert(
        "InitialDelay?".into(),
        json!({"Type": "Choice", "Choices": [
            {"Variable": "$.step.item.initialDelaySeconds", "IsPresent": false,
             "Next": "BeginAnalysis"},
            {"Variable": "$.step.item.initialDelaySeconds", "NumericGreaterThan": 0,
             "Next": "AnalysisInitialDelay"}],
            "Default": "BeginAnalysis"}),
    );
    s.insert(
        "AnalysisInitialDelay".into(),
        callback_wait(
            WaitKind::Analysis,
            "TakeSignalInInitialDelay",
            timed_catch("BeginAnalysis"),
            Some("$.step.item.initialDelaySeconds"),
            None,
            None,
        ),
    );
    s.insert(
        "TakeSignalInInitialDelay".into(),
        take_answer("SignalInInitialDelay?"),
    );
    s.insert(
        "SignalInInitialDelay?".into(),
        signalled_then(&[Signal::Promote], &[], "BeginAnalysis"),
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
            phase(Phase::Running, "AnalysisInterval")],
            "Default": "RecordVerdict"}),
    );
    s.insert(
        "RecordVerdict".into(),
        state_task(
            StateAction::Step,
            obj([
                ("index.$", json!("$.step.index")),
                ("weight.$", json!("$.last.weight")),
                ("event", json!(HistoryEvent::Verdict)),
                ("detail.$", json!("$.analysis")),
            ]),
            "$.recorded",
            "VerdictPhase?",
            catch_all("RollBack"),
            Some(
                "The analysis decided: its verdict (each metric's value and conditions) recorded and sent as an event.",
            ),
        ),
    );
    s.insert(
        "VerdictPhase?".into(),
        json!({"Type": "Choice", "Choices": [
            phase(Phase::Successful, "RecordStep"),
            phase(Phase::Inconclusive, "RecordInconclusive")],
            "Default": "AnalysisFailed"}),
    );
    s.insert(
        "AnalysisInterval".into(),
        callback_wait(
            WaitKind::Analysis,
            "TakeSignalInAnalysis",
            timed_catch("CheckMetrics"),
            Some("$.step.item.intervalSeconds"),
            None,
            Some("Until the next sample: a callback, so that promote or abort acts at once."),
        ),
    );
    s.insert(
        "TakeSignalInAnalysis".into(),
        take_answer("SignalInAnalysis?"),
    );
    s.insert(
        "SignalInAnalysis?".into(),
        signalled_then(&[Signal::Promote], &[], "CheckMetrics"),
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
            "StartWaitForPerson",
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
pub(super) fn after_step(s: &mut Map<String, Value>) {
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

/// A background sample's phase: failed or error rolls back, anything else goes on (none: no
/// sample yet, as after a wait the schedule took no sample in).
pub(super) fn background_choices(s: &mut Map<String, Value>) {
    for next in [
        "TakeSignal",
        "PollAfterStep",
        "CountPauseSlice",
        "TakeSignalInScheduledPause",
        "RecordStep",
        "WaitForPersonTimedOut",
    ] {
        s.insert(
            format!("BackgroundPhase{next}"),
            json!({"Type": "Choice", "Choices": [
                {"And": [{"Variable": "$.background.phase", "IsPresent": true},
                         {"Or": [{"Variable": "$.background.phase", "StringEquals": Phase::Failed},
                                 {"Variable": "$.background.phase", "StringEquals": Phase::Error}]}],
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
