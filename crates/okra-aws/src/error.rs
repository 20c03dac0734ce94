//! The one error type of every okra function.
//!
//! Each variant has a stable `error_type` name: the Lambda runtime reports it as the function
//! error's `errorType`, and the state machine's `Retry` and `Catch` match on it. Renaming one is
//! a breaking change of `statemachine/*.asl.json`.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
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
    Throttled(String),
    /// AWS did not answer, or answered 5xx (retry).
    #[error("AWS unavailable: {0}")]
    AwsUnavailable(String),
    /// The listener does not exist.
    #[error("listener not found: {0}")]
    ListenerNotFound(String),
    /// The listener rule does not exist.
    #[error("listener rule not found: {0}")]
    RuleNotFound(String),
    /// A target group does not exist.
    #[error("target group not found: {0}")]
    TargetGroupNotFound(String),
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
    Conflict(String),
    /// The cell, rollout or execution asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// AWS said no for lack of permissions.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// Any other AWS error.
    #[error("AWS error {code}: {message}")]
    Aws {
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },
}

impl OkraError {
    /// The stable name the state machine matches ([`ErrorType`], the one vocabulary).
    pub fn kind(&self) -> ErrorType {
        match self {
            Self::InvalidInput(_) => ErrorType::InvalidInput,
            Self::InvalidSpec(_) => ErrorType::InvalidSpec,
            Self::Throttled(_) => ErrorType::Throttled,
            Self::AwsUnavailable(_) => ErrorType::AwsUnavailable,
            Self::ListenerNotFound(_) => ErrorType::ListenerNotFound,
            Self::RuleNotFound(_) => ErrorType::RuleNotFound,
            Self::TargetGroupNotFound(_) => ErrorType::TargetGroupNotFound,
            Self::DriftDetected(_) => ErrorType::DriftDetected,
            Self::VerificationFailed(_) => ErrorType::VerificationFailed,
            Self::WeightsNotPossible(_) => ErrorType::WeightsNotPossible,
            Self::CanaryUnhealthy(_) => ErrorType::CanaryUnhealthy,
            Self::NothingToRegister(_) => ErrorType::NothingToRegister,
            Self::UnsupportedAction(_) => ErrorType::UnsupportedAction,
            Self::Conflict(_) => ErrorType::Conflict,
            Self::NotFound(_) => ErrorType::NotFound,
            Self::AccessDenied(_) => ErrorType::AccessDenied,
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

    /// Maps an SDK error by its AWS error code. `not_found` names the variant for the codes that
    /// mean "this resource does not exist" in the calling context.
    pub fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let message = e.message().unwrap_or_default().to_string();
                Self::from_code(code, message)
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Self::AwsUnavailable(format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            )),
            _ => Self::Aws {
                code: "Unknown".into(),
                message: format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ),
            },
        }
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
            | "RequestThrottled" => Self::Throttled(format!("{code}: {message}")),
            "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "InternalServiceException"
            | "ServerException" => Self::AwsUnavailable(format!("{code}: {message}")),
            "ConditionalCheckFailedException" | "TransactionConflictException" => {
                Self::Conflict(format!("{code}: {message}"))
            }
            "ListenerNotFound" => Self::ListenerNotFound(message),
            "RuleNotFound" => Self::RuleNotFound(message),
            "TargetGroupNotFound" => Self::TargetGroupNotFound(message),
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                Self::AccessDenied(message)
            }
            _ => Self::Aws { code, message },
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

    #[test]
    fn diagnostic_carries_the_name() {
        let d: Diagnostic = OkraError::DriftDetected("x".into()).into();
        assert_eq!(d.error_type, "DriftDetected");
        assert!(d.error_message.contains("drift detected: x"));
        assert!(OkraError::Throttled("x".into()).is_transient());
        assert!(!OkraError::DriftDetected("x".into()).is_transient());
    }
}
