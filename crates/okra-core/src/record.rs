//! What `rollout-state` records, decided: who may hold a cell's lock, what a decision's rollout
//! goes from and to, what a step's history entry says, and failure reasons in one line.

use serde_json::{Value, json};

use crate::decision::{Decision, Side};
use crate::health::Excluded;
use crate::vocab::ExecutionStatus;

/// Reasons are cut to this many characters.
pub const MAX_REASON: usize = 1000;

/// The execution that holds a cell's lock, as Step Functions knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// It runs: the cell is busy.
    Live,
    /// It ended (or Step Functions does not know it): its lock is stale, and the next
    /// execution takes it over.
    Stale,
}

/// How long a lock is presumed alive after it was taken when Step Functions does not know its
/// execution: the API reference calls DescribeExecution eventually consistent, so an execution
/// that has just started (and taken the lock in its first state) may not be found yet. A status
/// Step Functions shows (ended) is taken as it is.
pub const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A lock holder's state from its execution's status (`None`: no such execution, as far as
/// DescribeExecution knows) and how long the lock has been held (`None`: unknown).
pub fn holder(status: Option<&str>, held_for: Option<std::time::Duration>) -> Holder {
    match status {
        Some(s) if ExecutionStatus::is_running(s) => Holder::Live,
        Some(_) => Holder::Stale,
        None if held_for.is_some_and(|d| d < LOCK_GRACE) => Holder::Live,
        None => Holder::Stale,
    }
}

/// Why a cell is busy: its lock is held by a running execution.
pub fn busy(cell: &str, holder_execution: &str, version: &str, arn: &str) -> String {
    format!(
        "cell {cell} is locked by execution {holder_execution} (RUNNING{}{version}; {arn}), which \
         must finish first",
        if version.is_empty() {
            ""
        } else {
            ", rolling out "
        },
    )
}

fn label(side: &Side) -> String {
    side.version
        .clone()
        .unwrap_or_else(|| "unmanaged".to_string())
}

/// What a decision's rollout goes from and to, and the canary's weight now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// From which version (`None`: nothing served).
    pub from: Option<String>,
    /// To which version (`unmanaged` for target groups okra did not make).
    pub to: String,
    /// The canary's weight when the rollout starts.
    pub weight: u32,
}

/// The rollout a decision starts; `None` for nothing to do, which starts none.
pub fn versions(decision: &Decision) -> Option<Versions> {
    let v = |from: Option<&Side>, to: &Side, weight| Versions {
        from: from.map(label),
        to: label(to),
        weight,
    };
    Some(match decision {
        Decision::NothingToDo { .. } => return None,
        Decision::Initialize { target } => v(None, target, 0),
        Decision::StartRollout { stable, canary, .. } => v(Some(stable), canary, 0),
        Decision::ResumeRollout {
            stable,
            canary,
            canary_weight,
            ..
        } => v(Some(stable), canary, *canary_weight),
        Decision::Rollback { from, to, .. } => v(Some(from), to, 0),
        Decision::ScaleOut { serving, .. } | Decision::ScaleIn { serving, .. } => {
            v(Some(serving), serving, 100)
        }
    })
}

/// A step's history detail: the state machine's detail with the stable groups the step left
/// out for their health (`excluded`), when there are any.
pub fn step_detail(detail: Option<Value>, excluded: &[Excluded]) -> Value {
    if excluded.is_empty() {
        return detail.unwrap_or(Value::Null);
    }
    match detail {
        Some(Value::Object(mut m)) => {
            m.insert("excluded".into(), json!(excluded));
            Value::Object(m)
        }
        None | Some(Value::Null) => json!({ "excluded": excluded }),
        Some(other) => json!({ "value": other, "excluded": excluded }),
    }
}

/// What the finalizer records for an execution that ended still holding the cell's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedOutside {
    /// Why, in words.
    pub reason: String,
    /// Hold the version until a person retries it: a stopped execution (StopExecution, in the
    /// console, the CLI or the API) is an abort. Traffic goes back to the stable version in a
    /// rollback execution the dispatcher starts at once (a held version holding traffic).
    pub hold: bool,
}

/// How the finalizer records an execution that ended outside the state machine's own ends.
pub fn ended_outside(status: &str, error: Option<&str>, cause: Option<&str>) -> EndedOutside {
    if status == ExecutionStatus::Succeeded.as_ref() {
        return EndedOutside {
            reason: "the execution ended SUCCEEDED still holding the cell's lock (its last \
                     bookkeeping did not finish): the lock is released; traffic stays where its \
                     last verified step set it"
                .to_string(),
            hold: false,
        };
    }
    if status == ExecutionStatus::Aborted.as_ref() {
        let by = match cause.filter(|c| !c.trim().is_empty()) {
            Some(c) => format!(" ({})", readable_reason(&Value::String(c.to_string()))),
            None => String::new(),
        };
        return EndedOutside {
            reason: format!(
                "the execution was stopped (StopExecution){by}: a stop is an abort — traffic \
                 goes back to the stable version, verified, and the version is held until \
                 `okra rollout retry`"
            ),
            hold: true,
        };
    }
    let what = match (error, cause) {
        (Some(e), Some(c)) if !c.is_empty() => {
            format!("{e}: {}", readable_reason(&Value::String(c.to_string())))
        }
        (Some(e), _) => e.to_string(),
        _ => "no error given".to_string(),
    };
    EndedOutside {
        reason: format!(
            "the execution ended {status} outside the state machine's own ends ({what}); traffic \
             stays at the last verified step"
        ),
        hold: false,
    }
}

fn one_line(s: &str) -> String {
    let mut out = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > MAX_REASON {
        out = out.chars().take(MAX_REASON - 1).collect::<String>() + "…";
    }
    out
}

fn reason_of_object(m: &serde_json::Map<String, Value>) -> Option<String> {
    let text = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    // A Lambda function error: {"errorType", "errorMessage", "trace"?}.
    if let Some(msg) = text("errorMessage") {
        return Some(match text("errorType") {
            Some(t) if !msg.starts_with(t) => format!("{t}: {msg}"),
            _ => msg.to_string(),
        });
    }
    // A Catch's error output: {"Error", "Cause"}; the Cause may itself be a Lambda error.
    if let Some(cause) = text("Cause") {
        let c = readable_reason(&Value::String(cause.to_string()));
        return Some(match text("Error") {
            Some(e) if !c.starts_with(e) => format!("{e}: {c}"),
            _ => c,
        });
    }
    text("Error").map(str::to_string)
}

/// One readable line from a failure's reason: plain text; a Lambda error Cause
/// (`{"errorType": "DriftDetected", "errorMessage": "..."}`, as JSON text or parsed); a Catch's
/// `{"Error": ..., "Cause": ...}`; or aws-local-stepfunctions' `errorType: message` text.
pub fn readable_reason(reason: &Value) -> String {
    let line = match reason {
        Value::Null => String::new(),
        Value::String(s) => match serde_json::from_str::<Value>(s.trim()) {
            Ok(Value::Object(m)) => reason_of_object(&m).unwrap_or_else(|| s.clone()),
            _ => s.clone(),
        },
        Value::Object(m) => reason_of_object(m).unwrap_or_else(|| reason.to_string()),
        other => other.to_string(),
    };
    one_line(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_become_one_line() {
        let lambda = r#"{"errorType":"DriftDetected","errorMessage":"drift detected: the listener\nchanged","trace":[]}"#;
        assert_eq!(
            readable_reason(&json!(lambda)),
            "DriftDetected: drift detected: the listener changed"
        );
        assert_eq!(
            readable_reason(&json!({"Error": "DriftDetected", "Cause": lambda})),
            "DriftDetected: drift detected: the listener changed"
        );
        assert_eq!(
            readable_reason(&json!("AnalysisFailed: error rate 7 % > 5 %")),
            "AnalysisFailed: error rate 7 % > 5 %"
        );
        assert_eq!(
            readable_reason(&json!({"Error": "States.Timeout"})),
            "States.Timeout"
        );
        let long = "x ".repeat(2000);
        assert_eq!(readable_reason(&json!(long)).chars().count(), MAX_REASON);
    }

    #[test]
    fn only_a_running_holder_keeps_its_lock() {
        assert_eq!(holder(Some("RUNNING"), None), Holder::Live);
        for ended in [
            "SUCCEEDED",
            "FAILED",
            "TIMED_OUT",
            "ABORTED",
            "PENDING_REDRIVE",
        ] {
            assert_eq!(holder(Some(ended), None), Holder::Stale, "{ended}");
        }
        assert_eq!(holder(None, None), Holder::Stale);
        assert_eq!(
            busy("web", "web--1", "1.2.0", "arn:x"),
            "cell web is locked by execution web--1 (RUNNING, rolling out 1.2.0; arn:x), which \
             must finish first"
        );
    }

    #[test]
    fn nothing_to_do_starts_no_rollout() {
        assert_eq!(
            versions(&Decision::NothingToDo { reason: "x".into() }),
            None
        );
        let side = |v: &str| Side {
            version: Some(v.into()),
            members: Vec::new(),
        };
        assert_eq!(
            versions(&Decision::ScaleOut {
                serving: side("1.0.0"),
                added: vec!["c".into()],
                left: vec![]
            }),
            Some(Versions {
                from: Some("1.0.0".into()),
                to: "1.0.0".into(),
                weight: 100
            })
        );
        let unmanaged = Side {
            version: None,
            members: Vec::new(),
        };
        assert_eq!(
            versions(&Decision::Rollback {
                from: unmanaged,
                to: side("1.0.0"),
                reason: "r".into()
            })
            .map(|v| v.from),
            Some(Some("unmanaged".into()))
        );
    }

    #[test]
    fn excluded_groups_join_the_step_detail() {
        let ex = vec![Excluded {
            target_group_arn: "tg".into(),
            reason: "0/2 healthy".into(),
        }];
        assert_eq!(step_detail(None, &[]), Value::Null);
        assert_eq!(step_detail(Some(json!({"a": 1})), &[]), json!({"a": 1}));
        assert_eq!(
            step_detail(Some(json!({"a": 1})), &ex),
            json!({"a": 1, "excluded": ex})
        );
        assert_eq!(step_detail(None, &ex), json!({ "excluded": ex }));
        assert_eq!(
            step_detail(Some(json!(3)), &ex),
            json!({"value": 3, "excluded": ex})
        );
    }

    #[test]
    fn an_execution_ended_outside_says_how() {
        let stopped = ended_outside("ABORTED", None, Some("by alice"));
        assert!(stopped.hold, "a stop is an abort: the version is held");
        assert_eq!(
            stopped.reason,
            "the execution was stopped (StopExecution) (by alice): a stop is an abort — traffic \
             goes back to the stable version, verified, and the version is held until `okra \
             rollout retry`"
        );
        let failed = ended_outside("FAILED", Some("States.Runtime"), Some("bad path"));
        assert!(!failed.hold);
        assert!(failed.reason.contains("(States.Runtime: bad path)"));
        assert!(!ended_outside("SUCCEEDED", None, None).hold);
    }
}

#[cfg(test)]
mod holder_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_execution_step_functions_does_not_know_yet_is_presumed_alive_for_a_while() {
        let just = Some(Duration::from_secs(5));
        let long = Some(Duration::from_secs(600));
        assert_eq!(holder(Some("RUNNING"), long), Holder::Live);
        assert_eq!(holder(None, just), Holder::Live, "eventually consistent");
        assert_eq!(holder(None, long), Holder::Stale);
        assert_eq!(holder(None, None), Holder::Stale);
        assert_eq!(
            holder(Some("FAILED"), just),
            Holder::Stale,
            "an end it shows is real"
        );
    }
}
