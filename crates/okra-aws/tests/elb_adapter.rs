//! The ELBv2 adapter against `aws-smithy-mocks`: what it reads from AWS's shapes and what it
//! sends.

use std::sync::{Arc, Mutex};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_sdk_resourcegroupstagging as tag;
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use elbv2::Client;
use elbv2::operation::add_tags::AddTagsOutput;
use elbv2::operation::create_target_group::CreateTargetGroupOutput;
use elbv2::operation::describe_listeners::{DescribeListenersError, DescribeListenersOutput};
use elbv2::operation::describe_rules::DescribeRulesOutput;
use elbv2::operation::describe_tags::{DescribeTagsError, DescribeTagsOutput};
use elbv2::operation::describe_target_groups::{
    DescribeTargetGroupsError, DescribeTargetGroupsOutput,
};
use elbv2::operation::describe_target_health::DescribeTargetHealthOutput;
use elbv2::operation::modify_listener::ModifyListenerOutput;
use elbv2::operation::modify_rule::ModifyRuleOutput;
use elbv2::types::error::{ListenerNotFoundException, TargetGroupNotFoundException};
use elbv2::types::{
    Action, ActionTypeEnum, AuthenticateOidcActionConfig, FixedResponseActionConfig,
    ForwardActionConfig, Listener, ProtocolEnum, Rule as ListenerRule, Tag, TagDescription,
    TargetGroup as SdkTargetGroup, TargetGroupStickinessConfig, TargetGroupTuple, TargetHealth,
    TargetHealthDescription, TargetHealthStateEnum, TargetTypeEnum,
};
use okra_aws::OkraError;
use okra_aws::elb::Elb;
use okra_aws::ports::{LoadBalancerPort, NewTargetGroup, TargetHealth as Health};
use okra_aws::tagging::Tagging;
use okra_core::model::{
    CurrentAction, ForwardAction, ForwardStickiness, TargetGroup, WeightedTarget,
};
use pretty_assertions::assert_eq;
use tag::operation::get_resources::GetResourcesOutput;
use tag::types::ResourceTagMapping;

const LISTENER: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2";
const RULE: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";

fn tg_arn(name: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{name}/73e2d6bc24d8a067"
    )
}

/// An adapter over a client that answers with `rules` (no retries: one request per call), whose
/// tagging API knows no target group.
fn elb(mode: RuleMode, rules: &[&Rule]) -> Elb {
    let none = tagged_page(None, &[], "");
    elb_with(mode, rules, &[&none])
}

/// An adapter whose tagging API answers with `tagging`.
fn elb_with(mode: RuleMode, rules: &[&Rule], tagging: &[&Rule]) -> Elb {
    Elb::new(
        mock_client!(elbv2, mode, rules, |b| b
            .retry_config(RetryConfig::disabled())),
        Tagging::new(mock_client!(tag, RuleMode::MatchAny, tagging, |b| b
            .retry_config(RetryConfig::disabled()))),
    )
}

/// A tag in the tagging API's shape.
fn tag(k: &str, v: &str) -> tag::types::Tag {
    tag::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("tag")
}

/// One GetResources page of cell `web`'s target groups (`(name, cluster)`), answering only the
/// request with `token` that asks for target groups tagged `okra.io/cell=web`, 100 a page.
fn tagged_page(token: Option<&'static str>, groups: &[(&str, &str)], next: &'static str) -> Rule {
    let groups: Vec<(String, String)> = groups
        .iter()
        .map(|(n, c)| ((*n).to_string(), (*c).to_string()))
        .collect();
    mock!(tag::Client::get_resources)
        .match_requests(move |r| {
            r.pagination_token() == token
                && r.resources_per_page() == Some(100)
                && r.resource_type_filters() == ["elasticloadbalancing:targetgroup"]
                && r.tag_filters().len() == 1
                && r.tag_filters()[0].key() == Some("okra.io/cell")
                && r.tag_filters()[0].values() == ["web"]
        })
        .then_output(move || {
            GetResourcesOutput::builder()
                .set_resource_tag_mapping_list(Some(
                    groups
                        .iter()
                        .map(|(n, c)| {
                            ResourceTagMapping::builder()
                                .resource_arn(tg_arn(n))
                                .tags(tag("okra.io/cell", "web"))
                                .tags(tag("okra.io/cluster", c))
                                .tags(tag("okra.io/version", "1.2.3"))
                                .build()
                        })
                        .collect(),
                ))
                .pagination_token(next)
                .build()
        })
}

fn listener_with(actions: Vec<Action>) -> Rule {
    mock!(Client::describe_listeners)
        .match_requests(|r| r.listener_arns() == [LISTENER])
        .then_output(move || {
            DescribeListenersOutput::builder()
                .listeners(
                    Listener::builder()
                        .listener_arn(LISTENER)
                        .set_default_actions(Some(actions.clone()))
                        .build(),
                )
                .build()
        })
}

fn tuple(arn: &str, weight: i32) -> TargetGroupTuple {
    TargetGroupTuple::builder()
        .target_group_arn(arn)
        .weight(weight)
        .build()
}

fn oidc(order: i32) -> Action {
    oidc_with(order, None)
}

/// The OIDC action as a modify must send it back: AWS never returns the client secret, and a
/// ModifyListener/ModifyRule with an `authenticate-oidc` action needs `ClientSecret` or
/// `UseExistingClientSecret: true` (ELB API reference, AuthenticateOidcActionConfig).
fn oidc_sent(order: i32) -> Action {
    oidc_with(order, Some(true))
}

fn oidc_with(order: i32, use_existing_secret: Option<bool>) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::AuthenticateOidc)
        .order(order)
        .authenticate_oidc_config(
            AuthenticateOidcActionConfig::builder()
                .issuer("https://idp.example.com")
                .authorization_endpoint("https://idp.example.com/authorize")
                .token_endpoint("https://idp.example.com/token")
                .user_info_endpoint("https://idp.example.com/userinfo")
                .client_id("okra")
                .set_use_existing_client_secret(use_existing_secret)
                .build(),
        )
        .build()
}

fn bare_forward(order: i32, arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .order(order)
        .target_group_arn(arn)
        .build()
}

fn fixed_response(order: i32) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .order(order)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code("404")
                .build(),
        )
        .build()
}

fn wt(arn: &str, weight: u32) -> WeightedTarget {
    WeightedTarget {
        target_group_arn: arn.to_string(),
        weight,
    }
}

/// The forward config's (ARN, weight) pairs of an SDK action.
fn tuples_of(a: &Action) -> Vec<(String, Option<i32>)> {
    a.forward_config()
        .map(|c| {
            c.target_groups()
                .iter()
                .map(|t| {
                    (
                        t.target_group_arn().unwrap_or_default().to_string(),
                        t.weight(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// -- read_action ------------------------------------------------------------------------------

#[tokio::test]
async fn read_action_parses_a_weighted_forward_config() {
    let (a, b) = (tg_arn("web-b1"), tg_arn("web-a1"));
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .order(1)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(tuple(&a, 20))
                .target_groups(tuple(&b, 80))
                .target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder()
                        .enabled(true)
                        .duration_seconds(3600)
                        .build(),
                )
                .build(),
        )
        .build();
    let rule = listener_with(vec![forward.clone()]);
    let owned = elb(RuleMode::MatchAny, &[&rule])
        .read_action(LISTENER, None)
        .await
        .expect("reads");
    assert_eq!(
        owned.action,
        CurrentAction::Forward(ForwardAction {
            // Sorted, whatever AWS's order.
            targets: vec![wt(&b, 80), wt(&a, 20)],
            stickiness: Some(ForwardStickiness {
                enabled: true,
                duration_seconds: 3600
            }),
        })
    );
    assert_eq!(owned.raw, vec![forward]);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn read_action_parses_a_bare_target_group_arn() {
    let a = tg_arn("web-a1");
    let rule = listener_with(vec![bare_forward(1, &a)]);
    let owned = elb(RuleMode::MatchAny, &[&rule])
        .read_action(LISTENER, None)
        .await
        .expect("reads");
    assert_eq!(
        owned.action,
        CurrentAction::Forward(ForwardAction {
            targets: vec![wt(&a, 1)],
            stickiness: None
        })
    );
}

#[tokio::test]
async fn read_action_reports_a_fixed_response() {
    let rule = listener_with(vec![fixed_response(1)]);
    let owned = elb(RuleMode::MatchAny, &[&rule])
        .read_action(LISTENER, None)
        .await
        .expect("reads");
    assert_eq!(
        owned.action,
        CurrentAction::Other {
            action_type: "fixed-response".into()
        }
    );
}

#[tokio::test]
async fn read_action_of_a_rule_reads_the_rule() {
    let a = tg_arn("web-a1");
    let rule = mock!(Client::describe_rules)
        .match_requests(|r| r.rule_arns() == [RULE])
        .then_output({
            let a = a.clone();
            move || {
                DescribeRulesOutput::builder()
                    .rules(
                        ListenerRule::builder()
                            .rule_arn(RULE)
                            .actions(oidc(1))
                            .actions(bare_forward(2, &a))
                            .build(),
                    )
                    .build()
            }
        });
    let owned = elb(RuleMode::MatchAny, &[&rule])
        .read_action(LISTENER, Some(RULE))
        .await
        .expect("reads");
    assert_eq!(
        owned.action,
        CurrentAction::Forward(ForwardAction {
            targets: vec![wt(&a, 1)],
            stickiness: None
        })
    );
    assert_eq!(owned.raw.len(), 2);
}

#[tokio::test]
async fn a_missing_listener_is_listener_not_found() {
    // An empty answer...
    let empty = mock!(Client::describe_listeners)
        .then_output(|| DescribeListenersOutput::builder().build());
    let err = elb(RuleMode::MatchAny, &[&empty])
        .read_action(LISTENER, None)
        .await
        .expect_err("none");
    assert!(matches!(err, OkraError::ListenerNotFound(..)), "{err:?}");
    // ... or AWS's ListenerNotFound error.
    let missing = mock!(Client::describe_listeners).then_error(|| {
        DescribeListenersError::ListenerNotFoundException(
            ListenerNotFoundException::builder()
                .message("One or more listeners not found")
                .meta(
                    ErrorMetadata::builder()
                        .code("ListenerNotFound")
                        .message("One or more listeners not found")
                        .build(),
                )
                .build(),
        )
    });
    let err = elb(RuleMode::MatchAny, &[&missing])
        .read_action(LISTENER, None)
        .await
        .expect_err("none");
    assert_eq!(err.error_type(), "ListenerNotFound");
}

// -- throttling -------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_maps_to_throttled() {
    let modeled = mock!(Client::describe_listeners).then_error(|| {
        DescribeListenersError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let err = elb(RuleMode::MatchAny, &[&modeled])
        .read_action(LISTENER, None)
        .await
        .expect_err("throttled");
    assert!(matches!(err, OkraError::Throttled(..)), "{err:?}");
    assert_eq!(err.error_type(), "Throttled");
    assert!(err.is_transient());

    // The same from the wire: ELB's XML error body, parsed by the SDK.
    let wire = mock!(Client::describe_listeners).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(400).expect("a status"),
            SdkBody::from(
                r#"<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>7f2c1f4e-0000-4000-8000-000000000000</RequestId>
</ErrorResponse>"#,
            ),
        )
    });
    let err = elb(RuleMode::MatchAny, &[&wire])
        .read_action(LISTENER, None)
        .await
        .expect_err("throttled");
    assert_eq!(err.error_type(), "Throttled", "{err:?}");
    assert!(err.to_string().contains("Rate exceeded"), "{err}");
}

// -- write_forward ----------------------------------------------------------------------------

/// A ModifyListener rule that keeps the default actions it was sent.
fn capture_modify_listener(sent: &Arc<Mutex<Vec<Vec<Action>>>>) -> Rule {
    let sent = sent.clone();
    mock!(Client::modify_listener)
        .match_requests(move |r| {
            assert_eq!(r.listener_arn(), Some(LISTENER));
            sent.lock()
                .expect("lock")
                .push(r.default_actions().to_vec());
            true
        })
        .then_output(|| ModifyListenerOutput::builder().build())
}

#[tokio::test]
async fn write_forward_replaces_the_forward_and_keeps_the_other_actions() {
    let (a, b) = (tg_arn("web-a1"), tg_arn("web-b1"));
    let read = listener_with(vec![oidc(1), bare_forward(2, &a)]);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let modify = capture_modify_listener(&sent);
    let elb = elb(RuleMode::MatchAny, &[&read, &modify]);

    let owned = elb.read_action(LISTENER, None).await.expect("reads");
    let fa = ForwardAction {
        targets: vec![wt(&a, 90), wt(&b, 10)],
        stickiness: Some(ForwardStickiness {
            enabled: true,
            duration_seconds: 600,
        }),
    };
    elb.write_forward(LISTENER, None, &owned.raw, &fa)
        .await
        .expect("writes");

    let sent = sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1, "one ModifyListener");
    let actions = &sent[0];
    assert_eq!(actions.len(), 2);
    assert_eq!(
        actions[0],
        oidc_sent(1),
        "the authentication action stays as it was, keeping its secret"
    );
    let fwd = &actions[1];
    assert_eq!(fwd.r#type(), Some(&ActionTypeEnum::Forward));
    assert_eq!(fwd.order(), Some(2), "the forward keeps its order");
    assert_eq!(
        fwd.target_group_arn(),
        None,
        "the bare ARN gives way to a forward config"
    );
    assert_eq!(
        tuples_of(fwd),
        vec![(a.clone(), Some(90)), (b.clone(), Some(10))]
    );
    let sticky = fwd
        .forward_config()
        .and_then(|c| c.target_group_stickiness_config())
        .expect("stickiness sent");
    assert_eq!(
        (sticky.enabled(), sticky.duration_seconds()),
        (Some(true), Some(600))
    );
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(read.num_calls(), 1);
}

#[tokio::test]
async fn write_forward_turns_the_fixed_response_into_the_forward() {
    let a = tg_arn("web-a1");
    let read = listener_with(vec![oidc(1), fixed_response(5)]);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let modify = capture_modify_listener(&sent);
    let elb = elb(RuleMode::MatchAny, &[&read, &modify]);
    let owned = elb.read_action(LISTENER, None).await.expect("reads");
    let fa = ForwardAction {
        targets: vec![wt(&a, 100)],
        stickiness: None,
    };
    elb.write_forward(LISTENER, None, &owned.raw, &fa)
        .await
        .expect("writes");
    let actions = sent.lock().expect("lock")[0].clone();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0], oidc_sent(1));
    assert_eq!(actions[1].r#type(), Some(&ActionTypeEnum::Forward));
    assert_eq!(actions[1].order(), Some(5));
    assert_eq!(actions[1].fixed_response_config(), None);
    assert_eq!(tuples_of(&actions[1]), vec![(a, Some(100))]);
}

#[tokio::test]
async fn disabled_stickiness_is_written_back_without_a_zero_duration() {
    // ELB shows a forward without stickiness as `TargetGroupStickinessConfig: {Enabled: false}`;
    // shift keeps the listener's stickiness, and ELB refuses `DurationSeconds: 0`.
    let a = tg_arn("web-a1");
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .order(1)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(tuple(&a, 1))
                .target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder()
                        .enabled(false)
                        .build(),
                )
                .build(),
        )
        .build();
    let read = listener_with(vec![forward]);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let modify = capture_modify_listener(&sent);
    let elb = elb(RuleMode::MatchAny, &[&read, &modify]);
    let owned = elb.read_action(LISTENER, None).await.expect("reads");
    let CurrentAction::Forward(current) = &owned.action else {
        panic!("a forward: {:?}", owned.action)
    };
    let fa = ForwardAction {
        targets: vec![wt(&a, 100)],
        stickiness: current.stickiness,
    };
    elb.write_forward(LISTENER, None, &owned.raw, &fa)
        .await
        .expect("writes");

    let actions = sent.lock().expect("lock")[0].clone();
    let sticky = actions[0]
        .forward_config()
        .and_then(|c| c.target_group_stickiness_config())
        .expect("stickiness sent");
    assert_eq!(sticky.enabled(), Some(false));
    assert_eq!(sticky.duration_seconds(), None, "no DurationSeconds: 0");
}

#[tokio::test]
async fn write_forward_to_a_rule_modifies_the_rule_only() {
    let a = tg_arn("web-a1");
    let sent = Arc::new(Mutex::new(Vec::new()));
    let modify_rule = {
        let sent = sent.clone();
        mock!(Client::modify_rule)
            .match_requests(move |r| {
                assert_eq!(r.rule_arn(), Some(RULE));
                sent.lock().expect("lock").push(r.actions().to_vec());
                true
            })
            .then_output(|| ModifyRuleOutput::builder().build())
    };
    // No ModifyListener rule: the mock panics if the listener is written.
    let elb = elb(RuleMode::MatchAny, &[&modify_rule]);
    let read = vec![oidc(1), bare_forward(2, &tg_arn("web-old"))];
    let fa = ForwardAction {
        targets: vec![wt(&a, 100)],
        stickiness: None,
    };
    elb.write_forward(LISTENER, Some(RULE), &read, &fa)
        .await
        .expect("writes");
    let actions = sent.lock().expect("lock")[0].clone();
    assert_eq!(actions[0], oidc_sent(1));
    assert_eq!(
        (actions[1].order(), tuples_of(&actions[1])),
        (Some(2), vec![(a, Some(100))])
    );
}

// -- find_target_groups -----------------------------------------------------------------------

/// DescribeTags: groups whose index is a multiple of 3 are the cell's, the others another cell's
/// (and every 10th has no tags at all). Records each batch's size.
fn tags_rule(batches: &Arc<Mutex<Vec<usize>>>) -> Rule {
    let batches = batches.clone();
    mock!(Client::describe_tags).then_compute_output(move |r| {
        batches.lock().expect("lock").push(r.resource_arns().len());
        let descs = r.resource_arns().iter().map(|arn| {
            let i: usize = arn
                .rsplit('/')
                .nth(1)
                .and_then(|n| n.strip_prefix("tg"))
                .and_then(|n| n.parse().ok())
                .expect("tgN");
            let d = TagDescription::builder().resource_arn(arn);
            if i % 10 == 9 {
                return d.build();
            }
            let cell = if i.is_multiple_of(3) { "web" } else { "api" };
            d.tags(Tag::builder().key("okra.io/cell").value(cell).build())
                .tags(
                    Tag::builder()
                        .key("okra.io/cluster")
                        .value(format!("c{i}"))
                        .build(),
                )
                .tags(Tag::builder().key("okra.io/version").value("1.2.3").build())
                .build()
        });
        DescribeTagsOutput::builder()
            .set_tag_descriptions(Some(descs.collect()))
            .build()
    })
}

#[tokio::test]
async fn find_target_groups_batches_describe_tags_by_20_and_keeps_the_cells() {
    let arns: Vec<String> = (0..45).map(|i| tg_arn(&format!("tg{i}"))).collect();
    let batches = Arc::new(Mutex::new(Vec::new()));
    let tags = tags_rule(&batches);
    // No DescribeTargetGroups rule: with no names, the adapter must not list groups.
    let found = elb(RuleMode::MatchAny, &[&tags])
        .find_target_groups("web", &arns)
        .await
        .expect("finds");

    assert_eq!(tags.num_calls(), 3);
    assert_eq!(*batches.lock().expect("lock"), vec![20, 20, 5]);
    let mut expected: Vec<TargetGroup> = (0..45_usize)
        .filter(|i| i.is_multiple_of(3) && i % 10 != 9)
        .map(|i| TargetGroup {
            arn: tg_arn(&format!("tg{i}")),
            name: format!("tg{i}"),
            cluster: format!("c{i}"),
            version: "1.2.3".into(),
            managed: false,
            idle_since: None,
        })
        .collect();
    expected.sort_by(|a, b| a.arn.cmp(&b.arn));
    assert_eq!(found, expected);
}

// AWS: Resource Groups Tagging API reference, GetResources (TagFilters, ResourcesPerPage at most
// 100, PaginationToken empty on the last page).
#[tokio::test]
async fn find_target_groups_asks_the_tagging_api_for_the_cell_and_reads_only_the_listeners_others()
{
    let (p1, p2) = (
        tagged_page(None, &[("tg0", "c0"), ("tg3", "c3")], "next"),
        tagged_page(Some("next"), &[("tg9", "c9")], ""),
    );
    let batches = Arc::new(Mutex::new(Vec::new()));
    let tags = tags_rule(&batches);
    // No DescribeTargetGroups rule: the adapter must not list the region's groups.
    let elb = elb_with(RuleMode::MatchAny, &[&tags], &[&p1, &p2]);
    // tg0 is in the listener and tagged; tg6 is in the listener, not yet in the tagging API.
    let found = elb
        .find_target_groups("web", &[tg_arn("tg0"), tg_arn("tg6")])
        .await
        .expect("finds");
    assert_eq!((p1.num_calls(), p2.num_calls()), (1, 1));
    assert_eq!(
        *batches.lock().expect("lock"),
        vec![1],
        "only tg6 is read directly"
    );
    assert_eq!(
        found
            .iter()
            .map(|t| (t.name.as_str(), t.cluster.as_str()))
            .collect::<Vec<_>>(),
        vec![("tg0", "c0"), ("tg3", "c3"), ("tg6", "c6"), ("tg9", "c9")]
    );
}

#[tokio::test]
async fn find_target_groups_reads_a_batch_one_by_one_when_a_group_is_gone() {
    let gone = tg_arn("tg3");
    let tags = {
        let gone = gone.clone();
        mock!(Client::describe_tags).then_compute_response(move |r| {
            if r.resource_arns().len() > 1 || r.resource_arns()[0] == gone {
                return MockResponse::Error(DescribeTagsError::TargetGroupNotFoundException(
                    TargetGroupNotFoundException::builder()
                        .meta(ErrorMetadata::builder().code("TargetGroupNotFound").build())
                        .build(),
                ));
            }
            let arn = &r.resource_arns()[0];
            MockResponse::Output(
                DescribeTagsOutput::builder()
                    .tag_descriptions(
                        TagDescription::builder()
                            .resource_arn(arn)
                            .tags(Tag::builder().key("okra.io/cell").value("web").build())
                            .build(),
                    )
                    .build(),
            )
        })
    };
    let arns = vec![tg_arn("tg0"), gone, tg_arn("tg6")];
    let found = elb(RuleMode::MatchAny, &[&tags])
        .find_target_groups("web", &arns)
        .await
        .expect("finds");
    assert_eq!(tags.num_calls(), 4, "the batch, then each of its 3 ARNs");
    assert_eq!(
        found.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec!["tg0", "tg6"]
    );
}

// -- target groups ----------------------------------------------------------------------------

#[tokio::test]
async fn create_target_group_sends_the_template_and_tags() {
    let template: okra_core::spec::TargetGroupTemplate =
        serde_json::from_value(serde_json::json!({
            "port": 30080,
            "protocol": "HTTP",
            "targetType": "ip",
            "healthCheck": { "path": "/healthz", "intervalSeconds": 10, "matcher": "200-399" },
        }))
        .expect("a template");
    let tg = NewTargetGroup {
        name: "web-b1-0123abcd".into(),
        vpc_id: "vpc-1".into(),
        template,
        protocol: "HTTP".into(),
        tags: vec![
            ("okra.io/cell".into(), "web".into()),
            ("okra.io/cluster".into(), "b1".into()),
        ],
    };
    let create = mock!(Client::create_target_group)
        .match_requests(|r| {
            r.name() == Some("web-b1-0123abcd")
                && r.vpc_id() == Some("vpc-1")
                && r.port() == Some(30080)
                && r.protocol() == Some(&ProtocolEnum::Http)
                && r.target_type() == Some(&TargetTypeEnum::Ip)
                && r.health_check_path() == Some("/healthz")
                && r.health_check_interval_seconds() == Some(10)
                && r.health_check_timeout_seconds().is_none()
                && r.matcher().and_then(|m| m.http_code()) == Some("200-399")
                && r.tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    == vec![("okra.io/cell", "web"), ("okra.io/cluster", "b1")]
        })
        .then_output(|| {
            CreateTargetGroupOutput::builder()
                .target_groups(
                    SdkTargetGroup::builder()
                        .target_group_arn(tg_arn("web-b1-0123abcd"))
                        .build(),
                )
                .build()
        });
    let arn = elb(RuleMode::MatchAny, &[&create])
        .create_target_group(&tg)
        .await
        .expect("creates");
    assert_eq!(arn, tg_arn("web-b1-0123abcd"));
}

#[tokio::test]
async fn target_group_by_name_maps_not_found_to_none() {
    let found = mock!(Client::describe_target_groups)
        .match_requests(|r| r.names() == ["there"])
        .then_output(|| {
            DescribeTargetGroupsOutput::builder()
                .target_groups(
                    SdkTargetGroup::builder()
                        .target_group_name("there")
                        .target_group_arn(tg_arn("there"))
                        .build(),
                )
                .build()
        });
    let missing = mock!(Client::describe_target_groups)
        .match_requests(|r| r.names() == ["gone"])
        .then_error(|| {
            DescribeTargetGroupsError::TargetGroupNotFoundException(
                TargetGroupNotFoundException::builder()
                    .meta(ErrorMetadata::builder().code("TargetGroupNotFound").build())
                    .build(),
            )
        });
    let elb = elb(RuleMode::MatchAny, &[&found, &missing]);
    assert_eq!(
        elb.target_group_by_name("there").await.expect("reads"),
        Some(tg_arn("there"))
    );
    assert_eq!(elb.target_group_by_name("gone").await.expect("reads"), None);
}

#[tokio::test]
async fn tag_target_group_sends_add_tags() {
    let arn = tg_arn("web-b1");
    let add = mock!(Client::add_tags)
        .match_requests({
            let arn = arn.clone();
            move |r| {
                r.resource_arns() == [arn.clone()]
                    && r.tags()
                        .iter()
                        .map(|t| (t.key(), t.value()))
                        .collect::<Vec<_>>()
                        == vec![(Some("okra.io/version"), Some("1.2.0"))]
            }
        })
        .then_output(|| AddTagsOutput::builder().build());
    elb(RuleMode::MatchAny, &[&add])
        .tag_target_group(&arn, &[("okra.io/version".into(), "1.2.0".into())])
        .await
        .expect("tags");
    assert_eq!(add.num_calls(), 1);
}

#[tokio::test]
async fn target_health_counts_healthy_of_all_but_draining_and_targets_aws_never_checks() {
    let health = mock!(Client::describe_target_health).then_output(|| {
        let d = |s: TargetHealthStateEnum| {
            TargetHealthDescription::builder()
                .target_health(TargetHealth::builder().state(s).build())
                .build()
        };
        DescribeTargetHealthOutput::builder()
            .target_health_descriptions(d(TargetHealthStateEnum::Healthy))
            .target_health_descriptions(d(TargetHealthStateEnum::Healthy))
            .target_health_descriptions(d(TargetHealthStateEnum::Initial))
            .target_health_descriptions(d(TargetHealthStateEnum::Unhealthy))
            .target_health_descriptions(d(TargetHealthStateEnum::Draining))
            // In an Availability Zone the load balancer has not enabled: never checked, not
            // counted (TargetHealth reason Target.NotInUse).
            .target_health_descriptions(
                TargetHealthDescription::builder()
                    .target_health(
                        TargetHealth::builder()
                            .state(TargetHealthStateEnum::Unused)
                            .reason(elbv2::types::TargetHealthReasonEnum::NotInUse)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let h = elb(RuleMode::MatchAny, &[&health])
        .target_health(&tg_arn("web-b1"))
        .await
        .expect("reads");
    assert_eq!(
        h,
        Health {
            healthy: 2,
            total: 4
        }
    );
}

#[tokio::test]
async fn registered_targets_are_the_ids_of_all_but_draining_and_registration_sends_ids() {
    use elbv2::operation::deregister_targets::DeregisterTargetsOutput;
    use elbv2::operation::register_targets::RegisterTargetsOutput;
    use elbv2::types::TargetDescription;
    let health = mock!(Client::describe_target_health).then_output(|| {
        let d = |id: &str, s: TargetHealthStateEnum| {
            TargetHealthDescription::builder()
                .target(TargetDescription::builder().id(id).port(30080).build())
                .target_health(TargetHealth::builder().state(s).build())
                .build()
        };
        DescribeTargetHealthOutput::builder()
            .target_health_descriptions(d("i-1", TargetHealthStateEnum::Healthy))
            .target_health_descriptions(d("i-2", TargetHealthStateEnum::Unused))
            .target_health_descriptions(d("i-3", TargetHealthStateEnum::Draining))
            .build()
    });
    let arn = tg_arn("web-b1");
    let ids = |t: &[TargetDescription]| {
        t.iter()
            .map(|t| t.id().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    let register = {
        let arn = arn.clone();
        mock!(Client::register_targets)
            .match_requests(move |r| {
                r.target_group_arn() == Some(arn.as_str())
                    && ids(r.targets()) == ["i-4", "i-5"]
                    && r.targets().iter().all(|t| t.port().is_none())
            })
            .then_output(|| RegisterTargetsOutput::builder().build())
    };
    let deregister = mock!(Client::deregister_targets)
        .match_requests(move |r| ids(r.targets()) == ["i-1"])
        .then_output(|| DeregisterTargetsOutput::builder().build());
    let elb = elb(RuleMode::MatchAny, &[&health, &register, &deregister]);
    assert_eq!(
        elb.registered_targets(&arn).await.expect("reads"),
        ["i-1", "i-2"]
    );
    elb.register_targets(&arn, &["i-4".into(), "i-5".into()])
        .await
        .expect("registers");
    elb.deregister_targets(&arn, &["i-1".into()])
        .await
        .expect("deregisters");
    assert_eq!((register.num_calls(), deregister.num_calls()), (1, 1));
}

// AWS: GetResources, TagFilter Values: at most 20 values a filter.
#[tokio::test]
async fn the_target_groups_of_many_cells_take_one_tag_query_per_20_cells() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let rule = {
        let asked = asked.clone();
        mock!(tag::Client::get_resources).then_compute_output(move |r| {
            let values = r.tag_filters()[0].values().to_vec();
            asked.lock().expect("lock").push(values.len());
            GetResourcesOutput::builder()
                .set_resource_tag_mapping_list(Some(
                    values
                        .iter()
                        .map(|cell| {
                            ResourceTagMapping::builder()
                                .resource_arn(tg_arn(&format!("tg-{cell}")))
                                .tags(tag("okra.io/cell", cell))
                                .tags(tag("okra.io/cluster", "c1"))
                                .build()
                        })
                        .collect(),
                ))
                .build()
        })
    };
    let cells: Vec<String> = (0..25).map(|i| format!("cell{i:02}")).collect();
    let found = elb_with(RuleMode::MatchAny, &[], &[&rule])
        .find_cells_target_groups(&cells)
        .await
        .expect("finds");
    assert_eq!(*asked.lock().expect("lock"), vec![20, 5]);
    assert_eq!(found.len(), 25);
    assert!(found.iter().all(|(cell, g)| g.name == format!("tg-{cell}")));
}
