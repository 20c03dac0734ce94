//! Listener actions between the SDK's shape and okra's: the owned forward action found, read and replaced (other actions and OIDC secrets kept); tags.

use okra_core::model::{ChainAction, ForwardSlot, forward_slot, other_action, owned_forward};

use super::*;

/// The chain as okra's core reads it: each action's type and order.
fn chain(actions: &[Action]) -> Vec<ChainAction<'_>> {
    actions
        .iter()
        .map(|a| ChainAction {
            action_type: a.r#type().map_or("", ActionTypeEnum::as_str),
            order: a.order(),
        })
        .collect()
}

/// Reads a forward action in either of AWS's shapes: `ForwardConfig` with weights, or the
/// older single `TargetGroupArn`.
pub fn to_forward(action: &Action) -> ForwardAction {
    let mut targets = Vec::new();
    let mut stickiness = None;
    if let Some(cfg) = action.forward_config() {
        for t in cfg.target_groups() {
            if let Some(arn) = t.target_group_arn() {
                let weight = t.weight().map_or(1, |w| u32::try_from(w).unwrap_or(0));
                targets.push(WeightedTarget {
                    target_group_arn: arn.to_string(),
                    weight,
                });
            }
        }
        if let Some(s) = cfg.target_group_stickiness_config() {
            stickiness = Some(ForwardStickiness {
                enabled: s.enabled().unwrap_or(false),
                duration_seconds: s
                    .duration_seconds()
                    .map_or(0, |d| u32::try_from(d).unwrap_or(0)),
            });
        }
    }
    if targets.is_empty()
        && let Some(arn) = action.target_group_arn()
    {
        targets.push(WeightedTarget {
            target_group_arn: arn.to_string(),
            weight: 1,
        });
    }
    targets.sort();
    ForwardAction {
        targets,
        stickiness,
    }
}

/// The action okra owns ([`okra_core::model::owned_forward`]), read.
pub(super) fn current_of(actions: &[Action]) -> CurrentAction {
    let chain = chain(actions);
    match owned_forward(&chain) {
        Some(i) => CurrentAction::Forward(to_forward(&actions[i])),
        None => other_action(&chain),
    }
}

/// The SDK action for a forward action, keeping `order` from the action it replaces.
pub fn from_forward(fa: &ForwardAction, order: Option<i32>) -> Action {
    let tuples: Vec<TargetGroupTuple> = fa
        .targets
        .iter()
        .map(|t| {
            TargetGroupTuple::builder()
                .target_group_arn(&t.target_group_arn)
                .weight(i32::try_from(t.weight).unwrap_or(i32::MAX))
                .build()
        })
        .collect();
    let mut cfg = ForwardActionConfig::builder().set_target_groups(Some(tuples));
    if let Some(s) = fa.stickiness {
        // ELB reads disabled stickiness back as `{Enabled: false}` (read here as 0 seconds) but
        // refuses `DurationSeconds: 0` on write ("must be between 1 and 604800"): send no
        // duration rather than 0.
        let duration =
            (s.duration_seconds > 0).then(|| i32::try_from(s.duration_seconds).unwrap_or(i32::MAX));
        cfg = cfg.target_group_stickiness_config(
            TargetGroupStickinessConfig::builder()
                .enabled(s.enabled)
                .set_duration_seconds(duration)
                .build(),
        );
    }
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(cfg.build())
        .set_order(order)
        .build()
}

/// `actions` with the forward action replaced (or, where there is none, the last action that
/// ends the chain replaced: fixed-response or redirect becomes the forward).
/// An authentication action as ModifyListener/ModifyRule take it back: AWS never returns an OIDC
/// client secret, and refuses a modify that carries an `authenticate-oidc` action without
/// `ClientSecret` unless `UseExistingClientSecret` is true (ELB API reference,
/// AuthenticateOidcActionConfig).
pub(super) fn keep_secret(action: &Action) -> Action {
    match action.authenticate_oidc_config() {
        Some(cfg) if cfg.client_secret().is_none() => {
            let mut cfg = cfg.clone();
            cfg.use_existing_client_secret = Some(true);
            let mut a = action.clone();
            a.authenticate_oidc_config = Some(cfg);
            a
        }
        _ => action.clone(),
    }
}

/// What stands in for a forward action with no target group: a fixed 503, as a listener has
/// before okra's first version (a forward action needs at least one group).
pub(super) fn no_target(order: Option<i32>) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            elb::types::FixedResponseActionConfig::builder()
                .status_code("503")
                .content_type("text/plain")
                .message_body("okra: no version of this cell is ready")
                .build(),
        )
        .set_order(order)
        .build()
}

pub(super) fn replace_forward(actions: &[Action], fa: &ForwardAction) -> Vec<Action> {
    let mut out: Vec<Action> = actions.iter().map(keep_secret).collect();
    match forward_slot(&chain(actions)) {
        ForwardSlot::Replace(i) if fa.targets.is_empty() => {
            out[i] = no_target(actions[i].order());
        }
        ForwardSlot::Replace(i) => out[i] = from_forward(fa, actions[i].order()),
        ForwardSlot::Append(order) => out.push(from_forward(fa, order)),
    }
    out
}

pub(super) fn tags_to_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// The target group at `arn` if its tags name `cell`.
pub(super) fn cell_group(
    cell: &str,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Option<TargetGroup> {
    (tags.get(TAG_CELL).map(String::as_str) == Some(cell)).then(|| TargetGroup {
        arn: arn.to_string(),
        name: okra_core::arn::target_group_name(arn)
            .unwrap_or_default()
            .to_string(),
        cluster: tags.get(TAG_CLUSTER).cloned().unwrap_or_default(),
        version: tags.get(TAG_VERSION).cloned().unwrap_or_default(),
        managed: tags
            .get(okra_core::model::TAG_MANAGED_BY)
            .map(String::as_str)
            == Some(okra_core::model::MANAGED_BY_OKRA),
        idle_since: tags
            .get(okra_core::model::TAG_IDLE_SINCE)
            .and_then(|t| humantime::parse_rfc3339(t).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
    })
}

pub(super) fn sdk_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}
