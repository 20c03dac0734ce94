//! Background samples during a wait, taken by an EventBridge Scheduler schedule instead of the
//! state machine: the wait is one callback (a handful of history events however long it lasts),
//! and each sample is one Lambda invocation of check-metrics.
//!
//! The wait's `await` task makes the schedule (named by [`schedule_name`], idempotent: a second
//! run finds it) with a rate of the analysis's interval ([`rate_expression`]), a first sample one
//! interval after the wait began and an end ([`window`]); each invocation carries a
//! [`ScheduledSample`]. check-metrics reads the wait it samples for from the table: a wait that
//! is over (another step, another execution, none) deletes the schedule ([`what_to_do`]); a
//! verdict that ends the wait (failed, error) fails the wait's callback with
//! `BackgroundAnalysisFailed`, anything else is stored with the wait for the next sample and for
//! the state machine when the wait ends.
//!
//! EventBridge Scheduler user guide: "Schedule types on EventBridge Scheduler" (a rate is a
//! positive whole number of minutes, hours or days; 60-second precision), "Adding context
//! attributes" (`<aws.scheduler.scheduled-time>` in the target's input); API reference,
//! CreateSchedule (names of 1-64 characters `[0-9a-zA-Z-_.]`).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::analysis::Phase;

/// Schedule names: 1-64 characters of `[0-9a-zA-Z-_.]`.
pub const MAX_SCHEDULE_NAME: usize = 64;

/// The context attribute EventBridge Scheduler replaces with the invocation's scheduled time.
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

/// A wait for a person may last as long as its execution: a year (Step Functions' quota). The
/// schedule of such a wait ends a day after that, in case nothing else deletes it.
pub const LONGEST_WAIT: Duration = Duration::from_secs((365 + 1) * 24 * 3600);

/// The rate expression of a background analysis sampling every `interval_seconds`, or `None`
/// when EventBridge Scheduler cannot keep that interval (not a whole number of minutes): such an
/// analysis samples in the state machine.
///
/// ```
/// use okra_core::schedule::rate_expression;
/// assert_eq!(rate_expression(60).as_deref(), Some("rate(1 minute)"));
/// assert_eq!(rate_expression(300).as_deref(), Some("rate(5 minutes)"));
/// assert_eq!(rate_expression(7200).as_deref(), Some("rate(2 hours)"));
/// assert_eq!(rate_expression(90), None);
/// assert_eq!(rate_expression(30), None);
/// ```
pub fn rate_expression(interval_seconds: u64) -> Option<String> {
    if interval_seconds == 0 || !interval_seconds.is_multiple_of(60) {
        return None;
    }
    let minutes = interval_seconds / 60;
    let (n, unit) = if minutes.is_multiple_of(24 * 60) {
        (minutes / (24 * 60), "day")
    } else if minutes.is_multiple_of(60) {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    Some(format!("rate({n} {unit}{})", if n == 1 { "" } else { "s" }))
}

/// The schedule of an execution's background samples in a step: one per wait (an execution
/// waits in one step at a time; the schedule of a wait that ended never takes over the next
/// one's), the cell's name for a person reading the console, and a hash of all three.
///
/// ```
/// let n = okra_core::schedule::schedule_name("web", "web--1.2.0--3", Some(1));
/// assert!(n.starts_with("web-") && n.len() <= 64);
/// ```
pub fn schedule_name(cell: &str, execution: &str, step: Option<usize>) -> String {
    let step = step.map_or_else(|| "-".to_string(), |s| s.to_string());
    let hash = crate::naming::fnv1a(format!("{cell}/{execution}/{step}").as_bytes());
    let readable: String = format!("{cell}-{execution}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_SCHEDULE_NAME - 9)
        .collect();
    format!("{readable}-{hash:08x}")
}

/// When the schedule's samples begin and end: the first one interval after the wait began, the
/// last before the wait's end (a timed pause's `until`) or [`LONGEST_WAIT`] after it.
pub fn window(
    now: SystemTime,
    interval_seconds: u64,
    until: Option<SystemTime>,
) -> (SystemTime, SystemTime) {
    let start = now + Duration::from_secs(interval_seconds);
    let end = until.unwrap_or(now + LONGEST_WAIT).max(start);
    (start, end)
}

/// What each invocation of a schedule carries (its target's input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduledSample {
    /// The cell's name.
    pub cell: String,
    /// The execution that waits.
    pub execution: String,
    /// The plan step it waits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// When the invocation was due (RFC 3339): [`SCHEDULED_TIME`] in the schedule's input. One
    /// sample per due time, however often EventBridge Scheduler delivers it (at least once).
    pub at: String,
}

/// The input of an execution's schedule, with [`SCHEDULED_TIME`] for Scheduler to fill in.
pub fn schedule_input(cell: &str, execution: &str, step: Option<usize>) -> serde_json::Value {
    serde_json::json!({"scheduledSample": ScheduledSample {
        cell: cell.to_string(),
        execution: execution.to_string(),
        step,
        at: SCHEDULED_TIME.to_string(),
    }})
}

/// The wait a scheduled sample found in the table, as far as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundWait<'a> {
    /// The plan step the execution waits in.
    pub step: Option<usize>,
    /// Whether the wait keeps background samples (its `await` made the schedule).
    pub sampled: bool,
    /// The due time of the last sample taken for it (RFC 3339).
    pub last: Option<&'a str>,
}

/// What a scheduled invocation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Todo {
    /// Take the sample.
    Sample,
    /// This due time was sampled already (a second delivery): nothing.
    Duplicate,
    /// The wait it was made for is over: delete the schedule, sample nothing.
    Retire {
        /// Why, for the log.
        reason: String,
    },
}

/// What an invocation for `sample` does, given the execution's wait (`None`: it waits nowhere).
pub fn what_to_do(sample: &ScheduledSample, wait: Option<FoundWait<'_>>) -> Todo {
    let Some(w) = wait else {
        return Todo::Retire {
            reason: format!("execution {} waits nowhere", sample.execution),
        };
    };
    if w.step != sample.step || !w.sampled {
        return Todo::Retire {
            reason: format!(
                "execution {} waits in another step ({:?}, the schedule's: {:?})",
                sample.execution, w.step, sample.step
            ),
        };
    }
    // RFC 3339 in UTC sorts as text in time order.
    if w.last.is_some_and(|last| last >= sample.at.as_str()) {
        return Todo::Duplicate;
    }
    Todo::Sample
}

/// Whether a sample's verdict ends the wait (the rollout rolls back): a failed or error phase, as
/// the state machine's background samples decide.
pub fn ends_wait(phase: Phase) -> bool {
    matches!(phase, Phase::Failed | Phase::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(step: Option<usize>, at: &str) -> ScheduledSample {
        ScheduledSample {
            cell: "web".into(),
            execution: "web--1.1.0--0".into(),
            step,
            at: at.into(),
        }
    }

    #[test]
    fn rates_are_whole_minutes_hours_or_days() {
        assert_eq!(rate_expression(120).as_deref(), Some("rate(2 minutes)"));
        assert_eq!(rate_expression(3600).as_deref(), Some("rate(1 hour)"));
        assert_eq!(rate_expression(5400).as_deref(), Some("rate(90 minutes)"));
        assert_eq!(rate_expression(86_400).as_deref(), Some("rate(1 day)"));
        assert_eq!(rate_expression(0), None);
        assert_eq!(rate_expression(61), None);
    }

    #[test]
    fn names_fit_and_differ() {
        let long = "x".repeat(80);
        let a = schedule_name("web", &long, Some(1));
        let b = schedule_name("web", &format!("{long}y"), Some(1));
        assert!(a.len() <= MAX_SCHEDULE_NAME && b.len() <= MAX_SCHEDULE_NAME);
        assert_ne!(a, b);
        assert_ne!(a, schedule_name("web", &long, Some(3)), "one per wait");
        let odd = schedule_name("w/eb", "e:1", None);
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{odd}"
        );
    }

    #[test]
    fn the_window_begins_an_interval_on_and_ends_with_the_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let (s, e) = window(now, 60, Some(now + Duration::from_secs(600)));
        assert_eq!(s, now + Duration::from_secs(60));
        assert_eq!(e, now + Duration::from_secs(600));
        let (_, e) = window(now, 60, None);
        assert_eq!(e, now + LONGEST_WAIT);
        // A pause shorter than the interval: no sample falls in it.
        let (s, e) = window(now, 60, Some(now + Duration::from_secs(30)));
        assert_eq!(s, e);
    }

    #[test]
    fn an_invocation_samples_once_for_its_own_wait() {
        let s = sample(Some(2), "2026-12-06T12:01:00Z");
        let w = |step, sampled, last| {
            Some(FoundWait {
                step,
                sampled,
                last,
            })
        };
        assert_eq!(what_to_do(&s, w(Some(2), true, None)), Todo::Sample);
        assert_eq!(
            what_to_do(&s, w(Some(2), true, Some("2026-12-06T12:00:00Z"))),
            Todo::Sample
        );
        assert_eq!(
            what_to_do(&s, w(Some(2), true, Some("2026-12-06T12:01:00Z"))),
            Todo::Duplicate
        );
        assert!(matches!(what_to_do(&s, None), Todo::Retire { .. }));
        assert!(matches!(
            what_to_do(&s, w(Some(3), true, None)),
            Todo::Retire { .. }
        ));
        assert!(matches!(
            what_to_do(&s, w(Some(2), false, None)),
            Todo::Retire { .. }
        ));
    }

    #[test]
    fn the_input_names_the_scheduled_time() {
        let v = schedule_input("web", "e", Some(1));
        assert_eq!(v["scheduledSample"]["at"], SCHEDULED_TIME);
        let back: ScheduledSample = serde_json::from_value(
            serde_json::to_value(sample(Some(1), "2026-12-06T12:00:00Z")).unwrap(),
        )
        .unwrap();
        assert_eq!(back.step, Some(1));
        assert!(ends_wait(Phase::Failed) && ends_wait(Phase::Error));
        assert!(!ends_wait(Phase::Running) && !ends_wait(Phase::Inconclusive));
    }
}
