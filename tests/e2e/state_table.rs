//! okra's DynamoDB adapter against moto's DynamoDB (okra-testkit's local AWS): the conditional
//! writes, lock, blocks, rollout records and signals as DynamoDB evaluates them. The adapter's
//! requests are checked one by one against `aws-smithy-mocks` in
//! crates/okra-aws/tests/dynamo_adapter.rs (which needs no local AWS).

use crate::common;

use aws_sdk_dynamodb as ddb;
use okra_aws::dynamo::Dynamo;
use okra_aws::state::{HistoryEntry, Lock, Signal, StatePort};
use serde_json::json;

fn spec() -> okra_core::spec::CellSpec {
    serde_json::from_value(json!({
        "name": "web",
        "ingress": {"alb": {"listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"}},
        "clusterSelector": {"matchTags": {"okra.io/cell": "web"}},
        "targetGroup": {"port": 30080, "protocol": "HTTP", "healthCheck": {"path": "/healthz"}, "registration": "external"},
    }))
    .expect("parses")
}

fn entry() -> HistoryEntry {
    HistoryEntry {
        at: "2026-03-02T10:01:00.000Z".into(),
        event: okra_core::vocab::HistoryEvent::StepDone,
        step: Some(2),
        weight: Some(50),
        detail: json!({"verdict": "pass"}),
    }
}

async fn moto_table() -> Dynamo {
    let aws = common::stack().expect("local AWS (run `make setup` once)");
    let (key, secret) = aws.credentials();
    let conf = ddb::config::Builder::new()
        .behavior_version(ddb::config::BehaviorVersion::latest())
        .region(ddb::config::Region::new(aws.region()))
        .endpoint_url(aws.endpoint())
        .credentials_provider(ddb::config::Credentials::new(
            key, secret, None, None, "moto",
        ))
        .build();
    let client = ddb::Client::from_conf(conf);
    let name = okra_testkit::LocalAws::unique("okra-state");
    let table = Dynamo::new(client, name);
    table.create_table().await.expect("creates the table");
    table
}

#[tokio::test]
async fn the_adapter_against_moto() {
    use okra_aws::state::{Block, Rollout};
    let t = moto_table().await;
    let cell = spec();

    // Cells: optimistic revisions.
    assert_eq!(t.put_cell(&cell, None).await.expect("creates"), 1);
    assert_eq!(
        t.put_cell(&cell, None)
            .await
            .expect_err("exists")
            .error_type(),
        "Conflict"
    );
    assert_eq!(t.put_cell(&cell, Some(1)).await.expect("updates"), 2);
    assert_eq!(
        t.put_cell(&cell, Some(1))
            .await
            .expect_err("stale")
            .error_type(),
        "Conflict"
    );
    let cells = t.list_cells().await.expect("lists");
    assert_eq!(cells.len(), 1);
    assert_eq!(
        (cells[0].spec.clone(), cells[0].revision),
        (cell.clone(), 2)
    );

    // The lock.
    let lock = |e: &str| Lock {
        execution: e.into(),
        version: "1.2.0".into(),
        acquired_at: "t".into(),
    };
    assert_eq!(
        t.acquire_lock("web", &lock("e1")).await.expect("answers"),
        Ok(())
    );
    assert_eq!(
        t.acquire_lock("web", &lock("e1")).await.expect("answers"),
        Ok(()),
        "idempotent"
    );
    assert_eq!(
        t.acquire_lock("web", &lock("e2")).await.expect("answers"),
        Err(lock("e1"))
    );
    t.release_lock("web", "e2")
        .await
        .expect("not e2's: a no-op");
    assert_eq!(t.get_lock("web").await.expect("reads"), Some(lock("e1")));
    t.release_lock("web", "e1").await.expect("releases");
    t.release_lock("web", "e1").await.expect("idempotent");
    assert_eq!(t.get_lock("web").await.expect("reads"), None);
    assert_eq!(
        t.acquire_lock("web", &lock("e2")).await.expect("answers"),
        Ok(())
    );

    // Blocks and attempts.
    let block = |reason: &str| Block {
        version: "1.2.0".into(),
        reason: reason.into(),
        execution: "e1".into(),
        at: "t".into(),
    };
    t.block("web", &block("first")).await.expect("blocks");
    t.block("web", &block("second")).await.expect("idempotent");
    assert_eq!(t.blocklist("web").await.expect("reads"), [block("first")]);
    assert_eq!(t.attempt("web", "1.2.0").await.expect("reads"), 0);
    assert_eq!(t.unblock("web", "1.2.0").await.expect("unblocks"), 1);
    assert_eq!(t.unblock("web", "1.2.0").await.expect("unblocks"), 2);
    assert_eq!(t.attempt("web", "1.2.0").await.expect("reads"), 2);
    assert!(t.blocklist("web").await.expect("reads").is_empty());

    // A rollout's record: one entry per key.
    let rollout = |e: &str, at: &str| Rollout {
        execution: e.into(),
        cell: "web".into(),
        from: Some("1.1.0".into()),
        to: "1.2.0".into(),
        status: okra_core::vocab::RolloutStatus::Running,
        weight: 0,
        history: Vec::new(),
        started_at: at.into(),
        updated_at: at.into(),
    };
    t.start_rollout(&rollout("e1", "2026-03-01T00:00:00.000Z"))
        .await
        .expect("creates");
    t.start_rollout(&rollout("e1", "2026-03-09T00:00:00.000Z"))
        .await
        .expect("idempotent");
    t.start_rollout(&rollout("e2", "2026-03-02T00:00:00.000Z"))
        .await
        .expect("creates");
    t.record("web", "e1", &entry(), None)
        .await
        .expect("records");
    let mut replay = entry();
    replay.at = "2026-03-02T10:09:00.000Z".into();
    t.record("web", "e1", &replay, None)
        .await
        .expect("a replay is a no-op");
    let done = HistoryEntry {
        event: okra_core::vocab::HistoryEvent::Promoted,
        step: None,
        weight: Some(100),
        ..entry()
    };
    t.record(
        "web",
        "e1",
        &done,
        Some(okra_core::vocab::RolloutStatus::Promoted),
    )
    .await
    .expect("records");
    let err = t
        .record("web", "nope", &entry(), None)
        .await
        .expect_err("no rollout");
    assert_eq!(err.error_type(), "NotFound");
    let r = t
        .get_rollout("web", "e1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(r.history, [entry(), done]);
    assert_eq!(
        (r.status.as_str(), r.weight, r.started_at.as_str()),
        ("promoted", 100, "2026-03-01T00:00:00.000Z")
    );
    let names: Vec<String> = t
        .list_rollouts("web", 10)
        .await
        .expect("lists")
        .into_iter()
        .map(|r| r.execution)
        .collect();
    assert_eq!(names, ["e2", "e1"]);

    // Signals: the last one wins, taken once.
    assert_eq!(t.take_signal("web", "e2").await.expect("takes"), None);
    t.put_signal("web", "e2", Signal::Resume)
        .await
        .expect("puts");
    t.put_signal("web", "e2", Signal::Abort)
        .await
        .expect("puts");
    assert_eq!(
        t.take_signal("web", "e2").await.expect("takes"),
        Some(Signal::Abort)
    );
    assert_eq!(t.take_signal("web", "e2").await.expect("takes"), None);

    assert!(t.delete_cell("web").await.expect("deletes"));
    assert!(!t.delete_cell("web").await.expect("idempotent"));
    assert!(t.list_cells().await.expect("lists").is_empty());
}
