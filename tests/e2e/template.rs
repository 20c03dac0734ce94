//! template.yaml keeps its promises: least privilege, the API behind IAM auth, no keys, every
//! function built the same way, and the state machine's substitutions all provided.

use crate::common;

use std::collections::BTreeSet;

use crate::common::policy::{of_type, resources, root, statements, strings, template};
use serde_yaml_ng::Value;

/// Actions AWS offers no resource-level permissions for: the only ones allowed on `*`.
const UNSCOPABLE: &[&str] = &[
    "tag:GetResources",
    "cloudtrail:DescribeTrails",
    "cloudwatch:ListMetrics",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeAccountLimits",
    "cloudwatch:GetMetricData",
    "ec2:DescribeInstances",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
];

#[test]
fn no_wildcard_actions_and_star_resources_only_where_aws_allows_nothing_else() {
    let t = template();
    let stmts = statements(&t);
    assert!(stmts.len() >= 15, "found the statements: {}", stmts.len());
    for (owner, s) in &stmts {
        let actions = strings(&s["Action"]);
        assert!(!actions.is_empty(), "{owner}: a statement without Action");
        for a in &actions {
            assert!(!a.contains('*'), "{owner}: wildcard action {a}");
        }
        if strings(&s["Resource"]).iter().any(|r| r == "*") {
            for a in &actions {
                assert!(
                    UNSCOPABLE.contains(&a.as_str()),
                    "{owner}: {a} on Resource * (scope it)"
                );
            }
        }
        assert_ne!(
            s["Effect"].as_str(),
            Some("Deny"),
            "{owner}: no Deny needed"
        );
        assert!(
            s.get("NotAction").is_none() && s.get("NotResource").is_none(),
            "{owner}: Not*"
        );
    }
}

#[test]
fn the_api_is_behind_iam_auth_on_every_route() {
    let t = template();
    let apis = of_type(&t, "AWS::Serverless::Api");
    assert_eq!(apis.len(), 1);
    assert_eq!(
        apis[0].1["Properties"]["Auth"]["DefaultAuthorizer"].as_str(),
        Some("AWS_IAM")
    );
    let mut routes = 0;
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        let Some(events) = f["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, e) in events {
            if e["Type"].as_str() != Some("Api") {
                continue;
            }
            routes += 1;
            let p = &e["Properties"];
            assert!(
                matches!(&p["RestApiId"], Value::Tagged(t) if t.value.as_str() == Some("Api")),
                "{name}: on the IAM API"
            );
            let auth = p["Auth"]["Authorizer"].as_str();
            assert!(
                auth.is_none() || auth == Some("AWS_IAM"),
                "{name}: route without IAM auth"
            );
        }
        assert!(
            f["Properties"]["FunctionUrlConfig"].is_null(),
            "{name}: no unauthenticated function URL"
        );
    }
    assert!(routes >= 2, "the API routes are declared");
}

#[test]
fn every_function_package_is_in_the_template_built_the_same_way() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(strings(&globals["Architectures"]), vec!["arm64"]);
    assert_eq!(globals["Tracing"].as_str(), Some("Active"));
    assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    // One build for all (SAM's makefile build method over the root Makefile, in source): each
    // function's `build-<LogicalId>` target copies the bootstrap of its own package.
    let targets: std::collections::BTreeMap<String, String> =
        common::policy::sam_build_targets().into_iter().collect();
    let mut in_template = BTreeSet::new();
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("makefile"),
            "{name}"
        );
        assert_eq!(f["Properties"]["CodeUri"].as_str(), Some("."), "{name}");
        let package = targets
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: no `build-{name}: PKG = ...` in the Makefile"));
        let manifest =
            std::fs::read_to_string(root().join("functions").join(package).join("Cargo.toml"))
                .expect("a package");
        assert!(
            manifest.contains(&format!("name = \"{package}\"")),
            "{name}: binary = folder"
        );
        in_template.insert(package.clone());
    }
    let samconfig = std::fs::read_to_string(root().join("samconfig.toml")).expect("samconfig.toml");
    assert!(
        samconfig.contains("build_in_source = true"),
        "built in source: SAM must not copy the repository (and target/) per function"
    );
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        in_template, on_disk,
        "every function package is deployed, and only those"
    );
}

#[test]
fn the_state_machine_gets_every_substitution_it_uses() {
    let t = template();
    let sms = of_type(&t, "AWS::Serverless::StateMachine");
    assert_eq!(sms.len(), 1);
    let props = &sms[0].1["Properties"];
    let asl_path = props["DefinitionUri"].as_str().unwrap();
    assert_eq!(props["Type"].as_str(), Some("STANDARD"));
    let asl = std::fs::read_to_string(root().join(asl_path)).unwrap();
    let used: BTreeSet<String> = asl
        .match_indices("${")
        .map(|(i, _)| asl[i + 2..].split('}').next().unwrap().to_string())
        .collect();
    let given: BTreeSet<String> = props["DefinitionSubstitutions"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(used, given);
    // Each function the state machine calls may be invoked by it, and nothing else.
    let invokable: BTreeSet<String> = strings(&props["Policies"])
        .into_iter()
        .chain(
            props["Policies"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(|p| match &p["LambdaInvokePolicy"]["FunctionName"] {
                    Value::Tagged(t) => t.value.as_str().map(|f| format!("{f}Arn")),
                    _ => None,
                }),
        )
        .collect();
    for sub in &given {
        assert!(
            invokable.contains(sub),
            "the state machine may invoke {sub}"
        );
    }
}

#[test]
fn no_keys_anywhere_in_the_repository() {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    let files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    assert!(files.len() > 50);
    let key_id = |s: &str| {
        s.as_bytes().windows(20).any(|w| {
            (w.starts_with(b"AKIA") || w.starts_with(b"ASIA"))
                && w[4..]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
    };
    for f in files {
        let Ok(text) = std::fs::read_to_string(root().join(&f)) else {
            continue;
        };
        if f.ends_with(".lock")
            || f.ends_with("package-lock.json")
            || f.ends_with("constraints.txt")
        {
            continue;
        }
        assert!(!key_id(&text), "{f}: looks like an AWS access key id");
        // A secret key value next to its name; moto's dummy `testing` and placeholders pass.
        let lower = text.to_lowercase();
        for needle in ["aws_secret_access_key", "secretaccesskey"] {
            for (i, _) in lower.match_indices(needle) {
                let value: String = text[i + needle.len()..]
                    .trim_start_matches(|c: char| {
                        c == '"' || c == '=' || c == ':' || c.is_whitespace()
                    })
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '+')
                    .collect();
                assert!(
                    value.len() < 30 || value == "testing",
                    "{f}: a secret access key value after {needle}"
                );
            }
        }
    }
}

// ELB user guide, "Identity-based policies for Elastic Load Balancing" (tag condition keys
// aws:RequestTag, aws:ResourceTag, aws:TagKeys and elasticloadbalancing:CreateAction): okra may
// make only groups it tags as its own, and may retag only its own groups.
#[test]
fn target_groups_are_made_and_retagged_only_under_okras_tag() {
    let t = template();
    let mut seen = BTreeSet::new();
    for (owner, s) in statements(&t) {
        let actions = strings(&s["Action"]);
        for a in [
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:AddTags",
        ] {
            if !actions.iter().any(|x| x == a) {
                continue;
            }
            assert_eq!(actions.len(), 1, "{owner}: {a} in a statement of its own");
            let cond = &s["Condition"]["StringEquals"];
            let own_request = cond["aws:RequestTag/okra.io/managed-by"].as_str() == Some("okra");
            let own_resource = cond["aws:ResourceTag/okra.io/managed-by"].as_str() == Some("okra");
            let on_create =
                cond["elasticloadbalancing:CreateAction"].as_str() == Some("CreateTargetGroup");
            // okra.io/ keys only: any (StringLike okra.io/*), or named ones (StringEquals).
            let okra_keys = s["Condition"]["ForAllValues:StringLike"]["aws:TagKeys"].as_str()
                == Some("okra.io/*")
                || strings(&s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
                    .iter()
                    .all(|k| k.starts_with("okra.io/"))
                    && !strings(&s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
                        .is_empty();
            match a {
                "elasticloadbalancing:CreateTargetGroup" => {
                    assert!(
                        own_request,
                        "{owner}: CreateTargetGroup without the tag condition"
                    )
                }
                _ => assert!(
                    (on_create && own_request) || (own_resource && okra_keys),
                    "{owner}: AddTags must be on create of an okra group, or of an okra group \
                     with okra.io/ keys only: {:?}",
                    s["Condition"]
                ),
            }
            seen.insert(format!(
                "{owner} {a} {}",
                s["Sid"].as_str().unwrap_or_default()
            ));
        }
    }
    assert_eq!(
        seen.len(),
        4,
        "create, tag-on-create, retag, the dispatcher's idle mark: {seen:?}"
    );
    // Retirement (issue 26): only the dispatcher deletes, only okra's groups, in a statement of
    // its own (aws:ResourceTag on DeleteTargetGroup).
    let deletes: Vec<(String, serde_yaml_ng::Value)> = statements(&t)
        .into_iter()
        .filter(|(_, s)| {
            strings(&s["Action"])
                .iter()
                .any(|a| a == "elasticloadbalancing:DeleteTargetGroup")
        })
        .collect();
    assert_eq!(deletes.len(), 1, "one statement deletes: {deletes:?}");
    let (owner, s) = &deletes[0];
    assert_eq!(owner, "DispatcherFunction");
    assert_eq!(strings(&s["Action"]).len(), 1);
    assert_eq!(
        s["Condition"]["StringEquals"]["aws:ResourceTag/okra.io/managed-by"].as_str(),
        Some("okra"),
        "okra deletes only the groups it tagged as its own"
    );
}

// KMS developer guide, "kms:ViaService": the Datadog secret's customer managed key may be used
// to decrypt only by Secrets Manager, and only when the stack is given the key.
#[test]
fn the_datadog_secrets_key_is_usable_only_through_secrets_manager() {
    let t = template();
    let kms: Vec<(String, Value)> = statements(&t)
        .into_iter()
        .filter(|(_, s)| strings(&s["Action"]).iter().any(|a| a.starts_with("kms:")))
        .collect();
    // check-metrics reads the keys; the api's doctor checks they can be read.
    let owners: Vec<&str> = kms.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(owners, ["CheckMetricsFunction", "ApiFunction"], "{kms:?}");
    for (owner, s) in &kms {
        assert_eq!(strings(&s["Action"]), ["kms:Decrypt"], "{owner}");
        assert_eq!(
            strings(&s["Resource"]),
            ["DatadogSecretKmsKeyArn"],
            "{owner}"
        );
        assert_eq!(
            strings(&s["Condition"]["StringEquals"]["kms:ViaService"]),
            ["secretsmanager.${AWS::Region}.amazonaws.com"],
            "{owner}"
        );
        let policies = format!(
            "{:?}",
            resources(&t)
                .into_iter()
                .find(|(n, _)| n == owner)
                .unwrap()
                .1["Properties"]["Policies"]
        );
        assert!(
            policies.contains("HasDatadogSecretKey"),
            "{owner}: {policies}"
        );
    }
}

// ELB user guide, "Identity-based policies" (aws:ResourceTag on target groups): okra registers
// and deregisters targets only in its own groups, never in one another tool manages.
#[test]
fn targets_are_registered_only_in_okras_groups() {
    let t = template();
    let mut owners = BTreeSet::new();
    for (owner, s) in statements(&t) {
        let actions = strings(&s["Action"]);
        let registers = actions.iter().any(|a| {
            a == "elasticloadbalancing:RegisterTargets"
                || a == "elasticloadbalancing:DeregisterTargets"
        });
        if !registers {
            continue;
        }
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:ResourceTag/okra.io/managed-by"].as_str(),
            Some("okra"),
            "{owner}: (de)registration without the okra.io/managed-by condition"
        );
        assert!(
            strings(&s["Resource"])
                .iter()
                .all(|r| r.contains(":targetgroup/")),
            "{owner}: on target groups only"
        );
        owners.insert(owner);
    }
    assert_eq!(
        owners,
        [
            "ApiFunction",
            "DispatcherFunction",
            "EnsureTargetGroupsFunction"
        ]
        .map(String::from)
        .into(),
    );
}

/// Every stack output the README and the CLI's messages name (`<X output>`, "the stack's X
/// output", "output X") is one template.yaml has, so the deploy path copy-pastes; and no output
/// describes a CLI flag the CLI does not have.
#[test]
fn the_outputs_the_readme_and_the_cli_name_exist() {
    let t = template();
    let outputs: Vec<String> = t["Outputs"]
        .as_mapping()
        .expect("Outputs")
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut texts = vec![std::fs::read_to_string(root().join("README.md")).unwrap()];
    for f in [
        "cli/src/ctx.rs",
        "cli/src/cli/args.rs",
        "cli/src/cli/mod.rs",
    ] {
        texts.push(std::fs::read_to_string(root().join(f)).unwrap());
    }
    let mut named = Vec::new();
    for text in &texts {
        let words: Vec<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).collect();
        for (i, w) in words.iter().enumerate() {
            let next = words[i + 1..].iter().find(|w| !w.is_empty());
            // A CloudFormation output's name: CamelCase (not JSON, API, HTML).
            let camel = w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars().any(|c| c.is_ascii_lowercase());
            if next == Some(&"output") && camel {
                named.push((*w).to_string());
            }
        }
    }
    assert!(
        named.len() >= 4,
        "the test reads the README's outputs: {named:?}"
    );
    for n in &named {
        assert!(
            outputs.contains(n),
            "{n} is no output of template.yaml ({outputs:?})"
        );
    }
    // The CLI as `make build` (run by `make test` first) built it.
    let okra = root().join("target/debug/okra");
    let help = std::process::Command::new(&okra)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make build`)", okra.display()));
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    for (_, out) in t["Outputs"].as_mapping().unwrap() {
        let text = out["Description"].as_str().unwrap_or_default();
        for flag in text.split_whitespace().filter(|w| w.starts_with("--")) {
            let flag = flag.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            assert!(
                help.contains(flag),
                "an output names {flag}, which `okra --help` lacks"
            );
        }
    }
}

/// The finalizer cannot be missed quietly: its rule matches every end of an execution,
/// SUCCEEDED included (a SUCCEEDED execution whose last bookkeeping failed still holds the lock),
/// retries for a day, and sends what it gives up on to a dead-letter queue (EventBridge user
/// guide, "Using dead-letter queues to process undelivered events": delivery is best effort).
#[test]
fn the_finalizer_s_rule_matches_every_end_and_has_a_dead_letter_queue() {
    let t = template();
    let rule = &t["Resources"]["RolloutStateFunction"]["Properties"]["Events"]["ExecutionEnded"]["Properties"];
    let statuses = strings(&rule["Pattern"]["detail"]["status"]);
    for s in ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"] {
        assert!(
            statuses.contains(&s.to_string()),
            "{s} missing: {statuses:?}"
        );
    }
    assert_eq!(rule["DeadLetterConfig"]["Type"].as_str(), Some("SQS"));
    assert!(rule["RetryPolicy"]["MaximumEventAgeInSeconds"].as_u64() >= Some(86_400));
}
