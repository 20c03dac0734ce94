//! `okra doctor`'s adapter (`handlers::doctor::handle`) over the fakes: what it reads for the
//! `target-group-quota` and `argocd-hub` checks, and what the checks then say.

use crate::common;

use common::{CELL, LISTENER, cell_with, fwd, tags};
use okra_aws::OkraError;
use okra_aws::fakes::{FakeEks, FakeElb, RawAction};
use okra_aws::handlers::doctor::{Account, DoctorReport, handle};
use okra_aws::ports::{
    AccountLimitsPort, ClusterPort, MetricsPort, NetworkPort, SecretsPort, TrailPort, Unset,
};
use okra_core::doctor::{Check, Level, MetricLookup, TrailFacts};
use okra_core::nodes::SecurityGroupRules;
use serde_json::json;

const ROLE: &str = "arn:aws:iam::123456789012:role/okra-DispatcherFunctionRole-1A2B3C";
const EDIT: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";
const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// The rest of the account: no security groups, one trail, ELB's limits as set.
struct Rest {
    limit: Option<usize>,
    count: usize,
    limits_fail: bool,
}

impl NetworkPort for Rest {
    async fn security_groups(&self, _ids: &[String]) -> okra_aws::Result<Vec<SecurityGroupRules>> {
        Ok(vec![])
    }
    async fn subnet_cidrs(&self, _ids: &[String]) -> okra_aws::Result<Vec<String>> {
        Ok(vec![])
    }
}

impl TrailPort for Rest {
    async fn trails(&self) -> okra_aws::Result<Vec<TrailFacts>> {
        Ok(vec![TrailFacts {
            name: "main".into(),
            home_region: "eu-west-1".into(),
            multi_region: true,
            logging: true,
            write_management_events: true,
        }])
    }
}

impl MetricsPort for Rest {
    async fn get_metric_data(
        &self,
        _queries: &[okra_aws::ports::MetricQuery],
        _start: i64,
        _end: i64,
    ) -> okra_aws::Result<Vec<okra_aws::ports::MetricSeries>> {
        Ok(vec![])
    }
    async fn metric_exists(&self, _lookup: &MetricLookup) -> okra_aws::Result<bool> {
        Ok(true)
    }
}

impl SecretsPort for Rest {
    async fn secret_string(&self, id: &str) -> okra_aws::Result<String> {
        Err(OkraError::InvalidInput(format!("no secret {id}")))
    }
}

impl AccountLimitsPort for Rest {
    async fn target_group_limit(&self) -> okra_aws::Result<Option<usize>> {
        if self.limits_fail {
            return Err(OkraError::from_code(
                "AccessDenied".into(),
                "not authorized to perform: elasticloadbalancing:DescribeAccountLimits".into(),
            ));
        }
        Ok(self.limit)
    }
    async fn count_target_groups(&self) -> okra_aws::Result<usize> {
        Ok(self.count)
    }
}

struct World {
    eks: FakeEks,
    elb: FakeElb,
    rest: Rest,
}

/// Cell `web`'s clusters `web-a1` (1.0.0, serving) and `web-b1` (1.1.0), each with an okra group;
/// the hub cluster `hub` (not the cell's).
fn world() -> World {
    let w = World {
        eks: FakeEks::new(),
        elb: FakeElb::new(),
        rest: Rest {
            limit: None,
            count: 40,
            limits_fail: false,
        },
    };
    w.eks.add_active("web-a1", &tags("1.0.0"));
    w.eks.add_active("web-b1", &tags("1.1.0"));
    w.eks.add_active("hub", &[("team", "platform")]);
    let a1 = w.elb.add_okra_group(CELL, "web-a1", "1.0.0");
    w.elb.add_okra_group(CELL, "web-b1", "1.1.0");
    w.elb.add_target_group("someone-elses", &[]);
    w.elb
        .add_listener(LISTENER, vec![RawAction::forward(1, fwd(&[(&a1, 1)]))]);
    w
}

/// The doctor on cell `web`, with `argocd: {hub: hub}` when `argocd`.
async fn doctor(w: &World, argocd: bool, role: Option<&str>) -> DoctorReport {
    let spec = cell_with(1, |v| {
        if argocd {
            v["argocd"] = json!({"hub": "hub"});
        }
    });
    let cell = spec.validate().expect("the test cell is valid");
    handle(
        &Account {
            eks: &w.eks,
            elb: &w.elb,
            limits: &w.rest,
            network: &w.rest,
            trails: &w.rest,
            metrics: &w.rest,
            secrets: (&w.rest, None),
            http: &Unset,
            dispatcher_role: role,
            region: "eu-west-1",
        },
        &cell,
    )
    .await
    .expect("the doctor answers")
}

fn check<'a>(r: &'a DoctorReport, id: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {r:#?}"))
}

#[tokio::test]
async fn the_regions_target_groups_against_the_quota_with_the_cells_own() {
    let mut w = world();
    let r = doctor(&w, false, None).await;
    let c = check(&r, "target-group-quota");
    assert_eq!(c.level, Level::Ok, "{c:?}");
    assert!(
        c.summary.contains(
            "40 of 3000 target groups in eu-west-1 (1 %); 2 of them okra's groups of cell web"
        ),
        "{c:?}"
    );

    w.rest.limit = Some(50);
    let r = doctor(&w, false, None).await;
    let c = check(&r, "target-group-quota");
    assert_eq!(c.level, Level::Warning, "{c:?}");
    assert!(c.fix.as_deref().unwrap_or_default().contains("retire.keep"));

    w.rest.count = 48;
    let r = doctor(&w, false, None).await;
    assert_eq!(check(&r, "target-group-quota").level, Level::Error);
    assert_eq!(r.level, Level::Error);

    // okra's groups unreadable: the quota is still checked, the summary says why.
    w.rest.count = 10;
    w.elb.meter.throttle_next("find_target_groups", 1);
    let r = doctor(&w, false, None).await;
    let c = check(&r, "target-group-quota");
    assert_eq!(c.level, Level::Ok, "{c:?}");
    assert!(c.summary.contains("could not be counted"), "{c:?}");

    w.rest.limits_fail = true;
    let r = doctor(&w, false, None).await;
    let c = check(&r, "target-group-quota");
    assert_eq!(c.level, Level::Warning, "{c:?}");
    assert!(c.summary.contains("DescribeAccountLimits"), "{c:?}");
}

#[tokio::test]
async fn no_argocd_no_hub_reads() {
    let w = world();
    let r = doctor(&w, false, Some(ROLE)).await;
    assert!(r.checks.iter().all(|c| c.id != "argocd-hub"), "{r:#?}");
    assert_eq!(w.eks.meter.calls("access_entry"), 0);
}

#[tokio::test]
async fn the_dispatcher_role_needs_an_access_entry_that_writes_secrets_in_the_namespace() {
    let w = world();
    // No entry.
    let r = doctor(&w, true, Some(ROLE)).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Error, "{c:?}");
    let fix = c.fix.as_deref().expect("a fix");
    assert!(fix.contains("ArgoCdHubCluster=hub"), "{fix}");
    assert!(
        fix.contains(&format!(
            "aws eks create-access-entry --cluster-name hub --principal-arn {ROLE}"
        )),
        "{fix}"
    );
    assert_eq!(w.eks.meter.calls("access_entry"), 1);

    // template.yaml's ArgoCdHubAccessEntry: AmazonEKSEditPolicy on the namespace.
    w.eks
        .ensure_access_entry("hub", ROLE, EDIT, &["argocd".to_string()])
        .await
        .expect("an entry");
    let r = doctor(&w, true, Some(ROLE)).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Ok, "{c:?}");
    assert!(c.summary.contains("AmazonEKSEditPolicy"), "{c:?}");

    // The whole cluster covers the namespace too.
    w.eks
        .ensure_access_entry("hub", ROLE, EDIT, &[])
        .await
        .expect("an entry");
    assert_eq!(
        check(&doctor(&w, true, Some(ROLE)).await, "argocd-hub").level,
        Level::Ok
    );

    // Another namespace.
    w.eks
        .ensure_access_entry("hub", ROLE, EDIT, &["apps".to_string()])
        .await
        .expect("an entry");
    let r = doctor(&w, true, Some(ROLE)).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Error, "{c:?}");
    assert!(c.summary.contains("namespaces apps"), "{c:?}");

    // A policy without secrets.
    w.eks
        .ensure_access_entry("hub", ROLE, VIEW, &[])
        .await
        .expect("an entry");
    let r = doctor(&w, true, Some(ROLE)).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Error, "{c:?}");
    assert!(c.summary.contains("AmazonEKSViewPolicy"), "{c:?}");

    // Another principal's entry is not the dispatcher's.
    let other = "arn:aws:iam::123456789012:role/someone";
    let r = doctor(&w, true, Some(other)).await;
    assert_eq!(check(&r, "argocd-hub").level, Level::Error);
}

#[tokio::test]
async fn without_the_dispatchers_role_the_entry_is_not_read() {
    let w = world();
    let r = doctor(&w, true, None).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Info, "{c:?}");
    assert!(c.summary.contains("https://hub.eks.local"), "{c:?}");
    assert_eq!(w.eks.meter.calls("access_entry"), 0);
    // An empty DISPATCHER_ROLE_ARN is none.
    let r = doctor(&w, true, Some("")).await;
    assert_eq!(check(&r, "argocd-hub").level, Level::Info);
    assert_eq!(w.eks.meter.calls("access_entry"), 0);
}

#[tokio::test]
async fn a_hub_that_is_gone_or_not_active_or_unreadable() {
    let w = world();
    w.eks.remove_cluster("hub");
    let r = doctor(&w, true, Some(ROLE)).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Error, "{c:?}");
    assert!(c.summary.contains("does not exist"), "{c:?}");
    assert_eq!(w.eks.meter.calls("access_entry"), 0);

    w.eks.add_cluster(okra_aws::fakes::cluster(
        "hub",
        okra_core::model::ClusterStatus::Creating,
        &[],
    ));
    let r = doctor(&w, true, Some(ROLE)).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Error, "{c:?}");
    assert!(c.summary.contains("CREATING"), "{c:?}");
    assert_eq!(w.eks.meter.calls("access_entry"), 0);

    w.eks
        .set_status("hub", okra_core::model::ClusterStatus::Active);
    w.eks.meter.fail_next("access_entry", 1, || {
        OkraError::from_code(
            "AccessDeniedException".into(),
            "not authorized to perform: eks:DescribeAccessEntry".into(),
        )
    });
    let r = doctor(&w, true, Some(ROLE)).await;
    let c = check(&r, "argocd-hub");
    assert_eq!(c.level, Level::Warning, "{c:?}");
    assert!(c.summary.contains("could not be read"), "{c:?}");
}
