//! `rollout-state` over the fakes: the lock, the record, signals, the blocklist, events, and
//! replays (Step Functions runs a task again after a timeout or a retried error).

use std::time::{Duration, SystemTime};

use okra_aws::fakes::{FakeEvents, FakeExecutions, FakeSchedules, FakeState};
use okra_aws::handlers::state::{
    BeginOutput, EndedOutput, FinishOutput, Outcome, PollOutput, RecordOutput, StateOutput, handle,
    parse,
};
use okra_aws::state::{Signal, StatePort, WaitKind};
use okra_aws::{OkraError, Result};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const CELL: &str = "web";

struct World {
    state: FakeState,
    execs: FakeExecutions,
    events: FakeEvents,
    schedules: FakeSchedules,
}

fn world() -> World {
    World {
        state: FakeState::new(),
        execs: FakeExecutions::new(),
        events: FakeEvents::new(),
        schedules: FakeSchedules::new(),
    }
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000 + secs)
}

impl World {
    async fn call_at(&self, input: Value, now: SystemTime) -> Result<StateOutput> {
        handle(
            &self.state,
            &self.execs,
            &self.events,
            &self.schedules,
            parse(input)?,
            now,
        )
        .await
    }

    async fn call(&self, input: Value) -> Result<StateOutput> {
        self.call_at(input, t(0)).await
    }

    /// Execution `execution` runs, holds the lock and has recorded its rollout's start.
    async fn rolling_out(&self, execution: &str) {
        self.execs.add(execution, "RUNNING");
        self.begin(execution).await.expect("locks");
        self.record(
            json!({"action": "started", "cell": CELL, "execution": execution,
                "decision": start_rollout()}),
            t(1),
        )
        .await;
    }

    /// Delivers execution `execution`'s status change event (`status`) to the finalizer.
    async fn ended(&self, execution: &str, status: &str) -> EndedOutput {
        match self.call(status_change(execution, status)).await {
            Ok(StateOutput::Ended(e)) => e,
            other => panic!("expected the finalizer's output, got {other:?}"),
        }
    }

    async fn begin(&self, execution: &str) -> Result<BeginOutput> {
        match self
            .call(json!({"action": "begin", "cell": CELL, "execution": execution}))
            .await?
        {
            StateOutput::Begin(b) => Ok(b),
            other => panic!("begin gave {other:?}"),
        }
    }

    async fn record(&self, input: Value, now: SystemTime) -> bool {
        match self.call_at(input, now).await.expect("records") {
            StateOutput::Record(RecordOutput { recorded }) => recorded,
            other => panic!("expected a record output, got {other:?}"),
        }
    }

    async fn finish(&self, input: Value, now: SystemTime) -> FinishOutput {
        match self.call_at(input, now).await.expect("finishes") {
            StateOutput::Finish(f) => f,
            other => panic!("expected a finish output, got {other:?}"),
        }
    }

    async fn poll(&self, execution: &str) -> String {
        match self
            .call(json!({"action": "poll", "cell": CELL, "execution": execution}))
            .await
            .expect("polls")
        {
            // What the state machine reads: the output's JSON.
            StateOutput::Poll(p @ PollOutput { .. }) => {
                serde_json::to_value(p).expect("json")["signal"]
                    .as_str()
                    .expect("a signal name")
                    .to_string()
            }
            other => panic!("expected a poll output, got {other:?}"),
        }
    }
}

fn side(version: &str, clusters: &[&str]) -> Value {
    json!({
        "version": version,
        "members": clusters.iter().map(|c| json!({"cluster": c})).collect::<Vec<_>>(),
    })
}

fn start_rollout() -> Value {
    json!({
        "kind": "startRollout",
        "stable": side("1.1.0", &["a1"]),
        "canary": side("1.2.0", &["b1"]),
        "plan": {"steps": [{"type": "setWeight", "weight": 10}, {"type": "setWeight", "weight": 100}]},
    })
}

#[tokio::test]
async fn begin_locks_and_returns_the_blocklist() {
    let w = world();
    w.execs.add("e1", "RUNNING");
    w.state
        .block(
            CELL,
            &okra_aws::state::Block {
                version: "1.2.0".into(),
                reason: "failed".into(),
                execution: "e0".into(),
                at: "x".into(),
            },
        )
        .await
        .expect("blocks");
    let out = w.begin("e1").await.expect("takes the lock");
    assert_eq!(
        serde_json::to_value(&out).expect("serializes"),
        json!({"blocklist": ["1.2.0"], "lockedBy": "e1"})
    );
    assert_eq!(
        w.state.lock_of(CELL).map(|l| l.execution).as_deref(),
        Some("e1")
    );
    // The same execution again (a retried task): fine.
    assert_eq!(w.begin("e1").await.expect("idempotent").locked_by, "e1");
}

#[tokio::test]
async fn a_second_execution_conflicts_while_the_first_runs_and_takes_over_once_it_finished() {
    let w = world();
    w.execs.add("e1", "RUNNING");
    w.execs.add("e2", "RUNNING");
    w.begin("e1").await.expect("e1 locks");

    let err = w.begin("e2").await.expect_err("e1 runs");
    assert!(matches!(err, OkraError::Conflict(..)), "{err:?}");
    assert_eq!(err.error_type(), "Conflict");
    assert!(err.to_string().contains("e1"), "names the holder: {err}");
    assert_eq!(
        w.state.lock_of(CELL).map(|l| l.execution).as_deref(),
        Some("e1")
    );

    w.execs.set_status("e1", "SUCCEEDED");
    let out = w.begin("e2").await.expect("e1 is done: e2 takes over");
    assert_eq!(out.locked_by, "e2");
    assert_eq!(out.took_over_from.as_deref(), Some("e1"));
    assert_eq!(
        w.state.lock_of(CELL).map(|l| l.execution).as_deref(),
        Some("e2")
    );
}

#[tokio::test]
async fn a_lock_of_an_unknown_execution_is_taken_over() {
    let w = world();
    w.state.set_lock(
        CELL,
        Some(okra_aws::state::Lock {
            execution: "ghost".into(),
            version: "1.0.0".into(),
            acquired_at: "x".into(),
        }),
    );
    let out = w.begin("e2").await.expect("takes over");
    assert_eq!(out.took_over_from.as_deref(), Some("ghost"));
}

/// DescribeExecution is eventually consistent (API reference): a lock taken a moment ago by an
/// execution Step Functions does not show yet is presumed alive; after the grace, taken over.
#[tokio::test]
async fn a_lock_just_taken_by_an_execution_not_found_yet_is_presumed_alive() {
    let w = world();
    let lock = |ago: std::time::Duration| okra_aws::state::Lock {
        execution: "new".into(),
        version: "1.0.0".into(),
        acquired_at: okra_aws::state::rfc3339(std::time::SystemTime::now() - ago),
    };
    w.state
        .set_lock(CELL, Some(lock(std::time::Duration::from_secs(2))));
    let busy = w.begin("e2").await.expect_err("busy");
    assert!(
        busy.to_string().contains("locked by execution new"),
        "{busy}"
    );
    w.state.set_lock(
        CELL,
        Some(lock(
            okra_core::record::LOCK_GRACE + std::time::Duration::from_secs(1),
        )),
    );
    let out = w.begin("e2").await.expect("takes over");
    assert_eq!(out.took_over_from.as_deref(), Some("new"));
}

#[tokio::test]
async fn started_records_once_and_names_the_versions() {
    let w = world();
    w.begin("e1").await.expect("locks");
    let input =
        json!({"action": "started", "cell": CELL, "execution": "e1", "decision": start_rollout()});
    assert!(w.record(input.clone(), t(1)).await);
    assert!(!w.record(input, t(2)).await, "a replay records nothing");

    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(
        (r.from.as_deref(), r.to.as_str(), r.status.as_str()),
        (Some("1.1.0"), "1.2.0", "running")
    );
    assert_eq!(r.history.len(), 1);
    assert_eq!(w.events.kinds(), ["Rollout Started"]);
    assert_eq!(w.events.events()[0].detail["to"], "1.2.0");
    assert_eq!(
        w.state.lock_of(CELL).map(|l| l.version).as_deref(),
        Some("1.2.0")
    );
}

#[tokio::test]
async fn a_replayed_step_is_recorded_once() {
    let w = world();
    w.begin("e1").await.expect("locks");
    w.record(
        json!({"action": "started", "cell": CELL, "execution": "e1", "decision": start_rollout()}),
        t(1),
    )
    .await;
    let step = json!({"action": "step", "cell": {"name": CELL}, "execution": "e1", "index": 0, "weight": 10});
    assert!(w.record(step.clone(), t(2)).await);
    assert!(!w.record(step, t(3)).await);
    assert!(
        w.record(json!({"action": "step", "cell": CELL, "execution": "e1", "index": 1, "event": "paused"}), t(4))
            .await
    );

    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    let events: Vec<(&str, Option<usize>)> = r
        .history
        .iter()
        .map(|h| (h.event.as_str(), h.step))
        .collect();
    assert_eq!(
        events,
        [
            ("started", None),
            ("stepDone", Some(0)),
            ("paused", Some(1))
        ]
    );
    assert_eq!(r.weight, 10);
    assert_eq!(
        w.events.kinds(),
        ["Rollout Started", "Rollout Step Done", "Rollout Paused"]
    );
    // Each event names the versions, read alone (a notification).
    for e in w.events.events() {
        assert_eq!(
            (e.detail["from"].as_str(), e.detail["to"].as_str()),
            (Some("1.1.0"), Some("1.2.0")),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn a_step_of_an_unknown_rollout_is_not_found() {
    let w = world();
    let err = w
        .call(json!({"action": "step", "cell": CELL, "execution": "nope", "index": 0}))
        .await
        .expect_err("no record");
    assert_eq!(err.error_type(), "NotFound");
}

#[tokio::test]
async fn finish_with_block_blocks_the_version_and_releases_the_lock() {
    let w = world();
    w.rolling_out("e1").await;
    let cause = r#"{"errorType":"AnalysisFailed","errorMessage":"error rate 7 %\n> 5 %"}"#;
    let finish = json!({
        "action": "finish", "cell": CELL, "execution": "e1", "outcome": "rolledBack",
        "version": "1.2.0", "block": true, "reason": {"Error": "AnalysisFailed", "Cause": cause},
    });
    let out = w.finish(finish.clone(), t(5)).await;
    assert_eq!(
        out,
        FinishOutput {
            outcome: Outcome::RolledBack,
            blocked: Some("1.2.0".into()),
            recorded: true,
            released: true,
            reason: Some("AnalysisFailed: error rate 7 % > 5 %".into()),
        }
    );
    let blocks = w.state.blocklist(CELL).await.expect("reads");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].reason, "AnalysisFailed: error rate 7 % > 5 %");
    assert_eq!(w.state.lock_of(CELL), None);

    // A replay: same block, one history entry, one event.
    let again = w.finish(finish, t(6)).await;
    assert!(!again.recorded);
    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(r.status, "rolledBack");
    assert_eq!(r.weight, 0);
    assert_eq!(
        r.history.iter().filter(|h| h.event == "rolledBack").count(),
        1
    );
    assert_eq!(w.events.kinds(), ["Rollout Started", "Rollout Rolled Back"]);
    assert_eq!(w.state.blocklist(CELL).await.expect("reads").len(), 1);

    // The next execution sees the blocklist.
    w.execs.add("e2", "RUNNING");
    assert_eq!(w.begin("e2").await.expect("locks").blocklist, ["1.2.0"]);
}

#[tokio::test]
async fn finish_promoted_and_nothing_to_do() {
    let w = world();
    w.begin("e1").await.expect("locks");
    w.record(
        json!({"action": "started", "cell": CELL, "execution": "e1", "decision": start_rollout()}),
        t(1),
    )
    .await;
    let out = w
        .finish(json!({"action": "finish", "cell": CELL, "execution": "e1", "outcome": "promoted", "version": "1.2.0"}), t(9))
        .await;
    assert_eq!((out.blocked, out.recorded), (None, true));
    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!((r.status.as_str(), r.weight), ("promoted", 100));
    assert_eq!(w.events.kinds(), ["Rollout Started", "Rollout Promoted"]);

    // nothingToDo: the lock goes, nothing is recorded or sent.
    w.begin("e2").await.expect("locks");
    let out = w
        .finish(
            json!({"action": "finish", "cell": CELL, "execution": "e2", "outcome": "nothingToDo"}),
            t(10),
        )
        .await;
    assert!(!out.recorded && out.released);
    assert_eq!(w.state.lock_of(CELL), None);
    assert_eq!(w.state.get_rollout(CELL, "e2").await.expect("reads"), None);
    assert_eq!(w.events.kinds().len(), 2);
}

#[tokio::test]
async fn a_failure_before_started_still_leaves_a_record() {
    let w = world();
    w.begin("e1").await.expect("locks");
    let out = w
        .finish(
            json!({"action": "finish", "cell": CELL, "execution": "e1", "outcome": "failed",
                   "reason": "States.TaskFailed: discover-clusters timed out"}),
            t(3),
        )
        .await;
    assert!(out.recorded);
    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(r.status, "failed");
    assert_eq!(
        r.history[0].detail["reason"],
        "States.TaskFailed: discover-clusters timed out"
    );
    assert_eq!(w.events.kinds(), ["Rollout Failed"]);
}

#[tokio::test]
async fn poll_consumes_a_signal_once() {
    let w = world();
    assert_eq!(w.poll("e1").await, "none");
    w.state
        .put_signal(CELL, "e1", Signal::PromoteFull)
        .await
        .expect("puts");
    assert_eq!(w.poll("e1").await, "promoteFull");
    assert_eq!(w.poll("e1").await, "none");
    w.state
        .put_signal(CELL, "e1", Signal::Resume)
        .await
        .expect("puts");
    w.state
        .put_signal(CELL, "e1", Signal::Abort)
        .await
        .expect("puts");
    assert_eq!(w.poll("e1").await, "abort", "the last signal wins");
}

#[tokio::test]
async fn bad_input_is_invalid_input() {
    let w = world();
    for bad in [
        json!({"action": "launch", "cell": CELL, "execution": "e"}),
        json!({"action": "step", "cell": CELL, "execution": "e"}),
        json!({"action": "finish", "cell": CELL, "execution": "e", "outcome": "exploded"}),
        json!({"cell": CELL}),
    ] {
        let err = w.call(bad.clone()).await.expect_err("refused");
        assert_eq!(err.error_type(), "InvalidInput", "{bad}: {err}");
    }
    let err = w
        .call(json!({"action": "started", "cell": CELL, "execution": "e", "decision": {"kind": "nothingToDo", "reason": "x"}}))
        .await
        .expect_err("refused");
    assert_eq!(err.error_type(), "InvalidInput");
}

#[tokio::test]
async fn transient_faults_surface_for_step_functions_to_retry() {
    let w = world();
    w.begin("e1").await.expect("locks");
    w.record(
        json!({"action": "started", "cell": CELL, "execution": "e1", "decision": start_rollout()}),
        t(1),
    )
    .await;
    w.events.meter.throttle_next("put", 1);
    let step = json!({"action": "step", "cell": CELL, "execution": "e1", "index": 0, "weight": 10});
    let err = w.call_at(step.clone(), t(2)).await.expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
    // The retry records the step and sends its event: none lost, none doubled.
    assert!(w.record(step, t(3)).await);
    assert_eq!(w.events.kinds(), ["Rollout Started", "Rollout Step Done"]);
}

/// A "Step Functions Execution Status Change" event as EventBridge delivers it (developer guide,
/// "Automating Step Functions event delivery with EventBridge").
fn status_change(execution: &str, status: &str) -> Value {
    json!({
        "version": "0", "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "123456789012", "time": "2026-12-03T12:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:states:us-east-1:123456789012:execution:okra-rollout:{execution}")],
        "detail": {
            "executionArn": format!("arn:aws:states:us-east-1:123456789012:execution:okra-rollout:{execution}"),
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:okra-rollout",
            "name": execution, "status": status,
            "startDate": 1_780_000_000_000_u64, "stopDate": 1_780_000_060_000_u64,
            "input": json!({"cell": {"name": CELL}, "trigger": "schedule"}).to_string(),
            "inputDetails": {"included": true}, "output": null, "outputDetails": null,
            "error": "States.Runtime", "cause": "history quota",
        },
    })
}

#[tokio::test]
async fn the_finalizer_records_an_execution_that_ended_holding_the_lock_and_frees_the_cell() {
    let w = world();
    w.rolling_out("e1").await;
    w.execs.set_status("e1", "FAILED");
    let ended = w.ended("e1", "FAILED").await;
    assert!(ended.finalized, "{ended:?}");
    assert!(ended.reason.contains("FAILED") && ended.reason.contains("States.Runtime"));
    assert_eq!(w.state.lock_of(CELL), None);
    assert_eq!(w.state.generation(CELL).await.expect("reads"), 1);
    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(r.status, "failed");
    assert!(
        w.state.blocklist(CELL).await.expect("reads").is_empty(),
        "nothing blocked"
    );

    // EventBridge delivers at least once: a second delivery changes nothing.
    let again = w.ended("e1", "FAILED").await;
    assert!(!again.finalized);
    assert_eq!(w.state.generation(CELL).await.expect("reads"), 1);
}

/// A SUCCEEDED execution whose last bookkeeping did not finish (it still holds the lock): the
/// finalizer's rule matches SUCCEEDED too, and the cell is freed.
#[tokio::test]
async fn the_finalizer_frees_a_cell_a_succeeded_execution_still_holds() {
    let w = world();
    w.execs.add("e1", "RUNNING");
    w.begin("e1").await.expect("locks");
    w.execs.set_status("e1", "SUCCEEDED");
    let ended = w.ended("e1", "SUCCEEDED").await;
    assert!(ended.finalized, "{ended:?}");
    assert!(
        ended.reason.contains("SUCCEEDED still holding"),
        "{}",
        ended.reason
    );
    assert_eq!(w.state.lock_of(CELL), None);
    // The usual case: a SUCCEEDED execution released its lock; nothing to do.
    let again = w.ended("e1", "SUCCEEDED").await;
    assert!(!again.finalized);
}

#[tokio::test]
async fn the_finalizer_leaves_a_cell_another_execution_holds() {
    let w = world();
    w.execs.add("holder", "RUNNING");
    w.begin("holder").await.expect("locks");
    let out = w.ended("second", "FAILED").await;
    assert!(!out.finalized);
    assert_eq!(
        w.state.lock_of(CELL).map(|l| l.execution),
        Some("holder".to_string())
    );
}

/// A timed pause is a callback whose time-out is the pause: its end is kept from its first
/// callback on, an answer that is no signal leaves it the time it has left, and the step's
/// record ends the wait (the API then refuses resume: nothing waits).
#[tokio::test]
async fn a_timed_pause_keeps_its_end_and_a_recorded_step_ends_the_wait() {
    let w = world();
    w.execs.add("e1", "RUNNING");
    w.call(
        json!({"action": "started", "cell": CELL, "execution": "e1", "decision": start_rollout()}),
    )
    .await
    .expect("starts");
    let pause = |token: &str| {
        json!({"action": "await", "cell": CELL, "execution": "e1", "token": token,
            "wait": "pause", "step": 1, "seconds": 3600})
    };
    w.call_at(pause("tok-1"), t(0)).await.expect("waits");
    let wait = w
        .state
        .get_wait(CELL, "e1")
        .await
        .expect("reads")
        .expect("a wait");
    assert_eq!((wait.kind, wait.step), (WaitKind::Pause, Some(1)));
    let until = wait.until.clone().expect("an end");
    assert_eq!(wait.left(t(0)), Some(3600));

    // Answered 10 minutes in without a signal (`{}`): the pause goes on, to the same end.
    let out = w
        .call_at(
            json!({"action": "poll", "cell": CELL, "execution": "e1", "answer": {},
                "step": 1, "wake": 0}),
            t(600),
        )
        .await
        .expect("polls");
    assert_eq!(
        serde_json::to_value(out).expect("serializes"),
        json!({"signal": "none", "left": 3000})
    );
    w.call_at(pause("tok-2"), t(601)).await.expect("waits");
    let again = w
        .state
        .get_wait(CELL, "e1")
        .await
        .expect("reads")
        .expect("a wait");
    assert_eq!(
        (again.token.as_str(), again.until.clone()),
        ("tok-2", Some(until))
    );
    // Past its end, nothing is left.
    assert_eq!(again.left(t(3600)), None);

    // The step recorded: the rollout waits no more.
    w.call(json!({"action": "step", "cell": CELL, "execution": "e1", "index": 1, "weight": 30}))
        .await
        .expect("records");
    assert_eq!(w.state.get_wait(CELL, "e1").await.expect("reads"), None);
}

#[tokio::test]
async fn await_keeps_the_token_and_answers_at_once_when_a_signal_is_waiting() {
    let w = world();
    w.execs.add("e1", "RUNNING");
    let out = w
        .call(json!({"action": "await", "cell": CELL, "execution": "e1", "token": "tok-1"}))
        .await
        .expect("waits");
    assert_eq!(
        serde_json::to_value(out).expect("serializes"),
        json!({"answered": false})
    );
    assert_eq!(
        w.state
            .get_wait(CELL, "e1")
            .await
            .expect("reads")
            .map(|w| (w.token, w.kind)),
        Some(("tok-1".to_string(), WaitKind::Person))
    );
    assert!(w.execs.task_results().is_empty());

    // A signal left before the next wait began answers that wait's callback.
    w.state
        .put_signal(CELL, "e1", Signal::Resume)
        .await
        .expect("puts");
    w.call(json!({"action": "await", "cell": CELL, "execution": "e1", "token": "tok-2"}))
        .await
        .expect("waits");
    assert_eq!(
        w.execs.task_results(),
        vec![("tok-2".to_string(), json!({"signal": "resume"}))]
    );
}

#[tokio::test]
async fn a_continued_rollout_is_recorded_and_frees_the_cell_without_an_event() {
    let w = world();
    w.rolling_out("e1").await;
    let out = w
        .finish(
            json!({"action": "finish", "cell": CELL, "execution": "e1", "outcome": "continued",
                   "reason": "the history quota"}),
            t(2),
        )
        .await;
    assert!(out.recorded && out.released);
    assert_eq!(w.state.lock_of(CELL), None);
    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(r.status, "continued");
    assert_eq!(w.events.kinds(), ["Rollout Started"]);
}

/// A stop (StopExecution: the console, the CLI) is an abort: the finalizer holds the version
/// and starts a rollback execution with the stopped one's input, which sends the traffic back.
#[tokio::test]
async fn a_stopped_execution_is_an_abort_its_version_held_and_a_rollback_started() {
    let w = world();
    w.rolling_out("e1").await;
    w.execs.set_status("e1", "ABORTED");
    let ended = w.ended("e1", "ABORTED").await;
    assert!(ended.finalized, "{ended:?}");
    assert!(
        ended.reason.contains("a stop is an abort"),
        "{}",
        ended.reason
    );
    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(r.status, "failed");
    let held: Vec<String> = w
        .state
        .blocklist(CELL)
        .await
        .expect("reads")
        .into_iter()
        .map(|b| b.version)
        .collect();
    assert_eq!(
        held,
        vec![r.to.clone()],
        "the version is held until a retry"
    );
    assert_eq!(w.state.lock_of(CELL), None);
    let started = w.execs.executions();
    let rollback = started.last().expect("a rollback execution");
    assert_eq!(
        rollback.name,
        okra_core::naming::execution_name(CELL, "stopped", 1)
    );
    assert_eq!(rollback.input["trigger"], "stopped");
    assert_eq!(rollback.input["labels"]["stopped"], "e1");
    assert_eq!(rollback.input["cell"]["name"], CELL);

    // A second delivery starts nothing more.
    let n = w.execs.executions().len();
    w.call(status_change("e1", "ABORTED")).await.expect("runs");
    assert_eq!(w.execs.executions().len(), n);
}

/// A status change event EventBridge never delivered: the next execution that takes the
/// stale lock over records the ended one as the event would have (a stop holds its version).
#[tokio::test]
async fn taking_over_a_stale_lock_finalizes_the_execution_that_held_it() {
    let w = world();
    w.rolling_out("e1").await;
    w.execs.set_status("e1", "ABORTED");
    w.execs.add("e2", "RUNNING");
    let out = w.begin("e2").await.expect("takes over");
    assert_eq!(out.took_over_from.as_deref(), Some("e1"));
    let r = w
        .state
        .get_rollout(CELL, "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(r.status, "failed", "recorded, not left running");
    assert_eq!(
        out.blocklist,
        vec![r.to.clone()],
        "the stop held its version"
    );
}

/// A failure that does not block (here a readiness time-out, as the state machine finishes it:
/// no version in the input, the lock names it) is an automatic attempt: counted once per
/// execution, and at the spec's `maxAttempts` the version is held as failing.
#[tokio::test]
async fn failures_that_do_not_block_are_counted_and_hold_the_version_at_max_attempts() {
    let w = world();
    let spec = json!({"name": CELL, "maxAttempts": 2});
    let timed_out = |execution: &str| {
        json!({"action": "finish", "cell": spec, "execution": execution, "outcome": "failed",
            "block": false, "reason": "the new target groups did not meet the readiness gate in time; no traffic moved"})
    };
    w.rolling_out("e1").await;
    let first = w.finish(timed_out("e1"), t(2)).await;
    assert_eq!(first.blocked, None);
    // Step Functions may run the task twice: counted once.
    w.finish(timed_out("e1"), t(3)).await;
    let f = w
        .state
        .failures(CELL, "1.2.0")
        .await
        .expect("reads")
        .expect("failures");
    assert_eq!(f.count, 1);
    assert!(f.last_reason.contains("readiness gate"), "{f:?}");

    w.rolling_out("e2").await;
    let second = w.finish(timed_out("e2"), t(4)).await;
    assert_eq!(second.blocked.as_deref(), Some("1.2.0"), "held at 2 of 2");
    let reason = second.reason.unwrap_or_default();
    assert!(
        reason.starts_with("failing: 2 automatic attempt(s) failed"),
        "{reason}"
    );
    let blocks = w.state.blocklist(CELL).await.expect("reads");
    assert!(blocks[0].reason.starts_with("failing:"), "{blocks:?}");
    assert!(w.events.kinds().contains(&"Rollout Failed".to_string()));

    // A retry forgets the failures with the block.
    w.state.unblock(CELL, "1.2.0").await.expect("unblocks");
    assert_eq!(w.state.failures(CELL, "1.2.0").await.expect("reads"), None);
}

/// A wait with a background analysis sampled by a schedule: `await` keeps the request and makes
/// the schedule (its first sample an interval on, its end the pause's); the same wait's next
/// callback keeps the samples taken; `endSamples` reads the latest back and deletes the schedule.
#[tokio::test]
async fn a_sampled_wait_makes_its_schedule_and_gives_its_samples_back() {
    let w = world();
    w.execs.add("e1", "RUNNING");
    let pause = |token: &str| {
        json!({"action": "await", "cell": CELL, "execution": "e1", "token": token,
            "wait": "pause", "step": 1, "seconds": 600,
            "samples": {"schedule": "rate(1 minute)", "intervalSeconds": 60,
                        "request": {"cell": {"name": CELL}, "templates": ["errors"]},
                        "previous": [{"name": "e"}]}})
    };
    w.call_at(pause("tok-1"), t(0)).await.expect("waits");
    let name = okra_core::schedule::schedule_name(CELL, "e1", Some(1));
    let made = w.schedules.schedules();
    let s = made.get(&name).expect("the schedule");
    assert_eq!(s.expression, "rate(1 minute)");
    assert_eq!(s.start, t(60), "the first sample an interval on");
    assert_eq!(s.end, t(600), "none after the pause");
    assert_eq!(s.input["scheduledSample"]["execution"], "e1");
    assert_eq!(s.input["scheduledSample"]["step"], 1);
    let wait = w
        .state
        .get_wait(CELL, "e1")
        .await
        .expect("reads")
        .expect("a wait");
    let samples = wait.samples.clone().expect("samples");
    assert_eq!(samples.latest, json!({"metrics": [{"name": "e"}]}));

    // Two samples taken meanwhile.
    let taken = okra_aws::state::WaitSamples {
        latest: json!({"phase": "Running", "reason": "r", "metrics": [{"name": "e", "n": 2}]}),
        taken: 2,
        last: Some("2026-01-01T00:02:00Z".into()),
        ..samples
    };
    assert!(
        w.state
            .record_sample(CELL, "e1", "tok-1", &taken)
            .await
            .expect("records")
    );
    assert!(
        !w.state
            .record_sample(CELL, "e1", "tok-0", &taken)
            .await
            .expect("reads"),
        "another callback's sample is not stored"
    );
    // The same pause's next callback (answered without a signal): the samples go on.
    w.call_at(pause("tok-2"), t(100))
        .await
        .expect("waits again");
    let wait = w
        .state
        .get_wait(CELL, "e1")
        .await
        .expect("reads")
        .expect("a wait");
    assert_eq!(wait.samples.as_ref().map(|s| s.taken), Some(2));
    assert_eq!(w.schedules.schedules()[&name].end, t(600), "the same end");

    let end = json!({"action": "endSamples", "cell": CELL, "execution": "e1", "step": 1,
                     "current": {"metrics": []}});
    let out = w.call(end.clone()).await.expect("ends");
    assert_eq!(
        serde_json::to_value(out).expect("serializes"),
        json!({"phase": "Running", "reason": "r", "metrics": [{"name": "e", "n": 2}]})
    );
    assert!(w.schedules.schedules().is_empty(), "deleted");
    // Run again (Step Functions may): the same answer, nothing to delete.
    let again = w.call(end).await.expect("ends again");
    assert_eq!(
        serde_json::to_value(again).expect("serializes")["reason"],
        "r"
    );
}

#[tokio::test]
async fn a_sampled_wait_without_samples_gives_the_state_machines_own_back() {
    let w = world();
    w.execs.add("e1", "RUNNING");
    w.state
        .put_signal(CELL, "e1", Signal::Resume)
        .await
        .expect("puts");
    let wait = json!({"action": "await", "cell": CELL, "execution": "e1", "token": "tok",
        "wait": "person", "step": 3,
        "samples": {"schedule": "rate(5 minutes)", "intervalSeconds": 300,
                    "request": {}, "previous": []}});
    w.call(wait).await.expect("waits");
    assert!(
        w.schedules.schedules().is_empty(),
        "a signal already there answers the wait: no schedule"
    );
    let out = w
        .call(
            json!({"action": "endSamples", "cell": CELL, "execution": "e1", "step": 3,
                     "current": {"phase": "Successful", "metrics": []}}),
        )
        .await
        .expect("ends");
    assert_eq!(
        serde_json::to_value(out).expect("serializes"),
        json!({"phase": "Successful", "metrics": []})
    );
}
