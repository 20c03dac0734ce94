//! Shared helpers of the handler tests: a valid cell spec to vary, and cluster tags.

#![allow(dead_code)]

use okra_core::model::{ForwardAction, ForwardStickiness, WeightedTarget};
use okra_core::spec::CellSpec;
use serde_json::{Value, json};

/// The listener of the test cell.
pub const LISTENER: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2";
/// A rule of that listener.
pub const RULE: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
/// The test cell's name.
pub const CELL: &str = "web";

/// The test cell as JSON: an ALB listener's default action, clusters tagged `okra.io/cell: web`,
/// `replicas` clusters a version, steps 10 % / pause / 50 %.
pub fn cell_json(replicas: u32) -> Value {
    json!({
        "name": CELL,
        "ingress": { "alb": { "listenerArn": LISTENER } },
        "clusterSelector": { "matchTags": { "okra.io/cell": CELL } },
        "replicas": replicas,
        "targetGroup": {
            "port": 30080,
            "protocol": "HTTP",
            "healthCheck": { "path": "/healthz", "matcher": "200-399" },
            "registration": "nodegroups"
        },
        "readiness": { "minHealthyPercent": 100, "timeout": "10m" },
        "canary": {
            "steps": [
                { "setWeight": 10 },
                { "pause": { "duration": "1m" } },
                { "setWeight": 50 }
            ]
        }
    })
}

/// The test cell, changed by `edit` (as JSON) first.
pub fn cell_with(replicas: u32, edit: impl FnOnce(&mut Value)) -> CellSpec {
    let mut v = cell_json(replicas);
    edit(&mut v);
    serde_json::from_value(v).expect("the test cell parses")
}

/// The test cell.
pub fn cell(replicas: u32) -> CellSpec {
    cell_with(replicas, |_| {})
}

/// Tags of a cluster of the test cell at `version`.
pub fn tags(version: &str) -> [(&'static str, &str); 2] {
    [("okra.io/cell", CELL), ("okra.io/version", version)]
}

/// A forward action from (ARN, weight) pairs.
pub fn fwd(targets: &[(&str, u32)]) -> ForwardAction {
    let mut targets: Vec<WeightedTarget> = targets
        .iter()
        .map(|(a, w)| WeightedTarget {
            target_group_arn: (*a).to_string(),
            weight: *w,
        })
        .collect();
    targets.sort();
    ForwardAction {
        targets,
        stickiness: None,
    }
}

/// A forward action with stickiness.
pub fn fwd_sticky(targets: &[(&str, u32)], duration_seconds: u32) -> ForwardAction {
    ForwardAction {
        stickiness: Some(ForwardStickiness {
            enabled: true,
            duration_seconds,
        }),
        ..fwd(targets)
    }
}
