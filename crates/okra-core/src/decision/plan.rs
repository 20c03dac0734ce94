//! A rollout plan, normalized from the spec: its steps, timed pauses cut into background-analysis intervals, the step to resume at.

use super::*;

/// One step of a rollout plan, normalized from the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::EnumDiscriminants)]
// `rename_all` names the variants; `rename_all_fields` the fields of each (the state machine
// reads `initialDelaySeconds` and `intervalSeconds`).
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
#[strum_discriminants(
    name(StepKind),
    doc = "A plan step's `type`, as the state machine's Choice reads it.",
    derive(
        Hash,
        Serialize,
        Deserialize,
        strum::AsRefStr,
        strum::Display,
        strum::EnumIter,
        strum::EnumString,
        strum::IntoStaticStr
    ),
    serde(rename_all = "camelCase"),
    strum(serialize_all = "camelCase")
)]
pub enum PlanStep {
    /// Give the new version `weight` %.
    SetWeight {
        /// 0-100.
        weight: u32,
    },
    /// Wait `seconds`, or (none) until resumed.
    Pause {
        /// How long; `None` means until a person resumes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
        /// With a background analysis running at this step: the pause is `slices` waits of the
        /// analysis's interval, each followed by a sample, then `rest_seconds`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sampled: Option<SampledPause>,
        /// With a background analysis whose samples an EventBridge Scheduler schedule takes
        /// ([`BackgroundPlan::schedule`]): the pause (timed or not) is one wait, sampled outside
        /// the state machine ([`crate::schedule`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        scheduled: bool,
        /// A pause until resumed: how long it waits for a person at most (the spec's `timeout`,
        /// else [`LONGEST_WAIT_SECONDS`]), and what then.
        #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
        wait: Option<PersonWait>,
    },
    /// Run these analysis templates to completion.
    Analysis {
        /// Template names.
        templates: Vec<String>,
        /// Argument values (always present, so the state machine can pass them on).
        #[serde(default)]
        args: BTreeMap<String, String>,
        /// Wait this long before the first sample (the longest `initialDelay` of its metrics).
        initial_delay_seconds: u64,
        /// Wait this long between samples (the shortest `interval` of its metrics, at least 1 s).
        interval_seconds: u64,
        /// An inconclusive verdict's wait for a person.
        #[serde(flatten)]
        wait: PersonWait,
    },
}

/// How long a wait for a person lasts, and what happens when nobody answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonWait {
    /// The callback's time-out (its `TimeoutSeconds`), kept across the wait's callbacks.
    pub timeout_seconds: u64,
    /// Abort or go on.
    pub on_timeout: crate::vocab::OnTimeout,
}

/// A wait for a person without a `timeout` lasts as long as its execution may: a year (Step
/// Functions' quota for a Standard execution).
pub const LONGEST_WAIT_SECONDS: u64 = 365 * 24 * 3600;

impl PersonWait {
    fn of(
        path: &str,
        timeout: Option<&String>,
        on_timeout: Option<crate::vocab::OnTimeout>,
    ) -> Result<Self, FieldError> {
        Ok(Self {
            timeout_seconds: match timeout {
                Some(t) => seconds(format!("{path}.timeout"), t)?.clamp(1, LONGEST_WAIT_SECONDS),
                None => LONGEST_WAIT_SECONDS,
            },
            on_timeout: on_timeout.unwrap_or_default(),
        })
    }
}

/// A timed pause cut into background-analysis intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampledPause {
    /// Whole intervals, each followed by a background sample.
    pub slices: u64,
    /// What is left after them.
    pub rest_seconds: u64,
}

/// The analysis that runs alongside the steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundPlan {
    /// Template names.
    pub templates: Vec<String>,
    /// Argument values (always present, so the state machine can pass them on).
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// The step index from which it runs.
    pub starting_step: usize,
    /// The shortest `interval` of its metrics, at least 1 s.
    pub interval_seconds: u64,
    /// The EventBridge Scheduler rate that samples it during waits
    /// ([`crate::schedule::rate_expression`]): an interval of whole minutes. Without it (a
    /// shorter or uneven interval), the state machine samples during waits itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// The steps of a rollout, always ending with the new version at 100 %.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The steps.
    pub steps: Vec<PlanStep>,
    /// The background analysis, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundPlan>,
    /// How many times one execution's waits for a person may wake (a background analysis
    /// sample each) before the rollout goes on in a new execution: what the steps leave of the
    /// history quota ([`crate::history`]).
    #[serde(default)]
    pub max_wakes: u64,
}

/// A duration of the spec at `path`, in seconds.
fn seconds(path: impl Into<String>, text: &str) -> Result<u64, FieldError> {
    parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|e| FieldError {
            path: path.into(),
            message: e.to_string(),
        })
}

/// The longest `initialDelay` and the shortest `interval` (at least 1 s; 60 s when no metric is
/// referenced) of the referenced templates' metrics.
pub(crate) fn timing(spec: &CellSpec, refs: &[TemplateRef]) -> Result<(u64, u64), FieldError> {
    let (mut delay, mut interval) = (0, u64::MAX);
    for (t, template) in spec.analysis_templates.iter().enumerate() {
        if !refs.iter().any(|r| r.template_name == template.name) {
            continue;
        }
        for (m, metric) in template.metrics.iter().enumerate() {
            let path = format!("analysisTemplates[{t}].metrics[{m}]");
            if let Some(d) = &metric.initial_delay {
                delay = delay.max(seconds(format!("{path}.initialDelay"), d)?);
            }
            interval = interval.min(seconds(format!("{path}.interval"), &metric.interval)?);
        }
    }
    if interval == u64::MAX {
        interval = 60;
    }
    Ok((delay, interval.max(1)))
}

pub(super) fn templates(refs: &[TemplateRef]) -> Vec<String> {
    refs.iter().map(|r| r.template_name.clone()).collect()
}

pub(super) fn args(args: &[Arg]) -> BTreeMap<String, String> {
    args.iter()
        .filter_map(|a| a.value.clone().map(|v| (a.name.clone(), v)))
        .collect()
}

/// The plan of a spec whose rules hold ([`crate::validate::validate`]); a validated
/// [`crate::cell::Cell`] carries it ([`crate::cell::Cell::plan`]). A plan whose last weight is
/// not 100 gets a final `setWeight: 100`.
///
/// # Errors
///
/// A duration that does not parse, at its field (validation refuses such a spec first).
pub(crate) fn plan(spec: &CellSpec, readiness_timeout: Duration) -> Result<Plan, FieldError> {
    let mut steps = Vec::with_capacity(spec.canary.steps.len() + 1);
    for (i, s) in spec.canary.steps.iter().enumerate() {
        if let Some(weight) = s.set_weight {
            steps.push(PlanStep::SetWeight {
                weight: weight.min(100),
            });
        } else if let Some(p) = &s.pause {
            let seconds = match &p.duration {
                Some(d) => Some(seconds(format!("canary.steps[{i}].pause.duration"), d)?),
                None => None,
            };
            let wait = match seconds {
                Some(_) => None,
                None => Some(PersonWait::of(
                    &format!("canary.steps[{i}].pause"),
                    p.timeout.as_ref(),
                    p.on_timeout,
                )?),
            };
            steps.push(PlanStep::Pause {
                seconds,
                sampled: None,
                scheduled: false,
                wait,
            });
        } else if let Some(a) = &s.analysis {
            let (initial_delay_seconds, interval_seconds) = timing(spec, &a.templates)?;
            steps.push(PlanStep::Analysis {
                templates: templates(&a.templates),
                args: args(&a.args),
                initial_delay_seconds,
                interval_seconds,
                wait: PersonWait::of(
                    &format!("canary.steps[{i}].analysis"),
                    a.timeout.as_ref(),
                    a.on_timeout,
                )?,
            });
        }
    }
    let last_weight = steps.iter().rev().find_map(|s| match s {
        PlanStep::SetWeight { weight } => Some(*weight),
        _ => None,
    });
    if last_weight != Some(100) {
        steps.push(PlanStep::SetWeight { weight: 100 });
    }
    let background = match &spec.canary.analysis {
        Some(b) => {
            let interval_seconds = timing(spec, &b.templates)?.1;
            Some(BackgroundPlan {
                templates: templates(&b.templates),
                args: args(&b.args),
                starting_step: b.starting_step as usize,
                interval_seconds,
                schedule: crate::schedule::rate_expression(interval_seconds),
            })
        }
        None => None,
    };
    if let Some(bg) = &background {
        let every = bg.interval_seconds.max(1);
        for step in steps.iter_mut().skip(bg.starting_step) {
            match step {
                PlanStep::Pause { scheduled, .. } if bg.schedule.is_some() => *scheduled = true,
                PlanStep::Pause {
                    seconds: Some(s),
                    sampled,
                    ..
                } => {
                    *sampled = Some(SampledPause {
                        slices: *s / every,
                        rest_seconds: *s % every,
                    });
                }
                _ => {}
            }
        }
    }
    let mut plan = Plan {
        steps,
        background,
        max_wakes: 0,
    };
    let readiness = crate::history::ReadinessPlan::for_timeout(readiness_timeout);
    plan.max_wakes = crate::history::budget(&plan, &readiness, |i| max_samples(spec, i)).max_wakes;
    Ok(plan)
}

/// The most samples the analysis of plan step `i` takes: the largest `count` of its metrics (1
/// for a step that is no analysis). Plan steps are the spec's steps in order (a final
/// `setWeight: 100` may follow).
pub fn max_samples(spec: &CellSpec, i: usize) -> u64 {
    let Some(a) = spec.canary.steps.get(i).and_then(|s| s.analysis.as_ref()) else {
        return 1;
    };
    spec.analysis_templates
        .iter()
        .filter(|t| a.templates.iter().any(|r| r.template_name == t.name))
        .flat_map(|t| t.metrics.iter())
        .map(|m| u64::from(m.count))
        .max()
        .unwrap_or(1)
}

/// Where to pick a rollout up when the listener already gives the new version `weight` %: just
/// after the last `setWeight` at or below it, so the pauses and analyses at that level run again
/// before any more traffic moves.
pub fn resume_step(plan: &Plan, weight: u32) -> usize {
    plan.steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            PlanStep::SetWeight { weight: w } if *w <= weight => Some(i + 1),
            _ => None,
        })
        .next_back()
        .unwrap_or(0)
}
