//! The dispatcher's lifecycle tasks over the fakes: Argo CD registration of a cell's clusters,
//! and the retirement of the target groups of versions that no longer serve.

use crate::common;

use std::collections::BTreeMap;

use common::{CELL, LISTENER, cell_with, fwd, tags};
use okra_aws::fakes::{FakeAutoScaling, FakeEks, FakeElb, FakeEvents, FakeExecutions, FakeHub};
use okra_aws::fakes::{FakeState, RawAction};
use okra_aws::handlers::dispatch::{CellResult, DispatchOutput, Lifecycle, LifecyclePorts, handle};
use okra_aws::handlers::lifecycle::{Registered, Retired};
use okra_core::argocd::{LABEL_MANAGED_BY, LABEL_VERSION, StoredSecret};
use okra_core::model::{TAG_IDLE_SINCE, TAG_RETIRED};
use serde_json::{Value, json};

const HUB: &str = "hub";

struct World {
    state: FakeState,
    execs: FakeExecutions,
    eks: FakeEks,
    elb: FakeElb,
    events: FakeEvents,
    asg: FakeAutoScaling,
    hub: FakeHub,
}

/// Cell `web` with Argo CD and `retire {after: 1h, keep: 0}`: `web-a1` (1.0.0) and `web-b1`
/// (1.1.0) each have a group; the listener sends everything to `web-b1`'s (promoted).
fn world(edit: impl FnOnce(&mut Value)) -> (World, String, String) {
    let w = World {
        state: FakeState::new(),
        execs: FakeExecutions::new(),
        eks: FakeEks::new(),
        elb: FakeElb::new(),
        events: FakeEvents::new(),
        asg: FakeAutoScaling::default(),
        hub: FakeHub::new(),
    };
    w.eks.add_active(HUB, &[("role", "hub")]);
    w.eks.add_active("web-a1", &tags("1.0.0"));
    w.eks.add_active("web-b1", &tags("1.1.0"));
    let a1 = w.elb.add_okra_group(CELL, "web-a1", "1.0.0");
    let b1 = w.elb.add_okra_group(CELL, "web-b1", "1.1.0");
    w.elb.add_listener(
        LISTENER,
        vec![RawAction::forward(1, fwd(&[(&b1, 1), (&a1, 0)]))],
    );
    w.state.insert_cell(cell_with(1, |v| {
        v["argocd"] = json!({
            "hub": HUB,
            "project": "apps",
            "roleArn": "arn:aws:iam::123456789012:role/argocd",
            "labels": {"env": "prod"},
            "accessEntry": {}
        });
        v["retire"] = json!({"after": "1h", "keep": 0});
        edit(v);
    }));
    (w, a1, b1)
}

impl World {
    async fn tick(&self) -> CellResult {
        let out: DispatchOutput = handle(
            &self.state,
            &self.execs,
            &self.eks,
            &self.elb,
            &self.events,
            LifecyclePorts {
                autoscaling: &self.asg,
                hub: &self.hub,
            },
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        )
        .await
        .expect("dispatches");
        out.results
            .into_iter()
            .find(|r| r.cell == CELL)
            .expect("the cell's result")
    }
}

fn registered(r: &CellResult) -> &Registered {
    match &r.argocd {
        Some(Lifecycle::Done(d)) => d,
        other => panic!("registration: {other:?}"),
    }
}

fn retired(r: &CellResult) -> &Retired {
    match &r.retire {
        Some(Lifecycle::Done(d)) => d,
        other => panic!("retirement: {other:?}"),
    }
}

#[tokio::test]
async fn every_versioned_cluster_gets_a_secret_once_and_a_deleted_one_loses_it() {
    let (w, _, _) = world(|v| v["retire"]["enabled"] = json!(false));
    // Someone else's secret in the namespace, labelled for the cell: never touched.
    w.hub.put(
        "argocd",
        StoredSecret {
            name: "hand-made".into(),
            labels: BTreeMap::from([("okra.io/cell".to_string(), CELL.to_string())]),
            ..StoredSecret::default()
        },
    );
    let r = w.tick().await;
    assert_eq!(registered(&r).applied, vec!["web-a1", "web-b1"], "{r:?}");
    let secrets = w.hub.secrets("argocd");
    let b1 = &secrets["okra-web-web-b1"];
    assert_eq!(b1.labels[LABEL_VERSION], "1.1.0");
    assert_eq!(b1.labels[LABEL_MANAGED_BY], "okra");
    assert_eq!(b1.labels["argocd.argoproj.io/secret-type"], "cluster");
    assert_eq!(b1.labels["env"], "prod");
    assert_eq!(b1.data["server"], "https://web-b1.eks.local");
    assert_eq!(b1.data["project"], "apps");
    // Each new cluster got Argo CD's access entry, cluster-wide, with the default policy.
    let entries = w.eks.access_entries();
    assert_eq!(entries.len(), 2);
    let (policy, ns) = &entries[&(
        "web-b1".to_string(),
        "arn:aws:iam::123456789012:role/argocd".to_string(),
    )];
    assert!(policy.ends_with("cluster-access-policy/AmazonEKSClusterAdminPolicy"));
    assert!(ns.is_empty());

    // Nothing changed: nothing written.
    let r = w.tick().await;
    assert!(registered(&r).applied.is_empty());
    assert_eq!(registered(&r).unchanged, vec!["web-a1", "web-b1"]);
    assert_eq!(w.hub.meter.calls("apply_secret"), 2);

    // A version tag that changes updates the labels.
    let mut c = w.eks.get("web-a1").expect("a1");
    c.tags.insert("okra.io/version".into(), "1.0.1".into());
    w.eks.add_cluster(c);
    let r = w.tick().await;
    assert_eq!(registered(&r).applied, vec!["web-a1"]);
    assert_eq!(
        w.hub.secrets("argocd")["okra-web-web-a1"].labels[LABEL_VERSION],
        "1.0.1"
    );

    // The cluster is deleted: its secret goes at the next tick; the hand-made one stays.
    w.eks.remove_cluster("web-a1");
    let r = w.tick().await;
    assert_eq!(registered(&r).removed, vec!["web-a1"]);
    let left: Vec<String> = w.hub.secrets("argocd").into_keys().collect();
    assert_eq!(left, vec!["hand-made", "okra-web-web-b1"]);
}

#[tokio::test]
async fn a_cluster_the_tag_search_misses_keeps_its_secret() {
    let (w, _, _) = world(|v| v["retire"]["enabled"] = json!(false));
    w.tick().await;
    w.eks.lag_in_tag_search("web-a1");
    let r = w.tick().await;
    assert!(registered(&r).removed.is_empty(), "{r:?}");
    assert!(w.hub.secrets("argocd").contains_key("okra-web-web-a1"));
}

#[tokio::test]
async fn an_unreachable_hub_is_reported_and_the_decision_goes_on() {
    let (w, _, _) = world(|v| v["argocd"]["hub"] = json!("no-such-hub"));
    let r = w.tick().await;
    match &r.argocd {
        Some(Lifecycle::Failed { error_type, error }) => {
            assert_eq!(error_type, "NotFound");
            assert!(error.contains("no-such-hub"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.outcome.as_ref(), "nothingToDo");
}

#[tokio::test]
async fn an_old_version_bakes_then_retires_and_its_cluster_leaves_argo_cd() {
    let (w, a1, b1) = world(|_| {});
    w.eks.set_node_group_asgs("web-a1", &["eks-a1-ng"]);
    // The first tick sees 1.0.0 out of traffic: its bake starts.
    let r = w.tick().await;
    let d = retired(&r);
    assert_eq!(d.marked.len(), 1, "{d:?}");
    assert!(d.retired.is_empty());
    let idle = w.elb.target_group(&a1).expect("a1").tags[TAG_IDLE_SINCE].clone();
    assert!(idle.ends_with('Z'), "{idle}");
    // Still baking: nothing more.
    let r = w.tick().await;
    assert!(retired(&r).marked.is_empty() && retired(&r).retired.is_empty());
    assert_eq!(retired(&r).baking.len(), 1);

    // An hour later (the mark moved back), it retires.
    w.elb
        .tag_target_group_now(&a1, TAG_IDLE_SINCE, "2026-01-01T00:00:00Z");
    let r = w.tick().await;
    let d = retired(&r);
    assert_eq!(d.retired.len(), 1, "{d:?}");
    assert_eq!(d.clusters, vec!["web-a1"]);
    assert!(w.elb.target_group(&a1).is_none(), "deleted");
    assert!(w.elb.target_group(&b1).is_some(), "the serving group stays");
    let action = w.elb.actions(LISTENER, None).expect("listener");
    assert_eq!(
        format!("{action:?}").matches(":targetgroup/").count(),
        1,
        "only 1.1.0's group is left in the action: {action:?}"
    );
    assert!(
        w.eks
            .get("web-a1")
            .expect("a1")
            .tags
            .contains_key(TAG_RETIRED)
    );
    assert!(w.asg.attached_to("eks-a1-ng").is_empty());
    // Its Argo CD secret went in the same tick; 1.1.0's stays.
    let secrets: Vec<String> = w.hub.secrets("argocd").into_keys().collect();
    assert_eq!(secrets, vec!["okra-web-web-b1"]);
    let ev = w.events.events();
    let retired_ev = ev
        .iter()
        .find(|e| e.kind.as_ref() == "Version Retired")
        .expect("a Version Retired event");
    assert_eq!(retired_ev.detail["version"], "1.0.0");
    assert_eq!(retired_ev.detail["reason"], "baked");
    assert_eq!(retired_ev.detail["clusters"], json!(["web-a1"]));
}

#[tokio::test]
async fn a_group_okra_did_not_make_and_a_serving_group_are_never_retired() {
    let (w, a1, _) = world(|_| {});
    let foreign = w.elb.add_target_group(
        "someone-elses",
        &[
            ("okra.io/cell", CELL),
            ("okra.io/version", "0.9.0"),
            ("okra.io/cluster", "web-a1"),
        ],
    );
    w.elb
        .tag_target_group_now(&a1, TAG_IDLE_SINCE, "2026-01-01T00:00:00Z");
    w.elb
        .tag_target_group_now(&foreign, TAG_IDLE_SINCE, "2026-01-01T00:00:00Z");
    let r = w.tick().await;
    assert_eq!(retired(&r).retired.len(), 1);
    assert!(w.elb.target_group(&foreign).is_some());
    assert_eq!(w.elb.meter.calls("delete_target_group"), 1);
}

#[tokio::test]
async fn a_deleted_clusters_group_retires_at_the_next_tick_without_a_bake() {
    let (w, a1, _) = world(|v| v["retire"] = json!({"after": "30d", "keep": 1}));
    w.eks.remove_cluster("web-a1");
    let r = w.tick().await;
    let d = retired(&r);
    assert_eq!(d.retired.len(), 1, "{d:?}");
    assert!(
        d.clusters.is_empty(),
        "a cluster that is gone is not tagged"
    );
    assert!(w.elb.target_group(&a1).is_none());
}

#[tokio::test]
async fn keep_holds_the_previous_version_for_a_pin_back() {
    let (w, a1, _) = world(|v| v["retire"] = json!({"after": "0s", "keep": 1}));
    let r = w.tick().await;
    assert!(retired(&r).retired.is_empty(), "{r:?}");
    assert!(w.elb.target_group(&a1).is_some());
}
