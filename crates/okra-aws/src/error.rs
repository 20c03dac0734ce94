//! The one error type of every okra function.
//!
//! Each variant has a stable `error_type` name: the Lambda runtime reports it as the function
//! error's `errorType`, and the state machine's `Retry` and `Catch` match on it. Renaming one is
//! a breaking change of `statemachine/*.asl.json`.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use lambda_runtime::Diagnostic;
pub use okra_core::vocab::ErrorType;

/// What can go wrong in an okra function.
#[derive(Debug, thiserror::Error)]
pub enum OkraError {
    /// The input event is not what the function takes; nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The cell spec does not validate; nothing was written.
    #[error("invalid cell spec:\n{0}")]
    InvalidSpec(String),
    /// AWS throttled the call (retry with backoff).
    #[error("throttled by AWS: {0}")]
    Throttled(String, #[source] Option<Cause>),
    /// AWS did not answer, or answered 5xx (retry).
    #[error("AWS unavailable: {0}")]
    AwsUnavailable(String, #[source] Option<Cause>),
    /// The listener does not exist.
    #[error("listener not found: {0}")]
    ListenerNotFound(String, #[source] Option<Cause>),
    /// The listener rule does not exist.
    #[error("listener rule not found: {0}")]
    RuleNotFound(String, #[source] Option<Cause>),
    /// A target group does not exist.
    #[error("target group not found: {0}")]
    TargetGroupNotFound(String, #[source] Option<Cause>),
    /// Somebody else changed the listener since okra's last step; okra does not overwrite it.
    #[error("drift detected: {0}")]
    DriftDetected(String),
    /// After a write, AWS does not show the weights okra wrote (retry re-reads and re-writes).
    #[error("verification failed: {0}")]
    VerificationFailed(String),
    /// A canary target group is below the health gate before a weight change (its cluster is
    /// gone, or its targets fail their checks): the step fails and the rollout rolls back.
    #[error("canary unhealthy: {0}")]
    CanaryUnhealthy(String),
    /// The cell's registration mode finds nothing to register for a cluster (no managed node
    /// group to attach): waiting for the readiness gate could only time out.
    #[error("nothing to register: {0}")]
    NothingToRegister(String),
    /// The weights asked for cannot be written (AWS limits, empty sides).
    #[error("weights not possible: {0}")]
    WeightsNotPossible(String),
    /// The listener's owned action is not a forward action okra can change.
    #[error("unsupported listener action: {0}")]
    UnsupportedAction(String),
    /// A conditional write lost a race, or the lock is held by another execution.
    #[error("conflict: {0}")]
    Conflict(String, #[source] Option<Cause>),
    /// The cell, rollout or execution asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// AWS said no for lack of permissions.
    #[error("access denied: {0}")]
    AccessDenied(String, #[source] Option<Cause>),
    /// Any other AWS error.
    #[error("AWS error {code}: {message}")]
    Aws {
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
        /// The SDK's error, when the error is one.
        #[source]
        cause: Option<Cause>,
    },
}

/// The error an okra error comes from: the SDK's (a service error with its response, a timeout,
/// a connection that failed with its own chain), or a parser's; `None` for errors okra finds
/// itself.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

impl OkraError {
    /// The stable name the state machine matches ([`ErrorType`], the one vocabulary).
    pub fn kind(&self) -> ErrorType {
        match self {
            Self::InvalidInput(_) => ErrorType::InvalidInput,
            Self::InvalidSpec(_) => ErrorType::InvalidSpec,
            Self::Throttled(..) => ErrorType::Throttled,
            Self::AwsUnavailable(..) => ErrorType::AwsUnavailable,
            Self::ListenerNotFound(..) => ErrorType::ListenerNotFound,
            Self::RuleNotFound(..) => ErrorType::RuleNotFound,
            Self::TargetGroupNotFound(..) => ErrorType::TargetGroupNotFound,
            Self::DriftDetected(_) => ErrorType::DriftDetected,
            Self::VerificationFailed(_) => ErrorType::VerificationFailed,
            Self::WeightsNotPossible(_) => ErrorType::WeightsNotPossible,
            Self::CanaryUnhealthy(_) => ErrorType::CanaryUnhealthy,
            Self::NothingToRegister(_) => ErrorType::NothingToRegister,
            Self::UnsupportedAction(_) => ErrorType::UnsupportedAction,
            Self::Conflict(..) => ErrorType::Conflict,
            Self::NotFound(_) => ErrorType::NotFound,
            Self::AccessDenied(..) => ErrorType::AccessDenied,
            Self::Aws { .. } => ErrorType::AwsError,
        }
    }

    /// [`Self::kind`]'s name: the Lambda error's `errorType`.
    pub fn error_type(&self) -> &'static str {
        self.kind().into()
    }

    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// Maps an SDK error by its AWS error code, keeping the SDK error as the source (its chain:
    /// the response, a timeout's or a connection's own cause) and AWS's request id in the
    /// message (the id AWS Support asks for, shown in the Lambda error and the execution's
    /// history).
    pub fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // The id the SDK read from the error (a query protocol's body) or the response's
        // `x-amzn-requestid` / `x-amz-request-id` header.
        let id = match &err {
            SdkError::ServiceError(se) => se.err().meta().request_id(),
            _ => None,
        };
        let request = id
            .or_else(|| err.request_id())
            .map(|id| format!(" (request id {id})"))
            .unwrap_or_default();
        let mapped = match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let message = format!("{}{request}", e.message().unwrap_or_default());
                Self::from_code(code, message)
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Self::AwsUnavailable(
                format!(
                    "{}{request}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ),
                None,
            ),
            _ => Self::Aws {
                code: "Unknown".into(),
                message: format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ),
                cause: None,
            },
        };
        mapped.caused_by(Box::new(err))
    }

    /// The same error, with `cause` as its source where the variant keeps one (the variants an
    /// AWS error maps to); other variants are returned as they are.
    pub fn caused_by(mut self, cause: Cause) -> Self {
        match &mut self {
            Self::Throttled(_, c)
            | Self::AwsUnavailable(_, c)
            | Self::ListenerNotFound(_, c)
            | Self::RuleNotFound(_, c)
            | Self::TargetGroupNotFound(_, c)
            | Self::Conflict(_, c)
            | Self::AccessDenied(_, c)
            | Self::Aws { cause: c, .. } => *c = Some(cause),
            _ => {}
        }
        self
    }

    /// Maps an AWS error code and message.
    pub fn from_code(code: String, message: String) -> Self {
        match code.as_str() {
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            | "SlowDown"
            | "RequestThrottled" => Self::Throttled(format!("{code}: {message}"), None),
            "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "InternalServiceException"
            | "ServerException" => Self::AwsUnavailable(format!("{code}: {message}"), None),
            "ConditionalCheckFailedException" | "TransactionConflictException" => {
                Self::Conflict(format!("{code}: {message}"), None)
            }
            "ListenerNotFound" => Self::ListenerNotFound(message, None),
            "RuleNotFound" => Self::RuleNotFound(message, None),
            "TargetGroupNotFound" => Self::TargetGroupNotFound(message, None),
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                Self::AccessDenied(message, None)
            }
            _ => Self::Aws {
                code,
                message,
                cause: None,
            },
        }
    }
}

impl From<OkraError> for Diagnostic {
    fn from(e: OkraError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

impl From<okra_core::weights::WeightError> for OkraError {
    fn from(e: okra_core::weights::WeightError) -> Self {
        Self::WeightsNotPossible(e.to_string())
    }
}

/// A spec that does not validate: `InvalidSpec`, every field error in the message.
impl From<okra_core::validate::ValidationErrors> for OkraError {
    fn from(e: okra_core::validate::ValidationErrors) -> Self {
        Self::InvalidSpec(e.to_string())
    }
}

/// The result of every okra operation.
pub type Result<T, E = OkraError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_stable_names() {
        let t = |c: &str| OkraError::from_code(c.into(), "m".into()).error_type();
        assert_eq!(t("Throttling"), "Throttled");
        assert_eq!(t("ThrottlingException"), "Throttled");
        // The Resource Groups Tagging API's own name for it.
        assert_eq!(t("ThrottledException"), "Throttled");
        assert_eq!(t("InternalServiceException"), "AwsUnavailable");
        assert_eq!(t("ServiceUnavailable"), "AwsUnavailable");
        assert_eq!(t("ListenerNotFound"), "ListenerNotFound");
        assert_eq!(t("RuleNotFound"), "RuleNotFound");
        assert_eq!(t("TargetGroupNotFound"), "TargetGroupNotFound");
        assert_eq!(t("AccessDenied"), "AccessDenied");
        assert_eq!(t("ValidationError"), "AwsError");
        assert_eq!(t("ConditionalCheckFailedException"), "Conflict");
        assert_eq!(t("ProvisionedThroughputExceededException"), "Throttled");
    }

    fn service_error(code: &str, request_id: Option<&str>) -> OkraError {
        use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersError;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("Rate exceeded")
            .build();
        let mut raw = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(""));
        if let Some(id) = request_id {
            raw.headers_mut().insert("x-amzn-requestid", id.to_string());
        }
        OkraError::from_sdk(SdkError::service_error(
            DescribeListenersError::generic(meta),
            raw,
        ))
    }

    #[test]
    fn an_sdk_error_is_kept_as_the_source_with_aws_s_request_id() {
        use std::error::Error as _;
        let e = service_error("Throttling", Some("5f1c-request"));
        assert_eq!(e.error_type(), "Throttled");
        assert_eq!(
            e.to_string(),
            "throttled by AWS: Throttling: Rate exceeded (request id 5f1c-request)"
        );
        let source = e.source().expect("the SDK error is the source");
        assert!(
            source.is::<SdkError<
                aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersError,
                HttpResponse,
            >>(),
            "{source:?}"
        );
        // Without a request id (the service was not reached, or did not say), no suffix.
        let e = service_error("ValidationError", None);
        assert_eq!(e.to_string(), "AWS error ValidationError: Rate exceeded");
        assert!(e.source().is_some());
    }

    #[test]
    fn a_timeout_keeps_its_chain() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
        let e = OkraError::from_sdk::<
            aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersError,
        >(SdkError::timeout_error(io));
        assert_eq!(e.error_type(), "AwsUnavailable");
        assert!(e.is_transient());
        // OkraError -> the SDK's timeout error -> its cause (the I/O error).
        let mut chain = Vec::new();
        let mut next = e.source();
        while let Some(s) = next {
            chain.push(s.to_string());
            next = s.source();
        }
        assert!(
            chain.iter().any(|s| s.contains("read timed out")),
            "{chain:?}"
        );
        // Errors okra finds itself have no source.
        assert!(
            OkraError::Conflict("lost a race".into(), None)
                .source()
                .is_none()
        );
    }

    #[test]
    fn diagnostic_carries_the_name() {
        let d: Diagnostic = OkraError::DriftDetected("x".into()).into();
        assert_eq!(d.error_type, "DriftDetected");
        assert!(d.error_message.contains("drift detected: x"));
        assert!(OkraError::Throttled("x".into(), None).is_transient());
        assert!(!OkraError::DriftDetected("x".into()).is_transient());
    }
}
