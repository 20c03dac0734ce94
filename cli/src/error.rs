//! The CLI's errors: one clear line with the cause and what to do, and an exit code.

use okra_aws::app::AppError;
use okra_core::vocab::ErrorType;

const ACCESS_HINT: &str = "check your AWS credentials and their permissions (AWS_PROFILE)";
const UNAVAILABLE_HINT: &str = "AWS did not answer: check --region / --endpoint-url and try again";

/// Exit codes (`okra --help` lists them).
pub mod exit {
    /// Done.
    pub const OK: i32 = 0;
    /// An error: the message says what and what to do.
    pub const ERROR: i32 = 1;
    /// Bad usage: an unknown command or option, a missing argument or setting.
    pub const USAGE: i32 = 2;
    /// `okra rollout watch`: the rollout ended rolled back or failed.
    pub const ROLLOUT_FAILED: i32 = 3;
}

/// An error the CLI reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What went wrong, in one line.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Further lines (a spec's errors, one per field).
    pub details: Vec<String>,
    /// The exit code.
    pub code: i32,
}

impl CliError {
    /// An error (exit 1).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            details: Vec::new(),
            code: exit::ERROR,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            ..Self::new(message)
        }
    }

    /// A bug or an impossible answer.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(message).hint("this is a bug of okra: please report it")
    }

    /// Adds what to do.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// okra's refusal, with advice by its type.
    pub fn from_app(e: &AppError, table: &str) -> Self {
        Self::from_answer(e.error_type(), &e.to_string(), Some(table))
    }

    /// okra's refusal of type `kind` (an [`ErrorType`]'s name) saying `message`, with advice by
    /// its type: the same whether it came in process or from the API's error answer. `table`:
    /// the table the CLI reads in process.
    pub fn from_answer(kind: &str, message: &str, table: Option<&str>) -> Self {
        let hint = match kind.parse::<ErrorType>() {
            Ok(ErrorType::InvalidSpec) => "fix the fields above and apply again",
            Ok(ErrorType::NotFound) if message.starts_with("cell") => {
                "`okra cell list` shows the cells; `okra cell apply -f cell.yaml` adds one"
            }
            Ok(ErrorType::NotFound) => "`okra rollout status <cell>` shows the newest rollout",
            Ok(ErrorType::Conflict) => "see the message: wait for the running rollout or abort it",
            Ok(ErrorType::AccessDenied) => ACCESS_HINT,
            Ok(ErrorType::AwsUnavailable | ErrorType::Throttled) => UNAVAILABLE_HINT,
            _ if message.contains("ResourceNotFoundException") && table.is_some() => {
                return Self::new(format!(
                    "table {} not found ({message})",
                    table.unwrap_or_default()
                ))
                .hint("give the stack's table with --table or OKRA_TABLE");
            }
            _ => "see the message",
        };
        Self::new(format!("{kind}: {message}")).hint(hint)
    }

    /// Prints the error on stderr.
    pub fn report(&self) {
        eprintln!("error: {}", self.message);
        for d in &self.details {
            eprintln!("  {d}");
        }
        if let Some(h) = &self.hint {
            eprintln!("  hint: {h}");
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<okra_aws::OkraError> for CliError {
    fn from(e: okra_aws::OkraError) -> Self {
        let hint = match e.kind() {
            ErrorType::AccessDenied => ACCESS_HINT,
            ErrorType::AwsUnavailable | ErrorType::Throttled => UNAVAILABLE_HINT,
            ErrorType::ListenerNotFound => {
                "the cell's listenerArn names no listener: fix the cell spec"
            }
            _ => "see the message",
        };
        Self::new(format!("{}: {e}", e.error_type())).hint(hint)
    }
}
