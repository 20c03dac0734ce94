//! `successCondition` and `failureCondition`: CEL expressions over `result`.
//!
//! A metric's conditions are compiled once ([`Compiled::new`]) and evaluated for every sample
//! ([`Condition::evaluate`]). `result` is bound to what the provider measured:
//!
//! - a single value is a CEL `double`: `result < 0.01`, `result >= 0.95`;
//! - a series is a CEL `list(double)`: `result[0] < 0.01`, `size(result) >= 3`,
//!   `result.all(x, x < 0.05)`, `result.exists(x, x > 1.0)`.
//!
//! CEL compares a `double` with an integer literal (`result < 1` works), but its arithmetic does
//! not mix them: write `result * 100.0`, not `result * 100`.
//!
//! A condition must give a `bool`; anything else is an error that names the metric and quotes
//! the expression. A value that is not a finite number (NaN, ±infinity) is never handed to the
//! expression: the sample is an error (see [`ConditionError::NotFinite`]), so a broken query
//! can neither pass nor fail a rollout silently.

use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::{Context, Env, ExecutionError, Program, Value};
use serde::{Deserialize, Serialize};

use crate::spec::{AnalysisTemplate, Metric};

/// What a provider measured for one sample: one number, or a series of numbers.
///
/// In JSON: a number (`0.004`) or an array of numbers (`[0.004, 0.01]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MeasuredValue {
    /// One value; `result` is a CEL `double`.
    Number(f64),
    /// Several values (for example one per minute); `result` is a CEL `list(double)`.
    Series(Vec<f64>),
}

impl MeasuredValue {
    /// Whether the value holds no number at all (an empty series).
    pub fn is_empty(&self) -> bool {
        matches!(self, MeasuredValue::Series(v) if v.is_empty())
    }

    /// The first value that is not a finite number, if any.
    pub fn first_non_finite(&self) -> Option<f64> {
        match self {
            MeasuredValue::Number(x) => (!x.is_finite()).then_some(*x),
            MeasuredValue::Series(v) => v.iter().copied().find(|x| !x.is_finite()),
        }
    }

    fn to_cel(&self) -> Value {
        match self {
            MeasuredValue::Number(x) => Value::Float(*x),
            MeasuredValue::Series(v) => {
                Value::List(Arc::new(v.iter().copied().map(Value::Float).collect()))
            }
        }
    }
}

impl From<f64> for MeasuredValue {
    fn from(x: f64) -> Self {
        MeasuredValue::Number(x)
    }
}

impl From<Vec<f64>> for MeasuredValue {
    fn from(v: Vec<f64>) -> Self {
        MeasuredValue::Series(v)
    }
}

impl From<&[f64]> for MeasuredValue {
    fn from(v: &[f64]) -> Self {
        MeasuredValue::Series(v.to_vec())
    }
}

/// Shows a number with up to 4 significant digits, and a series as `[a, b, …]` (at most 8
/// values, then how many there are).
impl fmt::Display for MeasuredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeasuredValue::Number(x) => f.write_str(&short_number(*x)),
            MeasuredValue::Series(v) => {
                const SHOWN: usize = 8;
                let parts: Vec<String> = v.iter().take(SHOWN).map(|x| short_number(*x)).collect();
                if v.len() > SHOWN {
                    write!(f, "[{}, … ({} values)]", parts.join(", "), v.len())
                } else {
                    write!(f, "[{}]", parts.join(", "))
                }
            }
        }
    }
}

/// A number for messages: up to 4 significant digits, no trailing zeros, `NaN`, `inf`, `-inf`.
pub(crate) fn short_number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let magnitude = x.abs().log10().floor() as i32;
    if !(-4..15).contains(&magnitude) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// CEL's standard environment, built once: building it registers every standard function,
/// which costs far more than evaluating a condition.
fn stdlib() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib()))
}

/// Which of a metric's two conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConditionKind {
    /// `successCondition`.
    Success,
    /// `failureCondition`.
    Failure,
}

impl fmt::Display for ConditionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConditionKind::Success => "successCondition",
            ConditionKind::Failure => "failureCondition",
        })
    }
}

/// Why a condition could not be compiled or evaluated. Every message names the metric and
/// quotes the expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    /// The expression is not CEL.
    #[error("metric {metric}: {kind} {expression:?} does not compile: {message}")]
    Compile {
        /// The metric's name.
        metric: String,
        /// Which condition.
        kind: ConditionKind,
        /// The expression as written.
        expression: String,
        /// CEL's message, with the line and column.
        message: String,
    },
    /// The expression uses a name other than `result` (a typo such as `resutl`).
    #[error(
        "metric {metric}: {kind} {expression:?} refers to `{name}`, but only `result` is defined"
    )]
    UnknownName {
        /// The metric's name.
        metric: String,
        /// Which condition.
        kind: ConditionKind,
        /// The expression as written.
        expression: String,
        /// The unknown name.
        name: String,
    },
    /// The expression failed on this value (`result[0]` on a number, an index past the end of
    /// the series, a type mismatch such as `result + 1`, …).
    #[error("metric {metric}: {kind} {expression:?} failed on result {value}: {message}")]
    Evaluate {
        /// The metric's name.
        metric: String,
        /// Which condition.
        kind: ConditionKind,
        /// The expression as written.
        expression: String,
        /// The value, as shown in messages.
        value: String,
        /// CEL's message.
        message: String,
    },
    /// The expression gave something other than a bool.
    #[error("metric {metric}: {kind} {expression:?} gave {got}, not a bool (true or false)")]
    NotBool {
        /// The metric's name.
        metric: String,
        /// Which condition.
        kind: ConditionKind,
        /// The expression as written.
        expression: String,
        /// What it gave, such as `double 0.5`.
        got: String,
    },
    /// The measured value holds NaN or ±infinity (a division by zero in a query, for example).
    #[error(
        "metric {metric}: the measured value {value} is not a finite number ({bad}); a sample that \
         cannot be judged is an error, never a pass"
    )]
    NotFinite {
        /// The metric's name.
        metric: String,
        /// The whole value, as shown in messages.
        value: String,
        /// The first non-finite number: `NaN`, `inf` or `-inf`.
        bad: String,
    },
}

/// One compiled condition of one metric.
#[derive(Debug)]
pub struct Condition {
    metric: String,
    kind: ConditionKind,
    expression: String,
    program: Program,
}

impl Condition {
    /// Compiles `expression` as the `kind` condition of metric `metric`.
    ///
    /// Besides syntax, it catches names other than `result` where it can (it runs the
    /// expression once on `0.0` and once on `[0.0]`; a name behind a short-circuit `||` may
    /// still only show when a sample is evaluated).
    pub fn compile(
        metric: &str,
        kind: ConditionKind,
        expression: &str,
    ) -> Result<Self, ConditionError> {
        let program = stdlib()
            .compile(expression)
            .map_err(|e| ConditionError::Compile {
                metric: metric.to_string(),
                kind,
                expression: expression.to_string(),
                message: e
                    .errors
                    .iter()
                    .map(|p| format!("at {}:{}: {}", p.pos.0, p.pos.1, p.msg))
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        let condition = Condition {
            metric: metric.to_string(),
            kind,
            expression: expression.to_string(),
            program,
        };
        // Probe with both shapes of `result`: a typo'd name fails for both.
        let probes = [MeasuredValue::Number(0.0), MeasuredValue::Series(vec![0.0])];
        let unknown: Vec<Option<String>> = probes
            .iter()
            .map(|probe| match condition.run(probe) {
                Err(ExecutionError::UndeclaredReference(name)) if name.as_str() != "result" => {
                    Some(name.to_string())
                }
                _ => None,
            })
            .collect();
        if let [Some(name), Some(_)] = unknown.as_slice() {
            return Err(ConditionError::UnknownName {
                metric: metric.to_string(),
                kind,
                expression: expression.to_string(),
                name: name.clone(),
            });
        }
        Ok(condition)
    }

    /// The metric this condition belongs to.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// `successCondition` or `failureCondition`.
    pub fn kind(&self) -> ConditionKind {
        self.kind
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn run(&self, value: &MeasuredValue) -> Result<Value, ExecutionError> {
        let mut context = Context::with_env(Arc::clone(stdlib()));
        context.add_variable_from_value("result", value.to_cel());
        self.program.execute(&context)
    }

    /// Evaluates the condition with `result` bound to `value`.
    ///
    /// A value holding NaN or ±infinity is [`ConditionError::NotFinite`] without running the
    /// expression; a result other than a bool is [`ConditionError::NotBool`].
    pub fn evaluate(&self, value: &MeasuredValue) -> Result<bool, ConditionError> {
        if let Some(bad) = value.first_non_finite() {
            return Err(ConditionError::NotFinite {
                metric: self.metric.clone(),
                value: value.to_string(),
                bad: short_number(bad),
            });
        }
        match self.run(value) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(ConditionError::NotBool {
                metric: self.metric.clone(),
                kind: self.kind,
                expression: self.expression.clone(),
                got: describe(&other),
            }),
            Err(e) => Err(ConditionError::Evaluate {
                metric: self.metric.clone(),
                kind: self.kind,
                expression: self.expression.clone(),
                value: value.to_string(),
                message: e.to_string(),
            }),
        }
    }
}

/// A CEL value in words, for [`ConditionError::NotBool`].
fn describe(v: &Value) -> String {
    match v {
        Value::Float(x) => format!("double {}", short_number(*x)),
        Value::Int(i) => format!("int {i}"),
        Value::UInt(u) => format!("uint {u}"),
        Value::String(s) => format!("string {:?}", s.as_str()),
        Value::List(l) => format!("a list of {} values", l.len()),
        Value::Map(_) => "a map".to_string(),
        Value::Null => "null".to_string(),
        other => format!("{other:?}"),
    }
}

/// A metric's conditions, compiled once and evaluated for every sample.
#[derive(Debug)]
pub struct Compiled {
    metric: String,
    success: Option<Condition>,
    failure: Option<Condition>,
}

/// Compiles one optional condition; an empty or blank string counts as absent.
fn compile_optional(
    metric: &str,
    kind: ConditionKind,
    text: &Option<String>,
) -> Result<Option<Condition>, ConditionError> {
    text.as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| Condition::compile(metric, kind, t))
        .transpose()
}

impl Compiled {
    /// Compiles the metric's `successCondition` and `failureCondition` (either may be absent;
    /// an empty or blank string counts as absent).
    pub fn new(metric: &Metric) -> Result<Self, ConditionError> {
        Ok(Compiled {
            metric: metric.name.clone(),
            success: compile_optional(
                &metric.name,
                ConditionKind::Success,
                &metric.success_condition,
            )?,
            failure: compile_optional(
                &metric.name,
                ConditionKind::Failure,
                &metric.failure_condition,
            )?,
        })
    }

    /// The metric's name.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The compiled `successCondition`, if the metric has one.
    pub fn success(&self) -> Option<&Condition> {
        self.success.as_ref()
    }

    /// The compiled `failureCondition`, if the metric has one.
    pub fn failure(&self) -> Option<&Condition> {
        self.failure.as_ref()
    }
}

/// Compiles every metric of a template; on failure, every error (not only the first), in the
/// order of the metrics.
pub fn compile_template(template: &AnalysisTemplate) -> Result<Vec<Compiled>, Vec<ConditionError>> {
    let mut compiled = Vec::with_capacity(template.metrics.len());
    let mut errors = Vec::new();
    for metric in &template.metrics {
        let success = compile_optional(
            &metric.name,
            ConditionKind::Success,
            &metric.success_condition,
        );
        let failure = compile_optional(
            &metric.name,
            ConditionKind::Failure,
            &metric.failure_condition,
        );
        match (success, failure) {
            (Ok(success), Ok(failure)) => compiled.push(Compiled {
                metric: metric.name.clone(),
                success,
                failure,
            }),
            (success, failure) => errors.extend(success.err().into_iter().chain(failure.err())),
        }
    }
    if errors.is_empty() {
        Ok(compiled)
    } else {
        Err(errors)
    }
}
