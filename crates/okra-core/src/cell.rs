//! A validated cell: the spec after [`CellSpec::validate`], with what okra computes from it read
//! once.
//!
//! The spec ([`CellSpec`]) is what a person writes: strings, options, one field per knob. A
//! [`Cell`] is what the functions work with: its listener and rule as checked ARNs in an
//! [`Ingress`] enum, the readiness timeout and stickiness as numbers, and the rollout's
//! [`Plan`]. Every entry point (the API, the CLI, each function's input) turns the spec into a
//! `Cell` first; nothing after it parses a duration or an ARN again. A `Cell` reads as its spec
//! (`Deref`), so `cell.name` and `cell.canary.steps` are the spec's.

use std::ops::Deref;
use std::time::Duration;

use crate::arn::{ListenerArn, RuleArn};
use crate::decision::Plan;
use crate::duration::parse_duration;
use crate::history::ReadinessPlan;
use crate::model::ForwardStickiness;
use crate::spec::{CellSpec, LoadBalancerKind};
use crate::validate::FieldError;

/// A cell spec that passed validation, with its parts read once.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    spec: CellSpec,
    ingress: Ingress,
    readiness_timeout: Duration,
    stickiness: Option<ForwardStickiness>,
    plan: Plan,
}

/// The listener (or rule) whose forward action okra owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingress {
    /// An ALB listener's default action, or one of its rules'.
    Alb {
        /// The listener.
        listener: ListenerArn,
        /// The rule okra writes to (none: the listener's default action).
        rule: Option<RuleArn>,
    },
    /// An NLB listener's default action.
    Nlb {
        /// The listener.
        listener: ListenerArn,
        /// `false`: blue/green, one target group weighted at a time.
        weighted: bool,
    },
}

impl Ingress {
    /// ALB or NLB.
    pub fn kind(&self) -> LoadBalancerKind {
        match self {
            Self::Alb { .. } => LoadBalancerKind::Alb,
            Self::Nlb { .. } => LoadBalancerKind::Nlb,
        }
    }

    /// The listener.
    pub fn listener(&self) -> &ListenerArn {
        match self {
            Self::Alb { listener, .. } | Self::Nlb { listener, .. } => listener,
        }
    }

    /// The rule okra writes to; `None`: the listener's default action.
    pub fn rule(&self) -> Option<&RuleArn> {
        match self {
            Self::Alb { rule, .. } => rule.as_ref(),
            Self::Nlb { .. } => None,
        }
    }

    /// `false` for an NLB that cannot split traffic between target groups.
    pub fn weighted(&self) -> bool {
        match self {
            Self::Alb { .. } => true,
            Self::Nlb { weighted, .. } => *weighted,
        }
    }
}

impl Cell {
    /// Reads the parts of a spec whose rules hold (the last step of [`CellSpec::validate`]).
    ///
    /// # Errors
    ///
    /// The first part that does not read, at its field; validation has refused such a spec
    /// before, so this is a guard, not a second set of rules.
    pub(crate) fn read(spec: CellSpec) -> Result<Self, FieldError> {
        let field = |path: &str, message: String| FieldError {
            path: path.to_string(),
            message,
        };
        let ingress = match (&spec.ingress.alb, &spec.ingress.nlb) {
            (Some(alb), None) => Ingress::Alb {
                listener: alb
                    .listener_arn
                    .parse()
                    .map_err(|e| field("ingress.alb.listenerArn", e))?,
                rule: match &alb.rule_arn {
                    Some(r) => Some(r.parse().map_err(|e| field("ingress.alb.ruleArn", e))?),
                    None => None,
                },
            },
            (None, Some(nlb)) => Ingress::Nlb {
                listener: nlb
                    .listener_arn
                    .parse()
                    .map_err(|e| field("ingress.nlb.listenerArn", e))?,
                weighted: nlb.weighted,
            },
            _ => {
                return Err(field(
                    "ingress",
                    "exactly one of `alb` and `nlb` is required".to_string(),
                ));
            }
        };
        let readiness_timeout = parse_duration(&spec.readiness.timeout)
            .map_err(|e| field("readiness.timeout", e.to_string()))?;
        let stickiness = match &spec.stickiness {
            Some(st) => {
                let d = parse_duration(&st.duration)
                    .map_err(|e| field("stickiness.duration", e.to_string()))?;
                Some(ForwardStickiness {
                    enabled: st.enabled,
                    duration_seconds: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
                })
            }
            None => None,
        };
        let plan = crate::decision::plan(&spec, readiness_timeout)?;
        Ok(Self {
            spec,
            ingress,
            readiness_timeout,
            stickiness,
            plan,
        })
    }

    /// The spec, as written.
    pub fn spec(&self) -> &CellSpec {
        &self.spec
    }

    /// The spec, as written, given back.
    pub fn into_spec(self) -> CellSpec {
        self.spec
    }

    /// The listener (or rule) okra owns.
    pub fn ingress(&self) -> &Ingress {
        &self.ingress
    }

    /// How long the readiness gate waits before giving up.
    pub fn readiness_timeout(&self) -> Duration {
        self.readiness_timeout
    }

    /// How the state machine polls the readiness gate.
    pub fn readiness_plan(&self) -> ReadinessPlan {
        ReadinessPlan::for_gate(
            self.readiness_timeout,
            self.spec.readiness.min_healthy_percent,
        )
    }

    /// The stickiness every write of the forward action carries (none: keep the listener's).
    pub fn stickiness(&self) -> Option<ForwardStickiness> {
        self.stickiness
    }

    /// The retirement policy (a spec that validated reads; a disabled policy otherwise).
    pub fn retire_policy(&self) -> crate::retire::Policy {
        crate::retire::Policy::read(&self.spec.retire).unwrap_or(crate::retire::Policy {
            enabled: false,
            after: Duration::MAX,
            keep: 0,
        })
    }

    /// The rollout's steps, normalized: timed pauses in seconds, analyses with their timing, a
    /// final `setWeight: 100`.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl Deref for Cell {
    type Target = CellSpec;

    fn deref(&self) -> &CellSpec {
        &self.spec
    }
}

impl AsRef<CellSpec> for Cell {
    fn as_ref(&self) -> &CellSpec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::PlanStep;

    const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef";
    const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/0123456789abcdef/0123456789abcdef/0123456789abcdef";

    fn spec(extra: &str) -> CellSpec {
        CellSpec::from_yaml(&format!(
            "name: web\ningress:\n  alb:\n    listenerArn: {LISTENER}\n    ruleArn: {RULE}\n\
             clusterSelector:\n  matchTags:\n    role: web\ntargetGroup:\n  port: 30080\n{extra}"
        ))
        .expect("parses")
    }

    #[test]
    fn a_valid_spec_is_read_once_into_typed_parts() {
        let cell = spec(
            "readiness:\n  timeout: 90s\n  minHealthyPercent: 50\nstickiness:\n  enabled: true\n  duration: 2h\n\
             canary:\n  steps:\n    - setWeight: 20\n    - pause: {duration: 5m}\n",
        )
        .validate()
        .expect("valid");
        assert_eq!(cell.ingress().kind(), LoadBalancerKind::Alb);
        assert_eq!(cell.ingress().listener().as_str(), LISTENER);
        assert_eq!(cell.ingress().rule().map(RuleArn::as_str), Some(RULE));
        assert!(cell.ingress().weighted());
        assert_eq!(cell.readiness_timeout(), Duration::from_secs(90));
        assert_eq!(cell.readiness_plan().min_healthy_percent, 50);
        assert_eq!(
            cell.stickiness(),
            Some(ForwardStickiness {
                enabled: true,
                duration_seconds: 7200
            })
        );
        assert_eq!(
            cell.plan().steps,
            [
                PlanStep::SetWeight { weight: 20 },
                PlanStep::Pause {
                    seconds: Some(300),
                    sampled: None,
                    scheduled: false,
                    wait: None,
                },
                PlanStep::SetWeight { weight: 100 },
            ]
        );
        assert_eq!(cell.name, "web", "reads as its spec");
        assert_eq!(cell.clone().into_spec(), *cell.spec());
    }

    #[test]
    fn an_invalid_spec_gives_no_cell() {
        let mut bad = spec("readiness:\n  timeout: soon\n");
        bad.ingress.alb.as_mut().unwrap().listener_arn = "arn:aws:elasticloadbalancing".into();
        let errors = bad.validate().expect_err("invalid").errors;
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"ingress.alb.listenerArn"), "{paths:?}");
        assert!(paths.contains(&"readiness.timeout"), "{paths:?}");
    }

    #[test]
    fn reading_names_the_field_it_cannot_read() {
        // `read` guards what validation checks; a spec that skipped it is refused at the field.
        let err = Cell::read(spec("readiness:\n  timeout: soon\n")).expect_err("unread");
        assert_eq!(err.path, "readiness.timeout");
        let err = Cell::read(spec("canary:\n  steps:\n    - pause: {duration: later}\n"))
            .expect_err("unread");
        assert_eq!(err.path, "canary.steps[0].pause.duration");
    }
}
