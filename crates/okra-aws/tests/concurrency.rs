//! Which AWS calls the handlers make at the same time, and how many at most.
//!
//! The fakes answer at once, so the handlers' calls are wrapped: every call first yields to the
//! executor (as a real request would while waiting on the network), and a shared record notes
//! which calls were in flight together and how many of each at most. Counting, not timing: the
//! answers do not depend on how fast the machine is.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use common::{CELL, LISTENER, cell, cell_with, tags};
use okra_aws::Result;
use okra_aws::fakes::{FakeAutoScaling, FakeEks, FakeElb, RawAction};
use okra_aws::handlers::discover::{self, DESCRIBE_CONCURRENCY, DiscoverInput};
use okra_aws::handlers::ensure::{self, EnsureInput, MEMBER_CONCURRENCY, Mode};
use okra_aws::ports::{ClusterPort, LoadBalancerPort, NewTargetGroup, Owned, TargetHealth};
use okra_core::decision::{Member, Side};
use okra_core::model::{Cluster, ForwardAction, TAG_CLUSTER, TargetGroup};
use pretty_assertions::assert_eq;
use serde_json::json;

/// What was in flight together.
#[derive(Debug, Default)]
struct Flight {
    state: Mutex<FlightState>,
}

#[derive(Debug, Default)]
struct FlightState {
    now: Vec<&'static str>,
    max: BTreeMap<&'static str, usize>,
    together: BTreeSet<(&'static str, &'static str)>,
}

impl Flight {
    async fn track<T>(&self, op: &'static str, call: impl Future<Output = T>) -> T {
        {
            let mut s = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let others: Vec<_> = s.now.clone();
            for other in others {
                s.together.insert((other.min(op), other.max(op)));
            }
            s.now.push(op);
            let same = s.now.iter().filter(|o| **o == op).count();
            let max = s.max.entry(op).or_default();
            *max = (*max).max(same);
        }
        tokio::task::yield_now().await;
        let out = call.await;
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = s.now.iter().position(|o| *o == op) {
            s.now.remove(i);
        }
        out
    }

    fn max(&self, op: &str) -> usize {
        let s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.max.get(op).copied().unwrap_or(0)
    }

    fn together(&self, a: &'static str, b: &'static str) -> bool {
        let s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.together.contains(&(a.min(b), a.max(b)))
    }
}

/// A port whose calls go through a [`Flight`].
struct Tracked<'a, T> {
    inner: &'a T,
    flight: &'a Flight,
}

impl ClusterPort for Tracked<'_, FakeEks> {
    async fn find_clusters(&self, tags: &BTreeMap<String, String>) -> Result<Vec<String>> {
        self.flight
            .track("find_clusters", self.inner.find_clusters(tags))
            .await
    }
    async fn find_clusters_any(
        &self,
        key: &str,
        values: &[String],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>> {
        self.flight
            .track(
                "find_clusters_any",
                self.inner.find_clusters_any(key, values),
            )
            .await
    }
    async fn describe_cluster(&self, name: &str) -> Result<Option<Cluster>> {
        self.flight
            .track("describe_cluster", self.inner.describe_cluster(name))
            .await
    }
    async fn tag_cluster(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.flight
            .track("tag_cluster", self.inner.tag_cluster(arn, tags))
            .await
    }
    async fn untag_cluster(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.flight
            .track("untag_cluster", self.inner.untag_cluster(arn, keys))
            .await
    }
    async fn ensure_access_entry(
        &self,
        cluster: &str,
        principal: &str,
        policy: &str,
        namespaces: &[String],
    ) -> Result<()> {
        let call = self
            .inner
            .ensure_access_entry(cluster, principal, policy, namespaces);
        self.flight.track("ensure_access_entry", call).await
    }
    async fn node_group_asgs(&self, cluster: &str) -> Result<Vec<String>> {
        self.flight
            .track("node_group_asgs", self.inner.node_group_asgs(cluster))
            .await
    }
    async fn cluster_instances(
        &self,
        cluster: &str,
    ) -> Result<Vec<okra_core::nodes::NodeInstance>> {
        self.flight
            .track("cluster_instances", self.inner.cluster_instances(cluster))
            .await
    }
}

impl LoadBalancerPort for Tracked<'_, FakeElb> {
    type Raw = <FakeElb as LoadBalancerPort>::Raw;

    async fn read_action(&self, listener: &str, rule: Option<&str>) -> Result<Owned<Self::Raw>> {
        self.flight
            .track("read_action", self.inner.read_action(listener, rule))
            .await
    }
    async fn write_forward(
        &self,
        listener: &str,
        rule: Option<&str>,
        read: &Self::Raw,
        action: &ForwardAction,
    ) -> Result<()> {
        let call = self.inner.write_forward(listener, rule, read, action);
        self.flight.track("write_forward", call).await
    }
    async fn standby_rule(
        &self,
        listener: &str,
        owner: &str,
    ) -> Result<Option<(String, Vec<String>)>> {
        let call = self.inner.standby_rule(listener, owner);
        self.flight.track("standby_rule", call).await
    }
    async fn put_standby_rule(
        &self,
        listener: &str,
        owner: &str,
        existing: Option<&str>,
        groups: &[String],
    ) -> Result<()> {
        let call = self
            .inner
            .put_standby_rule(listener, owner, existing, groups);
        self.flight.track("put_standby_rule", call).await
    }
    async fn delete_rule(&self, rule: &str) -> Result<()> {
        let call = self.inner.delete_rule(rule);
        self.flight.track("delete_rule", call).await
    }
    async fn find_target_groups(&self, cell: &str, arns: &[String]) -> Result<Vec<TargetGroup>> {
        let call = self.inner.find_target_groups(cell, arns);
        self.flight.track("find_target_groups", call).await
    }
    async fn find_cells_target_groups(
        &self,
        cells: &[String],
    ) -> Result<Vec<(String, TargetGroup)>> {
        self.flight
            .track(
                "find_cells_target_groups",
                self.inner.find_cells_target_groups(cells),
            )
            .await
    }
    async fn resource_tags(&self, arns: &[String]) -> Result<okra_core::owner::Tagged> {
        self.flight
            .track("resource_tags", self.inner.resource_tags(arns))
            .await
    }
    async fn load_balancer(&self, listener: &str) -> Result<okra_core::doctor::LoadBalancerFacts> {
        self.flight
            .track("load_balancer", self.inner.load_balancer(listener))
            .await
    }
    async fn create_target_group(&self, tg: &NewTargetGroup) -> Result<String> {
        self.flight
            .track("create_target_group", self.inner.create_target_group(tg))
            .await
    }
    async fn untag_target_group(&self, arn: &str, keys: &[String]) -> Result<()> {
        let call = self.inner.untag_target_group(arn, keys);
        self.flight.track("untag_target_group", call).await
    }
    async fn forward_uses(&self, arn: &str) -> Result<Vec<okra_core::retire::ForwardUse>> {
        let call = self.inner.forward_uses(arn);
        self.flight.track("forward_uses", call).await
    }
    async fn remove_forward(
        &self,
        use_: &okra_core::retire::ForwardUse,
        group: &str,
    ) -> Result<()> {
        let call = self.inner.remove_forward(use_, group);
        self.flight.track("remove_forward", call).await
    }
    async fn delete_target_group(&self, arn: &str) -> Result<()> {
        let call = self.inner.delete_target_group(arn);
        self.flight.track("delete_target_group", call).await
    }
    async fn target_group_by_name(&self, name: &str) -> Result<Option<String>> {
        self.flight
            .track(
                "target_group_by_name",
                self.inner.target_group_by_name(name),
            )
            .await
    }
    async fn tag_target_group(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
        self.flight
            .track("tag_target_group", self.inner.tag_target_group(arn, tags))
            .await
    }
    async fn target_health(&self, arn: &str) -> Result<TargetHealth> {
        self.flight
            .track("target_health", self.inner.target_health(arn))
            .await
    }
    async fn load_balancer_vpc(&self, listener: &str) -> Result<String> {
        self.flight
            .track("load_balancer_vpc", self.inner.load_balancer_vpc(listener))
            .await
    }
    async fn registered_targets(&self, arn: &str) -> Result<Vec<String>> {
        self.flight
            .track("registered_targets", self.inner.registered_targets(arn))
            .await
    }
    async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        self.flight
            .track("register_targets", self.inner.register_targets(arn, ids))
            .await
    }
    async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        self.flight
            .track(
                "deregister_targets",
                self.inner.deregister_targets(arn, ids),
            )
            .await
    }
}

/// 20 clusters of two versions behind a listener that forwards to nothing yet.
fn twenty_clusters() -> (FakeEks, FakeElb) {
    let eks = FakeEks::new();
    for i in 0..10 {
        eks.add_active(&format!("a{i:02}"), &tags("1.0.0"));
        eks.add_active(&format!("b{i:02}"), &tags("1.1.0"));
    }
    let elb = FakeElb::new();
    elb.add_listener(LISTENER, vec![RawAction::fixed_response()]);
    (eks, elb)
}

#[tokio::test]
async fn discovery_reads_the_listener_while_it_finds_the_clusters_and_describes_eight_at_a_time()
-> Result<()> {
    let input = || DiscoverInput {
        cell: cell(2),
        blocklist: BTreeSet::new(),
        labels: BTreeMap::new(),
    };
    let (eks, elb) = twenty_clusters();
    let flight = Flight::default();
    let tracked = discover::handle(
        &Tracked {
            inner: &eks,
            flight: &flight,
        },
        &Tracked {
            inner: &elb,
            flight: &flight,
        },
        input(),
    )
    .await?;

    assert!(
        flight.together("read_action", "find_clusters"),
        "the listener read waits for the cluster list: {flight:?}"
    );
    assert_eq!(flight.max("describe_cluster"), DESCRIBE_CONCURRENCY);
    assert_eq!(flight.max("read_action"), 1);
    // The same decision as without the overlap, and every cluster seen once.
    let (eks, elb) = twenty_clusters();
    assert_eq!(tracked, discover::handle(&eks, &elb, input()).await?);
    assert_eq!(tracked.clusters_seen, 20);
    Ok(())
}

fn six_members() -> Side {
    Side {
        version: Some("1.1.0".into()),
        members: (0..6)
            .map(|i| Member {
                cluster: Some(format!("b{i}")),
                target_group_arn: None,
                vpc_id: Some("vpc-1".into()),
            })
            .collect(),
    }
}

#[tokio::test]
async fn ensure_makes_and_reads_the_members_groups_four_at_a_time_in_member_order() -> Result<()> {
    // The side has six members (ensure makes what it is given); the cell itself stays valid.
    let spec = cell_with(2, |v| v["targetGroup"]["registration"] = json!("external"));
    let (eks, elb, asg) = (FakeEks::new(), FakeElb::new(), FakeAutoScaling::new());
    let flight = Flight::default();
    let out = ensure::handle(
        &eks,
        &Tracked {
            inner: &elb,
            flight: &flight,
        },
        &asg,
        EnsureInput {
            cell: spec,
            side: six_members(),
            mode: Mode::Ensure,
        },
    )
    .await?;

    assert_eq!(flight.max("target_group_by_name"), MEMBER_CONCURRENCY);
    assert_eq!(flight.max("create_target_group"), MEMBER_CONCURRENCY);
    assert_eq!(flight.max("target_health"), MEMBER_CONCURRENCY);
    // In member order, each member's own group, all six made by this run.
    let clusters: Vec<_> = out.groups.iter().map(|g| g.cluster.clone()).collect();
    let expected: Vec<_> = (0..6).map(|i| Some(format!("b{i}"))).collect();
    assert_eq!(clusters, expected);
    for (m, g) in out.side.members.iter().zip(&out.groups) {
        assert_eq!(
            m.target_group_arn.as_deref(),
            Some(g.target_group_arn.as_str())
        );
        assert!(g.created);
        let made = elb
            .target_group(&g.target_group_arn)
            .map(|tg| tg.tags.get(TAG_CLUSTER).cloned());
        assert_eq!(made, Some(m.cluster.clone()), "{CELL}: {g:?}");
    }
    assert_eq!(elb.target_groups().len(), 6);
    Ok(())
}
