//! The answer of one Lambda invocation.

use serde_json::Value;

/// What an invocation through the Lambda Invoke API returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function succeeded with this payload (`null` for an empty one).
    Ok(Value),
    /// The function failed: the runtime's error payload, e.g. a `lambda_runtime::Diagnostic`.
    /// A function that does not answer within its time-out is reported as `Sandbox.Timedout`, as
    /// Lambda does.
    FunctionError {
        /// `errorType`: what Step Functions' `ErrorEquals` matches.
        error_type: String,
        /// `errorMessage`.
        error_message: String,
    },
}

impl Invocation {
    /// True for [`Invocation::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }

    /// The payload, or an error describing the function error.
    pub fn into_value(self) -> anyhow::Result<Value> {
        match self {
            Self::Ok(v) => Ok(v),
            Self::FunctionError {
                error_type,
                error_message,
            } => Err(anyhow::anyhow!(
                "function error {error_type}: {error_message}"
            )),
        }
    }

    /// The error type of a function error.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Self::Ok(_) => None,
            Self::FunctionError { error_type, .. } => Some(error_type),
        }
    }

    /// The error message of a function error.
    pub fn error_message(&self) -> Option<&str> {
        match self {
            Self::Ok(_) => None,
            Self::FunctionError { error_message, .. } => Some(error_message),
        }
    }

    /// Reads an Invoke API answer: AWS and the local Lambda service say 200 with
    /// `X-Amz-Function-Error` for a function error; cargo lambda watch (an attached stack)
    /// says 500 with the error payload, and 408 when its `--timeout` ran out. `None` when the answer is no invocation result at all (404, ...).
    pub(crate) fn from_http(status: u16, function_error: Option<&str>, body: &str) -> Option<Self> {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let error_payload = |fallback_type: &str| {
            let obj = parsed.as_ref().and_then(Value::as_object);
            let error_type = obj
                .and_then(|o| o.get("errorType"))
                .and_then(Value::as_str)
                .unwrap_or(fallback_type)
                .to_owned();
            let error_message = obj
                .and_then(|o| o.get("errorMessage"))
                .and_then(Value::as_str)
                .map_or_else(|| body.to_owned(), str::to_owned);
            Self::FunctionError {
                error_type,
                error_message,
            }
        };
        match (status, function_error) {
            (200, None) => Some(Self::Ok(if body.trim().is_empty() {
                Value::Null
            } else {
                parsed?
            })),
            (_, Some(kind)) => Some(error_payload(kind)),
            (500, None)
                if parsed
                    .as_ref()
                    .and_then(|v| v.get("errorType"))
                    .is_some_and(Value::is_string) =>
            {
                Some(error_payload("Unhandled"))
            }
            (408, None) => Some(Self::FunctionError {
                error_type: "Sandbox.Timedout".into(),
                error_message: "the function did not answer within cargo lambda watch's --timeout"
                    .into(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_watch_answers() {
        assert_eq!(
            Invocation::from_http(200, None, r#"{"a":1}"#),
            Some(Invocation::Ok(json!({"a":1})))
        );
        assert_eq!(
            Invocation::from_http(200, None, ""),
            Some(Invocation::Ok(Value::Null))
        );
        assert_eq!(
            Invocation::from_http(500, None, r#"{"errorType":"E","errorMessage":"m"}"#),
            Some(Invocation::FunctionError {
                error_type: "E".into(),
                error_message: "m".into()
            })
        );
        assert_eq!(
            Invocation::from_http(200, Some("Unhandled"), "boom"),
            Some(Invocation::FunctionError {
                error_type: "Unhandled".into(),
                error_message: "boom".into()
            })
        );
        assert_eq!(
            Invocation::from_http(408, None, "").and_then(|i| i.error_type().map(str::to_owned)),
            Some("Sandbox.Timedout".into())
        );
        assert_eq!(Invocation::from_http(404, None, "{}"), None);
        assert_eq!(Invocation::from_http(500, None, "internal"), None);
    }
}
