//! What answered a wait for a person. A wait is a callback task
//! (`lambda:invoke.waitForTaskToken`): okra's API answers it after storing the person's signal,
//! and any holder of the task token may answer it with `SendTaskSuccess` and an output such as
//! `{"signal": "resume"}` (the AWS CLI, an SDK, a chat bot given the token). Both count: a
//! stored signal first (the API's, with who sent it), else the callback's own output, read here.

use serde_json::Value;

use crate::vocab::{Signal, WaitKind};

/// Who gave a signal taken from a callback's output without `by`.
pub const TOKEN_HOLDER: &str = "a holder of the wait's task token (SendTaskSuccess)";

/// A wait's callback output, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// No answer to read: the wait ended by its own time-out (`States.Timeout`, a background
    /// sample is due), or its output names no signal (the API's answer is its stored signal).
    Nothing,
    /// A signal, and who gave it (`by` in the output, else [`TOKEN_HOLDER`]).
    Signal {
        /// The signal.
        signal: Signal,
        /// Who gave it.
        by: String,
    },
    /// An output whose `signal` is not one: ignored (the wait goes on), and the reason kept.
    Invalid(String),
}

/// Reads a callback's output (the task's result, or its Catch's error object).
pub fn read(output: Option<&Value>) -> Answer {
    let Some(Value::Object(o)) = output else {
        return Answer::Nothing;
    };
    if o.contains_key("Error") {
        return Answer::Nothing; // the wait's own time-out, caught
    }
    let Some(signal) = o.get("signal") else {
        return Answer::Nothing;
    };
    let by = match o.get("by") {
        Some(Value::String(b)) if !b.trim().is_empty() => b.chars().take(200).collect(),
        _ => TOKEN_HOLDER.to_string(),
    };
    match serde_json::from_value::<Signal>(signal.clone()) {
        Ok(signal) => Answer::Signal { signal, by },
        Err(_) => {
            let text: String = signal.to_string().chars().take(100).collect();
            Answer::Invalid(format!(
                "signal {text} is none of resume, promote, promoteFull, abort"
            ))
        }
    }
}

/// Whether `signal` can act where a running rollout is: `wait` is the wait it is in (`None`:
/// between waits — a weight step, the readiness gate, a sample). `abort` and `promoteFull` act
/// anywhere (taken at the wait, else after the step under way); `resume` ends a pause;
/// `promote` ends a pause or skips the rest of an analysis. `Err` says why not, for a 409: the
/// signal is then not stored, so that it cannot act later where nobody meant it to.
pub fn acts(signal: Signal, wait: Option<WaitKind>) -> Result<(), String> {
    let ok = match signal {
        Signal::Abort | Signal::PromoteFull => true,
        Signal::Resume => matches!(wait, Some(WaitKind::Person | WaitKind::Pause)),
        // A closed deployment window holds everything but an abort and promote-full.
        Signal::Promote => wait.is_some_and(|w| w != WaitKind::Window),
    };
    if ok {
        return Ok(());
    }
    let where_ = match wait {
        None => "it is not waiting (a weight step, the readiness gate or a sample is under way)",
        Some(WaitKind::Analysis) => "it is analysing, not paused",
        Some(WaitKind::Person | WaitKind::Pause) => "it is paused",
        Some(WaitKind::Window) => {
            "its deployment window is closed (`okra rollout status` says until when); only \
             abort and promote-full act in a closed window"
        }
    };
    let hint = match signal {
        Signal::Resume => {
            "resume ends a pause; promote ends a pause or an analysis, promote-full skips every              remaining step, abort rolls back"
        }
        _ => {
            "promote ends a pause or an analysis; promote-full skips every remaining step,              abort rolls back"
        }
    };
    Err(format!("{signal} cannot act now: {where_}; {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_callback_s_output_is_a_signal_with_who_gave_it() {
        assert_eq!(
            read(Some(&json!({"signal": "resume"}))),
            Answer::Signal {
                signal: Signal::Resume,
                by: TOKEN_HOLDER.into()
            }
        );
        assert_eq!(
            read(Some(
                &json!({"signal": "promoteFull", "by": "chatops:alice"})
            )),
            Answer::Signal {
                signal: Signal::PromoteFull,
                by: "chatops:alice".into()
            }
        );
    }

    #[test]
    fn a_signal_acts_only_where_it_means_something() {
        use WaitKind::*;
        for w in [None, Some(Person), Some(Pause), Some(Analysis)] {
            assert_eq!(acts(Signal::Abort, w), Ok(()));
            assert_eq!(acts(Signal::PromoteFull, w), Ok(()));
        }
        assert_eq!(acts(Signal::Resume, Some(Person)), Ok(()));
        assert_eq!(acts(Signal::Resume, Some(Pause)), Ok(()));
        let why = acts(Signal::Resume, Some(Analysis)).unwrap_err();
        assert!(
            why.starts_with("resume cannot act now: it is analysing"),
            "{why}"
        );
        assert!(
            acts(Signal::Resume, None)
                .unwrap_err()
                .contains("not waiting")
        );
        assert_eq!(acts(Signal::Promote, Some(Analysis)), Ok(()));
        assert_eq!(acts(Signal::Promote, Some(Pause)), Ok(()));
        assert!(acts(Signal::Promote, None).is_err());
    }

    #[test]
    fn time_outs_and_outputs_without_a_signal_are_nothing() {
        assert_eq!(read(None), Answer::Nothing);
        assert_eq!(read(Some(&json!(null))), Answer::Nothing);
        assert_eq!(read(Some(&json!({}))), Answer::Nothing);
        assert_eq!(
            read(Some(&json!({"Error": "States.Timeout", "Cause": ""}))),
            Answer::Nothing
        );
    }

    #[test]
    fn a_signal_that_is_none_is_invalid_and_says_why() {
        let Answer::Invalid(why) = read(Some(&json!({"signal": "go"}))) else {
            panic!("invalid");
        };
        assert!(why.contains("\"go\""), "{why}");
        assert!(matches!(
            read(Some(&json!({"signal": 3}))),
            Answer::Invalid(_)
        ));
    }
}
