//! A person hears of what needs them: template.yaml's notification rule sends "Rollout Paused",
//! "Rollout Wait Timed Out", "Rollout Rolled Back" and "Rollout Failed" to its SNS topic, whose
//! policy lets EventBridge publish for that rule only. Here the rule's pattern and the topic's
//! policy are template.yaml's own, an SQS queue subscribed to the topic stands in for the e-mail,
//! and the strict moto delivers a rule's SNS target as EventBridge does (only if the topic's
//! policy allows it: tools/local-aws/strict_moto.py, "EventBridge → SNS").

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::common::policy::template;
use crate::common::service::{api, finished, paused_rollout, setup};
use crate::common::{Aws, cell_name};

const SNS: &str = "2010-03-31";
const SQS: &str = "2012-11-05";

/// The text between `<tag>` and `</tag>`, each time it occurs, XML-unescaped.
fn all_between(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next())
        .map(|t| {
            t.replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#39;", "'")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// What template.yaml makes, in moto: the topic, the rule (its pattern), the topic's policy (its
/// statement, for this rule, or for `other_rule` instead), and a queue subscribed to the topic.
/// The queue's URL and the topic's ARN.
fn notification_stack(aws: &Aws, name: &str, other_rule: Option<&str>) -> Result<(String, String)> {
    let t = template();
    let res = &t["Resources"];
    let pattern: Value =
        serde_json::to_value(&res["NotificationRule"]["Properties"]["EventPattern"])?;
    let statement = &res["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    let local = aws.local;
    let topic = all_between(
        &local.query("sns", SNS, "CreateTopic", &[("Name", name)])?,
        "TopicArn",
    )
    .pop()
    .context("a topic")?;
    let queue_url = all_between(
        &local.query("sqs", SQS, "CreateQueue", &[("QueueName", name)])?,
        "QueueUrl",
    )
    .pop()
    .context("a queue")?;
    let queue_arn = format!(
        "arn:aws:sqs:{}:{}:{name}",
        okra_testkit::REGION,
        okra_testkit::ACCOUNT_ID
    );
    local.query(
        "sns",
        SNS,
        "Subscribe",
        &[
            ("TopicArn", &topic),
            ("Protocol", "sqs"),
            ("Endpoint", &queue_arn),
        ],
    )?;
    let rule = local.json_call(
        "events",
        "AWSEvents.PutRule",
        &json!({"Name": name, "EventPattern": pattern.to_string(), "EventBusName": "default"}),
    )?["RuleArn"]
        .as_str()
        .context("the rule's ARN")?
        .to_string();
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": statement["Sid"].as_str(),
        "Effect": statement["Effect"].as_str(),
        "Principal": serde_json::to_value(&statement["Principal"])?,
        "Action": statement["Action"].as_str(),
        "Resource": topic,
        "Condition": {"ArnEquals": {"aws:SourceArn": other_rule.unwrap_or(&rule)}},
    }]});
    local.query(
        "sns",
        SNS,
        "SetTopicAttributes",
        &[
            ("TopicArn", &topic),
            ("AttributeName", "Policy"),
            ("AttributeValue", &policy.to_string()),
        ],
    )?;
    local.json_call(
        "events",
        "AWSEvents.PutTargets",
        &json!({"Rule": name, "EventBusName": "default",
                "Targets": [{"Id": "NotificationTopic", "Arn": topic}]}),
    )?;
    Ok((queue_url, topic))
}

/// The detail-types of the events about `cell` the queue received, until `want` are all there
/// (30 s at most).
fn received(aws: &Aws, queue_url: &str, cell: &str, want: &[&str]) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    loop {
        let xml = aws.local.query(
            "sqs",
            SQS,
            "ReceiveMessage",
            &[("QueueUrl", queue_url), ("MaxNumberOfMessages", "10")],
        )?;
        for body in all_between(&xml, "Body") {
            // SNS's envelope, whose Message is the event.
            let envelope: Value = serde_json::from_str(&body)?;
            let event: Value = serde_json::from_str(envelope["Message"].as_str().unwrap_or("{}"))?;
            if event["detail"]["cell"] == cell {
                events.push(event);
            }
        }
        let kinds: Vec<&str> = events
            .iter()
            .filter_map(|e| e["detail-type"].as_str())
            .collect();
        if want.iter().all(|w| kinds.contains(w)) {
            return Ok(events);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the queue got {kinds:?}, not all of {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_and_rolled_back_reach_the_notification_topic() -> Result<()> {
    let (aws, sfn) = setup(None).await?;
    let (queue, _) = notification_stack(&aws, &okra_testkit::LocalAws::unique("notify"), None)?;
    // A topic whose policy lets EventBridge publish for another rule only: nothing reaches it.
    let (closed_queue, closed_topic) = notification_stack(
        &aws,
        &okra_testkit::LocalAws::unique("closed"),
        Some("arn:aws:events:us-east-1:123456789012:rule/someone-elses"),
    )?;
    let (w, exec) = paused_rollout(&aws, &sfn, "notif").await?;
    let name = cell_name(&w);
    let (code, body) = api(
        &aws,
        "POST",
        &format!("/cells/{name}/rollouts/{exec}/abort"),
    )?;
    assert_eq!(code, 202, "{body}");
    let (status, _) = finished(&sfn, &exec).await?;
    assert_eq!(status, "FAILED");
    let events = tokio::task::block_in_place(|| {
        received(
            &aws,
            &queue,
            &name,
            &["Rollout Paused", "Rollout Rolled Back"],
        )
    })?;
    for e in &events {
        assert_eq!(e["source"], "okra", "{e}");
        assert_eq!(e["detail"]["execution"], exec.as_str(), "{e}");
        // Read alone, it says which versions and where.
        assert_eq!(
            (&e["detail"]["from"], &e["detail"]["to"]),
            (&json!("1.0.0"), &json!("1.1.0")),
            "{e}"
        );
        assert_eq!(e["region"], okra_testkit::REGION, "{e}");
    }
    let wrong = tokio::task::block_in_place(|| received(&aws, &closed_queue, &name, &[]))?;
    assert!(wrong.is_empty(), "{wrong:?}");
    let undelivered = aws.local.json_get("/_okra/events")?;
    assert!(
        undelivered["undelivered"]
            .as_array()
            .is_some_and(|u| u.iter().any(|d| d["target"] == closed_topic.as_str())),
        "{undelivered}"
    );
    // Only what a person should hear of: no "Rollout Started" or "Rollout Step Done".
    assert!(
        events.iter().all(|e| {
            [
                "Rollout Paused",
                "Rollout Wait Timed Out",
                "Rollout Rolled Back",
                "Rollout Failed",
            ]
            .contains(&e["detail-type"].as_str().unwrap_or_default())
        }),
        "{events:?}"
    );
    Ok(())
}

/// The rule's detail-types are the names okra's events are sent under (okra_core's vocabulary).
#[test]
fn the_rule_names_okras_own_event_kinds() {
    use okra_core::vocab::RolloutEventKind;
    let t = template();
    let kinds: Vec<String> = serde_json::from_value(
        serde_json::to_value(
            &t["Resources"]["NotificationRule"]["Properties"]["EventPattern"]["detail-type"],
        )
        .unwrap(),
    )
    .unwrap();
    let want: Vec<String> = [
        RolloutEventKind::Paused,
        RolloutEventKind::WaitTimedOut,
        RolloutEventKind::RolledBack,
        RolloutEventKind::Failed,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(kinds, want);
}

/// The local AWS's schema check can fail: an okra event whose detail misses what its schema
/// requires is listed as invalid (and would fail the suite whose rollout put it).
#[tokio::test(flavor = "multi_thread")]
async fn an_event_that_does_not_match_its_schema_is_caught() -> Result<()> {
    use okra_aws::state::EventsPort as _;
    let (aws, _) = setup(None).await?;
    let conf = aws.local.sdk_config().await;
    let bus = okra_aws::eventbridge::EventBridge::from_env(&conf);
    let execution = format!("{}--bad-event", okra_testkit::LocalAws::unique("schema"));
    bus.put(&[okra_aws::state::RolloutEvent {
        kind: okra_core::vocab::RolloutEventKind::Paused,
        cell: "web".into(),
        execution: execution.clone(),
        // No `to`, no `step`, no `detail.until`.
        detail: json!({"event": "paused"}),
    }])
    .await?;
    let (invalid, validated) = aws.local.invalid_events()?;
    assert!(validated > 0);
    let mine = invalid
        .iter()
        .find(|e| e["execution"] == execution.as_str())
        .context("the bad event is listed")?;
    let why = mine["errors"].to_string();
    assert!(
        why.contains("'to' is a required property") && why.contains("'step'"),
        "{why}"
    );
    assert!(crate::common::events_valid(&execution).is_err());
    Ok(())
}
