//! Validation of a [`CellSpec`], with errors that name the field.
//!
//! [`validate`] checks everything a spec can get wrong before okra touches AWS: names, ARNs, the
//! AWS limits that a rollout would hit half-way (a forward action holds at most 5 target groups),
//! step order, analysis references and their arguments, CEL conditions, CloudWatch and Datadog
//! queries, and the judge's numbers. It reports every error it finds, in the order it finds them,
//! each with the path of the field in the spec's own (camelCase) names:
//!
//! ```text
//! canary.steps[3].setWeight: 140 is not in 0..=100
//! analysisTemplates[0].metrics[1].successCondition: metric `p99`: `result <` is not a valid CEL expression: ...
//! ```
//!
//! [`parse_and_validate`] and [`validate_value`] read a spec (YAML or JSON text, or a JSON value
//! from an API body) and validate it in one go, with every error at once: its shape against the
//! spec's JSON Schema ([`check_document`]), then the rules.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use cel::common::ast::{EntryExpr, Expr};
use serde::{Deserialize, Serialize};

use crate::duration::{format_duration, parse_duration};
use crate::spec::{
    AnalysisTemplate, Arg, CanaryStep, CellSpec, CloudWatchProvider, DatadogProvider, HealthCheck,
    LoadBalancerKind, Metric, MetricStat, ParseError, Registration, TargetType, TemplateRef,
};
use crate::versions::parse_version;
use crate::weights::MAX_TARGET_GROUPS_PER_ACTION;

/// The longest cell name.
pub const MAX_NAME_LEN: usize = 32;
/// The most canary steps a cell may have.
pub const MAX_STEPS: usize = 100;
/// The longest EKS tag key.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// The longest EKS tag value.
pub const MAX_TAG_VALUE_LEN: usize = 256;
/// The most queries of one GetMetricData call.
pub const MAX_METRIC_DATA_QUERIES: usize = 500;
/// The longest Datadog query, in bytes.
pub const MAX_DATADOG_QUERY_BYTES: usize = 8 * 1024;
/// The most samples of one metric.
pub const MAX_METRIC_COUNT: u32 = 1000;
/// The largest spec, as JSON: a quarter of a Step Functions state (262,144 bytes), which the
/// spec travels in with the rest of the rollout's state.
pub const MAX_SPEC_BYTES: usize = 65_536;
/// The longest stickiness ELB accepts: 7 days.
pub const MAX_STICKINESS: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// ELB's default health check interval, which `timeoutSeconds` must stay below when
/// `intervalSeconds` is not set.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: u32 = 30;

/// One problem with a spec: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's path in the spec's own names, such as `canary.steps[3].setWeight`.
    pub path: String,
    /// What is wrong with it, and where it helps, how to fix it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem [`validate`] found in a spec, in the order it found them (the order of the spec's
/// fields). Never empty. Displays one error per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ValidationErrors {
    /// The errors, in the order found.
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// The errors, in the order found.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.errors.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are none (never, for a value returned by [`validate`]).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors at exactly this path.
    pub fn at<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a FieldError> + 'a {
        self.errors.iter().filter(move |e| e.path == path)
    }

    /// The paths of the errors, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.path.as_str()).collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// Why a spec text or value was refused: it could not be read, or it was read but is invalid.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not YAML or JSON, or not the spec's shape (an unknown field, a wrong type, a missing
    /// field). The message is serde's: it names the field path and, for text, the line.
    #[error("cannot read the cell spec: {0}")]
    Parse(#[from] ParseError),
    /// Read, but invalid.
    #[error("the cell spec is invalid:\n{0}")]
    Invalid(#[from] ValidationErrors),
}

/// Reads a spec from YAML or JSON text (JSON when its first non-blank character is `{`) and
/// validates it, reporting every error at once ([`check_document`]).
///
/// # Errors
///
/// [`SpecError::Parse`] when the text is neither YAML nor JSON (with serde's line and column);
/// [`SpecError::Invalid`] with every error of the document, shape and rules.
pub fn parse_and_validate(text: &str) -> Result<CellSpec, SpecError> {
    Ok(check_document(&read_document(text)?)?)
}

/// Reads a spec from a JSON value (an API request body) and validates it, reporting every error
/// at once ([`check_document`]).
///
/// # Errors
///
/// [`SpecError::Invalid`] with every error of the value, shape and rules.
pub fn validate_value(v: &serde_json::Value) -> Result<CellSpec, SpecError> {
    Ok(check_document(v)?)
}

/// Reads YAML or JSON text (JSON when its first non-blank character is `{`) into a document,
/// without looking at its shape. A JSON number no `f64` holds (`1e400`) does not stop the read:
/// it is read as YAML reads it (JSON is YAML), so that [`check_document`] names its field.
///
/// # Errors
///
/// [`ParseError`] when the text is neither, with serde's line and column.
pub fn read_document(text: &str) -> Result<serde_json::Value, ParseError> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).or_else(|e| {
            let out_of_range = e.to_string().starts_with("number out of range");
            match serde_yaml_ng::from_str::<serde_json::Value>(text) {
                Ok(v) if out_of_range => Ok(v),
                _ => Err(ParseError::Json(e.to_string())),
            }
        })
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| ParseError::Yaml(e.to_string()))
    }
}

/// Checks a spec document and returns the spec, or every error it has at once: first its shape
/// against the spec's JSON Schema ([`crate::spec::json_schema`]: unknown and missing fields,
/// wrong types, anywhere in the document; serde alone stops at the first), then, when the shape
/// is right, every rule of [`validate`].
///
/// # Errors
///
/// [`ValidationErrors`], never empty, each naming its field's path (`canary.steps[1].setWeight`).
pub fn check_document(v: &serde_json::Value) -> Result<CellSpec, ValidationErrors> {
    let shape = shape_errors(v);
    if !shape.is_empty() {
        return Err(ValidationErrors { errors: shape });
    }
    // The schema is the types': what it accepts deserializes, but for what it cannot say (a
    // `u16` port of 70000, say): serde's error, with its path.
    let spec: CellSpec = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        ValidationErrors {
            errors: vec![FieldError {
                path: if path == "." { String::new() } else { path },
                message: e.into_inner().to_string(),
            }],
        }
    })?;
    validate(&spec)?;
    Ok(spec)
}

/// The spec's schema, compiled once.
fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(&crate::spec::json_schema()).expect("the spec's schema compiles")
    })
}

/// A JSON Pointer (`/canary/steps/1/setWeight`) in the spec's path notation
/// (`canary.steps[1].setWeight`).
fn spec_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// The spec's field name closest to a misspelt one (Jaro-Winkler similarity of at least 0.9,
/// as clap suggests options), from every field name of the spec's schema.
fn did_you_mean(field: &str) -> Option<String> {
    static NAMES: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        fn collect(v: &serde_json::Value, out: &mut BTreeSet<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                        out.extend(props.keys().cloned());
                    }
                    m.values().for_each(|v| collect(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        let mut out = BTreeSet::new();
        collect(&crate::spec::json_schema(), &mut out);
        out
    });
    names
        .iter()
        .map(|n| (strsim::jaro_winkler(field, n), n))
        .filter(|(score, _)| *score >= 0.9)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n.clone())
}

/// Every shape error of a document, in document order, one per field.
fn shape_errors(v: &serde_json::Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    for e in schema_validator().iter_errors(v) {
        field_errors(&e, &mut out);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup();
    out
}

fn field_errors(e: &jsonschema::ValidationError<'_>, out: &mut Vec<FieldError>) {
    use jsonschema::error::ValidationErrorKind as K;
    let path = spec_path(e.instance_path().as_str());
    match e.kind() {
        K::AdditionalProperties { unexpected } => {
            for field in unexpected {
                let message = match did_you_mean(field) {
                    Some(known) => format!("unknown field (did you mean `{known}`?)"),
                    None => "unknown field".to_string(),
                };
                out.push(FieldError {
                    path: join(&path, field),
                    message,
                });
            }
        }
        K::Required { property } => out.push(FieldError {
            path: join(&path, property.as_str().unwrap_or_default()),
            message: "missing (required)".to_string(),
        }),
        // One of several shapes (a canary step is `setWeight`, `pause` or `analysis`): the errors
        // of the shape the value comes closest to.
        K::OneOfNotValid { context } | K::AnyOf { context } => {
            match context.iter().min_by_key(|branch| branch.len()) {
                Some(best) if !best.is_empty() => {
                    for e in best {
                        field_errors(e, out);
                    }
                }
                _ => out.push(FieldError {
                    path,
                    message: e.to_string(),
                }),
            }
        }
        _ => out.push(FieldError {
            path,
            message: e.to_string(),
        }),
    }
}

/// Checks a spec and returns every error found, in the order found.
///
/// # Errors
///
/// [`ValidationErrors`], never empty, when the spec is invalid.
pub fn validate(spec: &CellSpec) -> Result<(), ValidationErrors> {
    let mut v = Validator {
        spec,
        errors: Vec::new(),
    };
    v.name();
    v.ingress();
    v.cluster_selector();
    v.version_tag();
    v.replicas();
    v.version();
    v.target_group();
    v.readiness();
    v.stickiness();
    v.canary();
    v.analysis_templates();
    v.judge();
    v.size();
    v.history();
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors { errors: v.errors })
    }
}

struct Validator<'a> {
    spec: &'a CellSpec,
    errors: Vec<FieldError>,
}

/// `a, b and c`.
fn list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

/// `` `a`, `b` `` for messages, or `none` for an empty list.
fn quoted<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    let q: Vec<String> = items.into_iter().map(|s| format!("`{s}`")).collect();
    if q.is_empty() {
        "none".to_string()
    } else {
        q.join(", ")
    }
}

impl Validator<'_> {
    /// The spec travels in every state of an execution, whose input and output Step Functions
    /// caps at 256 KiB (`States.DataLimitExceeded`): a spec may take a quarter of that.
    fn size(&mut self) {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self.spec) else {
            return;
        };
        let total = serde_json::to_vec(&fields).map_or(0, |b| b.len());
        if total <= MAX_SPEC_BYTES {
            return;
        }
        let (biggest, _) = fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_vec(v).map_or(0, |b| b.len())))
            .max_by_key(|(_, n)| *n)
            .unwrap_or_default();
        self.push(
            biggest,
            format!(
                "the spec is {total} bytes as JSON; at most {MAX_SPEC_BYTES} are allowed, since it \
                 travels in every state of a rollout's execution (Step Functions allows 262,144 \
                 bytes per state); this field is the largest"
            ),
        );
    }

    /// The plan must fit Step Functions' history quota ([`crate::history`]); checked only on a
    /// spec with no other error (the plan of a broken spec says nothing).
    fn history(&mut self) {
        use crate::history::{ReadinessPlan, STEPS_BUDGET, budget, step_costs};
        if !self.errors.is_empty() {
            return;
        }
        let spec = self.spec;
        let plan = crate::decision::plan(spec);
        let readiness = ReadinessPlan::for_timeout(
            crate::duration::parse_duration(&spec.readiness.timeout).unwrap_or_default(),
        );
        let samples = |i| crate::decision::max_samples(spec, i);
        let b = budget(&plan, &readiness, samples);
        if b.steps <= STEPS_BUDGET {
            return;
        }
        let costliest = step_costs(&plan, samples)
            .into_iter()
            .enumerate()
            .map(|(i, cost)| (cost, i))
            .max();
        let (cost, i) = costliest.unwrap_or_default();
        let path = if i < spec.canary.steps.len() {
            format!("canary.steps[{i}]")
        } else {
            "canary.steps".to_string()
        };
        self.push(
            path,
            format!(
                "one execution of these steps could write {} Step Functions history events, more \
                 than the {STEPS_BUDGET} okra keeps of the 25,000 an execution may have (this step \
                 alone: {cost}); take fewer analysis samples (count), a longer background \
                 analysis interval, a shorter timed pause, or fewer steps",
                b.steps
            ),
        );
    }

    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Parses a duration, reporting a bad one at `path`.
    fn duration(&mut self, path: &str, s: &str) -> Option<Duration> {
        match parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(path, e.to_string());
                None
            }
        }
    }

    /// The kind of load balancer, when `ingress` names exactly one.
    fn kind(&self) -> Option<LoadBalancerKind> {
        self.spec.ingress.listener().map(|(k, _)| k)
    }

    fn name(&mut self) {
        let n = &self.spec.name;
        let rule = "use 1-32 characters of a-z, 0-9 and -, starting with a letter";
        if n.is_empty() {
            self.push("name", format!("must not be empty; {rule}"));
            return;
        }
        let len = n.chars().count();
        if len > MAX_NAME_LEN {
            self.push(
                "name",
                format!("`{n}` is {len} characters long; at most {MAX_NAME_LEN} are allowed"),
            );
        }
        if !n.starts_with(|c: char| c.is_ascii_lowercase()) {
            self.push(
                "name",
                format!("`{n}` must start with a letter a-z; {rule}"),
            );
        } else if let Some(c) = n
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            self.push("name", format!("`{n}` holds `{c}`; {rule}"));
        } else if n.ends_with('-') {
            self.push("name", format!("`{n}` must not end with `-`"));
        }
    }

    fn ingress(&mut self) {
        let ingress = &self.spec.ingress;
        match (&ingress.alb, &ingress.nlb) {
            (None, None) => self.push(
                "ingress",
                "set exactly one of `alb` and `nlb`; neither is set",
            ),
            (Some(_), Some(_)) => {
                self.push("ingress", "set exactly one of `alb` and `nlb`, not both")
            }
            _ => {}
        }
        if let Some(alb) = &ingress.alb {
            let listener = self.listener_arn(
                "ingress.alb.listenerArn",
                &alb.listener_arn,
                LoadBalancerKind::Alb,
            );
            if let Some(rule) = &alb.rule_arn {
                self.rule_arn("ingress.alb.ruleArn", rule, listener.as_ref());
            }
        }
        if let Some(nlb) = &ingress.nlb {
            self.listener_arn(
                "ingress.nlb.listenerArn",
                &nlb.listener_arn,
                LoadBalancerKind::Nlb,
            );
        }
    }

    fn listener_arn<'s>(
        &mut self,
        path: &str,
        arn: &'s str,
        kind: LoadBalancerKind,
    ) -> Option<ElbArn<'s>> {
        let (label, lb_type, other_label, other_path) = match kind {
            LoadBalancerKind::Alb => ("an ALB", "app", "an NLB", "ingress.nlb"),
            LoadBalancerKind::Nlb => ("an NLB", "net", "an ALB", "ingress.alb"),
        };
        let expected = format!(
            "expected arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:listener/{lb_type}/NAME/ID/ID"
        );
        match ElbArn::parse(arn, "listener") {
            Err(reason) => {
                self.push(
                    path,
                    format!("`{arn}` is not {label} listener ARN: {reason}; {expected}"),
                );
                None
            }
            Ok(parsed) if parsed.lb_type != lb_type => {
                self.push(
                    path,
                    format!(
                        "`{arn}` is {other_label} listener (listener/{}/...), not {label} \
                         listener; move it under `{other_path}` or use {label}'s listener",
                        parsed.lb_type
                    ),
                );
                None
            }
            Ok(parsed) => Some(parsed),
        }
    }

    fn rule_arn(&mut self, path: &str, arn: &str, listener: Option<&ElbArn<'_>>) {
        let expected = "expected arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:\
                        listener-rule/app/NAME/ID/ID/ID";
        let rule = match ElbArn::parse(arn, "listener-rule") {
            Ok(rule) => rule,
            Err(reason) => {
                self.push(
                    path,
                    format!("`{arn}` is not an ALB listener rule ARN: {reason}; {expected}"),
                );
                return;
            }
        };
        if rule.lb_type != "app" {
            self.push(path, format!("`{arn}` is not an ALB listener rule ARN: it is not of an ALB (listener-rule/app/...)"));
            return;
        }
        if let Some(listener) = listener
            && !rule.same_listener(listener)
        {
            self.push(
                path,
                format!(
                    "the rule `{arn}` is not a rule of listenerArn `{}`; a rule must belong to the \
                     same load balancer and listener",
                    self.spec
                        .ingress
                        .alb
                        .as_ref()
                        .map_or("", |a| a.listener_arn.as_str())
                ),
            );
        }
    }

    fn cluster_selector(&mut self) {
        let path = "clusterSelector.matchTags";
        let tags = &self.spec.cluster_selector.match_tags;
        if tags.is_empty() {
            self.push(
                path,
                "must hold at least one tag; with none, every EKS cluster of the account and region \
                 would belong to the cell",
            );
        }
        for (key, value) in tags {
            let len = key.chars().count();
            if key.is_empty() {
                self.push(path, "a tag key must not be empty");
            } else if len > MAX_TAG_KEY_LEN {
                let start: String = key.chars().take(20).collect();
                self.push(
                    path,
                    format!(
                        "the key `{start}...` is {len} characters long; an EKS tag key has at most \
                         {MAX_TAG_KEY_LEN}"
                    ),
                );
            }
            let vlen = value.chars().count();
            if vlen > MAX_TAG_VALUE_LEN {
                self.push(
                    path,
                    format!(
                        "the value of `{key}` is {vlen} characters long; an EKS tag value has at \
                         most {MAX_TAG_VALUE_LEN}"
                    ),
                );
            }
        }
        let vt = &self.spec.version_tag;
        if tags.contains_key(vt) {
            self.push(
                path,
                format!(
                    "must not hold the version tag `{vt}`: the clusters of a cell carry different \
                     versions in it, which is how okra tells them apart"
                ),
            );
        }
    }

    fn version_tag(&mut self) {
        let vt = &self.spec.version_tag;
        let len = vt.chars().count();
        if vt.is_empty() {
            self.push("versionTag", "must not be empty");
        } else if len > MAX_TAG_KEY_LEN {
            self.push(
                "versionTag",
                format!("is {len} characters long; an EKS tag key has at most {MAX_TAG_KEY_LEN}"),
            );
        }
    }

    fn replicas(&mut self) {
        let r = self.spec.replicas;
        if r == 0 {
            self.push(
                "replicas",
                "0 is not allowed: a version needs at least 1 cluster",
            );
            return;
        }
        let Some(kind) = self.kind() else { return };
        let max = MAX_TARGET_GROUPS_PER_ACTION;
        if self.spec.ingress.weighted() {
            if (r as usize).saturating_mul(2) > max {
                let lb = match kind {
                    LoadBalancerKind::Alb => "an ALB",
                    LoadBalancerKind::Nlb => "an NLB",
                };
                self.push(
                    "replicas",
                    format!(
                        "{r} cannot fit: a canary step forwards to {r} stable + {r} canary target \
                         groups, but {lb} forward action holds at most {max}; use at most {}",
                        max / 2
                    ),
                );
            }
        } else if r != 1 {
            self.push(
                "replicas",
                format!(
                    "{r} cannot fit: a blue/green NLB listener (weighted: false) forwards to one \
                     target group at a time, so 1 cluster serves a version; set replicas to 1, or \
                     weighted to true"
                ),
            );
        }
    }

    fn version(&mut self) {
        if let Some(v) = &self.spec.version
            && let Err(e) = parse_version(v)
        {
            self.push(
                "version",
                format!("`{v}` is not a semver version such as 1.4.2 or v1.4.2: {e}"),
            );
        }
    }

    fn target_group(&mut self) {
        let tg = &self.spec.target_group;
        let kind = self.kind();
        if tg.port == 0 {
            self.push("targetGroup.port", "0 is not in 1..=65535");
        }
        let p = match kind {
            Some(k) => tg.protocol_for(k),
            None => tg.protocol.as_deref().unwrap_or("HTTP"),
        };
        match kind {
            Some(LoadBalancerKind::Alb) if !matches!(p, "HTTP" | "HTTPS") => self.push(
                "targetGroup.protocol",
                format!("`{p}` is not an ALB target group protocol; use HTTP or HTTPS"),
            ),
            Some(LoadBalancerKind::Nlb) if !matches!(p, "TCP" | "TLS" | "UDP" | "TCP_UDP") => {
                self.push(
                    "targetGroup.protocol",
                    format!("`{p}` is not an NLB target group protocol; use TCP, TLS, UDP or TCP_UDP"),
                );
            }
            None if !matches!(p, "HTTP" | "HTTPS" | "TCP" | "TLS" | "UDP" | "TCP_UDP") => self.push(
                "targetGroup.protocol",
                format!("`{p}` is not a target group protocol: HTTP, HTTPS, TCP, TLS, UDP or TCP_UDP"),
            ),
            _ => {}
        }
        if tg.registration == Registration::Instances && tg.target_type != TargetType::Instance {
            self.push(
                "targetGroup.registration",
                "`instances` registers EC2 instance ids, which needs `targetType: instance`; \
                 pod IPs are registered by aws-load-balancer-controller (`registration: external`)",
            );
        }
        self.health_check(&tg.health_check, kind);
    }

    fn health_check(&mut self, hc: &HealthCheck, kind: Option<LoadBalancerKind>) {
        const P: &str = "targetGroup.healthCheck";
        let interval_ok = match hc.interval_seconds {
            Some(i) if !(5..=300).contains(&i) => {
                self.push(
                    format!("{P}.intervalSeconds"),
                    format!("{i} is not in 5..=300"),
                );
                false
            }
            _ => true,
        };
        if let Some(t) = hc.timeout_seconds {
            if !(2..=120).contains(&t) {
                self.push(
                    format!("{P}.timeoutSeconds"),
                    format!("{t} is not in 2..=120"),
                );
            } else if interval_ok {
                match hc.interval_seconds {
                    Some(i) if t >= i => self.push(
                        format!("{P}.timeoutSeconds"),
                        format!("{t} must be less than intervalSeconds ({i})"),
                    ),
                    None if t >= DEFAULT_HEALTH_CHECK_INTERVAL => self.push(
                        format!("{P}.timeoutSeconds"),
                        format!(
                            "{t} must be less than the interval, ELB's default of \
                             {DEFAULT_HEALTH_CHECK_INTERVAL} seconds as intervalSeconds is not set"
                        ),
                    ),
                    _ => {}
                }
            }
        }
        for (field, value) in [
            ("healthyThreshold", hc.healthy_threshold),
            ("unhealthyThreshold", hc.unhealthy_threshold),
        ] {
            if let Some(n) = value
                && !(2..=10).contains(&n)
            {
                self.push(format!("{P}.{field}"), format!("{n} is not in 2..=10"));
            }
        }
        if let Some(port) = &hc.port
            && port != "traffic-port"
            && !port.parse::<u16>().is_ok_and(|p| p > 0)
        {
            self.push(
                format!("{P}.port"),
                format!("`{port}` is neither `traffic-port` nor a port number in 1..=65535"),
            );
        }
        if let Some(protocol) = &hc.protocol {
            match (protocol.as_str(), kind) {
                ("HTTP" | "HTTPS", _) => {}
                ("TCP", Some(LoadBalancerKind::Alb)) => self.push(
                    format!("{P}.protocol"),
                    "`TCP` is for NLB target groups; an ALB target group's health check is HTTP or \
                     HTTPS",
                ),
                ("TCP", _) => {
                    for (field, set) in [
                        ("path", hc.path.is_some()),
                        ("matcher", hc.matcher.is_some()),
                    ] {
                        if set {
                            self.push(
                                format!("{P}.{field}"),
                                format!("a TCP health check has no {field}; remove it or use HTTP"),
                            );
                        }
                    }
                }
                (other, _) => self.push(
                    format!("{P}.protocol"),
                    format!("`{other}` is not a health check protocol: HTTP, HTTPS or TCP"),
                ),
            }
        }
        if let Some(path) = &hc.path {
            if !path.starts_with('/') {
                self.push(format!("{P}.path"), format!("`{path}` must start with `/`"));
            } else if path.len() > 1024 {
                self.push(
                    format!("{P}.path"),
                    format!(
                        "is {} characters long; a health check path has at most 1024",
                        path.len()
                    ),
                );
            }
        }
        if let Some(m) = &hc.matcher {
            let (lo, hi) = match kind {
                Some(LoadBalancerKind::Alb) => (200, 499),
                _ => (200, 599),
            };
            if let Err(e) = check_matcher(m, lo, hi) {
                self.push(format!("{P}.matcher"), e);
            }
        }
    }

    fn readiness(&mut self) {
        let r = &self.spec.readiness;
        if r.min_healthy_percent > 100 {
            self.push(
                "readiness.minHealthyPercent",
                format!("{} is not in 0..=100", r.min_healthy_percent),
            );
        }
        if let Some(d) = self.duration("readiness.timeout", &r.timeout)
            && d.is_zero()
        {
            self.push(
                "readiness.timeout",
                "must be more than 0s: the readiness gate would give up before it looked",
            );
        }
    }

    fn stickiness(&mut self) {
        let Some(s) = &self.spec.stickiness else {
            return;
        };
        let path = "stickiness.duration";
        let Some(d) = self.duration(path, &s.duration) else {
            return;
        };
        if d < Duration::from_secs(1) || d > MAX_STICKINESS {
            self.push(
                path,
                format!(
                    "`{}` is not in 1s..=7d, the stickiness ELB accepts",
                    s.duration
                ),
            );
        } else if d.subsec_nanos() != 0 {
            self.push(
                path,
                format!(
                    "`{}` is not a whole number of seconds, as ELB's stickiness duration is",
                    s.duration
                ),
            );
        }
    }

    fn canary(&mut self) {
        let steps = &self.spec.canary.steps;
        if steps.len() > MAX_STEPS {
            self.push(
                "canary.steps",
                format!("has {} steps; at most {MAX_STEPS} are allowed", steps.len()),
            );
        }
        let weighted = self.spec.ingress.weighted();
        // The highest valid weight so far, and the index of the step that set it.
        let mut highest: Option<(u32, usize)> = None;
        for (i, step) in steps.iter().enumerate() {
            let sp = format!("canary.steps[{i}]");
            self.step_shape(&sp, step);
            if let Some(w) = step.set_weight {
                let wp = format!("{sp}.setWeight");
                if w > 100 {
                    self.push(wp, format!("{w} is not in 0..=100"));
                    continue;
                }
                match highest {
                    Some((hw, hi)) if w < hw => self.push(
                        &wp,
                        format!(
                            "{w} is lower than the {hw} set at canary.steps[{hi}]; weights may not \
                             go down (use an abort to go back)"
                        ),
                    ),
                    _ => highest = Some((w, i)),
                }
                if !weighted && w != 0 && w != 100 {
                    self.push(
                        wp,
                        format!(
                            "{w} needs a weighted listener: this NLB is blue/green (weighted: \
                             false), so a step can only set 0 or 100"
                        ),
                    );
                }
            }
            if let Some(pause) = &step.pause
                && let Some(d) = &pause.duration
            {
                self.duration(&format!("{sp}.pause.duration"), d);
            }
            if let Some(a) = &step.analysis {
                self.analysis_ref(&format!("{sp}.analysis"), &a.templates, &a.args);
            }
        }
        if let Some(bg) = &self.spec.canary.analysis {
            self.analysis_ref("canary.analysis", &bg.templates, &bg.args);
            let n = steps.len();
            if bg.starting_step as usize > n {
                self.push(
                    "canary.analysis.startingStep",
                    format!(
                        "{} is past the last step: there are {n} steps, so it must be in 0..={n}",
                        bg.starting_step
                    ),
                );
            }
        }
    }

    fn step_shape(&mut self, path: &str, step: &CanaryStep) {
        let set: Vec<&str> = [
            ("setWeight", step.set_weight.is_some()),
            ("pause", step.pause.is_some()),
            ("analysis", step.analysis.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, is_set)| is_set.then_some(name))
        .collect();
        if set.len() != 1 {
            let found = if set.is_empty() {
                "none".to_string()
            } else {
                list(&set)
            };
            self.push(
                path,
                format!(
                    "a step must set exactly one of setWeight, pause and analysis; this one sets {found}"
                ),
            );
        }
    }

    /// A step's analysis or the background analysis: its templates exist, and its args are the
    /// ones they need.
    fn analysis_ref(&mut self, path: &str, refs: &[TemplateRef], args: &[Arg]) {
        let spec = self.spec;
        if refs.is_empty() {
            self.push(
                format!("{path}.templates"),
                "must name at least one analysis template",
            );
        }
        let mut resolved: Vec<&AnalysisTemplate> = Vec::new();
        let mut all_resolved = true;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, r) in refs.iter().enumerate() {
            let rp = format!("{path}.templates[{i}].templateName");
            let name = r.template_name.as_str();
            if let Some(first) = seen.get(name) {
                self.push(
                    rp,
                    format!("`{name}` is already named at {path}.templates[{first}]"),
                );
                continue;
            }
            seen.insert(name, i);
            match spec.analysis_templates.iter().find(|t| t.name == name) {
                Some(t) => resolved.push(t),
                None => {
                    all_resolved = false;
                    let known = quoted(spec.analysis_templates.iter().map(|t| t.name.as_str()));
                    self.push(
                        rp,
                        format!("`{name}` is not the name of any of analysisTemplates (they are: {known})"),
                    );
                }
            }
        }
        let mut given: HashMap<&str, usize> = HashMap::new();
        for (j, a) in args.iter().enumerate() {
            let ap = format!("{path}.args[{j}]");
            let name = a.name.as_str();
            if let Some(first) = given.get(name) {
                self.push(
                    format!("{ap}.name"),
                    format!("`{name}` is already given at {path}.args[{first}]"),
                );
                continue;
            }
            given.insert(name, j);
            if a.value.is_none() {
                self.push(format!("{ap}.value"), format!("arg `{name}` needs a value"));
            }
            // An arg might belong to a template that does not resolve: say nothing then.
            if all_resolved
                && !resolved
                    .iter()
                    .any(|t| t.args.iter().any(|ta| ta.name == name))
            {
                let names: Vec<&str> = resolved.iter().map(|t| t.name.as_str()).collect();
                let declared = quoted(
                    resolved
                        .iter()
                        .flat_map(|t| t.args.iter().map(|a| a.name.as_str())),
                );
                self.push(
                    format!("{ap}.name"),
                    format!(
                        "`{name}` is not an arg of {} (they declare: {declared})",
                        if names.len() == 1 {
                            format!("template `{}`", names[0])
                        } else {
                            format!("templates {}", quoted(names))
                        }
                    ),
                );
            }
        }
        for t in resolved {
            for ta in &t.args {
                if ta.value.is_none() && !given.contains_key(ta.name.as_str()) {
                    self.push(
                        format!("{path}.args"),
                        format!(
                            "template `{}` needs arg `{}`, which has no default; give it here as \
                             {{name: {}, value: ...}}",
                            t.name, ta.name, ta.name
                        ),
                    );
                }
            }
        }
    }

    fn analysis_templates(&mut self) {
        let spec = self.spec;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (ti, t) in spec.analysis_templates.iter().enumerate() {
            let tp = format!("analysisTemplates[{ti}]");
            if t.name.is_empty() {
                self.push(format!("{tp}.name"), "must not be empty");
            } else if let Some(first) = seen.get(t.name.as_str()) {
                self.push(
                    format!("{tp}.name"),
                    format!(
                        "`{}` is already the name of analysisTemplates[{first}]",
                        t.name
                    ),
                );
            } else {
                seen.insert(&t.name, ti);
            }
            let mut arg_seen: HashMap<&str, usize> = HashMap::new();
            for (ai, a) in t.args.iter().enumerate() {
                let ap = format!("{tp}.args[{ai}].name");
                if !is_arg_name(&a.name) {
                    self.push(
                        ap,
                        format!(
                            "`{}` is not an arg name: use letters, digits, `_` and `-`, starting \
                             with a letter or `_`",
                            a.name
                        ),
                    );
                } else if let Some(first) = arg_seen.get(a.name.as_str()) {
                    self.push(
                        ap,
                        format!("`{}` is already declared at {tp}.args[{first}]", a.name),
                    );
                } else {
                    arg_seen.insert(&a.name, ai);
                }
            }
            let declared: BTreeSet<&str> = t.args.iter().map(|a| a.name.as_str()).collect();
            if t.metrics.is_empty() {
                self.push(
                    format!("{tp}.metrics"),
                    "a template needs at least one metric",
                );
            }
            let mut metric_seen: HashMap<&str, usize> = HashMap::new();
            for (mi, m) in t.metrics.iter().enumerate() {
                let mp = format!("{tp}.metrics[{mi}]");
                if m.name.is_empty() {
                    self.push(format!("{mp}.name"), "must not be empty");
                } else if let Some(first) = metric_seen.get(m.name.as_str()) {
                    self.push(
                        format!("{mp}.name"),
                        format!("`{}` is already the name of {tp}.metrics[{first}]", m.name),
                    );
                } else {
                    metric_seen.insert(&m.name, mi);
                }
                self.metric(&mp, m, &declared);
            }
        }
    }

    fn metric(&mut self, mp: &str, m: &Metric, declared: &BTreeSet<&str>) {
        if let Some(d) = self.duration(&format!("{mp}.interval"), &m.interval)
            && d < Duration::from_secs(1)
        {
            self.push(
                format!("{mp}.interval"),
                format!(
                    "`{}` is shorter than 1s, the shortest interval between samples",
                    m.interval
                ),
            );
        }
        if let Some(delay) = &m.initial_delay {
            self.duration(&format!("{mp}.initialDelay"), delay);
        }
        if !(1..=MAX_METRIC_COUNT).contains(&m.count) {
            self.push(
                format!("{mp}.count"),
                format!("{} is not in 1..={MAX_METRIC_COUNT}", m.count),
            );
        }
        if m.success_condition.is_none() && m.failure_condition.is_none() {
            self.push(
                mp,
                format!(
                    "metric `{}` needs a successCondition, a failureCondition or both",
                    m.name
                ),
            );
        }
        for (field, cond) in [
            ("successCondition", &m.success_condition),
            ("failureCondition", &m.failure_condition),
        ] {
            if let Some(expr) = cond {
                self.condition(&format!("{mp}.{field}"), &m.name, expr, declared);
            }
        }
        let pp = format!("{mp}.provider");
        match (&m.provider.cloudwatch, &m.provider.datadog) {
            (None, None) => self.push(
                &pp,
                "set exactly one of `cloudwatch` and `datadog`; neither is set",
            ),
            (Some(_), Some(_)) => self.push(
                &pp,
                "set exactly one of `cloudwatch` and `datadog`, not both",
            ),
            _ => {}
        }
        if let Some(cw) = &m.provider.cloudwatch {
            self.cloudwatch(&format!("{pp}.cloudwatch"), cw, declared);
        }
        if let Some(dd) = &m.provider.datadog {
            self.datadog(&format!("{pp}.datadog"), dd, declared);
        }
    }

    fn condition(&mut self, path: &str, metric: &str, expr: &str, declared: &BTreeSet<&str>) {
        if expr.trim().is_empty() {
            self.push(path, format!("metric `{metric}`: the condition is empty"));
            return;
        }
        let program = match cel::Program::compile(expr) {
            Ok(p) => p,
            Err(e) => {
                let why: Vec<String> = e
                    .errors
                    .iter()
                    .map(|e| format!("{}:{}: {}", e.pos.0, e.pos.1, e.msg))
                    .collect();
                self.push(
                    path,
                    format!(
                        "metric `{metric}`: `{expr}` is not a valid CEL expression: {}",
                        why.join("; ")
                    ),
                );
                return;
            }
        };
        let mut refs = References::default();
        refs.collect(program.expression(), &mut Vec::new());
        if !refs.variables.is_empty() {
            self.push(
                path,
                format!(
                    "metric `{metric}`: `{expr}` refers to {}, but a condition may only use \
                     `result` (the metric's value) and `args`",
                    quoted(refs.variables.iter().map(String::as_str))
                ),
            );
        }
        for a in &refs.args {
            if !declared.contains(a.as_str()) {
                self.push(
                    path,
                    format!(
                        "metric `{metric}`: `{expr}` uses `args.{a}`, which the template does not \
                         declare (it declares: {})",
                        quoted(declared.iter().copied())
                    ),
                );
            }
        }
    }

    fn cloudwatch(&mut self, cp: &str, cw: &CloudWatchProvider, declared: &BTreeSet<&str>) {
        if let Some(w) = &cw.window
            && let Some(d) = self.duration(&format!("{cp}.window"), w)
            && d < Duration::from_secs(1)
        {
            self.push(format!("{cp}.window"), format!("`{w}` is shorter than 1s"));
        }
        let qp = format!("{cp}.metricDataQueries");
        let n = cw.metric_data_queries.len();
        if n == 0 {
            self.push(&qp, "needs at least one query");
        } else if n > MAX_METRIC_DATA_QUERIES {
            self.push(
                &qp,
                format!("has {n} queries; GetMetricData takes at most {MAX_METRIC_DATA_QUERIES}"),
            );
        }
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut returns: Option<usize> = None;
        for (i, q) in cw.metric_data_queries.iter().enumerate() {
            let p = format!("{qp}[{i}]");
            if !is_query_id(&q.id) {
                self.push(
                    format!("{p}.id"),
                    format!(
                        "`{}` is not a query id: it must start with a letter a-z, then letters, \
                         digits and `_`",
                        q.id
                    ),
                );
            } else if let Some(first) = ids.get(q.id.as_str()) {
                self.push(
                    format!("{p}.id"),
                    format!("`{}` is already the id of {qp}[{first}]", q.id),
                );
            } else {
                ids.insert(&q.id, i);
            }
            match (&q.expression, &q.metric_stat) {
                (None, None) => self.push(
                    &p,
                    "set exactly one of `expression` and `metricStat`; neither is set",
                ),
                (Some(_), Some(_)) => self.push(
                    &p,
                    "set exactly one of `expression` and `metricStat`, not both",
                ),
                _ => {}
            }
            if q.return_data == Some(true) {
                if let Some(first) = returns {
                    self.push(
                        format!("{p}.returnData"),
                        format!(
                            "{qp}[{first}] already sets returnData: true; only one query may, as it \
                             gives `result`"
                        ),
                    );
                } else {
                    returns = Some(i);
                }
            }
            if let Some(e) = &q.expression {
                if e.trim().is_empty() {
                    self.push(format!("{p}.expression"), "must not be empty");
                }
                self.placeholders(&format!("{p}.expression"), e, declared);
            }
            if let Some(label) = &q.label {
                self.placeholders(&format!("{p}.label"), label, declared);
            }
            if let Some(ms) = &q.metric_stat {
                self.metric_stat(&format!("{p}.metricStat"), ms, declared);
            }
        }
    }

    fn metric_stat(&mut self, sp: &str, ms: &MetricStat, declared: &BTreeSet<&str>) {
        if ms.namespace.is_empty() {
            self.push(format!("{sp}.namespace"), "must not be empty");
        }
        self.placeholders(&format!("{sp}.namespace"), &ms.namespace, declared);
        if ms.metric_name.is_empty() {
            self.push(format!("{sp}.metricName"), "must not be empty");
        }
        self.placeholders(&format!("{sp}.metricName"), &ms.metric_name, declared);
        for (k, v) in &ms.dimensions {
            self.placeholders(&format!("{sp}.dimensions"), k, declared);
            self.placeholders(&format!("{sp}.dimensions"), v, declared);
        }
        let period = ms.period;
        if !(matches!(period, 1 | 5 | 10 | 30) || (period > 0 && period.is_multiple_of(60))) {
            self.push(
                format!("{sp}.period"),
                format!(
                    "{period} is not a CloudWatch period: use 1, 5, 10, 30 or a multiple of 60"
                ),
            );
        }
        if !is_stat(&ms.stat) {
            self.push(
                format!("{sp}.stat"),
                format!(
                    "`{}` is not a statistic: use Sum, Average, Maximum, Minimum, SampleCount or a \
                     percentile such as p99 or p99.9",
                    ms.stat
                ),
            );
        }
    }

    fn datadog(&mut self, dp: &str, dd: &DatadogProvider, declared: &BTreeSet<&str>) {
        let qp = format!("{dp}.query");
        if dd.query.trim().is_empty() {
            self.push(&qp, "must not be empty");
        } else if dd.query.len() > MAX_DATADOG_QUERY_BYTES {
            self.push(
                &qp,
                format!(
                    "is {} bytes long; a Datadog query holds at most 8 KiB ({MAX_DATADOG_QUERY_BYTES} bytes)",
                    dd.query.len()
                ),
            );
        }
        self.placeholders(&qp, &dd.query, declared);
        if let Some(i) = &dd.interval
            && let Some(d) = self.duration(&format!("{dp}.interval"), i)
            && d < Duration::from_secs(1)
        {
            self.push(
                format!("{dp}.interval"),
                format!("`{i}` is shorter than 1s"),
            );
        }
    }

    /// Every `{{...}}` in `text` must be `{{args.NAME}}` with a declared NAME.
    fn placeholders(&mut self, path: &str, text: &str, declared: &BTreeSet<&str>) {
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                self.push(
                    path,
                    "a `{{` is not closed by `}}`; write placeholders as `{{args.NAME}}`",
                );
                return;
            };
            let inner = after[..end].trim();
            match inner.strip_prefix("args.").map(str::trim) {
                Some(name) if declared.contains(name) => {}
                Some(name) => self.push(
                    path,
                    format!(
                        "`{{{{args.{name}}}}}` names no arg of the template (it declares: {})",
                        quoted(declared.iter().copied())
                    ),
                ),
                None => self.push(
                    path,
                    format!(
                        "`{{{{{inner}}}}}` is not a placeholder okra fills; write `{{{{args.NAME}}}}`"
                    ),
                ),
            }
            rest = &after[end + 2..];
        }
    }

    fn judge(&mut self) {
        let j = &self.spec.judge;
        if !(j.confidence.is_finite() && (0.5..=0.999).contains(&j.confidence)) {
            self.push(
                "judge.confidence",
                format!("{} is not in 0.5..=0.999", j.confidence),
            );
        }
        if j.min_requests == 0 {
            self.push(
                "judge.minRequests",
                "0 is not allowed: a sample needs at least 1 request",
            );
        }
        if !(j.max_error_rate_increase.is_finite()
            && (0.0..=100.0).contains(&j.max_error_rate_increase))
        {
            self.push(
                "judge.maxErrorRateIncrease",
                format!(
                    "{} is not in 0..=100 (percentage points)",
                    j.max_error_rate_increase
                ),
            );
        }
        if !(j.max_latency_ratio.is_finite() && j.max_latency_ratio >= 1.0) {
            self.push(
                "judge.maxLatencyRatio",
                format!(
                    "{} must be a number of at least 1.0 (1.2 tolerates a canary 20 % slower)",
                    j.max_latency_ratio
                ),
            );
        }
        if let Some(d) = self.duration("judge.window", &j.window)
            && d < Duration::from_secs(60)
        {
            self.push(
                "judge.window",
                format!(
                    "`{}` ({}) is shorter than 1m; CloudWatch's ELB metrics come once a minute",
                    j.window,
                    format_duration(d)
                ),
            );
        }
    }
}

/// The parts of an Elastic Load Balancing listener or listener rule ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ElbArn<'s> {
    partition: &'s str,
    region: &'s str,
    account: &'s str,
    /// `app` or `net`.
    lb_type: &'s str,
    lb_name: &'s str,
    /// Load balancer id, listener id, and (for a rule) rule id.
    ids: Vec<&'s str>,
}

impl<'s> ElbArn<'s> {
    /// Parses `arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:RESOURCE/app|net/NAME/ID/ID[/ID]`
    /// with `RESOURCE` = `resource` (`listener` or `listener-rule`); the error says what is wrong.
    fn parse(arn: &'s str, resource: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, rest] = parts[..] else {
            return Err("it does not have the six `:`-separated parts of an ARN".to_string());
        };
        if prefix != "arn" {
            return Err("it does not start with `arn:`".to_string());
        }
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(format!(
                "`{partition}` is not a partition: aws, aws-cn or aws-us-gov"
            ));
        }
        if service != "elasticloadbalancing" {
            return Err(format!(
                "its service is `{service}`, not `elasticloadbalancing`"
            ));
        }
        if !is_region(region) {
            return Err(format!("`{region}` is not a region such as us-east-1"));
        }
        let expected_partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        if partition != expected_partition {
            return Err(format!(
                "region `{region}` is in partition `{expected_partition}`, not `{partition}`"
            ));
        }
        if !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("`{account}` is not a 12-digit account id"));
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let id_count = if resource == "listener-rule" { 3 } else { 2 };
        let kind = segments.first().copied().unwrap_or_default();
        if kind != resource {
            return Err(format!("its resource is a `{kind}`, not a `{resource}`"));
        }
        if segments.len() != 3 + id_count {
            return Err(format!(
                "`{rest}` does not have the {} `/`-separated parts of a {resource}",
                3 + id_count
            ));
        }
        let lb_type = segments[1];
        if !matches!(lb_type, "app" | "net") {
            return Err(format!(
                "`{lb_type}` is not a load balancer type: `app` (ALB) or `net` (NLB)"
            ));
        }
        let lb_name = segments[2];
        if !is_lb_name(lb_name) {
            return Err(format!(
                "`{lb_name}` is not a load balancer name: 1-32 of a-z, A-Z, 0-9 and -, with no - at \
                 either end"
            ));
        }
        let ids = segments[3..].to_vec();
        if let Some(bad) = ids.iter().find(|id| !is_elb_id(id)) {
            return Err(format!("`{bad}` is not an id of 16 lower-case hex digits"));
        }
        Ok(Self {
            partition,
            region,
            account,
            lb_type,
            lb_name,
            ids,
        })
    }

    /// Whether this rule ARN is of the listener `listener`.
    fn same_listener(&self, listener: &ElbArn<'_>) -> bool {
        self.partition == listener.partition
            && self.region == listener.region
            && self.account == listener.account
            && self.lb_type == listener.lb_type
            && self.lb_name == listener.lb_name
            && self.ids.len() >= 2
            && listener.ids.len() >= 2
            && self.ids[..2] == listener.ids[..2]
    }
}

fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn is_lb_name(n: &str) -> bool {
    (1..=32).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

fn is_elb_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `^[a-z][a-zA-Z0-9_]*$`, GetMetricData's query ids.
fn is_query_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Letters, digits, `_` and `-`, starting with a letter or `_`.
fn is_arg_name(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `Sum`, `Average`, `Maximum`, `Minimum`, `SampleCount`, or `p` and a number in 0..=100.
fn is_stat(s: &str) -> bool {
    if matches!(s, "Sum" | "Average" | "Maximum" | "Minimum" | "SampleCount") {
        return true;
    }
    let Some(n) = s.strip_prefix('p') else {
        return false;
    };
    let digits = n.bytes().filter(u8::is_ascii_digit).count();
    let dots = n.bytes().filter(|b| *b == b'.').count();
    digits > 0
        && digits + dots == n.len()
        && dots <= 1
        && !n.starts_with('.')
        && !n.ends_with('.')
        && n.parse::<f64>().is_ok_and(|p| (0.0..=100.0).contains(&p))
}

/// `200`, `200,202`, `200-399`, each code in `lo..=hi`.
fn check_matcher(m: &str, lo: u16, hi: u16) -> Result<(), String> {
    let shape = format!("`{m}` is not an HTTP code matcher such as 200, 200,202 or 200-399");
    let code = |s: &str| -> Result<u16, String> {
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape.clone());
        }
        let c: u16 = s.parse().map_err(|_| shape.clone())?;
        if (lo..=hi).contains(&c) {
            Ok(c)
        } else {
            Err(format!(
                "code {c} is not in {lo}-{hi}, the codes this health check accepts"
            ))
        }
    };
    for item in m.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (code(a)?, code(b)?);
                if a > b {
                    return Err(format!("`{item}` is not a range: {a} is more than {b}"));
                }
            }
            None => {
                code(item)?;
            }
        }
    }
    Ok(())
}

/// Type names that cel resolves as identifiers, as in `type(result) == double`.
const CEL_TYPE_NAMES: [&str; 10] = [
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// The free variables of a CEL expression that are neither `result` nor `args`, and the fields of
/// `args` it reads.
#[derive(Debug, Default)]
struct References {
    variables: BTreeSet<String>,
    args: BTreeSet<String>,
}

impl References {
    fn collect<'e>(&mut self, e: &'e cel::IdedExpr, bound: &mut Vec<&'e str>) {
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => {
                if !(name == "result"
                    || name == "args"
                    || CEL_TYPE_NAMES.contains(&name.as_str())
                    || name.starts_with('@')
                    || bound.contains(&name.as_str()))
                {
                    self.variables.insert(name.clone());
                }
            }
            Expr::Select(s) => {
                if let Expr::Ident(name) = &s.operand.expr
                    && name == "args"
                    && !bound.contains(&"args")
                {
                    self.args.insert(s.field.clone());
                }
                self.collect(&s.operand, bound);
            }
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    self.collect(t, bound);
                }
                for a in &c.args {
                    self.collect(a, bound);
                }
            }
            Expr::List(l) => {
                for el in &l.elements {
                    self.collect(el, bound);
                }
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    self.entry(&entry.expr, bound);
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    self.entry(&entry.expr, bound);
                }
            }
            Expr::Comprehension(c) => {
                self.collect(&c.iter_range, bound);
                self.collect(&c.accu_init, bound);
                let depth = bound.len();
                bound.push(&c.iter_var);
                if let Some(v2) = &c.iter_var2 {
                    bound.push(v2);
                }
                bound.push(&c.accu_var);
                self.collect(&c.loop_cond, bound);
                self.collect(&c.loop_step, bound);
                self.collect(&c.result, bound);
                bound.truncate(depth);
            }
        }
    }

    fn entry<'e>(&mut self, e: &'e EntryExpr, bound: &mut Vec<&'e str>) {
        match e {
            EntryExpr::StructField(f) => self.collect(&f.value, bound),
            EntryExpr::MapEntry(m) => {
                self.collect(&m.key, bound);
                self.collect(&m.value, bound);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_arns() {
        let l = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
        let a = ElbArn::parse(l, "listener").unwrap();
        assert_eq!(a.lb_type, "app");
        assert_eq!(a.lb_name, "web");
        assert_eq!(a.ids, ["50dc6c495c0c9188", "f2f7dc8efc522ab2"]);
        let r = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
        assert!(ElbArn::parse(r, "listener-rule").unwrap().same_listener(&a));
        assert!(ElbArn::parse(r, "listener").is_err());
        assert!(ElbArn::parse(l, "listener-rule").is_err());
        for bad in [
            "",
            "arn",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/gwy/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/-web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50DC6C495C0C9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:12345678901:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:cn-north-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:ec2:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
        ] {
            assert!(ElbArn::parse(bad, "listener").is_err(), "{bad}");
        }
        for good in [
            "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener/net/a/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:listener/app/A-1/50dc6c495c0c9188/f2f7dc8efc522ab2",
        ] {
            assert!(ElbArn::parse(good, "listener").is_ok(), "{good}");
        }
    }

    #[test]
    fn stats() {
        for good in [
            "Sum",
            "Average",
            "Maximum",
            "Minimum",
            "SampleCount",
            "p0",
            "p50",
            "p99",
            "p99.9",
            "p100",
        ] {
            assert!(is_stat(good), "{good}");
        }
        for bad in [
            "sum", "p", "p101", "p-1", "p99.", "p.9", "p9.9.9", "pinf", "pNaN", "tm99", "", "p 99",
        ] {
            assert!(!is_stat(bad), "{bad}");
        }
    }

    #[test]
    fn matchers() {
        assert!(check_matcher("200", 200, 499).is_ok());
        assert!(check_matcher("200,202", 200, 499).is_ok());
        assert!(check_matcher("200-399", 200, 499).is_ok());
        assert!(check_matcher("200-299,404", 200, 499).is_ok());
        assert!(check_matcher("503", 200, 599).is_ok());
        for bad in [
            "", "2xx", "200-", "200,", "399-200", "20", "2000", "200 ", "100", "503",
        ] {
            assert!(check_matcher(bad, 200, 499).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_and_names() {
        assert!(is_query_id("m1"));
        assert!(is_query_id("errorRate_5xx"));
        assert!(!is_query_id("M1"));
        assert!(!is_query_id("1m"));
        assert!(!is_query_id("a-b"));
        assert!(!is_query_id(""));
        assert!(is_region("us-east-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(is_region("ap-southeast-4"));
        assert!(!is_region("us-east"));
        assert!(!is_region("US-EAST-1"));
        assert!(!is_region("useast-1"));
    }

    fn refs(expr: &str) -> References {
        let p = cel::Program::compile(expr).unwrap();
        let mut r = References::default();
        r.collect(p.expression(), &mut Vec::new());
        r
    }

    #[test]
    fn cel_references() {
        assert!(refs("result < 0.01").variables.is_empty());
        assert!(
            refs("result < double(args.threshold)")
                .args
                .contains("threshold")
        );
        assert!(refs("[1, 2].all(x, x < result)").variables.is_empty());
        assert!(
            refs("{'a': result}.exists(k, k == 'a')")
                .variables
                .is_empty()
        );
        assert!(refs("type(result) == double").variables.is_empty());
        let r = refs("foo > 1 && [1].exists(x, x == bar)");
        assert_eq!(
            r.variables.iter().map(String::as_str).collect::<Vec<_>>(),
            ["bar", "foo"]
        );
    }
}
