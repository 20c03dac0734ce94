//! Analysis: is the new version healthy enough to get more traffic?
//!
//! Two ways to answer, which a step may combine:
//!
//! - **Analysis templates** (Argo Rollouts' semantics): each metric is sampled `count` times
//!   every `interval`; each sample is judged by the metric's `successCondition` and
//!   `failureCondition`, CEL expressions over `result` ([`condition`]); the samples add up to the
//!   metric's phase, and the metrics' phases to the analysis's ([`verdict`]).
//! - **The built-in judge** (Kayenta's approach): the new version's target groups against the
//!   serving ones, minute by minute over a window, on the 5xx error rate and the latency
//!   ([`judge`](mod@judge)).
//!
//! # What the verdicts mean
//!
//! - **Successful**: the new version did as well as asked. For a metric: it reached `count`
//!   samples without more failures than `failureLimit`, inconclusive samples than
//!   `inconclusiveLimit` or errors in a row than `consecutiveErrorLimit`. For the judge: enough
//!   requests reached the canary, and neither its error rate nor its latency is worse than
//!   stable's both beyond chance and beyond the allowed bound. The rollout goes on.
//! - **Failed**: the new version is worse. For a metric: more samples met `failureCondition` (or
//!   missed the only condition, `successCondition`) than `failureLimit` allows. For the judge:
//!   the canary's error rate or latency is higher, beyond chance (one-sided Mann-Whitney U test
//!   at `confidence`) *and* by more than `maxErrorRateIncrease` points or `maxLatencyRatio`
//!   times. The rollout rolls back and the version is blocked.
//! - **Inconclusive**: no one can tell. A sample without a datapoint is inconclusive, because no
//!   traffic is not healthy; so is a sample that meets neither condition, and a judge window in
//!   which fewer than `minRequests` requests reached the canary or a metric has no data on a
//!   side. More than `inconclusiveLimit` of them stop the rollout where it is, for a person to
//!   promote or abort.
//! - **Error**: the numbers could not be read or judged (the provider failed; the value was
//!   NaN or infinite; a condition did not evaluate or gave no bool) more than
//!   `consecutiveErrorLimit` times in a row. Like Failed for the rollout, but it says the
//!   measuring broke, not the version.
//! - **Running**: more samples are due.
//!
//! Over several metrics the worst wins: Failed, then Error, then Inconclusive, then Running,
//! then Successful. A `dryRun` metric is measured and reported but never makes the analysis
//! Failed, Error or Inconclusive.
//!
//! The judge's per-metric verdicts are Kayenta's: **High** (canary worse: fails the window),
//! **Low** (canary better, beyond chance and the bound), **Pass** (no difference that matters),
//! **NoData** (no usable minute on a side: the window is Inconclusive).

pub mod condition;
pub mod judge;
pub mod probe;
pub mod query;
pub mod sample;
pub mod verdict;

pub use condition::{
    Compiled, Condition, ConditionError, ConditionKind, MeasuredValue, compile_template,
};
pub use judge::{
    JudgeMetric, JudgeReport, JudgeVerdict, MIN_POINTS_FOR_TEST, MannWhitney, Series, judge,
    mann_whitney,
};
pub use verdict::{
    Measurement, MetricStatus, NO_DATA, Phase, evaluate_sample, metric_phase, metric_status,
    metric_status_after, overall, overall_reason,
};
