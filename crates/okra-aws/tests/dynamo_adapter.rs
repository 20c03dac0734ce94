//! The state table's adapters against `aws-smithy-mocks`: DynamoDB's conditional writes (lost
//! conditions → `Conflict`, or a no-op where the port promises idempotence), signals, and the
//! Step Functions and EventBridge adapters that go with them.

use std::collections::HashMap;

use aws_sdk_dynamodb as ddb;
use aws_sdk_eventbridge as eb;
use aws_sdk_sfn as sfn;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use ddb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
use ddb::operation::get_item::GetItemOutput;
use ddb::operation::put_item::{PutItemError, PutItemOutput};
use ddb::operation::query::QueryOutput;
use ddb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use ddb::types::AttributeValue;
use ddb::types::error::{ConditionalCheckFailedException, ProvisionedThroughputExceededException};
use okra_aws::OkraError;
use okra_aws::dynamo::Dynamo;
use okra_aws::eventbridge::EventBridge;
use okra_aws::sfn::Sfn;
use okra_aws::state::{
    EventsPort, ExecutionsPort, HistoryEntry, Lock, RolloutEvent, Signal, Started, StatePort,
};
use pretty_assertions::assert_eq;
use serde_json::json;

const TABLE: &str = "okra-state";
const SM: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:okra-rollout";

fn table(mode: RuleMode, rules: &[&Rule]) -> Dynamo {
    Dynamo::new(
        mock_client!(ddb, mode, rules, |b| b
            .retry_config(RetryConfig::disabled())),
        TABLE,
    )
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("The conditional request failed")
        .build()
}

fn ccf() -> ConditionalCheckFailedException {
    ConditionalCheckFailedException::builder()
        .message("The conditional request failed")
        .meta(meta("ConditionalCheckFailedException"))
        .build()
}

fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn spec() -> okra_core::spec::CellSpec {
    serde_json::from_value(json!({
        "name": "web",
        "ingress": {"alb": {"listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"}},
        "clusterSelector": {"matchTags": {"okra.io/cell": "web"}},
        "targetGroup": {"port": 30080, "protocol": "HTTP", "healthCheck": {"path": "/healthz"}, "registration": "external"},
    }))
    .expect("parses")
}

#[tokio::test]
async fn put_cell_is_conditional_and_a_lost_condition_is_a_conflict() {
    let create = mock!(ddb::Client::put_item)
        .match_requests(|r| {
            r.table_name() == Some(TABLE)
                && r.condition_expression() == Some("attribute_not_exists(#pk)")
                && r.item().and_then(|i| i.get("sk")) == Some(&s("web"))
                && r.item().and_then(|i| i.get("revision")) == Some(&AttributeValue::N("1".into()))
        })
        .then_error(|| PutItemError::ConditionalCheckFailedException(ccf()));
    let update = mock!(ddb::Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some("#revision = :expected")
                && r.expression_attribute_values().and_then(|v| v.get(":expected"))
                    == Some(&AttributeValue::N("3".into()))
                && r.item().and_then(|i| i.get("revision")) == Some(&AttributeValue::N("4".into()))
                // DynamoDB refuses unused names: only `#revision` may be there.
                && r.expression_attribute_names().map(HashMap::len) == Some(1)
        })
        .then_output(|| PutItemOutput::builder().build());
    let t = table(RuleMode::MatchAny, &[&create, &update]);

    let err = t.put_cell(&spec(), None).await.expect_err("exists");
    assert!(matches!(err, OkraError::Conflict(..)), "{err:?}");
    assert_eq!(err.error_type(), "Conflict");
    assert_eq!(t.put_cell(&spec(), Some(3)).await.expect("stored"), 4);
}

#[tokio::test]
async fn a_held_lock_answers_its_holder() {
    let put = mock!(ddb::Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(#pk) OR #execution = :me")
                && r.expression_attribute_values().and_then(|v| v.get(":me")) == Some(&s("e2"))
        })
        .then_error(|| PutItemError::ConditionalCheckFailedException(ccf()));
    let get = mock!(ddb::Client::get_item)
        .match_requests(|r| {
            r.consistent_read() == Some(true)
                && r.key().and_then(|k| k.get("pk")) == Some(&s("CELL#web"))
                && r.key().and_then(|k| k.get("sk")) == Some(&s("LOCK"))
        })
        .then_output(|| {
            GetItemOutput::builder()
                .set_item(Some(item(&[
                    ("pk", s("CELL#web")),
                    ("sk", s("LOCK")),
                    ("execution", s("e1")),
                    ("version", s("1.2.0")),
                    ("acquiredAt", s("2026-03-02T10:00:00.000Z")),
                ])))
                .build()
        });
    let t = table(RuleMode::Sequential, &[&put, &get]);
    let lock = Lock {
        execution: "e2".into(),
        version: String::new(),
        acquired_at: "t".into(),
    };
    let holder = t
        .acquire_lock("web", &lock)
        .await
        .expect("answers")
        .expect_err("held");
    assert_eq!(holder.execution, "e1");
    assert_eq!(holder.version, "1.2.0");
}

#[tokio::test]
async fn releasing_a_lock_already_released_is_fine() {
    let del = mock!(ddb::Client::delete_item)
        .match_requests(|r| r.condition_expression() == Some("#execution = :me"))
        .then_error(|| DeleteItemError::ConditionalCheckFailedException(ccf()));
    let t = table(RuleMode::Sequential, &[&del]);
    t.release_lock("web", "e1").await.expect("idempotent");
    assert_eq!(del.num_calls(), 1);
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

#[tokio::test]
async fn record_appends_once_per_key() {
    let update = mock!(ddb::Client::update_item)
        .match_requests(|r| {
            let vals = r.expression_attribute_values();
            r.condition_expression() == Some("attribute_exists(#pk) AND NOT contains(#seen, :key)")
                && vals.and_then(|v| v.get(":key")) == Some(&s("stepDone#2"))
                && vals.and_then(|v| v.get(":weight")) == Some(&AttributeValue::N("50".into()))
                && r.update_expression().is_some_and(|u| {
                    u.contains("list_append(if_not_exists(#history, :empty), :entry)")
                        && u.contains("ADD #seen :keys")
                        && u.contains("#status = :status")
                })
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let t = table(RuleMode::Sequential, &[&update]);
    t.record(
        "web",
        "e1",
        &entry(),
        Some(okra_core::vocab::RolloutStatus::Running),
    )
    .await
    .expect("records");

    // A replay: the condition fails, the record exists → no-op.
    let replay = mock!(ddb::Client::update_item)
        .then_error(|| UpdateItemError::ConditionalCheckFailedException(ccf()));
    let exists = mock!(ddb::Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .set_item(Some(item(&[
                ("pk", s("CELL#web")),
                ("sk", s("ROLLOUT#e1")),
            ])))
            .build()
    });
    let t = table(RuleMode::Sequential, &[&replay, &exists]);
    t.record("web", "e1", &entry(), None)
        .await
        .expect("a replay is a no-op");

    // No record at all → NotFound.
    let replay = mock!(ddb::Client::update_item)
        .then_error(|| UpdateItemError::ConditionalCheckFailedException(ccf()));
    let missing = mock!(ddb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let t = table(RuleMode::Sequential, &[&replay, &missing]);
    let err = t
        .record("web", "nope", &entry(), None)
        .await
        .expect_err("no rollout");
    assert_eq!(err.error_type(), "NotFound");
}

#[tokio::test]
async fn take_signal_reads_and_deletes_in_one_call() {
    let taken = mock!(ddb::Client::delete_item)
        .match_requests(|r| {
            r.return_values() == Some(&ddb::types::ReturnValue::AllOld)
                && r.key().and_then(|k| k.get("sk")) == Some(&s("SIGNAL#e1"))
        })
        .then_output(|| {
            DeleteItemOutput::builder()
                .set_attributes(Some(item(&[
                    ("pk", s("CELL#web")),
                    ("sk", s("SIGNAL#e1")),
                    ("signal", s("promoteFull")),
                ])))
                .build()
        });
    let none = mock!(ddb::Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
    let t = table(RuleMode::Sequential, &[&taken, &none]);
    assert_eq!(
        t.take_signal("web", "e1").await.expect("takes"),
        Some(Signal::PromoteFull)
    );
    assert_eq!(t.take_signal("web", "e1").await.expect("takes"), None);
}

#[tokio::test]
async fn block_keeps_the_first_reason_and_throttling_is_throttled() {
    let kept = mock!(ddb::Client::put_item)
        .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(#pk)"))
        .then_error(|| PutItemError::ConditionalCheckFailedException(ccf()));
    let throttled = mock!(ddb::Client::put_item).then_error(|| {
        PutItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("Rate of requests exceeds the allowed throughput")
                .meta(meta("ProvisionedThroughputExceededException"))
                .build(),
        )
    });
    let t = table(RuleMode::Sequential, &[&kept, &throttled]);
    let b = okra_aws::state::Block {
        version: "1.2.0".into(),
        reason: "second".into(),
        execution: "e2".into(),
        at: "t".into(),
    };
    t.block("web", &b).await.expect("blocked already: fine");
    let err = t.block("web", &b).await.expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled");
}

fn rollout_item(execution: &str, started_at: &str) -> HashMap<String, AttributeValue> {
    item(&[
        ("pk", s("CELL#web")),
        ("sk", s(&format!("ROLLOUT#{execution}"))),
        ("execution", s(execution)),
        ("cell", s("web")),
        ("to", s("1.2.0")),
        ("status", s("running")),
        ("weight", AttributeValue::N("10".into())),
        ("startedAt", s(started_at)),
        ("updatedAt", s(started_at)),
        (
            "history",
            AttributeValue::L(vec![AttributeValue::M(item(&[
                ("at", s(started_at)),
                ("event", s("stepDone")),
                ("step", AttributeValue::N("0".into())),
                ("detail", s(r#"{"verdict":"pass"}"#)),
            ]))]),
        ),
    ])
}

#[tokio::test]
async fn list_rollouts_reads_every_page_newest_first() {
    let p1 = mock!(ddb::Client::query)
        .match_requests(|r| {
            r.exclusive_start_key().is_none()
                && r.key_condition_expression() == Some("#pk = :pk AND begins_with(#sk, :prefix)")
                && r.expression_attribute_values()
                    .and_then(|v| v.get(":prefix"))
                    == Some(&s("ROLLOUT#"))
        })
        .then_output(|| {
            QueryOutput::builder()
                .items(rollout_item("a", "2026-03-01T00:00:00.000Z"))
                .items(rollout_item("b", "2026-03-03T00:00:00.000Z"))
                .set_last_evaluated_key(Some(item(&[
                    ("pk", s("CELL#web")),
                    ("sk", s("ROLLOUT#b")),
                ])))
                .build()
        });
    let p2 = mock!(ddb::Client::query)
        .match_requests(|r| r.exclusive_start_key().is_some())
        .then_output(|| {
            QueryOutput::builder()
                .items(rollout_item("c", "2026-03-02T00:00:00.000Z"))
                .build()
        });
    let t = table(RuleMode::Sequential, &[&p1, &p2]);
    let got = t.list_rollouts("web", 2).await.expect("lists");
    let names: Vec<&str> = got.iter().map(|r| r.execution.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(got[0].history[0].step, Some(0));
    assert_eq!(got[0].history[0].detail, json!({"verdict": "pass"}));
}

// ---------------------------------------------------------------------------------------------
// Step Functions
// ---------------------------------------------------------------------------------------------

fn executions(mode: RuleMode, rules: &[&Rule]) -> Sfn {
    Sfn::new(
        mock_client!(sfn, mode, rules, |b| b
            .retry_config(RetryConfig::disabled())),
        SM,
    )
}

#[tokio::test]
async fn start_maps_a_taken_name_to_already_exists() {
    use sfn::operation::start_execution::{StartExecutionError, StartExecutionOutput};
    let ok = mock!(sfn::Client::start_execution)
        .match_requests(|r| {
            r.state_machine_arn() == Some(SM)
                && r.name() == Some("web--1-2-0--0")
                && r.input() == Some(r#"{"cell":"web"}"#)
        })
        .then_output(|| {
            StartExecutionOutput::builder()
                .execution_arn(format!(
                    "{}:web--1-2-0--0",
                    SM.replace("stateMachine", "execution")
                ))
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("complete")
        });
    let taken = mock!(sfn::Client::start_execution).then_error(|| {
        StartExecutionError::ExecutionAlreadyExists(
            sfn::types::error::ExecutionAlreadyExists::builder()
                .message("Execution Already Exists")
                .meta(
                    ErrorMetadata::builder()
                        .code("ExecutionAlreadyExists")
                        .build(),
                )
                .build(),
        )
    });
    let x = executions(RuleMode::Sequential, &[&ok, &taken]);
    let input = json!({"cell": "web"});
    assert_eq!(
        x.start("web--1-2-0--0", &input).await.expect("starts"),
        Started::Started {
            arn: "arn:aws:states:eu-west-1:123456789012:execution:okra-rollout:web--1-2-0--0"
                .into()
        }
    );
    assert_eq!(
        x.start("web--1-2-0--0", &input).await.expect("answers"),
        Started::AlreadyExists {
            name: "web--1-2-0--0".into()
        }
    );
}

#[tokio::test]
async fn describe_builds_the_arn_and_maps_a_missing_execution_to_none() {
    use sfn::operation::describe_execution::{DescribeExecutionError, DescribeExecutionOutput};
    let arn = "arn:aws:states:eu-west-1:123456789012:execution:okra-rollout:e1";
    let found = mock!(sfn::Client::describe_execution)
        .match_requests(move |r| r.execution_arn() == Some(arn))
        .then_output(move || {
            DescribeExecutionOutput::builder()
                .execution_arn(arn)
                .state_machine_arn(SM)
                .name("e1")
                .status(sfn::types::ExecutionStatus::Running)
                .start_date(aws_smithy_types::DateTime::from_secs(1_780_000_000))
                .build()
                .expect("complete")
        });
    let missing = mock!(sfn::Client::describe_execution).then_error(|| {
        DescribeExecutionError::ExecutionDoesNotExist(
            sfn::types::error::ExecutionDoesNotExist::builder()
                .message("Execution Does Not Exist")
                .meta(
                    ErrorMetadata::builder()
                        .code("ExecutionDoesNotExist")
                        .build(),
                )
                .build(),
        )
    });
    let x = executions(RuleMode::Sequential, &[&found, &missing]);
    let info = x.describe("e1").await.expect("describes").expect("exists");
    assert_eq!(
        (info.status.as_str(), info.name.as_str()),
        ("RUNNING", "e1")
    );
    assert!(info.started_at.is_some_and(|t| t.starts_with("2026-")));
    assert_eq!(x.describe("e9").await.expect("answers"), None);
}

// ---------------------------------------------------------------------------------------------
// EventBridge
// ---------------------------------------------------------------------------------------------

fn ev(i: usize) -> RolloutEvent {
    RolloutEvent {
        kind: okra_core::vocab::RolloutEventKind::StepDone,
        cell: "web".into(),
        execution: "e1".into(),
        detail: json!({"step": i}),
    }
}

#[tokio::test]
async fn events_go_in_batches_of_ten_and_failed_entries_are_resent_then_fail() {
    use eb::operation::put_events::PutEventsOutput;
    use eb::types::PutEventsResultEntry;
    let batch = mock!(eb::Client::put_events)
        .match_requests(|r| {
            r.entries().len() <= 10
                && r.entries().iter().all(|e| {
                    e.source() == Some("okra")
                        && e.detail_type() == Some("Rollout Step Done")
                        && e.event_bus_name() == Some("okra-bus")
                        && e.detail().is_some_and(|d| d.contains(r#""cell":"web""#))
                })
        })
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());
    let client = mock_client!(eb, RuleMode::MatchAny, &[&batch], |b| b
        .retry_config(RetryConfig::disabled()));
    EventBridge::new(client, "okra-bus")
        .put(&(0..23).map(ev).collect::<Vec<_>>())
        .await
        .expect("puts");
    assert_eq!(batch.num_calls(), 3);

    let failing = mock!(eb::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("InternalFailure")
                    .error_message("try again")
                    .build(),
            )
            .build()
    });
    let client = mock_client!(eb, RuleMode::MatchAny, &[&failing], |b| b
        .retry_config(RetryConfig::disabled()));
    let err = EventBridge::new(client, "okra-bus")
        .put(&[ev(0)])
        .await
        .expect_err("keeps failing");
    assert_eq!(err.error_type(), "AwsUnavailable");
    assert!(err.to_string().contains("InternalFailure"), "{err}");
    assert_eq!(failing.num_calls(), 3, "sent, then resent twice");
}

// The same adapter against moto's DynamoDB (conditions as DynamoDB evaluates them):
// tests/e2e/state_table.rs, so this file (and `make unit`) needs no local AWS.
