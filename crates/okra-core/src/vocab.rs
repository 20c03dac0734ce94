//! One vocabulary: every name okra's functions, the state machine, the API and the CLI share.
//!
//! Each name is an enum variant, written once here (or, for the decision and step kinds, the
//! variant of the type they name: [`DecisionKind`], [`StepKind`]). serde (the JSON the tasks
//! exchange, the items in DynamoDB) and strum (`as_ref()`, `Display`, `FromStr`) spell it the same
//! way, which a test checks for every variant. The state machine is generated from these enums
//! (`cargo xtask asl`), so a Choice value, a Retry list or a Fail error cannot drift from the
//! Rust that produces or reads it.

use serde::{Deserialize, Serialize};

/// A name enum: copied, compared and hashed, spelt by serde and by strum (`as_ref()`,
/// `Display`, `FromStr`, `IntoStaticStr`), listed by `iter()`.
macro_rules! names {
    ($(#[$meta:meta])* pub enum $name:ident { $($body:tt)* }) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::AsRefStr,
            strum::Display, strum::EnumIter, strum::EnumString, strum::IntoStaticStr,
        )]
        $(#[$meta])*
        pub enum $name { $($body)* }
    };
}

pub use crate::analysis::Phase;

/// State names of the rollout state machine that code outside it reads (the CLI reads the
/// analysis samples from an execution's history by the state's name).
pub mod states {
    /// The Task that takes one analysis sample (check-metrics).
    pub const CHECK_METRICS: &str = "Check the metrics";
}
pub use crate::decision::{DecisionKind, StepKind};

names! {
/// The stable name of every error an okra function reports: the Lambda runtime's `errorType`,
/// which the state machine's `Retry` and `Catch` match, the API's `error`, and the CLI's hints.
/// Renaming one is a breaking change of the state machine.
pub enum ErrorType {
    /// The input event is not what the function takes; nothing was written.
    InvalidInput,
    /// The cell spec does not validate; nothing was written.
    InvalidSpec,
    /// AWS throttled the call.
    Throttled,
    /// AWS did not answer, or answered 5xx.
    AwsUnavailable,
    /// The listener does not exist.
    ListenerNotFound,
    /// The listener rule does not exist.
    RuleNotFound,
    /// A target group does not exist.
    TargetGroupNotFound,
    /// Somebody else changed the listener since okra's last step.
    DriftDetected,
    /// After a write, AWS does not show the weights okra wrote.
    VerificationFailed,
    /// The weights asked for cannot be written.
    WeightsNotPossible,
    /// A canary target group is below the health gate before a weight change.
    CanaryUnhealthy,
    /// The registration mode finds nothing to register for a cluster.
    NothingToRegister,
    /// The listener's owned action is not a forward action okra can change.
    UnsupportedAction,
    /// A conditional write lost a race, or the lock is held by another execution.
    Conflict,
    /// The cell, rollout or execution asked for does not exist.
    NotFound,
    /// AWS said no for lack of permissions.
    AccessDenied,
    /// Any other AWS error.
    AwsError,
}
}

impl ErrorType {
    /// Whether running the same task again may succeed: the state machine retries exactly
    /// these (with AWS's own transient Lambda errors), and the CLI says "try again".
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::AwsUnavailable | Self::VerificationFailed
        )
    }
}

names! {
/// What a person asks of a running rollout (the API's `resume`, `promote`, `promote-full`,
/// `abort`; the state machine's Choice values after `poll`).
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum Signal {
    /// Go on from a pause until resumed (or an inconclusive analysis).
    Resume,
    /// End the current pause or analysis and go to the next step.
    Promote,
    /// Skip every remaining step: the new version to 100 % now.
    PromoteFull,
    /// Roll back now.
    Abort,
}
}

impl Signal {
    /// The API's path segment: `POST /cells/{cell}/rollouts/{id}/<segment>`.
    pub fn path_segment(self) -> &'static str {
        match self {
            Self::Resume => "resume",
            Self::Promote => "promote",
            Self::PromoteFull => "promote-full",
            Self::Abort => "abort",
        }
    }

    /// The signal a path segment names.
    pub fn from_path_segment(segment: &str) -> Option<Self> {
        <Self as strum::IntoEnumIterator>::iter().find(|s| s.path_segment() == segment)
    }
}

names! {
/// Where a running rollout waits: what a signal can act on there ([`crate::answer::acts`]).
/// Every wait is a callback task (`lambda:invoke.waitForTaskToken`), answered at once by the
/// API's signal or by any holder of its token; a timed wait is the callback's own
/// `TimeoutSeconds`.
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum WaitKind {
    /// A pause until resumed, or an inconclusive analysis: a person decides.
    Person,
    /// A timed pause (`pause: {duration}`).
    Pause,
    /// An analysis between its samples (its initial delay and its intervals).
    Analysis,
    /// A weight step held until the cell's deployment window opens (`windows`).
    Window,
}
}

names! {
/// What a wait for a person does when its `timeout` runs out (`pause: {timeout, onTimeout}`,
/// an analysis step's inconclusive wait).
#[derive(Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum OnTimeout {
    /// Roll back and block the version, as a person's abort (the default).
    #[default]
    Abort,
    /// Go on, as a person's resume.
    Promote,
}
}

/// What `poll` answers when no signal is waiting.
pub const NO_SIGNAL: &str = "none";

/// `Option<Signal>` as `poll` writes it: the signal's name, or [`NO_SIGNAL`].
pub mod signal_or_none {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{NO_SIGNAL, Signal};

    /// Writes the signal's name, or `none`.
    pub fn serialize<S: Serializer>(v: &Option<Signal>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.map_or(NO_SIGNAL, |x| x.into()))
    }

    /// Reads a signal's name, or `none`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Signal>, D::Error> {
        let name = String::deserialize(d)?;
        if name == NO_SIGNAL {
            return Ok(None);
        }
        name.parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("unknown signal {name:?}")))
    }
}

names! {
/// A rollout's status, as its record in DynamoDB, the API and the CLI show it.
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum RolloutStatus {
    /// An execution moves it.
    Running,
    /// The new version serves at 100 %.
    Promoted,
    /// Traffic went back to the stable version.
    RolledBack,
    /// Something failed (and traffic may not have moved back).
    Failed,
    /// Discovery found nothing to do.
    NothingToDo,
    /// It goes on in a new execution (the history quota of the old one).
    Continued,
}
}

impl RolloutStatus {
    /// Whether the rollout ended badly: a person may retry it.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::RolledBack | Self::Failed)
    }
}

names! {
/// How a rollout ended: `finish`'s `outcome`.
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum Outcome {
    /// The new version serves at 100 %.
    Promoted,
    /// Traffic went back to the stable version.
    RolledBack,
    /// Something failed (and traffic may not have moved back).
    Failed,
    /// Discovery found nothing to do (the lock only is released).
    NothingToDo,
    /// The rollout goes on in a new execution (this one's history quota); no event.
    Continued,
}
}

names! {
/// What the dispatcher did for one cell (the API's start and retry answer with it).
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum DispatchOutcome {
    /// An execution started (or was running under the same name with the same input).
    Started,
    /// An execution of the same decision is running already.
    AlreadyRunning,
    /// Discovery found nothing to do: no execution.
    NothingToDo,
    /// Not reconciled now (a running execution holds the cell; the decision ran already).
    Skipped,
    /// The cell could not be reconciled (see `reason`, `errorType`).
    Error,
}
}

impl Outcome {
    /// The rollout's status after it.
    pub fn status(self) -> RolloutStatus {
        match self {
            Self::Promoted => RolloutStatus::Promoted,
            Self::RolledBack => RolloutStatus::RolledBack,
            Self::Failed => RolloutStatus::Failed,
            Self::NothingToDo => RolloutStatus::NothingToDo,
            Self::Continued => RolloutStatus::Continued,
        }
    }

    /// The history event it records.
    pub fn history_event(self) -> HistoryEvent {
        match self {
            Self::Promoted => HistoryEvent::Promoted,
            Self::RolledBack => HistoryEvent::RolledBack,
            Self::Failed => HistoryEvent::Failed,
            Self::NothingToDo => HistoryEvent::NothingToDo,
            Self::Continued => HistoryEvent::Continued,
        }
    }

    /// The EventBridge event it sends, if any.
    pub fn event_kind(self) -> Option<RolloutEventKind> {
        match self {
            Self::Promoted => Some(RolloutEventKind::Promoted),
            Self::RolledBack => Some(RolloutEventKind::RolledBack),
            Self::Failed => Some(RolloutEventKind::Failed),
            Self::NothingToDo | Self::Continued => None,
        }
    }

    /// The canary's weight it leaves, when the outcome says (promoted 100, rolled back 0).
    pub fn final_weight(self) -> Option<u32> {
        match self {
            Self::Promoted => Some(100),
            Self::RolledBack => Some(0),
            _ => None,
        }
    }
}

names! {
/// One entry of a rollout's history: what happened.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum HistoryEvent {
    /// The rollout began.
    Started,
    /// A step is done.
    StepDone,
    /// An analysis step decided (detail: the verdict, each metric's value and conditions).
    Verdict,
    /// A weight step is held until the deployment window opens (detail: `until`).
    Held,
    /// The rollout waits for a person.
    Paused,
    /// A person's signal was taken where the rollout waited (detail: the signal and who gave
    /// it), or an answer to the wait was ignored (detail: why).
    Signalled,
    /// Nobody answered a wait for a person within its `timeout` (detail: what okra did).
    TimedOut,
    /// The new version serves at 100 %.
    Promoted,
    /// Traffic went back.
    RolledBack,
    /// It failed.
    Failed,
    /// Nothing to do.
    NothingToDo,
    /// It goes on in a new execution.
    Continued,
}
}

impl HistoryEvent {
    /// The EventBridge event an entry of this kind went out as (`okra events`), if any: a signal
    /// taken, a continuation and nothing-to-do send none.
    pub fn event_kind(self) -> Option<RolloutEventKind> {
        match self {
            Self::Started => Some(RolloutEventKind::Started),
            Self::StepDone => Some(RolloutEventKind::StepDone),
            Self::Verdict => Some(RolloutEventKind::AnalysisVerdict),
            Self::Held => Some(RolloutEventKind::Held),
            Self::Paused => Some(RolloutEventKind::Paused),
            Self::TimedOut => Some(RolloutEventKind::WaitTimedOut),
            Self::Promoted => Some(RolloutEventKind::Promoted),
            Self::RolledBack => Some(RolloutEventKind::RolledBack),
            Self::Failed => Some(RolloutEventKind::Failed),
            _ => None,
        }
    }

    /// The EventBridge event a step's entry sends.
    pub fn step_event_kind(self) -> RolloutEventKind {
        match self {
            Self::Paused => RolloutEventKind::Paused,
            Self::TimedOut => RolloutEventKind::WaitTimedOut,
            Self::Verdict => RolloutEventKind::AnalysisVerdict,
            Self::Held => RolloutEventKind::Held,
            _ => RolloutEventKind::StepDone,
        }
    }
}

names! {
/// The `detail-type` of okra's EventBridge events (source `okra`).
pub enum RolloutEventKind {
    /// A rollout began.
    #[serde(rename = "Rollout Started")]
    #[strum(serialize = "Rollout Started")]
    Started,
    /// A step is done.
    #[serde(rename = "Rollout Step Done")]
    #[strum(serialize = "Rollout Step Done")]
    StepDone,
    /// An analysis step decided (detail: each metric's value and conditions).
    #[serde(rename = "Rollout Analysis Verdict")]
    #[strum(serialize = "Rollout Analysis Verdict")]
    AnalysisVerdict,
    /// A weight step waits for the cell's deployment window to open (detail: until when).
    #[serde(rename = "Rollout Held")]
    #[strum(serialize = "Rollout Held")]
    Held,
    /// A rollout waits for a person.
    #[serde(rename = "Rollout Paused")]
    #[strum(serialize = "Rollout Paused")]
    Paused,
    /// Nobody answered a wait for a person within its time-out (detail: what okra did).
    #[serde(rename = "Rollout Wait Timed Out")]
    #[strum(serialize = "Rollout Wait Timed Out")]
    WaitTimedOut,
    /// The new version serves at 100 %.
    #[serde(rename = "Rollout Promoted")]
    #[strum(serialize = "Rollout Promoted")]
    Promoted,
    /// Traffic went back.
    #[serde(rename = "Rollout Rolled Back")]
    #[strum(serialize = "Rollout Rolled Back")]
    RolledBack,
    /// It failed.
    #[serde(rename = "Rollout Failed")]
    #[strum(serialize = "Rollout Failed")]
    Failed,
    /// A version's target groups were deleted and its clusters tagged retired (no rollout:
    /// `execution` is absent).
    #[serde(rename = "Version Retired")]
    #[strum(serialize = "Version Retired")]
    VersionRetired,
}
}

names! {
/// A Step Functions execution's status, in AWS's spelling (DescribeExecution's `status`, the
/// "Step Functions Execution Status Change" event's `detail.status`).
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// It runs.
    Running,
    /// It ended in a Succeed state.
    Succeeded,
    /// It ended in a Fail state or an uncaught error.
    Failed,
    /// It ran past its time-out.
    TimedOut,
    /// StopExecution ended it.
    Aborted,
    /// A redrive is about to run it again.
    PendingRedrive,
}
}

impl ExecutionStatus {
    /// Whether `status` (AWS's text) is a running execution.
    pub fn is_running(status: &str) -> bool {
        status == Self::Running.as_ref()
    }
}

names! {
/// The actions of the `rollout-state` task (its input's `action`).
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum StateAction {
    /// Take the cell's lock; read the blocklist.
    Begin,
    /// Record the decision: the rollout's record.
    Started,
    /// Record a step.
    Step,
    /// Before a weight step: may traffic move now (the cell's `windows`)? If not, record the
    /// hold and say for how long.
    Window,
    /// Keep a callback's task token while waiting for a person.
    Await,
    /// Take a person's signal.
    Poll,
    /// After a wait sampled by a schedule: read its samples' latest verdict back, delete the
    /// schedule ([`crate::schedule`]).
    EndSamples,
    /// Record the outcome, block a failed version, release the lock.
    Finish,
}
}

names! {
/// The modes of the `ensure-target-groups` task (its input's `mode`).
#[derive(Default)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum EnsureMode {
    /// Make what is missing, then read health.
    #[default]
    Ensure,
    /// Only read health.
    Health,
}
}

names! {
/// Why the dispatcher starts an execution (its request's `trigger`, recorded in the execution's
/// input). The API and the CLI may pass their own words; these are the ones okra writes.
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Trigger {
    /// The reconcile schedule.
    Schedule,
    /// An EKS event from CloudTrail.
    EksEvent,
    /// A request through the API.
    Api,
    /// A rollout that goes on in a new execution (the history quota).
    Continue,
    /// The rollback of a stopped execution (a stop is an abort), started by the finalizer.
    Stopped,
}
}

names! {
/// The errors an execution ends with (its Fail states' `Error`, and the errors the state
/// machine raises itself before rolling back). The console and the finalizer show them.
pub enum ExecutionError {
    /// Another execution holds the cell's lock; this one touched nothing.
    CellBusy,
    /// The lock could not be taken.
    LockFailed,
    /// Discovery failed before any traffic moved.
    DiscoveryFailed,
    /// Discovery decided something this state machine does not know.
    UnknownDecision,
    /// The switch of an initialize or scale-out failed.
    SwitchFailed,
    /// The new target groups did not meet the readiness gate in time.
    ReadinessTimedOut,
    /// Making or reading the new target groups failed.
    TargetGroupsFailed,
    /// A plan step of a type this state machine does not know.
    UnknownStep,
    /// An analysis failed.
    AnalysisFailed,
    /// The background analysis failed.
    BackgroundAnalysisFailed,
    /// A person aborted.
    Aborted,
    /// Traffic is back on the stable version; the version is blocked.
    RolledBack,
    /// Rolling back failed (or found the listener edited).
    RollbackFailed,
    /// The next execution of a long wait could not be started.
    ContinuationFailed,
    /// Nobody answered a wait for a person within its `timeout`, whose `onTimeout` is abort.
    WaitTimedOut,
}
}

/// A name's text (`as_str`), and a name compares equal to its text (JSON, AWS's answers,
/// tests that read the wire).
macro_rules! eq_text {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// The name as serde and the state machine spell it.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_ref() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_ref() == *other
            }
        }
    )*};
}

eq_text!(
    ErrorType,
    Signal,
    RolloutStatus,
    Outcome,
    HistoryEvent,
    RolloutEventKind,
    ExecutionStatus,
    StateAction,
    EnsureMode,
    Trigger,
    ExecutionError,
    DecisionKind,
    StepKind,
    Phase,
);

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    /// serde and strum spell every name the same, and `FromStr` reads it back.
    fn agree<T>()
    where
        T: IntoEnumIterator
            + Serialize
            + for<'de> Deserialize<'de>
            + AsRef<str>
            + std::str::FromStr
            + PartialEq
            + std::fmt::Debug
            + Copy,
    {
        for v in T::iter() {
            let json = serde_json::to_value(v).expect("serializes");
            assert_eq!(json.as_str(), Some(v.as_ref()), "{v:?}");
            assert_eq!(serde_json::from_value::<T>(json).ok(), Some(v));
            assert_eq!(v.as_ref().parse::<T>().ok(), Some(v));
        }
    }

    #[test]
    fn serde_and_strum_agree() {
        agree::<ErrorType>();
        agree::<Signal>();
        agree::<WaitKind>();
        agree::<RolloutStatus>();
        agree::<Outcome>();
        agree::<DispatchOutcome>();
        agree::<HistoryEvent>();
        agree::<RolloutEventKind>();
        agree::<ExecutionStatus>();
        agree::<StateAction>();
        agree::<EnsureMode>();
        agree::<Trigger>();
        agree::<ExecutionError>();
        agree::<DecisionKind>();
        agree::<StepKind>();
        agree::<Phase>();
    }

    #[test]
    fn names_are_the_documented_ones() {
        assert_eq!(Signal::PromoteFull.as_ref(), "promoteFull");
        assert_eq!(Signal::PromoteFull.path_segment(), "promote-full");
        assert_eq!(
            Signal::from_path_segment("promote-full"),
            Some(Signal::PromoteFull)
        );
        assert_eq!(Signal::from_path_segment("promoteFull"), None);
        assert_eq!(RolloutStatus::RolledBack.as_ref(), "rolledBack");
        assert_eq!(ExecutionStatus::TimedOut.as_ref(), "TIMED_OUT");
        assert_eq!(RolloutEventKind::RolledBack.as_ref(), "Rollout Rolled Back");
        assert_eq!(Trigger::EksEvent.as_ref(), "eks-event");
        assert_eq!(DecisionKind::NothingToDo.as_ref(), "nothingToDo");
        assert_eq!(StepKind::SetWeight.as_ref(), "setWeight");
        let transient: Vec<_> = ErrorType::iter().filter(|e| e.is_transient()).collect();
        assert_eq!(
            transient,
            [
                ErrorType::Throttled,
                ErrorType::AwsUnavailable,
                ErrorType::VerificationFailed
            ]
        );
    }

    #[test]
    fn outcomes_map_to_their_status_and_event() {
        for o in Outcome::iter() {
            assert_eq!(o.status().as_ref(), o.as_ref());
            assert_eq!(o.history_event().as_ref(), o.as_ref());
        }
        let signal = serde_json::to_value(PollShape { signal: None }).expect("json");
        assert_eq!(signal["signal"], "none");
        let back: PollShape =
            serde_json::from_value(serde_json::json!({"signal": "abort"})).expect("reads");
        assert_eq!(back.signal, Some(Signal::Abort));
        assert!(serde_json::from_value::<PollShape>(serde_json::json!({"signal": "x"})).is_err());
    }

    #[derive(Serialize, Deserialize)]
    struct PollShape {
        #[serde(with = "signal_or_none")]
        signal: Option<Signal>,
    }
}
