//! One step's write to the listener, decided: is it there already, did someone else edit the
//! listener (drift), and does AWS show what was written. `shift-weights` reads the listener,
//! asks these, writes, reads again and asks [`verified`].

use std::collections::BTreeSet;

use crate::health::Excluded;
use crate::model::{CurrentAction, ForwardAction};

/// What a step does with the listener it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepWrite {
    /// The weights (and stickiness) are in place: a re-run of a step that happened. No write.
    InPlace(ForwardAction),
    /// Write the desired action.
    Write,
    /// The listener holds neither what okra's last step left nor what this step asks:
    /// someone else's edit, which okra does not overwrite. The message says what is where.
    Drift(String),
}

/// Decides a weight step. `expected` is what okra's previous step left (none: nothing forwarded
/// yet); `take_over` overwrites whatever is there.
pub fn plan_step(
    current: &CurrentAction,
    desired: &ForwardAction,
    expected: Option<&ForwardAction>,
    take_over: bool,
) -> StepWrite {
    if let CurrentAction::Forward(cur) = current
        && cur.same_weights(desired)
        && cur.stickiness == desired.stickiness
    {
        return StepWrite::InPlace(cur.clone());
    }
    if take_over {
        return StepWrite::Write;
    }
    let as_expected = match (current, expected) {
        (CurrentAction::Forward(cur), Some(exp)) => cur.same_weights(exp),
        (CurrentAction::Forward(cur), None) => cur.effective().is_empty(),
        (CurrentAction::Other { .. }, None) => true,
        (CurrentAction::Other { .. }, Some(exp)) => exp.effective().is_empty(),
    };
    if as_expected {
        return StepWrite::Write;
    }
    StepWrite::Drift(format!(
        "the listener forwards {} but okra's last step left {}; okra will not overwrite it (take \
         over explicitly to do so)",
        describe(current),
        expected
            .map(|e| describe(&CurrentAction::Forward(e.clone())))
            .unwrap_or_else(|| "nothing".into())
    ))
}

/// The action AWS shows after a weight write, if it is the one written (stickiness too, when
/// the write set it).
pub fn verified(after: CurrentAction, desired: &ForwardAction) -> Result<ForwardAction, String> {
    match after {
        CurrentAction::Forward(fa)
            if fa.same_weights(desired)
                && (desired.stickiness.is_none() || fa.stickiness == desired.stickiness) =>
        {
            Ok(fa)
        }
        other => Err(not_shown(desired, &other)),
    }
}

/// The action AWS shows after a standby write (groups joining or leaving at weight 0), if it is
/// the one written: the same groups, the same weights.
pub fn verified_standby(
    after: CurrentAction,
    desired: &ForwardAction,
) -> Result<ForwardAction, String> {
    let groups = |fa: &ForwardAction| -> BTreeSet<String> {
        fa.targets
            .iter()
            .map(|t| t.target_group_arn.clone())
            .collect()
    };
    match after {
        CurrentAction::Forward(fa)
            if groups(&fa) == groups(desired) && fa.same_weights(desired) =>
        {
            Ok(fa)
        }
        // Every group left: the listener's action is no forward any more.
        CurrentAction::Other { .. } if desired.targets.is_empty() => Ok(desired.clone()),
        other => Err(not_shown(desired, &other)),
    }
}

fn not_shown(desired: &ForwardAction, shown: &CurrentAction) -> String {
    format!(
        "wrote {} but AWS shows {}",
        describe(&CurrentAction::Forward(desired.clone())),
        describe(shown)
    )
}

/// Canary groups below the readiness gate, in one line.
pub fn unhealthy_message(bad: &[Excluded]) -> String {
    bad.iter()
        .map(|e| format!("{}: {}", short(&e.target_group_arn), e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An action in words: `group=weight, ...`, or the action's type.
pub fn describe(a: &CurrentAction) -> String {
    match a {
        CurrentAction::Forward(fa) => fa
            .targets
            .iter()
            .map(|t| format!("{}={}", short(&t.target_group_arn), t.weight))
            .collect::<Vec<_>>()
            .join(", "),
        CurrentAction::Other { action_type } => action_type.clone(),
    }
}

/// A target group's name from its ARN (the ARN itself if it is not one).
pub fn short(arn: &str) -> &str {
    crate::arn::target_group_name(arn).unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WeightedTarget;

    fn tg(name: &str) -> String {
        format!("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/{name}/abc")
    }

    fn fa(ws: &[(&str, u32)]) -> ForwardAction {
        ForwardAction {
            targets: ws
                .iter()
                .map(|(n, w)| WeightedTarget {
                    target_group_arn: tg(n),
                    weight: *w,
                })
                .collect(),
            stickiness: None,
        }
    }

    #[test]
    fn a_step_in_place_writes_nothing() {
        let want = fa(&[("a", 90), ("b", 10)]);
        let cur = CurrentAction::Forward(want.clone());
        assert_eq!(
            plan_step(&cur, &want, None, false),
            StepWrite::InPlace(want)
        );
    }

    #[test]
    fn what_the_last_step_left_is_written_over_anything_else_is_drift() {
        let left = fa(&[("a", 100), ("b", 0)]);
        let want = fa(&[("a", 90), ("b", 10)]);
        let cur = CurrentAction::Forward(left.clone());
        assert_eq!(plan_step(&cur, &want, Some(&left), false), StepWrite::Write);
        let edited = CurrentAction::Forward(fa(&[("a", 50), ("b", 50)]));
        let StepWrite::Drift(why) = plan_step(&edited, &want, Some(&left), false) else {
            panic!("an edited listener is drift");
        };
        assert_eq!(
            why,
            "the listener forwards a=50, b=50 but okra's last step left a=100, b=0; okra will \
             not overwrite it (take over explicitly to do so)"
        );
        assert_eq!(
            plan_step(&edited, &want, Some(&left), true),
            StepWrite::Write
        );
        // Nothing forwarded yet and nothing expected: the first write.
        let fixed = CurrentAction::Other {
            action_type: "fixed-response".into(),
        };
        assert_eq!(plan_step(&fixed, &want, None, false), StepWrite::Write);
        assert!(matches!(
            plan_step(&cur, &want, None, false),
            StepWrite::Drift(_)
        ));
    }

    #[test]
    fn a_write_is_verified_by_what_aws_shows() {
        let want = fa(&[("a", 90), ("b", 10)]);
        assert_eq!(
            verified(CurrentAction::Forward(want.clone()), &want),
            Ok(want.clone())
        );
        assert_eq!(
            verified(CurrentAction::Forward(fa(&[("a", 100)])), &want),
            Err("wrote a=90, b=10 but AWS shows a=100".into())
        );
        let standby = fa(&[("a", 100), ("b", 0)]);
        // Same weights, a group missing: not what was written.
        assert!(verified_standby(CurrentAction::Forward(fa(&[("a", 100)])), &standby).is_err());
        assert_eq!(
            verified_standby(CurrentAction::Forward(standby.clone()), &standby),
            Ok(standby)
        );
        let none = ForwardAction::default();
        let fixed = CurrentAction::Other {
            action_type: "fixed-response".into(),
        };
        assert_eq!(verified_standby(fixed, &none), Ok(none));
    }
}
