//! `okra init`: a starter cell spec from what the account has (a listener, the clusters a tag
//! selector finds and their version tags), as commented YAML that validates.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{Cluster, ClusterStatus};
use crate::versions::parse_version;

/// What `okra init` was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// The cell's name.
    pub name: String,
    /// The listener okra will own (`.../listener/app/...` or `.../listener/net/...`).
    pub listener_arn: String,
    /// A rule of the listener instead of its default action.
    pub rule_arn: Option<String>,
    /// The clusters' tags that make them the cell's.
    pub selector: BTreeMap<String, String>,
    /// The tag that carries a cluster's version.
    pub version_tag: String,
    /// The port targets receive traffic on (the ingress's node port).
    pub port: u16,
    /// Where editors find the spec's JSON Schema.
    pub schema: String,
}

/// A starter spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starter {
    /// The spec, as commented YAML.
    pub yaml: String,
    /// What init noticed and the user should look at (also in the YAML's header).
    pub notes: Vec<String>,
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// The starter spec for `opts` and the `clusters` its selector found (described).
pub fn starter(opts: &InitOptions, clusters: &[Cluster]) -> Starter {
    let mut notes = Vec::new();
    let nlb = opts.listener_arn.contains(":listener/net/");
    // Clusters by version (ACTIVE ones, with a version tag that is semver).
    let mut by_version: BTreeMap<semver::Version, Vec<&str>> = BTreeMap::new();
    for c in clusters {
        let Some(tag) = c.tags.get(&opts.version_tag) else {
            notes.push(format!(
                "cluster {} has no {} tag: okra ignores it until it has one",
                c.name, opts.version_tag
            ));
            continue;
        };
        match parse_version(tag) {
            Ok(v) if c.status == ClusterStatus::Active => {
                by_version.entry(v).or_default().push(c.name.as_str())
            }
            Ok(_) => notes.push(format!("cluster {} is not ACTIVE yet", c.name)),
            Err(_) => notes.push(format!(
                "cluster {}: {}={tag} is not a version (semver, `v` allowed)",
                c.name, opts.version_tag
            )),
        }
    }
    if clusters.is_empty() {
        notes.push("no cluster carries the selector's tags yet".to_string());
    }
    // Replicas: the clusters a version needs before it is rolled out; as many as the newest
    // version has now (at least 1).
    let replicas = by_version
        .values()
        .next_back()
        .map_or(1, |names| names.len().max(1));
    let mut y = String::new();
    let _ = writeln!(y, "# yaml-language-server: $schema={}", opts.schema);
    let _ = writeln!(
        y,
        "# Written by `okra init`; check it with `okra cell validate -f` and"
    );
    let _ = writeln!(
        y,
        "# `okra doctor -f`, then store it with `okra cell apply -f`."
    );
    if by_version.is_empty() {
        let _ = writeln!(y, "# Found: no cluster with a version yet.");
    }
    for (v, names) in by_version.iter().rev() {
        let _ = writeln!(y, "# Found: {v} on {}", names.join(", "));
    }
    for n in &notes {
        let _ = writeln!(y, "# Note: {n}");
    }
    let _ = writeln!(y, "name: {}", quote(&opts.name));
    let _ = writeln!(y, "ingress:");
    if nlb {
        let _ = writeln!(y, "  nlb:");
        let _ = writeln!(y, "    listenerArn: {}", quote(&opts.listener_arn));
    } else {
        let _ = writeln!(y, "  alb:");
        let _ = writeln!(y, "    listenerArn: {}", quote(&opts.listener_arn));
        if let Some(rule) = &opts.rule_arn {
            let _ = writeln!(y, "    ruleArn: {}", quote(rule));
        }
    }
    let _ = writeln!(y, "clusterSelector:");
    let _ = writeln!(y, "  matchTags:");
    for (k, v) in &opts.selector {
        let _ = writeln!(y, "    {}: {}", quote(k), quote(v));
    }
    let _ = writeln!(y, "versionTag: {}", quote(&opts.version_tag));
    let _ = writeln!(
        y,
        "# A new version is rolled out once this many of its clusters are ACTIVE."
    );
    let _ = writeln!(y, "replicas: {replicas}");
    let _ = writeln!(y, "targetGroup:");
    let _ = writeln!(y, "  port: {}", opts.port);
    let _ = writeln!(y, "  healthCheck:");
    let _ = writeln!(y, "    path: /healthz");
    let _ = writeln!(
        y,
        "  # nodegroups: okra attaches the group to EKS managed node groups; instances: okra"
    );
    let _ = writeln!(
        y,
        "  # registers the cluster's EC2 instances by their tags (Karpenter, self-managed);"
    );
    let _ = writeln!(
        y,
        "  # external: you register targets (aws-load-balancer-controller, `okra cell binding`)."
    );
    let _ = writeln!(y, "  registration: nodegroups");
    let _ = writeln!(y, "readiness:");
    let _ = writeln!(y, "  minHealthyPercent: 100");
    let _ = writeln!(y, "  timeout: 10m");
    let _ = writeln!(
        y,
        "# A failure that does not roll back (a readiness time-out) is tried again after 5 min,"
    );
    let _ = writeln!(
        y,
        "# 15 min, ...; after this many attempts the version is held until `okra rollout retry`."
    );
    let _ = writeln!(y, "maxAttempts: 3");
    let _ = writeln!(y, "canary:");
    let _ = writeln!(y, "  steps:");
    if nlb {
        let _ = writeln!(
            y,
            "    # An NLB listener: weighted target groups step like an ALB's."
        );
    }
    for step in [
        "    - setWeight: 10",
        "    - pause:\n        duration: 5m",
        "    - setWeight: 50",
        "    - pause:   # until `okra rollout resume`; nobody in 8 hours: roll back (onTimeout: promote goes on)\n        timeout: 8h",
    ] {
        let _ = writeln!(y, "{step}");
    }
    y.push_str(ANALYSIS_EXAMPLE);
    Starter { yaml: y, notes }
}

/// The commented analysis the starter ends with: one metric per provider, to uncomment.
pub const ANALYSIS_EXAMPLE: &str = r#"# An analysis gates a step on your numbers: uncomment, keep one provider per metric, and add
# a step `- analysis: {templates: [{templateName: errors}], args: [{name: version, value: "1.2.0"}]}`.
# analysisTemplates:
#   - name: errors
#     args:
#       - name: version
#     metrics:
#       # Prometheus (or an AMP workspace: its URL and `sigv4: {region: us-east-1}`).
#       - name: error-ratio
#         count: 3
#         interval: 1m
#         successCondition: result < 0.01
#         failureCondition: result >= 0.05
#         provider:
#           prometheus:
#             address: http://prometheus.monitoring:9090
#             query: sum(rate(http_requests_total{code=~"5..",version="{{args.version}}"}[1m])) / sum(rate(http_requests_total{version="{{args.version}}"}[1m]))
#       # CloudWatch GetMetricData.
#       - name: alb-5xx
#         successCondition: result < 5
#         provider:
#           cloudwatch:
#             metricDataQueries:
#               - id: errors
#                 metricStat: {namespace: AWS/ApplicationELB, metricName: HTTPCode_Target_5XX_Count, stat: Sum, dimensions: {LoadBalancer: app/web/0123456789abcdef}}
#       # Datadog (keys: the stack's DatadogSecretArn).
#       - name: datadog-errors
#         successCondition: result < 1
#         provider:
#           datadog:
#             query: sum:trace.http.request.errors{service:web}.as_count()
#       # A web endpoint's JSON (RFC 9535 JSONPath).
#       - name: health
#         successCondition: result == 1.0
#         provider:
#           web:
#             url: https://status.example.com/api/health
#             jsonPath: $.healthy
#       # A Lambda function of yours (the stack's AnalysisFunctionArns): {"result": …, "message": …}.
#       - name: smoke-test
#         successCondition: result == 1.0
#         provider:
#           lambda:
#             functionName: okra-smoke-test
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{check_document, read_document};

    fn opts(listener: &str) -> InitOptions {
        InitOptions {
            name: "web".into(),
            listener_arn: listener.into(),
            rule_arn: None,
            selector: [("okra.io/cell".to_string(), "web".to_string())].into(),
            version_tag: "okra.io/version".into(),
            port: 30080,
            schema: "./cell.schema.json".into(),
        }
    }

    fn cluster(name: &str, version: Option<&str>, status: ClusterStatus) -> Cluster {
        Cluster {
            access: None,
            name: name.into(),
            status,
            tags: version
                .map(|v| ("okra.io/version".to_string(), v.to_string()))
                .into_iter()
                .collect(),
            vpc_id: Some("vpc-1".into()),
        }
    }

    const ALB: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const NLB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/gateway/0123456789abcdef/fedcba9876543210";

    #[test]
    fn the_commented_analysis_validates_once_uncommented() {
        let start = opts(ALB);
        let s = starter(
            &start,
            &[cluster("web-1", Some("1.0.0"), ClusterStatus::Active)],
        );
        let mut yaml = String::new();
        let mut inside = false;
        for line in s.yaml.lines() {
            if line == "# analysisTemplates:" {
                inside = true;
            }
            match line.strip_prefix("# ") {
                Some(rest) if inside => yaml.push_str(rest),
                _ => yaml.push_str(line),
            }
            yaml.push('\n');
        }
        yaml = yaml.replace(
            "    - setWeight: 50\n",
            "    - setWeight: 50\n    - analysis: {templates: [{templateName: errors}], args: [{name: version, value: \"1.2.0\"}]}\n",
        );
        let doc = read_document(&yaml).expect("parses");
        assert!(
            check_document(&doc).is_ok(),
            "{:?}\n{yaml}",
            check_document(&doc)
        );
    }

    #[test]
    fn the_starter_validates_and_takes_replicas_from_the_newest_version() {
        let clusters = [
            cluster("a1", Some("1.0.0"), ClusterStatus::Active),
            cluster("a2", Some("1.0.0"), ClusterStatus::Active),
            cluster("a3", Some("1.0.0"), ClusterStatus::Active),
            cluster("b1", Some("v1.1.0"), ClusterStatus::Active),
            cluster("b2", Some("1.1.0"), ClusterStatus::Active),
            cluster("c1", Some("1.2.0"), ClusterStatus::Creating),
            cluster("x", None, ClusterStatus::Active),
        ];
        let s = starter(&opts(ALB), &clusters);
        let spec = check_document(&read_document(&s.yaml).expect("YAML"))
            .unwrap_or_else(|e| panic!("{e}\n{}", s.yaml));
        assert_eq!(spec.replicas, 2);
        assert!(spec.ingress.alb.is_some());
        assert!(
            s.yaml
                .starts_with("# yaml-language-server: $schema=./cell.schema.json\n")
        );
        assert!(s.yaml.contains("# Found: 1.1.0 on b1, b2"), "{}", s.yaml);
        assert!(
            s.yaml.contains("# Found: 1.0.0 on a1, a2, a3"),
            "{}",
            s.yaml
        );
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
    }

    #[test]
    fn an_nlb_listener_and_no_clusters_still_validate() {
        let s = starter(&opts(NLB), &[]);
        let spec = check_document(&read_document(&s.yaml).expect("YAML"))
            .unwrap_or_else(|e| panic!("{e}\n{}", s.yaml));
        assert!(spec.ingress.nlb.is_some());
        assert_eq!(spec.replicas, 1);
        assert_eq!(s.notes, ["no cluster carries the selector's tags yet"]);
    }
}
