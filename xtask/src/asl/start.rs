//! The start of every execution (counters, the lock, discovery and its decision) and the one-write paths (initialize, scale out or in, roll back to a pinned version).

use super::*;

pub(super) fn decide() -> Value {
    let to = |k: DecisionKind, next: &str| json!({"Variable": "$.discovery.decision.kind", "StringEquals": k, "Next": next});
    json!({"Type": "Choice", "Choices": [
        to(DecisionKind::NothingToDo, "FinishNothingToDo"),
        to(DecisionKind::Initialize, "EnsureInitialTargetGroups"),
        to(DecisionKind::ScaleOut, "EnsureScaleOutTargetGroups"),
        to(DecisionKind::ScaleIn, "EnsureScaleInTargetGroups"),
        to(DecisionKind::Rollback, "EnsureRollbackTargetGroups"),
        to(DecisionKind::StartRollout, "RecordStarted"),
        to(DecisionKind::ResumeRollout, "RecordStarted")],
        "Default": "UnknownDecision"})
}

/// The start: counters, the lock, discovery and its decision.
pub(super) fn begin(s: &mut Map<String, Value>) {
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

/// One-write paths: initialize, scale out or in, roll back to a pinned lower version.
pub(super) fn one_write(s: &mut Map<String, Value>) {
    s.insert(
        "EnsureInitialTargetGroups".into(),
        ensure("$.discovery.decision.target", "StandInitialGroupsBy", None),
    );
    s.insert(
        "EnsureScaleOutTargetGroups".into(),
        ensure("$.discovery.decision.serving", "StandInitialGroupsBy", None),
    );
    s.insert(
        "EnsureScaleInTargetGroups".into(),
        ensure(
            "$.discovery.decision.serving",
            "StandInitialGroupsBy",
            Some(
                "Groups whose cluster is gone or left the version leave: the version's other groups, healthy, take everything.",
            ),
        ),
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
                "Initialize, scale out or in: everything to the version's target groups, evenly, in one write.",
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
