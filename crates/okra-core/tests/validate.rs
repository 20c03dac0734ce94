//! `okra_core::validate`: one test (at least) per rule, each asserting the exact path.

use okra_core::spec::{
    AlbIngress, AnalysisRef, Arg, CanaryStep, CellSpec, CloudWatchQuery, DatadogProvider, Metric,
    MetricProvider, MetricStat, NlbIngress, Pause, Stickiness, TemplateRef,
};
use okra_core::validate::{
    FieldError, SpecError, ValidationErrors, parse_and_validate, validate, validate_value,
};
use pretty_assertions::assert_eq;
use proptest::prelude::*;

const WEB: &str = include_str!("../../../examples/cells/web.yaml");
const NLB_BLUEGREEN: &str = include_str!("../../../examples/cells/nlb-bluegreen.yaml");
const MINIMAL: &str = include_str!("fixtures/minimal.yaml");
const MANY_ERRORS: &str = include_str!("fixtures/many-errors.yaml");
const UNKNOWN_FIELD: &str = include_str!("fixtures/unknown-field.yaml");

const LISTENER: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2";
const NLB_LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/gateway/0123456789abcdef/fedcba9876543210";

fn web() -> CellSpec {
    CellSpec::from_yaml(WEB).expect("examples/cells/web.yaml parses")
}

fn nlb() -> CellSpec {
    CellSpec::from_yaml(NLB_BLUEGREEN).expect("examples/cells/nlb-bluegreen.yaml parses")
}

fn errors(spec: &CellSpec) -> ValidationErrors {
    validate(spec).expect_err("the spec should be invalid")
}

/// The one error of `spec`, which must be at `path`.
#[track_caller]
fn only_error(spec: &CellSpec, path: &str) -> FieldError {
    let errs = errors(spec);
    assert_eq!(errs.paths(), [path], "all errors:\n{errs}");
    errs.errors.into_iter().next().expect("one error")
}

/// Asserts the one error of `spec` is at `path` and its message holds `needle`.
#[track_caller]
fn assert_error(spec: &CellSpec, path: &str, needle: &str) {
    let e = only_error(spec, path);
    assert!(
        e.message.contains(needle),
        "`{}` does not hold `{needle}`",
        e.message
    );
}

#[track_caller]
fn assert_valid(spec: &CellSpec) {
    if let Err(e) = validate(spec) {
        panic!("the spec should be valid, but:\n{e}");
    }
}

fn step_weight(w: u32) -> CanaryStep {
    CanaryStep {
        set_weight: Some(w),
        pause: None,
        analysis: None,
    }
}

fn step_pause(d: Option<&str>) -> CanaryStep {
    CanaryStep {
        set_weight: None,
        pause: Some(Pause {
            duration: d.map(Into::into),
            ..Pause::default()
        }),
        analysis: None,
    }
}

fn step_analysis(templates: &[&str], args: &[(&str, Option<&str>)]) -> CanaryStep {
    CanaryStep {
        set_weight: None,
        pause: None,
        analysis: Some(AnalysisRef {
            templates: templates
                .iter()
                .map(|t| TemplateRef {
                    template_name: (*t).into(),
                })
                .collect(),
            args: args
                .iter()
                .map(|(n, v)| Arg {
                    name: (*n).into(),
                    value: v.map(Into::into),
                })
                .collect(),
            ..AnalysisRef::default()
        }),
    }
}

fn cw_metric(s: &mut CellSpec) -> &mut Metric {
    &mut s.analysis_templates[0].metrics[0]
}

fn dd_metric(s: &mut CellSpec) -> &mut Metric {
    &mut s.analysis_templates[1].metrics[0]
}

fn cw_query(s: &mut CellSpec, i: usize) -> &mut CloudWatchQuery {
    let cw = cw_metric(s)
        .provider
        .cloudwatch
        .as_mut()
        .expect("a CloudWatch metric");
    &mut cw.metric_data_queries[i]
}

fn metric_stat(s: &mut CellSpec) -> &mut MetricStat {
    cw_query(s, 0)
        .metric_stat
        .as_mut()
        .expect("a metricStat query")
}

fn datadog(s: &mut CellSpec) -> &mut DatadogProvider {
    dd_metric(s)
        .provider
        .datadog
        .as_mut()
        .expect("a Datadog metric")
}

const CW: &str = "analysisTemplates[0].metrics[0]";
const DD: &str = "analysisTemplates[1].metrics[0]";
const QUERIES: &str = "analysisTemplates[0].metrics[0].provider.cloudwatch.metricDataQueries";
const STAT: &str =
    "analysisTemplates[0].metrics[0].provider.cloudwatch.metricDataQueries[0].metricStat";
const HC: &str = "targetGroup.healthCheck";

// --- the examples ----------------------------------------------------------------------------

#[test]
fn web_example_is_valid() {
    let spec = parse_and_validate(WEB).unwrap();
    assert_eq!(spec.name, "web");
    assert_eq!(spec.replicas, 2);
    assert_eq!(spec.canary.steps.len(), 6);
    assert_eq!(spec.canary.steps[0].set_weight, Some(10));
    assert_eq!(
        spec.canary.steps[1].pause,
        Some(Pause {
            duration: Some("1m".into()),
            ..Pause::default()
        })
    );
    assert!(spec.canary.steps[2].analysis.is_some());
    assert_eq!(spec.canary.steps[3].set_weight, Some(50));
    assert_eq!(spec.canary.steps[4].pause, Some(Pause::default()));
    assert_eq!(spec.canary.steps[5].set_weight, Some(100));
    assert!(
        spec.analysis_templates[0].metrics[0]
            .provider
            .cloudwatch
            .is_some()
    );
    assert!(
        spec.analysis_templates[1].metrics[0]
            .provider
            .datadog
            .is_some()
    );
    assert_eq!(spec.canary.analysis.as_ref().unwrap().starting_step, 1);
}

#[test]
fn nlb_bluegreen_example_is_valid() {
    let spec = parse_and_validate(NLB_BLUEGREEN).unwrap();
    assert!(!spec.ingress.weighted());
    assert_eq!(spec.target_group.protocol.as_deref(), Some("TCP"));
}

#[test]
fn protocol_defaults_by_load_balancer_kind_and_health_port_takes_a_number() {
    let mut s = nlb();
    s.target_group.protocol = None;
    assert_valid(&s);
    assert_eq!(
        s.target_group
            .protocol_for(okra_core::spec::LoadBalancerKind::Nlb),
        "TCP"
    );
    let mut s = web();
    s.target_group.protocol = None;
    assert_valid(&s);
    assert_eq!(
        s.target_group
            .protocol_for(okra_core::spec::LoadBalancerKind::Alb),
        "HTTP"
    );
    let yaml = WEB.replace("port: traffic-port", "port: 8080");
    let s = parse_and_validate(&yaml).unwrap();
    assert_eq!(s.target_group.health_check.port.as_deref(), Some("8080"));
}

#[test]
fn minimal_fixture_is_valid_and_takes_defaults() {
    let spec = parse_and_validate(MINIMAL).unwrap();
    assert_eq!(spec.replicas, 1);
    assert_eq!(spec.version_tag, "okra.io/version");
    assert_eq!(spec.readiness.timeout, "10m");
    assert!(spec.canary.steps.is_empty());
}

#[test]
fn the_web_example_round_trips_through_json() {
    let spec = web();
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(*parse_and_validate(&json).unwrap().spec(), spec);
    let value = serde_json::to_value(&spec).unwrap();
    assert_eq!(*validate_value(&value).unwrap().spec(), spec);
}

// --- errors as a whole -----------------------------------------------------------------------

#[test]
fn every_error_is_reported_in_order() {
    let errs = match parse_and_validate(MANY_ERRORS) {
        Err(SpecError::Invalid(e)) => e,
        other => panic!("expected validation errors, got {other:?}"),
    };
    assert_eq!(
        errs.paths(),
        [
            "name",
            "ingress.alb.listenerArn",
            "clusterSelector.matchTags",
            "replicas",
            "targetGroup.protocol",
            "targetGroup.healthCheck.timeoutSeconds",
            "canary.steps[1].setWeight",
            "canary.steps[2]",
            "canary.steps[3].setWeight",
            "canary.steps[4].analysis.templates[0].templateName",
            "analysisTemplates[0].metrics[0].successCondition",
            "analysisTemplates[0].metrics[0].provider",
            "judge.confidence",
        ],
        "all errors:\n{errs}"
    );
}

#[test]
fn errors_display_one_per_line() {
    let mut s = web();
    s.canary.steps[3].set_weight = Some(140);
    s.judge.min_requests = 0;
    let errs = errors(&s);
    assert_eq!(
        errs.to_string(),
        "canary.steps[3].setWeight: 140 is not in 0..=100\n\
         judge.minRequests: 0 is not allowed: a sample needs at least 1 request"
    );
    let spec_error = SpecError::from(errs.clone());
    assert!(spec_error.to_string().ends_with(&errs.to_string()));
    assert_eq!(errs.len(), 2);
    assert_eq!(errs.at("judge.minRequests").count(), 1);
}

#[test]
fn validation_errors_serialize_for_api_answers() {
    let mut s = web();
    s.replicas = 0;
    let json = serde_json::to_value(errors(&s)).unwrap();
    assert_eq!(json["errors"][0]["path"], "replicas");
}

// --- parse errors ----------------------------------------------------------------------------

#[test]
fn a_yaml_shape_error_names_the_field() {
    let Err(SpecError::Invalid(e)) = parse_and_validate(UNKNOWN_FIELD) else {
        panic!("expected validation errors");
    };
    assert_eq!(e.paths(), ["canary.steps[1].setWeigth"], "{e}");
    assert_eq!(
        e.errors[0].message,
        "unknown field (did you mean `setWeight`?)"
    );
}

#[test]
fn text_that_is_neither_yaml_nor_json_is_a_parse_error_with_its_line() {
    let Err(SpecError::Parse(e)) = parse_and_validate("name: web\n  ingress: [\n") else {
        panic!("expected a parse error");
    };
    assert!(e.to_string().contains("line"), "{e}");
    let Err(SpecError::Parse(e)) = parse_and_validate("{\"name\": \"web\",\n \"ingress\": }")
    else {
        panic!("expected a parse error");
    };
    assert!(e.to_string().contains("line 2"), "{e}");
}

// Issue "Deploys the way AWS users expect": `okra cell apply -f` on a spec with five mistakes
// reported one ("clusterSelector: missing field", "(1 errors)").
#[test]
fn five_mistakes_of_shape_are_five_errors_at_once() {
    let Err(SpecError::Invalid(e)) =
        parse_and_validate(include_str!("fixtures/five-shape-mistakes.yaml"))
    else {
        panic!("expected validation errors");
    };
    assert_eq!(
        e.paths(),
        [
            "canary.steps[1].pause.forever",
            "clusterSelecter",
            "clusterSelector",
            "ingress.alb.rule",
            "replica",
            "targetGroup.port",
        ],
        "{e}"
    );
    assert!(
        e.at("targetGroup.port")
            .next()
            .unwrap()
            .message
            .contains("integer"),
        "{e}"
    );
}

#[test]
fn a_json_error_names_the_field_and_every_error_is_reported() {
    let json = r#"{"name": "web", "ingress": {"alb": {"listenerArn": "x"}},
        "clusterSelector": {"matchTags": {"a": "b"}}, "targetGroup": {"port": 8080},
        "canary": {"steps": [{"setWeight": "ten"}, {"setWeight": 1e400}]}, "bogus": 1, "bogus2": 2}"#;
    let Err(SpecError::Invalid(e)) = parse_and_validate(json) else {
        panic!("expected validation errors");
    };
    // 1e400 is no f64: read anyway, and named (it is not an integer).
    assert_eq!(
        e.paths(),
        [
            "bogus",
            "bogus2",
            "canary.steps[0].setWeight",
            "canary.steps[1].setWeight",
            // A rule's error, in the same run as the shape's.
            "ingress.alb.listenerArn",
        ],
        "{e}"
    );
}

#[test]
fn a_json_value_error_names_the_field() {
    let mut v = serde_json::to_value(web()).unwrap();
    v["targetGroup"]["port"] = serde_json::json!(70000);
    let Err(SpecError::Invalid(e)) = validate_value(&v) else {
        panic!("expected validation errors");
    };
    assert_eq!(e.paths(), ["targetGroup.port"], "{e}");
    v["targetGroup"]["port"] = serde_json::json!(8080);
    v["bogus"] = serde_json::json!(1);
    let Err(SpecError::Invalid(e)) = validate_value(&v) else {
        panic!("expected validation errors");
    };
    assert_eq!(e.paths(), ["bogus"], "{e}");
    // Nothing of the spec's is close to `bogus`: no suggestion.
    assert_eq!(e.errors[0].message, "unknown field");
}

/// Shape, range and meaning errors in one run: a missing field, a port no `u16` holds, a
/// listener ARN that is not one, and a rule broken elsewhere (a weight over 100) — all four
/// reported together, and nothing about the placeholder values the rules were checked with.
#[test]
fn shape_range_and_meaning_errors_are_reported_in_one_run() {
    let mut v = serde_json::to_value(web()).unwrap();
    v.as_object_mut().unwrap().remove("clusterSelector");
    v["targetGroup"]["port"] = serde_json::json!(99999);
    v["ingress"]["alb"]["listenerArn"] = serde_json::json!("not-an-arn");
    v["canary"]["steps"][0] = serde_json::json!({"setWeight": 150});
    let Err(SpecError::Invalid(e)) = validate_value(&v) else {
        panic!("expected validation errors");
    };
    let paths = e.paths();
    for expected in [
        "clusterSelector",
        "targetGroup.port",
        "ingress.alb.listenerArn",
        "canary.steps[0].setWeight",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}: {e}"
        );
    }
    assert!(
        !e.to_string().contains("placeholder"),
        "nothing about the placeholders: {e}"
    );
    // A valid spec is still valid, and one error alone is still the only one.
    assert!(validate_value(&serde_json::to_value(web()).unwrap()).is_ok());
    let mut one = serde_json::to_value(web()).unwrap();
    one["targetGroup"]["port"] = serde_json::json!(99999);
    let Err(SpecError::Invalid(e)) = validate_value(&one) else {
        panic!("expected validation errors");
    };
    assert_eq!(e.paths(), ["targetGroup.port"], "{e}");
}

#[test]
fn a_json_value_is_validated() {
    let mut v = serde_json::to_value(web()).unwrap();
    v["replicas"] = serde_json::json!(3);
    let Err(SpecError::Invalid(e)) = validate_value(&v) else {
        panic!("expected validation errors");
    };
    assert_eq!(e.paths(), ["replicas"]);
}

#[test]
fn trailing_json_is_a_parse_error() {
    let json = format!("{} {{}}", serde_json::to_string(&web()).unwrap());
    assert!(matches!(
        parse_and_validate(&json),
        Err(SpecError::Parse(_))
    ));
}

// --- name ------------------------------------------------------------------------------------

#[test]
fn name_rules() {
    let mut s = web();
    s.name = "a".repeat(32);
    assert_valid(&s);
    s.name = "a1-b2".into();
    assert_valid(&s);

    s.name = String::new();
    assert_error(&s, "name", "must not be empty");
    s.name = "a".repeat(33);
    assert_error(&s, "name", "33 characters long");
    s.name = "Web".into();
    assert_error(&s, "name", "must start with a letter a-z");
    s.name = "1web".into();
    assert_error(&s, "name", "must start with a letter a-z");
    s.name = "web_1".into();
    assert_error(&s, "name", "holds `_`");
    s.name = "web-".into();
    assert_error(&s, "name", "must not end with `-`");
}

// --- ingress ---------------------------------------------------------------------------------

#[test]
fn ingress_needs_exactly_one_listener() {
    let mut s = web();
    s.ingress.alb = None;
    assert_error(&s, "ingress", "neither is set");
    let mut s = web();
    s.ingress.nlb = Some(NlbIngress {
        listener_arn: NLB_LISTENER.into(),
        weighted: true,
    });
    assert_error(&s, "ingress", "not both");
}

#[test]
fn alb_listener_arn_must_be_well_formed() {
    let cases = [
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188",
            "parts of a listener",
        ),
        (
            "arn:aws-eu:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "not a partition",
        ),
        (
            "arn:aws:elasticloadbalancing:eu-west-1:12345:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "12-digit account",
        ),
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c918/f2f7dc8efc522ab2",
            "16 lower-case hex",
        ),
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c918z/f2f7dc8efc522ab2",
            "16 lower-case hex",
        ),
        (
            "arn:aws:elasticloadbalancing:EU:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "not a region",
        ),
        (
            "arn:aws-cn:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "is in partition `aws`",
        ),
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web-prod/50dc6c495c0c9188",
            "not a `listener`",
        ),
        (
            "arn:aws:ecs:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "not `elasticloadbalancing`",
        ),
        ("web-prod", "six `:`-separated parts"),
    ];
    for (arn, needle) in cases {
        let mut s = web();
        s.ingress.alb = Some(AlbIngress {
            listener_arn: arn.into(),
            rule_arn: None,
        });
        assert_error(&s, "ingress.alb.listenerArn", needle);
    }
}

#[test]
fn other_partitions_are_accepted() {
    let mut s = web();
    s.ingress.alb = Some(AlbIngress {
        listener_arn: "arn:aws-cn:elasticloadbalancing:cn-northwest-1:123456789012:listener/app/w/50dc6c495c0c9188/f2f7dc8efc522ab2".into(),
        rule_arn: Some("arn:aws-cn:elasticloadbalancing:cn-northwest-1:123456789012:listener-rule/app/w/50dc6c495c0c9188/f2f7dc8efc522ab2/0000000000000001".into()),
    });
    assert_valid(&s);
    s.ingress.alb = Some(AlbIngress {
        listener_arn: "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:listener/app/w/50dc6c495c0c9188/f2f7dc8efc522ab2".into(),
        rule_arn: None,
    });
    assert_valid(&s);
}

#[test]
fn an_nlb_listener_under_alb_is_refused() {
    let mut s = web();
    s.ingress.alb = Some(AlbIngress {
        listener_arn: NLB_LISTENER.into(),
        rule_arn: None,
    });
    assert_error(
        &s,
        "ingress.alb.listenerArn",
        "is an NLB listener (listener/net/...)",
    );
    let mut s = nlb();
    s.ingress.nlb.as_mut().unwrap().listener_arn = LISTENER.into();
    assert_error(
        &s,
        "ingress.nlb.listenerArn",
        "is an ALB listener (listener/app/...)",
    );
}

#[test]
fn rule_arn_must_be_well_formed() {
    let mut s = web();
    s.ingress.alb.as_mut().unwrap().rule_arn = Some(LISTENER.into());
    assert_error(&s, "ingress.alb.ruleArn", "not a `listener-rule`");
    s.ingress.alb.as_mut().unwrap().rule_arn = Some(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2".into(),
    );
    assert_error(&s, "ingress.alb.ruleArn", "parts of a listener-rule");
}

#[test]
fn rule_arn_must_be_of_the_listener() {
    let other = [
        // another listener of the same load balancer
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web-prod/50dc6c495c0c9188/aaaaaaaaaaaaaaaa/9683b2d02a6cabee",
        // another load balancer
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/api-prod/1111111111111111/f2f7dc8efc522ab2/9683b2d02a6cabee",
        // another account
        "arn:aws:elasticloadbalancing:eu-west-1:210987654321:listener-rule/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee",
        // another region
        "arn:aws:elasticloadbalancing:eu-west-2:123456789012:listener-rule/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee",
    ];
    for rule in other {
        let mut s = web();
        s.ingress.alb.as_mut().unwrap().rule_arn = Some(rule.into());
        assert_error(&s, "ingress.alb.ruleArn", "is not a rule of listenerArn");
    }
}

// --- clusterSelector, versionTag -------------------------------------------------------------

#[test]
fn match_tags_must_not_be_empty() {
    let mut s = web();
    s.cluster_selector.match_tags.clear();
    assert_error(&s, "clusterSelector.matchTags", "at least one tag");
}

#[test]
fn match_tags_obey_eks_tag_limits() {
    let mut s = web();
    s.cluster_selector
        .match_tags
        .insert("k".repeat(128), "v".repeat(256));
    assert_valid(&s);
    s.cluster_selector
        .match_tags
        .insert("k".repeat(129), "v".into());
    assert_error(
        &s,
        "clusterSelector.matchTags",
        "129 characters long; an EKS tag key has at most 128",
    );
    let mut s = web();
    s.cluster_selector
        .match_tags
        .insert("team".into(), "v".repeat(257));
    assert_error(
        &s,
        "clusterSelector.matchTags",
        "the value of `team` is 257 characters long",
    );
    let mut s = web();
    s.cluster_selector
        .match_tags
        .insert(String::new(), "x".into());
    assert_error(
        &s,
        "clusterSelector.matchTags",
        "a tag key must not be empty",
    );
}

#[test]
fn match_tags_must_not_hold_the_version_tag() {
    let mut s = web();
    s.cluster_selector
        .match_tags
        .insert("okra.io/version".into(), "1.0.0".into());
    assert_error(
        &s,
        "clusterSelector.matchTags",
        "must not hold the version tag `okra.io/version`",
    );
    // With another version tag, that key is an ordinary one.
    s.version_tag = "app/version".into();
    assert_valid(&s);
    s.cluster_selector
        .match_tags
        .insert("app/version".into(), "1.0.0".into());
    assert_error(&s, "clusterSelector.matchTags", "`app/version`");
}

#[test]
fn version_tag_rules() {
    let mut s = web();
    s.version_tag = String::new();
    assert_error(&s, "versionTag", "must not be empty");
    s.version_tag = "t".repeat(129);
    assert_error(&s, "versionTag", "at most 128");
    s.version_tag = "t".repeat(128);
    assert_valid(&s);
}

// --- replicas, version -----------------------------------------------------------------------

#[test]
fn replicas_must_be_positive() {
    let mut s = web();
    s.replicas = 0;
    assert_error(&s, "replicas", "at least 1");
}

#[test]
fn replicas_must_fit_an_alb_forward_action() {
    let mut s = web();
    s.replicas = 3;
    let e = only_error(&s, "replicas");
    assert_eq!(
        e.message,
        "3 cannot fit: a canary step forwards to 3 stable + 3 canary target groups, but an ALB \
         forward action holds at most 5; use at most 2"
    );
    s.replicas = u32::MAX;
    only_error(&s, "replicas");
}

#[test]
fn replicas_must_fit_a_weighted_nlb_forward_action() {
    let mut s = nlb();
    s.ingress.nlb.as_mut().unwrap().weighted = true;
    s.replicas = 2;
    assert_valid(&s);
    s.replicas = 3;
    assert_error(&s, "replicas", "but an NLB forward action holds at most 5");
}

#[test]
fn a_blue_green_nlb_takes_one_replica() {
    let mut s = nlb();
    s.replicas = 2;
    assert_error(
        &s,
        "replicas",
        "2 cannot fit: a blue/green NLB listener (weighted: false)",
    );
}

#[test]
fn version_pin_must_be_semver() {
    let mut s = web();
    for ok in ["1.4.2", "v1.4.2", "2.0.0-rc.1"] {
        s.version = Some(ok.into());
        assert_valid(&s);
    }
    for bad in ["1.4", "latest", "v", ""] {
        s.version = Some(bad.into());
        assert_error(&s, "version", "is not a semver version");
    }
}

// --- targetGroup -----------------------------------------------------------------------------

#[test]
fn target_group_port_must_not_be_zero() {
    let mut s = web();
    s.target_group.port = 0;
    assert_error(&s, "targetGroup.port", "0 is not in 1..=65535");
}

#[test]
fn instance_registration_needs_instance_targets() {
    let mut s = web();
    s.target_group.registration = okra_core::spec::Registration::Instances;
    assert_valid(&s);
    s.target_group.target_type = okra_core::spec::TargetType::Ip;
    assert_error(
        &s,
        "targetGroup.registration",
        "needs `targetType: instance`",
    );
    s.target_group.registration = okra_core::spec::Registration::External;
    assert_valid(&s);
}

#[test]
fn target_group_protocol_must_fit_the_load_balancer() {
    let mut s = web();
    s.target_group.protocol = Some("HTTPS".into());
    assert_valid(&s);
    s.target_group.protocol = Some("TCP".into());
    assert_error(
        &s,
        "targetGroup.protocol",
        "not an ALB target group protocol",
    );
    s.target_group.protocol = Some("http".into());
    assert_error(
        &s,
        "targetGroup.protocol",
        "not an ALB target group protocol",
    );

    let mut s = nlb();
    for ok in ["TCP", "TLS", "UDP", "TCP_UDP"] {
        s.target_group.protocol = Some(ok.into());
        assert_valid(&s);
    }
    s.target_group.protocol = Some("HTTP".into());
    assert_error(
        &s,
        "targetGroup.protocol",
        "not an NLB target group protocol",
    );
}

/// A field, a change to the web example, and a part of the error message.
type Case = (&'static str, fn(&mut CellSpec), &'static str);

#[test]
fn health_check_ranges() {
    let cases: [Case; 12] = [
        (
            "intervalSeconds",
            |s| s.target_group.health_check.interval_seconds = Some(4),
            "4 is not in 5..=300",
        ),
        (
            "intervalSeconds",
            |s| s.target_group.health_check.interval_seconds = Some(301),
            "301 is not in 5..=300",
        ),
        (
            "timeoutSeconds",
            |s| s.target_group.health_check.timeout_seconds = Some(1),
            "1 is not in 2..=120",
        ),
        (
            "timeoutSeconds",
            |s| s.target_group.health_check.timeout_seconds = Some(10),
            "must be less than intervalSeconds (10)",
        ),
        (
            "healthyThreshold",
            |s| s.target_group.health_check.healthy_threshold = Some(1),
            "1 is not in 2..=10",
        ),
        (
            "unhealthyThreshold",
            |s| s.target_group.health_check.unhealthy_threshold = Some(11),
            "11 is not in 2..=10",
        ),
        (
            "port",
            |s| s.target_group.health_check.port = Some("0".into()),
            "neither `traffic-port` nor",
        ),
        (
            "port",
            |s| s.target_group.health_check.port = Some("http".into()),
            "neither `traffic-port` nor",
        ),
        (
            "path",
            |s| s.target_group.health_check.path = Some("healthz".into()),
            "must start with `/`",
        ),
        (
            "path",
            |s| s.target_group.health_check.path = Some(format!("/{}", "a".repeat(1024))),
            "at most 1024",
        ),
        (
            "protocol",
            |s| s.target_group.health_check.protocol = Some("GRPC".into()),
            "HTTP, HTTPS or TCP",
        ),
        (
            "protocol",
            |s| s.target_group.health_check.protocol = Some("TCP".into()),
            "an ALB target group's health check",
        ),
    ];
    for (field, change, needle) in cases {
        let mut s = web();
        change(&mut s);
        assert_error(&s, &format!("{HC}.{field}"), needle);
    }
}

#[test]
fn health_check_timeout_is_below_the_default_interval() {
    let mut s = web();
    s.target_group.health_check.interval_seconds = None;
    s.target_group.health_check.timeout_seconds = Some(29);
    assert_valid(&s);
    s.target_group.health_check.timeout_seconds = Some(30);
    assert_error(
        &s,
        &format!("{HC}.timeoutSeconds"),
        "ELB's default of 30 seconds",
    );
}

#[test]
fn health_check_port_may_be_a_number() {
    let mut s = web();
    s.target_group.health_check.port = Some("8080".into());
    assert_valid(&s);
    s.target_group.health_check.port = Some("65536".into());
    assert_error(&s, &format!("{HC}.port"), "1..=65535");
}

#[test]
fn health_check_matcher() {
    let mut s = web();
    for ok in ["200", "200,202", "200-399", "200-299,404"] {
        s.target_group.health_check.matcher = Some(ok.into());
        assert_valid(&s);
    }
    for bad in ["2xx", "200-", "300-200", "ok", "200;202"] {
        s.target_group.health_check.matcher = Some(bad.into());
        only_error(&s, &format!("{HC}.matcher"));
    }
    s.target_group.health_check.matcher = Some("200-503".into());
    assert_error(&s, &format!("{HC}.matcher"), "code 503 is not in 200-499");
}

#[test]
fn a_tcp_health_check_has_no_path() {
    let mut s = nlb();
    s.target_group.health_check.path = Some("/healthz".into());
    assert_error(&s, &format!("{HC}.path"), "a TCP health check has no path");
}

// --- readiness, stickiness -------------------------------------------------------------------

#[test]
fn readiness_rules() {
    let mut s = web();
    s.readiness.min_healthy_percent = 101;
    assert_error(&s, "readiness.minHealthyPercent", "101 is not in 0..=100");
    let mut s = web();
    s.readiness.timeout = "10".into();
    assert_error(&s, "readiness.timeout", "has no unit");
    s.readiness.timeout = "0s".into();
    assert_error(&s, "readiness.timeout", "more than 0s");
}

#[test]
fn stickiness_rules() {
    let mut s = web();
    for ok in ["1s", "7d", "1h30m"] {
        s.stickiness = Some(Stickiness {
            enabled: true,
            duration: ok.into(),
        });
        assert_valid(&s);
    }
    for (bad, needle) in [
        ("0s", "1s..=7d"),
        ("8d", "1s..=7d"),
        ("500ms", "1s..=7d"),
        ("1500ms", "whole number"),
        ("1 fortnight", "not a duration"),
    ] {
        s.stickiness = Some(Stickiness {
            enabled: true,
            duration: bad.into(),
        });
        assert_error(&s, "stickiness.duration", needle);
    }
}

// --- canary.steps ----------------------------------------------------------------------------

#[test]
fn a_step_sets_exactly_one_field() {
    let mut s = web();
    s.canary.steps[1].set_weight = Some(10);
    assert_error(&s, "canary.steps[1]", "this one sets setWeight and pause");
    let mut s = web();
    s.canary.steps[1].pause = None;
    assert_error(&s, "canary.steps[1]", "this one sets none");
}

#[test]
fn set_weight_is_a_percentage() {
    let mut s = web();
    s.canary.steps[3].set_weight = Some(140);
    let e = only_error(&s, "canary.steps[3].setWeight");
    assert_eq!(
        e.to_string(),
        "canary.steps[3].setWeight: 140 is not in 0..=100"
    );
}

#[test]
fn weights_may_not_go_down() {
    let mut s = web();
    s.canary.steps.insert(4, step_weight(20));
    let e = only_error(&s, "canary.steps[4].setWeight");
    assert_eq!(
        e.to_string(),
        "canary.steps[4].setWeight: 20 is lower than the 50 set at canary.steps[3]; weights may not \
         go down (use an abort to go back)"
    );
}

#[test]
fn weights_may_stay_level() {
    let mut s = web();
    s.canary.steps = vec![
        step_weight(0),
        step_weight(10),
        step_weight(10),
        step_pause(None),
        step_weight(100),
    ];
    assert_valid(&s);
}

#[test]
fn a_blue_green_nlb_sets_only_0_or_100() {
    let mut s = nlb();
    s.canary.steps.insert(1, step_weight(0));
    assert_valid(&s);
    s.canary.steps.insert(2, step_weight(50));
    assert_error(
        &s,
        "canary.steps[2].setWeight",
        "50 needs a weighted listener",
    );
    s.ingress.nlb.as_mut().unwrap().weighted = true;
    assert_valid(&s);
}

#[test]
fn pause_duration_must_parse() {
    let mut s = web();
    s.canary.steps[1] = step_pause(Some("1 minute and a bit"));
    assert_error(&s, "canary.steps[1].pause.duration", "is not a duration");
    s.canary.steps[1] = step_pause(Some("60"));
    assert_error(&s, "canary.steps[1].pause.duration", "has no unit");
    s.canary.steps[1] = step_pause(Some("400d"));
    assert_error(&s, "canary.steps[1].pause.duration", "longer than 365 days");
    s.canary.steps[1] = step_pause(Some("-1m"));
    assert_error(&s, "canary.steps[1].pause.duration", "negative");
}

#[test]
fn at_most_100_steps() {
    let mut s = web();
    s.canary.steps = (0..100).map(step_weight).collect();
    assert_valid(&s);
    s.canary.steps.push(step_weight(100));
    assert_error(&s, "canary.steps", "has 101 steps; at most 100");
}

#[test]
fn a_step_analysis_names_templates() {
    let mut s = web();
    s.canary.steps[2] = step_analysis(&[], &[]);
    assert_error(
        &s,
        "canary.steps[2].analysis.templates",
        "at least one analysis template",
    );
}

#[test]
fn a_step_analysis_template_must_exist() {
    let mut s = web();
    s.canary.steps[2] = step_analysis(&["error-rate", "nope"], &[("service", Some("web"))]);
    assert_error(
        &s,
        "canary.steps[2].analysis.templates[1].templateName",
        "`nope` is not the name of any of analysisTemplates (they are: `error-rate`, `latency`)",
    );
}

#[test]
fn a_step_analysis_names_a_template_once() {
    let mut s = web();
    s.canary.steps[2] = step_analysis(&["error-rate", "error-rate"], &[]);
    assert_error(
        &s,
        "canary.steps[2].analysis.templates[1].templateName",
        "already named",
    );
}

#[test]
fn a_step_analysis_gives_args_without_defaults() {
    let mut s = web();
    s.canary.steps[2] = step_analysis(&["error-rate", "latency"], &[]);
    assert_error(
        &s,
        "canary.steps[2].analysis.args",
        "template `latency` needs arg `service`, which has no default",
    );
    // A default is enough.
    s.canary.steps[2] = step_analysis(&["error-rate"], &[]);
    assert_valid(&s);
    // And may be overridden.
    s.canary.steps[2] = step_analysis(&["error-rate"], &[("load-balancer", Some("app/x/1"))]);
    assert_valid(&s);
}

#[test]
fn a_step_analysis_gives_only_declared_args() {
    let mut s = web();
    s.canary.steps[2] = step_analysis(
        &["error-rate", "latency"],
        &[("service", Some("web")), ("region", Some("x"))],
    );
    assert_error(
        &s,
        "canary.steps[2].analysis.args[1].name",
        "`region` is not an arg of templates `error-rate`, `latency`",
    );
}

#[test]
fn a_step_analysis_arg_has_one_value() {
    let mut s = web();
    s.canary.steps[2] = step_analysis(&["latency"], &[("service", None)]);
    assert_error(
        &s,
        "canary.steps[2].analysis.args[0].value",
        "arg `service` needs a value",
    );
    s.canary.steps[2] = step_analysis(
        &["latency"],
        &[("service", Some("a")), ("service", Some("b"))],
    );
    assert_error(
        &s,
        "canary.steps[2].analysis.args[1].name",
        "already given at",
    );
}

#[test]
fn background_analysis_templates_resolve() {
    let mut s = web();
    s.canary.analysis.as_mut().unwrap().templates[0].template_name = "missing".into();
    assert_error(
        &s,
        "canary.analysis.templates[0].templateName",
        "`missing` is not the name",
    );
}

#[test]
fn background_analysis_gives_args_without_defaults() {
    let mut s = web();
    s.canary
        .analysis
        .as_mut()
        .unwrap()
        .templates
        .push(TemplateRef {
            template_name: "latency".into(),
        });
    assert_error(
        &s,
        "canary.analysis.args",
        "template `latency` needs arg `service`",
    );
    s.canary.analysis.as_mut().unwrap().args.push(Arg {
        name: "service".into(),
        value: Some("web".into()),
    });
    assert_valid(&s);
    s.canary.analysis.as_mut().unwrap().args.push(Arg {
        name: "zone".into(),
        value: Some("a".into()),
    });
    assert_error(&s, "canary.analysis.args[1].name", "`zone` is not an arg");
}

#[test]
fn background_analysis_starts_within_the_steps() {
    let mut s = web();
    s.canary.analysis.as_mut().unwrap().starting_step = 6;
    assert_valid(&s);
    s.canary.analysis.as_mut().unwrap().starting_step = 7;
    assert_error(
        &s,
        "canary.analysis.startingStep",
        "7 is past the last step: there are 6 steps",
    );
}

// --- analysisTemplates -----------------------------------------------------------------------

#[test]
fn template_names_are_unique() {
    let mut s = web();
    s.analysis_templates[1].name = "error-rate".into();
    // The steps naming `latency` then fail too; only the name error is of interest here.
    s.canary.steps[2] = step_analysis(&["error-rate"], &[]);
    assert_error(
        &s,
        "analysisTemplates[1].name",
        "already the name of analysisTemplates[0]",
    );
}

#[test]
fn a_template_has_metrics() {
    let mut s = web();
    s.analysis_templates[1].metrics.clear();
    assert_error(&s, "analysisTemplates[1].metrics", "at least one metric");
}

#[test]
fn metric_names_are_unique_in_a_template() {
    let mut s = web();
    let m = s.analysis_templates[1].metrics[0].clone();
    s.analysis_templates[1].metrics.push(m);
    assert_error(
        &s,
        "analysisTemplates[1].metrics[1].name",
        "already the name of analysisTemplates[1].metrics[0]",
    );
}

#[test]
fn template_arg_names() {
    let mut s = web();
    s.analysis_templates[1].args.push(Arg {
        name: "service".into(),
        value: None,
    });
    assert_error(&s, "analysisTemplates[1].args[1].name", "already declared");
    let mut s = web();
    s.analysis_templates[1].args.push(Arg {
        name: "a b".into(),
        value: None,
    });
    s.canary.steps[2] = step_analysis(&["error-rate"], &[]);
    s.canary.analysis = None;
    assert_error(&s, "analysisTemplates[1].args[1].name", "not an arg name");
}

#[test]
fn metric_interval_and_initial_delay_are_durations() {
    let mut s = web();
    cw_metric(&mut s).interval = "1".into();
    assert_error(&s, &format!("{CW}.interval"), "has no unit");
    cw_metric(&mut s).interval = "500ms".into();
    assert_error(&s, &format!("{CW}.interval"), "shorter than 1s");
    cw_metric(&mut s).interval = "1s".into();
    assert_valid(&s);
    dd_metric(&mut s).initial_delay = Some("soon".into());
    assert_error(&s, &format!("{DD}.initialDelay"), "is not a duration");
}

#[test]
fn metric_count_is_bounded() {
    let mut s = web();
    cw_metric(&mut s).count = 1000;
    assert_valid(&s);
    cw_metric(&mut s).count = 0;
    assert_error(&s, &format!("{CW}.count"), "0 is not in 1..=1000");
    cw_metric(&mut s).count = 1001;
    assert_error(&s, &format!("{CW}.count"), "1001 is not in 1..=1000");
}

#[test]
fn a_metric_has_a_condition() {
    let mut s = web();
    dd_metric(&mut s).success_condition = None;
    assert_error(
        &s,
        DD,
        "metric `p95-latency` needs a successCondition, a failureCondition or both",
    );
    dd_metric(&mut s).failure_condition = Some("result > 1".into());
    assert_valid(&s);
}

#[test]
fn conditions_compile_as_cel() {
    let mut s = web();
    cw_metric(&mut s).success_condition = Some("result <".into());
    let e = only_error(&s, &format!("{CW}.successCondition"));
    assert!(
        e.message
            .starts_with("metric `elb-5xx-ratio`: `result <` is not a valid CEL expression: 1:"),
        "{}",
        e.message
    );
    assert!(!e.message.contains('\n'), "{}", e.message);
    let mut s = web();
    cw_metric(&mut s).failure_condition = Some("   ".into());
    assert_error(
        &s,
        &format!("{CW}.failureCondition"),
        "the condition is empty",
    );
}

#[test]
fn conditions_use_only_result_and_args() {
    let mut s = web();
    cw_metric(&mut s).failure_condition = Some("value >= 0.05".into());
    assert_error(
        &s,
        &format!("{CW}.failureCondition"),
        "`value >= 0.05` refers to `value`, but a condition may only use `result`",
    );
    cw_metric(&mut s).failure_condition =
        Some("value > limit.max && type(result) == double".into());
    assert_error(
        &s,
        &format!("{CW}.failureCondition"),
        "refers to `limit`, `value`, but",
    );
    // Comprehension variables and declared args are fine.
    cw_metric(&mut s).failure_condition =
        Some("[0.05, 0.1].exists(t, result >= t) || args['load-balancer'] == ''".into());
    assert_valid(&s);
    cw_metric(&mut s).failure_condition = Some("result > double(args.threshold)".into());
    assert_error(
        &s,
        &format!("{CW}.failureCondition"),
        "uses `args.threshold`, which the template does not declare",
    );
    s.analysis_templates[0].args.push(Arg {
        name: "threshold".into(),
        value: Some("0.05".into()),
    });
    assert_valid(&s);
}

#[test]
fn a_metric_has_one_provider() {
    let mut s = web();
    dd_metric(&mut s).provider = MetricProvider::default();
    assert_error(&s, &format!("{DD}.provider"), "none is set");
    let mut s = web();
    let cw = cw_metric(&mut s).provider.cloudwatch.clone();
    dd_metric(&mut s).provider.cloudwatch = cw;
    // The CloudWatch queries use `load-balancer`, which `latency` does not declare.
    let errs = errors(&s);
    assert_eq!(errs.errors[0].path, format!("{DD}.provider"));
    assert!(
        errs.errors[0]
            .message
            .contains("not `cloudwatch`, `datadog`"),
        "{}",
        errs.errors[0].message
    );
}

#[test]
fn cloudwatch_query_count() {
    let mut s = web();
    cw_metric(&mut s)
        .provider
        .cloudwatch
        .as_mut()
        .unwrap()
        .metric_data_queries
        .clear();
    assert_error(&s, QUERIES, "at least one query");
    let mut s = web();
    let q = cw_query(&mut s, 2).clone();
    let queries = &mut cw_metric(&mut s)
        .provider
        .cloudwatch
        .as_mut()
        .unwrap()
        .metric_data_queries;
    for i in 3..500 {
        queries.push(CloudWatchQuery {
            id: format!("q{i}"),
            return_data: None,
            ..q.clone()
        });
    }
    assert_valid(&s);
    let queries = &mut cw_metric(&mut s)
        .provider
        .cloudwatch
        .as_mut()
        .unwrap()
        .metric_data_queries;
    queries.push(CloudWatchQuery {
        id: "last".into(),
        return_data: None,
        ..q
    });
    assert_error(
        &s,
        QUERIES,
        "has 501 queries; GetMetricData takes at most 500",
    );
}

#[test]
fn cloudwatch_query_ids() {
    let mut s = web();
    cw_query(&mut s, 1).id = "errors".into();
    assert_error(
        &s,
        &format!("{QUERIES}[1].id"),
        "`errors` is already the id of",
    );
    for bad in ["Errors", "1errors", "err-ors", ""] {
        let mut s = web();
        cw_query(&mut s, 0).id = bad.into();
        assert_error(&s, &format!("{QUERIES}[0].id"), "is not a query id");
    }
}

#[test]
fn a_cloudwatch_query_is_an_expression_or_a_metric_stat() {
    let mut s = web();
    cw_query(&mut s, 0).expression = Some("requests * 2".into());
    assert_error(&s, &format!("{QUERIES}[0]"), "not both");
    let mut s = web();
    cw_query(&mut s, 2).expression = None;
    assert_error(&s, &format!("{QUERIES}[2]"), "neither is set");
}

#[test]
fn one_cloudwatch_query_returns_data() {
    let mut s = web();
    cw_query(&mut s, 0).return_data = Some(true);
    assert_error(
        &s,
        &format!("{QUERIES}[2].returnData"),
        "already sets returnData: true",
    );
}

#[test]
fn cloudwatch_period() {
    let mut s = web();
    for ok in [1, 5, 10, 30, 60, 120, 3600] {
        metric_stat(&mut s).period = ok;
        assert_valid(&s);
    }
    for bad in [0, 2, 45, 90] {
        metric_stat(&mut s).period = bad;
        assert_error(
            &s,
            &format!("{STAT}.period"),
            "use 1, 5, 10, 30 or a multiple of 60",
        );
    }
}

#[test]
fn cloudwatch_stat() {
    let mut s = web();
    for ok in [
        "Sum",
        "Average",
        "Maximum",
        "Minimum",
        "SampleCount",
        "p99",
        "p99.9",
        "p50",
        "p0",
    ] {
        metric_stat(&mut s).stat = ok.into();
        assert_valid(&s);
    }
    for bad in ["sum", "Avg", "p101", "p", "p99.9.9", "tm99"] {
        metric_stat(&mut s).stat = bad.into();
        assert_error(&s, &format!("{STAT}.stat"), "is not a statistic");
    }
}

#[test]
fn cloudwatch_window() {
    let mut s = web();
    cw_metric(&mut s)
        .provider
        .cloudwatch
        .as_mut()
        .unwrap()
        .window = Some("5".into());
    assert_error(
        &s,
        &format!("{CW}.provider.cloudwatch.window"),
        "has no unit",
    );
}

#[test]
fn cloudwatch_placeholders_name_declared_args() {
    let mut s = web();
    metric_stat(&mut s)
        .dimensions
        .insert("TargetGroup".into(), "{{args.target-group}}".into());
    assert_error(
        &s,
        &format!("{STAT}.dimensions"),
        "`{{args.target-group}}` names no arg of the template",
    );
    let mut s = web();
    metric_stat(&mut s)
        .dimensions
        .insert("TargetGroup".into(), "{{ target }}".into());
    assert_error(
        &s,
        &format!("{STAT}.dimensions"),
        "`{{target}}` is not a placeholder okra fills",
    );
    let mut s = web();
    cw_query(&mut s, 2).expression = Some("errors / requests * {{args.scale}}".into());
    assert_error(
        &s,
        &format!("{QUERIES}[2].expression"),
        "`{{args.scale}}` names no arg",
    );
}

#[test]
fn datadog_query() {
    let mut s = web();
    datadog(&mut s).query = "  ".into();
    assert_error(
        &s,
        &format!("{DD}.provider.datadog.query"),
        "must not be empty",
    );
    datadog(&mut s).query = "a".repeat(8192);
    assert_valid(&s);
    datadog(&mut s).query = "a".repeat(8193);
    assert_error(
        &s,
        &format!("{DD}.provider.datadog.query"),
        "8193 bytes long; a Datadog query holds at most 8 KiB",
    );
    datadog(&mut s).query = "avg:x{service:{{args.svc}}}".into();
    assert_error(
        &s,
        &format!("{DD}.provider.datadog.query"),
        "`{{args.svc}}` names no arg",
    );
    datadog(&mut s).query = "avg:x{service:{{args.service}".into();
    assert_error(
        &s,
        &format!("{DD}.provider.datadog.query"),
        "is not closed by `}}`",
    );
}

#[test]
fn datadog_interval() {
    let mut s = web();
    datadog(&mut s).interval = Some("five minutes".into());
    assert_error(
        &s,
        &format!("{DD}.provider.datadog.interval"),
        "is not a duration",
    );
}

// --- judge -----------------------------------------------------------------------------------

#[test]
fn judge_confidence() {
    let mut s = web();
    for ok in [0.5, 0.9, 0.999] {
        s.judge.confidence = ok;
        assert_valid(&s);
    }
    for bad in [0.49, 1.0, f64::NAN, f64::INFINITY, -0.9] {
        s.judge.confidence = bad;
        assert_error(&s, "judge.confidence", "is not in 0.5..=0.999");
    }
}

#[test]
fn judge_min_requests() {
    let mut s = web();
    s.judge.min_requests = 0;
    assert_error(&s, "judge.minRequests", "at least 1 request");
}

#[test]
fn judge_max_error_rate_increase() {
    let mut s = web();
    for ok in [0.0, 0.5, 100.0] {
        s.judge.max_error_rate_increase = ok;
        assert_valid(&s);
    }
    for bad in [-0.1, 100.1, f64::NAN] {
        s.judge.max_error_rate_increase = bad;
        assert_error(&s, "judge.maxErrorRateIncrease", "is not in 0..=100");
    }
}

#[test]
fn judge_max_latency_ratio() {
    let mut s = web();
    s.judge.max_latency_ratio = 1.0;
    assert_valid(&s);
    for bad in [0.99, f64::NAN, f64::INFINITY] {
        s.judge.max_latency_ratio = bad;
        assert_error(&s, "judge.maxLatencyRatio", "at least 1.0");
    }
}

#[test]
fn judge_window() {
    let mut s = web();
    s.judge.window = "1m".into();
    assert_valid(&s);
    s.judge.window = "59s".into();
    assert_error(&s, "judge.window", "shorter than 1m");
    s.judge.window = "5".into();
    assert_error(&s, "judge.window", "has no unit");
}

#[test]
fn a_nan_from_yaml_is_refused() {
    let text = WEB.replace("confidence: 0.95", "confidence: .nan");
    let Err(SpecError::Invalid(e)) = parse_and_validate(&text) else {
        panic!("expected validation errors");
    };
    assert_eq!(e.paths(), ["judge.confidence"]);
}

// --- property tests --------------------------------------------------------------------------

fn with_weights(weights: &[u32]) -> CellSpec {
    let mut s = web();
    s.canary.steps = weights.iter().map(|w| step_weight(*w)).collect();
    s.canary.analysis = None;
    s
}

proptest! {
    #[test]
    fn set_weights_are_accepted_exactly_when_in_range_and_non_decreasing(
        weights in prop::collection::vec(prop_oneof![0u32..=100, 0u32..=120, any::<u32>()], 0..12)
    ) {
        let spec = with_weights(&weights);
        let expected = weights.iter().all(|w| *w <= 100) && weights.windows(2).all(|p| p[0] <= p[1]);
        let result = validate(&spec);
        prop_assert_eq!(result.is_ok(), expected, "{:?}: {:?}", weights, result);
        if let Err(e) = result {
            prop_assert!(e.iter().all(|e| e.path.starts_with("canary.steps[") && e.path.ends_with("].setWeight")));
        }
    }

    #[test]
    fn sorted_weights_in_range_are_accepted(mut weights in prop::collection::vec(0u32..=100, 0..20)) {
        weights.sort_unstable();
        prop_assert!(validate(&with_weights(&weights)).is_ok());
    }

    #[test]
    fn validate_never_panics_on_odd_strings(
        name in "\\PC{0,40}",
        arn in "\\PC{0,120}",
        duration in "\\PC{0,12}",
        condition in "\\PC{0,30}",
        stat in "\\PC{0,8}",
        query in "\\PC{0,40}",
    ) {
        let mut s = web();
        s.name = name;
        s.ingress.alb.as_mut().unwrap().listener_arn = arn.clone();
        s.ingress.alb.as_mut().unwrap().rule_arn = Some(arn);
        s.judge.window = duration.clone();
        s.canary.steps[1] = step_pause(Some(&duration));
        cw_metric(&mut s).success_condition = Some(condition);
        metric_stat(&mut s).stat = stat;
        datadog(&mut s).query = query;
        let _ = validate(&s);
    }
}

/// Step Functions fails an execution at 25,000 history events, and no Catch sees it (developer
/// guide, "Step Functions service quotas"): a plan whose steps could write more than okra's
/// budget of them is refused at its costliest step.
#[test]
fn a_plan_that_could_outgrow_the_execution_history_is_refused_at_its_costliest_step() {
    let mut s = web();
    cw_metric(&mut s).count = 1000;
    for _ in 0..2 {
        s.canary
            .steps
            .insert(3, step_analysis(&["error-rate"], &[]));
    }
    let errs = errors(&s);
    assert_eq!(errs.errors.len(), 1, "{errs}");
    let e = &errs.errors[0];
    assert!(e.path.starts_with("canary.steps["), "{e:?}");
    assert!(
        e.message.contains("history events") && e.message.contains("25,000"),
        "{}",
        e.message
    );
    // One such analysis fits.
    let mut one = web();
    cw_metric(&mut one).count = 1000;
    assert_valid(&one);
}

#[test]
fn a_readiness_timeout_of_a_year_fits_the_history() {
    let mut s = web();
    s.readiness.timeout = "8760h".into();
    assert_valid(&s);
    let plan = okra_core::history::ReadinessPlan::for_timeout(std::time::Duration::from_secs(
        365 * 86_400,
    ));
    assert!(plan.max_polls <= okra_core::history::MAX_READINESS_POLLS);
}

/// A spec travels in every state of an execution (Step Functions: 262,144 bytes per state,
/// `States.DataLimitExceeded` beyond, which no Catch sees): one over the cap is refused at its
/// largest field.
#[test]
fn a_spec_too_large_for_the_execution_state_is_refused_at_its_largest_field() {
    let mut s = web();
    let extra = s.analysis_templates[0].clone();
    for i in 0..400 {
        let mut t = extra.clone();
        t.name = format!("padding-{i}");
        s.analysis_templates.push(t);
    }
    assert!(serde_json::to_vec(&s).unwrap().len() > okra_core::validate::MAX_SPEC_BYTES);
    assert_error(&s, "analysisTemplates", "262,144");
}

fn prometheus_metric(s: &mut CellSpec, provider: serde_json::Value) -> &mut Metric {
    let m = dd_metric(s);
    m.provider = serde_json::from_value(provider).expect("a provider");
    m
}

#[test]
fn prometheus_web_and_lambda_metrics_are_checked_field_by_field() {
    let mut s = web();
    prometheus_metric(
        &mut s,
        serde_json::json!({"prometheus": {
            "address": "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1",
            "query": "sum(rate(http_requests_total{code=~\"5..\"}[1m]))",
            "timeout": "5s",
            "headers": [{"name": "X-Scope-OrgID", "value": "team-a"},
                        {"name": "Authorization", "secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prom-abc", "secretKey": "token"}],
            "sigv4": {"region": "us-east-1", "roleArn": "arn:aws:iam::111122223333:role/amp/okra-reader"}}}),
    );
    assert_valid(&s);
    let p = format!("{DD}.provider.prometheus");
    for (provider, path, needle) in [
        (
            serde_json::json!({"prometheus": {"address": "prometheus:9090", "query": "up"}}),
            format!("{p}.address"),
            "not an http:// or https:// URL",
        ),
        (
            serde_json::json!({"prometheus": {"address": "http://p:9090", "query": " "}}),
            format!("{p}.query"),
            "must not be empty",
        ),
        (
            serde_json::json!({"prometheus": {"address": "http://p:9090", "query": "up", "timeout": "2m"}}),
            format!("{p}.timeout"),
            "not between 1s and 25s",
        ),
        (
            serde_json::json!({"prometheus": {"address": "http://p:9090", "query": "up", "sigv4": {"region": "US East"}}}),
            format!("{p}.sigv4.region"),
            "not a region",
        ),
        (
            serde_json::json!({"prometheus": {"address": "http://p:9090", "query": "up", "sigv4": {"region": "us-east-1", "roleArn": "arn:aws:iam::111122223333:user/bob"}}}),
            format!("{p}.sigv4.roleArn"),
            "not a role",
        ),
        (
            serde_json::json!({"prometheus": {"address": "http://p:9090", "query": "up",
                "headers": [{"name": "Authorization", "value": "Bearer abc"}]}}),
            format!("{p}.headers[0].value"),
            "keep it in Secrets Manager",
        ),
        (
            serde_json::json!({"prometheus": {"address": "http://p:9090", "query": "up",
                "headers": [{"name": "X-Token", "secretArn": "arn:aws:ssm:us-east-1:1:parameter/x"}]}}),
            format!("{p}.headers[0].secretArn"),
            "not a Secrets Manager secret ARN",
        ),
        (
            serde_json::json!({"web": {"url": "https://status.example.com/api", "jsonPath": "$.data["}}),
            format!("{DD}.provider.web.jsonPath"),
            "not an RFC 9535 JSONPath",
        ),
        (
            serde_json::json!({"web": {"url": "https://status.example.com/api", "jsonPath": "$.ok", "body": "{}"}}),
            format!("{DD}.provider.web.body"),
            "needs `method: POST`",
        ),
        (
            serde_json::json!({"lambda": {"functionName": "arn:aws:s3:::bucket"}}),
            format!("{DD}.provider.lambda.functionName"),
            "not a Lambda function name",
        ),
    ] {
        let mut s = web();
        prometheus_metric(&mut s, provider);
        assert_error(&s, &path, needle);
    }
    let mut s = web();
    prometheus_metric(
        &mut s,
        serde_json::json!({"web": {"url": "https://status.example.com/{{args.undeclared}}", "jsonPath": "$.ok"}}),
    );
    assert_error(
        &s,
        &format!("{DD}.provider.web.url"),
        "names no arg of the template",
    );
    let mut s = web();
    prometheus_metric(
        &mut s,
        serde_json::json!({"lambda": {"functionName": "arn:aws:lambda:us-east-1:123456789012:function:smoke-test:live"}}),
    );
    assert_valid(&s);
}

#[test]
fn the_judge_over_prometheus_needs_three_points_and_the_version_placeholder_only() {
    let mut s = web();
    s.judge.window = "10s".into();
    s.judge.prometheus = Some(
        serde_json::from_value(
            serde_json::json!({"address": "http://prometheus:9090", "step": "1s"}),
        )
        .expect("a judge.prometheus"),
    );
    assert_valid(&s);
    s.judge.prometheus.as_mut().unwrap().step = Some("5s".into());
    assert_error(&s, "judge.prometheus.step", "gives 2 points");
    let mut s = web();
    s.judge.prometheus = Some(
        serde_json::from_value(serde_json::json!({"address": "http://prometheus:9090",
            "requests": "sum(rate(x{cell=\"{{args.cell}}\"}[1m]))"}))
        .expect("a judge.prometheus"),
    );
    assert_error(&s, "judge.prometheus.requests", "names no arg");
}

/// A wait for a person's time-out: `pause: {timeout, onTimeout}` and an analysis step's
/// inconclusive wait; refused where it cannot hold, naming the field.
#[test]
fn wait_timeouts_are_checked_by_field() {
    use okra_core::decision::{PersonWait, PlanStep};
    use okra_core::vocab::OnTimeout;
    let with = |steps: &str, more: &str| {
        CellSpec::from_yaml(&format!(
            "name: web\ningress:\n  alb:\n    listenerArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\n\
             clusterSelector:\n  matchTags:\n    okra.io/cell: web\ntargetGroup:\n  port: 30080\ncanary:\n  steps:\n{steps}{more}"
        ))
        .expect("parses")
    };
    let ok = with(
        "    - setWeight: 10\n    - pause: {timeout: 8h, onTimeout: promote}\n",
        "",
    );
    let cell = ok.validate().expect("valid");
    assert_eq!(
        cell.plan().steps[1],
        PlanStep::Pause {
            seconds: None,
            sampled: None,
            scheduled: false,
            wait: Some(PersonWait {
                timeout_seconds: 8 * 3600,
                on_timeout: OnTimeout::Promote
            }),
        }
    );
    let plain = with("    - pause: {}\n", "").validate().expect("valid");
    assert!(matches!(
        plain.plan().steps[0],
        PlanStep::Pause { wait: Some(PersonWait { timeout_seconds, on_timeout: OnTimeout::Abort }), .. }
            if timeout_seconds == okra_core::decision::LONGEST_WAIT_SECONDS
    ));
    let errs = |spec: CellSpec| -> Vec<(String, String)> {
        match spec.validate() {
            Ok(_) => vec![],
            Err(e) => e
                .errors
                .iter()
                .map(|f| (f.path.clone(), f.message.clone()))
                .collect(),
        }
    };
    let e = errs(with("    - pause: {duration: 5m, timeout: 1h}\n", ""));
    assert!(
        e.iter().any(|(p, _)| p == "canary.steps[0].pause.timeout"),
        "{e:?}"
    );
    let e = errs(with("    - pause: {onTimeout: promote}\n", ""));
    assert!(
        e.iter()
            .any(|(p, m)| p == "canary.steps[0].pause.onTimeout" && m.contains("needs a timeout")),
        "{e:?}"
    );
    let e = errs(with("    - pause: {timeout: 400d}\n", ""));
    assert!(
        e.iter().any(|(p, _)| p == "canary.steps[0].pause.timeout"),
        "{e:?}"
    );
    let e = errs(with("    - pause: {timeout: soon}\n", ""));
    assert!(
        e.iter().any(|(p, _)| p == "canary.steps[0].pause.timeout"),
        "{e:?}"
    );
    // A background analysis that wakes the wait in the state machine (30s) leaves it no time-out.
    let bg = "  analysis:\n    templates: [{templateName: t}]\nanalysisTemplates:\n  - name: t\n    metrics:\n      - name: m\n        interval: 30s\n        successCondition: result < 1\n        provider:\n          datadog:\n            query: q\n";
    let e = errs(with("    - pause: {timeout: 1h}\n", bg));
    assert!(
        e.iter()
            .any(|(p, m)| p == "canary.steps[0].pause.timeout" && m.contains("whole minutes")),
        "{e:?}"
    );
    // ... which is fine with whole minutes (the samples run on a schedule).
    let e = errs(with(
        "    - pause: {timeout: 1h}\n",
        &bg.replace("30s", "1m"),
    ));
    assert!(e.is_empty(), "{e:?}");
}

// --- deployment windows ------------------------------------------------------------------------

fn window(
    schedule: Option<&str>,
    rrule: Option<&str>,
    duration: &str,
) -> okra_core::spec::WindowSpec {
    okra_core::spec::WindowSpec {
        schedule: schedule.map(str::to_owned),
        rrule: rrule.map(str::to_owned),
        duration: duration.to_owned(),
    }
}

#[test]
fn windows_that_read_and_open_are_valid() {
    let mut s = web();
    s.windows = Some(okra_core::spec::Windows {
        time_zone: "Europe/Paris".into(),
        allow: vec![window(Some("0 9 * * MON-FRI"), None, "8h")],
        deny: vec![window(
            None,
            Some("FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24;BYHOUR=0;BYMINUTE=0;BYSECOND=0"),
            "72h",
        )],
    });
    assert_valid(&s);
}

#[test]
fn windows_that_never_open_are_refused() {
    let mut s = web();
    s.windows = Some(okra_core::spec::Windows {
        time_zone: "UTC".into(),
        allow: vec![],
        deny: vec![window(Some("0 * * * *"), None, "1h")],
    });
    assert_error(&s, "windows", "never open");
    // February 30th.
    s.windows = Some(okra_core::spec::Windows {
        time_zone: "UTC".into(),
        allow: vec![window(Some("0 0 30 2 *"), None, "1h")],
        deny: vec![],
    });
    assert_error(&s, "windows", "never open");
}

#[test]
fn a_window_that_does_not_read_is_named_by_its_field() {
    let mut s = web();
    s.windows = Some(okra_core::spec::Windows {
        time_zone: "Mars/Olympus".into(),
        allow: vec![window(Some("0 25 * * *"), None, "8h")],
        deny: vec![window(None, None, "0s")],
    });
    let e = errors(&s);
    let paths: Vec<&str> = e.errors.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "windows.timeZone",
            "windows.allow[0].schedule",
            "windows.deny[0].duration",
            "windows.deny[0]"
        ]
    );
}

fn with_argocd(v: serde_json::Value) -> CellSpec {
    let mut s = serde_json::to_value(web()).expect("json");
    s["argocd"] = v;
    serde_json::from_value(s).expect("parses")
}

#[test]
fn argocd_fields_are_checked_each_at_its_path() {
    assert_valid(&with_argocd(serde_json::json!({"hub": "hub-1"})));
    let s = with_argocd(serde_json::json!({
        "hub": "-bad",
        "namespace": "Argo_CD",
        "mode": "eksCapability",
        "roleArn": "arn:aws:iam::123456789012:role/argocd",
        "labels": {"okra.io/cell": "x", "bad key!": "v", "env": "not valid!"},
        "accessEntry": {"policy": "ReadEverything", "namespaces": ["ok", "NOT"]}
    }));
    let e = errors(&s);
    let paths = e.paths();
    for p in [
        "argocd.hub",
        "argocd.namespace",
        "argocd.roleArn",
        "argocd.labels.okra.io/cell",
        "argocd.labels.bad key!",
        "argocd.labels.env",
        "argocd.accessEntry.policy",
        "argocd.accessEntry.namespaces[1]",
    ] {
        assert!(paths.contains(&p), "{p} not in {paths:?}");
    }
    assert_error(
        &with_argocd(serde_json::json!({"hub": "hub", "accessEntry": {}})),
        "argocd.accessEntry.principalArn",
        "is required without `argocd.roleArn`",
    );
    assert_error(
        &with_argocd(
            serde_json::json!({"hub": "hub", "mode": "eksCapability", "roleArn": "arn:aws:iam::123456789012:role/x"}),
        ),
        "argocd.roleArn",
        "applies to `mode: selfManaged` only",
    );
}

#[test]
fn retire_fields_are_checked() {
    let mut s = web();
    s.retire.after = "forever".into();
    assert_error(&s, "retire.after", "forever");
    let mut s = web();
    s.retire.keep = 6;
    assert_error(&s, "retire.keep", "0..=5");
    assert_eq!(web().retire.after, "1h", "the documented default");
    assert_eq!(web().retire.keep, 1);
    assert!(web().retire.enabled);
}
