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

use crate::cell::Cell;
use crate::duration::{format_duration, parse_duration};
use crate::spec::{
    AnalysisTemplate, Arg, CanaryStep, CellSpec, CloudWatchProvider, DatadogProvider, Header,
    HealthCheck, JudgePrometheus, LambdaProvider, LoadBalancerKind, Metric, MetricStat, ParseError,
    PrometheusProvider, Registration, TargetType, TemplateRef, WebMethod, WebProvider,
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
/// The longest time-out a Prometheus or web metric's request may have (check-metrics has 60 s).
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(25);
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
pub fn parse_and_validate(text: &str) -> Result<Cell, SpecError> {
    Ok(check_document(&read_document(text)?)?)
}

/// Reads a spec from a JSON value (an API request body) and validates it, reporting every error
/// at once ([`check_document`]).
///
/// # Errors
///
/// [`SpecError::Invalid`] with every error of the value, shape and rules.
pub fn validate_value(v: &serde_json::Value) -> Result<Cell, SpecError> {
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

/// Checks a spec document and returns the [`Cell`], or every error it has at once: its shape
/// against the spec's JSON Schema ([`crate::spec::json_schema`]: unknown and missing fields,
/// wrong types, anywhere in the document; serde alone stops at the first), what the schema
/// cannot say (a `u16` port of 70000: serde's error, with its path), and every rule of
/// [`validate`] — the rules also when the shape is wrong, on a copy whose wrong fields are
/// replaced by placeholders (`repair`), leaving out what they say of those fields.
///
/// # Errors
///
/// [`ValidationErrors`], never empty, each naming its field's path (`canary.steps[1].setWeight`).
pub fn check_document(v: &serde_json::Value) -> Result<Cell, ValidationErrors> {
    /// Rounds of repair: each fixes the fields in error so far (a serde error shows one at a time).
    const ROUNDS: usize = 8;
    let mut reported = shape_errors(v);
    let mut to_repair = reported.clone();
    let mut doc = v.clone();
    for _ in 0..ROUNDS {
        if !to_repair.is_empty() {
            match repair::repaired(&doc, &to_repair) {
                Some(fixed) => doc = fixed,
                None => break,
            }
            // What is still wrong comes from the repair (a placeholder missing), not the user.
            to_repair = shape_errors(&doc);
            if !to_repair.is_empty() {
                continue;
            }
        }
        match serde_path_to_error::deserialize::<_, CellSpec>(&doc) {
            Ok(spec) => {
                match spec.validate() {
                    Ok(cell) if reported.is_empty() => return Ok(cell),
                    Ok(_) => {}
                    Err(rules) => {
                        let rules: Vec<FieldError> = rules
                            .errors
                            .into_iter()
                            .filter(|e| !repair::under(&e.path, &reported))
                            .collect();
                        reported.extend(rules);
                    }
                }
                break;
            }
            Err(e) => {
                let path = e.path().to_string();
                let error = FieldError {
                    path: if path == "." { String::new() } else { path },
                    message: e.into_inner().to_string(),
                };
                if reported.contains(&error) {
                    break;
                }
                reported.push(error.clone());
                to_repair = vec![error];
            }
        }
    }
    Err(ValidationErrors { errors: reported })
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
/// as clap suggests options): first among the fields of the object it is in (the instance
/// pointer `at`, walked through the spec's schema), else among every field name of the schema.
fn did_you_mean(field: &str, at: &str) -> Option<String> {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    static NAMES: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(crate::spec::json_schema);
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
        collect(schema, &mut out);
        out
    });
    let closest = |candidates: &mut dyn Iterator<Item = &String>| {
        candidates
            .map(|n| (strsim::jaro_winkler(field, n), n))
            .filter(|(score, _)| *score >= 0.9)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n.clone())
    };
    let here = fields_at(schema, at);
    closest(&mut here.iter()).or_else(|| closest(&mut names.iter()))
}

/// The property names the schema allows at instance pointer `at` (every branch of a `oneOf` /
/// `anyOf` / `allOf`, `$ref`s followed); none when the pointer leads nowhere known.
fn fields_at(schema: &serde_json::Value, at: &str) -> BTreeSet<String> {
    use serde_json::Value;
    fn resolve<'a>(root: &'a Value, node: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
        if depth > 16 {
            return;
        }
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            if let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                resolve(root, target, out, depth + 1);
            }
            return;
        }
        out.push(node);
        for key in ["allOf", "anyOf", "oneOf"] {
            for branch in node
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                resolve(root, branch, out, depth + 1);
            }
        }
    }
    let mut nodes = Vec::new();
    resolve(schema, schema, &mut nodes, 0);
    for token in at.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        let mut next = Vec::new();
        for n in &nodes {
            let child = if token.bytes().all(|b| b.is_ascii_digit()) {
                n.get("items")
            } else {
                n.get("properties").and_then(|p| p.get(&token))
            };
            if let Some(c) = child {
                resolve(schema, c, &mut next, 0);
            }
        }
        nodes = next;
    }
    nodes
        .iter()
        .filter_map(|n| n.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.keys().cloned())
        .collect()
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
                let message = match did_you_mean(field, e.instance_path().as_str()) {
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

/// Checks a spec and returns every error found, in the order found. [`CellSpec::validate`]
/// does the same and gives the [`Cell`] to work with.
///
/// # Errors
///
/// [`ValidationErrors`], never empty, when the spec is invalid.
pub fn validate(spec: &CellSpec) -> Result<(), ValidationErrors> {
    spec.clone().validate().map(drop)
}

impl CellSpec {
    /// Checks the spec and turns it into a [`Cell`]: its ARNs, durations, stickiness and plan
    /// read once, for every function to use as they are. Every error is reported, in the order
    /// found, each at its field's path.
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`], never empty, when the spec is invalid.
    pub fn validate(self) -> Result<Cell, ValidationErrors> {
        let mut v = Validator {
            spec: &self,
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
        v.max_attempts();
        v.windows();
        v.argocd();
        v.retire();
        v.size();
        if !v.errors.is_empty() {
            return Err(ValidationErrors { errors: v.errors });
        }
        let cell = Cell::read(self).map_err(|e| ValidationErrors { errors: vec![e] })?;
        match history_error(&cell) {
            Some(e) => Err(ValidationErrors { errors: vec![e] }),
            None => Ok(cell),
        }
    }
}

/// The plan must fit Step Functions' history quota ([`crate::history`]); checked on a spec with
/// no other error (the plan of a broken spec says nothing).
fn history_error(cell: &Cell) -> Option<FieldError> {
    use crate::history::{ReadinessPlan, STEPS_BUDGET, budget, step_costs};
    let plan = cell.plan();
    let readiness = ReadinessPlan::for_timeout(cell.readiness_timeout());
    let samples = |i| crate::decision::max_samples(cell, i);
    let b = budget(plan, &readiness, samples);
    if b.steps <= STEPS_BUDGET {
        return None;
    }
    let costliest = step_costs(plan, samples)
        .into_iter()
        .enumerate()
        .map(|(i, cost)| (cost, i))
        .max();
    let (cost, i) = costliest.unwrap_or_default();
    let path = if i < cell.canary.steps.len() {
        format!("canary.steps[{i}]")
    } else {
        "canary.steps".to_string()
    };
    Some(FieldError {
        path,
        message: format!(
            "one execution of these steps could write {} Step Functions history events, more \
             than the {STEPS_BUDGET} okra keeps of the 25,000 an execution may have (this step \
             alone: {cost}); take fewer analysis samples (count), a longer background \
             analysis interval, a shorter timed pause, or fewer steps",
            b.steps
        ),
    })
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

    fn max_attempts(&mut self) {
        let n = self.spec.max_attempts;
        let max = crate::attempts::MAX_MAX_ATTEMPTS;
        if !(1..=max).contains(&n) {
            self.push(
                "maxAttempts",
                format!("{n} is not in 1..={max}: the automatic attempts at a version before it is held as failing"),
            );
        }
    }

    /// Windows that read, and open at least once in the 400 days from 2026-01-01.
    fn windows(&mut self) {
        let Some(spec) = &self.spec.windows else {
            return;
        };
        match crate::windows::Windows::read(spec) {
            Err(errors) => {
                for (path, message) in errors {
                    self.push(&path, message);
                }
            }
            Ok(w) => {
                let from = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
                if let crate::windows::Gate::Closed { opens: None } = w.gate(from) {
                    self.push(
                        "windows",
                        "these windows never open (not in the 400 days from 2026-01-01): no \
                         rollout could ever move traffic; allow more, or deny less",
                    );
                }
            }
        }
    }

    fn retire(&mut self) {
        if let Err(errors) = crate::retire::Policy::read(&self.spec.retire) {
            for (path, message) in errors {
                self.push(path, message);
            }
        }
    }

    /// The Argo CD block: names Kubernetes and EKS accept, labels as Kubernetes allows them.
    fn argocd(&mut self) {
        use crate::argocd::{check_label_key, check_label_value, check_namespace};
        use crate::spec::ArgoCdMode;
        let Some(a) = &self.spec.argocd else {
            return;
        };
        if let Err(e) = crate::arn::check_eks_cluster_name(&a.hub) {
            self.push("argocd.hub", e);
        }
        if let Err(e) = check_namespace(&a.namespace) {
            self.push("argocd.namespace", e);
        }
        if a.project.is_empty() {
            self.push(
                "argocd.project",
                "must not be empty (Argo CD's default project is `default`)",
            );
        }
        if let Some(role) = &a.role_arn {
            if a.mode == ArgoCdMode::EksCapability {
                self.push(
                    "argocd.roleArn",
                    "applies to `mode: selfManaged` only: the EKS capability reaches clusters with \
                     its own capability role (give it an access entry with `accessEntry`)",
                );
            } else if let Err(e) = crate::arn::check_role_arn(role) {
                self.push("argocd.roleArn", e);
            }
        }
        for (k, v) in &a.labels {
            if let Err(e) = check_label_key(k).and_then(|()| check_label_value(v)) {
                self.push(format!("argocd.labels.{k}"), e);
            }
            if k.starts_with("okra.io/")
                || k == crate::argocd::LABEL_SECRET_TYPE
                || k == crate::argocd::LABEL_MANAGED_BY
            {
                self.push(
                    format!("argocd.labels.{k}"),
                    "is okra's own label: it is set on every secret okra writes",
                );
            }
        }
        for k in a.annotations.keys() {
            if let Err(e) = check_label_key(k) {
                self.push(format!("argocd.annotations.{k}"), e);
            }
        }
        if let Some(entry) = &a.access_entry {
            match entry.principal_arn.as_ref().or(a.role_arn.as_ref()) {
                None => self.push(
                    "argocd.accessEntry.principalArn",
                    "is required without `argocd.roleArn`: the IAM principal Argo CD reaches the \
                     clusters as (the capability's role for `mode: eksCapability`)",
                ),
                Some(p) => {
                    if let Err(e) = crate::arn::check_role_arn(p) {
                        self.push("argocd.accessEntry.principalArn", e);
                    }
                }
            }
            let policy = entry.policy.rsplit('/').next().unwrap_or_default();
            if !policy.starts_with("AmazonEKS") || !policy.ends_with("Policy") {
                self.push(
                    "argocd.accessEntry.policy",
                    format!(
                        "`{}` is not an EKS access policy (such as AmazonEKSClusterAdminPolicy, \
                         AmazonEKSAdminPolicy, AmazonEKSEditPolicy)",
                        entry.policy
                    ),
                );
            }
            for (i, ns) in entry.namespaces.iter().enumerate() {
                if let Err(e) = check_namespace(ns) {
                    self.push(format!("argocd.accessEntry.namespaces[{i}]"), e);
                }
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
}

mod canary;
mod ingress;
mod repair;
mod syntax;

use syntax::*;
